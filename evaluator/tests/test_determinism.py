"""Same request → same bits; the base model is untouched between requests; micro-batching changes nothing but
rounding."""

from __future__ import annotations

import pytest
import torch

from brickyard_evaluator.adapters import AdapterCache
from brickyard_evaluator.combination import Combiner
from brickyard_evaluator.data import tokenize_example
from brickyard_evaluator.evaluation import evaluate, resolve_modules
from brickyard_evaluator.model_host import ModelHost
from tiny import random_examples


@pytest.fixture(scope="module")
def setup(tiny_base, tiny_adapters):
    host = ModelHost.load(str(tiny_base))
    adapters = [AdapterCache("cpu", torch.float32).get(str(path)) for path in tiny_adapters]
    examples = [tokenize_example(host.tokenizer, e, host.max_positions)
                for e in random_examples(11, 100, seed=17, chat_every=3)]
    return host, Combiner(host.model), adapters, examples


def test_same_request_same_bits_and_base_restored(setup, tiny_base):
    host, combiner, adapters, examples = setup
    modules = resolve_modules(adapters, [])
    lam = [0.05 * k - 0.4 for k in range(len(modules) * len(adapters))]
    base_before = evaluate(host, combiner, [], [], [], examples)
    first = evaluate(host, combiner, adapters, modules, lam, examples, gradient=True)
    second = evaluate(host, combiner, adapters, modules, lam, examples, gradient=True)
    assert first.example_losses == second.example_losses and first.gradient == second.gradient
    assert first.loss_sum == second.loss_sum
    # after a request the wrappers are cleared: the base model's loss is bit-identical to before, and to a
    # freshly loaded, never wrapped model
    assert evaluate(host, combiner, [], [], [], examples).example_losses == base_before.example_losses
    fresh = ModelHost.load(str(tiny_base))
    assert evaluate(fresh, Combiner(fresh.model), [], [], [], examples).example_losses == base_before.example_losses
    assert all(not p.requires_grad for p in host.model.parameters())
    assert not host.model.training


def test_micro_batch_size_only_changes_rounding(setup):
    host, combiner, adapters, examples = setup
    modules = resolve_modules(adapters, [])
    lam = [0.7] * (len(modules) * len(adapters))
    one = evaluate(host, combiner, adapters, modules, lam, examples, micro_batch=1)
    many = evaluate(host, combiner, adapters, modules, lam, examples, micro_batch=5)
    assert many.example_losses == pytest.approx(one.example_losses, rel=1e-5)
    assert one.example_ids == many.example_ids == [e.id for e in examples]


def test_batched_greedy_decoding_equals_one_prompt_at_a_time(setup):
    """Left padding with position ids from the mask decodes exactly what each prompt alone decodes."""
    from brickyard_evaluator.evaluation import greedy_completion, greedy_completions

    host, combiner, adapters, examples = setup
    eos = host.eos_token_ids()
    budgets = [3 + (k % 4) for k in range(len(examples))]
    together = greedy_completions(host.model, examples, budgets, eos, "cpu")
    alone = [greedy_completion(host.model, e, b, eos, "cpu") for e, b in zip(examples, budgets)]
    assert together == alone
    assert all(len(tokens) <= budget for tokens, budget in zip(together, budgets))
    assert len({len(e.ids[: e.prompt_length]) for e in examples}) > 1  # prompts of different lengths: padding used
    # with the eos never produced the budget is used up exactly
    assert greedy_completions(host.model, examples[:2], [4, 2], set(), "cpu")[1].__len__() == 2


def test_accuracy_counts_exact_matches(setup):
    """Completions set to the model's own greedy continuation are correct; a changed one is not."""
    from brickyard_evaluator.data import TokenizedExample
    from brickyard_evaluator.evaluation import greedy_completion

    host, combiner, adapters, examples = setup
    scored = []
    for example in examples[:4]:
        tokens = greedy_completion(host.model, example, 3, host.eos_token_ids(), "cpu")
        text = host.tokenizer.decode(tokens, skip_special_tokens=True)
        scored.append(TokenizedExample(id=example.id, ids=example.ids[: example.prompt_length] + tokens,
                                       prompt_length=example.prompt_length, reference=text))
    scored[1] = TokenizedExample(id=scored[1].id, ids=scored[1].ids, prompt_length=scored[1].prompt_length,
                                 reference=scored[1].reference + " w1")
    result = evaluate(host, combiner, [], [], [], scored, accuracy=True, max_new_tokens=3)
    assert result.example_correct == [True, False, True, True]


def test_scored_positions_head_equals_the_full_forward(setup, monkeypatch):
    """The head-on-scored-positions route (Llama) gives the losses of the model's own full forward."""
    from brickyard_evaluator import evaluation

    host, combiner, adapters, examples = setup
    fast = evaluation.completion_nll(host.model, examples, "cpu").tolist()
    monkeypatch.setattr(evaluation, "PLAIN_HEAD_MODEL_TYPES", frozenset())
    full = evaluation.completion_nll(host.model, examples, "cpu").tolist()
    assert fast == pytest.approx(full, rel=1e-6)

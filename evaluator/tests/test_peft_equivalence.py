"""The evaluator's loss equals PEFT's own computation: one adapter via PeftModel, several via
add_weighted_adapter(combination_type="cat"), on the peft-tiny fixture adapters and random ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from brickyard_evaluator.adapters import AdapterCache, module_path
from brickyard_evaluator.combination import Combiner
from brickyard_evaluator.data import tokenize_example
from brickyard_evaluator.evaluation import completion_nll, evaluate, resolve_modules
from brickyard_evaluator.model_host import ModelHost
from tiny import random_examples

TOLERANCE = 1e-5


def peft_losses(base_dir, adapter_dirs, weights, examples) -> np.ndarray:
    """Per-example completion losses of PEFT's model: the adapter itself, or the cat-weighted combination."""
    base = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter_dirs[0]), adapter_name="a0")
    for index, directory in enumerate(adapter_dirs[1:], start=1):
        model.load_adapter(str(directory), adapter_name=f"a{index}")
    if weights is not None:
        names = [f"a{index}" for index in range(len(adapter_dirs))]
        model.add_weighted_adapter(names, list(weights), adapter_name="mix", combination_type="cat")
        model.set_adapter("mix")
    model.eval()
    with torch.no_grad():
        return completion_nll(model, examples, "cpu").double().numpy()


def our_losses(base_dir, adapter_dirs, coefficients, examples, modules=()):
    host = ModelHost.load(str(base_dir), "cpu", torch.float32)
    cache = AdapterCache("cpu", torch.float32)
    adapters = [cache.get(str(path)) for path in adapter_dirs]
    tokenized = [tokenize_example(host.tokenizer, e, host.max_positions) for e in examples]
    result = evaluate(host, Combiner(host.model), adapters, list(modules), coefficients, tokenized)
    return host, adapters, tokenized, result


@pytest.mark.parametrize("name", ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"])
def test_single_fixture_adapter_matches_peft(fixture_base, fixture_adapters, name):
    directory = next(path for path in fixture_adapters if path.name == name)
    examples = random_examples(6, 200, seed=3, chat_every=3)
    host, _, tokenized, result = our_losses(fixture_base, [directory], [], examples)
    expected = peft_losses(fixture_base, [directory], None, tokenized)
    np.testing.assert_allclose(result.example_losses, expected, rtol=TOLERANCE)
    assert result.loss_sum == pytest.approx(expected.sum(), rel=TOLERANCE)
    assert result.token_count == sum(e.completion_length for e in tokenized)
    # the adapter really changes the loss (the comparison would be vacuous otherwise)
    _, _, _, plain = our_losses(fixture_base, [], [], examples)
    assert abs(plain.loss_sum - result.loss_sum) > 1e-3 * abs(plain.loss_sum)


def test_fixture_pool_cat_matches_peft_add_weighted_adapter(fixture_base, fixture_adapters):
    weights = [0.8, -0.5, 1.3, 0.4, 0.9]
    examples = random_examples(5, 200, seed=4)
    host, adapters, tokenized, _ = our_losses(fixture_base, [], [], examples)
    cache = AdapterCache("cpu", torch.float32)
    adapters = [cache.get(str(path)) for path in fixture_adapters]
    modules = resolve_modules(adapters, [])
    coefficients = np.tile(weights, len(modules)).tolist()
    result = evaluate(host, Combiner(host.model), adapters, modules, coefficients, tokenized)
    expected = peft_losses(fixture_base, fixture_adapters, weights, tokenized)
    np.testing.assert_allclose(result.example_losses, expected, rtol=TOLERANCE)


def test_random_adapters_cat_matches_peft(tiny_base, tiny_adapters):
    weights = [1.5, 0.25, -0.75]
    examples = random_examples(8, 100, seed=5, chat_every=4)
    host, adapters, tokenized, _ = our_losses(tiny_base, [], [], examples)
    cache = AdapterCache("cpu", torch.float32)
    adapters = [cache.get(str(path)) for path in tiny_adapters]
    # modules named in the adapter-key form are accepted too
    modules = ["base_model.model." + m for m in resolve_modules(adapters, [])]
    coefficients = np.tile(weights, len(modules)).tolist()
    result = evaluate(host, Combiner(host.model), adapters, modules, coefficients, tokenized)
    expected = peft_losses(tiny_base, tiny_adapters, weights, tokenized)
    np.testing.assert_allclose(result.example_losses, expected, rtol=TOLERANCE)


def test_per_module_coefficients_give_the_dense_update(tiny_base, tiny_adapters):
    """λ[m, i] differing per module (which add_weighted_adapter cannot express): every wrapped layer adds exactly
    x (Σ_i λ[m, i] s_i B_i A_i)ᵀ, the dense CAT update, in float64."""
    host = ModelHost.load(str(tiny_base), "cpu", torch.float64)
    cache = AdapterCache("cpu", torch.float64)
    adapters = [cache.get(str(path)) for path in tiny_adapters]
    modules = resolve_modules(adapters, [])
    rng = np.random.default_rng(1)
    lam = rng.normal(size=(len(modules), len(adapters)))
    combiner = Combiner(host.model)
    terms = combiner.plan(adapters, modules)
    combiner.install(terms, {m: k for k, m in enumerate(modules)}, torch.tensor(lam), torch.float64)
    for term in terms:
        layer = combiner.layer(term.module)
        x = torch.randn(3, layer.in_features, dtype=torch.float64)
        got = layer(x) - layer.base(x)
        dense = sum(lam[modules.index(term.module), i] * adapters[i].modules[term.module].scaling
                    * adapters[i].modules[term.module].b @ adapters[i].modules[term.module].a
                    for i in term.adapter_indices)
        torch.testing.assert_close(got, x @ dense.T, rtol=1e-12, atol=1e-12)
    combiner.clear()
    assert all(layer.a is None for layer in (combiner.layer(m) for m in modules))
    assert module_path("base_model.model.model.layers.0.mlp.up_proj") == "model.layers.0.mlp.up_proj"


def test_bfloat16_host_stays_close_to_float32(tiny_base, tiny_adapters):
    """--dtype bfloat16: same request, losses within bf16 precision of float32, finite gradient of the same sign."""
    examples = random_examples(6, 100, seed=9)
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        host = ModelHost.load(str(tiny_base), "cpu", dtype)
        adapters = [AdapterCache("cpu", dtype).get(str(path)) for path in tiny_adapters]
        modules = resolve_modules(adapters, [])
        tokenized = [tokenize_example(host.tokenizer, e, host.max_positions) for e in examples]
        lam = [0.3] * (len(modules) * len(adapters))
        results[dtype] = evaluate(host, Combiner(host.model), adapters, modules, lam, tokenized, gradient=True)
    full, half = results[torch.float32], results[torch.bfloat16]
    assert half.loss_sum == pytest.approx(full.loss_sum, rel=0.05)
    assert np.isfinite(half.gradient).all()
    big = np.abs(full.gradient) > 0.2 * np.abs(full.gradient).max()
    assert (np.sign(np.asarray(half.gradient)[big]) == np.sign(np.asarray(full.gradient)[big])).all()

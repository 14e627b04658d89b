"""One request's numbers: completion-token NLL sums, greedy exact-match accuracy, d loss_sum / d λ."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .adapters import LoraAdapter, module_path
from .combination import Combiner
from .data import TokenizedExample
from .errors import EvalError
from .model_host import ModelHost


@dataclass
class Evaluation:
    """Per-request sums and per-example values, in the request's example order."""

    loss_sum: float = 0.0
    token_count: int = 0
    example_ids: list[int] = field(default_factory=list)
    example_losses: list[float] = field(default_factory=list)
    example_tokens: list[int] = field(default_factory=list)
    example_correct: list[bool] = field(default_factory=list)
    gradient: list[float] = field(default_factory=list)


def resolve_modules(adapters: Sequence[LoraAdapter], modules: Sequence[str]) -> list[str]:
    """The request's module list (canonical paths); empty = sorted union of the adapters' modules."""
    if not modules:
        return sorted({path for adapter in adapters for path in adapter.modules})
    resolved = [module_path(name) for name in modules]
    seen: set[str] = set()
    for name in resolved:
        if name in seen:
            raise EvalError(f"module {name} appears twice in the request")
        seen.add(name)
    return resolved


def coefficient_tensor(coefficients: Sequence[float], module_count: int, adapter_count: int,
                       device: str, requires_grad: bool) -> torch.Tensor:
    """λ as a float64 [modules, adapters] tensor (module-major on the wire); empty = all ones."""
    expected = module_count * adapter_count
    if len(coefficients) == 0:
        values = torch.ones(expected, dtype=torch.float64)
    elif len(coefficients) != expected:
        raise EvalError(f"{len(coefficients)} coefficients for {module_count} modules × {adapter_count} adapters "
                        f"(expected {expected}, module-major)")
    else:
        values = torch.tensor(list(coefficients), dtype=torch.float64)
    if not torch.isfinite(values).all():
        raise EvalError("coefficients contain NaN or infinity")
    return values.reshape(module_count, adapter_count).to(device).requires_grad_(requires_grad)


def _batch(examples: Sequence[TokenizedExample], device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and the mask of scored target positions (shifted by one)."""
    width = max(len(example.ids) for example in examples)
    ids = torch.zeros(len(examples), width, dtype=torch.long)
    attention = torch.zeros(len(examples), width, dtype=torch.long)
    scored = torch.zeros(len(examples), width - 1, dtype=torch.bool)
    for row, example in enumerate(examples):
        ids[row, : len(example.ids)] = torch.tensor(example.ids)
        attention[row, : len(example.ids)] = 1
        # position t predicts token t+1; completion tokens are prompt_length .. len-1
        scored[row, example.prompt_length - 1 : len(example.ids) - 1] = True
    return ids.to(device), attention.to(device), scored.to(device)


# Causal LMs whose logits are exactly lm_head(last hidden state) (no soft-capping or logit scaling): for these the
# output head runs on the scored positions only, which saves the [batch, length, vocab] logits of the prompts
# (gigabytes with a 128k vocabulary). Other models take the generic route through their own forward.
PLAIN_HEAD_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi3"})


def _scored_logits(model: torch.nn.Module, ids: torch.Tensor, attention: torch.Tensor,
                   scored: torch.Tensor) -> torch.Tensor:
    """Logits [N, vocab] of the N scored positions (row-major over the batch)."""
    if getattr(model.config, "model_type", None) in PLAIN_HEAD_MODEL_TYPES:
        decoder, head = model.get_decoder(), model.get_output_embeddings()
        hidden = decoder(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state
        return head(hidden[:, :-1][scored])
    return model(input_ids=ids, attention_mask=attention, use_cache=False).logits[:, :-1][scored]


def completion_nll(model: torch.nn.Module, examples: Sequence[TokenizedExample], device: str) -> torch.Tensor:
    """Per-example sums of the completion tokens' negative log-likelihood (natural log), differentiable."""
    ids, attention, scored = _batch(examples, device)
    logits = _scored_logits(model, ids, attention, scored)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    nll = F.cross_entropy(logits, ids[:, 1:][scored], reduction="none")
    # back into [batch, positions] (unique positions: no accumulation, deterministic on any device), summed per row
    per_position = torch.zeros(scored.shape, dtype=nll.dtype, device=nll.device).masked_scatter(scored, nll)
    return per_position.sum(dim=1)


@torch.no_grad()
def greedy_completions(model: torch.nn.Module, examples: Sequence[TokenizedExample], budgets: Sequence[int],
                       eos_ids: set[int], device: str) -> list[list[int]]:
    """Greedy decoding of several prompts at once (left-padded, position ids from the attention mask, KV cache):
    row r gets at most budgets[r] tokens and stops at an eos token, which is not returned."""
    rows = len(examples)
    prompts = [example.ids[: example.prompt_length] for example in examples]
    width = max(len(prompt) for prompt in prompts)
    ids = torch.zeros(rows, width, dtype=torch.long)
    mask = torch.zeros(rows, width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    generated: list[list[int]] = [[] for _ in range(rows)]
    finished = [budget <= 0 for budget in budgets]
    cache = None
    while not all(finished):
        output = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)
        cache = output.cache
        tokens = output.logits[:, -1].argmax(-1).tolist()
        for row, token in enumerate(tokens):
            if finished[row]:
                continue
            if token in eos_ids:
                finished[row] = True
                continue
            generated[row].append(token)
            finished[row] = len(generated[row]) >= budgets[row]
        ids = torch.tensor(tokens, device=device)[:, None]
        mask = torch.cat([mask, torch.ones(rows, 1, dtype=mask.dtype, device=device)], dim=1)
        positions = positions[:, -1:] + 1
    return generated


def greedy_completion(model: torch.nn.Module, example: TokenizedExample, max_new_tokens: int,
                      eos_ids: set[int], device: str) -> list[int]:
    """Greedy decoding of one prompt (no padding)."""
    return greedy_completions(model, [example], [max_new_tokens], eos_ids, device)[0]


def evaluate(host: ModelHost, combiner: Combiner, adapters: Sequence[LoraAdapter], modules: Sequence[str],
             coefficients: Sequence[float], examples: Sequence[TokenizedExample], *, gradient: bool = False,
             accuracy: bool = False, max_new_tokens: int = 0, micro_batch: int = 8) -> Evaluation:
    """Evaluates base + Σ λ s B A on the examples (micro-batches in the request's order, so results are
    reproducible bit for bit for the same request and micro-batch size)."""
    for adapter in adapters:
        combiner.check_fits(adapter)
    paths = resolve_modules(adapters, modules)
    module_index = {path: m for m, path in enumerate(paths)}
    terms = combiner.plan(adapters, paths)
    lam = coefficient_tensor(coefficients, len(paths), len(adapters), host.device, requires_grad=gradient)
    result = Evaluation()
    try:
        for start in range(0, len(examples), max(1, micro_batch)):
            chunk = examples[start : start + max(1, micro_batch)]
            with torch.set_grad_enabled(gradient):
                # Reinstalled per micro-batch: each backward frees the graph through c = λ·s.
                combiner.install(terms, module_index, lam, host.dtype)
                losses = completion_nll(host.model, chunk, host.device)
                if gradient:
                    losses.sum().backward()
            for example, loss in zip(chunk, losses.detach().double().cpu().tolist()):
                if loss != loss or loss in (float("inf"), float("-inf")):
                    raise EvalError(f"example {example.id}: loss is not finite", retryable=False)
                result.example_ids.append(example.id)
                result.example_losses.append(loss)
                result.example_tokens.append(example.completion_length)
        result.loss_sum = float(sum(result.example_losses))
        result.token_count = int(sum(result.example_tokens))
        if gradient:
            grad = lam.grad if lam.grad is not None else torch.zeros_like(lam)
            result.gradient = grad.detach().double().cpu().reshape(-1).tolist()
        if accuracy:
            eos_ids = host.eos_token_ids()
            combiner.install(terms, module_index, lam.detach(), host.dtype)
            step = max(1, micro_batch)
            for start in range(0, len(examples), step):
                chunk = examples[start : start + step]
                budgets = [max_new_tokens or example.completion_length + 8 for example in chunk]
                for example, tokens in zip(chunk, greedy_completions(host.model, chunk, budgets, eos_ids,
                                                                     host.device)):
                    decoded = host.tokenizer.decode(tokens, skip_special_tokens=True)
                    result.example_correct.append(decoded.strip() == example.reference.strip())
    finally:
        combiner.clear()
    return result

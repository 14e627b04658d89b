"""dL/dλ from autograd equals central finite differences (float64), per-module and per-adapter granularity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brickyard_evaluator.adapters import AdapterCache
from brickyard_evaluator.combination import Combiner
from brickyard_evaluator.data import tokenize_example
from brickyard_evaluator.evaluation import evaluate, resolve_modules
from brickyard_evaluator.model_host import ModelHost
from tiny import random_examples

EPS = 1e-4  # float64: truncation O(eps²) and round-off O(1e-16/eps) both far below 1e-4 relative


def float64_throughout(model: torch.nn.Module) -> None:
    """Llama's RMSNorm computes in float32 whatever the model dtype; for a float64 check every operation must be
    float64 (float32 round-off, ~1e-7 of the loss, would swamp finite differences), so norms compute in place."""
    for module in model.modules():
        if type(module).__name__.endswith("RMSNorm"):
            def forward(hidden, module=module):
                variance = hidden.pow(2).mean(-1, keepdim=True)
                return module.weight * (hidden * torch.rsqrt(variance + module.variance_epsilon))
            module.forward = forward
    assert model.config._attn_implementation != "eager", "eager attention softmaxes in float32"


@pytest.fixture(scope="module")
def setup64(tiny_base, tiny_adapters):
    host = ModelHost.load(str(tiny_base), "cpu", torch.float64)
    float64_throughout(host.model)
    cache = AdapterCache("cpu", torch.float64)
    adapters = [cache.get(str(path)) for path in tiny_adapters]
    examples = [tokenize_example(host.tokenizer, e, host.max_positions)
                for e in random_examples(6, 100, seed=11, chat_every=3)]
    return host, Combiner(host.model), adapters, examples


def loss(setup, modules, coefficients) -> float:
    host, combiner, adapters, examples = setup
    return evaluate(host, combiner, adapters, modules, coefficients, examples, micro_batch=4).loss_sum


def assert_close(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = np.abs(expected).max()
    assert scale > 1e-3, "gradient too small for the check to mean anything"
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * scale)


def test_per_module_gradient_matches_finite_differences(setup64):
    host, combiner, adapters, examples = setup64
    modules = resolve_modules(adapters, [])
    rng = np.random.default_rng(0)
    lam = rng.uniform(-1.0, 1.5, size=len(modules) * len(adapters))
    result = evaluate(host, combiner, adapters, modules, lam.tolist(), examples, gradient=True, micro_batch=4)
    assert len(result.gradient) == lam.size
    numeric = np.zeros_like(lam)
    for k in range(lam.size):
        m, i = divmod(k, len(adapters))
        if modules[m] not in adapters[i].modules:
            continue  # the adapter lacks this module: λ has no effect (autograd must say 0, checked below)
        plus, minus = lam.copy(), lam.copy()
        plus[k] += EPS
        minus[k] -= EPS
        numeric[k] = (loss(setup64, modules, plus.tolist()) - loss(setup64, modules, minus.tolist())) / (2 * EPS)
    assert_close(result.gradient, numeric)
    absent = [k for k in range(lam.size) if modules[k // len(adapters)] not in adapters[k % len(adapters)].modules]
    assert absent and all(result.gradient[k] == 0.0 for k in absent)
    # the same loss as a plain loss request
    assert result.loss_sum == pytest.approx(loss(setup64, modules, lam.tolist()), rel=1e-12)


def test_per_adapter_gradient_is_the_chain_rule_sum(setup64):
    """One weight w_i per adapter (λ[m, i] = w_i for all m): dL/dw_i = Σ_m dL/dλ[m, i] = finite differences in w."""
    host, combiner, adapters, examples = setup64
    modules = resolve_modules(adapters, [])
    weights = np.array([0.7, -0.4, 1.2])

    def expand(w):
        return np.tile(w, len(modules)).tolist()

    result = evaluate(host, combiner, adapters, modules, expand(weights), examples, gradient=True, micro_batch=4)
    per_adapter = np.asarray(result.gradient).reshape(len(modules), len(adapters)).sum(axis=0)
    numeric = np.zeros_like(weights)
    for i in range(weights.size):
        plus, minus = weights.copy(), weights.copy()
        plus[i] += EPS
        minus[i] -= EPS
        numeric[i] = (loss(setup64, modules, expand(plus)) - loss(setup64, modules, expand(minus))) / (2 * EPS)
    assert_close(per_adapter, numeric)


def test_gradient_is_additive_over_examples(setup64):
    """Per-request sums: the gradient of a request equals the sum over its halves (the coordinator's reduction)."""
    host, combiner, adapters, examples = setup64
    modules = resolve_modules(adapters, [])
    lam = np.linspace(-0.5, 1.0, len(modules) * len(adapters)).tolist()
    whole = evaluate(host, combiner, adapters, modules, lam, examples, gradient=True)
    first = evaluate(host, combiner, adapters, modules, lam, examples[:3], gradient=True)
    second = evaluate(host, combiner, adapters, modules, lam, examples[3:], gradient=True)
    np.testing.assert_allclose(whole.gradient, np.add(first.gradient, second.gradient), rtol=1e-10, atol=1e-12)
    assert whole.loss_sum == pytest.approx(first.loss_sum + second.loss_sum, rel=1e-12)

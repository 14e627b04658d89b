"""The CAT combination applied on the fly: ΔW_m = Σ_i λ[m, i] · s_i · B_i A_i on every requested module m.

Each target nn.Linear of the base model is wrapped (once, lazily) by a `CombinedLinear` that computes
    y = base(x) + ((x A_catᵀ) ⊙ c) B_catᵀ,    c = concat_i(λ[m, i] · s_i repeated r_i times)
with A_cat / B_cat the adapters' factors stacked along the rank: exactly Σ_i λ[m,i] s_i (x A_iᵀ) B_iᵀ, linear in λ,
no cross terms between adapters. λ is a float64 tensor; for gradient requests it requires grad and autograd
carries d loss / d λ through c. Outside a request every wrapper is cleared and the model is the base model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .adapters import LoraAdapter
from .errors import EvalError


class CombinedLinear(nn.Module):
    """A frozen Linear plus an optional low-rank update with per-rank coefficients (see the module doc)."""

    def __init__(self, base: nn.Linear) -> None:
        super().__init__()
        self.base = base
        self.a: torch.Tensor | None = None  # [R, in]
        self.b: torch.Tensor | None = None  # [out, R]
        self.c: torch.Tensor | None = None  # [R], model dtype, differentiable in λ

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def set_update(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> None:
        self.a, self.b, self.c = a, b, c

    def clear(self) -> None:
        self.a = self.b = self.c = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.a is None:
            return y
        return y + ((x @ self.a.T) * self.c) @ self.b.T


@dataclass(frozen=True)
class ModuleTerms:
    """What one module receives: for each adapter index i that has the module, its factors."""

    module: str
    adapter_indices: list[int]
    a: torch.Tensor  # stacked [Σr, in]
    b: torch.Tensor  # stacked [out, Σr]
    ranks: list[int]
    scalings: list[float]


class Combiner:
    """Owns the wrapping of a model's Linear layers and installs one request's combination at a time."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._wrapped: dict[str, CombinedLinear] = {}
        # Stacked factors of the last adapter set only: an adapt run reuses one set for every step, and memory
        # stays bounded by one set's factors (an 8B pool's selection is gigabytes) whatever the request mix.
        self._stack_set: tuple[str, ...] = ()
        self._stack_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def layer(self, path: str) -> CombinedLinear | None:
        """The wrapper for module `path` (wrapping the Linear on first use); None if the base model lacks it."""
        if path in self._wrapped:
            return self._wrapped[path]
        try:
            module = self.model.get_submodule(path)
        except AttributeError:
            return None
        if isinstance(module, CombinedLinear):
            return module
        if not isinstance(module, nn.Linear):
            raise EvalError(f"module {path} of the base model is a {type(module).__name__}, not a Linear layer")
        wrapper = CombinedLinear(module)
        parent_path, _, name = path.rpartition(".")
        parent = self.model.get_submodule(parent_path) if parent_path else self.model
        setattr(parent, name, wrapper)
        self._wrapped[path] = wrapper
        return wrapper

    def check_fits(self, adapter: LoraAdapter) -> None:
        """Every module of the adapter exists in the base model as a Linear layer of matching shape."""
        for path, factors in adapter.modules.items():
            layer = self.layer(path)
            if layer is None:
                raise EvalError(f"adapter {adapter.path}: module {path} is not in the base model")
            if factors.a.shape[1] != layer.in_features or factors.b.shape[0] != layer.out_features:
                raise EvalError(
                    f"adapter {adapter.path}: module {path}: LoRA shape [out={factors.b.shape[0]}, "
                    f"in={factors.a.shape[1]}] differs from the base layer [out={layer.out_features}, "
                    f"in={layer.in_features}]")

    def plan(self, adapters: Sequence[LoraAdapter], modules: Sequence[str]) -> list[ModuleTerms]:
        """Stacks, per requested module, the factors of the adapters that have it (order = adapter order)."""
        terms = []
        adapter_set = tuple(adapter.content_hash for adapter in adapters)
        if adapter_set != self._stack_set:
            self._stack_set, self._stack_cache = adapter_set, {}
        for path in modules:
            if self.layer(path) is None:
                raise EvalError(f"module {path} of the request is not in the base model")
            indices = [i for i, adapter in enumerate(adapters) if path in adapter.modules]
            if not indices:
                continue
            stacked = self._stack_cache.get(path)
            if stacked is None:
                if len(indices) == 1:  # nothing to stack: no copy
                    factors = adapters[indices[0]].modules[path]
                    stacked = (factors.a, factors.b)
                else:
                    stacked = (torch.cat([adapters[i].modules[path].a for i in indices], dim=0),
                               torch.cat([adapters[i].modules[path].b for i in indices], dim=1))
                self._stack_cache[path] = stacked
            terms.append(ModuleTerms(
                module=path, adapter_indices=indices, a=stacked[0], b=stacked[1],
                ranks=[adapters[i].modules[path].rank for i in indices],
                scalings=[adapters[i].modules[path].scaling for i in indices]))
        return terms

    def install(self, terms: Sequence[ModuleTerms], module_index: dict[str, int], coefficients: torch.Tensor,
                dtype: torch.dtype) -> None:
        """Sets c = λ[m, i]·s_i (per rank) on every module of `terms`; λ is [modules, adapters], float64."""
        self.clear()
        for term in terms:
            m = module_index[term.module]
            lam = coefficients[m, term.adapter_indices]
            scales = torch.tensor(term.scalings, dtype=coefficients.dtype, device=coefficients.device)
            per_rank = torch.repeat_interleave(lam * scales, torch.tensor(term.ranks, device=coefficients.device))
            self._wrapped[term.module].set_update(term.a, term.b, per_rank.to(dtype))

    def clear(self) -> None:
        for wrapper in self._wrapped.values():
            wrapper.clear()

"""PEFT LoRA adapter directories: content hash, PEFT's scaling rules, factor loading, and a cache by hash.

An adapter directory is what `PeftModel.save_pretrained` writes: adapter_config.json and
adapter_model.safetensors with keys `base_model.model.<module path>.lora_A.weight` ([r, in]) and
`...lora_B.weight` ([out, r]). Module paths here are relative to the base model (`model.layers.0.self_attn.q_proj`),
the names PEFT itself matches rank_pattern/alpha_pattern against.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .errors import EvalError

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
KEY_PREFIX = "base_model.model."
_FACTOR_KEY = re.compile(r"^(?P<module>.+)\.(?P<factor>lora_A|lora_B)(?:\.[^.]+)?\.weight$")


def content_hash(directory: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of adapter_model.safetensors's bytes followed by adapter_config.json's bytes."""
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        with open(Path(directory) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def module_path(name: str) -> str:
    """Canonical module path relative to the base model: strips a leading `base_model.model.` (adapter-key form)."""
    return name[len(KEY_PREFIX):] if name.startswith(KEY_PREFIX) else name


def pattern_key(pattern_keys: list[str], path: str) -> str | None:
    """PEFT's `get_pattern_key`: the first key K of rank_pattern/alpha_pattern with `(.*\\.)?(K)$` matching path."""
    for key in pattern_keys:
        if re.match(rf"(.*\.)?({key})$", path):
            return key
    return None


@dataclass(frozen=True)
class LoraFactors:
    """One module of one adapter: A [r, in], B [out, r] and PEFT's scaling s (alpha/r, or alpha/sqrt(r) for rsLoRA)."""

    a: torch.Tensor
    b: torch.Tensor
    scaling: float

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


@dataclass(frozen=True)
class LoraAdapter:
    """A loaded adapter: its directory, content hash and factors per module path (relative to the base model)."""

    path: str
    content_hash: str
    modules: dict[str, LoraFactors]


def module_scaling(config: dict, path: str) -> tuple[int, float]:
    """(r, scaling) PEFT uses for module `path`, from r/lora_alpha, rank_pattern/alpha_pattern and use_rslora."""
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    r_key = pattern_key(list(rank_pattern), path)
    alpha_key = pattern_key(list(alpha_pattern), path)
    r = rank_pattern[r_key] if r_key is not None else config.get("r", 8)
    alpha = alpha_pattern[alpha_key] if alpha_key is not None else config.get("lora_alpha", 8)
    if config.get("use_rslora", False):
        return int(r), float(alpha) / math.sqrt(r)
    return int(r), float(alpha) / r


def _check_supported(directory: str, config: dict) -> None:
    """Refuses adapter kinds whose effect is not a plain Σ s·B·A on Linear weights (the CAT form)."""
    peft_type = str(config.get("peft_type", "LORA")).upper()
    problems = []
    if peft_type != "LORA":
        problems.append(f"peft_type {peft_type} (only LORA)")
    if config.get("use_dora"):
        problems.append("use_dora")
    if config.get("lora_bias"):
        problems.append("lora_bias")
    if config.get("modules_to_save"):
        problems.append("modules_to_save")
    if config.get("target_parameters"):
        problems.append("target_parameters")
    if config.get("trainable_token_indices"):
        problems.append("trainable_token_indices")
    if problems:
        raise EvalError(f"adapter {directory}: unsupported PEFT features: {', '.join(problems)}")


def load_adapter(directory: str, expected_hash: str = "", device: str = "cpu",
                 dtype: torch.dtype = torch.float32) -> LoraAdapter:
    """Reads and checks one adapter directory; factors are converted to `dtype` on `device`.

    Raises EvalError (not retryable) naming the directory, file or key on any problem.
    """
    root = Path(directory)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (root / name).is_file():
            raise EvalError(f"adapter {directory}: {name} not found")
    try:
        digest = content_hash(root)
    except OSError as error:
        raise EvalError(f"adapter {directory}: cannot read: {error}", retryable=True) from None
    if expected_hash and digest != expected_hash.lower():
        raise EvalError(f"adapter {directory}: content hash {digest} differs from the request's {expected_hash}")
    try:
        config = json.loads((root / CONFIG_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EvalError(f"adapter {directory}: {CONFIG_FILE}: {error}") from None
    if not isinstance(config, dict):
        raise EvalError(f"adapter {directory}: {CONFIG_FILE}: not a JSON object")
    _check_supported(directory, config)
    try:
        tensors = load_file(str(root / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as error:
        raise EvalError(f"adapter {directory}: {WEIGHTS_FILE}: {error}") from None

    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = _FACTOR_KEY.match(key)
        if match is None:
            raise EvalError(f"adapter {directory}: {WEIGHTS_FILE}: unsupported tensor {key} "
                            "(only lora_A/lora_B weights of Linear layers)")
        path = module_path(match.group("module"))
        pairs.setdefault(path, {})[match.group("factor")] = tensor

    modules: dict[str, LoraFactors] = {}
    for path in sorted(pairs):
        factors = pairs[path]
        if set(factors) != {"lora_A", "lora_B"}:
            missing = ({"lora_A", "lora_B"} - set(factors)).pop()
            raise EvalError(f"adapter {directory}: module {path}: {missing} missing")
        a, b = factors["lora_A"], factors["lora_B"]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            raise EvalError(f"adapter {directory}: module {path}: lora_A {tuple(a.shape)} and lora_B "
                            f"{tuple(b.shape)} are not [r, in] and [out, r]")
        r, scaling = module_scaling(config, path)
        if a.shape[0] != r:
            raise EvalError(f"adapter {directory}: module {path}: rank {a.shape[0]} but the config says r={r}")
        modules[path] = LoraFactors(a=a.to(device=device, dtype=dtype), b=b.to(device=device, dtype=dtype),
                                    scaling=scaling)
    if not modules:
        raise EvalError(f"adapter {directory}: no LoRA modules in {WEIGHTS_FILE}")
    return LoraAdapter(path=str(directory), content_hash=digest, modules=modules)


class AdapterCache:
    """Loaded adapters by content hash (least recently used evicted beyond `capacity`).

    A request that names a hash already cached is served from memory without touching the files; a request
    without a hash reads the directory (a path → hash memo keyed by the files' sizes and mtimes avoids rehashing).
    """

    def __init__(self, device: str, dtype: torch.dtype, capacity: int = 64) -> None:
        self.device = device
        self.dtype = dtype
        self.capacity = max(1, capacity)
        self._by_hash: OrderedDict[str, LoraAdapter] = OrderedDict()
        self._hash_by_stat: dict[tuple, str] = {}
        self.loads = 0

    def get(self, path: str, expected_hash: str = "") -> LoraAdapter:
        key = expected_hash.lower() or self._memoized_hash(path)
        if key and key in self._by_hash:
            self._by_hash.move_to_end(key)
            return self._by_hash[key]
        adapter = load_adapter(path, expected_hash, self.device, self.dtype)
        self.loads += 1
        stat = self._stat(path)
        if stat is not None:
            self._hash_by_stat[stat] = adapter.content_hash
        self._by_hash[adapter.content_hash] = adapter
        while len(self._by_hash) > self.capacity:
            self._by_hash.popitem(last=False)
        return adapter

    def _memoized_hash(self, path: str) -> str:
        stat = self._stat(path)
        return self._hash_by_stat.get(stat, "") if stat is not None else ""

    @staticmethod
    def _stat(path: str) -> tuple | None:
        try:
            files = [os.stat(Path(path) / name) for name in (WEIGHTS_FILE, CONFIG_FILE)]
        except OSError:
            return None
        return (os.path.realpath(path),) + tuple((s.st_size, s.st_mtime_ns, s.st_ino) for s in files)

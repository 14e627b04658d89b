"""Loads the base model and tokenizer once, offline, frozen and in eval mode (dropout off)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import EvalError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def configure_torch(threads: int) -> None:
    """One process = one unit of parallelism: `threads` intra-op threads, deterministic kernels."""
    torch.set_num_threads(max(1, threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set (only possible before the first parallel op)
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class ModelHost:
    """The base model (frozen, eval mode) and its tokenizer, loaded from a local directory."""

    path: str
    model: torch.nn.Module
    tokenizer: object
    device: str
    dtype: torch.dtype

    @classmethod
    def load(cls, path: str, device: str = "cpu", dtype: torch.dtype = torch.float32) -> "ModelHost":
        """Loads `path` (config.json, weights, tokenizer files) with HF_HUB_OFFLINE=1 and local files only.

        Raises EvalError (not retryable) naming the directory when it cannot be loaded.
        """
        os.environ["HF_HUB_OFFLINE"] = "1"
        root = Path(path)
        if not path:
            raise EvalError("the coordinator sent no base_model_path")
        if not root.is_dir():
            raise EvalError(f"cannot load base model {path}: not a directory")
        if not (root / "config.json").is_file():
            raise EvalError(f"cannot load base model {path}: config.json not found")
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy import, only when needed

        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except Exception as error:  # transformers raises many types (OSError, ValueError, ...)
            raise EvalError(f"cannot load the tokenizer of base model {path}: {error}") from None
        try:
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype)
        except Exception as error:
            raise EvalError(f"cannot load base model {path}: {error}") from None
        model.to(device)
        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        return cls(path=path, model=model, tokenizer=tokenizer, device=device, dtype=dtype)

    @property
    def max_positions(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def eos_token_ids(self) -> set[int]:
        """Tokens that end greedy decoding: the tokenizer's eos and the generation config's eos ids."""
        ids: set[int] = set()
        if getattr(self.tokenizer, "eos_token_id", None) is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        config_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(config_eos, int):
            ids.add(config_eos)
        elif isinstance(config_eos, (list, tuple)):
            ids.update(int(token) for token in config_eos)
        return ids

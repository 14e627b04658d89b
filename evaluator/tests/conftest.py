"""Shared fixtures: a tiny random Llama on disk, random PEFT adapters for it, the copied peft-tiny adapters."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)

from tiny import build_tiny_llama, random_lora  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A random tiny Llama (vocab 128, hidden 32, 2 layers) with a WordLevel tokenizer and a chat template."""
    return build_tiny_llama(tmp_path_factory.mktemp("base"), seed=0)


@pytest.fixture(scope="session")
def tiny_adapters(tiny_base, tmp_path_factory) -> list[Path]:
    """Three random LoRAs of the tiny base: different ranks, modules, an rsLoRA and a rank/alpha-pattern one."""
    root = tmp_path_factory.mktemp("adapters")
    return [
        random_lora(tiny_base, root / "a", seed=1, rank=4, alpha=8, targets=("q_proj", "v_proj")),
        random_lora(tiny_base, root / "b", seed=2, rank=2, alpha=4, targets=("q_proj", "o_proj", "up_proj"),
                    use_rslora=True),
        random_lora(tiny_base, root / "c", seed=3, rank=4, alpha=16, targets=("v_proj", "down_proj"),
                    rank_pattern={"down_proj": 2}, alpha_pattern={"layers.1.self_attn.v_proj": 4}),
    ]


@pytest.fixture(scope="session")
def fixture_base(tmp_path_factory) -> Path:
    """A random base of the peft-tiny fixtures' config (hidden 64, vocab 256)."""
    return build_tiny_llama(tmp_path_factory.mktemp("fixture-base"), seed=7,
                            config_json=FIXTURES / "peft-tiny-base_config.json")


@pytest.fixture(scope="session")
def fixture_adapters() -> list[Path]:
    root = FIXTURES / "peft-tiny-adapters"
    return [root / name for name in ("a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16")]

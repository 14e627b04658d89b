"""One PEFT LoRA per task on the frozen base, saved as a standard adapter directory."""
from __future__ import annotations

import json
import os

import torch

from . import model as base_model
from . import tasks

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def train_lora(base_dir: str, task: str, out_dir: str, seed: int = 0, rank: int = 8, alpha: float | None = None,
               steps: int = 300, lr: float = 5e-3, batch: int = 32) -> str:
    """Trains a rank-`rank` LoRA (alpha = 2·rank unless given) on `task`; reuses `out_dir` if it holds the same."""
    marker = os.path.join(out_dir, "tasksuite.json")
    settings = {"base": os.path.abspath(base_dir), "task": task, "seed": seed, "rank": rank, "alpha": alpha,
                "steps": steps, "lr": lr, "batch": batch}
    if os.path.exists(marker) and json.load(open(marker)) == settings:
        return out_dir
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1000 + seed)
    model, tokenizer = base_model.load_base(base_dir)
    config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else 2 * rank, lora_dropout=0.0,
                        target_modules=TARGET_MODULES, init_lora_weights=True)
    peft_model = get_peft_model(model, config)
    pairs = tasks.examples(task, 2000, seed=seed)
    base_model.train(peft_model, tokenizer, pairs, steps=steps, lr=lr, batch=batch, seed=seed)
    os.makedirs(out_dir, exist_ok=True)
    peft_model.save_pretrained(out_dir)
    json.dump(settings, open(marker, "w"))
    return out_dir

"""One PEFT LoRA per task on the frozen base, saved as a standard adapter directory.

`replay_per_task > 0` trains a *gated* task LoRA: every batch mixes the task's examples with replayed prompts of
the other tasks (and of the base's pretraining task) whose targets are the base's own answers (`replay.py`), and
`gate > 0` adds a penalty on the LoRA's output (ΔW·x of every LoRA module) on those replayed rows. The LoRA then
changes the model only after its own task token, so task LoRAs can be merged (bench-quality's multi-task rows).
"""
from __future__ import annotations

import json
import os
from typing import List

import torch

from . import model as base_model
from . import tasks
from .cache import publish_directory

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraOutputPenalty:
    """Mean over LoRA modules of the mean squared LoRA output s·B·A·x on chosen batch rows (non-padding positions),
    times `weight`. Collects the outputs with forward hooks on every `lora_B[adapter]`."""

    def __init__(self, peft_model, weight: float, adapter: str = "default"):
        self.weight = weight
        self.outputs: List[torch.Tensor] = []
        self.handles = []
        for module in peft_model.modules():
            heads = getattr(module, "lora_B", None)
            if isinstance(heads, torch.nn.ModuleDict) and adapter in heads:
                scaling = module.scaling[adapter]
                self.handles.append(heads[adapter].register_forward_hook(
                    lambda _m, _i, out, s=scaling: self.outputs.append(out * s)))

    def __call__(self, rows: slice, mask: torch.Tensor) -> torch.Tensor:
        keep = mask[rows].unsqueeze(-1).to(torch.float32)
        terms = [((out[rows] ** 2) * keep).sum() / (keep.sum() * out.shape[-1]) for out in self.outputs]
        self.outputs.clear()
        return self.weight * torch.stack(terms).mean()

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def train_lora(base_dir: str, task: str, out_dir: str, seed: int = 0, rank: int = 8, alpha: float | None = None,
               steps: int = 300, lr: float = 5e-3, batch: int = 32, replay_per_task: int = 0,
               replay_batch: int = 32, gate: float = 0.0) -> str:
    """Trains a rank-`rank` LoRA (alpha = 2·rank unless given) on `task`; reuses `out_dir` if it holds the same."""
    marker = os.path.join(out_dir, "tasksuite.json")
    settings = {"base": os.path.abspath(base_dir), "task": task, "seed": seed, "rank": rank, "alpha": alpha,
                "steps": steps, "lr": lr, "batch": batch}
    if replay_per_task > 0:  # keys only when used: markers of ungated LoRAs (bench-adapt's cache) stay valid
        settings.update({"replay_per_task": replay_per_task, "replay_batch": replay_batch, "gate": gate,
                         "base_settings": json.load(open(os.path.join(base_dir, "tasksuite.json")))})
    if os.path.exists(marker) and json.load(open(marker)) == settings:
        return out_dir
    from peft import LoraConfig, get_peft_model

    from . import replay

    replayed = replay.replay_pairs(base_dir, task, replay_per_task) if replay_per_task > 0 else None
    torch.manual_seed(1000 + seed)
    model, tokenizer = base_model.load_base(base_dir)
    config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else 2 * rank, lora_dropout=0.0,
                        target_modules=TARGET_MODULES, init_lora_weights=True)
    peft_model = get_peft_model(model, config)
    pairs = tasks.examples(task, 2000, seed=seed, disjoint=base_model.is_disjoint(base_dir))
    penalty = LoraOutputPenalty(peft_model, gate) if replayed and gate > 0 else None
    base_model.train(peft_model, tokenizer, pairs, steps=steps, lr=lr, batch=batch, seed=seed, replay=replayed,
                     replay_batch=replay_batch if replayed else 0, penalty=penalty)
    if penalty is not None:
        penalty.close()

    def write(directory: str) -> None:
        peft_model.save_pretrained(directory)
        with open(os.path.join(directory, "tasksuite.json"), "w") as f:
            json.dump(settings, f)

    return publish_directory(out_dir, write)

"""Building the whole suite: base, one LoRA per task, a same-task soup, mixed ranks."""
from __future__ import annotations

import os
import time
from typing import Dict

from . import tasks


def setup_torch(threads: int = 1) -> None:
    """`threads` torch threads (one by default: the machine is shared; see TEAM notes), deterministic kernels,
    offline hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


#: Tasks with one LoRA each (rank 8, seed 0).
TASK_NAMES = list(tasks.TASKS)
#: The soup task and its extra seeds (seed 0 is the task LoRA itself).
SOUP_TASK, SOUP_SEEDS = "rev", [0, 1, 2, 3]
#: Mixed ranks: (task, rank) LoRAs besides the rank-8 ones.
MIXED = [("rev", 4), ("rot", 16)]
#: Gated task LoRAs (`lora.train_lora`): replayed prompts per other task, replay rows per batch, LoRA-output penalty.
GATING = {"replay_per_task": 500, "replay_batch": 32, "gate": 10.0}
#: The gated suite's base: hidden size, layers, pretraining steps.
GATED_BASE = {"hidden": 64, "layers": 2, "steps": 800}


def build(root: str, log=print, base_steps: int = 800, lora_steps: int = 400, gated: bool = True) -> Dict[str, str]:
    """Builds (or reuses) everything under `root`; returns name → directory: `base`, `task/<t>`,
    `soup/<seed>`, `rank/<t>-r<r>`.

    `gated` (default): a base that copies after every task word and task LoRAs trained with replay of the other
    tasks' prompts (`GATING`), so each LoRA acts only on its task and merges of task LoRAs can keep every task.
    `gated=False`: the first suite (base pretrained on `cpy` only, LoRAs on their task only), whose task LoRAs
    rewrite the base for every prompt."""
    from . import lora, model

    setup_torch()
    paths: Dict[str, str] = {}
    start = time.time()
    if gated:
        shape = GATED_BASE
        base_name = f"base-copy-all-h{shape['hidden']}l{shape['layers']}"
        paths["base"] = model.pretrain_base(os.path.join(root, base_name), steps=shape["steps"], hidden=shape["hidden"],
                                            layers=shape["layers"], copy_every_task=True)
        lora_name = f"lora-gated-h{shape['hidden']}l{shape['layers']}"
    else:
        lora_name = "lora"
        paths["base"] = model.pretrain_base(os.path.join(root, "base"), steps=base_steps)
    log(f"tasksuite: base ready ({time.time() - start:.0f} s)")
    options = dict(GATING) if gated else {}

    def train(task: str, seed: int = 0, rank: int = 8) -> str:
        out = os.path.join(root, lora_name, f"{task}-r{rank}-s{seed}")
        return lora.train_lora(paths["base"], task, out, seed=seed, rank=rank, steps=lora_steps, **options)

    for t in TASK_NAMES:
        paths[f"task/{t}"] = train(t)
        log(f"tasksuite: LoRA {t} ready ({time.time() - start:.0f} s)")
    for s in SOUP_SEEDS:
        paths[f"soup/{s}"] = train(SOUP_TASK, seed=s)
    for t, r in MIXED:
        paths[f"rank/{t}-r{r}"] = train(t, rank=r)
    log(f"tasksuite: all LoRAs ready ({time.time() - start:.0f} s)")
    return paths

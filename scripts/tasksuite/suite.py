"""Building the whole suite: base, one LoRA per task, a same-task soup, mixed ranks."""
from __future__ import annotations

import os
import time
from typing import Dict

from . import tasks


def setup_torch() -> None:
    """One torch thread, deterministic kernels, offline hub (the machine is shared; see TEAM notes)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


#: Tasks with one LoRA each (rank 8, seed 0).
TASK_NAMES = list(tasks.TASKS)
#: The soup task and its extra seeds (seed 0 is the task LoRA itself).
SOUP_TASK, SOUP_SEEDS = "rev", [0, 1, 2, 3]
#: Mixed ranks: (task, rank) LoRAs besides the rank-8 ones.
MIXED = [("rev", 4), ("rot", 16)]


def build(root: str, log=print, base_steps: int = 800, lora_steps: int = 400) -> Dict[str, str]:
    """Builds (or reuses) everything under `root`; returns name → directory: `base`, `task/<t>`,
    `soup/<seed>`, `rank/<t>-r<r>`."""
    from . import lora, model

    setup_torch()
    paths: Dict[str, str] = {}
    start = time.time()
    paths["base"] = model.pretrain_base(os.path.join(root, "base"), steps=base_steps)
    log(f"tasksuite: base ready ({time.time() - start:.0f} s)")
    for t in TASK_NAMES:
        paths[f"task/{t}"] = lora.train_lora(paths["base"], t, os.path.join(root, "lora", f"{t}-r8-s0"), steps=lora_steps)
        log(f"tasksuite: LoRA {t} ready ({time.time() - start:.0f} s)")
    for s in SOUP_SEEDS:
        paths[f"soup/{s}"] = lora.train_lora(paths["base"], SOUP_TASK, os.path.join(root, "lora", f"{SOUP_TASK}-r8-s{s}"),
                                             seed=s, steps=lora_steps)
    for t, r in MIXED:
        paths[f"rank/{t}-r{r}"] = lora.train_lora(paths["base"], t, os.path.join(root, "lora", f"{t}-r{r}-s0"), rank=r,
                                                  steps=lora_steps)
    log(f"tasksuite: all LoRAs ready ({time.time() - start:.0f} s)")
    return paths

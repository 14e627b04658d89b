"""Building the whole suite: base, one LoRA per task, a same-task soup, mixed ranks."""
from __future__ import annotations

import os
import time
from typing import Dict, Optional, Set, Tuple

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
#: The same-task soups' tasks: inc (the exact average of its seeds' LoRAs keeps the task: a soup methods can lose)
#: and rot (the exact average of 4 loses it already: whatever a method does, nothing is left to keep).
SOUP_TASKS = ["inc", "rot"]
#: The soup's seeds (seed 0 is the task LoRA itself).
SOUP_SEEDS = [0, 1, 2, 3]
#: The large soup: 8 rank-8 LoRAs of one task merged at rank 8 = 64 units a module, the least that passes lego's
#: oversample gate (≥ 4 units per fine cluster at the default `oversample: 2`: 4·2·8).
LARGE_SOUP_SEEDS = list(range(8))
#: Mixed ranks: (task, rank) LoRAs besides the rank-8 ones.
MIXED = [("rev", 4), ("rot", 16)]
#: Gated task LoRAs (`lora.train_lora`): replayed prompts per other task, replay rows per batch, LoRA-output penalty.
GATING = {"replay_per_task": 500, "replay_batch": 32, "gate": 10.0}
#: The gated suite's base: hidden size, layers, pretraining steps.
GATED_BASE = {"hidden": 128, "layers": 2, "steps": 800}


def adapter_specs() -> Dict[str, Tuple[str, int, int]]:
    """name → (task, seed, rank) of every LoRA of the suite: `task/<t>`, `soup/<t>-<seed>`, `rank/<t>-r<r>` (a
    name may share its LoRA with another: `soup/<t>-0` is `task/<t>`)."""
    specs = {f"task/{t}": (t, 0, 8) for t in TASK_NAMES}
    specs.update({f"soup/{t}-{s}": (t, s, 8) for t in SOUP_TASKS
                  for s in sorted(set(SOUP_SEEDS) | set(LARGE_SOUP_SEEDS))})
    specs.update({f"rank/{t}-r{r}": (t, 0, r) for t, r in MIXED})
    return specs


def build(root: str, log=print, base_steps: int = 800, lora_steps: int = 400, gated: bool = True,
          jobs: int = 1, only: Optional[Set[str]] = None, disjoint: bool = True) -> Dict[str, str]:
    """Builds (or reuses) everything under `root`; returns name → directory: `base`, `task/<t>`,
    `soup/<t>-<seed>`, `rank/<t>-r<r>`. `jobs` LoRAs train at once (separate processes);
    `only`: just these names (and the base).

    `gated` (default): a base that copies after every task word and task LoRAs trained with replay of the other
    tasks' prompts (`GATING`), so each LoRA acts only on its task and merges of task LoRAs can keep every task.
    `disjoint` (default, gated only): every task writes its digits with tokens of its own (`tasks.symbols`); with
    the shared digits 0-9 (`disjoint=False`, the first gated suite) three gated LoRAs summed exactly lose their tasks.
    `gated=False`: the first suite (base pretrained on `cpy` only, LoRAs on their task only), whose task LoRAs
    rewrite the base for every prompt."""
    from . import lora, model

    paths: Dict[str, str] = {}
    start = time.time()
    if gated:
        shape = GATED_BASE
        tag = f"h{shape['hidden']}l{shape['layers']}" + ("-disjoint" if disjoint else "")
        paths["base"] = model.pretrain_base(os.path.join(root, f"base-copy-all-{tag}"), steps=shape["steps"],
                                            hidden=shape["hidden"], layers=shape["layers"], copy_every_task=True,
                                            disjoint=disjoint)
        lora_name = f"lora-gated-{tag}"
    else:
        lora_name = "lora"
        paths["base"] = model.pretrain_base(os.path.join(root, "base"), steps=base_steps)
    log(f"tasksuite: base ready ({time.time() - start:.0f} s)")
    options = dict(GATING) if gated else {}
    if gated:  # the replay answers, once, before any LoRA process needs them
        from . import replay

        replay.base_answers(paths["base"], TASK_NAMES + [tasks.PRETRAIN_TASK], GATING["replay_per_task"])
    wanted = adapter_specs()
    if only is not None:
        wanted = {name: spec for name, spec in wanted.items() if name in only}
    calls = {name: dict(base_dir=paths["base"], task=t, out_dir=os.path.join(root, lora_name, f"{t}-r{r}-s{s}"),
                        seed=s, rank=r, steps=lora_steps, **options) for name, (t, s, r) in wanted.items()}
    if jobs > 1:  # independent trainings, one torch thread each: the same bytes as one after the other
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=setup_torch) as pool:
            futures = {name: pool.submit(lora.train_lora, **call) for name, call in calls.items()}
            for name, future in futures.items():
                paths[name] = future.result()
                log(f"tasksuite: LoRA {name} ready ({time.time() - start:.0f} s)")
    else:
        for name, call in calls.items():
            paths[name] = lora.train_lora(**call)
            log(f"tasksuite: LoRA {name} ready ({time.time() - start:.0f} s)")
    return paths

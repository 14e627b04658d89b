"""The base model's own answers to every task's prompts: the replay set that keeps a task LoRA gated by its task.

A task LoRA trained only on its task rewrites the base for every prompt, so a sum of task LoRAs solves none of
them. Training it also on the *other* tasks' prompts with the base's own greedy answers as targets (replay) teaches
it to change behaviour only after its task token: the regime where merging task LoRAs is meaningful (LoRA-LEGO's
multi-task merges). The answers are computed once per base and cached next to it.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence, Tuple

from . import tasks

Example = Tuple[str, str]

#: The split name of replay prompts (a stream of its own, apart from train/val/test).
SPLIT = "replay"


def base_answers(base_dir: str, task_names: Sequence[str], count: int, seed: int = 0,
                 split: str = SPLIT) -> Dict[str, List[Example]]:
    """task → `count` (prompt, the base's greedy completion) pairs for prompts of `split`; cached under `base_dir`."""
    names = sorted(set(task_names))
    key = f"{split}-{seed}-{count}-" + "-".join(names)
    cache = os.path.join(base_dir, f"answers-{key}.json")
    settings = json.load(open(os.path.join(base_dir, "tasksuite.json")))
    if os.path.exists(cache):
        stored = json.load(open(cache))
        if stored.get("base") == settings:
            return {t: [tuple(p) for p in stored["pairs"][t]] for t in names}
    from . import evaluation, model

    net, tokenizer = model.load_base(base_dir)
    disjoint = bool(settings.get("disjoint", False))
    prompts = {t: [p for p, _ in tasks.examples(t, count, seed, split=split, disjoint=disjoint)] for t in names}
    flat = [p for t in names for p in prompts[t]]
    answers = evaluation.greedy_all(net, tokenizer, flat, max_new_tokens=tasks.MAX_LENGTH + 2)
    pairs, i = {}, 0
    for t in names:
        pairs[t] = list(zip(prompts[t], answers[i: i + count]))
        i += count
    tmp = f"{cache}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump({"base": settings, "pairs": pairs}, f)
    os.replace(tmp, cache)
    return pairs


def replay_pairs(base_dir: str, task: str, count_per_task: int, seed: int = 0) -> List[Example]:
    """The base's answers on every other task's prompts and on the pretraining task's (not `task`'s own)."""
    every = list(tasks.TASKS) + [tasks.PRETRAIN_TASK]
    answers = base_answers(base_dir, every, count_per_task, seed)  # one cache for every task's LoRA
    return [pair for t in sorted(every) if t != task for pair in answers[t]]

"""Synthetic sequence tasks over digit strings: (prompt, completion) pairs in plain text.

A prompt is `<task> d d d … =` and the completion the task's answer, digits separated by spaces, e.g.
`rev 3 1 4 =` → `4 1 3`. With `disjoint=True` each task writes its digits with tokens of its own (`rev rev3 rev1
rev4 =` → `rev4 rev1 rev3`): tasks whose inputs and answers share no token, so a task LoRA can tell its own
sequences from every other task's at every position (the suite's gated regime where three and more LoRAs coexist). Half the tasks move tokens (attention has to change), half map each token (the MLP has
to change), so merges of several task LoRAs interfere in both kinds of modules. Pure Python, no torch.
"""
from __future__ import annotations

import random
from typing import Callable, Dict, List, Sequence, Tuple

Example = Tuple[str, str]

DIGITS = [str(d) for d in range(10)]


def _reverse(xs: Sequence[int]) -> List[int]:
    return list(reversed(xs))


def _rotate(xs: Sequence[int]) -> List[int]:
    return list(xs[1:]) + list(xs[:1])


def _swap_pairs(xs: Sequence[int]) -> List[int]:
    out = list(xs)
    for i in range(0, len(out) - 1, 2):
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


#: name → (description, function on a list of digits). Keep names one token each (they are vocabulary words).
TASKS: Dict[str, Tuple[str, Callable[[Sequence[int]], List[int]]]] = {
    "rev": ("reverse the digits", _reverse),
    "inc": ("add 1 to each digit, mod 10", lambda xs: [(x + 1) % 10 for x in xs]),
    "rot": ("rotate left by one", _rotate),
    "neg": ("replace each digit d by 9 - d", lambda xs: [9 - x for x in xs]),
    "swp": ("swap adjacent pairs", _swap_pairs),
    "dbl": ("double each digit, mod 10", lambda xs: [(2 * x) % 10 for x in xs]),
}

#: The task the base model is pretrained on (not one of TASKS: the base can copy, not solve the tasks).
PRETRAIN_TASK = "cpy"

MIN_LENGTH, MAX_LENGTH = 3, 6


def symbols(task: str, disjoint: bool = False) -> List[str]:
    """The ten digit tokens of `task`: `0`…`9`, or with `disjoint` (tasks of TASKS only) `rev0`…`rev9`."""
    return [f"{task}{d}" for d in DIGITS] if disjoint and task in TASKS else DIGITS


def vocabulary(disjoint: bool = False) -> List[str]:
    """Every word a prompt or completion uses (special tokens are added by the tokenizer builder)."""
    words = DIGITS + ["="] + [PRETRAIN_TASK] + list(TASKS)
    return words + [w for t in TASKS for w in symbols(t, True)] if disjoint else words


def answer(task: str, digits: Sequence[int]) -> List[int]:
    if task == PRETRAIN_TASK:
        return list(digits)
    return TASKS[task][1](digits)


def example(task: str, digits: Sequence[int], disjoint: bool = False) -> Example:
    words = symbols(task, disjoint)
    prompt = " ".join([task] + [words[d] for d in digits] + ["="])
    return prompt, " ".join(words[d] for d in answer(task, digits))


def copy_examples(word: str, count: int, seed: int, disjoint: bool = False) -> List[Example]:
    """Prompts of task `word` answered by the pretraining task (copy the digits): a base pretrained on these copies
    whatever the task word, a clean default behaviour for task LoRAs to keep on the other tasks' prompts."""
    return [(prompt, " ".join(prompt.split()[1:-1]))
            for prompt, _ in examples(word, count, seed, split="copy", disjoint=disjoint)]


def examples(task: str, count: int, seed: int, split: str = "train", disjoint: bool = False) -> List[Example]:
    """`count` examples of `task`, deterministic in (task, seed, split); train and test draw different streams.
    `disjoint` only changes how the digits are written (the task's own tokens), not which are drawn."""
    rng = random.Random(f"{task}/{seed}/{split}")
    out = []
    for _ in range(count):
        length = rng.randint(MIN_LENGTH, MAX_LENGTH)
        out.append(example(task, [rng.randrange(10) for _ in range(length)], disjoint))
    return out

"""Synthetic sequence tasks over digit strings: (prompt, completion) pairs in plain text.

A prompt is `<task> d d d … =` and the completion the task's answer, digits separated by spaces, e.g.
`rev 3 1 4 =` → `4 1 3`. Half the tasks move tokens (attention has to change), half map each token (the MLP has
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


def vocabulary() -> List[str]:
    """Every word a prompt or completion uses (special tokens are added by the tokenizer builder)."""
    return DIGITS + ["="] + [PRETRAIN_TASK] + list(TASKS)


def answer(task: str, digits: Sequence[int]) -> List[int]:
    if task == PRETRAIN_TASK:
        return list(digits)
    return TASKS[task][1](digits)


def example(task: str, digits: Sequence[int]) -> Example:
    prompt = " ".join([task] + [str(d) for d in digits] + ["="])
    return prompt, " ".join(str(d) for d in answer(task, digits))


def copy_examples(word: str, count: int, seed: int) -> List[Example]:
    """Prompts of task `word` answered by the pretraining task (copy the digits): a base pretrained on these copies
    whatever the task word, a clean default behaviour for task LoRAs to keep on the other tasks' prompts."""
    return [(prompt, " ".join(prompt.split()[1:-1])) for prompt, _ in examples(word, count, seed, split="copy")]


def examples(task: str, count: int, seed: int, split: str = "train") -> List[Example]:
    """`count` examples of `task`, deterministic in (task, seed, split); train and test draw different streams."""
    rng = random.Random(f"{task}/{seed}/{split}")
    out = []
    for _ in range(count):
        length = rng.randint(MIN_LENGTH, MAX_LENGTH)
        out.append(example(task, [rng.randrange(10) for _ in range(length)]))
    return out

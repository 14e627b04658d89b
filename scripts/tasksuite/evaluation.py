"""Accuracy by greedy decoding: exact match of the decoded completion (the evaluator's rule)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch

from . import tasks


@torch.no_grad()
def greedy(model, tokenizer, prompts: Sequence[str], max_new_tokens: int) -> List[str]:
    """Greedy continuations of `prompts` (left-padded batch, KV cache), cut at eos."""
    encoded = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(encoded):
        ids[i, width - len(e):] = torch.tensor(e)
        mask[i, width - len(e):] = 1
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    texts = []
    for row in out[:, width:].tolist():
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id)]
        texts.append(tokenizer.decode(row, skip_special_tokens=True))
    return texts


def greedy_all(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, chunk: int = 512) -> List[str]:
    """`greedy` over many prompts in fixed chunks (the same chunks, hence the same numbers, on every run)."""
    out: List[str] = []
    for start in range(0, len(prompts), chunk):
        out += greedy(model, tokenizer, prompts[start: start + chunk], max_new_tokens)
    return out


def correctness(model, tokenizer, sets: Dict[str, Sequence[Tuple[str, str]]]) -> Dict[str, List[bool]]:
    """Exact match of every example of every named set of (prompt, reference) pairs, decoded together (one batch
    per chunk: much faster than one generate call per set for a tiny model)."""
    names = list(sets)
    flat = [pair for name in names for pair in sets[name]]
    predictions = greedy_all(model, tokenizer, [p for p, _ in flat], max_new_tokens=tasks.MAX_LENGTH + 2)
    out, i = {}, 0
    for name in names:
        n = len(sets[name])
        out[name] = [pred.strip() == ref.strip() for pred, (_, ref) in zip(predictions[i: i + n], sets[name])]
        i += n
    return out


def accuracies(model, tokenizer, sets: Dict[str, Sequence[Tuple[str, str]]]) -> Dict[str, float]:
    """Exact-match accuracy of every named set (`correctness` averaged)."""
    return {name: sum(hits) / len(hits) for name, hits in correctness(model, tokenizer, sets).items()}


def accuracy(model, tokenizer, pairs: Sequence[Tuple[str, str]]) -> float:
    predictions = greedy(model, tokenizer, [p for p, _ in pairs], max_new_tokens=tasks.MAX_LENGTH + 2)
    return sum(pred.strip() == ref.strip() for pred, (_, ref) in zip(predictions, pairs)) / len(pairs)


def task_accuracies(model, tokenizer, task_names: Sequence[str], count: int = 100, seed: int = 0,
                    disjoint: bool = False) -> Dict[str, float]:
    """Accuracy per task on `count` held-out test examples each (`disjoint`: the tasks' own digit tokens)."""
    return {t: accuracy(model, tokenizer, tasks.examples(t, count, seed, split="test", disjoint=disjoint))
            for t in task_names}


def set_lora_scale(peft_model, adapter: str, factor: float) -> None:
    """Multiplies the scaling of `adapter` in every LoRA layer by `factor` (the job key `scale`, applied in place)."""
    for module in peft_model.modules():
        scaling = getattr(module, "scaling", None)
        if isinstance(scaling, dict) and adapter in scaling:
            if not hasattr(module, "_tasksuite_base_scaling"):
                module._tasksuite_base_scaling = {}
            base = module._tasksuite_base_scaling.setdefault(adapter, scaling[adapter])
            scaling[adapter] = base * factor

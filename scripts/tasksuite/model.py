"""The tiny Llama base: a WordLevel tokenizer and a 2-layer LlamaForCausalLM pretrained on the copy task.

Token rule (the evaluator's): ids = tok(prompt) ++ tok(completion) ++ [eos]; the loss is on the completion and eos.
"""
from __future__ import annotations

import json
import os
from typing import List, Optional, Sequence, Tuple

import torch

from . import tasks
from .cache import publish_directory

SPECIAL = ["<pad>", "<eos>", "<unk>"]


def build_tokenizer(disjoint: bool = False):
    """A PreTrainedTokenizerFast over the suite's words (whitespace-split WordLevel); `disjoint`: with every task's
    own digit tokens (`tasks.symbols`)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(SPECIAL + tasks.vocabulary(disjoint))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def config(vocab_size: int, hidden: int = 64, layers: int = 2):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                       max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
                       pad_token_id=0, eos_token_id=1, bos_token_id=1)


def encode(tokenizer, pairs: Sequence[Tuple[str, str]]):
    """Right-padded input ids, attention mask and labels (-100 outside the completion + eos)."""
    rows, labels = [], []
    for prompt, completion in pairs:
        p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(p + c)
        labels.append([-100] * len(p) + c)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    target = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (r, l) in enumerate(zip(rows, labels)):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        target[i, : len(l)] = torch.tensor(l)
    return ids, mask, target


def train(model, tokenizer, pairs: List[Tuple[str, str]], steps: int, lr: float, batch: int, seed: int,
          replay: Optional[List[Tuple[str, str]]] = None, replay_batch: int = 0, penalty=None) -> float:
    """AdamW on the completion loss over fixed random batches of `pairs`; returns the last loss.

    With `replay`, each step adds `replay_batch` random pairs of it to the batch (rows `batch:` of the forward), and
    `penalty(rows, mask)`, if given, is added to the loss after the forward (e.g. a LoRA-output norm on those rows).
    """
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 20) * max(0.05, 1 - s / steps))
    model.train()
    loss_value = float("nan")
    for _ in range(steps):
        index = torch.randint(len(pairs), (batch,), generator=generator).tolist()
        rows = [pairs[i] for i in index]
        if replay:
            rows += [replay[i] for i in torch.randint(len(replay), (replay_batch,), generator=generator).tolist()]
        ids, mask, labels = encode(tokenizer, rows)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        if penalty is not None:
            loss = loss + penalty(slice(batch, len(rows)), mask)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        loss_value = float(loss.detach())
    model.eval()
    return loss_value


def pretrain_base(out_dir: str, seed: int = 0, steps: int = 1500, hidden: int = 64, layers: int = 2,
                  copy_every_task: bool = False, disjoint: bool = False) -> str:
    """Writes a pretrained base (config.json, model.safetensors, tokenizer files) to `out_dir`; reuses it if there.

    `copy_every_task`: pretrain on copying after every task word too (`tasks.copy_examples`), so the base copies
    whatever the prompt's task: the default behaviour a gated task LoRA keeps on the other tasks' prompts."""
    marker = os.path.join(out_dir, "tasksuite.json")
    settings = {"seed": seed, "steps": steps, "hidden": hidden, "layers": layers, "tasks": sorted(tasks.TASKS)}
    if copy_every_task:  # key only when set: earlier bases (bench-adapt's cache) stay valid
        settings["copy_every_task"] = True
    if disjoint:
        settings["disjoint"] = True
    if os.path.exists(marker) and json.load(open(marker)) == settings:
        return out_dir
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(disjoint)
    model = LlamaForCausalLM(config(len(tokenizer), hidden, layers))
    pairs = tasks.examples(tasks.PRETRAIN_TASK, 4000, seed)
    if copy_every_task:
        pairs += [pair for t in tasks.TASKS for pair in tasks.copy_examples(t, 1000, seed, disjoint)]
    train(model, tokenizer, pairs, steps=steps, lr=3e-3, batch=64, seed=seed)
    def write(directory: str) -> None:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        with open(os.path.join(directory, "tasksuite.json"), "w") as f:
            json.dump(settings, f)

    return publish_directory(out_dir, write)


def is_disjoint(base_dir: str) -> bool:
    """Whether the base at `base_dir` was built for tasks with their own digit tokens (its tasksuite.json)."""
    return bool(json.load(open(os.path.join(base_dir, "tasksuite.json"))).get("disjoint", False))


def load_base(base_dir: str):
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(base_dir)
    model = LlamaForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
    model.eval()
    return model, tokenizer

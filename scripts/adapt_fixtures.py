"""Test fixtures for `brickyard adapt` / `brickyard eval`, built in code (no downloads).

Run with the evaluator's venv: ~/.cache/brickyard/venv/bin/python scripts/adapt_fixtures.py planted --out DIR

`planted` writes:
  DIR/base/                   a tiny random Llama (float32) with a WordLevel tokenizer (evaluator/tests/tiny.py)
  DIR/pool/p0 .. p{N-1}       random PEFT LoRAs of it (rank 4, q_proj + v_proj)
  DIR/data.jsonl              prompts of random words; completions = greedy decoding of the TEACHER:
                              base + Σ_i λ*_i · s_i · B_i A_i over the teacher adapters (special tokens suppressed)
  DIR/validation.jsonl        more examples of the same kind, held out
  DIR/foreign                 a LoRA of another tiny Llama (hidden 48): does not fit DIR/base
  DIR/teacher.json            {"adapters": [pool indices], "lambda": [λ*_i]}
The tiny model and LoRA builders are shared with the evaluator's pytest fixtures (evaluator/tests/tiny.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "evaluator" / "tests"))

import torch  # noqa: E402

torch.set_num_threads(1)

from tiny import build_tiny_llama, random_lora  # noqa: E402


def teacher_model(base_dir: Path, adapters: list[Path], lambdas: list[float]):
    """The base with ΔW = Σ λ_i s_i B_i A_i added densely to every adapted layer."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, dtype=torch.float32)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for directory, weight in zip(adapters, lambdas):
            config = json.loads((directory / "adapter_config.json").read_text())
            scaling = config["lora_alpha"] / config["r"]
            tensors = load_file(directory / "adapter_model.safetensors")
            for key, a in tensors.items():
                if ".lora_A." not in key:
                    continue
                b = tensors[key.replace(".lora_A.", ".lora_B.")]
                name = key.split(".lora_A.")[0].removeprefix("base_model.model.")
                modules[name].weight += weight * scaling * (b @ a)
    model.eval()
    return model


def greedy(model, tokenizer, prompt: str, new_tokens: int) -> str:
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        for _ in range(new_tokens):
            logits = model(ids).logits[0, -1].clone()
            logits[[i for i in tokenizer.all_special_ids]] = -1e9
            ids = torch.cat([ids, logits.argmax().view(1, 1)], dim=1)
    return tokenizer.decode(ids[0, -new_tokens:], skip_special_tokens=True)


def planted(args) -> None:
    from transformers import AutoTokenizer

    out = Path(args.out)
    base = build_tiny_llama(out / "base", seed=args.seed)
    pool = [random_lora(base, out / "pool" / f"p{i}", seed=100 + args.seed * 1000 + i, rank=4, alpha=8,
                        targets=("q_proj", "v_proj")) for i in range(args.pool)]
    teacher = [int(x) for x in args.teacher.split(",")]
    lambdas = [float(x) for x in args.lambdas.split(",")]
    assert len(teacher) == len(lambdas)
    model = teacher_model(base, [pool[i] for i in teacher], lambdas)
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    rng = random.Random(args.seed)
    words = 100
    lines = []
    for _ in range(args.examples + args.validation):
        prompt = " ".join(f"w{rng.randrange(words)}" for _ in range(rng.randint(3, 6)))
        completion = greedy(model, tokenizer, prompt, args.completion_tokens)
        lines.append(json.dumps({"prompt": prompt, "completion": completion}) + "\n")
    (out / "data.jsonl").write_text("".join(lines[:args.examples]))
    (out / "validation.jsonl").write_text("".join(lines[args.examples:]))
    # An adapter of another model (hidden size 48): its modules do not fit the base.
    other = out / "other-base"
    config = {"vocab_size": 128, "hidden_size": 48, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
              "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "tie_word_embeddings": False}
    other.mkdir(parents=True, exist_ok=True)
    (other / "config-in.json").write_text(json.dumps(config))
    build_tiny_llama(other, seed=9, config_json=other / "config-in.json")
    random_lora(other, out / "foreign", seed=9, rank=4, alpha=8, targets=("q_proj", "v_proj"))
    (out / "teacher.json").write_text(json.dumps({"adapters": teacher, "lambda": lambdas}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("planted", help="tiny base, a pool of random LoRAs, data from a known mixture")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", type=int, default=4)
    p.add_argument("--teacher", default="0,1,2,3", help="pool indices the teacher mixes")
    p.add_argument("--lambdas", default="0.9,0.6,0.8,0.5", help="the teacher's λ*, one per teacher adapter")
    p.add_argument("--examples", type=int, default=48)
    p.add_argument("--validation", type=int, default=16)
    p.add_argument("--completion-tokens", type=int, default=4)
    args = parser.parse_args()
    if args.command == "planted":
        planted(args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PEFT peer for scripts/bench-peers: load a base model with Llama-3-8B layer shapes, load N adapters, merge them
with PEFT's own add_weighted_adapter, save the merged adapter. End to end, one thread, like a user would.

Usage: peft_merge.py --method cat|svd|ties --rank K --out DIR ADAPTER_DIR...
The base is built in code (no hub): hidden 4096, intermediate 14336, 32 heads / 8 KV heads, as many layers as the
adapters need (read from their safetensors keys), vocabulary 256, bfloat16 (LoRA weights stay float32).
"""
import argparse
import os
import re
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402

torch.set_num_threads(1)


def layers_needed(adapter: str) -> int:
    with safe_open(os.path.join(adapter, "adapter_model.safetensors"), "pt") as handle:
        found = [int(m.group(1)) for key in handle.keys() if (m := re.search(r"layers\.(\d+)\.", key))]
    return max(found) + 1 if found else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", required=True, choices=["cat", "svd", "ties"])
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--density", type=float, default=0.5)
    parser.add_argument("--out", required=True)
    parser.add_argument("adapters", nargs="+")
    args = parser.parse_args()

    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import PeftModel

    config = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
                         num_hidden_layers=layers_needed(args.adapters[0]), vocab_size=256, tie_word_embeddings=True)
    with torch.device("cpu"):
        base = LlamaForCausalLM(config).to(torch.bfloat16)
    names = [f"a{i}" for i in range(len(args.adapters))]
    model = PeftModel.from_pretrained(base, args.adapters[0], adapter_name=names[0])
    for name, path in zip(names[1:], args.adapters[1:]):
        model.load_adapter(path, adapter_name=name)
    weights = [1.0 / len(names)] * len(names)
    options = {}
    if args.method == "svd":
        options = dict(combination_type="svd", svd_rank=args.rank)
    elif args.method == "ties":
        options = dict(combination_type="ties_svd", svd_rank=args.rank, density=args.density, majority_sign_method="total")
    else:
        options = dict(combination_type="cat")
    model.add_weighted_adapter(adapters=names, weights=weights, adapter_name="merged", **options)
    model.save_pretrained(args.out, selected_adapters=["merged"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Plain dense svd merge in numpy, the reference route of issue 9 for scripts/bench-peers: per module
T = B_c·A_c (coefficients folded into B_c), the Gram of T on its small side, its top-k eigenpairs (numpy.linalg.eigh),
the other side by one product, balanced factors saved as a PEFT adapter. One thread.

Usage: numpy_svd.py --rank 16 --out DIR ADAPTER_DIR...
"""
import argparse
import json
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kmeans_pipeline import load  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--out", required=True)
    parser.add_argument("adapters", nargs="+")
    args = parser.parse_args()
    loaded = [load(path) for path in args.adapters]
    weight = 1.0 / len(loaded)
    modules = sorted({key.rsplit(".lora_", 1)[0] for key in loaded[0][0]})
    merged = {}
    for module in modules:
        bc = np.hstack([tensors[module + ".lora_B.weight"] * np.float32(weight * scaling) for tensors, scaling in loaded])
        ac = np.vstack([tensors[module + ".lora_A.weight"] for tensors, _ in loaded])
        t = bc @ ac
        k = args.rank
        if t.shape[0] <= t.shape[1]:
            values, vectors = np.linalg.eigh(t @ t.T)
            u = vectors[:, ::-1][:, :k]
            w = t.T @ u
            sigma = np.linalg.norm(w, axis=0)
            v = w / np.where(sigma > 0, sigma, 1)
        else:
            values, vectors = np.linalg.eigh(t.T @ t)
            v = vectors[:, ::-1][:, :k]
            w = t @ v
            sigma = np.linalg.norm(w, axis=0)
            u = w / np.where(sigma > 0, sigma, 1)
        root = np.sqrt(sigma).astype(np.float32)
        merged[module + ".lora_B.weight"] = np.ascontiguousarray(u * root, dtype=np.float32)
        merged[module + ".lora_A.weight"] = np.ascontiguousarray((v * root).T, dtype=np.float32)
    os.makedirs(args.out, exist_ok=True)
    save_file(merged, os.path.join(args.out, "adapter_model.safetensors"))
    config = json.load(open(os.path.join(args.adapters[0], "adapter_config.json")))
    config.update(r=args.rank, lora_alpha=args.rank, rank_pattern={}, alpha_pattern={})
    json.dump(config, open(os.path.join(args.out, "adapter_config.json"), "w"), indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

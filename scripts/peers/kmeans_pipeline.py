#!/usr/bin/env python3
"""The plain Python LoRA-LEGO pipeline a user would write, as a peer for scripts/bench-peers:
safetensors load → rank-one units (balanced gauge, as Brickyard's) → k-means (faiss or scikit-learn, k clusters,
fixed iterations, one restart, one thread) → dual reweighting (cluster size × mean member norm² / ‖μ‖²) → save a
PEFT adapter (safetensors + adapter_config.json with r = lora_alpha = k). Plain Euclidean k-means: the peers have no
sign-invariant distance, which is what a user would get off the shelf.

Usage: kmeans_pipeline.py --engine faiss|sklearn --k 16 --iterations 20 --out DIR ADAPTER_DIR...
"""
import argparse
import json
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402


def load(path):
    """numpy has no bfloat16: read raw safetensors bytes and widen bf16 to float32 by a shift."""
    import struct
    with open(os.path.join(path, "adapter_model.safetensors"), "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
        data = handle.read()
    header.pop("__metadata__", None)
    tensors = {}
    for key, info in header.items():
        start, end = info["data_offsets"]
        raw = data[start:end]
        if info["dtype"] == "BF16":
            values = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            values = np.frombuffer(raw, dtype=np.float32)
        tensors[key] = values.reshape(info["shape"])
    config = json.load(open(os.path.join(path, "adapter_config.json")))
    return tensors, config["lora_alpha"] / config["r"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["faiss", "sklearn"], required=True)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--out", required=True)
    parser.add_argument("adapters", nargs="+")
    args = parser.parse_args()
    if args.engine == "faiss":
        import faiss
        faiss.omp_set_num_threads(1)
    else:
        from sklearn.cluster import KMeans

    loaded = [load(path) for path in args.adapters]
    weight = 1.0 / len(loaded)
    modules = sorted({key.rsplit(".lora_", 1)[0] for key in loaded[0][0]})
    merged = {}
    for module in modules:
        units = []
        out_features = in_features = 0
        for tensors, scaling in loaded:
            a, b = tensors[module + ".lora_A.weight"], tensors[module + ".lora_B.weight"]
            out_features, in_features = b.shape[0], a.shape[1]
            c = weight * scaling
            norm_b = np.linalg.norm(b, axis=0)
            norm_a = np.linalg.norm(a, axis=1)
            root = np.sqrt(np.abs(c) * norm_b * norm_a)
            keep = (norm_b > 0) & (norm_a > 0)
            xb = (np.sign(c) * b / np.where(norm_b > 0, norm_b, 1) * root).T
            xa = a / np.where(norm_a > 0, norm_a, 1)[:, None] * root[:, None]
            units.append(np.hstack([xb, xa])[keep])
        x = np.ascontiguousarray(np.vstack(units), dtype=np.float32)
        k = min(args.k, len(x))
        if args.engine == "faiss":
            kmeans = faiss.Kmeans(x.shape[1], k, niter=args.iterations, nredo=1, seed=1234, verbose=False,
                                  max_points_per_centroid=max(256, len(x)))
            kmeans.train(x)
            centroids = kmeans.centroids
            _, labels = kmeans.index.search(x, 1)
            labels = labels[:, 0]
        else:
            kmeans = KMeans(n_clusters=k, n_init=1, max_iter=args.iterations, tol=0.0, random_state=0).fit(x)
            centroids, labels = kmeans.cluster_centers_.astype(np.float32), kmeans.labels_
        norms = np.linalg.norm(x, axis=1)
        b_out = np.zeros((out_features, k), dtype=np.float32)
        a_out = np.zeros((k, in_features), dtype=np.float32)
        for t in range(k):
            members = labels == t
            mu = centroids[t]
            mu_norm = np.linalg.norm(mu)
            beta = members.sum() * norms[members].mean() ** 2 / mu_norm ** 2 if members.any() and mu_norm > 0 else 0.0
            root = np.sqrt(abs(beta))
            b_out[:, t] = np.sign(beta) * root * mu[:out_features]
            a_out[t] = root * mu[out_features:]
        merged[module + ".lora_A.weight"] = a_out
        merged[module + ".lora_B.weight"] = b_out
    os.makedirs(args.out, exist_ok=True)
    save_file(merged, os.path.join(args.out, "adapter_model.safetensors"))
    config = json.load(open(os.path.join(args.adapters[0], "adapter_config.json")))
    config.update(r=args.k, lora_alpha=args.k, rank_pattern={}, alpha_pattern={})
    json.dump(config, open(os.path.join(args.out, "adapter_config.json"), "w"), indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

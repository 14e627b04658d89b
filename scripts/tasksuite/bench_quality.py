"""Task-accuracy benchmark of every merge method (scripts/bench-quality; results in bench/results/quality.md).

Merges task LoRAs of the suite with the release `brickyard merge` (every method at the same output rank) and with
PEFT's `add_weighted_adapter` (reference rows), then measures greedy exact-match accuracy per task at each global
strength `scale` in SCALES. The best scale is chosen on a validation split and reported on the test split.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tasksuite import suite, tasks  # noqa: E402

SCALES = [0.5, 1.0, 1.5, 2.0, 3.0]
RANK = 8

#: (label, brickyard method, parameters) rows; the first lego row uses the defaults.
BRICKYARD_ROWS: List[Tuple[str, str, Dict[str, str]]] = [
    ("lego (default)", "lego", {}),
    ("lego reweight=optimal", "lego", {"reweight": "optimal"}),
    ("lego basis=raw", "lego", {"basis": "raw"}),
    ("lego basis=svd", "lego", {"basis": "svd"}),
    ("lego basis=auto", "lego", {"basis": "auto"}),
    ("lego reweight=optimal basis=auto", "lego", {"reweight": "optimal", "basis": "auto"}),
    ("lego reweight=optimal basis=raw", "lego", {"reweight": "optimal", "basis": "raw"}),
    ("lego reweight=sum basis=raw (old default)", "lego", {"reweight": "sum", "basis": "raw"}),
    ("svd", "svd", {}),
    ("cat (exact, rank Σr)", "cat", {}),
    ("linear", "linear", {}),
    ("ties", "ties", {}),
    ("dare_ties", "dare_ties", {}),
    ("dare_linear", "dare_linear", {}),
    ("magnitude_prune", "magnitude_prune", {}),
]

#: PEFT add_weighted_adapter combination types used as reference rows.
PEFT_ROWS = ["cat", "svd", "linear", "ties", "dare_linear", "magnitude_prune"]


def merges(paths: Dict[str, str]) -> List[Tuple[str, List[str], List[str], bool]]:
    """(label, adapter dirs, evaluated tasks, normalize)."""
    def task_dirs(names):
        return [paths[f"task/{t}"] for t in names]

    two, three, six = ["rev", "inc"], ["rev", "inc", "rot"], suite.TASK_NAMES
    soup = [paths[f"soup/{s}"] for s in suite.SOUP_SEEDS]
    mixed = [paths["rank/rev-r4"], paths["task/inc"], paths["rank/rot-r16"]]
    rows = []
    for names in (two, three, six):
        rows.append((f"{len(names)} tasks, w=1/N", task_dirs(names), names, True))
        rows.append((f"{len(names)} tasks, w=1", task_dirs(names), names, False))
    rows.append((f"same-task soup of {len(soup)} ({suite.SOUP_TASK}), w=1/N", soup, [suite.SOUP_TASK], True))
    rows.append(("mixed ranks 4/8/16 (rev, inc, rot), w=1/N", mixed, three, True))
    return rows


def merges_labels():
    """The merge labels in table order (without building anything)."""
    fake = {f"task/{t}": t for t in suite.TASK_NAMES}
    fake.update({f"soup/{s}": str(s) for s in suite.SOUP_SEEDS})
    fake.update({f"rank/{t}-r{r}": t for t, r in suite.MIXED})
    return merges(fake)


def brickyard_merge(binary: str, work: str, method: str, params: Dict[str, str], adapters: List[str],
                    normalize: bool) -> Tuple[str, dict]:
    os.makedirs(work, exist_ok=True)
    job = os.path.join(work, "job.yaml")
    with open(job, "w") as f:
        f.write(f"method: {method}\nrank: {RANK}\nnormalize: {'true' if normalize else 'false'}\nseed: 0\n")
        if params:
            f.write("parameters:\n" + "".join(f"  {k}: {v}\n" for k, v in params.items()))
        f.write("adapters:\n" + "".join(f"  - path: {a}\n" for a in adapters))
    out = os.path.join(work, "out")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    subprocess.run([binary, "merge", job, "--out", out, "--force", "--quiet", "--workers", "1"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(os.path.join(out, "merge-report.json")) as f:
        return out, json.load(f)


def quality(report: dict) -> Tuple[float, Optional[float]]:
    floors = [m["svd_floor"] for m in report["modules"] if m.get("svd_floor") is not None]
    return report["totals"]["mean_relative_error"], (sum(floors) / len(floors) if floors else None)


class Evaluator:
    """Base model loaded once; accuracies of an adapter directory or a PEFT merge at every scale."""

    def __init__(self, base_dir: str, count: int, validation: int):
        from tasksuite import model

        self.base_dir = base_dir
        self.count, self.validation = count, validation
        self.model_module = model
        _, self.tokenizer = model.load_base(base_dir)

    def fresh_base(self):
        return self.model_module.load_base(self.base_dir)[0]

    def sweep(self, peft_model, adapter: str, names: List[str]) -> Dict[float, Dict[str, Dict[str, float]]]:
        """scale → {"val": {task: acc}, "test": {task: acc}}."""
        from tasksuite import evaluation

        results = {}
        for s in SCALES:
            evaluation.set_lora_scale(peft_model, adapter, s)
            results[s] = {
                "val": {t: evaluation.accuracy(peft_model, self.tokenizer,
                                               tasks.examples(t, self.validation, seed=1, split="val")) for t in names},
                "test": {t: evaluation.accuracy(peft_model, self.tokenizer,
                                                tasks.examples(t, self.count, seed=0, split="test")) for t in names},
            }
        evaluation.set_lora_scale(peft_model, adapter, 1.0)
        return results

    def adapter_sweep(self, adapter_dir: str, names: List[str]):
        from peft import PeftModel

        net = PeftModel.from_pretrained(self.fresh_base(), adapter_dir, adapter_name="merged")
        return self.sweep(net, "merged", names)

    def peft_sweep(self, adapters: List[str], weights: List[float], combination: str, names: List[str]):
        from peft import PeftModel

        net = PeftModel.from_pretrained(self.fresh_base(), adapters[0], adapter_name="a0")
        for i, a in enumerate(adapters[1:], start=1):
            net.load_adapter(a, adapter_name=f"a{i}")
        kwargs = {}
        if combination in ("svd", "ties", "dare_ties", "dare_linear", "magnitude_prune", "ties_svd"):
            kwargs["svd_rank"] = RANK
        if combination in ("ties", "dare_ties", "dare_linear", "magnitude_prune"):
            kwargs["density"] = 0.5
        if combination in ("ties", "dare_ties"):
            kwargs["majority_sign_method"] = "total"
        net.add_weighted_adapter([f"a{i}" for i in range(len(adapters))], weights, "merged",
                                 combination_type=combination, **kwargs)
        net.set_adapter("merged")
        return self.sweep(net, "merged", names)

    def single(self, adapter_dir: Optional[str], names: List[str]) -> Dict[str, float]:
        from tasksuite import evaluation

        net = self.fresh_base()
        if adapter_dir:
            from peft import PeftModel

            net = PeftModel.from_pretrained(net, adapter_dir)
        return {t: evaluation.accuracy(net, self.tokenizer, tasks.examples(t, self.count, seed=0, split="test"))
                for t in names}


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def summarize(sweep, names):
    """(test accuracies at scale 1, best scale by validation mean, test accuracies at that scale)."""
    at_one = sweep[1.0]["test"]
    best = max(SCALES, key=lambda s: (round(mean(sweep[s]["val"].values()), 6), -abs(s - 1)))
    return at_one, best, sweep[best]["test"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--brickyard", required=True)
    parser.add_argument("--work", required=True, help="cache of the suite and scratch for the merges")
    parser.add_argument("--out", required=True, help="markdown results file")
    parser.add_argument("--json", default=None, help="raw results as JSON")
    parser.add_argument("--count", type=int, default=100, help="test examples per task")
    parser.add_argument("--validation", type=int, default=50, help="validation examples per task (best scale)")
    parser.add_argument("--only", default=None, help="comma-separated merge labels' prefixes to run (debug)")
    parser.add_argument("--no-peft", action="store_true")
    parser.add_argument("--rows", default=None, help="comma-separated Brickyard row labels' prefixes to run")
    parser.add_argument("--combine", nargs="+", default=None,
                        help="re-render --out from earlier --json files (later files add rows) instead of running")
    args = parser.parse_args(argv)
    if args.combine:
        singles, records = {}, []
        for path in args.combine:
            with open(path) as f:
                data = json.load(f)
            singles.update(data["singles"])
            records += data["records"]
        order = [label for label, *_ in merges_labels()]
        records.sort(key=lambda r: order.index(r["merge"]) if r["merge"] in order else len(order))
        write_markdown(args.out, singles, records, sum(json.load(open(p)).get("seconds", 0) for p in args.combine))
        return 0
    suite.setup_torch()
    start = time.time()
    log = lambda m: print(f"[{time.time() - start:6.0f} s] {m}", file=sys.stderr, flush=True)  # noqa: E731
    paths = suite.build(os.path.join(args.work, "suite"), log=log)  # cached by settings
    evaluator = Evaluator(paths["base"], args.count, args.validation)

    singles = {"base model": evaluator.single(None, suite.TASK_NAMES)}
    for t in suite.TASK_NAMES:
        singles[f"LoRA {t}"] = evaluator.single(paths[f"task/{t}"], [t])
    for s in suite.SOUP_SEEDS[1:]:
        singles[f"LoRA {suite.SOUP_TASK} seed {s}"] = evaluator.single(paths[f"soup/{s}"], [suite.SOUP_TASK])
    for t, r in suite.MIXED:
        singles[f"LoRA {t} rank {r}"] = evaluator.single(paths[f"rank/{t}-r{r}"], [t])
    log("single adapters evaluated")

    records = []
    for label, adapters, names, normalize in merges(paths):
        if args.only and not any(label.startswith(p) for p in args.only.split(",")):
            continue
        weights = [1.0 / len(adapters) if normalize else 1.0] * len(adapters)
        for row, method, params in BRICKYARD_ROWS:
            if args.rows and not any(row.startswith(p) for p in args.rows.split(",")):
                continue
            work = os.path.join(args.work, "merges", f"{label}-{row}".replace(" ", "_").replace("/", "-"))
            try:
                out, report = brickyard_merge(args.brickyard, work, method, params, adapters, normalize)
            except subprocess.CalledProcessError as error:
                records.append({"merge": label, "row": row, "source": "brickyard",
                                "failed": error.stderr.decode().strip().splitlines()[-1]})
                continue
            error_value, floor = quality(report)
            sweep = evaluator.adapter_sweep(out, names)
            records.append({"merge": label, "row": row, "source": "brickyard", "tasks": names,
                            "relative_error": error_value, "svd_floor": floor, "sweep": sweep,
                            "catch_all": mean(m.get("catch_all_share", 0) for m in report["modules"])
                            if method == "lego" else None})
            shutil.rmtree(work, ignore_errors=True)
        if not args.no_peft:
            for combination in PEFT_ROWS:
                try:
                    sweep = evaluator.peft_sweep(adapters, weights, combination, names)
                except Exception as error:  # PEFT refuses e.g. linear on mixed ranks
                    records.append({"merge": label, "row": f"PEFT {combination}", "source": "peft",
                                    "failed": str(error).splitlines()[0][:120]})
                    continue
                records.append({"merge": label, "row": f"PEFT {combination}", "source": "peft", "tasks": names,
                                "sweep": sweep})
        log(f"{label}: done")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"singles": singles, "records": records, "seconds": time.time() - start}, f, indent=1, default=str)
    write_markdown(args.out, singles, records, time.time() - start)
    log(f"wrote {args.out}")
    return 0


def pct(x: float) -> str:
    return f"{100 * x:.0f}"


def write_markdown(path: str, singles, records, seconds: float) -> None:
    lines = ["# bench-quality: task accuracy of merges (scripts/bench-quality)", "",
             f"Tiny Llama (2 layers, hidden 64) pretrained on copying; one rank-8 PEFT LoRA per task "
             f"({', '.join(suite.TASK_NAMES)}); LoRAs on q,k,v,o,gate,up,down. Accuracy = greedy exact match on 100 "
             f"test examples per task, in %. Every Brickyard method at output rank {RANK} (cat: exact, rank Σr); "
             f"`scale` multiplies the merged update (applied as the LoRA scaling, identical to the job key). "
             f"Best scale from {SCALES} chosen on 50 validation examples per task, reported on the test examples. "
             f"Relative error = mean over modules of ‖B'A' − T‖/‖T‖ against the exact weighted sum (merge-report.json); "
             f"floor = the SVD floor at rank {RANK}. Total wall time {seconds / 60:.1f} min on a shared, loaded 2-core machine "
             f"(one torch thread, one BLAS thread).", "",
             "## Single adapters", "", "| adapter | " + " | ".join(suite.TASK_NAMES) + " |",
             "| --- | " + " | ".join("---" for _ in suite.TASK_NAMES) + " |"]
    for name, acc in singles.items():
        lines.append(f"| {name} | " + " | ".join(pct(acc[t]) if t in acc else "" for t in suite.TASK_NAMES) + " |")
    current = None
    for r in records:
        if r["merge"] != current:
            current = r["merge"]
            names = r.get("tasks") or next((x["tasks"] for x in records if x["merge"] == current and "tasks" in x), [])
            lines += ["", f"## {current}", "",
                      "| method | " + " | ".join(f"{t} @1" for t in names) + " | mean @1 | best scale | "
                      + " | ".join(f"{t} @best" for t in names) + " | mean @best | rel. error | floor |",
                      "| --- " * (2 * len(names) + 6) + "|"]
        if "failed" in r:
            lines.append(f"| {r['row']} | failed: {r['failed']} |")
            continue
        names = r["tasks"]
        at_one, best, at_best = summarize({float(k): v for k, v in r["sweep"].items()}, names)
        err = f"{r['relative_error']:.3f}" if r.get("relative_error") is not None else ""
        floor = f"{r['svd_floor']:.3f}" if r.get("svd_floor") is not None else ""
        lines.append(f"| {r['row']} | " + " | ".join(pct(at_one[t]) for t in names)
                     + f" | **{pct(mean(at_one.values()))}** | {best:g} | "
                     + " | ".join(pct(at_best[t]) for t in names)
                     + f" | **{pct(mean(at_best.values()))}** | {err} | {floor} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())

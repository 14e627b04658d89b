"""Task-accuracy benchmark of every merge method (scripts/bench-quality; results in bench/results/quality.md).

Merges gated task LoRAs of the suite (`suite.build`) with the release `brickyard merge` (every method at the same
output rank) and with PEFT's `add_weighted_adapter` (reference rows), then measures greedy exact-match accuracy per
task at each global strength `scale` in SCALES (plus N for weights 1/N: `scales_for`). The best scale is chosen on a validation split and reported on the
test split. Sweeps are cached by the merged adapter's bytes, so a re-run only evaluates merges that changed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tasksuite import cache, quality_report, replay, suite, tasks  # noqa: E402

SCALES = [0.5, 1.0, 1.5, 2.0, 3.0]
RANK = 8
#: `rank` of a row: the output rank RANK, or Σr (`SUM_OF_RANKS`: the sum of the merged adapters' ranks, cat's rank),
#: so lego and svd also appear at cat's output rank (issue #8: "every method at equal output rank").
SUM_OF_RANKS = "sum"
#: The merges the issue's comparison is judged on (lego ≥ svd and cat at each method's best scale): evaluated on
#: more examples (`--precise-count`, `--precise-validation`) so a difference of a few points is not sampling noise.
PRECISE_MERGES = ("2 tasks, w=1/N", "3 tasks, w=1/N")
MERGE_SEED = 0
TEST_SEED, VALIDATION_SEED = 0, 1

#: (label, brickyard method, parameters[, rank]) rows; the first lego row uses the binary's defaults, the others name
#: their options (the variants the lego default is chosen from: see bench/results/quality.md). Rank RANK unless
#: the row says SUM_OF_RANKS (cat always has rank Σr: it concatenates).
BRICKYARD_ROWS: List[Tuple] = [
    ("lego (default)", "lego", {}),
    # quality4's default is `balance: 0.5` (`balance_rounds: 4`) on modules that select units; the default before it,
    # and the balance that gives every adapter equal weight.
    ("lego balance=0 (default before quality4)", "lego", {"balance": "0"}),
    ("lego balance=1", "lego", {"balance": "1"}),
    # The default before 9b8e37d (legoq3's small_pool select + refit 1), and the one before cc9baf7 (oversample 2,
    # gated at >= 4 units per fine cluster: the same bytes as the one after it below the gate, i.e. everywhere but
    # the large soups).
    ("lego small_pool=kmeans refit=0 (default before 9b8e37d)", "lego", {"small_pool": "kmeans", "refit": "0"}),
    ("lego oversample=1 refit=0 (default before cc9baf7)", "lego",
     {"reweight": "optimal", "basis": "svd", "direction": "principal", "oversample": "1", "refit": "0"}),
    ("lego direction=mean", "lego", {"reweight": "optimal", "basis": "svd", "direction": "mean"}),
    ("lego basis=raw", "lego", {"reweight": "optimal", "basis": "raw"}),
    ("lego reweight=dual", "lego", {"reweight": "dual", "basis": "svd"}),
    ("lego reweight=sum basis=raw (first default)", "lego", {"reweight": "sum", "basis": "raw"}),
    ("svd", "svd", {}),
    ("cat (exact, rank Σr)", "cat", {}),
    ("lego (default) at rank Σr", "lego", {}, SUM_OF_RANKS),
    ("svd at rank Σr", "svd", {}, SUM_OF_RANKS),
    ("linear", "linear", {}),
    ("ties", "ties", {}),
    ("dare_ties", "dare_ties", {}),
    ("dare_linear", "dare_linear", {}),
    ("magnitude_prune", "magnitude_prune", {}),
]

#: PEFT add_weighted_adapter combination types used as reference rows (density 0.5, svd_rank = RANK). The `_svd`
#: variants prune the dense ΔW and truncate it by SVD, as Brickyard's ties/dare_*/magnitude_prune do; PEFT's plain
#: `ties`, `dare_*`, `magnitude_prune` prune the A and B factors separately (another method: not references).
PEFT_ROWS = ["cat", "svd", "linear", "ties_svd", "dare_ties_svd", "dare_linear_svd", "magnitude_prune_svd"]


def merges(paths: Dict[str, str]) -> List[Tuple[str, List[str], List[str], bool]]:
    """(label, adapter dirs, evaluated tasks, normalize)."""
    def task_dirs(names):
        return [paths[f"task/{t}"] for t in names]

    two, three, six = ["rev", "inc"], ["rev", "inc", "rot"], suite.TASK_NAMES
    mixed = [paths["rank/rev-r4"], paths["task/inc"], paths["rank/rot-r16"]]
    rows = []
    for names in (two, three, six):
        rows.append((f"{len(names)} tasks, w=1/N", task_dirs(names), names, True))
        rows.append((f"{len(names)} tasks, w=1", task_dirs(names), names, False))
    for task in suite.SOUP_TASKS:
        soup = [paths[f"soup/{task}-{s}"] for s in suite.SOUP_SEEDS]
        large = [paths[f"soup/{task}-{s}"] for s in suite.LARGE_SOUP_SEEDS]
        rows.append((f"same-task soup of {len(soup)} ({task}), w=1/N", soup, [task], True))
        rows.append((f"large same-task soup of {len(large)} ({task}, past lego's oversample gate), w=1/N", large,
                     [task], True))
    rows.append(("mixed ranks 4/8/16 (rev, inc, rot), w=1/N", mixed, three, True))
    return rows


def merges_by_name():
    """The merges with the suite's adapter names (`task/rev`, …) in place of directories (nothing built)."""
    return merges({n: n for n in suite.adapter_specs()})


def scales_for(count: int, normalize: bool) -> List[float]:
    """The scales swept for a merge of `count` adapters: SCALES, plus N for weights 1/N (scale N = weights 1)."""
    return SCALES + [float(count)] if normalize and float(count) not in SCALES else list(SCALES)


def selected(label: str, only: Optional[str]) -> bool:
    """Whether `label` starts with one of `only`'s prefixes: separated by "|" if it has one (labels hold commas:
    "2 tasks, w=1/N|3 tasks, w=1/N"), else by commas."""
    return not only or any(label.startswith(p) for p in only.split("|" if "|" in only else ","))


def brickyard_merge(binary: str, work: str, method: str, params: Dict[str, str], adapters: List[str],
                    normalize: bool, rank: int = RANK) -> Tuple[str, dict, str]:
    """Runs `brickyard merge` on a job file; returns (output dir, merge report, the job text)."""
    job = os.path.join(work, "job.yaml")
    text = f"method: {method}\nrank: {rank}\nnormalize: {'true' if normalize else 'false'}\nseed: {MERGE_SEED}\n"
    if params:
        text += "parameters:\n" + "".join(f"  {k}: {v}\n" for k, v in params.items())
    text += "adapters:\n" + "".join(f"  - path: {a}\n" for a in adapters)
    with open(job, "w") as f:
        f.write(text)
    out = os.path.join(work, "out")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    subprocess.run([binary, "merge", job, "--out", out, "--force", "--quiet", "--workers", "1"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(os.path.join(out, "merge-report.json")) as f:
        return out, json.load(f), text


def adapter_rank_sum(adapters: List[str]) -> int:
    """Σr of the adapters (their adapter_config.json `r`): cat's output rank."""
    return sum(json.load(open(os.path.join(a, "adapter_config.json")))["r"] for a in adapters)


def row_rank(row: Tuple, adapters: List[str]) -> int:
    return adapter_rank_sum(adapters) if len(row) > 3 and row[3] == SUM_OF_RANKS else RANK


def evaluation_sizes(label: str, count: int, validation: int, precise: Tuple[int, int]) -> Tuple[int, int]:
    """(test, validation) examples per task for merge `label`: `precise` on PRECISE_MERGES, else the defaults."""
    return precise if label in PRECISE_MERGES else (count, validation)


def quality(report: dict) -> Tuple[float, Optional[float]]:
    floors = [m["svd_floor"] for m in report["modules"] if m.get("svd_floor") is not None]
    return report["totals"]["mean_relative_error"], (sum(floors) / len(floors) if floors else None)


def digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def adapter_bytes(directory: str) -> bytes:
    return b"".join(open(os.path.join(directory, name), "rb").read()
                    for name in ("adapter_config.json", "adapter_model.safetensors"))


class Evaluator:
    """Base model loaded once; accuracies of an adapter directory or a PEFT merge at every scale (cached)."""

    def __init__(self, base_dir: str, count: int, validation: int, cache_dir: str):
        from tasksuite import model

        self.base_dir = base_dir
        self.count, self.validation = count, validation
        self.model_module = model
        self.cache_dir = cache_dir
        os.makedirs(cache_dir, exist_ok=True)
        _, self.tokenizer = model.load_base(base_dir)
        self.base_settings = json.load(open(os.path.join(base_dir, "tasksuite.json")))
        self.disjoint = model.is_disjoint(base_dir)
        every = suite.TASK_NAMES + [tasks.PRETRAIN_TASK]
        #: the base's own answers on every task's test prompts: "kept" = agreement with them
        self.base_test = replay.base_answers(base_dir, every, count, seed=TEST_SEED, split="test")

    def fresh_base(self):
        return self.model_module.load_base(self.base_dir)[0]

    def cache_key(self, key_parts, scales: List[float], sizes: Optional[Tuple[int, int]] = None) -> str:
        count, validation = sizes or (self.count, self.validation)
        return digest(self.base_settings, count, validation, scales, *key_parts)

    def cached(self, key_parts, compute, scales: List[float] = SCALES, sizes: Optional[Tuple[int, int]] = None):
        """The cached value of `compute()`, keyed by the settings, the (test, validation) sizes and `key_parts`:
        other sizes get entries of their own, so entries of earlier runs stay valid (the cache is never cleared)."""
        path = os.path.join(self.cache_dir, self.cache_key(key_parts, scales, sizes) + ".json")
        if os.path.exists(path):
            return json.load(open(path)), True
        value = compute()
        cache.write_json(path, value)
        return value, False

    def sweep(self, peft_model, adapter: str, names: List[str], scales: List[float],
              sizes: Optional[Tuple[int, int]] = None) -> Dict[str, Dict[str, Dict[str, float]]]:
        """str(scale) → {"val": {task: acc}} for every scale of `scales`, plus "test": {task: acc}, "kept": {"cpy":
        agreement with the base} and "test_hits": {task: "0110…" (each test example right or wrong, for paired
        intervals)} at scale 1 and at the best scale by validation (test sets are decoded only there)."""
        from tasksuite import evaluation

        count, validation_count = sizes or (self.count, self.validation)

        def run(scale: float, sets: Dict[str, list]) -> Dict[str, Dict[str, float]]:
            evaluation.set_lora_scale(peft_model, adapter, scale)
            entry: Dict[str, Dict] = {}
            for key, hits in evaluation.correctness(peft_model, self.tokenizer, sets).items():
                split, task = key.split("/")
                entry.setdefault(split, {})[task] = sum(hits) / len(hits)
                if split == "test":
                    entry.setdefault("test_hits", {})[task] = "".join("1" if h else "0" for h in hits)
            return entry

        validation = {f"val/{t}": tasks.examples(t, validation_count, seed=VALIDATION_SEED, split="val",
                                                   disjoint=self.disjoint) for t in names}
        test = {f"test/{t}": tasks.examples(t, count, seed=TEST_SEED, split="test", disjoint=self.disjoint)
                for t in names}
        test["kept/cpy"] = self.base_test[tasks.PRETRAIN_TASK]
        results = {s: run(s, validation) for s in scales}
        best = quality_report.best_scale({s: v["val"] for s, v in results.items()}, names)
        for s in sorted({1.0, best}):
            results[s].update(run(s, test))
        evaluation.set_lora_scale(peft_model, adapter, 1.0)
        return {str(s): v for s, v in results.items()}

    def adapter_sweep(self, adapter_dir: str, names: List[str], scales: List[float],
                      sizes: Optional[Tuple[int, int]] = None):
        def compute():
            from peft import PeftModel

            net = PeftModel.from_pretrained(self.fresh_base(), adapter_dir, adapter_name="merged")
            return self.sweep(net, "merged", names, scales, sizes)

        return self.cached(["adapter", digest(adapter_bytes(adapter_dir)), names], compute, scales, sizes)

    def peft_sweep(self, adapters: List[str], weights: List[float], combination: str, names: List[str],
                   scales: List[float], sizes: Optional[Tuple[int, int]] = None):
        kwargs = {}
        if combination.endswith("svd"):
            kwargs["svd_rank"] = RANK
        if combination.removesuffix("_svd") in ("ties", "dare_ties", "dare_linear", "magnitude_prune"):
            kwargs["density"] = 0.5
        if combination.removesuffix("_svd") in ("ties", "dare_ties"):
            kwargs["majority_sign_method"] = "total"

        def compute():
            import torch
            from peft import PeftModel

            torch.manual_seed(MERGE_SEED)  # dare_* draw their masks from torch's global generator
            net = PeftModel.from_pretrained(self.fresh_base(), adapters[0], adapter_name="a0")
            for i, a in enumerate(adapters[1:], start=1):
                net.load_adapter(a, adapter_name=f"a{i}")
            net.add_weighted_adapter([f"a{i}" for i in range(len(adapters))], weights, "merged",
                                     combination_type=combination, **kwargs)
            net.set_adapter("merged")
            return self.sweep(net, "merged", names, scales, sizes)

        parts = ["peft", combination, kwargs, weights, [digest(adapter_bytes(a)) for a in adapters], names]
        return self.cached(parts, compute, scales, sizes)

    def single(self, adapter_dir: Optional[str], own: List[str]) -> Dict[str, float]:
        """Accuracy on every task (`own` first), plus `kept`: agreement with the base on the other tasks' and the
        pretraining task's prompts (1 = the adapter leaves them alone)."""
        from tasksuite import evaluation

        def compute():
            net = self.fresh_base()
            if adapter_dir:
                from peft import PeftModel

                net = PeftModel.from_pretrained(net, adapter_dir)
            sets = {t: tasks.examples(t, self.count, seed=TEST_SEED, split="test", disjoint=self.disjoint)
                    for t in suite.TASK_NAMES}
            others = [t for t in suite.TASK_NAMES + [tasks.PRETRAIN_TASK] if t not in own]
            sets.update({f"kept/{t}": self.base_test[t] for t in others})
            flat = evaluation.accuracies(net, self.tokenizer, sets)
            kept = [v for k, v in flat.items() if k.startswith("kept/")]
            out = {k: v for k, v in flat.items() if not k.startswith("kept/")}
            out["kept"] = sum(kept) / len(kept)
            return out

        key = ["single", digest(adapter_bytes(adapter_dir)) if adapter_dir else "base", own]
        return self.cached(key, compute)[0]


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--brickyard", required=True)
    parser.add_argument("--work", required=True, help="cache of the suite, the sweeps and scratch for the merges")
    parser.add_argument("--out", required=True, help="markdown results file")
    parser.add_argument("--json", default=None, help="raw results as JSON")
    parser.add_argument("--count", type=int, default=100, help="test examples per task")
    parser.add_argument("--validation", type=int, default=50, help="validation examples per task (best scale)")
    parser.add_argument("--precise-count", type=int, default=500,
                        help="test examples per task on the merges the issue judges (PRECISE_MERGES)")
    parser.add_argument("--precise-validation", type=int, default=200,
                        help="validation examples per task on PRECISE_MERGES")
    parser.add_argument("--only", default=None, help="merge labels' prefixes to run, separated by commas or by | (labels hold commas)")
    parser.add_argument("--no-peft", action="store_true")
    parser.add_argument("--shared-digits", action="store_true",
                        help="the first gated suite: every task on the digits 0-9 (3+ task merges collapse there)")
    parser.add_argument("--rows", default=None, help="comma-separated Brickyard row labels' prefixes to run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, and LoRAs trained at once (the machine is shared)")
    parser.add_argument("--command", default=None, help="the command line to print in the results (wrapper's)")
    parser.add_argument("--notes", default=None, help="markdown placed after the setup (the reading of the figures)")
    parser.add_argument("--binary-commit", default=None, help="the commit the brickyard binary was built from")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite --out from the results in --json (e.g. after editing --notes)")
    args = parser.parse_args(argv)
    if args.render:
        stored = json.load(open(args.json))
        notes = open(args.notes).read() if args.notes and os.path.exists(args.notes) else ""
        quality_report.write_markdown(args.out, stored["run"], stored["singles"], stored["records"], notes)
        return 0
    suite.setup_torch(args.threads)
    start, cpu_start = time.time(), time.process_time()
    loads = [load_average()]
    log = lambda m: print(f"[{time.time() - start:6.0f} s] {m}", file=sys.stderr, flush=True)  # noqa: E731
    needed = {n for label, adapters, _, _ in merges_by_name() if selected(label, args.only) for n in adapters}
    needed |= {f"task/{t}" for t in suite.TASK_NAMES} if not args.only else set()
    paths = suite.build(os.path.join(args.work, "suite"), log=log, jobs=args.threads, only=needed,
                        disjoint=not args.shared_digits)  # cached
    present = lambda name: name in paths  # noqa: E731
    evaluator = Evaluator(paths["base"], args.count, args.validation, os.path.join(args.work, "sweeps"))

    singles = {"base model": evaluator.single(None, [])}
    for t in suite.TASK_NAMES:
        if present(f"task/{t}"):
            singles[f"LoRA {t}"] = evaluator.single(paths[f"task/{t}"], [t])
    for name, (task, seed, _) in suite.adapter_specs().items():
        if name.startswith("soup/") and seed != 0 and present(name):
            singles[f"LoRA {task} seed {seed}"] = evaluator.single(paths[name], [task])
    for t, r in suite.MIXED:
        if present(f"rank/{t}-r{r}"):
            singles[f"LoRA {t} rank {r}"] = evaluator.single(paths[f"rank/{t}-r{r}"], [t])
    log("single adapters evaluated")

    records, jobs, fresh = [], {}, 0
    for label, wanted, names, normalize in merges_by_name():
        if not selected(label, args.only):
            continue
        adapters = [paths[n] for n in wanted]
        weights = [1.0 / len(adapters) if normalize else 1.0] * len(adapters)
        scales = scales_for(len(adapters), normalize)
        sizes = evaluation_sizes(label, args.count, args.validation, (args.precise_count, args.precise_validation))
        for row, method, params, *_ in BRICKYARD_ROWS:
            if not selected(row, args.rows):
                continue
            # a fresh scratch directory per merge: other benchmarks (legoq's rows) share args.work
            os.makedirs(os.path.join(args.work, "merges"), exist_ok=True)
            work = tempfile.mkdtemp(prefix=f"{label}-{row}"[:60].replace(" ", "_").replace("/", "-") + "-",
                                    dir=os.path.join(args.work, "merges"))
            try:
                rank = row_rank(next(r for r in BRICKYARD_ROWS if r[0] == row), adapters)
                out, report, job = brickyard_merge(args.brickyard, work, method, params, adapters, normalize, rank)
            except subprocess.CalledProcessError as error:
                last = error.stderr.decode().strip().splitlines()[-1]
                records.append({"merge": label, "row": row, "source": "brickyard",  # without the scratch job path
                                "failed": last.split("job.yaml: ", 1)[-1]})
                shutil.rmtree(work, ignore_errors=True)
                continue
            jobs.setdefault(label, job.split("adapters:")[1])
            error_value, floor = quality(report)
            sweep, hit = evaluator.adapter_sweep(out, names, scales, sizes)
            fresh += not hit
            records.append({"merge": label, "row": row, "source": "brickyard", "tasks": names, "sizes": sizes,
                            "method": method, "parameters": params, "rank": rank,
                            "relative_error": error_value, "svd_floor": floor, "sweep": sweep,
                            "catch_all": sum(m.get("catch_all_share", 0) for m in report["modules"])
                            / len(report["modules"]) if method == "lego" else None})
            shutil.rmtree(work, ignore_errors=True)
        if not args.no_peft:
            for combination in PEFT_ROWS:
                try:
                    sweep, hit = evaluator.peft_sweep(adapters, weights, combination, names, scales, sizes)
                    fresh += not hit
                except Exception as error:  # PEFT refuses e.g. linear on mixed ranks
                    records.append({"merge": label, "row": f"PEFT {combination}", "source": "peft",
                                    "failed": str(error).splitlines()[0][:120]})
                    continue
                records.append({"merge": label, "row": f"PEFT {combination}", "source": "peft", "tasks": names,
                                "sweep": sweep, "sizes": sizes})
        loads.append(load_average())
        log(f"{label}: done (load {loads[-1]})")

    run = {"seconds": time.time() - start, "cpu_seconds": time.process_time() - cpu_start, "loads": loads,
           "fresh_sweeps": fresh, "command": args.command or " ".join(shlex.quote(a) for a in sys.argv),
           "binary_commit": args.binary_commit, "threads": args.threads, "count": args.count,
           "validation": args.validation, "precise": {"merges": list(PRECISE_MERGES), "count": args.precise_count,
                                                    "validation": args.precise_validation}, "scales": SCALES, "rank": RANK, "merge_seed": MERGE_SEED,
           "test_seed": TEST_SEED, "validation_seed": VALIDATION_SEED, "gating": suite.GATING,
           "base_settings": evaluator.base_settings, "jobs": jobs}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"run": run, "singles": singles, "records": records}, f, indent=1, default=str)
    notes = open(args.notes).read() if args.notes and os.path.exists(args.notes) else ""
    quality_report.write_markdown(args.out, run, singles, records, notes)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

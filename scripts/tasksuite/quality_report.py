"""bench-quality's markdown: setup and commands, the single adapters (sanity), a summary of every method at its
best scale, and one table per merge (accuracy per task at scale 1 and at the best scale, error vs T, SVD floor)."""
from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Tuple

from . import suite, tasks


def pct(x: float) -> str:
    return f"{100 * x:.0f}"


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def summarize(sweep, names):
    """(test accuracies at scale 1, best scale by validation mean, test accuracies and "kept" at that scale).
    Ties of the validation mean go to the scale nearest 1."""
    at = {float(s): v for s, v in sweep.items()}
    best = best_scale({s: v["val"] for s, v in at.items()}, names)
    return at[1.0]["test"], best, at[best]["test"], at[best].get("kept", {})


#: Two-sided 95% normal quantile: intervals are ±Z standard errors.
Z = 1.96


def mean_interval(accuracies: Dict[str, float], count: int) -> float:
    """Half-width of the 95% interval of the mean accuracy over tasks, each measured on `count` independent test
    examples: Z·√(Σ_t p_t(1 − p_t)/count)/T (binomial sampling noise of the test set only; the best scale is
    chosen on a separate validation set)."""
    values = list(accuracies.values())
    return Z * math.sqrt(sum(p * (1 - p) for p in values) / count) / len(values) if values and count else float("nan")


def hits_at(record: dict, scale: float) -> Optional[Dict[str, str]]:
    return record["sweep"].get(str(scale), {}).get("test_hits")


def paired_difference(a: dict, b: dict) -> Optional[Tuple[float, float]]:
    """(mean accuracy of record `a` − that of `b`, each at its own best scale, and the half-width of its 95%
    interval) from the per-example results on the same test prompts: the difference d_i ∈ {−1, 0, 1} of each
    example, per task mean and sample variance, averaged over tasks. None without per-example results."""
    ha, hb = hits_at(a, summarize(a["sweep"], a["tasks"])[1]), hits_at(b, summarize(b["sweep"], b["tasks"])[1])
    if not ha or not hb or a["tasks"] != b["tasks"]:
        return None
    means, variances = [], []
    for task in a["tasks"]:
        d = [int(x) - int(y) for x, y in zip(ha[task], hb[task])]
        if len(d) != len(ha[task]) or len(d) != len(hb[task]) or len(d) < 2:
            return None
        m = sum(d) / len(d)
        means.append(m)
        variances.append(sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d))
    return mean(means), Z * math.sqrt(sum(variances)) / len(means)


def record_count(record: dict, run: dict) -> int:
    """Test examples per task of `record` (older results: the run's count)."""
    return (record.get("sizes") or [run.get("count", 0)])[0]


def best_scale(validation: Dict[float, Dict[str, float]], names) -> float:
    """The scale of the highest mean validation accuracy over `names`; ties go to the scale nearest 1."""
    return max(sorted(validation), key=lambda s: (round(mean(validation[s][t] for t in names), 6), -abs(s - 1)))


def setup_lines(run: dict) -> List[str]:
    g, b = run["gating"], run["base_settings"]
    precise = run.get("precise")
    modules = ("q,k,v,o,gate,up,down of every layer except the first layer's q,k,v (they see one token, so no gate "
               "can silence them)") if g.get("targets") else "q,k,v,o,gate,up,down"
    quiet = (f"; plus {g['quiet_batch']} *quiet* rows of the other tasks' prompts with their true answers "
             f"({g['quiet_per_task']} per task), under the penalty only (what the other LoRAs decode in a merge)"
             if g.get("quiet_per_task") else "")
    return [
        "## Setup", "",
        f"Tiny Llama ({b['layers']} layers, hidden {b['hidden']}) pretrained (seed {b['seed']}, {b['steps']} steps) "
        f"on copying the digits after *every* task word (`cpy` and {', '.join(suite.TASK_NAMES)}), so the base "
        f"copies whatever the task. "
        + ("Each task writes its digits with **tokens of its own** (`rev rev3 rev1 rev4 =` → `rev4 rev1 rev3`; "
           "`cpy` keeps 0-9), so no two tasks share an input or answer token. " if b.get("disjoint") else
           "Every task writes its digits with the shared tokens 0-9. ")
        + f"One rank-8 PEFT LoRA per task (seed 0; LoRAs on {modules}; alpha 2r), "
        f"trained **gated** (400 AdamW steps, lr 5e-3, torch seed 1000 + LoRA seed): each batch mixes 32 task "
        f"examples with {g['replay_batch']} replayed prompts of the other tasks and of `cpy` ({g['replay_per_task']} "
        f"per task, a split of their own) whose targets are the base's own greedy answers, with a penalty "
        f"(weight {g['gate']}) on the LoRA's output on those rows{quiet}; so each LoRA changes the model only after "
        f"its task word (scripts/tasksuite/replay.py, lora.py). Same-task soups, of {' and of '.join(suite.SOUP_TASKS)}: the task's "
        f"LoRAs of seeds {suite.SOUP_SEEDS}; large soups: of seeds {suite.LARGE_SOUP_SEEDS} (8 × rank 8 = 64 "
        "units a module at output rank 8: the least that passes lego's oversample gate, ≥ 4 units per fine cluster "
        "at the default `oversample: 2`; every other merge here is below it); mixed ranks: rev rank 4, inc rank 8, "
        "rot rank 16.",
        "",
        f"Accuracy = greedy exact match on {run['count']} test examples per task (split `test`, seed "
        f"{run['test_seed']}), in %"
        + (f"; on {', '.join(precise['merges'])} (the merges issue #8 judges) {precise['count']} test and "
           f"{precise['validation']} validation examples per task" if precise else "")
        + "; ±: half-width of the 95% interval of the mean from the test set's binomial noise (at 100 examples one "
        f"task's figure has ±10 points at 50%, ±6 at 10% or 90%; a mean over N tasks about 1/√N of that). Every "
        f"Brickyard method at output rank {run['rank']} (cat: exact, rank Σr), and lego and svd also at rank Σr "
        f"(rows 'at rank Σr': exact by construction, k ≥ units), merge seed {run['merge_seed']}; PEFT rows are "
        f"`add_weighted_adapter` with svd_rank {run['rank']}, density 0.5, torch seed {run['merge_seed']}. `scale` "
        "multiplies the merged update (applied as the LoRA scaling, identical to the job key). Best scale from "
        f"{run['scales']} (plus N for weights 1/N, = weights 1) chosen on {run['validation']} validation examples per task (split `val`, seed "
        f"{run['validation_seed']}), reported on the test examples. *cpy kept* = the merged model's agreement with "
        "the base on copy prompts at that scale (does the merge leave the base alone?). Relative error = mean over "
        "modules of ‖B'A' − T‖/‖T‖ against the exact weighted sum (merge-report.json); floor = the SVD floor at "
        f"rank {run['rank']}.",
    ]


def run_lines(run: dict) -> List[str]:
    loads = run["loads"]
    return [
        f"Command: `{run['command']}`" + (f" (brickyard built from {run['binary_commit']})" if run.get("binary_commit")
                                         else "") + ".",
        f"Run: {run['seconds'] / 60:.1f} min wall, {run['cpu_seconds'] / 60:.1f} min CPU (Python; merges are "
        f"separate processes), {run['fresh_sweeps']} sweeps evaluated fresh (the rest from the sweep cache), "
        f"{run['threads']} torch thread(s), one BLAS thread; load average {loads[0]} at the start, "
        f"{loads[-1]} at the end (2 cores shared by 5-6 developers).",
    ]


def singles_lines(singles: Dict[str, Dict[str, float]]) -> List[str]:
    names = suite.TASK_NAMES
    lines = ["## Single adapters (sanity)", "",
             "Accuracy of each adapter alone on every task; *kept* = agreement with the base on the other tasks' and "
             "`cpy` prompts (100 = the adapter leaves every other prompt alone).", "",
             "| adapter | " + " | ".join(names) + " | kept |", "| --- " * (len(names) + 2) + "|"]
    for name, acc in singles.items():
        lines.append(f"| {name} | " + " | ".join(pct(acc[t]) for t in names) + f" | {pct(acc['kept'])} |")
    return lines


def summary_lines(records: List[dict], run: Optional[dict] = None) -> List[str]:
    run = run or {}
    merges = list(dict.fromkeys(r["merge"] for r in records))
    rows = list(dict.fromkeys(r["row"] for r in records))
    table = {(r["merge"], r["row"]): r for r in records}
    lines = ["## Summary: mean accuracy (%) at scale 1 / at the method's best scale ±95% interval (best scale)", "",
             "| method | " + " | ".join(merges) + " |", "| --- " * (len(merges) + 1) + "|"]
    for row in rows:
        cells = []
        for m in merges:
            r = table.get((m, row))
            if r is None or "failed" in r:
                cells.append("—" if r is None else "fails")
                continue
            at_one, best, at_best, _ = summarize(r["sweep"], r["tasks"])
            half = mean_interval(at_best, record_count(r, run))
            interval = f" ±{pct(half)}" if half == half else ""  # unknown count (nan): no interval
            cells.append(f"{pct(mean(at_one.values()))} / **{pct(mean(at_best.values()))}**{interval} ({best:g})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def paired_lines(records: List[dict], merges: List[str], against=("cat (exact, rank Σr)", "svd")) -> List[str]:
    """Per merge of `merges`: every row's mean accuracy at its best scale minus each reference row's, with the
    paired 95% interval (same test prompts), where per-example results exist."""
    lines: List[str] = []
    for merge in merges:
        rows = [r for r in records if r["merge"] == merge and "failed" not in r]
        refs = [next((r for r in rows if r["row"] == name), None) for name in against]
        if not rows or not all(refs):
            continue
        table = [f"| {r['row']} | {pct(mean(summarize(r['sweep'], r['tasks'])[2].values()))} | "
                 + " | ".join("" if d is None else f"{100 * d[0]:+.1f} ±{100 * d[1]:.1f}"
                              for d in (paired_difference(r, ref) for ref in refs)) + " |" for r in rows]
        lines += [f"### {merge}", "", "| method | mean @best | " + " | ".join(f"− {n} (95%)" for n in against) + " |",
                  "| --- " * (len(against) + 2) + "|"] + table + [""]
    if lines:
        lines = ["## Paired differences on the judged merges (percentage points, each method at its best scale)", "",
                 "Difference of mean accuracy against cat and svd on the same test prompts, with the 95% interval of "
                 "the paired difference (examples both get right or both get wrong cancel): a difference whose "
                 "interval contains 0 is not resolved by this test set.", ""] + lines
    return lines


def merge_lines(records: List[dict], run: Optional[dict] = None) -> List[str]:
    lines, current = [], None
    for r in records:
        if r["merge"] != current:
            current = r["merge"]
            names = r.get("tasks") or next((x["tasks"] for x in records if x["merge"] == current and "tasks" in x), [])
            lines += ["", f"## {current}", "",
                      "| method | " + " | ".join(f"{t} @1" for t in names) + " | mean @1 | best scale | "
                      + " | ".join(f"{t} @best" for t in names)
                      + " | mean @best | ±95% | cpy kept @best | rank | rel. error | floor | catch-all |",
                      "| --- " * (2 * len(names) + 10) + "|"]
        if "failed" in r:
            lines.append(f"| {r['row']} | failed: {r['failed']} |")
            continue
        names = r["tasks"]
        at_one, best, at_best, kept = summarize(r["sweep"], names)
        err = f"{r['relative_error']:.3f}" if r.get("relative_error") is not None else ""
        floor = f"{r['svd_floor']:.3f}" if r.get("svd_floor") is not None else ""
        catch = f"{r['catch_all']:.2f}" if r.get("catch_all") is not None else ""
        lines.append(f"| {r['row']} | " + " | ".join(pct(at_one[t]) for t in names)
                     + f" | **{pct(mean(at_one.values()))}** | {best:g} | "
                     + " | ".join(pct(at_best[t]) for t in names)
                     + f" | **{pct(mean(at_best.values()))}** | {pct(mean_interval(at_best, record_count(r, run or {})))}"
                     + f" | {pct(kept.get(tasks.PRETRAIN_TASK, float('nan')))}"
                     + f" | {r.get('rank', '')} | {err} | {floor} | {catch} |")
    return lines


def write_markdown(path: str, run: dict, singles, records, notes: str = "") -> None:
    """`notes`: hand-written reading of the figures (bench/results/quality-notes.md), placed after the summary."""
    lines = ["# bench-quality: task accuracy of merges (scripts/bench-quality)", ""]
    lines += run_lines(run) + [""] + summary_lines(records, run) + [""]
    lines += paired_lines(records, (run.get("precise") or {}).get("merges", []))
    lines += ([notes.strip(), ""] if notes.strip() else []) + setup_lines(run) + [""] + singles_lines(singles)
    lines += [""] + merge_lines(records, run)
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)

"""Driver of scripts/bench-adapt: adaptive merging on the task suite (scripts/tasksuite), measured end to end.

Pool: one trained LoRA per suite task (rank 8, all linear modules) + random LoRAs as distractors. Target: one suite
task with ~50 training examples (+ 20 validation, 200 test). Compares test accuracy (greedy exact match, by
`brickyard eval`) of the base, every pool adapter (best single), the uniform merge of the pool and of the selection
(CAT, weights 1/k, by `brickyard merge`), the learned merge (`brickyard adapt`, AdamW recipe) and a LoraHub-style
search (CMA-ES, one weight per adapter). Then runtime: steps/s and evaluations/s with 1 and 2 evaluators and the
coordinator's overhead per step. Writes bench/results/adapt.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tasksuite import suite, tasks  # noqa: E402


def log(message: str) -> None:
    print(f"bench-adapt: {message}", file=sys.stderr, flush=True)


def random_lora(base_dir: str, out_dir: Path, seed: int, rank: int = 8, std: float = 0.05) -> str:
    """A random PEFT LoRA on every linear module of the suite's base (a distractor)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tasksuite import lora, model

    marker = out_dir / "distractor.json"
    settings = {"base": base_dir, "seed": seed, "rank": rank, "std": std}
    if marker.exists() and json.loads(marker.read_text()) == settings:
        return str(out_dir)
    net, _ = model.load_base(base_dir)
    peft_model = get_peft_model(net, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=lora.TARGET_MODULES,
                                                lora_dropout=0.0, init_lora_weights=False))
    generator = torch.Generator().manual_seed(5000 + seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    peft_model.save_pretrained(out_dir)
    marker.write_text(json.dumps(settings))
    return str(out_dir)


def write_jsonl(path: Path, pairs) -> None:
    path.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in pairs))


class Brickyard:
    def __init__(self, binary: str, evaluator: str) -> None:
        self.binary = binary
        self.env = dict(os.environ, BRICKYARD_EVALUATOR=evaluator, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")

    def run(self, *args: str) -> str:
        started = time.time()
        done = subprocess.run([self.binary, *args], capture_output=True, text=True, env=self.env)
        if done.returncode != 0:
            raise SystemExit(f"brickyard {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        log(f"brickyard {args[0]} done in {time.time() - started:.1f} s")
        return done.stdout

    def accuracies(self, base: str, data: Path, adapters: list[str], with_base: bool, evaluators: int) -> list[dict]:
        args = ["eval", "--base-model", base, "--data", str(data), "--json", "--quiet", "--evaluators", str(evaluators)]
        for adapter in adapters:
            args += ["--adapter", adapter]
        if not with_base:
            args.append("--no-base")
        return json.loads(self.run(*args))["results"]

    def merge_uniform(self, adapters: list[str], out: Path) -> str:
        job = out.with_suffix(".yaml")
        job.write_text("method: cat\nadapters:\n" + "".join(f"  - path: {a}\n" for a in adapters))
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        self.run("merge", str(job), "--out", str(out), "--quiet", "--in-process")
        return str(out)


def adapt_job(path: Path, base: str, data: Path, validation: Path, pool: list[str], section: str) -> Path:
    path.write_text(f"base_model: {base}\ndata: {{train: {data}, validation: {validation}}}\nseed: 7\nadapters:\n"
                    + "".join(f"  - path: {a}\n" for a in pool) + "adapt:\n" + section + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--brickyard", required=True)
    parser.add_argument("--evaluator", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--target", default="inc")
    parser.add_argument("--distractors", type=int, default=6)
    parser.add_argument("--train", type=int, default=50)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--evaluators", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "adapt.md"))
    args = parser.parse_args()
    suite.setup_torch()
    from tasksuite import lora, model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    base = model.pretrain_base(str(work / "base"))
    pool = [lora.train_lora(base, task, str(work / "lora" / task)) for task in suite.TASK_NAMES]
    pool += [random_lora(base, work / "distractor" / f"r{i}", seed=i) for i in range(args.distractors)]
    build_seconds = time.time() - started
    log(f"suite ready ({build_seconds:.0f} s): {len(pool)} adapters")

    data = work / f"{args.target}-train.jsonl"
    validation = work / f"{args.target}-validation.jsonl"
    test = work / f"{args.target}-test.jsonl"
    write_jsonl(data, tasks.examples(args.target, args.train, seed=7, split="train"))
    write_jsonl(validation, tasks.examples(args.target, 20, seed=8, split="train"))
    write_jsonl(test, tasks.examples(args.target, args.test, seed=0, split="test"))

    by = Brickyard(args.brickyard, args.evaluator)
    results: dict = {"target": args.target, "pool": pool, "train_examples": args.train, "test_examples": args.test}
    singles = by.accuracies(base, test, pool, with_base=True, evaluators=2)
    results["base"] = singles[0]
    results["singles"] = singles[1:]
    best = max(singles[1:], key=lambda r: (r["accuracy"], -r["loss"]))
    results["best_single"] = best

    uniform_pool = by.merge_uniform(pool, work / "uniform-pool")
    results["uniform_pool"] = by.accuracies(base, test, [uniform_pool], with_base=False, evaluators=1)[0]

    recipe = f"  select: {{by: loss, top_k: {args.top_k}}}\n  steps: {args.steps}"
    runs = {}
    for name, section, evaluators in [
        ("adamw", recipe, 1),
        ("adamw-2eval", recipe, 2),
        ("lorahub", f"  select: {{by: loss, top_k: {args.top_k}}}\n  optimizer: cma_es\n  steps: 60", 1),
    ]:
        job = adapt_job(work / f"{name}.yaml", base, data, validation, pool, section)
        out = work / f"out-{name}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        wall = time.time()
        by.run("adapt", str(job), "--out", str(out), "--quiet", "--evaluators", str(evaluators), "--force")
        wall = time.time() - wall
        report = json.loads((out / "adapt-report.json").read_text())
        runs[name] = {"wall_seconds": wall, "report": report, "out": str(out), "evaluators": evaluators}
    results["runs"] = {name: {k: v for k, v in run.items() if k != "report"} for name, run in runs.items()}

    selected = runs["adamw"]["report"]["coefficients"]["adapters"]
    uniform_selection = by.merge_uniform(selected, work / "uniform-selection")
    results["uniform_selection"] = by.accuracies(base, test, [uniform_selection], with_base=False, evaluators=1)[0]
    learned = by.accuracies(base, test, [runs["adamw"]["out"], runs["lorahub"]["out"], runs["adamw-2eval"]["out"]],
                            with_base=False, evaluators=2)
    results["learned_adamw"], results["lorahub"], results["learned_adamw_2eval"] = learned
    results["identical_1_vs_2_evaluators"] = (
        (Path(runs["adamw"]["out"]) / "adapter_model.safetensors").read_bytes()
        == (Path(runs["adamw-2eval"]["out"]) / "adapter_model.safetensors").read_bytes())

    speed = {}
    for name, run in runs.items():
        runtime = run["report"]["runtime"]
        steps = len(run["report"]["history"]) - (1 if name.startswith("adamw") else 0)
        train_seconds = sum(runtime["step_seconds"])
        evaluators = run["evaluators"]
        compute = runtime.get("evaluator_seconds") or 0.0
        speed[name] = {
            "evaluators": evaluators, "steps": steps, "evaluations": runtime["evaluations"],
            "requests": runtime.get("requests"), "wall_seconds": run["wall_seconds"],
            "train_seconds": train_seconds,
            "steps_per_second": steps / train_seconds if train_seconds else None,
            "evaluations_per_second": runtime["evaluations"] / train_seconds if train_seconds else None,
            "requests_per_second": (runtime.get("requests") or 0) / run["wall_seconds"],
            "evaluator_compute_seconds": compute,
            # Wall time of the whole run not covered by evaluator compute (spread over the evaluators), per step.
            "coordinator_overhead_per_step_ms": 1000 * max(0.0, run["wall_seconds"] - compute / evaluators) / max(1, steps),
        }
    results["speed"] = speed
    results["selection"] = [(Path(p["path"]).name, p["score"], p["selected"]) for p in runs["adamw"]["report"]["pool"]]
    results["total_seconds"] = time.time() - started

    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    Path(args.out).write_text(render(results, args))
    log(f"wrote {args.out} ({results['total_seconds']:.0f} s)")


def pct(result: dict) -> str:
    return f"{100 * result['accuracy']:.1f}%" if result.get("accuracy") is not None else "-"


def render(r: dict, args) -> str:
    name = lambda path: Path(path).name  # noqa: E731
    lines = [
        "# bench-adapt: adaptive merging on the task suite",
        "",
        f"Command: `scripts/bench-adapt` (target `{r['target']}`, {r['train_examples']} training + 20 validation examples, "
        f"{r['test_examples']} test examples; pool = {len(r['pool']) - args.distractors} task LoRAs (rank 8, every linear "
        f"module) + {args.distractors} random distractor LoRAs; selection top-{args.top_k} by loss; AdamW recipe "
        f"{args.steps} steps; LoraHub-style CMA-ES 60 evaluations). Accuracy = greedy exact match on the test set, "
        "scored by `brickyard eval` (the evaluator's rule). Machine: 2 cores shared with 6 other sessions (loaded); "
        "debug build of brickyard unless noted; one torch thread per evaluator.",
        "",
        "| variant | test accuracy | test loss |",
        "| --- | --- | --- |",
        f"| base | {pct(r['base'])} | {r['base']['loss']:.3f} |",
        f"| best single adapter ({name(r['best_single']['name'])}) | {pct(r['best_single'])} | {r['best_single']['loss']:.3f} |",
        f"| uniform merge of the pool ({len(r['pool'])}, CAT 1/n) | {pct(r['uniform_pool'])} | {r['uniform_pool']['loss']:.3f} |",
        f"| uniform merge of the selection (top-{args.top_k}) | {pct(r['uniform_selection'])} | {r['uniform_selection']['loss']:.3f} |",
        f"| learned merge (AdamW, per module, leaky ReLU) | {pct(r['learned_adamw'])} | {r['learned_adamw']['loss']:.3f} |",
        f"| LoraHub-style (CMA-ES, per adapter, ±1.5, L1) | {pct(r['lorahub'])} | {r['lorahub']['loss']:.3f} |",
        "",
        "Every pool adapter alone: " + ", ".join(f"{name(s['name'])} {pct(s)}" for s in r["singles"]) + ".",
        "",
        "Selection (training loss of each adapter alone; * = kept): "
        + ", ".join(f"{n} {score:.3f}{'*' if kept else ''}" for n, score, kept in r["selection"]) + ".",
        "",
        "## Runtime",
        "",
        "| run | evaluators | steps | evaluations | requests | wall s | train s | steps/s | evaluations/s | coordinator overhead / step |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run, s in r["speed"].items():
        lines.append(f"| {run} | {s['evaluators']} | {s['steps']} | {s['evaluations']} | {s['requests']} | {s['wall_seconds']:.1f} | "
                     f"{s['train_seconds']:.1f} | {s['steps_per_second']:.2f} | {s['evaluations_per_second']:.2f} | "
                     f"{s['coordinator_overhead_per_step_ms']:.0f} ms |")
    lines += [
        "",
        f"1 vs 2 evaluators, same job: identical adapter bytes: {r['identical_1_vs_2_evaluators']}; "
        f"learned accuracy {pct(r['learned_adamw'])} vs {pct(r['learned_adamw_2eval'])}.",
        "",
        "Steps/s counts AdamW steps (each: the batch's gradient requests, plus validation every 10 steps); for CMA-ES a "
        "step is a generation and evaluations/s counts candidate losses. Coordinator overhead = (wall time − evaluator "
        "compute / evaluators) / steps: it includes evaluator start-up (loading torch and the model, a few seconds), "
        "selection, baselines and the final assembly, so it is an upper bound of the per-step cost.",
        "",
        f"Total benchmark time {r['total_seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

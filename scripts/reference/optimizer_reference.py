"""Reference numbers for the Swift optimisers (Tests/AdaptiveTests/Fixtures/optimizer-reference.json).

Run by scripts/record-optimizer-reference. Three independent implementations:
  * torch.optim.AdamW + LambdaLR (warmup 10%, cosine to 0) on Rosenbrock and a shifted sphere (float64),
    run with the evaluator venv's torch;
  * scipy.optimize.minimize(method="Nelder-Mead", adaptive=False) from a given initial simplex on Rosenbrock and
    a quadratic, with xatol = fatol = 0 and a fixed iteration count;
  * pycma (cma.CMAEvolutionStrategy) evaluations needed to reach f < 1e-8 on sphere / Rosenbrock (median of seeds),
    as a performance yardstick (sampling differs, so trajectories cannot match).
"""

import json
import math
import sys


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def part_torch():
    import torch

    torch.set_num_threads(1)
    out = {}
    for name, x0, lr, steps, wd in [("rosenbrock", [-1.2, 1.0], 0.05, 200, 0.0), ("sphere", [3.0, -2.0, 0.5], 0.1, 50, 0.01)]:
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.AdamW([x], lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
        warmup = max(1, round(0.1 * steps))

        def factor(step, warmup=warmup, steps=steps):
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, steps - warmup))
            return 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        trajectory = []
        for _ in range(steps):
            opt.zero_grad()
            if name == "rosenbrock":
                f = 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2
            else:
                f = ((x - torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)) ** 2).sum()
            f.backward()
            opt.step()
            sched.step()
            trajectory.append(x.detach().tolist())
        out[name] = {"x0": x0, "lr": lr, "steps": steps, "weight_decay": wd, "trajectory": trajectory}
    return out


def part_scipy():
    import numpy as np
    import cma
    from scipy.optimize import minimize

    out = {"nelder_mead": {}, "cma_es": {}}
    for name, fn, x0, step, iterations in [
        ("rosenbrock", rosenbrock, [-1.2, 1.0], 0.5, 40),
        ("quadratic", lambda x: (x[0] - 1) ** 2 + 10 * (x[1] + 2) ** 2 + 0.5 * x[0] * x[1] + (x[2] - 0.25) ** 2, [0.0, 0.0, 0.0], 1.0, 25),
    ]:
        simplex = [list(x0)] + [[x0[j] + (step if j == k else 0.0) for j in range(len(x0))] for k in range(len(x0))]
        result = minimize(fn, x0, method="Nelder-Mead",
                          options={"initial_simplex": np.array(simplex), "xatol": 0, "fatol": 0, "maxiter": iterations,
                                   "maxfev": 10**9, "adaptive": False})
        out["nelder_mead"][name] = {"x0": x0, "step": step, "iterations": iterations, "x": result.x.tolist(),
                                    "f": float(result.fun), "nfev": int(result.nfev)}
    for name, fn, n in [("sphere", lambda x: float(sum(v * v for v in x)), 8), ("rosenbrock", rosenbrock, 4)]:
        counts = []
        for seed in range(1, 12):
            es = cma.CMAEvolutionStrategy([0.5] * n if name == "sphere" else [0.0] * n, 0.5,
                                          {"seed": seed, "verbose": -9, "ftarget": 1e-8, "CMA_active": False})
            es.optimize(lambda x: fn(list(x)))
            counts.append(es.result.evaluations)
        counts.sort()
        out["cma_es"][name] = {"dimension": n, "target": 1e-8, "median_evaluations": counts[len(counts) // 2]}
    return out


if __name__ == "__main__":
    part = sys.argv[1]
    print(json.dumps(part_torch() if part == "torch" else part_scipy()))

"""Issue 16 items 2 and 5: which allocation (and which projection) prunes a trained model furthest, on VALIDATION.

``python benchmarks/bench_pruning_methods.py [--run PATH] [--seeds 0,1] [--ratios 0.5,0.7,...]`` loads the trained
S5 / MNIST-1D checkpoints of the pruning benchmark (``benchmarks/pruning/run.py``: its ``Classifier``, ``train``,
``accuracy``, ``state_sizes``, ``TASKS``; trained and cached there if absent) and, for every ratio, prunes one-shot
with balanced-truncation orders allocated by

- ``balanced`` (LAMP-normalised Hankel slots, global threshold), ``balanced`` ``order_allocation="uniform"``,
- ``h2-greedy`` (greedy on the exact per-layer H2 errors, ``weights="relative"`` and ``"absolute"``),

each infinite-horizon and with ``horizon=L``, and the same budgets through ``h2-optimal``,
``singular-perturbation`` and the data-aware ``empirical-balanced`` (calibration: the first ``--calibration``
train sequences, through forward pre-hooks on the live model); then rebuilds the model at its new sizes, loads strictly and reports validation
accuracy (test accuracy too, never used for a choice). Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ssmtools  # noqa: E402
from ssmtools.pruning.data_aware import calibrate_module  # noqa: E402

METHODS = [  # label, criterion, criterion options, reduction, reduction options ("L": the task's length)
    ("balanced (LAMP)", "balanced", {}, None, {}),
    ("balanced uniform", "balanced", {"order_allocation": "uniform"}, None, {}),
    ("h2-greedy relative", "h2-greedy", {"weights": "relative"}, None, {}),
    ("h2-greedy absolute", "h2-greedy", {"weights": "absolute"}, None, {}),
    ("balanced (LAMP) + h2-optimal", "balanced", {}, "h2-optimal", {}),
    ("balanced (LAMP) + singular-perturbation", "balanced", {}, "singular-perturbation", {}),
    ("balanced (LAMP) hL", "balanced", {"horizon": "L"}, None, {}),
    ("balanced uniform hL", "balanced", {"order_allocation": "uniform", "horizon": "L"}, None, {}),
    ("h2-greedy relative hL", "h2-greedy", {"weights": "relative", "horizon": "L"}, None, {}),
    ("h2-greedy absolute hL", "h2-greedy", {"weights": "absolute", "horizon": "L"}, None, {}),
    ("balanced (LAMP) hL + h2-optimal hL", "balanced", {"horizon": "L"}, "h2-optimal", {"horizon": "L"}),
    (
        "balanced (LAMP) hL + empirical-balanced",
        "balanced",
        {"horizon": "L"},
        "empirical-balanced",
        {"calibration": "CAL"},
    ),
    (
        "h2-greedy relative hL + empirical-balanced",
        "h2-greedy",
        {"horizon": "L"},
        "empirical-balanced",
        {"calibration": "CAL"},
    ),
]


def load_run(path: Path):
    spec = importlib.util.spec_from_file_location("pruning_run", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["pruning_run"] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "benchmarks" / "pruning" / "run.py"))
    parser.add_argument("--kind", default="s5")
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--ratios", default="0.3,0.4,0.5,0.6,0.7,0.8")
    parser.add_argument("--calibration", type=int, default=256, help="train sequences of the data-aware batch")
    parser.add_argument("--methods", default=None, help="comma-separated indices into METHODS (default all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run = load_run(Path(args.run))
    task = run.TASKS[args.task]
    splits = task.splits()
    ratios = [float(r) for r in args.ratios.split(",")]
    chosen = METHODS if args.methods is None else [METHODS[int(i)] for i in args.methods.split(",")]
    rows: dict[str, dict[int, list[tuple[float, float, float]]]] = {m[0]: {} for m in chosen}
    bases = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        params = run.train(args.kind, task, seed, splits, args.epochs)
        model = run.Classifier(args.kind, run.state_sizes(args.kind, params), task.classes)
        model.load_state_dict(params, strict=True)
        model.eval()
        bases[seed] = (run.accuracy(model, *splits["val"]), run.accuracy(model, *splits["test"]))
        layers = list(ssmtools.load({k: v.numpy() for k, v in params.items()}).keys())
        calibration = calibrate_module(model, splits["train"][0][: args.calibration], layers)  # train split only
        print(f"seed {seed}: unpruned val {bases[seed][0]:.1f} test {bases[seed][1]:.1f}", flush=True)
        for label, criterion, options, reduction, reduction_options in chosen:
            options = {k: (task.length if v == "L" else v) for k, v in options.items()}
            values = {"L": task.length, "CAL": calibration}
            reduction_options = {k: values.get(v, v) for k, v in reduction_options.items()}
            out = []
            for ratio in ratios:
                start = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        pruned, plan = ssmtools.last_prune(
                            params,
                            ratio,
                            criterion,
                            criterion_options=options,
                            reduction=reduction,
                            reduction_options=reduction_options,
                            errors=False,
                        )
                except Exception as error:  # a method that cannot write this model back: counts as a loss
                    print(f"  {label:>40} {ratio:.2f}: {type(error).__name__}: {str(error)[:120]}", flush=True)
                    out.append((ratio, -np.inf, -np.inf))
                    continue
                pruned = {k: torch.as_tensor(np.asarray(v)) for k, v in pruned.items()}
                small = run.Classifier(args.kind, run.state_sizes(args.kind, pruned), task.classes)
                small.load_state_dict(pruned, strict=True)
                small.eval()
                val, test = run.accuracy(small, *splits["val"]), run.accuracy(small, *splits["test"])
                out.append((plan.realized_ratio, val, test))
                print(
                    f"  {label:>40} {ratio:.2f}: val {val:.1f} test {test:.1f} ({time.perf_counter() - start:.1f}s)",
                    flush=True,
                )
            rows[label][seed] = out
    print("\n| method | " + " | ".join(f"val @{r:.0%}" for r in ratios) + " | max ratio ≤1 pt (val) | (test) |")
    print("|---|" + "---|" * (len(ratios) + 2))
    for label, per_seed in rows.items():
        cells = []
        for i in range(len(ratios)):
            drops = [bases[s][0] - per_seed[s][i][1] for s in per_seed]
            cells.append(f"−{np.mean(drops):.1f}")
        best = {
            split: np.mean(
                [max([r for r, *acc in per_seed[s] if bases[s][j] - acc[j] <= 1.0], default=0.0) for s in per_seed]
            )
            for j, split in enumerate(("val", "test"))
        }
        print(f"| {label} | " + " | ".join(cells) + f" | {best['val']:.0%} | {best['test']:.0%} |")


if __name__ == "__main__":
    main()

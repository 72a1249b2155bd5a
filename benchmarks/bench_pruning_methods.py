"""Issue 16 items 2 and 5: which allocation (and which projection) prunes a trained model furthest, on VALIDATION.

``python benchmarks/bench_pruning_methods.py [--run PATH] [--seeds 0,1] [--ratios 0.5,0.7,...]`` loads the trained
S5 / MNIST-1D checkpoints of the pruning benchmark (``benchmarks/pruning/run.py``: its ``Classifier``, ``train``,
``accuracy``, ``state_sizes``, ``TASKS``; trained and cached there if absent) and, for every ratio, prunes one-shot
with balanced-truncation orders allocated by

- ``balanced`` (LAMP-normalised Hankel slots, global threshold), ``balanced`` ``order_allocation="uniform"``,
- ``h2-greedy`` (greedy on the exact per-layer H2 errors, ``weights="relative"`` and ``"absolute"``),

each infinite-horizon and with ``horizon=L``, and the same budgets through ``h2-optimal`` and
``singular-perturbation``; then rebuilds the model at its new sizes, loads strictly and reports validation
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

METHODS = [
    ("balanced (LAMP)", "balanced", {}, None),
    ("balanced uniform", "balanced", {"order_allocation": "uniform"}, None),
    ("h2-greedy relative", "h2-greedy", {"weights": "relative"}, None),
    ("h2-greedy absolute", "h2-greedy", {"weights": "absolute"}, None),
    ("balanced (LAMP) hL", "balanced", {"horizon": "L"}, None),
    ("h2-greedy relative hL", "h2-greedy", {"weights": "relative", "horizon": "L"}, None),
    ("h2-greedy relative + h2-optimal", "h2-greedy", {"weights": "relative"}, "h2-optimal"),
    ("balanced (LAMP) + h2-optimal", "balanced", {}, "h2-optimal"),
    ("balanced (LAMP) + singular-perturbation", "balanced", {}, "singular-perturbation"),
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
    parser.add_argument("--ratios", default="0.5,0.6,0.7,0.8,0.9")
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
        print(f"seed {seed}: unpruned val {bases[seed][0]:.1f} test {bases[seed][1]:.1f}", flush=True)
        for label, criterion, options, reduction in chosen:
            options = {k: (task.length if v == "L" else v) for k, v in options.items()}
            out = []
            for ratio in ratios:
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pruned, plan = ssmtools.last_prune(
                        params, ratio, criterion, criterion_options=options, reduction=reduction, errors=False
                    )
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

"""Overhead of the ssmtools.torch regularisers per training step of a small s5-pytorch MNIST-1D classifier.

Model: ``Linear(1 → H)``, ``depth`` × ``s5.S5Block(H, P)``, mean over time, ``Linear(H → 10)``; float32, CPU.
Data: MNIST-1D generated offline (``mnist1d.data.make_dataset``, no download), sequences of length 40.
One step = forward, cross-entropy (+ penalty), backward, Adam update, on a batch of ``batch`` sequences.
Each variant — no penalty, ``h2_penalty``, ``hankel_nuclear_penalty(order=P // 2)`` over the infinite and over the
sequences' finite horizon (40 steps, the form ``bench_regularised.py`` trains with; and, as "before", the same
sum from the graded accurate HSVs, the previous implementation), ``last_sparsity_penalty``, ``hinf_penalty`` with
a warm-start ``HinfTracker`` (certificate every 25 and every 10 calls, and every call) and, as "before", without one (the full
certified search per call) — is timed over the same batches in interleaved rounds (best of ``repeat`` rounds, each round the
mean of ``steps`` = 50 steps: whole certificate cycles of every tracker, so that the certificates' cost is
amortised as in training), so the ratios come from one run under the same load. Two estimates of the overhead:
step time with the penalty / step time without − 1 (noisy on a loaded machine: the difference of two large
times), and the penalty's own forward + backward timed alone / the plain step (the cost a step adds). The
issue's target is < 20 % on CPU.

Run: ``python benchmarks/bench_penalty.py`` (or ``python benchmarks/run_all.py --only penalty``); writes
``benchmarks/results/penalty.md`` and ``penalty.json``. ``--quick`` uses a smaller model and fewer rounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, markdown_table, write_results  # noqa: E402


def mnist1d_batches(n_samples: int, batch: int, seed: int = 0):
    """MNIST-1D (generated locally) as a list of (x (batch, 40) float32, y (batch,) int64) tensors."""
    import torch
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = n_samples
    args.seed = seed
    data = make_dataset(args)
    x = torch.as_tensor(np.asarray(data["x"], dtype=np.float32))
    y = torch.as_tensor(np.asarray(data["y"], dtype=np.int64))
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, len(x) - batch + 1, batch)]


def classifier(H: int, P: int, depth: int, seed: int = 0):
    """The s5-pytorch classifier of the module docstring."""
    import torch
    from s5 import S5Block

    torch.manual_seed(seed)

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = torch.nn.Linear(1, H)
            self.blocks = torch.nn.ModuleList([S5Block(H, P, bidir=False) for _ in range(depth)])
            self.decoder = torch.nn.Linear(H, 10)

        def forward(self, x):
            h = self.encoder(x[..., None])
            for block in self.blocks:
                h = block(h)
            return self.decoder(h.mean(dim=1))

    return Classifier()


def tracking_gap(H: int, P: int, depth: int, batches, steps: int = 20, certify_every: int = 10) -> dict:
    """How far the tracker's value trails the certified norm while training with ``1e-3·hinf_penalty`` (Adam,
    lr 1e-3): per step, the summed layer norms with ``HinfTracker(certify_every)`` vs the full certified search."""
    import torch

    import ssmtools.torch as stt

    model = classifier(H, P, depth, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tracker = stt.HinfTracker(certify_every=certify_every)
    gaps = []
    for k in range(steps):
        x, y = batches[k % len(batches)]
        optimizer.zero_grad()
        warm = stt.hinf_penalty(model, tracker=tracker)
        with torch.no_grad():
            certified = float(stt.hinf_penalty(model))
        gaps.append(1.0 - float(warm.detach()) / certified)
        (torch.nn.functional.cross_entropy(model(x), y) + 1e-3 * warm).backward()
        optimizer.step()
    return {"steps": steps, "certify_every": certify_every, "max_gap": max(gaps), "mean_gap": float(np.mean(gaps))}


def main(argv: list[str] | None = None) -> int:
    import torch

    import ssmtools.torch as stt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small model, few rounds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on a small shared machine more threads spin)",
    )
    options = parser.parse_args(argv)
    torch.set_num_threads(options.threads)
    H, P, depth, batch = (16, 16, 1, 32) if options.quick else (32, 32, 2, 64)
    steps, repeat = (2, 2) if options.quick else (50, 2)  # 50 steps: whole certificate cycles of every tracker
    batches = mnist1d_batches(max(4 * batch, batch * steps), batch)
    order = P // 2
    trackers = {k: stt.HinfTracker(certify_every=k) for k in (1, 10, 25)}

    def graded_hankel(m):  # the previous implementation: graded (accurate) values, the Hankel path of wave 2
        return sum(stt.hankel_singular_values(s, accurate=True)[..., order:].sum() for s in stt.systems(m).values())

    penalties = {
        "none": None,
        "h2_penalty": lambda m: stt.h2_penalty(m),
        f"hankel_nuclear_penalty(order={order})": lambda m: stt.hankel_nuclear_penalty(m, order=order),
        f"hankel_nuclear_penalty(order={order}, horizon=40)": lambda m: stt.hankel_nuclear_penalty(
            m, order=order, horizon=40
        ),
        f"  before: graded HSVs (order={order})": graded_hankel,
        "last_sparsity_penalty": lambda m: stt.last_sparsity_penalty(m),
        "hinf_penalty(tracker, certify_every=25)": lambda m: stt.hinf_penalty(m, tracker=trackers[25]),
        "hinf_penalty(tracker, certify_every=10)": lambda m: stt.hinf_penalty(m, tracker=trackers[10]),
        "hinf_penalty(tracker, certify_every=1)": lambda m: stt.hinf_penalty(m, tracker=trackers[1]),
        "  before: hinf_penalty (full search per call)": lambda m: stt.hinf_penalty(m),
    }
    models = {name: classifier(H, P, depth) for name in penalties}
    optimizers = {name: torch.optim.Adam(model.parameters(), lr=1e-3) for name, model in models.items()}

    def run(name: str) -> float:
        model, optimizer, penalty = models[name], optimizers[name], penalties[name]
        start = time.perf_counter()
        for k in range(steps):
            x, y = batches[k % len(batches)]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            if penalty is not None:
                loss = loss + 1e-3 * penalty(model)
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) / steps

    def alone(name: str) -> float:
        """The penalty's own forward and backward (what a step adds), on the model of ``name``."""
        model, penalty = models[name], penalties[name]
        if penalty is None:
            return 0.0
        start = time.perf_counter()
        for _ in range(steps):
            model.zero_grad()
            (1e-3 * penalty(model)).backward()
        return (time.perf_counter() - start) / steps

    for name in penalties:  # warm-up (imports, first-call allocations)
        run(name)
        alone(name)
    best = dict.fromkeys(penalties, np.inf)
    best_alone = dict.fromkeys(penalties, np.inf)
    for _ in range(repeat):
        for name in penalties:
            best[name] = min(best[name], run(name))
            best_alone[name] = min(best_alone[name], alone(name))
    base = best["none"]
    rows = [
        {
            "penalty": name,
            "ms": 1e3 * t,
            "alone_ms": 1e3 * best_alone[name],
            "overhead": 100.0 * (t / base - 1.0),
            "share": 100.0 * best_alone[name] / base,
        }
        for name, t in best.items()
    ]
    table = markdown_table(
        [
            ("penalty", "penalty", ""),
            ("step [ms]", "ms", ".1f"),
            ("step overhead [%]", "overhead", "+.1f"),
            ("penalty fwd+bwd alone [ms]", "alone_ms", ".1f"),
            ("penalty / plain step [%]", "share", ".1f"),
        ],
        rows,
    )
    setup = (
        f"s5-pytorch classifier, H = {H}, P = {P} states per layer, {depth} S5Block layer(s), float32 CPU, "
        f"batch {batch} × length 40 (MNIST-1D), Adam; torch threads {torch.get_num_threads()}; best of {repeat} "
        f"interleaved rounds of {steps} steps."
    )
    counts = {f"certify_every={k}": dict(t.counts) for k, t in trackers.items()}
    setup += f" Tracker routes over the run (per layer call): {counts}."
    gaps = [tracking_gap(H, P, depth, batches, steps=8 if options.quick else 50, certify_every=k) for k in (10, 25)]
    gap = gaps[0]
    for g in gaps:
        setup += (
            f" Tracking: over {g['steps']} Adam steps (lr 1e-3, 1e-3·hinf_penalty) the value with "
            f"HinfTracker(certify_every={g['certify_every']}) trailed the certified norm by "
            f"{100 * g['mean_gap']:.2f} % on average, {100 * g['max_gap']:.2f} % at most (0 on certificate steps)."
        )
    write_results(
        "penalty",
        "Penalty overhead per training step",
        [("Setup", setup), ("Step time with and without each penalty", table)],
        {
            "setup": {"H": H, "P": P, "depth": depth, "batch": batch, "steps": steps, "repeat": repeat},
            "rows": rows,
            "tracker_counts": counts,
            "tracking": gap,
            "tracking_all": gaps,
        },
        out=options.out,
    )
    print(setup)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

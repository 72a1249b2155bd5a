"""Does a Hankel-tail penalty make an s5-pytorch classifier more prunable? Accuracy vs LAST pruning ratio.

Two MNIST-1D classifiers (``Linear(1 → H)``, ``depth`` pre-norm residual ``s5.S5(H, P)`` blocks with GELU, mean
pool, ``Linear(H → 10)``) are trained with the same seed, data order and optimiser (AdamW, one-cycle schedule):
one on the cross-entropy alone, one on cross-entropy + ``weight · hankel_nuclear_penalty(model, order=P,
horizon=40)`` — the finite-horizon Hankel singular values (over the 40 steps of an MNIST-1D sequence) beyond the
first P of the 2P real dimensions of each layer, i.e. what finite-horizon balanced truncation to half the states
would lose. The finite horizon keeps the penalty defined when a pole leaves the unit disc (s5-pytorch does not
constrain Λ); with ``horizon=None`` the infinite-horizon HSVs are used and such steps go without the penalty
(counted). Both models are then pruned one-shot (no fine-tuning) with ``ssmtools.last_prune`` at several ratios —
with the LAST criterion (states masked, ``mask=True``) and with finite-horizon balanced truncation
(``criterion="balanced"``, ``criterion_options={"horizon": 40}``, states physically removed) — and evaluated on
the MNIST-1D test split (generated offline by ``mnist1d``, default arguments: 4000 train / 1000 test sequences of
length 40).

Run: ``python benchmarks/bench_regularised.py`` (a few minutes on 2 cores) writes
``benchmarks/results/regularised.json`` and ``regularised.png``; the trained weights are kept in
``benchmarks/regularised/cache`` and reused by later runs (``--no-cache`` trains again); ``notebooks/05_regularised_training.ipynb``
runs a short version with :func:`run` and shows the committed full results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ssmtools  # noqa: E402
import ssmtools.torch as stt  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "benchmarks" / "regularised" / "cache"  # trained weights, keyed by the training setup (git-ignored)
LENGTH = 40  # MNIST-1D sequence length: the finite horizon of the penalty and of the balanced truncation
RATIOS = [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def mnist1d(n_train: int | None = None, n_samples: int | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """MNIST-1D (generated offline; default arguments, or ``n_samples`` sequences split 80/20), standardised with
    the train statistics; ``n_train`` keeps the first sequences of the train split only."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    if n_samples is not None:
        args.num_samples = n_samples
    data = make_dataset(args)
    x, y = np.asarray(data["x"], np.float32), np.asarray(data["y"], np.int64)
    if n_train is not None:
        x, y = x[:n_train], y[:n_train]
    mean, std = x.mean(), x.std()

    def pack(a, b):
        return torch.tensor((np.asarray(a, np.float32) - mean) / std), torch.tensor(np.asarray(b, np.int64))

    return {"train": pack(x, y), "test": pack(data["x_test"], data["y_test"])}


class Classifier(torch.nn.Module):
    """Encoder → ``depth`` pre-norm residual ``s5.S5`` blocks (GELU) → mean pool → decoder."""

    def __init__(self, width: int, states: int | list[int], depth: int) -> None:
        super().__init__()
        import s5

        sizes = [states] * depth if isinstance(states, int) else list(states)
        self.encoder = torch.nn.Linear(1, width)
        self.seqs = torch.nn.ModuleList([s5.S5(width=width, state_width=p) for p in sizes])
        self.norms = torch.nn.ModuleList([torch.nn.LayerNorm(width) for _ in range(depth)])
        self.decoder = torch.nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x[..., None])
        for seq, norm in zip(self.seqs, self.norms):
            h = h + torch.nn.functional.gelu(seq(norm(h)))
        return self.decoder(h.mean(dim=1))


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Test accuracy in %."""
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean()) * 100.0


def train(
    splits: dict,
    *,
    width: int,
    states: int,
    depth: int,
    epochs: int,
    weight: float,
    seed: int = 0,
    horizon: int | None = LENGTH,
):
    """Train one classifier; ``weight`` multiplies the Hankel-tail penalty (0: plain training)."""
    torch.manual_seed(seed)
    model = Classifier(width, states, depth)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    x, y = splits["train"]
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * ((len(x) + 63) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=steps)
    skipped = 0
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            batch = order[start : start + 64]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            if weight:
                try:
                    loss = loss + weight * stt.hankel_nuclear_penalty(model, order=states, horizon=horizon)
                except ssmtools.ArgumentError:  # a pole left the unit disc (s5-pytorch does not constrain Λ)
                    skipped += 1
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model, skipped


def prune_curve(
    model: Classifier, splits: dict, ratios: list[float], *, balanced_horizon: int | None = None
) -> list[dict[str, Any]]:
    """Test accuracy after one-shot pruning at every ratio: LAST (states masked), or with ``balanced_horizon``
    finite-horizon balanced truncation (states removed, the model rebuilt at its new sizes, loaded strictly)."""
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    width, depth = model.encoder.out_features, len(model.seqs)
    rows = []
    for ratio in ratios:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unstable trained states are reported by the plan
            try:
                if balanced_horizon is None:
                    pruned, plan = ssmtools.last_prune(params, ratio, mask=True, errors=False)
                else:
                    options = {"horizon": balanced_horizon}
                    pruned, plan = ssmtools.last_prune(
                        params, ratio, criterion="balanced", criterion_options=options, errors=False
                    )
            except ssmtools.SSMToolsError as error:  # recorded, not hidden: the curve has a gap at this ratio
                rows.append({"ratio": ratio, "error": str(error)})
                continue
        tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in pruned.items()}
        target = model
        if balanced_horizon is not None:
            sizes = [int(tensors[f"seqs.{i}.seq.Lambda"].shape[-1]) for i in range(depth)]
            target = Classifier(width, sizes, depth)
        target.load_state_dict(tensors, strict=True)
        rows.append({"ratio": ratio, "realized_ratio": plan.realized_ratio, "test": accuracy(target, *splits["test"])})
    model.load_state_dict(params)
    return rows


def tail_fraction(model: Classifier, states: int, horizon: int | None = None) -> float | None:
    """Share of the (finite-horizon, with ``horizon``) Hankel nuclear norm beyond order ``states``, summed over the
    layers (``None`` without a horizon if a layer is unstable: its infinite-horizon HSVs do not exist)."""
    try:
        with torch.no_grad():
            values = [
                stt.hankel_singular_values(s, accurate=False, horizon=horizon) for s in stt.systems(model).values()
            ]
    except ssmtools.ArgumentError:
        return None
    return float(sum(v[states:].sum() for v in values) / sum(v.sum() for v in values))


def unstable_states(model: Classifier) -> int:
    """Stored states with |λ̄| ≥ 1 over all layers."""
    return int(sum((s.poles.detach().abs() >= 1).sum() for s in stt.systems(model).values()))


def run(
    *,
    width: int = 32,
    states: int = 32,
    depth: int = 2,
    epochs: int = 8,
    weight: float = 1e-2,
    n_train: int | None = None,
    n_samples: int | None = None,
    ratios: list[float] | None = None,
    seed: int = 0,
    horizon: int | None = LENGTH,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Train both classifiers and prune them; returns the setup and, per variant, the curves (LAST: ``curve``;
    finite-horizon balanced truncation: ``curve_balanced``) and the HSV tail. ``cache``: a folder where each
    trained model is stored under a key of its training setup and reloaded by later runs (training is
    deterministic on one machine, so only pruning is redone); ``None`` trains every time."""
    ratios = RATIOS if ratios is None else ratios
    splits = mnist1d(n_train, n_samples)
    report: dict[str, Any] = {
        "setup": dict(
            width=width,
            states=states,
            depth=depth,
            epochs=epochs,
            weight=weight,
            seed=seed,
            horizon=horizon,
            n_train=len(splits["train"][0]),
            n_test=len(splits["test"][0]),
        ),
        "variants": {},
    }
    for label, w in (("plain", 0.0), (f"hankel tail, weight {weight:g}", weight)):
        setup = dict(width=width, states=states, depth=depth, epochs=epochs, weight=w, seed=seed, horizon=horizon)
        model, skipped, seconds = _trained(splits, setup, n_train=n_train, n_samples=n_samples, cache=cache)
        report["variants"][label] = {
            "train_seconds": seconds,
            "penalty_skipped_steps": skipped,
            "hankel_tail_fraction": tail_fraction(model, states, horizon),
            "unstable_states": unstable_states(model),
            "curve": prune_curve(model, splits, ratios),
            "curve_balanced": prune_curve(model, splits, ratios, balanced_horizon=horizon or LENGTH),
        }
    return report


def _trained(splits: dict, setup: dict[str, Any], *, n_train, n_samples, cache: Path | None):
    """``(model, skipped steps, training seconds)``: trained now, or reloaded from ``cache`` (the seconds and
    skipped steps of the run that trained it)."""
    key = "-".join(f"{k}{v}" for k, v in {**setup, "n_train": n_train, "n_samples": n_samples}.items())
    path = None if cache is None else cache / f"{key}.pt"
    if path is not None and path.exists():
        stored = torch.load(path, weights_only=True)
        model = Classifier(setup["width"], setup["states"], setup["depth"])
        model.load_state_dict(stored["state"], strict=True)
        return model, int(stored["skipped"]), float(stored["seconds"])
    start = time.perf_counter()
    model, skipped = train(splits, **setup)
    seconds = time.perf_counter() - start
    if path is not None:  # atomic: an interrupted run leaves no half-written cache entry
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"state": model.state_dict(), "skipped": skipped, "seconds": seconds}
        ssmtools.io.atomic_write(path, lambda f: torch.save(entry, f))
    return model, skipped, seconds


def plot(report: dict[str, Any], ax=None, title: str | None = None):
    """Accuracy vs realised pruning ratio, one line per variant."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    for k, (label, variant) in enumerate(report["variants"].items()):
        for key, style, method in (("curve", "o-", "LAST"), ("curve_balanced", "s--", "balanced, finite horizon")):
            if key in variant:
                curve = [r for r in variant[key] if "test" in r]
                x, y = [r["realized_ratio"] for r in curve], [r["test"] for r in curve]
                ax.plot(x, y, style, color=f"C{k}", label=f"{label} · {method}")
    ax.set_xlabel("pruning ratio (states removed)")
    ax.set_ylabel("test accuracy [%]")
    s = report["setup"]
    ax.set_title(title or f"s5-pytorch, H={s['width']}, P={s['states']}, {s['epochs']} epochs, n={s['n_train']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--weight", type=float, default=1e-2)
    parser.add_argument("--horizon", type=int, default=LENGTH, help="finite horizon of the penalty (0: infinite)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--cache", type=Path, default=CACHE, help="trained weights are kept and reused here")
    parser.add_argument("--no-cache", action="store_true", help="train both models again")
    options = parser.parse_args(argv)
    torch.set_num_threads(1)
    cache = None if options.no_cache else options.cache
    report = run(epochs=options.epochs, weight=options.weight, horizon=options.horizon or None, cache=cache)
    options.out.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    ax = plot(report)
    ax.figure.tight_layout()
    ssmtools.io.atomic_write_all(  # both results or neither
        [
            (options.out / "regularised.json", lambda f: f.write(json.dumps(report, indent=1).encode())),
            (options.out / "regularised.png", lambda f: ax.figure.savefig(f, format="png", dpi=120)),
        ]
    )
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

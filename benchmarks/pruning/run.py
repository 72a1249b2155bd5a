"""Pruning quality on trained models: one-shot pruning with every registered criterion, accuracy vs ratio.

``python benchmarks/pruning/run.py [--quick]`` trains (or reuses, from ``benchmarks/pruning/cache/``, git-ignored)
small MNIST-1D classifiers built on the real third-party layers — ``s5-pytorch`` (``s5.S5``) and ``LRU-pytorch``
(``LRU_pytorch.LRU``) — with fixed seeds, then for every method and ratio prunes one-shot with
:func:`ssmtools.last_prune`, physically removes the states, rebuilds the third-party model at its new per-layer
sizes, loads the pruned state dict with ``load_state_dict(strict=True)`` and measures validation and test
accuracy. It writes ``benchmarks/results/pruning/{results.json, tables.md, curves.png}``.

Data: MNIST-1D (``mnist1d``, generated offline with its default arguments: 4000 train / 1000 test sequences of
length 40), the train part split 3500 train / 500 validation. Every choice (e.g. the recommended default) is made
on the validation split; the test split is only reported.

LRU-pytorch's forward loops over samples and steps in Python (≈ 20 s for one batch of 128 here), so training and
evaluation use an equivalent convolution forward (:func:`lru_forward`) on the parameters of the strictly loaded
``LRU`` modules; every evaluated LRU checkpoint is checked against ``LRU.forward`` itself on a few test sequences.
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

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small LAPACK calls on a shared machine: one thread
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ssmtools  # noqa: E402
from ssmtools.pruning import available_criteria  # noqa: E402

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
RESULTS = ROOT / "benchmarks" / "results" / "pruning"
LENGTH = 40  # MNIST-1D sequence length: the horizon of the finite-horizon variants
WIDTH, STATES, DEPTH = 32, 32, 2  # H, stored states per layer (conjugate pairs for S5), layers
RATIOS_FULL = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
RATIOS_QUICK = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9]


# ------------------------------------------------------------------------------------------ data
def mnist1d_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """MNIST-1D with its default arguments, generated offline once and cached; standardised with train statistics."""
    path = CACHE / "mnist1d.npz"
    if not path.exists():
        from mnist1d.data import get_dataset_args, make_dataset

        data = make_dataset(get_dataset_args())
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=data["x"], y=data["y"], x_test=data["x_test"], y_test=data["y_test"])
    data = np.load(path)
    x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    mean, std = x[:3500].mean(), x[:3500].std()

    def pack(a, b):
        return torch.tensor((a - mean) / std, dtype=torch.float32), torch.tensor(b)

    return {
        "train": pack(x[:3500], y[:3500]),
        "val": pack(x[3500:], y[3500:]),
        "test": pack(data["x_test"].astype(np.float32), data["y_test"].astype(np.int64)),
    }


# ------------------------------------------------------------------------------------------ models
def lru_forward(layer: torch.nn.Module, u: torch.Tensor) -> torch.Tensor:
    """``LRU_pytorch.LRU.forward`` as a causal convolution: ``y_t = Σ_k Re(C Λᵏ diag(γ) B) u_{t−k} + D u_t``."""
    lam = torch.exp(-torch.exp(layer.nu_log) + 1j * torch.exp(layer.theta_log))  # (N,)
    gamma = torch.exp(layer.gamma_log)
    steps = torch.arange(u.shape[1], dtype=torch.float32)
    powers = lam[None, :] ** steps[:, None]  # (L, N)
    kernel = torch.einsum("on,kn,ni->koi", layer.C, powers.to(layer.C.dtype), (gamma[:, None] * layer.B)).real
    L = u.shape[1]
    index = torch.arange(L)[:, None] - torch.arange(L)[None, :]  # t − s
    toeplitz = kernel[index.clamp(min=0)] * (index >= 0)[..., None, None]  # (L, L, out, in)
    return torch.einsum("tsoi,bsi->bto", toeplitz, u) + u @ layer.D.T


class Classifier(torch.nn.Module):
    """Encoder → ``DEPTH`` pre-norm residual blocks (third-party SSM layer, GELU) → mean pool → decoder."""

    def __init__(self, kind: str, states: list[int]):
        super().__init__()
        import s5
        from LRU_pytorch import LRU

        self.kind = kind
        self.encoder = torch.nn.Linear(1, WIDTH)
        if kind == "s5":  # s5-pytorch stores state_width conjugate-symmetric states (output 2 Re)
            self.seqs = torch.nn.ModuleList([s5.S5(width=WIDTH, state_width=p) for p in states])
        else:
            self.seqs = torch.nn.ModuleList([LRU(WIDTH, WIDTH, p) for p in states])
        self.norms = torch.nn.ModuleList([torch.nn.LayerNorm(WIDTH) for _ in states])
        self.decoder = torch.nn.Linear(WIDTH, 10)

    def forward(self, x: torch.Tensor, *, reference: bool = False) -> torch.Tensor:
        h = self.encoder(x[..., None])
        for seq, norm in zip(self.seqs, self.norms):
            z = norm(h)
            z = seq(z) if (self.kind == "s5" or reference) else lru_forward(seq, z)
            h = h + torch.nn.functional.gelu(z)
        return self.decoder(h.mean(dim=1))


def state_sizes(kind: str, params: dict[str, torch.Tensor]) -> list[int]:
    """Stored states per layer from a (pruned) state dict."""
    key = "seq.Lambda" if kind == "s5" else "nu_log"
    return [int(params[f"seqs.{i}.{key}"].shape[0]) for i in range(DEPTH)]


def accuracy(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean()) * 100.0


def train(kind: str, seed: int, splits: dict, epochs: int) -> dict[str, torch.Tensor]:
    """Train one classifier (cached by kind, seed, epochs and sizes)."""
    path = CACHE / f"{kind}-H{WIDTH}-P{STATES}-L{DEPTH}-e{epochs}-seed{seed}.pt"
    if path.exists():
        return torch.load(path)
    torch.manual_seed(seed)
    model = Classifier(kind, [STATES] * DEPTH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    x, y = splits["train"]
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * ((len(x) + 63) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=steps)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            batch = order[start : start + 64]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(params, path)
    return params


# ------------------------------------------------------------------------------------------ methods
def methods() -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(label, criterion, criterion options, reduction): every registered criterion with its default reduction,
    the finite-horizon balanced variant over the sequence length, and singular perturbation."""
    out: list[tuple[str, str, dict[str, Any], str | None]] = [(name, name, {}, None) for name in available_criteria()]
    out.append((f"balanced-h{LENGTH}", "balanced", {"horizon": LENGTH}, None))
    out.append(("singular-perturbation", "balanced", {}, "singular-perturbation"))
    return out


def evaluate(
    kind: str, params: dict, ratio: float, criterion: str, options: dict, splits: dict, reduction: str | None = None
) -> dict[str, Any]:
    """Prune one-shot, rebuild the third-party model at its new sizes, load strictly, measure accuracy."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unstable trained states are reported by the plan; not an error here
        pruned, plan = ssmtools.last_prune(
            params, ratio, criterion, criterion_options=options, reduction=reduction, errors=False
        )
    pruned = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for k, v in pruned.items()}
    model = Classifier(kind, state_sizes(kind, pruned))
    model.load_state_dict(pruned, strict=True)
    model.eval()
    row = {
        "ratio": ratio,
        "realized_ratio": plan.realized_ratio,
        "sizes": state_sizes(kind, pruned),
        "val": accuracy(model, *splits["val"]),
        "test": accuracy(model, *splits["test"]),
        "unstable": int(sum(layer.n_unstable for layer in plan.layers)),
    }
    if kind == "lru":  # the convolution forward must be LRU.forward itself
        x = splits["test"][0][:4]
        with torch.no_grad():
            gap = float((model(x) - model(x, reference=True)).abs().max())
        row["reference_gap"] = gap
    row["seconds"] = time.perf_counter() - start
    return row


def max_ratio(rows: list[dict], split: str, base: float, tolerance: float = 1.0) -> float:
    """Largest realised ratio whose accuracy on ``split`` is within ``tolerance`` points of ``base``."""
    ok = [r["realized_ratio"] for r in rows if "error" not in r and r[split] >= base - tolerance]
    return max(ok, default=0.0)


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer ratios, shorter training (~minutes)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3, --quick 1)")
    parser.add_argument("--models", default="s5,lru", help="comma-separated: s5, lru")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 8, --quick 5)")
    parser.add_argument("--ratios", default=None, help="comma-separated ratios (default: 13 from 0 to 0.95, --quick 6)")
    parser.add_argument("--out", default=str(RESULTS), help="results folder (default benchmarks/results/pruning)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    epochs = args.epochs if args.epochs is not None else (5 if args.quick else 8)
    ratios = RATIOS_QUICK if args.quick else RATIOS_FULL
    if args.ratios:
        ratios = sorted({0.0, *(float(r) for r in args.ratios.split(","))})
    splits = mnist1d_splits()
    report: dict[str, Any] = {"task": "mnist1d", "length": LENGTH, "width": WIDTH, "states": STATES, "depth": DEPTH}
    report.update(epochs=epochs, seeds=seeds, ratios=ratios, models={})
    started = time.perf_counter()
    for kind in args.models.split(","):
        per_method: dict[str, Any] = {label: {"rows": {}} for label, _, _, _ in methods()}
        bases = {}
        for seed in seeds:
            params = train(kind, seed, splits, epochs)
            base = evaluate(kind, params, 0.0, "last", {}, splits)
            bases[seed] = base
            print(f"[{kind} seed {seed}] unpruned val {base['val']:.1f} test {base['test']:.1f}", flush=True)
            for label, criterion, options, reduction in methods():
                rows = []
                for ratio in ratios:
                    try:
                        row = (
                            base
                            if ratio == 0.0
                            else evaluate(kind, params, ratio, criterion, options, splits, reduction)
                        )
                    except Exception as error:  # a method that cannot handle the model: record why
                        row = {"ratio": ratio, "error": f"{type(error).__name__}: {error}"[:300]}
                    rows.append(row)
                per_method[label]["rows"][seed] = rows
                best = max_ratio(rows, "test", base["test"])
                print(f"  {label:>16}: max ratio at ≤1 pt test loss {best:.2f}", flush=True)
        for entry in per_method.values():
            for split in ("val", "test"):
                values = [max_ratio(entry["rows"][s], split, bases[s][split]) for s in seeds]
                entry[f"max_ratio_{split}"] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
                entry[f"max_ratio_{split}_per_seed"] = values
        report["models"][kind] = {"base": bases, "methods": per_method}
    report["seconds"] = time.perf_counter() - started
    write(report, Path(args.out))
    return report


def write(report: dict[str, Any], folder: Path) -> None:
    """results.json, tables.md and curves.png in ``folder`` (atomic writes)."""
    from ssmtools.io import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1, default=str)
    atomic_write(folder / "results.json", lambda f: f.write(text.encode()))
    atomic_write(folder / "tables.md", lambda f: f.write(tables(report).encode()))
    figure(report, folder)


def tables(report: dict[str, Any]) -> str:
    lines = [
        f"MNIST-1D (L = {report['length']}), {report['depth']} layers, H = {report['width']}, "
        f"{report['states']} stored states per layer, {report['epochs']} epochs, seeds {report['seeds']}; "
        f"one-shot pruning, no retraining; {report['seconds'] / 60:.1f} min in all.",
        "",
    ]
    for kind, entry in report["models"].items():
        bases = entry["base"]
        base_val = np.mean([b["val"] for b in bases.values()])
        base_test = np.mean([b["test"] for b in bases.values()])
        lines += [
            f"### {kind} (unpruned: val {base_val:.1f} %, test {base_test:.1f} %)",
            "",
            "Largest realised pruning ratio whose accuracy stays within 1 point of the unpruned model "
            "(mean ± std over seeds), and test accuracy at each ratio (mean over seeds; `x` = method failed).",
            "",
        ]
        ratios = report["ratios"][1:]
        lines.append(
            "| method | max ratio (val) | max ratio (test) | " + " | ".join(f"{100 * r:g} %" for r in ratios) + " |"
        )
        lines.append("|---|---|---|" + "---|" * len(ratios))
        order = sorted(entry["methods"].items(), key=lambda item: -item[1]["max_ratio_val"]["mean"])
        for label, method in order:
            cells = []
            for index in range(1, len(report["ratios"])):
                values = [rows[index] for rows in method["rows"].values()]
                good = [v["test"] for v in values if "error" not in v]
                cells.append(f"{np.mean(good):.1f}" if len(good) == len(values) else "x")
            v, t = method["max_ratio_val"], method["max_ratio_test"]
            lines.append(
                f"| {label} | {100 * v['mean']:.0f} ± {100 * v['std']:.0f} % | {100 * t['mean']:.0f} ± "
                f"{100 * t['std']:.0f} % | " + " | ".join(cells) + " |"
            )
        lines.append("")
    return "\n".join(lines)


def figure(report: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(report["models"])
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.5 * len(kinds), 4.5), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        colours = plt.cm.tab20(np.linspace(0, 1, 20))
        for number, (label, method) in enumerate(report["models"][kind]["methods"].items()):
            ratios, means = [], []
            for index in range(len(report["ratios"])):
                values = [rows[index] for rows in method["rows"].values()]
                if all("error" not in v for v in values):
                    ratios.append(100 * np.mean([v["realized_ratio"] for v in values]))
                    means.append(np.mean([v["test"] for v in values]))
            style = "-" if label.startswith(("balanced", "singular")) else "--"
            width = 2.0 if label.startswith(("balanced", "singular")) else 1.0
            ax.plot(ratios, means, style, marker="o", markersize=3, label=label, color=colours[number], lw=width)
        ax.set_title(f"{kind} on MNIST-1D (one-shot, no retraining)")
        ax.set_xlabel("states removed (%, realised)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = folder / "curves.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


if __name__ == "__main__":
    main()

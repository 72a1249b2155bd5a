"""Pruning quality on trained models: one-shot pruning with every registered method, accuracy vs ratio.

``python benchmarks/pruning/run.py [--quick] [--jobs 2] [--docs]`` trains (or reuses, from
``benchmarks/pruning/cache/``, git-ignored) small classifiers built on three SSM layers — the real third-party
``s5-pytorch`` (``s5.S5``) and ``LRU-pytorch`` (``LRU_pytorch.LRU``), and S4D written here after the s4 repo's
minimal ``S4DKernel`` (:class:`S4DKernel`) — on two tasks, with fixed seeds, then for every method and ratio
prunes one-shot with :func:`ssmtools.last_prune`, physically removes the states, rebuilds the model at its new
per-layer sizes, loads the pruned state dict with ``load_state_dict(strict=True)`` and measures validation and
test accuracy. It writes ``results.json``, ``tables.md`` and one ``curves-<task>-<model>.png`` per model and task
to ``benchmarks/results/pruning/`` (``--docs`` also copies the figures to ``docs/img/pruning-<task>-<model>.png``).

Tasks (no download):

- ``mnist1d``: MNIST-1D (``mnist1d``, generated offline with its default arguments: 4000 train / 1000 test
  sequences of length 40), the train part split 3500 train / 500 validation.
- ``sines``: synthetic burst-frequency classification written here (:func:`sines_splits`, numpy seed 1234):
  white noise (σ = 1) of length 64 containing, at a random start in the first 32 steps, a burst of 16–32 steps of
  a sinusoid of random phase and amplitude 0.6–1.2 whose frequency is one of 8 classes (0.04 + 0.03·c cycles per
  step, jittered by ±0.006); 3000 train / 500 validation / 1000 test sequences. The label is a frequency seen
  only during the burst, so the layers must act as narrow band-pass filters over tens of steps.

Methods come from the registries, so a newly registered criterion or reduction appears without editing this file
(:func:`methods`): every criterion with its default reduction, and every reduction that does not select original
states (balanced truncation, singular perturbation, ...) driven by the Hankel-slot criterion, with the horizon set
to the sequence length, plus one-at-a-time variants (infinite horizon; every value of an ``*allocation`` option).
Methods that fail on every ratio (e.g. the data-aware ``gramian``, which needs calibrated Mamba layers) are listed
apart. Every choice (recommended method, horizon, allocation) is read on the validation split; the test split is
only reported.

LRU-pytorch's forward loops over samples and steps in Python, so training and evaluation use an equivalent FFT
convolution (:func:`lru_forward`) on the parameters of the strictly loaded ``LRU`` modules; every evaluated LRU
checkpoint is checked against ``LRU.forward`` itself on one test sequence (``reference_gap`` in the JSON).
Reproducible bit for bit on one machine: fixed seeds, one thread per process, deterministic algorithms; the
(task, model, seed) units run in ``--jobs`` processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small LAPACK calls on a shared machine: one thread
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import s5  # noqa: E402
import torch  # noqa: E402
from LRU_pytorch import LRU  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ssmtools  # noqa: E402
from ssmtools.pruning import available_criteria, available_reductions, get_criterion, get_reduction  # noqa: E402

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
RESULTS = ROOT / "benchmarks" / "results" / "pruning"
DOCS_IMG = ROOT / "docs" / "img"
WIDTH, DEPTH = 32, 2  # channels H, layers
# stored states per layer: conjugate pairs for S5, modes per channel (N/2, shared by the H channels) for S4D
STATES = {"s5": 32, "lru": 32, "s4d": 16}
RATIOS_FULL = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9]
FAIL_FAST = 2  # a method that failed at the first FAIL_FAST nonzero ratios is not run at the others
RATIOS_QUICK = [0.0, 0.5, 0.7, 0.8]
EPOCHS = {"s5": 12, "lru": 12, "s4d": 12}  # full run (one-cycle schedule, peak learning rate 1e-2)
MODELS = ("s5", "lru", "s4d")
Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]


# ------------------------------------------------------------------------------------------ tasks
def _standardised(x: np.ndarray, y: np.ndarray, parts: dict[str, slice], x_test=None, y_test=None) -> Splits:
    """Train/val(/test) tensors standardised with the train statistics."""
    train = x[parts["train"]]
    mean, std = train.mean(), train.std()

    def pack(a, b):
        return torch.tensor((a - mean) / std, dtype=torch.float32), torch.tensor(b, dtype=torch.int64)

    out = {name: pack(x[index], y[index]) for name, index in parts.items()}
    if x_test is not None:
        out["test"] = pack(x_test, y_test)
    return out


def mnist1d_splits() -> Splits:
    """MNIST-1D with its default arguments, generated offline once and cached; standardised with train statistics."""
    path = CACHE / "mnist1d.npz"
    if not path.exists():
        from mnist1d.data import get_dataset_args, make_dataset

        data = make_dataset(get_dataset_args())
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path.with_suffix(".tmp.npz"), x=data["x"], y=data["y"], x_test=data["x_test"], y_test=data["y_test"])
        path.with_suffix(".tmp.npz").replace(path)
    data = np.load(path)
    x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    parts = {"train": slice(0, 3500), "val": slice(3500, None)}
    return _standardised(x, y, parts, data["x_test"].astype(np.float32), data["y_test"].astype(np.int64))


def sines_splits(n_train: int = 3000, n_val: int = 500, n_test: int = 1000, length: int = 64) -> Splits:
    """Burst-frequency classification (see the module docstring); deterministic (numpy seed 1234)."""
    rng = np.random.default_rng(1234)
    n = n_train + n_val + n_test
    label = rng.integers(0, 8, n)
    freq = 0.04 + 0.03 * label + rng.uniform(-0.006, 0.006, n)
    start = rng.integers(0, length // 2, n)
    span = rng.integers(16, 33, n)
    t = np.arange(length)[None, :]
    window = (t >= start[:, None]) & (t < (start + span)[:, None])
    burst = rng.uniform(0.6, 1.2, n)[:, None] * np.sin(
        2 * np.pi * freq[:, None] * t + rng.uniform(0, 2 * np.pi, n)[:, None]
    )
    x = (rng.standard_normal((n, length)) + window * burst).astype(np.float32)
    parts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, n)}
    return _standardised(x, label.astype(np.int64), parts)


@dataclass(frozen=True)
class Task:
    """A classification task: its sequence length (the finite horizon), classes and data."""

    name: str
    length: int
    classes: int
    splits: Callable[[], Splits]


TASKS = {
    "mnist1d": Task("mnist1d", 40, 10, mnist1d_splits),
    "sines": Task("sines", 64, 8, sines_splits),
}


# ------------------------------------------------------------------------------------------ models
def _causal_conv(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``y_t = Σ_k K_k u_{t−k}`` by FFT; ``u`` (B, L, in), ``kernel`` (L, out, in) or (L, H) (per channel)."""
    L = u.shape[1]
    uf = torch.fft.rfft(u, n=2 * L, dim=1)
    kf = torch.fft.rfft(kernel, n=2 * L, dim=0)
    yf = uf * kf if kernel.dim() == 2 else torch.einsum("foi,bfi->bfo", kf, uf)
    return torch.fft.irfft(yf, n=2 * L, dim=1)[:, :L]


def lru_forward(layer: torch.nn.Module, u: torch.Tensor) -> torch.Tensor:
    """``LRU_pytorch.LRU.forward`` as a causal convolution: ``y_t = Σ_k Re(C Λᵏ diag(γ) B) u_{t−k} + D u_t``."""
    lam = torch.exp(-torch.exp(layer.nu_log) + 1j * torch.exp(layer.theta_log))  # (N,)
    gamma = torch.exp(layer.gamma_log)
    steps = torch.arange(u.shape[1], dtype=torch.float32)
    powers = lam[None, :] ** steps[:, None]  # (L, N)
    kernel = torch.einsum("on,kn,ni->koi", layer.C, powers.to(layer.C.dtype), (gamma[:, None] * layer.B)).real
    return _causal_conv(u, kernel) + u @ layer.D.T


class S4DKernel(torch.nn.Module):
    """The s4 repo's minimal S4D kernel (``models/s4/s4d.py``): ZOH, ``A = −exp(log_A_real) + i·A_imag``.

    ``K_l = 2 Re Σ_n C_n (exp(ΔA_n) − 1)/A_n · exp(ΔA_n l)`` per channel, with the repo's initialisation
    (S4D-Lin: ``A = −1/2 + iπn``, ``log Δ`` uniform in ``[log 0.001, log 0.1]``, ``C`` standard complex normal).
    """

    def __init__(self, width: int, modes: int):
        super().__init__()
        self.log_dt = torch.nn.Parameter(torch.rand(width) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
        self.C = torch.nn.Parameter(torch.view_as_real(torch.randn(width, modes, dtype=torch.cfloat)))
        self.log_A_real = torch.nn.Parameter(torch.log(0.5 * torch.ones(width, modes)))
        self.A_imag = torch.nn.Parameter(math.pi * torch.arange(modes, dtype=torch.float32).repeat(width, 1))

    def forward(self, length: int) -> torch.Tensor:
        dt_a = (-torch.exp(self.log_A_real) + 1j * self.A_imag) * torch.exp(self.log_dt)[:, None]  # (H, N/2)
        c = torch.view_as_complex(self.C) * (torch.exp(dt_a) - 1.0) / (-torch.exp(self.log_A_real) + 1j * self.A_imag)
        powers = torch.exp(dt_a[..., None] * torch.arange(length, dtype=torch.float32))  # (H, N/2, L)
        return 2 * torch.einsum("hn,hnl->hl", c, powers).real  # (H, L)


class S4D(torch.nn.Module):
    """S4D convolution ``y = K * u + D ⊙ u`` (kernel under ``kernel.``, ``D`` in this module, as the s4 repo)."""

    def __init__(self, width: int, modes: int):
        super().__init__()
        self.kernel = S4DKernel(width, modes)
        self.D = torch.nn.Parameter(torch.randn(width))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return _causal_conv(u, self.kernel(u.shape[1]).T) + u * self.D


SIZE_KEYS = {"s5": ("seqs.{}.seq.Lambda", 0), "lru": ("seqs.{}.nu_log", 0), "s4d": ("seqs.{}.kernel.log_A_real", 1)}


class Classifier(torch.nn.Module):
    """Encoder → ``DEPTH`` pre-norm residual blocks (SSM layer, GELU) → mean pool → decoder."""

    def __init__(self, kind: str, states: list[int], classes: int = 10, width: int = WIDTH):
        super().__init__()
        self.kind = kind
        self.encoder = torch.nn.Linear(1, width)
        if kind == "s5":  # s5-pytorch stores state_width conjugate-symmetric states (output 2 Re)
            self.seqs = torch.nn.ModuleList([s5.S5(width=width, state_width=p) for p in states])
        elif kind == "lru":
            self.seqs = torch.nn.ModuleList([LRU(width, width, p) for p in states])
        else:
            self.seqs = torch.nn.ModuleList([S4D(width, p) for p in states])
        self.norms = torch.nn.ModuleList([torch.nn.LayerNorm(width) for _ in states])
        self.decoder = torch.nn.Linear(width, classes)

    def forward(self, x: torch.Tensor, *, reference: bool = False) -> torch.Tensor:
        h = self.encoder(x[..., None])
        for seq, norm in zip(self.seqs, self.norms):
            z = norm(h)
            z = lru_forward(seq, z) if (self.kind == "lru" and not reference) else seq(z)
            h = h + torch.nn.functional.gelu(z)
        return self.decoder(h.mean(dim=1))


def state_sizes(kind: str, params: dict[str, torch.Tensor]) -> list[int]:
    """Stored states per layer from a (pruned) state dict."""
    key, axis = SIZE_KEYS[kind]
    return [int(params[key.format(i)].shape[axis]) for i in range(DEPTH)]


def accuracy(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean()) * 100.0


def train(kind: str, task: Task, seed: int, splits: Splits, epochs: int, width: int = WIDTH) -> dict[str, torch.Tensor]:
    """Train one classifier (AdamW, one-cycle schedule, batch 64), cached by task, kind, seed, epochs and sizes."""
    path = CACHE / f"{task.name}-{kind}-H{width}-P{STATES[kind]}-L{DEPTH}-e{epochs}-seed{seed}.pt"
    if path.exists():
        return torch.load(path)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    model = Classifier(kind, [STATES[kind]] * DEPTH, task.classes, width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    x, y = splits["train"]
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * ((len(x) + 63) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps)
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
    torch.save(params, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return params


# ------------------------------------------------------------------------------------------ methods
@dataclass(frozen=True)
class Method:
    """One pruning method: a criterion and a reduction (None: the criterion's default) with their options."""

    label: str
    criterion: str
    criterion_options: dict[str, Any] = field(default_factory=dict)
    reduction: str | None = None
    reduction_options: dict[str, Any] = field(default_factory=dict)


def _choices(obj: Any, length: int) -> dict[str, list[Any]]:
    """The options of a registered object worth varying: ``horizon`` (L, ∞) and every ``*allocation`` Literal."""
    hints = typing.get_type_hints(type(obj))
    out: dict[str, list[Any]] = {}
    for f in dataclasses.fields(obj) if dataclasses.is_dataclass(obj) else ():
        if f.name == "horizon":
            out[f.name] = [length, None]
        elif "allocation" in f.name and typing.get_origin(hints[f.name]) is typing.Literal:
            default = getattr(obj, f.name)
            out[f.name] = [default, *(v for v in typing.get_args(hints[f.name]) if v != default)]
    return out


def methods(length: int) -> list[Method]:
    """Every registered criterion (default reduction) and every non-selecting reduction with its variants.

    A reduction that does not keep original states (``selects_states`` False) is driven by each criterion whose
    default reduction does not either (the Hankel-slot criterion ``balanced``); its base variant sets every
    ``horizon`` option to the sequence length ``length``; the variants change one option at a time (infinite
    horizon, the other values of ``*allocation`` options; the criterion's allocation options only with the first
    such reduction, to bound the runtime).
    """
    out = {}
    slot = [n for n in available_criteria() if not get_reduction(get_criterion(n).default_reduction).selects_states]
    for name in available_criteria():
        if name not in slot:
            out[(name, "", None, "")] = Method(name, name)
    for crit_name in slot:
        criterion = get_criterion(crit_name)
        projections = [name for name in available_reductions() if not get_reduction(name).selects_states]
        for number, red_name in enumerate(projections):
            reduction = get_reduction(red_name)
            choices = {("c", k): v for k, v in _choices(criterion, length).items()}
            choices.update({("r", k): v for k, v in _choices(reduction, length).items()})
            base = {key: values[0] for key, values in choices.items()}
            variants = (
                [base]
                + [  # allocation variants with the first reduction only (runtime)
                    {**base, key: value}
                    for key, values in choices.items()
                    if key[1] != "horizon" and (number == 0 or key[0] == "r")
                    for value in values[1:]
                ]
            )
            horizon_keys = [key for key in choices if key[1] == "horizon"]
            if horizon_keys:  # criterion and reduction horizons change together
                variants.append({**base, **{key: None for key in horizon_keys}})
            for variant in variants:
                c_opts = {k: v for (side, k), v in variant.items() if side == "c"}
                r_opts = {k: v for (side, k), v in variant.items() if side == "r"}
                horizon = next((v for (_, k), v in variant.items() if k == "horizon"), "none")
                parts = [red_name if len(slot) == 1 else f"{crit_name}/{red_name}"]
                if horizon != "none":
                    parts.append(f"h{horizon}" if horizon is not None else "h∞")
                parts += [f"{k}={v}" for (_, k), v in variant.items() if k != "horizon" and v != base[(_, k)]]
                key = (crit_name, json.dumps(c_opts, sort_keys=True), red_name, json.dumps(r_opts, sort_keys=True))
                out.setdefault(key, Method(" ".join(parts), crit_name, c_opts, red_name, r_opts))
    return list(out.values())


# ------------------------------------------------------------------------------------------ evaluation
def _digest(params: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(params):
        h.update(key.encode())
        h.update(params[key].detach().cpu().numpy().tobytes())
    return h.hexdigest()


def evaluate(
    kind: str,
    params: dict,
    ratio: float,
    method: Method,
    splits: Splits,
    classes: int = 10,
    seen: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """Prune one-shot, rebuild the model at its new sizes, load strictly, measure accuracy.

    ``seen`` caches accuracies by the pruned weights' digest (different criteria often keep the same states).
    """
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unstable trained states are reported by the plan; not an error here
        pruned, plan = ssmtools.last_prune(
            params,
            ratio,
            method.criterion,
            criterion_options=method.criterion_options,
            reduction=method.reduction,
            reduction_options=method.reduction_options,
            errors=False,
        )
    pruned = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for k, v in pruned.items()}
    width = int(params["encoder.weight"].shape[0])
    model = Classifier(kind, state_sizes(kind, pruned), classes, width)
    model.load_state_dict(pruned, strict=True)
    model.eval()
    row: dict[str, Any] = {"ratio": ratio, "realized_ratio": plan.realized_ratio, "sizes": state_sizes(kind, pruned)}
    row["unstable"] = int(sum(layer.n_unstable for layer in plan.layers))
    digest = _digest(pruned)
    if seen is not None and digest in seen:
        row.update(seen[digest])
    else:
        row.update(val=accuracy(model, *splits["val"]), test=accuracy(model, *splits["test"]))
        if kind == "lru":  # the convolution forward must be LRU.forward itself
            x = splits["test"][0][:1]
            with torch.no_grad():
                row["reference_gap"] = float((model(x) - model(x, reference=True)).abs().max())
        if seen is not None:
            seen[digest] = {k: row[k] for k in ("val", "test", "reference_gap") if k in row}
    row["seconds"] = time.perf_counter() - start
    return row


def max_ratio(rows: list[dict], split: str, base: float, tolerance: float = 1.0) -> float:
    """Largest realised ratio whose accuracy on ``split`` is within ``tolerance`` points of ``base``."""
    ok = [r["realized_ratio"] for r in rows if "error" not in r and r[split] >= base - tolerance]
    return max(ok, default=0.0)


def evaluate_method(
    kind: str, params: dict, base: dict, method: Method, ratios: list[float], splits: Splits, classes: int, seen: dict
) -> list[dict]:
    """One method at every ratio; a method that failed at the first ``FAIL_FAST`` ratios is not run at the others."""
    rows: list[dict] = []
    for ratio in ratios:
        failed = [r["error"] for r in rows[1:] if "error" in r]
        if len(failed) >= FAIL_FAST and len(failed) == len(rows) - 1:
            rows.append({"ratio": ratio, "error": failed[0], "skipped": True})
            continue
        try:
            rows.append(base if ratio == 0.0 else evaluate(kind, params, ratio, method, splits, classes, seen))
        except Exception as error:  # a method that cannot handle the model: record why
            rows.append({"ratio": ratio, "error": f"{type(error).__name__}: {error}"[:300]})
    return rows


def _store(task: str, kind: str, seed: int, epochs: int) -> Path:
    """The cached rows of one unit: method (options, ratios) → rows."""
    return CACHE / "evals" / f"{task}-{kind}-P{STATES[kind]}-e{epochs}-seed{seed}.json"


def _key(method: Method, ratios: list[float]) -> str:
    return json.dumps([dataclasses.asdict(method), ratios], sort_keys=True)


def _failed(rows: list[dict]) -> bool:
    """Whether a method's cached rows hold an error (a ratio that raised, or one skipped after such)."""
    return any("error" in row for row in rows)


def is_cached(task: str, kind: str, seed: int, epochs: int, ratios: list[float], retry: bool = False) -> bool:
    """Whether every method of a unit has cached rows (a rerun of it only reads them); with ``retry``, rows
    without errors."""
    store = _store(task, kind, seed, epochs)
    done = json.loads(store.read_text()) if store.exists() else {}
    keys = [_key(method, ratios) for method in methods(TASKS[task].length)]
    return all(key in done and not (retry and _failed(done[key])) for key in keys)


def run_unit(unit: tuple[str, str, int, int, list[float], bool]) -> dict[str, Any]:
    """Train (or load) one (task, model, seed) and evaluate every method at every ratio.

    Each method's rows are cached (``cache/evals/``, keyed by the method, its options and the ratios), so a rerun
    evaluates only new methods — and, with the unit's last element (``--retry-errors``) True, the methods whose
    cached rows hold an error; delete that folder after changing ssmtools' pruning code otherwise.
    """
    task_name, kind, seed, epochs, ratios, retry = unit
    torch.set_num_threads(1)
    task = TASKS[task_name]
    splits = task.splits()
    started, cpu = time.perf_counter(), time.process_time()
    params = train(kind, task, seed, splits, epochs)
    trained = time.perf_counter() - started
    seen: dict[str, dict] = {}
    base = evaluate(kind, params, 0.0, Method("last", "last"), splits, task.classes, seen)
    store = _store(task_name, kind, seed, epochs)
    done = json.loads(store.read_text()) if store.exists() else {}  # method (options, ratios) → rows
    rows: dict[str, list[dict]] = {}
    for method in methods(task.length):
        key = _key(method, ratios)
        if key not in done or (retry and _failed(done[key])):
            done[key] = evaluate_method(kind, params, base, method, ratios, splits, task.classes, seen)
            store.parent.mkdir(parents=True, exist_ok=True)
            store.with_suffix(".tmp").write_text(json.dumps(done))
            store.with_suffix(".tmp").replace(store)
        rows[method.label] = done[key]
    seconds = time.perf_counter() - started
    print(
        f"[{task_name} {kind} seed {seed}] unpruned val {base['val']:.1f} test {base['test']:.1f}; "
        f"train {trained:.0f} s, all {seconds:.0f} s",
        flush=True,
    )
    cpu = time.process_time() - cpu  # this process's CPU time: the load-independent cost of the unit
    return {"task": task_name, "kind": kind, "seed": seed, "base": base, "rows": rows, "seconds": seconds, "cpu": cpu}


def summarise(units: list[dict]) -> dict[str, Any]:
    """Per task and model: bases per seed and, per method, rows per seed and max ratios (mean ± std over the seeds
    done)."""
    out: dict[str, Any] = {}
    for unit in units:
        entry = out.setdefault(unit["task"], {}).setdefault(unit["kind"], {"base": {}, "methods": {}})
        entry["base"][unit["seed"]] = unit["base"]
        for label, rows in unit["rows"].items():
            entry["methods"].setdefault(label, {"rows": {}})["rows"][unit["seed"]] = rows
    for models in out.values():
        for entry in models.values():
            seeds = sorted(entry["base"])
            for method in entry["methods"].values():
                method["failed"] = all("error" in r for rows in method["rows"].values() for r in rows[1:])
                for split in ("val", "test"):
                    values = [max_ratio(method["rows"][s], split, entry["base"][s][split]) for s in seeds]
                    method[f"max_ratio_{split}"] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
                    method[f"max_ratio_{split}_per_seed"] = values
    return out


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 4 ratios, a third of the epochs (~minutes)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3, --quick 1)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: s5, lru, s4d")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: " + ", ".join(TASKS))
    parser.add_argument("--epochs", type=int, default=None, help="training epochs for every model (default per model)")
    parser.add_argument("--ratios", default=None, help="comma-separated ratios (default 0.3–0.9, --quick 0.5–0.8)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one thread each (default 2)")
    parser.add_argument("--out", default=str(RESULTS), help="results folder (default benchmarks/results/pruning)")
    parser.add_argument("--docs", action="store_true", help="also copy the figures to docs/img/pruning-*.png")
    parser.add_argument("--cached-only", action="store_true", help="report only the units whose results are cached")
    parser.add_argument("--replot", action="store_true", help="rewrite tables and figures from <out>/results.json")
    parser.add_argument(
        "--retry-errors", action="store_true", help="rerun the cached methods whose rows recorded an error"
    )
    args = parser.parse_args(argv)
    if args.replot:
        report = json.loads((Path(args.out) / "results.json").read_text())
        write(report, Path(args.out), DOCS_IMG if args.docs else None)
        return report
    started = time.perf_counter()
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    ratios = RATIOS_QUICK if args.quick else RATIOS_FULL
    if args.ratios:
        ratios = sorted({0.0, *(float(r) for r in args.ratios.split(","))})
    models, tasks = args.models.split(","), args.tasks.split(",")
    epochs = {kind: args.epochs or (max(1, EPOCHS[kind] // 3) if args.quick else EPOCHS[kind]) for kind in models}
    if "mnist1d" in tasks:
        mnist1d_splits()  # generate the cached data once, before the workers start
    units = [
        (task, kind, seed, epochs[kind], ratios, args.retry_errors)
        for seed in seeds
        for task in tasks
        for kind in models
    ]
    if args.cached_only:
        units = [unit for unit in units if is_cached(*unit)]
    report: dict[str, Any] = {"width": WIDTH, "states": STATES, "depth": DEPTH, "epochs": epochs, "seeds": seeds}
    report.update(ratios=ratios, lengths={t: TASKS[t].length for t in tasks}, jobs=args.jobs)
    report["cached_only"] = args.cached_only
    done: list[dict] = []
    pool = multiprocessing.get_context("fork").Pool(args.jobs) if args.jobs > 1 else None
    try:  # seed-major order, and the report rewritten after every unit: a partial run leaves usable tables
        for unit in pool.imap(run_unit, units) if pool else map(run_unit, units):
            done.append(unit)
            report["tasks"] = summarise(done)
            report["unit_seconds"] = {f"{u['task']}/{u['kind']}/{u['seed']}": u["seconds"] for u in done}
            report["unit_cpu_seconds"] = {f"{u['task']}/{u['kind']}/{u['seed']}": u["cpu"] for u in done}
            report["seconds"] = time.perf_counter() - started
            report["complete"] = len(done) == len(units)
            write(report, Path(args.out), DOCS_IMG if args.docs else None)
    finally:
        if pool:
            pool.close()
    print(f"benchmark done in {report['seconds'] / 60:.1f} min ({args.jobs} jobs)", flush=True)
    return report


def write(report: dict[str, Any], folder: Path, docs: Path | None = None) -> None:
    """results.json, tables.md and curves-<task>-<model>.png in ``folder`` (atomic writes); figures copied to ``docs``."""
    from ssmtools.io import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1, default=str)
    atomic_write(folder / "results.json", lambda f: f.write(text.encode()))
    atomic_write(folder / "tables.md", lambda f: f.write(tables(report).encode()))
    for task, models in report["tasks"].items():
        for kind in models:
            path = figure(report, task, kind, folder)
            if docs is not None:
                shutil.copyfile(path, docs / f"pruning-{task}-{kind}.png")


def _pct(stat: dict[str, float]) -> str:
    return f"{100 * stat['mean']:.0f} ± {100 * stat['std']:.0f} %"


def best_method(entry: dict[str, Any]) -> str:
    """The method with the largest mean max ratio on the validation split (ties: the first in registry order)."""
    candidates = {k: v for k, v in entry["methods"].items() if not v["failed"]}
    return max(candidates, key=lambda k: candidates[k]["max_ratio_val"]["mean"])


def summary_table(report: dict[str, Any]) -> list[str]:
    """One line per task and model: unpruned accuracy, best method (chosen on validation), AIRE, LAST, ratio."""
    lines = [
        "| task / model | unpruned val / test | best method (chosen on val) | its max ratio val / test | "
        "`aire` val / test | `last` val / test | best / AIRE (test) |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, models in report["tasks"].items():
        for kind, entry in models.items():
            bases = entry["base"].values()
            best = best_method(entry)
            m = entry["methods"]
            aire, last = m.get("aire"), m.get("last")
            best_test, aire_test = m[best]["max_ratio_test"]["mean"], aire["max_ratio_test"]["mean"] if aire else 0.0
            ratio = best_test / aire_test if aire_test > 0 else float("inf") if best_test > 0 else float("nan")
            cells = [
                f"{task} / {kind}",
                f"{np.mean([b['val'] for b in bases]):.1f} / {np.mean([b['test'] for b in bases]):.1f} %",
                f"`{best}`",
                f"{_pct(m[best]['max_ratio_val'])} / {_pct(m[best]['max_ratio_test'])}",
                f"{_pct(aire['max_ratio_val'])} / {_pct(aire['max_ratio_test'])}" if aire else "–",
                f"{_pct(last['max_ratio_val'])} / {_pct(last['max_ratio_test'])}" if last else "–",
                f"{ratio:.1f}×" if math.isfinite(ratio) else "∞ (AIRE 0 %)" if ratio > 0 else "– (both 0 %)",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def tables(report: dict[str, Any]) -> str:
    lines = [
        f"{report['depth']} layers, H = {report['width']}, stored states per layer {report['states']}, epochs "
        f"{report['epochs']}, seeds {report['seeds']}; one-shot pruning, no retraining; "
        + (
            "report rebuilt from cached results (no timing: see each unit's log)"
            if report.get("cached_only")
            else f"{report['seconds'] / 60:.1f} min in all ({report['jobs']} processes)"
        )
        + (
            f"; the units' CPU time {sum(report['unit_cpu_seconds'].values()) / 60:.1f} min"
            if report.get("unit_cpu_seconds") and not report.get("cached_only")
            else ""
        )
        + ("." if report.get("complete", True) else "; PARTIAL run (units done: see each heading)."),
        "",
        "Largest realised pruning ratio whose accuracy stays within 1 point of the unpruned model, mean ± std over "
        "seeds:",
        "",
        *summary_table(report),
        "",
    ]
    for task, models in report["tasks"].items():
        for kind, entry in models.items():
            bases = entry["base"]
            base_val = np.mean([b["val"] for b in bases.values()])
            base_test = np.mean([b["test"] for b in bases.values()])
            lines += [
                f"### {task} / {kind} (L = {report['lengths'][task]}; seeds {sorted(int(s) for s in bases)}; unpruned: val "
                f"{base_val:.1f} %, test {base_test:.1f} %)",
                "",
                "Largest realised ratio within 1 point (mean ± std over seeds), and mean test accuracy at each "
                "nominal ratio (`x`: the method failed on a seed). Sorted by the validation column.",
                "",
            ]
            ratios = report["ratios"][1:]
            lines.append(
                "| method | max ratio (val) | max ratio (test) | " + " | ".join(f"{100 * r:g} %" for r in ratios) + " |"
            )
            lines.append("|---|---|---|" + "---|" * len(ratios))
            usable = {k: v for k, v in entry["methods"].items() if not v["failed"]}
            order = sorted(usable.items(), key=lambda item: -item[1]["max_ratio_val"]["mean"])
            for label, method in order:
                cells = []
                for index in range(1, len(report["ratios"])):
                    values = [rows[index] for rows in method["rows"].values()]
                    good = [v["test"] for v in values if "error" not in v]
                    cells.append(f"{np.mean(good):.1f}" if len(good) == len(values) else "x")
                lines.append(
                    f"| {label} | {_pct(method['max_ratio_val'])} | {_pct(method['max_ratio_test'])} | "
                    + " | ".join(cells)
                    + " |"
                )
            for label, method in entry["methods"].items():
                if method["failed"]:
                    error = next(iter(method["rows"].values()))[1]["error"]
                    lines.append(f"\n`{label}` is not applicable here: {error.splitlines()[0][:160]}")
            lines.append("")
    return "\n".join(lines)


def figure(report: dict[str, Any], task: str, kind: str, folder: Path) -> Path:
    """Mean test accuracy against the realised ratio, one line per method; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    entry = report["tasks"][task][kind]
    counters = {True: 0, False: 0}  # projections (solid, thick) and selections (dashed) each cycle through tab10
    for label, method in entry["methods"].items():
        if method["failed"]:
            continue
        projection = any(label.startswith(r) for r in available_reductions())
        colour = plt.cm.tab10(counters[projection] % 10)
        counters[projection] += 1
        ratios, means = [], []
        for index in range(len(report["ratios"])):
            values = [rows[index] for rows in method["rows"].values()]
            if all("error" not in v for v in values):
                ratios.append(100 * np.mean([v["realized_ratio"] for v in values]))
                means.append(np.mean([v["test"] for v in values]))
        ax.plot(
            ratios,
            means,
            "-" if projection else "--",
            marker="o",
            markersize=3,
            label=label,
            color=colour,
            lw=2.0 if projection else 1.0,
        )
    seeds = len(entry["base"])
    ax.set_title(f"{kind} on {task} (one-shot, no retraining; mean of {seeds} seed{'s' * (seeds > 1)})")
    ax.set_xlabel("states removed (%, realised)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = folder / f"curves-{task}-{kind}.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    main()

"""Layer H∞ on the initialisations of the real packages: ssmtools ``hinf_result`` vs AB13DD, one run.

Families (one layer each, real output, state includes input, P stored conjugate pairs = 2P real states):

- ``s5-pytorch``: ``s5.S5Block(H, P)`` with the package's default initialisation (HiPPO-N poles, steps
  log-uniform in [1e-3, 1e-1]; |λ̄| 0.955–0.9995, a D-dominated response with small ripples), read through
  ``ssmtools.load``;
- ``lru-pytorch``: ``LRU_pytorch.LRU(H, H, P)`` with its defaults (rmin = 0, rmax = 1, dense D), read through
  ``ssmtools.load``;
- ``S4D-Lin``, ``S4D-Inv``, ``HiPPO-LegS``, ``D-dominated flat``: ``ssmtools.examples.init_layer`` (S5-shaped
  MIMO layers with those pole initialisations, ZOH with steps log-uniform in [1e-3, 1e-1], lecun-normal B̃, C̃,
  diagonal D; the last one a flat response whose ripples are 1e-3 of D).

``--trained`` adds the layers of the pruning benchmark's trained classifiers (``benchmarks/pruning/run.py``: s5-pytorch,
LRU-pytorch and S4D, H = 32, two layers each, trained on its sines task once into its git-ignored cache, ~2 minutes
in all); an S4D layer is a batch of 32 SISO channels (H = 1 in the table), whose H∞ is the largest channel's, and
a layer with unstable states (trained s5-pytorch layers have some) is listed without a ratio: its H∞ is infinite,
while AB13DD returns the L∞ norm on the circle.

``ssmtools`` is ``hinf_result(layer)`` (default ``method="auto"``, certified rtol 1e-8); AB13DD is slycot
called directly on the real standard form with tol 1e-10 (as ``bench_norms.py``; one BLAS thread for both, as
``hinf_result`` runs its engines), timed in the same run
(interleaved, best of ``--repeat`` for layers up to 128 real states). Prints every row, then the median
and the **worst** ratio per family and overall. ``--device cuda`` runs the torch backend there.

Run: ``python benchmarks/bench_hinf_families.py [--quick]``; writes ``benchmarks/results/hinf_families.{md,json}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, interleaved_best_times, machine, markdown_table, write_results  # noqa: E402

import ssmtools as st  # noqa: E402
from ssmtools._backends import slycot as _slycot  # noqa: E402
from ssmtools._backends.threads import one_blas_thread  # noqa: E402
from ssmtools.examples import INITIALISATIONS, init_layer  # noqa: E402
from ssmtools.systems import real_standard_form  # noqa: E402


def _loaded(module) -> st.DiagonalSSM:
    model = st.load(module)
    return model[list(model)[0]].system


def s5_pytorch(P: int, H: int, seed: int) -> st.DiagonalSSM:
    import s5
    import torch

    torch.manual_seed(seed)
    return _loaded(s5.S5Block(H, P, bidir=False))


def lru_pytorch(P: int, H: int, seed: int) -> st.DiagonalSSM:
    import torch
    from LRU_pytorch import LRU

    torch.manual_seed(seed)
    return _loaded(LRU(H, H, P))


def _initialised(kind: str):
    def build(P: int, H: int, seed: int) -> st.DiagonalSSM:
        return init_layer(kind, P, H, seed=seed)

    return build


FAMILIES = {
    "s5-pytorch": s5_pytorch,
    "lru-pytorch": lru_pytorch,
    **{kind: _initialised(kind) for kind in INITIALISATIONS},
}
QUICK_SIZES = [(8, 16), (16, 64), (64, 128)]
DEFAULT_SIZES = [(8, 16), (16, 64), (64, 128), (128, 256)]  # AB13DD alone: ~15 min on 2 loaded cores
FULL_SIZES = [(P, H) for P in (16, 64, 128, 256, 512) for H in (64, 128, 256, 512)]  # hours of AB13DD time


TRAINED_TASK = "sines"  # the pruning benchmark's burst-frequency task (no download)


def trained_layers(seeds: range) -> list[tuple[str, int, int, st.DiagonalSSM]]:
    """The layers of the pruning benchmark's trained classifiers (``benchmarks/pruning/run.py``: s5-pytorch,
    LRU-pytorch and S4D, H = 32, 2 layers each, on the sines task), trained once into its git-ignored cache (about
    a minute per model) and read through ``ssmtools.load``: ``(family, seed, layer index, system)``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "pruning"))
    import run as pruning  # noqa: PLC0415 (the pruning benchmark's script: torch and its three models)

    task = pruning.TASKS[TRAINED_TASK]
    splits = task.splits()
    out = []
    for kind in pruning.MODELS:
        for seed in seeds:
            model = st.load(pruning.train(kind, task, seed, splits, pruning.EPOCHS[kind]))
            for index, name in enumerate(model):
                out.append((f"trained {kind} ({TRAINED_TASK})", seed, index, model[name].system))
    return out


def _ab13dd(A, B, C, D):
    """AB13DD (tol 1e-10) with one BLAS thread, as ``hinf_result`` runs its engines (AB13DD included); a batch
    (S4D: one SISO system per channel) gives the largest value, the layer's H∞."""
    with one_blas_thread():
        values = [
            _slycot.linf_norm(A[i], B[i], C[i], D[i], discrete=True, tol=1e-10) for i in np.ndindex(*A.shape[:-2])
        ]
    return max(values)


def row(family: str, P: int, H: int, *, seed: int, repeat: int, backend: str, device, layer=None) -> dict:
    layer = FAMILIES[family](P, H, seed) if layer is None else layer
    A, B, C, D = real_standard_form(layer)
    (t_ours, t_ref), (ours, ref) = interleaved_best_times(
        [
            lambda: st.hinf_result(layer, backend=backend, device=device),
            lambda: _ab13dd(A, B, C, D),
        ],
        repeat,
    )
    value, lower, upper = (float(np.max(x)) for x in (ours.value, ours.lower, ours.upper))  # a batch: its largest
    stable = bool(np.all(np.asarray(layer.is_stable)))  # else H∞ = ∞ and AB13DD reports L∞ on the circle
    return {
        "family": family,
        "P": P,
        "H": H,
        "seed": seed,
        "real_states": int(A.shape[-1]),
        "method": ours.method,
        "time_ssmtools_s": t_ours,
        "time_ab13dd_s": t_ref,
        "speedup_vs_ab13dd": t_ref / t_ours if stable else None,
        "hinf_ssmtools": value,
        "hinf_ab13dd": float(ref[0]),
        "stable": stable,
        "rel_diff_ab13dd": abs(value - ref[0]) / ref[0] if stable else None,
        "certificate_width": upper / lower - 1 if stable else None,
        "bracket_contains_ab13dd": bool(lower <= ref[0] * (1 + 1e-10) and upper >= ref[0] * (1 - 1e-10))
        if stable
        else None,
    }


def describe(r: dict) -> str:
    """One printed line per layer."""
    where = f"{r['family']:17s}" + (f" layer {r['layer']}" if "layer" in r else "")
    head = f"{where} P={r['P']:3d} H={r['H']:3d} seed {r['seed']}: ssmtools {r['time_ssmtools_s']:.3f}s ({r['method']})"
    if not r["stable"]:
        return f"{head}  unstable (H∞ = ∞; AB13DD's {r['hinf_ab13dd']:.4g} is the L∞ norm on the circle): no ratio"
    return (
        f"{head}  AB13DD {r['time_ab13dd_s']:.3f}s  {r['speedup_vs_ab13dd']:.1f}x  rel diff {r['rel_diff_ab13dd']:.1e}"
        f"  bracket ok {r['bracket_contains_ab13dd']}"
    )


COLUMNS = [
    ("family", "family", ""),
    ("layer", "layer", "d"),
    ("P", "P", "d"),
    ("H", "H", "d"),
    ("seed", "seed", "d"),
    ("real states", "real_states", "d"),
    ("engine", "method", ""),
    ("ssmtools [s]", "time_ssmtools_s", ".3f"),
    ("AB13DD [s]", "time_ab13dd_s", ".3f"),
    ("speed-up", "speedup_vs_ab13dd", ".1f"),
    ("rel. diff AB13DD", "rel_diff_ab13dd", ".1e"),
    ("upper/lower − 1", "certificate_width", ".1e"),
    ("bracket ∋ AB13DD", "bracket_contains_ab13dd", ""),
]
SUMMARY_COLUMNS = [
    ("family", "family", ""),
    ("rows", "rows", "d"),
    ("median speed-up", "median", ".1f"),
    ("worst speed-up", "worst", ".1f"),
    ("worst case", "worst_case", ""),
    ("worst at ≥ 256 real states", "worst_256", ".1f"),
]


def summary(rows: list[dict]) -> list[dict]:
    """Median and worst speed-up per family and over all rows."""
    out = []
    for family in [*dict.fromkeys(r["family"] for r in rows), "all"]:
        mine = [r for r in rows if family in ("all", r["family"]) and r["speedup_vs_ab13dd"] is not None]
        if not mine:
            continue
        ratios = np.array([r["speedup_vs_ab13dd"] for r in mine])
        worst = mine[int(np.argmin(ratios))]
        big = [r["speedup_vs_ab13dd"] for r in mine if r["real_states"] >= 256]
        out.append(
            {
                "family": family,
                "rows": len(mine),
                "median": float(np.median(ratios)),
                "worst": float(ratios.min()),
                "worst_case": f"{worst['family']} P={worst['P']} H={worst['H']} seed {worst['seed']}",
                "worst_256": min(big) if big else None,
            }
        )
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the families, print them, write ``benchmarks/results/hinf_families.{md,json}``; returns the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="P:H ∈ {8:16, 16:64, 64:128}")
    parser.add_argument("--full", action="store_true", help="the grid P ∈ {16..512} × H ∈ {64..512} (hours)")
    parser.add_argument("--sizes", type=str, default=None, help="P:H pairs, e.g. 128:256,256:256")
    parser.add_argument("--families", type=str, default=None, help="comma-separated subset of the families")
    parser.add_argument("--seed", type=int, default=0, help="first seed of the layers' initialisation")
    parser.add_argument("--seeds", type=int, default=1, help="layers per family and size (seeds seed, seed + 1, …)")
    parser.add_argument("--repeat", type=int, default=3, help="repeats for layers up to 128 real states")
    parser.add_argument("--device", type=str, default=None, help="torch device (e.g. cuda): backend='torch' there")
    parser.add_argument(
        "--trained",
        action="store_true",
        help="also the pruning benchmark's trained layers (trained once if not cached)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [tuple(int(x) for x in pair.split(":")) for pair in args.sizes.split(",")]
    else:
        sizes = QUICK_SIZES if args.quick else FULL_SIZES if args.full else DEFAULT_SIZES
    families = args.families.split(",") if args.families else list(FAMILIES)
    backend = "numpy" if args.device is None else "torch"
    rows = []
    for family in families:
        for P, H in sizes:
            for seed in range(args.seed, args.seed + args.seeds):
                r = row(
                    family, P, H, seed=seed, repeat=args.repeat if P <= 64 else 1, backend=backend, device=args.device
                )
                rows.append(r)
                print(describe(r), flush=True)
    if args.trained:
        for family, seed, index, layer in trained_layers(range(args.seed, args.seed + args.seeds)):
            P, H = int(layer.n_states), int(layer.n_inputs)
            r = row(family, P, H, seed=seed, repeat=args.repeat, backend=backend, device=args.device, layer=layer)
            r["layer"] = index
            rows.append(r)
            print(describe(r), flush=True)
    stats = summary(rows)
    for s in stats:
        print(f"{s['family']:17s} median {s['median']:.1f}x  worst {s['worst']:.1f}x ({s['worst_case']})")
    data = {"meta": machine(), "rows": rows, "summary": stats, "device": args.device}
    sections = [
        (
            "Layer H∞ of the real packages' initialisations vs AB13DD",
            "``hinf_result(layer)`` (method auto, certified rtol 1e-8) against AB13DD through slycot on the real "
            "standard form (tol 1e-10), in the same run.\n\n" + markdown_table(COLUMNS, rows),
        ),
        ("Median and worst case", markdown_table(SUMMARY_COLUMNS, stats)),
    ]
    write_results("hinf_families", "Layer H∞ on realistic initialisations", sections, data, out=args.out)
    return rows


if __name__ == "__main__":
    main()

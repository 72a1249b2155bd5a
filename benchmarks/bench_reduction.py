"""Balanced truncation: ssmtools vs SLICOT AB09AD (dico='D'), side by side in one run.

Random S5-style layers (ZOH, conj-sym, state includes input, diagonal D) with 256 and 512 real
states. Both reduce the strictly proper part (Λ̄, B̄, C̃) (math.md §4.4) to the same real order r;
ssmtools also re-diagonalises the result into a DiagonalSSM. Reported per case: wall time of each
(best of ``--repeat`` alternating runs), the ratio, the largest HSV discrepancy, and the achieved ‖G − G_r‖∞ of
both (AB13DD on the dense error system, identical procedure for both) next to σ_{r+1} and the
bound 2Σ_{j>r}σ_j.

Run: ``python benchmarks/bench_reduction.py`` (or ``python benchmarks/run_all.py``); writes
``benchmarks/results/reduction.md`` and ``reduction.json``. ``--quick`` runs small sizes only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import slycot

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, interleaved_best_times, machine, markdown_table, write_results  # noqa: E402

from ssmtools import balanced_truncation  # noqa: E402
from ssmtools._backends.slycot import linf_norm  # noqa: E402
from ssmtools.examples import random_s5_model  # noqa: E402
from ssmtools.systems import real_realization  # noqa: E402


def _error_hinf(A, B, C, Ar, Br, Cr) -> float:
    """‖G_sp − G_sp,r‖∞ = ‖G − G_r‖∞ (same D, unimodular z) by AB13DD on the dense error system."""
    n, r = A.shape[0], Ar.shape[0]
    A_err = np.zeros((n + r, n + r))
    A_err[:n, :n], A_err[n:, n:] = A, Ar
    value, _ = linf_norm(
        A_err, np.vstack([B, Br]), np.hstack([C, -Cr]), np.zeros((C.shape[0], B.shape[1])), discrete=True, tol=1e-10
    )
    return value


def run_case(n_real: int, order: int, width: int, repeat: int, seed: int) -> dict:
    layer = random_s5_model(n_layers=1, n_states=n_real // 2, width=width, seed=seed)["layers_0"]
    A, B, C, _ = real_realization(layer)

    def ours():
        return balanced_truncation(layer, order=order)

    def reference():
        return slycot.ab09ad("D", "B", "N", n_real, B.shape[1], C.shape[0], A, B, C, nr=order)

    (t_ours, t_ref), (result, (nr, Ar, Br, Cr, hsv_ref)) = interleaved_best_times([ours, reference], repeat)
    A_o, B_o, C_o, _ = real_realization(result.system)  # our re-diagonalised model, as a real realization
    err_ours = _error_hinf(A, B, C, A_o, B_o, C_o)
    err_ref = _error_hinf(A, B, C, Ar, Br, Cr)
    hsv_rel = float(np.max(np.abs(result.hsv - hsv_ref)) / hsv_ref[0])
    return {
        "real_states": n_real,
        "stored_states": layer.n_states,
        "width": width,
        "order": int(result.order),
        "slycot_order": int(nr),
        "reduced_stored_states": int(result.n_states),
        "time_ssmtools_s": t_ours,
        "time_ab09ad_s": t_ref,
        "time_ratio": t_ours / t_ref,
        "hsv_max_rel_diff": hsv_rel,
        "sigma_next": float(result.hsv[order]),
        "bound": float(result.bound),
        "error_ssmtools": err_ours,
        "error_ab09ad": err_ref,
        "error_ratio": err_ours / err_ref,
    }


COLUMNS = [
    ("real states", "real_states", "d"),
    ("H", "width", "d"),
    ("r", "order", "d"),
    ("stored after", "reduced_stored_states", "d"),
    ("ssmtools [s]", "time_ssmtools_s", ".3f"),
    ("AB09AD [s]", "time_ab09ad_s", ".3f"),
    ("time ratio", "time_ratio", ".2f"),
    ("max HSV rel. diff", "hsv_max_rel_diff", ".1e"),
    ("σ_{r+1}", "sigma_next", ".4g"),
    ("error ssmtools", "error_ssmtools", ".6g"),
    ("error AB09AD", "error_ab09ad", ".6g"),
    ("error ratio", "error_ratio", ".6f"),
    ("bound 2Σσ", "bound", ".4g"),
]


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print a table with ratios and write ``benchmarks/results/reduction.{md,json}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run, seconds)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="real state counts (default 256 512)")
    parser.add_argument("--width", type=int, default=32, help="layer width H (inputs = outputs)")
    parser.add_argument("--fraction", type=float, default=0.25, help="kept order r as a fraction of the real states")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([32, 64] if args.quick else [256, 512])
    meta = dict(machine(), repeat=args.repeat, width=args.width)  # load average at the start
    rows = []
    for n_real in sizes:
        order = max(1, int(round(args.fraction * n_real)))
        row = run_case(n_real, order, args.width, args.repeat, args.seed)
        rows.append(row)
        print(
            f"n={n_real:4d} r={order:4d}: ssmtools {row['time_ssmtools_s']:.3f}s  AB09AD {row['time_ab09ad_s']:.3f}s  "
            f"ratio {row['time_ratio']:.2f} | HSV rel diff {row['hsv_max_rel_diff']:.1e} | error ssmtools "
            f"{row['error_ssmtools']:.6g} vs AB09AD {row['error_ab09ad']:.6g} (ratio {row['error_ratio']:.6f}), "
            f"sigma_r+1 {row['sigma_next']:.4g}, bound {row['bound']:.4g}",
            flush=True,
        )
    meta["load_average_end"] = machine()["load_average"]  # timings on a shared machine vary between runs
    data = {"meta": meta, "rows": rows, "quick": args.quick}
    body = (
        f"Best of {args.repeat} alternating runs; load average {tuple(round(x, 1) for x in meta['load_average_end'] or ())} at the end. Random S5-style layers (ZOH, conj-sym, state includes input), "
        "width H inputs/outputs. Both reduce the strictly proper part to the same real order r; ssmtools also "
        "re-diagonalises it into a DiagonalSSM. Errors ‖G − G_r‖∞ by AB13DD on the dense error system.\n\n"
        + markdown_table(COLUMNS, rows)
    )
    write_results(
        "reduction",
        "Balanced truncation: ssmtools vs SLICOT AB09AD (dico='D')",
        [("Balanced truncation vs AB09AD", body)],
        data,
        out=args.out,
    )
    return rows


if __name__ == "__main__":
    main()

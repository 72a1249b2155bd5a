"""Layer H∞ of layers with few states and many channels: ``hinf_result`` (``method="auto"``) vs AB13DD, one run.

The grid P ∈ {2, 4, 8, 16} stored conjugate pairs × H ∈ {16, 64, 96, 128, 256} channels over the families
``S4D-Lin``, ``S4D-Inv``, ``HiPPO-LegS`` and ``D-dominated flat`` of ``ssmtools.examples.init_layer`` (80 layers
per seed). AB13DD is ``hinf_result(layer, method="slycot")`` (the standard form, AB13DD at tol 1e-10 and its
cross-check: what a user who asks for SLICOT gets); ``auto`` is the default, which runs AB13DD itself on tiny
layers (at most 16 real states and fewer than 96 channels) and the certified diagonal algorithm elsewhere, with
the never-slower switch to AB13DD. Timed interleaved, best of ``--repeat``; prints every layer, then a table of
the ratio range per (P, H) cell, the median, the worst case and the layers that switched.

Run: ``python benchmarks/bench_hinf_few_states.py [--quick]``; writes
``benchmarks/results/hinf_few_states.{md,json}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, interleaved_best_times, machine, markdown_table, write_results  # noqa: E402

import ssmtools as st  # noqa: E402
from ssmtools.examples import INITIALISATIONS, init_layer  # noqa: E402

STATES = (2, 4, 8, 16)
WIDTHS = (16, 64, 96, 128, 256)
QUICK_WIDTHS = (16, 96)


def row(family: str, P: int, H: int, *, seed: int, repeat: int) -> dict:
    layer = init_layer(family, P, H, seed=seed)
    (t_auto, t_ref), (ours, ref) = interleaved_best_times(
        [lambda: st.hinf_result(layer), lambda: st.hinf_result(layer, method="slycot")], repeat
    )
    route = st.norms.auto_hinf_method(layer)
    return {
        "family": family,
        "P": P,
        "H": H,
        "seed": seed,
        "method": ours.method if ours.method == route else f"{route}, switched",
        "time_auto_s": t_auto,
        "time_ab13dd_s": t_ref,
        "speedup_vs_ab13dd": t_ref / t_auto,
        "rel_diff_ab13dd": abs(float(ours.value) - float(ref.value)) / float(ref.value),
    }


def cells(rows: list[dict]) -> list[dict]:
    """One row per P: the range of ratios in each H column, the worst family named."""
    out = []
    for P in sorted({r["P"] for r in rows}):
        line: dict = {"P": f"P = {P}"}
        for H in sorted({r["H"] for r in rows}):
            mine = [r for r in rows if r["P"] == P and r["H"] == H]
            if not mine:
                continue
            ratios = [r["speedup_vs_ab13dd"] for r in mine]
            worst = mine[int(np.argmin(ratios))]
            note = f" ({worst['family']}, {worst['method']})" if min(ratios) < 1.0 else ""
            line[f"H{H}"] = f"{min(ratios):.2f}×{note} – {max(ratios):.2f}×"
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the grid, print it, write ``benchmarks/results/hinf_few_states.{md,json}``; returns the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="H ∈ {16, 96} only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved calls per layer, best kept")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    widths = QUICK_WIDTHS if args.quick else WIDTHS
    rows = []
    for family in INITIALISATIONS:
        for P in STATES:
            for H in widths:
                r = row(family, P, H, seed=args.seed, repeat=args.repeat)
                rows.append(r)
                print(
                    f"{family:17s} P={P:2d} H={H:3d}: auto {r['time_auto_s'] * 1e3:7.2f} ms ({r['method']})  AB13DD "
                    f"{r['time_ab13dd_s'] * 1e3:7.2f} ms  {r['speedup_vs_ab13dd']:.2f}x  rel diff "
                    f"{r['rel_diff_ab13dd']:.1e}",
                    flush=True,
                )
    ratios = np.array([r["speedup_vs_ab13dd"] for r in rows])
    worst = rows[int(np.argmin(ratios))]
    switched = [r for r in rows if "switched" in r["method"]]
    diagonal_route = [r for r in rows if r["method"] == "diagonal"]
    summary = {
        "layers": len(rows),
        "median": float(np.median(ratios)),
        "worst": float(ratios.min()),
        "worst_case": f"{worst['family']} P={worst['P']} H={worst['H']} ({worst['method']})",
        "below_1": int(np.count_nonzero(ratios < 1.0)),
        "switched": len(switched),
        "worst_diagonal_route": min((r["speedup_vs_ab13dd"] for r in diagonal_route), default=None),
        "max_rel_diff": float(max(r["rel_diff_ab13dd"] for r in rows)),
    }
    print(
        f"{summary['layers']} layers: median {summary['median']:.2f}x, worst {summary['worst']:.2f}x "
        f"({summary['worst_case']}), {summary['below_1']} below 1x, {summary['switched']} switched"
    )
    columns = [("", "P", "")] + [(f"H = {H}", f"H{H}", "") for H in widths]
    summary_columns = [
        ("layers", "layers", "d"),
        ("median", "median", ".2f"),
        ("worst", "worst", ".2f"),
        ("worst case", "worst_case", ""),
        ("below 1×", "below_1", "d"),
        ("switched to AB13DD", "switched", "d"),
        ("worst on the diagonal route", "worst_diagonal_route", ".2f"),
        ("max rel. diff", "max_rel_diff", ".1e"),
    ]
    detail = [
        ("family", "family", ""),
        ("P", "P", "d"),
        ("H", "H", "d"),
        ("engine", "method", ""),
        ("auto [s]", "time_auto_s", ".4f"),
        ("AB13DD [s]", "time_ab13dd_s", ".4f"),
        ("speed-up", "speedup_vs_ab13dd", ".2f"),
        ("rel. diff", "rel_diff_ab13dd", ".1e"),
    ]
    sections = [
        (
            "Ratio AB13DD / auto per cell (range over the families)",
            "``hinf_result(layer, method='slycot')`` time over ``hinf_result(layer)`` time, best of "
            f"{args.repeat} interleaved calls.\n\n" + markdown_table(columns, cells(rows)),
        ),
        ("Summary", markdown_table(summary_columns, [summary])),
        ("Every layer", markdown_table(detail, rows)),
    ]
    data = {"meta": machine(), "rows": rows, "summary": summary}
    write_results("hinf_few_states", "Layer H∞ with few states and many channels", sections, data, out=args.out)
    return rows


if __name__ == "__main__":
    main()

"""Memory and time of the per-layer work on very large layers: per-state scores, per-state H∞, H2.

One S5-style layer (H = 1, P states: a 337 KB safetensors file at P = 12000) is scored with LAST, its per-state
H∞ norms and its H2 norm are computed; each step's wall time and peak traced memory (``tracemalloc``, which
sees NumPy's allocations) are recorded, with the CPU time of the per-state H∞ and the H2 (on a shared machine the
better guide to a quiet one). The reference, in the same run, is the dense Gramian formula
``tr(C P Cᴴ)`` (several n×n complex arrays, n = 2P), run only at the sizes where it fits (``--dense-max``); the H2
values are compared. The library's H2 sums the pairs i ≤ j of the stored half in tiles (n² terms for n stored pairs,
against (2n)² for the dense formula; docs/concepts/derivations.md#layer-h2). Run it with ``OPENBLAS_NUM_THREADS=1``
on a shared machine (the dense reference's products otherwise fight for the cores).

Run: ``python benchmarks/bench_memory.py`` (``--quick``: P ∈ {500, 2000}); writes
``benchmarks/results/memory.md`` and ``memory.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, markdown_table, write_results  # noqa: E402

import ssmtools  # noqa: E402
from ssmtools.examples import random_s5_model  # noqa: E402
from ssmtools.pruning import score_model  # noqa: E402
from ssmtools.systems import augmented_realization  # noqa: E402


def measured(func):
    """``(wall seconds, CPU seconds, peak MiB, value)`` of one call (on a shared machine the CPU time is the better
    guide to a quiet one)."""
    tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    value = func()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, cpu, peak, value


def dense_h2(system) -> float:
    """The previous formula: the full n×n controllability Gramian, then tr(C P Cᴴ) (+ D terms)."""
    lam, B, C = augmented_realization(system)
    gramian = (B @ B.conj().T) / (1 - lam[:, None] * lam[None, :].conj())
    value = np.real(np.trace(C @ gramian @ C.conj().T)) + np.sum(np.abs(system.D) ** 2)
    value += 2 * np.real(np.sum(system.D.conj() * (C @ B)))
    return float(np.sqrt(max(value, 0.0)))


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark and write its results.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    list of dict
        One row per size.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 12000])
    parser.add_argument("--dense-max", type=int, default=2000, help="largest P for the dense reference")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = [500, 2000] if args.quick else args.sizes
    rows = []
    for P in sizes:
        system = random_s5_model(1, P, 1, seed=0)["layers_0"]
        model = ssmtools.SSMModel.from_systems({"layer": system})
        row: dict = {"P": P}
        row["last_s"], _, row["last_mib"], _ = measured(lambda model=model: score_model(model, "last"))
        row["state_hinf_s"], row["state_hinf_cpu_s"], row["state_hinf_mib"], _ = measured(
            lambda system=system: ssmtools.state_hinf_norms(system)
        )
        row["h2_s"], row["h2_cpu_s"], row["h2_mib"], h2 = measured(lambda system=system: ssmtools.h2_norm(system))
        if P <= args.dense_max:
            row["dense_s"], _, row["dense_mib"], dense = measured(lambda system=system: dense_h2(system))
            row["h2_rel_diff"] = abs(h2 - dense) / dense
            row["memory_ratio"] = row["dense_mib"] / row["h2_mib"]
            row["time_ratio"] = row["dense_s"] / row["h2_s"]
        rows.append(row)
        print(row, flush=True)
    columns = [
        ("P", "P", "d"),
        ("LAST scores s", "last_s", ".3f"),
        ("MiB", "last_mib", ".1f"),
        ("state H∞ s", "state_hinf_s", ".3f"),
        ("CPU s", "state_hinf_cpu_s", ".3f"),
        ("MiB", "state_hinf_mib", ".1f"),
        ("H2 s", "h2_s", ".3f"),
        ("CPU s", "h2_cpu_s", ".3f"),
        ("H2 MiB", "h2_mib", ".1f"),
        ("dense H2 s", "dense_s", ".3f"),
        ("dense MiB", "dense_mib", ".1f"),
        ("memory dense/tiled", "memory_ratio", ".1f"),
        ("time dense/tiled", "time_ratio", ".1f"),
        ("|ΔH2|/H2", "h2_rel_diff", ".1e"),
    ]
    write_results(
        "memory",
        "Memory of per-layer work on large layers (one S5-style layer, H = 1)",
        [("Per-state scores, per-state H∞, H2 (peak traced memory)", markdown_table(columns, rows))],
        {"rows": rows, "meta": machine()},
        out=args.out,
    )
    return rows


if __name__ == "__main__":
    main()

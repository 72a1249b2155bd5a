"""``ssmtools analyze`` and ``prune --ratio 0.5`` of a real-size s5-pytorch checkpoint, through the real entry point.

Builds a 6-layer checkpoint of s5-pytorch ``S5Block(256, 128, bidir=False)`` (default initialisation, seed 0,
``torch.save(ModuleList(...).state_dict())``) in a temporary directory, then times, as subprocesses
(``python -m ssmtools ...``, so imports and loading count):

- ``ssmtools analyze CKPT`` (the plans' certified rtol 1e-4) and ``ssmtools prune CKPT --ratio 0.5``, with this
  checkout's ssmtools and, with ``--reference DIR``, another checkout's (e.g. ``/work/main``) in the same run
  (interleaved), printing the ratio;
- per layer, in process: ``hinf_result(layer, rtol=1e-4)`` (method auto: which engine ran) against SLICOT
  AB13DD called directly on the real standard form (tol 1e-10), both with one BLAS thread (as ``hinf_result``
  runs its engines), printing ratios.

Run: ``python benchmarks/bench_analyze.py [--reference /work/main] [--quick]`` (``--quick``: 2 layers of
``S5Block(64, 32)``); writes ``benchmarks/results/analyze.{md,json}``. The target (issue 14): analyze and prune
under 10 s each on a quiet 2-core machine; the machine line records the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT)]  # this checkout's ssmtools, as the CLI runs get

from _common import RESULTS, machine, markdown_table, write_results  # noqa: E402

import ssmtools as st  # noqa: E402
from ssmtools._backends import slycot as _slycot  # noqa: E402
from ssmtools._backends.threads import one_blas_thread  # noqa: E402
from ssmtools.systems import real_standard_form  # noqa: E402


def build_checkpoint(path: Path, layers: int, H: int, P: int, seed: int = 0) -> None:
    """The lead's checkpoint: ``ModuleList([S5Block(H, P, bidir=False)] * layers).state_dict()``."""
    import s5
    import torch

    torch.manual_seed(seed)
    torch.save(torch.nn.ModuleList([s5.S5Block(H, P, bidir=False) for _ in range(layers)]).state_dict(), path)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(checkout: Path, args: list[str]) -> tuple[float, float]:
    """``(wall, CPU)`` seconds of ``python -m ssmtools ARGS`` with ``checkout``'s ssmtools first on the path
    (CPU time, user + system, is the figure to compare on a loaded machine)."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ssmtools", *args], cwd=checkout, env=env, capture_output=True)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"ssmtools {args[0]} failed in {checkout}:\n{done.stderr.decode()[-2000:]}")
    return elapsed, cpu


def per_layer(path: Path, count: int | None = None) -> list[dict]:
    """``hinf_result(rtol=1e-4)`` of the first ``count`` layers (the engine it used) vs AB13DD (tol 1e-10)."""
    model = st.load(path)
    rows = []
    for name in list(model)[:count]:
        layer = model[name].system
        start = time.perf_counter()
        result = st.hinf_result(layer, rtol=1e-4)
        ours = time.perf_counter() - start
        A, B, C, D = real_standard_form(layer)
        start = time.perf_counter()
        with one_blas_thread():  # as hinf_result runs its engines (AB13DD included)
            reference, _ = _slycot.linf_norm(A, B, C, D, discrete=layer.is_discrete, tol=1e-10)
        slicot = time.perf_counter() - start
        rows.append(
            {
                "layer": name,
                "method": result.method,
                "ssmtools_s": ours,
                "ab13dd_s": slicot,
                "ratio": slicot / ours,
                "value": float(result.value),
                "ab13dd": reference,
                "rel_diff": abs(float(result.value) - reference) / reference,
            }
        )
        print(
            f"{name}: {result.method} {ours:.2f} s, AB13DD {slicot:.2f} s, "
            f"{slicot / ours:.1f}x, |rel diff| {rows[-1]['rel_diff']:.1e}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="another checkout to time in the same run (e.g. /work/main)")
    parser.add_argument("--quick", action="store_true", help="2 layers of S5Block(64, 32)")
    parser.add_argument("--repeat", type=int, default=1, help="CLI runs per checkout (best kept)")
    parser.add_argument("--layers", type=int, help="layers timed against AB13DD (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    layers, H, P = (2, 64, 32) if args.quick else (6, 256, 128)
    checkouts = [("this", ROOT)] + ([("reference", args.reference.resolve())] if args.reference else [])
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "s5.pt"
        build_checkpoint(ckpt, layers, H, P)
        commands = {
            "analyze": ["analyze", str(ckpt)],
            "prune --ratio 0.5": ["prune", str(ckpt), "--ratio", "0.5", "--output", str(Path(tmp) / "pruned.pt")],
        }
        times: dict[str, dict[str, tuple[float, float]]] = {label: {} for label, _ in checkouts}
        for _ in range(args.repeat):
            for command, cli_args in commands.items():
                for label, checkout in checkouts:  # interleaved: both see the same load
                    (Path(tmp) / "pruned.pt").unlink(missing_ok=True)
                    elapsed, cpu = run_cli(checkout, cli_args)
                    times[label][command] = min(times[label].get(command, (np.inf, np.inf)), (elapsed, cpu))
                    print(
                        f"{label} ({checkout}): ssmtools {command}: {elapsed:.2f} s wall, {cpu:.2f} s CPU", flush=True
                    )
        layer_rows = per_layer(ckpt, args.layers)
    cli_rows = []
    for command in commands:
        row = {"command": command, "this_s": times["this"][command][0], "this_cpu_s": times["this"][command][1]}
        if args.reference:
            row["reference_s"], row["reference_cpu_s"] = times["reference"][command]
            row["speedup"] = row["reference_s"] / row["this_s"]
            row["cpu_speedup"] = row["reference_cpu_s"] / row["this_cpu_s"]
        cli_rows.append(row)
    columns = [
        ("command", "command", ""),
        ("this checkout wall (s)", "this_s", ".2f"),
        ("CPU (s)", "this_cpu_s", ".2f"),
    ]
    if args.reference:
        columns += [
            (f"{args.reference} wall (s)", "reference_s", ".2f"),
            ("CPU (s)", "reference_cpu_s", ".2f"),
            ("speedup (wall)", "speedup", ".2f"),
            ("speedup (CPU)", "cpu_speedup", ".2f"),
        ]
    layer_columns = [
        ("layer", "layer", ""),
        ("method", "method", ""),
        ("hinf_result rtol 1e-4 (s)", "ssmtools_s", ".2f"),
        ("AB13DD tol 1e-10 (s)", "ab13dd_s", ".2f"),
        ("ratio", "ratio", ".1f"),
        ("|rel diff|", "rel_diff", ".1e"),
    ]
    shape = f"{layers} × s5-pytorch S5Block({H}, {P}, bidir=False)"
    sections = [
        (f"CLI through `python -m ssmtools` ({shape})", markdown_table(columns, cli_rows)),
        ("Per layer: H∞ at the plans' rtol 1e-4 vs AB13DD", markdown_table(layer_columns, layer_rows)),
    ]
    data = {"meta": machine(), "checkpoint": shape, "cli": cli_rows, "layers": layer_rows}
    write_results("analyze", "analyze / prune of a real-size checkpoint", sections, data, out=args.out)
    for row in cli_rows:
        print(row)
    return cli_rows + layer_rows


if __name__ == "__main__":
    main()

"""Run every ``benchmarks/bench_*.py`` and write ``benchmarks/results/README.md``.

Usage: ``python benchmarks/run_all.py [--only NAME ...] [--quick]``. Each script exposes
``main(argv=None)`` and writes ``results/<name>.md`` and ``<name>.json`` (benchmarks/README.md);
this runner calls them in one process, then concatenates their Markdown under a summary table.

BLAS threads: unless ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` are already set, they are set to
1 *before* NumPy is imported, for ssmtools and SLICOT alike. On a small shared machine multi-threaded
OpenBLAS makes small LAPACK calls 10–100× slower (a 128×128 Cholesky measured 0.4 ms single-threaded,
80 ms threaded under load). Set them yourself (e.g. ``OPENBLAS_NUM_THREADS=2``) to measure otherwise.
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RESULTS, atomic_write, machine, markdown_table  # noqa: E402


def discover() -> list[Path]:
    """Every ``bench_*.py`` next to this file, sorted by name."""
    return sorted(HERE.glob("bench_*.py"))


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmarks/bench_*.py and summarise the results.")
    parser.add_argument("--only", nargs="+", default=None, help="benchmark names (bench_<name>.py) to run")
    parser.add_argument("--quick", action="store_true", help="pass --quick to benchmarks that accept it")
    args = parser.parse_args(argv)
    summary, failed = [], 0
    for path in discover():
        name = path.stem.removeprefix("bench_")
        if args.only and name not in args.only:  # keep its earlier results in the summary
            summary.append(
                {
                    "benchmark": path.name,
                    "results": f"[{name}.md]({name}.md)",
                    "status": "not run (earlier results)" if (RESULTS / f"{name}.md").exists() else "not run",
                }
            )
            continue
        print(f"== {path.name}", flush=True)
        start = time.perf_counter()
        status = "ok"
        try:
            module = _load(path)
            bench_args = ["--quick"] if args.quick and "--quick" in (module.__doc__ or "") else []
            module.main(bench_args)
        except Exception:  # keep going: one failing benchmark must not hide the others
            traceback.print_exc()
            status, failed = "failed", failed + 1
        summary.append(
            {
                "benchmark": f"bench_{name}.py",
                "results": f"[{name}.md]({name}.md)",
                "status": status,
                "wall_s": time.perf_counter() - start,
            }
        )
    meta = machine()
    parts = [
        "# Benchmark results",
        "",
        f"`python benchmarks/run_all.py` on {meta['machine']} ({meta['cpu_count']} CPUs, BLAS threads "
        f"{meta['blas_threads']}, torch {meta.get('torch')}, GPU {meta.get('cuda')}) at {meta['date_utc']}.",
        "",
        markdown_table(
            [
                ("benchmark", "benchmark", ""),
                ("results", "results", ""),
                ("status", "status", ""),
                ("wall time [s]", "wall_s", ".1f"),
            ],
            summary,
        ),
        "",
    ]
    for row in summary:
        md = RESULTS / row["results"].split("(")[1].rstrip(")")
        if md.exists():  # nest each result page one heading level down
            lines = md.read_text(encoding="utf-8").splitlines()
            parts += [""] + ["#" + line if line.startswith("#") else line for line in lines]
    atomic_write(RESULTS / "README.md", "\n".join(parts) + "\n")
    print(f"wrote {RESULTS / 'README.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

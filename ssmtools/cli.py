"""Command-line interface: argument parsing and printing only; the work lives in the library.

Exit codes: 0 on success, 2 on bad input (with a one-line message on stderr).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import typer
from rich.console import Console
from rich.table import Table

from . import examples
from .adapters import available_families
from .io import OverwriteError, atomic_write_all, check_output_paths, load, output_format, params_writer
from .model import SSMModel
from .pruning import available_criteria, available_reductions, last_prune, prune_plan
from .report import summarize

_FAMILY_HELP = "model family: auto (detect from the parameter names) or one of " + ", ".join(available_families())
app = typer.Typer(add_completion=False, no_args_is_help=True, help="Control theory for deep state-space models.")
_console = Console(width=None if sys.stdout.isatty() else 120)
_errors = Console(stderr=True)


@app.callback()
def _root() -> None:
    """ssmtools command-line interface."""


def _fail(exc: Exception) -> typer.Exit:
    _errors.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)  # one line, never wrapped
    return typer.Exit(code=2)


def _norm_table(title: str, model: SSMModel) -> Table:
    table = Table(title=title)
    for column in ("layer", "states", "bidir", "H∞", "peak ω", "H2", "max state H∞", "stable"):
        table.add_column(column, justify="right")
    for row in summarize(model):
        table.add_row(
            row.name,
            str(row.n_states),
            "yes" if row.bidirectional else "no",
            f"{row.hinf:.6g}",
            "—" if row.peak is None else f"{row.peak:.4f}",
            "—" if row.h2 is None else f"{row.h2:.6g}",
            f"{row.max_state_hinf:.6g}",
            str(row.stable),
        )
    return table


@app.command(help="Analyse a small bundled S5-style model: layer norms, then a LAST pruning plan.")
def demo(
    layers: int = typer.Option(4, min=1, help="number of layers of the bundled random S5-style model"),
    states: int = typer.Option(16, min=1, help="stored states per layer"),
    width: int = typer.Option(8, min=1, help="model width H (inputs = outputs)"),
    seed: int = typer.Option(0, min=0, help="random seed of the example model (≥ 0)"),
    ratio: float = typer.Option(0.3, help="LAST pruning ratio shown at the end"),
) -> None:
    """Analyse a small bundled S5-style model: layer norms, then a LAST pruning plan.

    Parameters
    ----------
    layers : int
        Number of random S5-style layers (the worked example layer E5 comes first).
    states : int
        Stored states per layer.
    width : int
        Model width H (inputs = outputs).
    seed : int
        Random seed of the example model.
    ratio : float
        LAST pruning ratio of the plan printed at the end.
    """
    model = SSMModel.from_systems(
        {"e5": examples.s5_layer_e5(), **examples.random_s5_model(layers, states, width, seed=seed)}
    )
    _console.print(_norm_table("ssmtools demo: layer norms (exact, discrete time, rad/sample)", model))
    try:
        plan = prune_plan(model, ratio, "last")
    except ValueError as exc:
        raise _fail(exc) from None
    _console.print(plan)


@app.command(help="Print the exact norms of every SSM layer of a checkpoint.")
def analyze(
    path: Path = typer.Argument(..., help="checkpoint: .safetensors, .pt/.pth, .npz or flax .msgpack"),
    family: str = typer.Option("auto", help=_FAMILY_HELP),
) -> None:
    """Print the exact norms of every SSM layer of a checkpoint.

    Parameters
    ----------
    path : Path
        The checkpoint (.safetensors, .pt/.pth, .npz or flax .msgpack).
    family : str
        Model family, or ``"auto"`` to detect it from the parameter names.
    """
    try:
        model = load(path, family)
    except (ValueError, TypeError, OSError) as exc:
        raise _fail(exc) from None
    _console.print(_norm_table(f"{path} ({model.family}): layer norms", model))


@app.command(help="Prune a checkpoint with LAST (or another criterion) and write it in the same format.")
def prune(
    path: Path = typer.Argument(..., help="checkpoint to prune (never overwritten)"),
    ratio: float = typer.Option(..., help="fraction of stored states removed model-wide, in [0, 1)"),
    output: Path = typer.Option(..., "--output", "-o", help="where to write the pruned checkpoint (same format)"),
    criterion: str = typer.Option("last", help="scores the states: " + ", ".join(available_criteria())),
    reduction: str | None = typer.Option(
        None, help="what is done to each layer: " + ", ".join(available_reductions()) + " (default: the criterion's)"
    ),
    family: str = typer.Option("auto", help=_FAMILY_HELP),
    mask: bool = typer.Option(False, help="zero pruned states instead of removing them (released LAST behaviour)"),
    plan_json: Path | None = typer.Option(None, help="also write the pruning plan as JSON here"),
    force: bool = typer.Option(False, help="replace outputs that already exist (never the input)"),
) -> None:
    """Prune a checkpoint with LAST (or another criterion) and write it in the same format.

    Parameters
    ----------
    path : Path
        The checkpoint to prune (never overwritten).
    ratio : float
        Fraction of stored states removed model-wide, in [0, 1).
    output : Path
        Where to write the pruned checkpoint (same format; written atomically).
    criterion : str
        A registered criterion (:func:`ssmtools.pruning.available_criteria`).
    reduction : str or None
        A registered reduction (:func:`ssmtools.pruning.available_reductions`); ``None``: the criterion's default.
    family : str
        Model family, or ``"auto"``.
    mask : bool
        Zero the pruned states instead of removing them.
    plan_json : Path or None
        Also write the pruning plan as JSON there.
    force : bool
        Replace outputs that already exist. Without it an existing output is refused (exit 2). All outputs are
        written as one commit: every file, or none.
    """
    try:
        outputs = {"--output": output, **({"--plan-json": plan_json} if plan_json is not None else {})}
        check_output_paths(outputs, {"the input": path})
        existing = [f"{label} {str(target)!r}" for label, target in outputs.items() if Path(target).exists()]
        if existing and not force:
            raise OverwriteError(f"{', '.join(existing)} already exists; pass --force to replace it")
        fmt = output_format(output, source=path)
        params, plan = last_prune(str(path), ratio, criterion, reduction=reduction, family=family, mask=mask)
        files = [(output, params_writer(params, fmt))]
        if plan_json is not None:
            text = plan.to_json().encode("utf-8")

            def write_plan(file: BinaryIO) -> None:
                file.write(text)

            files.append((plan_json, write_plan))
        atomic_write_all(files)  # every output, or none
    except (ValueError, TypeError, OSError) as exc:
        raise _fail(exc) from None
    _console.print(plan)
    _console.print(f"wrote {output}")


def main() -> None:
    """Entry point of the ``ssmtools`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

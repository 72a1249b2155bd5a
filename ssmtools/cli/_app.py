"""The ``ssmtools`` Typer application and what every command shares: consoles, the failure exit, tables.

Commands live in their own modules of this package and register themselves on ``app``.
"""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from .._version import __version__
from ..adapters import available_families
from ..model import SSMModel
from ..report import summarize
from ._text import SafeConsole

FAMILY_HELP = "model family: auto (detect from the parameter names) or one of " + ", ".join(available_families())
app = typer.Typer(add_completion=False, no_args_is_help=True, help="Control theory for deep state-space models.")
console = SafeConsole("stdout", width=None if sys.stdout.isatty() else 120)
errors = SafeConsole("stderr")


def _print_version(value: bool) -> None:
    if value:
        console.print(f"ssmtools {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the ssmtools version and exit"
    ),
) -> None:
    """ssmtools command-line interface."""


def fail(exc: Exception) -> typer.Exit:
    """Print ``exc`` as one ``error:`` line on stderr and return the exit (code 2) to raise."""
    errors.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)  # one line, never wrapped
    return typer.Exit(code=2)


def norm_table(title: str, model: SSMModel) -> Table:
    """The per-layer norm table of ``analyze`` and ``demo``.

    A bidirectional layer's peak gain is an L∞ norm (non-causal), so its values are marked ``L∞``; the layer at the
    root of its tree is shown as ``(root)``.
    """
    table = Table(title=title)
    for column in ("layer", "states", "bidir", "H∞ (L∞ if bidir)", "peak ω", "H2", "max state H∞ (L∞)", "stable"):
        table.add_column(column, justify="right")
    for layer, row in zip(model.values(), summarize(model), strict=True):
        mark = " L∞" if layer.bidirectional else ""
        table.add_row(
            layer.label,
            str(row.n_states),
            "yes" if row.bidirectional else "no",
            f"{row.hinf:.6g}{mark}",
            "—" if row.peak is None else f"{row.peak:.4f}",
            "—" if row.h2 is None else f"{row.h2:.6g}",
            f"{row.max_state_hinf:.6g}{mark}",
            str(row.stable),
        )
    return table

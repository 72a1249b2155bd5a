"""The ``ssmtools`` Typer application and what every command shares: consoles, the failure exit, tables.

Commands live in their own modules of this package and register themselves on :data:`app`.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from ..adapters import available_families
from ..model import SSMModel
from ..report import summarize

FAMILY_HELP = "model family: auto (detect from the parameter names) or one of " + ", ".join(available_families())
app = typer.Typer(add_completion=False, no_args_is_help=True, help="Control theory for deep state-space models.")
console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)


@app.callback()
def _root() -> None:
    """ssmtools command-line interface."""


def fail(exc: Exception) -> typer.Exit:
    """Print ``exc`` as one ``error:`` line on stderr and return the exit (code 2) to raise."""
    errors.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)  # one line, never wrapped
    return typer.Exit(code=2)


def norm_table(title: str, model: SSMModel, *, rtol: float = 1e-8) -> Table:
    """The per-layer norm table of ``analyze`` and ``demo`` (H∞ certified to relative accuracy ``rtol``)."""
    table = Table(title=title)
    for column in ("layer", "states", "bidir", "H∞", "peak ω", "H2", "max state H∞", "stable"):
        table.add_column(column, justify="right")
    for row in summarize(model, rtol=rtol):
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

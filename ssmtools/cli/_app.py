"""The ``ssmtools`` Typer application and what every command shares: consoles, the failure exit, tables.

Commands live in their own modules of this package and register themselves on :data:`app`. Every command runs
inside :class:`GuardedGroup`, the one place of the CLI's failure policy: an anticipated failure (bad input, an
unreadable or unwritable file, a full disk, an interrupt, a resource limit) is one ``error:`` line on stderr and
exit 2; anything else is one ``internal error`` line and exit 1. ``--debug`` shows the traceback instead, and
warnings are printed as one ``warning:`` line each (no source lines). Commands run with one BLAS thread
(:func:`ssmtools._backends.threads.one_blas_thread`): their LAPACK calls are small and many, and OpenBLAS's spinning
workers made them several times slower.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import io
from .._backends.threads import one_blas_thread
from .._version import __version__
from ..adapters import available_families
from ..errors import SSMToolsError
from ..model import SSMModel
from ..pruning.measure import PLAN_RTOL
from ..report import LayerSummary, summarize_layer
from ._text import SafeConsole

FAMILY_HELP = "model family: auto (detect from the parameter names) or one of " + ", ".join(available_families())
ANTICIPATED: tuple[type[BaseException], ...] = (
    SSMToolsError,
    ValueError,
    TypeError,
    OSError,
    RecursionError,
    MemoryError,
)
"""Failures the CLI reports as one ``error:`` line with exit 2 (bad input, files, resources)."""
_REPORTED: tuple[type[BaseException], ...] = (*ANTICIPATED, KeyboardInterrupt)
_state = {"debug": False, "quiet": False}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; nothing was written (outputs are committed only when complete)"
    if isinstance(exc, RecursionError):
        return f"the input is nested too deeply to be a checkpoint ({text})"
    if isinstance(exc, MemoryError):
        return "out of memory; the input is too large for this machine (see docs/concepts/file-safety.md#memory-budget)"
    return text or type(exc).__name__


def _show_warning(
    message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    errors.print(f"warning: {' '.join(str(message).split())}", markup=False, highlight=False, soft_wrap=True)


class GuardedGroup(typer.core.TyperGroup):
    """The command group that applies the CLI's failure policy around every command (see the module docstring)."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; anticipated failures become one line and exit 2, others exit 1 (``--debug``: raise)."""
        try:
            with warnings.catch_warnings(), one_blas_thread():  # small LAPACK calls in sequence: see _backends.threads
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):  # usage errors, --help: typer's own
            raise
        except _REPORTED as exc:
            if _state["debug"]:
                raise
            raise fail(exc) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            errors.print(
                f"internal error: {type(exc).__name__}: {_one_line(exc)}; rerun with --debug for the traceback and "
                "please report it",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(code=1) from None


app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Control theory for deep state-space models.", cls=GuardedGroup
)
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
    debug: bool = typer.Option(False, "--debug", help="show the full traceback of a failure instead of one line"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
    memory_budget: str | None = typer.Option(
        None,
        "--memory-budget",
        help="most array data a checkpoint may declare, e.g. 8G (default 2G or $SSMTOOLS_MEMORY_BUDGET)",
    ),
) -> None:
    """ssmtools command-line interface."""
    _state["debug"] = debug
    _state["quiet"] = quiet
    if memory_budget is not None:
        try:
            io.memory_budget(memory_budget)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--memory-budget") from None
        os.environ["SSMTOOLS_MEMORY_BUDGET"] = memory_budget  # read by every checkpoint reader of this process


def fail(exc: BaseException) -> typer.Exit:
    """Print ``exc`` as one ``error:`` line on stderr and return the exit (code 2) to raise.

    With ``--debug`` the exception is raised again instead, so that its traceback is shown.
    """
    if _state["debug"]:
        raise exc
    errors.print(f"error: {_one_line(exc)}", markup=False, highlight=False, soft_wrap=True)  # one line, never wrapped
    return typer.Exit(code=2)


def progress(items: list[Any], what: str) -> Iterator[Any]:
    """Iterate ``items`` with a progress bar on stderr (none when stderr is not a terminal, or with ``--quiet``)."""
    if _state["quiet"] or not errors.is_terminal or len(items) < 2:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=True) as bar:
        task = bar.add_task(what, total=len(items))
        for item in items:
            yield item
            bar.advance(task)


def summaries(model: SSMModel, *, rtol: float = PLAN_RTOL) -> list[LayerSummary]:
    """The norms of every layer (:func:`ssmtools.report.summarize_layer`), with a progress bar per layer."""
    return [summarize_layer(layer, rtol=rtol) for layer in progress(list(model.values()), "norms")]


def norm_table(
    title: str, model: SSMModel, *, rtol: float = PLAN_RTOL, rows: list[LayerSummary] | None = None
) -> Table:
    """The per-layer norm table of ``analyze`` and ``demo`` (H∞ certified to relative accuracy ``rtol``; ``rows``:
    the layers' summaries when already computed).

    A bidirectional layer's peak gain is an L∞ norm (non-causal), so its values are marked ``L∞``; the layer at the
    root of its tree is shown as ``(root)``.
    """
    table = Table(title=title)
    for column in ("layer", "states", "bidir", "H∞ (L∞ if bidir)", "peak ω", "H2", "max state H∞ (L∞)", "stable"):
        table.add_column(column, justify="right")
    rows = summaries(model, rtol=rtol) if rows is None else rows
    for layer, row in zip(model.values(), rows, strict=True):
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

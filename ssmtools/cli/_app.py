"""The ``ssmtools`` Typer application and what every command shares: consoles, the failure exit, tables.

Commands live in their own modules of this package and register themselves on :data:`app`. Every command runs
inside :class:`GuardedGroup`, the one place of the CLI's failure policy: an anticipated failure (bad input, an
unreadable or unwritable file, a full disk, an interrupt, a resource limit) is one ``error:`` line on stderr and
exit 2; anything else is one ``internal error`` line and exit 1. ``--debug`` shows the traceback instead, and
warnings are printed as one ``warning:`` line each (no source lines).
"""

from __future__ import annotations

import errno
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import io
from ..adapters import available_families
from ..errors import SSMToolsError
from ..model import SSMModel
from ..report import summarize_layer

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


class OutputStreamError(SSMToolsError, OSError):
    """Standard output cannot be written (a full device, a closed pipe)."""


class _Stdout:
    """``sys.stdout`` as looked up at each call, whose write failures name standard output.

    When the stream cannot be written, fd 1 is pointed at ``/dev/null`` so that the interpreter's final flush
    does not print a second, unformatted error.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stdout, name)

    def _guard(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except OSError as exc:
            if exc.errno == errno.EPIPE or isinstance(exc, BrokenPipeError):
                raise
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):  # pragma: no cover - not a real fd (CliRunner)
                pass
            raise OutputStreamError(f"cannot write to standard output ({exc.strerror or exc})") from None

    def write(self, text: str) -> int:
        """Write ``text`` to the current ``sys.stdout``."""
        return self._guard(sys.stdout.write, text)

    def flush(self) -> None:
        """Flush the current ``sys.stdout``."""
        self._guard(sys.stdout.flush)

    def isatty(self) -> bool:
        """Whether the current ``sys.stdout`` is a terminal."""
        return bool(getattr(sys.stdout, "isatty", lambda: False)())


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
            with warnings.catch_warnings():
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
console = Console(file=_Stdout(), width=None if sys.stdout.isatty() else 120)  # type: ignore[arg-type]
errors = Console(stderr=True)


@app.callback()
def _root(
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


def norm_table(title: str, model: SSMModel) -> Table:
    """The per-layer norm table of ``analyze`` and ``demo``."""
    table = Table(title=title)
    for column in ("layer", "states", "bidir", "H∞", "peak ω", "H2", "max state H∞", "stable"):
        table.add_column(column, justify="right")
    for layer in progress(list(model.values()), "norms"):
        row = summarize_layer(layer)
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

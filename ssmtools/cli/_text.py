"""Terminal text that never crashes: on a terminal whose encoding lacks the symbols (``PYTHONIOENCODING=ascii``,
a Windows code page) the symbols become ASCII spellings (H∞ -> H-inf) instead of a ``UnicodeEncodeError``."""

from __future__ import annotations

import copy
import errno
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import SSMToolsError

#: ASCII spellings of the symbols the tables and messages print; anything else unencodable becomes "?".
ASCII_SYMBOLS = {
    "H∞": "H-inf",
    "L∞": "L-inf",
    "∞": "inf",
    "‖": "||",
    "λ̄": "lambda",
    "λ": "lambda",
    "ω": "w",
    "σ": "sigma",
    "τ": "tau",
    "Δ": "d",
    "—": "-",
    "–": "-",
    "−": "-",
    "≥": ">=",
    "≤": "<=",
    "≈": "~",
    "₂": "2",
    "²": "^2",
    "→": "->",
    "…": "...",
    "×": "x",
    "·": "*",
    "\u0304": "",  # combining macron (λ̄)
}


def to_ascii(text: str) -> str:
    """``text`` with every symbol of :data:`ASCII_SYMBOLS` spelled in ASCII.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The text, symbols replaced (other characters unchanged).
    """
    for symbol, spelling in ASCII_SYMBOLS.items():
        text = text.replace(symbol, spelling)
    return text


class OutputStreamError(SSMToolsError, OSError):
    """Standard output cannot be written (a full device)."""


class SafeStream:
    """``sys.stdout`` or ``sys.stderr`` (looked up at every write, so redirections are followed) that falls back to
    ASCII spellings of the symbols when the stream's encoding cannot hold them.

    Parameters
    ----------
    name : {"stdout", "stderr"}
        Which stream of :mod:`sys`.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def stream(self) -> Any:
        """The current stream of :mod:`sys`."""
        return getattr(sys, self.name)

    @property
    def encoding(self) -> str:
        """The stream's encoding (rich draws ASCII table borders when it is not UTF)."""
        return getattr(self.stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        """Write ``text``, in ASCII spellings where the encoding lacks a symbol.

        Parameters
        ----------
        text : str
            What to write.

        Returns
        -------
        int
            Characters written.
        """
        try:
            try:
                return self.stream.write(text)
            except UnicodeEncodeError:
                encoding = self.encoding
                return self.stream.write(to_ascii(text).encode(encoding, "replace").decode(encoding))
        except OSError as exc:
            self._unwritable(exc)
            raise  # pragma: no cover - _unwritable always raises

    def flush(self) -> None:
        """Flush the stream."""
        try:
            self.stream.flush()
        except OSError as exc:
            self._unwritable(exc)

    def _unwritable(self, exc: OSError) -> None:
        """Raise :class:`OutputStreamError` naming the stream; a broken pipe is passed on as it is.

        The descriptor is pointed at ``/dev/null`` first, so that the interpreter's final flush does not print a
        second, unformatted error.
        """
        if exc.errno == errno.EPIPE or isinstance(exc, BrokenPipeError):
            raise exc
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        except (OSError, ValueError, AttributeError):  # pragma: no cover - not a real fd (CliRunner)
            pass
        raise OutputStreamError(
            f"cannot write to standard {'output' if self.name == 'stdout' else 'error'} ({exc.strerror or exc})"
        ) from None

    def isatty(self) -> bool:
        """Whether the stream is a terminal.

        Returns
        -------
        bool
        """
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def fileno(self) -> int:
        """The stream's file descriptor.

        Returns
        -------
        int
        """
        return int(self.stream.fileno())


def _ascii_renderable(obj: Any) -> Any:
    """``obj`` with its text in ASCII spellings: strings, and tables (title, caption, headers, cells) measured after
    the replacement, so that columns stay aligned."""
    rich_method = getattr(obj, "__rich__", None)
    if rich_method is not None and not isinstance(obj, Table):
        obj = rich_method()
    if isinstance(obj, str):
        return to_ascii(obj)
    if isinstance(obj, Table):
        table = copy.deepcopy(obj)
        for attribute in ("title", "caption"):
            if isinstance(getattr(table, attribute), str):
                setattr(table, attribute, to_ascii(getattr(table, attribute)))
        for column in table.columns:
            if isinstance(column.header, str):
                column.header = to_ascii(column.header)
            column._cells = [to_ascii(cell) if isinstance(cell, str) else cell for cell in column._cells]
        return table
    return obj


class SafeConsole(Console):
    """A rich console on a :class:`SafeStream` that spells symbols in ASCII before layout when the stream's
    encoding cannot hold them (tables stay aligned).

    Parameters
    ----------
    stream : {"stdout", "stderr"}
        Which stream of :mod:`sys` to write to.
    **options : Any
        Passed to :class:`rich.console.Console`.
    """

    def __init__(self, stream: str, **options: Any) -> None:
        super().__init__(file=SafeStream(stream), **options)  # type: ignore[arg-type]

    def print(self, *objects: Any, **options: Any) -> None:
        """Print like :meth:`rich.console.Console.print`, in ASCII spellings on a terminal that lacks the symbols.

        Parameters
        ----------
        *objects : Any
            What to print.
        **options : Any
            Options of :meth:`rich.console.Console.print`.
        """
        try:
            "H∞ ‖λ̄‖ ω —".encode(self.encoding)
        except (UnicodeEncodeError, LookupError):
            objects = tuple(_ascii_renderable(obj) for obj in objects)
        super().print(*objects, **options)

"""Command-line interface: argument parsing and printing only; the work lives in the library.

One module per command; each registers itself on the shared Typer ``app``. Exit codes: 0 on success, 2 on bad
input (with a one-line message on stderr).
"""

from __future__ import annotations

from . import analyze, demo, plot, prune, report  # noqa: F401  (importing a command module registers it)
from ._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``ssmtools`` console script."""
    app()

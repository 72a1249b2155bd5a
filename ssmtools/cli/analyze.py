"""``ssmtools analyze``: the exact norms of every SSM layer of a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from ..io import load
from ._app import FAMILY_HELP, app, console, fail, norm_table


@app.command(help="Print the exact norms of every SSM layer of a checkpoint.")
def analyze(
    path: Path = typer.Argument(..., help="checkpoint: .safetensors, .pt/.pth, .npz or flax .msgpack"),
    family: str = typer.Option("auto", help=FAMILY_HELP),
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
        raise fail(exc) from None
    console.print(norm_table(f"{path} ({model.family}): layer norms", model))

"""``ssmtools analyze``: the exact norms of every SSM layer of a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from ..io import load
from ..pruning.measure import PLAN_RTOL
from ._app import FAMILY_HELP, app, console, fail, norm_table


@app.command(help="Print the exact norms of every SSM layer of a checkpoint.")
def analyze(
    path: Path = typer.Argument(..., help="checkpoint: .safetensors, .pt/.pth, .npz or flax .msgpack"),
    family: str = typer.Option("auto", help=FAMILY_HELP),
    rtol: float = typer.Option(PLAN_RTOL, help="relative accuracy certified for the H∞ norms (1e-8: all digits)"),
) -> None:
    """Print the exact norms of every SSM layer of a checkpoint.

    Parameters
    ----------
    path : Path
        The checkpoint (.safetensors, .pt/.pth, .npz or flax .msgpack).
    family : str
        Model family, or ``"auto"`` to detect it from the parameter names.
    rtol : float
        Relative accuracy certified for the layer H∞ norms (default 1e-4, ``ssmtools.pruning.measure.PLAN_RTOL``).
    """
    try:
        model = load(path, family)
        table = norm_table(f"{path} ({model.family}): layer norms", model, rtol=rtol)
    except (ValueError, TypeError, OSError) as exc:
        raise fail(exc) from None
    console.print(table)

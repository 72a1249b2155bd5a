"""``ssmtools analyze``: the exact norms of every SSM layer of a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from ..io import load
from ._app import FAMILY_HELP, app, console, fail, norm_table
from ._selective import analyze_selective, check_calibration_args, is_selective

CALIBRATION_HELP = "Mamba: calibration inputs (.npy token ids (batch, T), or embeddings (batch, T, d_model))"
VIEW_HELP = "Mamba: the LTI view of the selective layers: averaged, frozen or bias (docs/concepts/selective.md)"


@app.command(help="Print the exact norms of every SSM layer of a checkpoint.")
def analyze(
    path: Path = typer.Argument(..., help="checkpoint: .safetensors, .pt/.pth, .npz or flax .msgpack"),
    family: str = typer.Option("auto", help=FAMILY_HELP),
    calibration: Path | None = typer.Option(None, help=CALIBRATION_HELP),
    view: str = typer.Option("averaged", help=VIEW_HELP),
    max_tokens: int = typer.Option(4096, help="Mamba: calibration tokens per layer"),
) -> None:
    """Print the exact norms of every SSM layer of a checkpoint.

    Parameters
    ----------
    path : Path
        The checkpoint (.safetensors, .pt/.pth, .npz or flax .msgpack).
    family : str
        Model family, or ``"auto"`` to detect it from the parameter names.
    calibration : Path or None
        Mamba checkpoints: inputs to run the model on (token ids or embeddings, .npy).
    view : str
        Mamba checkpoints: the LTI view reported.
    max_tokens : int
        Mamba checkpoints: calibration tokens per layer.
    """
    try:
        model = load(path, family)
        check_calibration_args(model, calibration, view)
        if is_selective(model):
            analyze_selective(path, model, calibration, view, max_tokens)
            return
    except (ValueError, TypeError, OSError) as exc:
        raise fail(exc) from None
    console.print(norm_table(f"{path} ({model.family}): layer norms", model))

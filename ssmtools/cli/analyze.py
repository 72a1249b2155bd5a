"""``ssmtools analyze``: the exact norms of every SSM layer of a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import SSMToolsError
from ..io import load
from ..pruning.measure import PLAN_RTOL
from ..report import summary_json
from ._app import FAMILY_HELP, app, console, fail, norm_table, summaries
from ._outputs import check_outputs, text_writer, write_all
from ._selective import (
    CALIBRATION_OPTION,
    MAX_TOKENS_OPTION,
    VIEW_OPTION,
    analyze_selective,
    check_calibration_args,
    is_selective,
)


@app.command(help="Print the exact norms of every SSM layer of a checkpoint.")
def analyze(
    path: Path = typer.Argument(..., help="checkpoint: .safetensors, .pt/.pth, .npz or flax .msgpack"),
    family: str = typer.Option("auto", help=FAMILY_HELP),
    json_path: Path | None = typer.Option(
        None, "--json", help="also write the table as JSON here (versioned schema, see docs/cli.md)"
    ),
    force: bool = typer.Option(False, help="replace the --json file if it exists (never the input)"),
    rtol: float = typer.Option(PLAN_RTOL, help="relative accuracy certified for the H∞ norms (1e-8: all digits)"),
    calibration: Path | None = CALIBRATION_OPTION,
    view: str = VIEW_OPTION,
    max_tokens: int = MAX_TOKENS_OPTION,
) -> None:
    """Print the exact norms of every SSM layer of a checkpoint.

    Parameters
    ----------
    path : Path
        The checkpoint (.safetensors, .pt/.pth, .npz or flax .msgpack).
    family : str
        Model family, or ``"auto"`` to detect it from the parameter names.
    json_path : Path or None
        Also write the per-layer table there as JSON (:func:`ssmtools.report.summary_document`).
    force : bool
        Replace an existing ``--json`` file.
    rtol : float
        Relative accuracy certified for the layer H∞ norms (default 1e-4, ``ssmtools.pruning.measure.PLAN_RTOL``).
    calibration : Path or None
        Mamba checkpoints: inputs to run the model on (token ids or embeddings, .npy).
    view : str
        Mamba checkpoints: the LTI view reported.
    max_tokens : int
        Mamba checkpoints: calibration tokens per layer.
    """
    try:
        if json_path is not None:
            check_outputs({"--json": json_path}, {"the input": path}, force=force)
        model = load(path, family)
        check_calibration_args(model, calibration, view)
        if is_selective(model):
            analyze_selective(path, model, calibration, view, max_tokens, json_path, rtol)
            return
        rows = summaries(model, rtol=rtol)
        table = norm_table(f"{path} ({model.family}): layer norms", model, rtol=rtol, rows=rows)
        if json_path is not None:
            write_all([(json_path, text_writer(summary_json(model, rtol=rtol, rows=rows)))])
    except (SSMToolsError, ValueError, TypeError, OSError) as exc:
        raise fail(exc) from None
    console.print(table)

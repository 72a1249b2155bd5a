"""``ssmtools plot``: one figure of a checkpoint (σ, Bode, pole map, scores, HSV decay, pruning plan) to a file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from ..errors import ArgumentError, FormatError, OptionError, SSMToolsError
from ..io import load
from ..model import SSMModel
from ..plot import FIGURE_FORMATS, FIGURE_KINDS, figure_writer, model_figure
from ..pruning import available_criteria, prune_plan
from ._app import FAMILY_HELP, app, console, fail
from ._outputs import check_outputs, write_all
from ._selective import (
    CALIBRATION_OPTION,
    MAX_TOKENS_OPTION,
    VIEW_OPTION,
    calibrated_model,
    check_calibration_args,
    is_selective,
)

KINDS = "Figures (--kind): " + "; ".join(f"{kind.name}: {kind.description}" for kind in FIGURE_KINDS.values()) + "."
CRITERIA = "Criteria (--criterion): " + ", ".join(available_criteria()) + "."


def select_layer(model: SSMModel, layer: str | None) -> SSMModel:
    """``model`` itself, or the model of its one layer named ``layer`` (an unknown name lists the known ones).

    Parameters
    ----------
    model : SSMModel
        The model.
    layer : str or None
        A layer name, or None for every layer.

    Returns
    -------
    SSMModel
    """
    if layer is None:
        return model
    return dataclasses.replace(model, layers={layer: model[layer]})


def figure_format(output: Path) -> str:
    """The figure format named by ``output``'s suffix.

    Parameters
    ----------
    output : Path
        Where the figure goes.

    Returns
    -------
    str
        One of :data:`ssmtools.plot.FIGURE_FORMATS`.
    """
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise FormatError(
            f"-o {str(output)!r}: cannot write a figure as {output.suffix or 'a file without suffix'!r}; "
            f"name a {', '.join('.' + f for f in FIGURE_FORMATS)} file"
        )
    return fmt


@app.command(
    help="Draw one figure of a checkpoint (σ, Bode, pole map, scores, HSV decay or pruning plan) to a file.",
    epilog=KINDS + "  " + CRITERIA,  # full width: never cut off
)
def plot(
    path: Path = typer.Argument(..., help="checkpoint: .safetensors, .pt/.pth, .npz or flax .msgpack (never written)"),
    kind: str = typer.Option("sigma", help="the figure: " + ", ".join(FIGURE_KINDS) + " (described below)"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="figure file, .png, .svg or .pdf (default: <checkpoint name>-<kind>.png here)"
    ),
    layer: str | None = typer.Option(None, help="draw only this layer (default: every layer)"),
    family: str = typer.Option("auto", help=FAMILY_HELP),
    ratio: float | None = typer.Option(None, help="pruning ratio of the plan shown by --kind plan / scores"),
    criterion: str = typer.Option("last", help="criterion of the scores and the plan (listed below)"),
    force: bool = typer.Option(False, help="replace the figure if it exists (never the input)"),
    calibration: Path | None = CALIBRATION_OPTION,
    view: str = VIEW_OPTION,
    max_tokens: int = MAX_TOKENS_OPTION,
) -> None:
    """Draw one figure of a checkpoint to a file.

    Parameters
    ----------
    path : Path
        The checkpoint (never written).
    kind : str
        A key of :data:`ssmtools.plot.FIGURE_KINDS`.
    output : Path or None
        The figure file (.png, .svg or .pdf); default ``<checkpoint stem>-<kind>.png`` in the working directory.
    layer : str or None
        Only this layer.
    family : str
        Model family, or ``"auto"``.
    ratio : float or None
        Pruning ratio of the plan (needed by ``--kind plan``).
    criterion : str
        Criterion of the scores and of the plan.
    force : bool
        Replace an existing figure file.
    calibration : Path or None
        Mamba checkpoints: calibration inputs (needed by ``--kind delta`` / ``energy``; the other kinds then draw
        ``view``).
    view : str
        Mamba checkpoints: the LTI view drawn by the other kinds.
    max_tokens : int
        Mamba checkpoints: calibration tokens per layer.
    """
    try:
        if kind not in FIGURE_KINDS:
            raise OptionError(f"--kind {kind!r} is not a figure; choose one of {', '.join(FIGURE_KINDS)}")
        output = output if output is not None else Path(f"{path.stem}-{kind}.png")
        fmt = figure_format(output)
        check_outputs({"--output": output}, {"the input": path}, force=force)
        if FIGURE_KINDS[kind].needs_plan and ratio is None:
            raise ArgumentError(f"--kind {kind} shows a pruning plan; pass --ratio R (e.g. --ratio 0.3)")
        model = load(path, family)
        check_calibration_args(model, calibration, view)
        if FIGURE_KINDS[kind].needs_calibration and (not is_selective(model) or calibration is None):
            raise ArgumentError(
                f"--kind {kind} shows calibration statistics of a Mamba checkpoint: pass --calibration tokens.npy "
                f"(this checkpoint is {model.family!r})"
            )
        if is_selective(model) and calibration is not None:
            model = calibrated_model(path, model, calibration, view, max_tokens)
        model = select_layer(model, layer)
        plan = None if ratio is None else prune_plan(model, ratio, criterion)
        figure = model_figure(model, kind, plan=plan, criterion=criterion)
        write_all([(output, figure_writer(figure, fmt))])
    except (SSMToolsError, ValueError, TypeError, OSError) as exc:
        raise fail(exc) from None
    console.print(f"wrote {output}", markup=False, highlight=False)

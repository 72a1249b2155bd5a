"""``ssmtools prune``: prune a checkpoint and write it in the same format."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import typer

from ..io import OverwriteError, atomic_write_all, check_output_paths, load, output_format, params_writer
from ..pruning import available_criteria, available_reductions, last_prune
from ..pruning.measure import PLAN_RTOL
from ._app import FAMILY_HELP, app, console, fail, progress
from ._selective import (
    CALIBRATION_OPTION,
    MAX_TOKENS_OPTION,
    VIEW_OPTION,
    check_calibration_args,
    is_selective,
    prune_selective,
)


@app.command(
    help="Prune a checkpoint with LAST (or another criterion) and write it in the same format.",
    epilog=f"Criteria (--criterion): {', '.join(available_criteria())}.  "  # full width: never cut off
    f"Reductions (--reduction): {', '.join(available_reductions())}.",
)
def prune(
    path: Path = typer.Argument(..., help="checkpoint to prune (never overwritten)"),
    ratio: float = typer.Option(..., help="fraction of stored states removed model-wide, in [0, 1)"),
    output: Path = typer.Option(..., "--output", "-o", help="where to write the pruned checkpoint (same format)"),
    criterion: str = typer.Option("last", help="scores the states: one of the criteria listed below"),
    reduction: str | None = typer.Option(
        None, help="what is done to each layer (listed below; default: the criterion's)"
    ),
    family: str = typer.Option("auto", help=FAMILY_HELP),
    mask: bool = typer.Option(False, help="zero pruned states instead of removing them (released LAST behaviour)"),
    plan_json: Path | None = typer.Option(None, help="also write the pruning plan as JSON here"),
    force: bool = typer.Option(False, help="replace outputs that already exist (never the input)"),
    rtol: float = typer.Option(PLAN_RTOL, help="relative accuracy certified for the plan's H∞ errors"),
    calibration: Path | None = CALIBRATION_OPTION,
    view: str = VIEW_OPTION,
    max_tokens: int = MAX_TOKENS_OPTION,
) -> None:
    """Prune a checkpoint with LAST (or another criterion) and write it in the same format.

    Parameters
    ----------
    path : Path
        The checkpoint to prune (never overwritten).
    ratio : float
        Fraction of stored states removed model-wide, in [0, 1).
    output : Path
        Where to write the pruned checkpoint (same format; written atomically).
    criterion : str
        A registered criterion ([`ssmtools.pruning.available_criteria`][ssmtools.pruning.criteria.available_criteria]).
    reduction : str or None
        A registered reduction ([`ssmtools.pruning.available_reductions`][ssmtools.pruning.reductions.available_reductions]); ``None``: the criterion's default.
    family : str
        Model family, or ``"auto"``.
    mask : bool
        Zero the pruned states instead of removing them.
    plan_json : Path or None
        Also write the pruning plan as JSON there.
    force : bool
        Replace outputs that already exist. Without it an existing output is refused (exit 2). All outputs are
        written as one commit: every file, or none.
    rtol : float
        Relative accuracy certified for the plan's H∞ norms (default 1e-4).
    calibration : Path or None
        Mamba checkpoints: inputs to run the model on (token ids or embeddings, .npy).
    view : str
        Mamba checkpoints: the LTI view the criterion scores.
    max_tokens : int
        Mamba checkpoints: calibration tokens per layer.
    """
    try:
        outputs = {"--output": output, **({"--plan-json": plan_json} if plan_json is not None else {})}
        check_output_paths(outputs, {"the input": path})
        existing = [f"{label} {str(target)!r}" for label, target in outputs.items() if Path(target).exists()]
        if existing and not force:
            raise OverwriteError(f"{', '.join(existing)} already exists; pass --force to replace it")
        fmt = output_format(output, source=path)
        model = load(path, family)
        check_calibration_args(model, calibration, view)
        if is_selective(model):
            params, plan = prune_selective(path, model, ratio, criterion, calibration, view, max_tokens, mask)
        else:
            params, plan = last_prune(
                model, ratio, criterion, reduction=reduction, mask=mask, hinf_rtol=rtol, progress=progress
            )
        files = [(output, params_writer(params, fmt))]
        if plan_json is not None:
            text = plan.to_json().encode("utf-8")

            def write_plan(file: BinaryIO) -> None:
                file.write(text)

            files.append((plan_json, write_plan))
        atomic_write_all(files)  # every output, or none
    except (ValueError, TypeError, OSError, ImportError) as exc:
        raise fail(exc) from None
    console.print(plan)
    console.print(f"wrote {output}")

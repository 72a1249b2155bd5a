"""``ssmtools report``: one self-contained HTML report of a checkpoint (tables and figures embedded)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import SSMToolsError
from ..html_report import html_report
from ..io import load
from ..pruning import available_criteria, prune_plan
from ..pruning.measure import PLAN_RTOL
from ._app import FAMILY_HELP, app, console, fail
from ._outputs import check_outputs, text_writer, write_all


@app.command(
    help="Write one self-contained HTML report of a checkpoint: norms, σ-plots, pole maps, scores, HSVs.",
    epilog="Criteria (--criterion): " + ", ".join(available_criteria()) + ".",  # full width: never cut off
)
def report(
    path: Path = typer.Argument(..., help="checkpoint: .safetensors, .pt/.pth, .npz or flax .msgpack (never written)"),
    output: Path = typer.Option(..., "--output", "-o", help="the HTML file to write (figures embedded, no network)"),
    ratio: float | None = typer.Option(None, help="also show the pruning plan at this ratio and its per-layer errors"),
    criterion: str = typer.Option("last", help="criterion of the scores and the plan (listed below)"),
    family: str = typer.Option("auto", help=FAMILY_HELP),
    force: bool = typer.Option(False, help="replace the report if it exists (never the input)"),
    rtol: float = typer.Option(PLAN_RTOL, help="relative accuracy certified for the H∞ norms (1e-8: all digits)"),
) -> None:
    """Write one self-contained HTML report of a checkpoint.

    Parameters
    ----------
    path : Path
        The checkpoint (never written).
    output : Path
        The HTML file (written atomically).
    ratio : float or None
        Pruning ratio of the plan shown; None: no plan.
    criterion : str
        Criterion of the score distributions and of the plan.
    family : str
        Model family, or ``"auto"``.
    force : bool
        Replace an existing report.
    rtol : float
        Relative accuracy certified for the H∞ norms and the plan's H∞ errors (default 1e-4,
        ``ssmtools.pruning.measure.PLAN_RTOL``, as ``analyze`` and ``prune``).
    """
    try:
        check_outputs({"--output": output}, {"the input": path}, force=force)
        model = load(path, family)
        plan = None if ratio is None else prune_plan(model, ratio, criterion, hinf_rtol=rtol)
        text = html_report(
            model, plan=plan, criterion=criterion, title=f"ssmtools report: {path.name} ({model.family})", rtol=rtol
        )
        write_all([(output, text_writer(text))])
    except (SSMToolsError, ValueError, TypeError, OSError) as exc:
        raise fail(exc) from None
    console.print(f"wrote {output}", markup=False, highlight=False)

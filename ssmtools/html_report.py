"""One self-contained HTML report of a model: the norm table, σ-plots and pole maps per layer, scores, HSV decay and,
with a pruning plan, the plan and its per-layer errors.

Everything is in the one file: figures are embedded as base64 PNG (``<img src="data:image/png;base64,...">``), the
style sheet is inline, nothing is loaded from the network. A figure that cannot be drawn for a model (e.g. the HSVs
of a layer with unstable states) is replaced by a one-line note, so the rest of the report is still written.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from ._version import __version__
from .errors import SSMToolsError
from .model import SSMModel
from .plot import FIGURE_KINDS, figure_bytes, model_figure, pole_map, sigma
from .pruning.measure import PLAN_RTOL
from .report import summarize
from .selective import SelectiveLayer

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["html_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; } tr.unstable td { background: #fde8e8; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
.row { display: flex; flex-wrap: wrap; gap: 1em; } .row figure { flex: 1 1 480px; margin: .5em 0; }
figure img { max-width: 100%; } figcaption { font-size: .85em; color: #555; }
.note { color: #a33; } .meta { color: #555; }
"""


def _number(value: float | None, digits: int = 6) -> str:
    if value is None:
        return "—"
    return "∞" if np.isinf(value) else f"{value:.{digits}g}"


def _table(columns: list[str], rows: list[list[str]], unstable: list[bool] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for index, row in enumerate(rows):
        css = ' class="unstable"' if unstable and unstable[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(draw: Callable[[], Figure], caption: str) -> str:
    """``<figure>`` with the drawn figure as an embedded PNG, or a note naming why it could not be drawn."""
    try:
        data = figure_bytes(draw(), "png")
    except SSMToolsError as exc:
        return f'<p class="note">{html.escape(caption)}: not drawn ({html.escape(str(exc))})</p>'
    encoded = base64.b64encode(data).decode("ascii")
    alt = html.escape(caption, quote=True)
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{encoded}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _layer_figure(layer: Any, kind: str) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 3.8))
    ax = fig.subplots()
    if kind == "sigma":
        sigma(layer, ax=ax)
    else:
        pole_map(layer, scores="hinf", view="margin", ax=ax)
    return fig


def _norm_section(model: SSMModel, rtol: float) -> str:
    rows, unstable = [], []
    for row in summarize(model, rtol=rtol):
        rows.append(
            [
                row.name,
                str(row.n_states),
                "L∞ (bidirectional)" if row.bidirectional else "H∞",
                _number(row.hinf),
                "—" if row.peak is None or not np.isfinite(row.peak) else f"{row.peak:.4f}",
                _number(row.h2),
                _number(row.max_state_hinf),
                "yes" if row.stable else "no",
            ]
        )
        unstable.append(not row.stable)
    columns = ["layer", "states", "norm", "‖G‖", "peak ω", "H2", "max state H∞", "stable"]
    return "<h2>Layer norms</h2>" + _table(columns, rows, unstable)


def _plan_section(model: SSMModel, plan: Any) -> str:
    options = ", ".join(f"{k}={v!r}" for k, v in plan.criterion_options.items())
    summary = (
        f"criterion <b>{html.escape(plan.criterion)}</b>{html.escape(f' ({options})' if options else '')}, "
        f"reduction {html.escape(plan.reduction)}, allocation {html.escape(plan.allocation)}: removed "
        f"{plan.n_removed} of {plan.n_total} stored states (ratio {plan.realized_ratio:.4f}, nominal {plan.ratio:.4f}),"
        f" threshold {_number(plan.threshold)}"
    )
    rows = [
        [
            layer.name,
            f"{layer.n_kept}/{layer.n_total}",
            _number(layer.hinf_error, 4),
            _number(layer.relative_hinf_error, 4),
            _number(layer.h2_error, 4),
            _number(layer.relative_h2_error, 4),
            str(layer.n_unstable),
        ]
        for layer in plan.layers
    ]
    columns = ["layer", "kept/total", "‖G − G_r‖∞", "relative", "‖G − G_r‖₂", "relative", "unstable states"]
    return (
        "<h2>Pruning plan</h2>"
        f"<p>{summary}</p>"
        + _table(columns, rows, [layer.n_unstable > 0 for layer in plan.layers])
        + _figure(lambda: model_figure(model, "plan", plan=plan), FIGURE_KINDS["plan"].description)
    )


def html_report(
    model: SSMModel, *, plan: Any = None, criterion: str = "last", title: str | None = None, rtol: float = PLAN_RTOL
) -> str:
    """The HTML text of a self-contained report on ``model`` (figures embedded, no network needed to view it).

    Sections: the per-layer norm table of ``ssmtools analyze``; the σ-plot of all layers; per layer its σ-plot and
    its pole map (angle against distance to the unit circle, :func:`ssmtools.plot.pole_map` with
    ``view="margin"``); the score distributions of ``criterion`` (of ``plan`` when given); the Hankel singular
    value decay; with ``plan``, the plan, its per-layer truncation errors and its allocation.

    Parameters
    ----------
    model : SSMModel
        The model (e.g. :func:`ssmtools.load` of a checkpoint).
    plan : PruningPlan, optional
        A pruning plan of ``model`` (:func:`ssmtools.pruning.prune_plan`).
    criterion : str
        Criterion of the score distributions when no plan is given.
    title : str, optional
        Page title; default names the model's source and family.
    rtol : float
        Relative accuracy certified for the table's H∞ norms (default
        :data:`~ssmtools.pruning.measure.PLAN_RTOL`, as ``analyze`` and ``prune``).

    Returns
    -------
    str
        The HTML document (UTF-8 text).

    Examples
    --------
    >>> import ssmtools as st
    >>> text = html_report(st.SSMModel.from_systems({"e5": st.examples.s5_layer_e5()}))
    >>> text.startswith("<!DOCTYPE html>"), text.count("data:image/png;base64,") >= 4
    (True, True)
    """
    title = title or f"ssmtools report: {model.source or 'model'} ({model.family})"
    meta = (
        f"{len(model)} layers, {model.n_states} stored states, family {html.escape(model.family)}; "
        f"written by ssmtools {html.escape(__version__)}. Frequencies in rad/sample (discrete time) or rad/s."
    )
    views = sorted({layer.view for layer in model.values() if isinstance(layer, SelectiveLayer)})
    if views:  # a selective layer is time-varying: every number and figure here is of its labelled LTI view
        meta += (
            f" Selective (Mamba) layers are shown through their LTI view {', '.join(map(repr, views))}"
            " (docs/concepts/selective.md): norms, poles and scores are those of that time-invariant view, not of"
            " the time-varying layer."
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f'<h1>{html.escape(title)}</h1><p class="meta">{meta}</p>',
        _norm_section(model, rtol),
        "<h2>Frequency response</h2>",
        _figure(lambda: model_figure(model, "sigma"), FIGURE_KINDS["sigma"].description),
        "<h2>Layers</h2>",
    ]
    for name, layer in model.items():
        label = f" (LTI view: {layer.view})" if isinstance(layer, SelectiveLayer) else ""
        parts.append(f'<h3>{html.escape(name + label)}</h3><div class="row">')
        parts.append(_figure(partial(_layer_figure, layer, "sigma"), f"{name}: σ_max, H∞ peak marked"))
        parts.append(
            _figure(
                partial(_layer_figure, layer, "poles"),
                f"{name}: poles, angle vs distance to the unit circle, coloured by per-state H∞",
            )
        )
        parts.append("</div>")
    parts += [
        "<h2>Scores</h2>",
        _figure(
            lambda: model_figure(model, "scores", plan=plan, criterion=criterion), FIGURE_KINDS["scores"].description
        ),
        "<h2>Hankel singular values</h2>",
        _figure(lambda: model_figure(model, "hsv"), FIGURE_KINDS["hsv"].description),
    ]
    if plan is not None:
        parts.append(_plan_section(model, plan))
    parts.append("</body></html>\n")
    return "\n".join(parts)

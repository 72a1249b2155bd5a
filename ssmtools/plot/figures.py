"""Whole figures of a model by kind (what ``ssmtools plot`` and ``ssmtools report`` draw), and their bytes.

:data:`FIGURE_KINDS` is the one registry of the figure kinds: the CLI's ``--kind`` choices, its help and the
report are read from it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import ArgumentError, FormatError, UnknownNameError
from ..model import SSMModel
from ..pruning import score_model
from .frequency import bode, sigma
from .poles import pole_map
from .pruning import plan_allocation
from .scores import hsv_decay, plan_scores, score_distributions
from .selective import delta_map, selective_arrays, state_energy

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "FigureKind",
    "model_figure",
    "figure_bytes",
    "figure_writer",
]  # and the registries FIGURE_KINDS, FIGURE_FORMATS

#: Output formats of :func:`figure_bytes`, by file suffix.
FIGURE_FORMATS = ("png", "svg", "pdf")


@dataclass(frozen=True)
class FigureKind:
    """One kind of model figure.

    Parameters
    ----------
    name : str
        The ``--kind`` name.
    description : str
        One line for the help and the report.
    needs_plan : bool
        Whether the figure shows a pruning plan (``--ratio``).
    per_layer : bool
        Whether the figure draws one panel per layer (else all layers on one axes).
    needs_calibration : bool
        Whether the figure shows calibration statistics of a Mamba model (``--calibration``).
    """

    name: str
    description: str
    needs_plan: bool = False
    per_layer: bool = False
    needs_calibration: bool = False


#: The figure kinds by name, in the order the CLI lists them.
FIGURE_KINDS: dict[str, FigureKind] = {
    kind.name: kind
    for kind in (
        FigureKind("sigma", "singular-value plot σ_max(G(e^{jω})) of each layer, H∞ peaks marked"),
        FigureKind("bode", "Bode plot of the channel attaining each layer's H∞ peak"),
        FigureKind(
            "poles", "pole map: angle vs distance to the unit circle (log), coloured by per-state H∞", False, True
        ),
        FigureKind(
            "scores", "per-layer distributions of the criterion's normalised scores (kept vs pruned with a plan)"
        ),
        FigureKind("hsv", "Hankel singular value decay of each layer (forward scan)"),
        FigureKind("plan", "kept vs removed states per layer of the pruning plan", needs_plan=True),
        FigureKind(
            "delta", "Mamba: mean step Δ_t per layer and channel over the calibration tokens", needs_calibration=True
        ),
        FigureKind(
            "energy",
            "Mamba: empirical-Gramian score per channel and state of each layer (calibration)",
            per_layer=True,
            needs_calibration=True,
        ),
    )
}


def _new_figure(panels: int = 1) -> tuple[Figure, list[Any]]:
    """A pyplot-free figure (no backend, no global state: safe in scripts and servers) with ``panels`` axes."""
    from matplotlib.figure import Figure

    columns = min(panels, 3)
    rows = -(-panels // columns)
    fig = Figure(figsize=(6.4 * columns if panels > 1 else 7.5, 4.2 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    flat = list(axes.ravel())
    for extra in flat[panels:]:
        extra.set_visible(False)
    return fig, flat[:panels]


def model_figure(
    model: SSMModel,
    kind: str,
    *,
    plan: Any = None,
    criterion: str = "last",
    scores: str = "hinf",
) -> Figure:
    """The figure of ``kind`` (a key of :data:`FIGURE_KINDS`) for every layer of ``model``.

    ``"sigma"``, ``"bode"`` and ``"hsv"`` overlay the layers on one axes (legend outside the axes); ``"poles"`` draws
    one pole map per layer in the margin view (:func:`~ssmtools.plot.pole_map` with ``view="margin"``);
    ``"scores"`` the normalised scores of ``criterion`` per layer (those of ``plan``, kept vs pruned, when given);
    ``"plan"`` the per-layer allocation of ``plan``; ``"delta"`` and ``"energy"`` the calibration statistics of a
    calibrated Mamba model (:func:`~ssmtools.plot.delta_map`, one :func:`~ssmtools.plot.state_energy` per layer).

    Parameters
    ----------
    model : SSMModel
        The layers to draw.
    kind : str
        A key of :data:`FIGURE_KINDS`.
    plan : PruningPlan, optional
        A pruning plan of ``model``; required by ``"plan"``.
    criterion : str
        Criterion of the ``"scores"`` figure without a plan.
    scores : str
        Pole colours of the ``"poles"`` figure (a ``scores`` name of :func:`~ssmtools.plot.pole_map`).

    Returns
    -------
    matplotlib.figure.Figure
        A figure not registered with pyplot (``plt.show`` does not see it; save it with :func:`figure_bytes`).

    Raises
    ------
    UnknownNameError
        ``kind`` is not registered.
    ArgumentError
        ``kind`` needs a plan and none was given.

    Examples
    --------
    >>> import ssmtools as st
    >>> model = st.SSMModel.from_systems({"e5": st.examples.s5_layer_e5()})
    >>> fig = model_figure(model, "poles")
    >>> fig.axes[0].get_yscale()
    'log'
    """
    if kind not in FIGURE_KINDS:
        raise UnknownNameError(f"unknown figure kind {kind!r}; choose one of {', '.join(FIGURE_KINDS)}")
    if FIGURE_KINDS[kind].needs_plan and plan is None:
        raise ArgumentError(f"the {kind!r} figure shows a pruning plan; pass a ratio (--ratio) to make one")
    if kind == "bode":
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7.5, 5.6))
        bode(dict(model), axes=fig.subplots(2, 1, sharex=True))
        _outside_legend(fig.axes[0], len(model))
        return fig
    if kind == "delta":
        fig, (ax,) = _new_figure()
        delta_map({name: arrays["delta"] for name, arrays in selective_arrays(model).items()}, ax=ax)
        return fig
    if kind == "energy":
        fig, axes = _new_figure(len(model))
        for ax, (name, arrays) in zip(axes, selective_arrays(model).items()):
            state_energy(arrays["gramian"], ax=ax, label="gramian score √(E[h²]·E[q])")
            ax.set_title(f"{name}: state energies (time-varying layer)", fontsize="medium")
        fig.tight_layout()
        return fig
    if kind == "poles":
        fig, axes = _new_figure(len(model))
        for ax, (name, layer) in zip(axes, model.items()):
            pole_map(layer, scores=scores, view="margin", ax=ax)
            ax.set_title(f"{name}: poles, distance to the circle", fontsize="medium")
        fig.tight_layout()
        return fig
    fig, (ax,) = _new_figure()
    if kind == "sigma":
        sigma(dict(model), ax=ax)
    elif kind == "hsv":
        hsv_decay(dict(model), ax=ax)
    elif kind == "plan":
        plan_allocation(plan, ax=ax)
    elif plan is not None:
        plan_scores(plan, ax=ax)
    else:
        model_scores = score_model(model, criterion)
        per_state = {name: model_scores[name].broadcast(model_scores[name].unit_scores) for name in model_scores}
        score_distributions(per_state, ax=ax, ylabel=f"{criterion} score (normalised per layer)")
    return fig


def _outside_legend(ax: Any, curves: int) -> None:
    """Move a legend right of the axes when several layers are overlaid (it then covers no curve)."""
    legend = ax.get_legend()
    if legend is not None and curves > 1:
        legend.set_bbox_to_anchor((1.02, 1.0))
        legend.set_loc("upper left")


def figure_bytes(fig: Figure, fmt: str, *, dpi: int = 110) -> bytes:
    """The figure as PNG, SVG or PDF bytes, cropped to what is drawn (legends outside the axes included).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    fmt : {"png", "svg", "pdf"}
        Output format.
    dpi : int
        Resolution of PNG output.

    Returns
    -------
    bytes

    Raises
    ------
    FormatError
        ``fmt`` is not one of :data:`FIGURE_FORMATS`.
    """
    if fmt not in FIGURE_FORMATS:
        raise FormatError(f"cannot write a figure as {fmt!r}; use one of {', '.join('.' + f for f in FIGURE_FORMATS)}")
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None  # reproducible SVG (no timestamp)
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def figure_writer(fig: Figure, fmt: str) -> Callable[[BinaryIO], None]:
    """A writer for :func:`ssmtools.io.atomic_write`: the figure rendered once, now, then written.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    fmt : {"png", "svg", "pdf"}
        Output format.

    Returns
    -------
    callable
        ``write(file)`` writing the rendered bytes.
    """
    data = figure_bytes(fig, fmt)

    def write(file: BinaryIO) -> None:
        file.write(data)

    return write

"""Pole maps: the poles of a layer, coloured by a per-state score, kept vs pruned, unstable states marked.

Two views: ``"plane"`` (the complex plane with the stability boundary) and ``"margin"``, made for trained SSMs,
whose poles crowd against the boundary (|λ| between 0.95 and 0.9999 is one blob in the plane): the angle of each
pole on x and its distance to the boundary on a log-scale y.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ArgumentError, ArgumentTypeError, ShapeError, check_choice
from ..model import SSMLayer
from ..norms import hankel_singular_values, state_h2_norms, state_hinf_norms
from ..pruning import available_criteria, get_criterion
from ..systems import LTISystem
from ._common import _causal, _legend, _new_axes, _system_of

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["pole_map"]


_SCORE_LABELS = {
    "hinf": "per-state H∞ norm",
    "h2": "per-state H2 norm",
    "last": "LAST score",
    "hsv": "Hankel singular value",
}


def _named_scores(layer: Any, name: str) -> tuple[np.ndarray, str]:
    """Per-state scores of a layer by name (shape ``(*batch, n)``) and their colour-bar label."""
    system = _system_of(layer, "system")
    if name == "hinf":
        return state_hinf_norms(system), _SCORE_LABELS[name]
    if name == "h2":
        return state_h2_norms(system), _SCORE_LABELS[name]
    if name == "hsv":
        return _state_hsv(system), _SCORE_LABELS[name]
    if name not in available_criteria():
        raise ArgumentError(
            f"scores={name!r} is not valid; choose one of {['hinf', 'h2', 'hsv'] + available_criteria()} "
            "or pass an array of scores"
        )
    criterion = get_criterion(name)
    if not isinstance(layer, SSMLayer):
        layer = SSMLayer("", system)
    raw = np.asarray(criterion.raw_scores(layer), dtype=float)
    label = _SCORE_LABELS.get(name, f"{name} score") + " (normalised per layer)"
    return np.asarray(criterion.normalize(raw.ravel()), dtype=float).reshape(raw.shape), label


def _state_hsv(system: LTISystem) -> np.ndarray:
    """Hankel singular value of each state seen alone (its one-state subsystem), shape (*batch, n).

    The HSVs of a layer belong to its balanced realization, not to individual diagonal states, so a
    per-state "HSV" score is the largest HSV of the state's own subsystem (computed by
    [`ssmtools.hankel_singular_values`][ssmtools.norms.hankel_singular_values] on each one-state system; D does not enter the HSVs).
    """
    return hankel_singular_values(_causal(system).states())[..., 0]


def _coordinates(system: LTISystem, view: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, str]:
    """(x, y, stability margin, x label, y label) of every pole, flattened, for ``view``."""
    poles = system.poles.ravel()
    margin = np.asarray(system.stability_margin, dtype=float).ravel()  # compensated: exact sign, relative digits
    if view == "plane":
        return poles.real, poles.imag, margin, "Re λ", "Im λ"
    if system.is_discrete:
        return np.angle(poles), margin, margin, "pole angle arg λ (rad/sample)", "distance to the unit circle 1 − |λ|"
    return poles.imag, margin, margin, "Im λ (rad/s)", "distance to the imaginary axis −Re λ"


def _margin_floor(margin: np.ndarray) -> float:
    """Where states with no positive margin (unstable or marginal) are drawn on the log axis: below every stable one."""
    positive = margin[margin > 0]
    return float(positive.min()) / 10.0 if positive.size else 1e-16


def pole_map(
    system: Any,
    *,
    scores: str | ArrayLike | None = None,
    keep: ArrayLike | None = None,
    ax: Axes | None = None,
    view: Literal["plane", "margin"] = "plane",
    score_label: str | None = None,
    log_color: bool = True,
    show_conjugates: bool = False,
    cmap: str = "viridis",
) -> Axes:
    """Poles of a layer, coloured by a per-state score, kept vs pruned and unstable states marked.

    ``view="plane"``: the complex plane; discrete time draws the unit circle |λ| = 1, continuous time the
    imaginary axis Re λ = 0 (``gid="stability-boundary"``). ``view="margin"`` (made for trained SSMs, whose
    poles crowd against the boundary): the angle arg λ (DT) or Im λ (CT) on x and the distance to the boundary,
    1 − |λ| (DT) or −Re λ (CT), on a log-scale y; the distance is the compensated
    :attr:`~ssmtools.DiagonalSSM.stability_margin` (exact sign and full relative accuracy one ulp from the
    circle, where a plain ``1 - abs(λ)`` loses every digit). Kept states are filled circles
    (``gid="kept-poles"``), pruned states crosses (``gid="pruned-poles"``); without a mask all poles share
    ``gid="poles"``. Unstable or marginal states (|λ| ≥ 1, Re λ ≥ 0) are ringed in red (``gid="unstable-poles"``);
    in the margin view, where they have no positive distance, they are drawn on a red line below every
    stable state (``gid="instability-line"``).

    Parameters
    ----------
    system : DiagonalSSM or SSMLayer
        Any batch shape; all poles are drawn (e.g. every channel of a multi-SISO layer).
    scores : str or array_like of shape ``(*batch, n)``, optional
        Colour of each pole. ``"hinf"``: [`ssmtools.state_hinf_norms`][ssmtools.norms.state_hinf_norms]; ``"h2"``:
        [`ssmtools.state_h2_norms`][ssmtools.norms.state_h2_norms]; ``"hsv"``: the Hankel singular value of each state's
        one-state subsystem; ``"last"`` or any other name of
        [`ssmtools.pruning.available_criteria`][ssmtools.pruning.criteria.available_criteria]: that criterion's per-layer normalised score
        (LAST: LAMP-normalised squared per-state H∞). Non-finite scores (unstable states) are drawn
        in red.
    keep : array_like of bool, shape ``(*batch, n)``, optional
        Keep mask (e.g. one entry of ``PruningPlan.keep``); True = kept.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    view : {"plane", "margin"}
        The complex plane, or angle against distance to the stability boundary (log scale).
    score_label : str, optional
        Colour-bar label; defaults to the score's name.
    log_color : bool
        Logarithmic colour scale (when all finite scores are positive).
    show_conjugates : bool
        Also draw the mirrored conjugate poles of ``output="real"`` systems (faded,
        ``gid="conjugate-poles"``): each stored state stands for the pair (λ, conj λ).
    cmap : str
        Matplotlib colour map.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.pole_map(st.examples.s5_layer_e5(), scores="hinf", keep=[False, True])
    >>> [len(c.get_offsets()) for c in ax.collections if c.get_gid() in ("kept-poles", "pruned-poles")]
    [1, 1]
    >>> ax = st.plot.pole_map(st.examples.s5_layer_e5(), view="margin")
    >>> ax.get_yscale(), ax.get_ylabel()
    ('log', 'distance to the unit circle 1 − |λ|')
    """
    import matplotlib.collections as mcollections
    import matplotlib.colors as mcolors

    check_choice("view", view, ("plane", "margin"))
    layer, system = system, _system_of(system, "system")
    x, y, margin, xlabel, ylabel = _coordinates(system, view)
    unstable = ~(margin > 0)
    if view == "margin" and np.any(unstable):
        floor = _margin_floor(margin)
        y = np.where(unstable, floor, y)
    label = score_label
    values = None
    if scores is not None:
        if isinstance(scores, str):
            scores, default_label = _named_scores(layer, scores)
            label = label or default_label
        values = np.asarray(scores, dtype=float)
        if values.shape != system.poles.shape:
            raise ShapeError(
                f"scores has shape {values.shape} but the poles have shape {system.poles.shape}; "
                "pass one score per state"
            )
        values = values.ravel()
    if keep is None:
        mask = None
    else:
        mask = np.asarray(keep)
        if mask.dtype != bool:
            raise ArgumentTypeError(
                f"keep must be a boolean mask, got dtype {mask.dtype}; pass e.g. scores >= threshold"
            )
        if mask.shape != system.poles.shape:
            raise ShapeError(
                f"keep has shape {mask.shape} but the poles have shape {system.poles.shape}; pass one entry per state"
            )
        mask = mask.ravel()
    ax = _new_axes(ax)
    if view == "margin":
        ax.set_yscale("log")
        if np.any(unstable):
            ax.axhline(floor, color="red", linewidth=0.8, linestyle="--", gid="instability-line")
    elif system.is_discrete:
        theta = np.linspace(0, 2 * np.pi, 400)
        ax.plot(np.cos(theta), np.sin(theta), color="0.5", linewidth=0.8, gid="stability-boundary")
        ax.set_aspect("equal", adjustable="datalim")
    else:
        ax.axvline(0.0, color="0.5", linewidth=0.8, gid="stability-boundary")
    norm: mcolors.Normalize | None = None
    finite = np.ones(x.shape, bool) if values is None else np.isfinite(values)
    if values is not None and np.any(finite):
        low, high = values[finite].min(), values[finite].max()
        if log_color and low > 0 and high > low:
            norm = mcolors.LogNorm(low, high)
        else:
            norm = mcolors.Normalize(low, high if high > low else low + 1)
    groups = (
        [("poles", np.ones(x.shape, bool), "o")]
        if mask is None
        else [("kept-poles", mask, "o"), ("pruned-poles", ~mask, "X")]
    )
    mappable = None
    for gid, selected, marker in groups:
        chosen = selected & finite
        kwargs: dict[str, Any] = dict(
            marker=marker,
            s=36,
            gid=gid,
            edgecolors="k",
            linewidths=0.4,
            label=f"{gid.split('-')[0]} ({int(selected.sum())})" if mask is not None else None,
        )
        if values is not None:
            kwargs.update(c=values[chosen], cmap=cmap, norm=norm)
        collection = ax.scatter(x[chosen], y[chosen], **kwargs)
        if values is not None:
            mappable = collection
        if np.any(selected & ~finite):
            ax.scatter(
                x[selected & ~finite],
                y[selected & ~finite],
                marker=marker,
                s=36,
                color="red",
                gid=f"{gid}-unstable",
                label="non-finite score",
            )
    if np.any(unstable):
        boundary = "|λ| ≥ 1" if system.is_discrete else "Re λ ≥ 0"
        ax.scatter(
            x[unstable],
            y[unstable],
            marker="o",
            s=110,
            facecolors="none",
            edgecolors="red",
            linewidths=1.4,
            gid="unstable-poles",
            label=f"unstable/marginal, {boundary} ({int(unstable.sum())})",
        )
    if show_conjugates and system.output == "real":
        ax.scatter(
            x if view == "plane" else -x,
            -y if view == "plane" else y,
            marker="o",
            s=20,
            facecolors="none",
            edgecolors="0.6",
            gid="conjugate-poles",
        )
    if mappable is not None:
        ax.figure.colorbar(mappable, ax=ax, label=label or "score")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if view == "margin":
        title = "poles: angle vs distance to the unit circle" if system.is_discrete else "poles: distance to Re λ = 0"
    else:
        title = "poles (unit circle)" if system.is_discrete else "poles (imaginary axis)"
    ax.set_title(title, fontsize="medium")
    if mask is not None or np.any(unstable):
        _legend(ax)
        legend = ax.get_legend()
        if legend is not None and values is not None:  # neutral markers: colour encodes the score
            for handle, text in zip(legend.legend_handles, legend.get_texts()):
                if isinstance(handle, mcollections.Collection) and text.get_text().startswith(("kept", "pruned")):
                    handle.set_facecolor("0.6")
    return ax

"""Score plots: per-layer score distributions with a threshold, a plan's scores, Hankel singular value decay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..norms import hankel_singular_values
from ._common import Systems, _causal, _color, _layer_axis, _legend, _named_systems, _new_axes, _plans

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["score_distributions", "plan_scores", "hsv_decay"]


def _as_layer_dict(values: Any, what: str) -> dict[str, np.ndarray]:
    if isinstance(values, Mapping):
        return {str(k): np.asarray(v) for k, v in values.items()}
    if isinstance(values, Sequence) and not isinstance(values, str):
        return {str(i): np.asarray(v) for i, v in enumerate(values)}
    raise ArgumentTypeError(
        f"{what} must be a dict {{layer name: array}} or a list of arrays, got {type(values).__name__}"
    )


def score_distributions(
    scores: Mapping[str, ArrayLike] | Sequence[ArrayLike],
    *,
    threshold: float | None = None,
    keep: Mapping[str, ArrayLike] | Sequence[ArrayLike] | None = None,
    ax: Axes | None = None,
    log: bool = True,
    ylabel: str = "score",
) -> Axes:
    """Per-layer score distributions (one column of points per layer) and the global threshold.

    Each layer's scores are drawn as a column of points at x = layer index, spread sideways by
    rank so that ties stay visible (deterministic, no random jitter). With ``threshold`` (e.g. the
    LAST global threshold τ of a pruning plan) a horizontal line marks it (``gid="threshold"``);
    with ``keep`` kept and pruned states get different markers (``gid="kept-scores"`` /
    ``"pruned-scores"``), otherwise every layer's points carry ``gid="scores"``.

    Parameters
    ----------
    scores : dict {layer name: array_like} or list of array_like
        Scores of each layer (any shape per layer; flattened).
    threshold : float, optional
        Global threshold to draw.
    keep : dict or list of bool arrays, optional
        Keep masks with the same keys and shapes as ``scores``.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    log : bool
        Logarithmic y axis (non-positive scores are then not drawn).
    ylabel : str
        y-axis label.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.score_distributions({"a": [1.0, 0.1], "b": [1.0, 0.5, 0.2]}, threshold=0.3)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['a', 'b']
    """
    layers = _as_layer_dict(scores, "scores")
    masks = _as_layer_dict(keep, "keep") if keep is not None else None
    if masks is not None and set(masks) != set(layers):
        raise ArgumentError(f"keep has layers {sorted(masks)} but scores has {sorted(layers)}; pass one mask per layer")
    ax = _new_axes(ax)
    for index, (name, values) in enumerate(layers.items()):
        values = values.astype(float).ravel()
        order = np.argsort(np.argsort(values, kind="stable"), kind="stable")
        x = index + 0.35 * (order / max(len(values) - 1, 1) - 0.5)
        color = _color(index)
        if masks is None:
            ax.scatter(x, values, s=14, color=color, gid="scores")
            continue
        mask = masks[name].astype(bool).ravel()
        if mask.shape != values.shape:
            raise ShapeError(f"keep[{name!r}] has {mask.size} entries but scores[{name!r}] has {values.size}")
        for gid, selected, marker in (("kept-scores", mask, "o"), ("pruned-scores", ~mask, "x")):
            ax.scatter(x[selected], values[selected], s=16, marker=marker, color=color, gid=gid)
    handles = []
    if masks is not None:  # neutral legend entries: the colours stand for layers
        from matplotlib.lines import Line2D

        n_kept = sum(int(m.astype(bool).sum()) for m in masks.values())
        n_pruned = sum(int((~m.astype(bool)).sum()) for m in masks.values())
        handles = [
            Line2D([], [], marker="o", color="0.35", linestyle="none", label=f"kept ({n_kept})"),
            Line2D([], [], marker="x", color="0.35", linestyle="none", label=f"pruned ({n_pruned})"),
        ]
    if threshold is not None:
        ax.axhline(
            threshold,
            color="k",
            linestyle="--",
            linewidth=1,
            gid="threshold",
            label=f"global threshold τ = {threshold:.3g}",
        )
    _layer_axis(ax, list(layers))
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if threshold is not None or masks is not None:
        ax.legend(handles=handles + [h for h in ax.get_legend_handles_labels()[0]], fontsize="small")
    return ax


def hsv_decay(
    systems: Systems | Mapping[str, ArrayLike],
    *,
    ax: Axes | None = None,
    normalize: bool = True,
) -> Axes:
    """Hankel singular value decay σ_j (or σ_j/σ_1) against j, one curve per layer, log scale.

    A fast decay means a low-order balanced truncation is accurate: keeping r states costs at most
    ``2 Σ_{j>r} σ_j`` in H∞ (docs/concepts/derivations.md#balanced-truncation-bound).

    Parameters
    ----------
    systems : DiagonalSSM, SSMModel, dict or list of systems, dict {name: HSV array}, or ReductionResult
        Systems (HSVs computed by [`ssmtools.hankel_singular_values`][ssmtools.norms.hankel_singular_values]), precomputed HSVs, or a
        balanced-truncation result (its ``hsv``).
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    normalize : bool
        Divide each curve by its largest value σ_1.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Values below ``1e-15 σ_1`` (numerically zero: the realization is not minimal, e.g. a real pole
    stored as a conjugate pair) are left out of the log-scale curve (drawn as gaps).

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.hsv_decay(st.examples.s5_layer_e5(), normalize=False)
    >>> ax.lines[0].get_ydata().round(6).tolist()
    [9.980727, 9.949928, 1.273408, 0.801057]
    """
    if (
        isinstance(systems, Mapping)
        and systems
        and all(isinstance(v, np.ndarray | list | tuple) for v in systems.values())
    ):
        curves = {str(k): np.asarray(v, dtype=float).ravel() for k, v in systems.items()}
    elif isinstance(result_hsv := getattr(systems, "hsv", None), np.ndarray):  # a balanced-truncation result
        hsv = result_hsv.reshape(-1, result_hsv.shape[-1])
        curves = {("" if len(hsv) == 1 else str(i)): row for i, row in enumerate(hsv)}
    else:
        curves = {label: hankel_singular_values(_causal(system)) for label, system in _named_systems(systems)}
    ax = _new_axes(ax)
    for index, (label, values) in enumerate(curves.items()):
        values = np.sort(values)[::-1]
        values = np.where(values > values[0] * 1e-15, values, np.nan)  # zeros: a non-minimal realization
        if normalize:
            values = values / values[0]
        ax.plot(np.arange(1, len(values) + 1), values, marker=".", color=_color(index), label=label or None)
    ax.set_yscale("log")
    ax.set_xlabel("index j")
    ax.set_ylabel("σ_j / σ_1" if normalize else "Hankel singular value σ_j")
    if any(curves):
        _legend(ax)
    return ax


def plan_scores(plan: Any, *, ax: Axes | None = None, log: bool = True) -> Axes:
    """The normalised scores of a pruning plan per layer, kept vs pruned, with its global threshold.

    [`score_distributions`][ssmtools.plot.score_distributions] applied to ``plan.layers[i].scores`` (the values the criterion
    ranked), ``plan.keep`` and ``plan.threshold``.

    Parameters
    ----------
    plan : PruningPlan
        Result of [`ssmtools.pruning.prune_plan`][ssmtools.pruning.plan.prune_plan].
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    log : bool
        Logarithmic y axis.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ((label, plan),) = _plans(plan).items()
    scores = {layer.name: layer.scores for layer in plan.layers}
    return score_distributions(
        scores, threshold=plan.threshold, keep=plan.keep, ax=ax, log=log, ylabel=f"{label} score (normalised per layer)"
    )

"""Pruning-result plots: a metric against the pruning ratio, and kept states per layer (of plans)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ._common import _color, _layer_axis, _legend, _new_axes, _plans

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["pruning_curves", "state_allocation", "plan_allocation"]


def pruning_curves(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    *,
    ax: Axes | None = None,
    baseline: float | None = None,
    xlabel: str = "pruning ratio (%)",
    ylabel: str = "accuracy",
) -> Axes:
    """A metric (accuracy, H∞ error, ...) against the pruning ratio, one line per criterion.

    Parameters
    ----------
    curves : dict {criterion: (ratios, metric)}
        Ratios and metric values of each criterion (equal lengths; drawn in ratio order).
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    baseline : float, optional
        Metric of the unpruned model (horizontal line, ``gid="baseline"``).
    xlabel : str
        x-axis label (say whether ratios are percentages or fractions).
    ylabel : str
        y-axis label.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.pruning_curves({"last": ([0, 50], [0.9, 0.8]), "random": ([0, 50], [0.9, 0.5])})
    >>> [line.get_label() for line in ax.lines]
    ['last', 'random']
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ArgumentTypeError("curves must be a non-empty dict {criterion: (ratios, metric)}")
    ax = _new_axes(ax)
    for index, (name, pair) in enumerate(curves.items()):
        ratios, metric = (np.asarray(v, dtype=float).ravel() for v in pair)
        if ratios.shape != metric.shape:
            raise ShapeError(f"curves[{name!r}]: {ratios.size} ratios but {metric.size} metric values")
        order = np.argsort(ratios, kind="stable")
        ax.plot(ratios[order], metric[order], marker="o", markersize=4, color=_color(index), label=str(name))
    if baseline is not None:
        ax.axhline(baseline, color="0.4", linestyle=":", gid="baseline", label="_unpruned")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return ax


def state_allocation(
    kept: Mapping[str, ArrayLike] | Mapping[str, Mapping[str, ArrayLike]],
    totals: Mapping[str, int] | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Kept states per layer as bars (one group of bars per layer, one bar per plan).

    Parameters
    ----------
    kept : dict {layer: count} or dict {plan name: dict {layer: count}}
        Kept-state counts (or boolean keep masks, which are counted) per layer; several plans
        (e.g. criteria at the same ratio) are drawn side by side.
    totals : dict {layer: int}, optional
        Stored states per layer, drawn as outlined bars behind (``gid="total-states"``).
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.state_allocation({"layer_0": 3, "layer_1": 1}, totals={"layer_0": 4, "layer_1": 4})
    >>> [float(p.get_height()) for p in ax.containers[1]]
    [3.0, 1.0]
    """
    if not isinstance(kept, Mapping) or not kept:
        raise ArgumentTypeError("kept must be a non-empty dict {layer: count} or {plan: {layer: count}}")

    def count(value: ArrayLike) -> float:
        array = np.asarray(value)
        return float(array.sum()) if array.dtype == bool else float(array)

    plans: Mapping[str, Mapping[str, ArrayLike]]
    if all(isinstance(v, Mapping) for v in kept.values()):
        plans = cast("Mapping[str, Mapping[str, ArrayLike]]", kept)
    else:
        plans = {"": cast("Mapping[str, ArrayLike]", kept)}
    layers = list(dict.fromkeys(name for plan in plans.values() for name in plan))
    x = np.arange(len(layers))
    ax = _new_axes(ax)
    if totals is not None:
        missing = [name for name in layers if name not in totals]
        if missing:
            raise ArgumentError(f"totals has no entry for layers {missing}")
        ax.bar(
            x,
            [totals[name] for name in layers],
            width=0.9,
            facecolor="none",
            edgecolor="0.5",
            gid="total-states",
            label="stored",
        )
    width = 0.8 / len(plans)
    for index, (plan, counts) in enumerate(plans.items()):
        heights = [count(counts.get(name, 0)) for name in layers]
        ax.bar(
            x - 0.4 + width * (index + 0.5),
            heights,
            width=width,
            color=_color(index),
            gid="kept-states",
            label=f"kept {plan}".strip(),
        )
    _layer_axis(ax, layers)
    ax.set_ylabel("states")
    _legend(ax)
    return ax


def plan_allocation(plans: Any, *, ax: Axes | None = None) -> Axes:
    """Kept states per layer of one or several pruning plans, against the stored states.

    [`state_allocation`][ssmtools.plot.state_allocation] applied to ``layer.n_kept`` and ``layer.n_total`` of every plan layer.

    Parameters
    ----------
    plans : PruningPlan or dict {label: PruningPlan}
        Plans of the same model (e.g. several criteria at one ratio); one bar per plan and layer.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    plans = _plans(plans)
    kept = {label: {layer.name: layer.n_kept for layer in plan.layers} for label, plan in plans.items()}
    totals: dict[str, int] = {}
    for plan in plans.values():
        for layer in plan.layers:
            if totals.setdefault(layer.name, layer.n_total) != layer.n_total:
                raise ArgumentError(
                    f"the plans disagree on the size of layer {layer.name!r}: plans of different models"
                )
    return state_allocation(kept, totals, ax=ax)

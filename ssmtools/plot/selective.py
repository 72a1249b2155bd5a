"""Plots of selective (Mamba / Mamba-2) layers from their calibration statistics: Δ maps and state-energy heatmaps.

Both take plain arrays (:func:`selective_arrays` gets them from a calibrated model): a Mamba layer is
time-varying, so these show statistics over the calibration tokens, not the poles of one system
(docs/concepts/selective.md#views). Artists carry a ``gid``: ``"delta-map"``, ``"state-energy"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ArgumentError, ShapeError
from ..model import SSMModel
from ..selective import SelectiveLayer
from ._common import _new_axes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["delta_map", "state_energy", "selective_arrays"]

#: Per-(channel, state) quantities of :func:`selective_arrays` that :func:`state_energy` can draw.
ENERGIES = ("gramian", "input_energy", "output_energy")


def _positive_log(values: np.ndarray) -> np.ndarray:
    """log10 of positive values; zeros (pruned or silent states) one decade below the smallest positive one."""
    positive = values[values > 0]
    floor = positive.min() / 10 if positive.size else 1.0
    return np.log10(np.where(values > 0, values, floor))


def delta_map(steps: Mapping[str, ArrayLike], *, ax: Axes | None = None) -> Axes:
    """Heatmap of the mean step Δ per layer (rows) and channel (columns), log10 colour scale.

    Parameters
    ----------
    steps : Mapping[str, array_like]
        Layer name -> mean Δ_t per channel over the calibration tokens, ``(d_inner,)`` (equal lengths).
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = delta_map({"layer 0": [0.01, 0.1, 1.0], "layer 1": [0.02, 0.03, 0.5]})
    >>> ax.images[0].get_array().shape
    (2, 3)
    """
    if not steps:
        raise ArgumentError("delta_map needs at least one layer")
    rows = [np.asarray(v, dtype=float).ravel() for v in steps.values()]
    if len({r.size for r in rows}) != 1:
        raise ShapeError(f"every layer needs the same number of channels, got {[r.size for r in rows]}")
    grid = np.stack(rows)
    if not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise ArgumentError("steps Δ must be finite and non-negative")
    ax = _new_axes(ax)
    image = ax.imshow(_positive_log(grid), aspect="auto", interpolation="nearest", cmap="viridis", gid="delta-map")
    ax.figure.colorbar(image, ax=ax, label="log10 mean Δ_t")
    ax.set_yticks(range(len(rows)), list(steps), fontsize="small")
    ax.set_xlabel("channel")
    ax.set_title("mean step Δ_t over the calibration tokens (a time-varying layer)", fontsize="medium")
    return ax


def state_energy(energy: ArrayLike, *, ax: Axes | None = None, label: str = "gramian") -> Axes:
    """Heatmap of one layer's per-(channel, state) energies or scores, log10 colour scale (states on x).

    Parameters
    ----------
    energy : array_like, shape ``(d_inner, N)``
        Non-negative values (e.g. ``gramian``, ``input_energy`` of :func:`selective_arrays`).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    label : str
        What the values are (colour bar).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = state_energy([[1.0, 0.1], [2.0, 0.0], [0.5, 0.01]])
    >>> ax.images[0].get_array().shape
    (3, 2)
    """
    values = np.asarray(energy, dtype=float)
    if values.ndim != 2:
        raise ShapeError(f"energies must be (d_inner, N), got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ArgumentError("energies must be finite and non-negative")
    ax = _new_axes(ax)
    image = ax.imshow(_positive_log(values), aspect="auto", interpolation="nearest", cmap="magma", gid="state-energy")
    ax.figure.colorbar(image, ax=ax, label=f"log10 {label}")
    ax.set_xlabel("state n")
    ax.set_ylabel("channel")
    return ax


def selective_arrays(model: SSMModel) -> dict[str, dict[str, np.ndarray]]:
    """Per calibrated layer of ``model``: ``delta`` (mean Δ per channel) and the :data:`ENERGIES` per state.

    Parameters
    ----------
    model : SSMModel
        A Mamba / Mamba-2 model from :func:`ssmtools.calibration.calibrated`.

    Returns
    -------
    dict of str to dict of str to ndarray
        Layer name -> ``{"delta": (d_inner,), "gramian" | "input_energy" | "output_energy": (d_inner, N)}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, layer in model.items():
        if not isinstance(layer, SelectiveLayer) or layer.stats is None:
            raise ArgumentError(
                f"layer {name!r} has no calibration statistics: the Δ and energy figures need a Mamba checkpoint "
                "and calibration inputs (--calibration tokens.npy)"
            )
        stats = layer.stats
        out[name] = {
            "delta": stats._mean(stats.sum_delta),
            "gramian": stats.gramian_scores,
            "input_energy": stats.input_energy,
            "output_energy": stats.output_energy,
        }
    return out

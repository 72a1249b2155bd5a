"""``score_model``: every layer's raw per-state scores, grouped into prunable units and normalised.

The first step of [`prune_plan`][ssmtools.pruning.plan.prune_plan]. A unit is a stored state; on multi-SISO layers
(``batch_shape == (H,)``) either a (channel, state) pair (``units="channel-state"``) or a state shared
by all channels (``units="state"``), whose per-channel raw scores the criterion's ``channel_reduction``
combines (max for H∞-type scores, sum for energies). The criterion's [`normalize`][ssmtools.pruning.normalize] then makes one
layer's unit scores comparable across layers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ArgumentError, ShapeError, UnknownNameError, check_choice, silence_unstable
from ..model import SSMLayer, SSMModel
from .criteria import Criterion, get_criterion

__all__ = ["LayerScores", "ModelScores", "score_model", "layer_scores"]

Units = Literal["channel-state", "state"]


@dataclass(frozen=True, eq=False)
class LayerScores:
    """One layer's scores (arrays read-only).

    Parameters
    ----------
    name : str
        Layer name.
    raw : ndarray of float64, shape ``layer.system.poles.shape``
        The criterion's raw per-state scores.
    unit_raw : ndarray of float64, shape ``(u,)``
        Raw score of every unit (per-state scores combined over channels for ``units="state"``).
    unit_scores : ndarray of float64, shape ``(u,)``
        Normalised unit scores: what is ranked.
    weight : int
        Stored states per unit (H for a state shared by H channels, else 1).
    groups : ndarray of int, shape ``(u,)``
        Floor group of every unit (its channel for (channel, state) units, else 0): ``min_states_per_layer``
        applies to every group.
    units : {"channel-state", "state"}
        The unit kind.
    """

    name: str
    raw: np.ndarray
    unit_raw: np.ndarray
    unit_scores: np.ndarray
    weight: int
    groups: np.ndarray
    units: str

    def __post_init__(self) -> None:
        for key, dtype in (("raw", float), ("unit_raw", float), ("unit_scores", float), ("groups", np.int64)):
            array = np.array(getattr(self, key), dtype=dtype)
            array.flags.writeable = False
            object.__setattr__(self, key, array)

    @property
    def shape(self) -> tuple[int, ...]:
        """The poles' shape ``(*batch, n)``."""
        return self.raw.shape

    def broadcast(self, unit_values: ArrayLike) -> np.ndarray:
        """Per-unit values as per-state values (a unit's value repeated over its stored states).

        Parameters
        ----------
        unit_values : array_like, shape ``(u,)``
            One value per unit.

        Returns
        -------
        ndarray
            Shape [`shape`][ssmtools.pruning.scoring.LayerScores.shape].
        """
        values = np.asarray(unit_values)
        if self.units == "state" and len(self.shape) > 1:
            return np.broadcast_to(values, self.shape).copy()
        return values.reshape(self.shape).copy()

    @property
    def scores(self) -> np.ndarray:
        """Normalised unit scores broadcast to every stored state of the unit, shape [`shape`][ssmtools.pruning.scoring.LayerScores.shape]."""
        return self.broadcast(self.unit_scores)


@dataclass(frozen=True, eq=False)
class ModelScores(Mapping[str, LayerScores]):
    """Scores of every layer of a model, in model order, with the criterion that made them.

    Parameters
    ----------
    criterion : Criterion
        The criterion (its ``scope`` tells [`allocate`][ssmtools.pruning.allocation.allocate] whether to
        rank all layers together or prune every layer by the same ratio).
    layers : tuple of LayerScores
        One entry per layer, in model order.
    """

    criterion: Criterion
    layers: tuple[LayerScores, ...]

    def __getitem__(self, name: str) -> LayerScores:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise UnknownNameError(f"no layer named {name!r}; layers are {[layer.name for layer in self.layers]}")

    def __iter__(self) -> Iterator[str]:
        return (layer.name for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)


def layer_scores(
    layer: SSMLayer, criterion: Criterion, *, units: Units = "channel-state", model: SSMModel | None = None
) -> LayerScores:
    """Score one layer: raw per-state scores, their units and the normalised unit scores.

    Parameters
    ----------
    layer : SSMLayer
        The layer to score.
    criterion : Criterion
        The criterion instance.
    units : {"channel-state", "state"}
        See [`score_model`][ssmtools.pruning.scoring.score_model].
    model : SSMModel, optional
        Passed to [`Criterion.raw_scores`][ssmtools.pruning.criteria.Criterion.raw_scores] (family settings such as κ).

    Returns
    -------
    LayerScores
    """
    with silence_unstable():
        raw = np.asarray(criterion.raw_scores(layer, model=model), dtype=float)
    shape = layer.system.poles.shape
    if raw.shape != shape:
        raise ShapeError(
            f"criterion {criterion.name!r} returned scores of shape {raw.shape} for layer {layer.name!r}; expected "
            f"the poles' shape {shape}"
        )
    if np.any(np.isnan(raw)):
        raise ArgumentError(f"criterion {criterion.name!r} returned NaN scores for layer {layer.name!r}")
    batch = layer.system.batch_shape
    if units == "state" and batch:
        axes = tuple(range(len(batch)))
        unit_raw = raw.max(axis=axes) if criterion.channel_reduction == "max" else raw.sum(axis=axes)
        weight = int(np.prod(batch))
        groups = np.zeros(unit_raw.size, dtype=np.int64)
    else:
        unit_raw = raw.reshape(-1)
        weight = 1
        groups = np.repeat(np.arange(int(np.prod(batch)) if batch else 1), layer.system.n_states)
    normalized = np.asarray(criterion.normalize(unit_raw), dtype=float)
    if normalized.shape != unit_raw.shape or np.any(np.isnan(normalized)):
        raise ArgumentError(
            f"normalised scores of layer {layer.name!r} have shape {normalized.shape} or contain NaN; a criterion's "
            f"normalize must return one number per unit (shape {unit_raw.shape}) that orders the units"
        )
    return LayerScores(layer.name, raw, unit_raw, normalized, weight, groups, units)


def score_model(
    model: SSMModel,
    criterion: str | Criterion = "last",
    *,
    units: Units = "channel-state",
    criterion_options: Mapping[str, Any] | None = None,
) -> ModelScores:
    """Score every layer of a model (the first step of [`prune_plan`][ssmtools.pruning.plan.prune_plan]).

    Parameters
    ----------
    model : SSMModel
        The layers to score, in model order.
    criterion : str or Criterion
        A name of [`available_criteria`][ssmtools.pruning.criteria.available_criteria] or an instance.
    units : {"channel-state", "state"}
        Prunable unit of multi-SISO layers (no effect on MIMO layers): a (channel, state) mode, or a
        state shared by all channels (needed for physical removal).
    criterion_options : Mapping, optional
        Options of a criterion given by name.

    Returns
    -------
    ModelScores
    """
    check_choice("units", units, ("channel-state", "state"))
    crit = get_criterion(criterion, **dict(criterion_options or {}))
    return ModelScores(crit, tuple(layer_scores(layer, crit, units=units, model=model) for layer in model.values()))

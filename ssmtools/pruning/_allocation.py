"""Allocation of a pruning ratio over ranked units (used by :func:`~ssmtools.pruning.plan.prune_plan`).

LayerUnits are ranked ascending by (normalised score, raw score, layer position, unit index) and removed
from the front, never taking a layer's (channel's) ``floor`` best units; ``"released"`` reproduces the
LAST code's threshold rule instead (math.md §6.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model import SSMLayer
from .criteria import Criterion

_EPS = 1e-9  # tolerance of floor(ratio·N) against round-off (0.3·10 = 2.9999999999999996)


def check_ratio(ratio: Any) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)):
        raise TypeError(f"ratio must be a number in [0, 1), got {ratio!r}")
    value = float(ratio)
    if not (0.0 <= value < 1.0):
        hint = f" (percent? use {value / 100:g})" if 1.0 <= value < 100.0 else ""
        raise ValueError(
            f"ratio={ratio!r} is not in [0, 1): it is the fraction of stored states removed model-wide{hint}"
        )
    return value


def _kept_count_released(n_units: int, ratio: float) -> int:
    """``K = max(int(n·(100 − ratio%)/100), 1)`` exactly as the released code evaluates it for integer percents."""
    percent = ratio * 100.0
    if abs(percent - round(percent)) < 1e-9:
        percent = int(round(percent))
    return max(int(n_units * (100 - percent) / 100), 1)


@dataclass
class LayerUnits:
    """One layer's prunable units: normalised and raw unit scores, per-unit weight, floor groups."""

    scores: np.ndarray  # (u,)
    raw: np.ndarray  # (u,)
    weight: int  # stored states per unit
    groups: np.ndarray  # (u,) group id (channel) for the min-states floor


def _protected(order: np.ndarray, layer_of: np.ndarray, group_of: np.ndarray, floor: int) -> np.ndarray:
    """Mask (in ``order`` positions) of the ``floor`` best units of every (layer, group)."""
    keys = layer_of[order].astype(np.int64) * (int(group_of.max(initial=0)) + 1) + group_of[order]
    protected = np.zeros(order.size, dtype=bool)
    seen: dict[int, int] = {}
    for position in range(order.size - 1, -1, -1):  # best first
        key = int(keys[position])
        count = seen.get(key, 0)
        if count < floor:
            protected[position] = True
            seen[key] = count + 1
    return protected


def _rank(units: list[LayerUnits], members: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate the given layers' units and sort ascending by (score, raw score, layer, unit index)."""
    scores = np.concatenate([units[i].scores for i in members])
    raw = np.concatenate([units[i].raw for i in members])
    layer_of = np.concatenate([np.full(units[i].scores.size, i) for i in members])
    index = np.concatenate([np.arange(units[i].scores.size) for i in members])
    group_of = np.concatenate([units[i].groups for i in members])
    order = np.lexsort((index, layer_of, raw, scores))
    return order, layer_of, index, group_of


def allocate(
    units: list[LayerUnits], ratio: float, *, scope: str, allocation: str, floor: int
) -> tuple[list[np.ndarray], list[float | None]]:
    """Keep masks over every layer's units and the released rule's τ per ranking batch (see :func:`prune_plan`)."""
    keep = [np.ones(u.scores.size, dtype=bool) for u in units]
    taus: list[float | None] = []
    batches = [list(range(len(units)))] if scope == "global" else [[i] for i in range(len(units))]
    if scope == "layer" and allocation == "exact":
        targets = _layer_targets(units, ratio, floor)
    for batch in batches:
        order, layer_of, index, group_of = _rank(units, batch)
        protected = _protected(order, layer_of, group_of, floor)
        if allocation == "released":
            scores = np.concatenate([units[i].scores for i in batch])
            K = _kept_count_released(scores.size, ratio)
            tau = np.sort(scores)[-K]
            taus.append(float(tau))
            removed_positions = np.flatnonzero((scores[order] < tau) & ~protected)
        else:
            taus.append(None)
            candidates = np.flatnonzero(~protected)
            if scope == "layer":
                count = targets[batch[0]]
                removed_positions = candidates[:count]
            else:
                removed_positions = _global_removal(units, order, layer_of, candidates, ratio, floor)
        for position in removed_positions:
            keep[layer_of[order[position]]][index[order[position]]] = False
    return keep, taus


def _global_removal(units, order, layer_of, candidates, ratio, floor) -> np.ndarray:
    weights = np.array([u.weight for u in units])
    counts = np.array([u.scores.size for u in units])
    if np.all(weights == weights[0]):
        target = math.floor(ratio * counts.sum() + _EPS)
        if target > candidates.size:
            total = int(counts.sum())
            raise ValueError(
                f"ratio={ratio} asks to remove {target} of {total} units, but min_states_per_layer={floor} leaves only "
                f"{candidates.size} removable (largest feasible ratio {candidates.size / total:.4f}); lower the ratio "
                "or min_states_per_layer"
            )
        return candidates[:target]
    # unequal unit sizes (states shared by channels of layers of different widths): greedy in stored states
    target = math.floor(ratio * float(np.sum(weights * counts)) + _EPS)
    chosen, removed = [], 0
    for position in candidates:
        w = int(weights[layer_of[order[position]]])
        if removed + w <= target:
            chosen.append(position)
            removed += w
        if removed == target:
            break
    return np.asarray(chosen, dtype=int)


def _layer_targets(units: list[LayerUnits], ratio: float, floor: int) -> list[int]:
    """LayerUnits to remove per layer for the same ratio everywhere, summing exactly to ⌊ratio·U⌋ (largest remainder)."""
    counts = np.array([u.scores.size for u in units])
    capacity = np.array([u.scores.size - min(floor, u.scores.size) * np.unique(u.groups).size
                         if floor else u.scores.size for u in units])
    capacity = np.array([max(int(c), 0) for c in capacity])
    exact = ratio * counts
    base = np.minimum(np.floor(exact + _EPS).astype(int), capacity)
    total = math.floor(ratio * counts.sum() + _EPS)
    if total > capacity.sum():
        raise ValueError(
            f"ratio={ratio} asks to remove {total} of {int(counts.sum())} units, but min_states_per_layer={floor} leaves "
            f"only {int(capacity.sum())} removable; lower the ratio or min_states_per_layer"
        )
    remainder = exact - base
    order = sorted(range(len(units)), key=lambda i: (-remainder[i], i))
    missing = total - int(base.sum())
    while missing > 0:
        for i in order:
            if missing and base[i] < capacity[i]:
                base[i] += 1
                missing -= 1
    return [int(b) for b in base]


def layer_units(layer: SSMLayer, raw: np.ndarray, criterion: Criterion, units: str) -> tuple[LayerUnits, np.ndarray]:
    """Reduce per-state raw scores to units and normalise; returns the units and the per-state broadcast map."""
    batch = layer.system.batch_shape
    if units == "state" and batch:
        axes = tuple(range(len(batch)))
        unit_raw = raw.max(axis=axes) if criterion.channel_reduction == "max" else raw.sum(axis=axes)
        weight = int(np.prod(batch))
        groups = np.zeros(unit_raw.size, dtype=int)
    else:
        unit_raw = raw.reshape(-1)
        weight = 1
        groups = np.repeat(np.arange(int(np.prod(batch)) if batch else 1), layer.system.n_states)
    normalized = check_scores_any(criterion.normalize(unit_raw), f"normalised scores of layer {layer.name!r}")
    return LayerUnits(normalized, unit_raw, weight, groups), unit_raw


def check_scores_any(scores: Any, what: str) -> np.ndarray:
    """Float array without NaN (negative values allowed: only the order matters after normalisation)."""
    array = np.asarray(scores, dtype=float)
    if np.any(np.isnan(array)):
        raise ValueError(f"{what} contain NaN; a score must order the states (check the criterion)")
    return array


def broadcast(layer: SSMLayer, unit_values: np.ndarray, units: str) -> np.ndarray:
    shape = layer.system.poles.shape
    if units == "state" and layer.system.batch_shape:
        return np.broadcast_to(unit_values, shape).copy()
    return unit_values.reshape(shape)

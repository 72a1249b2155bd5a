"""``allocate``: which units of every layer stay, for a model-wide pruning ratio.

The second step of [`prune_plan`][ssmtools.pruning.plan.prune_plan]. Units are ranked ascending by (normalised score,
raw score, layer position, unit index) and removed from the front, never taking a layer's (channel's)
``min_states_per_layer`` best units. ``scope="layer"`` criteria prune every layer by the same ratio;
``allocation="released"`` reproduces the released LAST code's threshold rule instead (docs/concepts/derivations.md#allocation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, check_choice
from .scoring import LayerScores, ModelScores

__all__ = ["Allocation", "allocate", "check_ratio"]

AllocationRule = Literal["exact", "released"]
_EPS = 1e-9  # tolerance of floor(ratio·N) against round-off (0.3·10 = 2.9999999999999996)


def check_ratio(ratio: float) -> float:
    """``ratio`` as a float in [0, 1) (TypeError / ValueError naming the percent mistake otherwise).

    Parameters
    ----------
    ratio : float
        Fraction of stored states removed model-wide.

    Returns
    -------
    float
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"ratio must be a number in [0, 1), got {ratio!r}")
    value = float(ratio)
    if not (0.0 <= value < 1.0):
        hint = f" (percent? use {value / 100:g})" if 1.0 <= value < 100.0 else ""
        raise ArgumentError(
            f"ratio={ratio!r} is not in [0, 1): it is the fraction of stored states removed model-wide{hint}"
        )
    return value


def _kept_count_released(n_units: int, ratio: float) -> int:
    """``K = max(int(n·(100 − ratio%)/100), 1)`` exactly as the released code evaluates it for integer percents."""
    percent: float = ratio * 100.0
    if abs(percent - round(percent)) < 1e-9:
        percent = int(round(percent))
    return max(int(n_units * (100 - percent) / 100), 1)


@dataclass(frozen=True, eq=False)
class Allocation:
    """What [`allocate`][ssmtools.pruning.allocation.allocate] decided.

    Parameters
    ----------
    keep : dict[str, ndarray of bool]
        Layer name -> keep mask of shape ``layer.system.poles.shape`` (a unit's value repeated over its
        stored states), in model order.
    unit_keep : dict[str, ndarray of bool]
        Layer name -> keep mask over the layer's units, shape ``(u,)``.
    thresholds : dict[str, float or None]
        Layer name -> largest normalised score among its removed units (None if none removed).
    threshold : float or None
        Global threshold: ``allocation="exact"``, the largest normalised score removed (None when
        nothing was removed); ``"released"``, the code's τ (keep ⇔ score ≥ τ). None for criteria
        with ``scope="layer"``.
    """

    keep: dict[str, np.ndarray]
    unit_keep: dict[str, np.ndarray]
    thresholds: dict[str, float | None]
    threshold: float | None


def allocate(
    scores: ModelScores,
    ratio: float,
    *,
    allocation: AllocationRule = "exact",
    min_states_per_layer: int = 1,
) -> Allocation:
    """Keep masks for a model-wide pruning ratio (the second step of [`prune_plan`][ssmtools.pruning.plan.prune_plan]).

    Parameters
    ----------
    scores : ModelScores
        From [`score_model`][ssmtools.pruning.scoring.score_model]; its criterion's ``scope`` decides between
        one global ranking (``"global"``) and the same ratio in every layer (``"layer"``).
    ratio : float
        Fraction of units removed model-wide, in [0, 1).
    allocation : {"exact", "released"}
        ``"exact"``: remove exactly ⌊ratio·U + 1e-9⌋ of the U units (greedy in stored states when
        units of different layers have different sizes). ``"released"``: keep
        ``K = max(int(U·(100 − 100·ratio)/100), 1)`` units, τ = the K-th largest score, keep ⇔ score ≥ τ.
    min_states_per_layer : int
        Every layer (every channel, for (channel, state) units) keeps at least this many units; ≥ 1.

    Returns
    -------
    Allocation

    Raises
    ------
    ValueError
        When ``min_states_per_layer`` leaves fewer removable units than the ratio asks for (the
        message names the largest feasible ratio).

    Notes
    -----
    Ties: among equal normalised scores the lower raw score goes first, then the earlier layer, then
    the lower unit index. ``scope="layer"``: ⌊ratio·U_l⌋ units from every layer, the remainder up to
    ⌊ratio·U⌋ going to the layers with the largest fractional parts (earlier layer first).
    """
    ratio = check_ratio(ratio)
    check_choice("allocation", allocation, ("exact", "released"))
    if (
        isinstance(min_states_per_layer, bool)
        or not isinstance(min_states_per_layer, (int, np.integer))
        or min_states_per_layer < 1
    ):
        raise ArgumentError(
            f"min_states_per_layer={min_states_per_layer!r} must be an integer ≥ 1 (a layer cannot be emptied)"
        )
    units = list(scores.layers)
    scope = scores.criterion.scope
    kept, taus = _allocate(units, ratio, scope=scope, allocation=allocation, floor=int(min_states_per_layer))
    thresholds: dict[str, float | None] = {}
    for layer, unit_keep in zip(units, kept):
        removed = layer.unit_scores[~unit_keep]
        thresholds[layer.name] = float(removed.max()) if removed.size else None
    if scope != "global":
        threshold = None
    elif allocation == "released":
        threshold = taus[0]
    else:
        removed_max = [value for value in thresholds.values() if value is not None]
        threshold = max(removed_max) if removed_max else None
    return Allocation(
        keep={layer.name: layer.broadcast(unit_keep).astype(bool) for layer, unit_keep in zip(units, kept)},
        unit_keep={layer.name: unit_keep for layer, unit_keep in zip(units, kept)},
        thresholds=thresholds,
        threshold=threshold,
    )


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


def _rank(units: Sequence[LayerScores], members: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate the given layers' units and sort ascending by (score, raw score, layer, unit index)."""
    scores = np.concatenate([units[i].unit_scores for i in members])
    raw = np.concatenate([units[i].unit_raw for i in members])
    layer_of = np.concatenate([np.full(units[i].unit_scores.size, i) for i in members])
    index = np.concatenate([np.arange(units[i].unit_scores.size) for i in members])
    group_of = np.concatenate([units[i].groups for i in members])
    order = np.lexsort((index, layer_of, raw, scores))
    return order, layer_of, index, group_of


def _allocate(
    units: Sequence[LayerScores], ratio: float, *, scope: str, allocation: str, floor: int
) -> tuple[list[np.ndarray], list[float | None]]:
    """Keep masks over every layer's units and the released rule's τ per ranking batch."""
    keep = [np.ones(u.unit_scores.size, dtype=bool) for u in units]
    taus: list[float | None] = []
    batches = [list(range(len(units)))] if scope == "global" else [[i] for i in range(len(units))]
    if scope == "layer" and allocation == "exact":
        targets = _layer_targets(units, ratio, floor)
    for batch in batches:
        order, layer_of, index, group_of = _rank(units, batch)
        protected = _protected(order, layer_of, group_of, floor)
        if allocation == "released":
            scores = np.concatenate([units[i].unit_scores for i in batch])
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


def _global_removal(
    units: Sequence[LayerScores],
    order: np.ndarray,
    layer_of: np.ndarray,
    candidates: np.ndarray,
    ratio: float,
    floor: int,
) -> np.ndarray:
    weights = np.array([u.weight for u in units])
    counts = np.array([u.unit_scores.size for u in units])
    if np.all(weights == weights[0]):
        target = math.floor(ratio * counts.sum() + _EPS)
        if target > candidates.size:
            total = int(counts.sum())
            raise ArgumentError(
                f"ratio={ratio} asks to remove {target} of {total} units, but min_states_per_layer={floor} leaves only "
                f"{candidates.size} removable (largest feasible ratio {candidates.size / total:.4f}); lower the ratio "
                "or min_states_per_layer"
            )
        return candidates[:target]
    # unequal unit sizes (states shared by channels of layers of different widths): greedy in stored states
    target = math.floor(ratio * float(np.sum(weights * counts)) + _EPS)
    chosen: list[int] = []
    removed = 0
    for position in candidates:
        w = int(weights[layer_of[order[position]]])
        if removed + w <= target:
            chosen.append(position)
            removed += w
        if removed == target:
            break
    return np.asarray(chosen, dtype=int)


def _layer_targets(units: Sequence[LayerScores], ratio: float, floor: int) -> list[int]:
    """Units to remove per layer for the same ratio everywhere, summing exactly to ⌊ratio·U⌋ (largest remainder)."""
    counts = np.array([u.unit_scores.size for u in units])
    capacity = np.array(
        [
            u.unit_scores.size - min(floor, u.unit_scores.size) * np.unique(u.groups).size
            if floor
            else u.unit_scores.size
            for u in units
        ]
    )
    capacity = np.array([max(int(c), 0) for c in capacity])
    exact = ratio * counts
    base = np.minimum(np.floor(exact + _EPS).astype(int), capacity)
    total = math.floor(ratio * counts.sum() + _EPS)
    if total > capacity.sum():
        raise ArgumentError(
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

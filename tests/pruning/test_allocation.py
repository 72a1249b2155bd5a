"""allocate: against brute-force optimal removals on small cases, the released rule, the same-ratio rule."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ssmtools import SSMModel
from ssmtools.pruning import allocate, score_model

from .reference import released_keep, released_lamp
from .test_criteria import random_layer
from .test_plan import Fixed


def scored(sizes, scores, *, lamp=False, H=2):
    rng = np.random.default_rng(0)
    model = SSMModel.from_systems({f"l{i}": random_layer(rng, P=P, H=H).system for i, P in enumerate(sizes)})
    crit = Fixed(tuple((f"l{i}", tuple(s)) for i, s in enumerate(scores)), lamp=lamp)
    return score_model(model, crit)


def brute_force_removal(scores, ratio, floor):
    """Among all removal sets of ⌊ratio·U⌋ units leaving ≥ min(floor, size) units per layer, the least total score."""
    units = [(i, j) for i, layer in enumerate(scores) for j in range(len(layer))]
    target = math.floor(ratio * len(units) + 1e-9)
    best, best_sum = None, np.inf
    for removed in itertools.combinations(units, target):
        left = [len(layer) - sum(1 for i, _ in removed if i == k) for k, layer in enumerate(scores)]
        if any(n < min(floor, len(layer)) for n, layer in zip(left, scores)):  # a small layer stays whole
            continue
        total = sum(scores[i][j] for i, j in removed)
        if total < best_sum:
            best, best_sum = set(removed), total
    return best


@pytest.mark.parametrize("seed", range(12))
def test_global_allocation_is_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    sizes = list(rng.integers(1, 5, size=rng.integers(1, 4)))
    scores = [rng.permutation(100)[:P] / 7.0 + rng.random() for P in sizes]  # distinct: the optimum is unique
    ratio = float(rng.uniform(0, 0.9))
    floor = int(rng.integers(1, 3))
    expected = brute_force_removal(scores, ratio, floor)
    model_scores = scored(sizes, scores)
    if expected is None:
        with pytest.raises(ValueError, match="largest feasible ratio"):
            allocate(model_scores, ratio, min_states_per_layer=floor)
        return
    result = allocate(model_scores, ratio, min_states_per_layer=floor)
    removed = {(i, j) for i, name in enumerate(result.keep) for j in np.flatnonzero(~result.keep[name])}
    assert removed == expected
    removed_scores = [scores[i][j] for i, j in removed]
    assert result.threshold == (max(removed_scores) if removed_scores else None)


def test_released_rule_matches_the_reference():
    rng = np.random.default_rng(3)
    scores = [rng.random(6), rng.random(5)]
    model_scores = scored([6, 5], scores, lamp=True)  # LAMP: every layer's top unit scores 1 ≥ τ, as in the code
    for percent in (10, 30, 50, 90):
        result = allocate(model_scores, percent / 100, allocation="released")
        keep, tau = released_keep([released_lamp(s) for s in scores], percent)
        assert [k.tolist() for k in result.keep.values()] == [k.tolist() for k in keep]
        assert result.threshold == pytest.approx(tau, rel=1e-15)


def test_layer_scope_same_ratio_and_lowest_scores_go():
    rng = np.random.default_rng(4)
    sizes = [8, 6, 5]
    model = SSMModel.from_systems({f"l{i}": random_layer(rng, P=P).system for i, P in enumerate(sizes)})
    model_scores = score_model(model, "uniform-hinf")
    result = allocate(model_scores, 0.5)
    assert [int((~k).sum()) for k in result.keep.values()] == [4, 3, 2]
    assert result.threshold is None
    for layer in model_scores.layers:
        keep = result.keep[layer.name]
        assert layer.scores[~keep].max() <= layer.scores[keep].min()
        assert result.thresholds[layer.name] == layer.scores[~keep].max()


def test_channel_floor_keeps_every_channel():
    rng = np.random.default_rng(5)
    from .test_criteria import multi_siso_layer

    system, _, _ = multi_siso_layer(rng, 3, 4)
    model_scores = score_model(SSMModel.from_systems({"s": system}), "last", units="channel-state")
    result = allocate(model_scores, 0.75)
    assert result.keep["s"].shape == (3, 4) and np.all(result.keep["s"].sum(axis=1) == 1)
    assert result.unit_keep["s"].shape == (12,)
    shared = allocate(score_model(SSMModel.from_systems({"s": system}), "last", units="state"), 0.5)
    assert np.all(shared.keep["s"] == shared.keep["s"][0])  # a state leaves every channel at once
    with pytest.raises(ValueError, match="min_states_per_layer"):
        allocate(model_scores, 0.5, min_states_per_layer=0)
    with pytest.raises(ValueError, match="allocation"):
        allocate(model_scores, 0.5, allocation="faithful")

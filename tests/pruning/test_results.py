"""PruningPlan / LayerPruning: the reduction is recorded, JSON version 2 round-trips, version 1 still reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssmtools import SSMModel
from ssmtools.pruning import PruningPlan, apply_plan, get_reduction, prune_plan

from .test_criteria import random_layer


def small_model(seed=60):
    rng = np.random.default_rng(seed)
    return SSMModel.from_systems({"a": random_layer(rng, P=4).system, "b": random_layer(rng, P=6).system})


@pytest.mark.parametrize("criterion, reduction", [("last", "modal-truncation"), ("balanced", "balanced-truncation")])
def test_the_plan_records_the_reduction_and_json_round_trips(criterion, reduction):
    plan = prune_plan(small_model(), 0.5, criterion)
    assert plan.reduction == reduction and plan.reduction_options == get_reduction(reduction).options()
    data = json.loads(plan.to_json())
    assert data["version"] == 2 and data["reduction"] == reduction
    back = PruningPlan.from_json(plan.to_json())
    assert back.reduction == reduction and back.to_json() == plan.to_json()
    assert f"reduction={reduction}" in str(plan) and reduction in repr(plan)


@pytest.mark.parametrize(
    "criterion, reduction",
    [("last", "modal-truncation"), ("balanced", "balanced-truncation"), ("not-registered", "modal-truncation")],
)
def test_version_1_files_read_with_the_criterion_default_reduction(criterion, reduction):
    data = prune_plan(small_model(), 0.5, "last").to_dict()
    data.update(version=1, criterion=criterion)
    del data["reduction"], data["reduction_options"]
    plan = PruningPlan.from_dict(data)
    assert plan.reduction == reduction and plan.n_removed == 5
    with pytest.raises(ValueError, match="version 3 is not supported"):
        PruningPlan.from_dict({**data, "version": 3})


def test_keep_masks_only_for_state_selecting_reductions():
    model = small_model()
    plan = prune_plan(model, 0.5, "balanced")
    with pytest.raises(ValueError, match="no state keep-mask.*apply_plan"):
        _ = plan.keep
    assert set(prune_plan(model, 0.5, "last").keep) == {"a", "b"}
    with pytest.raises(ValueError, match="writes parameters back"):  # a hand-built model has no weights to write
        apply_plan(model, plan)


def test_a_forced_deviation_from_the_allocation_is_reported_and_round_trips():
    import dataclasses

    plan = prune_plan(small_model(), 0.5, "balanced", errors=False)
    assert all(layer.n_allocated == layer.n_kept for layer in plan.layers)
    assert "forced a deviation" not in str(plan)
    first = dataclasses.replace(plan.layers[0], n_allocated=plan.layers[0].n_kept - 1)
    forced = dataclasses.replace(plan, layers=(first, *plan.layers[1:]))
    assert f"'a': ({first.n_kept - 1}, {first.n_kept})" in str(forced)
    back = PruningPlan.from_json(forced.to_json())
    assert back.layers[0].n_allocated == first.n_kept - 1 and "forced a deviation" in str(back)

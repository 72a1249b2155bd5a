"""score_model: raw scores are the criterion's, units combine channels as declared, normalisation is LAMP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from ssmtools import ShapeError, SSMModel
from ssmtools.pruning import Criterion, get_criterion, lamp_normalize, score_model

from .test_criteria import multi_siso_layer, random_layer


def test_scores_are_the_criterion_raw_scores_lamp_normalised():
    rng = np.random.default_rng(40)
    model = SSMModel.from_systems({"a": random_layer(rng, P=5).system, "b": random_layer(rng, P=3).system})
    scores = score_model(model, "last-exact")
    assert list(scores) == ["a", "b"] and scores.criterion.name == "last-exact"
    for name, layer in model.items():
        raw = get_criterion("last-exact").raw_scores(layer)
        np.testing.assert_array_equal(scores[name].raw, raw)
        np.testing.assert_allclose(scores[name].unit_scores, lamp_normalize(raw), rtol=1e-15)
        assert scores[name].weight == 1 and scores[name].scores.shape == (layer.system.n_states,)


@pytest.mark.parametrize("criterion, combine", [("last", np.max), ("aire", np.sum)])
def test_state_units_combine_channels_by_the_criterion_rule(criterion, combine):
    rng = np.random.default_rng(41)
    system, _, _ = multi_siso_layer(rng, 3, 4)
    model = SSMModel.from_systems({"s": system})
    shared = score_model(model, criterion, units="state")["s"]
    raw = get_criterion(criterion).raw_scores(model["s"])
    np.testing.assert_allclose(shared.unit_raw, combine(raw, axis=0), rtol=1e-15)
    assert shared.weight == 3 and shared.scores.shape == (3, 4) and np.all(shared.scores == shared.scores[0])
    per_channel = score_model(model, criterion, units="channel-state")["s"]
    assert per_channel.unit_raw.shape == (12,) and per_channel.groups.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert not per_channel.raw.flags.writeable


@dataclass(frozen=True)
class Flat(Criterion):
    """Test criterion returning whatever ``values`` holds, whatever the layer."""

    name: ClassVar[str] = "flat"
    values: tuple = ()

    def raw_scores(self, layer, *, model=None):
        return np.array(self.values, dtype=float)


def test_bad_scores_are_errors():
    rng = np.random.default_rng(42)
    model = SSMModel.from_systems({"a": random_layer(rng, P=4).system})
    with pytest.raises(ShapeError, match="returned scores of shape"):
        score_model(model, Flat((1.0, 2.0, 3.0, 4.0, 5.0)))
    with pytest.raises(ValueError, match="NaN"):
        score_model(model, Flat((1.0, np.nan, 3.0, 4.0)))
    with pytest.raises(ValueError, match="units"):
        score_model(model, "last", units="channel")
    with pytest.raises(KeyError, match="no layer named"):
        score_model(model, "last")["b"]

"""LAMP normalisation: math.md E6, tie and edge rules, invariants (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ssmtools.pruning import lamp_normalize

from .reference import released_lamp


def test_e6_values():
    np.testing.assert_allclose(lamp_normalize([4, 1, 3, 2]), [1, 0.1, 3 / 7, 2 / 9], rtol=1e-15)
    np.testing.assert_allclose(
        lamp_normalize([10, 0.5, 0.5, 5], ties="stable-sort"), [1, 1 / 32, 1 / 31, 1 / 3], rtol=1e-15
    )
    np.testing.assert_allclose(lamp_normalize([10, 0.5, 0.5, 5]), [1, 1 / 31, 1 / 31, 1 / 3], rtol=1e-15)


def test_ties_zeros_and_inf():
    np.testing.assert_allclose(lamp_normalize([2, 2, 2], ties="stable-sort"), [1 / 3, 1 / 2, 1])
    np.testing.assert_allclose(lamp_normalize([2, 2, 2]), [1, 1, 1])
    np.testing.assert_array_equal(lamp_normalize([0.0, 0.0]), [0.0, 0.0])  # the released code gives NaN
    np.testing.assert_allclose(lamp_normalize([0.0, 3.0]), [0.0, 1.0])
    np.testing.assert_allclose(lamp_normalize([1.0, np.inf, 2.0]), [1 / 3, np.inf, 1.0])
    assert lamp_normalize(np.zeros(0)).shape == (0,)


def test_bad_scores_are_errors():
    with pytest.raises(ValueError, match="NaN"):
        lamp_normalize([1.0, np.nan])
    with pytest.raises(ValueError, match="negative"):
        lamp_normalize([1.0, -2.0])
    with pytest.raises(ValueError, match="ties"):
        lamp_normalize([1.0], ties="random")


positive = st.lists(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(positive)
def test_lamp_invariants(values):
    raw = np.array(values)
    for ties in ("equal", "stable-sort"):
        out = lamp_normalize(raw, ties=ties)
        top = raw == raw.max()
        assert out.max() == 1.0 and out[top].max() == 1.0  # the top state scores exactly 1
        if ties == "equal":
            assert np.all(out[top] == 1.0)
        assert np.all((out > 0) & (out <= 1))
        order = np.argsort(raw, kind="stable")
        assert np.all(np.diff(out[order]) >= 0)  # monotone in the raw score
    np.testing.assert_allclose(lamp_normalize(raw, ties="stable-sort"), released_lamp(raw), rtol=1e-12)
    distinct = np.unique(raw).size == raw.size
    if distinct:
        np.testing.assert_array_equal(lamp_normalize(raw), lamp_normalize(raw, ties="stable-sort"))

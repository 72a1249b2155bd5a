"""``"h2-greedy"``: exact balanced-truncation H2 errors per order, and the greedy allocation against a brute-force
search over the per-layer orders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import ssmtools
from ssmtools.pruning import get_criterion, last_prune, prune_plan
from ssmtools.pruning.error_allocation import truncation_errors
from ssmtools.reduction import balanced_truncation

from .reference import s5_tree


def test_truncation_errors_are_the_exact_balanced_truncation_errors():
    rng = np.random.default_rng(11)
    model = ssmtools.load(s5_tree(rng, n_layers=1, P=6, H=3))
    system = next(iter(model.values())).system
    errors = truncation_errors(system)
    for k in range(system.n_states):  # e[n] = 0: a layer that keeps every slot stays as it is
        expected = balanced_truncation(system, states=k, exact_error=True).error_h2
        assert errors[k] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert errors[-1] == 0.0 and np.all(np.diff(errors) <= 1e-12 * errors[0])


@pytest.mark.parametrize("weights", ["relative", "absolute"])
def test_greedy_allocation_minimises_the_weighted_error_sum(weights):
    rng = np.random.default_rng(12)
    tree = s5_tree(rng, n_layers=3, P=6, H=2)
    model = ssmtools.load(tree)
    curves = [truncation_errors(layer.system) for layer in model.values()]
    w = [1 / c[0] ** 2 if weights == "relative" else 1.0 for c in curves]
    plan = prune_plan(model, 0.5, "h2-greedy", criterion_options={"weights": weights}, errors=False)
    kept = [entry.n_kept for entry in plan.layers]
    assert sum(kept) == 9
    cost = sum(wi * c[k] ** 2 for wi, c, k in zip(w, curves, kept))
    best = min(
        sum(wi * c[k] ** 2 for wi, c, k in zip(w, curves, ks))
        for ks in itertools.product(range(1, 7), repeat=3)
        if sum(ks) == 9
    )
    assert cost == pytest.approx(best, rel=1e-9)
    uniform = [3, 3, 3]
    assert cost <= sum(wi * c[k] ** 2 for wi, c, k in zip(w, curves, uniform)) * (1 + 1e-12)


def test_h2_greedy_prunes_through_last_prune_and_refuses_what_it_cannot_do():
    rng = np.random.default_rng(13)
    pruned, plan = last_prune(s5_tree(rng, n_layers=2, P=6, H=2), 0.5, "h2-greedy", errors=False)
    assert plan.reduction == "balanced-truncation" and ssmtools.load(pruned).n_states == 6
    assert get_criterion("h2-greedy", horizon=40).reduction_options() == {"horizon": 40, "unstable": "keep"}
    with pytest.raises(ValueError, match="weights"):
        get_criterion("h2-greedy", weights="gain")


def test_truncation_error_curves_are_computed_once_per_system() -> None:
    from ssmtools.pruning import error_allocation

    rng = np.random.default_rng(7)
    poles = rng.uniform(0.2, 0.9, 5) * np.exp(1j * rng.uniform(0.1, 3.0, 5))
    system = ssmtools.DiagonalSSM(
        poles, rng.standard_normal((5, 2)), rng.standard_normal((2, 5)), dt=True, output="real"
    )
    calls = []
    original = error_allocation._truncation_errors

    def counted(*args):
        calls.append(1)
        return original(*args)

    error_allocation._CURVES.clear()
    try:
        error_allocation._truncation_errors = counted
        first = truncation_errors(system, horizon=9)
        second = truncation_errors(system.replace(), horizon=9)  # equal parameters, another object
        third = truncation_errors(system)  # another horizon: another curve
    finally:
        error_allocation._truncation_errors = original
    assert len(calls) == 2 and second is first and not first.flags.writeable
    np.testing.assert_array_equal(first, original(system, 9))
    np.testing.assert_array_equal(third, original(system, None))

"""``"h2-optimal"``: the exact H2 error against scipy's dense Lyapunov solution, the analytic gradient against
finite differences, the first-order H2-optimality (interpolation) conditions at convergence, never worse than
balanced truncation, and the write-back through ``last_prune``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import ssmtools
from ssmtools import DiagonalSSM, UnstableSystemWarning
from ssmtools.pruning import get_reduction, last_prune, prune_plan
from ssmtools.pruning.h2_optimal import _augmented, _fold, _objective, h2_error, h2_optimal_fit
from ssmtools.reduction import balanced_truncation
from ssmtools.systems import augmented_realization, real_standard_form

from .reference import s5_tree
from .test_reductions import LAYER0, unstable_s5_tree


def random_mimo(rng, n=10, m=2, p=3, *, output="real", radius=(0.3, 0.95)):
    poles = rng.uniform(*radius, n) * np.exp(1j * rng.uniform(-3.0, 3.0, n))
    B = rng.normal(size=(n, m)) + 1j * rng.normal(size=(n, m))
    C = rng.normal(size=(p, n)) + 1j * rng.normal(size=(p, n))
    return DiagonalSSM(poles, B, C, rng.normal(size=(p, m)), dt=True, output=output, state_includes_input=True)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_h2_error_matches_the_dense_lyapunov_solution(output):
    rng = np.random.default_rng(1)
    sys = random_mimo(rng, output=output)
    reduced = balanced_truncation(sys, states=4).systems[0]
    # dense real error system of the strictly proper parts, standard form, D dropped on both sides
    A1, B1, C1, _ = real_standard_form(sys.replace(D=None, state_includes_input=False))
    A2, B2, C2, _ = real_standard_form(reduced.replace(D=None, state_includes_input=False))
    A = scipy.linalg.block_diag(A1, A2)
    B, C = np.vstack([B1, B2]), np.hstack([C1, -C2])
    P = scipy.linalg.solve_discrete_lyapunov(A, B @ B.T)
    expected = np.sqrt(np.trace(C @ P @ C.T)) / (1.0 if output == "real" else np.sqrt(2.0))
    assert h2_error(sys, reduced) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("output", ["real", "complex"])
@pytest.mark.parametrize("horizon", [None, 15])
def test_the_analytic_gradient_matches_finite_differences(output, horizon):
    rng = np.random.default_rng(2)
    sys = random_mimo(rng, n=8, output=output)
    start = balanced_truncation(sys, states=3, horizon=horizon).systems[0]
    real, full = output == "real", augmented_realization(sys)
    mu, F, H = start.poles, start.B, start.C

    def J(mu, F, H):
        return _objective(full, _augmented(mu, F, H, real), True, horizon)[0]

    value, g_mu, g_F, g_H = _objective(full, _augmented(mu, F, H, real), True, horizon)
    g_mu, g_F, g_H = _fold(g_mu, g_F, g_H, start.n_states, real)
    total = value + float(ssmtools.h2_norm(sys.replace(D=None), horizon=horizon)) ** 2
    assert total == pytest.approx(h2_error(sys, start, horizon=horizon) ** 2, rel=1e-10)
    eps = 1e-6
    for which, grad in (("mu", g_mu[1]), ("F", g_F[0, 1]), ("H", g_H[2, 0])):
        numeric = 0j
        for step in (eps, 1j * eps):
            args = {"mu": mu.copy(), "F": F.copy(), "H": H.copy()}
            plus, minus = {k: v.copy() for k, v in args.items()}, {k: v.copy() for k, v in args.items()}
            index = {"mu": (1,), "F": (0, 1), "H": (2, 0)}[which]
            plus[which][index] += step
            minus[which][index] -= step
            derivative = (J(**plus) - J(**minus)) / (2 * eps)
            numeric += derivative if step == eps else 1j * derivative
        assert numeric == pytest.approx(2 * grad, rel=1e-5, abs=1e-7)  # ∂J/∂x + i ∂J/∂y = 2 ∂J/∂z̄


def transfer(sys, z):
    lam, B, C = augmented_realization(sys)
    return ((C / (z - lam)) @ B)[0, 0], ((-C / (z - lam) ** 2) @ B)[0, 0]


@pytest.mark.parametrize("output", ["complex", "real"])
def test_first_order_h2_optimality_conditions_hold_at_convergence(output):
    rng = np.random.default_rng(3 if output == "complex" else 4)
    n = 10
    poles = rng.uniform(0.2, 0.9, n) * np.exp(1j * rng.uniform(0.2, 2.8, n))
    B, C = (
        rng.normal(size=(n, 1)) + 1j * rng.normal(size=(n, 1)),
        rng.normal(size=(1, n)) + 1j * rng.normal(size=(1, n)),
    )
    sys = DiagonalSSM(poles, B, C, dt=True, output=output)
    start = balanced_truncation(sys, states=3).systems[0]
    fit = h2_optimal_fit(sys, start, max_iter=3000, gtol=1e-14)
    assert fit.improved and fit.error < fit.start_error and np.all(fit.system.is_stable)
    # Meier–Luenberger: G and G_r, and their derivatives, agree at the mirror images 1/conj(μ) of the reduced poles
    for mu in augmented_realization(fit.system)[0]:
        (g, dg), (g_r, dg_r) = transfer(sys, 1 / np.conj(mu)), transfer(fit.system, 1 / np.conj(mu))
        assert abs(g - g_r) <= 1e-5 * abs(g) and abs(dg - dg_r) <= 1e-4 * abs(dg)


@pytest.mark.parametrize("horizon", [None, 20])
def test_never_worse_than_balanced_truncation_and_stable(horizon):
    rng = np.random.default_rng(5)
    sys = random_mimo(rng, n=12, radius=(0.5, 0.99))
    start = balanced_truncation(sys, states=4, horizon=horizon).systems[0]
    fit = h2_optimal_fit(sys, start, horizon=horizon)
    assert fit.start_error == pytest.approx(h2_error(sys, start, horizon=horizon), rel=1e-12)
    assert fit.error <= fit.start_error and fit.system.n_states == start.n_states
    if horizon is None:
        assert np.all(fit.system.is_stable)
    np.testing.assert_array_equal(fit.system.D, sys.D)
    # a start that is already optimal (the system itself) is kept as it is
    same = h2_optimal_fit(sys, sys)
    assert not same.improved and same.error == 0.0
    np.testing.assert_array_equal(same.system.poles, sys.poles)
    np.testing.assert_array_equal(same.system.C, sys.C)


def test_last_prune_writes_back_the_exact_budget_with_a_smaller_h2_error():
    rng = np.random.default_rng(6)
    tree = s5_tree(rng, n_layers=2, P=8, H=3)
    pruned, plan = last_prune(tree, 0.5, "balanced", reduction="h2-optimal")
    _, balanced = last_prune(tree, 0.5, "balanced")
    after = ssmtools.load(pruned)
    assert plan.reduction == "h2-optimal" and plan.n_kept == after.n_states == 8
    for entry, reference in zip(plan.layers, balanced.layers):
        assert entry.h2_error <= reference.h2_error * (1 + 1e-12)
    assert sum(e.h2_error for e in plan.layers) < sum(e.h2_error for e in balanced.layers)
    # the written-back layer is the plan's reduced system: its error against the original is the plan's
    before = ssmtools.load(tree)
    assert h2_error(before[LAYER0].system, after[LAYER0].system) == pytest.approx(plan.layers[0].h2_error, rel=1e-8)


def test_unstable_states_are_kept_exactly_and_horizon_is_an_option():
    tree = unstable_s5_tree()
    system = ssmtools.load(tree)[LAYER0].system
    unstable = system.poles[system.stability_margin <= 0]
    with pytest.warns(UnstableSystemWarning):
        pruned, plan = last_prune(tree, 0.5, "balanced", reduction="h2-optimal")
    kept = ssmtools.load(pruned)[LAYER0].system.poles
    assert plan.n_kept == 8 and all(np.min(np.abs(kept - pole)) < 1e-12 for pole in unstable)
    with pytest.warns(UnstableSystemWarning):
        plan = prune_plan(
            ssmtools.load(tree),
            0.5,
            "balanced",
            reduction="h2-optimal",
            reduction_options={"horizon": 40},
            errors=False,
        )
    assert plan.reduction_options["horizon"] == 40 and plan.n_kept == 8
    assert get_reduction("h2-optimal", max_iter=5).max_iter == 5

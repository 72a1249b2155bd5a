"""Reductions and measure: modal truncation against direct selection, balanced truncation against SLICOT
AB09AD (slycot), error norms against AB13DD (control.linfnorm) and impulse-response sums."""

from __future__ import annotations

import control
import numpy as np
import pytest
import slycot

import ssmtools
from ssmtools import BidirectionalSSM, DiagonalSSM, ShapeError, SSMLayer, SSMModel, UnstableSystemWarning
from ssmtools.pruning import (
    BalancedTruncation,
    ModalTruncation,
    Reduction,
    available_reductions,
    get_reduction,
    last_prune,
    measure,
    prune_plan,
    reduce_model,
)

from .reference import s5_tree
from .test_criteria import multi_siso_layer, random_layer, response, sweep_linf


def test_registry():
    assert {"modal-truncation", "balanced-truncation"} <= set(available_reductions())
    assert isinstance(get_reduction("modal-truncation"), ModalTruncation)
    assert get_reduction("modal-truncation").selects_states and not get_reduction("balanced-truncation").selects_states
    instance = BalancedTruncation()
    assert get_reduction(instance) is instance
    with pytest.raises(ValueError, match="unknown reduction 'spa'.*modal-truncation"):
        get_reduction("spa")
    with pytest.raises(TypeError, match="no option"):
        get_reduction("modal-truncation", order=3)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_modal_truncation_selects_states_and_measures_exact_errors(output):
    rng = np.random.default_rng(50)
    layer = random_layer(rng, P=6, H=3, output=output, radius=(0.3, 0.9))
    keep = np.array([True, False, True, True, False, False])
    reduced = ModalTruncation().reduce(layer, keep)
    s = layer.system
    assert reduced.n_kept == 3 and reduced.keep.tolist() == keep.tolist()
    np.testing.assert_array_equal(reduced.system.poles, s.poles[keep])
    np.testing.assert_array_equal(reduced.system.C, s.C[:, keep])
    np.testing.assert_array_equal(reduced.system.D, s.D)
    cost = measure(layer, reduced)
    difference = s.to_control() - reduced.system.to_control()
    assert cost.hinf_error == pytest.approx(control.linfnorm(difference, tol=1e-12)[0], rel=1e-8)
    k = np.arange(400)[:, None]
    h = np.einsum("pn,kn,nm->kpm", s.C[:, ~keep], s.poles[~keep][None, :] ** k, s.B[~keep])
    h = h.real if output == "real" else h
    assert cost.h2_error == pytest.approx(np.sqrt(np.sum(np.abs(h) ** 2)), rel=1e-9)
    assert cost.hinf_norm == pytest.approx(control.linfnorm(s.to_control(), tol=1e-12)[0], rel=1e-8)
    assert measure(layer, reduced, relative_hinf=False).hinf_norm is None
    whole = ModalTruncation().reduce(layer, np.ones(6, bool))
    assert whole.error is None and measure(layer, whole).hinf_error == 0.0


def test_modal_truncation_of_a_bidirectional_layer_keeps_both_scans():
    rng = np.random.default_rng(51)
    layer = random_layer(rng, P=5, H=2, bidirectional=True)
    keep = np.array([True, True, False, True, False])
    reduced = get_reduction("modal-truncation").reduce(layer, keep)
    s = layer.system
    assert isinstance(reduced.system, BidirectionalSSM) and isinstance(reduced.error, BidirectionalSSM)
    np.testing.assert_array_equal(reduced.system.C_backward, s.C_backward[:, keep])
    removed = SSMLayer(
        "e",
        BidirectionalSSM(
            DiagonalSSM(s.poles[~keep], s.B[~keep], s.C[:, ~keep], dt=True, output="real", state_includes_input=True),
            s.C_backward[:, ~keep],
        ),
    )
    cost = measure(layer, reduced)
    assert cost.hinf_error == pytest.approx(sweep_linf(removed), rel=1e-9)
    omega = np.linspace(-np.pi, np.pi, 2**14, endpoint=False)
    assert cost.h2_error == pytest.approx(
        np.sqrt(np.mean(np.sum(np.abs(response(removed, omega)) ** 2, axis=(1, 2)))), rel=1e-9
    )


def test_per_channel_modal_truncation_of_a_multi_siso_layer():
    rng = np.random.default_rng(52)
    system, lam, g = multi_siso_layer(rng, 3, 4)
    layer = SSMLayer("s", system)
    keep = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], dtype=bool)
    reduced = ModalTruncation().reduce(layer, keep)
    assert [r.n_states for r in reduced.systems] == [2, 1, 3] and reduced.n_kept == 6
    with pytest.raises(ShapeError, match="different numbers of stored states"):
        _ = reduced.system
    per_channel = []
    for h in range(3):
        r = ~keep[h]
        diff = DiagonalSSM(
            lam[h][r], g[h][r][:, None], np.ones((1, r.sum())), dt=True, output="real", state_includes_input=True
        )
        per_channel.append(control.linfnorm(diff.to_control(), tol=1e-12)[0])
    assert measure(layer, reduced).hinf_error == pytest.approx(max(per_channel), rel=1e-8)
    with pytest.raises(ShapeError, match="keep mask"):
        ModalTruncation().reduce(layer, keep[0])


def test_balanced_truncation_matches_slycot_balred():
    rng = np.random.default_rng(53)
    lam = rng.uniform(0.2, 0.9, 5) * np.exp(1j * rng.uniform(0.1, 3.0, 5))
    system = DiagonalSSM(
        lam,
        rng.normal(size=(5, 2)) + 1j * rng.normal(size=(5, 2)),
        rng.normal(size=(2, 5)) + 1j * rng.normal(size=(2, 5)),
        dt=True,
        output="real",
    )
    layer = SSMLayer("b", system)
    keep = np.array([True, False, True, False, False])  # two slots: real order 4, the realised mask is a prefix
    reduced = BalancedTruncation().reduce(layer, keep)
    assert reduced.keep.tolist() == [True, True, False, False, False]
    full = system.to_control()
    nr, Ar, Br, Cr, _ = slycot.ab09ad("D", "B", "N", full.nstates, 2, 2, full.A, full.B, full.C, nr=4, tol=0.0)
    reference = control.ss(Ar[:nr, :nr], Br[:nr], Cr[:, :nr], full.D, True)  # SLICOT AB09AD, discrete time
    z = np.exp(1j * np.linspace(0.05, 3.1, 7))
    ours = reduced.system.to_control()
    for point in z:
        np.testing.assert_allclose(ours(point), reference(point), rtol=1e-7, atol=1e-10)
    cost = measure(layer, reduced)
    expected, _ = control.linfnorm(system.to_control() - reference, tol=1e-12)
    assert cost.hinf_error == pytest.approx(expected, rel=1e-6)


def test_balanced_truncation_refuses_non_causal_layers_and_mask():
    rng = np.random.default_rng(54)
    with pytest.raises(ValueError, match="bidirectional"):
        BalancedTruncation().reduce(random_layer(rng, bidirectional=True), np.ones(5, bool))
    with pytest.raises(ValueError, match="mask=True is not available"):
        BalancedTruncation().apply(SSMModel.from_systems([random_layer(rng).system]), {}, mask=True)


def test_reduce_model_and_a_criterion_with_another_reduction():
    rng = np.random.default_rng(55)
    model = SSMModel.from_systems({"a": random_layer(rng, P=6).system, "b": random_layer(rng, P=4).system})
    plan = prune_plan(model, 0.5, "last", reduction="balanced-truncation")
    assert plan.reduction == "balanced-truncation" and plan.criterion == "last"
    reduced = reduce_model(model, {entry.name: entry.keep for entry in plan.layers}, "balanced-truncation")
    for entry in plan.layers:
        assert reduced[entry.name].n_kept == entry.n_kept
        assert measure(model[entry.name], reduced[entry.name]).hinf_error == pytest.approx(entry.hinf_error, rel=1e-12)
    with pytest.raises(ValueError, match="does not score stored states"):
        prune_plan(model, 0.5, "balanced", reduction="modal-truncation")


def test_a_new_reduction_plugs_in_through_the_base_class():
    class Nothing(Reduction):
        """Toy reduction: keeps every layer as it is (an error system of zero)."""

        name = "nothing"

        def reduce_layer(self, layer, keep):
            return np.ones_like(keep), (layer.system,)

    rng = np.random.default_rng(56)
    model = SSMModel.from_systems({"a": random_layer(rng, P=4).system})
    plan = prune_plan(model, 0.5, "last", reduction=Nothing())
    assert plan.reduction == "nothing" and plan["a"].n_kept == 4 and plan["a"].hinf_error == 0.0


LAYER0 = "params/encoder/layers_0/seq"


def unstable_s5_tree(seed=44):
    rng = np.random.default_rng(seed)
    tree = s5_tree(rng, n_layers=2, P=8, H=3)
    tree["params"]["encoder"]["layers_0"]["seq"]["Lambda_re"][:2] = [0.02, 0.005]  # |λ̄| > 1 after ZOH
    return tree


def test_balanced_prunes_unstable_layers_keeping_the_unstable_states_exactly():
    tree = unstable_s5_tree()
    before = ssmtools.load(tree)
    unstable_poles = before[LAYER0].system.poles[before[LAYER0].system.stability_margin <= 0]
    assert unstable_poles.size == 2
    with pytest.warns(UnstableSystemWarning):
        pruned, plan = last_prune(tree, 0.5, "balanced")
    after = ssmtools.load(pruned)
    assert plan.n_kept == after.n_states == 8  # exactly half of the 16 stored states: fit="states"
    assert all(layer.n_allocated == layer.n_kept for layer in plan.layers)
    kept = after[LAYER0].system.poles
    for pole in unstable_poles:
        assert np.min(np.abs(kept - pole)) < 1e-12 * abs(pole)
    # the plan's error is the stable part's, finite and within its bound
    entry = plan.layers[0]
    system = before[LAYER0].system
    stable = system.replace(
        poles=system.poles[2:], B=system.B[2:], C=system.C[:, 2:]
    )  # Lambda_re[:2] are the unstable states
    hsv = ssmtools.hankel_singular_values(stable)
    r = 2 * (entry.n_kept - 2)
    assert np.isfinite(entry.hinf_error) and entry.hinf_error <= 2 * hsv[r:].sum() * (1 + 1e-9)


def test_balanced_with_a_horizon_and_the_forced_deviation_is_reported():
    tree = unstable_s5_tree()
    with pytest.warns(UnstableSystemWarning):
        pruned, plan = last_prune(tree, 0.5, "balanced", criterion_options={"horizon": 40}, errors=False)
    assert plan.reduction_options["horizon"] == 40 and plan.n_kept == ssmtools.load(pruned).n_states == 8
    # 7 of 8 states removed from a layer with 2 unstable states: they stay (the plan reports n_allocated ≠ n_kept)
    model = ssmtools.load(tree)
    layer = model[LAYER0]
    reduced = get_reduction("balanced-truncation").reduce(layer, np.arange(8) < 1)
    assert reduced.n_kept == 2
    with pytest.warns(UnstableSystemWarning):
        plan = prune_plan(model, 0.85, "balanced", errors=False)
    assert plan.layers[0].n_kept >= 2  # the unstable slots score inf: always allocated


def lru_params(seed=8, N=8, H=3):
    rng = np.random.default_rng(seed)
    radius, phase = rng.uniform(0.3, 0.9, N), rng.uniform(0.1, 3.0, N)
    return {
        "layer": {
            "nu_log": np.log(-np.log(radius)),
            "theta_log": np.log(phase),
            "gamma_log": np.zeros(N),
            "B_re": rng.normal(size=(N, H)),
            "B_im": rng.normal(size=(N, H)),
            "C_re": rng.normal(size=(H, N)),
            "C_im": rng.normal(size=(H, N)),
            "D": rng.normal(size=(H, H)),
        }
    }


def test_singular_perturbation_writes_a_full_d_and_keeps_the_dc_gain():
    from tests.adapters.reference import lru_forward

    params = lru_params()
    pruned, plan = last_prune(params, 0.5, "balanced", reduction="singular-perturbation", errors=False)
    assert plan.reduction == "singular-perturbation" and plan.n_kept == ssmtools.load(pruned).n_states == 4
    assert not np.allclose(pruned["layer"]["D"], params["layer"]["D"])
    step = np.ones((400, 3))  # constant input: the outputs settle to the DC gain (|λ| ≤ 0.9)
    np.testing.assert_allclose(
        lru_forward(pruned["layer"], step)[-1], lru_forward(params["layer"], step)[-1], rtol=1e-9
    )
    truncated, _ = last_prune(params, 0.5, "balanced", errors=False)
    assert not np.allclose(lru_forward(truncated["layer"], step)[-1], lru_forward(params["layer"], step)[-1], rtol=1e-3)


def test_singular_perturbation_on_a_diagonal_d_format_keeps_d_diagonal():
    rng = np.random.default_rng(46)
    tree = s5_tree(rng, n_layers=1, P=6, H=3)
    pruned, _ = last_prune(tree, 0.5, "balanced", reduction="singular-perturbation", errors=False)
    after = ssmtools.load(pruned)
    D = after[LAYER0].system.D
    np.testing.assert_array_equal(D, np.diag(np.diagonal(D)))
    full = get_reduction("singular-perturbation", feedthrough="full")
    with pytest.raises(ValueError, match="diagonal"):
        full.apply(ssmtools.load(tree), {LAYER0: np.arange(6) < 3})

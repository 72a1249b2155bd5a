"""prune_plan / PruningPlan: E6, exact ratio, floors, ties, errors vs python-control, JSON and display."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import ClassVar

import control
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ssmtools import BidirectionalSSM, DiagonalSSM, SSMLayer, SSMModel, UnstableSystemWarning
from ssmtools.pruning import Criterion, PruningPlan, lamp_normalize, prune_plan

from .reference import released_keep, released_lamp
from .test_criteria import multi_siso_layer, random_layer, response, sweep_linf


@dataclass(frozen=True)
class Fixed(Criterion):
    """Test criterion: given raw scores per layer name, LAMP with the released tie rule (or none)."""

    name: ClassVar[str] = "fixed"
    scores: tuple = ()
    lamp: bool = True

    def raw_scores(self, layer, *, model=None):
        return np.array(dict(self.scores)[layer.name], dtype=float).reshape(layer.system.poles.shape)

    def normalize(self, scores):
        return lamp_normalize(scores, ties="stable-sort") if self.lamp else scores


def model_of(sizes, seed=0, H=2):
    rng = np.random.default_rng(seed)
    return SSMModel.from_systems({f"l{i}": random_layer(rng, P=P, H=H).system for i, P in enumerate(sizes)})


E6 = (("l0", (4, 1, 3, 2)), ("l1", (10, 0.5, 0.5, 5)))


@pytest.mark.parametrize(
    "percent, keep, tau",
    [
        (30, [[1, 0, 1, 1], [1, 0, 0, 1]], 2 / 9),
        (50, [[1, 0, 1, 0], [1, 0, 0, 1]], 1 / 3),
        (90, [[1, 0, 0, 0], [1, 0, 0, 0]], 1.0),
    ],
)
def test_e6_released_threshold(percent, keep, tau):
    plan = prune_plan(model_of([4, 4]), percent / 100, Fixed(E6), allocation="released", errors=False)
    assert [plan["l0"].keep.astype(int).tolist(), plan["l1"].keep.astype(int).tolist()] == keep
    assert plan.threshold == pytest.approx(tau, rel=1e-15)
    ref_keep, ref_tau = released_keep([released_lamp(np.array(s, float)) for _, s in E6], percent)
    assert [k.astype(int).tolist() for k in ref_keep] == keep and ref_tau == pytest.approx(tau)
    np.testing.assert_allclose(plan["l1"].scores, [1, 1 / 32, 1 / 31, 1 / 3], rtol=1e-15)


def test_released_rule_floors_and_overshoots():
    # P·L = 64, ratio 30 %: K = 44 kept, 31.25 % pruned (math.md §6.3)
    rng = np.random.default_rng(1)
    scores = (("l0", tuple(rng.random(32))), ("l1", tuple(rng.random(32))))
    plan = prune_plan(model_of([32, 32]), 0.3, Fixed(scores), allocation="released", errors=False)
    assert plan.n_kept == 44 and plan.realized_ratio == 0.3125
    exact = prune_plan(model_of([32, 32]), 0.3, Fixed(scores), errors=False)
    assert exact.n_removed == math.floor(0.3 * 64) == 19


def test_e6_exact_allocation():
    plan = prune_plan(model_of([4, 4]), 0.5, Fixed(E6), errors=False)
    assert plan["l0"].keep.tolist() == [True, False, True, False]
    assert plan["l1"].keep.tolist() == [True, False, False, True]
    assert plan.threshold == pytest.approx(2 / 9)
    assert plan.n_removed == 4 and plan.realized_ratio == 0.5


@pytest.mark.parametrize("ratio", [1.0, -0.1, 30, float("nan"), float("inf")])
def test_ratio_outside_unit_interval_is_a_value_error(ratio):
    with pytest.raises(ValueError, match="not in \\[0, 1\\)"):
        prune_plan(model_of([4]), ratio, errors=False)


def test_ratio_type_and_other_arguments():
    with pytest.raises(ValueError, match="percent"):
        prune_plan(model_of([4]), 30, errors=False)
    with pytest.raises(TypeError, match="ratio"):
        prune_plan(model_of([4]), True, errors=False)
    with pytest.raises(ValueError, match="min_states_per_layer"):
        prune_plan(model_of([4]), 0.5, min_states_per_layer=0, errors=False)
    with pytest.raises(ValueError, match="allocation"):
        prune_plan(model_of([4]), 0.5, allocation="faithful", errors=False)
    with pytest.raises(ValueError, match="units"):
        prune_plan(model_of([4]), 0.5, units="channel", errors=False)
    with pytest.raises(TypeError, match="SSMModel"):
        prune_plan("model.safetensors", 0.5)


def test_ratio_zero_removes_nothing():
    plan = prune_plan(model_of([3, 5]), 0.0)
    assert plan.n_removed == 0 and plan.threshold is None
    assert all(layer.hinf_error == 0 and layer.h2_error == 0 for layer in plan.layers)


@pytest.mark.parametrize("criterion", ["last", "last-official", "global-hinf", "magnitude", "random", "uniform-hinf"])
def test_no_layer_emptied_at_099(criterion):
    model = model_of([100, 100], H=2)
    plan = prune_plan(model, 0.99, criterion, errors=False)
    assert plan.n_removed == 198
    assert all(layer.n_kept == 1 for layer in plan.layers)
    released = prune_plan(model, 0.99, criterion, allocation="released", errors=False)
    assert all(layer.n_kept >= 1 for layer in released.layers)


def test_infeasible_ratio_is_reported():
    with pytest.raises(ValueError, match="largest feasible ratio 0.7500"):
        prune_plan(model_of([4, 4]), 0.9, "last", errors=False)
    with pytest.raises(ValueError, match="min_states_per_layer=2"):
        prune_plan(model_of([4, 4]), 0.8, "last", min_states_per_layer=2, errors=False)


def test_ties_are_broken_by_layer_then_index():
    equal = (("l0", (2.0,) * 4), ("l1", (2.0,) * 4))
    plan = prune_plan(model_of([4, 4]), 0.5, Fixed(equal, lamp=False), errors=False)
    assert plan["l0"].keep.tolist() == [False, False, False, True]  # l0 first, lowest index first, best kept
    assert plan["l1"].keep.tolist() == [False, True, True, True]
    again = prune_plan(model_of([4, 4]), 0.5, Fixed(equal, lamp=False), errors=False)
    assert all(np.array_equal(a, b) for a, b in zip(plan.keep.values(), again.keep.values()))
    # LAMP's equal-tie rule: every tied state scores 1, the same order applies
    plan = prune_plan(model_of([4, 4]), 0.5, Fixed(equal), errors=False)
    assert plan["l0"].scores.tolist() == [1 / 4, 1 / 3, 1 / 2, 1]  # Fixed uses the released (stable-sort) rule
    assert plan["l0"].keep.tolist() == [False, False, True, True]


def test_uniform_allocation_uses_largest_remainder():
    plan = prune_plan(model_of([8, 6, 5]), 0.5, "uniform-hinf", errors=False)
    removed = [layer.n_removed for layer in plan.layers]
    assert sum(removed) == math.floor(0.5 * 19) == 9
    assert removed == [4, 3, 2]  # ⌊4⌋ + ⌊3⌋ + ⌊2.5⌋ = 9 = ⌊9.5⌋: no remainder to hand out
    assert plan.threshold is None
    for layer in plan.layers:  # inside a layer: the lowest H∞ go
        removed_scores = layer.scores[~layer.keep]
        assert removed_scores.max(initial=-np.inf) <= layer.scores[layer.keep].min()


criterion_names = st.sampled_from(["last", "last-official", "global-hinf", "magnitude", "lamp-magnitude", "random"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4), st.floats(0, 0.999), criterion_names, st.integers(0, 2**16))
def test_ratio_met_exactly_and_ranking_respected(sizes, ratio, criterion, seed):
    model = model_of(sizes, seed=seed)
    N = sum(sizes)
    target = math.floor(ratio * N + 1e-9)
    removable = N - len(sizes)
    if target > removable:
        with pytest.raises(ValueError, match="largest feasible ratio"):
            prune_plan(model, ratio, criterion, allocation="exact", errors=False)
        return
    plan = prune_plan(model, ratio, criterion, allocation="exact", errors=False)
    assert plan.n_removed == target and plan.n_total == N
    assert all(layer.n_kept >= 1 for layer in plan.layers)
    # every removed unit scores ≤ every kept unit that was not protected by the per-layer floor
    for layer in plan.layers:
        if layer.n_removed:
            assert layer.scores[~layer.keep].max() <= plan.threshold
        top = np.argmax(layer.scores)
        assert layer.keep[np.flatnonzero(layer.scores == layer.scores[top])].any()
    kept_competing = np.concatenate(
        [np.sort(layer.scores[layer.keep])[1:] if layer.n_kept else np.zeros(0) for layer in plan.layers]
    )
    if plan.threshold is not None and kept_competing.size:
        assert kept_competing.min() >= plan.threshold


@pytest.mark.parametrize("output", ["real", "complex"])
def test_truncation_errors_match_python_control(output):
    rng = np.random.default_rng(21)
    layer = random_layer(rng, P=6, H=3, output=output, radius=(0.3, 0.9))
    model = SSMModel.from_systems({"a": layer.system})
    plan = prune_plan(model, 0.5, "last")
    keep = plan["a"].keep
    system = layer.system
    reduced = DiagonalSSM(
        system.poles[keep],
        system.B[keep],
        system.C[:, keep],
        system.D,
        dt=True,
        output=output,
        state_includes_input=True,
    )
    difference = system.to_control() - reduced.to_control()
    expected, _ = control.linfnorm(difference, tol=1e-12)
    assert plan["a"].hinf_error == pytest.approx(expected, rel=1e-8)
    # H2 from the impulse response h_k = out(C Λ^k B) of the removed states (k ≥ 0), summed directly
    removed = ~keep
    k = np.arange(400)[:, None]
    powers = system.poles[removed][None, :] ** k
    h = np.einsum("pn,kn,nm->kpm", system.C[:, removed], powers, system.B[removed])
    if output == "real":
        h = h.real
    assert plan["a"].h2_error == pytest.approx(np.sqrt(np.sum(np.abs(h) ** 2)), rel=1e-9)
    full, _ = control.linfnorm(system.to_control(), tol=1e-12)
    assert plan["a"].hinf_norm == pytest.approx(full, rel=1e-8)
    assert plan["a"].relative_hinf_error == pytest.approx(expected / full, rel=1e-8)
    absolute = prune_plan(model, 0.5, "last", errors="absolute")["a"]
    assert absolute.hinf_norm is None and absolute.relative_hinf_error is None
    assert absolute.hinf_error == plan["a"].hinf_error and absolute.relative_h2_error == plan["a"].relative_h2_error
    with pytest.raises(ValueError, match="errors"):
        prune_plan(model, 0.5, errors="relative")


def test_bidirectional_truncation_error_matches_a_sweep():
    rng = np.random.default_rng(22)
    layer = random_layer(rng, P=5, H=2, bidirectional=True, name="bi")
    model = SSMModel({"bi": layer})
    plan = prune_plan(model, 0.4, "last-exact")
    removed = ~plan["bi"].keep
    s = layer.system
    error_layer = SSMLayer(
        "e",
        BidirectionalSSM(
            DiagonalSSM(
                s.poles[removed], s.B[removed], s.C[:, removed], dt=True, output="real", state_includes_input=True
            ),
            s.C_backward[:, removed],
        ),
    )
    assert plan["bi"].hinf_error == pytest.approx(sweep_linf(error_layer), rel=1e-9)
    omega = np.linspace(-np.pi, np.pi, 2**14, endpoint=False)
    energy = np.mean(np.sum(np.abs(response(error_layer, omega)) ** 2, axis=(1, 2)))
    assert plan["bi"].h2_error == pytest.approx(np.sqrt(energy), rel=1e-9)


def test_multi_siso_channel_floor_and_errors():
    rng = np.random.default_rng(23)
    H, N = 4, 3
    system, lam, g = multi_siso_layer(rng, H, N, c=2.0, d=0.1)
    plan = prune_plan(SSMModel.from_systems({"s4d": system}), 0.6, "last")
    keep = plan["s4d"].keep
    assert keep.shape == (H, N) and plan.n_removed == math.floor(0.6 * H * N)
    assert np.all(keep.sum(axis=1) >= 1)  # every channel keeps a state
    per_channel = []
    for h in range(H):
        r = ~keep[h]
        if r.any():
            diff = DiagonalSSM(
                lam[h][r],
                g[h][r][:, None],
                2 * np.ones((1, r.sum())),
                dt=True,
                output="real",
                state_includes_input=True,
            )
            per_channel.append(control.linfnorm(diff.to_control(), tol=1e-12)[0])
    assert plan["s4d"].hinf_error == pytest.approx(max(per_channel), rel=1e-8)


def test_json_round_trip_and_display(tmp_path):
    rng = np.random.default_rng(24)
    unstable = DiagonalSSM(
        [0.5, 1.1], np.ones((2, 2)), np.ones((2, 2)), dt=True, output="real", state_includes_input=True
    )
    model = SSMModel.from_systems({"a": random_layer(rng, P=4).system, "u": unstable})
    with pytest.warns(UserWarning, match="not asymptotically stable"):
        plan = prune_plan(model, 0.5, "last-official", criterion_options={"bidirectional_formula": "intended"})
    text = plan.to_json(tmp_path / "plan.json")
    data = json.loads(text)  # strict JSON: non-finite values are strings
    assert data["layers"][1]["hinf_norm"] == "inf"
    for source in (text, tmp_path / "plan.json", str(tmp_path / "plan.json")):
        back = PruningPlan.from_json(source)
        assert back.to_json() == text
        assert back.criterion == "last-official" and back.criterion_options["bidirectional_formula"] == "intended"
        for a, b in zip(plan.layers, back.layers):
            assert np.array_equal(a.keep, b.keep) and np.array_equal(a.raw_scores, b.raw_scores)
            assert a.hinf_error == b.hinf_error and a.n_kept == b.n_kept
    table = str(plan)
    assert "last-official" in table and "removed 3/6" in table and "unstable" in table
    assert table.count("\n") >= 4 and "a " in table and "u " in table
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(plan)
    assert "kept/total" in console.export_text() and "4/4" not in console.export_text()
    with pytest.raises(ValueError, match="not a serialised PruningPlan"):
        PruningPlan.from_json('{"format": "other"}')
    assert not plan["a"].keep.flags.writeable
    with pytest.raises(AttributeError):
        plan.ratio = 0.1


def test_the_plan_says_how_many_unstable_states_it_removes():
    """A ratio above the stable fraction must remove unstable states: the plan, its table, its JSON and the warning
    say so per layer (they used to go without a word)."""
    poles = np.array([1.2, 1.05 * np.exp(1j), 0.5, 0.3 * np.exp(2j)])
    system = DiagonalSSM(poles, np.ones((4, 1)), np.ones((1, 4)), dt=True, output="real", state_includes_input=True)
    with pytest.warns(UnstableSystemWarning, match="this plan removes 1 of them"):
        plan = prune_plan({"layer": system}, 0.75, "last")
    assert plan["layer"].n_unstable == 2 and plan["layer"].n_unstable_removed == 1
    assert "2 (1 removed)" in str(plan) and "removed by this plan: {'layer': 1}" in str(plan)
    assert PruningPlan.from_json(plan.to_json())["layer"].n_unstable_removed == 1


def test_last_official_defaults_to_the_released_threshold_rule():
    """``criterion="last-official"`` alone keeps what the released code keeps (its K and τ), other criteria
    meet the ratio exactly; an explicit ``allocation=`` still wins."""
    model = model_of([32, 32], seed=3)
    plan = prune_plan(model, 0.3, "last-official", errors=False)
    assert plan.allocation == "released" and plan.n_kept == 44  # K = int(64·70/100) kept: 31.25 % pruned
    ref_keep, ref_tau = released_keep([layer.scores for layer in plan.layers], 30)
    assert [layer.keep.tolist() for layer in plan.layers] == [k.tolist() for k in ref_keep]
    assert plan.threshold == ref_tau
    exact = prune_plan(model, 0.3, "last-official", allocation="exact", errors=False)
    assert exact.allocation == "exact" and exact.n_removed == 19
    assert prune_plan(model, 0.3, "last", errors=False).allocation == "exact"

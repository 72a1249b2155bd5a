"""Structural tests of ``ssmtools.plot``: what is drawn, where, and with which labels.

Drawn numbers are checked against references we did not write: python-control's evaluation of the
realization (``to_control()``), SLICOT AB13DD through ``control.linfnorm``, and the worked examples
of math.md (E5 layer, E6 LAST scores).
"""

from __future__ import annotations

import subprocess
import sys

import control
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.linalg

import ssmtools as st
from ssmtools import DiagonalSSM, ShapeError

from .conftest import random_system, sweep_sigma_max


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def by_gid(ax, gid):
    return [artist for artist in ax.lines + ax.collections if artist.get_gid() == gid]


def linfnorm(sys: DiagonalSSM) -> tuple[float, float]:
    value, peak = control.linfnorm(sys.to_control(), tol=1e-10)  # SLICOT AB13DD, not our wrapper
    return float(value), float(peak)


def test_backend_is_headless():
    assert matplotlib.get_backend().lower() == "agg"


def test_importing_ssmtools_does_not_import_matplotlib():
    code = "import sys, ssmtools; ssmtools.plot; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------- sigma
@pytest.mark.parametrize("dt", [True, 0.0])
def test_sigma_marks_the_ab13dd_peak_and_draws_sigma_max(dt):
    sys = random_system(3, n=5, m=2, p=3, dt=dt, with_d=dt is True, min_margin=0.02)
    ax = st.plot.sigma(sys)
    expected_value, expected_peak = linfnorm(sys)
    (marker,) = by_gid(ax, "hinf-peak")
    assert marker.get_xdata()[0] == pytest.approx(abs(expected_peak), rel=1e-5, abs=1e-8)
    assert marker.get_ydata()[0] == pytest.approx(20 * np.log10(expected_value), rel=1e-8)
    curve = ax.lines[0]
    omega, db = curve.get_xdata(), curve.get_ydata()
    picks = np.linspace(0, omega.size - 1, 25).astype(int)
    np.testing.assert_allclose(db[picks], 20 * np.log10(sweep_sigma_max(sys, omega[picks])), rtol=1e-9, atol=1e-9)
    assert db.max() <= 20 * np.log10(expected_value) + 1e-6  # a sweep never exceeds the H∞ norm
    assert ax.get_xlabel() == ("frequency ω (rad/sample)" if dt else "frequency ω (rad/s)")
    assert ax.get_ylabel() == "σ_max (dB)"
    assert ax.get_xscale() == "log"
    nyquist = by_gid(ax, "nyquist")
    if dt:
        assert len(nyquist) == 1 and nyquist[0].get_xdata()[0] == pytest.approx(np.pi)
        assert omega.max() == pytest.approx(np.pi)
    else:
        assert nyquist == []


def test_sigma_overlays_every_layer_of_a_batch_and_of_a_model():
    model = st.examples.random_s5_model(n_layers=3, n_states=4, width=2, seed=1)
    ax = st.plot.sigma(model)
    peaks = by_gid(ax, "hinf-peak")
    assert len(peaks) == 3
    for marker, layer in zip(peaks, model.values()):
        value, _ = linfnorm(layer)
        assert 10 ** (marker.get_ydata()[0] / 20) == pytest.approx(value, rel=1e-8)
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "layers_0"
    batched = DiagonalSSM(
        np.stack([s.poles for s in model.values()]),
        np.stack([s.B for s in model.values()]),
        np.stack([s.C for s in model.values()]),
        dt=True,
        output="real",
    )
    assert len(by_gid(st.plot.sigma(batched, mark_peak=False), "hinf-peak")) == 0
    assert len(st.plot.sigma(batched, mark_peak=False).get_lines()) == 3 + 1  # 3 curves + Nyquist line


def test_sigma_all_draws_every_singular_value():
    sys = random_system(4, n=4, m=2, p=3, dt=True)
    ax = st.plot.sigma(sys, singular_values="all", db=False, mark_peak=False)
    omega = ax.lines[0].get_xdata()
    expected = np.linalg.svd(np.stack([sys.to_control()(np.exp(1j * w)) for w in omega[::50]]), compute_uv=False)
    np.testing.assert_allclose(ax.lines[1].get_ydata()[::50], expected[:, 1], rtol=1e-9)
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "σ_max (gain)"


def test_sigma_reduced_comparison_draws_the_error_of_the_difference():
    sys = random_system(5, n=6, m=2, p=2, dt=True, min_margin=0.05)
    reduced = sys.replace(poles=sys.poles[:3], B=sys.B[:3], C=sys.C[:, :3])
    ax = st.plot.sigma(sys, reduced=reduced, db=False)
    (error,) = by_gid(ax, "reduction-error")
    (reduced_curve,) = by_gid(ax, "reduced")
    difference = sys.to_control() - reduced.to_control()
    omega = error.get_xdata()[::40]
    expected = np.linalg.svd(np.stack([difference(np.exp(1j * w)) for w in omega]), compute_uv=False)[:, 0]
    np.testing.assert_allclose(error.get_ydata()[::40], expected, rtol=1e-8)
    np.testing.assert_allclose(reduced_curve.get_ydata()[::40], sweep_sigma_max(reduced, omega), rtol=1e-8)


def test_sigma_reduced_must_match_the_originals():
    model = st.examples.random_s5_model(n_layers=2, n_states=3, width=2)
    with pytest.raises(ShapeError, match="reduced has 1 systems but systems has 2"):
        st.plot.sigma(model, reduced=model["layers_0"])


def test_sigma_peak_at_zero_frequency_is_drawn_at_the_left_end_of_a_log_axis():
    sys = DiagonalSSM([0.9], [[1.0]], [[1.0]], dt=True, output="real")  # 1/(z − 0.9): peak 10 at ω = 0
    ax = st.plot.sigma(sys)
    (marker,) = by_gid(ax, "hinf-peak")
    assert marker.get_xdata()[0] == ax.lines[0].get_xdata()[0] > 0
    assert 10 ** (marker.get_ydata()[0] / 20) == pytest.approx(10.0)
    assert "at ω = 0" in marker.get_label()


def test_sigma_complex_output_defaults_to_a_symmetric_linear_axis():
    sys = DiagonalSSM([0.9j], [[1.0]], [[1.0]], dt=True)  # complex output: peak 10 at ω = π/2 only
    ax = st.plot.sigma(sys)
    omega = ax.lines[0].get_xdata()
    assert ax.get_xscale() == "linear" and omega.min() == pytest.approx(-np.pi)
    (marker,) = by_gid(ax, "hinf-peak")
    assert marker.get_xdata()[0] == pytest.approx(np.pi / 2, abs=1e-6)


def test_sigma_draws_on_the_given_axes_and_never_shows(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() was called"))
    fig, (left, right) = plt.subplots(1, 2)
    assert st.plot.sigma(st.examples.s5_layer_e5(), ax=right) is right
    assert len(left.lines) == 0 and len(right.lines) > 0


def test_sigma_rejects_mixed_time_domains_and_non_systems():
    with pytest.raises(ValueError, match="mixes continuous- and discrete-time"):
        st.plot.sigma([random_system(dt=True), random_system(dt=0.0, with_d=False)])
    with pytest.raises(TypeError, match="expected a DiagonalSSM"):
        st.plot.sigma([np.ones(3)])
    with pytest.raises(ValueError, match="singular_values='min' is not valid"):
        st.plot.sigma(random_system(), singular_values="min")


# ---------------------------------------------------------------------------------------------- bode
def test_bode_channel_matches_python_control_and_marks_the_peak():
    sys = st.examples.s5_layer_e5()
    fig = st.plot.bode(sys, output_index=1, input_index=0)
    ax_mag, ax_phase = fig.axes
    assert ax_mag.get_ylabel() == "|G_10| (dB)" and ax_phase.get_ylabel() == "phase (deg)"
    assert ax_phase.get_xlabel() == "frequency ω (rad/sample)"
    omega = ax_mag.lines[0].get_xdata()
    plant = sys.to_control()
    response = np.array([plant(np.exp(1j * w))[1, 0] for w in omega])
    np.testing.assert_allclose(ax_mag.lines[0].get_ydata(), 20 * np.log10(np.abs(response)), rtol=1e-9)
    phase_difference = np.deg2rad(ax_phase.lines[0].get_ydata()) - np.angle(response)
    np.testing.assert_allclose(np.exp(1j * phase_difference), 1.0, atol=1e-9)  # equal modulo 2π
    (marker,) = by_gid(ax_mag, "hinf-peak")
    assert marker.get_xdata()[0] == pytest.approx(0.5998007, abs=1e-6)  # math.md E5 layer peak
    assert len(by_gid(ax_mag, "nyquist")) == len(by_gid(ax_phase, "nyquist")) == 1


def test_bode_rejects_missing_channel():
    with pytest.raises(IndexError, match="channel \\(output 5, input 0\\) does not exist"):
        st.plot.bode(st.examples.s5_layer_e5(), output_index=5)


# ---------------------------------------------------------------------------------------------- pole map
def test_pole_map_draws_every_pole_with_its_score_and_the_unit_circle():
    layer = st.examples.s5_layer_e5()
    ax = st.plot.pole_map(layer, scores="hinf")
    (poles,) = by_gid(ax, "poles")
    np.testing.assert_allclose(poles.get_offsets(), np.c_[layer.poles.real, layer.poles.imag])
    np.testing.assert_allclose(poles.get_array(), [2.4562394155, 19.7013531066], rtol=1e-9)  # math.md E5 pair H∞
    (circle,) = by_gid(ax, "stability-boundary")
    np.testing.assert_allclose(np.hypot(circle.get_xdata(), circle.get_ydata()), 1.0)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Re λ", "Im λ")
    assert ax.figure.axes[-1].get_ylabel() == "per-state H∞ norm"  # colour bar


def test_pole_map_h2_and_hsv_scores():
    layer = st.examples.s5_layer_e5()
    h2 = by_gid(st.plot.pole_map(layer, scores="h2"), "poles")[0].get_array()
    # E5 stores C = 2C̃ with output='real', so each state's subsystem is the full 2Re pair of math.md §8
    np.testing.assert_allclose(h2**2, [0.2996875085, 7.7626075327], rtol=1e-9)
    hsv = by_gid(st.plot.pole_map(layer, scores="hsv"), "poles")[0].get_array()
    for i, value in enumerate(hsv):  # largest HSV of each one-state subsystem, via scipy's Lyapunov solver
        single = DiagonalSSM(layer.poles[i : i + 1], layer.B[i : i + 1], layer.C[:, i : i + 1], dt=True, output="real")
        plant = single.to_control()  # real 2-state realization (A_r, B_r, C_r)
        P = scipy.linalg.solve_discrete_lyapunov(plant.A, plant.B @ plant.B.T)
        Q = scipy.linalg.solve_discrete_lyapunov(plant.A.T, plant.C.T @ plant.C)
        assert value == pytest.approx(float(np.sqrt(np.max(np.linalg.eigvals(P @ Q).real))), rel=1e-8)


@pytest.mark.parametrize("dt", [True, 0.0])
def test_pole_map_counts_kept_and_pruned_states(dt):
    sys = random_system(6, n=7, batch=(3,), dt=dt, with_d=False)
    keep = np.random.default_rng(0).random((3, 7)) < 0.6
    ax = st.plot.pole_map(sys, scores=np.arange(21.0).reshape(3, 7) + 1, keep=keep)
    (kept,) = by_gid(ax, "kept-poles")
    (pruned,) = by_gid(ax, "pruned-poles")
    assert len(kept.get_offsets()) == keep.sum() and len(pruned.get_offsets()) == (~keep).sum()
    np.testing.assert_allclose(kept.get_offsets()[:, 0] + 1j * kept.get_offsets()[:, 1], sys.poles[keep])
    np.testing.assert_allclose(pruned.get_array(), (np.arange(21.0).reshape(3, 7) + 1)[~keep])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"kept ({keep.sum()})", f"pruned ({(~keep).sum()})"]
    (boundary,) = by_gid(ax, "stability-boundary")
    if not dt:
        assert list(boundary.get_xdata()) == [0.0, 0.0]  # the imaginary axis


def test_pole_map_conjugates_and_unstable_scores():
    layer = st.examples.s5_layer_e5()
    ax = st.plot.pole_map(layer, scores=[np.inf, 1.0], show_conjugates=True)
    (conjugates,) = by_gid(ax, "conjugate-poles")
    np.testing.assert_allclose(conjugates.get_offsets()[:, 1], -layer.poles.imag)
    assert len(by_gid(ax, "poles")[0].get_offsets()) == 1 and len(by_gid(ax, "poles-unstable")[0].get_offsets()) == 1


def test_pole_map_rejects_bad_scores_and_masks():
    layer = st.examples.s5_layer_e5()
    with pytest.raises(ShapeError, match="scores has shape \\(3,\\) but the poles have shape \\(2,\\)"):
        st.plot.pole_map(layer, scores=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="keep must be a boolean mask"):
        st.plot.pole_map(layer, keep=[1, 0])
    with pytest.raises(ShapeError, match="keep has shape"):
        st.plot.pole_map(layer, keep=[True])
    with pytest.raises(ValueError, match="scores='energy' is not valid"):
        st.plot.pole_map(layer, scores="energy")


# ---------------------------------------------------------------------------------------------- scores, HSVs
E6_SCORES = {"L1": [1, 0.1, 3 / 7, 2 / 9], "L2": [1, 1 / 32, 1 / 31, 1 / 3]}  # math.md §6.4 normalised scores


def test_score_distributions_draw_each_layer_and_the_threshold():
    keep = {"L1": np.array([1, 0, 1, 1], bool), "L2": np.array([1, 0, 0, 1], bool)}  # ratio 30 → τ = 2/9
    ax = st.plot.score_distributions(E6_SCORES, threshold=2 / 9, keep=keep)
    (threshold,) = by_gid(ax, "threshold")
    assert threshold.get_ydata()[0] == pytest.approx(2 / 9)
    kept = np.concatenate([c.get_offsets()[:, 1] for c in by_gid(ax, "kept-scores")])
    pruned = np.concatenate([c.get_offsets()[:, 1] for c in by_gid(ax, "pruned-scores")])
    assert kept.size == 5 and pruned.size == 3
    assert kept.min() >= 2 / 9 > pruned.max()
    x_of_layer_2 = by_gid(ax, "kept-scores")[1].get_offsets()[:, 0]
    assert np.all(np.abs(x_of_layer_2 - 1) <= 0.175 + 1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["L1", "L2"] and ax.get_yscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["kept (5)", "pruned (3)", "global threshold τ = 0.222"]


def test_score_distributions_without_mask_and_mismatched_masks():
    ax = st.plot.score_distributions([[3.0, 2.0, 2.0], [1.0]], log=False)
    assert [len(c.get_offsets()) for c in by_gid(ax, "scores")] == [3, 1]
    ties = by_gid(ax, "scores")[0].get_offsets()
    assert len(set(ties[:, 0])) == 3  # tied scores are spread apart
    with pytest.raises(ValueError, match="keep has layers"):
        st.plot.score_distributions(E6_SCORES, keep={"L1": [True] * 4})


def test_hsv_decay_matches_math_md_and_normalises():
    layer = st.examples.s5_layer_e5()
    ax = st.plot.hsv_decay({"e5": layer, "again": layer})
    expected = np.array([9.98072663, 9.94992766, 1.27340793, 0.80105669])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), expected / expected[0], rtol=1e-8)
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3, 4] and ax.get_ylabel() == "σ_j / σ_1"
    precomputed = st.plot.hsv_decay({"a": [1.0, 4.0, 2.0]}, normalize=False)
    assert list(precomputed.lines[0].get_ydata()) == [4.0, 2.0, 1.0]
    non_minimal = st.plot.hsv_decay({"real pole as a pair": [2.0, 0.0]})  # zero HSV: gap, not a fall to 0
    assert non_minimal.lines[0].get_ydata()[0] == 1.0 and np.isnan(non_minimal.lines[0].get_ydata()[1])


# ---------------------------------------------------------------------------------------------- pruning plots
def test_pruning_curves_one_sorted_line_per_criterion():
    ax = st.plot.pruning_curves({"last": ([50, 0, 90], [0.8, 0.9, 0.3]), "random": ([0, 50], [0.9, 0.5])}, baseline=0.9)
    last, random = ax.lines[:2]
    assert list(last.get_xdata()) == [0, 50, 90] and list(last.get_ydata()) == [0.9, 0.8, 0.3]
    assert random.get_label() == "random"
    assert by_gid(ax, "baseline")[0].get_ydata()[0] == 0.9
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("pruning ratio (%)", "accuracy")
    with pytest.raises(ShapeError, match="2 ratios but 3 metric values"):
        st.plot.pruning_curves({"x": ([0, 1], [1, 2, 3])})


def test_state_allocation_bars_per_layer_and_plan():
    ax = st.plot.state_allocation(
        {"last": {"a": 3, "b": np.array([True, False])}, "h2": {"a": 1, "b": 2}}, totals={"a": 4, "b": 2}
    )
    totals, last, h2 = ax.containers
    assert [p.get_height() for p in totals] == [4, 2]
    assert [p.get_height() for p in last] == [3, 1] and [p.get_height() for p in h2] == [1, 2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    with pytest.raises(ValueError, match="totals has no entry for layers \\['b'\\]"):
        st.plot.state_allocation({"a": 1, "b": 1}, totals={"a": 2})


def test_plots_accept_an_ssm_model_and_skip_unreadable_legends():
    model = st.SSMModel.from_systems([random_system(s, n=3, dt=True) for s in range(2)])
    ax = st.plot.sigma(model, mark_peak=False)
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["layer_0", "layer_1"]
    many = random_system(1, n=2, m=1, p=1, batch=(30,), dt=True)  # 30 SISO channels: curves, no legend
    ax = st.plot.sigma(many, mark_peak=False)
    assert len(ax.lines) == 31 and ax.get_legend() is None
    ax = st.plot.pole_map(model["layer_1"], scores="h2")
    np.testing.assert_allclose(by_gid(ax, "poles")[0].get_array(), st.state_h2_norms(model["layer_1"].system))


def test_sigma_and_hsv_decay_take_a_balanced_truncation_result():
    model = st.examples.random_s5_model(n_layers=2, n_states=5, width=3, seed=2)
    stacked = DiagonalSSM(
        np.stack([s.poles for s in model.values()]),
        np.stack([s.B for s in model.values()]),
        np.stack([s.C for s in model.values()]),
        np.stack([s.D for s in model.values()]),
        dt=True,
        output="real",
        state_includes_input=True,
    )
    result = st.balanced_truncation(stacked, order=4)
    ax = st.plot.sigma(stacked, reduced=result, db=False, mark_peak=False)
    errors = by_gid(ax, "reduction-error")
    assert len(errors) == 2 and len(by_gid(ax, "reduced")) == 2
    for index, error in enumerate(errors):  # error curve = σ_max of the difference, via python-control
        difference = stacked[index].to_control() - result.systems[index].to_control()
        omega = error.get_xdata()[::80]
        expected = np.linalg.svd(np.stack([difference(np.exp(1j * w)) for w in omega]), compute_uv=False)[:, 0]
        np.testing.assert_allclose(error.get_ydata()[::80], expected, rtol=1e-7, atol=1e-12)
    ax = st.plot.hsv_decay(result, normalize=False)
    for line, layer in zip(ax.lines, model.values()):  # HSVs via scipy's Lyapunov solver on the real form
        plant = layer.replace(state_includes_input=False, D=None).to_control()
        P = scipy.linalg.solve_discrete_lyapunov(plant.A, plant.B @ plant.B.T)
        Q = scipy.linalg.solve_discrete_lyapunov(plant.A.T, plant.C.T @ plant.C)
        expected = np.sort(np.sqrt(np.abs(np.linalg.eigvals(P @ Q))))[::-1]
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-6)


# ---------------------------------------------------------------------------------------------- pruning plans
def test_pole_map_last_scores_match_math_md_e5():
    ax = st.plot.pole_map(st.examples.s5_layer_e5(), scores="last")
    single_pole = np.array([2.2351365154, 19.7013531066]) ** 2  # math.md §8 single-pole DT H∞, squared
    expected = [single_pole[0] / single_pole.sum(), 1.0]  # LAMP: s_(k) / Σ_{j≥k} s_(j)
    np.testing.assert_allclose(by_gid(ax, "poles")[0].get_array(), expected, rtol=1e-9)
    assert ax.figure.axes[-1].get_ylabel() == "LAST score (normalised per layer)"


def test_plan_scores_and_allocation_show_the_plan():
    from ssmtools.pruning import prune_plan

    model = st.examples.random_s5_model(n_layers=3, n_states=6, width=3, seed=4)
    plan = prune_plan(model, 0.5, "last", errors=False)
    ax = st.plot.plan_scores(plan)
    kept = sum(len(c.get_offsets()) for c in by_gid(ax, "kept-scores"))
    pruned = sum(len(c.get_offsets()) for c in by_gid(ax, "pruned-scores"))
    assert (kept, pruned) == (plan.n_kept, plan.n_removed) == (9, 9)
    assert by_gid(ax, "threshold")[0].get_ydata()[0] == pytest.approx(plan.threshold)
    pruned_values = np.concatenate([c.get_offsets()[:, 1] for c in by_gid(ax, "pruned-scores")])
    assert pruned_values.max() == pytest.approx(plan.threshold)  # "exact" allocation: top removed score
    random = prune_plan(model, 0.5, "random", errors=False)
    ax = st.plot.plan_allocation({"last": plan, "random": random})
    totals, last_bars, random_bars = ax.containers
    assert [b.get_height() for b in totals] == [6, 6, 6]
    assert [b.get_height() for b in last_bars] == [layer.n_kept for layer in plan.layers]
    assert [b.get_height() for b in random_bars] == [layer.n_kept for layer in random.layers]
    with pytest.raises(TypeError, match="expected a PruningPlan"):
        st.plot.plan_allocation([plan])


def test_bode_continuous_time_on_a_given_grid_matches_python_control():
    sys = random_system(8, n=3, m=2, p=2, dt=0.0, with_d=False, min_margin=0.05)
    omega = np.geomspace(1e-2, 1e2, 50)
    fig = st.plot.bode(sys, output_index=1, input_index=1, omega=omega, mark_peak=False)
    ax_mag, ax_phase = fig.axes
    np.testing.assert_array_equal(ax_mag.lines[0].get_xdata(), omega)
    response = np.array([sys.to_control()(1j * w)[1, 1] for w in omega])
    np.testing.assert_allclose(ax_mag.lines[0].get_ydata(), 20 * np.log10(np.abs(response)), rtol=1e-9)
    assert ax_phase.get_xlabel() == "frequency ω (rad/s)" and by_gid(ax_mag, "nyquist") == []
    with pytest.raises(ValueError, match="axes must be a pair"):
        st.plot.bode(sys, axes=[ax_mag])


def test_sigma_of_a_bidirectional_layer_is_the_two_sided_response():
    rng = np.random.default_rng(11)
    n, h = 3, 2
    poles = 0.85 * np.exp(1j * rng.uniform(0.2, 2.5, n))
    B = rng.standard_normal((n, h)) + 1j * rng.standard_normal((n, h))
    C1, C2 = (rng.standard_normal((h, n)) + 1j * rng.standard_normal((h, n)) for _ in range(2))
    system = DiagonalSSM(poles, B, C1, np.diag([0.3, -0.1]), dt=True, output="real", state_includes_input=True)
    layer = st.SSMLayer("bi", st.BidirectionalSSM(system, C2))
    ax = st.plot.sigma({"bi": layer}, db=False)
    omega = ax.lines[0].get_xdata()[::60]
    # reference from the definition: two-sided impulse response h_0 = Re(C1B + C2B) + D, h_k = Re(C1Λ^kB),
    # h_{-k} = Re(C2Λ^kB) (k ≥ 1), summed as a DTFT (|λ| = 0.85: 300 terms reach 1e-21)
    k = np.arange(1, 300)
    powers = poles[None, :] ** k[:, None]  # (K, n)
    forward = np.einsum("pn,kn,nm->kpm", C1, powers, B).real
    backward = np.einsum("pn,kn,nm->kpm", C2, powers, B).real
    h0 = ((C1 + C2) @ B).real + system.D

    def two_sided(frequencies):
        return np.stack(
            [
                h0
                + np.einsum("kpm,k->pm", forward, np.exp(-1j * w * k))
                + np.einsum("kpm,k->pm", backward, np.exp(1j * w * k))
                for w in frequencies
            ]
        )

    response = two_sided(omega)
    expected = np.linalg.svd(response, compute_uv=False)[:, 0]
    np.testing.assert_allclose(ax.lines[0].get_ydata()[::60], expected, rtol=1e-10)
    (marker,) = by_gid(ax, "hinf-peak")
    sweep = ax.lines[0].get_ydata().max()
    assert sweep <= marker.get_ydata()[0] * (1 + 1e-9) and sweep >= marker.get_ydata()[0] * (1 - 1e-3)
    assert "L∞" in marker.get_label()
    fig = st.plot.bode({"bi": layer}, output_index=1, input_index=0)
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(
        10 ** (line.get_ydata()[::60] / 20), np.abs(two_sided(line.get_xdata()[::60])[:, 1, 0]), rtol=1e-10
    )


# ------------------------------------------------------------------------ SSM pole maps, legends, unstable marks
def test_pole_margin_view_plots_angle_against_the_exact_distance_to_the_circle():
    import mpmath

    mpmath.mp.dps = 50
    # poles crowding the circle as trained SSMs do, one within 1e-14 of it (plain 1 - abs(λ) keeps ~2 digits there)
    radii, angles = np.array([0.95, 0.999, 0.9999, 1 - 1e-14]), np.array([0.3, -1.2, 2.9, 0.01])
    poles = radii * np.exp(1j * angles)
    sys = DiagonalSSM(poles, np.ones((4, 1)), np.ones((1, 4)), dt=True)
    ax = st.plot.pole_map(sys, scores="hinf", view="margin")
    (drawn,) = by_gid(ax, "poles")
    exact = [float(1 - mpmath.sqrt(mpmath.mpf(p.real) ** 2 + mpmath.mpf(p.imag) ** 2)) for p in poles]
    np.testing.assert_allclose(drawn.get_offsets()[:, 0], np.angle(poles), rtol=1e-15)
    np.testing.assert_allclose(drawn.get_offsets()[:, 1], exact, rtol=1e-12)
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "distance to the unit circle 1 − |λ|"
    assert not by_gid(ax, "unstable-poles")


@pytest.mark.parametrize("view", ["plane", "margin"])
def test_pole_maps_ring_unstable_and_marginal_states(view):
    poles = np.array([0.9 * np.exp(0.5j), 1.0 + 0j, 1.01 * np.exp(-2j)])  # stable, marginal, unstable
    sys = DiagonalSSM(poles, np.ones((3, 1)), np.ones((1, 3)), dt=True)
    ax = st.plot.pole_map(sys, view=view)
    (ring,) = by_gid(ax, "unstable-poles")
    np.testing.assert_allclose(ring.get_offsets()[:, 0], (poles[1:].real if view == "plane" else np.angle(poles[1:])))
    assert "unstable/marginal, |λ| ≥ 1 (2)" in [t.get_text() for t in ax.get_legend().get_texts()]
    if view == "margin":  # drawn on a line below every stable state
        (line,) = by_gid(ax, "instability-line")
        floor = line.get_ydata()[0]
        assert np.all(ring.get_offsets()[:, 1] == floor) and floor < 0.1


def test_sigma_legend_states_the_norm_in_db_and_stays_outside_with_several_layers():
    sys = st.examples.s5_layer_e5()
    value, _ = linfnorm(sys)
    (marker,) = by_gid(st.plot.sigma(sys), "hinf-peak")
    assert marker.get_label().startswith(f"‖G‖∞ = {20 * np.log10(value):.4g} dB ({value:.4g})")
    (marker,) = by_gid(st.plot.sigma(sys, db=False), "hinf-peak")
    assert marker.get_label().startswith(f"‖G‖∞ = {value:.4g} at")
    ax = st.plot.sigma({"a": sys, "b": random_system(2, n=3, m=2, p=2)})
    plt.gcf().canvas.draw()
    legend_box, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend_box.x0 >= axes_box.x1  # right of the axes: covers no curve


def test_sigma_and_bode_label_unstable_responses():
    sys = DiagonalSSM(np.array([0.5, 1.05]), np.ones((2, 1)), np.ones((1, 2)), dt=True)
    ax = st.plot.sigma({"bad": sys})
    (curve,) = by_gid(ax, "unstable-response")
    assert curve.get_label() == "bad (unstable: ‖G‖∞ = ∞)" and not by_gid(ax, "hinf-peak")
    fig = st.plot.bode({"bad": sys})
    assert fig.axes[0].lines[0].get_label() == "bad (unstable: ‖G‖∞ = ∞)"


def test_bode_defaults_to_the_channel_that_attains_the_peak():
    sys = random_system(7, n=5, m=3, p=2, with_d=False)
    value, peak = linfnorm(sys)
    gains = np.abs(sys.to_control()(np.exp(1j * peak)))  # python-control's evaluation at the AB13DD peak
    i, j = np.unravel_index(np.argmax(gains), gains.shape)
    fig = st.plot.bode(sys)
    assert fig.axes[0].get_ylabel() == f"|G_{i}{j}| (dB)"
    (marker,) = by_gid(fig.axes[0], "hinf-peak")
    assert marker.get_ydata()[0] == pytest.approx(20 * np.log10(gains[i, j]), rel=1e-6)

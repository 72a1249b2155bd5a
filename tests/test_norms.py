"""Exact norms against independent references: SLICOT via python-control, scipy Lyapunov solvers,
simulation, dense frequency sweeps, and the worked examples of math.md."""

from __future__ import annotations

import control
import numpy as np
import pytest
import scipy.linalg
import slycot

from ssmtools import (
    DiagonalSSM,
    OptionError,
    UnstableSystemWarning,
    freqresp,
    gramians,
    h2_norm,
    hankel_singular_values,
    hinf_norm,
    hinf_result,
    state_h2_norms,
    state_hinf_norms,
    state_hinf_result,
)
from ssmtools.examples import s5_layer_e5
from ssmtools.systems import augmented_realization, real_realization

from .conftest import SYSTEM_CASES, case_id, impulse_response, random_system, sweep_sigma_max

CASES = SYSTEM_CASES


def single_state(sys: DiagonalSSM, i: int) -> DiagonalSSM:
    """The one-state subsystem c_i b_iᵀ/(z − λ_i), without D."""
    return sys.replace(poles=sys.poles[..., i : i + 1], B=sys.B[..., i : i + 1, :], C=sys.C[..., :, i : i + 1], D=None)


def ab13dd(sys: DiagonalSSM) -> float:
    """python-control's wrapper of SLICOT AB13DD on the realization, with a tight tolerance."""
    value, _ = control.linfnorm(sys.to_control(), tol=1e-13)
    return float(value)


def ab13bd(sys: DiagonalSSM) -> float:
    """SLICOT AB13BD called directly on the realization (python-control's control.norm returns inf
    for discrete poles within ~1e-5 of the unit circle)."""
    plant = sys.to_control()
    n, m, p = plant.A.shape[0], plant.B.shape[1], plant.C.shape[0]
    value = slycot.ab13bd(
        "D" if sys.is_discrete else "C", "H", n, m, p, plant.A.copy(), plant.B.copy(), plant.C.copy(), plant.D.copy()
    )
    return float(value) if sys.output == "real" else float(value) / np.sqrt(2.0)  # realified complex signals


# ----------------------------------------------------------------------------- worked examples
def test_e5_layer_norms():
    layer = s5_layer_e5()
    result = hinf_result(layer)
    value, peak = result.value, result.peak
    assert value == pytest.approx(19.7336337552, rel=1e-10)
    assert peak == pytest.approx(0.5998007, abs=1e-6)
    assert h2_norm(layer) == pytest.approx(2.8873853531, rel=1e-10)
    no_d = layer.replace(D=None)
    assert hinf_norm(no_d) == pytest.approx(19.7762614005, rel=1e-10)
    assert h2_norm(no_d) == pytest.approx(2.8573936254, rel=1e-10)
    np.testing.assert_allclose(state_hinf_norms(layer), [2.4562394155, 19.7013531066], rtol=1e-10)
    np.testing.assert_allclose(state_h2_norms(layer) ** 2, [0.2996875085, 7.7626075327], rtol=1e-9)
    np.testing.assert_allclose(
        hankel_singular_values(layer), [9.98072663, 9.94992766, 1.27340793, 0.80105669], rtol=1e-8
    )


def test_e5_feeding_unshifted_realization_to_ab13dd_is_the_documented_bug():
    """math.md §1.1: (Λ̄, B̄, C̃, D) gives 19.73049, not 19.73363 — our standard form must avoid it."""
    A, B, C, D = real_realization(s5_layer_e5())
    wrong, _ = control.linfnorm(control.ss(A, B, C, D, True), tol=1e-13)
    assert wrong == pytest.approx(19.73049, abs=1e-5)
    assert hinf_norm(s5_layer_e5()) == pytest.approx(19.73363, abs=1e-5)


def test_e1_single_pole_complex_output():
    lam = 0.8 * np.exp(1j * np.pi / 3)
    sys = DiagonalSSM([lam], [[2, -1 + 1j]], [[1], [2j]], dt=True, output="complex")
    result = state_hinf_result(sys)
    values, peaks = result.value, result.peak
    assert values[0] == pytest.approx(27.386127875258, rel=1e-12)
    assert peaks[0] == pytest.approx(np.pi / 3, rel=1e-12)
    assert state_h2_norms(sys)[0] ** 2 == pytest.approx(83.333333333333, rel=1e-12)
    assert hinf_norm(sys) == pytest.approx(27.386127875258, rel=1e-9)


@pytest.mark.parametrize(
    "c, b, hinf, peak, h2sq",
    [
        ([1, 1j], [1, 2], 31.7100133354, 0.7853674, 105.2631578947),  # E2
        ([1, 0.5], [1, 1 + 0.5j], 17.1918174488, 0.7915716, 31.0242595953),  # E3
    ],
)
def test_e2_e3_conjugate_pairs(c, b, hinf, peak, h2sq):
    lam = 0.9 * np.exp(1j * np.pi / 4)
    # a 2Re pair is output="real" with C doubled
    sys = DiagonalSSM([lam], np.array([b]), 2 * np.array(c)[:, None], dt=True, output="real")
    result = state_hinf_result(sys)
    values, peaks = result.value, result.peak
    assert values[0] == pytest.approx(hinf, rel=1e-10)
    assert peaks[0] == pytest.approx(peak, abs=1e-6)
    assert state_h2_norms(sys)[0] ** 2 == pytest.approx(h2sq, rel=1e-10)


def test_e4_siso_pair_closed_form():
    """math.md §3.2 SISO closed form, evaluated independently in the test."""
    g, lam = 1 + 2j, 0.9 * np.exp(1j * np.pi / 4)
    sys = DiagonalSSM([lam], [[1.0]], [[2 * g]], dt=True, output="real")
    r, theta = abs(lam), np.angle(lam)
    a1, a2 = 2 * g.real, 2 * (g * np.conj(lam)).real
    p_, q_ = a1**2 + a2**2, 2 * a1 * a2
    gamma0, beta0, alpha0 = (
        4 * r**2,
        -4 * r * (1 + r**2) * np.cos(theta),
        (1 + r**2) ** 2 - 4 * r**2 * np.sin(theta) ** 2,
    )
    roots = np.roots([q_ * gamma0, -2 * p_ * gamma0, -(q_ * alpha0 + p_ * beta0)])
    xs = [-1.0, 1.0] + [x.real for x in roots if abs(x.imag) < 1e-12 and -1 <= x.real <= 1]
    closed_form = max(np.sqrt((p_ - q_ * x) / (alpha0 + beta0 * x + gamma0 * x**2)) for x in xs)
    assert closed_form == pytest.approx(20.7369202931, rel=1e-10)
    assert state_hinf_norms(sys)[0] == pytest.approx(closed_form, rel=1e-12)


# ----------------------------------------------------------------------------- layer H∞
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hinf_norm_matches_ab13dd_and_is_attained(case, seed):
    sys = random_system(seed, n=6, m=2, p=3, with_d=not (case["dt"] == 0 and seed == 0), **case)
    result = hinf_result(sys)
    value, peak = result.value, result.peak
    assert value == pytest.approx(ab13dd(sys), rel=1e-8)
    # attained: σ_max at the reported frequency (python-control's evaluation) equals the norm
    assert sweep_sigma_max(sys, np.array([peak]))[0] == pytest.approx(value, rel=1e-8)
    # upper: no frequency of a dense grid (plus each pole's resonance) exceeds it
    grid = np.linspace(0, np.pi if sys.is_discrete else 20.0, 400)
    resonances = np.abs(np.angle(sys.poles)) if sys.is_discrete else np.abs(sys.poles.imag)
    assert np.max(sweep_sigma_max(sys, np.concatenate([grid, resonances]))) <= value * (1 + 1e-9)


def test_hinf_norm_batched_equals_elementwise():
    sys = random_system(3, n=5, batch=(2, 3), state_includes_input=True)
    values = hinf_norm(sys)
    assert values.shape == (2, 3)
    for index in np.ndindex(2, 3):
        assert values[index] == pytest.approx(ab13dd(sys[index]), rel=1e-8)


def test_hinf_near_unit_circle_single_state():
    """|λ| = 1 − 1e-9: python-control's control.norm (tol 1e-6) misreports this; the exact value is s/(1 − r)."""
    lam = (1 - 1e-9) * np.exp(0.7j)
    sys = DiagonalSSM([lam], [[3.0, 4.0]], [[1.0], [0.0]], dt=True, output="complex")
    assert hinf_norm(sys) == pytest.approx(5.0 / 1e-9, rel=1e-6)
    # 1 − |λ| loses ~7 digits to round-off at this distance: that is the conditioning, not the method
    assert state_hinf_norms(sys)[0] == pytest.approx(5.0 / (1 - abs(lam)), rel=1e-6)


def test_state_hinf_near_unit_circle_pair_matches_ab13dd():
    lam = (1 - 1e-9) * np.exp(0.7j)
    sys = DiagonalSSM([lam], [[1.0, 2j]], [[1.0 + 1j], [0.5]], dt=True, output="real")
    expected, _ = control.linfnorm(sys.to_control(), tol=1e-13)
    assert state_hinf_norms(sys)[0] == pytest.approx(expected, rel=1e-6)


def test_hinf_tiny_system_n1():
    sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], [[0.25]], dt=True, output="real", state_includes_input=True)
    # G(z) = z/(z − 0.5) + 0.25 is largest at z = 1: 2 + 0.25
    assert hinf_norm(sys) == pytest.approx(2.25, rel=1e-12)
    assert h2_norm(sys) ** 2 == pytest.approx(sum(abs(h) ** 2 for h in impulse_response(sys, 80).ravel()), rel=1e-12)


def test_hinf_larger_s5_layer_attained_and_upper_bound():
    """A real-output S5-style layer with 2·64 = 128 real states, D and the scan convention."""
    sys = random_system(9, n=64, m=16, p=16, state_includes_input=True, min_margin=1e-4)
    result = hinf_result(sys)
    value, peak = result.value, result.peak
    assert sweep_sigma_max(sys, np.array([peak]))[0] == pytest.approx(value, rel=1e-8)
    angles = np.abs(np.angle(sys.poles))
    margin = sys.stability_margin
    local = np.clip((angles[:, None] + margin[:, None] * np.linspace(-3, 3, 13)).ravel(), 0, np.pi)
    assert np.max(sweep_sigma_max(sys, np.concatenate([local, np.linspace(0, np.pi, 200)]))) <= value * (1 + 1e-9)


# ----------------------------------------------------------------------------- layer H2
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_h2_norm_matches_ab13bd(case):
    sys = random_system(4, n=7, m=2, p=3, with_d=case["dt"] != 0, **case)
    assert h2_norm(sys) == pytest.approx(ab13bd(sys), rel=1e-10)
    assert h2_norm(sys, method="slycot") == pytest.approx(h2_norm(sys), rel=1e-10)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_h2_norm_equals_impulse_response_energy(output):
    sys = random_system(5, n=4, m=2, p=2, output=output, state_includes_input=True, min_margin=0.3)
    h = impulse_response(sys, 200)
    assert h2_norm(sys) ** 2 == pytest.approx(np.sum(np.abs(h) ** 2), rel=1e-12)


def test_h2_continuous_time_with_feedthrough_is_infinite():
    sys = random_system(6, dt=0, with_d=True)
    assert h2_norm(sys) == np.inf


def test_h2_large_layer_matches_ab13bd():
    sys = random_system(7, n=128, m=8, p=8, state_includes_input=True)  # 256 real states
    assert h2_norm(sys) == pytest.approx(ab13bd(sys), rel=1e-10)


# ----------------------------------------------------------------------------- per-state norms
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_state_norms_match_slycot_per_state(case):
    sys = random_system(8, n=12, m=3, p=2, **case)
    result = state_hinf_result(sys)
    hinf_values, peaks = result.value, result.peak
    h2_values = state_h2_norms(sys)
    for i in range(sys.n_states):
        sub = single_state(sys, i)
        assert hinf_values[i] == pytest.approx(ab13dd(sub), rel=1e-9)
        assert h2_values[i] == pytest.approx(ab13bd(sub), rel=1e-10)
        assert sweep_sigma_max(sub, np.array([peaks[i]]))[0] == pytest.approx(hinf_values[i], rel=1e-9)


def test_state_norms_sharp_and_near_boundary_pairs():
    """Adversarial pairs: damping from 1e-9 to 0.5, angles at 0, tiny, π/2 and near π."""
    margins = np.array([1e-9, 1e-7, 1e-5, 1e-3, 0.1, 0.5])
    angles = np.array([0.0, 1e-6, 1e-3, np.pi / 2, np.pi - 1e-4, np.pi])
    lam = ((1 - margins)[:, None] * np.exp(1j * angles)[None, :]).ravel()
    rng = np.random.default_rng(0)
    n = lam.size
    sys = DiagonalSSM(
        lam,
        rng.standard_normal((n, 2)) + 1j * rng.standard_normal((n, 2)),
        rng.standard_normal((2, n)) + 1j * rng.standard_normal((2, n)),
        dt=True,
        output="real",
    )
    values = state_hinf_norms(sys)
    for i in range(n):
        assert values[i] == pytest.approx(ab13dd(single_state(sys, i)), rel=1e-6), (lam[i], i)


def test_state_norms_are_batched():
    sys = random_system(10, n=5, batch=(3,))
    np.testing.assert_allclose(state_hinf_norms(sys)[1], state_hinf_norms(sys[1]), rtol=1e-14)
    assert state_h2_norms(sys).shape == (3, 5)


def test_pair_can_vanish_and_reach_twice_single_pole():
    """math.md §3.2: λ real, b real, c imaginary → 0; λ, c, b real → 2s/(1−r)."""
    zero = DiagonalSSM([0.5], [[1.0, 2.0]], [[1j], [2j]], dt=True, output="real")
    assert state_hinf_norms(zero)[0] == pytest.approx(0.0, abs=1e-12)
    # H2² = 2s²/(1 − r²) + 2Re(cross) cancels exactly here: it is accurate to eps·s²/(1 − r²) in H2²
    assert state_h2_norms(zero)[0] ** 2 <= 1e-14 * 100 / 0.75
    full = DiagonalSSM([0.5], [[1.0, 2.0]], [[2.0], [4.0]], dt=True, output="real")
    s = np.sqrt(5) * np.sqrt(20)
    assert state_hinf_norms(full)[0] == pytest.approx(0.5 * 2 * s / 0.5, rel=1e-12)


# ----------------------------------------------------------------------------- Gramians and HSVs
@pytest.mark.parametrize("dt", [True, 0])
@pytest.mark.parametrize("output", ["real", "complex"])
def test_gramians_match_scipy_lyapunov(dt, output):
    sys = random_system(11, n=6, dt=dt, output=output, state_includes_input=bool(dt))
    P, Q = gramians(sys)
    lam, B, C = augmented_realization(sys)
    A = np.diag(lam)
    if dt:
        P_ref = scipy.linalg.solve_discrete_lyapunov(A, B @ B.conj().T)
        Q_ref = scipy.linalg.solve_discrete_lyapunov(A.conj().T, C.conj().T @ C)
    else:
        P_ref = scipy.linalg.solve_continuous_lyapunov(A, -B @ B.conj().T)
        Q_ref = scipy.linalg.solve_continuous_lyapunov(A.conj().T, -C.conj().T @ C)
    np.testing.assert_allclose(P, P_ref, rtol=1e-10, atol=1e-12 * np.abs(P_ref).max())
    np.testing.assert_allclose(Q, Q_ref, rtol=1e-10, atol=1e-12 * np.abs(Q_ref).max())


@pytest.mark.parametrize("dt", [True, 0])
def test_hankel_singular_values_match_slycot_ab09ad(dt):
    sys = random_system(12, n=8, dt=dt, output="real", state_includes_input=bool(dt))
    A, B, C, _ = real_realization(sys)  # strictly proper part (math.md §4.4)
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    *_, hsv_ref = slycot.ab09ad("D" if dt else "C", "B", "N", n, m, p, A.copy(), B.copy(), C.copy(), nr=n, tol=0.0)
    np.testing.assert_allclose(
        hankel_singular_values(sys), np.sort(hsv_ref)[::-1], rtol=1e-8, atol=1e-12 * hsv_ref.max()
    )


def test_gramians_of_unstable_system_raise():
    sys = DiagonalSSM([1.2], [[1.0]], [[1.0]], dt=True)
    with pytest.raises(ValueError, match="only for asymptotically stable systems"):
        gramians(sys)


# ----------------------------------------------------------------------------- unstable systems
@pytest.mark.parametrize("pole, dt", [(1.0, True), (1.01j, True), (0.0 + 1j, 0), (0.2, 0)])
def test_unstable_or_marginal_gives_inf_and_warns(pole, dt):
    sys = DiagonalSSM([0.5 if dt else -1.0, pole], np.ones((2, 1)), np.ones((1, 2)), dt=dt)
    with pytest.warns(UnstableSystemWarning, match="not asymptotically stable"):
        assert hinf_norm(sys) == np.inf
    with pytest.warns(UnstableSystemWarning):
        assert h2_norm(sys) == np.inf
    with pytest.warns(UnstableSystemWarning):
        values = state_hinf_norms(sys)
    assert np.isfinite(values[0]) and values[1] == np.inf
    with pytest.warns(UnstableSystemWarning):
        assert state_h2_norms(sys)[1] == np.inf


def test_batched_unstable_only_masks_affected_elements():
    sys = DiagonalSSM([[0.5, 0.2], [0.5, 1.5]], np.ones((2, 1)), np.ones((1, 2)), dt=True, output="real")
    with pytest.warns(UnstableSystemWarning, match="1 of 2 systems"):
        values = h2_norm(sys)
    assert np.isfinite(values[0]) and values[1] == np.inf


def test_invalid_method_and_tolerance():
    sys = random_system(0)
    with pytest.raises(ValueError, match="method='fast' is not valid"):
        h2_norm(sys, method="fast")
    with pytest.raises(ValueError, match="tol=2 must lie in"):
        hinf_norm(sys, method="slycot", tol=2)


# ----------------------------------------------------------------------------- up to 256 states
def test_256_state_real_output_layer_all_norms():
    """S5-style layer: 128 stored pairs = 256 real states, H = 32, D ≠ 0, state includes input."""
    sys = random_system(21, n=128, m=32, p=32, state_includes_input=True, min_margin=1e-4)
    result = hinf_result(sys)
    value, peak = result.value, result.peak
    assert value == pytest.approx(ab13dd(sys), rel=1e-8)
    assert sweep_sigma_max(sys, np.array([peak]))[0] == pytest.approx(value, rel=1e-8)
    assert h2_norm(sys) == pytest.approx(ab13bd(sys), rel=1e-10)
    hinf_values, h2_values = state_hinf_norms(sys), state_h2_norms(sys)
    for i in range(0, sys.n_states, 8):
        sub = single_state(sys, i)
        assert hinf_values[i] == pytest.approx(ab13dd(sub), rel=1e-8)
        assert h2_values[i] == pytest.approx(ab13bd(sub), rel=1e-9)


def test_256_state_complex_output_state_norms():
    sys = random_system(22, n=256, m=4, p=4, output="complex", min_margin=1e-6)
    hinf_values, h2_values = state_hinf_norms(sys), state_h2_norms(sys)
    for i in range(0, sys.n_states, 16):
        sub = single_state(sys, i)
        assert hinf_values[i] == pytest.approx(ab13dd(sub), rel=1e-8)
        assert h2_values[i] == pytest.approx(ab13bd(sub), rel=1e-9)


def test_slycot_result_is_cross_checked_against_attained_values(monkeypatch):
    """AB13DD can return ≈ σ_max(D) on a feedthrough-dominated CT system at tight tolerances (its documented
    weakness, simulated here): the value is cross-checked at the pole frequencies and the attained peak wins."""
    from ssmtools._backends import slycot as slycot_backend

    sys = DiagonalSSM([-1e-3 + 2.0j], [[1e-2, 0.0]], [[1e-2], [0.0]], np.diag([2.0, 1.0]), dt=0)
    truth = hinf_result(sys, method="diagonal")

    def feedthrough_only(A, B, C, D, *, discrete, tol, compress=True):
        return float(np.linalg.norm(D, 2)), 0.0

    monkeypatch.setattr(slycot_backend, "linf_norm", feedthrough_only)
    result = hinf_result(sys, method="slycot")
    assert result.value == pytest.approx(float(truth.value), rel=1e-9) and result.peak == pytest.approx(2.0, abs=1e-9)


def test_full_rank_diagonal_feedthrough_skips_a_compression_that_cannot_reduce():
    """A square diagonal D without zeros gives [C, D] and [B; D]ᵀ full rank: compress_io leaves the system as it
    is, so skipping it (what _slycot_linf does for such layers) cannot change AB13DD's input."""
    from ssmtools._backends import slycot as slycot_backend

    rng = np.random.default_rng(3)
    A = -np.eye(6) + 0.1 * rng.standard_normal((6, 6))
    B, C = rng.standard_normal((6, 3)), rng.standard_normal((3, 6))
    D = np.diag([1.0, -2.0, 0.5])
    assert slycot_backend.full_rank_diagonal(D)
    assert not slycot_backend.full_rank_diagonal(np.diag([1.0, 0.0, 0.5]))
    assert not slycot_backend.full_rank_diagonal(D + np.triu(np.ones((3, 3)), 1))
    assert not slycot_backend.full_rank_diagonal(np.ones((3, 2)))
    compressed = slycot_backend.compress_io(A, B, C, D)
    assert compressed is not None and compressed[1].shape[1] == 3 and compressed[2].shape[0] == 3
    plain = slycot_backend.linf_norm(A, B, C, D, discrete=False, tol=1e-10, compress=False)
    reduced = slycot_backend.linf_norm(A, B, C, D, discrete=False, tol=1e-10)
    assert plain[0] == pytest.approx(reduced[0], rel=1e-9)


def test_slycot_peak_of_a_complex_system_attains_at_negative_frequency():
    sys = DiagonalSSM([0.95 * np.exp(-1.2j), 0.5], [[1.0], [0.3]], [[1.0, 1.0]], dt=True)  # complex output
    result = hinf_result(sys, method="slycot")
    assert result.peak < 0
    attained = np.abs(freqresp(sys, [result.peak])[0, 0, 0])
    assert attained == pytest.approx(float(result.value), rel=1e-9)


def test_slicot_failures_become_library_errors(monkeypatch):
    import slycot as slycot_module

    from ssmtools import ArgumentError

    def fail(*args, **kwargs):
        raise slycot_module.exceptions.SlycotArithmeticError("The computed value did not converge", 2)

    monkeypatch.setattr(slycot_module, "ab13dd", fail)
    with pytest.raises(ArgumentError, match="SLICOT AB13DD failed .* use method='diagonal'"):
        hinf_norm(s5_layer_e5(), method="slycot")


def test_peak_frequency_in_rad_per_second_as_control_linfnorm_reports_it():
    """``frequency_unit="rad/s"`` divides a sampled system's peak by dt, as python-control's linfnorm does."""
    rng = np.random.default_rng(11)
    A = rng.standard_normal((4, 4))
    A = A / (1.3 * np.max(np.abs(np.linalg.eigvals(A))))
    plant = control.ss(A, rng.standard_normal((4, 2)), rng.standard_normal((2, 4)), 0, 0.05)
    sys = DiagonalSSM.from_control(plant)
    value, peak = control.linfnorm(plant, tol=1e-12)
    result = hinf_result(sys, frequency_unit="rad/s")
    assert result.value == pytest.approx(value, rel=1e-9)
    assert result.peak == pytest.approx(peak, rel=1e-5) and result.peak == hinf_result(sys).peak / 0.05
    per_state = state_hinf_result(sys, frequency_unit="rad/s")
    np.testing.assert_allclose(per_state.peak, state_hinf_result(sys).peak / 0.05)
    ct = DiagonalSSM([-0.1 + 2j], [[1.0]], [[1.0]], dt=0)
    assert hinf_result(ct, frequency_unit="rad/s").peak == hinf_result(ct).peak  # already rad/s
    with pytest.raises(OptionError, match="dt=True"):
        hinf_result(s5_layer_e5(), frequency_unit="rad/s")
    with pytest.raises(OptionError, match="frequency_unit"):
        hinf_result(sys, frequency_unit="Hz")

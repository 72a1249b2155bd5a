"""Modal and balanced truncation: checked against SLICOT AB09AD/AB09ND called directly, scipy Lyapunov
solvers, python-control (CT only), AB13DD on the error system and direct transfer-function evaluation."""

from __future__ import annotations

import control
import numpy as np
import pytest
import scipy.linalg
import slycot
from hypothesis import given, settings, strategies as st

from ssmtools import (
    DiagonalSSM,
    ReductionResult,
    ShapeError,
    UnstableSystemWarning,
    balanced_truncation,
    freqresp,
    gramian_factors,
    modal_truncation,
    state_hinf_norms,
)
from ssmtools.examples import random_s5_model, s5_layer_e5
from ssmtools.reduction import _real_factor, _rediagonalize
from ssmtools.systems import real_realization

from .conftest import random_system
from .test_norm_properties import random_systems

OMEGA_DT = np.linspace(0.0, np.pi, 97)
OMEGA_CT = np.concatenate([np.linspace(0.0, 6.0, 80), [10.0, 50.0]])
CASES = [(dt, output) for dt in (True, 0) for output in ("real", "complex")]


def omega_for(sys: DiagonalSSM) -> np.ndarray:
    return OMEGA_DT if sys.is_discrete else OMEGA_CT


def dense_response(A, B, C, D, omega, *, discrete: bool, state_includes_input: bool = False) -> np.ndarray:
    """[z]·C(zI − A)⁻¹B + D evaluated directly, shape (k, p, m)."""
    z = np.exp(1j * omega) if discrete else 1j * omega
    n = A.shape[0]
    G = np.stack([C @ np.linalg.solve(zk * np.eye(n) - A, B) for zk in z])
    if state_includes_input:
        G = G * z[:, None, None]
    return G + D


def complexify(G: np.ndarray, p: int, m: int) -> np.ndarray:
    """Complex response from the realified one (inputs [Re u; Im u], outputs [Re y; Im y])."""
    return G[..., :p, :m] + 1j * G[..., p:, :m]


def ab09ad(sys: DiagonalSSM, nr: int, *, job: str = "B"):
    """SLICOT AB09AD on the real realization of the strictly proper part: (nr, Ar, Br, Cr, hsv)."""
    A, B, C, _ = real_realization(sys)
    return slycot.ab09ad("D" if sys.is_discrete else "C", job, "N", A.shape[0], B.shape[1], C.shape[0], A, B, C, nr=nr)


def reference_reduced_response(sys: DiagonalSSM, nr: int, omega: np.ndarray) -> np.ndarray:
    """AB09AD's reduced model in the convention of ``sys`` (z·G_sp,r + D), complex response (k, p, m)."""
    _, Ar, Br, Cr, _ = ab09ad(sys, nr)
    _, _, _, D_real = real_realization(sys)
    G = dense_response(
        Ar, Br, Cr, D_real, omega, discrete=sys.is_discrete, state_includes_input=sys.state_includes_input
    )
    return G if sys.output == "real" else complexify(G, sys.n_outputs, sys.n_inputs)


def real_order(sys: DiagonalSSM, r: int) -> int:
    """AB09AD order for our order r: the realified complex system has every HSV twice."""
    return r if sys.output == "real" else 2 * r


def assert_response_close(G, G_ref, rtol=1e-8):
    scale = np.max(np.abs(G_ref))
    assert np.max(np.abs(G - G_ref)) <= rtol * scale


def reference_hinf(sys: DiagonalSSM, reduced: DiagonalSSM) -> float:
    """‖G − G_r‖∞ from python-control's own realizations (AB13DD inside control.linfnorm)."""
    value, _ = control.linfnorm(sys.to_control() - reduced.to_control(), tol=1e-12)
    return float(value)


# ---------------------------------------------------------------------------------------------- balanced truncation
@pytest.mark.parametrize("dt, output", CASES)
def test_hsv_match_ab09ad(dt, output):
    sys = random_system(3, n=8, m=2, p=3, dt=dt, output=output, min_margin=1e-2)
    result = balanced_truncation(sys, order=2)
    *_, hsv_ref = ab09ad(sys, real_order(sys, 2))
    ours = result.hsv if output == "real" else np.repeat(result.hsv, 2)
    np.testing.assert_allclose(ours, hsv_ref, rtol=1e-8, atol=1e-13 * hsv_ref[0])
    assert result.hsv.shape == ((2 * 8,) if output == "real" else (8,))


def test_hsv_of_128_real_state_s5_layer_match_ab09ad_elementwise():
    layer = random_s5_model(n_layers=1, n_states=64, width=8, seed=1)["layers_0"]
    result = balanced_truncation(layer, order=32)
    *_, hsv_ref = ab09ad(layer, 32)
    np.testing.assert_allclose(result.hsv, hsv_ref, rtol=1e-8)


def test_e5_hsvs_match_math_md():
    result = balanced_truncation(s5_layer_e5(), order=4)
    np.testing.assert_allclose(result.hsv, [9.98072663, 9.94992766, 1.27340793, 0.80105669], rtol=1e-8)
    assert result.bound == 0.0


@pytest.mark.parametrize("dt", [True, 0])
def test_real_gramian_factors_match_scipy_lyapunov(dt):
    """The real factors balanced truncation uses (from the structured complex ones) reproduce scipy's Gramians."""
    sys = random_system(5, n=5, m=2, p=2, dt=dt, output="real")
    F_P, F_Q = gramian_factors(sys)
    L_P, L_Q = _real_factor(F_P, observability=False), _real_factor(F_Q, observability=True)
    assert L_P.dtype == L_Q.dtype == np.float64
    P, Q = L_P @ L_P.T, L_Q @ L_Q.T
    A, B, C, _ = real_realization(sys)
    if dt:
        P_ref = scipy.linalg.solve_discrete_lyapunov(A, B @ B.T)
        Q_ref = scipy.linalg.solve_discrete_lyapunov(A.T, C.T @ C)
    else:
        P_ref = scipy.linalg.solve_continuous_lyapunov(A, -B @ B.T)
        Q_ref = scipy.linalg.solve_continuous_lyapunov(A.T, -C.T @ C)
    np.testing.assert_allclose(P, P_ref, rtol=1e-9, atol=1e-11 * np.abs(P_ref).max())
    np.testing.assert_allclose(Q, Q_ref, rtol=1e-9, atol=1e-11 * np.abs(Q_ref).max())


@pytest.mark.parametrize(
    "dt, output, sii", [case + (False,) for case in CASES] + [(True, "real", True), (True, "complex", True)]
)  # the scan convention is DT only
def test_reduced_transfer_function_matches_ab09ad(dt, output, sii):
    sys = random_system(11, n=8, m=2, p=3, dt=dt, output=output, state_includes_input=sii, min_margin=1e-2)
    for r in (3, 6) if output == "real" else (2, 5):
        result = balanced_truncation(sys, order=r)
        reduced = result.system
        assert result.order == r
        assert (reduced.dt, reduced.output, reduced.state_includes_input) == (sys.dt, output, sii)
        np.testing.assert_array_equal(reduced.D, sys.D)
        assert np.all(reduced.is_stable)
        omega = omega_for(sys)
        assert_response_close(freqresp(reduced, omega), reference_reduced_response(sys, real_order(sys, r), omega))


@pytest.mark.parametrize("dt, output", CASES)
def test_error_bounds_hold_with_exact_error(dt, output):
    """σ_{r+1} ≤ ‖G − G_r‖∞ ≤ 2Σ_{j>r}σ_j; exact errors agree with python-control on G − G_r."""
    sys = random_system(21, n=6, m=2, p=2, dt=dt, output=output, with_d=True, min_margin=1e-2)
    for r in range(1, 6):
        result = balanced_truncation(sys, order=r, exact_error=True)
        hsv = result.hsv
        assert result.bound == pytest.approx(2 * np.sum(hsv[r:]), rel=1e-12)
        assert hsv[r] * (1 - 1e-8) <= result.error_hinf <= result.bound * (1 + 1e-8)
        assert result.error_hinf == pytest.approx(reference_hinf(sys, result.system), rel=1e-7)
        if dt:
            h2_ref = control.norm(sys.to_control() - result.system.to_control(), p=2)
            scale = 1.0 if output == "real" else np.sqrt(2.0)  # realified complex system: √2·‖G‖₂
            assert result.error_h2 == pytest.approx(h2_ref / scale, rel=1e-7)


@pytest.mark.parametrize("dt, output", CASES)
def test_spa_matches_ab09nd_and_dc_gain(dt, output):
    sys = random_system(31, n=6, m=2, p=3, dt=dt, output=output, with_d=True, min_margin=1e-2)
    r = 5 if output == "real" else 3
    result = balanced_truncation(sys, order=r, method="spa", exact_error=True)
    A, B, C, D = real_realization(sys)
    # job="N" (balancing-free SPA): SLICOT 5's square-root variant job="B" leaves T2/TI2 with TI2·T2 ≠ I, which
    # the discrete-time residualisation (I − A22)⁻¹ is not invariant to, so it misses the DC gain (see notes below)
    nr, Ar, Br, Cr, Dr, _, hsv = slycot.ab09nd(
        "D" if dt else "C",
        "N",
        "N",
        A.shape[0],
        B.shape[1],
        C.shape[0],
        A,
        B,
        C,
        D,
        alpha=1.0 if dt else 0.0,
        nr=real_order(sys, r),
    )
    omega = omega_for(sys)
    G_ref = dense_response(Ar, Br, Cr, Dr, omega, discrete=bool(dt))
    if output == "complex":
        G_ref = complexify(G_ref, sys.n_outputs, sys.n_inputs)
    assert_response_close(freqresp(result.system, omega), G_ref)
    np.testing.assert_allclose(result.hsv if output == "real" else np.repeat(result.hsv, 2), hsv, rtol=1e-8)
    np.testing.assert_allclose(freqresp(result.system, [0.0]), freqresp(sys, [0.0]), rtol=1e-9, atol=1e-10)
    assert result.hsv[r] * (1 - 1e-8) <= result.error_hinf <= result.bound * (1 + 1e-8)


def test_slycot_square_root_spa_misses_dc_gain_in_discrete_time():
    """Why the SPA reference above is AB09ND job="N": job="B" is not exact at z = 1 (SLICOT AB09BX scales only
    T1/TI1, and (I − A22)⁻¹ is not invariant to the unscaled TI2). Ours and job="N" match G(1)."""
    A, B, C, D = np.diag([0.5, -0.3]), np.array([[1.0], [1.0]]), np.array([[1.0, 0.2]]), np.zeros((1, 1))
    dc = C @ np.linalg.solve(np.eye(2) - A, B)
    gains = {}
    for job in "BN":
        _, Ar, Br, Cr, Dr, _, _ = slycot.ab09nd(
            "D", job, "N", 2, 1, 1, A.copy(), B.copy(), C.copy(), D.copy(), alpha=1.0, nr=1
        )
        gains[job] = (Cr @ np.linalg.solve(np.eye(1) - Ar, Br) + Dr)[0, 0]
    ours = balanced_truncation(DiagonalSSM([0.5, -0.3], B, C, dt=True), order=1, method="spa").system
    assert gains["N"] == pytest.approx(dc[0, 0], rel=1e-12)
    assert abs(gains["B"] - dc[0, 0]) > 1e-3
    assert freqresp(ours, [0.0])[0, 0, 0].real == pytest.approx(dc[0, 0], rel=1e-12)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_spa_of_scan_layers_is_the_spa_of_their_full_realisation(output):
    """SPA in the state-includes-input convention: the standard-form realisation (Λ, B, CΛ, D + out(CB)) reduced by
    SLICOT AB09ND (SPA, balancing-free) has the same transfer function, and the DC gain is kept exactly."""
    sys = random_system(12, n=5, m=2, p=2, dt=True, output=output, state_includes_input=True, min_margin=0.05)
    r = 4 if output == "real" else 3
    ours = balanced_truncation(sys, order=r, method="spa").system
    assert ours.state_includes_input
    np.testing.assert_allclose(freqresp(ours, [0.0]), freqresp(sys, [0.0]), rtol=1e-9, atol=1e-12)
    standard = sys.replace(
        C=sys.C * sys.poles, D=sys.D + (sys.C @ sys.B).real if output == "real" else sys.D + sys.C @ sys.B
    )
    standard = standard.replace(state_includes_input=False)
    A, B, C, D = real_realization(standard)
    nr, Ar, Br, Cr, Dr, _, _ = slycot.ab09nd(
        "D",
        "N",
        "N",
        A.shape[0],
        B.shape[1],
        C.shape[0],
        A.copy(),
        B.copy(),
        C.copy(),
        D.copy(),
        alpha=1.0,
        nr=r if output == "real" else 2 * r,
    )
    omega = np.linspace(0.1, 3.0, 9)
    reference = np.stack([Cr @ np.linalg.solve(np.exp(1j * w) * np.eye(nr) - Ar, Br) + Dr for w in omega])
    ours_real = freqresp(ours, omega)
    if output == "complex":  # the realified reference stacks [Re; Im] of inputs and outputs
        p, m = sys.n_outputs, sys.n_inputs
        reference = reference[:, :p, :m] + 1j * reference[:, p:, :m]
    np.testing.assert_allclose(ours_real, reference, rtol=1e-7, atol=1e-9)


def test_continuous_time_matches_python_control_balred():
    """python-control's balanced_reduction is a valid reference in continuous time only (it hard-codes dico='C')."""
    sys = random_system(41, n=5, m=2, p=2, dt=0, output="real", with_d=True, min_margin=1e-2)
    reference = control.balanced_reduction(sys.to_control(), 4, method="truncate")
    result = balanced_truncation(sys, order=4)
    omega = OMEGA_CT
    G_ref = np.stack([reference(1j * w) for w in omega])
    assert_response_close(freqresp(result.system, omega), G_ref)


def test_s5_layer_reduced_and_rediagonalised():
    """A 32-pair S5-style layer (ZOH, conj-sym, D, state includes input) reduced, written back as poles/B/C/D."""
    layer = random_s5_model(n_layers=1, n_states=32, width=4, seed=3)["layers_0"]
    result = balanced_truncation(layer, order=24, exact_error=True)
    reduced = result.system
    assert reduced.state_includes_input and reduced.output == "real"
    np.testing.assert_array_equal(reduced.D, layer.D)
    assert result.n_states == reduced.n_states >= 12
    assert_response_close(freqresp(reduced, OMEGA_DT), reference_reduced_response(layer, 24, OMEGA_DT))
    assert result.hsv[24] * (1 - 1e-8) <= result.error_hinf <= result.bound * (1 + 1e-8)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_rediagonalised_system_reproduces_dense_transfer_function(output):
    rng = np.random.default_rng(51)
    n, m, p = 7, 2, 3
    A = rng.standard_normal((n, n))
    A = 0.9 * A / np.max(np.abs(np.linalg.eigvals(A)))
    B, C, D = rng.standard_normal((n, m)), rng.standard_normal((p, n)), rng.standard_normal((p, m))
    if output == "complex":
        A, B, C, D = A + 0.3j * rng.standard_normal((n, n)), B + 1j * B[::-1], C + 1j, D + 0.5j
        A = 0.9 * A / np.max(np.abs(np.linalg.eigvals(A)))
    like = DiagonalSSM(
        np.zeros(1), np.zeros((1, m)), np.zeros((p, 1)), dt=True, output=output, state_includes_input=True
    )
    sys = _rediagonalize(A, B, C, D, like)
    G_ref = dense_response(A, B, C, D, OMEGA_DT, discrete=True, state_includes_input=True)
    assert_response_close(freqresp(sys, OMEGA_DT), G_ref)
    if output == "real":  # odd order: at least one real pole, stored with real parameters
        real_poles = np.abs(sys.poles.imag) == 0
        assert np.any(real_poles)
        assert np.all(sys.B[real_poles].imag == 0) and np.all(sys.C[:, real_poles].imag == 0)
        assert sys.n_states == int(np.sum(real_poles)) + (n - int(np.sum(real_poles))) // 2


def test_tolerance_picks_smallest_order():
    sys = random_system(61, n=6, m=2, p=2, dt=True, output="real", min_margin=1e-2)
    *_, hsv_ref = ab09ad(sys, 1)
    tails = 2 * np.array([np.sum(hsv_ref[r:]) for r in range(hsv_ref.size + 1)])
    for tol in (tails[3] * 1.0000001, tails[3] * 0.999, tails[8] * (1 + 1e-9), 1e9):
        expected = int(np.flatnonzero(tails <= tol)[0])
        result = balanced_truncation(sys, tol=tol)
        assert result.order == expected
        assert result.bound <= tol


def test_batched_per_layer_orders_and_ragged_result():
    sys = random_system(71, n=5, m=2, p=2, batch=(3,), dt=True, output="complex", min_margin=1e-2)
    result = balanced_truncation(sys, order=np.array([1, 3, 3]))
    assert isinstance(result, ReductionResult)
    np.testing.assert_array_equal(result.order, [1, 3, 3])
    np.testing.assert_array_equal(result.n_states, [1, 3, 3])
    assert len(result.systems) == 3 and result.hsv.shape == (3, 5)
    with pytest.raises(ShapeError, match="use result.systems"):
        _ = result.system
    for i in range(3):
        single = balanced_truncation(sys[i], order=int(result.order[i]))
        assert_response_close(freqresp(result.systems[i], OMEGA_DT), freqresp(single.system, OMEGA_DT), rtol=1e-10)
        assert single.bound == pytest.approx(result.bound[i], rel=1e-12)
    by_tol = balanced_truncation(sys, tol=np.array([np.inf, 0.0, result.bound[2]]))  # per-layer tolerances
    np.testing.assert_array_equal(by_tol.order, [0, 5, 3])
    uniform = balanced_truncation(sys, order=2)
    assert uniform.system.batch_shape == (3,) and uniform.system.n_states == 2
    np.testing.assert_allclose(freqresp(uniform.system, OMEGA_DT)[1], freqresp(uniform.systems[1], OMEGA_DT))


def test_repeated_hsv_is_not_split_and_order_is_capped_at_minimal():
    # two decoupled states with equal Gramians: σ_1 = σ_2 = 4/3 exactly
    tie = DiagonalSSM([0.5, -0.5], np.eye(2), np.eye(2), dt=True)
    result = balanced_truncation(tie, order=1)
    np.testing.assert_allclose(result.hsv, [4 / 3, 4 / 3])
    assert result.order == 2 and result.bound == 0.0
    # real pole with real b, c under output="real": the imaginary half is uncontrollable (σ_2 = 0)
    real_pole = DiagonalSSM([0.5], [[1.0]], [[2.0]], dt=True, output="real")
    result = balanced_truncation(real_pole, order=2)
    assert result.order == 1 and result.n_states == 1
    assert result.system.poles[0] == pytest.approx(0.5) and result.system.poles[0].imag == 0
    assert_response_close(freqresp(result.system, OMEGA_DT), freqresp(real_pole, OMEGA_DT), rtol=1e-12)


@pytest.mark.parametrize("output", ["real", "complex"])
@pytest.mark.parametrize("method", ["sqrt", "spa"])
def test_order_zero_keeps_only_the_feedthrough(output, method):
    sys = random_system(83, n=3, dt=True, output=output, with_d=True)
    result = balanced_truncation(sys, order=0, method=method, exact_error=True)
    assert result.n_states == 0 and result.bound == pytest.approx(2 * np.sum(result.hsv), rel=1e-12)
    assert result.hsv[0] * (1 - 1e-8) <= result.error_hinf <= result.bound
    if method == "spa":  # all states residualised: the static DC gain
        np.testing.assert_allclose(result.system.D, freqresp(sys, [0.0])[0], rtol=1e-10)
    else:
        np.testing.assert_array_equal(result.system.D, sys.D)


def test_balanced_truncation_input_errors():
    sys = random_system(81, n=3, dt=True)
    with pytest.raises(ValueError, match="exactly one of order= .* or tol="):
        balanced_truncation(sys)
    with pytest.raises(ValueError, match="exactly one of"):
        balanced_truncation(sys, order=2, tol=0.1)
    with pytest.raises(ValueError, match="out of range"):
        balanced_truncation(sys, order=7)
    with pytest.raises(TypeError, match="order must be an integer"):
        balanced_truncation(sys, order=2.5)
    with pytest.raises(ValueError, match="tol=.* must be ≥ 0"):
        balanced_truncation(sys, tol=-1.0)
    with pytest.raises(ValueError, match="method="):
        balanced_truncation(sys, order=2, method="hankel")  # type: ignore[arg-type]
    unstable = DiagonalSSM([1.1, 0.5], np.ones((2, 1)), np.ones((1, 2)), dt=True)
    with pytest.raises(ValueError, match="asymptotically stable"):
        balanced_truncation(unstable, order=1)


# ---------------------------------------------------------------------------------------------- modal truncation
@pytest.mark.parametrize("dt, output", CASES)
def test_modal_truncation_error_and_bound(dt, output):
    sys = random_system(91, n=6, m=2, p=3, dt=dt, output=output, with_d=True, state_includes_input=bool(dt))
    keep = np.array([True, False, True, True, False, False])
    result = modal_truncation(sys, keep, exact_error=True)
    reduced = result.system
    np.testing.assert_array_equal(reduced.poles, sys.poles[keep])
    np.testing.assert_array_equal(reduced.D, sys.D)
    assert result.order == 3 and result.hsv is None
    assert result.bound == pytest.approx(np.sum(state_hinf_norms(sys)[~keep]), rel=1e-14)
    assert result.error_hinf == pytest.approx(reference_hinf(sys, reduced), rel=1e-7)
    assert result.error_hinf <= result.bound * (1 + 1e-8)
    # the error is exactly the sum of the removed one-state subsystems
    omega = omega_for(sys)
    removed = [
        DiagonalSSM(
            sys.poles[i : i + 1],
            sys.B[i : i + 1],
            sys.C[:, i : i + 1],
            dt=sys.dt,
            output=output,
            state_includes_input=sys.state_includes_input,
        )
        for i in np.flatnonzero(~keep)
    ]
    difference = freqresp(sys, omega) - freqresp(reduced, omega)
    assert_response_close(difference, sum(freqresp(part, omega) for part in removed), rtol=1e-12)
    if dt:
        h2_ref = control.norm(sys.to_control() - reduced.to_control(), p=2)
        scale = 1.0 if output == "real" else np.sqrt(2.0)
        assert result.error_h2 == pytest.approx(h2_ref / scale, rel=1e-7)


def test_modal_truncation_index_arrays_and_batches():
    sys = random_system(93, n=5, batch=(2,), dt=True)
    by_index = modal_truncation(sys, np.array([[0, 3], [4, 1]]))
    mask = np.array([[True, False, False, True, False], [False, True, False, False, True]])
    by_mask = modal_truncation(sys, mask)
    np.testing.assert_array_equal(by_index.system.poles, by_mask.system.poles)
    np.testing.assert_array_equal(by_index.system.C, by_mask.system.C)
    np.testing.assert_array_equal(by_mask.system.C[0], sys.C[0][:, [0, 3]])
    np.testing.assert_array_equal(by_mask.system.poles[1], sys.poles[1, [1, 4]])
    np.testing.assert_array_equal(by_index.order, [2, 2])
    shared = modal_truncation(sys, [-1, 0])  # same states in every batch element, negative index allowed
    np.testing.assert_array_equal(shared.system.poles, sys.poles[:, [0, 4]])
    everything = modal_truncation(sys, np.ones(5, dtype=bool))
    assert np.all(everything.bound == 0.0)


def test_modal_truncation_input_errors():
    sys = random_system(95, n=4, batch=(2,), dt=True)
    with pytest.raises(ShapeError, match="different numbers of states across the batch"):
        modal_truncation(sys, np.array([[True, True, False, False], [True, False, False, False]]))
    with pytest.raises(ShapeError, match="expected a mask of shape"):
        modal_truncation(sys, np.ones(3, dtype=bool))
    with pytest.raises(ShapeError, match="outside"):
        modal_truncation(sys, [0, 4])
    with pytest.raises(ShapeError, match="repeated"):
        modal_truncation(sys, [1, 1])
    with pytest.raises(TypeError, match="boolean mask or an integer index array"):
        modal_truncation(sys, [0.5, 1.0])


def test_modal_truncation_of_unstable_state_warns_and_gives_inf():
    sys = DiagonalSSM([0.5, 1.2], np.ones((2, 1)), np.ones((1, 2)), dt=True)
    with pytest.warns(UnstableSystemWarning):
        result = modal_truncation(sys, [True, False])
    assert result.bound == np.inf


# ---------------------------------------------------------------------------------------------- invariants
systems = random_systems(n=(2, 6), m=(1, 2), p=(1, 2), min_margin=[1e-2, 5e-2])


@settings(max_examples=25, deadline=None)
@given(systems, st.data())
def test_balanced_bound_dominates_exact_error_and_decreases_with_order(sys, data):
    size = 2 * sys.n_states if sys.output == "real" else sys.n_states
    r = data.draw(st.integers(0, size - 1))
    result = balanced_truncation(sys, order=r, exact_error=True)
    assert result.error_hinf <= result.bound * (1 + 1e-7) + 1e-12 * result.hsv[0]
    if result.order < size:
        assert result.hsv[result.order] * (1 - 1e-7) <= result.error_hinf
    bounds = [balanced_truncation(sys, order=k).bound for k in range(size + 1)]
    assert np.all(np.diff(bounds) <= 1e-12 * bounds[0])


@settings(max_examples=25, deadline=None)
@given(systems, st.data())
def test_modal_bound_dominates_exact_error_and_grows_with_removed_set(sys, data):
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=sys.n_states, max_size=sys.n_states)))
    result = modal_truncation(sys, keep, exact_error=True)
    assert result.error_hinf <= result.bound * (1 + 1e-7)
    fewer = keep.copy()
    fewer[np.argmax(keep)] = False  # remove one more state (if any is kept)
    assert modal_truncation(sys, fewer).bound >= result.bound * (1 - 1e-14)


# ---------------------------------------------------------------------------------------------- unstable, horizon, fit
def unstable_layer_system(seed: int = 5, *, output: str = "real") -> DiagonalSSM:
    """A trained-looking layer: mostly stable, one pole just outside the circle and one on it."""
    sys = random_system(seed, n=6, m=2, p=2, dt=True, output=output, with_d=True)
    poles = sys.poles.copy()
    poles[1], poles[4] = 1.005 * np.exp(0.4j), -1.0
    return sys.replace(poles=poles)


def test_unstable_keep_matches_slicot_ab09md():
    """Additive stable/unstable decomposition: the reduced model equals AB09MD's (alpha = 1, DT)."""
    sys = unstable_layer_system()
    A, B, C, D = real_realization(sys)
    r = 8  # 4 real dims of the two unstable states + 4 of the stable part
    result = balanced_truncation(sys, order=r, unstable="keep")
    nr, Ar, Br, Cr, ns, hsv = slycot.ab09md("D", "B", "N", A.shape[0], B.shape[1], C.shape[0], A, B, C, 1.0, r, 0.0)
    assert nr == r and ns == 8 and result.order == r
    np.testing.assert_allclose(result.hsv[..., 4:], hsv[:ns], rtol=1e-9)
    assert np.all(np.isinf(result.hsv[..., :4]))
    z = np.exp(1j * np.linspace(0.05, 3.0, 13))
    reference = np.stack([Cr @ np.linalg.solve(zk * np.eye(nr) - Ar, Br) + D for zk in z])
    np.testing.assert_allclose(freqresp(result.system, np.angle(z)), reference, rtol=1e-8, atol=1e-10)
    # the unstable states are kept exactly, and the error is the stable part's, within its bound
    for pole in sys.poles[[1, 4]]:
        assert np.min(np.abs(result.system.poles - pole)) == 0.0
    omega = np.linspace(0.0, np.pi, 2001)
    error = freqresp(sys, omega) - freqresp(result.system, omega)
    peak = np.max(np.linalg.svd(error[np.abs(omega - 0.4) > 1e-3], compute_uv=False))
    assert 0 < peak <= result.bound * (1 + 1e-8)


def test_unstable_error_is_the_default():
    with pytest.raises(ValueError, match="asymptotically stable"):
        balanced_truncation(unstable_layer_system(), order=4)


def test_states_fit_the_stored_budget():
    """A real-output reduction whose real poles would not fit 2k real dims in k stored states."""
    rng = np.random.default_rng(3)
    poles = np.concatenate([rng.uniform(-0.9, 0.9, 6) + 0j, 0.8 * np.exp(1j * rng.uniform(0.2, 3, 4))])
    sys = DiagonalSSM(poles, rng.standard_normal((10, 2)), rng.standard_normal((2, 10)), dt=True, output="real")
    for k in range(1, 10):
        by_order = balanced_truncation(sys, order=2 * k)
        fitted = balanced_truncation(sys, states=k)
        assert fitted.system.n_states <= k
        assert fitted.order <= by_order.order
        # the largest order that fits: one more real dimension would not
        if fitted.system.n_states < k and fitted.order < 2 * k:
            assert balanced_truncation(sys, order=int(fitted.order) + 1).system.n_states > k
    assert any(balanced_truncation(sys, order=2 * k).system.n_states > k for k in range(1, 10))


def test_finite_horizon_balanced_truncation_is_the_projection_with_brute_force_gramians():
    sys = unstable_layer_system(7, output="complex")
    L, r = 12, 3
    result = balanced_truncation(sys, order=r, horizon=L)
    lam, B, C = sys.poles, sys.B, sys.C
    P = sum(np.diag(lam**k) @ B @ B.conj().T @ np.diag(lam**k).conj().T for k in range(L))
    Q = sum(np.diag(lam**k).conj().T @ C.conj().T @ C @ np.diag(lam**k) for k in range(L))
    Lp, Lq = scipy.linalg.cholesky(P, lower=True), scipy.linalg.cholesky(Q, lower=True)
    U, s, Vh = np.linalg.svd(Lq.conj().T @ Lp)
    T = Lp @ Vh.conj().T[:, :r] / np.sqrt(s[:r])
    W = Lq @ U[:, :r] / np.sqrt(s[:r])
    A_r, B_r, C_r = W.conj().T @ np.diag(lam) @ T, W.conj().T @ B, C @ T
    z = np.exp(1j * np.linspace(0.1, 3.0, 7)) * 1.3  # off the circle: the reduced system may be unstable
    reference = np.stack([C_r @ np.linalg.solve(zk * np.eye(r) - A_r, B_r) for zk in z]) + sys.D
    ours = (
        np.stack([result.system.C @ np.diag(1 / (zk - result.system.poles)) @ result.system.B for zk in z])
        + result.system.D
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-8)
    np.testing.assert_allclose(result.hsv, np.sqrt(np.sort(np.abs(np.linalg.eigvals(P @ Q)))[::-1]), rtol=1e-8)
    assert result.bound == np.inf


def test_balanced_truncation_with_exact_error_does_not_import_python_control():
    """The 10–43 s of ``exact_error=True`` on 1–5-state systems were the import of python-control (and scipy.signal)
    by the re-diagonalisation: a fresh interpreter must not import it, and the error still matches AB13DD."""
    import subprocess
    import sys

    code = (
        "import sys, ssmtools\n"
        "layer = ssmtools.examples.random_s5_model(1, n_states=3, width=4, seed=3)['layers_0']\n"
        "result = ssmtools.balanced_truncation(layer, order=4, exact_error=True)\n"
        "print(float(result.error_hinf), 'control' in sys.modules, 'scipy.signal' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    error, control_imported, signal_imported = run.stdout.split()
    assert (control_imported, signal_imported) == ("False", "False")
    layer = random_s5_model(1, n_states=3, width=4, seed=3)["layers_0"]
    reduced = balanced_truncation(layer, order=4).system
    assert float(error) == pytest.approx(reference_hinf(layer, reduced), rel=1e-7)

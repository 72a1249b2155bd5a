"""BidirectionalSSM: the non-causal layer as a system type, its frequency response and every norm,
against the two-sided impulse response, dense sweeps, SLICOT AB13DD and high-precision arithmetic."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from ssmtools import (
    ArgumentTypeError,
    BidirectionalSSM,
    DiagonalSSM,
    OptionError,
    ShapeError,
    UnstableSystemWarning,
    freqresp,
    h2_norm,
    hankel_singular_values,
    hinf_norm,
    hinf_result,
    state_h2_norms,
    state_hinf_norms,
    state_hinf_result,
)
from ssmtools._bidirectional import state_linf
from ssmtools.norms import auto_hinf_method


def random_bidirectional(seed: int, *, n=4, m=3, p=2, output="real", batch=(), radius=(0.3, 0.95)) -> BidirectionalSSM:
    rng = np.random.default_rng(seed)
    shape = batch + (n,)
    poles = rng.uniform(*radius, shape) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))
    B = rng.normal(size=batch + (n, m)) + 1j * rng.normal(size=batch + (n, m))
    C = rng.normal(size=batch + (p, n)) + 1j * rng.normal(size=batch + (p, n))
    C2 = rng.normal(size=batch + (p, n)) + 1j * rng.normal(size=batch + (p, n))
    D = rng.normal(size=batch + (p, m)) * (1 if output == "real" else 1 + 0.5j)
    forward = DiagonalSSM(poles, B, C, D, dt=True, output=output, state_includes_input=True)
    return BidirectionalSSM(forward, C2)


def two_sided_response(sys: BidirectionalSSM, omega: np.ndarray, terms: int = 400) -> np.ndarray:
    """G(e^{jω}) from the definition: h_0 = out((C + C_b)B) + D, h_k = out(CΛᵏB), h_{−k} = out(C_bΛᵏB)."""
    out = np.real if sys.output == "real" else (lambda x: x)
    k = np.arange(1, terms)
    powers = sys.poles[None, :] ** k[:, None]
    forward = np.einsum("pn,kn,nm->kpm", sys.C, powers, sys.B)
    backward = np.einsum("pn,kn,nm->kpm", sys.C_backward, powers, sys.B)
    if sys.output == "real":  # out = Re for real inputs: G = ½(H + conj H(−ω)) term by term
        h0 = ((sys.C + sys.C_backward) @ sys.B).real + sys.D
        forward, backward = forward.real, backward.real
    else:
        h0 = out((sys.C + sys.C_backward) @ sys.B) + sys.D
    return np.stack(
        [
            h0
            + np.einsum("kpm,k->pm", forward, np.exp(-1j * w * k))
            + np.einsum("kpm,k->pm", backward, np.exp(1j * w * k))
            for w in omega
        ]
    )


def sweep_max(sys: BidirectionalSSM, omega: np.ndarray) -> float:
    return float(np.max(np.linalg.svd(freqresp(sys, omega), compute_uv=False)[..., 0]))


# ---------------------------------------------------------------------------------------------- the type
def test_construction_validates_and_delegates():
    sys = random_bidirectional(0)
    assert sys.n_states == 4 and sys.n_inputs == 3 and sys.n_outputs == 2 and sys.batch_shape == ()
    assert sys.is_discrete and sys.state_includes_input and bool(sys.is_stable)
    np.testing.assert_array_equal(sys.backward.C, sys.C_backward)
    assert not sys.backward.has_feedthrough
    with pytest.raises(ShapeError, match="C_backward has shape"):
        BidirectionalSSM(sys.forward, np.ones((3, 4)))
    with pytest.raises(ValueError, match="state_includes_input=True"):
        BidirectionalSSM(sys.forward.replace(state_includes_input=False), sys.C_backward)
    with pytest.raises(TypeError, match="forward must be a DiagonalSSM"):
        BidirectionalSSM(sys, sys.C_backward)
    with pytest.raises(ValueError, match="read-only"):
        sys.C_backward[0, 0] = 1.0


def test_batches_index_and_states_split():
    sys = random_bidirectional(1, batch=(3,))
    assert len(sys) == 3 and sys[1].batch_shape == ()
    np.testing.assert_array_equal(sys[2].C_backward, sys.C_backward[2])
    states = sys.states()
    assert isinstance(states, BidirectionalSSM) and states.batch_shape == (3, 4) and states.n_states == 1
    np.testing.assert_array_equal(states.C_backward[1, 2][:, 0], sys.C_backward[1][:, 2])
    assert not states.has_feedthrough
    # a layer is the sum of its one-state subsystems plus D
    omega = np.linspace(-3, 3, 7)
    total = freqresp(states[0], omega).sum(axis=0) + sys.D[0]
    np.testing.assert_allclose(total, freqresp(sys[0], omega), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_freqresp_is_the_two_sided_response(output):
    sys = random_bidirectional(2, output=output, radius=(0.3, 0.9))
    omega = np.linspace(-np.pi, np.pi, 13)
    np.testing.assert_allclose(freqresp(sys, omega), two_sided_response(sys, omega), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------- layer norms
@pytest.mark.parametrize("output", ["real", "complex"])
def test_linf_matches_a_refined_sweep_and_is_attained(output):
    sys = random_bidirectional(3, output=output)
    result = hinf_result(sys)
    assert result.method == "slycot" and auto_hinf_method(sys) == "slycot"
    omega = np.linspace(-np.pi, np.pi, 40001)
    assert sweep_max(sys, omega) <= result.value * (1 + 1e-10)
    attained = sweep_max(sys, np.array([result.peak]))
    assert attained == pytest.approx(result.value, rel=1e-8)
    assert hinf_norm(sys) == result.value


@pytest.mark.parametrize("output", ["real", "complex"])
def test_l2_is_the_two_sided_energy(output):
    sys = random_bidirectional(4, output=output, radius=(0.3, 0.9))
    omega = np.linspace(-np.pi, np.pi, 2**12, endpoint=False)  # Parseval on a uniform grid (aliasing ≈ 0.9^4096)
    energy = np.mean(np.sum(np.abs(freqresp(sys, omega)) ** 2, axis=(1, 2)))
    assert float(h2_norm(sys)) == pytest.approx(np.sqrt(energy), rel=1e-10)


def test_unstable_layers_report_inf_and_hsv_is_refused():
    sys = random_bidirectional(5, batch=(2,))
    poles = sys.poles.copy()
    poles[1, 0] = 1.2
    unstable = sys.replace(poles=poles)
    with pytest.warns(UnstableSystemWarning):
        values = hinf_norm(unstable)
    assert values[1] == np.inf and np.isfinite(values[0])
    with pytest.warns(UnstableSystemWarning):
        energies = h2_norm(unstable)
    assert energies[1] == np.inf and np.isfinite(energies[0])
    with pytest.raises(ArgumentTypeError, match="causal systems"):
        hankel_singular_values(sys)
    with pytest.raises(OptionError, match="causal systems only"):
        hinf_norm(sys, method="diagonal")


# ---------------------------------------------------------------------------------------------- per state
@pytest.mark.parametrize("output", ["real", "complex"])
def test_state_norms_equal_the_norms_of_the_states(output):
    sys = random_bidirectional(6, output=output, batch=(2,))
    result = state_hinf_result(sys)
    np.testing.assert_allclose(result.value, hinf_norm(sys.states(), method="slycot"), rtol=1e-9)
    np.testing.assert_allclose(state_h2_norms(sys), h2_norm(sys.states()), rtol=1e-12)
    # every reported peak attains its value (the σ_max there, from the frequency response)
    states = sys.states()
    for index in np.ndindex(*states.batch_shape):
        attained = sweep_max(states[index], np.array([result.peak[index]]))
        assert attained == pytest.approx(result.value[index], rel=1e-9)


def _mp_sigma_max(lam: complex, b: np.ndarray, c: np.ndarray, c2: np.ndarray, omega: float) -> mpmath.mpf:
    """σ_max of one real-output bidirectional state at ω, in 50-digit arithmetic from the definition."""
    with mpmath.workdps(50):
        z = mpmath.exp(1j * mpmath.mpf(omega))
        lam_m = mpmath.mpc(lam)
        alpha, beta = 1 / (1 - lam_m / z), 1 / (1 - lam_m * z)
        alpha_c, beta_c = 1 / (1 - mpmath.conj(lam_m) / z), 1 / (1 - mpmath.conj(lam_m) * z)
        G = mpmath.matrix(len(c), len(b))
        for i in range(len(c)):
            for j in range(len(b)):
                u1 = mpmath.mpc(c[i]) * alpha + mpmath.mpc(c2[i]) * beta
                u2 = mpmath.conj(mpmath.mpc(c[i])) * alpha_c + mpmath.conj(mpmath.mpc(c2[i])) * beta_c
                G[i, j] = (u1 * mpmath.mpc(b[j]) + u2 * mpmath.conj(mpmath.mpc(b[j]))) / 2
        return max(mpmath.svd_c(G, compute_uv=False))


def test_state_linf_keeps_its_digits_where_the_pair_nearly_cancels():
    """c, c_b almost imaginary with λ almost real: G = ½(U1 bᵀ + U2 b̄ᵀ) cancels to ~1e-7 of its scale. The
    trace/determinant form (a quadratic form in the scale) loses ~1e-2 relative here; the direct 2×2 form keeps
    ~1e-9. Reference: 50-digit σ_max from the definition, maximised on a grid and at the reported peak."""
    lam = 0.95 * np.exp(1e-9j)
    b = np.array([1.0, 0.5 + 1e-9j])
    c = np.array([1e-7 + 1.0j, -2.0j])
    c2 = np.array([0.3j, 1e-7 + 0.7j])
    forward = DiagonalSSM([lam], b[None, :], c[:, None], dt=True, output="real", state_includes_input=True)
    sys = BidirectionalSSM(forward, c2[:, None])
    values, peaks = state_linf(sys)
    value, peak = float(values[0]), float(peaks[0])
    scale = np.linalg.norm(c) * np.linalg.norm(b) / (1 - abs(lam))
    assert value < 1e-5 * scale  # the regime: far below the single-pole scale
    at_peak = float(_mp_sigma_max(lam, b, c, c2, peak))
    assert value == pytest.approx(at_peak, rel=1e-8)
    grid = np.concatenate([np.linspace(0, np.pi, 121), peak + np.linspace(-0.05, 0.05, 41)])
    best = max(float(_mp_sigma_max(lam, b, c, c2, w)) for w in grid if 0 <= w <= np.pi)
    assert best <= value * (1 + 1e-8)


def test_state_norms_of_causal_systems_are_their_states_norms():
    """DiagonalSSM.states(): per-state norms are the layer norms of the one-state subsystems (AB13DD)."""
    rng = np.random.default_rng(8)
    poles = rng.uniform(0.3, 0.9, 5) * np.exp(1j * rng.uniform(-3, 3, 5))
    sys = DiagonalSSM(
        poles,
        rng.normal(size=(5, 3)) + 0j,
        rng.normal(size=(4, 5)) + 1j,
        np.ones((4, 3)),
        dt=True,
        output="real",
        state_includes_input=True,
    )
    states = sys.states()
    assert states.batch_shape == (5,) and not states.has_feedthrough
    np.testing.assert_allclose(state_hinf_norms(sys), hinf_norm(states, method="slycot"), rtol=1e-9)
    np.testing.assert_allclose(state_h2_norms(sys), h2_norm(states), rtol=1e-10)
    assert auto_hinf_method(states) == "slycot" and auto_hinf_method(sys) == "slycot"  # ≤ 16 real states: AB13DD

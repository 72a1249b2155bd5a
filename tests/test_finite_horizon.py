"""Finite-horizon (time-limited) Gramians and norms against independent references: simulated impulse
responses (exact for a finite L), brute-force Gramian sums, scipy quadrature in CT, and mpmath next to the circle."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg

from ssmtools import DiagonalSSM, gramians, h2_norm, hankel_singular_values, state_h2_norms
from ssmtools._kernels import horizon_sum
from ssmtools.errors import ArgumentError, ArgumentTypeError, OptionError
from ssmtools.systems import augmented_realization

from .conftest import impulse_response, random_system

DT_CASES = [
    dict(output="real", state_includes_input=True),
    dict(output="real", state_includes_input=False),
    dict(output="complex", state_includes_input=True),
    dict(output="complex", state_includes_input=False),
]


def with_unstable(sys: DiagonalSSM) -> DiagonalSSM:
    """The same system with one pole on the circle and one outside (|λ| = 1.01), as trained layers end up."""
    poles = sys.poles.copy()
    poles[0] = np.exp(0.7j)
    poles[1] = 1.01 * np.exp(-2.0j)
    return sys.replace(poles=poles)


@pytest.mark.parametrize("case", DT_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("L", [1, 2, 7, 40])
def test_h2_horizon_is_the_energy_of_the_first_l_samples(case, L):
    sys = with_unstable(random_system(3, n=5, m=2, p=3, dt=True, **case))
    h = impulse_response(sys, L)
    expected = np.sqrt(np.sum(np.abs(h) ** 2))
    assert float(h2_norm(sys, horizon=L)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("case", DT_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_state_h2_horizon_matches_each_subsystem_response(case):
    sys = with_unstable(random_system(4, n=4, m=2, p=2, dt=True, **case))
    L = 9
    values = state_h2_norms(sys, horizon=L)
    for i in range(sys.n_states):
        one = sys.replace(poles=sys.poles[i : i + 1], B=sys.B[i : i + 1], C=sys.C[:, i : i + 1], D=None)
        expected = np.sqrt(np.sum(np.abs(impulse_response(one, L)) ** 2))
        assert values[i] == pytest.approx(expected, rel=1e-12)


def test_long_horizon_converges_to_the_infinite_norms():
    sys = random_system(5, n=4, dt=True, output="real", state_includes_input=True, min_margin=0.2)
    assert float(h2_norm(sys, horizon=400)) == pytest.approx(float(h2_norm(sys)), rel=1e-12)
    np.testing.assert_allclose(state_h2_norms(sys, horizon=400), state_h2_norms(sys), rtol=1e-12)
    np.testing.assert_allclose(hankel_singular_values(sys, horizon=400), hankel_singular_values(sys), rtol=1e-10)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_gramians_horizon_are_the_brute_force_sums(output):
    sys = with_unstable(random_system(6, n=4, m=2, p=3, dt=True, output=output))
    L = 13
    lam, B, C = augmented_realization(sys)
    P_ref = sum(np.diag(lam**k) @ B @ B.conj().T @ np.diag(lam**k).conj().T for k in range(L))
    Q_ref = sum(np.diag(lam**k).conj().T @ C.conj().T @ C @ np.diag(lam**k) for k in range(L))
    P, Q = gramians(sys, horizon=L)
    np.testing.assert_allclose(P, P_ref, rtol=1e-12, atol=1e-12 * np.abs(P_ref).max())
    np.testing.assert_allclose(Q, Q_ref, rtol=1e-12, atol=1e-12 * np.abs(Q_ref).max())
    hsv = np.sort(np.sqrt(np.abs(scipy.linalg.eigvals(P_ref @ Q_ref))))[::-1]
    np.testing.assert_allclose(hankel_singular_values(sys, horizon=L), hsv, rtol=1e-8, atol=1e-10 * hsv[0])


def test_continuous_time_horizon_against_quadrature():
    sys = random_system(7, n=3, m=1, p=2, dt=0, output="complex", with_d=False)
    sys = sys.replace(poles=np.array([0.3 + 1j, -0.5 - 2j, 1e-15 + 0j]))  # unstable, stable, (almost) marginal
    T = 1.7
    lam, B, C = sys.poles, sys.B, sys.C

    def energy(t):
        return np.sum(np.abs(C @ np.diag(np.exp(lam * t)) @ B) ** 2)

    expected, _ = scipy.integrate.quad(energy, 0.0, T, epsabs=1e-14, epsrel=1e-13)
    assert float(h2_norm(sys, horizon=T)) ** 2 == pytest.approx(expected, rel=1e-10)


def test_horizon_sum_next_to_the_circle_against_mpmath():
    mpmath.mp.dps = 50
    lam = np.array([1 - 1e-13, (1 - 3e-15) * np.exp(0.2j), np.exp(1e-9j), 1 + 1e-12, 1.0, 0.0])
    for L in (1, 40, 10_000):
        S = horizon_sum(lam[:, None], lam[None, :], L, discrete=True)
        for i in range(lam.size):
            for j in range(lam.size):
                li = mpmath.mpc(lam[i].real, lam[i].imag)
                lj = mpmath.mpc(lam[j].real, lam[j].imag)
                mu = li * mpmath.conj(lj)
                ref = mpmath.mpf(L) if mu == 1 else (1 - mu**L) / (1 - mu)
                assert abs(complex(S[i, j]) - complex(ref)) <= 1e-13 * abs(complex(ref))


def test_horizon_validation():
    sys = random_system(1, dt=True)
    with pytest.raises(ArgumentError, match="integer ≥ 1"):
        h2_norm(sys, horizon=0)
    with pytest.raises(ArgumentError, match="integer ≥ 1"):
        gramians(sys, horizon=2.5)
    with pytest.raises(ArgumentTypeError, match="horizon must be a number"):
        hankel_singular_values(sys, horizon="40")
    with pytest.raises(OptionError, match="method='gramian'"):
        h2_norm(sys, horizon=4, method="slycot")
    with pytest.raises(ArgumentError, match="time T > 0"):
        h2_norm(random_system(1, dt=0), horizon=-1.0)


def test_unstable_system_has_finite_horizon_values_and_no_warning():
    sys = with_unstable(random_system(2, n=4, dt=True, output="real", state_includes_input=True))
    hsv = hankel_singular_values(sys, horizon=40)  # filterwarnings=error: no UnstableSystemWarning
    assert np.all(np.isfinite(hsv)) and hsv[0] > 0
    assert np.isfinite(float(h2_norm(sys, horizon=40)))

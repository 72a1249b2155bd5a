"""Layer H2 in tiles (``_kernels.h2_squared_diagonal``): the cheap denominators against 50-digit mpmath, the
tiled sum against the dense Gramian formula and SLICOT AB13BD, conjugate pairs against the augmented realization."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import ssmtools
from ssmtools import _kernels
from ssmtools.systems import augmented_realization

EPS = np.finfo(float).eps


def hard_poles(rng: np.random.Generator) -> np.ndarray:
    """Poles at margins 1e-8…1e-15, near-coincident pairs (1e-12 apart), near ±1 and near 0 (DT, |λ| < 1)."""
    angle = rng.uniform(-np.pi, np.pi, 8)
    near_circle = (1 - np.array([1e-13, 3e-14, 1e-15, 2e-15, 1e-13, 1e-12, 1e-10, 1e-8])) * np.exp(1j * angle)
    coincident = near_circle[:4] * np.exp(1e-12j * rng.standard_normal(4))  # same modulus, 1e-12 apart
    real_axis = np.array([1 - 1e-13, -(1 - 1e-13), 1 - 2e-13, 0.0, 1e-300, 0.5j])
    poles = np.concatenate([near_circle, coincident, real_axis, 0.99 * np.exp(1j * rng.uniform(0, np.pi, 6))])
    assert np.all(_kernels.one_minus_abs_squared(poles) > 0)
    return poles


def test_denominators_have_a_few_eps_relative_error_against_mpmath():
    """|1 − λ_i conj λ_j| ≥ max(|λ_i − λ_j|, m_i/2) makes ``m_i + λ_i·conj(λ_i − λ_j)`` accurate to a few ε."""
    mpmath.mp.dps = 50
    rng = np.random.default_rng(0)
    poles = hard_poles(rng)
    both = np.concatenate([poles, np.conj(poles)])  # the augmented columns of a conjugate-symmetric layer
    margin = _kernels.one_minus_abs_squared(poles)
    den = _kernels.gramian_denominators(poles[:, None], margin[:, None], np.conj(both)[None, :], discrete=True)
    worst = 0.0
    for i, lam_i in enumerate(poles):
        for j, lam_j in enumerate(both):
            exact = 1 - mpmath.mpc(lam_i) * mpmath.conj(mpmath.mpc(lam_j))
            if exact == 0:
                continue
            worst = max(worst, float(abs(mpmath.mpc(den[i, j]) - exact) / abs(exact)))
    assert worst <= 8 * EPS


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("in_place", [False, True])
def test_real_arithmetic_inverse_denominators_against_mpmath(discrete, in_place):
    """The tiles' ``1/d = P − jR`` of both quarters (ν_j = conj λ_j and ν_j = λ_j), with and without NumPy buffers,
    against 50-digit 1/(1 − λ_i ν_j) (CT: −1/(λ_i + ν_j)): a few ε relative to |1/d| on the hard poles."""
    mpmath.mp.dps = 50
    rng = np.random.default_rng(1)
    poles = hard_poles(rng) if discrete else -(10.0 ** rng.uniform(-15, 0, 24)) + 1j * rng.uniform(-3, 3, 24)
    poles = poles[poles != 0] if not discrete else poles
    a, b = poles.real, poles.imag
    margin = _kernels.one_minus_abs_squared(poles) if discrete else None
    n = poles.size
    work = [np.full((n, n), np.nan) for _ in range(9)] if in_place else None
    parts = _kernels._inverse_denominators(
        a[:, None], b[:, None], None if margin is None else margin[:, None], a[None, :], b[None, :],
        None if margin is None else margin[None, :], (1.0, -1.0), discrete=discrete, work=work,
    )  # fmt: skip
    worst = 0.0
    for (P, R), nu in zip(parts, (np.conj(poles), poles)):
        for i, lam_i in enumerate(poles):
            for j, nu_j in enumerate(nu):
                li, nj = mpmath.mpc(lam_i), mpmath.mpc(nu_j)
                d = 1 - li * nj if discrete else -(li + nj)
                if d == 0:
                    continue
                exact = 1 / d
                worst = max(worst, float(abs(mpmath.mpc(P[i, j], -R[i, j]) - exact) / abs(exact)))
    assert worst <= 8 * EPS


def mp_h2_squared(system: ssmtools.DiagonalSSM) -> mpmath.mpf:
    """‖G‖²_H2 in 50 digits from the float64 data: the double Gramian sum plus the D terms."""
    mpmath.mp.dps = 50
    lam, B, C = augmented_realization(system)
    n, (p, m) = lam.size, system.D.shape
    lam_mp = [mpmath.mpc(x) for x in lam]
    Bm = [[mpmath.mpc(B[i, a]) for a in range(m)] for i in range(n)]
    Cm = [[mpmath.mpc(C[b, i]) for i in range(n)] for b in range(p)]
    total = mpmath.mpc(0)
    for i in range(n):
        for j in range(n):
            bb = sum(Bm[i][a] * mpmath.conj(Bm[j][a]) for a in range(m))
            cc = sum(mpmath.conj(Cm[b][j]) * Cm[b][i] for b in range(p))
            total += bb * cc / (1 - lam_mp[i] * mpmath.conj(lam_mp[j]))
    value = mpmath.re(total)
    for b in range(p):
        for a in range(m):
            d = mpmath.mpf(float(np.real(system.D[b, a])))
            m0 = mpmath.re(sum(Cm[b][i] * Bm[i][a] for i in range(n)))  # M_0 = C_a B_a
            value += d * d + (2 * d * m0 if system.state_includes_input else 0)
    return value


@pytest.mark.parametrize("output", ["real", "complex"])
def test_h2_near_the_circle_and_with_near_coincident_poles_matches_mpmath(output):
    rng = np.random.default_rng(1)
    poles = hard_poles(rng)
    n = poles.size
    B = rng.standard_normal((n, 2)) + 1j * rng.standard_normal((n, 2))
    C = rng.standard_normal((2, n)) + 1j * rng.standard_normal((2, n))
    system = ssmtools.DiagonalSSM(poles, B, C, rng.standard_normal((2, 2)), dt=True, output=output)
    reference = mp_h2_squared(system)
    assert float(ssmtools.h2_norm(system)) ** 2 == pytest.approx(float(reference), rel=1e-12)


@pytest.mark.parametrize("dt", [True, 0])
@pytest.mark.parametrize("output", ["real", "complex"])
@pytest.mark.parametrize("m, p", [(1, 1), (1, 3), (4, 3)])  # G Gᴴ weights, and (BBᴴ)∘(CᴴC) weights
def test_tiles_match_the_dense_gramian_and_ab13bd(dt, output, m, p):
    rng = np.random.default_rng(m + 10 * p)
    n = 23
    poles = 0.98 * rng.uniform(0.2, 1, n) * np.exp(1j * rng.uniform(0, np.pi, n)) if dt else -rng.uniform(0.01, 1, n)
    if not dt:
        poles = poles + 1j * rng.uniform(-3, 3, n)
    B = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
    C = rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))
    D = rng.standard_normal((p, m)) if dt else np.zeros((p, m))
    system = ssmtools.DiagonalSSM(poles, B, C, D, dt=dt, output=output)
    lam, Ba, Ca = augmented_realization(system)
    gramian = _kernels.diagonal_controllability_gramian(lam, Ba, discrete=bool(dt))  # the dense n×n formula
    dense = np.real(np.trace(Ca @ gramian @ Ca.conj().T))
    for block in (1, 40, 2**15):  # 1×1 tiles, ragged 6×6 tiles, one tile
        value = _kernels.h2_squared_diagonal(
            lam, Ba, Ca, 0 * D, discrete=bool(dt), feedthrough_cross=None, block_elements=block
        )
        assert value == pytest.approx(dense, rel=1e-12)
        if output == "real":  # the stored half: two sums over the stored states
            half = _kernels.h2_squared_diagonal(
                poles, B, C, 0 * D, discrete=bool(dt), feedthrough_cross=None, conj_pairs=True, block_elements=block
            )
            assert half == pytest.approx(dense, rel=1e-12)
    assert float(ssmtools.h2_norm(system)) == pytest.approx(float(ssmtools.h2_norm(system, method="slycot")), rel=1e-10)


def test_finite_horizon_tiles_of_the_stored_half_match_the_augmented_sum():
    layer = ssmtools.examples.random_s5_model(1, 40, 3, seed=4)["layers_0"]
    lam, Ba, Ca = augmented_realization(layer)
    zero = np.zeros_like(layer.D)
    full = _kernels.h2_squared_diagonal(lam, Ba, Ca, zero, discrete=True, feedthrough_cross=None, horizon=30)
    half = _kernels.h2_squared_diagonal(
        layer.poles,
        layer.B,
        layer.C,
        zero,
        discrete=True,
        feedthrough_cross=None,
        horizon=30,
        conj_pairs=True,
        block_elements=50,
    )
    brute = sum(np.sum(np.abs(Ca @ (lam[:, None] ** k * Ba)) ** 2) for k in range(30))  # Σ_{k<30} ‖C_a Λᵏ B_a‖²_F
    assert half == pytest.approx(full, rel=1e-12)
    assert half == pytest.approx(brute, rel=1e-10)

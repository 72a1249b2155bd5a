"""Hankel singular values accurate relative to each σ, and balanced truncation from the same factors.

Reference: the Gramians formed from the binary values of (λ, B, C) and ``sqrt(eig(PQ))`` in 60-digit ``mpmath``.
Two hard families (docs/concepts/norms.md, accuracy table): B rows and C columns spanning 16 orders of magnitude
(*dynamic range*), and two poles a distance δ apart whose residues cancel to O(δ) (*near cancellation*), for δ
from 1e-4 down to 1e-12. Balanced truncation is compared with SLICOT AB09AD on both.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import scipy.optimize

from ssmtools import DiagonalSSM, balanced_truncation, freqresp, hankel_singular_values
from ssmtools.systems import augmented_realization, real_realization

from .test_reduction import ab09ad, dense_response

EPS = np.finfo(float).eps


def mp_hankel_singular_values(sys: DiagonalSSM) -> np.ndarray:
    """sqrt(eig(PQ)) of the augmented diagonal realization, Gramians and eigenvalues in 60 digits (DT or CT)."""
    lam, B, C = augmented_realization(sys)
    N = lam.size
    with mpmath.workdps(60):
        poles = [mpmath.mpc(x.real, x.imag) for x in lam]
        P, Q = mpmath.matrix(N, N), mpmath.matrix(N, N)
        for i in range(N):
            for j in range(N):
                bb = sum(mpmath.mpc(B[i, k]) * mpmath.conj(mpmath.mpc(B[j, k])) for k in range(B.shape[1]))
                cc = sum(mpmath.conj(mpmath.mpc(C[k, i])) * mpmath.mpc(C[k, j]) for k in range(C.shape[0]))
                if sys.is_discrete:
                    P[i, j] = bb / (1 - poles[i] * mpmath.conj(poles[j]))
                    Q[i, j] = cc / (1 - mpmath.conj(poles[i]) * poles[j])
                else:
                    P[i, j] = -bb / (poles[i] + mpmath.conj(poles[j]))
                    Q[i, j] = -cc / (mpmath.conj(poles[i]) + poles[j])
        eigenvalues = mpmath.eig(P * Q, left=False, right=False)
        return np.array(sorted((float(mpmath.sqrt(abs(mpmath.re(e)))) for e in eigenvalues), reverse=True))


def dynamic_range_system(seed: int, output: str) -> DiagonalSSM:
    """B rows and C columns scaled by 10^U(−8, 8)."""
    rng = np.random.default_rng(seed)
    n = 4
    poles = rng.uniform(0.3, 0.95, n) * np.exp(1j * rng.uniform(-3, 3, n))
    B = (rng.normal(size=(n, 2)) + 1j * rng.normal(size=(n, 2))) * 10 ** rng.uniform(-8, 8, (n, 1))
    C = (rng.normal(size=(2, n)) + 1j * rng.normal(size=(2, n))) * 10 ** rng.uniform(-8, 8, (1, n))
    return DiagonalSSM(poles, B, C, dt=True, output=output)


def near_cancellation_system(seed: int, gap: float, *, m: int, p: int, output: str, dt) -> DiagonalSSM:
    """Poles λ₁ and λ₂ = λ₁ + gap·e^{jφ}, equal B rows and C columns c₂ = −c₁(1 + gap·ξ), two other poles.

    The pair's residues cancel to O(gap), so it contributes ~gap·c₁b₁/(z − λ₁)² and Hankel singular values of
    order gap; the normalised Gramians are Cauchy-like matrices with an eigenvalue of order gap².
    """
    rng = np.random.default_rng(seed)
    if dt:
        lam1 = rng.uniform(0.5, 0.9) * np.exp(1j * rng.uniform(0.2, 2.8))
        others = rng.uniform(0.3, 0.9, 2) * np.exp(1j * rng.uniform(-3, 3, 2))
    else:
        lam1 = complex(-rng.uniform(0.1, 1.0), rng.uniform(0.5, 3.0))
        others = -rng.uniform(0.1, 1.0, 2) + 1j * rng.uniform(-3, 3, 2)
    poles = np.concatenate([[lam1, lam1 + gap * np.exp(1j * rng.uniform(0, 2 * np.pi))], others])
    B = rng.normal(size=(4, m)) + 1j * rng.normal(size=(4, m))
    C = rng.normal(size=(p, 4)) + 1j * rng.normal(size=(p, 4))
    B[1] = B[0]
    C[:, 1] = -C[:, 0] * (1 + gap * rng.normal())
    return DiagonalSSM(poles, B, C, dt=dt, output=output)


def cancellation_rtol(gap: float) -> float:
    """1e-8, plus the sensitivity of the data itself: rounding B and C (relative eps) moves the small σ by
    ~eps/gap (see test_eps_perturbation_of_the_data_moves_the_reference_by_eps_over_gap); 20× that."""
    return 1e-8 + 20 * EPS / gap


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("output", ["real", "complex"])
def test_dynamic_range_hankel_singular_values_to_1e8_relative(seed, output):
    """B rows and C columns scaled by 10^U(−8, 8): explicitly formed Gramians got σ₃ wrong by 70×."""
    sys = dynamic_range_system(seed, output)
    np.testing.assert_allclose(hankel_singular_values(sys), mp_hankel_singular_values(sys), rtol=1e-8)


@pytest.mark.parametrize("gap", [1e-4, 1e-6, 1e-8, 1e-10, 1e-12])
@pytest.mark.parametrize(
    "dt, output, m, p", [(True, "complex", 1, 1), (True, "real", 2, 3), (0, "complex", 2, 2), (0, "real", 1, 2)]
)
def test_near_cancellation_hankel_singular_values_relative_to_each_value(gap, dt, output, m, p):
    """Each σ, down to σ ~ gap·σ₁, within 1e-8 + 20·eps/gap of the 60-digit value (formed Gramians: σ₃ off by
    33× at gap 1e-10, every small σ wrong at 1e-12); ≤ 1e-8 itself for gaps ≥ 1e-6."""
    sys = near_cancellation_system(1, gap, m=m, p=p, output=output, dt=dt)
    reference = mp_hankel_singular_values(sys)
    assert reference[-1] < gap * reference[0]  # the family does reach σ ~ gap·σ₁
    np.testing.assert_allclose(hankel_singular_values(sys), reference, rtol=cancellation_rtol(gap))


def test_eps_perturbation_of_the_data_moves_the_reference_by_eps_over_gap():
    """Why the near-cancellation tolerance grows like eps/gap: relative perturbations of B and C of one rounding
    error move the 60-digit σ's by more than 1e-8 at gap 1e-10, so no method that rounds the data (or anything
    computed from it) to double precision can do better there; ours stays within a few times that spread."""
    gap = 1e-10
    sys = near_cancellation_system(1, gap, m=2, p=2, output="complex", dt=True)
    reference = mp_hankel_singular_values(sys)
    rng = np.random.default_rng(0)
    spread = 0.0
    for _ in range(2):
        B = sys.B * (1 + EPS / 2 * rng.uniform(-1, 1, sys.B.shape))
        C = sys.C * (1 + EPS / 2 * rng.uniform(-1, 1, sys.C.shape))
        moved = mp_hankel_singular_values(sys.replace(B=B, C=C))
        spread = max(spread, float(np.max(np.abs(moved - reference) / reference)))
    ours = float(np.max(np.abs(hankel_singular_values(sys) - reference) / reference))
    assert 1e-8 < spread < 20 * EPS / gap
    assert ours < 20 * spread


# ---------------------------------------------------------------------------------------------- balanced truncation
def _peak_gain(response, n_grid: int = 4097) -> float:
    """sup_ω σ_max of a DT response function ω ↦ (k, p, m): dense grid on [0, π], then a bounded 1-D refinement."""
    omega = np.linspace(0.0, np.pi, n_grid)

    def gain(w) -> np.ndarray:
        return np.linalg.svd(response(np.atleast_1d(w)), compute_uv=False)[..., 0]

    values = gain(omega)
    i = int(np.argmax(values))
    refined = scipy.optimize.minimize_scalar(
        lambda w: -gain(w)[0],
        bounds=(omega[max(i - 1, 0)], omega[min(i + 1, n_grid - 1)]),
        method="bounded",
        options={"xatol": 1e-13},
    )
    return max(float(values[i]), -float(refined.fun))


@pytest.mark.parametrize(
    "family",
    [
        "dynamic range 0",
        "dynamic range 1",
        "near cancellation 1e-4",
        "near cancellation 1e-7",
        "near cancellation 1e-10",
    ],
)
def test_balanced_truncation_on_the_hard_families_matches_ab09ad(family):
    """Real-output layers reduced to the σ's above 1e-3·σ₁: HSVs (from the real factors the projection uses)
    match the 60-digit values, σ_{r+1} ≤ ‖G − G_r‖∞ ≤ 2Σ_{j>r}σ_j, and the reduced model is AB09AD's (same
    response, same error; both errors by the same dense sweep: the error systems of the near-cancellation family
    are ~1e-9 of their parts, which the exact diagonal H∞ takes minutes to certify)."""
    if family.startswith("dynamic"):
        sys, rtol = dynamic_range_system(int(family.split()[-1]), "real"), 1e-8
    else:
        gap = float(family.split()[-1])
        sys, rtol = near_cancellation_system(1, gap, m=2, p=2, output="real", dt=True), cancellation_rtol(gap)
    reference = mp_hankel_singular_values(sys)
    r = int(np.count_nonzero(reference > 1e-3 * reference[0]))
    result = balanced_truncation(sys, order=r)
    assert result.order == r
    np.testing.assert_allclose(result.hsv, reference, rtol=rtol)
    _, Ar, Br, Cr, _ = ab09ad(sys, r)
    zero = np.zeros_like(result.system.D)
    A, B, C, _ = real_realization(sys)

    def ab09ad_response(omega):
        return dense_response(Ar, Br, Cr, zero, omega, discrete=True)

    omega = np.linspace(-np.pi, np.pi, 64)
    np.testing.assert_array_less(  # the same reduced model
        np.max(np.abs(freqresp(result.system, omega) - ab09ad_response(omega))),
        1e-6 * np.max(np.abs(ab09ad_response(omega))),
    )
    error = _peak_gain(lambda w: freqresp(sys, w) - freqresp(result.system, w))
    error_ab09ad = _peak_gain(lambda w: dense_response(A, B, C, zero, w, discrete=True) - ab09ad_response(w))
    assert reference[r] * (1 - 1e-6) <= error <= result.bound * (1 + 1e-8)
    assert error == pytest.approx(error_ab09ad, rel=1e-6)

"""Per-state pair H∞ in closed form (``_kernels.pair_hinf``) against references we did not write: 50-digit mpmath
maximisation near the resonance, dense sweeps of a direct SVD refined by scipy's bounded optimiser, and SLICOT
AB13DD on the 2-state real realisation of the pair."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import slycot
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.optimize import minimize_scalar

from ssmtools import _kernels

_GOLDEN = (mp.sqrt(5) - 1) / 2


def _direct_sigma(omega: np.ndarray, lam: complex, b: np.ndarray, c: np.ndarray, *, discrete: bool) -> np.ndarray:
    """σ_max of ``c bᵀ/(z − λ) + conj(c) conj(b)ᵀ/(z − conj λ)`` by a dense SVD at every ω (plain complex128)."""
    z = np.exp(1j * omega) if discrete else 1j * omega
    G = np.outer(c, b)[None] / (z - lam)[:, None, None]
    G = G + np.conj(np.outer(c, b))[None] / (z - np.conj(lam))[:, None, None]
    return np.linalg.svd(G, compute_uv=False)[:, 0]


def _mp_sigma(omega, lam: complex, b: np.ndarray, c: np.ndarray, *, discrete: bool):
    """The same σ_max in mpmath (``omega`` an mpf)."""
    z = mp.exp(1j * omega) if discrete else 1j * omega
    pole = mp.mpc(lam.real, lam.imag)
    G = mp.matrix(len(c), len(b))
    for i, ci in enumerate(c):
        for j, bj in enumerate(b):
            term = mp.mpc(ci.real, ci.imag) * mp.mpc(bj.real, bj.imag)
            G[i, j] = term / (z - pole) + mp.conj(term) / (z - mp.conj(pole))
    return max(mp.svd_c(G, compute_uv=False))


def _mp_golden(func, lo, hi, iterations: int = 110):
    """Golden-section maximum of ``func`` on [lo, hi] in mpmath (the end points included)."""
    a, b = mp.mpf(lo), mp.mpf(hi)
    x1, x2 = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    f1, f2 = func(x1), func(x2)
    for _ in range(iterations):
        if f1 > f2:
            b, x2, f2 = x2, x1, f1
            x1 = b - _GOLDEN * (b - a)
            f1 = func(x1)
        else:
            a, x1, f1 = x1, x2, f2
            x2 = a + _GOLDEN * (b - a)
            f2 = func(x2)
    return max(f1, f2, func(mp.mpf(lo)), func(mp.mpf(hi)))


def reference_pair_hinf(lam: complex, b: np.ndarray, c: np.ndarray, *, discrete: bool) -> float:
    """max_ω σ_max of the pair, found without ssmtools: a dense sweep of the direct SVD refined by scipy's bounded
    Brent (its ω re-evaluated in mpmath), and a 50-digit golden section over the resonance window θ ± 40·margin."""
    mp.mp.dps = 50
    pole = mp.mpc(lam.real, lam.imag)
    if discrete:
        margin = 1 - abs(pole)
        center, upper = abs(mp.arg(pole)), mp.pi
    else:
        margin, center, upper = -pole.real, abs(pole.imag), None
    top = float(np.pi) if discrete else 6.0 * (abs(lam) + 1.0)
    grid = np.linspace(0.0, top, 40001)
    values = _direct_sigma(grid, lam, b, c, discrete=discrete)
    k = int(np.argmax(values))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    found = minimize_scalar(
        lambda w: -_direct_sigma(np.array([w]), lam, b, c, discrete=discrete)[0],
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-14},
    )
    best = max(
        _mp_sigma(mp.mpf(found.x), lam, b, c, discrete=discrete), _mp_sigma(mp.mpf(0), lam, b, c, discrete=discrete)
    )
    window_lo = max(center - 40 * margin, mp.mpf(0))
    window_hi = center + 40 * margin if upper is None else min(center + 40 * margin, upper)
    local = _mp_golden(lambda w: _mp_sigma(w, lam, b, c, discrete=discrete), window_lo, window_hi)
    return float(max(best, local))


def _pair(lam: complex, b, c, *, discrete: bool) -> tuple[float, float]:
    value, peak = _kernels.pair_hinf(
        np.array([lam]), np.asarray(b, complex)[None, :], np.asarray(c, complex)[:, None], discrete=discrete
    )
    return float(value[0]), float(peak[0])


vectors = st.integers(1, 3).flatmap(
    lambda k: st.lists(st.floats(-2.0, 2.0, allow_nan=False, width=64), min_size=2 * k, max_size=2 * k).map(
        lambda x: np.array(x[: len(x) // 2]) + 1j * np.array(x[len(x) // 2 :])
    )
)
angles = st.one_of(
    st.floats(0.0, np.pi),
    st.floats(0.0, 1e-3),
    st.floats(0.0, 1e-3).map(lambda d: np.pi - d),
    st.sampled_from([0.0, np.pi]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log_margin=st.floats(-13.0, -0.3), theta=angles, b=vectors, c=vectors)
def test_dt_pair_matches_mpmath_maximisation(log_margin, theta, b, c):
    """DT pairs from the circle's edge (margins down to 1e-13) to well inside, θ near 0 and π and real poles."""
    if np.linalg.norm(b) * np.linalg.norm(c) < 1e-3:
        return
    lam = (1.0 - 10.0**log_margin) * np.exp(1j * theta)
    value, peak = _pair(lam, b, c, discrete=True)
    reference = reference_pair_hinf(lam, b, c, discrete=True)
    if reference < 1e-9 * np.linalg.norm(b) * np.linalg.norm(c) / 10.0**log_margin:
        return  # a pair that cancels to rounding level: no relative accuracy to speak of
    assert value == pytest.approx(reference, rel=1e-11)
    assert 0.0 <= peak <= np.pi
    assert value <= reference * (1 + 1e-12)  # never above the true maximum


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    log_damping=st.floats(-10.0, 1.0),
    frequency=st.one_of(st.floats(0.0, 5.0), st.sampled_from([0.0, 1e-6])),
    b=vectors,
    c=vectors,
)
def test_ct_pair_matches_mpmath_maximisation(log_damping, frequency, b, c):
    """CT pairs, lightly to heavily damped, including real poles (Im λ = 0)."""
    if np.linalg.norm(b) * np.linalg.norm(c) < 1e-3:
        return
    lam = complex(-(10.0**log_damping), frequency)
    value, peak = _pair(lam, b, c, discrete=False)
    reference = reference_pair_hinf(lam, b, c, discrete=False)
    if reference < 1e-9 * np.linalg.norm(b) * np.linalg.norm(c) / 10.0**log_damping:
        return
    assert value == pytest.approx(reference, rel=1e-11)
    assert peak >= 0.0
    assert value <= reference * (1 + 1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_no_overshoot_next_to_the_negative_axis(seed):
    """Regression: poles within an ulp of the negative real axis and 1e-13 from the circle (both poles resonate at
    ω = π). The former grid search formed π − θ in floating point there and returned values above the true
    maximum by up to ~6e-3; the closed form agrees with 50-digit arithmetic."""
    rng = np.random.default_rng(seed)
    margin = 10.0 ** rng.uniform(-13.0, -12.5)
    lam = (1.0 - margin) * np.exp(1j * np.pi)  # Im λ = 1.2e-16 (1 − margin) after rounding
    b, c = rng.normal(size=2) + 1j * rng.normal(size=2), rng.normal(size=2) + 1j * rng.normal(size=2)
    value, _ = _pair(lam, b, c, discrete=True)
    reference = reference_pair_hinf(lam, b, c, discrete=True)
    assert value == pytest.approx(reference, rel=1e-12)


def _ab13dd(lam: complex, b: np.ndarray, c: np.ndarray, *, discrete: bool) -> float:
    """SLICOT AB13DD on the real 2-state realisation ξ = [Re x, Im x] of ``2Re(c x)``, ``x⁺ = λx + bᵀu``."""
    A = np.array([[lam.real, -lam.imag], [lam.imag, lam.real]])
    B = np.vstack([b.real, b.imag])
    C = 2.0 * np.column_stack([c.real, -c.imag])
    m, p = B.shape[1], C.shape[0]
    D = np.zeros((p, m))
    gpeak, _ = slycot.ab13dd(
        "D" if discrete else "C", "I", "N", "D", 2, m, p, np.asfortranarray(A), np.eye(2, order="F"),
        np.asfortranarray(B), np.asfortranarray(C), np.asfortranarray(D), 1e-12,
    )  # fmt: skip
    return float(gpeak)


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_pair_matches_ab13dd_on_the_real_realisation(discrete, seed):
    rng = np.random.default_rng(100 + seed)
    if discrete:
        lam = (1.0 - 10.0 ** rng.uniform(-6, -0.5)) * np.exp(1j * rng.uniform(0, np.pi))
    else:
        lam = complex(-(10.0 ** rng.uniform(-4, 0)), rng.uniform(0, 3))
    m, p = rng.integers(1, 4, size=2)
    b, c = rng.normal(size=m) + 1j * rng.normal(size=m), rng.normal(size=p) + 1j * rng.normal(size=p)
    value, _ = _pair(lam, b, c, discrete=discrete)
    assert value == pytest.approx(_ab13dd(lam, b, c, discrete=discrete), rel=1e-9)


def test_batched_pairs_equal_one_at_a_time_and_unstable_is_inf():
    rng = np.random.default_rng(3)
    n = 40
    lam = (1.0 - 10.0 ** rng.uniform(-12, -1, n)) * np.exp(1j * rng.uniform(0, np.pi, n))
    lam[0] = 1.0 + 0.1j  # unstable
    B, C = (
        rng.normal(size=(n, 2)) + 1j * rng.normal(size=(n, 2)),
        rng.normal(size=(3, n)) + 1j * rng.normal(size=(3, n)),
    )
    values, peaks = _kernels.pair_hinf(lam, B, C, discrete=True)
    assert values[0] == np.inf and np.isnan(peaks[0])
    for i in range(1, n):
        one, _ = _pair(lam[i], B[i], C[:, i], discrete=True)
        assert values[i] == one


def test_torch_tensors_give_the_numpy_values():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    n = 16
    lam = 0.99 * np.exp(1j * rng.uniform(0, np.pi, n))
    B, C = (
        rng.normal(size=(n, 2)) + 1j * rng.normal(size=(n, 2)),
        rng.normal(size=(2, n)) + 1j * rng.normal(size=(2, n)),
    )
    values, peaks = _kernels.pair_hinf(lam, B, C, discrete=True)
    t_values, t_peaks = _kernels.pair_hinf(*(torch.as_tensor(x) for x in (lam, B, C)), discrete=True)
    assert isinstance(t_values, torch.Tensor) and t_values.dtype == torch.float64
    np.testing.assert_array_equal(t_values.numpy(), values)
    np.testing.assert_array_equal(t_peaks.numpy(), peaks)

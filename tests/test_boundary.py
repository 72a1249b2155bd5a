"""The stability boundary decided exactly, and closed forms that keep their digits next to it.

References: exact rational arithmetic (``fractions``) for the stability decision of poles within a few ulps of
the unit circle, and 50-digit ``mpmath`` evaluations of the definitions for the per-state norms at margins
1e-6 … 1e-13 (angles near 0, near π and generic)."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ssmtools import (
    DiagonalSSM,
    UnstableSystemWarning,
    h2_norm,
    hinf_result,
    state_h2_norms,
    state_hinf_result,
)
from ssmtools._kernels import one_minus_abs_squared, stability_margin

MARGINS = [1e-6, 1e-9, 1e-11, 1e-13]
ANGLES = [1e-7, 0.9, math.pi - 1e-7]


def exactly_inside(lam: complex) -> bool:
    """|λ| < 1 decided in exact rational arithmetic on the binary values of Re λ and Im λ."""
    return Fraction(lam.real) ** 2 + Fraction(lam.imag) ** 2 < 1


def one_state(lam: complex, *, output: str = "complex", b=(1.0, 0.5), c=(0.7, -0.2)) -> DiagonalSSM:
    return DiagonalSSM(
        [lam], np.asarray(b, dtype=complex)[None, :], np.asarray(c, dtype=complex)[:, None], dt=True, output=output
    )


# ---------------------------------------------------------------------------------------------- the decision
def test_the_examples_of_the_audit_are_decided_exactly():
    unstable = complex(np.exp(0.12611305652826413j))  # a² + b² − 1 = +9.5e-17: outside
    stable = complex(np.exp(0.3j))  # a² + b² − 1 < 0: inside
    assert not exactly_inside(unstable) and exactly_inside(stable)
    assert not bool(one_state(unstable).is_stable)
    assert bool(one_state(stable).is_stable)
    with pytest.warns(UnstableSystemWarning):
        assert float(h2_norm(one_state(unstable))) == math.inf
    assert math.isfinite(float(h2_norm(one_state(stable))))


@settings(max_examples=300, deadline=None)
@given(angle=st.floats(-math.pi, math.pi), ulps=st.integers(-6, 6), shrink=st.booleans())
def test_stability_agrees_with_exact_rationals_within_ulps_of_the_circle(angle, ulps, shrink):
    base = complex(math.cos(angle), math.sin(angle))
    scale = 1.0 + ulps * 2.0**-53 if shrink else 1.0 + ulps * 2.0**-52
    lam = complex(base.real * scale, base.imag * scale)
    assert bool(one_state(lam).is_stable) == exactly_inside(lam)
    exact = 1 - (Fraction(lam.real) ** 2 + Fraction(lam.imag) ** 2)
    computed = float(one_minus_abs_squared(np.array([lam]))[0])
    assert abs(Fraction(computed) - exact) <= abs(exact) * Fraction(1, 2**50) + Fraction(1, 2**100)


# ---------------------------------------------------------------------------------------------- closed forms
def _mp_lambda(margin: float, angle: float) -> tuple[complex, mpmath.mpc]:
    lam = complex((1 - margin) * np.exp(1j * angle))
    return lam, mpmath.mpc(lam.real, lam.imag)  # the binary value, exactly


@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("angle", ANGLES)
def test_single_pole_norms_keep_their_digits(margin, angle):
    lam, lam_mp = _mp_lambda(margin, angle)
    sys = one_state(lam)
    with mpmath.workdps(50):
        s = mpmath.sqrt(mpmath.mpf(1.0) + mpmath.mpf(0.25)) * mpmath.sqrt(mpmath.mpf(0.49) + mpmath.mpf(0.04))
        r = abs(lam_mp)
        hinf, h2 = s / (1 - r), s / mpmath.sqrt(1 - r**2)
    np.testing.assert_allclose(state_hinf_result(sys).value, [float(hinf)], rtol=1e-12)
    np.testing.assert_allclose(state_h2_norms(sys), [float(h2)], rtol=1e-12)
    # the layer H2 of a one-state system is the same number (the Gramian formula, compensated 1 − |λ|²)
    assert float(h2_norm(sys)) == pytest.approx(float(h2), rel=1e-12)


def _mp_pair_sigma_max(lam_mp, b, c, omega) -> mpmath.mpf:
    """σ_max of ½[c bᵀ/(z − λ) + conj(c) conj(b)ᵀ/(z − conj λ)] at z = e^{jω}, from the definition (rank ≤ 2)."""
    z = mpmath.exp(1j * (omega if isinstance(omega, mpmath.mpf) else mpmath.mpf(omega)))
    alpha, beta = 1 / (z - lam_mp), 1 / (z - mpmath.conj(lam_mp))
    G = mpmath.matrix(len(c), len(b))
    for i in range(len(c)):
        for j in range(len(b)):
            ci, bj = mpmath.mpc(c[i]), mpmath.mpc(b[j])
            G[i, j] = (ci * bj * alpha + mpmath.conj(ci) * mpmath.conj(bj) * beta) / 2
    return max(mpmath.svd_c(G, compute_uv=False))


@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("angle", ANGLES)
def test_conjugate_pair_norms_keep_their_digits(margin, angle):
    lam, lam_mp = _mp_lambda(margin, angle)
    b, c = (1.0 + 0.3j, 0.5 - 1.0j), (0.7 + 0.1j, -0.2 + 0.4j)
    result = state_hinf_result(one_state(lam, output="real", b=b, c=c))
    value, peak = float(result.value[0]), float(result.peak[0])
    with mpmath.workdps(50):
        attained = float(_mp_pair_sigma_max(lam_mp, b, c, peak))
        # the supremum: a 50-digit grid around the peak (spacing margin/20), then golden-section refinement in
        # 50 digits, below the resolution of doubles
        step = mpmath.mpf(margin) / 20
        grid = [mpmath.mpf(peak) + step * t for t in range(-60, 61)]
        best = max(grid, key=lambda w: _mp_pair_sigma_max(lam_mp, b, c, w))
        lo, hi = best - step, best + step
        ratio = (mpmath.sqrt(5) - 1) / 2
        for _ in range(80):
            x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
            if _mp_pair_sigma_max(lam_mp, b, c, x1) >= _mp_pair_sigma_max(lam_mp, b, c, x2):
                hi = x2
            else:
                lo = x1
        supremum = float(_mp_pair_sigma_max(lam_mp, b, c, (lo + hi) / 2))
        # exact pair H2² (closed form of the definition: Σ_k ‖h_k‖²_F with h_k = Re(c bᵀ λ^k)), in 50 digits
        cc, bb = sum(mpmath.mpc(x) ** 2 for x in c), sum(mpmath.mpc(x) ** 2 for x in b)
        s2 = sum(abs(mpmath.mpc(x)) ** 2 for x in c) * sum(abs(mpmath.mpc(x)) ** 2 for x in b)
        h2 = mpmath.sqrt(2 * s2 / (1 - abs(lam_mp) ** 2) + 2 * mpmath.re(cc * bb / (1 - lam_mp**2))) / 2
    assert value == pytest.approx(supremum, rel=1e-9)
    # a double ω sits up to ½ ulp from the true peak: the attained value is below the supremum by (ulp/margin)²
    ulp = math.ulp(abs(peak))
    assert attained == pytest.approx(value, rel=max(1e-9, (ulp / margin) ** 2))
    np.testing.assert_allclose(state_h2_norms(one_state(lam, output="real", b=b, c=c)), [float(h2)], rtol=1e-10)


def test_poles_one_ulp_inside_give_finite_norms_and_never_nan():
    lam = complex(np.nextafter(1.0, 0.0), 0.0)  # the largest double below 1: stable, margin 1.1e-16
    for output in ("complex", "real"):
        sys = one_state(lam, output=output)
        assert bool(sys.is_stable)
        values = [state_hinf_result(sys).value, state_h2_norms(sys), h2_norm(sys)]
        assert all(np.all(np.isfinite(v)) and np.all(np.asarray(v) > 0) for v in values)
    margin = stability_margin(np.array([lam]), discrete=True)[0]
    assert margin == pytest.approx(2.0**-53, rel=1e-12)


# ---------------------------------------------------------------------------------------------- layer H∞
def _mp_layer_sigma_max(sys: DiagonalSSM, omega) -> mpmath.mpf:
    """σ_max(G(e^{jω})) of a layer (real or complex output) from its definition, in mpmath's working precision."""
    z = mpmath.exp(1j * omega)
    G = mpmath.matrix(sys.n_outputs, sys.n_inputs)
    for i in range(sys.n_outputs):
        for j in range(sys.n_inputs):
            total = mpmath.mpf(0)
            for k in range(sys.n_states):
                lam = mpmath.mpc(sys.poles[k].real, sys.poles[k].imag)
                cb = mpmath.mpc(sys.C[i, k]) * mpmath.mpc(sys.B[k, j])
                if sys.output == "real":
                    total += (cb / (z - lam) + mpmath.conj(cb) / (z - mpmath.conj(lam))) / 2
                else:
                    total += cb / (z - lam)
            G[i, j] = total
    return max(mpmath.svd_c(G, compute_uv=False))


def _mp_supremum(sys: DiagonalSSM, center, width) -> float:
    """sup of σ_max near ``center`` (200 bits): a grid of spacing width/10, then golden-section refinement."""
    with mpmath.workprec(200):
        step = mpmath.mpf(width) / 10
        grid = [center + step * t for t in range(-80, 81)]
        grid = [w for w in grid if -mpmath.pi <= w <= mpmath.pi]
        best = max(grid, key=lambda w: _mp_layer_sigma_max(sys, w))
        lo, hi = best - step, min(best + step, mpmath.pi)
        ratio = (mpmath.sqrt(5) - 1) / 2
        for _ in range(70):
            x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
            if _mp_layer_sigma_max(sys, x1) >= _mp_layer_sigma_max(sys, x2):
                hi = x2
            else:
                lo = x1
        return float(_mp_layer_sigma_max(sys, (lo + hi) / 2))


def assert_bracket_contains_the_supremum(poles: np.ndarray, margin: float, output: str, rng) -> None:
    """Random B, C for ``poles`` (the first one ``margin`` from the circle): the certified bracket contains the
    200-bit supremum near that pole, and the value is within its rtol (or within the bracket's honest width)."""
    B = rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2))
    C = rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3))
    sys = DiagonalSSM(poles, B, C, dt=True, output=output)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an uncertified bracket is allowed, an invalid one is not
        result = hinf_result(sys, method="diagonal")
    with mpmath.workprec(200):
        center = mpmath.arg(mpmath.mpc(poles[0].real, poles[0].imag))
        center = abs(center) if output == "real" else center
    reference = _mp_supremum(sys, center, margin)
    assert result.lower <= reference * (1 + 1e-12) and result.upper >= reference * (1 - 1e-12)
    assert result.value == pytest.approx(reference, rel=max(1e-8, float(result.upper / result.lower - 1)))


@pytest.mark.parametrize("output", ["real", "complex"])
@pytest.mark.parametrize("margin", [1e-9, 1e-11, 1e-13])
@pytest.mark.parametrize("angle", [math.pi, math.pi - 1e-12, 1e-7, 2.2])
def test_certified_bracket_contains_a_200_bit_reference_next_to_the_circle(margin, angle, output):
    """Near z = −1 a pole and its conjugate copy sit at ±π: the bracket must contain the norm (issue: it used to
    exclude it by 1e-7 at 1e-9 margins); near z = +1 and at a generic angle as well."""
    rng = np.random.default_rng(5)
    poles = np.array([(1 - margin) * np.exp(1j * angle), 0.5 * np.exp(1.0j), 0.7 * np.exp(-0.3j)])
    assert_bracket_contains_the_supremum(poles, margin, output, rng)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    exponent=st.floats(-13, -6),
    where=st.sampled_from(["near 0", "near pi", "generic"]),
    output=st.sampled_from(["real", "complex"]),
)
def test_bracket_contains_the_reference_for_random_systems_next_to_the_circle(seed, exponent, where, output):
    """Property: for any layer with a pole 1e-6 … 1e-13 from the circle (near z = 1, z = −1 or generic), the
    certified bracket contains the 200-bit supremum and the value is within its rtol (or its honest width)."""
    rng = np.random.default_rng(seed)
    margin = 10.0**exponent
    angle = {
        "near 0": 10 ** rng.uniform(-12, -3),
        "near pi": math.pi - 10 ** rng.uniform(-13, -3),
        "generic": rng.uniform(0.2, 3.0),
    }[where] * rng.choice([-1.0, 1.0])
    others = rng.uniform(0.2, 0.8, 2) * np.exp(1j * rng.uniform(-3, 3, 2))
    poles = np.concatenate([[(1 - margin) * np.exp(1j * angle)], others])
    assert_bracket_contains_the_supremum(poles, margin, output, rng)

"""Certified diagonal H∞ (method="diagonal", hinf_result brackets) against SLICOT AB13DD called directly,
exact rational closed forms for near-boundary poles, and dense frequency sweeps."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ssmtools import DiagonalSSM, OptionError, UnstableSystemWarning, hinf_norm, hinf_result
from ssmtools._backends.slycot import linf_norm
from ssmtools.examples import random_s5_model, s5_layer_e5
from ssmtools.systems import real_standard_form

from .conftest import SYSTEM_CASES, case_id, random_system, sweep_sigma_max

CASES = SYSTEM_CASES
CASE_IDS = [case_id(case) for case in CASES]


def ab13dd(sys: DiagonalSSM) -> tuple[float, float]:
    """SLICOT AB13DD on the real standard form (math.md §1.1–1.2), tol 1e-12: not our code."""
    A, B, C, D = real_standard_form(sys)
    return linf_norm(A, B, C, D, discrete=sys.is_discrete, tol=1e-12)


def assert_certified(
    sys: DiagonalSSM, reference: float, *, rtol: float = 1e-8, ref_rtol: float = 1e-10, floor: float = 1e-10
):
    """value within rtol of the reference, and lower ≤ reference ≤ upper (up to the reference's own error)."""
    result = hinf_result(sys, method="diagonal")
    value, lower, upper = result.value, result.lower, result.upper
    assert value == pytest.approx(reference, rel=rtol)
    assert lower <= reference * (1 + ref_rtol)
    assert upper >= reference * (1 - ref_rtol)
    assert lower <= value <= upper <= value * (1 + 1e-8) + floor * max(value, 1.0)


# ----------------------------------------------------------------------------- worked examples
def test_e5_layer_matches_math_md():
    layer = s5_layer_e5()
    result = hinf_result(layer, method="diagonal")
    value, peak = result.value, result.peak
    assert value == pytest.approx(19.7336337552, rel=1e-10)
    assert peak == pytest.approx(0.5998007, abs=1e-6)
    assert hinf_norm(layer.replace(D=None), method="diagonal") == pytest.approx(19.7762614005, rel=1e-10)


# ----------------------------------------------------------------------------- randomised vs AB13DD
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_random_small_systems_match_ab13dd(case):
    """7 cases × 30 systems (n 1–8 states, 1–4 inputs/outputs, D ≠ 0 mostly), margins down to 1e-3."""
    for seed in range(30):
        rng = np.random.default_rng(seed)
        n, m, p = int(rng.integers(1, 9)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sys = random_system(seed, n=n, m=m, p=p, with_d=seed % 5 != 0, **case)
        assert_certified(sys, ab13dd(sys)[0])


@pytest.mark.parametrize("case", CASES[:4], ids=CASE_IDS[:4])
def test_adversarial_sharp_peaks_match_ab13dd(case):
    """Lightly damped poles (margins 1e-7–1e-4) next to broad ones: resonances a sweep would miss.
    AB13DD's own relative error grows like eps/margin, so the comparison allows 1e-8 + 1e-15/margin."""
    for seed in range(15):
        sys = random_system(100 + seed, n=6, m=3, p=2, min_margin=1e-7, **case)
        margin = float(np.min(sys.stability_margin))
        reference = ab13dd(sys)[0]
        allowed = 1e-8 + 1e-15 / margin
        assert_certified(sys, reference, rtol=allowed, ref_rtol=allowed)


def _exact_siso_single_pole(lam: complex, g: complex, d: complex) -> float:
    """max_ω |d + g/(e^{jω} − λ)| exactly: the image of the circle is the circle with centre
    conj(λ)/(1 − |λ|²) and radius 1/(1 − |λ|²); 1 − |λ|² in exact rational arithmetic."""
    x, y = Fraction(lam.real), Fraction(lam.imag)
    denominator = 1 - x * x - y * y
    cx, cy = x / denominator, -y / denominator  # conj(λ)/(1 − |λ|²)
    gx, gy, dx, dy = Fraction(g.real), Fraction(g.imag), Fraction(d.real), Fraction(d.imag)
    centre_x, centre_y = dx + gx * cx - gy * cy, dy + gx * cy + gy * cx
    return float(np.hypot(float(centre_x), float(centre_y))) + abs(g) / float(denominator)


@pytest.mark.parametrize("margin", [1e-6, 1e-9, 1e-10])
@pytest.mark.parametrize("state_includes_input", [False, True])
def test_near_boundary_pole_exact_rational_reference(margin, state_includes_input):
    """Poles within 1e-12 of the unit circle: compare with an exact closed form (not AB13DD, whose
    accuracy degrades there) to 1e-8 relative, and the certificate must bracket it."""
    rng = np.random.default_rng(int(1 / margin) % 1000 + state_includes_input)
    for _ in range(5):
        lam = (1 - margin) * np.exp(1j * rng.uniform(-np.pi, np.pi))
        g, d = complex(*rng.standard_normal(2)), complex(*rng.standard_normal(2))
        sys = DiagonalSSM(
            [lam], [[g]], [[1.0]], [[d]], dt=True, output="complex", state_includes_input=state_includes_input
        )
        # z/(z − λ) = 1 + λ/(z − λ): same closed form with d + g and gλ
        reference = (
            _exact_siso_single_pole(complex(sys.poles[0]), g * sys.poles[0], d + g)
            if state_includes_input
            else _exact_siso_single_pole(complex(sys.poles[0]), g, d)
        )
        value = hinf_norm(sys, method="diagonal")
        result = hinf_result(sys, method="diagonal")
        lower, upper = result.lower, result.upper
        assert value == pytest.approx(reference, rel=1e-8)
        assert lower <= reference * (1 + 1e-12) and upper >= reference * (1 - 1e-12)


def test_margin_below_frequency_resolution_keeps_a_valid_bracket_and_warns():
    """At 1e-13 from the circle the peak is narrower than the spacing of doubles near ω: the bracket
    stays valid (just wider than rtol) and hinf_norm says it falls back to AB13DD."""
    lam, g, d = (1 - 1e-13) * np.exp(0.9j), 0.3 - 0.2j, 0.5 + 0j
    sys = DiagonalSSM([lam], [[g]], [[1.0]], [[d]], dt=True, output="complex")
    reference = _exact_siso_single_pole(complex(sys.poles[0]), g, d)
    with pytest.warns(RuntimeWarning, match="could not certify"):
        result = hinf_result(sys, method="diagonal")
    lower, upper = result.lower, result.upper
    assert lower <= reference * (1 + 1e-12) and upper >= reference * (1 - 1e-12)
    assert upper > lower * (1 + 1e-8)
    assert lower <= result.value <= upper and result.method == "diagonal"  # attained, inside its bracket


def test_near_boundary_conjugate_pair_layer_brackets_dense_local_sweep():
    """Real-output layer with one pair 1e-9 from the circle: the value is attained (σ_max at the
    reported peak, python-control's evaluation) and the upper bound exceeds a fine local sweep."""
    sys = random_system(7, n=4, m=2, p=2, output="real", state_includes_input=True)
    poles = sys.poles.copy()
    poles[0] = (1 - 1e-9) * np.exp(1j * 1.1)
    sys = sys.replace(poles=poles)
    result = hinf_result(sys, method="diagonal")
    value, peak, upper = result.value, result.peak, result.upper
    local = 1.1 + 1e-9 * np.linspace(-20, 20, 801)
    sweep = sweep_sigma_max(sys, local)
    assert np.max(sweep) <= upper * (1 + 1e-7)  # the sweep itself carries ~1e-16/1e-9 relative error
    assert sweep_sigma_max(sys, np.array([peak]))[0] == pytest.approx(value, rel=1e-6)
    assert value == pytest.approx(ab13dd(sys)[0], rel=1e-6)


def test_clustered_and_repeated_poles_match_ab13dd():
    rng = np.random.default_rng(3)
    for case in CASES:
        discrete = case["dt"] is True or case["dt"] > 0
        base = 0.99 * np.exp(0.7j) if discrete else -0.01 + 2j
        poles = np.array([base, base, base + 1e-7, base * (1 - 1e-4), 0.5 if discrete else -1.0])
        B = rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))
        C = rng.standard_normal((2, 5)) + 1j * rng.standard_normal((2, 5))
        D = rng.standard_normal((2, 3)) if case["output"] == "real" else rng.standard_normal((2, 3)) * (1 + 1j)
        sys = DiagonalSSM(poles, B, C, D, **case)
        assert_certified(sys, ab13dd(sys)[0])


def test_continuous_time_peak_at_infinity():
    """CT with a large D: the supremum is approached as ω → ∞ (reported peak inf)."""
    sys = DiagonalSSM([-1.0 + 0j, -2.0 + 3j], [[0.1], [0.1]], [[0.1, 0.1]], [[5.0]], dt=0, output="real")
    result = hinf_result(sys, method="diagonal")
    value, peak = result.value, result.peak
    assert value == pytest.approx(ab13dd(sys)[0], rel=1e-8)
    assert value >= 5.0 and (peak == np.inf or sweep_sigma_max(sys, np.array([peak]))[0] == pytest.approx(value))


@pytest.mark.parametrize("complex_d", [False, True])
def test_real_data_with_complex_output_and_possibly_complex_d(complex_d):
    """All-real poles, B, C: the response is conjugate-symmetric only if D is real too."""
    rng = np.random.default_rng(11)
    D = rng.standard_normal((2, 2)) + (1j * rng.standard_normal((2, 2)) if complex_d else 0)
    sys = DiagonalSSM(
        [0.9, -0.7, 0.3],
        rng.standard_normal((3, 2)),
        rng.standard_normal((2, 3)),
        D,
        dt=True,
        output="complex",
        state_includes_input=True,
    )
    assert_certified(sys, ab13dd(sys)[0])


def test_zero_dynamics_give_norm_of_d():
    D = np.array([[1.0, 2.0], [0.0, -1.0]])
    sys = DiagonalSSM([0.5, 0.3j], np.zeros((2, 2)), np.ones((2, 2)), D, dt=True, output="real")
    assert hinf_norm(sys, method="diagonal") == pytest.approx(np.linalg.norm(D, 2), rel=1e-14)


def test_medium_s5_layers_match_ab13dd():
    """S5-initialised layers (broadband responses, P = 24 pairs, H = 12): a few medium systems."""
    model = random_s5_model(n_layers=2, n_states=24, width=12, seed=5)
    for layer in model.values():
        assert_certified(layer, ab13dd(layer)[0])


def test_batched_equals_elementwise_and_unstable_is_inf():
    sys = random_system(4, n=5, batch=(2, 3), state_includes_input=True)
    values = hinf_norm(sys, method="diagonal")
    assert values.shape == (2, 3)
    for index in np.ndindex(2, 3):
        assert values[index] == pytest.approx(ab13dd(sys[index])[0], rel=1e-8)
    poles = sys.poles.copy()
    poles[1, 2, 0] = 1.01
    with pytest.warns(UnstableSystemWarning):
        result = hinf_result(sys.replace(poles=poles), method="diagonal")
    values, peaks, lower, upper = result.value, result.peak, result.lower, result.upper
    assert values[1, 2] == np.inf and np.isnan(peaks[1, 2]) and np.all(np.isfinite(values[0]))
    assert lower[1, 2] == upper[1, 2] == np.inf


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), case=st.sampled_from(CASES), n=st.integers(1, 6))
def test_upper_bound_dominates_every_frequency(seed, case, n):
    """Invariant: no frequency (python-control's evaluation) exceeds the certified upper bound."""
    sys = random_system(seed, n=n, m=2, p=2, min_margin=1e-4, **case)
    result = hinf_result(sys, method="diagonal")
    lower, upper = result.lower, result.upper
    discrete = sys.is_discrete
    grid = np.linspace(-np.pi, np.pi, 129) if discrete else np.linspace(-20, 20, 129)
    resonances = np.angle(sys.poles) if discrete else sys.poles.imag
    sigma = sweep_sigma_max(sys, np.concatenate([grid, resonances, -resonances]))
    assert np.max(sigma) <= upper * (1 + 1e-12)
    assert lower <= upper


def test_bad_arguments_raise_with_a_fix():
    sys = s5_layer_e5()
    with pytest.raises(ValueError, match="rtol"):
        hinf_norm(sys, method="diagonal", rtol=0.0)
    with pytest.raises(ValueError, match="method"):
        hinf_norm(sys, method="sweep")
    with pytest.raises(OptionError, match="has no AB13DD engine"):
        hinf_norm(sys, method="slycot", backend="torch")
    with pytest.raises(OptionError, match="needs backend='torch'"):
        hinf_result(sys, device="cpu")


# ----------------------------------------------------------------------------- structure used for speed
@pytest.mark.parametrize("output", ["real", "complex"])
def test_pole_at_zero_with_state_includes_input_keeps_its_feedthrough(output):
    """A DT pole exactly at 0 with state-includes-input is a pure feedthrough c bᵀ: it must stay in G."""
    rng = np.random.default_rng(3)
    poles = np.array([0.0, 0.6 + 0.3j, -0.4 + 0.5j])
    B = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    C = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    sys = DiagonalSSM(poles, B, C, np.diag([0.3, -0.7]), dt=True, output=output, state_includes_input=True)
    assert_certified(sys, ab13dd(sys)[0])


def broadband_layer(P: int, H: int, seed: int = 11) -> DiagonalSSM:
    """Re λ = −0.5 for every state (HiPPO-like, bumps of similar height over a diagonal D of the same
    size): the flat response where the algorithm forms G at every frequency it visits."""
    rng = np.random.default_rng(seed)
    step = np.exp(rng.uniform(np.log(1e-2), np.log(1e-1), P))
    lam = np.exp((-0.5 + 1j * np.pi * np.arange(P)) * step)
    B = (rng.standard_normal((P, H)) + 1j * rng.standard_normal((P, H))) / np.sqrt(2 * H) * step[:, None]
    C = (rng.standard_normal((H, P)) + 1j * rng.standard_normal((H, P))) * np.sqrt(2.0 / P)
    return DiagonalSSM(lam, B, C, np.diag(rng.standard_normal(H)), dt=True, output="real", state_includes_input=True)


@pytest.mark.parametrize("P, H", [(24, 12), (64, 64)])  # (64, 64): large enough for the real pair factors
def test_broadband_layer_matches_ab13dd(P, H):
    layer = broadband_layer(P, H)
    # the evaluation floor atol ∝ (N + m + p)·Σ_i s_i|ψ_i| is ~3e-10 relative when every state contributes
    assert_certified(layer, ab13dd(layer)[0], floor=1e-9)


def test_pair_outer_products_form_the_frequency_response():
    """G_k built from ``pair_outer_products`` by one real GEMM equals ``_kernels.diagonal_freqresp``."""
    from ssmtools._hinf_diagonal import _formed_responses, _resolvent, circle_form, pair_outer_products
    from ssmtools._kernels import diagonal_freqresp

    layer = broadband_layer(64, 64)
    flags = dict(discrete=True, real_output=True, state_includes_input=True)
    form, _ = circle_form(layer.poles, layer.B, layer.C, layer.D, **flags)
    outer = pair_outer_products(form)
    assert outer is not None and pair_outer_products(form, max_elements=10) is None
    omega = np.array([0.0, 0.3, 1.7, np.pi])
    reference = diagonal_freqresp(layer.poles, layer.B, layer.C, layer.D, omega, **flags)
    G = _formed_responses(form, _resolvent(form, omega), outer)
    np.testing.assert_allclose(G, reference, rtol=0, atol=1e-12 * np.abs(reference).max())


def test_real_pair_factors_reproduce_the_complex_product():
    """C_r K(ψ) B_r of ``pair_factors_real`` equals Σ_i ψ_i c_i b_iᵀ formed directly, for paired states,
    and unpaired states are refused (None)."""
    from ssmtools._hinf_diagonal import _couple, _pair_coupling, pair_factors_real

    rng = np.random.default_rng(0)
    P, p, m = 5, 3, 4
    B1 = rng.standard_normal((P, m)) + 1j * rng.standard_normal((P, m))
    C1 = rng.standard_normal((p, P)) + 1j * rng.standard_normal((p, P))
    B, C = np.concatenate([B1, np.conj(B1)]), np.concatenate([C1, np.conj(C1)], axis=1)
    psi = rng.standard_normal((2, 2 * P)) + 1j * rng.standard_normal((2, 2 * P))
    Br, Cr, _, _ = pair_factors_real(B, C)
    S, Delta = _pair_coupling(psi)
    for k in range(2):
        direct = np.einsum("pn,n,nm->pm", C, psi[k], B)
        KB = _couple(S[k : k + 1], Delta[k : k + 1], Br.T.astype(complex)).T  # K B_r, column by column
        np.testing.assert_allclose(Cr @ KB, direct, rtol=1e-13, atol=1e-13)
    assert pair_factors_real(B1, C1) is None
    assert pair_factors_real(np.concatenate([B1, B1]), np.concatenate([C1, np.conj(C1)], axis=1)) is None


@pytest.mark.parametrize("seed", range(4))
def test_interval_remainders_bound_the_interpolation_error(seed):
    """Both interval remainder bounds dominate ‖G(ω) − linear interpolant of G(a), G(b)‖₂, with G
    from ``_kernels.diagonal_freqresp`` on the original system (not the circle form) on a dense grid."""
    from ssmtools._hinf_diagonal import _frobenius_remainder, _interpolation_remainder, circle_form
    from ssmtools._kernels import diagonal_freqresp

    sys = random_system(seed, n=6, m=3, p=4, state_includes_input=bool(seed % 2), min_margin=1e-2)
    flags = dict(discrete=True, real_output=True, state_includes_input=sys.state_includes_input)
    form, _ = circle_form(sys.poles, sys.B, sys.C, sys.D, **flags)
    rng = np.random.default_rng(seed)
    a = np.sort(rng.uniform(0, np.pi, 20))
    b = a + np.exp(rng.uniform(np.log(1e-3), np.log(0.3), 20))
    bounds = (_interpolation_remainder(form, a, b), _frobenius_remainder(form, a, b))
    for k in range(a.size):
        t = np.linspace(0.0, 1.0, 201)
        G = diagonal_freqresp(
            sys.poles, sys.B, sys.C, sys.D, np.concatenate([[a[k], b[k]], a[k] + t * (b[k] - a[k])]), **flags
        )
        interpolant = (1 - t)[:, None, None] * G[0] + t[:, None, None] * G[1]
        error = np.max(np.linalg.norm(G[2:] - interpolant, ord=2, axis=(1, 2)))
        for bound in bounds:
            assert error <= bound[k] * (1 + 1e-9) + 1e-12


# ----------------------------------------------------------------------------- strictly proper, few states
WIDE_CASES = [
    dict(dt=True, output="real"),
    dict(dt=True, output="real", state_includes_input=True),
    dict(dt=True, output="complex"),
    dict(dt=0.0, output="real"),
    dict(dt=0.0, output="complex"),
]


@pytest.mark.parametrize("case", WIDE_CASES, ids=[case_id(case) for case in WIDE_CASES])
def test_strictly_proper_system_with_few_states_is_compressed_and_matches_ab13dd(case):
    """D = 0 and fewer (augmented) states than outputs and inputs, as a modal truncation's error system: the
    circle form is N×N, its singular values are those of the dense G (SVD of ``diagonal_freqresp``), and the
    certified norm matches AB13DD."""
    from ssmtools._hinf_diagonal import _formed_responses, _resolvent, circle_form
    from ssmtools._kernels import diagonal_freqresp

    for seed in range(4):
        sys = random_system(seed, n=3, m=9, p=8, with_d=False, **case)
        flags = dict(
            discrete=sys.is_discrete, real_output=sys.output == "real", state_includes_input=sys.state_includes_input
        )
        form, alpha = circle_form(sys.poles, sys.B, sys.C, sys.D, **flags)
        n_states = 2 * sys.n_states if sys.output == "real" else sys.n_states
        assert form.D.shape == (n_states, n_states) and form.C.shape == form.B.shape == (n_states, n_states)
        if sys.output == "real":  # the real bases keep the conjugate pairs, so the real pair factors still apply
            assert np.array_equal(form.C[:, 3:], np.conj(form.C[:, :3]))
        omega = np.array([0.0, 0.4, 2.5, 3.0])  # the form's circle frequencies, mapped back for CT
        user = omega if alpha is None else alpha * np.tan(0.5 * omega)
        dense = diagonal_freqresp(sys.poles, sys.B, sys.C, sys.D, user, **flags)
        compact = _formed_responses(form, _resolvent(form, omega), None)
        np.testing.assert_allclose(
            np.linalg.svd(compact, compute_uv=False)[:, :n_states],
            np.linalg.svd(dense, compute_uv=False)[:, :n_states],
            rtol=1e-11,
            atol=1e-12 * float(np.abs(dense).max()),
        )
        assert_certified(sys, ab13dd(sys)[0])

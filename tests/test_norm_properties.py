"""Property-based invariants of the norms (hypothesis): subadditivity, modal and Hankel bounds, scaling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ssmtools import DiagonalSSM, h2_norm, hankel_singular_values, hinf_norm, state_hinf_norms

from .conftest import random_system

RTOL = 1e-8


def random_systems(*, n: tuple[int, int], m: tuple[int, int], p: tuple[int, int], min_margin: list[float]):
    """Hypothesis strategy of ``conftest.random_system``: sizes in the given (low, high) ranges, DT (2 in 3) or CT,
    real or complex output, with or without D, stability margin drawn from ``min_margin``."""
    return st.builds(
        random_system,
        seed=st.integers(0, 2**31 - 1),
        n=st.integers(*n),
        m=st.integers(*m),
        p=st.integers(*p),
        dt=st.sampled_from([True, True, 0]),
        output=st.sampled_from(["real", "complex"]),
        with_d=st.booleans(),
        min_margin=st.sampled_from(min_margin),
    )


systems = random_systems(n=(1, 6), m=(1, 3), p=(1, 3), min_margin=[1e-3, 1e-2]).map(
    lambda s: s if s.dt == 0 else s.replace(state_includes_input=bool(np.random.default_rng(s.n_states).integers(2)))
)

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)


def parallel_sum(first: DiagonalSSM, second: DiagonalSSM) -> DiagonalSSM:
    """G1 + G2 as one diagonal system: states concatenated, feedthroughs added."""
    return first.replace(
        poles=np.concatenate([first.poles, second.poles]),
        B=np.concatenate([first.B, second.B]),
        C=np.concatenate([first.C, second.C], axis=-1),
        D=first.D + second.D,
    )


@PROPERTY_SETTINGS
@given(systems, st.integers(0, 2**31 - 1))
def test_hinf_and_h2_are_subadditive(sys, seed):
    other = random_system(
        seed,
        n=3,
        m=sys.n_inputs,
        p=sys.n_outputs,
        dt=sys.dt,
        output=sys.output,
        state_includes_input=sys.state_includes_input,
        with_d=sys.has_feedthrough,
    )
    total = parallel_sum(sys, other)
    assert hinf_norm(total) <= (hinf_norm(sys) + hinf_norm(other)) * (1 + RTOL)
    if sys.is_discrete or not (sys.has_feedthrough or other.has_feedthrough):
        assert h2_norm(total) <= (h2_norm(sys) + h2_norm(other)) * (1 + RTOL)


@PROPERTY_SETTINGS
@given(systems)
def test_state_norm_and_hankel_bounds(sys):
    """σ₁ ≤ ‖G − D‖∞ ≤ min(Σ_i ‖G_i‖∞, 2Σσ_j) and ‖G‖∞ ≤ Σ_i ‖G_i‖∞ + ‖D‖₂ (math.md §4.5)."""
    strictly_proper = sys.replace(D=None)
    value = hinf_norm(strictly_proper)
    hsv = hankel_singular_values(sys)
    modal_bound = np.sum(state_hinf_norms(sys))
    assert hsv[0] <= value * (1 + RTOL)
    assert value <= modal_bound * (1 + RTOL)
    assert value <= 2 * np.sum(hsv) * (1 + RTOL)
    assert hinf_norm(sys) <= (modal_bound + np.linalg.norm(sys.D, 2)) * (1 + RTOL)


@PROPERTY_SETTINGS
@given(systems, st.floats(-10, 10).filter(lambda a: abs(a) > 1e-3))
def test_norms_scale_with_the_output(sys, alpha):
    scaled = sys.replace(C=alpha * sys.C, D=alpha * sys.D)
    assert hinf_norm(scaled) == pytest.approx(abs(alpha) * hinf_norm(sys), rel=RTOL)
    assert h2_norm(scaled) == pytest.approx(abs(alpha) * h2_norm(sys), rel=1e-10)
    np.testing.assert_allclose(state_hinf_norms(scaled), abs(alpha) * state_hinf_norms(sys), rtol=1e-10)


@PROPERTY_SETTINGS
@given(systems)
def test_h2_is_invariant_under_state_permutation(sys):
    order = np.random.default_rng(sys.n_states).permutation(sys.n_states)
    permuted = sys.replace(poles=sys.poles[order], B=sys.B[order], C=sys.C[:, order])
    assert h2_norm(permuted) == pytest.approx(h2_norm(sys), rel=1e-12)

"""The largest singular triplet by Lanczos (``_hinf_diagonal.top_singular_triplet``) against LAPACK's SVD, and the
level-set certificate on layers wide enough to use it, against SLICOT AB13DD."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ssmtools import _hinf_diagonal as hd
from ssmtools.examples import init_layer

from .test_hinf_families import ab13dd, bracket


def _check(G: np.ndarray, sigma: float, u: np.ndarray, v: np.ndarray, *, rel: float) -> None:
    reference = np.linalg.svd(G, compute_uv=False)[0]
    assert sigma <= reference * (1 + 1e-14)  # a Rayleigh lower bound, converged or not
    assert sigma == pytest.approx(reference, rel=rel)
    assert np.linalg.norm(v) == pytest.approx(1.0, rel=1e-14)
    assert abs(np.vdot(u, G @ v)) == pytest.approx(sigma, rel=1e-13)


def test_random_matrix_matches_svd():
    rng = np.random.default_rng(0)
    G = rng.standard_normal((140, 120)) + 1j * rng.standard_normal((140, 120))
    _check(G, *hd.top_singular_triplet(G), rel=1e-13)


def test_clustered_top_singular_values_match_svd():
    """A D-dominated response: singular values within 1e-3 of each other at the top, a small dynamic part."""
    rng = np.random.default_rng(1)
    n = 128
    D = np.diag(1.0 + 1e-3 * rng.standard_normal(n))
    low_rank = 1e-3 * (rng.standard_normal((n, 8)) + 1j * rng.standard_normal((n, 8))) @ rng.standard_normal((8, n))
    G = D + low_rank
    start = np.full(n, 1e-3 / np.sqrt(n), dtype=complex)
    start[int(np.argmax(np.diag(D)))] += 1.0
    _check(G, *hd.top_singular_triplet(G, start), rel=1e-12)


def test_exhausted_steps_fall_back_to_eigh():
    """With too few Lanczos steps to converge, the Gram's eigh gives the exact triplet."""
    rng = np.random.default_rng(2)
    G = np.diag(1.0 + 1e-6 * np.arange(100)) + 1e-4 * rng.standard_normal((100, 100))
    _check(G, *hd.top_singular_triplet(G, steps=4), rel=1e-13)


@settings(max_examples=25, deadline=None)
@given(
    p=st.integers(1, 40),
    m=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(1e-6, 1e6),
)
def test_triplet_is_a_lower_bound_that_converges(p, m, seed, scale):
    rng = np.random.default_rng(seed)
    p, m = max(p, m), min(p, m)
    G = scale * (rng.standard_normal((p, m)) + 1j * rng.standard_normal((p, m)))
    _check(G, *hd.top_singular_triplet(G), rel=1e-12)


@pytest.mark.parametrize("kind", ["S4D-Lin", "D-dominated flat"])
def test_level_set_on_wide_layers_matches_ab13dd(kind):
    """H above ``_LANCZOS_MIN``: the searches and seeds use Lanczos; the certificate still contains AB13DD's value."""
    layer = init_layer(kind, 6, hd._LANCZOS_MIN + 4, seed=3)
    reference = ab13dd(layer)
    result = bracket(layer, level_set=True)
    assert result.certified and result.route == "level-set"
    assert result.lower <= reference * (1 + 1e-12) and result.upper >= reference * (1 - 1e-12)
    assert result.value == pytest.approx(reference, rel=1e-9)
    assert result.upper - result.lower <= 2e-8 * result.value  # rtol plus the floor of a 100-wide layer


@pytest.mark.parametrize("n", [1, 2, 3, 17, 60])
def test_top_ritz_pairs_match_a_dense_eigh(n):
    """The two largest eigenpairs of a symmetric tridiagonal (LAPACK's dstemr), ascending, as numpy's eigh of the
    formed matrix gives them (eigenvectors up to sign); one pair at size 1."""
    rng = np.random.default_rng(n)
    alpha, beta = rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 0.3, n - 1)
    values, vectors = hd._top_ritz_pairs(alpha, beta)
    dense = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    expected_values, expected_vectors = np.linalg.eigh(dense)
    k = min(2, n)
    np.testing.assert_allclose(values, expected_values[-k:], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.abs(vectors), np.abs(expected_vectors[:, -k:]), atol=1e-12)

"""SLICOT MB03XD through ``_backends.slycot.hamiltonian_eigenvalues`` against LAPACK's general eigensolver."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ssmtools._backends import slycot as _slycot


def _hamiltonian(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    F = rng.standard_normal((n, n))
    G, Q = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    return F, G + G.T, Q + Q.T


def _matched(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance from an eigenvalue of one set to the nearest of the other (both ways)."""
    distance = np.abs(a[:, None] - b[None, :])
    return float(max(distance.min(axis=0).max(), distance.min(axis=1).max()))


def test_the_routine_is_found_in_slycot():
    assert _slycot._mb03xd() is not None


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_matches_general_eigenvalues(n, seed):
    F, G, Q = _hamiltonian(np.random.default_rng(seed), n)
    H = np.block([[F, G], [Q, -F.T]])
    eig = _slycot.hamiltonian_eigenvalues(F, G, Q)
    assert eig is not None and eig.size == 2 * n
    reference = np.linalg.eigvals(H)
    scale = np.linalg.norm(H, 2)
    # eigenvalues of a nonnormal matrix are ill-conditioned: compare in the backward-error sense, loosely
    assert _matched(eig, reference) <= 1e-6 * scale
    assert np.allclose(np.sort_complex(eig), np.sort_complex(-eig))  # the pairing ±λ is exact


def test_imaginary_eigenvalues_stay_on_the_axis():
    """``[[0, I], [−diag(t²), 0]]`` has the eigenvalues ±j t: returned with real part exactly zero."""
    t = np.array([0.5, 1.0, 3.0, 7.25])
    eig = _slycot.hamiltonian_eigenvalues(np.zeros((4, 4)), np.eye(4), -np.diag(t**2))
    assert eig is not None
    assert np.all(eig.real == 0.0)
    assert np.allclose(np.sort(eig.imag), np.sort(np.concatenate([t, -t])), rtol=1e-14)


def test_large_hamiltonians_go_to_lapack():
    n = _slycot._HAMILTONIAN_MAX + 1
    F, G, Q = _hamiltonian(np.random.default_rng(0), n)
    assert _slycot.hamiltonian_eigenvalues(F, G, Q) is None


def test_a_missing_routine_gives_none(monkeypatch):
    monkeypatch.setattr(_slycot, "_mb03xd", lambda: None)
    F, G, Q = _hamiltonian(np.random.default_rng(0), 3)
    assert _slycot.hamiltonian_eigenvalues(F, G, Q) is None


@pytest.mark.parametrize("n", [0])
def test_empty(n):
    assert _slycot.hamiltonian_eigenvalues(np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n))) is None

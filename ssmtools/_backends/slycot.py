"""SLICOT reference routines (AB13DD, AB13BD) called directly through slycot.

python-control's ``control.norm`` passes ``tol=1e-6`` to AB13DD and reports ``inf`` for discrete
poles within about 1e-5 of the unit circle, so ssmtools calls slycot itself on the real
standard-form realization (math.md §1.1–1.2) with a tight tolerance.
"""

from __future__ import annotations

import numpy as np


def _slycot():
    try:
        import slycot
    except ImportError as exc:  # pragma: no cover - slycot is a core dependency
        raise ImportError("slycot is required for method='slycot': pip install slycot") from exc
    return slycot


def linf_norm(A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray, *, discrete: bool, tol: float):
    """AB13DD: ``(sup_ω σ_max(G), ω_peak)`` of one real standard-form system (rad/sample for DT)."""
    slycot = _slycot()
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    gpeak, fpeak = slycot.ab13dd(
        "D" if discrete else "C", "I", "N", "D", n, m, p,
        np.array(A, order="F"), np.eye(max(n, 1), order="F"), np.array(B, order="F"),
        np.array(C, order="F"), np.array(D, order="F"), tol,
    )
    return float(gpeak), float(fpeak)


def h2_norm(A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray, *, discrete: bool) -> float:
    """AB13BD: H2 norm of one stable real standard-form system."""
    slycot = _slycot()
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    value = slycot.ab13bd(
        "D" if discrete else "C", "H", n, m, p,
        np.array(A, order="F"), np.array(B, order="F"), np.array(C, order="F"), np.array(D, order="F"),
    )
    return float(value)

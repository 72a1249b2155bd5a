"""SLICOT reference routines (AB13DD, AB13BD) called directly through slycot.

python-control's ``control.norm`` passes ``tol=1e-6`` to AB13DD and reports ``inf`` for discrete
poles within about 1e-5 of the unit circle, so ssmtools calls slycot itself on the real
standard-form realization (docs/concepts/derivations.md#standard-form) with a tight tolerance.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError


def _slycot():
    try:
        import slycot
    except ImportError as exc:  # pragma: no cover - slycot is a core dependency
        raise ImportError("slycot is required for method='slycot': pip install slycot") from exc
    return slycot


def _range_basis(M: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the numerical range of M (singular values above size·eps·σ_1), shape (rows, r)."""
    U, sv, _ = np.linalg.svd(M, full_matrices=False)
    if sv.size == 0 or sv[0] == 0:
        return U[:, :0]
    return U[:, : int(np.count_nonzero(sv > max(M.shape) * np.finfo(float).eps * sv[0]))]


def compress_io(
    A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """An equivalent system with as few outputs and inputs as the ranks allow, and the same singular values.

    ``G = C(zI − A)⁻¹B + D = [C, D]·[(zI − A)⁻¹B; I]``: with U an orthonormal basis of the range of
    ``[C, D]``, σ(G) = σ(UᵀC(zI − A)⁻¹B + UᵀD); then the same on the input side with a basis V of the
    range of ``[B; UᵀD]ᵀ``. Truncation-error systems and one-state subsystems have rank([C, D]) ≤ n,
    so AB13DD runs on at most n inputs and outputs instead of the layer width. Real arrays in, real
    arrays out; ``None`` when G ≡ 0.
    """
    n = A.shape[0]
    U = _range_basis(np.concatenate([C, D], axis=1))
    C1, D1 = U.T @ C, U.T @ D
    V = _range_basis(np.concatenate([B, D1]).T)
    if U.shape[1] == 0 or V.shape[1] == 0 or n == 0:
        return None
    return A, B @ V, C1, D1 @ V


def linf_work(n: int, m: int, p: int) -> float:
    """Expected cost of :func:`linf_norm` (AB13DD) in flops, ``2000·n²·(n + m + p) + 2·10⁷`` (fixed cost ~5 ms).

    Fitted to AB13DD's measured times on s5-pytorch layers (n = 64 to 256 real states, m = p = 64 to 256) at the
    machine's measured rate for the diagonal algorithm's exact evaluations, so that the two are comparable:
    ``hinf_result(method="auto")`` switches to AB13DD once the diagonal algorithm has spent this much.
    """
    return 2000.0 * n * n * (n + m + p) + 2e7


def linf_norm(
    A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray, *, discrete: bool, tol: float
) -> tuple[float, float]:
    """AB13DD: ``(sup_ω σ_max(G), ω_peak)`` of one real standard-form system (rad/sample for DT).

    The system is first reduced to its smallest equivalent input/output dimensions
    (``compress_io``), which leaves every singular value of G unchanged. A system without states
    returns ``(σ_max(D), 0)``; G ≡ 0 returns ``(0, 0)``.
    """
    if A.shape[0] == 0:
        return (float(np.linalg.norm(D, 2)) if D.size else 0.0), 0.0
    compressed = compress_io(A, B, C, D)
    if compressed is None:
        return 0.0, 0.0
    A, B, C, D = compressed
    slycot = _slycot()
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    try:
        gpeak, fpeak = slycot.ab13dd(
            "D" if discrete else "C",
            "I",
            "N",
            "D",
            n,
            m,
            p,
            np.array(A, order="F"),
            np.eye(max(n, 1), order="F"),
            np.array(B, order="F"),
            np.array(C, order="F"),
            np.array(D, order="F"),
            tol,
        )
    except slycot.exceptions.SlycotError as exc:
        raise ArgumentError(
            f"SLICOT AB13DD failed on this {n}-state system ({type(exc).__name__}: {exc}); use method='diagonal' "
            "(the certified diagonal algorithm) or check the system for poles on the stability boundary"
        ) from None
    return float(gpeak), float(fpeak)


def h2_norm(A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray, *, discrete: bool) -> float:
    """AB13BD: H2 norm of one stable real standard-form system (a system without states: ‖D‖_F in DT)."""
    if A.shape[0] == 0:
        return float(np.linalg.norm(D)) if discrete else (float("inf") if np.any(D) else 0.0)
    slycot = _slycot()
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    try:
        value = slycot.ab13bd(
            "D" if discrete else "C",
            "H",
            n,
            m,
            p,
            np.array(A, order="F"),
            np.array(B, order="F"),
            np.array(C, order="F"),
            np.array(D, order="F"),
        )
    except slycot.exceptions.SlycotError as exc:
        raise ArgumentError(
            f"SLICOT AB13BD failed on this {n}-state system ({type(exc).__name__}: {exc}); use method='gramian'"
        ) from None
    return float(value)

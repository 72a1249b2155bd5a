"""SLICOT reference routines (AB13DD, AB13BD) called directly through slycot.

python-control's ``control.norm`` passes ``tol=1e-6`` to AB13DD and reports ``inf`` for discrete
poles within about 1e-5 of the unit circle, so ssmtools calls slycot itself on the real
standard-form realization (docs/concepts/derivations.md#standard-form) with a tight tolerance.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

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


def full_rank_diagonal(D: np.ndarray) -> bool:
    """Whether D is square and diagonal with no zero on the diagonal (S5, S4D and LRU layers' skip connection):
    then ``[C, D]`` and ``[B; D]ᵀ`` have full rank for every C and B, and :func:`compress_io` cannot reduce the
    system (also not its standard form, whose ``[C, D + CB] = [C, D]·[[I, B], [0, I]]`` has the same rank)."""
    if D.shape[0] != D.shape[1] or D.size == 0:
        return False
    diagonal = np.diag(D)
    return bool(np.all(diagonal != 0) and not np.any(D - np.diag(diagonal)))


def linf_work(n: int, m: int, p: int) -> float:
    """Expected cost of :func:`linf_norm` (AB13DD) in flops,
    ``2000·n²·(n + m + p) + 250·n·(m + p)² + 60·(m + p)³ + 2·10⁷`` (fixed cost ~5 ms).

    In the units the diagonal algorithm counts its own work in (``_hinf_diagonal.exact_work``), so that the two
    are comparable: the first term was fitted to AB13DD's measured times on s5-pytorch layers (n = 64 to 256
    real states, m = p = 64 to 256), the width terms to layers with few states and many channels (n = 4 to 64,
    m = p = 32 to 256), where AB13DD's work on the (m + p)-sized feedthrough dominates (on those, the diagonal
    algorithm counts ~2·10¹⁰ flops per second). ``hinf_result(method="auto")`` switches to AB13DD once the
    diagonal algorithm has spent this much.
    """
    width = m + p
    return 2000.0 * n * n * (n + width) + 250.0 * n * width**2 + 60.0 * width**3 + 2e7


def linf_norm(
    A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray, *, discrete: bool, tol: float, compress: bool = True
) -> tuple[float, float]:
    """AB13DD: ``(sup_ω σ_max(G), ω_peak)`` of one real standard-form system (rad/sample for DT).

    The system is first reduced to its smallest equivalent input/output dimensions
    (``compress_io``), which leaves every singular value of G unchanged; ``compress=False`` skips that when the
    caller knows nothing can be removed (:func:`full_rank_diagonal`). A system without states
    returns ``(σ_max(D), 0)``; G ≡ 0 returns ``(0, 0)``.
    """
    if A.shape[0] == 0:
        return (float(np.linalg.norm(D, 2)) if D.size else 0.0), 0.0
    if compress:
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


# ----------------------------------------------------------------------------- Hamiltonian eigenvalues (MB03XD)
# largest n for which MB03XD beats LAPACK's QR on 2n, one thread, quiet machine: 1.6× at n = 64 and 96,
# 1.4–1.7× at 128, 1.4–1.8× at 256, 1.2× at 320, 1.0–1.1× at 384, 0.75× at 512 (its periodic QR is unblocked)
_HAMILTONIAN_MAX = 320


@functools.cache
def _mb03xd() -> Any:
    """SLICOT's MB03XD from the library slycot ships (AB13DD's own Hamiltonian eigensolver; slycot does not wrap
    it), checked on ``[[0, 1], [−1, 0]]`` (eigenvalues ±j); ``None`` when it cannot be found or fails the check."""
    try:
        import slycot._wrapper as wrapper

        routine = ctypes.CDLL(wrapper.__file__).mb03xd_
    except (ImportError, OSError, AttributeError):
        return None
    routine.restype = None
    try:
        check = _call_mb03xd(routine, np.zeros((1, 1)), np.ones((1, 1)), -np.ones((1, 1)))
    except (RuntimeError, ctypes.ArgumentError):
        return None
    if check is None or not np.allclose(np.sort_complex(check), [-1j, 1j], atol=1e-15):
        return None
    return routine


def _call_mb03xd(routine: Any, F: np.ndarray, G: np.ndarray, Q: np.ndarray) -> np.ndarray | None:
    """Eigenvalues only (``JOB = 'E'``, no balancing, no U or V) of ``[[F, G], [Q, −Fᵀ]]``, all 2n of them."""
    n = F.shape[0]
    A = np.array(F, dtype=float, order="F")
    QG = np.zeros((n, n + 1), order="F")
    QG[:, :n] = np.tril(Q)  # columns 1..n: the lower triangle of Q; columns 2..n+1: the upper triangle of G
    QG[:, 1:] += np.triu(G)
    T = np.empty((n, n), order="F")
    real, imag, scale = np.zeros(n), np.zeros(n), np.zeros(n)
    lwork = 2 * (7 * n + n * n) + 64 * n
    work, unused = np.empty(lwork), np.empty(1)
    size, one, ilo, info, ldwork = (
        ctypes.c_int(n),
        ctypes.c_int(1),
        ctypes.c_int(0),
        ctypes.c_int(0),
        ctypes.c_int(lwork),
    )
    ref, length = ctypes.byref, ctypes.c_size_t(1)  # gfortran passes the CHARACTER lengths last

    def ptr(x: np.ndarray) -> ctypes.c_void_p:
        return x.ctypes.data_as(ctypes.c_void_p)

    routine(
        *(ctypes.c_char_p(flag) for flag in (b"N", b"E", b"N", b"N")),
        ref(size), ptr(A), ref(size), ptr(QG), ref(size), ptr(T), ref(size),
        ptr(unused), ref(one), ptr(unused), ref(one), ptr(unused), ref(one), ptr(unused), ref(one),
        ptr(real), ptr(imag), ref(ilo), ptr(scale), ptr(work), ref(ldwork), ref(info),
        length, length, length, length,
    )  # fmt: skip
    if info.value != 0:
        return None
    half = real + 1j * imag  # the n eigenvalues with Re ≤ 0 (one of each on-axis pair ±jt: the one with t ≥ 0)
    return np.concatenate([half, -half])


def hamiltonian_eigenvalues(F: np.ndarray, G: np.ndarray, Q: np.ndarray) -> np.ndarray | None:
    """The 2n eigenvalues of the real Hamiltonian ``[[F, G], [Q, −Fᵀ]]`` (G, Q symmetric) by MB03XD: symplectic
    URV and periodic Schur decompositions (Benner, Mehrmann and Xu 1998), backward stable, with the pairing
    ±λ exact, so an eigenvalue on the imaginary axis stays on it. ``None`` (use a general eigensolver) when
    n exceeds ``_HAMILTONIAN_MAX`` (LAPACK is faster there), the routine is not available or it fails."""
    if F.shape[0] > _HAMILTONIAN_MAX or F.shape[0] == 0:
        return None
    routine = _mb03xd()
    return None if routine is None else _call_mb03xd(routine, F, G, Q)

"""Exact norms of bidirectional (non-causal) S5 layers and of one-state subsystems (math.md §1.3).

A bidirectional layer shares poles λ̄ and B̄ between a forward and a backward scan::

    G(e^{jω}) = out[ C1 (I − Λ̄e^{−jω})⁻¹ B̄ + C2 (I − Λ̄e^{jω})⁻¹ B̄ ] + D

(``out`` = Re for ``output="real"``, C already scaled by κ). Its ℓ2 gain is the L∞ norm
sup_ω σ_max(G(e^{jω})), and its energy the two-sided sum Σ_{k∈ℤ} ‖h_k‖²_F. Both are computed here,
in one place, for layers and — through a batch of one-state systems — for every stored state:

- **L∞**: the backward part is realised with poles 1/λ̄ using ``c/(1 − λ̄z) = −(c/λ̄)/(z − 1/λ̄)``,
  stacked with the forward standard form, and handed to SLICOT AB13DD, which computes the L∞ norm of
  systems without poles on the unit circle (math.md §1.3). States with λ̄ = 0 contribute the constant
  ``out(c2 b̄ᵀ)``, added to D.
- **L2**: h_0 = out(C1B̄ + C2B̄) + D, h_k = out(C1Λ̄ᵏB̄), h_{−k} = out(C2Λ̄ᵏB̄) (k ≥ 1), hence
  ``‖G‖₂² = ‖G_f[D ← D + M_b]‖²_H2 + ‖G_b‖²_H2 − ‖M_b‖²_F`` with the causal H2 norms of
  :func:`ssmtools.h2_norm`, G_b the causal system (λ̄, B̄, C2) and M_b = out(C2 B̄).

Unstable states (|λ̄| ≥ 1) make both infinite: reported as ``inf``.
"""

from __future__ import annotations

import numpy as np

from .._backends import slycot as _slycot
from ..errors import silence_unstable
from ..norms import h2_norm
from ..systems import DiagonalSSM, real_standard_form

__all__ = ["bidirectional_linf", "bidirectional_l2", "causal_linf", "compress_io", "one_state_systems"]

_ZERO_POLE = 1e-300


def _feedthrough(system: DiagonalSSM, C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """out(C B) as a feedthrough matrix in the system's D dtype, shape (*batch, p, m)."""
    M = C @ B
    return M.real if system.output == "real" else M


def _range_basis(M: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the numerical range of M (singular values above size·eps·σ_1), shape (rows, r)."""
    U, sv, _ = np.linalg.svd(M, full_matrices=False)
    if sv.size == 0 or sv[0] == 0:
        return U[:, :0]
    return U[:, : int(np.count_nonzero(sv > max(M.shape) * np.finfo(float).eps * sv[0]))]


def compress_io(A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray):
    """An equivalent system with as few outputs and inputs as the ranks allow, and the same singular values.

    ``G = C(zI − A)⁻¹B + D = [C, D]·[(zI − A)⁻¹B; I]``: with U an orthonormal basis of the range of
    ``[C, D]``, σ(G) = σ(UᵀC(zI − A)⁻¹B + UᵀD); then the same on the input side with a basis V of the
    range of ``[B; UᵀD]ᵀ``. Error systems and one-state subsystems have rank([C, D]) ≤ n (their
    feedthrough ``C B`` lies in the range of C), so AB13DD runs on at most n inputs and outputs instead
    of the layer width H. Real arrays in, real arrays out; returns None when G ≡ 0.
    """
    n = A.shape[0]
    U = _range_basis(np.concatenate([C, D], axis=1))
    C1, D1 = U.T @ C, U.T @ D
    V = _range_basis(np.concatenate([B, D1]).T)
    if U.shape[1] == 0 or V.shape[1] == 0 or n == 0:
        return None
    return A, B @ V, C1, D1 @ V


def _linf(A, B, C, D, *, discrete: bool, tol: float) -> float:
    compressed = compress_io(A, B, C, D)
    if compressed is None:
        return 0.0 if A.shape[0] or not np.any(D) else float(np.linalg.norm(D, 2))
    return _slycot.linf_norm(*compressed, discrete=discrete, tol=tol)[0]


def bidirectional_linf(system: DiagonalSSM, C_backward: np.ndarray, *, tol: float = 1e-12) -> np.ndarray:
    """L∞ norm of forward ``system`` plus its backward scan with output columns ``C_backward``.

    Parameters
    ----------
    system : DiagonalSSM
        Discrete time, ``state_includes_input=True``, any batch shape.
    C_backward : ndarray, shape ``(*batch, p, n)``
        Output columns of the anti-causal scan (same scaling as ``system.C``).
    tol : float
        Relative tolerance passed to AB13DD.

    Returns
    -------
    ndarray of float64, shape ``system.batch_shape``
        ``inf`` where a state has |λ̄| ≥ 1.
    """
    C_backward = np.broadcast_to(np.asarray(C_backward, dtype=complex), system.C.shape)
    values = np.full(system.batch_shape, np.inf)
    for index in np.ndindex(*system.batch_shape):
        lam, B, C1, C2 = system.poles[index], system.B[index], system.C[index], C_backward[index]
        if np.any(np.abs(lam) >= 1):
            continue
        zero = np.abs(lam) < _ZERO_POLE
        D = system.D[index] + _feedthrough(system, C2[:, zero], B[zero])
        forward = DiagonalSSM(lam, B, C1, D, dt=True, output=system.output, state_includes_input=True)
        A_f, B_f, C_f, D_f = real_standard_form(forward)
        live = ~zero
        inverse = 1.0 / lam[live]
        backward = DiagonalSSM(inverse, B[live], -C2[:, live] * inverse, dt=True, output=system.output)
        A_b, B_b, C_b, _ = real_standard_form(backward)
        A = np.block([[A_f, np.zeros((A_f.shape[0], A_b.shape[1]))], [np.zeros((A_b.shape[0], A_f.shape[1])), A_b]])
        values[index] = _linf(A, np.concatenate([B_f, B_b]), np.concatenate([C_f, C_b], axis=1), D_f,
                              discrete=True, tol=tol)
    return values


def causal_linf(system: DiagonalSSM, *, tol: float = 1e-12) -> np.ndarray:
    """H∞ norm of a causal (possibly batched) layer by AB13DD on the I/O-compressed standard form.

    Parameters
    ----------
    system : DiagonalSSM
        Discrete time, any batch shape.
    tol : float
        Relative tolerance passed to AB13DD.

    Returns
    -------
    ndarray of float64, shape ``system.batch_shape``
        Same values as :func:`ssmtools.hinf_norm` (``inf`` where unstable), much faster when the layer
        is wide and D = 0 (truncation-error systems), see :func:`compress_io`.
    """
    values = np.full(system.batch_shape, np.inf)
    A_all, B_all, C_all, D_all = real_standard_form(system)
    stable = np.asarray(system.is_stable)
    for index in np.ndindex(*system.batch_shape):
        if stable[index]:
            values[index] = _linf(A_all[index], B_all[index], C_all[index], D_all[index],
                                  discrete=system.is_discrete, tol=tol)
    return values


def bidirectional_l2(system: DiagonalSSM, C_backward: np.ndarray) -> np.ndarray:
    """L2 norm (two-sided impulse-response energy, square-rooted) of a bidirectional layer.

    Parameters
    ----------
    system : DiagonalSSM
        Discrete time, ``state_includes_input=True``, any batch shape.
    C_backward : ndarray, shape ``(*batch, p, n)``
        Output columns of the anti-causal scan.

    Returns
    -------
    ndarray of float64, shape ``system.batch_shape``
        ``inf`` where a state has |λ̄| ≥ 1.
    """
    C_backward = np.broadcast_to(np.asarray(C_backward, dtype=complex), system.C.shape)
    M_b = _feedthrough(system, C_backward, system.B)
    with silence_unstable():
        forward = np.asarray(h2_norm(system.replace(D=system.D + M_b)))
        backward = np.asarray(h2_norm(system.replace(C=C_backward, D=None)))
    value2 = forward**2 + backward**2 - np.sum(np.abs(M_b) ** 2, axis=(-1, -2))
    return np.where(np.isfinite(value2), np.sqrt(np.maximum(value2, 0.0)), np.inf)


def one_state_systems(system: DiagonalSSM, C_backward: np.ndarray | None = None):
    """Every stored state as its own one-state system, batch shape ``(*batch, n)``, D = 0.

    Parameters
    ----------
    system : DiagonalSSM
    C_backward : ndarray, shape ``(*batch, p, n)``, optional

    Returns
    -------
    (DiagonalSSM, ndarray or None)
        The subsystems and their backward columns (shape ``(*batch, n, p, 1)``).
    """
    poles = system.poles[..., None]
    B = system.B[..., :, None, :]
    C = np.moveaxis(system.C, -1, -2)[..., None]
    sub = DiagonalSSM(poles, B, C, dt=system.dt, output=system.output, state_includes_input=system.state_includes_input)
    back = None if C_backward is None else np.moveaxis(np.asarray(C_backward), -1, -2)[..., None]
    return sub, back


def state_linf(system: DiagonalSSM, C_backward: np.ndarray) -> np.ndarray:
    """Exact L∞ norm of every one-state bidirectional subsystem, shape ``poles.shape`` (closed form + 1-D search).

    Parameters
    ----------
    system : DiagonalSSM
        Discrete time, ``state_includes_input=True``, any batch shape.
    C_backward : ndarray, shape ``(*batch, p, n)``
        Output columns of the backward scan.

    Returns
    -------
    ndarray of float64
        ``inf`` where |λ̄| ≥ 1.

    Notes
    -----
    With α = 1/(1 − λ̄e^{−jω}), β = 1/(1 − λ̄e^{jω}) (and α̃, β̃ the same with conj λ̄), state i's response
    is ``G = U Wᵀ``: complex output U = c1α + c2β, W = b; real output (``Re``) U = ½[c1α + c2β,
    conj(c1)α̃ + conj(c2)β̃], W = [b, conj b]. The nonzero σ² of G are the eigenvalues of the 2×2 (or
    1×1) product ``(UᴴU)(Wᵀ conj W)`` with ``UᴴU = Tᴴ K T``, K the Gram matrix of [c1, c2(, conj c1,
    conj c2)] (computed once, O(p)) and T(ω) the 4×2 (2×1) matrix of α, β, α̃, β̃. σ_max² is maximised
    over ω by :func:`ssmtools._kernels.maximize_on_grid` on a damping-adapted grid around ±arg λ̄
    ([0, π] suffices for real output, whose response is conjugate-symmetric). The AB13DD route
    (:func:`bidirectional_linf` on one-state systems) is the cross-check in the tests.
    """
    from .. import _kernels

    lam = system.poles
    C1, C2 = system.C, np.broadcast_to(np.asarray(C_backward, dtype=complex), system.C.shape)
    b = system.B  # (..., n, m)
    real = system.output == "real"
    columns = [C1, C2, np.conj(C1), np.conj(C2)] if real else [C1, C2]
    stacked = np.stack([np.moveaxis(c, -1, -2) for c in columns], axis=-1)  # (..., n, p, k)
    K = np.einsum("...pi,...pj->...ij", np.conj(stacked), stacked)[..., None, :, :]  # (..., n, 1, k, k)
    b2 = np.sum(np.abs(b) ** 2, axis=-1)[..., None]  # (..., n, 1)
    bb = np.sum(b * b, axis=-1)[..., None]  # bᵀb
    stable = np.abs(lam) < 1
    safe = np.where(stable, lam, 0.0)[..., None]  # (..., n, 1)

    def sigma2(omega: np.ndarray, sign: float) -> np.ndarray:
        z = np.exp(1j * sign * omega)  # (..., n, k)
        alpha, beta = 1 / (1 - safe / z), 1 / (1 - safe * z)
        if not real:
            T = np.stack([alpha, beta], axis=-1)  # (..., n, k, 2) as a column
            return np.real(np.einsum("...i,...ij,...j->...", np.conj(T), K, T)) * b2
        alpha_c, beta_c = 1 / (1 - np.conj(safe) / z), 1 / (1 - np.conj(safe) * z)
        zero = np.zeros_like(alpha)
        T = 0.5 * np.stack([np.stack([alpha, zero], -1), np.stack([beta, zero], -1),
                            np.stack([zero, alpha_c], -1), np.stack([zero, beta_c], -1)], axis=-2)  # (..., 4, 2)
        Gu = np.einsum("...ai,...ab,...bj->...ij", np.conj(T), K, T)  # (..., 2, 2) Hermitian
        Gw = np.stack([np.stack([b2 + 0 * alpha, bb + 0 * alpha], -1),
                       np.stack([np.conj(bb) + 0 * alpha, b2 + 0 * alpha], -1)], axis=-2)
        M = Gu @ Gw
        trace = np.real(M[..., 0, 0] + M[..., 1, 1])
        det = np.real(np.linalg.det(Gu)) * np.real(np.linalg.det(Gw))
        return 0.5 * (trace + np.sqrt(np.maximum(trace**2 - 4 * np.maximum(det, 0.0), 0.0)))

    margin = _kernels.stability_margin(safe[..., 0], discrete=True)
    grid = _kernels._candidate_frequencies(safe[..., 0], np.where(stable, margin, 1.0), discrete=True)
    best, _ = _kernels.maximize_on_grid(lambda w: sigma2(w, 1.0), grid)
    if not real:
        other, _ = _kernels.maximize_on_grid(lambda w: sigma2(w, -1.0), grid)
        best = np.maximum(best, other)
    return np.where(stable, np.sqrt(np.maximum(best, 0.0)), np.inf)

"""Norm kernels of bidirectional (non-causal) layers, [`BidirectionalSSM`][ssmtools.systems.BidirectionalSSM].

The layer response is ``G(e^{jω}) = out[C (I − Λe^{−jω})⁻¹ B + C_b (I − Λe^{jω})⁻¹ B] + D``
(``out`` = Re for ``output="real"``, C and C_b already scaled by the family's κ). Two computations
live here, called by [`ssmtools.norms`][ssmtools.norms] (docs/concepts/derivations.md#bidirectional):

- ``standard_form`` — a real standard-form realization *without* poles on the unit circle
  whose transfer function is G on the circle: the anti-causal part is realised with the poles 1/λ,
  using ``c/(1 − λz) = −(c/λ)/(z − 1/λ)``; states with λ = 0 contribute the constant ``out(c_b bᵀ)``,
  added to D. SLICOT AB13DD computes the L∞ norm of such a system.
- ``state_linf`` — the exact L∞ norm of every one-state subsystem from a closed-form σ_max(ω)
  maximised over ω, in a form without cancellation (see its Notes).
"""

from __future__ import annotations

import numpy as np

from . import _kernels
from .systems import BidirectionalSSM, DiagonalSSM, real_standard_form

__all__ = ["standard_form", "state_linf"]

_ZERO_POLE = 1e-300


def _feedthrough(output: str, C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """out(C B) as a feedthrough matrix, shape (p, m)."""
    M = C @ B
    return M.real if output == "real" else M


def standard_form(system: BidirectionalSSM) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real ``(A, B, C, D)`` of one stable (unbatched) bidirectional layer, A with no eigenvalue on the unit circle.

    Parameters
    ----------
    system : BidirectionalSSM
        Unbatched, every |λ| < 1.

    Returns
    -------
    A, B, C, D : ndarray
        Forward standard form stacked with the backward part realised at the poles 1/λ (outside the
        circle); ``C(zI − A)⁻¹B + D = G(z)`` on the unit circle.
    """
    lam, B, C1, C2 = system.poles, system.B, system.C, system.C_backward
    zero = np.abs(lam) < _ZERO_POLE
    D = system.D + _feedthrough(system.output, C2[:, zero], B[zero])
    forward = DiagonalSSM(lam, B, C1, D, dt=True, output=system.output, state_includes_input=True)
    A_f, B_f, C_f, D_f = real_standard_form(forward)
    live = ~zero
    inverse = 1.0 / lam[live]
    backward = DiagonalSSM(inverse, B[live], -C2[:, live] * inverse, dt=True, output=system.output)
    A_b, B_b, C_b, _ = real_standard_form(backward)
    A = np.block([[A_f, np.zeros((A_f.shape[0], A_b.shape[1]))], [np.zeros((A_b.shape[0], A_f.shape[1])), A_b]])
    return A, np.concatenate([B_f, B_b]), np.concatenate([C_f, C_b], axis=1), D_f


def _upper_factor(W: np.ndarray) -> np.ndarray:
    """R of the QR factorisation of every (p, k) matrix in ``W`` (..., p, k), padded to (..., k, k)."""
    _, R = np.linalg.qr(W)
    k = W.shape[-1]
    if R.shape[-2] < k:
        R = np.concatenate([R, np.zeros(R.shape[:-2] + (k - R.shape[-2], k), dtype=R.dtype)], axis=-2)
    return R


def _hermitian_2x2_largest(a: np.ndarray, e: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Largest eigenvalue of ``[[a, h], [conj h, e]]`` (a, e ≥ 0) as a sum of non-negative terms."""
    return 0.5 * (a + e) + np.sqrt((0.5 * (a - e)) ** 2 + np.abs(h) ** 2)


def state_linf(system: BidirectionalSSM) -> tuple[np.ndarray, np.ndarray]:
    """Exact L∞ norm and peak frequency of every one-state subsystem, shapes ``poles.shape``.

    Parameters
    ----------
    system : BidirectionalSSM
        Any batch shape.

    Returns
    -------
    values, peaks : ndarray of float64
        ``inf`` / ``nan`` where |λ| ≥ 1. Peaks in rad/sample (negative for complex output when the
        peak lies there).

    Notes
    -----
    With α = 1/(1 − λe^{−jω}), β = 1/(1 − λe^{jω}) and α̃, β̃ the same with conj λ, state i's response
    is ``G = X Yᵀ``: complex output X = c α + c_b β (p × 1), Y = b; real output X = ½[c α + c_b β,
    conj(c) α̃ + conj(c_b) β̃] (p × 2), Y = [b, conj b]. Writing ``X = W T(ω)`` with the constant
    ``W = [c, c_b(, conj c, conj c_b)]`` and its QR factor R_W, and ``Y = Q_Y R_Y``, the nonzero singular
    values of G are those of the small matrix ``M(ω) = R_W T(ω) R_Yᵀ`` (k × 1 or 4 × 2). σ_max² is its
    squared norm (complex output) or the largest eigenvalue of the 2×2 ``MᴴM`` written as a sum of
    non-negative terms (real output) — the entries of M are formed directly, so values far below
    ‖c‖‖b‖/(1 − |λ|) keep their relative accuracy (a quadratic form Tᴴ(WᴴW)T would lose it).
    σ_max² is maximised over ω by ``ssmtools._kernels.maximize_on_grid`` on a damping-adapted grid
    around arg λ ([0, π] suffices for real output, whose response is conjugate-symmetric; both signs
    for complex output).
    """
    lam = system.poles
    C1, C2, b = system.C, system.C_backward, system.B
    real = system.output == "real"
    columns = [C1, C2, np.conj(C1), np.conj(C2)] if real else [C1, C2]
    W = np.stack([np.moveaxis(c, -1, -2) for c in columns], axis=-1)  # (..., n, p, k)
    R_w = _upper_factor(W)[..., None, :, :]  # (..., n, 1, k, k)
    stable = system.stability_margin > 0
    safe = np.where(stable, lam, 0.0)[..., None]  # (..., n, 1)
    if real:
        R_y = _upper_factor(np.stack([b, np.conj(b)], axis=-1))[..., None, :, :]  # (..., n, 1, 2, 2)
    else:
        b_norm = np.linalg.norm(b, axis=-1)[..., None]  # (..., n, 1)

    def sigma2(omega: np.ndarray, sign: float) -> np.ndarray:
        z = np.exp(1j * sign * omega)  # (..., n, K)
        # 1/(1 − λ/z) = z·1/(z − λ) and 1/(1 − λz) = z⁻¹·1/(z⁻¹ − λ): the resolvent that keeps its digits next
        # to the circle (_kernels.resolvent) instead of the plain differences
        forward, forward_c = _kernels.resolvent_pair(sign * omega, safe, discrete=True)
        backward, backward_c = _kernels.resolvent_pair(-sign * omega, safe, discrete=True)
        alpha, beta = z * forward, np.conj(z) * backward
        if not real:
            x = R_w[..., :, 0] * alpha[..., None] + R_w[..., :, 1] * beta[..., None]  # (..., n, K, k)
            return np.sum(np.abs(x) ** 2, axis=-1) * b_norm**2
        alpha_c, beta_c = z * forward_c, np.conj(z) * backward_c
        # X = W T with T = ½[[α, 0], [β, 0], [0, α̃], [0, β̃]]: the columns of R_W T
        x1 = 0.5 * (R_w[..., :, 0] * alpha[..., None] + R_w[..., :, 1] * beta[..., None])  # (..., n, K, 4)
        x2 = 0.5 * (R_w[..., :, 2] * alpha_c[..., None] + R_w[..., :, 3] * beta_c[..., None])
        # M = [x1, x2] R_yᵀ: columns m_j = x1 R_y[j, 0] + x2 R_y[j, 1]
        m1 = x1 * R_y[..., 0, 0][..., None] + x2 * R_y[..., 0, 1][..., None]
        m2 = x1 * R_y[..., 1, 0][..., None] + x2 * R_y[..., 1, 1][..., None]
        a = np.sum(np.abs(m1) ** 2, axis=-1)
        e = np.sum(np.abs(m2) ** 2, axis=-1)
        h = np.sum(np.conj(m1) * m2, axis=-1)
        return _hermitian_2x2_largest(a, e, h)

    margin = _kernels.stability_margin(safe[..., 0], discrete=True)
    grid = _kernels._candidate_frequencies(safe[..., 0], np.where(stable, margin, 1.0), discrete=True)
    best, peak = _kernels.maximize_on_grid(lambda w: sigma2(w, 1.0), grid)
    if not real:
        other, other_peak = _kernels.maximize_on_grid(lambda w: sigma2(w, -1.0), grid)
        peak = np.where(other > best, -other_peak, peak)
        best = np.maximum(best, other)
    return np.where(stable, np.sqrt(np.maximum(best, 0.0)), np.inf), np.where(stable, peak, np.nan)

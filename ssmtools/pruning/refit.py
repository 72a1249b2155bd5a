"""``"balanced-refit"``: balanced truncation, then the output map C and a diagonal D refitted in H2.

For fixed reduced poles μ and input rows F (those of the balanced truncation) the reduced layer's impulse
response is linear in its output map H and feedthrough D_r, so the squared H2 error ``‖G − G_r‖₂²`` (D
included, with the cross term of the state-includes-input convention) is a quadratic in (H, D_r) whose
coefficients are diagonal Gramians: cross sums ``Σ_k Λ^k B (M^k F)ᴴ`` and ``Σ_k Λ^k B (M^k F)ᵀ`` in closed form
(the kernel of :mod:`ssmtools.pruning.h2_optimal`; geometric sums over L steps with a horizon). Its minimiser
solves one small linear system per output row (docs/concepts/reduction.md#balanced-refit). With a diagonal D
(S5, S4D: one feedthrough per channel) only the diagonal is refitted — the alternative the issue asks for where
the format cannot store the full D that singular perturbation produces; with a full D (lru-pytorch) the whole
row is. The balanced truncation itself is a feasible point, so the refit is never worse in H2; the plain
truncation is kept if rounding ever made it so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from ..errors import ArgumentError, check_choice
from ..norms import h2_norm
from ..systems import DiagonalSSM
from .h2_optimal import _kernel
from .reductions import BalancedTruncation, feedthrough_mode, register_reduction

__all__ = ["BalancedRefit", "refit_output"]


def _real_gram(X: tuple[np.ndarray, np.ndarray], Y: tuple[np.ndarray, np.ndarray], kernels) -> np.ndarray:
    """``Σ_k Z_X,k Z_Y,kᵀ`` for ``Z_k = [Re(Λ^k B); −Im(Λ^k B)]`` of two diagonal (poles, B) pairs.

    ``kernels = (K(μ, λ), K(conj μ, λ))`` give ``P = Σ X_k Y_kᴴ`` and ``S = Σ X_k Y_kᵀ`` elementwise.
    """
    (_, B1), (_, B2) = X, Y
    P = (B1 @ np.conj(B2.T)) * kernels[0].T  # (n1, n2)
    S = (B1 @ B2.T) * kernels[1].T
    ac = np.real(P + S) / 2  # Re X Re Yᵀ
    bd = np.real(P - S) / 2  # Im X Im Yᵀ
    ad = np.imag(S - P) / 2  # Re X Im Yᵀ
    bc = np.imag(S + P) / 2  # Im X Re Yᵀ
    return np.block([[ac, -ad], [-bc, bd]])


def _gram(first: DiagonalSSM, second: DiagonalSSM, horizon: int | None) -> np.ndarray:
    lam, mu = first.poles, second.poles
    kernels = (_kernel(mu, lam, True, horizon)[0], _kernel(np.conj(mu), lam, True, horizon)[0])
    return _real_gram((lam, first.B), (mu, second.B), kernels)


def refit_output(
    original: DiagonalSSM,
    reduced: DiagonalSSM,
    *,
    horizon: int | None = None,
    feedthrough: Literal["diagonal", "full"] = "diagonal",
) -> DiagonalSSM:
    """The H2-optimal C and D of ``reduced`` for its poles and B, against ``original``.

    Parameters
    ----------
    original, reduced : DiagonalSSM
        Unbatched, discrete time, ``output="real"`` (y = Re(Cx) + Du), the same ``state_includes_input``
        and I/O sizes; the original stable (or a ``horizon`` given).
    horizon : int, optional
        Minimise the finite-horizon error over sequences of this length.
    feedthrough : {"diagonal", "full"}
        Which part of D_r is free: its diagonal (square D; the off-diagonal stays zero) or every entry.

    Returns
    -------
    DiagonalSSM
        ``reduced`` with the refitted C (and D).

    Notes
    -----
    With ``θ_j = [Re c_j, Im c_j]`` for output row j and ``Z_k = [Re(M^k F); −Im(M^k F)]``, the row's error is
    ``Σ_k ‖θ_j^{orig} Z^{orig}_k − θ_j Z_k − δ_{k0}(d_j − D_j) E‖²``; setting its gradient to zero gives
    ``[[G, Z_0E], [EᵀZ_0ᵀ, EᵀE]] [θ_jᵀ; d_jᵀ] = [G_×ᵀθ_j^{orig ᵀ} + Z_0D_jᵀ; Eᵀ(Z^{orig}_0ᵀθ_j^{orig ᵀ} + D_jᵀ)]`` with
    ``G = Σ Z_k Z_kᵀ``, ``G_× = Σ Z^{orig}_k Z_kᵀ`` and E = e_j (diagonal) or I (full). Without the
    state-includes-input convention the k = 0 term has no state part (Z_0 = 0), D_r = D and a horizon L
    sums the L − 1 state terms of y_1..y_{L−1}. Solved by least
    squares, so states the response cannot see (real poles' imaginary parts) get the minimum-norm value 0.
    """
    check_choice("feedthrough", feedthrough, ("diagonal", "full"))
    if not original.is_discrete or original.output != "real":
        raise ArgumentError(
            "balanced-refit needs a discrete-time real-output layer (y = Re(Cx) + Du), as S5, S4D and LRU have; "
            f"got dt={original.dt!r}, output={original.output!r}"
        )
    p, m = original.n_outputs, original.n_inputs
    if feedthrough == "diagonal" and p != m:
        raise ArgumentError(f"a diagonal D needs a square D; this layer's D is {p}×{m}: use feedthrough='full'")
    r = reduced.n_states
    if r == 0 and feedthrough == "diagonal" and not original.state_includes_input:
        return reduced
    sii = original.state_includes_input
    if horizon is not None and not sii:  # y_1..y_{L−1} carry the states: L − 1 terms
        horizon = max(int(horizon) - 1, 0)
    G = _gram(reduced, reduced, horizon)  # (2r, 2r)
    G_x = _gram(original, reduced, horizon)  # (2n, 2r)
    theta = np.concatenate([original.C.real, original.C.imag], axis=-1)  # (p, 2n)
    Z0 = np.concatenate([reduced.B.real, -reduced.B.imag]) if sii else np.zeros((2 * r, m))  # (2r, m)
    Z0_orig = np.concatenate([original.B.real, -original.B.imag]) if sii else np.zeros((2 * original.n_states, m))
    target_states = theta @ G_x + original.D @ Z0.T  # (p, 2r): Σ_k t_k Z_kᵀ, D in t_0
    target_now = theta @ Z0_orig + original.D  # (p, m): the k = 0 response of the original
    C = np.zeros((p, r), dtype=complex)
    D = np.zeros((p, m))
    for j in range(p):
        E = np.eye(m)[:, [j]] if feedthrough == "diagonal" else np.eye(m)  # (m, q)
        normal = np.block([[G, Z0 @ E], [E.T @ Z0.T, E.T @ E]])
        rhs = np.concatenate([target_states[j], E.T @ target_now[j]])
        solution = np.linalg.lstsq(normal, rhs, rcond=None)[0]
        C[j] = solution[:r] + 1j * solution[r : 2 * r]
        D[j] = E @ solution[2 * r :]
    return reduced.replace(C=C.astype(reduced.C.dtype, copy=False), D=D)


def _error(original: DiagonalSSM, reduced: DiagonalSSM, horizon: int | None) -> float:
    difference = original.replace(
        poles=np.concatenate([original.poles, reduced.poles]),
        B=np.concatenate([original.B, reduced.B]),
        C=np.concatenate([original.C, -reduced.C], axis=-1),
        D=original.D - reduced.D,
    )
    return float(h2_norm(difference, horizon=horizon))


@register_reduction
@dataclass(frozen=True)
class BalancedRefit(BalancedTruncation):
    """Balanced truncation, then C and D refitted by least squares in H2 (:func:`refit_output`).

    The budget, realised mask, unstable policy, stability guard and write-back are those of
    [`BalancedTruncation`][ssmtools.pruning.reductions.BalancedTruncation]; only the reduced output map and
    feedthrough change. Unstable states kept by ``unstable="keep"`` cancel in the error and keep their C; the
    stable part is refitted against the original's stable part.

    Parameters
    ----------
    fit : {"states", "order"}
        As for balanced truncation.
    unstable : {"keep", "error"}
        As for balanced truncation.
    horizon : int, optional
        As for balanced truncation; the refit then minimises the finite-horizon error.
    keep_stable : bool
        As for balanced truncation (C and D do not move poles).
    feedthrough : {"auto", "diagonal", "full"}
        Which part of D is refitted: ``"auto"`` (default) the diagonal when the layer's D is diagonal (S5, S4D),
        every entry otherwise (lru-pytorch).
    """

    name: ClassVar[str] = "balanced-refit"
    feedthrough: Literal["auto", "diagonal", "full"] = "auto"

    def _finish(self, system: DiagonalSSM, reduced: tuple[DiagonalSSM, ...]) -> tuple[DiagonalSSM, ...]:
        """Refit every batch element's stable part (C and D) against the original's stable part."""
        mode = feedthrough_mode(system.D, self.feedthrough)
        elements = [system[index] for index in np.ndindex(*system.batch_shape)] if system.batch_shape else [system]
        out = []
        for element, start in zip(elements, reduced):
            split = self.horizon is None and self.unstable == "keep"
            stable = element.stability_margin > 0 if split else np.ones(element.n_states, bool)
            kept = start.stability_margin > 0 if split else np.ones(start.n_states, bool)
            part = element.replace(poles=element.poles[stable], B=element.B[stable], C=element.C[:, stable])
            head = start.replace(poles=start.poles[kept], B=start.B[kept], C=start.C[:, kept])
            fitted = refit_output(part, head, horizon=self.horizon, feedthrough=mode)
            if _error(part, fitted, self.horizon) > _error(part, head, self.horizon):
                out.append(start)
                continue
            C = start.C.copy()
            C[:, kept] = fitted.C
            out.append(start.replace(C=C, D=fitted.D))
        return tuple(out)

"""``"h2-optimal"``: H2-optimal reduction of diagonal layers, started from balanced truncation.

The reduced layer is parametrised as what the format stores — r diagonal states (poles μ, input rows F,
output columns H), same output convention, ``state_includes_input`` flag and D as the original — and the
squared H2 error of the strictly proper parts

    J = ‖G‖₂² − 2 Re⟨G, Ĝ⟩ + ‖Ĝ‖₂²,   ⟨G₁, G₂⟩ = Σ_ij (C₁ᴴC₂)_ij (B₂B₁ᴴ)_ji K(λ₁_i, λ₂_j),

with the diagonal kernel ``K(a, b) = Σ_k (ā b)^k = 1/(1 − ā b)`` (DT; ``Σ_{k<L}`` with a horizon, ``−1/(ā + b)``
CT) is minimised by L-BFGS with its exact gradient (Wirtinger calculus, docs/concepts/reduction.md#h2-optimal-reduction).
Stability is built into the parametrisation: ``μ = ρ_max·sigmoid(s)·e^{iθ}`` (DT, ρ_max = 1 for the
infinite horizon) or ``μ = −e^{s} + iθ`` (CT). At a stationary point the first-order H2-optimality
conditions hold: for a SISO layer G and Ĝ (and their derivatives) interpolate at the mirror images
``1/conj μ_j`` of the reduced poles (Meier–Luenberger; the fixed points IRKA iterates towards). The result
is never worse than the balanced truncation it starts from: when the iteration does not lower J, the
balanced truncation is kept. Since the reduced layer is already diagonal, it fits the stored-state budget
exactly and is written back as the other projection reductions are
([`ssmtools.SSMModel.replace_systems`][ssmtools.model.SSMModel.replace_systems]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import _kernels
from ..errors import ArgumentError
from ..norms import h2_norm
from ..systems import DiagonalSSM, augmented_realization
from ._memo import Memo, system_key
from .reductions import BalancedTruncation, register_reduction

__all__ = ["H2Fit", "H2Optimal", "h2_error", "h2_optimal_fit"]

_RHO_MARGIN = 1e-12  # DT start poles are pulled this far inside ρ_max, so that the logit is finite
_FTOL = 1e-12  # stop when an iteration lowers ‖G − G_r‖₂²/‖G‖₂² by less than this
_CACHE_SIZE = 64  # fits remembered, so that last_prune's plan and write-back optimise each layer once
_CACHE: Memo[H2Fit] = Memo(_CACHE_SIZE)


@dataclass(frozen=True)
class H2Fit:
    """Outcome of :func:`h2_optimal_fit` (immutable).

    Parameters
    ----------
    system : DiagonalSSM
        The reduced system (the optimised one, or the start when the iteration did not improve it).
    error : float
        Exact ‖G − G_r‖₂ of the strictly proper parts (finite-horizon energy with a horizon).
    start_error : float
        The same error for the starting system.
    iterations : int
        L-BFGS iterations run.
    improved : bool
        True when the optimised system replaced the start.
    """

    system: DiagonalSSM
    error: float
    start_error: float
    iterations: int
    improved: bool


# ------------------------------------------------------------------------------------------ kernel
def _kernel(a: np.ndarray, b: np.ndarray, discrete: bool, horizon: int | None) -> tuple[np.ndarray, ...]:
    """``K(a_i, b_j)``, ``∂K/∂b_j`` and ``∂K/∂ā_i`` (arrays (len a, len b)) of the diagonal H2 inner product."""
    A, Bm = a[:, None], b[None, :]
    if not discrete:
        s = np.conj(A) + Bm
        K = -1.0 / s
        return K, K**2, K**2
    q = np.conj(A) * Bm
    if horizon is None:
        K = 1.0 / _kernels.one_minus_cross(Bm, A)
        dK = K**2
    else:
        K = _kernels.horizon_sum(Bm, A, horizon, discrete=True)
        near = np.abs(1.0 - q) < 1e-8
        safe = np.where(near, 0.5, 1.0 - q)
        with np.errstate(over="ignore", invalid="ignore"):
            dK = np.where(near, horizon * (horizon - 1) / 2.0, (K - horizon * q ** (horizon - 1)) / safe)
    return K, dK * np.conj(A), dK * Bm


def _inner(C1, B1, lam1, C2, B2, lam2, discrete, horizon):
    """``⟨G₁, G₂⟩`` of two complex diagonal systems and the pieces its gradient needs."""
    X = np.conj(C1.T) @ C2  # (N1, N2)
    Y = B2 @ np.conj(B1.T)  # (N2, N1)
    K, dK_db, dK_da = _kernel(lam1, lam2, discrete, horizon)
    return X, Y, K, dK_db, dK_da


def _objective(full, reduced, discrete, horizon):
    """``(J − ‖G‖², ∂J/∂μ̄, ∂J/∂F̄, ∂J/∂H̄)`` for complex diagonal (μ, F, H) against ``full = (λ, B, C)``."""
    lam, B, C = full
    mu, F, H = reduced
    X, Y, K1, dK1, _ = _inner(C, B, lam, H, F, mu, discrete, horizon)
    Z, W, K2, _, dK2a = _inner(H, F, mu, H, F, mu, discrete, horizon)
    S1 = np.sum(X * Y.T * K1)
    S2 = np.real(np.sum(Z * W.T * K2))
    g_mu = -np.conj(np.sum(X * Y.T * dK1, axis=0)) + np.sum(Z * W.T * dK2a, axis=1)
    g_F = -np.conj((X * K1).T @ np.conj(B)) + (Z * K2) @ F
    g_H = -np.conj(np.conj(C) @ (Y.T * K1)) + H @ (W * K2.T)
    return float(S2 - 2.0 * np.real(S1)), g_mu, g_F, g_H


def _augmented(mu, F, H, real):
    return (
        (
            np.concatenate([mu, np.conj(mu)]),
            np.concatenate([F, np.conj(F)]),
            0.5 * np.concatenate([H, np.conj(H)], axis=1),
        )
        if real
        else (mu, F, H)
    )


def _fold(g_mu, g_F, g_H, r, real):
    """Gradient with respect to the stored parameters from that of the augmented ones."""
    if not real:
        return g_mu, g_F, g_H
    return (
        g_mu[:r] + np.conj(g_mu[r:]),
        g_F[:r] + np.conj(g_F[r:]),
        0.5 * (g_H[:, :r] + np.conj(g_H[:, r:])),
    )


# ------------------------------------------------------------------------------------------ public
def h2_error(original: DiagonalSSM, reduced: DiagonalSSM, *, horizon: int | None = None) -> float:
    """Exact ‖G − G_r‖₂ of the strictly proper parts of two unbatched diagonal systems (closed-form Gramian).

    Parameters
    ----------
    original, reduced : DiagonalSSM
        Unbatched, same time domain, output convention and I/O sizes.
    horizon : int, optional
        Finite-horizon energy over sequences of length L (:func:`ssmtools.h2_norm` ``(horizon=L)``).

    Returns
    -------
    float
        ``inf`` for an unstable error system without a horizon.
    """
    difference = original.replace(
        poles=np.concatenate([original.poles, reduced.poles]),
        B=np.concatenate([original.B, reduced.B]),
        C=np.concatenate([original.C, -reduced.C], axis=-1),
        D=None,
    )
    return float(h2_norm(difference, horizon=horizon))


def h2_optimal_fit(
    original: DiagonalSSM,
    start: DiagonalSSM,
    *,
    horizon: int | None = None,
    max_iter: int = 200,
    gtol: float = 1e-9,
) -> H2Fit:
    """Minimise ‖G − G_r‖₂ over diagonal reduced systems with ``start.n_states`` stored states, from ``start``.

    Parameters
    ----------
    original : DiagonalSSM
        Unbatched; asymptotically stable unless ``horizon`` is given.
    start : DiagonalSSM
        Unbatched starting reduction (e.g. the balanced truncation), same conventions as ``original``; its D is
        kept (only the strictly proper part is optimised).
    horizon : int, optional
        Discrete time: minimise the finite-horizon energy of the first L error samples; the reduced poles are
        then kept within ``max(1, |λ|, |μ_start|)`` rather than inside the unit circle.
    max_iter : int
        L-BFGS iteration limit.
    gtol : float
        L-BFGS projected-gradient tolerance on the objective relative to ‖G‖₂².

    Returns
    -------
    H2Fit

    Notes
    -----
    The fit is deterministic; the last results are remembered (keyed by the two systems' parameters and the
    options), so writing a plan back after planning does not optimise again.
    """
    if original.batch_shape or start.batch_shape:
        raise ArgumentError("h2_optimal_fit takes unbatched systems; loop over the batch elements")
    if horizon is not None and not original.is_discrete:
        raise ArgumentError("h2_optimal_fit: horizon= is available in discrete time only")
    key = system_key((original, start), (horizon, max_iter, gtol))
    return _CACHE.get(key, lambda: _fit(original, start, horizon, max_iter, gtol))


def _fit(original: DiagonalSSM, start: DiagonalSSM, horizon: int | None, max_iter: int, gtol: float) -> H2Fit:
    """:func:`h2_optimal_fit` without the memo."""
    import scipy.optimize

    r, real, discrete = start.n_states, original.output == "real", original.is_discrete
    start_error = h2_error(original, start, horizon=horizon)
    if r == 0 or not np.isfinite(start_error):
        return H2Fit(start, start_error, start_error, 0, False)
    full = augmented_realization(original)
    scale = max(float(h2_norm(original.replace(D=None), horizon=horizon)) ** 2, np.finfo(float).tiny)
    m, p = original.n_inputs, original.n_outputs
    if discrete:
        radii = np.abs(np.concatenate([original.poles, start.poles]))
        rho_max = 1.0 if horizon is None else 1.01 * max(1.0, float(radii.max(initial=0.0)))
        rho = np.clip(np.abs(start.poles) / rho_max, _RHO_MARGIN, 1.0 - _RHO_MARGIN)
        first = np.concatenate([np.log(rho) - np.log1p(-rho), np.angle(start.poles)])
    else:
        first = np.concatenate([np.log(-start.poles.real), start.poles.imag])
    sizes = np.cumsum([r, r, r * m, r * m, p * r])

    def unpack(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        s, theta, fr, fi, hr, hi = np.split(v, sizes)
        if discrete:
            sig = 1.0 / (1.0 + np.exp(-s))
            mu = rho_max * sig * np.exp(1j * theta)
            dmu_ds = mu * (1.0 - sig)
        else:
            mu = -np.exp(s) + 1j * theta
            dmu_ds = -np.exp(s) + 0j
        return mu, (fr + 1j * fi).reshape(r, m), (hr + 1j * hi).reshape(p, r), dmu_ds

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        mu, F, H, dmu_ds = unpack(v)
        value, g_mu, g_F, g_H = _objective(full, _augmented(mu, F, H, real), discrete, horizon)
        g_mu, g_F, g_H = _fold(g_mu, g_F, g_H, r, real)
        dmu_dtheta = 1j * mu if discrete else np.full(r, 1j)
        grad = np.concatenate(
            [
                2 * np.real(g_mu * np.conj(dmu_ds)),
                2 * np.real(g_mu * np.conj(dmu_dtheta)),
                2 * g_F.real.ravel(),
                2 * g_F.imag.ravel(),
                2 * g_H.real.ravel(),
                2 * g_H.imag.ravel(),
            ]
        )
        return value / scale + 1.0, grad / scale

    v0 = np.concatenate([first, start.B.real.ravel(), start.B.imag.ravel(), start.C.real.ravel(), start.C.imag.ravel()])
    with np.errstate(over="ignore"):
        result = scipy.optimize.minimize(
            fun, v0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": gtol, "ftol": _FTOL}
        )
    mu, F, H, _ = unpack(result.x)
    candidate = start.replace(poles=mu, B=F, C=H)
    error = h2_error(original, candidate, horizon=horizon)
    improved = bool(np.isfinite(error) and error < start_error and (horizon is not None or np.all(candidate.is_stable)))
    if not improved:
        return H2Fit(start, start_error, start_error, int(result.nit), False)
    return H2Fit(candidate, error, start_error, int(result.nit), True)


@register_reduction
@dataclass(frozen=True)
class H2Optimal(BalancedTruncation):
    """H2-optimal reduction of every layer, started from its balanced truncation (:func:`h2_optimal_fit`).

    The budget, realised mask, unstable policy and write-back are those of
    [`BalancedTruncation`][ssmtools.pruning.reductions.BalancedTruncation]; each batch element's stable part is
    then moved to a stationary point of ‖G − G_r‖₂ (never worse than the balanced truncation, stable reduced
    poles). Unstable states (``unstable="keep"``) are kept exactly and left out of the optimisation.

    Parameters
    ----------
    fit : {"states", "order"}
        As for balanced truncation.
    unstable : {"keep", "error"}
        As for balanced truncation.
    horizon : int, optional
        Start from finite-horizon balanced truncation and minimise the finite-horizon H2 error over sequences of
        this length (every state optimised, unstable ones included).
    keep_stable : bool
        As for balanced truncation; also, a stable channel whose finite-horizon fit ends with a pole on or outside
        the unit circle keeps its (stable) balanced truncation. Default True.
    max_iter : int
        L-BFGS iteration limit per batch element.
    """

    name: ClassVar[str] = "h2-optimal"
    max_iter: int = 200

    def _finish(self, system: DiagonalSSM, reduced: tuple[DiagonalSSM, ...]) -> tuple[DiagonalSSM, ...]:
        """Optimise the stable part of every balanced truncation (the unstable states BT appended stay)."""
        out = []
        elements = [system[index] for index in np.ndindex(*system.batch_shape)] if system.batch_shape else [system]
        for element, start in zip(elements, reduced):
            n_u = 0 if self.horizon is not None else int(np.count_nonzero(element.stability_margin <= 0))
            if self.horizon is None and self.unstable == "keep" and n_u:
                stable = element.stability_margin > 0
                part = element.replace(poles=element.poles[stable], B=element.B[stable], C=element.C[:, stable])
                k = start.n_states - n_u
                head = start.replace(poles=start.poles[:k], B=start.B[:k], C=start.C[:, :k])
                fitted = h2_optimal_fit(part, head, max_iter=self.max_iter).system
                out.append(
                    start.replace(
                        poles=np.concatenate([fitted.poles, start.poles[k:]]),
                        B=np.concatenate([fitted.B, start.B[k:]]),
                        C=np.concatenate([fitted.C, start.C[:, k:]], axis=-1),
                    )
                )
            else:
                fitted = h2_optimal_fit(element, start, horizon=self.horizon, max_iter=self.max_iter).system
                left = np.all(element.stability_margin > 0) and np.any(fitted.stability_margin <= 0)
                out.append(start if self.keep_stable and left else fitted)
        return tuple(out)

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

import warnings

import numpy as np

from .._backends import slycot as _slycot
from ..errors import UnstableSystemWarning
from ..norms import h2_norm
from ..systems import DiagonalSSM, real_standard_form

__all__ = ["bidirectional_linf", "bidirectional_l2", "one_state_systems"]

_ZERO_POLE = 1e-300


def _feedthrough(system: DiagonalSSM, C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """out(C B) as a feedthrough matrix in the system's D dtype, shape (*batch, p, m)."""
    M = C @ B
    return M.real if system.output == "real" else M


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
        values[index] = _slycot.linf_norm(
            A, np.concatenate([B_f, B_b]), np.concatenate([C_f, C_b], axis=1), D_f, discrete=True, tol=tol
        )[0]
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableSystemWarning)
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

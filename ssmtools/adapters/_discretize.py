"""Discretisation of diagonal continuous-time modes and its inverse (docs/concepts/derivations.md#discretization).

Per state i with step Δ_i > 0 and continuous-time pole λ_i, input row B̃_i:

- ZOH:      λ̄ = exp(λΔ),                 B̄ = (λ̄ − 1)/λ · B̃
- bilinear: λ̄ = (1 + Δλ/2)/(1 − Δλ/2),   B̄ = Δ/(1 − Δλ/2) · B̃   (S5's "bilinear", not exact Tustin)

The inverses recover (λ, B̃) from (λ̄, B̄) for a chosen Δ:

- ZOH:      λ = log(λ̄)/Δ (principal branch),   B̃ = λ/(λ̄ − 1) · B̄   (→ B̄/Δ as λ̄ → 1)
- bilinear: λ = 2(λ̄ − 1)/(Δ(λ̄ + 1)),          B̃ = (1 − Δλ/2)/Δ · B̄
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .. import _kernels
from ..errors import ArgumentError, check_choice

Method = Literal["zoh", "bilinear"]


def _input_gain(lam: ArrayLike, step: ArrayLike, method: str) -> tuple[np.ndarray, np.ndarray]:
    """``(λ̄, g)`` with B̄ = g·B̃, elementwise over the broadcast of ``lam`` and ``step`` (the formula:
    :func:`ssmtools._kernels.discretize_modes`, shared with the differentiable torch read path)."""
    return _kernels.discretize_modes(np.asarray(lam, dtype=complex), np.asarray(step, dtype=float), method=method)


def discretize(
    lam: ArrayLike, B_tilde: ArrayLike, step: ArrayLike, method: Method = "zoh"
) -> tuple[np.ndarray, np.ndarray]:
    """``(λ̄, B̄)`` of poles ``lam`` (..., n) and rows ``B_tilde`` (..., n, m) with steps ``step`` (..., n)."""
    check_choice("discretization", method, ("zoh", "bilinear"))
    lam_bar, gain = _input_gain(lam, step, method)
    return lam_bar, gain[..., None] * np.asarray(B_tilde, dtype=complex)


def undiscretize(
    lam_bar: ArrayLike, B_bar: ArrayLike, step: ArrayLike, method: Method = "zoh"
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of ``discretize``: ``(λ, B̃)`` from ``(λ̄, B̄)`` for the given steps."""
    check_choice("discretization", method, ("zoh", "bilinear"))
    lam_bar = np.asarray(lam_bar, dtype=complex)
    step = np.asarray(step, dtype=float)
    if np.any(lam_bar == 0):
        raise ArgumentError("a discrete pole λ̄ = 0 has no continuous-time counterpart (log 0); remove that state first")
    if method == "zoh":
        lam = np.log(lam_bar) / step
    else:
        if np.any(lam_bar == -1):
            raise ArgumentError("a discrete pole λ̄ = −1 has no bilinear counterpart (Δλ/2 = ∞)")
        lam = 2 * (lam_bar - 1) / (step * (lam_bar + 1))
    _, gain = _input_gain(lam, step, method)
    return lam, np.asarray(B_bar, dtype=complex) / gain[..., None]

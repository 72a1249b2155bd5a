"""Impulse and step responses of a diagonal layer, exact on the diagonal form.

Discrete time (``y_k = out(C x_k) + D u_k``): with ``x_{k+1} = Λ x_k + B u_k`` the impulse response is
``h_0 = D``, ``h_k = out(C Λ^{k−1} B)``; with ``state_includes_input`` (``x_k = Λ x_{k−1} + B u_k``, the S5/S4D/LRU
scan) it is ``h_k = out(C Λ^k B) + δ_k D``. The step response is the running sum of the impulse response.
Continuous time, sampled at ``t_k = k·t_step``: ``h(t) = out(C e^{Λt} B)`` (the ``D δ(t)`` term has no samples) and
``s(t) = out(C φ(t) B) + D`` with ``φ(t) = (e^{Λt} − 1)/Λ`` evaluated through ``expm1`` (``t`` where λ = 0). Every
power and exponential is of a scalar pole, so nothing is accumulated along the sequence.
"""

from __future__ import annotations

import numpy as np

from .errors import ArgumentError, ArgumentTypeError, OptionError
from .systems import BidirectionalSSM, DiagonalSSM

__all__ = ["impulse_response", "step_response"]


def _check(sys: object, n: int, t_step: float | None, what: str) -> tuple[DiagonalSSM, np.ndarray]:
    if isinstance(sys, BidirectionalSSM):
        raise ArgumentTypeError(
            f"{what}: a bidirectional layer's response is two-sided (non-causal); take the response of its causal "
            "scan sys.forward and of its anti-causal scan sys.backward (read backwards in time)"
        )
    if not isinstance(sys, DiagonalSSM):
        raise ArgumentTypeError(
            f"{what} takes a DiagonalSSM, got {type(sys).__name__}; convert python-control systems with "
            "DiagonalSSM.from_control(...)"
        )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ArgumentError(f"{what}: n={n!r} must be a positive integer (the number of samples)")
    if sys.is_discrete:
        if t_step is not None:
            raise OptionError(f"{what}: t_step is for continuous-time systems; a discrete-time one steps by samples")
        return sys, np.arange(int(n), dtype=float)
    if t_step is None or not (np.isfinite(t_step) and t_step > 0):
        raise OptionError(
            f"{what}: a continuous-time system needs t_step > 0 (seconds between samples), got {t_step!r}"
        )
    return sys, np.arange(int(n), dtype=float) * float(t_step)


def _combine(sys: DiagonalSSM, weights: np.ndarray) -> np.ndarray:
    """``out(C diag(w_k) B)`` for every sample k: weights ``(*batch, k, n)`` -> ``(*batch, k, p, m)``."""
    values = np.einsum("...pn,...kn,...nm->...kpm", sys.C, weights, sys.B)
    return values.real if sys.output == "real" else values


def impulse_response(sys: DiagonalSSM, n: int, *, t_step: float | None = None) -> np.ndarray:
    """Impulse response of a diagonal system, ``n`` samples, shape ``(*batch, n, p, m)``.

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape; ``state_includes_input`` and ``output`` are honoured.
    n : int
        Number of samples: k = 0, …, n − 1.
    t_step : float, optional
        Continuous time only: the time between samples, ``t_k = k·t_step`` (not used in discrete time,
        where sample k is time step k).

    Returns
    -------
    ndarray, shape ``(*batch, n, p, m)``
        Entry ``[..., k, i, j]``: output i at sample k for a unit impulse on input j at sample 0 (a unit
        sample in discrete time; δ(t) in continuous time, whose ``D δ(t)`` part has no samples). Real for
        ``output="real"``, complex otherwise.

    Notes
    -----
    The same responses as ``control.impulse_response`` on ``sys.to_control()`` (discrete time, and the
    sampled continuous-time response), computed from the poles in closed form (module docstring).

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True, output="real")
    >>> impulse_response(sys, 4)[:, 0, 0].tolist()
    [0.0, 1.0, 0.5, 0.25]
    """
    sys, times = _check(sys, n, t_step, "impulse_response")
    lam = sys.poles[..., None, :]
    if sys.is_discrete:
        shift = 0.0 if sys.state_includes_input else 1.0
        exponents = np.maximum(times - shift, 0.0)[:, None]
        weights = np.where(times[:, None] >= shift, lam**exponents, 0.0)
        response = _combine(sys, weights)
        response[..., 0, :, :] += sys.D  # δ_0 · D
        return response
    return _combine(sys, np.exp(lam * times[:, None]))


def step_response(sys: DiagonalSSM, n: int, *, t_step: float | None = None) -> np.ndarray:
    """Step response of a diagonal system, ``n`` samples, shape ``(*batch, n, p, m)``.

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape; ``state_includes_input`` and ``output`` are honoured.
    n : int
        Number of samples: k = 0, …, n − 1.
    t_step : float, optional
        Continuous time only: the time between samples, ``t_k = k·t_step``.

    Returns
    -------
    ndarray, shape ``(*batch, n, p, m)``
        Entry ``[..., k, i, j]``: output i at sample k for a unit step on input j starting at sample 0.

    Notes
    -----
    Discrete time: the running sum of [`impulse_response`][ssmtools.responses.impulse_response].
    Continuous time: ``out(C (e^{Λt} − 1)/Λ B) + D`` in closed form (``expm1``, exact also for λ = 0).
    For a stable system it tends to the DC gain ``G(1)`` (DT) or ``G(0)`` (CT).

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True, output="real")
    >>> step_response(sys, 4)[:, 0, 0].tolist()
    [0.0, 1.0, 1.5, 1.75]
    """
    sys, times = _check(sys, n, t_step, "step_response")
    if sys.is_discrete:
        return np.cumsum(impulse_response(sys, n), axis=-3)
    lam = sys.poles[..., None, :]
    t = np.broadcast_to(times[:, None], np.broadcast_shapes(lam.shape, times[:, None].shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(lam == 0, t, np.expm1(lam * t) / np.where(lam == 0, 1.0, lam))
    return _combine(sys, weights) + sys.D[..., None, :, :]

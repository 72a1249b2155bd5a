"""Warm-started H∞ peaks across training steps: :class:`HinfTracker`.

Between two optimiser steps the parameters move little, and so does the peak frequency of each layer's
response. A tracker keeps every layer's last peak and, instead of the full certified search of
:func:`ssmtools.hinf_result` at every step, refines the previous peak locally (the secant climb of the level-set
route, :func:`ssmtools._hinf_levelset.climb`, a few exact σ_max evaluations) and re-certifies it with one
Bruinsma–Steinbuch level-set test every ``certify_every`` calls; the full search runs only on the first call and
when a test fails (docs/concepts/derivations.md#differentiable-norms).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .. import _hinf_diagonal, _hinf_levelset, _kernels
from ..errors import check_integer
from ..systems import DiagonalSSM

Route = Literal["search", "level-set", "local"]


def _to_form_frequency(omega: float, alpha: float | None) -> float:
    """Inverse of ``_hinf_diagonal._user_frequency``: the circle form's frequency of a user frequency."""
    if alpha is None:
        return float(omega)
    return float(np.pi if np.isinf(omega) else 2.0 * np.arctan(omega / alpha))


class HinfTracker:
    """Warm start for repeated layer-H∞ evaluations of the same layers during training.

    Pass one tracker to every call of :func:`ssmtools.torch.hinf_penalty` (or
    :func:`ssmtools.torch.hinf_norm`) of a training loop; it remembers each layer's peak frequencies by name.

    Parameters
    ----------
    certify_every : int
        Re-certify each layer's peak on every ``certify_every``-th call (``1``: at every call).
    candidates : int
        Local maxima tracked per system: the certified peak and the runners-up met on the way, so that the
        penalty can follow the maximum when another lobe overtakes the one it pushes down.

    Notes
    -----
    What each call certifies, per system (``rtol`` the caller's, the gradient in every case the envelope-theorem
    gradient of σ_max at the returned peak, exact there because the peak is a local maximiser):

    - **search** (first call for a layer, a change of its batch shape, a failed certificate, a pole next to the circle):
      the full certified search, ``‖G‖∞ ≤ (1 + rtol)·value`` (plus the rounding floor), value attained at the peak;
    - **level-set** (every ``certify_every``-th call): the tracked peaks are refined locally and the best one is
      tested at ``γ = (1 + rtol/2)·value``: no frequency where σ_max reaches γ gives the same bracket as a
      search; crossings lead to a larger lobe (Bruinsma–Steinbuch iteration, :mod:`ssmtools._hinf_levelset`),
      which is tested in turn;
    - **local** (the other calls): each tracked peak moves by one secant step on the slope of σ_max (from where
      it was; repeated over the calls, the steps converge as the parameters settle), and the best is returned:
      its value is attained, so it is a lower bound of ‖G‖∞, but the frequencies away from the tracked lobes are not re-examined: if an untracked lobe has
      overtaken them since the last certificate, the value is below the norm by what that lobe gained over at
      most ``certify_every − 1`` optimiser steps, and the next certificate moves to it.

    ``counts`` tallies the routes taken (per system, batch elements counted one by one).
    """

    def __init__(self, *, certify_every: int = 10, candidates: int = 3) -> None:
        self.certify_every = check_integer("certify_every", certify_every, minimum=1)
        self.candidates = check_integer("candidates", candidates, minimum=1)
        self._peaks: dict[str, list[np.ndarray]] = {}
        self._calls: dict[str, int] = {}
        self.counts: dict[Route, int] = {"search": 0, "level-set": 0, "local": 0}

    def reset(self) -> None:
        """Forget every peak (the next call of each layer runs the full search)."""
        self._peaks.clear()
        self._calls.clear()

    def peaks(self, name: str, sys: DiagonalSSM, *, rtol: float) -> np.ndarray:
        """The peak frequency of every system of ``sys`` (shape ``batch_shape``; ``nan`` where unstable).

        Parameters
        ----------
        name : str
            The layer's key (its module path): peaks are remembered per name.
        sys : DiagonalSSM
            The layer at the current parameters (host copy).
        rtol : float
            Relative accuracy certified on search and level-set calls (see the class notes).

        Returns
        -------
        ndarray of float64
            Rad/sample (DT) or rad/s (CT; ``inf`` for a supremum approached as ω → ∞).
        """
        shape = sys.batch_shape
        previous = self._peaks.get(name)
        if previous is not None and len(previous) != int(np.prod(shape)):
            previous = None
        call = self._calls.get(name, 0)
        certify = call % self.certify_every == 0
        tracked = []
        for k, index in enumerate(np.ndindex(*shape)):
            tracked.append(self._one(sys, index, None if previous is None else previous[k], certify, rtol))
        self._peaks[name], self._calls[name] = tracked, call + 1
        peaks = np.array([t[0] if t.size else np.nan for t in tracked]).reshape(shape)
        return peaks

    def _one(self, sys: DiagonalSSM, index: tuple, start: np.ndarray | None, certify: bool, rtol: float) -> np.ndarray:
        """The tracked peaks of one system, best first (user frequencies; empty when unstable)."""
        lam, B, C, D = sys.poles[index], sys.B[index], sys.C[index], sys.D[index]
        if not np.all(_kernels.stability_margin(lam, discrete=sys.is_discrete) > 0):
            return np.zeros(0)
        discrete, real_output, with_input = sys.is_discrete, sys.output == "real", sys.state_includes_input
        form, alpha = _hinf_diagonal.circle_form(
            lam, B, C, D, discrete=discrete, real_output=real_output, state_includes_input=with_input
        )
        symmetric = bool(real_output or form.half)

        def user(omega: np.ndarray) -> np.ndarray:
            return np.array([_hinf_diagonal._user_frequency(float(w), alpha, symmetric) for w in omega])

        if start is not None and start.size and form.gain.size:
            omega, values = _track(form, np.array([_to_form_frequency(float(w), alpha) for w in start]))
            omega = omega[np.argsort(-values)]
            if not certify:
                self.counts["local"] += 1
                return user(omega)
            certified = _level_set_certify(form, omega, rtol)
            if certified is not None:
                self.counts["level-set"] += 1
                return user(self._keep(form, certified, omega))
        self.counts["search"] += 1
        bracket = _hinf_diagonal.hinf_bracket(
            lam, B, C, D, discrete=discrete, real_output=real_output, state_includes_input=with_input, rtol=rtol
        )
        if not (form.gain.size and np.isfinite(bracket.peak)):
            return np.array([bracket.peak])
        return user(self._keep(form, _to_form_frequency(bracket.peak, alpha), np.zeros(0)))

    def _keep(self, form: _hinf_diagonal._CircleForm, peak: float, others: np.ndarray) -> np.ndarray:
        """The certified peak first, then up to ``candidates − 1`` runners-up: the tracked peaks of other lobes and
        the lobes above ``_RUNNER_UP``·σ_max(peak) that one more level-set test finds."""
        if self.candidates == 1:
            return np.array([peak])
        value = float(_hinf_diagonal.exact_values(form, np.array([peak]))[0][0])
        lobes = _lobes_above(form, _RUNNER_UP * value) if _hinf_levelset.applicable(form) else np.zeros(0)
        found = np.concatenate([others, lobes])
        distance, _ = _hinf_levelset._scale(form, peak, 1e-6)
        distinct = found[np.abs(np.angle(np.exp(1j * (found - peak)))) > 1e-3 * distance]
        if distinct.size:
            distinct = distinct[np.argsort(-_hinf_diagonal.exact_values(form, distinct)[0])]
        return np.array([peak, *distinct[: self.candidates - 1]])


#: lobes within this fraction of the certified value are tracked between certificates
_RUNNER_UP = 0.5


def _track(form: _hinf_diagonal._CircleForm, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One batched secant step towards the local maximum of σ_max from each peak of ``omega`` (form frequencies):
    the slopes at ω and at ω + h uphill (h = 1 % of the distance to the nearest pole) give the zero of the slope,
    kept within half that distance (on the lobe). Returns the new points and the best value met per peak."""
    scale = np.array([_hinf_levelset._scale(form, float(w), 1e-6)[0] for w in omega])
    value, slope = _values_and_slopes(form, omega)
    ahead = omega + 0.01 * scale * np.sign(slope)
    value_ahead, slope_ahead = _values_and_slopes(form, ahead)
    change = slope_ahead - slope
    safe = np.where(change != 0, change, 1.0)
    secant = np.where(change != 0, ahead - slope_ahead * (ahead - omega) / safe, ahead)
    return ahead + np.clip(secant - ahead, -0.5 * scale, 0.5 * scale), np.maximum(value, value_ahead)


def _values_and_slopes(form: _hinf_diagonal._CircleForm, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """σ_max(G(e^{jω})) and its slope ``Re(u₁ᴴ G'(ω) v₁)`` at every ω of ``omega`` (batched
    :func:`ssmtools._hinf_diagonal.value_and_slope`)."""
    psi = _hinf_diagonal._resolvent(form, omega)
    G = (form.C[None] * psi[:, None, :]) @ form.B + form.D
    U, sigma, Vh = np.linalg.svd(G)
    u, v = U[:, :, 0], np.conj(Vh[:, 0, :])
    phi = psi - form.offset
    dphi = -1j * (1.0 / phi + form.radius) * phi**2
    slope = np.real(np.sum((np.conj(u) @ form.C) * dphi * (v @ form.B.T), axis=1))
    return sigma[:, 0], slope


def _lobes_above(form: _hinf_diagonal._CircleForm, gamma: float) -> np.ndarray:
    """Midpoints of the frequency intervals where σ_max > γ (one level-set test; form frequencies)."""
    realized = _hinf_levelset.realization(form)
    infinity = float(np.angle(np.exp(1j * (realized[4] + np.pi))))
    if not _hinf_diagonal.value_and_slope(form, infinity)[0] < gamma:
        return np.zeros(0)
    points = _hinf_levelset.to_circle(_hinf_levelset.crossings(realized, gamma), realized[4])
    if form.half:
        points = np.abs(points)
    points = np.unique(points)
    if points.size < 2:
        return np.zeros(0)
    between = 0.5 * (points + np.roll(points, -1))
    between[-1] = points[-1] + 0.5 * (points[0] + 2.0 * np.pi - points[-1])
    between = np.angle(np.exp(1j * between))
    return between[_hinf_diagonal.exact_values(form, between)[0] > gamma]


def _level_set_certify(form: _hinf_diagonal._CircleForm, seeds: np.ndarray, rtol: float) -> float | None:
    """The level-set certificate of :mod:`ssmtools._hinf_levelset` seeded with ``seeds`` (form frequencies):
    the certified peak, or ``None`` when it cannot decide (then the caller searches)."""
    if not _hinf_levelset.applicable(form):
        return None

    def evaluate(omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _hinf_diagonal.exact_values(form, omega)

    def cheap(omega: np.ndarray) -> np.ndarray:
        return _hinf_diagonal.cheap_bounds(form, omega, _hinf_diagonal._start_vectors(form, omega), iterations=8)[0]

    found = _hinf_levelset.certify(
        form,
        seeds,
        evaluate(seeds)[0],
        rtol=rtol,
        evaluate=evaluate,
        slope=lambda w: _hinf_diagonal.value_and_slope(form, w),
        cheap=cheap,
        profile=lambda w: _hinf_diagonal.feedthrough_profile(form, w),
    )
    return None if found is None else float(found[1])

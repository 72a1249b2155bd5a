"""Warm-started H∞ peaks across training steps: :class:`HinfTracker`.

Between two optimiser steps the parameters move little, and so does the peak frequency of each layer's
response. A tracker keeps every layer's last peaks and, instead of the full certified search of
:func:`ssmtools.hinf_result` at every step, moves them by one Newton step per call (σ_max and its two frequency derivatives,
in torch: :func:`ssmtools.torch.hinf_norm`) and re-certifies the best one with one Bruinsma–Steinbuch level-set
test every ``certify_every`` calls; the full search runs only on the first call and when a test fails
(docs/concepts/derivations.md#differentiable-norms).
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

    - **search** (first call for a layer, a change of its batch shape, a failed certificate, a pole next to the
      circle, a system unstable now or at its last certificate):
      the full certified search, ``‖G‖∞ ≤ (1 + rtol)·value`` (plus the rounding floor), value attained at the peak;
    - **level-set** (every ``certify_every``-th call): the tracked peaks are climbed to their local maxima
      (exact σ_max evaluations on the host) and the best one is tested at ``γ = (1 + rtol/2)·value``: no
      frequency where σ_max reaches γ gives the same bracket as a search; crossings lead to a larger lobe (Bruinsma–Steinbuch iteration, :mod:`ssmtools._hinf_levelset`),
      which is tested in turn;
    - **local** (the other calls): σ_max and its first two frequency derivatives are evaluated at each tracked
      peak ω, the best one is returned, and each moves by one Newton step (docs/concepts/derivations.md#differentiable-norms):
      the value is attained, so it is a lower bound of ‖G‖∞, but the frequencies away
      from the tracked lobes are not re-examined: if an untracked lobe has overtaken them since the last
      certificate, the value is below the norm by what that lobe gained over at most ``certify_every − 1``
      optimiser steps, and the next certificate moves to it. A local call runs no host code: the
      derivatives are part of the torch evaluation of the value, on the system's device.

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

    def due(self, name: str, batch_shape: tuple[int, ...]) -> bool:
        """Whether the next call for ``name`` is a certified one (search or level-set) rather than a local step.

        Parameters
        ----------
        name : str
            The layer's key.
        batch_shape : tuple of int
            The layer's batch shape now (a change of shape forgets its peaks).

        Returns
        -------
        bool
            True on every ``certify_every``-th call, and whenever a system of the layer has no finite tracked
            peak (first call, new batch shape, unstable at its last certificate, CT peak at ω = ∞).
        """
        previous = self._peaks.get(name)
        if previous is None or len(previous) != int(np.prod(batch_shape)):
            return True
        if not all(t.size and np.all(np.isfinite(t)) for t in previous):
            return True
        return self._calls.get(name, 0) % self.certify_every == 0

    def tracked(self, name: str) -> np.ndarray:
        """The tracked peaks of every system of ``name``, best first: shape ``(systems, candidates)``, ``nan``-padded.

        Parameters
        ----------
        name : str
            The layer's key (after a certified call for it).

        Returns
        -------
        ndarray of float64
            User frequencies (rad/sample or rad/s).
        """
        rows = self._peaks[name]
        width = max(t.size for t in rows)
        out = np.full((len(rows), width), np.nan)
        for k, t in enumerate(rows):
            out[k, : t.size] = t
        return out

    def advance(self, name: str, moved: np.ndarray) -> None:
        """Record a local call for ``name``: the tracked peaks become ``moved`` (the layout of :meth:`tracked`).

        Parameters
        ----------
        name : str
            The layer's key.
        moved : ndarray
            Shape ``(systems, candidates)``, ``nan`` where a system tracks fewer candidates.
        """
        self._peaks[name] = [row[np.isfinite(row)] for row in np.asarray(moved, dtype=float)]
        self._calls[name] = self._calls.get(name, 0) + 1
        self.counts["local"] += len(moved)

    def peaks(self, name: str, sys: DiagonalSSM, *, rtol: float) -> np.ndarray:
        """The certified peak frequency of every system of ``sys`` (shape ``batch_shape``; ``nan`` where unstable).

        A certified call (see the class notes): the level-set route from the tracked peaks where there are
        any, the full search otherwise or where the test cannot decide.

        Parameters
        ----------
        name : str
            The layer's key (its module path): peaks are remembered per name.
        sys : DiagonalSSM
            The layer at the current parameters (host copy).
        rtol : float
            Relative accuracy certified.

        Returns
        -------
        ndarray of float64
            Rad/sample (DT) or rad/s (CT; ``inf`` for a supremum approached as ω → ∞).
        """
        shape = sys.batch_shape
        previous = self._peaks.get(name)
        if previous is not None and len(previous) != int(np.prod(shape)):
            previous = None
        tracked = []
        for k, index in enumerate(np.ndindex(*shape)):
            tracked.append(self._one(sys, index, None if previous is None else previous[k], rtol))
        self._peaks[name], self._calls[name] = tracked, self._calls.get(name, 0) + 1
        return np.array([t[0] if t.size else np.nan for t in tracked]).reshape(shape)

    def _one(self, sys: DiagonalSSM, index: tuple, start: np.ndarray | None, rtol: float) -> np.ndarray:
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
            omega = np.array([_to_form_frequency(float(w), alpha) for w in start])
            certified = _level_set_certify(form, omega, rtol)
            if certified is not None:
                self.counts["level-set"] += 1
                return user(self._keep(form, *certified, omega, alpha))
        self.counts["search"] += 1
        bracket = _hinf_diagonal.hinf_bracket(
            lam, B, C, D, discrete=discrete, real_output=real_output, state_includes_input=with_input, rtol=rtol
        )
        if not (form.gain.size and np.isfinite(bracket.peak)):
            return np.array([bracket.peak])
        return user(self._keep(form, bracket.value, _to_form_frequency(bracket.peak, alpha), np.zeros(0), alpha))

    def _keep(
        self, form: _hinf_diagonal._CircleForm, value: float, peak: float, others: np.ndarray, alpha: float | None
    ) -> np.ndarray:
        """The certified peak first, then up to ``candidates − 1`` runners-up, one per lobe: the tracked peaks and
        the resonances and band edges above ``_RUNNER_UP``·σ_max(peak) (:func:`_probed_lobes`), best first."""
        if self.candidates == 1:
            return np.array([peak])
        probes, at_probes = _probed_lobes(form, _RUNNER_UP * value, alpha)
        at_others = _hinf_diagonal.exact_values(form, others)[0] if others.size else others
        found = np.concatenate([others, probes])[np.argsort(-np.concatenate([at_others, at_probes]))]
        kept = [peak]
        for omega in found:
            distance, _ = _hinf_levelset._scale(form, float(omega), 1e-6)
            if len(kept) < self.candidates and all(
                abs(np.angle(np.exp(1j * (omega - k)))) > 1e-3 * distance for k in kept
            ):
                kept.append(float(omega))
        return np.array(kept)


#: lobes within this fraction of the certified value are tracked between certificates
_RUNNER_UP = 0.5


def _probed_lobes(form: _hinf_diagonal._CircleForm, gamma: float, alpha: float | None) -> tuple[np.ndarray, np.ndarray]:
    """One probe per lobe where σ_max may overtake the peak (form frequencies), from one batch of exact
    evaluations: the poles' resonance frequencies and, for a conjugate-symmetric response, the band edges
    ω = 0 and π (CT: 0 only), where σ_max is always stationary; neighbouring probes with no dip of σ_max at
    their midpoint are one lobe, represented by its best probe; lobes whose best probe is ≤ γ are dropped.
    Returns the probes and their σ_max."""
    probes = np.abs(form.theta) if form.half else np.angle(np.exp(1j * form.theta))
    if form.half:
        probes = np.concatenate([probes, [0.0, np.pi] if alpha is None else [0.0]])
    probes = np.unique(probes)
    if probes.size == 0:
        return probes, probes
    both = _hinf_diagonal.exact_values(form, np.concatenate([probes, 0.5 * (probes[1:] + probes[:-1])]))[0]
    values, middle = both[: probes.size], both[probes.size :]
    if probes.size > 1:
        dip = middle < np.minimum(values[1:], values[:-1])
        lobe = np.concatenate([[0], np.cumsum(dip)])
    else:
        lobe = np.zeros(1, dtype=int)
    best = [int(np.flatnonzero(lobe == k)[np.argmax(values[lobe == k])]) for k in np.unique(lobe)]
    chosen = [k for k in best if values[k] > gamma]
    return probes[chosen], values[chosen]


def _level_set_certify(form: _hinf_diagonal._CircleForm, seeds: np.ndarray, rtol: float) -> tuple[float, float] | None:
    """The level-set certificate of :mod:`ssmtools._hinf_levelset` seeded with ``seeds`` (form frequencies):
    the certified ``(value, peak)``, or ``None`` when it cannot decide (then the caller searches)."""
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
        slope=lambda w: _hinf_diagonal.value_and_slope(form, w)[:2],
        rayleigh=lambda w: _hinf_diagonal.rayleigh_values(form, w),
        cheap=cheap,
        profile=lambda w: _hinf_diagonal.feedthrough_profile(form, w),
    )
    return None if found is None else (float(found[0]), float(found[1]))

"""``"h2-greedy"``: balanced-truncation orders allocated greedily on the exact per-layer H2 errors.

The Hankel-slot criterion ``"balanced"`` ranks slots by LAMP-normalised Hankel singular values, a proxy. This
criterion ranks them by what removing them costs: for every layer (every channel of a multi-SISO layer) the
exact H2 error ``e(k) = ‖G − G_k‖₂`` of its balanced truncation to k stored states (the reduction
``"balanced-truncation"`` performs, fitted to k states) is computed for every k, and slot k scores the
increase of the weighted squared error when it goes, ``w·(e(k − 1)² − e(k)²)``. One global threshold then
removes the cheapest slots model-wide: the greedy allocation that minimises ``Σ_ℓ w_ℓ e_ℓ²`` — the squared
output error of the model to first order when the layer errors are uncorrelated and the weights are the squared
downstream gains (docs/concepts/reduction.md#allocation-across-layers). Scores are made non-increasing along the
slots (a running maximum from the last slot), so the allocation is exactly greedy on a convex error curve and
never keeps a slot whose predecessor goes.

Weights (``weights=``): ``"relative"`` (default) ``w_ℓ = 1/‖G_ℓ‖₂²`` — every layer's relative error counts
alike, the data-free estimate for layers followed by a normalisation (LayerNorm, as in S5, S4D and LRU blocks);
``"absolute"`` ``w_ℓ = 1`` — the output errors as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from ..errors import silence_unstable
from ..norms import h2_norm
from ..reduction import balanced_truncation
from ..systems import DiagonalSSM
from ._memo import Memo, system_key
from .balanced import Balanced
from .criteria import register
from .h2_optimal import h2_error

if TYPE_CHECKING:
    from ..model import SSMLayer, SSMModel

__all__ = ["H2Greedy", "truncation_errors"]

_CURVES: Memo[np.ndarray] = Memo(256)  # one curve per channel: an S4D layer has H of them


def truncation_errors(system: DiagonalSSM, *, horizon: int | None = None) -> np.ndarray:
    """Exact H2 error of balanced truncation to every stored-state count, ``e[k]`` for k = 0..n.

    Parameters
    ----------
    system : DiagonalSSM
        Unbatched. Without a horizon the states with |λ̄| ≥ 1 are kept exactly (stable/unstable decomposition)
        and left out of the error; with one, the finite-horizon energy of the first L error samples.
    horizon : int, optional
        Sequence length L of the finite-horizon variant.

    Returns
    -------
    ndarray of float64, shape ``(n + 1,)``
        ``e[k]``, the error of ``balanced_truncation(system, states=k)``; ``e[n] = 0`` (read-only; the last
        curves are remembered, keyed by the system's parameters and the horizon, so a model pruned at several
        ratios computes each layer's curve once).
    """
    return _CURVES.get(system_key((system,), (horizon,)), lambda: _truncation_errors(system, horizon))


def _truncation_errors(system: DiagonalSSM, horizon: int | None) -> np.ndarray:
    n = system.n_states
    unstable = (system.stability_margin <= 0) if horizon is None else np.zeros(n, bool)
    stable = system.replace(poles=system.poles[~unstable], B=system.B[~unstable], C=system.C[:, ~unstable])
    n_u = int(np.count_nonzero(unstable))
    errors = np.zeros(n + 1)
    for k in range(n):
        if k < n_u or stable.n_states == 0:
            errors[k] = float(h2_norm(stable.replace(D=None))) if stable.n_states else 0.0
            continue
        reduced = balanced_truncation(system, states=k, horizon=horizon, unstable="keep").systems[0]
        kept = reduced.n_states - n_u
        head = reduced.replace(poles=reduced.poles[:kept], B=reduced.B[:kept], C=reduced.C[:, :kept])
        errors[k] = h2_error(stable if horizon is None else system, head, horizon=horizon)
    errors.flags.writeable = False
    return errors


@register
@dataclass(frozen=True)
class H2Greedy(Balanced):
    """Slot scores from the exact H2 errors of balanced truncation, for a greedy allocation across layers.

    Parameters
    ----------
    order_allocation : {"global", "uniform"}
        ``"global"`` (default): one threshold on the weighted error increases (the greedy allocation);
        ``"uniform"``: every layer keeps the same fraction of its slots, as for ``"balanced"``.
    horizon : int, optional
        Finite-horizon errors and balanced truncation over sequences of length L (every pole allowed); passed
        on to the default reduction.
    unstable : {"keep", "error"}
        Infinite horizon: ``"keep"`` scores the unstable states' slots ``inf`` (always kept, as their reduction
        keeps them), ``"error"`` refuses unstable layers.
    weights : {"relative", "absolute"}
        Layer weights of the model-level error estimate: ``"relative"`` ``1/‖G_ℓ‖₂²``, ``"absolute"`` 1.

    Notes
    -----
    Units are Hankel slots (``ranks_states = False``), as for ``"balanced"``, whose options and default reduction
    (``"balanced-truncation"``; ``"h2-optimal"`` and ``"singular-perturbation"`` take the same budgets) it shares.
    Cost: one balanced truncation per stored state of every layer (channel).
    """

    name: ClassVar[str] = "h2-greedy"
    weights: Literal["relative", "absolute"] = "relative"

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Weighted increase of the squared H2 error when each slot goes, non-increasing along the slots.

        Parameters
        ----------
        layer : SSMLayer
            A causal layer (ValueError otherwise, and for unstable ones with ``unstable="error"``).
        model : SSMModel, optional
            Unused.

        Returns
        -------
        ndarray of float64
            Slot scores, shape ``layer.system.poles.shape``.
        """
        system = self.causal_system(layer)  # the refusals of "balanced", without its Hankel singular values
        unstable = system.stability_margin <= 0
        scores = np.zeros(system.poles.shape)
        for index in np.ndindex(*system.batch_shape):
            one = system[index] if system.batch_shape else system
            with silence_unstable():
                errors = truncation_errors(one, horizon=self.horizon)
            norm = errors[0] if self.weights == "relative" else 1.0  # e(0): the (stable part's) H2 norm
            weight = 1.0 / norm**2 if np.isfinite(norm) and norm > 0 else 1.0
            gains = weight * np.maximum(errors[:-1] ** 2 - errors[1:] ** 2, 0.0)
            gains = np.maximum.accumulate(gains[::-1])[::-1]
            if self.horizon is None:
                gains[: int(np.count_nonzero(unstable[index]))] = np.inf
            scores[index] = gains
        return scores

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """Unchanged: the weights already make the layers' scores comparable.

        Parameters
        ----------
        scores : ndarray of float64
            One layer's raw unit scores, shape ``(u,)``.

        Returns
        -------
        ndarray of float64
            ``scores``.
        """
        return scores

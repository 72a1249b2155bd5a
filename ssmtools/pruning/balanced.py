"""``"balanced"``: Hankel-slot scores, so that balanced truncation orders are allocated across layers.

Each layer's strictly proper part is balanced (Gramians of (Λ̄, B̄, C), docs/concepts/derivations.md#hankel-singular-values). What gets scored
and allocated are *Hankel slots*: slot j of a layer (or channel) stands for one stored state's worth of
Hankel singular values — the pair (σ_{2j−1}, σ_{2j}) of the real realization for ``output="real"`` (a
stored state is a conjugate pair, two real dimensions), σ_j for ``output="complex"`` — with energy
``σ_{2j−1}² + σ_{2j}²``. The criterion only scores; its default reduction,
[`BalancedTruncation`][ssmtools.pruning.reductions.BalancedTruncation] (``"balanced-truncation"``), truncates every
layer to the number of slots it keeps, re-diagonalises and writes back with
[`ssmtools.SSMModel.replace_systems`][ssmtools.model.SSMModel.replace_systems]. Bound: ``σ_{r+1} ≤ ‖G − G_r‖∞ ≤ 2 Σ_{j>r} σ_j`` (Enns 1984;
Glover 1984; Al-Saggaf & Franklin 1987; docs/concepts/reduction.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from ..errors import ArgumentError
from ..norms import hankel_singular_values
from ..systems import BidirectionalSSM, DiagonalSSM
from .criteria import Criterion, register
from .normalize import lamp_normalize

if TYPE_CHECKING:
    from ..model import SSMLayer, SSMModel

__all__ = ["Balanced"]


def _decomposed_hsv(system: DiagonalSSM, unstable: np.ndarray) -> np.ndarray:
    """``inf`` for the real dimensions of the unstable states, then the stable part's HSVs, per batch element."""
    dim = 2 if system.output == "real" else 1
    out = np.zeros(system.poles.shape[:-1] + (dim * system.n_states,))
    for index in np.ndindex(*system.batch_shape):
        one = system[index] if system.batch_shape else system
        stable = np.flatnonzero(~unstable[index])
        part = one.replace(poles=one.poles[stable], B=one.B[stable], C=one.C[:, stable])
        values = hankel_singular_values(part) if stable.size else np.zeros(0)
        out[index] = np.concatenate([np.full(dim * (one.n_states - stable.size), np.inf), values])
    return out


@register
@dataclass(frozen=True)
class Balanced(Criterion):
    """Hankel-slot energies, to allocate balanced-truncation orders across layers.

    Parameters
    ----------
    order_allocation : {"global", "uniform"}
        ``"global"`` (default): slot energies ``σ_{2j−1}² + σ_{2j}²`` LAMP-normalised per layer (as
        LAST normalises squared H∞ norms) and ranked with one global threshold. ``"uniform"``: every
        layer keeps the same fraction of its slots.
    horizon : int, optional
        Finite-horizon Hankel singular values over sequences of length L
        (:func:`~ssmtools.hankel_singular_values` ``(horizon=L)``), defined for unstable layers too; passed
        on to the default reduction (finite-horizon balanced truncation).
    unstable : {"keep", "error"}
        Infinite horizon: ``"keep"`` (default) scores the states with |λ̄| ≥ 1 ``inf`` (their slots come first
        and are always kept) and the stable part's slots by its own Hankel singular values — the additive
        stable/unstable decomposition its reduction performs. ``"error"`` refuses unstable layers.

    Notes
    -----
    The units are Hankel slots, not stored states (``ranks_states = False``), so the plan's reduction
    must not select states; the default is ``"balanced-truncation"``, whose plans mark kept *slots*
    (a prefix: the k largest) and are applied with :func:`~ssmtools.pruning.apply_plan` or
    :func:`~ssmtools.pruning.last.last_prune`, not ``SSMModel.apply``. ``plan.n_kept`` reports the
    stored count after re-diagonalisation (at most k with the reduction's default ``fit="states"``, see
    :class:`~ssmtools.pruning.reductions.BalancedTruncation`). Bidirectional (non-causal) layers are refused
    (ValueError): balanced truncation needs a causal system. Multi-SISO
    layers: slot j of every channel; ``units="state"`` keeps the same order in all channels (slot
    energies summed over channels).
    """

    name: ClassVar[str] = "balanced"
    channel_reduction: ClassVar[Literal["max", "sum"]] = "sum"
    ranks_states: ClassVar[bool] = False
    default_reduction: ClassVar[str] = "balanced-truncation"
    order_allocation: Literal["global", "uniform"] = "global"
    horizon: int | None = None
    unstable: Literal["keep", "error"] = "keep"

    def reduction_options(self) -> dict[str, Any]:
        """The horizon and unstable policy, for the default ``"balanced-truncation"`` reduction.

        Returns
        -------
        dict
            ``{"horizon": ..., "unstable": ...}``.
        """
        return {"horizon": self.horizon, "unstable": self.unstable}

    @property
    def scope(self) -> Literal["global", "layer"]:  # type: ignore[override]
        """``"layer"`` for uniform order allocation, else ``"global"``."""
        return "layer" if self.order_allocation == "uniform" else "global"

    def causal_system(self, layer: SSMLayer) -> DiagonalSSM:
        """The layer's system, after the refusals of balanced truncation (no work beyond a stability check).

        Parameters
        ----------
        layer : SSMLayer
            The layer to be scored.

        Returns
        -------
        DiagonalSSM
            ``layer.system``.

        Raises
        ------
        ArgumentError
            For a bidirectional layer, and for one with poles on or outside the unit circle when
            ``unstable="error"`` and no horizon is set.
        """
        system = layer.system
        if isinstance(system, BidirectionalSSM):
            raise ArgumentError(
                f"layer {layer.name!r} is bidirectional (non-causal): balanced truncation needs a causal layer; "
                "use a modal criterion such as 'last' or 'last-exact'"
            )
        if self.horizon is None and self.unstable == "error" and np.any(system.stability_margin <= 0):
            raise ArgumentError(
                f"layer {layer.name!r} has poles with |λ̄| ≥ 1: balanced truncation with unstable='error' needs a "
                "stable layer; use unstable='keep' (stable/unstable decomposition), a horizon, or a modal criterion"
            )
        return system

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Energy of every Hankel slot, descending along the last axis.

        Parameters
        ----------
        layer : SSMLayer
            A causal layer (ValueError otherwise, and for unstable ones with ``unstable="error"``).
        model : SSMModel, optional
            Unused.

        Returns
        -------
        ndarray of float64
            Slot energies, shape ``layer.system.poles.shape``.
        """
        system = self.causal_system(layer)
        unstable = system.stability_margin <= 0
        if self.horizon is not None:
            hsv = hankel_singular_values(system, horizon=self.horizon)
        elif not np.any(unstable):
            hsv = hankel_singular_values(system)  # (*batch, N), descending
        else:
            hsv = _decomposed_hsv(system, unstable)
        if system.output == "real":
            return np.sum(hsv.reshape(system.poles.shape + (2,)) ** 2, axis=-1)
        return hsv**2

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """LAMP for ``order_allocation="global"``, unchanged for ``"uniform"``.

        Parameters
        ----------
        scores : ndarray of float64
            One layer's raw unit scores, shape ``(u,)``.

        Returns
        -------
        ndarray of float64
            The normalised scores, same shape.
        """
        return lamp_normalize(scores) if self.order_allocation == "global" else np.asarray(scores, dtype=float)

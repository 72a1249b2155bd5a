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
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from ..errors import ArgumentError, check_choice
from ..norms import hankel_singular_values
from ..systems import BidirectionalSSM
from .criteria import Criterion, register
from .normalize import lamp_normalize

if TYPE_CHECKING:
    from ..model import SSMLayer, SSMModel

__all__ = ["Balanced"]


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

    Notes
    -----
    The units are Hankel slots, not stored states (``ranks_states = False``), so the plan's reduction
    must not select states; the default is ``"balanced-truncation"``, whose plans mark kept *slots*
    (a prefix: the k largest) and are applied with [`apply_plan`][ssmtools.pruning.plan.apply_plan] or
    [`last_prune`][ssmtools.pruning.last.last_prune], not ``SSMModel.apply``. ``plan.n_kept`` reports the
    stored count after re-diagonalisation (it can exceed k, see
    [`BalancedTruncation`][ssmtools.pruning.reductions.BalancedTruncation]). Bidirectional (non-causal) and unstable
    layers are refused (ValueError): balanced truncation needs a stable causal system. Multi-SISO
    layers: slot j of every channel; ``units="state"`` keeps the same order in all channels (slot
    energies summed over channels).
    """

    name: ClassVar[str] = "balanced"
    channel_reduction: ClassVar[Literal["max", "sum"]] = "sum"
    ranks_states: ClassVar[bool] = False
    default_reduction: ClassVar[str] = "balanced-truncation"
    order_allocation: Literal["global", "uniform"] = "global"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("order_allocation", self.order_allocation, ("global", "uniform"))

    @property
    def scope(self) -> Literal["global", "layer"]:  # type: ignore[override]
        """``"layer"`` for uniform order allocation, else ``"global"``."""
        return "layer" if self.order_allocation == "uniform" else "global"

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Energy of every Hankel slot, descending along the last axis.

        Parameters
        ----------
        layer : SSMLayer
            A causal, asymptotically stable layer (ValueError otherwise).
        model : SSMModel, optional
            Unused.

        Returns
        -------
        ndarray of float64
            Slot energies, shape ``layer.system.poles.shape``.
        """
        if isinstance(layer.system, BidirectionalSSM):
            raise ArgumentError(
                f"layer {layer.name!r} is bidirectional (non-causal): balanced truncation needs a causal layer; "
                "use a modal criterion such as 'last' or 'last-exact'"
            )
        system = layer.system
        if not np.all(system.is_stable):
            raise ArgumentError(
                f"layer {layer.name!r} has poles with |λ̄| ≥ 1: balanced truncation needs a stable layer; use a modal "
                "criterion ('last-exact' keeps and reports unstable states)"
            )
        hsv = hankel_singular_values(system)  # (*batch, N), descending
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

"""``"balanced"``: per-layer balanced truncation as a pruning method, orders allocated by Hankel singular values.

Each layer's strictly proper part is balanced (Gramians of (Λ̄, B̄, C), math.md §4.4) and truncated by
:func:`ssmtools.balanced_truncation`; the reduced dense system is re-diagonalised and written back with
:meth:`ssmtools.SSMModel.replace_systems`. What gets allocated are *Hankel slots*: slot j of a layer
(or channel) stands for one stored state's worth of Hankel singular values — the pair (σ_{2j−1}, σ_{2j})
of the real realization for ``output="real"`` (a stored state is a conjugate pair, two real
dimensions), σ_j for ``output="complex"`` — with energy ``σ_{2j−1}² + σ_{2j}²``. Keeping k slots means
balanced truncation to real order 2k (k). Bound: ``σ_{r+1} ≤ ‖G − G_r‖∞ ≤ 2 Σ_{j>r} σ_j`` (Enns 1984;
Glover 1984; Al-Saggaf & Franklin 1987; math.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from ..errors import check_choice
from ..norms import hankel_singular_values
from ..systems import BidirectionalSSM
from .criteria import Criterion, register
from .normalize import lamp_normalize

if TYPE_CHECKING:
    from ..model import SSMLayer, SSMModel
    from ..reduction import ReductionResult
    from .plan import PruningPlan

__all__ = ["Balanced", "apply_balanced"]


@register
@dataclass(frozen=True)
class Balanced(Criterion):
    """Balanced truncation of every layer, with the orders allocated across layers by Hankel singular values.

    Parameters
    ----------
    order_allocation : {"global", "uniform"}
        ``"global"`` (default): slot energies ``σ_{2j−1}² + σ_{2j}²`` LAMP-normalised per layer (as
        LAST normalises squared H∞ norms) and ranked with one global threshold. ``"uniform"``: every
        layer keeps the same fraction of its slots.

    Notes
    -----
    The plan's ``keep`` masks of a balanced plan mark kept *slots* (a prefix: the k largest), not
    original states — the reduced layer lives in a new (balanced, re-diagonalised) basis — so use
    :func:`~ssmtools.pruning.last.last_prune` or :func:`apply_balanced`, not ``SSMModel.apply``. The
    stored count after re-diagonalisation can exceed k when the reduced model has real poles (each
    takes a stored slot) and balanced truncation raises an order that would split a repeated Hankel
    singular value; ``plan.n_kept`` reports the actual stored count. Bidirectional (non-causal) and
    unstable layers are refused (ValueError): balanced truncation needs a stable causal system.
    Multi-SISO layers: slot j of every channel; ``units="state"`` keeps the same order in all
    channels (slot energies summed over channels).
    """

    name: ClassVar[str] = "balanced"
    channel_reduction: ClassVar[Literal["max", "sum"]] = "sum"
    order_allocation: Literal["global", "uniform"] = "global"

    def __post_init__(self) -> None:
        check_choice("order_allocation", self.order_allocation, ("global", "uniform"))

    @property
    def scope(self) -> Literal["global", "layer"]:  # type: ignore[override]
        """``"layer"`` for uniform order allocation, else ``"global"``."""
        return "layer" if self.order_allocation == "uniform" else "global"

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Energy of every Hankel slot, shape ``poles.shape``, descending along the last axis."""
        if isinstance(layer.system, BidirectionalSSM):
            raise ValueError(
                f"layer {layer.name!r} is bidirectional (non-causal): balanced truncation needs a causal layer; "
                "use a modal criterion such as 'last' or 'last-exact'"
            )
        system = layer.system
        if not np.all(system.is_stable):
            raise ValueError(
                f"layer {layer.name!r} has poles with |λ̄| ≥ 1: balanced truncation needs a stable layer; use a modal "
                "criterion ('last-exact' keeps and reports unstable states)"
            )
        hsv = hankel_singular_values(system)  # (*batch, N), descending
        if system.output == "real":
            return np.sum(hsv.reshape(system.poles.shape + (2,)) ** 2, axis=-1)
        return hsv**2

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        return lamp_normalize(scores) if self.order_allocation == "global" else np.asarray(scores, dtype=float)

    def reduce_layer(self, layer: SSMLayer, keep: np.ndarray, *, exact_error: bool) -> ReductionResult:
        """Balanced truncation of ``layer`` to ``keep.sum(-1)`` slots per channel.

        Parameters
        ----------
        layer : SSMLayer
        keep : ndarray of bool, shape ``poles.shape``
            Kept slots (only their count per channel matters).
        exact_error : bool
            Compute the exact ‖G − G_r‖∞ and ‖G − G_r‖₂.

        Returns
        -------
        ReductionResult
        """
        from ..reduction import balanced_truncation

        slots = keep.sum(axis=-1)
        order = slots * (2 if layer.system.output == "real" else 1)
        return balanced_truncation(layer.system, order=order if order.ndim else int(order), exact_error=exact_error)


def apply_balanced(model: SSMModel, plan: PruningPlan, *, mask: bool = False) -> SSMModel:
    """Write the balanced truncations of a ``"balanced"`` plan back into the model's parameters.

    Parameters
    ----------
    model : SSMModel
        The model the plan was made for (read from a checkpoint: ``model.params`` is rewritten).
    plan : PruningPlan
        A plan with ``criterion == "balanced"``.
    mask : bool
        Must be False: a balanced truncation changes the state basis, so there is nothing to mask.

    Returns
    -------
    SSMModel
        New model whose reduced layers are re-diagonalised balanced truncations (same family and format).
    """
    if plan.criterion != "balanced":
        raise ValueError(f"apply_balanced needs a 'balanced' plan, got criterion {plan.criterion!r}")
    if mask:
        raise ValueError("mask=True is not available for 'balanced': the reduced layer has new states; use mask=False")
    criterion = Balanced(**plan.criterion_options)
    systems: dict[str, Any] = {}
    for entry in plan.layers:
        if entry.keep.all():
            continue
        result = criterion.reduce_layer(model[entry.name], entry.keep, exact_error=False)
        systems[entry.name] = result.system
    return model.replace_systems(systems) if systems else model

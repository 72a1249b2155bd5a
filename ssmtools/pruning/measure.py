"""``measure``: the exact cost of a reduction, ‖G − G_r‖∞ and ‖G − G_r‖₂, and the layer's own norms.

The last step of [`prune_plan`][ssmtools.pruning.plan.prune_plan]. Multi-SISO layers are block-diagonal over channels, so
a layer's H∞ (L∞) norm is the largest channel's and its H2 (L2) norm squared is the sum over channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import silence_unstable
from ..model import SSMLayer
from ..norms import HinfMethod, h2_norm, hinf_norm
from ..systems import DiagonalSSM, LTISystem
from .reductions import ReducedLayer

__all__ = ["LayerErrors", "measure", "layer_norms", "PLAN_RTOL"]

PLAN_RTOL = 1e-4
"""Relative accuracy certified for the H∞ norms of plans and reports (``--rtol`` of ``analyze``/``prune``):
four digits are what a pruning decision or a table needs, and cost a fraction of 1e-8 (docs/concepts/norms.md)."""


@dataclass(frozen=True)
class LayerErrors:
    """Norms of one layer's error system and of the layer itself (None where not computed).

    Parameters
    ----------
    hinf_error, h2_error : float
        ``‖G − G_r‖∞`` and ``‖G − G_r‖₂`` (L∞ / two-sided L2 for bidirectional layers).
    hinf_norm : float or None
        ``‖G‖∞`` of the unreduced layer, D included (None with ``relative_hinf=False``).
    h2_norm : float
        ``‖G‖₂`` of the unreduced layer.
    """

    hinf_error: float
    h2_error: float
    hinf_norm: float | None
    h2_norm: float


def layer_norms(
    system: LTISystem, *, hinf: bool = True, rtol: float = PLAN_RTOL, error_system: bool = False
) -> tuple[float | None, float]:
    """(H∞ or L∞, H2 or L2) of a possibly batched layer: max over channels, root-sum-square over channels.

    Parameters
    ----------
    system : DiagonalSSM or BidirectionalSSM
        A layer or an error system.
    hinf : bool
        Compute the H∞ / L∞ norm (else None). The engine is :func:`ssmtools.hinf_norm`'s ``method="auto"``
        choice, certified to relative accuracy ``rtol``.
    rtol : float
        Relative accuracy of the H∞ norm (:data:`PLAN_RTOL` by default).
    error_system : bool
        ``system`` is the error system of a modal truncation (the removed states, D = 0): a causal one is
        itself diagonal and goes to the certified diagonal algorithm (``method="diagonal"``) instead of AB13DD
        on its compressed standard form, whose cost grows with the cube of the removed states.

    Returns
    -------
    (float or None, float)
    """
    method: HinfMethod = "diagonal" if error_system and isinstance(system, DiagonalSSM) else "auto"
    with silence_unstable():
        linf = np.asarray(hinf_norm(system, method=method, rtol=rtol)) if hinf else None
        l2 = np.asarray(h2_norm(system))
    return (None if linf is None else float(np.max(linf))), float(np.sqrt(np.sum(l2**2)))


def measure(
    layer: SSMLayer, reduced: ReducedLayer, *, relative_hinf: bool = True, rtol: float = PLAN_RTOL
) -> LayerErrors:
    """Exact errors of a reduced layer and the norms of the original for relative errors.

    Parameters
    ----------
    layer : SSMLayer
        The unreduced layer.
    reduced : ReducedLayer
        Its reduction ([`reduce`][ssmtools.pruning.reductions.Reduction.reduce], [`reduce_model`][ssmtools.pruning.reductions.reduce_model]).
    relative_hinf : bool
        Also compute ``‖G‖∞`` of the unreduced layer — on wide layers (H ≫ P, D of full rank) the
        dominant cost. ``False`` leaves ``hinf_norm`` None.
    rtol : float
        Relative accuracy certified for both H∞ norms (:data:`PLAN_RTOL` by default).

    Returns
    -------
    LayerErrors
        ``inf`` where a state is not asymptotically stable.

    Notes
    -----
    The error system comes from the reduction: for modal truncation the removed states alone with
    D = 0 (docs/concepts/reduction.md) — itself a diagonal system, so ``hinf_error`` is the certified
    diagonal algorithm on it (:func:`layer_norms` with ``error_system=True``; AB13DD for bidirectional
    layers) and ``h2_error`` the closed-form Gramian value — both exact, with no cancellation between kept
    and removed states.
    """
    if reduced.error is None:
        hinf_error, h2_error = 0.0, 0.0
    else:
        value, h2_error = layer_norms(reduced.error, rtol=rtol, error_system=True)
        hinf_error = float(value)  # type: ignore[arg-type]
    hinf_full, h2_full = layer_norms(layer.system, hinf=relative_hinf, rtol=rtol)
    return LayerErrors(hinf_error=hinf_error, h2_error=h2_error, hinf_norm=hinf_full, h2_norm=h2_full)

"""``measure``: the exact cost of a reduction, ‖G − G_r‖∞ and ‖G − G_r‖₂, and the layer's own norms.

The last step of [`prune_plan`][ssmtools.pruning.plan.prune_plan]. Multi-SISO layers are block-diagonal over channels, so
a layer's H∞ (L∞) norm is the largest channel's and its H2 (L2) norm squared is the sum over channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import silence_unstable
from ..model import SSMLayer
from ..norms import h2_norm, hinf_norm
from ..systems import LTISystem
from .reductions import ReducedLayer

__all__ = ["LayerErrors", "measure", "layer_norms"]


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


def layer_norms(system: LTISystem, *, hinf: bool = True) -> tuple[float | None, float]:
    """(H∞ or L∞, H2 or L2) of a possibly batched layer: max over channels, root-sum-square over channels.

    Parameters
    ----------
    system : DiagonalSSM or BidirectionalSSM
        A layer or an error system.
    hinf : bool
        Compute the H∞ / L∞ norm (else None). The engine is [`ssmtools.hinf_norm`][ssmtools.norms.hinf_norm]'s
        ``method="auto"`` choice (AB13DD on the I/O-compressed standard form for error systems and
        bidirectional layers, the certified diagonal algorithm at relative accuracy 1e-10 otherwise).

    Returns
    -------
    (float or None, float)
    """
    with silence_unstable():
        linf = np.asarray(hinf_norm(system, rtol=1e-10)) if hinf else None
        l2 = np.asarray(h2_norm(system))
    return (None if linf is None else float(np.max(linf))), float(np.sqrt(np.sum(l2**2)))


def measure(layer: SSMLayer, reduced: ReducedLayer, *, relative_hinf: bool = True) -> LayerErrors:
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

    Returns
    -------
    LayerErrors
        ``inf`` where a state is not asymptotically stable.

    Notes
    -----
    The error system comes from the reduction: for modal truncation the removed states alone with
    D = 0 (docs/concepts/reduction.md), so ``hinf_error`` is AB13DD on its I/O-compressed standard
    form ([`ssmtools.hinf_norm`][ssmtools.norms.hinf_norm], ``method="auto"``) and ``h2_error`` the closed-form Gramian
    value — both exact, with no cancellation between kept and removed states.
    """
    if reduced.error is None:
        hinf_error, h2_error = 0.0, 0.0
    else:
        value, h2_error = layer_norms(reduced.error)
        hinf_error = float(value)  # type: ignore[arg-type]
    hinf_full, h2_full = layer_norms(layer.system, hinf=relative_hinf)
    return LayerErrors(hinf_error=hinf_error, h2_error=h2_error, hinf_norm=hinf_full, h2_norm=h2_full)

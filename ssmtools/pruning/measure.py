"""``measure``: the exact cost of a reduction, ‖G − G_r‖∞ and ‖G − G_r‖₂, and the layer's own norms.

The last step of :func:`~ssmtools.prune_plan`. Multi-SISO layers are block-diagonal over channels, so
a layer's H∞ (L∞) norm is the largest channel's and its H2 (L2) norm squared is the sum over channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import silence_unstable
from ..model import SSMLayer
from ..norms import h2_norm, hinf_norm
from ._bidir import bidirectional_l2, bidirectional_linf, causal_linf
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


def layer_norms(layer: SSMLayer, *, hinf: bool = True, full: bool = False) -> tuple[float | None, float]:
    """(H∞ or L∞, H2 or L2) of a possibly batched layer: max over channels, root-sum-square over channels.

    Parameters
    ----------
    layer : SSMLayer
        A layer or an error system (bidirectional when ``layer.C_backward`` is set).
    hinf : bool
        Compute the H∞ / L∞ norm (else None).
    full : bool
        The layer is an unreduced causal layer, whose D has full rank: use the certified diagonal
        algorithm of :func:`ssmtools.hinf_norm` (relative accuracy 1e-10) instead of AB13DD on the
        I/O-compressed standard form, which is fast for error systems (D = 0, rank ≤ n) only.

    Returns
    -------
    (float or None, float)
    """
    system, backward = layer.system, layer.C_backward
    linf: np.ndarray | None
    with silence_unstable():
        if backward is None and full and hinf:
            linf = np.asarray(hinf_norm(system, method="diagonal", rtol=1e-10))
            l2 = np.asarray(h2_norm(system))
        elif backward is None:
            linf = causal_linf(system) if hinf else None
            l2 = np.asarray(h2_norm(system))
        else:
            linf = bidirectional_linf(system, backward) if hinf else None
            l2 = bidirectional_l2(system, backward)
    return (None if linf is None else float(np.max(linf))), float(np.sqrt(np.sum(l2**2)))


def measure(layer: SSMLayer, reduced: ReducedLayer, *, relative_hinf: bool = True) -> LayerErrors:
    """Exact errors of a reduced layer and the norms of the original for relative errors.

    Parameters
    ----------
    layer : SSMLayer
        The unreduced layer.
    reduced : ReducedLayer
        Its reduction (:meth:`~ssmtools.pruning.reductions.Reduction.reduce`, :func:`reduce_model`).
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
    form and ``h2_error`` the closed-form Gramian value — both exact, with no cancellation.
    """
    if reduced.error is None:
        hinf_error, h2_error = 0.0, 0.0
    else:
        value, h2_error = layer_norms(reduced.error)
        hinf_error = float(value)  # type: ignore[arg-type]
    hinf_full, h2_full = layer_norms(layer, hinf=relative_hinf, full=True)
    return LayerErrors(hinf_error=hinf_error, h2_error=h2_error, hinf_norm=hinf_full, h2_norm=h2_full)

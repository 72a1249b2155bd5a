"""Per-layer norm summaries of an [`SSMModel`][ssmtools.model.SSMModel] (used by the CLI and notebooks)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .model import SSMLayer, SSMModel
from .norms import h2_norm, hinf_result, state_hinf_norms


@dataclass(frozen=True)
class LayerSummary:
    """Norms of one layer viewed as a MIMO system (multi-SISO layers as their block-diagonal whole).

    Parameters
    ----------
    name : str
        Layer name (its path in the parameter tree).
    n_states : int
        Stored states (all channels together for multi-SISO layers).
    bidirectional : bool
        Whether the layer is a [`BidirectionalSSM`][ssmtools.systems.BidirectionalSSM] (non-causal).
    hinf : float
        Layer H∞ norm (L∞ for bidirectional layers: forward plus backward scan,
        docs/concepts/derivations.md#bidirectional-linf); max over channels for multi-SISO layers.
    peak : float or None
        Peak frequency in rad/sample (of the channel block with the largest norm).
    h2 : float or None
        Layer H2 norm (two-sided L2 for bidirectional layers; root-sum-square over channels).
    max_state_hinf : float
        Largest one-state subsystem H∞ (L∞, backward column included, for bidirectional layers).
    stable : bool
        Whether every state is asymptotically stable (|λ| < 1).
    """

    name: str
    n_states: int
    bidirectional: bool
    hinf: float
    peak: float | None
    h2: float | None
    max_state_hinf: float
    stable: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python values, ready for JSON.

        Returns
        -------
        dict
            Field name -> value.
        """
        return asdict(self)


def summarize_layer(layer: SSMLayer, *, rtol: float = 1e-8) -> LayerSummary:
    """Norms of one layer: the block-diagonal whole of a multi-SISO layer has H∞ = max over channels
    and H2² = Σ over channels.

    Parameters
    ----------
    layer : SSMLayer
        The layer (causal or bidirectional).
    rtol : float
        Relative accuracy of the certified diagonal H∞ (causal layers).

    Returns
    -------
    LayerSummary
    """
    system = layer.system
    stable = bool(np.all(system.is_stable))
    result = hinf_result(system, rtol=rtol)
    values, peaks = np.atleast_1d(result.value), np.atleast_1d(result.peak)
    best = int(np.argmax(values))
    hinf, peak = float(values[best]), float(peaks[best])
    h2 = float(np.sqrt(np.sum(np.atleast_1d(h2_norm(system)) ** 2)))
    return LayerSummary(
        name=layer.name,
        n_states=int(np.prod(system.poles.shape)),
        bidirectional=layer.bidirectional,
        hinf=hinf,
        peak=peak,
        h2=h2,
        max_state_hinf=float(np.max(state_hinf_norms(system))),
        stable=stable,
    )


def summarize(model: SSMModel, *, rtol: float = 1e-8) -> list[LayerSummary]:
    """[`summarize_layer`][ssmtools.report.summarize_layer] for every layer of ``model``, in order.

    Parameters
    ----------
    model : SSMModel
        The layers to summarise.
    rtol : float
        Relative accuracy of the certified diagonal H∞.

    Returns
    -------
    list of LayerSummary
        One entry per layer, in model order.

    Examples
    --------
    >>> from ssmtools import SSMModel, examples
    >>> rows = summarize(SSMModel.from_systems({"e5": examples.s5_layer_e5()}))
    >>> round(rows[0].hinf, 6), rows[0].n_states
    (19.733634, 2)
    """
    return [summarize_layer(layer, rtol=rtol) for layer in model.values()]

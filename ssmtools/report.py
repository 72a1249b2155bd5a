"""Per-layer norm summaries of an :class:`~ssmtools.SSMModel` (used by the CLI and notebooks), and their versioned
JSON document (``ssmtools analyze --json``; schema in docs/cli.md#analyze-json)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ._version import __version__
from .model import SSMLayer, SSMModel
from .norms import h2_norm, hinf_result, state_hinf_norms
from .pruning.measure import PLAN_RTOL


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


def summarize_layer(layer: SSMLayer, *, rtol: float = PLAN_RTOL) -> LayerSummary:
    """Norms of one layer: the block-diagonal whole of a multi-SISO layer has H∞ = max over channels
    and H2² = Σ over channels.

    Parameters
    ----------
    layer : SSMLayer
        The layer (causal or bidirectional).
    rtol : float
        Relative accuracy of the certified H∞ (default :data:`~ssmtools.pruning.measure.PLAN_RTOL`, the one tolerance
        of analyze, prune, report and plot; 1e-8 for every digit).

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


def summarize(model: SSMModel, *, rtol: float = PLAN_RTOL) -> list[LayerSummary]:
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


#: Name and version of the JSON document of :func:`summary_document`. The version is raised whenever a field is
#: renamed, removed or changes meaning (adding a field keeps it); readers should check both.
SUMMARY_SCHEMA = "ssmtools.analyze"
SUMMARY_SCHEMA_VERSION = 1


def _json_value(value: Any) -> Any:
    """Non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"`` (JSON has no such numbers), as plan JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def summary_document(
    model: SSMModel,
    *,
    rtol: float = PLAN_RTOL,
    rows: list[LayerSummary] | None = None,
    view: Mapping[str, Any] | None = None,
    layer_fields: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The per-layer table of ``ssmtools analyze`` as a versioned, JSON-ready document.

    Parameters
    ----------
    model : SSMModel
        The layers to summarise.
    rtol : float
        Relative accuracy of the certified diagonal H∞.
    rows : list of LayerSummary, optional
        The layers' summaries (:func:`summarize`) when already computed.
    view : Mapping, optional
        Selective (Mamba) models: which LTI view of the time-varying layers the numbers describe (``name``,
        ``label``, ``calibration_tokens``); the document's ``"view"`` (null for LTI families).
    layer_fields : Mapping[str, Mapping], optional
        Extra fields of each named layer's entry (the per-state statistics of a calibrated Mamba layer).

    Returns
    -------
    dict
        ``{"schema": "ssmtools.analyze", "version": 1, "ssmtools_version", "source", "family", "view",
        "layers": [...]}``;
        every layer entry has the fields of :class:`LayerSummary` plus ``"norm"`` (``"Hinf"``, or ``"Linf"`` for a
        bidirectional layer, whose ``hinf`` is its L∞ norm). Non-finite numbers are the strings ``"inf"`` /
        ``"nan"``. Field by field in docs/cli.md#analyze-json.

    Examples
    --------
    >>> from ssmtools import SSMModel, examples
    >>> document = summary_document(SSMModel.from_systems({"e5": examples.s5_layer_e5()}))
    >>> document["schema"], document["version"], round(document["layers"][0]["hinf"], 6)
    ('ssmtools.analyze', 1, 19.733634)
    """
    layers = []
    for row in summarize(model, rtol=rtol) if rows is None else rows:
        entry = {key: _json_value(value) for key, value in row.to_dict().items()}
        entry["norm"] = "Linf" if row.bidirectional else "Hinf"
        entry.update((layer_fields or {}).get(row.name, {}))
        layers.append(entry)
    return {
        "schema": SUMMARY_SCHEMA,
        "version": SUMMARY_SCHEMA_VERSION,
        "ssmtools_version": __version__,
        "source": model.source,
        "family": model.family,
        "view": None if view is None else {key: _json_value(value) for key, value in view.items()},
        "layers": layers,
    }


def summary_json(
    model: SSMModel,
    *,
    rtol: float = PLAN_RTOL,
    rows: list[LayerSummary] | None = None,
    indent: int | None = 2,
    **fields: Any,
) -> str:
    """:func:`summary_document` as JSON text (strict JSON: no ``Infinity`` / ``NaN`` literals).

    Parameters
    ----------
    model : SSMModel
        The layers to summarise.
    rtol : float
        Relative accuracy of the certified diagonal H∞.
    rows : list of LayerSummary, optional
        The layers' summaries (:func:`summarize`) when already computed.
    indent : int or None
        JSON indentation.
    **fields
        ``view`` and ``layer_fields`` of :func:`summary_document`.

    Returns
    -------
    str
    """
    document = summary_document(model, rtol=rtol, rows=rows, **fields)
    return json.dumps(document, indent=indent, allow_nan=False) + "\n"

"""Checks shared by every family: keep masks, the convention of a replacement, and the response of
written parameters (re-read and compared with what was asked)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, ShapeError, UnknownNameError
from ..model import SSMLayer, SSMModel
from ..systems import BidirectionalSSM, freqresp


def normalize_keep(model: SSMModel, keep: Any) -> dict[str, np.ndarray]:
    """Validate a keep mask.

    Parameters
    ----------
    model : SSMModel
        The model the mask refers to.
    keep : Mapping[str, array_like of bool] or object with a ``.keep`` mapping
        Layer name -> boolean array of shape ``layer.system.poles.shape``.

    Returns
    -------
    dict[str, ndarray of bool]
        The masks as numpy arrays (KeyError for unknown layers, ShapeError/TypeError for bad masks).
    """
    if not isinstance(keep, Mapping) and hasattr(keep, "keep"):
        keep = keep.keep
    if not isinstance(keep, Mapping):
        raise ArgumentTypeError(
            f"keep must map layer names to boolean arrays (or have a .keep attribute that does), got {type(keep).__name__}"
        )
    unknown = [name for name in keep if name not in model.layers]
    if unknown:
        raise UnknownNameError(f"keep names unknown layer(s) {unknown}; the model's layers are {list(model.layers)}")
    out = {}
    for name, mask in keep.items():
        array = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
        shape = model.layers[name].system.poles.shape
        if array.dtype != bool:
            raise ArgumentTypeError(f"keep[{name!r}] must be a boolean array, got dtype {array.dtype}")
        if array.shape != shape:
            raise ShapeError(f"keep[{name!r}] has shape {array.shape}, expected the layer's poles shape {shape}")
        out[name] = array
    return out


def _precision(value: Any) -> float:
    """Machine epsilon of a written leaf (float32 for complex64 tensors)."""
    try:
        dtype = (
            np.dtype(str(value.dtype).removeprefix("torch.")) if hasattr(value, "detach") else np.asarray(value).dtype
        )
    except TypeError:  # bfloat16
        return 2.0**-8
    return float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.inexact) else 0.0


def _check_convention(layer: SSMLayer, new: SSMLayer) -> None:
    old, sys = layer.system, new.system
    where = f"layer {layer.name!r}"
    if not sys.is_discrete or not sys.state_includes_input or sys.output != old.output:
        raise ArgumentError(
            f"{where}: the replacement must use the layer's convention (dt=True, state_includes_input=True, "
            f"output={old.output!r}), got {sys!r}"
        )
    if sys.batch_shape != old.batch_shape or sys.n_inputs != old.n_inputs or sys.n_outputs != old.n_outputs:
        raise ShapeError(
            f"{where}: replacement has batch_shape {sys.batch_shape}, {sys.n_inputs} inputs, {sys.n_outputs} outputs; "
            f"the layer has {old.batch_shape}, {old.n_inputs}, {old.n_outputs}"
        )
    if layer.bidirectional != new.bidirectional:
        raise ArgumentError(
            f"{where}: the layer is {'bi' if layer.bidirectional else 'uni'}directional; pass a "
            "BidirectionalSSM for a bidirectional layer (it shares poles and B with the forward scan)"
        )


def _check_same_response(name: str, got: SSMLayer, want: SSMLayer, ctx: object, updates: Mapping) -> None:
    """The reloaded layer's frequency response must match the requested one (relative to its peak)."""
    eps = max((_precision(value) for value in updates.values()), default=np.finfo(float).eps)
    angles = np.abs(np.angle(want.system.poles)).ravel()
    omega = np.unique(np.concatenate([np.linspace(0, np.pi, 257), angles]))
    pairs = [(got.system, want.system)]
    if isinstance(want.system, BidirectionalSSM) and isinstance(got.system, BidirectionalSSM):
        pairs = [(got.system.forward, want.system.forward), (got.system.backward, want.system.backward)]
    for a, b in pairs:
        ga, gb = freqresp(a, omega), freqresp(b, omega)
        scale = max(float(np.max(np.abs(gb), initial=0.0)), 1e-300)
        error = float(np.max(np.abs(ga - gb), initial=0.0)) / scale
        if error > max(1e-9, 5e3 * eps):
            raise ArgumentError(
                f"layer {name!r}: the written parameters reproduce the replacement's frequency response only to "
                f"relative error {error:.2e} (stored precision {eps:.1e}); the system may be too close to the family's "
                "limits (poles near 1 or 0, arg λ = 0 for LRU)"
            )

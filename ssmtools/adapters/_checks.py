"""Checks shared by every family: keep masks, the convention of a replacement, and the response of
written parameters (re-read and compared with what was asked)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, ShapeError, UnknownNameError
from ..model import SSMLayer, SSMModel
from ..systems import BidirectionalSSM, LTISystem, freqresp


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


def _stored_magnitude(updates: Mapping) -> float:
    """``max(1, max |p|)`` over the written floating-point leaves: the P of the rounding bound."""
    largest = 1.0
    for value in updates.values():
        array = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
        if np.issubdtype(array.dtype, np.inexact) and array.size:
            largest = max(largest, float(np.max(np.abs(array))))
    return largest


def rounding_bound(system: LTISystem, omega: np.ndarray, unit: float, magnitude: float) -> np.ndarray:
    """First-order bound on how much storing a layer's parameters with unit roundoff ``unit`` moves its response.

    Parameters
    ----------
    system : DiagonalSSM
        The requested (float64) layer, discrete time, batch shape ``(*batch,)``.
    omega : ndarray, shape ``(k,)``
        Frequencies (rad/sample).
    unit : float
        Unit roundoff of the stored dtype (``eps / 2``).
    magnitude : float
        P = ``max(1, max |p|)`` over the stored parameters.

    Returns
    -------
    ndarray of float64, shape ``(*batch, k)``
        ``Σ_i ‖c_i‖‖b_i‖ (ε_λ,i |λ_i| / |z − λ_i|² + ε_g / |z − λ_i|) + u‖D‖`` at z = e^{iω}, both members of
        a conjugate pair counted for real-output layers, with ``ε_λ,i = 3uP(1 + |log λ_i|)`` and
        ``ε_g = u(8 + 3P)`` (derivation: docs/concepts/derivations.md#write-back-check).
    """
    if isinstance(system, BidirectionalSSM):
        return np.maximum(
            rounding_bound(system.forward, omega, unit, magnitude),
            rounding_bound(system.backward, omega, unit, magnitude),
        )
    poles = system.poles[..., None, :]  # (..., 1, n)
    gains = (np.linalg.norm(system.B, axis=-1) * np.linalg.norm(system.C, axis=-2))[..., None, :]  # (..., 1, n)
    with np.errstate(divide="ignore"):
        log_pole = np.abs(np.log(np.where(poles == 0, 1.0, poles)))
    eps_pole = 3 * unit * magnitude * (1 + log_pole)
    eps_gain = unit * (8 + 3 * magnitude)
    z = np.exp(1j * omega)[:, None]  # (k, 1)
    members = [poles, np.conj(poles)] if system.output == "real" else [poles]
    total = np.zeros(system.batch_shape + (omega.size,))
    for lam in members:
        distance = np.maximum(np.abs(z - lam), 1e-300)
        total += np.sum(gains * (eps_pole * np.abs(lam) / distance**2 + eps_gain / distance), axis=-1)
    feedthrough = np.linalg.norm(system.D, axis=(-2, -1)) if system.D.ndim >= 2 else np.abs(system.D)
    return total + unit * np.asarray(feedthrough)[..., None]


def _check_same_response(name: str, got: SSMLayer, want: SSMLayer, ctx: object, updates: Mapping) -> None:
    """The reloaded layer's response must match the requested one within the rounding of the stored parameters.

    The tolerance at every frequency is the larger of ``max(1e-9, 5e3·eps)`` times the response's peak and
    four times the first-order rounding bound of :func:`rounding_bound` (which grows as 1/margin² near a pole
    at |λ̄| → 1, where the fixed relative tolerance alone fails on float32 checkpoints).
    """
    eps = max((_precision(value) for value in updates.values()), default=np.finfo(float).eps)
    magnitude = _stored_magnitude(updates)
    angles = np.abs(np.angle(want.system.poles)).ravel()
    omega = np.unique(np.concatenate([np.linspace(0, np.pi, 257), angles]))
    pairs = [(got.system, want.system)]
    if isinstance(want.system, BidirectionalSSM) and isinstance(got.system, BidirectionalSSM):
        pairs = [(got.system.forward, want.system.forward), (got.system.backward, want.system.backward)]
    for a, b in pairs:
        ga, gb = freqresp(a, omega), freqresp(b, omega)
        scale = max(float(np.max(np.abs(gb), initial=0.0)), 1e-300)
        floor = max(1e-9, 5e3 * eps) * scale
        allowed = np.maximum(floor, 4 * rounding_bound(b, omega, eps / 2, magnitude))  # (..., k)
        gap = np.max(np.abs(ga - gb), axis=(-2, -1))  # (..., k)
        if np.any(gap > allowed):
            error = float(np.max(gap)) / scale
            excess = float(np.max(gap / allowed))
            raise ArgumentError(
                f"layer {name!r}: the written parameters reproduce the replacement's frequency response only to "
                f"relative error {error:.2e}, {excess:.1f}× what rounding to the stored precision {eps:.1e} explains "
                "(docs/concepts/derivations.md#write-back-check); the system may be too close to the family's "
                "limits (poles near 1 or 0, arg λ = 0 for LRU)"
            )

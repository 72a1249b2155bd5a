"""Family adapters: read S5, S4D and LRU parameters into an :class:`~ssmtools.model.SSMModel` and write
pruned or reduced layers back in the same format.

One module per family (``s5.py``: official flax tree and s5-pytorch; ``s4d.py``; ``lru.py``), all
following the small protocol of ``_base.Adapter``: ``find`` (detection by parameter names),
``read_layer``, ``prune_layer``, ``replace_layer``. Parameter layouts: model_formats.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import FormatError, ShapeError
from ..model import SSMLayer, SSMModel
from ..systems import BidirectionalSSM, DiagonalSSM, freqresp
from ._base import Adapter, Context
from ._tree import flatten, group_leaves, replace_leaves
from .lru import LRU
from .s4d import S4D
from .s5 import S5Flax, S5PyTorch

ADAPTERS: dict[str, Adapter] = {a.family: a for a in (S5Flax(), S5PyTorch(), S4D(), LRU())}
FAMILIES: tuple[str, ...] = tuple(ADAPTERS)


def _context(params: Any, source: str | None) -> Context:
    leaves, paths = flatten(params)
    return Context(leaves, paths, group_leaves(leaves), where=source or "<in-memory parameters>")


def detect_family(params: Any, *, source: str | None = None) -> str:
    """The family whose parameter names appear in ``params``.

    Parameters
    ----------
    params : Mapping
        State dict or nested parameter tree.
    source : str, optional
        File name used in error messages.

    Returns
    -------
    str
        One of :data:`FAMILIES`. Raises :class:`~ssmtools.errors.FormatError` listing the keys found
        when no family matches, or the families found when several do.
    """
    return _detect(_context(params, source))


def _detect(ctx: Context) -> str:
    found = {family: adapter.find(ctx.groups) for family, adapter in ADAPTERS.items()}
    found = {family: prefixes for family, prefixes in found.items() if prefixes}
    if len(found) == 1:
        return next(iter(found))
    if not found:
        keys = list(ctx.leaves)
        shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} keys)" if len(keys) > 12 else "")
        raise FormatError(
            f"{ctx.where}: no S5, s5-pytorch, S4D or LRU layer found (keys: {shown or 'none'}). Expected e.g. "
            "Lambda_re/Lambda_im (S5 flax), seq.Lambda/seq.log_step (s5-pytorch), kernel.log_A_real or "
            "kernel.A_real/kernel.inv_dt (S4D), nu_log/theta_log (LRU). If this is an SSM checkpoint, pass "
            f"family= one of {list(FAMILIES)}."
        )
    listing = "; ".join(f"{family}: {prefixes[:3]}" for family, prefixes in found.items())
    raise FormatError(
        f"{ctx.where}: ambiguous checkpoint, layers of several families found ({listing}); pass family= one of "
        f"{sorted(found)}"
    )


def read(params: Any, family: str = "auto", *, source: str | None = None, **config: Any) -> SSMModel:
    """Read every layer of ``family`` from a parameter tree into an :class:`~ssmtools.model.SSMModel`.

    Parameters
    ----------
    params : Mapping
        State dict or nested parameter tree (kept, unmodified, as ``model.params``).
    family : {"auto", "s5", "s5-pytorch", "s4d", "lru"}
        ``"auto"`` uses :func:`detect_family`.
    source : str, optional
        File the parameters came from (error messages; ``save`` refuses to overwrite it).
    **config
        Family settings not stored in the weights (see :func:`ssmtools.load`).

    Returns
    -------
    SSMModel
        Layers sorted by name (numbers compared as numbers), ``config`` completed with defaults.
    """
    ctx = _context(params, source)
    if family == "auto":
        family = _detect(ctx)
    adapter = _adapter(family)
    settings = adapter.config(config)
    prefixes = adapter.find(ctx.groups)
    if not prefixes:
        raise FormatError(
            f"{ctx.where}: no {family} layer found; detected family: {_detect_or_none(ctx)}. "
            f"Valid family= values: {list(FAMILIES)}"
        )
    settings = adapter.resolve_config(ctx, prefixes, settings)
    layers = {prefix: adapter.read_layer(ctx, prefix, settings) for prefix in sorted(prefixes, key=_natural)}
    return SSMModel(layers, family=family, params=params, config=settings, source=source)


def _detect_or_none(ctx: Context) -> str:
    try:
        return _detect(ctx)
    except FormatError:
        return "none"


def _adapter(family: str) -> Adapter:
    if family not in ADAPTERS:
        raise ValueError(f"family={family!r} is not valid; choose 'auto' or one of {list(FAMILIES)}")
    return ADAPTERS[family]


def _natural(key: str) -> list:
    """Sort key with numbers compared as numbers (layers.2 before layers.10)."""
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


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
        raise TypeError(
            f"keep must map layer names to boolean arrays (or have a .keep attribute that does), got {type(keep).__name__}"
        )
    unknown = [name for name in keep if name not in model.layers]
    if unknown:
        raise KeyError(f"keep names unknown layer(s) {unknown}; the model's layers are {list(model.layers)}")
    out = {}
    for name, mask in keep.items():
        array = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
        shape = model.layers[name].system.poles.shape
        if array.dtype != bool:
            raise TypeError(f"keep[{name!r}] must be a boolean array, got dtype {array.dtype}")
        if array.shape != shape:
            raise ShapeError(f"keep[{name!r}] has shape {array.shape}, expected the layer's poles shape {shape}")
        out[name] = array
    return out


def prune(model: SSMModel, keep: Any, *, mask: bool = False) -> Any:
    """New parameters of ``model`` without the states where ``keep`` is False.

    Parameters
    ----------
    model : SSMModel
        A model read by :func:`read` / :func:`ssmtools.load`.
    keep : Mapping[str, array_like of bool] or object with a ``.keep`` mapping
        See :func:`normalize_keep`; layers not named are kept whole.
    mask : bool
        ``True``: zero the pruned states' input rows and output columns instead (shapes unchanged).

    Returns
    -------
    Mapping
        A new tree of the input's structure and container types; untouched leaves are shared.
    """
    adapter = _adapter(model.family)
    ctx = _context(model.params, model.source)
    masks = normalize_keep(model, keep)
    updates: dict[str, Any] = {}
    for name, k in masks.items():
        if k.all():
            continue
        if not mask and not k.any(axis=-1).all():
            raise ValueError(
                f"keep[{name!r}] removes every state of layer {name!r} (or of one of its channels); a layer needs at "
                "least one state. Keep one, or pass mask=True to zero them instead."
            )
        updates.update(adapter.prune_layer(ctx, model.layers[name], k, mask, model.config))
    return replace_leaves(model.params, ctx.paths, updates)


def replace(model: SSMModel, systems: Mapping[str, DiagonalSSM | SSMLayer], *, check: bool = True) -> Any:
    """New parameters realising the given systems in ``model``'s family.

    Parameters
    ----------
    model : SSMModel
        A model read by :func:`read` / :func:`ssmtools.load`.
    systems : Mapping[str, DiagonalSSM or SSMLayer]
        Replacement layers in each layer's convention (a BidirectionalSSM for bidirectional layers).
    check : bool
        Re-read the written parameters and compare their frequency response with ``systems``
        (relative to the peak gain, tolerance 5000·eps of the stored dtype; ValueError otherwise).

    Returns
    -------
    Mapping
        A new tree; untouched leaves are shared.
    """
    adapter = _adapter(model.family)
    ctx = _context(model.params, model.source)
    updates: dict[str, Any] = {}
    new_layers: dict[str, SSMLayer] = {}
    for name, value in systems.items():
        if name not in model.layers:
            raise KeyError(f"no layer named {name!r}; the model's layers are {list(model.layers)}")
        layer = model.layers[name]
        new = value if isinstance(value, SSMLayer) else SSMLayer(name, value)
        _check_convention(layer, new)
        new_layers[name] = new
        updates.update(adapter.replace_layer(ctx, layer, new, model.config))
    params = replace_leaves(model.params, ctx.paths, updates)
    if check:
        reread = read(params, model.family, source=model.source, **model.config)
        for name, new in new_layers.items():
            _check_same_response(name, reread.layers[name], new, ctx, updates)
    return params


def _precision(value: Any) -> float:
    """Machine epsilon of a written leaf (float32 for complex64 tensors)."""
    try:
        dtype = np.dtype(str(value.dtype).removeprefix("torch.")) if hasattr(value, "detach") else np.asarray(value).dtype
    except TypeError:  # bfloat16
        return 2.0**-8
    return float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.inexact) else 0.0


def _check_convention(layer: SSMLayer, new: SSMLayer) -> None:
    old, sys = layer.system, new.system
    where = f"layer {layer.name!r}"
    if not sys.is_discrete or not sys.state_includes_input or sys.output != old.output:
        raise ValueError(
            f"{where}: the replacement must use the layer's convention (dt=True, state_includes_input=True, "
            f"output={old.output!r}), got {sys!r}"
        )
    if sys.batch_shape != old.batch_shape or sys.n_inputs != old.n_inputs or sys.n_outputs != old.n_outputs:
        raise ShapeError(
            f"{where}: replacement has batch_shape {sys.batch_shape}, {sys.n_inputs} inputs, {sys.n_outputs} outputs; "
            f"the layer has {old.batch_shape}, {old.n_inputs}, {old.n_outputs}"
        )
    if layer.bidirectional != new.bidirectional:
        raise ValueError(
            f"{where}: the layer is {'bi' if layer.bidirectional else 'uni'}directional; pass an SSMLayer with "
            "BidirectionalSSM system for a bidirectional layer (it shares poles and B with the forward scan)"
        )


def _check_same_response(name: str, got: SSMLayer, want: SSMLayer, ctx: Context, updates: Mapping) -> None:
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
            raise ValueError(
                f"layer {name!r}: the written parameters reproduce the replacement's frequency response only to "
                f"relative error {error:.2e} (stored precision {eps:.1e}); the system may be too close to the family's "
                "limits (poles near 1 or 0, arg λ = 0 for LRU)"
            )

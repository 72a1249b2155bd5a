"""Family adapters: read SSM checkpoints into an [`SSMModel`][ssmtools.model.SSMModel] and write pruned
or reduced layers back in the same format.

A family is one subclass of [`Adapter`][ssmtools.adapters.Adapter] (declared detection keys, [`Capabilities`][ssmtools.adapters.Capabilities],
read-only ``defaults``; ``read_layer``, ``prune_layer``, ``replace_layer``) in one public module of
this package, decorated with [`register_adapter`][ssmtools.adapters.register_adapter]. The modules are found automatically
(``pkgutil`` over the package, on first import); [`available_families`][ssmtools.adapters.available_families] lists what is
registered. Shipped: ``s5.py`` (``"s5"``: official flax tree; ``"s5-pytorch"``), ``s4d.py``
(``"s4d"``: minimal ``S4DKernel``; ``"s4d-full"``: ``SSMKernelDiag``), ``lru.py`` (``"lru"``).
Parameter layouts: docs/concepts/conventions.md. Recipe for a new family: CONTRIBUTING.md.

A loaded model holds its adapter (``model.adapter``); ``model.apply`` and ``model.replace_systems``
call it. The functions below are the same operations for callers that hold a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentError
from ..model import SSMLayer, SSMModel
from ..systems import BidirectionalSSM, DiagonalSSM
from ._base import (
    Adapter as Adapter,
    Capabilities as Capabilities,
    CapabilityError as CapabilityError,
    Context as Context,
    refuse_training_state as refuse_training_state,
    training_state_keys as training_state_keys,
)
from ._checks import normalize_keep as normalize_keep
from ._registry import (
    available_families as available_families,
    detect_family as detect_family,
    discover,
    get_adapter as get_adapter,
    read as read,
    register_adapter as register_adapter,
    unregister_adapter as unregister_adapter,
)
from ._tree import flatten as flatten


def _adapter_of(model: SSMModel, what: str) -> Adapter:
    if not isinstance(model.adapter, Adapter) or model.params is None:
        raise ArgumentError(
            f"{what}() writes parameters back in a model family's format; this model has family={model.family!r} "
            "and no parameters. Load a checkpoint with ssmtools.load(...) first."
        )
    return model.adapter


def prune(model: SSMModel, keep: Any, *, mask: bool = False) -> Any:
    """New parameters of ``model`` without the states where ``keep`` is False ([`Adapter.prune`][ssmtools.adapters.Adapter.prune]).

    Parameters
    ----------
    model : SSMModel
        A model read by [`read`][ssmtools.adapters.read] / [`ssmtools.load`][ssmtools.io.load].
    keep : Mapping[str, array_like of bool] or object with a ``.keep`` mapping
        See [`normalize_keep`][ssmtools.adapters.normalize_keep]; layers not named are kept whole.
    mask : bool
        ``True``: zero the pruned states' input rows and output columns instead (shapes unchanged).

    Returns
    -------
    Mapping
        A new tree of the input's structure and container types; untouched leaves are shared.
    """
    return _adapter_of(model, "prune").prune(model, keep, mask=mask)


def replace(
    model: SSMModel, systems: Mapping[str, DiagonalSSM | BidirectionalSSM | SSMLayer], *, check: bool = True
) -> Any:
    """New parameters realising the given systems in ``model``'s family ([`Adapter.replace`][ssmtools.adapters.Adapter.replace]).

    Parameters
    ----------
    model : SSMModel
        A model read by [`read`][ssmtools.adapters.read] / [`ssmtools.load`][ssmtools.io.load].
    systems : Mapping[str, DiagonalSSM, BidirectionalSSM or SSMLayer]
        Replacement layers in each layer's convention (a BidirectionalSSM for
        bidirectional layers).
    check : bool
        Re-read the written parameters and compare their frequency response with ``systems``
        (relative to the peak gain, tolerance 5000·eps of the stored dtype; ValueError otherwise).

    Returns
    -------
    Mapping
        A new tree; untouched leaves are shared.
    """
    return _adapter_of(model, "replace").replace(model, systems, check=check)


discover()

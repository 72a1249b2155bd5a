"""The one registry of model families: registration, discovery, lookup and detection.

Every public module of ``ssmtools.adapters`` is imported once by ``discover`` (``pkgutil``
over the package), so a family registers itself by being a module there whose adapter class is
decorated with [`register_adapter`][ssmtools.adapters.register_adapter]: there is no hand-kept list of families anywhere. Family
lists in error messages, in ``load``'s ``family=`` check and in the CLI help come from
[`available_families`][ssmtools.adapters.available_families].
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, TypeVar

from ..errors import ArgumentError, ArgumentTypeError, FormatError
from ..model import SSMModel
from ._base import Adapter, Context

A = TypeVar("A", bound=type[Adapter])

_ADAPTERS: dict[str, Adapter] = {}
_RESERVED = ("auto", "custom")
_discovered = False


def register_adapter(cls: A) -> A:
    """Class decorator: make an [`Adapter`][ssmtools.adapters.Adapter] subclass selectable as ``family=cls.family``.

    Parameters
    ----------
    cls : type[Adapter]
        A concrete subclass with ``family`` and ``detection_keys`` set, overriding ``prune_layer``
        / ``replace_layer`` where its ``capabilities`` promise them.

    Returns
    -------
    type[Adapter]
        ``cls`` unchanged (one instance is kept in the registry).
    """
    if not (inspect.isclass(cls) and issubclass(cls, Adapter)) or inspect.isabstract(cls):
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        raise ArgumentTypeError(
            f"register_adapter needs a concrete Adapter subclass, got {cls!r} (abstract: {missing})"
        )
    family = getattr(cls, "family", None)
    if not isinstance(family, str) or not family or family in _RESERVED:
        raise ArgumentError(
            f"{cls.__name__}.family must be a non-empty name other than {list(_RESERVED)}, got {family!r}"
        )
    keys = getattr(cls, "detection_keys", ())
    if not keys or not all(keys_ and all(isinstance(k, str) for k in keys_) for keys_ in keys):
        raise ArgumentError(f"{cls.__name__}.detection_keys must be a non-empty tuple of non-empty sets of names")
    caps = cls.capabilities
    for needed, method in ((caps.can_prune or caps.can_mask, "prune_layer"), (caps.can_replace, "replace_layer")):
        if needed and getattr(cls, method) is getattr(Adapter, method):
            raise ArgumentTypeError(f"{cls.__name__}: its capabilities promise {method} but it does not define it")
    if family in _ADAPTERS and type(_ADAPTERS[family]).__qualname__ != cls.__qualname__:
        raise ArgumentError(
            f"family {family!r} is already registered by {type(_ADAPTERS[family]).__name__}; choose another name "
            "or unregister_adapter it first"
        )
    _ADAPTERS[family] = cls()
    return cls


def unregister_adapter(family: str) -> None:
    """Remove a registered family (plugins and tests that registered one of their own).

    Parameters
    ----------
    family : str
        A name of [`available_families`][ssmtools.adapters.available_families].
    """
    get_adapter(family)
    del _ADAPTERS[family]


def discover() -> None:
    """Import every public submodule of ``ssmtools.adapters`` once (each registers its families)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module(__package__ or "ssmtools.adapters")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def available_families() -> tuple[str, ...]:
    """Registered family names, sorted (valid ``family=`` values besides ``"auto"``)."""
    discover()
    return tuple(sorted(_ADAPTERS))


def get_adapter(family: str | Adapter) -> Adapter:
    """The registered adapter of ``family`` (an [`Adapter`][ssmtools.adapters.Adapter] instance is returned as is).

    Parameters
    ----------
    family : str or Adapter
        A name of [`available_families`][ssmtools.adapters.available_families].

    Returns
    -------
    Adapter
    """
    if isinstance(family, Adapter):
        return family
    discover()
    if not isinstance(family, str) or family not in _ADAPTERS:
        raise ArgumentError(f"family={family!r} is not valid; choose 'auto' or one of {list(available_families())}")
    return _ADAPTERS[family]


def detect_family(params: Any, *, source: str | None = None) -> str:
    """The family whose detection keys appear in ``params``.

    Parameters
    ----------
    params : Mapping
        State dict or nested parameter tree.
    source : str, optional
        File name used in error messages.

    Returns
    -------
    str
        One of [`available_families`][ssmtools.adapters.available_families]. Raises [`FormatError`][ssmtools.errors.FormatError] listing the keys
        found and every family's detection keys when no family matches, or the families found when
        several do.
    """
    return _detect(Context.of(params, source))


def _detect(ctx: Context) -> str:
    discover()
    found = {family: adapter.find(ctx.groups) for family, adapter in sorted(_ADAPTERS.items())}
    found = {family: prefixes for family, prefixes in found.items() if prefixes}
    if len(found) == 1:
        return next(iter(found))
    if not found:
        keys = list(ctx.leaves)
        shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} keys)" if len(keys) > 12 else "")
        expected = "; ".join(f"{family}: {_ADAPTERS[family].describe_keys()}" for family in available_families())
        raise FormatError(
            f"{ctx.where}: no layer of a known SSM family found (keys: {shown or 'none'}). A layer is recognised "
            f"by the parameter names in one group ({expected}). If this is an SSM checkpoint, pass family= one "
            f"of {list(available_families())}."
        )
    listing = "; ".join(f"{family}: {sorted(prefixes)[:3]}" for family, prefixes in found.items())
    raise FormatError(
        f"{ctx.where}: ambiguous checkpoint, layers of several families found ({listing}); pass family= one of "
        f"{sorted(found)}"
    )


def read(params: Any, family: str | Adapter = "auto", *, source: str | None = None, **config: Any) -> SSMModel:
    """Read every layer of ``family`` from a parameter tree into an [`SSMModel`][ssmtools.model.SSMModel].

    Parameters
    ----------
    params : Mapping
        State dict or nested parameter tree (kept, unmodified, as ``model.params``).
    family : str or Adapter
        ``"auto"`` (detect with [`detect_family`][ssmtools.adapters.detect_family]), a name of [`available_families`][ssmtools.adapters.available_families], or an adapter.
    source : str, optional
        File the parameters came from (error messages; ``save`` refuses to overwrite it).
    **config
        Family settings not stored in the weights (the adapter's ``defaults``; see [`ssmtools.load`][ssmtools.io.load]).

    Returns
    -------
    SSMModel
        Layers sorted by name (numbers compared as numbers), ``config`` completed with defaults, holding
        the family's adapter.
    """
    ctx = Context.of(params, source)
    adapter = get_adapter(_detect(ctx) if family == "auto" else family)
    if not adapter.find(ctx.groups):
        detected = _detect_or_none(ctx)
        hint = (
            f"this tree holds {detected} layers: pass family={detected!r} or 'auto'"
            if detected
            else f"valid family= values: {['auto', *available_families()]}"
        )
        raise FormatError(
            f"{ctx.where}: no {adapter.family} layer found (a {adapter.family} layer has parameters "
            f"{adapter.describe_keys()}); {hint}"
        )
    _refuse_partial_layers(ctx, adapter)
    return adapter.read(params, source=source, **config)


def _refuse_partial_layers(ctx: Context, adapter: Adapter) -> None:
    """A group that holds part of the family's detection keys, and is no layer of any family, is a broken layer:
    reading the others would apply a "model-wide" ratio to a model with a layer silently missing."""
    claimed = {prefix for family in available_families() for prefix in get_adapter(family).find(ctx.groups)}
    for prefix, group in ctx.groups.items():
        if prefix in claimed:
            continue
        for keys in adapter.detection_keys:
            present = keys & group.keys.keys()
            if present and not keys <= group.keys.keys():
                raise FormatError(
                    f"{ctx.where}: layer {prefix!r} has {sorted(present)} but lacks {sorted(keys - present)}, so it "
                    f"is not a complete {adapter.family} layer; the checkpoint is incomplete or corrupt (the other "
                    "layers were not read: a silently skipped layer would change the model-wide pruning ratio)"
                )


def _detect_or_none(ctx: Context) -> str | None:
    try:
        return _detect(ctx)
    except FormatError:
        return None

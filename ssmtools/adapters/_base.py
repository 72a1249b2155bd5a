"""The adapter base class, its capability flags, and the helpers every family shares.

An adapter turns the leaves of one layer (grouped by prefix, see ``_tree.py``) into an
[`SSMLayer`][ssmtools.model.SSMLayer] and writes pruned or replaced layers back as new leaves with the
same names, dtypes and container types. A family is one subclass of [`Adapter`][ssmtools.adapters.Adapter], registered
with [`register_adapter`][ssmtools.adapters.register_adapter]; the tree-level work (detection by the declared
keys, config validation, reading every layer, pruning, replacing with a response check) is done
here, once, for all families. Checking is strict: a missing key, a wrong shape or a complex/real
mix-up raises [`FormatError`][ssmtools.errors.FormatError] naming the source and the key.
"""

from __future__ import annotations

import abc
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ArgumentError, ArgumentTypeError, FormatError, NonFiniteError, SSMToolsError, UnknownNameError
from ..model import SSMLayer, SSMModel
from ..systems import BidirectionalSSM, DiagonalSSM
from ._checks import _check_convention, _check_same_response, normalize_keep
from ._tree import Group, flatten, group_leaves, join_key, like, replace_leaves, to_numpy

TRAINING_STATE = re.compile(
    r"(?i)^(optim|optimi[sz]ers?|optimi[sz]er_?states?|opt_?states?|ema|ema_\w+|\w+_ema|swa_\w+|averaged_model|shadow)$"
)
"""Top-level names of a checkpoint's training state (optimizer moments, EMA/SWA copies): a leaf whose first key
component matches is not part of the model weights that pruning rewrites (docs/concepts/file-safety.md#training-state)."""


def training_state_keys(params: Any) -> list[str]:
    """Keys of the leaves of ``params`` that belong to training state (optimizer, EMA/SWA copies), not the model.

    Parameters
    ----------
    params : Mapping
        A checkpoint's parameter tree.

    Returns
    -------
    list of str
        The ``"/"``-joined keys whose first component matches :data:`TRAINING_STATE` (e.g. ``"optimizer/state/0/
        exp_avg"``, ``"ema/layers.0.B"``, ``"opt_state/0/mu/..."``), in tree order.
    """
    _, paths = flatten(params)
    return [key for key, path in paths.items() if TRAINING_STATE.match(re.split(r"[./]", path[0], maxsplit=1)[0])]


def refuse_training_state(params: Any, where: str) -> None:
    """Refuse to rewrite the states of a checkpoint that also holds training state (see :data:`TRAINING_STATE`).

    Pruning the model's layers would leave optimizer moments and EMA copies at the old number of states, and a
    checkpoint that cannot be resumed would be written without a word; so the keys are named and nothing is done.

    Parameters
    ----------
    params : Mapping
        The checkpoint's parameter tree.
    where : str
        The file (or ``"<in-memory parameters>"``), named in the message.

    Raises
    ------
    FormatError
        Naming the training-state keys found.
    """
    keys = training_state_keys(params)
    if keys:
        roots = sorted({re.split(r"[./]", key, maxsplit=1)[0] for key in keys})
        shown = ", ".join(repr(key) for key in keys[:4]) + (f", ... ({len(keys)} keys)" if len(keys) > 4 else "")
        raise FormatError(
            f"{where}: holds training state besides the model weights (under {roots}: {shown}); pruning would leave "
            "the optimizer moments / EMA copies at the old number of states, and the checkpoint could not be resumed. "
            "Prune the model weights alone (e.g. checkpoint['model'] or the params subtree) and re-create the "
            "optimizer state; see docs/concepts/file-safety.md#training-state"
        )


class CapabilityError(SSMToolsError, ValueError):
    """The model's family cannot do what was asked (see ``Adapter.capabilities``)."""


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can write back; callers check these instead of catching errors.

    Parameters
    ----------
    can_prune : bool
        Remove states physically (smaller arrays, same names and dtypes).
    can_mask : bool
        Zero the pruned states' input rows / output columns, shapes unchanged.
    can_replace : bool
        Write an arbitrary (e.g. re-diagonalised, reduced) diagonal layer in the family's parameterisation.
    """

    can_prune: bool = True
    can_mask: bool = True
    can_replace: bool = True


@dataclass
class Context:
    """The flattened parameters of one tree: leaves, their dict paths, leaves grouped by prefix."""

    leaves: dict[str, Any]
    paths: dict[str, tuple[str, ...]]
    groups: dict[str, Group]
    where: str

    @classmethod
    def of(cls, params: Any, source: str | None = None) -> Context:
        """Flatten ``params`` (FormatError if it is not a mapping); ``source`` names it in errors."""
        where = source or "<in-memory parameters>"
        try:
            leaves, paths = flatten(params)
        except FormatError as exc:
            raise FormatError(f"{where}: {exc}") from None
        return cls(leaves, paths, group_leaves(leaves), where=where)

    def array(self, key: str) -> np.ndarray:
        """Leaf ``key`` as a numpy array in double precision (float64 / complex128).

        Every derived quantity (Δ = exp(log_step), the discretised poles, the scores) is then computed in float64,
        whatever the checkpoint stores; values written back are cast to the leaf's own dtype ([`new`][ssmtools.adapters.Context.new]).
        """
        array = to_numpy(self.leaves[key], key=key, where=self.where)
        if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
            bad = ~np.isfinite(array)
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise self.error(
                key,
                f"holds {int(bad.sum())} NaN/Inf value(s) (the first at index {index}: {array[index]}); ssmtools needs "
                "finite parameters: the checkpoint is corrupt or training diverged",
            )
        if np.iscomplexobj(array):
            return array.astype(np.complex128, copy=False)
        if np.issubdtype(array.dtype, np.floating):
            return array.astype(np.float64, copy=False)
        return array

    def error(self, key: str, message: str) -> FormatError:
        """A FormatError naming the source and the key."""
        return FormatError(f"{self.where}: {key!r} {message}")

    def new(self, key: str, values: ArrayLike) -> Any:
        """``values`` in the container/dtype of leaf ``key``."""
        return like(self.leaves[key], np.asarray(values))


class Adapter(abc.ABC):
    """One model family: how its parameters map to diagonal LTI layers and back.

    Subclasses set the class variables and implement [`read_layer`][ssmtools.adapters.Adapter.read_layer] and, as their
    ``capabilities`` promise, [`prune_layer`][ssmtools.adapters.Adapter.prune_layer] / [`replace_layer`][ssmtools.adapters.Adapter.replace_layer]; then decorate the
    class with [`register_adapter`][ssmtools.adapters.register_adapter]. Adapters hold no state: one instance per
    family serves every model of that family.

    Attributes
    ----------
    family : str
        Registry name (``family=`` of [`ssmtools.load`][ssmtools.io.load], ``model.family``).
    detection_keys : tuple of frozenset of str
        A parameter group (the leaves sharing one prefix) is a layer of this family when it holds all
        names of one of these sets. Detection uses nothing else.
    capabilities : Capabilities
        What [`prune`][ssmtools.adapters.prune] and [`replace`][ssmtools.adapters.replace] can do for this family.
    defaults : Mapping[str, Any]
        Settings not stored in the weights, with their defaults (read-only: a ``dict`` given by a
        subclass is frozen into a ``types.MappingProxyType``).
    """

    family: ClassVar[str]
    detection_keys: ClassVar[tuple[frozenset[str], ...]]
    capabilities: ClassVar[Capabilities] = Capabilities()
    defaults: ClassVar[Mapping[str, Any]] = types.MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "defaults" in vars(cls) and not isinstance(cls.defaults, types.MappingProxyType):
            cls.defaults = types.MappingProxyType(dict(cls.defaults))
        if "detection_keys" in vars(cls):
            cls.detection_keys = tuple(frozenset(keys) for keys in cls.detection_keys)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} adapter for family {self.family!r}>"

    # ------------------------------------------------------------------ what a family implements
    @abc.abstractmethod
    def read_layer(self, ctx: Context, prefix: str, config: Mapping[str, Any]) -> SSMLayer:
        """The layer at ``prefix`` (FormatError on missing keys, bad shapes or dtypes).

        Sets ``output_scale`` on the returned layer: κ with ``system.C = κ·C̃``, C̃ the stored C.
        """

    def prune_layer(
        self, ctx: Context, layer: SSMLayer, keep: np.ndarray, mask: bool, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """New leaves (full key -> value) keeping the states where ``keep`` is True (zeroing the others
        when ``mask``). Only called when ``capabilities`` allows it."""
        raise CapabilityError(f"family {self.family!r} cannot prune layers")  # pragma: no cover - guarded

    def replace_layer(self, ctx: Context, layer: SSMLayer, new: SSMLayer, config: Mapping[str, Any]) -> dict[str, Any]:
        """New leaves (full key -> value) that realise ``new`` in this family's parameterisation.
        Only called when ``capabilities.can_replace``."""
        raise CapabilityError(f"family {self.family!r} cannot write replacement layers")  # pragma: no cover

    def check_config(self, config: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Validate setting values (names are checked against ``defaults`` already). Default: none."""

    def resolve_config(self, ctx: Context, prefixes: list[str], config: dict[str, Any]) -> dict[str, Any]:
        """Fill settings inferred from the whole tree (e.g. a layout), so that re-reading written
        parameters (whose shapes may have become ambiguous) gives the same layers. Default: unchanged."""
        return config

    # ------------------------------------------------------------------ shared, not overridden
    def settings(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults updated with ``config``; unknown settings raise TypeError listing the valid ones.

        A setting whose default is a bool (or None, meaning "infer": ``bidirectional``, ``transposed``) takes
        True/False only — a truthy string such as ``"no"`` is refused —, one whose default is a float takes a
        positive finite number (the steps and scales of the shipped families); [`check_config`][ssmtools.adapters.Adapter.check_config] adds the rest.
        """
        unknown = sorted(set(config) - set(self.defaults))
        if unknown:
            raise ArgumentTypeError(
                f"unknown setting(s) {unknown} for family {self.family!r}; valid settings: {sorted(self.defaults)}"
            )
        for name, value in config.items():
            _check_setting_type(self.family, name, value, self.defaults[name])
        out = dict(self.defaults)
        out.update(config)
        self.check_config(out)
        return out

    def find(self, groups: Mapping[str, Group]) -> list[str]:
        """Prefixes of the groups holding one of ``detection_keys`` (unsorted)."""
        return [p for p, g in groups.items() if any(keys <= g.keys.keys() for keys in self.detection_keys)]

    def describe_keys(self) -> str:
        """The detection keys as text, e.g. ``"Lambda_re+Lambda_im"`` (``" or "`` between alternatives)."""
        return " or ".join("+".join(sorted(keys)) for keys in self.detection_keys)

    def read(self, params: Any, *, source: str | None = None, **config: Any) -> SSMModel:
        """Every layer of this family in ``params``, as an [`SSMModel`][ssmtools.model.SSMModel] holding this adapter.

        Parameters
        ----------
        params : Mapping
            State dict or nested parameter tree (kept, unmodified, as ``model.params``).
        source : str, optional
            File the parameters came from (error messages; ``save`` refuses to overwrite it).
        **config
            Settings of ``defaults``.

        Returns
        -------
        SSMModel
            Layers sorted by name (numbers compared as numbers), ``config`` completed with defaults.
        """
        ctx = Context.of(params, source)
        settings = self.settings(config)
        prefixes = self.find(ctx.groups)
        if not prefixes:
            raise FormatError(
                f"{ctx.where}: no {self.family} layer found (a {self.family} layer has parameters "
                f"{self.describe_keys()})"
            )
        settings = self.resolve_config(ctx, prefixes, settings)
        layers = {prefix: self._read_one(ctx, prefix, settings) for prefix in sorted(prefixes, key=_natural)}
        for prefix, layer in layers.items():
            system = layer.system
            if 0 in (system.n_states, system.n_inputs, system.n_outputs) or 0 in system.batch_shape:
                raise FormatError(
                    f"{ctx.where}: layer {prefix!r} has {system.n_states} states, {system.n_inputs} inputs and "
                    f"{system.n_outputs} outputs (batch {system.batch_shape}): an SSM layer needs at least one of "
                    "each; the checkpoint is empty or truncated"
                )
        return SSMModel(layers, adapter=self, params=params, config=settings, source=source)

    def _read_one(self, ctx: Context, prefix: str, settings: Mapping[str, Any]) -> SSMLayer:
        """:meth:`read_layer`, with a derived non-finite value reported against the layer (not a bare ``B``)."""
        with np.errstate(all="ignore"):  # a non-finite result is checked and reported below, not as a RuntimeWarning
            try:
                return self.read_layer(ctx, prefix, settings)
            except NonFiniteError as exc:
                keys = sorted(ctx.groups[prefix].keys.values())
                raise FormatError(
                    f"{ctx.where}: layer {prefix!r}: its stored parameters are finite but the discrete-time system "
                    f"derived from them is not ({exc}); some parameter of {keys} is out of range (a step or pole "
                    "magnitude that overflows float64)"
                ) from None

    def prune(self, model: SSMModel, keep: Any, *, mask: bool = False) -> Any:
        """New parameters of ``model`` without the states where ``keep`` is False.

        Parameters
        ----------
        model : SSMModel
            A model read by this adapter.
        keep : Mapping[str, array_like of bool] or object with a ``.keep`` mapping
            See [`normalize_keep`][ssmtools.adapters.normalize_keep]; layers not named are kept whole.
        mask : bool
            ``True``: zero the pruned states' input rows and output columns instead (shapes unchanged).

        Returns
        -------
        Mapping
            A new tree of the input's structure and container types; untouched leaves are shared.
        """
        needed = "can_mask" if mask else "can_prune"
        if not getattr(self.capabilities, needed):
            other = " (try mask=True)" if not mask and self.capabilities.can_mask else ""
            raise CapabilityError(f"family {self.family!r} cannot {'mask' if mask else 'remove'} states{other}")
        ctx = Context.of(model.params, model.source)
        refuse_training_state(model.params, ctx.where)
        masks = normalize_keep(model, keep)
        updates: dict[str, Any] = {}
        for name, k in masks.items():
            if k.all():
                continue
            if not mask and not k.any(axis=-1).all():
                raise ArgumentError(
                    f"keep[{name!r}] removes every state of layer {name!r} (or of one of its channels); a layer needs "
                    "at least one state. Keep one, or pass mask=True to zero them instead."
                )
            updates.update(self.prune_layer(ctx, model.layers[name], k, mask, model.config))
        return replace_leaves(model.params, ctx.paths, updates)

    def replace(
        self, model: SSMModel, systems: Mapping[str, DiagonalSSM | BidirectionalSSM | SSMLayer], *, check: bool = True
    ) -> Any:
        """New parameters realising the given systems in ``model``'s family.

        Parameters
        ----------
        model : SSMModel
            A model read by this adapter.
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
        if not self.capabilities.can_replace:
            raise CapabilityError(
                f"family {self.family!r} cannot write replacement layers (capabilities.can_replace is False); "
                "prune states with model.apply(keep) instead"
            )
        ctx = Context.of(model.params, model.source)
        refuse_training_state(model.params, ctx.where)
        updates: dict[str, Any] = {}
        new_layers: dict[str, SSMLayer] = {}
        for name, value in systems.items():
            if name not in model.layers:
                raise UnknownNameError(f"no layer named {name!r}; the model's layers are {list(model.layers)}")
            layer = model.layers[name]
            new = value if isinstance(value, SSMLayer) else SSMLayer(name, value)
            _check_convention(layer, new)
            new_layers[name] = new
            updates.update(self.replace_layer(ctx, layer, new, model.config))
        params = replace_leaves(model.params, ctx.paths, updates)
        if check:
            reread = self.read(params, source=model.source, **model.config)
            for name, new in new_layers.items():
                _check_same_response(name, reread.layers[name], new, ctx, updates)
        return params


def _natural(key: str) -> list:
    """Sort key with numbers compared as numbers (layers.2 before layers.10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _check_setting_type(family: str, name: str, value: Any, default: Any) -> None:
    """Refuse a setting value of the wrong type (see [`Adapter.settings`][ssmtools.adapters.Adapter.settings])."""
    where = f"family {family!r}: setting {name}={value!r}"
    if isinstance(default, bool) or default is None:
        if default is None and value is None:
            return
        if not isinstance(value, (bool, np.bool_)):
            raise ArgumentTypeError(
                f"{where} must be True or False" + (" (or None to infer it)" if default is None else "")
            )
    elif isinstance(default, float):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ArgumentTypeError(f"{where} must be a positive number")
        if not (np.isfinite(value) and value > 0):
            raise ArgumentError(f"{where} must be a positive finite number")


# ---------------------------------------------------------------------------------------------- helpers
def require(ctx: Context, group: Group, names: list[str], what: str) -> dict[str, str]:
    """Full keys of ``names`` in ``group``; FormatError listing the missing ones."""
    missing = [name for name in names if name not in group.keys]
    if missing:
        found = sorted(group.keys)
        raise FormatError(
            f"{ctx.where}: {what} layer {group.prefix!r} is missing parameter(s) "
            f"{[join_key(group.prefix, group.sep, m) for m in missing]}; found {found}. "
            "Is the checkpoint complete, or is it another family (pass family=...)?"
        )
    return {name: group.keys[name] for name in names}


def check_shape(ctx: Context, key: str, array: np.ndarray, shape: tuple, meaning: str) -> None:
    """FormatError unless ``array.shape`` matches ``shape`` (``None`` entries match anything)."""
    ok = array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape))
    if not ok:
        pretty = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ctx.error(key, f"has shape {tuple(array.shape)}, expected {pretty}: {meaning}")


def check_real(ctx: Context, key: str, array: np.ndarray, hint: str = "") -> None:
    """FormatError if a parameter stored as real numbers is complex."""
    if np.iscomplexobj(array):
        raise ctx.error(
            key,
            f"is complex ({array.dtype}) but this family stores it as real numbers{hint}; "
            "complex dtype mismatch: is this another family (s5 vs s5-pytorch, lru layouts)?",
        )


def check_complex(ctx: Context, key: str, array: np.ndarray) -> None:
    """FormatError if a parameter stored as a complex tensor is real."""
    if not np.iscomplexobj(array):
        raise ctx.error(
            key,
            f"is real ({array.dtype}) but this family stores it as a complex tensor; complex dtype mismatch: "
            "is this another family (s5 vs s5-pytorch, lru layouts)?",
        )


def exp_param(ctx: Context, key: str, values: np.ndarray, meaning: str, scale: float = 1.0) -> np.ndarray:
    """``scale · exp(values)`` of the stored log-parameter ``key``; FormatError naming the key if it overflows.

    An overflow (``exp(x) = inf`` for x > 709) would otherwise surface later as NaN in a derived quantity (B̄, λ̄)
    and be blamed on a parameter that is fine.
    """
    with np.errstate(over="ignore"):
        out = scale * np.exp(values)
    bad = ~np.isfinite(out)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ctx.error(
            key,
            f"overflows: {meaning} = {scale:g}·exp({key.rsplit('/', 1)[-1].rsplit('.', 1)[-1]}) is inf at index "
            f"{index} (stored value {float(np.asarray(values)[index]):.6g}; exp overflows above 709). The checkpoint "
            "is corrupt or diverged in training",
        )
    return out


def real_pair(array: ArrayLike) -> np.ndarray:
    """Complex view of a real ``(..., 2)`` array (real, imaginary)."""
    array = np.asarray(array)
    return array[..., 0] + 1j * array[..., 1]


def to_pair(values: ArrayLike) -> np.ndarray:
    """Real ``(..., 2)`` array of a complex array."""
    values = np.asarray(values, dtype=complex)
    return np.stack([values.real, values.imag], axis=-1)


def diagonal_of(D: np.ndarray, where: str) -> np.ndarray:
    """The diagonal of a (…, p, p) feedthrough that must be diagonal; ValueError otherwise."""
    diag = np.diagonal(D, axis1=-2, axis2=-1)
    off = D - diag[..., None] * np.eye(D.shape[-1])
    scale = max(1.0, float(np.max(np.abs(D), initial=0.0)))
    if D.shape[-1] != D.shape[-2] or np.max(np.abs(off), initial=0.0) > 1e-12 * scale:
        raise ArgumentError(
            f"{where}: the family stores a diagonal feedthrough D (one value per channel) but the replacement "
            "system's D is not diagonal; keep D unchanged when reducing (balanced truncation does)"
        )
    return diag.real

"""What is done to a layer once its keep mask is decided: reduction objects, registered by name.

A :class:`~ssmtools.pruning.criteria.Criterion` only scores units and
:func:`~ssmtools.pruning.allocation.allocate` only decides how many (and which) units every layer keeps.
A :class:`Reduction` turns one layer and its keep mask into a :class:`ReducedLayer` (the reduced layer
and the error system ``G − G_r``) and writes the reductions of a whole model back into its weights.

=========================  ===================================================================  ==============
name                       what happens to layer ℓ with keep mask k                             selects_states
=========================  ===================================================================  ==============
``"modal-truncation"``     the stored states where k is True stay, unchanged; the others go      True
``"balanced-truncation"``  balanced truncation to ``k.sum(-1)`` stored states' worth of Hankel  False
                           singular values, re-diagonalised (:func:`ssmtools.balanced_truncation`)
=========================  ===================================================================  ==============

``selects_states`` says whether the keep masks are masks of *original* stored states: only then can
:meth:`ssmtools.SSMModel.apply` (physical removal or ``mask=True``) realise them. Other reductions (and
variants such as singular perturbation or residual-compensated truncation, which change D) write new
systems with :meth:`ssmtools.SSMModel.replace_systems`; the base class does that by default.
Options are dataclass fields, so a reduction prints and serialises into a plan, as criteria do.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ShapeError
from ..model import SSMLayer, SSMModel
from ..systems import DiagonalSSM

__all__ = [
    "Reduction", "ReducedLayer", "register_reduction", "get_reduction", "available_reductions", "reduce_model",
    "ModalTruncation", "BalancedTruncation",
]


# ------------------------------------------------------------------------------------------ result
@dataclass(frozen=True, eq=False)
class ReducedLayer:
    """One layer after a reduction (immutable).

    Parameters
    ----------
    name : str
        Layer name.
    keep : ndarray of bool, shape ``layer.system.poles.shape``
        The keep mask the reduction realised: original stored states when the reduction
        ``selects_states``, kept slots (a prefix per channel) for balanced truncation.
    n_kept : int
        Stored states of the reduced layer (all channels).
    layers : tuple of SSMLayer
        One *unbatched* reduced layer per batch element of the original (``np.ndindex`` order).
    error : SSMLayer or None
        The error system ``G − G_r`` with the original's batch shape (None when nothing was removed).
        Channels of different sizes are padded with zero-gain states at λ = 0, which change no norm.
    """

    name: str
    keep: np.ndarray
    n_kept: int
    layers: tuple[SSMLayer, ...]
    error: SSMLayer | None

    def __post_init__(self) -> None:
        keep = np.array(self.keep, dtype=bool)
        keep.flags.writeable = False
        object.__setattr__(self, "keep", keep)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Batch shape of the original layer (``keep.shape[:-1]``)."""
        return self.keep.shape[:-1]

    @property
    def layer(self) -> SSMLayer:
        """The reduced layers stacked into one layer with the original batch shape.

        Raises
        ------
        ShapeError
            When the batch elements kept different numbers of stored states (arrays are rectangular):
            use :attr:`layers` instead.
        """
        return _stack(self.name, self.layers, self.batch_shape)


def _stack(name: str, layers: tuple[SSMLayer, ...], batch_shape: tuple[int, ...]) -> SSMLayer:
    if not batch_shape:
        return SSMLayer(name, layers[0].system, layers[0].C_backward)
    counts = {layer.n_states for layer in layers}
    if len(counts) != 1:
        raise ShapeError(
            f"the reduced channels of layer {name!r} have different numbers of stored states {sorted(counts)}, so "
            "they do not fit one rectangular layer; use reduced.layers (one per channel), or plan with units='state'"
        )
    first = layers[0].system

    def stacked(get: Any) -> np.ndarray:
        values = [get(layer) for layer in layers]
        return np.stack(values).reshape(batch_shape + values[0].shape)

    system = first.replace(
        poles=stacked(lambda r: r.system.poles), B=stacked(lambda r: r.system.B), C=stacked(lambda r: r.system.C),
        D=stacked(lambda r: r.system.D),
    )
    backward = None if layers[0].C_backward is None else stacked(lambda r: r.C_backward)
    return SSMLayer(name, system, backward)


def _elements(layer: SSMLayer) -> list[tuple[tuple[int, ...], SSMLayer]]:
    """Every batch element of a layer as an unbatched layer, in ``np.ndindex`` order."""
    batch = layer.system.batch_shape
    if not batch:
        return [((), layer)]
    back = layer.C_backward
    return [(index, SSMLayer(layer.name, layer.system[index], None if back is None else back[index]))
            for index in np.ndindex(*batch)]


def _padded_error(layer: SSMLayer, parts: list[SSMLayer]) -> SSMLayer | None:
    """Stack per-element error systems (unbatched, D possibly nonzero) into one batched layer, padding with zeros."""
    system = layer.system
    width = max((part.n_states for part in parts), default=0)
    if width == 0 and not any(np.any(part.system.D) for part in parts):
        return None
    batch = system.batch_shape
    poles = np.zeros(batch + (width,), dtype=complex)
    B = np.zeros(batch + (width, system.n_inputs), dtype=complex)
    C = np.zeros(batch + (system.n_outputs, width), dtype=complex)
    D = np.zeros_like(system.D)
    C2 = np.zeros_like(C) if layer.C_backward is not None else None
    for index, part in zip(np.ndindex(*batch), parts):
        k = part.n_states
        poles[index][:k], B[index][:k], C[index][:, :k] = part.system.poles, part.system.B, part.system.C
        D[index] = part.system.D
        if C2 is not None and part.C_backward is not None:
            C2[index][:, :k] = part.C_backward
    error = DiagonalSSM(poles, B, C, D, dt=system.dt, output=system.output,
                        state_includes_input=system.state_includes_input)
    return SSMLayer(layer.name, error, C2)


def _difference(original: SSMLayer, reduced: SSMLayer) -> SSMLayer:
    """``G − G_r`` of two unbatched layers: both state sets side by side, C_r negated, D − D_r."""
    a, b = original.system, reduced.system
    system = a.replace(
        poles=np.concatenate([a.poles, b.poles]), B=np.concatenate([a.B, b.B]),
        C=np.concatenate([a.C, -b.C], axis=-1), D=a.D - b.D,
    )
    backward = None
    if original.C_backward is not None:
        other = reduced.C_backward if reduced.C_backward is not None else np.zeros_like(b.C)
        backward = np.concatenate([original.C_backward, -other], axis=-1)
    return SSMLayer(original.name, system, backward)


# ------------------------------------------------------------------------------------------ base class, registry
class Reduction(abc.ABC):
    """Reduces one layer to a keep mask; writes a model's reductions back into its weights.

    Subclasses set ``name`` (registry key) and ``selects_states`` (True when the keep masks are
    masks of original stored states, realisable by :meth:`ssmtools.SSMModel.apply`), and implement
    :meth:`reduce_layer`. The default :meth:`error` is the difference of the original and the reduced
    layer (both state sets side by side); :meth:`apply` writes the reduced layers with
    :meth:`ssmtools.SSMModel.replace_systems`.
    """

    name: ClassVar[str]
    selects_states: ClassVar[bool] = False

    @abc.abstractmethod
    def reduce_layer(self, layer: SSMLayer, keep: np.ndarray) -> tuple[np.ndarray, tuple[SSMLayer, ...]]:
        """The realised keep mask and one unbatched reduced layer per batch element (``np.ndindex`` order).

        Parameters
        ----------
        layer : SSMLayer
        keep : ndarray of bool, shape ``layer.system.poles.shape``
        """

    def error(self, layer: SSMLayer, keep: np.ndarray, reduced: tuple[SSMLayer, ...]) -> SSMLayer | None:
        """The error system ``G − G_r`` (batch shape of ``layer``), None when nothing was removed."""
        if keep.all():
            return None
        parts = [_difference(element, r) for (_, element), r in zip(_elements(layer), reduced)]
        return _padded_error(layer, parts)

    def reduce(self, layer: SSMLayer, keep: ArrayLike) -> ReducedLayer:
        """Reduce ``layer`` to the keep mask and build its error system.

        Parameters
        ----------
        layer : SSMLayer
        keep : array_like of bool, shape ``layer.system.poles.shape``
            True for kept units (stored states, or slots for non-selecting reductions).

        Returns
        -------
        ReducedLayer
        """
        mask = np.asarray(keep)
        if mask.dtype != bool or mask.shape != layer.system.poles.shape:
            raise ShapeError(
                f"keep mask of layer {layer.name!r} has dtype {mask.dtype} and shape {mask.shape}; expected bool of "
                f"the poles' shape {layer.system.poles.shape}"
            )
        realised, reduced = self.reduce_layer(layer, mask)
        return ReducedLayer(
            name=layer.name, keep=realised, n_kept=int(sum(r.system.poles.size for r in reduced)),
            layers=reduced, error=self.error(layer, realised, reduced),
        )

    def apply(self, model: SSMModel, keep: Mapping[str, ArrayLike], *, mask: bool = False) -> SSMModel:
        """Write the reductions of the named layers back into the model's parameters.

        Parameters
        ----------
        model : SSMModel
            Read from a checkpoint (``model.params`` is rewritten, never modified in place).
        keep : Mapping[str, array_like of bool]
            Layer name -> keep mask; layers not named stay whole.
        mask : bool
            Zero removed states instead of deleting them; only for reductions that ``selects_states``.

        Returns
        -------
        SSMModel
        """
        if mask:
            raise ValueError(
                f"mask=True is not available for the {self.name!r} reduction: it writes new (re-diagonalised) states, "
                "so there is nothing to mask; use mask=False"
            )
        systems = {}
        for name, layer_keep in keep.items():
            if np.all(layer_keep):
                continue
            reduced = self.reduce(model[name], layer_keep).layer
            systems[name] = reduced if reduced.bidirectional else reduced.system
        return model.replace_systems(systems) if systems else model

    def options(self) -> dict[str, Any]:
        """The reduction's options (its dataclass fields) as a plain dict."""
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    def describe(self) -> str:
        """``name(option=value, ...)``, used in plan tables."""
        options = ", ".join(f"{key}={value!r}" for key, value in self.options().items())
        return f"{self.name}({options})" if options else self.name


_REDUCTIONS: dict[str, type[Reduction]] = {}


def register_reduction(cls: type[Reduction]) -> type[Reduction]:
    """Class decorator: make a :class:`Reduction` subclass selectable by its ``name``."""
    _REDUCTIONS[cls.name] = cls
    return cls


def available_reductions() -> list[str]:
    """Registered reduction names, sorted."""
    return sorted(_REDUCTIONS)


def get_reduction(reduction: str | Reduction, **options: Any) -> Reduction:
    """A reduction instance from a registered name (with options) or an instance (returned as is).

    Parameters
    ----------
    reduction : str or Reduction
        A name of :func:`available_reductions`, or an instance.
    **options
        Dataclass fields of the named reduction.

    Returns
    -------
    Reduction
    """
    if isinstance(reduction, Reduction):
        return dataclasses.replace(reduction, **options) if options else reduction  # type: ignore[type-var]
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(
            f"unknown reduction {reduction!r}; choose one of {available_reductions()} or pass a Reduction"
        )
    cls = _REDUCTIONS[reduction]
    fields: set[str] = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    unknown = sorted(set(options) - fields)
    if unknown:
        raise TypeError(f"reduction {reduction!r} has no option(s) {unknown}; its options are {sorted(fields)}")
    return cls(**options)


def reduce_model(
    model: SSMModel, keep: Mapping[str, ArrayLike], reduction: str | Reduction = "modal-truncation"
) -> dict[str, ReducedLayer]:
    """Reduce every named layer of a model to its keep mask (the third step of :func:`~ssmtools.prune_plan`).

    Parameters
    ----------
    model : SSMModel
    keep : Mapping[str, array_like of bool]
        Layer name -> keep mask of shape ``layer.system.poles.shape`` (e.g. ``allocation.keep``).
    reduction : str or Reduction
        A name of :func:`available_reductions` or an instance.

    Returns
    -------
    dict[str, ReducedLayer]
        In the order of ``keep``.
    """
    method = get_reduction(reduction)
    return {name: method.reduce(model[name], layer_keep) for name, layer_keep in keep.items()}


# ------------------------------------------------------------------------------------------ reductions
@register_reduction
@dataclass(frozen=True)
class ModalTruncation(Reduction):
    """Modal truncation (state selection): the kept stored states stay unchanged, the others are deleted.

    The error system is the removed states alone with D = 0 (docs/concepts/reduction.md), so its
    norms are exact and cheap. Written back by :meth:`ssmtools.SSMModel.apply`, physically (smaller
    arrays) or, with ``mask=True``, by zeroing the removed states' input rows and output columns.
    """

    name: ClassVar[str] = "modal-truncation"
    selects_states: ClassVar[bool] = True

    def reduce_layer(self, layer: SSMLayer, keep: np.ndarray) -> tuple[np.ndarray, tuple[SSMLayer, ...]]:
        return keep, tuple(_select(element, keep[index]) for index, element in _elements(layer))

    def error(self, layer: SSMLayer, keep: np.ndarray, reduced: tuple[SSMLayer, ...]) -> SSMLayer | None:
        if keep.all():
            return None
        parts = []
        for index, element in _elements(layer):
            removed = _select(element, ~keep[index])
            parts.append(SSMLayer(layer.name, removed.system.replace(D=np.zeros_like(removed.system.D)),
                                  removed.C_backward))
        return _padded_error(layer, parts)

    def apply(self, model: SSMModel, keep: Mapping[str, ArrayLike], *, mask: bool = False) -> SSMModel:
        return model.apply(keep, mask=mask)


def _select(element: SSMLayer, chosen: np.ndarray) -> SSMLayer:
    """The stored states where ``chosen`` is True of an unbatched layer, D unchanged."""
    s = element.system
    index = np.flatnonzero(chosen)
    system = s.replace(poles=s.poles[index], B=s.B[index], C=s.C[:, index])
    backward = None if element.C_backward is None else element.C_backward[:, index]
    return SSMLayer(element.name, system, backward)


@register_reduction
@dataclass(frozen=True)
class BalancedTruncation(Reduction):
    """Balanced truncation of every reduced layer, re-diagonalised (:func:`ssmtools.balanced_truncation`).

    A keep mask only gives the *order*: ``k = keep.sum(-1)`` kept stored states' worth of Hankel
    singular values per channel, i.e. real order 2k for ``output="real"`` (a stored state is a
    conjugate pair), k for complex output. The realised mask is the prefix of k slots. The stored
    count after re-diagonalisation can exceed k (real reduced poles take a stored state each; an
    order that would split a repeated Hankel singular value is raised). Bound
    ``σ_{r+1} ≤ ‖G − G_r‖∞ ≤ 2 Σ_{j>r} σ_j`` (docs/concepts/reduction.md). Bidirectional and
    unstable layers are refused (ValueError). Written back with :meth:`ssmtools.SSMModel.replace_systems`.
    """

    name: ClassVar[str] = "balanced-truncation"
    selects_states: ClassVar[bool] = False

    def reduce_layer(self, layer: SSMLayer, keep: np.ndarray) -> tuple[np.ndarray, tuple[SSMLayer, ...]]:
        from ..reduction import balanced_truncation

        if layer.bidirectional:
            raise ValueError(
                f"layer {layer.name!r} is bidirectional (non-causal): balanced truncation needs a causal layer; use "
                "reduction='modal-truncation'"
            )
        system = layer.system
        if not np.all(system.is_stable):
            raise ValueError(
                f"layer {layer.name!r} has poles with |λ̄| ≥ 1: balanced truncation needs a stable layer; use "
                "reduction='modal-truncation' (criteria such as 'last-exact' keep and report unstable states)"
            )
        slots = keep.sum(axis=-1)
        prefix = np.arange(keep.shape[-1]) < slots[..., None]
        if prefix.all():
            return prefix, tuple(element for _, element in _elements(layer))
        order = slots * (2 if system.output == "real" else 1)
        result = balanced_truncation(system, order=order if order.ndim else int(order))
        return prefix, tuple(SSMLayer(layer.name, reduced) for reduced in result.systems)

"""What is done to a layer once its keep mask is decided: reduction objects, registered by name.

A [`Criterion`][ssmtools.pruning.criteria.Criterion] only scores units and
[`allocate`][ssmtools.pruning.allocation.allocate] only decides how many (and which) units every layer keeps.
A [`Reduction`][ssmtools.pruning.reductions.Reduction] turns one layer and its keep mask into a [`ReducedLayer`][ssmtools.pruning.reductions.ReducedLayer] (the reduced layer
and the error system ``G − G_r``) and writes the reductions of a whole model back into its weights.

===========================  =================================================================  ==============
name                         what happens to layer ℓ with keep mask k                           selects_states
===========================  =================================================================  ==============
``"modal-truncation"``       the stored states where k is True stay, unchanged; the others go    True
``"balanced-truncation"``    balanced truncation fitted to ``k.sum(-1)`` stored states           False
                             (unstable states kept, or a finite horizon), re-diagonalised
                             (:func:`ssmtools.balanced_truncation`)
``"singular-perturbation"``  the same budget, singular perturbation of the full realisation:    False
                             exact at DC, new D (full, or its diagonal for diagonal-D formats)
``"h2-optimal"``             the same budget, started from balanced truncation and moved to a   False
                             stationary point of ‖G − G_r‖₂ (:mod:`ssmtools.pruning.h2_optimal`)
``"balanced-refit"``         the same budget, balanced truncation with C and D (its diagonal    False
                             for diagonal-D formats) refitted by least squares in H2
                             (:mod:`ssmtools.pruning.refit`)
``"empirical-balanced"``     **data-aware**: the same budget, balanced with the empirical       False
                             input Gramian of a calibration batch (``data_aware.py``)
===========================  =================================================================  ==============

``selects_states`` says whether the keep masks are masks of *original* stored states: only then can
[`ssmtools.SSMModel.apply`][ssmtools.model.SSMModel.apply] (physical removal or ``mask=True``) realise them. Other reductions (and
variants such as singular perturbation or residual-compensated truncation, which change D) write new
systems with [`ssmtools.SSMModel.replace_systems`][ssmtools.model.SSMModel.replace_systems]; the base class does that by default.
Options are dataclass fields, so a reduction prints and serialises into a plan, as criteria do. The
registered names are [`available_reductions`][ssmtools.pruning.reductions.available_reductions] (a test keeps this table equal to it).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ArgumentError, ShapeError
from ..model import SSMLayer, SSMModel
from ..reduction import balanced_truncation
from ..systems import BidirectionalSSM, DiagonalSSM, LTISystem
from ._registry import NamedOptions, Registry

__all__ = [
    "Reduction",
    "ReducedLayer",
    "register_reduction",
    "get_reduction",
    "available_reductions",
    "reduce_model",
    "ModalTruncation",
    "BalancedTruncation",
    "SingularPerturbation",
    "fill_channels",
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
    systems : tuple of DiagonalSSM or BidirectionalSSM
        One *unbatched* reduced system per batch element of the original (``np.ndindex`` order), of
        the original's type.
    error : DiagonalSSM or BidirectionalSSM or None
        The error system ``G − G_r`` with the original's batch shape and type (None when nothing was
        removed). Channels of different sizes are padded with zero-gain states at λ = 0, which change
        no norm.
    n_padded : int
        Zero-gain filler states (B = 0, C = 0) among the ``n_kept`` stored states: a projection that gives a
        channel fewer states than its budget k is filled up to exactly k, so that the channels of a multi-SISO
        layer stay one rectangular array (:func:`fill_channels`).
    """

    name: str
    keep: np.ndarray
    n_kept: int
    systems: tuple[LTISystem, ...]
    error: LTISystem | None
    n_padded: int = 0

    def __post_init__(self) -> None:
        keep = np.array(self.keep, dtype=bool)
        keep.flags.writeable = False
        object.__setattr__(self, "keep", keep)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Batch shape of the original layer (``keep.shape[:-1]``)."""
        return self.keep.shape[:-1]

    @property
    def system(self) -> LTISystem:
        """The reduced systems stacked into one system with the original batch shape.

        Raises
        ------
        ShapeError
            When the batch elements kept different numbers of stored states (arrays are rectangular):
            use [`systems`][ssmtools.systems] instead.
        """
        if not self.batch_shape:
            return self.systems[0]
        counts = {system.n_states for system in self.systems}
        if len(counts) != 1:
            raise ShapeError(
                f"the reduced channels of layer {self.name!r} have different numbers of stored states {sorted(counts)}, "
                "so they do not fit one rectangular system; use reduced.systems (one per channel), or plan with "
                "units='state'"
            )

        def stacked(values: list[np.ndarray]) -> np.ndarray:
            return np.stack(values).reshape(self.batch_shape + values[0].shape)

        changes = {key: stacked([getattr(s, key) for s in self.systems]) for key in ("poles", "B", "C", "D")}
        if isinstance(self.systems[0], BidirectionalSSM):
            changes["C_backward"] = stacked([s.C_backward for s in self.systems])  # type: ignore[union-attr]
        return self.systems[0].replace(**changes)


def _elements(system: LTISystem) -> list[tuple[tuple[int, ...], LTISystem]]:
    """Every batch element of a system as an unbatched system, in ``np.ndindex`` order."""
    if not system.batch_shape:
        return [((), system)]
    return [(index, system[index]) for index in np.ndindex(*system.batch_shape)]


def _select(system: LTISystem, chosen: np.ndarray) -> LTISystem:
    """The stored states where ``chosen`` is True of an unbatched system (both scans), D unchanged."""
    index = np.flatnonzero(chosen)
    changes = {"poles": system.poles[index], "B": system.B[index], "C": system.C[:, index]}
    if isinstance(system, BidirectionalSSM):
        changes["C_backward"] = system.C_backward[:, index]
    return system.replace(**changes)


def _padded(like: LTISystem, parts: list[LTISystem]) -> LTISystem | None:
    """Stack unbatched systems of different sizes into one system with ``like``'s batch shape, padding with zeros."""
    width = max((part.n_states for part in parts), default=0)
    if width == 0 and not any(np.any(part.D) for part in parts):
        return None
    batch = like.batch_shape
    poles = np.zeros(batch + (width,), dtype=complex)
    B = np.zeros(batch + (width, like.n_inputs), dtype=complex)
    C = np.zeros(batch + (like.n_outputs, width), dtype=complex)
    C2 = np.zeros_like(C)
    D = np.zeros_like(like.D)
    for index, part in zip(np.ndindex(*batch), parts):
        k = part.n_states
        poles[index][:k], B[index][:k], C[index][:, :k], D[index] = part.poles, part.B, part.C, part.D
        if isinstance(part, BidirectionalSSM):
            C2[index][:, :k] = part.C_backward
    forward = DiagonalSSM(
        poles, B, C, D, dt=like.dt, output=like.output, state_includes_input=like.state_includes_input
    )
    return BidirectionalSSM(forward, C2) if isinstance(like, BidirectionalSSM) else forward


def feedthrough_mode(D: np.ndarray, policy: str) -> Literal["diagonal", "full"]:
    """Resolve a ``feedthrough`` policy: ``"auto"`` is ``"diagonal"`` for a square diagonal D, else ``"full"``."""
    if policy != "auto":
        return "diagonal" if policy == "diagonal" else "full"
    square = D.shape[-1] == D.shape[-2]
    return "diagonal" if square and not np.any(D * (1 - np.eye(D.shape[-1]))) else "full"


def _zero_gain(system: LTISystem) -> int:
    """Stored states of an unbatched system whose B row and C column are exactly zero (filler states)."""
    silent = ~np.any(system.B != 0, axis=-1) & ~np.any(system.C != 0, axis=-2)
    if isinstance(system, BidirectionalSSM):
        silent &= ~np.any(system.C_backward != 0, axis=-2)
    return int(np.count_nonzero(silent))


def fill_channels(
    original: DiagonalSSM, slots: np.ndarray, reduced: tuple[DiagonalSSM, ...]
) -> tuple[np.ndarray, tuple[DiagonalSSM, ...]]:
    """Fill every reduced batch element (channel) of a multi-SISO layer up to exactly its budget of stored states.

    A re-diagonalised projection can give a channel fewer stored states than its budget k (a real reduced pole
    takes a whole stored state; the numerical minimal order can be lower). The channels of a layer are one
    rectangular array, so each is filled with ``k − n`` zero-gain states (B = 0, C = 0) at the channel's most
    damped original pole — a pole the format could store, inside the stability region when the channel has a
    stable pole — which change neither the response nor any norm. Unbatched layers are left as they are.

    Parameters
    ----------
    original : DiagonalSSM
        The unreduced layer, batch shape ``(*batch,)``.
    slots : ndarray of int, shape ``batch``
        The budget k of every batch element.
    reduced : tuple of DiagonalSSM
        One unbatched reduced system per batch element (``np.ndindex`` order), at most k states each.

    Returns
    -------
    keep : ndarray of bool, shape ``original.poles.shape``
        The prefix of every element's stored-state count after filling.
    systems : tuple of DiagonalSSM
        The filled systems.
    """
    if not original.batch_shape:
        count = reduced[0].n_states
        return np.arange(original.n_states) < count, reduced
    out = []
    for (index, element), r in zip(_elements(original), reduced):
        missing = int(slots[index]) - r.n_states
        if missing <= 0:
            out.append(r)
            continue
        pole = element.poles[int(np.argmax(element.stability_margin))]
        out.append(
            r.replace(
                poles=np.concatenate([r.poles, np.full(missing, pole)]),
                B=np.concatenate([r.B, np.zeros((missing, r.n_inputs), dtype=r.B.dtype)]),
                C=np.concatenate([r.C, np.zeros((r.n_outputs, missing), dtype=r.C.dtype)], axis=-1),
            )
        )
    counts = np.array([r.n_states for r in out]).reshape(slots.shape)
    return np.arange(original.n_states) < counts[..., None], tuple(out)


def _difference(original: LTISystem, reduced: LTISystem) -> LTISystem:
    """``G − G_r`` of two unbatched systems of one type: both state sets side by side, C_r negated, D − D_r."""
    changes = {
        "poles": np.concatenate([original.poles, reduced.poles]),
        "B": np.concatenate([original.B, reduced.B]),
        "C": np.concatenate([original.C, -reduced.C], axis=-1),
        "D": original.D - reduced.D,
    }
    if isinstance(original, BidirectionalSSM):
        other = reduced.C_backward if isinstance(reduced, BidirectionalSSM) else np.zeros_like(reduced.C)
        changes["C_backward"] = np.concatenate([original.C_backward, -other], axis=-1)
    return original.replace(**changes)


# ------------------------------------------------------------------------------------------ base class, registry
class Reduction(NamedOptions, abc.ABC):
    """Reduces one layer to a keep mask; writes a model's reductions back into its weights.

    Subclasses set ``name`` (registry key) and ``selects_states`` (True when the keep masks are
    masks of original stored states, realisable by [`ssmtools.SSMModel.apply`][ssmtools.model.SSMModel.apply]), and implement
    [`reduce_layer`][ssmtools.pruning.reductions.Reduction.reduce_layer]. The default [`error`][ssmtools.pruning.reductions.Reduction.error] is the difference of the original and the reduced
    layer (both state sets side by side); [`apply`][ssmtools.pruning.reductions.Reduction.apply] writes the reduced layers with
    [`ssmtools.SSMModel.replace_systems`][ssmtools.model.SSMModel.replace_systems].
    """

    name: ClassVar[str]
    selects_states: ClassVar[bool] = False

    @abc.abstractmethod
    def reduce_layer(self, layer: SSMLayer, keep: np.ndarray) -> tuple[np.ndarray, tuple[LTISystem, ...]]:
        """The realised keep mask and one unbatched reduced system per batch element (``np.ndindex`` order).

        Parameters
        ----------
        layer : SSMLayer
            The layer to reduce.
        keep : ndarray of bool
            Kept units, shape ``layer.system.poles.shape``.

        Returns
        -------
        keep : ndarray of bool
            The mask actually realised (same shape).
        systems : tuple of DiagonalSSM or BidirectionalSSM
            The reduced systems, of the layer's system type.
        """

    def error(self, layer: SSMLayer, keep: np.ndarray, reduced: tuple[LTISystem, ...]) -> LTISystem | None:
        """The error system ``G − G_r`` (batch shape of ``layer``), None when nothing was removed.

        Default: the original and the reduced states side by side (exact in exact arithmetic; a
        reduction whose error has a cheaper or better-conditioned form overrides this).

        Parameters
        ----------
        layer : SSMLayer
            The unreduced layer.
        keep : ndarray of bool
            The realised keep mask.
        reduced : tuple of DiagonalSSM or BidirectionalSSM
            The reduced systems from [`reduce_layer`][ssmtools.pruning.reductions.Reduction.reduce_layer].

        Returns
        -------
        DiagonalSSM or BidirectionalSSM or None
        """
        if keep.all():
            return None
        parts = [_difference(element, r) for (_, element), r in zip(_elements(layer.system), reduced)]
        return _padded(layer.system, parts)

    def reduce(self, layer: SSMLayer, keep: ArrayLike) -> ReducedLayer:
        """Reduce ``layer`` to the keep mask and build its error system.

        Parameters
        ----------
        layer : SSMLayer
            The layer to reduce.
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
            name=layer.name,
            keep=realised,
            n_kept=int(sum(r.n_states for r in reduced)),
            systems=reduced,
            error=self.error(layer, realised, reduced),
            n_padded=0 if self.selects_states or realised.all() else sum(_zero_gain(r) for r in reduced),
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
            raise ArgumentError(
                f"mask=True is not available for the {self.name!r} reduction: it writes new (re-diagonalised) states, "
                "so there is nothing to mask; use mask=False"
            )
        systems = {}
        for name, layer_keep in keep.items():
            if np.all(layer_keep):
                continue
            systems[name] = self.reduce(model[name], layer_keep).system
        return model.replace_systems(systems) if systems else model


_REDUCTIONS: Registry[Reduction] = Registry("reduction", Reduction)


def register_reduction(cls: type[Reduction]) -> type[Reduction]:
    """Class decorator: make a [`Reduction`][ssmtools.pruning.reductions.Reduction] subclass selectable by its ``name``.

    Returns
    -------
    type
        ``cls`` unchanged.
    """
    return _REDUCTIONS.register(cls)


def available_reductions() -> list[str]:
    """Registered reduction names, sorted.

    Returns
    -------
    list of str
    """
    return _REDUCTIONS.names()


def get_reduction(reduction: str | Reduction, **options: Any) -> Reduction:
    """A reduction instance from a registered name (with options) or an instance (options replaced if given).

    Parameters
    ----------
    reduction : str or Reduction
        A name of [`available_reductions`][ssmtools.pruning.reductions.available_reductions], or an instance.
    **options
        Dataclass fields of the named reduction.

    Returns
    -------
    Reduction
    """
    return _REDUCTIONS.get(reduction, **options)


def reduce_model(
    model: SSMModel, keep: Mapping[str, ArrayLike], reduction: str | Reduction = "modal-truncation"
) -> dict[str, ReducedLayer]:
    """Reduce every named layer of a model to its keep mask (the third step of [`prune_plan`][ssmtools.pruning.plan.prune_plan]).

    Parameters
    ----------
    model : SSMModel
        The model whose layers are reduced.
    keep : Mapping[str, array_like of bool]
        Layer name -> keep mask of shape ``layer.system.poles.shape`` (e.g. ``allocation.keep``).
    reduction : str or Reduction
        A name of [`available_reductions`][ssmtools.pruning.reductions.available_reductions] or an instance.

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
    norms are exact and cheap. Written back by [`ssmtools.SSMModel.apply`][ssmtools.model.SSMModel.apply], physically (smaller
    arrays) or, with ``mask=True``, by zeroing the removed states' input rows and output columns.
    """

    name: ClassVar[str] = "modal-truncation"
    selects_states: ClassVar[bool] = True

    def reduce_layer(self, layer: SSMLayer, keep: np.ndarray) -> tuple[np.ndarray, tuple[LTISystem, ...]]:
        """The kept stored states of every batch element; the realised mask is ``keep`` itself.

        Parameters
        ----------
        layer : SSMLayer
            The layer to reduce.
        keep : ndarray of bool
            Kept stored states, shape ``layer.system.poles.shape``.

        Returns
        -------
        keep : ndarray of bool
            ``keep`` unchanged.
        systems : tuple of DiagonalSSM or BidirectionalSSM
            One reduced system per batch element.
        """
        return keep, tuple(
            element if keep[index].all() else _select(element, keep[index])
            for index, element in _elements(layer.system)
        )

    def error(self, layer: SSMLayer, keep: np.ndarray, reduced: tuple[LTISystem, ...]) -> LTISystem | None:
        """The removed states alone, D = 0 (no cancellation between kept states).

        Parameters
        ----------
        layer : SSMLayer
            The unreduced layer.
        keep : ndarray of bool
            Kept stored states.
        reduced : tuple of DiagonalSSM or BidirectionalSSM
            Unused (the error does not depend on them).

        Returns
        -------
        DiagonalSSM or BidirectionalSSM or None
        """
        if keep.all():
            return None
        parts = [_select(element, ~keep[index]).replace(D=None) for index, element in _elements(layer.system)]
        return _padded(layer.system, parts)

    def apply(self, model: SSMModel, keep: Mapping[str, ArrayLike], *, mask: bool = False) -> SSMModel:
        """Remove (or, with ``mask=True``, zero) the states through [`ssmtools.SSMModel.apply`][ssmtools.model.SSMModel.apply].

        Parameters
        ----------
        model : SSMModel
            Read from a checkpoint.
        keep : Mapping[str, array_like of bool]
            Layer name -> kept stored states.
        mask : bool
            Zero the removed states instead of deleting them.

        Returns
        -------
        SSMModel
        """
        return model.apply(keep, mask=mask)


@register_reduction
@dataclass(frozen=True)
class BalancedTruncation(Reduction):
    """Balanced truncation of every reduced layer, re-diagonalised ([`ssmtools.balanced_truncation`][ssmtools.reduction.balanced_truncation]).

    A keep mask only gives the *budget*: ``k = keep.sum(-1)`` kept stored states per channel. The realised
    mask is the prefix of the stored states the reduced layer actually has. Bound
    ``σ_{r+1} ≤ ‖G − G_r‖∞ ≤ 2 Σ_{j>r} σ_j`` (docs/concepts/reduction.md). Bidirectional layers are refused
    (ValueError). Written back with :meth:`ssmtools.SSMModel.replace_systems`.

    Parameters
    ----------
    fit : {"states", "order"}
        ``"states"`` (default): the largest real order whose re-diagonalised layer fits k stored states (a real
        reduced pole takes a whole stored state of a conjugate-symmetric format), so the ratio is met exactly.
        ``"order"``: real order 2k (k for complex output), whose re-diagonalisation can take more than k.
    unstable : {"keep", "error"}
        ``"keep"`` (default): states with |λ̄| ≥ 1 stay exactly and the stable part is reduced (additive
        decomposition, as SLICOT AB09MD); if they alone exceed k the layer keeps them all and the plan reports
        the deviation. ``"error"``: refuse unstable layers. Ignored with a ``horizon``.
    horizon : int, optional
        Finite-horizon balanced truncation over sequences of this length (every pole allowed, no a-priori
        bound; docs/concepts/derivations.md#finite-horizon-gramians). The plan's errors are infinite-horizon
        norms, hence ``inf`` for a layer with unstable states: plan with ``errors=False`` there.
    keep_stable : bool
        With a ``horizon``: a channel whose poles are all stable is never reduced to one with |λ̄| ≥ 1 (which
        formats such as S4D's ``log_A_real`` cannot store): such a channel is reduced by infinite-horizon
        balanced truncation instead (``balanced_truncation(stable=True)``). Default True.

    Notes
    -----
    With ``fit="states"`` every channel of a multi-SISO layer (S4D) ends with exactly its budget k of stored
    states: a channel that the re-diagonalisation leaves with fewer is filled with zero-gain states
    (:func:`fill_channels`), counted in ``LayerPruning.n_padded`` and shown in the plan.
    """

    name: ClassVar[str] = "balanced-truncation"
    selects_states: ClassVar[bool] = False
    _method: ClassVar[str] = "sqrt"
    fit: Literal["states", "order"] = "states"
    unstable: Literal["keep", "error"] = "keep"
    horizon: int | None = None
    keep_stable: bool = True

    def reduce_layer(self, layer: SSMLayer, keep: np.ndarray) -> tuple[np.ndarray, tuple[LTISystem, ...]]:
        """Balanced truncation of every batch element to its number of kept slots; the realised mask is their prefix.

        Parameters
        ----------
        layer : SSMLayer
            A causal layer (ValueError otherwise; unstable ones only with ``unstable="error"``).
        keep : ndarray of bool
            Kept slots (only their count per batch element matters).

        Returns
        -------
        keep : ndarray of bool
            The prefix of the reduced stored-state count per batch element.
        systems : tuple of DiagonalSSM
            The re-diagonalised reductions, one per batch element.
        """
        if isinstance(layer.system, BidirectionalSSM):
            raise ArgumentError(
                f"layer {layer.name!r} is bidirectional (non-causal): balanced truncation needs a causal layer; use "
                "reduction='modal-truncation'"
            )
        system = layer.system
        if self.horizon is None and self.unstable == "error" and not np.all(system.is_stable):
            raise ArgumentError(
                f"layer {layer.name!r} has poles with |λ̄| ≥ 1: balanced truncation with unstable='error' needs a "
                "stable layer; use unstable='keep' (stable/unstable decomposition) or a horizon"
            )
        slots = keep.sum(axis=-1)
        if np.all(slots == keep.shape[-1]):
            return np.ones_like(keep), tuple(element for _, element in _elements(system))
        options: dict[str, Any] = {"horizon": self.horizon, "unstable": self.unstable, "method": self._method}
        options["stable"] = self.keep_stable
        if self.fit == "states":
            options["states"] = slots if slots.ndim else int(slots)
        else:
            order = slots * (2 if system.output == "real" else 1)
            options["order"] = order if order.ndim else int(order)
        result = balanced_truncation(system, **options)
        reduced = self._finish(system, result.systems)
        if self.fit == "states":
            return fill_channels(system, slots, reduced)
        counts = np.array([r.n_states for r in reduced]).reshape(slots.shape)
        return np.arange(keep.shape[-1]) < counts[..., None], reduced

    def _finish(self, system: DiagonalSSM, reduced: tuple[DiagonalSSM, ...]) -> tuple[DiagonalSSM, ...]:
        """Post-process the reduced systems (the feedthrough policy of singular perturbation); identity here."""
        return reduced

    def error(self, layer: SSMLayer, keep: np.ndarray, reduced: tuple[LTISystem, ...]) -> LTISystem | None:
        """``G − G_r``; with ``unstable="keep"`` the kept unstable states, identical on both sides, are left out.

        Parameters
        ----------
        layer : SSMLayer
            The unreduced layer.
        keep : ndarray of bool
            The realised keep mask.
        reduced : tuple of DiagonalSSM
            The reduced systems from :meth:`reduce_layer`.

        Returns
        -------
        DiagonalSSM or None
        """
        if keep.all() or self.horizon is not None or self.unstable != "keep":
            return super().error(layer, keep, reduced)
        parts = []
        for (_, element), r in zip(_elements(layer.system), reduced):
            stable, stable_r = element.stability_margin > 0, r.stability_margin > 0
            parts.append(_difference(_select(element, stable), _select(r, stable_r)))
        return _padded(layer.system, parts)


@register_reduction
@dataclass(frozen=True)
class SingularPerturbation(BalancedTruncation):
    """Singular perturbation of the balanced layer (``balanced_truncation(method="spa")``): exact at DC.

    The scan layer's full realisation ``(Λ, B, CΛ, D + out(CB))`` is balanced and its weak states residualised
    instead of truncated; written back in the scan form its feedthrough ``D_r`` is a full matrix
    (:func:`ssmtools.balanced_truncation`, Notes). Options as :class:`BalancedTruncation`, plus:

    Parameters
    ----------
    fit : {"states", "order"}
        As for balanced truncation.
    unstable : {"keep", "error"}
        As for balanced truncation.
    horizon : int, optional
        As for balanced truncation.
    keep_stable : bool
        As for balanced truncation.
    feedthrough : {"auto", "full", "diagonal"}
        ``"full"``: write the new full D (formats that store one, such as lru-pytorch). ``"diagonal"``: keep only
        the diagonal of the new D — the Frobenius-nearest correction a diagonal-D format (S5, S4D) can store;
        the DC gain is then matched on the diagonal only. ``"auto"`` (default): ``"diagonal"`` when the layer's
        D is diagonal, else ``"full"``.
    """

    name: ClassVar[str] = "singular-perturbation"
    _method: ClassVar[str] = "spa"
    feedthrough: Literal["auto", "full", "diagonal"] = "auto"

    def _finish(self, system: DiagonalSSM, reduced: tuple[DiagonalSSM, ...]) -> tuple[DiagonalSSM, ...]:
        """Keep the diagonal of each new D when the policy (or a diagonal original D) says so."""
        D = system.D
        if feedthrough_mode(D, self.feedthrough) == "full":
            return reduced
        if D.shape[-1] != D.shape[-2]:
            raise ArgumentError(
                "feedthrough='diagonal' needs a square D (one value per channel); this layer's D is "
                f"{D.shape[-2]}×{D.shape[-1]}: use feedthrough='full'"
            )
        return tuple(
            r.replace(D=np.diagonal(r.D, axis1=-2, axis2=-1)[..., None] * np.eye(D.shape[-1])) for r in reduced
        )

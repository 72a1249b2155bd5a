"""``SSMLayer`` and ``SSMModel``: named collections of diagonal LTI layers read from real checkpoints.

An ``SSMModel`` is what ``ssmtools.load`` returns and what pruning/reduction work on: an ordered
mapping from layer name (the path of the layer in the parameter tree) to [`SSMLayer`][ssmtools.model.SSMLayer], plus
the original parameters and the family adapter that read them, so that pruned weights can be
written back in the same format. This module knows adapters only through the small
[`FamilyAdapter`][ssmtools.model.FamilyAdapter] protocol (``ssmtools.adapters.Adapter`` implements it); it imports nothing
from ``ssmtools.adapters``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .errors import ArgumentError, ArgumentTypeError, UnknownNameError
from .systems import BidirectionalSSM, DiagonalSSM

ROOT_LABEL = "(root)"  # shown for the layer whose path in the tree is empty


@dataclass(frozen=True, eq=False)
class SSMLayer:
    """One SSM layer viewed as an LTI system.

    Parameters
    ----------
    name : str
        Path of the layer in its parameter tree (e.g. ``"encoder/layers_0/seq"``).
    system : DiagonalSSM or BidirectionalSSM
        Discretised poles, B̄, C̃ and D in the family's output convention. ``batch_shape == ()`` for a
        MIMO layer (S5, LRU); ``(H,)`` for H SISO channels (S4D, Mamba), in which case prunable units
        are (channel, state) pairs or states shared across channels. Bidirectional S5 layers are a
        [`BidirectionalSSM`][ssmtools.systems.BidirectionalSSM] (a causal and an anti-causal scan sharing poles and B).
    output_scale : float
        κ with ``system.C = κ·C̃``, C̃ the C parameter the family stores (2 for the ``2·Re`` output of
        conjugate-symmetric S5 and of S4D, 1 otherwise); set by the family's adapter. Criteria that
        score the stored parameters (``"last-official"``) divide by it.
    """

    name: str
    system: DiagonalSSM | BidirectionalSSM
    output_scale: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.system, (DiagonalSSM, BidirectionalSSM)):
            raise ArgumentTypeError(
                f"layer {self.name!r}: system must be a DiagonalSSM or a BidirectionalSSM, got {type(self.system).__name__}"
            )
        if not (np.isfinite(self.output_scale) and self.output_scale > 0):
            raise ArgumentError(
                f"layer {self.name!r}: output_scale must be a positive finite number, got {self.output_scale!r}"
            )
        object.__setattr__(self, "output_scale", float(self.output_scale))

    @property
    def bidirectional(self) -> bool:
        """True when the layer also has an anti-causal (backward) scan."""
        return isinstance(self.system, BidirectionalSSM)

    @property
    def n_states(self) -> int:
        """Stored states of the layer (per channel for multi-SISO layers)."""
        return self.system.n_states

    @property
    def label(self) -> str:
        """The name shown in tables and figures: ``name``, or ``"(root)"`` for a layer at the root of its tree
        (a checkpoint of one bare layer, whose path is empty)."""
        return self.name or ROOT_LABEL


class FamilyAdapter(Protocol):
    """What a model needs from the adapter of its family (implemented by ``ssmtools.adapters.Adapter``).

    A typing protocol: it is never instantiated (subclass ``ssmtools.adapters.Adapter`` instead).
    """

    @property
    def family(self) -> str:
        """Registry name of the family."""
        ...

    def read(self, params: Any, *, source: str | None = None, **config: Any) -> SSMModel:
        """Every layer of the family in ``params``.

        Parameters
        ----------
        params : Mapping
            State dict or nested parameter tree.
        source : str, optional
            File the parameters came from (error messages).
        **config
            The family's settings.

        Returns
        -------
        SSMModel
        """
        ...

    def prune(self, model: SSMModel, keep: Any, *, mask: bool = False) -> Any:
        """New parameters without the states where ``keep`` is False.

        Parameters
        ----------
        model : SSMModel
            A model this adapter read.
        keep : Mapping[str, array_like of bool]
            Layer name -> kept states.
        mask : bool
            Zero the removed states instead of deleting them.

        Returns
        -------
        Mapping
            The new parameter tree.
        """
        ...

    def replace(self, model: SSMModel, systems: Mapping[str, Any], *, check: bool = True) -> Any:
        """New parameters realising ``systems``.

        Parameters
        ----------
        model : SSMModel
            A model this adapter read.
        systems : Mapping[str, DiagonalSSM, BidirectionalSSM or SSMLayer]
            Layer name -> replacement in the layer's convention.
        check : bool
            Re-read the written parameters and compare their frequency response.

        Returns
        -------
        Mapping
            The new parameter tree.
        """
        ...


@dataclass(frozen=True, eq=False)
class SSMModel(Mapping[str, SSMLayer]):
    """An ordered, read-only mapping ``layer name -> SSMLayer`` with the data needed to write it back.

    Parameters
    ----------
    layers : dict[str, SSMLayer]
        Layers in model order, keyed by their path in the parameter tree.
    adapter : FamilyAdapter or None
        The family adapter that read ``params`` (``ssmtools.adapters.get_adapter(name)``); ``None``
        for hand-built models. ``model.family`` is its name, or ``"custom"``.
    params : Any
        The original parameter tree / state dict (never modified).
    config : dict
        Settings not stored in the weights (discretisation, conj_sym, step_rescale, ...).
    source : str or None
        Path the model was read from, if any.
    """

    layers: dict[str, SSMLayer]
    adapter: FamilyAdapter | None = None
    params: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __getitem__(self, name: str) -> SSMLayer:
        try:
            return self.layers[name]
        except KeyError:
            raise UnknownNameError(f"no layer named {name!r}; layers are {list(self.layers)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def family(self) -> str:
        """Name of the family adapter (``"s5"``, ``"lru"``, ...), or ``"custom"`` for hand-built models."""
        return "custom" if self.adapter is None else self.adapter.family

    @property
    def n_states(self) -> int:
        """Total stored states over all layers (per-channel states counted once per channel)."""
        return int(sum(np.prod(layer.system.poles.shape) for layer in self.layers.values()))

    def apply(self, keep: Any, *, mask: bool = False) -> SSMModel:
        """Prune states: a new model whose parameters keep only the states where ``keep`` is True.

        Parameters
        ----------
        keep : Mapping[str, array_like of bool] or object with a ``.keep`` mapping (e.g. a pruning plan)
            Layer name -> boolean array of shape ``layer.system.poles.shape`` (``(P,)`` for S5/LRU,
            ``(H, N/2)`` for S4D). Layers not named are kept whole.
        mask : bool
            ``False`` (default): remove the pruned states physically (smaller arrays, same names and
            dtypes, loadable by the original package with the smaller state size). ``True``: zero
            their input rows and output columns instead, shapes unchanged (the released LAST code).

        Returns
        -------
        SSMModel
            Same family, config and source; ``params`` is a new tree (non-SSM leaves shared, the
            original untouched) and the layers are re-read from it.

        Notes
        -----
        Modal truncation: the kept states' (λ̄, B̄, C̃) and D are unchanged (docs/concepts/derivations.md#modal-truncation-error). S4D layers
        need the same number of kept states in every channel for physical removal. What a family can
        do is in ``model.adapter.capabilities`` (``can_prune``, ``can_mask``); a family that cannot
        raises ``ssmtools.adapters.CapabilityError``.
        """
        adapter = self._writer("apply")
        params = adapter.prune(self, keep, mask=mask)
        return adapter.read(params, source=self.source, **self.config)

    def replace_systems(self, systems: Mapping[str, Any]) -> SSMModel:
        """Write reduced layers (e.g. re-diagonalised balanced truncations) back into the family's parameters.

        Parameters
        ----------
        systems : Mapping[str, DiagonalSSM or SSMLayer]
            Layer name -> replacement in the layer's exact convention (``dt=True``,
            ``state_includes_input=True``, same output map, batch shape and inputs/outputs; the
            output map includes ``layer.output_scale``, e.g. C doubled for 2Re families). Bidirectional
            layers take a ``BidirectionalSSM``.

        Returns
        -------
        SSMModel
            A new model whose parameters realise the given systems; the written parameters are re-read
            and their frequency response checked against the given systems (ValueError if they differ
            beyond the stored precision).

        Notes
        -----
        Continuous-time families (S5, s5-pytorch, S4D) invert the discretisation with the step kept
        (S4D) or ``log_step = 0`` (S5: Δ = step_rescale / step_scale): ZOH Λ = log(λ̄)/Δ,
        B̃ = B̄·Λ/(λ̄ − 1). LRU: nu_log = log(−log|λ|), theta_log = log(arg λ) after a conjugate flip
        to arg λ ≥ 0, gamma_log = 0. Families whose ``model.adapter.capabilities.can_replace`` is
        False raise ``ssmtools.adapters.CapabilityError``.
        """
        adapter = self._writer("replace_systems")
        params = adapter.replace(self, systems)
        return adapter.read(params, source=self.source, **self.config)

    def _writer(self, what: str) -> FamilyAdapter:
        if self.adapter is None or self.params is None:
            raise ArgumentError(
                f"{what}() writes parameters back in a model family's format; this model has family={self.family!r} "
                "and no parameters. Load a checkpoint with ssmtools.load(...) first."
            )
        return self.adapter

    @classmethod
    def from_systems(cls, systems: Mapping[str, DiagonalSSM] | list[DiagonalSSM]) -> SSMModel:
        """A ``"custom"`` model from named systems (or a list, named ``layer_0``, ``layer_1``, ...).

        Parameters
        ----------
        systems : Mapping[str, DiagonalSSM or BidirectionalSSM] or list of them
            The layers, in model order.

        Returns
        -------
        SSMModel
            No adapter and no parameters: it can be analysed and planned, not written back.
        """
        if not isinstance(systems, Mapping):
            systems = {f"layer_{i}": system for i, system in enumerate(systems)}
        return cls({name: SSMLayer(name, system) for name, system in systems.items()})

"""``SSMLayer`` and ``SSMModel``: named collections of diagonal LTI layers read from real checkpoints.

An ``SSMModel`` is what ``ssmtools.load`` returns and what pruning/reduction work on: an ordered
mapping from layer name (the path of the layer in the parameter tree) to :class:`SSMLayer`, plus
the original parameters so that pruned weights can be written back in the same format.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ShapeError
from .systems import DiagonalSSM


@dataclass(frozen=True, eq=False)
class SSMLayer:
    """One SSM layer viewed as an LTI system.

    Parameters
    ----------
    name : str
        Path of the layer in its parameter tree (e.g. ``"encoder/layers_0/seq"``).
    system : DiagonalSSM
        The causal part: discretised poles, B̄, C̃ (forward columns) and D, in the family's output
        convention. ``batch_shape == ()`` for a MIMO layer (S5, LRU); ``(H,)`` for H SISO channels
        (S4D, Mamba), in which case prunable units are (channel, state) pairs or states shared
        across channels.
    C_backward : ndarray, shape ``(*batch, p, n)``, optional
        Bidirectional S5: output columns of the anti-causal scan, which shares poles and B̄ with the
        forward scan (math.md §1.3). ``None`` for causal layers.
    """

    name: str
    system: DiagonalSSM
    C_backward: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.C_backward is not None:
            C_backward = np.asarray(self.C_backward, dtype=complex)
            if C_backward.shape != self.system.C.shape:
                raise ShapeError(
                    f"layer {self.name!r}: C_backward has shape {C_backward.shape}, expected the forward C's shape "
                    f"{self.system.C.shape} (the backward scan shares poles and B)"
                )
            C_backward.flags.writeable = False
            object.__setattr__(self, "C_backward", C_backward)

    @property
    def bidirectional(self) -> bool:
        """True when the layer also has an anti-causal (backward) scan."""
        return self.C_backward is not None

    @property
    def n_states(self) -> int:
        """Stored states of the layer (per channel for multi-SISO layers)."""
        return self.system.n_states


@dataclass(frozen=True, eq=False)
class SSMModel(Mapping[str, SSMLayer]):
    """An ordered, read-only mapping ``layer name -> SSMLayer`` with the data needed to write it back.

    Attributes
    ----------
    layers : dict[str, SSMLayer]
    family : str
        ``"s5"``, ``"s5-pytorch"``, ``"s4d"``, ``"lru"``, ... (``"custom"`` for hand-built models).
    params : Any
        The original parameter tree / state dict (never modified).
    config : dict
        Settings not stored in the weights (discretisation, conj_sym, step_rescale, ...).
    source : str or None
        Path the model was read from, if any.
    """

    layers: dict[str, SSMLayer]
    family: str = "custom"
    params: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __getitem__(self, name: str) -> SSMLayer:
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(f"no layer named {name!r}; layers are {list(self.layers)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def n_states(self) -> int:
        """Total stored states over all layers (per-channel states counted once per channel)."""
        return int(sum(np.prod(layer.system.poles.shape) for layer in self.layers.values()))

    @classmethod
    def from_systems(cls, systems: Mapping[str, DiagonalSSM] | list[DiagonalSSM]) -> SSMModel:
        """A ``"custom"`` model from named systems (or a list, named ``layer_0``, ``layer_1``, ...)."""
        if not isinstance(systems, Mapping):
            systems = {f"layer_{i}": system for i, system in enumerate(systems)}
        return cls({name: SSMLayer(name, system) for name, system in systems.items()})

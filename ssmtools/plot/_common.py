"""Shared pieces of the plots: input normalisation (systems, plans), new axes, legends and colours.

Nothing here imports matplotlib at module level: ``import ssmtools`` stays free of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from ..systems import BidirectionalSSM, DiagonalSSM, LTISystem

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

Systems = Any  # DiagonalSSM | SSMLayer | ReductionResult | Mapping[str, ...] | Sequence[...]


def _system_of(obj: Any, what: str) -> LTISystem:
    """The system of a DiagonalSSM/BidirectionalSSM, an SSMLayer or a ReductionResult (``.system``)."""
    if isinstance(obj, (DiagonalSSM, BidirectionalSSM)):
        return obj
    system = getattr(obj, "system", None)
    if isinstance(system, (DiagonalSSM, BidirectionalSSM)):
        return system
    raise ArgumentTypeError(
        f"{what} is a {type(obj).__name__}; expected a DiagonalSSM, a BidirectionalSSM, an SSMLayer or a reduction "
        "result (anything with a .system), or a dict / list of them"
    )


def _causal(system: LTISystem) -> DiagonalSSM:
    """The causal scan of a layer: HSVs are defined for causal systems (a bidirectional layer's forward scan)."""
    return system.forward if isinstance(system, BidirectionalSSM) else system


Named = tuple[str, LTISystem]  # label, unbatched system (causal or bidirectional)


def _flatten(name: str, system: LTISystem) -> list[Named]:
    if not system.batch_shape:
        return [(name, system)]
    out: list[Named] = []
    for index in np.ndindex(*system.batch_shape):
        suffix = ",".join(str(i) for i in index)
        out.append((f"{name}[{suffix}]" if name else suffix, system[index]))
    return out


def _named_systems(systems: Systems, what: str = "systems") -> list[Named]:
    """Unbatched ``(label, system)``: batches are split, dicts keep their keys as labels."""
    many = getattr(systems, "systems", None)  # ReductionResult: one system per batch element, ndindex order
    items: list[tuple[str, LTISystem]]
    if isinstance(many, tuple) and many and all(isinstance(s, DiagonalSSM) for s in many):
        items = [("" if len(many) == 1 else str(i), s) for i, s in enumerate(many)]
    elif isinstance(systems, Mapping):
        items = [(str(name), _system_of(value, f"{what}[{name!r}]")) for name, value in systems.items()]
    elif isinstance(systems, Sequence) and not isinstance(systems, str):
        items = [(str(i), _system_of(value, f"{what}[{i}]")) for i, value in enumerate(systems)]
    else:
        items = [("", _system_of(systems, what))]
    if not items:
        raise ArgumentError(f"{what} is empty; pass at least one system")
    named = [entry for name, system in items for entry in _flatten(name, system)]
    if len({system.is_discrete for _, system in named}) > 1:
        raise ArgumentError(
            f"{what} mixes continuous- and discrete-time systems; plot them on separate axes "
            "(their frequency axes differ: rad/s vs rad/sample)"
        )
    return named


def _new_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _legend(ax: Axes, max_entries: int = 24, *, outside: bool = False) -> None:
    """A legend when something is labelled (matplotlib warns on an empty one) and it stays readable.

    ``outside``: right of the axes, so that it never covers a curve (several layers overlaid); save such figures
    with ``bbox_inches="tight"``.
    """
    if 0 < len(ax.get_legend_handles_labels()[0]) <= max_entries:
        if outside:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        else:
            ax.legend(fontsize="small")


def _layer_axis(ax: Axes, names: list[str]) -> None:
    """One tick per layer at x = 0, 1, ..., labelled by name (slanted when there are many)."""
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 6 else 0)
    ax.set_xlabel("layer")


def _color(index: int) -> str:
    import matplotlib as mpl

    colors = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    return colors[index % len(colors)]


def _plans(plans: Any) -> dict[str, Any]:
    if isinstance(plans, Mapping):
        return {str(k): v for k, v in plans.items()}
    if hasattr(plans, "layers") and hasattr(plans, "criterion"):
        return {str(plans.criterion): plans}
    raise ArgumentTypeError(
        f"expected a PruningPlan (ssmtools.pruning.prune_plan) or a dict {{label: PruningPlan}}, got {type(plans).__name__}"
    )

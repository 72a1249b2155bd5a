"""``prune_plan``: which states of every layer to keep for a model-wide pruning ratio, and what it costs.

Pipeline: a :class:`~ssmtools.pruning.criteria.Criterion` scores every stored state; scores are grouped
into prunable *units* (a stored state; for multi-SISO layers a (channel, state) pair or a state shared
by all channels), normalised per layer, and allocated — one global ranking (``scope="global"``
criteria) or the same ratio in every layer (``scope="layer"``). The plan then reports each layer's
exact modal-truncation error ``‖G − G_r‖`` (the removed states alone, D = 0; math.md §5).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import ShapeError, UnstableSystemWarning, check_choice, silence_unstable
from ..model import SSMLayer, SSMModel
from ..norms import h2_norm, hinf_norm
from ..systems import BidirectionalSSM, DiagonalSSM, LTISystem
from ._allocation import LayerUnits, allocate, broadcast, check_ratio, layer_units
from .criteria import Criterion, get_criterion

__all__ = ["prune_plan", "PruningPlan", "LayerPruning", "as_model"]

Units = Literal["channel-state", "state"]
Allocation = Literal["exact", "released"]


# ------------------------------------------------------------------------------------------ results
@dataclass(frozen=True, eq=False)
class LayerPruning:
    """One layer's part of a :class:`PruningPlan` (arrays are read-only).

    Parameters
    ----------
    name : str
        Layer name.
    keep : ndarray of bool, shape ``layer.system.poles.shape``
        True for stored states that stay.
    scores : ndarray of float64, same shape
        Normalised unit scores (the values ranked), broadcast to every stored state of the unit.
    raw_scores : ndarray of float64, same shape
        The criterion's raw per-state scores.
    n_total : int
        Stored states of the layer (all channels).
    n_kept : int
        Stored states kept.
    n_unstable : int
        Stored states with |λ̄| ≥ 1 (their norms are infinite).
    bidirectional : bool
        Whether the layer has a backward scan (errors include it).
    threshold : float or None
        Largest normalised score among this layer's removed units (None if none removed).
    hinf_error, h2_error : float or None
        ``‖G − G_r‖∞`` and ``‖G − G_r‖₂`` (L∞/L2 for bidirectional layers); None when not computed.
    hinf_norm, h2_norm : float or None
        ``‖G‖∞`` and ``‖G‖₂`` of the unpruned layer, D included.
    """

    name: str
    keep: np.ndarray
    scores: np.ndarray
    raw_scores: np.ndarray
    n_total: int
    n_kept: int
    n_unstable: int = 0
    bidirectional: bool = False
    threshold: float | None = None
    hinf_error: float | None = None
    h2_error: float | None = None
    hinf_norm: float | None = None
    h2_norm: float | None = None

    def __post_init__(self) -> None:
        for name, dtype in (("keep", bool), ("scores", float), ("raw_scores", float)):
            array = np.array(getattr(self, name), dtype=dtype)
            array.flags.writeable = False
            object.__setattr__(self, name, array)

    @property
    def n_removed(self) -> int:
        """Stored states removed."""
        return self.n_total - self.n_kept

    @property
    def relative_hinf_error(self) -> float | None:
        """``‖G − G_r‖∞ / ‖G‖∞`` (None if not computed, NaN if ‖G‖∞ is 0 or infinite)."""
        return _relative(self.hinf_error, self.hinf_norm)

    @property
    def relative_h2_error(self) -> float | None:
        """``‖G − G_r‖₂ / ‖G‖₂`` (None if not computed, NaN if ‖G‖₂ is 0 or infinite)."""
        return _relative(self.h2_error, self.h2_norm)


def _relative(error: float | None, norm: float | None) -> float | None:
    if error is None or norm is None:
        return None
    if not np.isfinite(norm) or norm == 0:
        return float("nan")
    return float(error / norm)


@dataclass(frozen=True, eq=False)
class PruningPlan:
    """Which states every layer keeps, with the scores, threshold and exact truncation errors.

    Parameters
    ----------
    criterion : str
        Name of the criterion used.
    criterion_options : dict
        Its options (dataclass fields).
    ratio : float
        Nominal fraction of stored states to remove, in [0, 1).
    allocation : {"exact", "released"}
        Allocation rule used (see :func:`prune_plan`).
    units : {"channel-state", "state"}
        Prunable unit of multi-SISO layers.
    min_states_per_layer : int
        Floor on the kept units of every layer (every channel with ``units="channel-state"``).
    threshold : float or None
        Global threshold. ``allocation="exact"``: the largest normalised score among removed units
        (every unit scoring more was kept; at the threshold the tie rule decided), None when nothing
        was removed. ``allocation="released"``: the code's τ (keep ⇔ score ≥ τ). None when the
        criterion allocates per layer.
    layers : tuple of LayerPruning
        One entry per layer, in model order.

    Notes
    -----
    ``plan.keep`` is the mapping ``layer name -> bool array`` that :meth:`ssmtools.SSMModel.apply`
    takes (it also accepts the plan itself). ``str(plan)`` is a table; rich renders it as a table too;
    :meth:`to_json` / :meth:`from_json` round-trip it.
    """

    criterion: str
    criterion_options: dict[str, Any]
    ratio: float
    allocation: str
    units: str
    min_states_per_layer: int
    threshold: float | None
    layers: tuple[LayerPruning, ...] = field(default_factory=tuple)

    # --------------------------------------------------------------------------- views
    @property
    def keep(self) -> dict[str, np.ndarray]:
        """``{layer name: bool array of layer.system.poles.shape}``, True = kept (input of ``SSMModel.apply``).

        Not available for ``"balanced"`` plans, whose layers are re-diagonalised reductions rather than
        subsets of states (their ``layers[i].keep`` marks kept Hankel slots): use ``last_prune`` or
        :func:`ssmtools.pruning.balanced.apply_balanced`.
        """
        if self.criterion == "balanced":
            raise ValueError(
                "a 'balanced' plan reduces layers by balanced truncation (new, re-diagonalised states), so it has no "
                "state keep-mask for SSMModel.apply; use ssmtools.last_prune(..., criterion='balanced') or "
                "ssmtools.pruning.balanced.apply_balanced(model, plan)"
            )
        return {layer.name: layer.keep for layer in self.layers}

    def __getitem__(self, name: str) -> LayerPruning:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r} in this plan; layers are {[layer.name for layer in self.layers]}")

    @property
    def n_total(self) -> int:
        """Stored states of the model."""
        return sum(layer.n_total for layer in self.layers)

    @property
    def n_kept(self) -> int:
        """Stored states kept."""
        return sum(layer.n_kept for layer in self.layers)

    @property
    def n_removed(self) -> int:
        """Stored states removed."""
        return self.n_total - self.n_kept

    @property
    def realized_ratio(self) -> float:
        """Fraction of stored states actually removed."""
        return self.n_removed / self.n_total if self.n_total else 0.0

    @property
    def unstable(self) -> dict[str, int]:
        """``{layer name: number of states with |λ̄| ≥ 1}`` for layers that have any."""
        return {layer.name: layer.n_unstable for layer in self.layers if layer.n_unstable}

    # --------------------------------------------------------------------------- display
    def _header(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.criterion_options.items())
        crit = f"{self.criterion}({options})" if options else self.criterion
        threshold = "-" if self.threshold is None else f"{self.threshold:.6g}"
        text = (
            f"PruningPlan: criterion={crit}, allocation={self.allocation}, units={self.units}\n"
            f"removed {self.n_removed}/{self.n_total} stored states (ratio {self.realized_ratio:.4f}, "
            f"nominal {self.ratio:.4f}), threshold {threshold}"
        )
        if self.unstable:
            text += f"\nunstable states (|λ̄| ≥ 1, infinite norms): {self.unstable}"
        return text

    _COLUMNS = ("layer", "kept/total", "removed", "threshold", "‖ΔG‖∞", "rel ∞", "‖ΔG‖₂", "rel 2", "unstable")

    def _rows(self) -> list[tuple[str, ...]]:
        def num(value: float | None) -> str:
            return "-" if value is None else f"{value:.4g}"

        rows = []
        for layer in self.layers:
            removed = layer.n_removed / layer.n_total if layer.n_total else 0.0
            rows.append((
                layer.name + (" (bidir)" if layer.bidirectional else ""), f"{layer.n_kept}/{layer.n_total}",
                f"{100 * removed:.1f}%", num(layer.threshold), num(layer.hinf_error), num(layer.relative_hinf_error),
                num(layer.h2_error), num(layer.relative_h2_error), str(layer.n_unstable),
            ))
        return rows

    def __str__(self) -> str:
        rows = [self._COLUMNS, *self._rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self._COLUMNS))]
        lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                 for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return self._header() + "\n" + "\n".join(lines)

    def __repr__(self) -> str:
        return (f"PruningPlan(criterion={self.criterion!r}, ratio={self.ratio!r}, removed={self.n_removed}/"
                f"{self.n_total}, layers={len(self.layers)})")

    def __rich__(self):
        """A ``rich.table.Table`` (``rich.print(plan)``)."""
        from rich.table import Table

        table = Table(title=self._header(), title_justify="left")
        for i, column in enumerate(self._COLUMNS):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in self._rows():
            table.add_row(*row)
        return table

    # --------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"``)."""
        return {
            "format": "ssmtools.PruningPlan", "version": 1,
            "criterion": self.criterion, "criterion_options": _encode(self.criterion_options),
            "ratio": _encode(self.ratio), "allocation": self.allocation, "units": self.units,
            "min_states_per_layer": self.min_states_per_layer, "threshold": _encode(self.threshold),
            "layers": [
                {
                    "name": layer.name, "keep": _encode_array(layer.keep), "scores": _encode_array(layer.scores),
                    "raw_scores": _encode_array(layer.raw_scores), "n_total": layer.n_total, "n_kept": layer.n_kept,
                    "n_unstable": layer.n_unstable, "bidirectional": layer.bidirectional,
                    **{key: _encode(getattr(layer, key)) for key in
                       ("threshold", "hinf_error", "h2_error", "hinf_norm", "h2_norm")},
                }
                for layer in self.layers
            ],
        }

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int | None = 2) -> str:
        """Serialise to JSON (strict: no NaN/Infinity literals); also write ``path`` atomically if given.

        Parameters
        ----------
        path : str or os.PathLike, optional
            File to write (temporary file in the same directory, then ``os.replace``).
        indent : int or None
            JSON indentation.

        Returns
        -------
        str
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)
        if path is not None:
            _atomic_write_text(Path(os.fspath(path)), text)
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PruningPlan:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping) or data.get("format") != "ssmtools.PruningPlan":
            raise ValueError("not a serialised PruningPlan: expected a JSON object with format='ssmtools.PruningPlan'")
        layers = tuple(
            LayerPruning(
                name=entry["name"], keep=_decode_array(entry["keep"], bool), scores=_decode_array(entry["scores"], float),
                raw_scores=_decode_array(entry["raw_scores"], float), n_total=int(entry["n_total"]),
                n_kept=int(entry["n_kept"]), n_unstable=int(entry["n_unstable"]),
                bidirectional=bool(entry["bidirectional"]),
                **{key: _decode(entry[key]) for key in ("threshold", "hinf_error", "h2_error", "hinf_norm", "h2_norm")},
            )
            for entry in data["layers"]
        )
        return cls(
            criterion=data["criterion"], criterion_options=dict(_decode(data["criterion_options"])),
            ratio=float(_decode(data["ratio"])), allocation=data["allocation"], units=data["units"],
            min_states_per_layer=int(data["min_states_per_layer"]), threshold=_decode(data["threshold"]), layers=layers,
        )

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> PruningPlan:
        """Read a plan from JSON text (a string starting with ``{``) or from a file path.

        Parameters
        ----------
        source : str or os.PathLike
            JSON text or a path to a file written by :meth:`to_json`.

        Returns
        -------
        PruningPlan
        """
        if isinstance(source, str) and source.lstrip().startswith("{"):
            text = source
        else:
            text = Path(os.fspath(source)).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))


def _encode(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _encode_array(array: np.ndarray) -> dict[str, Any]:
    flat = array.reshape(-1)
    data = [bool(v) for v in flat] if array.dtype == bool else [_encode(float(v)) for v in flat]
    return {"shape": list(array.shape), "data": data}


def _decode_array(entry: Mapping[str, Any], dtype: type) -> np.ndarray:
    data = [_decode(v) for v in entry["data"]]
    return np.asarray(data, dtype=dtype).reshape(tuple(entry["shape"]))


def _atomic_write_text(path: Path, text: str) -> None:
    from ..io import atomic_write

    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


# ------------------------------------------------------------------------------------------ helpers
def as_model(model: Any) -> SSMModel:
    """An :class:`SSMModel` from a model, a mapping of named systems/layers, or a list of systems.

    Parameters
    ----------
    model : SSMModel, Mapping[str, DiagonalSSM or SSMLayer] or list of DiagonalSSM

    Returns
    -------
    SSMModel
    """
    if isinstance(model, SSMModel):
        return model
    if isinstance(model, DiagonalSSM):
        model = [model]
    if isinstance(model, (list, tuple)):
        model = {f"layer_{i}": value for i, value in enumerate(model)}
    if isinstance(model, Mapping):
        layers = {}
        for name, value in model.items():
            if isinstance(value, SSMLayer):
                layers[name] = value
            elif isinstance(value, (DiagonalSSM, BidirectionalSSM)):
                layers[name] = SSMLayer(name, value)
            else:
                raise TypeError(f"layer {name!r} is a {type(value).__name__}; expected a DiagonalSSM or SSMLayer")
        return SSMModel(layers)
    raise TypeError(
        f"expected an SSMModel (ssmtools.load(...)), a mapping of named DiagonalSSM/SSMLayer or a list of "
        f"DiagonalSSM, got {type(model).__name__}"
    )


# ------------------------------------------------------------------------------------------ errors
def _removed_system(layer: SSMLayer, removed: np.ndarray) -> LTISystem | None:
    """The error system of modal truncation: removed states only, D = 0 (padded per channel with
    zero-gain states at λ = 0 so channels removing different counts share one batched system)."""
    system = layer.system
    batch = system.batch_shape
    counts = removed.sum(axis=-1)
    width = int(np.max(counts, initial=0))
    if width == 0:
        return None
    bidirectional = isinstance(system, BidirectionalSSM)
    poles = np.zeros(batch + (width,), dtype=complex)
    B = np.zeros(batch + (width, system.n_inputs), dtype=complex)
    C = np.zeros(batch + (system.n_outputs, width), dtype=complex)
    C2 = np.zeros_like(C)
    for index in np.ndindex(*batch):
        chosen = np.flatnonzero(removed[index])
        k = chosen.size
        poles[index][:k] = system.poles[index][chosen]
        B[index][:k] = system.B[index][chosen]
        C[index][:, :k] = system.C[index][:, chosen]
        if isinstance(system, BidirectionalSSM):
            C2[index][:, :k] = system.C_backward[index][:, chosen]
    error = DiagonalSSM(poles, B, C, dt=system.dt, output=system.output,
                        state_includes_input=system.state_includes_input)
    return BidirectionalSSM(error, C2) if bidirectional else error


def _layer_norms(system: LTISystem, *, hinf: bool = True) -> tuple[float | None, float]:
    """(H∞ or L∞, H2 or L2) of a possibly batched (block-diagonal over channels) layer or error system.

    The H∞ engine is chosen by :func:`ssmtools.hinf_norm` (``method="auto"``: AB13DD on the
    I/O-compressed standard form for truncation-error systems and bidirectional layers, the certified
    diagonal algorithm at relative accuracy 1e-10 for full layers). ``hinf=False`` skips it.
    """
    with silence_unstable():
        linf = np.asarray(hinf_norm(system, rtol=1e-10)) if hinf else None
        l2 = np.asarray(h2_norm(system))
    return (None if linf is None else float(np.max(linf))), float(np.sqrt(np.sum(l2**2)))


def _prefix(keep: np.ndarray) -> np.ndarray:
    """The same number of True per row, moved to the front (kept Hankel slots are the largest ones)."""
    counts = keep.sum(axis=-1)
    return np.arange(keep.shape[-1]) < counts[..., None]


# ------------------------------------------------------------------------------------------ public
def prune_plan(
    model: Any,
    ratio: float,
    criterion: str | Criterion = "last",
    *,
    min_states_per_layer: int = 1,
    units: Units = "channel-state",
    allocation: Allocation = "exact",
    errors: bool | Literal["absolute"] = True,
    criterion_options: Mapping[str, Any] | None = None,
) -> PruningPlan:
    """Decide which stored states to remove so that a fraction ``ratio`` of the model's states goes.

    Parameters
    ----------
    model : SSMModel, Mapping[str, DiagonalSSM or SSMLayer] or list of DiagonalSSM
        The layers (``ssmtools.load(...)`` or hand-built).
    ratio : float
        Fraction of stored states removed model-wide, in [0, 1) (``0.3``, not ``30``). A stored state
        of a conjugate-symmetric layer is a conjugate pair (two real dimensions).
    criterion : str or Criterion
        A registered name (``"last"``, ``"last-official"``, ``"last-exact"``, ``"aire"``,
        ``"uniform-hinf"``, ``"global-hinf"``, ``"magnitude"``, ``"lamp-magnitude"``, ``"random"``;
        :func:`~ssmtools.pruning.criteria.available_criteria`) or an instance.
    min_states_per_layer : int
        Every layer keeps at least this many units (every channel, with ``units="channel-state"`` on
        multi-SISO layers), so no layer is emptied. ≥ 1.
    units : {"channel-state", "state"}
        Multi-SISO layers (S4D, ``batch_shape == (H,)``): ``"channel-state"`` prunes every (channel,
        state) mode on its own; ``"state"`` prunes state n in all channels at once (scores combined by
        the criterion's ``channel_reduction``: max for H∞-type, sum for energies) — needed for physical
        removal, which requires the same number of states in every channel. No effect on MIMO layers.
    allocation : {"exact", "released"}
        ``"exact"``: remove exactly ⌊ratio·U + 1e-9⌋ of the U units (see Notes). ``"released"``: the
        released LAST code's rule, ``K = max(int(U·(100 − 100·ratio)/100), 1)`` units kept, threshold
        τ = the K-th largest score, keep ⇔ score ≥ τ (so ties at τ keep more than K; math.md §6.3).
    errors : bool or "absolute"
        ``True``: every layer's exact truncation errors ‖G − G_r‖∞ (AB13DD on the I/O-compressed error
        system) and ‖G − G_r‖₂ (closed-form Gramians), and the unpruned layer's norms for the relative
        errors. ``"absolute"``: skip the unpruned layers' H∞ norms — on wide layers (H ≫ P) the
        dominant cost, since D has full rank H — keeping the errors and the relative H2 error.
        ``False``: no norms (None in the plan).
    criterion_options : Mapping, optional
        Options for a criterion given by name (e.g. ``{"bidirectional_formula": "intended"}``).

    Returns
    -------
    PruningPlan

    Notes
    -----
    **Ranking and ties.** Units are ordered by (normalised score, raw score, layer position, unit
    index) ascending and removed from the front: among equal scores the unit of the earlier layer,
    then the lower state index (channel-major for (channel, state) units), goes first. A layer's (or
    channel's) ``min_states_per_layer`` best units are never removed. ``scope="layer"`` criteria
    (``"uniform-hinf"``) remove ⌊ratio·U_l⌋ units from every layer, the remainder up to ⌊ratio·U⌋
    going to the layers with the largest fractional parts (earlier layer first).

    **Exactness.** With equal unit sizes (always for S5, LRU, and (channel, state) units) exactly
    ⌊ratio·U + 1e-9⌋ units are removed, so the ratio is met exactly whenever ratio·U is an integer; a
    ratio that ``min_states_per_layer`` makes infeasible raises ValueError. With ``units="state"`` on
    multi-SISO layers of different widths, units are removed greedily in score order while the removed
    stored-state count stays ≤ ⌊ratio·N⌋.

    **Errors.** Removing a set S of states of a diagonal layer leaves D and the other states unchanged,
    so G − G_r is the subsystem of S alone with D = 0 (math.md §5): ``hinf_error`` is its H∞ norm
    (AB13DD; L∞ of forward plus backward part for bidirectional layers), ``h2_error`` its H2 norm,
    both exact; relative errors divide by the unpruned layer's norms (D included). Multi-SISO layers
    are block-diagonal over channels: H∞ = max over channels, H2² = sum.

    Unstable states (|λ̄| ≥ 1) give an :class:`~ssmtools.errors.UnstableSystemWarning` and are listed
    in ``plan.unstable``; criteria that score them ``inf`` always keep them.
    """
    ratio = check_ratio(ratio)
    check_choice("units", units, ("channel-state", "state"))
    check_choice("allocation", allocation, ("exact", "released"))
    check_choice("errors", errors, (True, False, "absolute"))
    if isinstance(min_states_per_layer, bool) or not isinstance(min_states_per_layer, (int, np.integer)) \
            or min_states_per_layer < 1:
        raise ValueError(f"min_states_per_layer={min_states_per_layer!r} must be an integer ≥ 1 (a layer cannot be emptied)")
    model = as_model(model)
    if len(model) == 0:
        raise ValueError("the model has no SSM layers to prune")
    crit = get_criterion(criterion, **dict(criterion_options or {}))
    reduce_layer = getattr(crit, "reduce_layer", None)  # "balanced": a reduction instead of a state selection

    layers = list(model.values())
    unit_list: list[LayerUnits] = []
    raw_list: list[np.ndarray] = []
    for layer in layers:
        with silence_unstable():
            raw = np.asarray(crit.raw_scores(layer, model=model), dtype=float)
        if raw.shape != layer.system.poles.shape:
            raise ShapeError(
                f"criterion {crit.name!r} returned scores of shape {raw.shape} for layer {layer.name!r}; expected "
                f"the poles' shape {layer.system.poles.shape}"
            )
        if np.any(np.isnan(raw)):
            raise ValueError(f"criterion {crit.name!r} returned NaN scores for layer {layer.name!r}")
        unit_info, _ = layer_units(layer, raw, crit, units)
        unit_list.append(unit_info)
        raw_list.append(raw)

    keep_units, taus = allocate(unit_list, ratio, scope=crit.scope, allocation=allocation, floor=int(min_states_per_layer))

    results = []
    removed_scores: list[float] = []
    unstable_total = 0
    for layer, raw, unit_info, kept in zip(layers, raw_list, unit_list, keep_units):
        keep = broadcast(layer, kept, units)
        scores = broadcast(layer, unit_info.scores, units)
        removed_here = unit_info.scores[~kept]
        threshold = float(removed_here.max()) if removed_here.size else None
        if removed_here.size:
            removed_scores.append(float(removed_here.max()))
        n_unstable = int(np.count_nonzero(layer.system.stability_margin <= 0))
        unstable_total += n_unstable
        hinf_err = h2_err = hinf_full = h2_full = None
        n_kept = int(np.count_nonzero(keep))
        if reduce_layer is not None:
            keep = _prefix(keep)
            if not keep.all():
                result = reduce_layer(layer, keep, exact_error=errors)
                n_kept = int(np.sum(result.n_states))
                if errors:
                    hinf_err = float(np.max(result.error_hinf))
                    h2_err = float(np.sqrt(np.sum(np.square(result.error_h2))))
            elif errors:
                hinf_err = h2_err = 0.0
            if errors:
                hinf_full, h2_full = _layer_norms(layer.system, hinf=errors is True)
        elif errors:
            hinf_full, h2_full = _layer_norms(layer.system, hinf=errors is True)
            error_system = _removed_system(layer, ~keep)
            if error_system is None:
                hinf_err, h2_err = 0.0, 0.0
            else:
                hinf_err, h2_err = _layer_norms(error_system)
        results.append(LayerPruning(
            name=layer.name, keep=keep, scores=scores, raw_scores=raw, n_total=int(keep.size),
            n_kept=n_kept, n_unstable=n_unstable, bidirectional=layer.bidirectional,
            threshold=threshold, hinf_error=hinf_err, h2_error=h2_err, hinf_norm=hinf_full, h2_norm=h2_full,
        ))
    if unstable_total:
        where = {r.name: r.n_unstable for r in results if r.n_unstable}
        warnings.warn(
            f"{unstable_total} of {sum(r.n_total for r in results)} stored states are not asymptotically stable "
            f"(|λ̄| ≥ 1) in layers {where}: their norms are infinite; see plan.unstable",
            UnstableSystemWarning, stacklevel=2,
        )
    if crit.scope != "global":
        global_threshold = None
    elif allocation == "released":
        global_threshold = taus[0]
    else:
        global_threshold = max(removed_scores) if removed_scores else None
    return PruningPlan(
        criterion=crit.name, criterion_options=crit.options(), ratio=ratio, allocation=allocation, units=units,
        min_states_per_layer=int(min_states_per_layer), threshold=global_threshold, layers=tuple(results),
    )

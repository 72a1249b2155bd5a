"""Result types of [`prune_plan`][ssmtools.pruning.plan.prune_plan]: [`LayerPruning`][ssmtools.pruning.results.LayerPruning] and [`PruningPlan`][ssmtools.pruning.results.PruningPlan], with tables and JSON.

JSON format ``ssmtools.PruningPlan`` version 2 records the reduction (name and options) beside the
criterion; version-1 files (written before reductions were separate objects) are read with the
reduction their criterion defaults to (``default_reduction``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentError, FormatError, UnknownNameError
from ..io import atomic_write, check_input_file
from .criteria import available_criteria, get_criterion
from .reductions import available_reductions, get_reduction

__all__ = ["LayerPruning", "PruningPlan", "FORMAT_VERSION"]

FORMAT_VERSION = 2
_DEFAULT_REDUCTION = "modal-truncation"


@dataclass(frozen=True, eq=False)
class LayerPruning:
    """One layer's part of a [`PruningPlan`][ssmtools.pruning.results.PruningPlan] (arrays are read-only).

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
    n_allocated : int or None
        Units the allocation gave the layer (stored states, or Hankel slots for balanced truncation). Differs
        from ``n_kept`` when the reduction's format forced a deviation: a re-diagonalised balanced truncation
        whose real poles would not fit, or unstable states kept beyond the allocation (reported in the header).
    n_padded : int
        Zero-gain filler states (B = 0, C = 0) among the ``n_kept``: a projection that leaves a channel of a
        multi-SISO layer with fewer states than its budget fills it up to exactly the budget, so the channels
        stay one rectangular array ([`fill_channels`][ssmtools.pruning.reductions.fill_channels]).
    n_unstable : int
        Stored states with |λ̄| ≥ 1 (their norms are infinite).
    n_unstable_removed : int
        How many of them the plan removes (a ratio above the stable fraction, or a criterion that does not guard
        them, such as ``"last-official"`` or ``"magnitude"``); reported in the table and the warning.
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
    n_allocated: int | None = None
    n_padded: int = 0
    n_unstable: int = 0
    n_unstable_removed: int = 0
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
        Allocation rule used (see [`prune_plan`][ssmtools.pruning.plan.prune_plan]).
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
    reduction : str
        Name of the reduction applied to every layer ([`available_reductions`][ssmtools.pruning.reductions.available_reductions]).
    reduction_options : dict
        Its options (dataclass fields).

    Notes
    -----
    ``plan.keep`` is the mapping ``layer name -> bool array`` that [`ssmtools.SSMModel.apply`][ssmtools.model.SSMModel.apply]
    takes (it also accepts the plan itself). ``str(plan)`` is a table; rich renders it as a table too;
    [`to_json`][ssmtools.pruning.results.PruningPlan.to_json] / [`from_json`][ssmtools.pruning.results.PruningPlan.from_json] round-trip it.
    """

    criterion: str
    criterion_options: dict[str, Any]
    ratio: float
    allocation: str
    units: str
    min_states_per_layer: int
    threshold: float | None
    layers: tuple[LayerPruning, ...] = field(default_factory=tuple)
    reduction: str = _DEFAULT_REDUCTION
    reduction_options: dict[str, Any] = field(default_factory=dict)

    # --------------------------------------------------------------------------- views
    @property
    def keep(self) -> dict[str, np.ndarray]:
        """``{layer name: bool array of layer.system.poles.shape}``, True = kept (input of ``SSMModel.apply``).

        Only for plans whose reduction ``selects_states`` (modal truncation). Other reductions (balanced
        truncation) write new, re-diagonalised states, and ``layers[i].keep`` marks kept slots rather
        than original states: apply such a plan with [`apply_plan`][ssmtools.pruning.plan.apply_plan] or ``last_prune``.
        """
        if not get_reduction(self.reduction, **self.reduction_options).selects_states:
            raise ArgumentError(
                f"this plan reduces layers by {self.reduction!r} (new, re-diagonalised states), so it has no state "
                "keep-mask for SSMModel.apply; use ssmtools.pruning.apply_plan(model, plan) or ssmtools.last_prune"
            )
        return {layer.name: layer.keep for layer in self.layers}

    def __getitem__(self, name: str) -> LayerPruning:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise UnknownNameError(
            f"no layer named {name!r} in this plan; layers are {[layer.name for layer in self.layers]}"
        )

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
        options = ", ".join(f"{k}={v!r}" for k, v in self.reduction_options.items())
        reduction = f"{self.reduction}({options})" if options else self.reduction
        text = (
            f"PruningPlan: criterion={crit}, reduction={reduction}, allocation={self.allocation}, units={self.units}\n"
            f"removed {self.n_removed}/{self.n_total} stored states (ratio {self.realized_ratio:.4f}, "
            f"nominal {self.ratio:.4f}), threshold {threshold}"
        )
        if self.unstable:
            text += f"\nunstable states (|λ̄| ≥ 1, infinite norms): {self.unstable}"
            removed = {layer.name: layer.n_unstable_removed for layer in self.layers if layer.n_unstable_removed}
            if removed:
                text += f"; removed by this plan: {removed}"
        forced = {
            layer.name: (layer.n_allocated, layer.n_kept)
            for layer in self.layers
            if layer.n_allocated is not None and layer.n_allocated != layer.n_kept
        }
        if forced:
            text += f"\nthe reduction's format forced a deviation from the allocation (allocated, kept): {forced}"
        padded = {layer.name: layer.n_padded for layer in self.layers if layer.n_padded}
        if padded:
            text += f"\nzero-gain filler states (channels filled to their budget of stored states): {padded}"
        return text

    _COLUMNS = ("layer", "kept/total", "removed", "threshold", "‖ΔG‖∞", "rel ∞", "‖ΔG‖₂", "rel 2", "unstable")

    def _rows(self) -> list[tuple[str, ...]]:
        def num(value: float | None) -> str:
            return "-" if value is None else f"{value:.4g}"

        rows: list[tuple[str, ...]] = []
        for layer in self.layers:
            removed = layer.n_removed / layer.n_total if layer.n_total else 0.0
            rows.append(
                (
                    layer.name + (" (bidir)" if layer.bidirectional else ""),
                    f"{layer.n_kept}/{layer.n_total}",
                    f"{100 * removed:.1f}%",
                    num(layer.threshold),
                    num(layer.hinf_error),
                    num(layer.relative_hinf_error),
                    num(layer.h2_error),
                    num(layer.relative_h2_error),
                    str(layer.n_unstable)
                    + (f" ({layer.n_unstable_removed} removed)" if layer.n_unstable_removed else ""),
                )
            )
        return rows

    def __str__(self) -> str:
        rows = [self._COLUMNS, *self._rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self._COLUMNS))]
        lines = [
            "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return self._header() + "\n" + "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"PruningPlan(criterion={self.criterion!r}, reduction={self.reduction!r}, ratio={self.ratio!r}, removed={self.n_removed}/"
            f"{self.n_total}, layers={len(self.layers)})"
        )

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
        """A JSON-compatible dict (non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"``).

        Returns
        -------
        dict
            Format ``"ssmtools.PruningPlan"``, version ``FORMAT_VERSION``.
        """
        return {
            "format": "ssmtools.PruningPlan",
            "version": FORMAT_VERSION,
            "criterion": self.criterion,
            "criterion_options": _encode(self.criterion_options),
            "reduction": self.reduction,
            "reduction_options": _encode(self.reduction_options),
            "ratio": _encode(self.ratio),
            "allocation": self.allocation,
            "units": self.units,
            "min_states_per_layer": self.min_states_per_layer,
            "threshold": _encode(self.threshold),
            "layers": [
                {
                    "name": layer.name,
                    "keep": _encode_array(layer.keep),
                    "scores": _encode_array(layer.scores),
                    "raw_scores": _encode_array(layer.raw_scores),
                    "n_total": layer.n_total,
                    "n_kept": layer.n_kept,
                    "n_allocated": layer.n_allocated,
                    "n_padded": layer.n_padded,
                    "n_unstable": layer.n_unstable,
                    "n_unstable_removed": layer.n_unstable_removed,
                    "bidirectional": layer.bidirectional,
                    **{
                        key: _encode(getattr(layer, key))
                        for key in ("threshold", "hinf_error", "h2_error", "hinf_norm", "h2_norm")
                    },
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
        """Inverse of [`to_dict`][ssmtools.pruning.results.PruningPlan.to_dict]; reads format versions 1 and 2.

        Parameters
        ----------
        data : Mapping
            A dict written by [`to_dict`][ssmtools.pruning.results.PruningPlan.to_dict] (or parsed from [`to_json`][ssmtools.pruning.results.PruningPlan.to_json]).

        Returns
        -------
        PruningPlan
        """
        if not isinstance(data, Mapping) or data.get("format") != "ssmtools.PruningPlan":
            raise FormatError(
                "not a serialised PruningPlan: expected a JSON object with format='ssmtools.PruningPlan', got "
                + (f"format={data.get('format')!r}" if isinstance(data, Mapping) else f"a JSON {type(data).__name__}")
            )
        version = data.get("version", 1)
        if version not in (1, FORMAT_VERSION):
            raise FormatError(
                f"PruningPlan format version {version!r} is not supported (this ssmtools reads versions 1 and "
                f"{FORMAT_VERSION}); upgrade ssmtools"
            )
        plan = _Fields(data, "the plan")
        if version == 1:  # no reduction recorded: the one the criterion defaults to
            name = plan.get("criterion", str)
            known = name in available_criteria()
            reduction = get_criterion(name).default_reduction if known else _DEFAULT_REDUCTION
            reduction_options: dict[str, Any] = {}
        else:
            reduction, reduction_options = plan.get("reduction", str), dict(plan.get("reduction_options", dict))
        entries = plan.get("layers", list)
        exact = reduction in available_reductions() and get_reduction(reduction).selects_states  # n_kept = Σ keep
        layers = tuple(_layer_from_dict(_Fields(entry, f"layers[{i}]"), exact) for i, entry in enumerate(entries))
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise FormatError(f"the plan names a layer twice: {sorted({n for n in names if names.count(n) > 1})}")
        ratio = plan.get("ratio", float)
        if not 0 <= ratio < 1:
            raise FormatError(f"the plan's ratio {ratio!r} is not in [0, 1)")
        return cls(
            criterion=plan.get("criterion", str),
            criterion_options=dict(plan.get("criterion_options", dict)),
            ratio=ratio,
            allocation=plan.get("allocation", str),
            units=plan.get("units", str),
            min_states_per_layer=plan.get("min_states_per_layer", int),
            threshold=plan.get("threshold", float, optional=True),
            layers=layers,
            reduction=reduction,
            reduction_options=reduction_options,
        )

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> PruningPlan:
        """Read a plan from JSON text or from a file path.

        A string whose first non-blank character is ``{``, ``[`` or ``"`` (or that is ``null``/``true``/``false``)
        is JSON text, never a file name; anything else is a path.

        Parameters
        ----------
        source : str or os.PathLike
            JSON text or a path to a file written by [`to_json`][ssmtools.pruning.results.PruningPlan.to_json].

        Returns
        -------
        PruningPlan

        Raises
        ------
        FormatError
            Invalid JSON, not a plan, a missing key, a value of the wrong type, or counts that contradict the
            layer's keep mask; the message names the file (or "the JSON text"), the layer and the key.
        """
        if isinstance(source, str) and (source.lstrip()[:1] in ("{", "[", '"') or source.strip() in _JSON_WORDS):
            text, where = str(source), "the JSON text"  # JSON text, never taken for a file name
        else:
            path = os.fspath(source)
            check_input_file(path)
            text, where = Path(path).read_text(encoding="utf-8", errors="replace"), str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(
                f"{where}: is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            ) from None
        try:
            return cls.from_dict(data)
        except FormatError as exc:
            raise FormatError(f"{where}: {exc}") from None


class _Fields:
    """Typed access to the keys of one JSON object of a plan; FormatError naming the key and where it is."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise FormatError(f"{where} must be a JSON object, got {type(data).__name__}")
        self.data, self.where = data, where

    def get(self, key: str, kind: type, *, optional: bool = False, default: Any = None) -> Any:
        if key not in self.data:
            if optional or default is not None:
                return default
            raise FormatError(f"{self.where} lacks the key {key!r}; is the plan complete?")
        value = _decode(self.data[key])
        if value is None and optional:
            return None
        ok = {
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            int: isinstance(value, int) and not isinstance(value, bool),
        }.get(kind, isinstance(value, kind))
        if not ok:
            raise FormatError(
                f"{self.where}: {key!r} must be a {kind.__name__}, got {type(value).__name__} {value!r:.40}"
            )
        return float(value) if kind is float else value

    def array(self, key: str, dtype: type) -> np.ndarray:
        entry = _Fields(self.data.get(key), f"{self.where}.{key}") if key in self.data else None
        if entry is None:
            raise FormatError(f"{self.where} lacks the key {key!r}; is the plan complete?")
        shape, data = entry.get("shape", list), entry.get("data", list)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise FormatError(f"{entry.where}: shape {shape!r} must be a list of non-negative integers")
        if len(data) != math.prod(shape):
            raise FormatError(
                f"{entry.where}: {len(data)} values for shape {tuple(shape)} ({math.prod(shape)} expected)"
            )
        values = [_decode(v) for v in data]
        kind: tuple[type, ...] = (bool,) if dtype is bool else (int, float)
        if not all(isinstance(v, kind) and (dtype is bool or not isinstance(v, bool)) for v in values):
            raise FormatError(f"{entry.where}: values must all be {'booleans' if dtype is bool else 'numbers'}")
        return np.asarray(values, dtype=dtype).reshape(tuple(shape))


def _layer_from_dict(entry: _Fields, exact_kept: bool) -> LayerPruning:
    """One layer of a plan, its counts checked against its mask (``n_kept`` = kept states when ``exact_kept``)."""
    keep = entry.array("keep", bool)
    scores, raw = entry.array("scores", float), entry.array("raw_scores", float)
    name = entry.get("name", str)
    where = f"{entry.where} (layer {name!r})"
    if scores.shape != keep.shape or raw.shape != keep.shape:
        raise FormatError(f"{where}: keep {keep.shape}, scores {scores.shape}, raw_scores {raw.shape} must agree")
    counts = {key: entry.get(key, int, default=0 if key == "n_unstable_removed" else None) for key in _COUNTS}
    n_total, n_kept, n_unstable, n_removed = (counts[key] for key in _COUNTS)
    problems = []
    if n_total != keep.size:
        problems.append(f"n_total={n_total} but keep has {keep.size} states")
    if exact_kept and n_kept != int(keep.sum()):
        problems.append(f"n_kept={n_kept} but keep marks {int(keep.sum())} states kept")
    if not 0 <= n_removed <= n_unstable <= n_total:
        problems.append(f"need 0 ≤ n_unstable_removed={n_removed} ≤ n_unstable={n_unstable} ≤ n_total={n_total}")
    if not 0 <= n_kept:
        problems.append(f"n_kept={n_kept} is negative")
    n_allocated = entry.get("n_allocated", int, optional=True)
    if n_allocated is not None and not 0 <= n_allocated <= n_total:
        problems.append(f"need 0 ≤ n_allocated={n_allocated} ≤ n_total={n_total}")
    n_padded = entry.get("n_padded", int, default=0)
    if not 0 <= n_padded <= n_kept:
        problems.append(f"need 0 ≤ n_padded={n_padded} ≤ n_kept={n_kept}")
    if problems:
        raise FormatError(f"{where}: inconsistent counts: {'; '.join(problems)}")
    return LayerPruning(
        name=name,
        keep=keep,
        scores=scores,
        raw_scores=raw,
        n_total=n_total,
        n_kept=n_kept,
        n_allocated=n_allocated,
        n_padded=n_padded,
        n_unstable=n_unstable,
        n_unstable_removed=n_removed,
        bidirectional=entry.get("bidirectional", bool),
        **{
            key: entry.get(key, float, optional=True)
            for key in ("threshold", "hinf_error", "h2_error", "hinf_norm", "h2_norm")
        },
    )


_COUNTS = ("n_total", "n_kept", "n_unstable", "n_unstable_removed")
_JSON_WORDS = ("null", "true", "false")


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
    def write(file: Any) -> None:
        file.write(text.encode("utf-8"))

    atomic_write(path, write)

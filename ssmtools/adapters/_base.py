"""The small protocol every family adapter follows, and the helpers they share.

An adapter turns the leaves of one layer (grouped by prefix, see ``_tree.py``) into an
:class:`~ssmtools.model.SSMLayer` and writes pruned or replaced layers back as new leaves with the
same names, dtypes and container types. Checking is strict: a missing key, a wrong shape or a
complex/real mix-up raises :class:`~ssmtools.errors.FormatError` naming the source and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import FormatError
from ..model import SSMLayer
from ._tree import Group, join_key, like, to_numpy


@dataclass
class Context:
    """The flattened parameters of one tree: leaves, their dict paths, leaves grouped by prefix."""

    leaves: dict[str, Any]
    paths: dict[str, tuple[str, ...]]
    groups: dict[str, Group]
    where: str

    def array(self, key: str) -> np.ndarray:
        """Leaf ``key`` as a numpy array."""
        return to_numpy(self.leaves[key], key=key, where=self.where)

    def error(self, key: str, message: str) -> FormatError:
        """A FormatError naming the source and the key."""
        return FormatError(f"{self.where}: {key!r} {message}")

    def new(self, key: str, values: np.ndarray) -> Any:
        """``values`` in the container/dtype of leaf ``key``."""
        return like(self.leaves[key], values)


class Adapter:
    """Base class: subclasses set ``family``, ``defaults`` and implement the four methods."""

    family: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]

    def config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults updated with ``config``; unknown settings raise TypeError listing the valid ones."""
        unknown = sorted(set(config) - set(self.defaults))
        if unknown:
            raise TypeError(
                f"unknown setting(s) {unknown} for family {self.family!r}; valid settings: {sorted(self.defaults)}"
            )
        out = dict(self.defaults)
        out.update(config)
        return out

    def resolve_config(self, ctx: Context, prefixes: list[str], config: dict[str, Any]) -> dict[str, Any]:
        """Fill settings inferred from the whole tree (e.g. a layout), so that re-reading written
        parameters (whose shapes may have become ambiguous) gives the same layers. Default: unchanged."""
        return config

    def find(self, groups: Mapping[str, Group]) -> list[str]:  # pragma: no cover - abstract
        """Prefixes of the layers of this family (by anchor parameter names only)."""
        raise NotImplementedError

    def read_layer(self, ctx: Context, prefix: str, config: dict[str, Any]) -> SSMLayer:  # pragma: no cover
        """The layer at ``prefix``; FormatError on missing keys, bad shapes or dtypes."""
        raise NotImplementedError

    def prune_layer(
        self, ctx: Context, layer: SSMLayer, keep: np.ndarray, mask: bool, config: dict[str, Any]
    ) -> dict[str, Any]:  # pragma: no cover
        """New leaves (full key -> value) keeping the states where ``keep`` is True."""
        raise NotImplementedError

    def replace_layer(
        self, ctx: Context, layer: SSMLayer, new: SSMLayer, config: dict[str, Any]
    ) -> dict[str, Any]:  # pragma: no cover
        """New leaves (full key -> value) that realise ``new`` in this family's parameterisation."""
        raise NotImplementedError


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
            key, f"is complex ({array.dtype}) but this family stores it as real numbers{hint}; "
            "complex dtype mismatch: is this another family (s5 vs s5-pytorch, lru layouts)?",
        )


def check_complex(ctx: Context, key: str, array: np.ndarray) -> None:
    """FormatError if a parameter stored as a complex tensor is real."""
    if not np.iscomplexobj(array):
        raise ctx.error(
            key, f"is real ({array.dtype}) but this family stores it as a complex tensor; complex dtype mismatch: "
            "is this another family (s5 vs s5-pytorch, lru layouts)?",
        )


def real_pair(array: np.ndarray) -> np.ndarray:
    """Complex view of a real ``(..., 2)`` array (real, imaginary)."""
    return array[..., 0] + 1j * array[..., 1]


def to_pair(values: np.ndarray) -> np.ndarray:
    """Real ``(..., 2)`` array of a complex array."""
    values = np.asarray(values, dtype=complex)
    return np.stack([values.real, values.imag], axis=-1)


def diagonal_of(D: np.ndarray, where: str) -> np.ndarray:
    """The diagonal of a (…, p, p) feedthrough that must be diagonal; ValueError otherwise."""
    diag = np.diagonal(D, axis1=-2, axis2=-1)
    off = D - diag[..., None] * np.eye(D.shape[-1])
    scale = max(1.0, float(np.max(np.abs(D), initial=0.0)))
    if D.shape[-1] != D.shape[-2] or np.max(np.abs(off), initial=0.0) > 1e-12 * scale:
        raise ValueError(
            f"{where}: the family stores a diagonal feedthrough D (one value per channel) but the replacement "
            "system's D is not diagonal; keep D unchanged when reducing (balanced truncation does)"
        )
    return diag.real

"""Parameter trees: flatten a nested tree / state dict, group leaves by layer, write leaves back.

A *tree* is what a checkpoint holds: a torch state dict (flat, ``"."``-joined keys), a flax
parameter tree (nested dicts), a ``.npz``/safetensors dict (flat, keys as written), or any mix
(a nested dict whose inner level is a state dict). ``flatten`` joins nested levels with ``"/"``;
a leaf's *group* (the layer prefix) is everything before the last ``"/"`` or ``"."``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from ..errors import FormatError, UnknownNameError

SEPARATORS = ("/", ".")
MAX_DEPTH = 64
"""Deepest nesting of a parameter tree accepted (real checkpoints nest a few levels; a deeper tree is refused with a
FormatError rather than exhausting the interpreter's stack)."""


def flatten(tree: Any) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """Leaves of a nested mapping keyed by ``"/"``-joined paths, and each key's path of dict keys.

    Parameters
    ----------
    tree : Mapping
        A state dict (flat, dotted keys) or a nested parameter tree (flax).

    Returns
    -------
    leaves : dict[str, Any]
        Key -> leaf (array or tensor).
    paths : dict[str, tuple of str]
        Key -> the dict keys leading to the leaf.
    """
    if not isinstance(tree, Mapping):
        raise FormatError(
            f"expected a parameter tree (a dict / state dict of arrays), got {type(tree).__name__}; pass a path, "
            "a torch state_dict(), a flax params dict or a dict of numpy arrays"
        )
    leaves: dict[str, Any] = {}
    paths: dict[str, tuple[str, ...]] = {}

    stack: list[tuple[Any, tuple[str, ...]]] = [(iter(tree.items()), ())]
    while stack:  # depth-first in key order, iterative and depth-limited: a hostile file cannot exhaust the stack
        items, path = stack[-1]
        entry = next(items, None)
        if entry is None:
            stack.pop()
            continue
        key, value = entry
        sub = path + (str(key),)
        if isinstance(value, Mapping):
            if len(sub) > MAX_DEPTH:
                raise FormatError(
                    f"the parameter tree is nested more than {MAX_DEPTH} levels deep (at {'/'.join(sub[:3])}/...); "
                    "this is not a model checkpoint"
                )
            stack.append((iter(value.items()), sub))
        else:
            name = "/".join(sub)
            leaves[name] = value
            paths[name] = sub
    return leaves, paths


def split_key(key: str) -> tuple[str, str, str]:
    """``(prefix, separator, leaf)`` split at the last ``"/"`` or ``"."`` (prefix ``""`` at the root)."""
    cut = max(key.rfind(sep) for sep in SEPARATORS)
    if cut < 0:
        return "", "", key
    return key[:cut], key[cut], key[cut + 1 :]


def join_key(prefix: str, sep: str, leaf: str) -> str:
    """Inverse of ``split_key``."""
    return f"{prefix}{sep or '.'}{leaf}" if prefix else leaf


@dataclass
class Group:
    """The leaves sharing one prefix: ``keys[leaf name] = full key``."""

    prefix: str
    sep: str
    keys: dict[str, str] = field(default_factory=dict)

    def parent(self) -> tuple[str, str]:
        """``(prefix, sep)`` of the enclosing module (``("", "")`` at the root)."""
        prefix, sep, _ = split_key(self.prefix)
        return prefix, sep


def group_leaves(leaves: Mapping[str, Any]) -> dict[str, Group]:
    """Group full keys by their prefix."""
    groups: dict[str, Group] = {}
    for key in leaves:
        prefix, sep, leaf = split_key(key)
        group = groups.setdefault(prefix, Group(prefix, sep))
        group.keys[leaf] = key
    return groups


def to_numpy(value: Any, *, key: str, where: str) -> np.ndarray:
    """A leaf as a numpy array (torch tensors, jax arrays, lists); FormatError naming the key otherwise."""
    if hasattr(value, "detach"):
        if getattr(getattr(value, "device", None), "type", None) == "meta":
            raise FormatError(
                f"{where}: parameter {key!r} is a meta-device tensor (shape {tuple(value.shape)}, no data): the "
                "checkpoint was saved from a model that was never materialised; save it after loading real weights"
            )
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise FormatError(f"{where}: parameter {key!r} could not be read as an array ({exc})") from exc
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)):
        raise FormatError(f"{where}: parameter {key!r} has non-numeric dtype {array.dtype}")
    return array


def like(original: Any, values: np.ndarray) -> Any:
    """``values`` in the container type and dtype of ``original`` (torch tensor or numpy array)."""
    if hasattr(original, "detach"):
        import torch

        complex_target = original.dtype.is_complex
        values = np.asarray(values)
        if not complex_target and np.iscomplexobj(values):
            raise FormatError(f"internal error: complex values for real tensor of dtype {original.dtype}")
        tensor = torch.as_tensor(np.array(values, order="C", copy=True)).to(
            dtype=original.dtype, device=original.device
        )
        return tensor
    dtype = np.asarray(original).dtype
    values = np.asarray(values)
    if not np.issubdtype(dtype, np.complexfloating) and np.iscomplexobj(values):
        raise FormatError(f"internal error: complex values for real array of dtype {dtype}")
    return np.ascontiguousarray(values.astype(dtype))


def replace_leaves(tree: Mapping, paths: Mapping[str, tuple[str, ...]], updates: Mapping[str, Any]) -> Any:
    """A copy of ``tree`` (dicts copied along the way, other leaves shared) with some leaves replaced."""
    out = _copy_dicts(tree)
    for key, value in updates.items():
        path = paths[key]
        node = out
        for part in path[:-1]:
            node = node[_original_key(node, part)]
        node[_original_key(node, path[-1])] = value
    return out


def _copy_dicts(tree: Mapping) -> Any:
    items = [(key, _copy_dicts(value) if isinstance(value, Mapping) else value) for key, value in tree.items()]
    out: Any
    try:
        out = cast(Any, type(tree))(items)  # keeps OrderedDict (torch state dicts) and plain dicts
    except Exception:
        out = dict(items)
    if hasattr(tree, "_metadata"):  # torch state-dict version metadata
        out._metadata = tree._metadata
    return out


def _original_key(node: Mapping, part: str) -> Any:
    if part in node:
        return part
    for key in node:  # non-string keys (ints in a list-like state dict)
        if str(key) == part:
            return key
    raise UnknownNameError(part)  # pragma: no cover - paths come from flatten

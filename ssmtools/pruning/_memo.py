"""A small bounded memo keyed by the parameters of diagonal systems (deterministic results computed once)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..systems import DiagonalSSM

T = TypeVar("T")


def system_key(systems: tuple[DiagonalSSM, ...], options: tuple[Any, ...]) -> bytes:
    """SHA-256 of the systems' conventions, the shapes, dtypes and bytes of poles, B, C, D, and the options'
    ``repr`` (the shapes keep two systems whose arrays concatenate to the same bytes apart)."""
    arrays = [(s.poles, s.B, s.C, s.D) for s in systems]
    layout = [[(a.shape, a.dtype.str) for a in group] for group in arrays]
    conventions = [(s.output, s.dt, s.state_includes_input) for s in systems]
    digest = hashlib.sha256(repr((options, conventions, layout)).encode())
    for group in arrays:
        for array in group:
            digest.update(array.tobytes())
    return digest.digest()


class Memo(Generic[T]):
    """The last ``size`` results of a deterministic computation, oldest dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._store: dict[bytes, T] = {}

    def get(self, key: bytes, compute: Callable[[], T]) -> T:
        """The remembered result for ``key``, or ``compute()`` remembered."""
        if key not in self._store:
            if len(self._store) >= self.size:
                self._store.pop(next(iter(self._store)))
            self._store[key] = compute()
        return self._store[key]

    def clear(self) -> None:
        """Forget every result."""
        self._store.clear()

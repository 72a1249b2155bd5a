"""A small bounded memo keyed by the parameters of diagonal systems (deterministic results computed once)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..systems import DiagonalSSM

T = TypeVar("T")


def system_key(systems: tuple[DiagonalSSM, ...], options: tuple[Any, ...]) -> bytes:
    """SHA-256 of the systems' conventions, poles, B, C, D and the options' ``repr``."""
    digest = hashlib.sha256(repr((options, [(s.output, s.dt, s.state_includes_input) for s in systems])).encode())
    for system in systems:
        for array in (system.poles, system.B, system.C, system.D):
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

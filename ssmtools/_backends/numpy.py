"""The NumPy backend (host, float64/complex128): the default of every ``backend=`` argument."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import OptionError

NAME = "numpy"


def check_device(device: Any) -> None:
    """NumPy runs on the host only: ``device`` must be ``None``."""
    if device is not None:
        raise OptionError(f"device={device!r} needs backend='torch'; NumPy runs on the host only")


def asarrays(*arrays: np.ndarray, device: Any = None, dtype: str = "float64") -> list[np.ndarray]:
    """Complex128 copies (``dtype`` is ignored: NumPy always computes in double precision)."""
    return [np.asarray(a, dtype=complex) for a in arrays]


def to_numpy(array: Any) -> np.ndarray:
    """Identity."""
    return np.asarray(array)


def from_numpy(array: np.ndarray, *, device: Any = None, dtype: str = "float64") -> Any:
    """0-d arrays become NumPy scalars; others stay arrays."""
    return array[()] if array.ndim == 0 else array

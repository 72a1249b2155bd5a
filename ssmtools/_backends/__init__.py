"""Array backends: where a computation runs, and in which namespace its results come back.

**The one rule.** A function with a ``backend=`` argument converts its inputs once, with
``get_backend`` ``(backend).asarrays``, runs its formulas (written once, in ``ssmtools._kernels``,
against the array namespace of their inputs) in that library, and returns arrays of that library:
``"numpy"`` gives NumPy arrays (0-d results as NumPy scalars), ``"torch"`` gives torch tensors on
``device`` (CPU when ``None``). Stages that exist only on the host (SLICOT, golden-section
bookkeeping) say so in the function's docstring.

**Adding a backend** (CuPy, JAX, ...) is one module in this package defining ``NAME`` and the
four functions of ``ArrayBackend`` (``asarrays``, ``to_numpy``, ``from_numpy``, ``check_device``);
modules are discovered automatically. Third-party imports happen inside those functions, so
discovering a backend never imports its library.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from ..errors import OptionError

Backend = Literal["numpy", "torch"]
Precision = Literal["float64", "float32"]


@dataclass(frozen=True)
class ArrayBackend:
    """One array library, as the functions of its module in ``ssmtools._backends``."""

    name: str
    module: ModuleType

    def asarrays(self, *arrays: np.ndarray, device: Any = None, dtype: Precision = "float64") -> list[Any]:
        """NumPy arrays → this library's complex arrays on ``device``."""
        return list(self.module.asarrays(*arrays, device=device, dtype=dtype))

    def to_numpy(self, array: Any) -> np.ndarray:
        """An array of this library → NumPy on the host."""
        return np.asarray(self.module.to_numpy(array))

    def from_numpy(self, array: np.ndarray, *, device: Any = None, dtype: Precision = "float64") -> Any:
        """A real NumPy result → this library's (real) array on ``device``; 0-d NumPy stays a scalar."""
        return self.module.from_numpy(np.asarray(array), device=device, dtype=dtype)

    def check_device(self, device: Any) -> None:
        """Raise unless ``device`` is valid for this library."""
        self.module.check_device(device)


def _discover() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "NAME", None)
        if isinstance(name, str):
            found[name] = module
    return found


_BACKENDS: dict[str, ModuleType] = _discover()


def available_backends() -> list[str]:
    """Names accepted by ``backend=``."""
    return sorted(_BACKENDS)


def get_backend(name: str, device: Any = None) -> ArrayBackend:
    """The backend called ``name``, after checking ``device`` for it.

    Parameters
    ----------
    name : str
        One of ``available_backends``.
    device : optional
        Device for the library (``None``: its default; NumPy accepts only ``None``).

    Returns
    -------
    ArrayBackend
    """
    if name not in _BACKENDS:
        raise OptionError(f"backend={name!r} is not valid; choose one of {available_backends()}")
    backend = ArrayBackend(name, _BACKENDS[name])
    backend.check_device(device)
    return backend

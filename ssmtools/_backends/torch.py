"""PyTorch versions of the bulk kernels (CPU or GPU), imported lazily.

The formulas themselves live once, in ``ssmtools._kernels``, written against the array namespace
of their inputs; this module only converts arrays to tensors on a device, holds the one
torch-specific stage of the diagonal H∞ algorithm (``sigma_max_circle``) and reports a
missing torch. Computations
run in float64/complex128 unless ``dtype="float32"`` is requested (complex64; relative error
about 1e-6 for well-separated poles and up to ~1e-7/margin near the stability boundary, because
1 − |λ| loses digits).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..errors import ArgumentError, missing_dependency

Precision = Literal["float64", "float32"]
NAME = "torch"


def torch_module():
    """Import torch or raise an ImportError naming the extra."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise missing_dependency("torch", 'backend="torch"') from exc
    return torch


def _dtypes(dtype: Precision):
    torch = torch_module()
    if dtype == "float64":
        return torch.float64, torch.complex128
    if dtype == "float32":
        return torch.float32, torch.complex64
    raise ArgumentError(f"dtype={dtype!r} is not valid; choose 'float64' (default) or 'float32'")


def as_tensors(*arrays: np.ndarray, device: Any = None, dtype: Precision = "float64") -> list:
    """NumPy arrays → complex torch tensors on ``device`` (``None`` = CPU)."""
    torch = torch_module()
    _, complex_dtype = _dtypes(dtype)
    return [torch.as_tensor(np.array(a, dtype=complex)).to(device=device, dtype=complex_dtype) for a in arrays]


def check_device(device: Any) -> None:
    """Any torch device (``None``: CPU); torch itself must be importable."""
    torch = torch_module()
    if device is not None:
        torch.device(device)  # raises RuntimeError for an unknown device string


def asarrays(*arrays: np.ndarray, device: Any = None, dtype: Precision = "float64") -> list:
    """The backend seam's conversion: see ``as_tensors``."""
    return as_tensors(*arrays, device=device, dtype=dtype)


def from_numpy(array: np.ndarray, *, device: Any = None, dtype: Precision = "float64"):
    """A real host result → a real tensor on ``device`` (float64, or float32 on request)."""
    torch = torch_module()
    real_dtype, _ = _dtypes(dtype)
    return torch.as_tensor(np.asarray(array, dtype=float)).to(device=device, dtype=real_dtype)


def sigma_max_circle(C, B, D, phi):
    """σ_max of ``G_k = C diag(φ_k) B + D`` for a stack of resolvent rows ``phi`` (K, N), shape (K,).

    The exact-evaluation stage of the diagonal H∞ algorithm (``ssmtools._hinf_diagonal``): one
    batched GEMM forms every G_k, then the largest eigenvalue of the smaller Gram matrix.
    """
    torch = torch_module()
    G = torch.einsum("pn,kn,nm->kpm", C, phi, B) + D
    p, m = D.shape
    Gh = G.conj().transpose(-1, -2)
    gram = Gh @ G if m <= p else G @ Gh
    return torch.linalg.eigvalsh(gram)[:, -1].clamp(min=0.0).sqrt()


def to_numpy(tensor) -> np.ndarray:
    """Tensor → NumPy array on the host."""
    return tensor.detach().cpu().numpy()

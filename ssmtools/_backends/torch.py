"""PyTorch versions of the bulk kernels (CPU or GPU), imported lazily.

The names mirror ``ssmtools._kernels`` and each function states the same formula (math.md
sections quoted); the NumPy kernels are the reference the tests compare against. Computations
run in float64/complex128 unless ``dtype="float32"`` is requested (complex64; relative error
about 1e-6 for well-separated poles and up to ~1e-7/margin near the stability boundary, because
1 − |λ| loses digits).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

Precision = Literal["float64", "float32"]


def torch_module():
    """Import torch or raise an ImportError naming the extra."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError(
            'backend="torch" needs PyTorch: pip install "ssmtools[torch]" (install the torch build for your '
            "platform first, e.g. pip install torch==2.13.0 for the CPU build)"
        ) from exc
    return torch


def _dtypes(dtype: Precision):
    torch = torch_module()
    if dtype == "float64":
        return torch.float64, torch.complex128
    if dtype == "float32":
        return torch.float32, torch.complex64
    raise ValueError(f"dtype={dtype!r} is not valid; choose 'float64' (default) or 'float32'")


def as_tensors(*arrays: np.ndarray, device: Any = None, dtype: Precision = "float64") -> list:
    """NumPy arrays → complex torch tensors on ``device`` (``None`` = CPU)."""
    torch = torch_module()
    _, complex_dtype = _dtypes(dtype)
    return [torch.as_tensor(np.array(a, dtype=complex)).to(device=device, dtype=complex_dtype) for a in arrays]


def stability_margin(lam, *, discrete: bool):
    """``1 − |λ|`` (DT) or ``−Re λ`` (CT)."""
    return 1.0 - lam.abs() if discrete else -lam.real


def single_pole_gain(B, C):
    """``s_i = ‖c_i‖₂‖b_i‖₂``, shape (..., n)."""
    torch = torch_module()
    return torch.linalg.vector_norm(C, dim=-2) * torch.linalg.vector_norm(B, dim=-1)


def _divide_where_stable(numerator, margin, denominator):
    torch = torch_module()
    stable = margin > 0
    safe = torch.where(stable, denominator, torch.ones_like(denominator))
    return torch.where(stable, numerator / safe, torch.full_like(numerator, float("inf")))


def single_pole_hinf(lam, gain, *, discrete: bool):
    """DT ``s/(1 − |λ|)``, CT ``s/|Re λ|`` (math.md §3.1)."""
    margin = stability_margin(lam, discrete=discrete)
    return _divide_where_stable(gain, margin, margin)


def single_pole_h2_squared(lam, gain, *, discrete: bool):
    """DT ``s²/(1 − |λ|²)``, CT ``s²/(2|Re λ|)`` (math.md §3.1)."""
    margin = stability_margin(lam, discrete=discrete)
    denominator = 1.0 - lam.abs() ** 2 if discrete else -2.0 * lam.real
    return _divide_where_stable(gain**2, margin, denominator)


def pair_h2_squared(lam, B, C, *, discrete: bool):
    """Exact conjugate-pair H2²: DT ``2s²/(1 − r²) + 2Re((cᵀc)(bᵀb)/(1 − λ²))``, CT
    ``s²/|Re λ| − Re((cᵀc)(bᵀb)/λ)`` (math.md §3.3)."""
    torch = torch_module()
    gain2 = single_pole_gain(B, C) ** 2
    cross = torch.einsum("...pn,...pn->...n", C, C) * torch.einsum("...nm,...nm->...n", B, B)
    margin = stability_margin(lam, discrete=discrete)
    stable = margin > 0
    safe = torch.where(stable, lam, torch.full_like(lam, -0.5))
    if discrete:
        value = 2.0 * gain2 / (1.0 - safe.abs() ** 2) + 2.0 * (cross / (1.0 - safe**2)).real
    else:
        value = gain2 / safe.real.abs() - (cross / safe).real
    return torch.where(stable, value.clamp(min=0.0), torch.full_like(value, float("inf")))


def diagonal_controllability_gramian(lam, B, *, discrete: bool):
    """DT ``P_ij = (BBᴴ)_ij/(1 − λ_i conj λ_j)``; CT ``−(BBᴴ)_ij/(λ_i + conj λ_j)`` (math.md §4.1)."""
    BBh = B @ B.conj().transpose(-1, -2)
    li, lj = lam[..., :, None], lam.conj()[..., None, :]
    return BBh / (1.0 - li * lj) if discrete else -BBh / (li + lj)


def h2_squared_from_gramian(P, C, D, *, feedthrough_cross):
    """``tr(C P Cᴴ) + ‖D‖²_F [+ 2 Re tr(Dᴴ M0)]`` (math.md §4.2), shape (...,)."""
    ChC = C.conj().transpose(-1, -2) @ C
    value = (P * ChC.transpose(-1, -2)).sum(dim=(-1, -2)).real
    value = value + (D.abs() ** 2).sum(dim=(-1, -2))
    if feedthrough_cross is not None:
        value = value + 2.0 * (D.conj() * feedthrough_cross).sum(dim=(-1, -2)).real
    return value.clamp(min=0.0)


def frequency_variable(omega, *, discrete: bool):
    """z = e^{jω} (DT) or s = jω (CT)."""
    return (1j * omega).exp() if discrete else 1j * omega


def diagonal_freqresp(lam, B, C, D, omega, *, discrete: bool, real_output: bool, state_includes_input: bool):
    """``G = [z]·C(zI − Λ)⁻¹B + D`` (real output: ½[… + conj terms]), shape (..., k, p, m) (math.md §1)."""
    torch = torch_module()
    z = frequency_variable(omega.to(lam.dtype), discrete=discrete)
    resolvent = 1.0 / (z[:, None] - lam[..., None, :])
    G = torch.einsum("...pn,...kn,...nm->...kpm", C, resolvent, B)
    if real_output:
        resolvent_conj = 1.0 / (z[:, None] - lam.conj()[..., None, :])
        G = 0.5 * (G + torch.einsum("...pn,...kn,...nm->...kpm", C.conj(), resolvent_conj, B.conj()))
    if state_includes_input:
        G = G * z[:, None, None]
    return G + D[..., None, :, :]


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

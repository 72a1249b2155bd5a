"""The layers of a live torch module as :class:`TorchSSM` systems in the graph of the module's own parameters.

The adapters' read paths (``ssmtools.adapters``: s5-pytorch, LRU, minimal S4D) written on tensors, so a norm of
the returned system differentiates through the parameterisation and the discretisation of the layer:

- ``s5-pytorch`` (``S5SSM``, the ``seq`` of ``S5``/``S5Block``): ``Λ = Lambda``, ``Δ = step_scale·exp(log_step)``,
  ``(λ̄, B̄)`` = ZOH or bilinear of ``(Λ, B[..., 0] + i·B[..., 1])``, ``C``, ``D = diag(D)``;
- ``LRU-pytorch`` (``LRU``): ``λ = exp(−exp(nu_log) + i·exp(theta_log))``, ``B̄ = diag(exp(gamma_log))·B``, ``C``, ``D``;
- minimal S4D kernel (``log_dt``, ``log_A_real``, ``A_imag``, ``C`` [, ``B``]; ``D`` of the enclosing module):
  ``A = −exp(log_A_real) + i·A_imag``, ZOH with ``Δ_h = exp(log_dt_h)``, ``C = 2·C̃`` (output ``2·Re``);
- full S4D kernel (state-spaces ``SSMKernelDiag``: ``inv_dt``, ``A_real``, ``A_imag``, ``B``, ``C``; ``D`` (c, H) of
  the enclosing ``FFTConv``): ``A = −real_transform(A_real) − i·imag_transform(A_imag)`` repeated H/S times,
  ``Δ = dt_transform(inv_dt)``, ZOH or bilinear (the module's ``disc``), ``C = 2·C̃`` per output channel.

A bidirectional s5-pytorch layer (``bidir=True``: one causal and one anti-causal scan sharing Λ̄ and B̄, output
``Re(C₁x + C₂x')``) has no single causal system; ``systems(..., bidirectional="split")`` returns its two scans as
causal systems — ``name`` (C₁, with D) and ``name + ".backward"`` (C₂, no D; the anti-causal scan run backwards in
time, which changes none of its norms or Hankel singular values).

All are ``output="real"``, ``state_includes_input=True`` discrete-time systems named by their module path, as
:func:`ssmtools.load` names the layers of the module's state dict. The discretisation is
``_kernels.discretize_modes``, the formula the NumPy adapters use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .. import _kernels as _numpy_annotated_kernels
from ..errors import ArgumentTypeError, FormatError, check_choice
from ._system import TorchSSM


@dataclass(frozen=True)
class _Options:
    """The reading options of :func:`systems` every reader receives."""

    step_scale: float
    bidirectional: str


Reader = Callable[[str, torch.nn.Module, dict, dict, _Options], dict[str, TorchSSM]]

#: the kernels are namespace-generic but annotated with NumPy arrays; here they run on tensors
_kernels: Any = _numpy_annotated_kernels


def _own(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's own parameters and buffers (not its children's)."""
    found = dict(module.named_buffers(recurse=False))
    found.update(dict(module.named_parameters(recurse=False)))
    return found


def _complex(pair: torch.Tensor) -> torch.Tensor:
    """``(..., 2)`` real/imaginary → complex."""
    return torch.complex(pair[..., 0], pair[..., 1])


def _s5_pytorch(name: str, module: torch.nn.Module, p: dict, parent: dict, options: _Options) -> dict[str, TorchSSM]:
    where = f"module {name or '<root>'!r} (s5-pytorch)"
    if "B" not in p or "C" not in p:
        raise FormatError(f"{where}: a factorized layer (BH, BP, CH, CP) is not supported; use bcInit='dense'")
    bidirectional = bool(getattr(module, "bidir", False))
    if bidirectional and options.bidirectional != "split":
        raise FormatError(
            f"{where}: a bidirectional layer (bidir=True) is not one causal system; pass bidirectional='split' to get "
            "its forward and backward scans as two causal systems"
        )
    if getattr(module, "liquid", False) or getattr(module, "degree", 1) != 1:
        raise FormatError(f"{where}: liquid=True or degree != 1 is not a linear time-invariant layer")
    method = getattr(getattr(module, "discretize", None), "__name__", "discretize_zoh").removeprefix("discretize_")
    if method not in ("zoh", "bilinear"):
        raise FormatError(f"{where}: unknown discretisation {method!r}; expected zoh or bilinear")
    lam = p["Lambda"]
    step = options.step_scale * torch.exp(p["log_step"])
    lam_bar, gain = _kernels.discretize_modes(lam, step, method=method)
    B_bar = gain[:, None] * _complex(p["B"]).to(lam.dtype)
    P = lam.shape[-1]
    C = p["C"][:, :P] if bidirectional else p["C"]
    found = {name: _scan(lam_bar, B_bar, C, torch.diag(p["D"]))}
    if bidirectional:
        found[f"{name}.backward"] = _scan(lam_bar, B_bar, p["C"][:, P:], None)
    return found


def _scan(lam: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor | None) -> TorchSSM:
    """The convention of every layer read here: a real-output discrete-time scan whose state includes the input."""
    return TorchSSM(lam, B, C, D, dt=True, output="real", state_includes_input=True)


def _lru(name: str, module: torch.nn.Module, p: dict, parent: dict, options: _Options) -> dict[str, TorchSSM]:
    if "B" in p:
        B, C = p["B"], p["C"]
    elif "B_re" in p:
        B, C = torch.complex(p["B_re"], p["B_im"]), torch.complex(p["C_re"], p["C_im"])
    else:
        raise FormatError(f"module {name!r} (LRU): needs B and C (complex) or B_re, B_im, C_re, C_im")
    lam = torch.exp(torch.complex(-torch.exp(p["nu_log"]), torch.exp(p["theta_log"])))
    if "gamma_log" in p:
        B = torch.exp(p["gamma_log"])[:, None] * B
    D = p.get("D")
    if D is not None and D.ndim == 1:
        D = torch.diag(D)
    return {name: _scan(lam, B, C, D)}


def _s4d(name: str, module: torch.nn.Module, p: dict, parent: dict, options: _Options) -> dict[str, TorchSSM]:
    A = torch.complex(-torch.exp(p["log_A_real"]), p["A_imag"])
    H, N2 = A.shape
    step = (options.step_scale * torch.exp(p["log_dt"]))[:, None]
    lam_bar, gain = _kernels.discretize_modes(A, step, method="zoh")
    B_tilde = _complex(p["B"]) if "B" in p else torch.ones_like(A)
    C = 2.0 * _complex(p["C"])[:, None, :]  # (H, 1, N/2): output 2·Re
    D = None
    if "D" in parent:
        D = parent["D"].reshape(H, 1, 1)
    return {name: _scan(lam_bar, (gain * B_tilde)[..., None], C, D)}


#: the ``param_transform`` of state-spaces/s4 (positive parameters), as ``ssmtools.adapters.s4d`` reads them
_TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "exp": torch.exp,
    "softplus": torch.nn.functional.softplus,
    "sigmoid": torch.sigmoid,
    "none": lambda x: x,
}


def _transform(where: str, module: torch.nn.Module, attribute: str, x: torch.Tensor) -> torch.Tensor:
    name = getattr(module, attribute, "none" if attribute == "imag_transform" else "exp")
    if name not in _TRANSFORMS:
        raise FormatError(f"{where}: {attribute}={name!r} is not one of {sorted(_TRANSFORMS)}")
    return _TRANSFORMS[name](x)


def _s4d_full(name: str, module: torch.nn.Module, p: dict, parent: dict, options: _Options) -> dict[str, TorchSSM]:
    where = f"module {name or '<root>'!r} (s4d-full)"
    if "P" in p:
        raise FormatError(f"{where}: has a low-rank term P: this is an S4 (DPLR) kernel, not a diagonal S4D one")
    missing = sorted({"A_imag", "B", "C"} - p.keys())
    if missing:
        raise FormatError(f"{where}: missing parameter(s) {missing} (real-valued S4D, is_real=True, is not supported)")
    S, N2 = p["A_real"].shape
    channels, H = p["C"].shape[:2]
    if H % S:
        raise FormatError(f"{where}: {S} SSM copies do not divide H={H}")
    method = getattr(module, "disc", "zoh")
    if method not in ("zoh", "bilinear"):
        raise FormatError(f"{where}: disc={method!r} is not supported; expected zoh or bilinear")
    copy = torch.arange(H, device=p["A_real"].device) % S
    real = _transform(where, module, "real_transform", p["A_real"])
    imag = _transform(where, module, "imag_transform", p["A_imag"])
    A = torch.complex(-real, -imag)[copy]  # (H, N/2)
    step = options.step_scale * _transform(where, module, "dt_transform", p["inv_dt"]).expand(H, N2)
    lam_bar, gain = _kernels.discretize_modes(A, step, method=method)
    B_tilde = _complex(p["B"][0])[copy]
    C = 2.0 * _complex(p["C"]).movedim(0, 1)  # (H, channels, N/2): output 2·Re
    D = parent["D"].transpose(0, 1)[:, :, None] if "D" in parent else None
    return {name: _scan(lam_bar, (gain * B_tilde)[..., None], C, D)}


#: family -> (the own parameter names that identify it, the reader); the names are the adapters' detection keys
FAMILIES: dict[str, tuple[frozenset[str], Reader]] = {
    "s5-pytorch": (frozenset({"Lambda", "log_step"}), _s5_pytorch),
    "lru": (frozenset({"nu_log", "theta_log"}), _lru),
    "s4d": (frozenset({"log_A_real", "A_imag", "log_dt"}), _s4d),
    "s4d-full": (frozenset({"A_real", "inv_dt"}), _s4d_full),
}


def _cast(p: dict[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    if dtype is None:
        return p
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return {k: v.to(cdtype if v.is_complex() else dtype) for k, v in p.items()}


def systems(
    module: torch.nn.Module,
    *,
    step_scale: float = 1.0,
    dtype: torch.dtype | None = None,
    bidirectional: Literal["error", "split"] = "error",
) -> dict[str, TorchSSM]:
    """Every recognised SSM layer of a live module, as a differentiable :class:`TorchSSM`, by module path.

    Parameters
    ----------
    module : torch.nn.Module
        A model containing ``s5-pytorch`` ``S5SSM`` layers (inside ``S5``/``S5Block``), ``LRU-pytorch`` ``LRU``
        layers, minimal S4D kernels (``log_dt``, ``log_A_real``, ``A_imag``, ``C``) or full S4D kernels
        (``SSMKernelDiag``: ``inv_dt``, ``A_real``, ``A_imag``, ``B``, ``C``), or one such layer.
    step_scale : float
        Multiplies every learned step Δ (s5-pytorch's ``step_scale``, default 1 as in its ``forward``; S4D too).
    dtype : torch.dtype, optional
        Compute in this precision (``torch.float64`` for accurate norms of a float32 model; the cast is in the
        graph). ``None``: the module's own dtype. The device is always the parameters'.
    bidirectional : {"error", "split"}
        A bidirectional s5-pytorch layer: ``"error"`` (default) raises; ``"split"`` returns its forward scan as
        ``name`` and its backward scan as ``name + ".backward"`` (module docstring).

    Returns
    -------
    dict of str to TorchSSM
        Layer path (e.g. ``"seq"``, ``"layers.0.kernel"``) → system; gradients of anything computed from them
        reach the module's parameters. The names match :func:`ssmtools.load` of ``module.state_dict()``.

    Raises
    ------
    ArgumentTypeError
        ``module`` is not a ``torch.nn.Module``.
    FormatError
        No layer is recognised, or a recognised layer has a variant without a differentiable view
        (factorized s5-pytorch, bidirectional s5-pytorch without ``bidirectional="split"``, liquid S5, S4 DPLR).
    """
    if not isinstance(module, torch.nn.Module):
        raise ArgumentTypeError(f"systems() takes a torch.nn.Module, got {type(module).__name__}")
    check_choice("bidirectional", bidirectional, ("error", "split"))
    options = _Options(step_scale, bidirectional)
    modules = dict(module.named_modules())
    found: dict[str, TorchSSM] = {}
    for name, sub in modules.items():
        own = _own(sub)
        for keys, reader in FAMILIES.values():
            if keys <= own.keys():
                parent = _own(modules[name.rpartition(".")[0]]) if name else {}
                found.update(reader(name, sub, _cast(own, dtype), _cast(parent, dtype), options))
                break
    if not found:
        known = "; ".join(f"{family}: {sorted(keys)}" for family, (keys, _) in FAMILIES.items())
        raise FormatError(
            f"no SSM layer found in {type(module).__name__}: no submodule owns the parameters of a known family ({known})"
        )
    return found

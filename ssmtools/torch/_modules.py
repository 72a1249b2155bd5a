"""The layers of a live torch module as :class:`TorchSSM` systems in the graph of the module's own parameters.

The adapters' read paths (``ssmtools.adapters``: s5-pytorch, LRU, minimal S4D) written on tensors, so a norm of
the returned system differentiates through the parameterisation and the discretisation of the layer:

- ``s5-pytorch`` (``S5SSM``, the ``seq`` of ``S5``/``S5Block``): ``Λ = Lambda``, ``Δ = step_scale·exp(log_step)``,
  ``(λ̄, B̄)`` = ZOH or bilinear of ``(Λ, B[..., 0] + i·B[..., 1])``, ``C``, ``D = diag(D)``;
- ``LRU-pytorch`` (``LRU``): ``λ = exp(−exp(nu_log) + i·exp(theta_log))``, ``B̄ = diag(exp(gamma_log))·B``, ``C``, ``D``;
- minimal S4D kernel (``log_dt``, ``log_A_real``, ``A_imag``, ``C`` [, ``B``]; ``D`` of the enclosing module):
  ``A = −exp(log_A_real) + i·A_imag``, ZOH with ``Δ_h = exp(log_dt_h)``, ``C = 2·C̃`` (output ``2·Re``).

All are ``output="real"``, ``state_includes_input=True`` discrete-time systems named by their module path, as
:func:`ssmtools.load` names the layers of the module's state dict. The discretisation is
``_kernels.discretize_modes``, the formula the NumPy adapters use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import _kernels as _numpy_annotated_kernels
from ..errors import ArgumentTypeError, FormatError
from ._system import TorchSSM

Reader = Callable[[str, torch.nn.Module, dict, dict, float], TorchSSM]

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


def _s5_pytorch(name: str, module: torch.nn.Module, p: dict, parent: dict, step_scale: float) -> TorchSSM:
    where = f"module {name or '<root>'!r} (s5-pytorch)"
    if "B" not in p or "C" not in p:
        raise FormatError(f"{where}: a factorized layer (BH, BP, CH, CP) is not supported; use bcInit='dense'")
    if getattr(module, "bidir", False):
        raise FormatError(f"{where}: bidirectional layers (bidir=True) have no differentiable view yet")
    if getattr(module, "liquid", False) or getattr(module, "degree", 1) != 1:
        raise FormatError(f"{where}: liquid=True or degree != 1 is not a linear time-invariant layer")
    method = getattr(getattr(module, "discretize", None), "__name__", "discretize_zoh").removeprefix("discretize_")
    if method not in ("zoh", "bilinear"):
        raise FormatError(f"{where}: unknown discretisation {method!r}; expected zoh or bilinear")
    lam = p["Lambda"]
    step = step_scale * torch.exp(p["log_step"])
    lam_bar, gain = _kernels.discretize_modes(lam, step, method=method)
    B_bar = gain[:, None] * _complex(p["B"]).to(lam.dtype)
    return TorchSSM(lam_bar, B_bar, p["C"], torch.diag(p["D"]), dt=True, output="real", state_includes_input=True)


def _lru(name: str, module: torch.nn.Module, p: dict, parent: dict, step_scale: float) -> TorchSSM:
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
    return TorchSSM(lam, B, C, D, dt=True, output="real", state_includes_input=True)


def _s4d(name: str, module: torch.nn.Module, p: dict, parent: dict, step_scale: float) -> TorchSSM:
    A = torch.complex(-torch.exp(p["log_A_real"]), p["A_imag"])
    H, N2 = A.shape
    step = (step_scale * torch.exp(p["log_dt"]))[:, None]
    lam_bar, gain = _kernels.discretize_modes(A, step, method="zoh")
    B_tilde = _complex(p["B"]) if "B" in p else torch.ones_like(A)
    C = 2.0 * _complex(p["C"])[:, None, :]  # (H, 1, N/2): output 2·Re
    D = None
    if "D" in parent:
        D = parent["D"].reshape(H, 1, 1)
    return TorchSSM(lam_bar, (gain * B_tilde)[..., None], C, D, dt=True, output="real", state_includes_input=True)


#: family -> (the own parameter names that identify it, the reader); the names are the adapters' detection keys
FAMILIES: dict[str, tuple[frozenset[str], Reader]] = {
    "s5-pytorch": (frozenset({"Lambda", "log_step"}), _s5_pytorch),
    "lru": (frozenset({"nu_log", "theta_log"}), _lru),
    "s4d": (frozenset({"log_A_real", "A_imag", "log_dt"}), _s4d),
}


def _cast(p: dict[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    if dtype is None:
        return p
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return {k: v.to(cdtype if v.is_complex() else dtype) for k, v in p.items()}


def systems(
    module: torch.nn.Module, *, step_scale: float = 1.0, dtype: torch.dtype | None = None
) -> dict[str, TorchSSM]:
    """Every recognised SSM layer of a live module, as a differentiable :class:`TorchSSM`, by module path.

    Parameters
    ----------
    module : torch.nn.Module
        A model containing ``s5-pytorch`` ``S5SSM`` layers (inside ``S5``/``S5Block``), ``LRU-pytorch`` ``LRU``
        layers or minimal S4D kernels (``log_dt``, ``log_A_real``, ``A_imag``, ``C``), or one such layer.
    step_scale : float
        Multiplies every learned step Δ (s5-pytorch's ``step_scale``, default 1 as in its ``forward``; S4D too).
    dtype : torch.dtype, optional
        Compute in this precision (``torch.float64`` for accurate norms of a float32 model; the cast is in the
        graph). ``None``: the module's own dtype. The device is always the parameters'.

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
        (factorized or bidirectional s5-pytorch, liquid S5).
    """
    if not isinstance(module, torch.nn.Module):
        raise ArgumentTypeError(f"systems() takes a torch.nn.Module, got {type(module).__name__}")
    modules = dict(module.named_modules())
    found: dict[str, TorchSSM] = {}
    for name, sub in modules.items():
        own = _own(sub)
        for keys, reader in FAMILIES.values():
            if keys <= own.keys():
                parent = _own(modules[name.rpartition(".")[0]]) if name else {}
                found[name] = reader(name, sub, _cast(own, dtype), _cast(parent, dtype), step_scale)
                break
    if not found:
        known = "; ".join(f"{family}: {sorted(keys)}" for family, (keys, _) in FAMILIES.items())
        raise FormatError(
            f"no SSM layer found in {type(module).__name__}: no submodule owns the parameters of a known family ({known})"
        )
    return found

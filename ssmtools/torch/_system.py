"""``TorchSSM``: a diagonal system whose parameters are torch tensors that keep their autograd graph.

The conventions are those of :class:`ssmtools.systems.DiagonalSSM` (``dt``, ``output``,
``state_includes_input``, batch shapes); the difference is that nothing is copied to NumPy, so
every function of :mod:`ssmtools.torch` on it is differentiable in ``poles``, ``B``, ``C`` and ``D``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ArgumentError, ArgumentTypeError, ShapeError, check_choice
from ..systems import DiagonalSSM, Output


def complex_dtype_of(*tensors: torch.Tensor) -> torch.dtype:
    """complex128 if any tensor is 64-bit (float64/complex128), else complex64."""
    wide = any(t.dtype in (torch.float64, torch.complex128) for t in tensors)
    return torch.complex128 if wide else torch.complex64


def _tensor(name: str, value: Any, min_ndim: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(
            f"{name} must be a torch.Tensor, got {type(value).__name__}; for NumPy arrays use "
            "ssmtools.DiagonalSSM, or TorchSSM.from_numpy(DiagonalSSM(...))"
        )
    if value.ndim < min_ndim:
        raise ShapeError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(value.shape)}")
    if not (value.is_floating_point() or value.is_complex()):
        raise ArgumentTypeError(f"{name} must be a floating-point or complex tensor, got dtype {value.dtype}")
    return value


def _broadcast(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``t`` itself when it has ``shape`` already (a leaf stays a leaf), else its broadcast view."""
    return t if tuple(t.shape) == shape else t.expand(*shape)


@dataclass(frozen=True, eq=False, repr=False)
class TorchSSM:
    """A batched diagonal LTI system with torch-tensor parameters (differentiable, on any device).

    Parameters
    ----------
    poles : torch.Tensor, shape ``(*batch, n)``
        Diagonal of Λ (cast to complex, graph kept).
    B : torch.Tensor, shape ``(*batch, n, m)``
        Input matrix, one row per state.
    C : torch.Tensor, shape ``(*batch, p, n)``
        Output matrix, one column per state.
    D : torch.Tensor, shape ``(*batch, p, m)``, optional
        Feedthrough; zero when omitted (real for ``output="real"``: its real part is used).
    dt : 0, True or float > 0
        ``0`` continuous time, otherwise discrete time (frequencies in rad/sample).
    output : {"complex", "real"}
        As for :class:`ssmtools.DiagonalSSM`: ``"real"`` means ``y = Re(Cx) + Du`` (every stored state
        stands for a conjugate pair).
    state_includes_input : bool
        Discrete time only: ``G(z) = z·C(zI − Λ)⁻¹B + D`` (S5/S4D/LRU scans).

    Notes
    -----
    The four tensors are broadcast to a common batch shape and cast to one complex dtype
    (complex128 when any of them is 64-bit, else complex64); both operations keep the autograd graph.
    """

    poles: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    D: torch.Tensor
    dt: float | bool
    output: Output
    state_includes_input: bool

    def __init__(
        self,
        poles: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        D: torch.Tensor | None = None,
        *,
        dt: float | bool = 0,
        output: Output = "complex",
        state_includes_input: bool = False,
    ) -> None:
        check_choice("output", output, ("complex", "real"))
        lam, B, C = _tensor("poles", poles, 1), _tensor("B", B, 2), _tensor("C", C, 2)
        if dt is not True and (isinstance(dt, bool) or not isinstance(dt, (int, float)) or dt < 0):
            raise ArgumentError(
                f"dt={dt!r} is not valid: use 0 for continuous time, or True / a positive sampling time"
            )
        if state_includes_input and dt == 0:
            raise ArgumentError("state_includes_input=True is a discrete-time scan convention; pass dt=True")
        n = lam.shape[-1]
        if B.shape[-2] != n or C.shape[-1] != n:
            raise ShapeError(
                f"poles {tuple(lam.shape)}, B {tuple(B.shape)}, C {tuple(C.shape)}: expected B (..., {n}, m) "
                f"and C (..., p, {n}), one row of B and one column of C per state"
            )
        m, p = B.shape[-1], C.shape[-2]
        dtype = complex_dtype_of(lam, B, C)
        if D is None:
            D = torch.zeros((p, m), dtype=dtype, device=lam.device)
        D = _tensor("D", D, 2)
        if D.shape[-2:] != (p, m):
            raise ShapeError(f"D has shape {tuple(D.shape)}; expected (..., {p}, {m}) (outputs × inputs)")
        if output == "real" and D.is_complex():
            D = D.real
        try:
            batch = torch.broadcast_shapes(lam.shape[:-1], B.shape[:-2], C.shape[:-2], D.shape[:-2])
        except RuntimeError:
            raise ShapeError(
                f"batch dimensions do not broadcast: poles {tuple(lam.shape[:-1])}, B {tuple(B.shape[:-2])}, "
                f"C {tuple(C.shape[:-2])}, D {tuple(D.shape[:-2])}"
            ) from None
        set_ = object.__setattr__
        real_dtype = torch.float64 if dtype == torch.complex128 else torch.float32
        set_(self, "poles", _broadcast(lam.to(dtype), (*batch, n)))
        set_(self, "B", _broadcast(B.to(dtype), (*batch, n, m)))
        set_(self, "C", _broadcast(C.to(dtype), (*batch, p, n)))
        set_(self, "D", _broadcast(D.to(dtype if D.is_complex() else real_dtype), (*batch, p, m)))
        set_(self, "dt", dt)
        set_(self, "output", output)
        set_(self, "state_includes_input", bool(state_includes_input))

    @property
    def is_discrete(self) -> bool:
        """True for discrete time."""
        return self.dt is True or self.dt > 0

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch dimensions."""
        return tuple(self.poles.shape[:-1])

    @property
    def n_states(self) -> int:
        """Number of stored (complex) states n."""
        return int(self.poles.shape[-1])

    def to_numpy(self) -> DiagonalSSM:
        """The same system as a (detached, float64) :class:`ssmtools.DiagonalSSM` on the host.

        Returns
        -------
        DiagonalSSM
        """

        def host(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().to(torch.complex128).numpy()

        D = host(self.D)
        return DiagonalSSM(
            host(self.poles),
            host(self.B),
            host(self.C),
            D.real if self.output == "real" else D,
            dt=self.dt,
            output=self.output,
            state_includes_input=self.state_includes_input,
        )

    @classmethod
    def from_numpy(
        cls, sys: DiagonalSSM, *, device: Any = None, dtype: torch.dtype = torch.float64, requires_grad: bool = False
    ) -> TorchSSM:
        """A ``TorchSSM`` with the values of ``sys`` (leaf tensors, optionally requiring grad).

        Parameters
        ----------
        sys : DiagonalSSM
            The system to copy.
        device : str or torch.device, optional
            Target device (``None``: CPU).
        dtype : torch.dtype
            ``torch.float64`` (complex128, default) or ``torch.float32`` (complex64).
        requires_grad : bool
            Make ``poles``, ``B``, ``C`` and ``D`` leaves that require grad.

        Returns
        -------
        TorchSSM
        """
        if not isinstance(sys, DiagonalSSM):
            raise ArgumentTypeError(f"from_numpy takes a DiagonalSSM, got {type(sys).__name__}")
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64

        def leaf(a: np.ndarray, real: bool = False) -> torch.Tensor:
            t = torch.as_tensor(np.array(np.real(a) if real else a)).to(device=device, dtype=dtype if real else cdtype)
            return t.requires_grad_(requires_grad)

        return cls(
            leaf(sys.poles),
            leaf(sys.B),
            leaf(sys.C),
            leaf(sys.D, real=sys.output == "real"),
            dt=sys.dt,
            output=sys.output,
            state_includes_input=sys.state_includes_input,
        )

    def __repr__(self) -> str:
        time = f"dt={self.dt}" if self.is_discrete else "continuous"
        return (
            f"TorchSSM(batch_shape={self.batch_shape}, n_states={self.n_states}, n_inputs={self.B.shape[-1]}, "
            f"n_outputs={self.C.shape[-2]}, {time}, output={self.output!r}, dtype={self.poles.dtype}, "
            f"device={self.poles.device})"
        )

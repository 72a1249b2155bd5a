"""``DiagonalSSM``: the batched diagonal LTI system every ssmtools function works on.

A deep-SSM layer (S4D, S5, LRU, Mamba with a frozen token) is a diagonal linear system

    x⁺ = Λx + Bu   (discrete time)      or      ẋ = Λx + Bu   (continuous time)
    y  = out(Cx) + Du,    out = identity ("complex") or Re ("real", real inputs)

with Λ = diag(poles). With ``state_includes_input=True`` (the scan convention of S5, S4D and
LRU, discrete time only) the state is updated *before* the output is read, so
``G(z) = z·C(zI − Λ)⁻¹B + D``. See docs/concepts/derivations.md#conventions and ``docs/concepts/systems.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from . import _kernels
from ._backends import get_backend
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    BatchIndexError,
    NonFiniteError,
    NotDiagonalizableError,
    ShapeError,
    check_choice,
)

Output = Literal["complex", "real"]


def _as_array(name: str, value: ArrayLike, *, min_ndim: int, dtype: type) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ArgumentTypeError(f"{name} could not be converted to an array: {exc}") from exc
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ArgumentTypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if array.ndim < min_ndim:
        raise ShapeError(f"{name} must have at least {min_ndim} dimension(s), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise NonFiniteError(
            f"{name} contains {bad} NaN/Inf value(s): ssmtools needs finite parameters. "
            "Check the checkpoint or the computation that produced them."
        )
    return array.astype(dtype, copy=True)


def _normalize_dt(dt: Any) -> float | bool:
    if dt is True:
        return True
    if dt is False or dt is None:
        raise ArgumentError(
            f"dt={dt!r} is not valid: use 0 for continuous time, or True / a positive sampling time for discrete time"
        )
    if not isinstance(dt, (int, float, np.integer, np.floating)):  # "0.1" is a string, not a sampling time
        raise ArgumentTypeError(f"dt must be 0, True or a positive number, got {dt!r} ({type(dt).__name__})")
    value = float(dt)
    if not np.isfinite(value) or value < 0:
        raise ArgumentError(f"dt={dt!r} is not valid: use 0 for continuous time, or True / a positive sampling time")
    return value


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False, repr=False)
class DiagonalSSM:
    """A batched diagonal LTI system (validated once, immutable).

    Parameters
    ----------
    poles : array_like, complex, shape ``(*batch, n)``
        Diagonal of the state matrix Λ.
    B : array_like, shape ``(*batch, n, m)``
        Input matrix, one row per state.
    C : array_like, shape ``(*batch, p, n)``
        Output matrix, one column per state.
    D : array_like, shape ``(*batch, p, m)``, optional
        Feedthrough; zero when omitted. Must be real when ``output="real"``.
    dt : 0, True or float > 0
        python-control convention: ``0`` continuous time; ``True`` or a sampling time discrete time.
        Discrete-time frequencies are always in rad/sample.
    output : {"complex", "real"}
        ``"complex"``: y = Cx + Du. ``"real"``: y = Re(Cx) + Du for real inputs; every stored state
        stands for a conjugate pair (S5/S4D's ``2·Re(Cx)`` is ``"real"`` with C doubled).
    state_includes_input : bool
        Discrete time only: x_k = Λx_{k−1} + Bu_k, y_k = out(Cx_k) + Du_k, i.e.
        G(z) = z·C(zI − Λ)⁻¹B + D (S5/S4D/LRU scans).

    Notes
    -----
    Batch dimensions of the four arrays broadcast together; the stored arrays are broadcast,
    read-only copies.

    Examples
    --------
    >>> import numpy as np
    >>> sys = DiagonalSSM([0.5, 0.9j], np.ones((2, 1)), np.ones((1, 2)), dt=True)
    >>> sys.n_states, sys.n_inputs, sys.n_outputs, sys.batch_shape
    (2, 1, 1, ())
    """

    poles: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: np.ndarray
    dt: float | bool
    output: Output
    state_includes_input: bool

    def __init__(
        self,
        poles: ArrayLike,
        B: ArrayLike,
        C: ArrayLike,
        D: ArrayLike | None = None,
        *,
        dt: float | bool = 0,
        output: Output = "complex",
        state_includes_input: bool = False,
    ) -> None:
        check_choice("output", output, ("complex", "real"))
        if not isinstance(state_includes_input, (bool, np.bool_)):  # bool("no") is True: refuse truthy strings
            raise ArgumentTypeError(
                f"state_includes_input must be True or False, got {state_includes_input!r} "
                f"({type(state_includes_input).__name__})"
            )
        dt = _normalize_dt(dt)
        if state_includes_input and dt == 0:
            raise ArgumentError(
                "state_includes_input=True is a discrete-time scan convention; pass dt=True (or a sampling time) "
                "or set state_includes_input=False for a continuous-time system"
            )
        lam = _as_array("poles", poles, min_ndim=1, dtype=np.complex128)
        B_arr = _as_array("B", B, min_ndim=2, dtype=np.complex128)
        C_arr = _as_array("C", C, min_ndim=2, dtype=np.complex128)
        n = lam.shape[-1]
        if B_arr.shape[-2] != n:
            raise ShapeError(
                f"B has shape {B_arr.shape} but poles have shape {lam.shape}: expected B of shape (..., {n}, m), "
                "one row per state. If your B is stored as (m, n), pass B.swapaxes(-1, -2)."
            )
        if C_arr.shape[-1] != n:
            raise ShapeError(
                f"C has shape {C_arr.shape} but poles have shape {lam.shape}: expected C of shape (..., p, {n}), "
                "one column per state. If your C is stored as (n, p), pass C.swapaxes(-1, -2)."
            )
        m, p = B_arr.shape[-1], C_arr.shape[-2]
        d_dtype = np.float64 if output == "real" else np.complex128
        if D is None:
            D_arr = np.zeros((p, m), dtype=d_dtype)
        else:
            D_arr = _as_array("D", D, min_ndim=2, dtype=np.complex128)
            if D_arr.shape[-2:] != (p, m):
                raise ShapeError(
                    f"D has shape {D_arr.shape} but B has shape {B_arr.shape} and C has shape {C_arr.shape}: expected D of shape "
                    f"(..., {p}, {m}) (outputs × inputs). A diagonal feedthrough d of length {m} is np.diag(d)."
                )
            if output == "real":
                if np.any(D_arr.imag != 0):
                    raise ArgumentTypeError(
                        "D must be real when output='real' (y = Re(Cx) + Du with real u); got complex D"
                    )
                D_arr = D_arr.real.copy()
        try:
            batch_shape = np.broadcast_shapes(lam.shape[:-1], B_arr.shape[:-2], C_arr.shape[:-2], D_arr.shape[:-2])
        except ValueError:
            raise ShapeError(
                f"batch dimensions do not broadcast: poles {lam.shape[:-1]}, B {B_arr.shape[:-2]}, "
                f"C {C_arr.shape[:-2]}, D {D_arr.shape[:-2]} (the leading dimensions before (n,), (n, m), (p, n), (p, m))"
            ) from None
        set_ = object.__setattr__
        set_(self, "poles", _readonly(np.broadcast_to(lam, batch_shape + (n,)).copy()))
        set_(self, "B", _readonly(np.broadcast_to(B_arr, batch_shape + (n, m)).copy()))
        set_(self, "C", _readonly(np.broadcast_to(C_arr, batch_shape + (p, n)).copy()))
        set_(self, "D", _readonly(np.broadcast_to(D_arr, batch_shape + (p, m)).copy()))
        set_(self, "dt", dt)
        set_(self, "output", output)
        set_(self, "state_includes_input", bool(state_includes_input))

    # ------------------------------------------------------------------ properties
    @property
    def n_states(self) -> int:
        """Number of stored (complex) states n."""
        return self.poles.shape[-1]

    @property
    def n_inputs(self) -> int:
        """Number of inputs m."""
        return self.B.shape[-1]

    @property
    def n_outputs(self) -> int:
        """Number of outputs p."""
        return self.C.shape[-2]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch dimensions (layers, channels, ...)."""
        return self.poles.shape[:-1]

    @property
    def is_discrete(self) -> bool:
        """True for discrete time (``dt`` True or > 0)."""
        return self.dt is True or self.dt > 0

    @property
    def stability_margin(self) -> np.ndarray:
        """Per-state distance to the stability boundary, ``1 − |λ|`` (DT) or ``−Re λ`` (CT), shape (*batch, n)."""
        return _kernels.stability_margin(self.poles, discrete=self.is_discrete)

    @property
    def is_stable(self) -> np.ndarray:
        """Asymptotic stability of each system in the batch, bool array of shape ``batch_shape``."""
        return np.all(self.stability_margin > 0, axis=-1)

    @property
    def has_feedthrough(self) -> bool:
        """True when any entry of D is non-zero."""
        return bool(np.any(self.D != 0))

    # ------------------------------------------------------------------ batch handling
    def __getitem__(self, key: Any) -> DiagonalSSM:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis or k is None for k in key):
            raise BatchIndexError("DiagonalSSM indexing takes integers and slices over the batch dimensions only")
        if len(key) > len(self.batch_shape):
            raise BatchIndexError(
                f"too many indices ({len(key)}) for a system with batch_shape {self.batch_shape}; "
                "to select states use ssmtools.modal_truncation"
            )
        return self.replace(poles=self.poles[key], B=self.B[key], C=self.C[key], D=self.D[key])

    def __len__(self) -> int:
        if not self.batch_shape:
            raise ArgumentTypeError("len() of an unbatched DiagonalSSM; use n_states")
        return self.batch_shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def states(self) -> DiagonalSSM:
        """Every stored state as its own one-state system: batch shape ``(*batch_shape, n)``, D = 0.

        State i of system ``k`` is ``self.states()[k + (i,)]``, with pole λ_i, input row b_i and output
        column c_i, in the same conventions (``dt``, ``output``, ``state_includes_input``). The per-state
        norms ([`ssmtools.state_hinf_norms`][ssmtools.norms.state_hinf_norms], [`ssmtools.state_h2_norms`][ssmtools.norms.state_h2_norms]) are the layer norms of
        these subsystems.

        Returns
        -------
        DiagonalSSM
            Batch shape ``(*batch_shape, n)``, one state, ``n_inputs`` inputs and ``n_outputs`` outputs each.

        Examples
        --------
        >>> import numpy as np
        >>> sys = DiagonalSSM([0.5, 0.25], np.ones((2, 3)), np.ones((4, 2)), dt=True)
        >>> sub = sys.states()
        >>> sub.batch_shape, sub.n_states, sub.n_inputs, sub.n_outputs
        ((2,), 1, 3, 4)
        """
        return DiagonalSSM(
            self.poles[..., None],
            self.B[..., :, None, :],
            np.moveaxis(self.C, -1, -2)[..., None],
            dt=self.dt,
            output=self.output,
            state_includes_input=self.state_includes_input,
        )

    def replace(self, **changes: Any) -> DiagonalSSM:
        """A new system with some of ``poles, B, C, D, dt, output, state_includes_input`` replaced.

        Parameters
        ----------
        **changes
            New values of fields, validated as by the constructor (``D=None`` means zero feedthrough).

        Returns
        -------
        DiagonalSSM
        """
        fields: dict[str, Any] = dict(
            poles=self.poles,
            B=self.B,
            C=self.C,
            D=self.D,
            dt=self.dt,
            output=self.output,
            state_includes_input=self.state_includes_input,
        )
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ArgumentTypeError(f"replace() got unknown field(s) {unknown}; valid fields: {sorted(fields)}")
        fields.update(changes)
        return DiagonalSSM(fields.pop("poles"), fields.pop("B"), fields.pop("C"), fields.pop("D"), **fields)

    def __repr__(self) -> str:
        time = f"dt={self.dt}" if self.is_discrete else "continuous"
        return (
            f"DiagonalSSM(batch_shape={self.batch_shape}, n_states={self.n_states}, n_inputs={self.n_inputs}, "
            f"n_outputs={self.n_outputs}, {time}, output={self.output!r}, "
            f"state_includes_input={self.state_includes_input})"
        )

    # ------------------------------------------------------------------ conversions
    def to_control(self):
        """A real ``control.StateSpace`` with the same transfer function (unbatched systems only).

        ``output="real"``: the real realization of docs/concepts/derivations.md#real-realization (state [Re x; Im x], 2n states).
        ``output="complex"``: the *realified* system with inputs [Re u; Im u] and outputs [Re y; Im y]
        (2m inputs, 2p outputs), whose singular values are those of G, each twice; its H∞ norm
        equals ‖G‖∞ and its H2 norm is √2·‖G‖₂. With ``state_includes_input=True`` the standard
        form ``(A, B, CA, CB + D)`` is returned (docs/concepts/derivations.md#standard-form).

        Returns
        -------
        control.StateSpace
            Real, with ``dt`` of this system (0 for continuous time).
        """
        import control

        if self.batch_shape:
            raise ArgumentError(
                f"to_control() needs an unbatched system, got batch_shape {self.batch_shape}; "
                "index the batch first, e.g. sys[0]"
            )
        A, B, C, D = real_standard_form(self)
        return control.StateSpace(A, B, C, D, self.dt)

    @classmethod
    def from_control(cls, sys: Any, *, max_condition: float = 1e10) -> DiagonalSSM:
        """Diagonalise a real ``control.StateSpace`` (or ``control.TransferFunction``) into a real-output ``DiagonalSSM``.

        A transfer function is realised first with ``control.ss`` (as python-control converts it). Complex eigenvalues are kept once per conjugate pair with C doubled (``y = Re(2 c z)``);
        real eigenvalues keep real eigenvectors. Raises [`NotDiagonalizableError`][ssmtools.errors.NotDiagonalizableError] when the
        eigenvector matrix has condition number above ``max_condition`` (Jordan blocks, or a basis
        too ill-conditioned to give a faithful modal form).

        Parameters
        ----------
        sys : control.StateSpace or control.TransferFunction
            A real LTI system (continuous or discrete time), or any object with the attributes ``A``, ``B``,
            ``C``, ``D`` and ``dt`` of a state-space system; anything else raises
            [`ArgumentTypeError`][ssmtools.errors.ArgumentTypeError].
        max_condition : float
            Largest accepted condition number of the eigenvector matrix.

        Returns
        -------
        DiagonalSSM
            ``output="real"``, same ``dt``, real poles first, then one pole per conjugate pair.
        """
        if not all(hasattr(sys, name) for name in ("A", "B", "C", "D", "dt")):  # a StateSpace, or one in kind
            import control  # only for transfer functions: importing python-control costs seconds

            if isinstance(sys, control.TransferFunction):
                sys = control.ss(sys)
        if not all(hasattr(sys, name) for name in ("A", "B", "C", "D", "dt")):
            raise ArgumentTypeError(
                f"from_control() takes a control.StateSpace or control.TransferFunction, got {type(sys).__name__}; "
                "build one with control.ss(A, B, C, D[, dt]) or control.tf(num, den[, dt]), or pass poles, B, C, D to "
                "DiagonalSSM(...) directly"
            )
        A = np.asarray(sys.A, dtype=float)
        B = np.asarray(sys.B, dtype=float)
        C = np.asarray(sys.C, dtype=float)
        D = np.asarray(sys.D, dtype=float)
        dt = sys.dt if sys.dt not in (None, 0) else 0
        eigenvalues, vectors = np.linalg.eig(A)
        scale = max(1.0, float(np.max(np.abs(eigenvalues), initial=0.0)))
        is_real = np.abs(eigenvalues.imag) <= 1e-12 * scale
        upper = eigenvalues.imag > 0
        kept_real = np.flatnonzero(is_real)
        kept_pairs = np.flatnonzero(~is_real & upper)
        real_vectors = np.real(vectors[:, kept_real])
        pair_vectors = vectors[:, kept_pairs]
        basis = np.concatenate([real_vectors, pair_vectors, np.conj(pair_vectors)], axis=1)
        if basis.shape[1] != A.shape[0]:
            raise NotDiagonalizableError(
                "the eigenvalues of A do not come in conjugate pairs; is A real and diagonalizable?"
            )
        check_eigenbasis(basis, max_condition, "A")
        modal_B = np.linalg.solve(basis, B)
        modal_C = C @ basis
        k_real, k_pair = len(kept_real), len(kept_pairs)
        poles = np.concatenate([np.real(eigenvalues[kept_real]), eigenvalues[kept_pairs]])
        keep = slice(0, k_real + k_pair)
        B_out = modal_B[keep].copy()
        C_out = modal_C[:, keep].copy()
        B_out[:k_real] = B_out[:k_real].real  # real modes have real parameters (drop solve round-off)
        C_out[:, :k_real] = C_out[:, :k_real].real
        C_out[:, k_real:] *= 2.0
        return cls(poles.astype(complex), B_out, C_out, D, dt=dt, output="real")


@dataclass(frozen=True, eq=False, repr=False)
class BidirectionalSSM:
    """A bidirectional (non-causal) diagonal layer: a causal scan and an anti-causal scan sharing Λ and B.

    Bidirectional S5 layers run the same recurrence forwards and backwards in time and add the two
    read-outs::

        x_k = Λ x_{k−1} + B u_k,   x'_k = Λ x'_{k+1} + B u_k,   y_k = out(C x_k + C_b x'_k) + D u_k

    so that ``G(e^{jω}) = out[C (I − Λe^{−jω})⁻¹ B + C_b (I − Λe^{jω})⁻¹ B] + D``. Its ℓ2 gain is the
    L∞ norm ``sup_ω σ_max(G(e^{jω}))`` and its energy the two-sided sum ``Σ_{k∈ℤ} ‖h_k‖²_F``; every norm
    function of ssmtools accepts this type (docs/concepts/derivations.md#bidirectional).

    Parameters
    ----------
    forward : DiagonalSSM
        The causal scan with the layer's D: discrete time, ``state_includes_input=True`` (both scans
        read the current input).
    C_backward : array_like, shape ``forward.C.shape``
        Output columns of the anti-causal scan, in the same output convention as ``forward.C``
        (e.g. doubled for the ``2·Re`` of S5).

    Examples
    --------
    >>> import numpy as np
    >>> fwd = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True, state_includes_input=True)
    >>> layer = BidirectionalSSM(fwd, [[1.0]])
    >>> complex(freqresp(layer, [0.0])[0, 0, 0])  # 1/(1 − 0.5) twice
    (4+0j)
    """

    forward: DiagonalSSM
    C_backward: np.ndarray

    def __init__(self, forward: DiagonalSSM, C_backward: ArrayLike) -> None:
        if not isinstance(forward, DiagonalSSM):
            raise ArgumentTypeError(f"forward must be a DiagonalSSM, got {type(forward).__name__}")
        if not forward.is_discrete or not forward.state_includes_input:
            raise ArgumentError(
                "a BidirectionalSSM is a discrete-time scan pair whose states include the current input: build forward "
                "with dt=True and state_includes_input=True"
            )
        C_b = _as_array("C_backward", C_backward, min_ndim=2, dtype=np.complex128)
        try:
            C_b = np.broadcast_to(C_b, forward.C.shape).copy()
        except ValueError:
            raise ShapeError(
                f"C_backward has shape {C_b.shape}, expected the forward C's shape {forward.C.shape} (the backward scan "
                "shares the poles and B of the forward scan, so it has the same states and outputs)"
            ) from None
        object.__setattr__(self, "forward", forward)
        object.__setattr__(self, "C_backward", _readonly(C_b))

    # ------------------------------------------------------------------ the forward system's fields
    @property
    def poles(self) -> np.ndarray:
        """Shared poles, shape ``(*batch, n)``."""
        return self.forward.poles

    @property
    def B(self) -> np.ndarray:
        """Shared input matrix, shape ``(*batch, n, m)``."""
        return self.forward.B

    @property
    def C(self) -> np.ndarray:
        """Output columns of the causal scan, shape ``(*batch, p, n)``."""
        return self.forward.C

    @property
    def D(self) -> np.ndarray:
        """Feedthrough, shape ``(*batch, p, m)``."""
        return self.forward.D

    @property
    def dt(self) -> float | bool:
        """Sampling time (discrete time: ``True`` or a positive number)."""
        return self.forward.dt

    @property
    def output(self) -> Output:
        """Output map, ``'complex'`` or ``'real'``."""
        return self.forward.output

    @property
    def state_includes_input(self) -> bool:
        """Always True: both scans read the current input."""
        return True

    @property
    def n_states(self) -> int:
        """Stored states n (shared by both scans)."""
        return self.forward.n_states

    @property
    def n_inputs(self) -> int:
        """Number of inputs m."""
        return self.forward.n_inputs

    @property
    def n_outputs(self) -> int:
        """Number of outputs p."""
        return self.forward.n_outputs

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch dimensions."""
        return self.forward.batch_shape

    @property
    def is_discrete(self) -> bool:
        """Always True."""
        return True

    @property
    def stability_margin(self) -> np.ndarray:
        """Per-state distance ``1 − |λ|`` to the unit circle, shape ``(*batch, n)``."""
        return self.forward.stability_margin

    @property
    def is_stable(self) -> np.ndarray:
        """Both scans decay (every |λ| < 1), bool array of shape ``batch_shape``."""
        return self.forward.is_stable

    @property
    def has_feedthrough(self) -> bool:
        """True when any entry of D is non-zero."""
        return self.forward.has_feedthrough

    @property
    def backward(self) -> DiagonalSSM:
        """The anti-causal scan as a causal system (time reversed): poles, B, ``C_backward``, D = 0."""
        return self.forward.replace(C=self.C_backward, D=None)

    # ------------------------------------------------------------------ batch handling
    def states(self) -> BidirectionalSSM:
        """Every stored state as its own one-state bidirectional system, batch ``(*batch_shape, n)``, D = 0.

        Returns
        -------
        BidirectionalSSM
            State i of system ``k`` is ``self.states()[k + (i,)]``, with its forward and backward columns.
        """
        return BidirectionalSSM(self.forward.states(), np.moveaxis(self.C_backward, -1, -2)[..., None])

    def __getitem__(self, key: Any) -> BidirectionalSSM:
        key_tuple = key if isinstance(key, tuple) else (key,)
        forward = self.forward[key]
        return BidirectionalSSM(forward, self.C_backward[key_tuple])

    def __len__(self) -> int:
        return len(self.forward)

    def __iter__(self) -> Iterator[BidirectionalSSM]:
        for i in range(len(self)):
            yield self[i]

    def replace(self, **changes: Any) -> BidirectionalSSM:
        """A new system with ``C_backward`` and/or fields of the forward system (``poles, B, C, D, output``) replaced.

        Parameters
        ----------
        **changes
            ``C_backward`` and fields of [`DiagonalSSM`][ssmtools.systems.DiagonalSSM] for the forward scan.

        Returns
        -------
        BidirectionalSSM
        """
        C_backward = changes.pop("C_backward", self.C_backward)
        return BidirectionalSSM(self.forward.replace(**changes) if changes else self.forward, C_backward)

    def __repr__(self) -> str:
        return (
            f"BidirectionalSSM(batch_shape={self.batch_shape}, n_states={self.n_states}, n_inputs={self.n_inputs}, "
            f"n_outputs={self.n_outputs}, dt={self.dt}, output={self.output!r})"
        )


LTISystem = DiagonalSSM | BidirectionalSSM
"""Either system type; every norm and frequency-response function accepts both."""


def check_eigenbasis(V: np.ndarray, max_condition: float, what: str) -> None:
    """Raise [`NotDiagonalizableError`][ssmtools.errors.NotDiagonalizableError] unless the eigenvector matrix ``V`` of ``what`` has a finite
    condition number ≤ ``max_condition`` (Jordan blocks or near-repeated poles have no faithful modal form).

    Parameters
    ----------
    V : ndarray, shape (N, N)
        Eigenvector matrix.
    max_condition : float
        Largest accepted 2-norm condition number.
    what : str
        Name of the matrix, quoted in the message.
    """
    condition = np.linalg.cond(V) if V.size else 1.0
    if not np.isfinite(condition) or condition > max_condition:
        raise NotDiagonalizableError(
            f"{what} is not (numerically) diagonalizable: the eigenvector matrix has condition number "
            f"{condition:.3g} > max_condition={max_condition:.3g}. Diagonal SSMs cannot represent Jordan "
            "blocks or near-repeated poles faithfully; perturb the system, choose another reduced order, or "
            "raise max_condition if you accept the loss of accuracy."
        )


def augmented_realization(sys: DiagonalSSM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The complex diagonal realization ``(Λ_a, B_a, C_a)`` of the strictly proper part (docs/concepts/derivations.md#real-realization).

    ``output="complex"``: (Λ, B, C). ``output="real"`` (κ = 1): ``Λ_a = [Λ, conj Λ]``,
    ``B_a = [B; conj B]``, ``C_a = ½[C, conj C]``, so ``Re(Cx) = C_a x_a`` for real inputs.

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape.

    Returns
    -------
    lam, B, C : ndarray of complex128
        Shapes (*batch, N), (*batch, N, m), (*batch, p, N) with N = n or 2n.
    """
    if sys.output == "complex":
        return sys.poles, sys.B, sys.C
    lam = np.concatenate([sys.poles, np.conj(sys.poles)], axis=-1)
    B = np.concatenate([sys.B, np.conj(sys.B)], axis=-2)
    C = 0.5 * np.concatenate([sys.C, np.conj(sys.C)], axis=-1)
    return lam, B, C


def real_realization(sys: DiagonalSSM) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real ``(A, B, C, D)`` of the strictly proper part plus D, state ``[Re x; Im x]`` (docs/concepts/derivations.md#real-realization).

    Batched; shapes (*batch, 2n, 2n), (*batch, 2n, m'), (*batch, p', 2n), (*batch, p', m') with
    m' = m, p' = p for real output and m' = 2m, p' = 2p (realified complex signals) otherwise.

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape.

    Returns
    -------
    A, B, C, D : ndarray of float64
    """
    lam_re, lam_im = np.real(sys.poles), np.imag(sys.poles)
    diag_re = lam_re[..., :, None] * np.eye(sys.n_states)
    diag_im = lam_im[..., :, None] * np.eye(sys.n_states)
    A = _block2(diag_re, -diag_im, diag_im, diag_re)
    Bre, Bim, Cre, Cim = sys.B.real, sys.B.imag, sys.C.real, sys.C.imag
    if sys.output == "real":
        B = np.concatenate([Bre, Bim], axis=-2)
        C = np.concatenate([Cre, -Cim], axis=-1)
        D = sys.D.real
    else:
        B = _block2(Bre, -Bim, Bim, Bre)
        C = _block2(Cre, -Cim, Cim, Cre)
        D = _block2(sys.D.real, -sys.D.imag, sys.D.imag, sys.D.real)
    return A, B, C, D


def _block2(a11: np.ndarray, a12: np.ndarray, a21: np.ndarray, a22: np.ndarray) -> np.ndarray:
    """Batched 2×2 block matrix [[a11, a12], [a21, a22]]."""
    top = np.concatenate([a11, a12], axis=-1)
    bottom = np.concatenate([a21, a22], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def real_standard_form(sys: DiagonalSSM) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real ``(A, B, C, D)`` in the standard form ``x⁺ = Ax + Bu, y = Cx + Du`` that slycot and
    python-control expect. With ``state_includes_input`` this is ``(A, B, C A, C B + D)``
    (docs/concepts/derivations.md#standard-form); feeding ``(A, B, C, D)`` instead is wrong whenever D ≠ 0.

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape.

    Returns
    -------
    A, B, C, D : ndarray of float64
        Shapes as in [`real_realization`][ssmtools.systems.real_realization].
    """
    A, B, C, D = real_realization(sys)
    if sys.state_includes_input:
        return A, B, C @ A, C @ B + D
    return A, B, C, D


def freqresp(
    sys: LTISystem,
    omega: ArrayLike,
    *,
    backend: Literal["numpy", "torch"] = "numpy",
    device: Any = None,
    dtype: Literal["float64", "float32"] = "float64",
) -> Any:
    """Frequency response, shape ``(*batch, k, p, m)`` for ``omega`` of shape (k,).

    Parameters
    ----------
    sys : DiagonalSSM or BidirectionalSSM
        A bidirectional layer's response is the sum of its causal scan's and its anti-causal scan's.
    omega : array_like, shape (k,)
        Frequencies.
    backend : {"numpy", "torch"}
        ``"torch"`` evaluates the same formula in torch and returns a tensor on ``device``.
    device : str or torch.device, optional
        Torch device (``backend="torch"`` only); ``None`` means CPU.
    dtype : {"float64", "float32"}
        Torch precision: complex128 by default, complex64 only on request.

    Returns
    -------
    ndarray of complex128 (torch tensor for ``backend="torch"``), shape ``(*batch, k, p, m)``

    Notes
    -----
    ``omega`` is in rad/sample for discrete time (z = e^{jω}) and rad/s for continuous time
    (s = jω). Vectorised over frequencies and the batch; complex128.

    Examples
    --------
    >>> import numpy as np
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True)
    >>> complex(freqresp(sys, [0.0])[0, 0, 0])  # 1 / (1 - 0.5)
    (2+0j)
    """
    omega = np.atleast_1d(np.asarray(omega, dtype=float))
    if omega.ndim != 1:
        raise ShapeError(f"omega must be a 1-D array of frequencies, got shape {omega.shape}")
    if not np.all(np.isfinite(omega)):
        raise NonFiniteError("omega contains NaN/Inf; pass finite frequencies (rad/sample or rad/s)")
    array_backend = get_backend(backend, device)
    if isinstance(sys, BidirectionalSSM):
        # the anti-causal scan C_b (I − Λz)⁻¹ B is the causal one evaluated at z⁻¹, i.e. at −ω
        return freqresp(sys.forward, omega, backend=backend, device=device, dtype=dtype) + freqresp(
            sys.backward, -omega, backend=backend, device=device, dtype=dtype
        )
    lam, B, C, D, omega_c = array_backend.asarrays(sys.poles, sys.B, sys.C, sys.D, omega, device=device, dtype=dtype)
    xp = _kernels.array_namespace(omega_c)
    return _kernels.diagonal_freqresp(
        lam,
        B,
        C,
        D,
        xp.real(omega_c),
        discrete=sys.is_discrete,
        real_output=sys.output == "real",
        state_includes_input=sys.state_includes_input,
    )

"""Model reduction of diagonal SSMs with error bounds: modal truncation and balanced truncation.

Both return a :class:`ReductionResult` whose systems are again :class:`~ssmtools.DiagonalSSM`
layers with the input's output convention, feedthrough D and ``state_includes_input`` flag, so
they can be written back into S5 / S4D / LRU weights. Formulas: ``docs/concepts/derivations.md#hankel-singular-values``,
``#modal-truncation-error`` and ``#balanced-truncation-bound``; overview in ``docs/concepts/reduction.md``.

Balanced truncation works on the strictly proper part (Λ, B, C) (docs/concepts/derivations.md#hankel-singular-values): for a layer in the
``state_includes_input`` convention, G = z·G_sp + D, the reduced layer is G_r = z·G_sp,r + D with
the same D, and since z is unimodular ‖G − G_r‖∞ = ‖G_sp − G_sp,r‖∞ satisfies the usual bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from . import _kernels
from .errors import ArgumentError, ArgumentTypeError, ShapeError, check_choice
from .norms import check_horizon, gramian_factors, gramians, h2_norm, hinf_norm, state_hinf_norms
from .systems import DiagonalSSM, check_eigenbasis, real_realization

BalancedMethod = Literal["sqrt", "spa"]
UnstablePolicy = Literal["error", "keep"]

# Hankel singular values closer than this (relative to σ_1) are treated as one repeated value,
# which balanced truncation must not split (the reduced model may lose asymptotic stability).
_TIE_RTOL = 1e-10
# Condition-number limit of the eigenvector basis used to re-diagonalise the reduced state matrix.
_MAX_CONDITION = 1e10


@dataclass(frozen=True)
class ReductionResult:
    """Outcome of :func:`modal_truncation` or :func:`balanced_truncation` (immutable).

    Parameters
    ----------
    systems : tuple of DiagonalSSM
        One *unbatched* reduced system per batch element of the input, in ``np.ndindex(batch_shape)``
        (C) order; a 1-tuple for an unbatched input. Always a tuple, even when the reduced systems
        have the same number of states (then :attr:`system` stacks them).
    batch_shape : tuple of int
        Batch shape of the reduced input system.
    bound : float or ndarray of shape ``batch_shape``
        A-priori H∞ bound on ``G − G_r``: Σ_removed ‖G_i‖∞ (modal) or 2·Σ_{j>r} σ_j (balanced).
    order : int or ndarray of int, shape ``batch_shape``
        Order kept, in the unit of the method: stored states for :func:`modal_truncation`; Hankel
        singular values (McMillan degree, i.e. *real* state dimensions for ``output="real"``) for
        :func:`balanced_truncation`. The stored-state count of each system is :attr:`n_states`.
    hsv : ndarray of shape ``(*batch_shape, N)`` or None
        Hankel singular values of the input's strictly proper part, descending (balanced truncation
        only; N = n for complex output, 2n real dimensions for real output).
    error_hinf : float or ndarray of shape ``batch_shape``, optional
        Exact ‖G − G_r‖∞ (``exact_error=True`` only, else None).
    error_h2 : float or ndarray of shape ``batch_shape``, optional
        Exact ‖G − G_r‖₂ (``exact_error=True`` only, else None; ``inf`` for a continuous-time error
        system with a feedthrough).
    """

    systems: tuple[DiagonalSSM, ...]
    batch_shape: tuple[int, ...]
    bound: Any
    order: Any
    hsv: np.ndarray | None = None
    error_hinf: Any = None
    error_h2: Any = None

    @property
    def n_states(self):
        """Stored states of each reduced system, int or ndarray of shape ``batch_shape``."""
        counts = np.array([s.n_states for s in self.systems], dtype=np.int64).reshape(self.batch_shape)
        return counts[()] if counts.ndim == 0 else counts

    @property
    def system(self) -> DiagonalSSM:
        """The reduced systems as one :class:`DiagonalSSM` with the input's batch shape.

        Raises
        ------
        ShapeError
            When the batch elements kept different numbers of stored states: DiagonalSSM arrays are
            rectangular, so use :attr:`systems` (one system per batch element) instead.
        """
        if not self.batch_shape:
            return self.systems[0]
        counts = {s.n_states for s in self.systems}
        if len(counts) != 1:
            raise ShapeError(
                f"the reduced batch elements have different numbers of stored states {sorted(counts)}, so they "
                "do not fit one rectangular DiagonalSSM; use result.systems (one system per batch element, in "
                "np.ndindex(batch_shape) order), or ask for the same order in every batch element"
            )
        first = self.systems[0]
        n, m, p = first.n_states, first.n_inputs, first.n_outputs
        shape = self.batch_shape
        return first.replace(
            poles=np.stack([s.poles for s in self.systems]).reshape(shape + (n,)),
            B=np.stack([s.B for s in self.systems]).reshape(shape + (n, m)),
            C=np.stack([s.C for s in self.systems]).reshape(shape + (p, n)),
            D=np.stack([s.D for s in self.systems]).reshape(shape + (p, m)),
        )


def _scalar_or_array(values: np.ndarray):
    return values[()] if values.ndim == 0 else values


def _split(sys: DiagonalSSM) -> tuple[DiagonalSSM, ...]:
    if not sys.batch_shape:
        return (sys,)
    return tuple(sys[index] for index in np.ndindex(*sys.batch_shape))


# ---------------------------------------------------------------------------------------------- modal truncation
def _keep_mask(sys: DiagonalSSM, keep: ArrayLike) -> np.ndarray:
    """Boolean mask of shape ``(*batch, n)`` from a mask or an index array (validated)."""
    if hasattr(keep, "detach"):  # torch tensor
        keep = keep.detach().cpu().numpy()
    keep = np.asarray(keep)
    n, target = sys.n_states, sys.batch_shape + (sys.n_states,)
    if keep.dtype == bool:
        try:
            mask = np.broadcast_to(keep, target)
        except ValueError:
            raise ShapeError(
                f"keep is a boolean mask of shape {keep.shape} but the system has batch_shape {sys.batch_shape} and "
                f"{n} states: expected a mask of shape (*batch, {n}) (or broadcastable to it), True = keep"
            ) from None
        return mask
    if not np.issubdtype(keep.dtype, np.integer):
        raise ArgumentTypeError(
            f"keep must be a boolean mask or an integer index array over the states, got dtype {keep.dtype}"
        )
    if keep.ndim == 0:
        raise ShapeError("keep is a scalar index: pass an index array of shape (*batch, k), e.g. [0, 2, 5]")
    if np.any((keep < -n) | (keep >= n)):
        raise ShapeError(f"keep holds indices outside [-{n}, {n - 1}]: the system has {n} states")
    try:
        indices = np.broadcast_to(keep % n, sys.batch_shape + keep.shape[-1:])
    except ValueError:
        raise ShapeError(
            f"keep is an index array of shape {keep.shape} but the system has batch_shape {sys.batch_shape}: "
            "expected shape (*batch, k) (or (k,) for the same states in every batch element)"
        ) from None
    mask = np.zeros(target, dtype=bool)
    np.put_along_axis(mask, indices, True, axis=-1)
    if np.any(mask.sum(axis=-1) != indices.shape[-1]):
        raise ShapeError("keep holds repeated indices; each state can be kept once")
    return mask


def _select_states(sys: DiagonalSSM, mask: np.ndarray, count: int) -> DiagonalSSM:
    """The states where ``mask`` is True (``count`` per batch element, original order), D unchanged."""
    order = np.argsort(~mask, axis=-1, kind="stable")[..., :count]  # (*batch, count) kept indices, ascending
    poles = np.take_along_axis(sys.poles, order, axis=-1)
    B = np.take_along_axis(sys.B, order[..., :, None], axis=-2)
    C = np.take_along_axis(sys.C, order[..., None, :], axis=-1)
    return sys.replace(poles=poles, B=B, C=C)


def modal_truncation(sys: DiagonalSSM, keep: ArrayLike, *, exact_error: bool = False) -> ReductionResult:
    """Delete stored states (pruning): keep the states selected by ``keep``, with an a-priori error bound.

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape, output convention and time domain.
    keep : array_like of bool or int
        Boolean mask of shape ``(*batch, n)`` (True = keep; broadcast over the batch, so a mask of
        shape ``(n,)`` selects the same states in every batch element), or an integer index array
        of shape ``(*batch, k)`` or ``(k,)``. Every batch element must keep the same number of
        states, because DiagonalSSM arrays are rectangular; reduce layers of different sizes one
        by one (``sys[i]``). Kept states stay in their original order.
    exact_error : bool
        Also compute the exact ‖G − G_r‖∞ (:func:`~ssmtools.hinf_norm`) and ‖G − G_r‖₂
        (:func:`~ssmtools.h2_norm`) of the error system.

    Returns
    -------
    ReductionResult
        ``system``: the kept states with D, ``dt``, ``output`` and ``state_includes_input``
        unchanged; ``bound`` = Σ_{i removed} ‖G_i‖∞ (:func:`~ssmtools.state_hinf_norms`, the exact
        conjugate-pair norm for ``output="real"``); ``order`` = number of kept stored states;
        ``hsv`` = None.

    Raises
    ------
    ShapeError
        For a mask or index array of the wrong shape, indices out of range or repeated, or different
        numbers of kept states across the batch.
    TypeError
        If ``keep`` is neither boolean nor integer.

    Notes
    -----
    The error system is diagonal: the removed states with D = 0 (and the same factor z under
    ``state_includes_input``), so ΔG = Σ_{i removed} G_i and ‖ΔG‖∞ ≤ Σ_{i removed} ‖G_i‖∞ by the
    triangle inequality (docs/concepts/derivations.md#modal-truncation-error). The bound is ``inf`` (with an
    :class:`~ssmtools.UnstableSystemWarning`) when a removed state is unstable.

    Examples
    --------
    >>> import numpy as np
    >>> sys = DiagonalSSM([0.5, 0.9], [[1.0], [1.0]], [[1.0, 1.0]], dt=True)
    >>> result = modal_truncation(sys, [True, False])
    >>> result.system.n_states, round(float(result.bound), 12)  # removed 1/(z - 0.9): H∞ = 1 / 0.1
    (1, 10.0)
    """
    mask = _keep_mask(sys, keep)
    counts = mask.sum(axis=-1)
    if counts.size and np.any(counts != counts.flat[0]):
        raise ShapeError(
            f"keep selects different numbers of states across the batch ({sorted(set(counts.ravel().tolist()))}): "
            "DiagonalSSM arrays are rectangular, so every batch element must keep the same count. Reduce the "
            "batch elements separately (modal_truncation(sys[i], keep[i])) if their sizes must differ."
        )
    count = int(counts.flat[0]) if counts.size else int(mask.shape[-1])
    reduced = _select_states(sys, mask, count)
    removed = _select_states(sys, ~mask, sys.n_states - count).replace(D=np.zeros_like(sys.D))
    bound = np.sum(np.where(mask, 0.0, state_hinf_norms(sys)), axis=-1)
    error_hinf = error_h2 = None
    if exact_error and count == sys.n_states:  # nothing removed: G_r = G
        error_hinf = error_h2 = _scalar_or_array(np.zeros(sys.batch_shape))
    elif exact_error:
        error_hinf, error_h2 = hinf_norm(removed), h2_norm(removed)
    return ReductionResult(
        systems=_split(reduced),
        batch_shape=sys.batch_shape,
        bound=_scalar_or_array(np.asarray(bound)),
        order=_scalar_or_array(np.full(sys.batch_shape, count, dtype=np.int64)),
        hsv=None,
        error_hinf=error_hinf,
        error_h2=error_h2,
    )


# ---------------------------------------------------------------------------------------------- balanced truncation
def _real_coordinates(P: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gramians of the augmented realization (x_a = [x; conj x]) moved to the real state [Re x; Im x].

    ``x_r = T x_a`` with ``T = ½[[I, I], [−jI, jI]]``, so ``P_r = T P Tᴴ`` and ``Q_r = T⁻ᴴ Q T⁻¹``
    with ``T⁻¹ = [[I, jI], [I, −jI]]`` (the realization of :func:`~ssmtools.systems.real_realization`).
    Shapes (..., 2n, 2n), real.
    """
    n = P.shape[-1] // 2
    eye = np.eye(n)
    T = 0.5 * np.block([[eye, eye], [-1j * eye, 1j * eye]])
    T_inv = np.block([[eye, 1j * eye], [eye, -1j * eye]])
    P_r = T @ P @ np.conj(T.T)
    Q_r = np.conj(T_inv.T) @ Q @ T_inv
    return np.real(P_r), np.real(Q_r)


def _real_factor(F: np.ndarray, *, observability: bool) -> np.ndarray:
    """A real factor of a Gramian in the real state [Re x; Im x] from a factor ``F`` of the augmented one.

    ``x_r = T x_a`` with ``T = ½[[I, I], [−jI, jI]]`` (the realization of
    :func:`~ssmtools.systems.real_realization`), so ``P_r = (T F_P)(T F_P)ᴴ`` and ``Q_r = (T⁻ᴴ F_Q)(T⁻ᴴ F_Q)ᴴ``
    with ``T⁻ᴴ = 2T``. ``G = T F`` is complex with ``G Gᴴ`` real, so ``[Re G, Im G]`` is a real factor; its
    transpose, rows graded like the columns of F (interleaved), is compressed by a QR factorisation with
    column pivoting ``[Re G, Im G]ᵀ Π = Q R`` to the column-graded real factor ``Π Rᵀ`` (N, N).
    """
    import scipy.linalg

    n = F.shape[0] // 2
    top, bottom = F[:n], F[n:]
    G = np.concatenate([top + bottom, 1j * (bottom - top)]) * (1.0 if observability else 0.5)
    stacked = np.stack([np.real(G.T), np.imag(G.T)], axis=1).reshape(2 * G.shape[1], G.shape[0])
    R, pivots = scipy.linalg.qr(stacked, pivoting=True, mode="r")  # Q is never needed
    R = R[: min(R.shape)]
    factor = np.zeros((G.shape[0], R.shape[0]))
    factor[pivots] = R.T
    return factor


def _balancing(F_P: np.ndarray, F_Q: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Square-root balancing of one system from Gramian factors: ``(hsv, T, W)`` before truncation.

    ``F_P F_Pᴴ = P``, ``F_Q F_Qᴴ = Q`` (structured factors, never the formed Gramians) and
    ``F_Qᴴ F_P = U Σ Vᴴ`` by :func:`~ssmtools._kernels.graded_svd`; the balanced coordinates of the first k
    values are ``T_k = F_P V_k Σ_k^{-1/2}``, ``W_k = F_Q U_k Σ_k^{-1/2}`` (``W_kᴴ T_k = I``). Returns Σ padded
    with zeros to ``size`` values, and the unscaled ``F_P V``, ``F_Q U``.
    """
    U, values, V = _kernels.graded_svd(F_Q, F_P, compute_uv=True)
    hsv = np.zeros(size)
    hsv[: values.size] = values
    return hsv, F_P @ V, F_Q @ U


def _minimal_order(hsv: np.ndarray) -> int:
    """Numerical McMillan degree: σ_j > N·eps·σ_1 (SLICOT AB09AD's rule)."""
    if hsv.size == 0 or hsv[0] <= 0:
        return 0
    return int(np.count_nonzero(hsv > hsv.size * np.finfo(float).eps * hsv[0]))


def _round_up_ties(hsv: np.ndarray, r: int) -> int:
    """Smallest r' ≥ r that does not cut through a repeated Hankel singular value."""
    while 0 < r < hsv.size and hsv[r - 1] - hsv[r] <= _TIE_RTOL * hsv[0]:
        r += 1
    return r


def _order_for_tol(hsv: np.ndarray, tol: float) -> int:
    """Smallest r with 2·Σ_{j>r} σ_j ≤ tol."""
    tails = 2.0 * np.concatenate([np.cumsum(hsv[::-1])[::-1], [0.0]])  # tails[r] = 2 Σ_{j>r} σ_j
    return int(np.flatnonzero(tails <= tol)[0])


def _reduce_dense(A, B, C, hsv, TV, WU, r: int, k: int, method: str, discrete: bool):
    """Balanced reduction of one dense system to order ``r`` from its ``k``-state balanced part.

    ``"sqrt"``: truncation ``(W_rᴴ A T_r, W_rᴴ B, C T_r)``. ``"spa"``: balance k ≥ r states and
    residualise the last k − r (DT ``x₂ = (I − A₂₂)⁻¹(A₂₁x₁ + B₂u)``, CT ``(−A₂₂)⁻¹``), which adds the
    feedthrough ``D_sp = C₂ M B₂`` and matches the DC gain. Returns ``(A_r, B_r, C_r, D_sp)``.
    """
    k = r if method == "sqrt" else k
    scale = 1.0 / np.sqrt(hsv[:k])
    T, W = TV[:, :k] * scale, WU[:, :k] * scale
    Wh = np.conj(W.T)
    Ab, Bb, Cb = Wh @ A @ T, Wh @ B, C @ T
    D_sp = np.zeros((C.shape[0], B.shape[1]), dtype=Ab.dtype)
    if method == "sqrt" or k == r:
        return Ab, Bb, Cb, D_sp
    A11, A12, A21, A22 = Ab[:r, :r], Ab[:r, r:], Ab[r:, :r], Ab[r:, r:]
    B1, B2, C1, C2 = Bb[:r], Bb[r:], Cb[:, :r], Cb[:, r:]
    residual = np.eye(k - r) - A22 if discrete else -A22
    M_A, M_B = np.split(np.linalg.solve(residual, np.concatenate([A21, B2], axis=1)), [r], axis=1)
    return A11 + A12 @ M_A, B1 + A12 @ M_B, C1 + C2 @ M_A, C2 @ M_B


def _rediagonalize_complex(A, B, C, D, like: DiagonalSSM) -> DiagonalSSM:
    """Complex diagonal form of a dense complex system: ``A = V diag(λ) V⁻¹``, B ← V⁻¹B, C ← CV."""
    poles, V = np.linalg.eig(A)
    check_eigenbasis(V, _MAX_CONDITION, "the reduced state matrix")
    return like.replace(poles=poles, B=np.linalg.solve(V, B), C=C @ V, D=D)


def _rediagonalize(A, B, C, D, like: DiagonalSSM) -> DiagonalSSM:
    """A DiagonalSSM with the convention of ``like`` from a dense reduced (A, B, C, D).

    ``output="real"``: A is real; :meth:`DiagonalSSM.from_control` keeps each complex-conjugate
    eigenvalue pair once with C doubled (y = Re(2 c x)) and each real eigenvalue as a state with
    real parameters. ``output="complex"``: complex eigendecomposition. The ``state_includes_input``
    flag of ``like`` is restored (A, B, C are the strictly proper part).
    """
    if like.output == "real":
        dense = SimpleNamespace(A=np.real(A), B=np.real(B), C=np.real(C), D=np.real(D), dt=like.dt)
        reduced = DiagonalSSM.from_control(dense, max_condition=_MAX_CONDITION)
        return reduced.replace(state_includes_input=like.state_includes_input)
    return _rediagonalize_complex(A, B, C, D, like)


def _requested_orders(
    sys: DiagonalSSM, order: ArrayLike | None, tol: ArrayLike | None, size: int, states: ArrayLike | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if sum(value is not None for value in (order, tol, states)) != 1:
        raise ArgumentError(
            "balanced_truncation needs exactly one of order= (Hankel singular values to keep) or tol= (largest "
            f"a-priori H∞ error 2·Σ_(j>r) σ_j) or states= (stored states to fit); got order={order!r}, tol={tol!r}, states={states!r}"
        )
    if states is not None:
        values = np.asarray(states)
        if not np.issubdtype(values.dtype, np.integer):
            raise ArgumentTypeError(
                f"states must be an integer or an integer array of shape batch_shape, got {states!r}"
            )
        if np.any((values < 0) | (values > sys.n_states)):
            raise ArgumentError(f"states={states!r} is out of range: 0 ≤ states ≤ {sys.n_states} stored states")
        try:
            return np.broadcast_to(values, sys.batch_shape), None
        except ValueError:
            raise ShapeError(f"states has shape {values.shape}; expected an int or shape {sys.batch_shape}") from None
    if order is not None:
        values = np.asarray(order)
        if not np.issubdtype(values.dtype, np.integer):
            raise ArgumentTypeError(f"order must be an integer or an integer array of shape batch_shape, got {order!r}")
        if np.any((values < 0) | (values > size)):
            raise ArgumentError(
                f"order={order!r} is out of range: the system has {size} Hankel singular values "
                "(real state dimensions for output='real'), so 0 ≤ order ≤ " + str(size)
            )
        try:
            return np.broadcast_to(values, sys.batch_shape), None
        except ValueError:
            raise ShapeError(f"order has shape {values.shape}; expected an int or shape {sys.batch_shape}") from None
    values = np.asarray(tol, dtype=float)
    if np.any(np.isnan(values) | (values < 0)):
        raise ArgumentError(f"tol={tol!r} must be ≥ 0 and not NaN (an H∞ error bound in output units)")
    try:
        return None, np.broadcast_to(values, sys.batch_shape)
    except ValueError:
        raise ShapeError(f"tol has shape {values.shape}; expected a float or shape {sys.batch_shape}") from None


def balanced_truncation(
    sys: DiagonalSSM,
    order: ArrayLike | None = None,
    *,
    tol: ArrayLike | None = None,
    states: ArrayLike | None = None,
    method: BalancedMethod = "sqrt",
    horizon: int | float | None = None,
    unstable: UnstablePolicy = "error",
    stable: bool = False,
    exact_error: bool = False,
) -> ReductionResult:
    """Balanced truncation (or singular perturbation approximation), re-diagonalised into a DiagonalSSM.

    Parameters
    ----------
    sys : DiagonalSSM
        Asymptotically stable, any batch shape, continuous or discrete time.
    order : int or array_like of int, shape ``batch_shape``, optional
        Number r of Hankel singular values to keep, per batch element. It counts **real state
        dimensions** for ``output="real"`` (each stored conjugate pair is two), complex states for
        ``output="complex"``; 0 ≤ r ≤ N (N = 2n or n). To keep k stored pairs ask for ``2k``.
    tol : float or array_like, shape ``batch_shape``, optional
        Instead of ``order``: the smallest r with a-priori bound ``2·Σ_{j>r} σ_j ≤ tol`` (per batch element).
    states : int or array_like of int, shape ``batch_shape``, optional
        Instead of ``order``: the number of *stored* states the re-diagonalised reduction must fit, per batch
        element. For ``output="real"`` a reduced complex pair takes one stored state and a real pole a whole
        one, so the largest real order r ≤ 2·states whose re-diagonalised system has at most ``states`` stored
        states is kept (a pruning ratio is then met exactly, as for state selection).
    method : {"sqrt", "spa"}
        ``"sqrt"``: square-root balanced truncation (D unchanged). ``"spa"``: singular perturbation
        approximation, exact at DC (z = 1 in DT, s = 0 in CT); it adds a feedthrough
        ``D_sp = C₂(I − A₂₂)⁻¹B₂`` (CT ``C₂(−A₂₂)⁻¹B₂``) to D. For ``state_includes_input=True`` it
        works on the layer's full realisation ``(Λ, B, CΛ, D + out(CB))`` (state ``x_{k−1}``) and maps the
        result back to the scan form, so the new D is generally a full matrix (see Notes).
    horizon : int or float, optional
        Finite-horizon (time-limited) balanced truncation: balance the Gramians over L steps (DT) or time T (CT)
        of :func:`~ssmtools.gramians` ``(horizon=...)``, defined for every pole, so unstable layers are reduced
        as they act on length-L sequences. There is no a-priori H∞ bound (``bound`` is ``inf``) and the reduced
        system need not be stable (docs/concepts/derivations.md#finite-horizon-gramians).
    unstable : {"error", "keep"}
        Infinite horizon only. ``"error"`` (default): refuse systems with poles on or outside the stability
        boundary. ``"keep"``: additive stable/unstable decomposition, as SLICOT AB09MD does — the states with
        |λ| ≥ 1 (DT; Re λ ≥ 0 CT) are kept exactly and only the stable part is balanced and truncated; the order
        counts both parts, ``hsv`` lists ``inf`` for the unstable dimensions first, and the bound is the stable
        part's ``2·Σ_{j>r_s} σ_j``. For a diagonal system the decomposition is the partition of the states.
    stable : bool
        With a finite ``horizon``: keep stable batch elements stable. A batch element whose poles all have
        |λ| < 1 (DT; Re λ < 0 CT) but whose finite-horizon reduction has a pole on or outside the boundary is
        reduced again by infinite-horizon balanced truncation to the same target, whose reduction of a
        stable system is stable (Pernebo & Silverman 1982); its ``hsv`` and ``bound`` are then those of the
        infinite-horizon reduction. No effect without a horizon. Default False.
    exact_error : bool
        Also compute the exact ‖G − G_r‖∞ (:func:`~ssmtools.hinf_norm`) and ‖G − G_r‖₂ of each
        batch element (the error system stacks the original and the reduced states).

    Returns
    -------
    ReductionResult
        ``systems``/``system``: the reduced layers, diagonal again, with the input's ``dt``,
        ``output`` and ``state_includes_input`` (and D, for ``"sqrt"``). ``order``: the r actually
        kept (see Notes), ``hsv``: all σ_j, shape ``(*batch, N)``; ``bound``: ``2·Σ_{j>r} σ_j``.

    Raises
    ------
    ValueError
        Unstable system (``unstable="error"``, no horizon), not exactly one of ``order``/``tol``/``states``,
        or ``order`` out of range.
    NotDiagonalizableError
        If the reduced state matrix has no well-conditioned eigenvector basis.

    Notes
    -----
    *Hankel singular values.* σ_j = sqrt(eig_j(PQ)) with the closed-form Gramians of the strictly
    proper part (Λ, B, C) (docs/concepts/derivations.md#gramians, #hankel-singular-values), computed by the
    square-root method ``svd(L_Qᴴ L_P)`` on structured factors that never form the Gramians
    (:func:`~ssmtools.gramian_factors`: pivoted LDLᴴ from B, Cᴴ and the pole differences) and a graded SVD, so
    each σ keeps its relative accuracy for widely scaled B and C and for nearly coincident poles. For
    ``output="real"`` they are the HSVs of the real realization (2n real states), from the same factors moved
    to real coordinates; for ``output="complex"`` those of the complex system. With a finite ``horizon``: eigh
    factors of the formed time-limited Gramians.

    *Reduction.* The real realization (state [Re x; Im x]) for ``output="real"``, the complex
    diagonal one otherwise, is projected with ``T_r = L_P V_r Σ_r^{-1/2}``, ``W_r = L_Q U_r Σ_r^{-1/2}``:
    ``(A_r, B_r, C_r) = (W_rᴴ A T_r, W_rᴴ B, C T_r)``. Bound (Enns; Glover; DT Al-Saggaf & Franklin):
    ``σ_{r+1} ≤ ‖G − G_r‖∞ ≤ 2·Σ_{j>r} σ_j`` (docs/concepts/derivations.md#balanced-truncation-bound). With ``state_includes_input`` the
    reduced layer is ``G_r = z·G_sp,r + D``, same D, and the bound holds for the layer because z is
    unimodular. SPA of the strictly proper part would give ``z·(G_sp,r + D_sp) + D``, whose ``z·D_sp`` is a
    one-step advance no causal layer can represent; so SPA balances the full realisation of the scan instead,
    ``s_{k+1} = Λs_k + Bu_k``, ``y_k = out(CΛ s_k) + (D + out(CB))u_k`` with ``s_k = x_{k−1}`` (its Hankel
    singular values, in ``hsv``, differ from those of the strictly proper part), and writes the reduction
    ``(Λ_r, B_r, C'_r, D'_r)`` back as ``C_r = C'_r Λ_r⁻¹``, ``D_r = D'_r − out(C_r B_r)``: exact at DC, with
    a full D_r.

    *Order actually kept* (``result.order``): the requested r is (1) raised while it would split a
    repeated Hankel singular value (|σ_r − σ_{r+1}| ≤ 1e-10·σ_1; cutting a tie can leave the reduced
    model only marginally stable) and (2) capped at the numerical minimal order (number of
    σ_j > N·eps·σ_1, as SLICOT AB09AD does). Both only lower the bound.

    *Re-diagonalisation.* The dense A_r is diagonalised again. ``output="real"``: A_r is real, so its
    eigenvalues are real or conjugate pairs; each pair becomes one stored state with C doubled
    (y = Re(Cx)) and each real eigenvalue one stored state with real parameters, exactly as
    :meth:`DiagonalSSM.from_control`. A real order r therefore gives between ⌈r/2⌉ and r stored
    states (r/2 when all reduced poles are complex); no conjugate pair is ever split because the
    reduction is done in real arithmetic. ``result.n_states`` reports the stored counts.

    *Batches.* Each batch element is reduced with its own r, and can end with its own stored
    count; the result always holds one system per batch element in ``result.systems``, and
    ``result.system`` stacks them when the counts agree (else it raises ShapeError). Nothing is padded.

    Examples
    --------
    >>> import numpy as np
    >>> sys = DiagonalSSM([0.5, -0.2], [[1.0], [0.1]], [[1.0, 0.1]], dt=True)
    >>> result = balanced_truncation(sys, order=1)
    >>> result.system.n_states, bool(result.bound >= result.hsv[..., 1])
    (1, True)
    """
    check_choice("method", method, ("sqrt", "spa"))
    check_choice("unstable", unstable, ("error", "keep"))
    horizon = check_horizon(sys, horizon)
    if horizon is None and unstable == "error":
        gramians(sys)  # raises for unstable systems
    dim = 2 if sys.output == "real" else 1
    orders, tols = _requested_orders(sys, order, tol, dim * sys.n_states, states)
    target = "states" if states is not None else ("order" if order is not None else "tol")
    hsv_all = np.zeros(sys.batch_shape + (dim * sys.n_states,))
    kept = np.zeros(sys.batch_shape, dtype=np.int64)
    bound = np.zeros(sys.batch_shape)
    reduced_systems, errors = [], []
    for index in np.ndindex(*sys.batch_shape):
        value = orders[index] if orders is not None else tols[index]  # type: ignore[index]
        one = sys[index] if sys.batch_shape else sys
        reduced, hsv_all[index], kept[index], bound[index], error = _balanced_one(
            one, target, value, method, horizon, unstable == "keep"
        )
        if stable and horizon is not None and _left_stability(one, reduced):
            reduced, hsv_all[index], kept[index], bound[index], error = _balanced_one(
                one, target, value, method, None, False
            )
        reduced_systems.append(reduced)
        errors.append(error)
    error_hinf = error_h2 = None
    if exact_error:
        error_hinf = _scalar_or_array(np.array([hinf_norm(e) for e in errors], dtype=float).reshape(sys.batch_shape))
        error_h2 = _scalar_or_array(np.array([h2_norm(e) for e in errors], dtype=float).reshape(sys.batch_shape))
    return ReductionResult(
        systems=tuple(reduced_systems),
        batch_shape=sys.batch_shape,
        bound=_scalar_or_array(bound),
        order=_scalar_or_array(kept),
        hsv=hsv_all,
        error_hinf=error_hinf,
        error_h2=error_h2,
    )


def _out(sys: DiagonalSSM, M: np.ndarray) -> np.ndarray:
    """The output map applied to a product: ``Re(M)`` for ``output="real"``, ``M`` otherwise."""
    return np.real(M) if sys.output == "real" else M


def _standard_form(sys: DiagonalSSM) -> DiagonalSSM:
    """A scan-convention layer (``x_k = Λx_{k−1} + Bu_k``, ``y_k = out(Cx_k) + Du_k``) in the standard convention.

    With the state ``s_k = x_{k−1}``: ``s_{k+1} = Λs_k + Bu_k``, ``y_k = out(CΛ s_k) + (D + out(CB))u_k`` — the
    full realisation including the feedthrough of the current input (docs/concepts/derivations.md#standard-form).
    """
    return sys.replace(C=sys.C * sys.poles[None, :], D=sys.D + _out(sys, sys.C @ sys.B), state_includes_input=False)


def _scan_form(sys: DiagonalSSM) -> DiagonalSSM:
    """Inverse of :func:`_standard_form`: ``C = C_std Λ⁻¹``, ``D = D_std − out(CB)`` (needs λ ≠ 0)."""
    if np.any(sys.poles == 0):
        raise ArgumentError(
            "the singular perturbation of this scan-convention layer has a pole at 0, which the state-includes-input "
            "form cannot represent; use method='sqrt' (balanced truncation) for it"
        )
    C = sys.C / sys.poles[None, :]
    return sys.replace(C=C, D=sys.D - _out(sys, C @ sys.B), state_includes_input=True)


def _states_where(sys: DiagonalSSM, chosen: np.ndarray) -> DiagonalSSM:
    """The states of an unbatched system where ``chosen`` is True (D unchanged)."""
    index = np.flatnonzero(chosen)
    return sys.replace(poles=sys.poles[index], B=sys.B[index], C=sys.C[:, index])


def _balanced_one(
    sys: DiagonalSSM, target: str, value: Any, method: str, horizon: int | float | None, keep_unstable: bool
) -> tuple[DiagonalSSM, np.ndarray, int, float, DiagonalSSM]:
    """Balanced reduction of one unbatched system: ``(reduced, hsv, order kept, bound, error system)``.

    ``target`` is ``"order"`` (real order r), ``"tol"`` (bound) or ``"states"`` (stored states to fit). With
    ``keep_unstable`` (infinite horizon only) the states on or outside the boundary are kept exactly and the
    stable part alone is reduced (additive decomposition); ``hsv`` then lists ``inf`` for them first.
    """
    dim = 2 if sys.output == "real" else 1
    unstable = (sys.stability_margin <= 0) if (keep_unstable and horizon is None) else np.zeros(sys.n_states, bool)
    stable_part = _states_where(sys, ~unstable)
    unstable_part = _states_where(sys, unstable).replace(D=None)
    scan_spa = method == "spa" and sys.state_includes_input
    if scan_spa:  # SPA of the full realisation x_{k−1} → (Λ, B, CΛ, D + out(CB)); see _scan_form
        stable_part = _standard_form(stable_part)
    n_u = int(np.count_nonzero(unstable))
    if stable_part.n_states == 0:
        hsv_s = np.zeros(0)
    else:
        if dim == 2:
            A, B, C, _ = real_realization(stable_part)
        else:
            A, B, C = np.diag(stable_part.poles), stable_part.B, stable_part.C
        if horizon is None:  # structured factors, never the formed Gramians
            F_P, F_Q = gramian_factors(stable_part)
            if dim == 2:
                F_P, F_Q = _real_factor(F_P, observability=False), _real_factor(F_Q, observability=True)
        else:  # finite horizon: factors of the formed time-limited Gramians
            P, Q = gramians(stable_part, horizon=horizon)
            if dim == 2:
                P, Q = _real_coordinates(P, Q)
            F_P, F_Q = _kernels.psd_factor(P), _kernels.psd_factor(Q)
        hsv_s, TV, WU = _balancing(F_P, F_Q, dim * stable_part.n_states)
    n_min = _minimal_order(hsv_s)
    discrete = sys.is_discrete

    def reduce(r: int) -> DiagonalSSM:
        if stable_part.n_states == 0:
            return stable_part
        A_r, B_r, C_r, D_sp = _reduce_dense(A, B, C, hsv_s, TV, WU, r, n_min, method, discrete)
        return _rediagonalize(A_r, B_r, C_r, stable_part.D + D_sp, stable_part)

    if target == "states":
        budget = max(int(value) - n_u, 0)
        candidate = min(dim * budget, n_min)
        while True:
            r = min(_round_up_ties(hsv_s, candidate), n_min)
            reduced = reduce(r)
            excess = reduced.n_states - budget
            if excess <= 0 or candidate == 0:
                break
            candidate = max(candidate - excess, 0)
    else:
        if target == "order":
            r = max(int(value) - dim * n_u, 0)
        else:
            r = _order_for_tol(hsv_s, float(value))
        r = min(_round_up_ties(hsv_s, r), n_min)
        reduced = reduce(r)
    if scan_spa:
        stable_part, reduced = _scan_form(stable_part), _scan_form(reduced)
    error = _difference(stable_part, reduced)  # the unstable states cancel exactly: they are kept as they are
    if n_u:
        reduced = reduced.replace(
            poles=np.concatenate([reduced.poles, unstable_part.poles]),
            B=np.concatenate([reduced.B, unstable_part.B]),
            C=np.concatenate([reduced.C, unstable_part.C], axis=-1),
        )
    hsv = np.concatenate([np.full(dim * n_u, np.inf), hsv_s])
    bound = np.inf if horizon is not None else 2.0 * float(np.sum(hsv_s[r:]))
    return reduced, hsv, r + dim * n_u, bound, error


def _left_stability(original: DiagonalSSM, reduced: DiagonalSSM) -> bool:
    """Whether an unbatched stable system was reduced to one with a pole on or outside the stability boundary."""
    return bool(np.all(original.stability_margin > 0) and np.any(reduced.stability_margin <= 0))


def _difference(original: DiagonalSSM, reduced: DiagonalSSM) -> DiagonalSSM:
    """The diagonal error system G − G_r: both state sets side by side, C_r negated, D − D_r."""
    return original.replace(
        poles=np.concatenate([original.poles, reduced.poles]),
        B=np.concatenate([original.B, reduced.B]),
        C=np.concatenate([original.C, -reduced.C], axis=-1),
        D=original.D - reduced.D,
    )

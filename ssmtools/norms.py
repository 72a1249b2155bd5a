"""Exact system norms of diagonal SSMs: layer H∞ and H2, per-state norms, Gramians, HSVs.

All functions are batched over ``sys.batch_shape``. Unstable or marginally stable systems
(|λ| ≥ 1 in discrete time, Re λ ≥ 0 in continuous time) have infinite norms: they return
``inf`` and emit :class:`~ssmtools.errors.UnstableSystemWarning`, never a large finite number.
Formulas: ``docs/concepts/norms.md`` (math.md §3–4).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np

from . import _hinf_diagonal, _kernels
from ._backends import slycot as _slycot
from .errors import check_choice, warn_unstable
from .systems import DiagonalSSM, augmented_realization, real_standard_form

HinfMethod = Literal["slycot", "diagonal"]
H2Method = Literal["gramian", "slycot"]
Backend = Literal["numpy", "torch"]
Precision = Literal["float64", "float32"]


def _check_backend(backend: str, device: Any) -> None:
    check_choice("backend", backend, ("numpy", "torch"))
    if backend == "numpy" and device is not None:
        raise ValueError(f"device={device!r} needs backend='torch'; NumPy runs on the host only")


def _torch_arrays(sys: DiagonalSSM, device: Any, dtype: str):
    from ._backends import torch as _torch

    return _torch, _torch.as_tensors(sys.poles, sys.B, sys.C, sys.D, device=device, dtype=dtype)


def _batch_result(values: np.ndarray):
    """0-d arrays become NumPy scalars; batched results stay arrays of shape ``batch_shape``."""
    return values[()] if values.ndim == 0 else values


def _unstable_systems(sys: DiagonalSSM) -> np.ndarray:
    unstable = ~np.asarray(sys.is_stable)
    if np.any(unstable):
        warn_unstable("systems are", int(np.count_nonzero(unstable)), int(unstable.size))
    return unstable


def _stabilized_poles(sys: DiagonalSSM) -> np.ndarray:
    """Poles with unstable entries replaced by a harmless stable value (their results are masked)."""
    return np.where(sys.stability_margin > 0, sys.poles, 0.0 if sys.is_discrete else -1.0)


def _hinf_brackets(sys: DiagonalSSM, rtol: float, device: Any):
    """Certified brackets of every stable system in the batch (``None`` where unstable)."""
    if not 0 < rtol < 1:
        raise ValueError(f"rtol={rtol!r} must lie in (0, 1); the default 1e-8 is usually right")
    unstable = _unstable_systems(sys)
    brackets = np.empty(sys.batch_shape, dtype=object)
    for index in np.ndindex(*sys.batch_shape):
        if not unstable[index]:
            brackets[index] = _hinf_diagonal.hinf_bracket(
                sys.poles[index], sys.B[index], sys.C[index], sys.D[index], discrete=sys.is_discrete,
                real_output=sys.output == "real", state_includes_input=sys.state_includes_input,
                rtol=rtol, device=device,
            )
    return unstable, brackets


def hinf_bounds(sys: DiagonalSSM, *, rtol: float = 1e-8, backend: Backend = "numpy", device: Any = None):
    """Certificate of the layer H∞ norm: ``lower ≤ ‖G‖∞ ≤ upper`` for every system in the batch.

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape, CT or DT, real or complex output, D and ``state_includes_input`` honoured.
    rtol : float
        Requested relative width: ``upper ≤ (1 + rtol)·lower + atol`` (atol: the floating-point
        evaluation floor, about 2e-13·(n + m + p)·(‖D‖_F + Σ_i ‖c_i‖‖b_i‖/|e^{jω} − λ_i|) at the peak).
    backend : {"numpy", "torch"}
        Where the exact σ_max evaluations run; ``"torch"`` with ``device`` (e.g. ``"cuda"``).
    device : str or torch.device, optional
        Torch device (``backend="torch"`` only); ``None`` means CPU.

    Returns
    -------
    lower, upper : float or ndarray of shape ``batch_shape``
        ``inf`` for systems that are not asymptotically stable.

    Notes
    -----
    Branch and bound over frequency on the unit circle with rigorous interval bounds built from
    the per-state terms (``ssmtools._hinf_diagonal``; docs/benchmarks.md explains the steps).

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True)
    >>> lower, upper = hinf_bounds(sys)
    >>> bool(lower <= 2.0 <= upper)
    True
    """
    _check_backend(backend, device)
    unstable, brackets = _hinf_brackets(sys, rtol, device)
    lower = np.full(sys.batch_shape, np.inf)
    upper = np.full(sys.batch_shape, np.inf)
    for index in np.ndindex(*sys.batch_shape):
        if not unstable[index]:
            lower[index], upper[index] = brackets[index].lower, brackets[index].upper
    return _batch_result(lower), _batch_result(upper)


def hinf_norm(
    sys: DiagonalSSM,
    *,
    method: HinfMethod = "diagonal",
    return_peak: bool = False,
    tol: float = 1e-12,
    rtol: float = 1e-8,
    backend: Backend = "numpy",
    device: Any = None,
):
    """Layer H∞ norm ``sup_ω σ_max(G(e^{jω}))`` (DT) or ``sup_ω σ_max(G(jω))`` (CT).

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape; D and ``state_includes_input`` are honoured (math.md §1.1).
    method : {"diagonal", "slycot"}
        ``"diagonal"`` (default): the certified branch-and-bound algorithm for diagonal systems
        (:func:`hinf_bounds`); returns σ_max at the peak it found, never below the true norm by
        more than ``rtol`` (relative). If it cannot certify a system within its iteration budget
        (poles closer than ~1e-11 to the stability boundary) it says so with a ``RuntimeWarning``
        and uses AB13DD for that system. ``"slycot"``: SLICOT AB13DD (Bruinsma–Steinbuch level
        sets) on the real standard-form realization, called directly with tolerance ``tol``.
    return_peak : bool
        Also return the peak frequency (rad/sample for DT, rad/s for CT; ``nan`` where unstable).
    tol : float
        Relative accuracy passed to AB13DD (``method="slycot"`` and the fallback; python-control
        uses 1e-6, we default to 1e-12).
    rtol : float
        Relative accuracy certified by ``method="diagonal"``.
    backend : {"numpy", "torch"}
        ``method="diagonal"`` only: where the exact σ_max evaluations run. Results are NumPy.
    device : str or torch.device, optional
        Torch device for ``backend="torch"`` (``None``: CPU).

    Returns
    -------
    norm : float or ndarray of shape ``batch_shape``
        ``inf`` for systems that are not asymptotically stable.
    peak : float or ndarray, only with ``return_peak=True``

    Notes
    -----
    For ``output="complex"`` the realified system (math.md, ``DiagonalSSM.to_control``) has the
    same largest singular value, so the norm is that of the complex transfer matrix.

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True)
    >>> round(float(hinf_norm(sys)), 12)
    2.0
    """
    check_choice("method", method, ("slycot", "diagonal"))
    _check_backend(backend, device)
    if not 0 < tol < 1:
        raise ValueError(f"tol={tol!r} must lie in (0, 1)")
    if method == "slycot" and backend != "numpy":
        raise ValueError("backend='torch' applies to method='diagonal' only; AB13DD runs in SLICOT on the host")
    values = np.full(sys.batch_shape, np.inf)
    peaks = np.full(sys.batch_shape, np.nan)
    if method == "diagonal":
        unstable, brackets = _hinf_brackets(sys, rtol, device)
        uncertified = []
        for index in np.ndindex(*sys.batch_shape):
            if not unstable[index]:
                values[index], peaks[index] = brackets[index].value, brackets[index].peak
                if not brackets[index].certified:
                    uncertified.append(index)
        if uncertified:
            warnings.warn(
                f"method='diagonal' could not certify {len(uncertified)} system(s) to rtol={rtol:g} within its "
                "iteration budget; their values come from SLICOT AB13DD instead", RuntimeWarning, stacklevel=2)
            A, B, C, D = real_standard_form(sys)
            for index in uncertified:
                values[index], peaks[index] = _slycot.linf_norm(A[index], B[index], C[index], D[index],
                                                                discrete=sys.is_discrete, tol=tol)
        if return_peak:
            return _batch_result(values), _batch_result(peaks)
        return _batch_result(values)
    unstable = _unstable_systems(sys)
    A, B, C, D = real_standard_form(sys)
    for index in np.ndindex(*sys.batch_shape):
        if unstable[index]:
            continue
        values[index], peaks[index] = _slycot.linf_norm(A[index], B[index], C[index], D[index],
                                                        discrete=sys.is_discrete, tol=tol)
    if return_peak:
        return _batch_result(values), _batch_result(peaks)
    return _batch_result(values)


def h2_norm(
    sys: DiagonalSSM, *, method: H2Method = "gramian", backend: Backend = "numpy", device: Any = None,
    dtype: Precision = "float64",
):
    """Layer H2 norm ``sqrt(Σ_k ‖h_k‖²_F)`` (DT) or ``sqrt(∫‖h(t)‖²_F dt)`` (CT).

    Parameters
    ----------
    sys : DiagonalSSM
    method : {"gramian", "slycot"}
        ``"gramian"``: closed-form diagonal Gramian, O(n²(m + p)) (math.md §4.2),
        ``‖G‖² = tr(C_a P_a C_aᴴ) + ‖D‖²_F + 2 Re tr(Dᴴ C_a B_a)``, the last term only when the state
        includes the current input. ``"slycot"``: SLICOT AB13BD on the real standard form (cross-check).
    backend : {"numpy", "torch"}
        ``"torch"`` evaluates the Gramian formula in torch and returns a tensor on ``device``.
    device : str or torch.device, optional
        Torch device (``backend="torch"`` only); ``None`` means CPU.
    dtype : {"float64", "float32"}
        Torch precision; float32 (complex64) only on request (relative error ~1e-6, worse near
        the stability boundary).

    Returns
    -------
    float or ndarray of shape ``batch_shape`` (torch tensor for ``backend="torch"``)
        ``inf`` for unstable systems and for continuous-time systems with D ≠ 0.

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True)
    >>> round(float(h2_norm(sys)) ** 2, 12)  # Σ_k 0.25^k = 4/3
    1.333333333333
    """
    check_choice("method", method, ("gramian", "slycot"))
    _check_backend(backend, device)
    if method == "slycot" and backend != "numpy":
        raise ValueError("backend='torch' applies to method='gramian' only; AB13BD runs in SLICOT on the host")
    unstable = _unstable_systems(sys)
    infinite = unstable.copy()
    if not sys.is_discrete:
        infinite |= np.any(sys.D != 0, axis=(-1, -2))
    if method == "slycot":
        values = np.full(sys.batch_shape, np.inf)
        A, B, C, D = real_standard_form(sys)
        realified_scale = 1.0 if sys.output == "real" else np.sqrt(2.0)
        for index in np.ndindex(*sys.batch_shape):
            if not infinite[index]:
                values[index] = _slycot.h2_norm(A[index], B[index], C[index], D[index],
                                                 discrete=sys.is_discrete) / realified_scale
        return _batch_result(values)
    lam, B, C = augmented_realization(sys.replace(poles=_stabilized_poles(sys)) if np.any(unstable) else sys)
    if backend == "torch":
        _torch, (_, _, _, D_t) = _torch_arrays(sys, device, dtype)
        lam_t, B_t, C_t = _torch.as_tensors(lam, B, C, device=device, dtype=dtype)
        P_t = _kernels.diagonal_controllability_gramian(lam_t, B_t, discrete=sys.is_discrete)
        cross_t = C_t @ B_t if sys.state_includes_input else None
        value2_t = _kernels.h2_squared_from_gramian(P_t, C_t, D_t, feedthrough_cross=cross_t)
        infinite_t = _torch.torch_module().as_tensor(infinite, device=value2_t.device)
        return value2_t.sqrt().masked_fill(infinite_t, float("inf"))
    P = _kernels.diagonal_controllability_gramian(lam, B, discrete=sys.is_discrete)
    cross = C @ B if sys.state_includes_input else None
    value2 = _kernels.h2_squared_from_gramian(P, C, sys.D, feedthrough_cross=cross)
    return _batch_result(np.where(infinite, np.inf, np.sqrt(value2)))


def _warn_unstable_states(sys: DiagonalSSM) -> None:
    unstable = sys.stability_margin <= 0
    if np.any(unstable):
        warn_unstable("states are", int(np.count_nonzero(unstable)), int(unstable.size))


def state_hinf_norms(
    sys: DiagonalSSM, *, return_peak: bool = False, backend: Backend = "numpy", device: Any = None,
    dtype: Precision = "float64",
):
    """H∞ norm of every one-state subsystem ``G_i = c_i b_iᵀ/(z − λ_i)`` (``s`` for z in CT).

    Parameters
    ----------
    sys : DiagonalSSM
    return_peak : bool
        Also return the peak frequency of each subsystem (rad/sample for DT, rad/s for CT).
    backend : {"numpy", "torch"}
        ``"torch"`` returns torch tensors on ``device``. Complex output runs the closed form in
        torch; real output (conjugate pairs) maximises on the host with the NumPy kernel and moves
        the result to ``device``.
    device : str or torch.device, optional
        Torch device (``backend="torch"`` only); ``None`` means CPU.
    dtype : {"float64", "float32"}
        Torch precision (float32 only on request).

    Returns
    -------
    ndarray of float64, shape ``(*batch, n)``
        ``inf`` where a state is not asymptotically stable. Neither D nor the unimodular factor z of
        ``state_includes_input`` changes these values.

    Notes
    -----
    With ``s_i = ‖c_i‖‖b_i‖``: complex output, DT ``s_i/(1 − |λ_i|)`` at ω = arg λ_i, CT
    ``s_i/|Re λ_i|`` at ω = Im λ_i (math.md §3.1). Real output ``y = Re(Cx)``: each state stands
    for the conjugate pair, whose subsystem is ½ of ``2Re(c bᵀ)/(z − λ)``; its exact H∞ is the
    maximum over ω of the closed-form 2×2 eigenvalue of math.md §3.2, found by a dense
    damping-adapted grid and golden-section refinement to full precision. The single-pole
    value is **not** the pair norm.

    Examples
    --------
    >>> sys = DiagonalSSM([0.8], [[3.0, 4.0]], [[1.0]], dt=True)
    >>> state_hinf_norms(sys).round(12)  # 5 / (1 - 0.8)
    array([25.])
    """
    _check_backend(backend, device)
    _warn_unstable_states(sys)
    discrete = sys.is_discrete
    if backend == "torch":
        _torch, (lam_t, B_t, C_t, _) = _torch_arrays(sys, device, dtype)
        if sys.output == "complex":
            values_t = _kernels.single_pole_hinf(lam_t, _kernels.single_pole_gain(B_t, C_t), discrete=discrete)
            peaks_t = lam_t.angle() if discrete else lam_t.imag
            peaks_t = peaks_t.masked_fill(~values_t.isfinite(), float("nan"))
        else:
            pair_values, peaks = _kernels.pair_hinf(sys.poles, sys.B, sys.C, discrete=discrete)
            torch = _torch.torch_module()
            real_dtype = lam_t.real.dtype
            values_t = torch.as_tensor(0.5 * pair_values, device=lam_t.device, dtype=real_dtype)
            peaks_t = torch.as_tensor(peaks, device=lam_t.device, dtype=real_dtype)
        return (values_t, peaks_t) if return_peak else values_t
    if sys.output == "complex":
        values = _kernels.single_pole_hinf(sys.poles, _kernels.single_pole_gain(sys.B, sys.C), discrete=discrete)
        peaks = np.angle(sys.poles) if discrete else sys.poles.imag
        peaks = np.where(np.isfinite(values), peaks, np.nan)
    else:
        pair_values, peaks = _kernels.pair_hinf(sys.poles, sys.B, sys.C, discrete=discrete)
        values = 0.5 * pair_values
    return (values, peaks) if return_peak else values


def state_h2_norms(
    sys: DiagonalSSM, *, backend: Backend = "numpy", device: Any = None, dtype: Precision = "float64"
):
    """H2 norm of every one-state subsystem, shape ``(*batch, n)``.

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape; neither D nor ``state_includes_input`` changes the values.
    backend : {"numpy", "torch"}
        ``"torch"`` evaluates the same closed forms in torch and returns a tensor on ``device``.
    device : str or torch.device, optional
        Torch device (``backend="torch"`` only); ``None`` means CPU.
    dtype : {"float64", "float32"}
        Torch precision (float32 only on request).

    Returns
    -------
    ndarray of float64, shape ``(*batch, n)`` (torch tensor for ``backend="torch"``)

    Notes
    -----
    Complex output: DT ``s_i/sqrt(1 − |λ_i|²)``, CT ``s_i/sqrt(2|Re λ_i|)`` (math.md §3.1).
    Real output: ½ of the exact conjugate-pair H2 of math.md §3.3, including the cross term
    ``2 Re((cᵀc)(bᵀb)/(1 − λ²))`` that single-pole formulas drop. ``inf`` where unstable.
    The squared value is accurate to about machine epsilon times the single-pole H2², so a pair
    whose H2 nearly cancels to 0 is reported as ≲ 1e-8 × its single-pole H2.

    Examples
    --------
    >>> sys = DiagonalSSM([0.6], [[1.0]], [[1.0]], dt=True)
    >>> state_h2_norms(sys).round(12)  # 1 / sqrt(1 - 0.36)
    array([1.25])
    """
    _check_backend(backend, device)
    _warn_unstable_states(sys)
    if backend == "torch":
        _torch, (lam_t, B_t, C_t, _) = _torch_arrays(sys, device, dtype)
        if sys.output == "complex":
            gain_t = _kernels.single_pole_gain(B_t, C_t)
            return _kernels.single_pole_h2_squared(lam_t, gain_t, discrete=sys.is_discrete).sqrt()
        return 0.5 * _kernels.pair_h2_squared(lam_t, B_t, C_t, discrete=sys.is_discrete).sqrt()
    if sys.output == "complex":
        gain = _kernels.single_pole_gain(sys.B, sys.C)
        return np.sqrt(_kernels.single_pole_h2_squared(sys.poles, gain, discrete=sys.is_discrete))
    return 0.5 * np.sqrt(_kernels.pair_h2_squared(sys.poles, sys.B, sys.C, discrete=sys.is_discrete))


def _require_stable(sys: DiagonalSSM, what: str) -> None:
    if not np.all(sys.is_stable):
        raise ValueError(
            f"{what} exist only for asymptotically stable systems; {int(np.count_nonzero(~np.asarray(sys.is_stable)))} "
            "system(s) in the batch have poles with |λ| ≥ 1 (DT) or Re λ ≥ 0 (CT). Remove or clip those poles first."
        )


def gramians(sys: DiagonalSSM) -> tuple[np.ndarray, np.ndarray]:
    """Controllability and observability Gramians ``(P, Q)`` of the diagonal realization.

    The realization is ``(Λ_a, B_a, C_a)`` of :func:`ssmtools.systems.augmented_realization`:
    (Λ, B, C) for complex output, the 2n-state conjugate-augmented one for real output. It is the
    strictly proper part without the factor z of ``state_includes_input`` (math.md §4.4).

    Parameters
    ----------
    sys : DiagonalSSM
        Asymptotically stable, any batch shape.

    Returns
    -------
    P, Q : ndarray of complex128, shape ``(*batch, N, N)``, N = n (complex) or 2n (real output)
        DT ``P_ij = (BBᴴ)_ij/(1 − λ_i conj λ_j)``, ``Q_ij = (CᴴC)_ij/(1 − conj λ_i λ_j)``;
        CT ``P_ij = −(BBᴴ)_ij/(λ_i + conj λ_j)``, ``Q_ij = −(CᴴC)_ij/(conj λ_i + λ_j)`` (math.md §4.1).

    Raises
    ------
    ValueError
        If a system is not asymptotically stable.
    """
    _require_stable(sys, "Gramians")
    lam, B, C = augmented_realization(sys)
    P = _kernels.diagonal_controllability_gramian(lam, B, discrete=sys.is_discrete)
    Q = _kernels.diagonal_observability_gramian(lam, C, discrete=sys.is_discrete)
    return P, Q


def hankel_singular_values(sys: DiagonalSSM) -> np.ndarray:
    """Hankel singular values ``σ_j = sqrt(eig_j(PQ))``, descending, shape ``(*batch, N)``.

    Parameters
    ----------
    sys : DiagonalSSM
        Asymptotically stable, any batch shape. N = n (complex output) or 2n (real output: each
        stored state is a conjugate pair, two real dimensions).

    Notes
    -----
    Gramians of the strictly proper part (Λ, B, C) — not of the standard form (Λ, B, CΛ) — so
    that balanced truncation keeps the ``state_includes_input`` convention (math.md §4.4).
    Computed by the square-root method, ``svd(L_Qᴴ L_P)``, stable for nearly singular Gramians.

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True)
    >>> round(float(hankel_singular_values(sys)[0]), 12)  # 1 / (1 - 0.25)
    1.333333333333
    """
    P, Q = gramians(sys)
    return _kernels.hankel_singular_values_from_gramians(P, Q)

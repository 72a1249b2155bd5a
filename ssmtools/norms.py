"""Exact system norms of diagonal and bidirectional SSMs: layer H∞/L∞ and H2/L2, per-state norms, Gramians, HSVs.

Every function takes a [`DiagonalSSM`][ssmtools.systems.DiagonalSSM] or a
[`BidirectionalSSM`][ssmtools.systems.BidirectionalSSM] (Gramians and Hankel singular values: causal systems
only) and is batched over ``sys.batch_shape``. Unstable or marginally stable systems (|λ| ≥ 1 in
discrete time, Re λ ≥ 0 in continuous time) have infinite norms: they return ``inf`` and emit
[`UnstableSystemWarning`][ssmtools.errors.UnstableSystemWarning], never a large finite number.

Results come back by the one rule of ``ssmtools._backends``: NumPy (0-d results as NumPy
scalars) for ``backend="numpy"``, torch tensors on ``device`` for ``backend="torch"``.
Formulas: docs/concepts/derivations.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import _bidirectional, _hinf_diagonal, _kernels
from ._backends import Backend, Precision, get_backend, slycot as _slycot
from ._backends.threads import one_blas_thread
from .errors import ArgumentError, ArgumentTypeError, OptionError, check_choice, silence_unstable, warn_unstable
from .systems import BidirectionalSSM, DiagonalSSM, LTISystem, augmented_realization, freqresp, real_standard_form

__all__ = [
    "HinfResult",
    "hinf_result",
    "hinf_norm",
    "h2_norm",
    "state_hinf_result",
    "state_hinf_norms",
    "state_h2_norms",
    "gramian_factors",
    "gramians",
    "hankel_singular_values",
]

HinfMethod = Literal["auto", "diagonal", "slycot"]
H2Method = Literal["gramian", "slycot"]
FrequencyUnit = Literal["native", "rad/s"]


@dataclass(frozen=True)
class HinfResult:
    """An H∞ (L∞) norm with its peak frequency and a bracket: ``lower ≤ ‖G‖∞ ≤ upper``.

    Parameters
    ----------
    value : float or ndarray (tensor for ``backend="torch"``)
        σ_max(G) at ``peak``; shape ``batch_shape`` (layer norms) or ``(*batch, n)`` (per-state norms).
    peak : same type and shape
        Peak frequency: rad/sample (DT), rad/s (CT, ``inf`` when the supremum is approached as
        ω → ∞); ``nan`` where unstable.
    lower, upper : same type and shape
        Bracket of the norm. ``method="diagonal"``: certified (``upper ≤ (1 + rtol)·lower + atol``);
        ``method="slycot"``: AB13DD's accuracy claim, ``upper = value·(1 + tol)``; closed forms:
        ``lower = upper = value``. A system the diagonal algorithm could not certify keeps its (valid,
        wider) bracket.
    method : str
        Engine used: ``"diagonal"``, ``"slycot"`` or ``"closed-form"``; ``"diagonal+slycot"`` for a batch where
        ``method="auto"`` switched some systems to AB13DD (see :func:`hinf_result`).
    """

    value: Any
    peak: Any
    lower: Any
    upper: Any
    method: str


def _per_sample(sys: LTISystem, frequency_unit: str) -> float:
    """What a peak frequency in the system's own unit is divided by to give ``frequency_unit``: 1, or ``dt`` for
    a sampled system's rad/sample → rad/s (the one place of that conversion)."""
    check_choice("frequency_unit", frequency_unit, ("native", "rad/s"))
    if frequency_unit == "native" or not sys.is_discrete:
        return 1.0
    if sys.dt is True:
        raise OptionError(
            "frequency_unit='rad/s' needs the sampling time, but this system has dt=True (unspecified); build it "
            "with dt=<seconds per sample>, or use frequency_unit='native' (rad/sample)"
        )
    return float(sys.dt)


def _batch_result(values: np.ndarray) -> Any:
    """0-d arrays become NumPy scalars; batched results stay arrays of shape ``batch_shape``."""
    return values[()] if values.ndim == 0 else values


def _unstable_systems(sys: LTISystem) -> np.ndarray:
    unstable = ~np.asarray(sys.is_stable)
    if np.any(unstable):
        warn_unstable("systems are", int(np.count_nonzero(unstable)), int(unstable.size))
    return unstable


def _warn_unstable_states(sys: LTISystem) -> None:
    unstable = sys.stability_margin <= 0
    if np.any(unstable):
        warn_unstable("states are", int(np.count_nonzero(unstable)), int(unstable.size))


def _check_system(sys: Any, what: str) -> None:
    if not isinstance(sys, (DiagonalSSM, BidirectionalSSM)):
        raise ArgumentTypeError(
            f"{what} takes a DiagonalSSM or a BidirectionalSSM, got {type(sys).__name__}; build one with "
            "ssmtools.DiagonalSSM(poles, B, C, D, dt=...) or DiagonalSSM.from_control(...)"
        )


def check_horizon(sys: Any, horizon: Any) -> float | int | None:
    """Validate a finite horizon for ``sys``: ``None``, an integer L ≥ 1 (DT, steps) or a time T > 0 (CT).

    Parameters
    ----------
    sys : DiagonalSSM or BidirectionalSSM
        The system the horizon applies to (causal only).
    horizon : int or float or None
        The value to check.

    Returns
    -------
    int or float or None
        ``horizon`` as an ``int`` (DT) or ``float`` (CT), or None.
    """
    if horizon is None:
        return None
    if isinstance(sys, BidirectionalSSM):
        raise OptionError(
            "horizon= applies to causal systems; a BidirectionalSSM sees the whole sequence in both directions "
            "(use sys.forward or sys.backward)"
        )
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"horizon must be a number (sequence length L in DT, time T in CT), got {horizon!r}")
    if sys.is_discrete:
        if float(horizon) != int(horizon) or int(horizon) < 1:
            raise ArgumentError(f"horizon={horizon!r}: a discrete-time horizon is a sequence length, an integer ≥ 1")
        return int(horizon)
    if not (np.isfinite(horizon) and horizon > 0):
        raise ArgumentError(f"horizon={horizon!r}: a continuous-time horizon is a time T > 0 (finite)")
    return float(horizon)


def _response_horizon(sys: DiagonalSSM, horizon: int | float) -> int | float:
    """Gramian horizon whose ``tr(C P Cᴴ)`` is the energy of the first L impulse-response samples.

    ``h_0 = D`` and ``h_k = CΛ^{k−1}B`` (standard convention) need ``P(L − 1)``; with the state including the
    input ``h_k = CΛᵏB (+ D at k = 0)`` need ``P(L)`` (docs/concepts/derivations.md#finite-horizon-gramians).
    CT: the time T itself.
    """
    if not sys.is_discrete or sys.state_includes_input:
        return horizon
    return int(horizon) - 1


# ---------------------------------------------------------------------------------------------- H∞ / L∞
_TINY_STATES = 16  # real states up to which AB13DD can be the faster engine (32-state SISO S4D channels: 1.5× slower)
_TINY_WORK = 9e7  # ... and AB13DD's expected work (_backends.slycot.linf_work) below which it beats the diagonal
# algorithm's fixed cost (benchmarks/bench_hinf_few_states.py: 2–16 real states × 16–64 channels cross over at 5e7–1e8)
_TINY_MARGIN = 1e-6  # ... provided every pole is this far inside the boundary (AB13DD loses digits closer)
_CROSS_CHECKED = 8  # poles whose frequencies cross-check an AB13DD result


def auto_hinf_method(sys: LTISystem, *, backend: Backend = "numpy") -> Literal["diagonal", "slycot"]:
    """The H∞ engine ``hinf_norm(method="auto")`` uses for ``sys`` — the one place of that policy.

    Parameters
    ----------
    sys : DiagonalSSM or BidirectionalSSM
    backend : {"numpy", "torch"}
        The requested array library: a causal system on a backend other than NumPy always gets the diagonal
        algorithm, the engine that runs there.

    Returns
    -------
    {"diagonal", "slycot"}
        ``"slycot"`` (AB13DD on the I/O-compressed real standard form) for bidirectional layers, which
        the diagonal algorithm does not handle, and for causal systems without feedthrough whose real
        state dimension is below their input or output count (truncation-error systems, one-state
        subsystems: the compression leaves at most 2n inputs and outputs), and for tiny layers (at most 16 real
        states, AB13DD's expected work below 9·10⁷ flops — 16 real states with up to ~30 channels, 4 with up to
        ~48 — and every pole at least 1e-6 inside the stability boundary), where AB13DD costs less than the
        diagonal algorithm's fixed cost (with more channels the diagonal algorithm is faster also on few states:
        its cost barely grows with them, AB13DD's does; on 32-state SISO channels it is 1.5× faster).
        ``"diagonal"`` (the certified level-set / branch-and-bound algorithm) otherwise — full layers, whose D of
        full rank defeats the compression, and poles next to the boundary.
    """
    if isinstance(sys, BidirectionalSSM):
        return "slycot"
    if backend != "numpy":
        return "diagonal"
    real_states = sys.n_states * (2 if sys.output == "real" else 1)
    if not sys.has_feedthrough and real_states < min(sys.n_inputs, sys.n_outputs):
        return "slycot"
    margin = sys.stability_margin
    tiny = real_states <= _TINY_STATES and _slycot.linf_work(real_states, sys.n_inputs, sys.n_outputs) < _TINY_WORK
    if tiny and (margin.size == 0 or float(np.min(margin)) >= _TINY_MARGIN):
        return "slycot"
    return "diagonal"


def _switch_budget(sys: DiagonalSSM) -> float:
    """Flops the diagonal algorithm may spend on one system of ``sys`` before ``method="auto"`` switches to
    AB13DD: AB13DD's expected cost on the real standard form (:func:`ssmtools._backends.slycot.linf_work`), so
    that an exact H∞ never costs more than about twice what AB13DD alone would."""
    real_states = sys.n_states * (2 if sys.output == "real" else 1)
    return _slycot.linf_work(real_states, sys.n_inputs, sys.n_outputs)


def _slycot_linf(sys: LTISystem, index: tuple[int, ...], tol: float, forms: Any) -> tuple[float, float]:
    """AB13DD on one system of the batch; for complex output the sign of the peak frequency is restored."""
    one = sys[index] if index else sys
    if isinstance(one, BidirectionalSSM):
        value, peak = _slycot.linf_norm(*_bidirectional.standard_form(one), discrete=True, tol=tol)
    else:
        A, B, C, D = forms
        full_rank = _slycot.full_rank_diagonal(np.asarray(one.D))
        value, peak = _slycot.linf_norm(
            A[index], B[index], C[index], D[index], discrete=sys.is_discrete, tol=tol, compress=not full_rank
        )
    if not np.isfinite(value):
        return value, peak
    # cross-check against σ_max at its peak (both signs: for complex output AB13DD sees the realified system and
    # reports |ω|) and at the pole frequencies, where AB13DD at tight tolerances can miss a narrow peak of a
    # feedthrough-dominated system; keep the largest attained value if it beats AB13DD's
    symmetric = not isinstance(one, BidirectionalSSM) and one.output == "real"  # σ(G(−ω)) = σ(G(ω)): ω ≥ 0 only
    candidates = _pole_frequencies(one)
    if symmetric:
        candidates = np.unique(np.abs(candidates))
    if np.isfinite(peak):
        candidates = np.concatenate([[peak] if symmetric else [peak, -peak], candidates])
    sigma = _sigma_max(one, candidates)
    best = int(np.argmax(sigma))
    if np.isfinite(peak) and not symmetric and sigma[1] > sigma[0]:
        peak = -peak
    if sigma[best] > value:
        value, peak = float(sigma[best]), float(candidates[best])
    return value, peak


def _sigma_max(sys: LTISystem, omega: np.ndarray) -> np.ndarray:
    """σ_max of the frequency response at ``omega``; a causal system's G_k = C_a diag(r_k) B_a [·z] + D by batched
    matrix products and the smaller Gram's largest eigenvalue (the cross-check's cost stays below AB13DD's)."""
    if isinstance(sys, BidirectionalSSM):
        return np.linalg.norm(freqresp(sys, omega), ord=2, axis=(-2, -1))
    lam, B, C = augmented_realization(sys)
    z = np.exp(1j * omega) if sys.is_discrete else 1j * omega
    r = _kernels.resolvent(omega[:, None], lam, discrete=sys.is_discrete)  # (k, N)
    if sys.state_includes_input:
        r = r * z[:, None]
    G = (C[None] * r[:, None, :]) @ B + sys.D
    Gh = np.conj(np.swapaxes(G, -1, -2))
    gram = Gh @ G if G.shape[-1] <= G.shape[-2] else G @ Gh
    return np.sqrt(np.maximum(np.linalg.eigvalsh(gram)[:, -1], 0.0))


def _pole_frequencies(sys: LTISystem, *, top: int = _CROSS_CHECKED) -> np.ndarray:
    """The frequencies (arg λ in DT, Im λ in CT, both signs, and 0 and π in DT) of the ``top`` poles with the
    sharpest, highest resonances (largest ``‖c_i‖‖b_i‖/margin_i``: the narrow peaks AB13DD can miss)."""
    poles = np.ravel(sys.poles)
    if isinstance(sys, DiagonalSSM) and poles.size > top:
        gain = np.linalg.norm(sys.C, axis=-2) * np.linalg.norm(sys.B, axis=-1)
        sharpness = np.ravel(gain / np.maximum(sys.stability_margin, 1e-300))
        poles = poles[np.argsort(-sharpness)[:top]]
    angles = np.angle(poles) if sys.is_discrete else poles.imag
    edges = [0.0, np.pi] if sys.is_discrete else [0.0]
    return np.unique(np.concatenate([angles, -angles, edges]))


def hinf_result(
    sys: LTISystem,
    *,
    method: HinfMethod = "auto",
    tol: float = 1e-12,
    rtol: float = 1e-8,
    backend: Backend = "numpy",
    device: Any = None,
    frequency_unit: FrequencyUnit = "native",
) -> HinfResult:
    """Layer H∞ norm with its peak frequency and bracket, ``sup_ω σ_max(G(e^{jω}))`` (DT) or ``G(jω)`` (CT).

    Parameters
    ----------
    sys : DiagonalSSM or BidirectionalSSM
        Any batch shape; D and ``state_includes_input`` are honoured. For a bidirectional layer the
        value is the L∞ norm of the forward plus backward response (its ℓ2 gain).
    method : {"auto", "diagonal", "slycot"}
        ``"auto"`` (default): :func:`auto_hinf_method` decides; when it picks the diagonal algorithm, a
        system on which that algorithm's work passes AB13DD's expected cost is handed to AB13DD
        (never-slower guarantee; ``HinfResult.method`` then says ``"slycot"``). ``"diagonal"``: the certified diagonal
        algorithm (level-set certificate, or branch and bound next to the boundary; causal only); never below the true norm by more than ``rtol``
        (relative); for a system it cannot certify within its budget (poles closer than ~1e-11 to the
        boundary) it returns the value attained at its peak with the valid, wider bracket and says how
        wide in a ``RuntimeWarning`` (AB13DD is less accurate there). ``"slycot"``: SLICOT AB13DD
        (Bruinsma–Steinbuch level sets) on the I/O-compressed real standard form, tolerance ``tol``.
    tol : float
        Relative accuracy passed to AB13DD (python-control uses 1e-6; the default here is 1e-12). With
        ``method="auto"`` AB13DD runs at ``max(tol, min(rtol/100, 1e-10))`` (1e-10 by default): it is chosen
        there for speed, at least as accurate as the certified engine was asked to be.
    rtol : float
        Relative accuracy certified by the diagonal algorithm.
    backend : {"numpy", "torch"}
        ``"torch"``: the exact σ_max evaluations of the diagonal algorithm — its dominant cost, and
        always the reported value at the peak — run in torch on ``device``, and the result fields are
        torch tensors there; the branch-and-bound bookkeeping and its cheap bounds stay on the host. AB13DD has no torch engine (``method="slycot"`` and
        bidirectional layers need ``backend="numpy"``).
    device : str or torch.device, optional
        Torch device for ``backend="torch"`` (``None``: CPU).
    frequency_unit : {"native", "rad/s"}
        Unit of ``peak``. ``"native"`` (default): rad/sample in discrete time, rad/s in continuous time.
        ``"rad/s"``: a sampled system's peak divided by its sampling time ``dt`` (as ``control.linfnorm``
        reports it); needs a numeric ``dt`` (not ``dt=True``). No change in continuous time.

    Returns
    -------
    HinfResult
        Fields of shape ``batch_shape``; ``inf`` (peak ``nan``) for systems that are not asymptotically
        stable.

    Notes
    -----
    For ``output="complex"`` the realified real system has the same largest singular value, so the
    norm is that of the complex transfer matrix (docs/concepts/derivations.md#real-realization).

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True)
    >>> result = hinf_result(sys)
    >>> round(float(result.value), 12), float(result.peak), result.method
    (2.0, 0.0, 'slycot')
    """
    _check_system(sys, "hinf_result")
    check_choice("method", method, ("auto", "diagonal", "slycot"))
    per_sample = _per_sample(sys, frequency_unit)
    array_backend = get_backend(backend, device)
    if not 0 < tol < 1:
        raise OptionError(f"tol={tol!r} must lie in (0, 1); the default 1e-12 is usually right")
    if not 0 < rtol < 1:
        raise OptionError(f"rtol={rtol!r} must lie in (0, 1); the default 1e-8 is usually right")
    chosen = auto_hinf_method(sys, backend=backend) if method == "auto" else method
    if chosen == "diagonal" and isinstance(sys, BidirectionalSSM):
        raise OptionError(
            "method='diagonal' handles causal systems only; use method='slycot' (or 'auto') for a BidirectionalSSM"
        )
    if chosen == "slycot" and backend != "numpy":
        raise OptionError(
            f"backend={backend!r} has no AB13DD engine: method='slycot' and bidirectional layers run "
            "in SLICOT on the host; use backend='numpy'"
        )
    unstable = _unstable_systems(sys)
    shape = sys.batch_shape
    value, peak = np.full(shape, np.inf), np.full(shape, np.nan)
    lower, upper = np.full(shape, np.inf), np.full(shape, np.inf)
    forms = real_standard_form(sys) if chosen == "slycot" and isinstance(sys, DiagonalSSM) else None
    auto_switch = method == "auto" and chosen == "diagonal" and backend == "numpy" and isinstance(sys, DiagonalSSM)
    budget = _switch_budget(sys) if auto_switch and isinstance(sys, DiagonalSSM) else None
    uncertified, switched = [], []
    if method == "auto":  # AB13DD chosen for speed: as accurate as the certified engine was asked to be
        tol = max(tol, min(1e-2 * rtol, 1e-10))
    with one_blas_thread():  # small LAPACK calls in sequence: threads only spin (_backends.threads)
        for index in np.ndindex(*shape):
            if unstable[index]:
                continue
            if chosen == "slycot":
                value[index], peak[index] = _slycot_linf(sys, index, tol, forms)
                lower[index], upper[index] = value[index], value[index] * (1.0 + tol)
                continue
            try:
                bracket = _hinf_diagonal.hinf_bracket(
                    sys.poles[index],
                    sys.B[index],
                    sys.C[index],
                    sys.D[index],
                    discrete=sys.is_discrete,
                    real_output=sys.output == "real",
                    state_includes_input=sys.state_includes_input,
                    rtol=rtol,
                    use_torch=backend == "torch",
                    device=device,
                    budget=budget,
                )
            except _hinf_diagonal.WorkBudgetExceeded as stop:  # the never-slower guarantee: AB13DD costs less from here
                forms = real_standard_form(sys) if forms is None and isinstance(sys, DiagonalSSM) else forms
                value[index], peak[index] = _slycot_linf(sys, index, tol, forms)
                if stop.value > value[index]:  # the branch and bound had attained more (AB13DD next to the circle)
                    value[index], peak[index] = stop.value, stop.peak
                lower[index], upper[index] = value[index], value[index] * (1.0 + tol)
                switched.append(index)
                continue
            value[index], peak[index], lower[index], upper[index] = (
                bracket.value,
                bracket.peak,
                bracket.lower,
                bracket.upper,
            )
            if not bracket.certified:
                uncertified.append(index)
    if uncertified:
        widths = [float(upper[i] / lower[i] - 1.0) if lower[i] > 0 else float("inf") for i in uncertified]
        warnings.warn(
            f"method='diagonal' could not certify {len(uncertified)} system(s) to rtol={rtol:g} within its iteration "
            f"budget (poles within ~1e-11 of the boundary); their values are attained at the returned peaks and "
            f"bracketed to relative width ≤ {max(widths):.2g} (HinfResult.lower/.upper)",
            RuntimeWarning,
            stacklevel=2,
        )
    used: str = chosen
    if switched:
        used = "slycot" if len(switched) == int(np.count_nonzero(~unstable)) else "diagonal+slycot"

    def out(array: np.ndarray) -> Any:
        return array_backend.from_numpy(array, device=device)

    return HinfResult(out(value), out(peak / per_sample), out(lower), out(upper), used)


def hinf_norm(
    sys: LTISystem,
    *,
    method: HinfMethod = "auto",
    tol: float = 1e-12,
    rtol: float = 1e-8,
    backend: Backend = "numpy",
    device: Any = None,
) -> Any:
    """Layer H∞ norm (L∞ for bidirectional layers): ``hinf_result(sys, ...).value``.

    Parameters
    ----------
    sys : DiagonalSSM or BidirectionalSSM
        Any batch shape.
    method : {"auto", "diagonal", "slycot"}
        See [`hinf_result`][ssmtools.norms.hinf_result].
    tol : float
        AB13DD tolerance.
    rtol : float
        Relative accuracy certified by the diagonal algorithm.
    backend : {"numpy", "torch"}
        Where the exact evaluations run and what the result is (see [`hinf_result`][ssmtools.norms.hinf_result]).
    device : str or torch.device, optional
        Torch device for ``backend="torch"``.

    Returns
    -------
    float or ndarray of shape ``batch_shape`` (tensor for ``backend="torch"``)
        ``inf`` for systems that are not asymptotically stable. The peak frequency and the certified
        bracket are in [`hinf_result`][ssmtools.norms.hinf_result].

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True)
    >>> round(float(hinf_norm(sys)), 12)
    2.0
    """
    return hinf_result(sys, method=method, tol=tol, rtol=rtol, backend=backend, device=device).value


# ---------------------------------------------------------------------------------------------- H2 / L2
def _causal_h2(
    sys: DiagonalSSM,
    infinite: np.ndarray,
    backend: Backend,
    device: Any,
    dtype: Precision,
    horizon: int | float | None = None,
) -> Any:
    """Closed-form Gramian H2 of a causal system in the requested backend (``inf`` where ``infinite``);
    with a ``horizon``, the energy of the first L impulse-response samples (every pole allowed)."""
    array_backend = get_backend(backend, device)
    if np.any(infinite):
        stable_poles = np.where(sys.stability_margin > 0, sys.poles, 0.0 if sys.is_discrete else -1.0)
        sys = sys.replace(poles=stable_poles)
    pairs = sys.output == "real"  # the stored half of the augmented realization suffices (half the work)
    lam, B, C = (sys.poles, sys.B, sys.C) if pairs else augmented_realization(sys)
    lam, B, C, D = array_backend.asarrays(lam, B, C, sys.D, device=device, dtype=dtype)
    gramian_horizon = None if horizon is None else _response_horizon(sys, horizon)
    cross = None
    if sys.state_includes_input:
        cross = _kernels.array_namespace(C).real(C @ B) if pairs else C @ B  # M_0 = C_a B_a
    value2 = _kernels.h2_squared_diagonal(
        lam, B, C, D, discrete=sys.is_discrete, feedthrough_cross=cross, horizon=gramian_horizon, conj_pairs=pairs
    )
    if backend == "numpy":
        return _batch_result(np.where(infinite, np.inf, np.sqrt(value2)))
    mask = array_backend.from_numpy(infinite.astype(float), device=device) > 0
    xp = _kernels.array_namespace(value2)
    return xp.where(mask, xp.inf, xp.sqrt(value2))


def h2_norm(
    sys: LTISystem,
    *,
    method: H2Method = "gramian",
    horizon: int | float | None = None,
    backend: Backend = "numpy",
    device: Any = None,
    dtype: Precision = "float64",
) -> Any:
    """Layer H2 norm ``sqrt(Σ_k ‖h_k‖²_F)`` (DT) or ``sqrt(∫‖h(t)‖²_F dt)`` (CT); two-sided for bidirectional layers.

    Parameters
    ----------
    sys : DiagonalSSM or BidirectionalSSM
        A bidirectional layer's value is its two-sided energy ``sqrt(Σ_{k∈ℤ} ‖h_k‖²_F)``.
    method : {"gramian", "slycot"}
        ``"gramian"``: closed-form diagonal Gramian, O(n²(m + p)),
        ``‖G‖² = tr(C_a P_a C_aᴴ) + ‖D‖²_F + 2 Re tr(Dᴴ C_a B_a)``, the last term only when the state
        includes the current input (docs/concepts/derivations.md#layer-h2). ``"slycot"``: SLICOT
        AB13BD on the real standard form (cross-check; causal systems only).
    horizon : int or float, optional
        Finite horizon (causal systems, ``method="gramian"``): DT, the energy of the first L samples
        ``sqrt(Σ_{k<L} ‖h_k‖²_F)`` (what the layer does on length-L sequences); CT, ``sqrt(∫_0^T ‖h‖²_F)``.
        Finite for every pole, unstable ones included, with no warning
        (docs/concepts/derivations.md#finite-horizon-gramians).
    backend : {"numpy", "torch"}
        ``"torch"`` evaluates the Gramian formula in torch and returns a tensor on ``device``.
    device : str or torch.device, optional
        Torch device (``backend="torch"`` only); ``None`` means CPU.
    dtype : {"float64", "float32"}
        Torch precision; float32 (complex64) only on request (relative error ~1e-6, worse near the
        stability boundary). NumPy always computes in float64.

    Returns
    -------
    float or ndarray of shape ``batch_shape`` (torch tensor for ``backend="torch"``)
        ``inf`` for unstable systems and for continuous-time systems with D ≠ 0.

    Notes
    -----
    Bidirectional: ``h_0 = out((C + C_b)B) + D``, ``h_k = out(CΛᵏB)``, ``h_{−k} = out(C_bΛᵏB)`` (k ≥ 1), so
    ``‖G‖₂² = ‖G_f[D ← D + M_b]‖²_H2 + ‖G_b‖²_H2 − ‖M_b‖²_F`` with G_b the causal system (Λ, B, C_b)
    and ``M_b = out(C_b B)`` (docs/concepts/derivations.md#bidirectional).

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True)
    >>> round(float(h2_norm(sys)) ** 2, 12)  # Σ_k 0.25^k = 4/3
    1.333333333333
    """
    _check_system(sys, "h2_norm")
    check_choice("method", method, ("gramian", "slycot"))
    get_backend(backend, device)
    horizon = check_horizon(sys, horizon)
    if horizon is not None and isinstance(sys, DiagonalSSM):  # check_horizon refused bidirectional layers
        if method != "gramian":
            raise OptionError("horizon= is evaluated by method='gramian' (closed-form finite-horizon Gramians)")
        infinite = np.zeros(sys.batch_shape, dtype=bool)
        if not sys.is_discrete:
            infinite |= np.any(sys.D != 0, axis=(-1, -2))
        return _causal_h2(sys, infinite, backend, device, dtype, horizon=horizon)
    if method == "slycot" and backend != "numpy":
        raise OptionError("backend='torch' applies to method='gramian' only; AB13BD runs in SLICOT on the host")
    if isinstance(sys, BidirectionalSSM):
        if method == "slycot":
            raise OptionError("method='slycot' (AB13BD) handles causal systems only; a BidirectionalSSM uses 'gramian'")
        return _bidirectional_l2(sys, backend, device, dtype)
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
                values[index] = (
                    _slycot.h2_norm(A[index], B[index], C[index], D[index], discrete=sys.is_discrete) / realified_scale
                )
        return _batch_result(values)
    return _causal_h2(sys, infinite, backend, device, dtype)


def _bidirectional_l2(sys: BidirectionalSSM, backend: Backend, device: Any, dtype: Precision) -> Any:
    unstable = _unstable_systems(sys)
    M_b = sys.C_backward @ sys.B
    M_b = M_b.real if sys.output == "real" else M_b
    forward = sys.forward.replace(D=sys.D + M_b)
    with silence_unstable():
        value2 = (
            _causal_h2(forward, unstable, backend, device, dtype) ** 2
            + _causal_h2(sys.backward, unstable, backend, device, dtype) ** 2
        )
    correction = np.sum(np.abs(M_b) ** 2, axis=(-1, -2))
    if backend == "numpy":
        value2 = np.asarray(value2) - correction
        return _batch_result(np.where(unstable, np.inf, np.sqrt(np.maximum(value2, 0.0))))
    array_backend = get_backend(backend, device)
    correction_t = array_backend.from_numpy(correction, device=device, dtype=dtype)
    return (value2 - correction_t).clamp(min=0.0).sqrt()  # inf − finite stays inf where unstable


# ---------------------------------------------------------------------------------------------- per state
def state_hinf_result(
    sys: LTISystem,
    *,
    backend: Backend = "numpy",
    device: Any = None,
    dtype: Precision = "float64",
    frequency_unit: FrequencyUnit = "native",
) -> HinfResult:
    """H∞ norm and peak frequency of every one-state subsystem ``G_i = c_i b_iᵀ/(z − λ_i)`` (``s`` in CT).

    Parameters
    ----------
    sys : DiagonalSSM or BidirectionalSSM
        For a bidirectional layer, state i's subsystem includes its backward column (L∞ norm).
    backend : {"numpy", "torch"}
        ``"torch"``: the closed forms and the one-dimensional maximisation run in torch and the
        fields are tensors on ``device``. Bidirectional layers are evaluated on the host (NumPy) and
        the result moved to ``device``.
    device : str or torch.device, optional
        Torch device (``backend="torch"`` only); ``None`` means CPU.
    dtype : {"float64", "float32"}
        Torch precision (float32 only on request).
    frequency_unit : {"native", "rad/s"}
        Unit of ``peak``, as for [`hinf_result`][ssmtools.norms.hinf_result]: ``"rad/s"`` divides a sampled
        system's rad/sample by its ``dt``.

    Returns
    -------
    HinfResult
        Fields of shape ``(*batch, n)``, ``method="closed-form"``, ``lower = upper = value``; ``inf``
        (peak ``nan``) where a state is not asymptotically stable. Neither D nor the unimodular factor z
        of ``state_includes_input`` changes these values.

    Notes
    -----
    With ``s_i = ‖c_i‖‖b_i‖``: complex output, DT ``s_i/(1 − |λ_i|)`` at ω = arg λ_i, CT ``s_i/|Re λ_i|``
    at ω = Im λ_i. Real output ``y = Re(Cx)``: each state stands for the conjugate pair, whose
    subsystem is ½ of ``2Re(c bᵀ)/(z − λ)``; its exact H∞ is the maximum over ω of the closed-form
    2×2 eigenvalue, whose stationary points are the roots of a quadratic in cos ω (CT: ω²), polished in
    the offset from the resonance; O(n·(m + p)) memory. The single-pole value is **not** the pair norm
    (docs/concepts/derivations.md#state-hinf, #state-hinf-pair-closed-form).
    """
    _check_system(sys, "state_hinf_result")
    per_sample = _per_sample(sys, frequency_unit)
    array_backend = get_backend(backend, device)
    _warn_unstable_states(sys)
    if isinstance(sys, BidirectionalSSM):
        values, peaks = _bidirectional.state_linf(sys)
        values, peaks = (array_backend.from_numpy(a, device=device, dtype=dtype) for a in (values, peaks / per_sample))
        return HinfResult(values, peaks, values, values, "closed-form")
    discrete = sys.is_discrete
    lam, B, C = array_backend.asarrays(sys.poles, sys.B, sys.C, device=device, dtype=dtype)
    if sys.output == "complex":
        values = _kernels.single_pole_hinf(lam, _kernels.single_pole_gain(B, C), discrete=discrete)
        peaks = _kernels._angle(lam) if discrete else lam.imag
        xp = _kernels.array_namespace(values)
        peaks = xp.where(xp.isfinite(values), peaks, xp.nan)
    else:
        pair_values, peaks = _kernels.pair_hinf(lam, B, C, discrete=discrete)
        values = 0.5 * pair_values
    if backend == "numpy":
        values, peaks = np.asarray(values), np.asarray(peaks)
    return HinfResult(values, peaks / per_sample, values, values, "closed-form")


def state_hinf_norms(
    sys: LTISystem,
    *,
    backend: Backend = "numpy",
    device: Any = None,
    dtype: Precision = "float64",
) -> Any:
    """H∞ norm of every one-state subsystem: ``state_hinf_result(sys, ...).value``.

    Parameters
    ----------
    sys : DiagonalSSM or BidirectionalSSM
        Any batch shape (L∞ of forward plus backward column for bidirectional layers).
    backend : {"numpy", "torch"}
        Where the closed forms run and what the result is.
    device : str or torch.device, optional
        Torch device (``backend="torch"`` only).
    dtype : {"float64", "float32"}
        Torch precision.

    Returns
    -------
    ndarray of float64, shape ``(*batch, n)`` (tensor for ``backend="torch"``)
        ``inf`` where a state is not asymptotically stable; peaks in [`state_hinf_result`][ssmtools.norms.state_hinf_result].

    Examples
    --------
    >>> sys = DiagonalSSM([0.8], [[3.0, 4.0]], [[1.0]], dt=True)
    >>> state_hinf_norms(sys).round(12)  # 5 / (1 - 0.8)
    array([25.])
    """
    return state_hinf_result(sys, backend=backend, device=device, dtype=dtype).value


def state_h2_norms(
    sys: LTISystem,
    *,
    horizon: int | float | None = None,
    backend: Backend = "numpy",
    device: Any = None,
    dtype: Precision = "float64",
) -> Any:
    """H2 norm of every one-state subsystem (two-sided L2 for bidirectional layers), shape ``(*batch, n)``.

    Parameters
    ----------
    sys : DiagonalSSM or BidirectionalSSM
        Any batch shape; neither D nor ``state_includes_input`` changes the values of causal systems.
    horizon : int or float, optional
        Finite horizon (causal systems): the energy of the first L samples of each subsystem's impulse
        response (``z·G_i`` when the state includes the input, so the count shifts by one sample), finite for
        every pole (docs/concepts/derivations.md#finite-horizon-gramians).
    backend : {"numpy", "torch"}
        ``"torch"`` evaluates the same closed forms in torch and returns a tensor on ``device``.
    device : str or torch.device, optional
        Torch device (``backend="torch"`` only); ``None`` means CPU.
    dtype : {"float64", "float32"}
        Torch precision (float32 only on request).

    Returns
    -------
    ndarray of float64, shape ``(*batch, n)`` (torch tensor for ``backend="torch"``)
        ``inf`` where a state is unstable.

    Notes
    -----
    Complex output: DT ``s_i/sqrt(1 − |λ_i|²)``, CT ``s_i/sqrt(2|Re λ_i|)``. Real output: ½ of the
    exact conjugate-pair H2 including the cross term ``2 Re((cᵀc)(bᵀb)/(1 − λ²))`` that single-pole
    formulas drop (docs/concepts/derivations.md#state-h2). The squared value is accurate to
    about machine epsilon times the single-pole H2², so a pair whose H2 nearly cancels to 0 is
    reported as ≲ 1e-8 × its single-pole H2. Bidirectional: [`h2_norm`][ssmtools.norms.h2_norm] of ``states``.

    Examples
    --------
    >>> sys = DiagonalSSM([0.6], [[1.0]], [[1.0]], dt=True)
    >>> state_h2_norms(sys).round(12)  # 1 / sqrt(1 - 0.36)
    array([1.25])
    """
    _check_system(sys, "state_h2_norms")
    array_backend = get_backend(backend, device)
    horizon = check_horizon(sys, horizon)
    if horizon is not None and isinstance(sys, DiagonalSSM):  # check_horizon refused bidirectional layers
        return _state_h2_horizon(sys, horizon, array_backend, device, dtype)
    _warn_unstable_states(sys)
    if isinstance(sys, BidirectionalSSM):
        with silence_unstable():
            return h2_norm(sys.states(), backend=backend, device=device, dtype=dtype)
    lam, B, C = array_backend.asarrays(sys.poles, sys.B, sys.C, device=device, dtype=dtype)
    if sys.output == "complex":
        gain = _kernels.single_pole_gain(B, C)
        value2 = _kernels.single_pole_h2_squared(lam, gain, discrete=sys.is_discrete)
        xp = _kernels.array_namespace(value2)
        return xp.sqrt(value2)
    xp = _kernels.array_namespace(lam)
    return 0.5 * xp.sqrt(_kernels.pair_h2_squared(lam, B, C, discrete=sys.is_discrete))


def _state_h2_horizon(sys: DiagonalSSM, horizon: int | float, array_backend: Any, device: Any, dtype: Precision) -> Any:
    """Finite-horizon per-state H2: ``s²·S(λ, λ)`` (complex output), ¼ of the pair's
    ``2s²·S(λ, λ) + 2 Re((cᵀc)(bᵀb)·S(λ, conj λ))`` (real output), S the :func:`~ssmtools._kernels.horizon_sum`."""
    steps = _response_horizon(sys, horizon)
    lam, B, C = array_backend.asarrays(sys.poles, sys.B, sys.C, device=device, dtype=dtype)
    xp = _kernels.array_namespace(lam)
    gain2 = _kernels.single_pole_gain(B, C) ** 2
    self_sum = xp.real(_kernels.horizon_sum(lam, lam, steps, discrete=sys.is_discrete))
    if sys.output == "complex":
        return xp.sqrt(gain2 * self_sum)
    cross = xp.einsum("...pn,...pn->...n", C, C) * xp.einsum("...nm,...nm->...n", B, B)
    pair = 2.0 * gain2 * self_sum + 2.0 * xp.real(
        cross * _kernels.horizon_sum(lam, xp.conj(lam), steps, discrete=sys.is_discrete)
    )
    return 0.5 * xp.sqrt(xp.clip(pair, min=0.0))


# ---------------------------------------------------------------------------------------------- Gramians
def _require_causal_stable(sys: Any, what: str) -> None:
    if isinstance(sys, BidirectionalSSM):
        raise ArgumentTypeError(
            f"{what} are defined for causal systems; a BidirectionalSSM is non-causal. Use its causal scan, "
            "sys.forward, or sys.backward for the anti-causal one"
        )
    _check_system(sys, what)
    if not np.all(sys.is_stable):
        raise ArgumentError(
            f"{what} exist only for asymptotically stable systems; {int(np.count_nonzero(~np.asarray(sys.is_stable)))} "
            "system(s) in the batch have poles with |λ| ≥ 1 (DT) or Re λ ≥ 0 (CT). Remove or clip those poles first."
        )


def gramians(sys: DiagonalSSM, *, horizon: int | float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Controllability and observability Gramians ``(P, Q)`` of the diagonal realization.

    The realization is ``(Λ_a, B_a, C_a)`` of [`ssmtools.systems.augmented_realization`][ssmtools.systems.augmented_realization]:
    (Λ, B, C) for complex output, the 2n-state conjugate-augmented one for real output. It is the
    strictly proper part without the factor z of ``state_includes_input``
    (docs/concepts/derivations.md#gramians).

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape; asymptotically stable unless ``horizon`` is given.
    horizon : int or float, optional
        Finite horizon: DT ``P(L) = Σ_{k=0}^{L−1} ΛᵏBBᴴΛᴴᵏ`` and ``Q(L) = Σ_{k=0}^{L−1} ΛᴴᵏCᴴCΛᵏ`` (L an integer
        ≥ 1), CT ``∫_0^T``; defined for every pole (docs/concepts/derivations.md#finite-horizon-gramians).

    Returns
    -------
    P, Q : ndarray of complex128, shape ``(*batch, N, N)``, N = n (complex) or 2n (real output)
        DT ``P_ij = (BBᴴ)_ij/(1 − λ_i conj λ_j)``, ``Q_ij = (CᴴC)_ij/(1 − conj λ_i λ_j)``;
        CT ``P_ij = −(BBᴴ)_ij/(λ_i + conj λ_j)``, ``Q_ij = −(CᴴC)_ij/(conj λ_i + λ_j)``. With a horizon
        the factors ``1/(1 − μ)`` become the geometric sums ``(1 − μᴸ)/(1 − μ)``.

    Raises
    ------
    ValueError
        If a system is not asymptotically stable (without ``horizon``).
    """
    horizon = check_horizon(sys, horizon)
    if horizon is None:
        _require_causal_stable(sys, "Gramians")
    else:
        _check_system(sys, "Gramians")
    lam, B, C = augmented_realization(sys)
    P = _kernels.diagonal_controllability_gramian(lam, B, discrete=sys.is_discrete, horizon=horizon)
    Q = _kernels.diagonal_observability_gramian(lam, C, discrete=sys.is_discrete, horizon=horizon)
    return P, Q


def gramian_factors(sys: DiagonalSSM) -> tuple[np.ndarray, np.ndarray]:
    """Factors ``(F_P, F_Q)`` of the Gramians, ``P = F_P F_Pᴴ`` and ``Q = F_Q F_Qᴴ``, computed without forming them.

    Same realization as :func:`gramians` (the conjugate-augmented one for real output). Each factor is a
    pivoted LDLᴴ factor ``Π L D^{1/2}`` obtained from the generators B and Cᴴ of the Cauchy-like Gramians
    (:func:`ssmtools._kernels.gramian_factor`), so its pivots keep their relative accuracy even for poles
    that nearly coincide (docs/concepts/derivations.md#hankel-singular-values).

    Parameters
    ----------
    sys : DiagonalSSM
        Asymptotically stable, any batch shape.

    Returns
    -------
    F_P, F_Q : ndarray of complex128, shape ``(*batch, N, N)``, N = n (complex) or 2n (real output)
        Rows in state order, columns in pivot order (descending pivots); columns beyond the numerical rank
        of a Gramian are zero.

    Raises
    ------
    ValueError
        If a system is not asymptotically stable.
    """
    _require_causal_stable(sys, "Gramian factors")
    lam, B, C = augmented_realization(sys)
    F_P = np.zeros(lam.shape + lam.shape[-1:], dtype=complex)
    F_Q = np.zeros_like(F_P)
    for index in np.ndindex(*sys.batch_shape):
        factor_p = _kernels.gramian_factor(lam[index], B[index], discrete=sys.is_discrete)
        factor_q = _kernels.gramian_factor(np.conj(lam[index]), np.conj(C[index].T), discrete=sys.is_discrete)
        F_P[index][:, : factor_p.shape[1]] = factor_p
        F_Q[index][:, : factor_q.shape[1]] = factor_q
    return F_P, F_Q


def hankel_singular_values(sys: DiagonalSSM, *, horizon: int | float | None = None) -> np.ndarray:
    """Hankel singular values ``σ_j = sqrt(eig_j(PQ))``, descending, shape ``(*batch, N)``.

    Parameters
    ----------
    sys : DiagonalSSM
        Any batch shape; asymptotically stable unless ``horizon`` is given. N = n (complex output) or 2n
        (real output: each stored state is a conjugate pair, two real dimensions).
    horizon : int or float, optional
        Finite-horizon (time-limited) values ``sqrt(eig(P(L) Q(L)))`` from :func:`gramians` with the same
        horizon: defined for every pole (docs/concepts/derivations.md#finite-horizon-gramians).

    Returns
    -------
    ndarray of float64, shape ``(*batch, N)``

    Notes
    -----
    Gramians of the strictly proper part (Λ, B, C) — not of the standard form (Λ, B, CΛ) — so
    that balanced truncation keeps the ``state_includes_input`` convention. Computed by the square-root
    method on structured factors of the Gramians (:func:`gramian_factors`, never the formed Gramians) and a
    pivoted QR before the SVD (:func:`ssmtools._kernels.graded_hankel_singular_values`): each σ to ~1e-13
    relative when B and C span 16 orders of magnitude, and to ~1e-9 + eps/δ for poles a relative distance δ
    apart whose residues nearly cancel — the change an eps-relative perturbation of B and C itself causes
    there (docs/concepts/derivations.md#hankel-singular-values).

    Examples
    --------
    >>> sys = DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True)
    >>> round(float(hankel_singular_values(sys)[0]), 12)  # 1 / (1 - 0.25)
    1.333333333333
    """
    horizon = check_horizon(sys, horizon)
    if horizon is None:
        _require_causal_stable(sys, "Hankel singular values")
    else:
        _check_system(sys, "Hankel singular values")
    lam, B, C = augmented_realization(sys)
    values = np.zeros(lam.shape)
    for index in np.ndindex(*sys.batch_shape):
        values[index] = _kernels.graded_hankel_singular_values(
            lam[index], B[index], C[index], discrete=sys.is_discrete, horizon=horizon
        )
    return values

"""Certified layer H∞ of a diagonal MIMO system: lower bound, upper bound and peak frequency.

Pure functions on NumPy arrays of one (unbatched) system; ``norms.hinf_norm(method="diagonal")``
loops over the batch. The algorithm (docs/benchmarks.md, "How the diagonal H∞ works"):

1. **One discrete-time form.** Every case is rewritten as ``G(z) = D + Σ_i c_i b_iᵀ ψ_i(z)``,
   ``ψ_i = κ_i + 1/(z − μ_i)``, on the unit circle: real output uses the conjugate-augmented
   realization (docs/concepts/derivations.md#real-realization); a state's feedthrough goes into the constant κ_i instead of a dense
   D (state includes input: ``z/(z − λ) = λ(1/λ + 1/(z − λ))``, docs/concepts/derivations.md#standard-form), so D stays the
   layer's (diagonal) D; continuous time is mapped by the bilinear map ``s = α(z − 1)/(z + 1)``,
   which preserves σ_max pointwise (ω_ct = α·tan(ω_dt/2)) and keeps the system diagonal with poles
   (α + λ)/(α − λ). Distances to the circle are formed without cancellation (``1 − |μ|`` from a
   compensated ``1 − |μ|²``, and ``z − μ = e^{jθ}((1 − r) − 2 sin²(δ/2) + j sin δ)`` with
   δ = ω − θ), so poles 1e-12 from the circle keep full relative accuracy.
2. **Bounds at a frequency**, in tiers, each used only where the previous one leaves the upper
   bound above the level that matters: (a) ``σ_max ≤ ‖G‖_F`` with
   ``‖G‖²_F = ‖D‖²_F + 2 Re Σ ψ_i w_i + ψᴴMψ`` (M = (CᴴC) ∘ conj(BBᴴ), precomputed; O(N²));
   (b) power iterations on the factored operator (O(N(p + m)) per step; for real output through
   real conjugate-pair factors at half the flops): every step gives the Rayleigh lower bound ‖Gv‖
   and the 2×2 compression of GᴴG on [v, v⊥],
   ``σ_max² ≤ (a + e)/2 + sqrt(((a − e)/2)² + β²)``, a = ‖Gv‖², β = ‖GᴴGv − a v‖, e = ‖G‖²_F − a,
   and a frequency stops iterating once settled; (c) forming G and ``eigvalsh(GᴴG)``.
3. **Bounds on an interval** [a, b]: σ_max of the linear interpolant of G(a), G(b) is convex, so
   at most max(σ(a), σ(b)); the interpolation remainder ``‖C diag(e) B‖`` has per-state errors
   ``|e_i| ≤ ε_i = min((b − a)²/8 · (1/d_i² + 2/d_i³), 2/d_i)`` (d_i the distance from pole i to the
   arc) and is bounded by ``min_k (Σ_{k largest} s_i ε_i + ‖C‖‖B‖·(k+1)-th largest ε)`` and, on
   broadband layers, also by the root-sum-square ``sqrt(εᵀ|M|ε)``.
4. **Level-set certificate** first, when every pole is at least 1e-7 inside the circle
   (:mod:`ssmtools._hinf_levelset`: a local search from the seeds of step 2, then one Hamiltonian
   eigenproblem of the Cayley-mapped layer); the branch and bound below runs otherwise, or when that test
   cannot decide. :func:`certify` counts the work of both (:func:`exact_work`, :func:`levelset_work`) and
   raises :class:`WorkBudgetExceeded` past a caller's ``budget`` (``hinf_result(method="auto")`` then
   switches to AB13DD).
5. **Branch and bound.** Start from the pole angles and a uniform grid; split (into up to 8 pieces
   when few intervals are left) or sharpen by one tier every interval whose upper bound exceeds
   ``(1 + rtol)·lower``, until none is left. The best few frequencies and the final peak are
   sharpened by long power iterations before G is formed there.

The result brackets the norm: ``lower ≤ ‖G‖∞ ≤ upper`` with ``upper ≤ (1 + rtol)·lower + atol``,
``atol`` the floating-point evaluation floor, about 2e-13·(N + m + p)·(‖D‖_F + Σ_i s_i|ψ_i|) at the peak.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from . import _hinf_levelset
from ._backends import torch as _torch
from ._kernels import one_minus_abs_squared

_EPS = np.finfo(float).eps
_LONG = 32  # power iterations used to sharpen the few best frequencies before forming G there
_POINTS_PER_LEVEL = 16  # cheap-tier splits: aim for this many new frequencies per level ...
_MAX_PIECES = 8  # ... cutting an interval into at most this many pieces
_PAIRS_MIN_WORK = 8192  # N·(p + m) from which cheap_bounds uses the real pair factors
_CALL_WORK = 2e6  # flop-equivalent of the fixed cost of one exact evaluation (~0.5 ms of Python and NumPy calls)
_DIRECTIONS = 8  # top singular pairs of D on which G's compression gives seed lower bounds (feedthrough_profile)
_LANCZOS_MIN = 96  # smallest min(p, m) whose top singular triplet is found by Lanczos (eigh of the Gram below)
_LANCZOS_STEPS = 96  # Lanczos steps before falling back to eigh of the Gram
_LANCZOS_TOL = 1e-13  # ... stopping once the top Ritz value's estimated relative error is below this
_LANCZOS_CHECK = 2  # ... checked every this many steps
_SETTLED = 0.75  # a frequency whose one-pass upper bound is below this fraction of the target skips power iterations


@dataclass(frozen=True)
class HinfBracket:
    """Certificate of one layer H∞ norm: ``lower ≤ ‖G‖∞ ≤ upper``.

    ``value`` is σ_max(G) at ``peak`` (rad/sample DT, rad/s CT; ``inf`` for a CT peak at infinity),
    ``certified`` tells whether ``upper ≤ (1 + rtol)·value + atol`` was reached, and
    ``evaluations`` counts (cheap, exact) frequency evaluations and ``route`` names the certificate:
    ``"level-set"`` (:mod:`ssmtools._hinf_levelset`) or ``"branch-and-bound"``.
    """

    value: float
    lower: float
    upper: float
    peak: float
    certified: bool
    evaluations: tuple[int, int]
    route: str = "branch-and-bound"


@dataclass(frozen=True)
class _CircleForm:
    """``G(e^{jω}) = D + Σ_i C[:, i] B[i]ᵀ ψ_i(ω)`` with ``ψ_i = κ_i + φ_i``,
    ``φ_i = 1/((g_i − 2 sin²(δ/2)) + j sin δ)``, δ = ω − θ_i, g_i = 1 − r_i (B rows already carry the
    rotation e^{−jθ_i}); the constant κ_i carries a state's feedthrough (state includes input, or the
    bilinear map), so D stays the user's D (diagonal for S5/S4D/LRU layers) and is never densified."""

    theta: np.ndarray  # (N,) arg μ_i, rounded (rotations, grids)
    theta_hi: np.ndarray  # (N,) arg μ_i = theta_hi + theta_lo to double-double accuracy where it matters:
    theta_lo: np.ndarray  # (N,) ±π_hi + (±π_lo ∓ ψ) beyond π/2, so copies near z = −1 keep their exact geometry
    gap: np.ndarray  # (N,) 1 − |μ_i| > 0
    radius: np.ndarray  # (N,)
    offset: np.ndarray  # (N,) κ_i (complex; 0 for a plain strictly proper DT system)
    B: np.ndarray  # (N, m)
    C: np.ndarray  # (p, N)
    D: np.ndarray  # (p, m)
    gain: np.ndarray  # (N,) ‖c_i‖‖b_i‖
    gram: np.ndarray  # (N, N) M_ij = (CᴴC)_ij conj((BBᴴ)_ij)
    cross: np.ndarray  # (N,) w_i = b_iᵀ Dᴴ c_i
    norm_D_fro: float
    half: bool  # conjugate-symmetric response: ω ∈ [0, π] suffices
    operands: tuple  # contiguous Bᵀ, Cᵀ, conj B, conj C, Mᵀ (NumPy's complex matmul is slow on views)
    diagonal_D: np.ndarray | None  # d when D = diag(d) (S5/S4D/LRU), else None
    pairs: tuple | None  # real factors (Br, Cr, Brᵀ, Crᵀ) when states P'+i are the conjugates of i (real output)

    # what only the branch and bound's interpolation remainders use: formed on first use (the level-set route,
    # which certifies most layers, never needs them)
    @functools.cached_property
    def norm_CB(self) -> float:
        """‖C‖₂‖B‖₂."""
        return _operator_norm(self.C) * _operator_norm(self.B) if self.gain.size else 0.0

    @functools.cached_property
    def abs_gram(self) -> np.ndarray:
        """(N, N) |M_ij|."""
        return np.abs(self.gram)


def pair_factors_real(B: np.ndarray, C: np.ndarray):
    """Real factors of a conjugate-paired state part, or ``None`` when the states are not paired.

    With N = 2P' states where row ``P' + i`` of B is ``conj(B[i])`` and column ``P' + i`` of C is
    ``conj(C[:, i])`` (real-output layers), write ``c_i = x_i + j y_i``, ``b_i = u_i + j v_i``; then
    ``Σ_i ψ_i c_i b_iᵀ + ψ_{P'+i} conj(c_i b_iᵀ) = C_r K(ψ) B_r`` with the real ``C_r = [X, Y]`` (p, 2P'),
    ``B_r = [U; V]`` (2P', m) and ``K = [[diag S, j diag Δ], [j diag Δ, −diag S]]``, ``S = ψ_i + ψ_{P'+i}``,
    ``Δ = ψ_i − ψ_{P'+i}`` (``_pair_coupling``). Products with real C_r, B_r cost half the
    real multiplications of the complex ones. Returns ``(B_r, C_r, B_rᵀ, C_rᵀ)`` (contiguous).
    """
    N = B.shape[0]
    if N % 2 or N == 0:
        return None
    half = N // 2
    if not (np.array_equal(B[half:], np.conj(B[:half])) and np.array_equal(C[:, half:], np.conj(C[:, :half]))):
        return None
    Br = np.concatenate([B[:half].real, B[:half].imag], axis=0)
    Cr = np.concatenate([C[:, :half].real, C[:, :half].imag], axis=1)
    return Br, Cr, np.ascontiguousarray(Br.T), np.ascontiguousarray(Cr.T)


def _pair_coupling(psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``S = ψ_i + ψ_{P'+i}`` and ``Δ = ψ_i − ψ_{P'+i}``, each (K, P'), from ψ of shape (K, 2P')."""
    half = psi.shape[1] // 2
    return psi[:, :half] + psi[:, half:], psi[:, :half] - psi[:, half:]


def _real_times(X: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Complex ``X`` times real ``R`` as two real products (NumPy has no mixed real/complex GEMM)."""
    return (X.real @ R) + 1j * (X.imag @ R)


def _couple(S: np.ndarray, Delta: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Rows of ``K t``: ``[S t₁ + jΔ t₂, jΔ t₁ − S t₂]`` for t = [t₁, t₂] of shape (K, 2P')."""
    half = S.shape[1]
    t1, t2 = t[:, :half], t[:, half:]
    return np.concatenate([S * t1 + 1j * Delta * t2, 1j * Delta * t1 - S * t2], axis=1)


def conjugate_pair_gram(Y: np.ndarray) -> np.ndarray:
    """``Y_a Y_aᴴ`` for ``Y_a = [Y; conj Y]`` (Y of shape (n, k)), shape (2n, 2n).

    ``Y_a Y_aᴴ = [[YYᴴ, YYᵀ], [conj(YYᵀ), conj(YYᴴ)]]``: two n×k×n products instead of one
    2n×k×2n (the conjugate-augmented realization of a real-output layer, docs/concepts/derivations.md#real-realization).
    """
    hermitian, symmetric = Y @ np.conj(Y.T), Y @ Y.T
    return np.block([[hermitian, symmetric], [np.conj(symmetric), np.conj(hermitian)]])


def circle_form(lam, B, C, D, *, discrete: bool, real_output: bool, state_includes_input: bool, alpha=None):
    """Rewrite one stable system as the unit-circle form (see the module docstring, step 1).

    A state with a feedthrough part is written ``c_i d_iᵀ (1 + σ_i/(z − μ_i)) =
    c_i (σ_i d_i)ᵀ (1/σ_i + 1/(z − μ_i))``, so κ_i = 1/σ_i (then rotated by e^{jθ_i}): DT with state-includes-input ``d_i = b_i``, ``σ_i = λ_i``
    (``z/(z − λ) = 1 + λ/(z − λ)``); CT ``d_i = b_i/(α − λ_i)``, ``σ_i = 1 + μ_i``
    (``1/(s − λ) = [1 + (1 + μ)/(z − μ)]/(α − λ)``). A state with ``σ_i = 0`` adds ``c_i d_iᵀ`` to D.
    Returns ``(form, alpha)``; ``alpha`` is the bilinear scale for continuous time (``None`` for DT).
    """
    lam = np.asarray(lam, dtype=complex)
    B = np.asarray(B, dtype=complex)
    C = np.asarray(C, dtype=complex)
    D = np.asarray(D, dtype=complex)
    # Gram matrices of the (augmented, unscaled) C columns and B rows, before any per-state scaling
    ChC = 0.25 * conjugate_pair_gram(np.conj(C.T)) if real_output else np.conj(C.T) @ C
    BBh = conjugate_pair_gram(B) if real_output else B @ np.conj(B.T)
    if real_output:  # Re(Cx) = C_a x_a, docs/concepts/derivations.md#real-realization with κ = 1
        lam = np.concatenate([lam, np.conj(lam)])
        B = np.concatenate([B, np.conj(B)], axis=0)
        C = 0.5 * np.concatenate([C, np.conj(C)], axis=1)
    scale = np.ones(lam.size, dtype=complex)  # B rows become scale_i·b_i
    sigma = None  # per-state σ_i of the feedthrough split, None when there is none
    if discrete:
        gap2 = one_minus_abs_squared(lam)
        mu = lam
        if state_includes_input:
            sigma = lam
    else:
        if alpha is None:
            scale_abs = np.abs(lam[np.abs(lam) > 0])
            alpha = float(np.exp(np.mean(np.log(scale_abs)))) if scale_abs.size else 1.0
        denom = alpha - lam
        mu = (alpha + lam) / denom
        gap2 = -4.0 * alpha * lam.real / np.abs(denom) ** 2
        scale = 1.0 / denom
        sigma = 1.0 + mu
    radius = np.abs(mu)
    gap = gap2 / (1.0 + radius)
    theta = np.angle(mu)
    theta_hi, theta_lo = _split_angle(mu)
    if sigma is None:
        offset = np.zeros(lam.size, dtype=complex)
    else:
        lost = sigma == 0  # e.g. a DT pole at 0 with state-includes-input: a pure feedthrough c_i b_iᵀ
        if np.any(lost):
            D = D + (C[:, lost] * scale[lost]) @ B[lost]
        offset = np.exp(1j * theta) / np.where(lost, 1.0, sigma)  # κ_i, rotated
        scale = scale * sigma
    scale = np.exp(-1j * theta) * scale
    B = scale[:, None] * B
    BBh = scale[:, None] * BBh * np.conj(scale)[None, :]
    gain = np.linalg.norm(C, axis=0) * np.linalg.norm(B, axis=1)
    keep = gain > 0
    if np.all(keep):  # (nothing to drop: no N×N copies)
        keep = slice(None)
    theta, theta_hi, theta_lo, gap, radius, offset, B, C, gain = (
        theta[keep],
        theta_hi[keep],
        theta_lo[keep],
        gap[keep],
        radius[keep],
        offset[keep],
        B[keep],
        C[:, keep],
        gain[keep],
    )
    if not isinstance(keep, slice):
        ChC, BBh = ChC[np.ix_(keep, keep)], BBh[np.ix_(keep, keep)]
    if gain.size < min(D.shape) and not np.any(D):  # rank ≤ N: the same singular values on N outputs and inputs
        C, B, D = _compressed_io(C, B)
    half = bool(real_output) or all(np.all(np.isreal(X)) for X in (mu, B, C, D))  # G(−ω) = conj G(ω)
    gram = ChC * np.conj(BBh)
    p, m = D.shape
    diagonal_D = np.diag(D).copy() if p == m and not np.any(D - np.diag(np.diag(D))) else None
    BDh = B * np.conj(diagonal_D) if diagonal_D is not None else B @ np.conj(D).T
    cross = np.sum(BDh * C.T, axis=1)  # w_n = b_nᵀ Dᴴ c_n
    operands = (
        np.ascontiguousarray(B.T),
        np.ascontiguousarray(C.T),
        np.conj(B),
        np.conj(C),
        np.ascontiguousarray(gram.T),
    )
    # the real pair factors halve the flops but add NumPy calls: worth it on layers of some size
    pairs = pair_factors_real(B, C) if real_output and B.shape[0] * (p + m) >= _PAIRS_MIN_WORK else None
    form = _CircleForm(
        theta,
        theta_hi,
        theta_lo,
        gap,
        radius,
        offset,
        B,
        C,
        D,
        gain,
        gram,
        cross,
        float(np.linalg.norm(D)),
        half,
        operands,
        diagonal_D,
        pairs,
    )
    return form, (None if discrete else alpha)


def _range_basis(X: np.ndarray) -> np.ndarray:
    """Orthonormal ``Q`` (p, N) with ``X = Q Qᴴ X`` for X of shape (p, N ≤ p), from a QR factorisation (no rank
    decision, so nothing is dropped). Real when X is real or its columns are conjugate pairs
    (``X[:, N/2:] = conj X[:, :N/2]``, the real-output realization): then ``QᵀX`` keeps the pairing."""
    half = X.shape[1] // 2
    if not np.any(X.imag):
        return np.linalg.qr(X.real)[0]
    if X.shape[1] % 2 == 0 and np.array_equal(X[:, half:], np.conj(X[:, :half])):
        return np.linalg.qr(np.concatenate([X[:, :half].real, X[:, :half].imag], axis=1))[0]
    return np.linalg.qr(X)[0]


def _compressed_io(C: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(QᴴC, B conj(P), 0)`` of shapes (N, N), (N, N), (N, N) for a strictly proper ``G = C Ψ B`` with N states
    fewer than its outputs and inputs (a modal truncation's error system): ``Q``, ``P`` are orthonormal bases of
    the ranges of C and Bᵀ (:func:`_range_basis`), so ``G = Q (QᴴC Ψ B conj P) Pᵀ`` has the singular values of
    the N×N middle factor at every frequency. The diagonal ψ_i, and so every bound of this module, are unchanged."""
    Q, P = _range_basis(C), _range_basis(B.T)
    n = C.shape[1]
    return np.conj(Q.T) @ C, B @ np.conj(P), np.zeros((n, n), dtype=complex)


def _operator_norm(X: np.ndarray) -> float:
    """‖X‖₂ from the smaller of the Grams XXᴴ and XᴴX (eigvalsh costs O(size³))."""
    Xh = np.conj(X.T)
    return _largest_eigenvalue_root(X @ Xh if X.shape[0] <= X.shape[1] else Xh @ X)


def _largest_eigenvalue_root(gram: np.ndarray) -> float:
    """``sqrt(λ_max)`` of a Gram matrix XᴴX or XXᴴ, i.e. ‖X‖₂ (rounded up slightly)."""
    return float(np.sqrt(max(np.linalg.eigvalsh(gram)[-1], 0.0)) * (1.0 + 1e-12))


# ----------------------------------------------------------------------------- frequency evaluations
_PI_LO = 1.2246467991473532e-16  # π − np.pi


def _split_angle(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """arg μ as ``hi + lo`` (double-double) for |arg μ| > π/2: ``±(π_hi + π_lo − ψ)`` with ψ = atan2(|Im μ|, −Re μ)
    accurate to its own relative precision. A pole near z = −1 and its conjugate copy then sit at ±(π − ψ)
    exactly, instead of at ±np.angle(μ), whose roundings (and a 2π shift) misplace them by ~1e-16 — more than
    the interval bounds allow when 1 − |μ| ≈ 1e-9. Elsewhere ``lo = 0``: a rigid rotation of one pole by an ulp
    does not change the norm."""
    theta = np.angle(mu)
    far = np.abs(theta) > 0.5 * np.pi
    side = np.copysign(1.0, mu.imag)
    psi = np.arctan2(np.abs(mu.imag), -mu.real)
    hi = np.where(far, side * np.pi, theta)
    lo = np.where(far, side * (_PI_LO - psi), 0.0)
    return hi, lo


def _angle_offsets(form: _CircleForm, omega: np.ndarray) -> np.ndarray:
    """δ_i = ω − arg μ_i wrapped to (−π, π], shape (K, N), without a catastrophic 2π shift: the shift is applied
    to the double-double angle (π_hi ± 2π_hi is exact), then ``ω − hi`` is exact near the pole (Sterbenz)."""
    turns = np.round((omega[:, None] - form.theta_hi[None, :]) / (2.0 * np.pi))
    shifted_hi = form.theta_hi[None, :] + turns * (2.0 * np.pi)
    return (omega[:, None] - shifted_hi) - (form.theta_lo[None, :] + turns * (2.0 * _PI_LO))


def _resolvent(form: _CircleForm, omega: np.ndarray) -> np.ndarray:
    """ψ_i(ω) = κ_i + φ_i(ω) (rotated), shape (K, N), accurate near the poles."""
    delta = _angle_offsets(form, omega)
    half_sin = np.sin(0.5 * delta)
    return form.offset + 1.0 / ((form.gap - 2.0 * half_sin**2) + 1j * np.sin(delta))


def _floor(form: _CircleForm, phi: np.ndarray) -> np.ndarray:
    """Absolute floating-point error bound of σ_max evaluations, shape (K,)."""
    size = form.gain.size + form.D.shape[0] + form.D.shape[1]
    return 64.0 * _EPS * size * (form.norm_D_fro + np.abs(phi) @ form.gain)


def frobenius_squared(form: _CircleForm, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous upper bound on ``‖G‖²_F`` and the evaluation floor at resolvent rows ``phi`` (K, N).

    ``‖G‖²_F = ‖D‖²_F + 2 Re Σ_i ψ_i w_i + ψᴴ M ψ`` (M = (CᴴC) ∘ conj(BBᴴ), w_i = b_iᵀ Dᴴ c_i, both
    precomputed), O(N²) per frequency, plus a rounding allowance. Returns two arrays of shape (K,).
    """
    fro2 = form.norm_D_fro**2 + 2.0 * np.real(phi @ form.cross)
    fro2 = fro2 + np.real(np.sum(np.conj(phi) * (phi @ form.operands[4]), axis=1))
    floor = _floor(form, phi)
    return fro2 + 2.0 * floor * (form.norm_D_fro + np.abs(phi) @ form.gain), floor


def cheap_bounds(
    form: _CircleForm,
    omega: np.ndarray,
    V: np.ndarray,
    *,
    iterations: int = 4,
    settle: float | None = None,
    relative_settle: float | None = None,
):
    """Rigorous ``(lower, upper, v)`` for σ_max(G(e^{jω})) without forming G (step 2).

    ``V`` (K, m) warm-starts the power iterations; returns arrays of shape (K,) and (K, m). Every
    Gram application ``w = GᴴG v`` (‖v‖ = 1) yields ``a = ‖Gv‖²``, ``β = ‖w − a v‖`` and so a
    lower bound √a and the 2×2-compression upper bound; the best of each over the iterations is
    kept. ``settle``: a frequency stops iterating once its upper bound is ≤ ``settle``; ``relative_settle``: the
    same with ``settle`` set to this fraction of the best lower bound after the first Gram application (one
    call where a first pass, then power iterations where they could matter, would apply the first twice).
    """
    phi = _resolvent(form, omega)  # (K, N)
    fro2_all, floor_all = frobenius_squared(form, phi)
    # contiguous operands: NumPy's complex matmul is ~100x slower on transposed views
    Bt, Ct, Bc, Cc, _ = form.operands
    if form.diagonal_D is not None:
        d = form.diagonal_D

        def apply_D(v):
            return v * d

        def apply_Dh(u):
            return u * np.conj(d)
    else:
        Dt, Dc = np.ascontiguousarray(form.D.T), np.conj(form.D)

        def apply_D(v):
            return v @ Dt

        def apply_Dh(u):
            return u @ Dc

    v = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-300)
    lower, upper, V_out = np.zeros(omega.size), np.full(omega.size, np.inf), v.copy()
    rows = np.arange(omega.size)
    fro2, floor = fro2_all, floor_all
    if form.pairs is not None:
        Br, Cr, BrT, CrT = form.pairs
        S, Delta = _pair_coupling(phi)

    def times_G(v):  # G v at the frequencies still iterating, (rows, p)
        if form.pairs is None:
            return (phi * (v @ Bt)) @ Ct + apply_D(v)
        return _real_times(_couple(S, Delta, _real_times(v, BrT)), CrT) + apply_D(v)  # real pair factors: half

    def times_Gh(u):  # Gᴴ u, (rows, m)
        if form.pairs is None:
            return (np.conj(phi) * (u @ Cc)) @ Bc + apply_Dh(u)
        # Kᴴ = [[S̄, −jΔ̄], [−jΔ̄, −S̄]]: the coupling with (S̄, −Δ̄)
        return _real_times(_couple(np.conj(S), -np.conj(Delta), _real_times(u, Cr)), Br) + apply_Dh(u)

    for iteration in range(iterations + 1):
        Gv = times_G(v)
        w = times_Gh(Gv)  # GᴴG v
        a = np.sum(np.abs(Gv) ** 2, axis=1)
        beta2 = np.sum(np.abs(w - a[:, None] * v) ** 2, axis=1)
        e = np.maximum(fro2 - a, 0.0)
        upper2 = 0.5 * (a + e) + np.sqrt((0.5 * (a - e)) ** 2 + beta2 * (1.0 + 1e-12))
        lower[rows] = np.maximum(lower[rows], np.sqrt(a))
        upper[rows] = np.minimum(upper[rows], np.sqrt(np.maximum(upper2, a)) * (1.0 + 1e-13) + floor)
        V_out[rows] = v
        if iteration == iterations:
            break
        if iteration == 0 and relative_settle is not None:
            settle = relative_settle * float(np.max(lower))
        norm = np.linalg.norm(w, axis=1, keepdims=True)
        v = np.where(norm > 0, w / np.where(norm > 0, norm, 1.0), v)
        if settle is not None:
            going = upper[rows] > settle
            if not np.all(going):
                rows, v, phi = rows[going], v[going], phi[going]
                if form.pairs is not None:
                    S, Delta = S[going], Delta[going]
                fro2, floor = fro2_all[rows], floor_all[rows]
                if rows.size == 0:
                    break
    return lower, upper, V_out


def pair_outer_products(form: _CircleForm, *, max_elements: int = 1 << 23) -> np.ndarray | None:
    """``W = [vec Re(c_i b_iᵀ); vec Im(c_i b_iᵀ)]`` over the P' conjugate pairs, shape (2P', p·m) real,
    or ``None`` when not paired or larger than ``max_elements`` (memory).

    Then ``G(ω) − D = Σ_i (S_i Re W_i + j Δ_i Im W_i)`` (S, Δ of ``_pair_coupling``), so the real
    and imaginary parts of every G_k come from one real GEMM
    ``[[Re S, −Im Δ], [Im S, Re Δ]] (2K, 2P') × W`` — half the flops of the complex ``(C diag ψ_k) B``
    and no (K, p, N) temporary.
    """
    if form.pairs is None:
        return None
    Br, Cr, _, _ = form.pairs
    half, (p, m) = Br.shape[0] // 2, form.D.shape
    if 2 * half * p * m > max_elements:
        return None
    X, Y = Cr[:, :half].T[:, :, None], Cr[:, half:].T[:, :, None]  # c = x + jy, (P', p, 1)
    U, V = Br[:half, None, :], Br[half:, None, :]  # b = u + jv, (P', 1, m)
    W = np.empty((2, half, p, m))
    W[0] = X * U
    W[0] -= Y * V
    W[1] = X * V
    W[1] += Y * U
    return W.reshape(2 * half, p * m)


def _formed_responses(form: _CircleForm, phi: np.ndarray, outer: np.ndarray | None) -> np.ndarray:
    """``G_k = C diag(ψ_k) B + D`` for the rows ψ_k of ``phi`` (K, N), shape (K, p, m)."""
    if outer is None and form.pairs is not None and phi.shape[0] == 1:  # C_r (K B_r): two real GEMMs
        Br, Cr, _, _ = form.pairs
        S, Delta = _pair_coupling(phi)
        half = S.shape[1]
        U, V = Br[:half], Br[half:]
        S, Delta = S[0][:, None], Delta[0][:, None]
        KB = np.concatenate([S * U + 1j * Delta * V, 1j * Delta * U - S * V], axis=0)
        return ((Cr @ np.ascontiguousarray(KB.real)) + 1j * (Cr @ np.ascontiguousarray(KB.imag)) + form.D)[None]
    if outer is None:
        return (form.C[None] * phi[:, None, :]) @ form.B + form.D
    S, Delta = _pair_coupling(phi)
    K, (p, m) = phi.shape[0], form.D.shape
    coefficients = np.block([[S.real, -Delta.imag], [S.imag, Delta.real]])  # (2K, 2P')
    parts = (coefficients @ outer).reshape(2, K, p, m)
    G = np.empty((K, p, m), dtype=complex)
    G.real, G.imag = parts[0] + form.D.real, parts[1] + form.D.imag
    return G


def exact_values(
    form: _CircleForm,
    omega: np.ndarray,
    *,
    chunk: int = 32,
    use_torch: bool = False,
    device: Any = None,
    outer: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` from σ_max of the formed G(e^{jω}) (eigvalsh of the smaller Gram).

    ``use_torch``: the σ_max stage runs in torch (complex128) on ``device`` (``None``: CPU). ``outer``:
    ``pair_outer_products`` of the form, to build G by one real GEMM.
    """
    phi = _resolvent(form, omega)
    p, m = form.D.shape
    values = np.empty(omega.size)
    if use_torch:
        C, B, D = _torch.as_tensors(form.C, form.B, form.D, device=device)
        for start in range(0, omega.size, chunk):
            (phi_k,) = _torch.as_tensors(phi[start : start + chunk], device=device)
            values[start : start + chunk] = _torch.to_numpy(_torch.sigma_max_circle(C, B, D, phi_k))
        return values, values * (1.0 + 8.0 * _EPS * (p + m)) + _floor(form, phi)
    for start in range(0, omega.size, chunk):
        stop = min(start + chunk, omega.size)
        G = _formed_responses(form, phi[start:stop], outer)
        Gh = np.ascontiguousarray(np.conj(np.swapaxes(G, -1, -2)))
        gram = Gh @ G if m <= p else G @ Gh
        values[start:stop] = np.sqrt(np.maximum(np.linalg.eigvalsh(gram)[:, -1], 0.0))
    floor = _floor(form, phi)
    return values, values * (1.0 + 8.0 * _EPS * (p + m)) + floor


def _feedthrough_start(form: _CircleForm, size: int) -> np.ndarray:
    """Start vector of :func:`top_singular_triplet` (length ``size``, the smaller side of G): the coordinate of
    D's largest diagonal entry, which the top singular vector of a D-dominated layer stays close to, plus a
    small uniform part (no direction is missed); uniform when D is not diagonal."""
    start = np.full(size, 1.0 / np.sqrt(size), dtype=complex)
    if form.diagonal_D is not None and np.any(form.diagonal_D):
        start *= 1e-3
        start[int(np.argmax(np.abs(form.diagonal_D)))] += 1.0
    return start


def top_singular_triplet(
    G: np.ndarray, start: np.ndarray | None = None, *, steps: int = _LANCZOS_STEPS
) -> tuple[float, np.ndarray, np.ndarray]:
    """``(σ, u, v)`` with unit ``v``, ``σ = ‖Gv‖`` and ``u = Gv/σ``: the largest singular triplet of G.

    G of shape (p, m) with m ≤ p; Lanczos on ``GᴴG`` (two matrix-vector products a step, full
    reorthogonalisation) from ``start``, where ``eigh`` of the Gram would cost O(m³). σ is a Rayleigh
    lower bound whatever the convergence: ``σ ≤ σ_max(G)`` up to rounding. The top Ritz value is checked
    every ``_LANCZOS_CHECK`` steps (:func:`_top_ritz_pairs`) and stops once its estimated error ``res²/gap`` (res
    the Ritz residual, gap to the second Ritz value) is below ``_LANCZOS_TOL`` of it; when ``steps`` are spent
    first, the Gram is formed and ``eigh`` decides.
    """
    p, m = G.shape
    x = np.full(m, 1.0 / np.sqrt(m), dtype=complex) if start is None else start / np.linalg.norm(start)
    steps = min(steps, m)
    basis, conj_basis = np.empty((steps + 1, m), dtype=complex), np.empty((steps + 1, m), dtype=complex)
    alpha, beta = np.zeros(steps), np.zeros(steps)
    basis[0], conj_basis[0] = x, np.conj(x)
    converged = False
    for k in range(steps):
        w = np.conj(np.conj(G @ basis[k]) @ G)  # GᴴG x streaming G alone (30 % faster than through a formed Gᴴ)
        alpha[k] = np.real(conj_basis[k] @ w)
        for _ in range(2):  # classical Gram–Schmidt, twice: orthogonal to working precision
            w -= (conj_basis[: k + 1] @ w) @ basis[: k + 1]
        beta[k] = np.sqrt(np.real(np.vdot(w, w)))
        exhausted = beta[k] <= _EPS * alpha[0] or k == steps - 1
        if exhausted or (k >= 3 and k % _LANCZOS_CHECK == _LANCZOS_CHECK - 1):
            theta, S = _top_ritz_pairs(alpha[: k + 1], beta[:k])
            residual = beta[k] * abs(S[-1, -1])
            gap = max(theta[-1] - theta[-2], _EPS * theta[-1]) if k else _EPS * theta[-1]
            if residual * residual <= _LANCZOS_TOL * gap * theta[-1] or beta[k] <= _EPS * alpha[0]:
                x, converged = S[:, -1] @ basis[: k + 1], True
                break
        basis[k + 1] = w / max(beta[k], 1e-300)
        conj_basis[k + 1] = np.conj(basis[k + 1])
    if not converged:
        gram = np.conj(G.T) @ G
        _, vectors = scipy.linalg.eigh(gram, subset_by_index=[m - 1, m - 1], driver="evr", check_finite=False)
        x = vectors[:, -1]
    v = x / np.linalg.norm(x)
    Gv = G @ v
    sigma = float(np.linalg.norm(Gv))
    return sigma, Gv / max(sigma, 1e-300), v


def _top_ritz_pairs(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two largest eigenvalues (ascending, one when the size is 1) and their eigenvectors (columns) of the
    symmetric tridiagonal matrix with diagonal ``alpha`` and off-diagonal ``beta``: LAPACK's MRRR (``dstemr``),
    about 50 µs at size 48 where SciPy's ``eigh_tridiagonal`` costs 90 µs and a dense ``eigh`` 240 µs."""
    n = alpha.size
    found, values, vectors, info = scipy.linalg.lapack.dstemr(
        alpha.copy(), np.append(beta, 0.0), 2, 0.0, 0.0, max(1, n - 1), n
    )
    if info != 0 or found != min(2, n):
        tridiagonal = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
        values, vectors = np.linalg.eigh(tridiagonal)
        return values[-2:], vectors[:, -2:]
    return values[:found], vectors[:, :found]


def _top_triplet(form: _CircleForm, G: np.ndarray, start: np.ndarray | None) -> tuple[float, np.ndarray, np.ndarray]:
    """Largest singular triplet ``(σ, u, v)`` of a formed G: Lanczos (:func:`top_singular_triplet`) on layers
    with at least ``_LANCZOS_MIN`` inputs and outputs, else ``eigh`` of the smaller Gram (largest pair only)."""
    p, m = G.shape
    if min(p, m) >= _LANCZOS_MIN:
        if m <= p:
            return top_singular_triplet(G, _feedthrough_start(form, m) if start is None else start)
        sigma, v, u = top_singular_triplet(np.conj(G.T), _feedthrough_start(form, p) if start is None else start)
        return sigma, u, v
    Gh = np.ascontiguousarray(np.conj(G.T))
    gram = Gh @ G if m <= p else G @ Gh
    top = gram.shape[0] - 1  # the largest eigenpair only (MRRR): about the cost of the eigenvalues alone
    eigenvalues, vectors = scipy.linalg.eigh(gram, subset_by_index=[top, top], driver="evr", check_finite=False)
    sigma = float(np.sqrt(max(eigenvalues[-1], 0.0)))
    if m <= p:
        v = vectors[:, -1]
        return sigma, G @ v / max(sigma, 1e-300), v
    u = vectors[:, -1]
    return sigma, u, Gh @ u / max(sigma, 1e-300)


def rayleigh_values(form: _CircleForm, omega: np.ndarray) -> np.ndarray:
    """Lower bounds ``‖G(ω)v‖ ≤ σ_max(G(ω))`` with v the converged top singular vector (G formed): what the
    level-set certificate's seeds need (no upper bound), at the cost of Lanczos instead of ``eigvalsh`` on
    wide layers (:func:`_top_triplet`); elsewhere the exact σ_max of :func:`exact_values`."""
    if min(form.D.shape) < _LANCZOS_MIN:
        return exact_values(form, omega)[0]
    psi = _resolvent(form, omega)
    return np.array(
        [_top_triplet(form, _formed_responses(form, psi[k : k + 1], None)[0], None)[0] for k in range(omega.size)]
    )


def value_and_slope(
    form: _CircleForm, omega: float, start: np.ndarray | None = None
) -> tuple[float, float, np.ndarray]:
    """σ_max(G(e^{jω})) (G formed, :func:`_top_triplet`), its derivative ``Re(u₁ᴴ G'(ω) v₁)`` and the
    singular vector the triplet search used (``v₁`` when m ≤ p, else ``u₁``), to start the next one from.

    ``φ_i = 1/(e^{jδ} − r_i)`` gives ``φ_i' = −j e^{jδ} φ_i²``; the slope is that of a simple largest singular
    value (a one-sided derivative where it is multiple), used only to steer local searches. ``start``: the
    vector returned by a call at a nearby frequency (Lanczos then converges in a few steps).
    """
    psi = _resolvent(form, np.array([omega]))
    G = _formed_responses(form, psi, None)[0]
    p, m = G.shape
    sigma, u, v = _top_triplet(form, G, start)
    phi = psi[0] - form.offset
    dphi = -1j * (1.0 / phi + form.radius) * phi**2
    slope = float(np.real(np.sum((np.conj(u) @ form.C) * dphi * (form.B @ v))))
    return sigma, slope, (v if m <= p else u)


def feedthrough_profile(form: _CircleForm, omega: np.ndarray, *, directions: int = _DIRECTIONS) -> np.ndarray:
    """Lower bounds ``σ_max(Uᴴ G(ω) V) ≤ σ_max(G(ω))`` on the compression of G to D's top singular pairs.

    On a D-dominated layer (s5-pytorch, S4D) the largest singular value of G stays close to a top one of D and its
    singular vectors near the span of D's top ones: with U, V (orthonormal columns) the top ``directions`` singular
    vectors of D (for a diagonal D, the channels with the largest |d_k|), ``Uᴴ G V = Uᴴ D V + Σ_i (Uᴴ c_i)(b_iᵀ V) ψ_i``
    is a small response (k×k, O(N·k²) per frequency), whose σ_max tracks the ripples of σ_max(G) — also where top
    singular values of D are close and the channels couple, where a few power iterations (whose top eigenvalues
    are clustered) and the scalar responses ``u_kᴴ G v_k`` alone cannot rank the peaks.
    """
    if not form.D.size or not np.any(form.D):
        return np.zeros(omega.size)
    if form.diagonal_D is not None:
        top = np.argsort(-np.abs(form.diagonal_D))[:directions]
        left, right = form.C[top, :], form.B[:, top]  # (k, N) and (N, k): the rows and columns of those channels
        base = np.diag(form.diagonal_D[top])
    else:  # the top singular vectors from the smaller Gram's top eigenvectors only (not a full SVD)
        V, Uh = _top_singular_pairs(form.D, directions)
        left, right = Uh @ form.C, form.B @ V
        base = Uh @ form.D @ V
    k = base.shape[0]
    outer = (left.T[:, :, None] * right[:, None, :]).reshape(-1, k * k)  # (N, k²): (Uᴴ c_i)(b_iᵀ V)
    M = (_resolvent(form, omega) @ outer + base.reshape(-1)).reshape(-1, k, k)
    gram = np.conj(np.swapaxes(M, -1, -2)) @ M
    return np.sqrt(np.maximum(np.linalg.eigvalsh(gram)[:, -1], 0.0))


def _top_singular_pairs(D: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(V, Uᴴ)``: unit right vectors (m, k') and left vectors (k', p) of D's top k' ≤ k singular pairs, from the
    top eigenvectors of DᴴD (the left ones ``D v/‖D v‖``, normalised: any unit pair gives a valid lower bound
    ``|uᴴ G v| ≤ σ_max(G)``, however well they approximate D's singular vectors). Directions D maps to zero are
    dropped."""
    m = D.shape[1]
    k = min(k, m, D.shape[0])
    Dh = np.conj(D.T)
    _, V = scipy.linalg.eigh(Dh @ D, subset_by_index=[m - k, m - 1], driver="evr", check_finite=False)
    V = V[:, ::-1]
    DV = D @ V
    norms = np.linalg.norm(DV, axis=0)
    keep = norms > 0
    return V[:, keep], np.conj((DV[:, keep] / norms[keep]).T)


def _state_errors(form: _CircleForm, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``ε_i ≥ |ψ_i(ω) − linear interpolant of ψ_i(a), ψ_i(b)|`` for ω ∈ [a, b], shape (K, N):
    ``min((b − a)²/8 · sup|φ_i''|, 2 sup|φ_i|)`` with ``|φ''| ≤ 1/d² + 2/d³``, ``|φ| = 1/d`` and d the
    distance from μ_i to the arc (κ_i is constant, so ψ_i and φ_i have the same interpolation error)."""
    center, half_width = 0.5 * (a + b), 0.5 * (b - a)
    offset = np.abs(_angle_offsets(form, center))
    outside = np.maximum(offset - half_width[:, None], 0.0)  # angular distance from θ_i to the arc
    dist2 = form.gap**2 + 4.0 * form.radius * np.sin(0.5 * np.minimum(outside, np.pi)) ** 2
    dist = np.sqrt(dist2)
    curvature = 1.0 / dist2 + 2.0 / (dist2 * dist)  # |φ''| ≤ 1/d² + 2/d³
    error = np.minimum(((b - a) ** 2 / 8.0)[:, None] * curvature, 2.0 / dist)
    return error


def _frobenius_remainder(form: _CircleForm, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A second bound on the interpolation remainder ``‖C diag(e) B‖`` (|e_i| ≤ ε_i), shape (K,):
    ``‖C diag(e) B‖²_F = eᴴ M e ≤ εᵀ |M| ε`` with M = (CᴴC) ∘ conj(BBᴴ) (the Gram of the Frobenius
    norm, ``frobenius_squared``). Off-diagonal |M_ij| = |c_iᴴc_j||b_iᴴb_j| is small for weakly
    coupled states, so errors of many states add like a root-sum-square instead of the plain sum
    ``Σ_i s_i ε_i`` (broadband layers). O(N²) per interval.
    """
    error = _state_errors(form, a, b)
    return np.sqrt(np.maximum(np.sum(error * (error @ form.abs_gram), axis=1), 0.0)) * (1.0 + 1e-12)


def _interpolation_remainder(form: _CircleForm, a: np.ndarray, b: np.ndarray, *, top: int = 4) -> np.ndarray:
    """Bound on ``‖G(ω) − linear interpolant of G(a), G(b)‖`` over ω ∈ [a, b], shape (K,) (step 3).

    With the per-state bounds ε_i of ``_state_errors``,
    ``‖Σ_i c_i b_iᵀ e_i‖ ≤ min_k (Σ_{k largest ε} s_i ε_i + ‖C‖‖B‖ · (k+1)-th largest ε)``.
    """
    error = _state_errors(form, a, b)
    weighted = error * form.gain
    best = np.sum(weighted, axis=1)
    k = min(top, error.shape[1] - 1)
    if k < 0:
        return best
    order = np.argsort(-error, axis=1)[:, : k + 1] if k + 1 < error.shape[1] else np.argsort(-error, axis=1)
    sorted_error = np.take_along_axis(error, order, axis=1)
    sorted_weighted = np.cumsum(np.take_along_axis(weighted, order, axis=1), axis=1)
    best = np.minimum(best, form.norm_CB * sorted_error[:, 0])
    for j in range(min(k, sorted_error.shape[1] - 1)):
        best = np.minimum(best, sorted_weighted[:, j] + form.norm_CB * sorted_error[:, j + 1])
    return best


# ----------------------------------------------------------------------------- branch and bound
def _initial_grid(form: _CircleForm, *, uniform: int) -> np.ndarray:
    lo = 0.0 if form.half else -np.pi
    grid = [np.linspace(lo, np.pi, uniform), form.theta]
    if form.half:
        grid[1] = np.abs(form.theta)
    return np.unique(np.concatenate(grid))


def _start_vectors(form: _CircleForm, omega: np.ndarray) -> np.ndarray:
    """The input direction conj(b_i) of the state that dominates σ_max at each frequency."""
    phi = _resolvent(form, omega)
    dominant = np.argmax(np.abs(phi) * form.gain, axis=1)
    return np.conj(form.B[dominant]) + 1e-3 / np.sqrt(form.B.shape[1])


def _polish(form: _CircleForm, omega, lo, hi, V, tier, k, *, steps: int = 8):
    """Parabolic steps on the Rayleigh lower bound around the best point: sharpens the returned
    value and peak frequency (the certificate does not depend on it). Returns updated arrays."""
    order = np.argsort(omega)
    position = int(np.flatnonzero(order == k)[0])
    if position == 0 or position == omega.size - 1:
        return omega, lo, hi, V, tier, k
    x = [float(omega[order[position - 1]]), float(omega[k]), float(omega[order[position + 1]])]
    f = [float(lo[order[position - 1]]), float(lo[k]), float(lo[order[position + 1]])]
    for _ in range(steps):
        d0, d2 = x[1] - x[0], x[1] - x[2]
        num = d0**2 * (f[1] - f[2]) - d2**2 * (f[1] - f[0])
        den = d0 * (f[1] - f[2]) - d2 * (f[1] - f[0])
        if den == 0 or not np.isfinite(num / den):
            break
        vertex = x[1] - 0.5 * num / den
        if not x[0] < vertex < x[2] or abs(vertex - x[1]) <= 4 * _EPS * max(1.0, abs(x[1])):
            break
        new_lo, new_hi, new_V = cheap_bounds(form, np.array([vertex]), V[k : k + 1], iterations=4)
        omega, lo, hi = np.append(omega, vertex), np.append(lo, new_lo), np.append(hi, new_hi)
        V, tier = np.concatenate([V, new_V]), np.append(tier, np.int8(1))
        fv = float(new_lo[0])
        if fv > f[1]:
            if vertex < x[1]:
                x, f = [x[0], vertex, x[1]], [f[0], fv, f[1]]
            else:
                x, f = [x[1], vertex, x[2]], [f[1], fv, f[2]]
            k = omega.size - 1
        elif vertex < x[1]:
            x[0], f[0] = vertex, fv
        else:
            x[2], f[2] = vertex, fv
    return omega, lo, hi, V, tier, k


def _tiered_bounds(form: _CircleForm, omega: np.ndarray, V: np.ndarray, threshold: float):
    """Bounds at new frequencies, each tier only where the previous one left the upper bound above
    ``threshold``: ‖G‖_F (O(N²), settles most frequencies), one Gram application, power iterations.

    Returns ``(lower, upper, V, tier)``; tier 0 (Frobenius only: lower = 0, V = the start vectors)
    or 1 (``cheap_bounds``).
    """
    fro2, floor = frobenius_squared(form, _resolvent(form, omega))
    hi = np.sqrt(np.maximum(fro2, 0.0)) * (1.0 + 1e-13) + floor
    lo = np.zeros(omega.size)
    tier = np.zeros(omega.size, dtype=np.int8)
    todo = np.flatnonzero(hi > threshold)
    if todo.size:
        lo[todo], hi[todo], V[todo] = cheap_bounds(form, omega[todo], V[todo], settle=threshold)
        tier[todo] = 1
    return lo, hi, V, tier


class WorkBudgetExceeded(RuntimeError):
    """Raised by :func:`certify` when its work passes the ``budget`` (the caller switches engines).

    ``value`` is the largest σ_max lower bound attained so far, at ``peak`` (rad/sample of the circle form
    from :func:`certify`; the caller's frequency from :func:`hinf_bracket`).
    """

    def __init__(self, message: str, value: float = 0.0, peak: float = 0.0):
        super().__init__(message)
        self.value, self.peak = value, peak


def exact_work(form: _CircleForm) -> float:
    """Flops of one exact evaluation: G formed (``4·N·p·m``), the smaller Gram and its eigenvalues (``~16k³``),
    plus ``_CALL_WORK`` for the interpreter and bookkeeping around it (what dominates on small layers)."""
    p, m = form.D.shape
    k = min(p, m)
    return 4.0 * form.gain.size * p * m + 8.0 * k * k * max(p, m) + 16.0 * k**3 + _CALL_WORK


def levelset_work(form: _CircleForm) -> float:
    """Flops of one level-set eigenproblem: the nonsymmetric QR algorithm on ``2N`` (``~25·(2N)³``)."""
    return 25.0 * (2.0 * form.gain.size) ** 3


def certify(
    form: _CircleForm,
    *,
    rtol: float = 1e-8,
    max_levels: int = 200,
    uniform: int = 33,
    use_torch: bool = False,
    device: Any = None,
    level_set: bool = True,
    budget: float | None = None,
) -> tuple[float, float, float, float, bool, tuple[int, int], str]:
    """Branch and bound on the unit circle (step 4), or the level-set certificate when it decides.

    Returns ``(value, lower, upper, peak_dt, certified, (cheap, exact evaluations), route)``.
    ``use_torch``: run the exact σ_max stage in torch on ``device`` (``None``: CPU). ``level_set``: try
    :mod:`ssmtools._hinf_levelset` first (seeded by the first grid of cheap bounds). ``budget``: flops
    (:func:`exact_work` per exact evaluation, :func:`levelset_work` per eigenproblem) after which
    :class:`WorkBudgetExceeded` is raised — the caller's cue to switch to a cheaper engine.
    """

    outer: list[np.ndarray] = []  # the pair outer products, built once the layer turns out broadband
    p, m = form.D.shape
    spent = [0.0]

    def check_budget():
        if budget is not None and spent[0] > budget:
            k = int(np.argmax(lo))  # the latest bounds of the enclosing scope
            raise WorkBudgetExceeded(f"{spent[0]:.3g} flops of {budget:.3g}", float(lo[k]), float(omega[k]))

    def evaluate(omega):
        spent[0] += omega.size * exact_work(form)
        check_budget()
        return exact_values(form, omega, use_torch=use_torch, device=device, outer=outer[0] if outer else None)

    def cheap(w):
        spent[0] += w.size * _CALL_WORK / 8
        return cheap_bounds(form, w, _start_vectors(form, w), iterations=8)[0]

    def profile(w):
        spent[0] += w.size * form.gain.size * _DIRECTIONS**2 * 8.0
        return feedthrough_profile(form, w, directions=_DIRECTIONS)

    last: list[np.ndarray | None] = [None]  # the previous search's singular vector: the next one starts there
    seeds: dict[float, tuple[float, float, np.ndarray]] = {}  # σ_max, slope and vector where rayleigh evaluated

    def slope(w):
        if w in seeds:  # a search starting at a seed: evaluated already
            sigma, derivative, last[0] = seeds[w]
            return sigma, derivative
        spent[0] += exact_work(form)
        check_budget()
        sigma, derivative, last[0] = value_and_slope(form, w, last[0])
        return sigma, derivative

    def rayleigh(w):
        if use_torch:
            return evaluate(w)[0]
        spent[0] += w.size * exact_work(form)
        check_budget()
        values = np.empty(w.size)
        for k, frequency in enumerate(w.tolist()):  # with the slope (cheap once G is formed) for the searches
            seeds[frequency] = value_and_slope(form, frequency)
            values[k] = seeds[frequency][0]
        return values

    if form.gain.size == 0:  # G ≡ D
        value = float(np.linalg.norm(form.D, 2)) if form.D.size else 0.0
        return value, value, value, 0.0, True, (0, 0), "closed-form"
    omega = _initial_grid(form, uniform=uniform)
    # one Gram application everywhere, then power iterations where the upper bound is above _SETTLED of the best
    # lower bound (only there could the peak be)
    lo, hi, V = cheap_bounds(form, omega, _start_vectors(form, omega), relative_settle=_SETTLED)
    if level_set and _hinf_levelset.applicable(form) and (budget is None or 2 * levelset_work(form) < budget):
        spent[0] += levelset_work(form)  # one eigenproblem charged up front (the usual count)
        # a second seed's climb (a few evaluations) pays where it can save an eigenproblem worth more of them
        climbed = 2 if levelset_work(form) >= _hinf_levelset._RIVAL_CLIMB * exact_work(form) else 1
        found = _hinf_levelset.certify(
            form,
            omega,
            lo,
            rtol=rtol,
            evaluate=evaluate,
            slope=slope,
            cheap=cheap,
            profile=profile,
            rayleigh=rayleigh,
            seeds=climbed,
        )
        if found is not None:
            value, peak, exact, _ = found
            floor = float(_floor(form, _resolvent(form, np.array([peak])))[0])
            lower, upper = max(value - floor, 0.0), value * (1.0 + rtol) + 16.0 * floor
            return value, lower, upper, peak, True, (omega.size, exact), "level-set"
    tier = np.ones(omega.size, dtype=np.int8)  # 0: ‖G‖_F only, 1: cheap_bounds, 2: G formed (exact)
    counts = [omega.size, 0]
    # sharpen the best candidates at once: a good lower bound prunes most intervals
    best = np.argsort(-lo)[: min(4, omega.size)]
    need = best[hi[best] > lo[best] * (1.0 + rtol)]
    if need.size:  # long power iterations first (a dominant peak converges fast), G formed only if needed
        lo[need], hi[need], V[need] = cheap_bounds(form, omega[need], V[need], iterations=_LONG)
        counts[0] += need.size
        need = need[hi[need] > lo[need] * (1.0 + rtol)]
    if need.size:
        lo[need], hi[need] = evaluate(omega[need])
        tier[need] = 2
        counts[1] += need.size
    # broadband response (many comparable singular values): when the cheap upper bounds at typical
    # frequencies exceed the best value found, they cannot certify anything, so evaluate exactly
    broadband = bool(np.median(hi) > np.max(lo))
    if broadband and not use_torch:
        products = pair_outer_products(form)
        if products is not None:
            outer.append(products)
    if broadband:
        rest = np.flatnonzero(tier < 2)
        lo[rest], hi[rest] = evaluate(omega[rest])
        tier[rest] = 2
        counts[1] += rest.size
    atol = 16.0 * float(np.max(_floor(form, _resolvent(form, omega[np.argmax(lo)][None]))))
    ia, ib = np.arange(omega.size - 1), np.arange(1, omega.size)
    unresolved_upper = -np.inf
    min_width = 4.0 * _EPS  # a few ulps of ω: below this, doubles cannot split the interval
    for _ in range(max_levels):
        if ia.size == 0:
            break
        L = float(np.max(lo))
        target = L * (1.0 + rtol) + atol
        a, b = omega[ia], omega[ib]
        rem = _interpolation_remainder(form, a, b)
        upper = np.maximum(hi[ia], hi[ib]) + rem
        active = upper > target
        if broadband and np.any(active):  # a second remainder bound where it can save forming G
            rem[active] = np.minimum(rem[active], _frobenius_remainder(form, a[active], b[active]))
            upper = np.maximum(hi[ia], hi[ib]) + rem
            active = upper > target
        ia, ib, a, b, rem = ia[active], ib[active], a[active], b[active], rem[active]
        if ia.size == 0:
            break
        slack = target - rem
        # an endpoint is worth sharpening when the remainder is already small and its bound is loose
        loose_a, loose_b = tier[ia] < 2, tier[ib] < 2
        sharpen_a = loose_a & (hi[ia] > slack) & (rem < 0.5 * (target - lo[ia]))
        sharpen_b = loose_b & (hi[ib] > slack) & (rem < 0.5 * (target - lo[ib]))
        tiny = (b - a) <= min_width * np.maximum(1.0, np.abs(a))
        sharpen_a |= tiny & loose_a
        sharpen_b |= tiny & loose_b
        targets = np.unique(np.concatenate([ia[sharpen_a], ib[sharpen_b]]))
        if targets.size:  # one tier up: ‖G‖_F → power iterations → G formed
            full, promote = targets[tier[targets] == 1], targets[tier[targets] == 0]
            if promote.size:
                lo[promote], hi[promote], V[promote] = cheap_bounds(form, omega[promote], V[promote])
                tier[promote] = 1
                counts[0] += promote.size
            if full.size:
                lo[full], hi[full] = evaluate(omega[full])
                tier[full] = 2
                counts[1] += full.size
        stuck = tiny & (tier[ia] == 2) & (tier[ib] == 2)
        if np.any(stuck):
            stuck_upper = np.maximum(hi[ia[stuck]], hi[ib[stuck]]) + rem[stuck]
            unresolved_upper = max(unresolved_upper, float(np.max(stuck_upper)))
        split = ~(sharpen_a | sharpen_b) & ~stuck
        keep = ~stuck & ~split
        ka, kb = ia[keep], ib[keep]
        sa, sb = ia[split], ib[split]
        if sa.size:
            # few intervals left (the bisection towards a peak): split each into more pieces, so a
            # level's fixed cost buys more resolution; exact (broadband) evaluations stay binary
            pieces = 2 if broadband else int(np.clip(_POINTS_PER_LEVEL // sa.size, 2, _MAX_PIECES))
            fractions = np.arange(1, pieces) / pieces  # (pieces − 1,)
            mid = (omega[sa][:, None] + (omega[sb] - omega[sa])[:, None] * fractions).ravel()
            start = np.repeat(np.where((lo[sa] >= lo[sb])[:, None], V[sa], V[sb]), pieces - 1, axis=0)
            if broadband:
                (new_lo, new_hi), new_V = evaluate(mid), start
                new_tier = np.full(mid.size, 2, dtype=np.int8)
                counts[1] += mid.size
            else:
                new_lo, new_hi, new_V, new_tier = _tiered_bounds(form, mid, start, _SETTLED * target)
                counts[0] += mid.size
            new = np.arange(omega.size, omega.size + mid.size).reshape(sa.size, pieces - 1)
            omega = np.concatenate([omega, mid])
            lo, hi = np.concatenate([lo, new_lo]), np.concatenate([hi, new_hi])
            V = np.concatenate([V, new_V])
            tier = np.concatenate([tier, new_tier])
            chain = np.concatenate([sa[:, None], new, sb[:, None]], axis=1)  # a, new points, b
            ka = np.concatenate([ka, chain[:, :-1].ravel()])
            kb = np.concatenate([kb, chain[:, 1:].ravel()])
        ia, ib = ka, kb
    k = int(np.argmax(lo))
    omega, lo, hi, V, tier, k = _polish(form, omega, lo, hi, V, tier, k)
    value = float(lo[k])
    if tier[k] < 2:  # accurate value at the peak: converged power iterations, else G formed
        more_lo, more_hi, _ = cheap_bounds(form, omega[k : k + 1], V[k : k + 1], iterations=_LONG)
        counts[0] += 1
        rounding = float(_floor(form, _resolvent(form, omega[k : k + 1]))[0])
        if more_hi[0] - rounding <= more_lo[0] * (1.0 + 1e-3 * rtol):  # converged to rounding level
            value = max(value, float(more_lo[0]))
        else:
            exact_lo, _ = evaluate(omega[k : k + 1])
            counts[1] += 1
            value = max(value, float(exact_lo[0]))
    floor_k = float(_floor(form, _resolvent(form, omega[k : k + 1]))[0])
    lower = max(value - floor_k, 0.0)
    target = value * (1.0 + rtol) + atol
    if ia.size:
        a, b = omega[ia], omega[ib]
        rem = _interpolation_remainder(form, a, b)
        unresolved_upper = max(unresolved_upper, float(np.max(np.maximum(hi[ia], hi[ib]) + rem)))
    certified = unresolved_upper <= target
    upper = max(target, unresolved_upper)
    return value, lower, upper, float(omega[k]), bool(certified), (counts[0], counts[1]), "branch-and-bound"


def hinf_bracket(
    lam,
    B,
    C,
    D,
    *,
    discrete: bool,
    real_output: bool,
    state_includes_input: bool,
    rtol: float = 1e-8,
    use_torch: bool = False,
    device: Any = None,
    level_set: bool = True,
    budget: float | None = None,
) -> HinfBracket:
    """Certified H∞ norm of one stable diagonal system (``lam`` (n,), ``B`` (n, m), ``C`` (p, n), ``D`` (p, m)).

    Returns a ``HinfBracket``; the peak is in rad/sample (DT) or rad/s (CT, ``inf`` when the
    supremum is approached as ω → ∞). ``use_torch``/``device``: run the exact σ_max stage in torch, and
    evaluate the reported value (σ_max at the peak) there in every case. ``level_set``: try the level-set
    certificate first; ``budget``: see :func:`certify` (raises :class:`WorkBudgetExceeded`).
    """
    form, alpha = circle_form(
        lam, B, C, D, discrete=discrete, real_output=real_output, state_includes_input=state_includes_input
    )
    try:
        value, lower, upper, peak, certified, counts, route = certify(
            form, rtol=rtol, use_torch=use_torch, device=device, level_set=level_set, budget=budget
        )
    except WorkBudgetExceeded as stop:
        stop.peak = _user_frequency(stop.peak, alpha, real_output or form.half)
        raise

    if use_torch and form.gain.size:  # the reported value is always σ_max at the peak, evaluated in torch
        at_peak, _ = exact_values(form, np.array([peak]), use_torch=True, device=device)
        value = float(at_peak[0])
        lower = max(lower, value)
    peak = _user_frequency(peak, alpha, real_output or form.half)
    return HinfBracket(value, lower, upper, peak, certified, counts, route)


def _user_frequency(peak: float, alpha: float | None, symmetric: bool) -> float:
    """The circle form's frequency as the caller's: ω_ct = α tan(ω_dt/2) (``inf`` at π), |ω| when symmetric."""
    if alpha is not None:
        return float(np.inf if abs(peak) >= np.pi * (1 - 1e-15) else alpha * np.tan(0.5 * peak))
    return float(abs(peak) if symmetric else peak)

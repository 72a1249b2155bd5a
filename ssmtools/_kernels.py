"""The formulas of ssmtools: pure functions on arrays, no classes, no validation.

Shapes follow the diagonal-SSM convention of ``systems.DiagonalSSM``:
``lam`` (..., n) complex poles, ``B`` (..., n, m), ``C`` (..., p, n), ``D`` (..., p, m).
Frequencies are rad/sample in discrete time (z = e^{jω}) and rad/s in continuous
time (s = jω). Derivations: ``docs/concepts/norms.md`` and the project's
``docs/concepts/derivations.md`` (sections quoted in each docstring).

The bulk formulas (stability margin, frequency response, per-state closed forms, Gramians, layer
H2) take NumPy arrays or torch tensors alike: they use the array namespace of their inputs
(``array_api_compat``), so the torch backend (CPU or GPU) runs this very code.
"""

from __future__ import annotations

import math
import operator

import array_api_compat
import numpy as np
from array_api_compat import array_namespace

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


# ------------------------------------------------------------------------ distances to the boundary
def _two_square(x):
    """``x² = p + e`` exactly (Dekker's split, no FMA needed); NumPy or torch float arrays."""
    p = x * x
    split = 134217729.0 * x
    hi = split - (split - x)
    lo = x - hi
    return p, ((hi * hi - p) + 2.0 * hi * lo) + lo * lo


def _two_product(x, y):
    """``x·y = p + e`` exactly (Dekker's product)."""
    p = x * y
    sx, sy = 134217729.0 * x, 134217729.0 * y
    xh, yh = sx - (sx - x), sy - (sy - y)
    xl, yl = x - xh, y - yh
    return p, (((xh * yh - p) + xh * yl) + xl * yh) + xl * yl


def _two_sum(a, b):
    """``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _with_plain_gradient(accurate, plain, *args):
    """``accurate(*args)``; for torch tensors that require grad, the value of ``accurate`` on detached inputs
    carrying the gradient of ``plain`` (the same function in plain arithmetic): the error-free transformations
    of a compensated formula add no operation to the autograd graph, and the derivative, which has no
    cancellation, is the analytic one evaluated in floating point."""
    if not any(getattr(a, "requires_grad", False) for a in args):
        return accurate(*args)
    approximate = plain(*args)
    return accurate(*(a.detach() for a in args)) + (approximate - approximate.detach())


def one_minus_products(a1, b1, a2, b2):
    """``1 − (a1·a2 + b1·b2)`` for real arrays, compensated: relative accuracy ~eps even when the result is
    ~1e-16 (error-free products and sums; its sign is exact unless |result| < ~1e-30)."""
    return _with_plain_gradient(_one_minus_products, lambda p, q, r, s: 1.0 - (p * r + q * s), a1, b1, a2, b2)


def _one_minus_products(a1, b1, a2, b2):
    xp = array_namespace(a1, a2)
    p1, e1 = _two_product(a1, a2)
    p2, e2 = _two_product(b1, b2)
    s1, f1 = _two_sum(xp.ones_like(p1), -p1)
    s2, f2 = _two_sum(s1, -p2)
    return s2 + ((f1 + f2) - e1 - e2)


def one_minus_cross(lam_i, lam_j):
    """``1 − λ_i·conj(λ_j)`` (broadcast), its real part compensated: the denominators of the DT Gramians keep
    their relative accuracy for poles near the circle and near each other."""
    xp = array_namespace(lam_i, lam_j)
    ai, bi, aj, bj = xp.real(lam_i), xp.imag(lam_i), xp.real(lam_j), xp.imag(lam_j)
    return one_minus_products(ai, bi, aj, bj) - 1j * (bi * aj - ai * bj)


def one_minus_abs_squared(lam):
    """``1 − |λ|²`` with relative accuracy ~eps even when |λ| is within 1e-16 of 1 (compensated); its sign
    decides stability exactly (docs/concepts/derivations.md#time-domain)."""
    return _with_plain_gradient(_one_minus_abs_squared, lambda z: 1.0 - (z * z.conj()).real, lam)


def _one_minus_abs_squared(lam):
    xp = array_namespace(lam)
    a, b = xp.real(lam), xp.imag(lam)
    px, ex = _two_square(a)
    py, ey = _two_square(b)
    s1, e1 = _two_sum(xp.ones_like(px), -px)
    s2, e2 = _two_sum(s1, -py)
    return s2 + ((e1 + e2) - ex - ey)


def stability_margin(lam: np.ndarray, *, discrete: bool) -> np.ndarray:
    """Distance to the stability boundary: ``1 − |λ|`` (DT) or ``−Re λ`` (CT); > 0 means stable.

    DT: ``(1 − |λ|²)/(1 + |λ|)`` with the compensated ``one_minus_abs_squared``, so the margin keeps its
    relative accuracy one ulp from the circle and its sign is the exact stability decision (|λ|, rounded,
    would misjudge poles within an ulp of the circle and lose digits near it). The one margin every closed
    form, Gramian and certificate uses.
    """
    xp = array_namespace(lam)
    return one_minus_abs_squared(lam) / (1.0 + xp.abs(lam)) if discrete else -xp.real(lam)


def discretize_modes(lam, step, *, method: str):
    """``(λ̄, g)`` of continuous-time poles ``lam`` with steps ``step`` (broadcast), where ``B̄ = g·B̃`` row-wise.

    ZOH: ``λ̄ = exp(λΔ)``, ``g = (λ̄ − 1)/λ = Δ·expm1(λΔ)/(λΔ)`` (limit Δ at λΔ = 0, series for small |λΔ|);
    bilinear (S5's): ``λ̄ = (1 + Δλ/2)/(1 − Δλ/2)``, ``g = Δ/(1 − Δλ/2)`` (docs/concepts/derivations.md#discretization).
    NumPy or torch (differentiable in ``lam`` and ``step``).
    """
    xp = array_namespace(lam, step)
    if method == "zoh":
        z = lam * step
        lam_bar = xp.exp(z)
        small = xp.abs(z) < 1e-5
        safe = xp.where(small, xp.ones_like(z), z)
        series = 1.0 + z / 2.0 + z * z / 6.0  # expm1(z)/z
        return lam_bar, step * xp.where(small, series, (lam_bar - 1.0) / safe)
    half = step * lam / 2.0
    return (1.0 + half) / (1.0 - half), step / (1.0 - half)


def frequency_variable(omega: np.ndarray, *, discrete: bool) -> np.ndarray:
    """z = e^{jω} (DT, ω in rad/sample) or s = jω (CT, ω in rad/s); ``omega`` a real array or tensor."""
    xp = array_namespace(omega)
    return xp.exp(1j * omega) if discrete else 1j * omega


def diagonal_freqresp(
    lam: np.ndarray,
    B: np.ndarray,
    C: np.ndarray,
    D: np.ndarray,
    omega: np.ndarray,
    *,
    discrete: bool,
    real_output: bool,
    state_includes_input: bool,
) -> np.ndarray:
    """Frequency response G(e^{jω}) or G(jω), shape ``(..., k, p, m)`` for ``omega`` of shape (k,).

    Complex output: ``G = [z]·C (zI − Λ)⁻¹ B + D``. Real output ``y = Re(Cx)`` (real input):
    ``G = ½[C (zI − Λ)⁻¹ B + conj(C) (zI − conj Λ)⁻¹ conj(B)]·[z] + D`` (docs/concepts/derivations.md#real-realization,
    augmented realization with κ = 1). The factor ``z`` appears when the state includes the
    current input (docs/concepts/derivations.md#standard-form).
    """
    xp = array_namespace(lam)
    z = frequency_variable(omega, discrete=discrete)  # (k,)
    resolvent = 1.0 / (z[:, None] - lam[..., None, :])  # (..., k, n)
    G = xp.einsum("...pn,...kn,...nm->...kpm", C, resolvent, B)
    if real_output:
        resolvent_conj = 1.0 / (z[:, None] - xp.conj(lam)[..., None, :])
        G = 0.5 * (G + xp.einsum("...pn,...kn,...nm->...kpm", xp.conj(C), resolvent_conj, xp.conj(B)))
    if state_includes_input:
        G = G * z[:, None, None]
    return G + D[..., None, :, :]


def resolvent(omega, lam, *, discrete: bool):
    """``1/(z − λ)`` at z = e^{jω} (DT) or s = jω (CT), accurate for poles next to the boundary.

    DT: ``z − λ = e^{jθ}·((g − 2 sin²(δ/2)) + j sin δ)`` with θ = arg λ, δ = ω − θ and ``g = 1 − |λ|`` the
    compensated ``stability_margin``: no cancellation of ``e^{jω} − λ`` at the resonance, so a pole
    1e-12 from the circle keeps full relative accuracy (the plain difference would lose ~4 digits).
    CT: ``jω − λ = −Re λ + j(ω − Im λ)``, exact as formed.
    """
    xp = array_namespace(omega, lam)
    if not discrete:
        return 1.0 / (1j * omega - lam)
    theta = _angle(lam)
    return xp.exp(-1j * theta) / _offset_denominator(stability_margin(lam, discrete=True), omega - theta)


def resolvent_pair(omega, lam, *, discrete: bool, margin=None):
    """``(1/(z − λ), 1/(z − conj λ))``: :func:`resolvent` of the poles and of their conjugates, sharing the one
    compensated margin and angle (conj λ has the margin of λ and the angle −arg λ). ``margin``: the
    :func:`stability_margin` of ``lam`` when the caller has it (DT)."""
    xp = array_namespace(omega, lam)
    if not discrete:
        return 1.0 / (1j * omega - lam), 1.0 / (1j * omega - xp.conj(lam))
    theta = _angle(lam)
    margin = stability_margin(lam, discrete=True) if margin is None else margin
    turn = xp.exp(-1j * theta)
    return turn / _offset_denominator(margin, omega - theta), xp.conj(turn) / _offset_denominator(margin, omega + theta)


def single_pole_gain(B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``s_i = ‖c_i‖₂ ‖b_i‖₂`` for every state, shape (..., n) (σ_max of the rank-one c_i b_iᵀ)."""
    xp = array_namespace(B, C)
    return xp.linalg.vector_norm(C, axis=-2) * xp.linalg.vector_norm(B, axis=-1)


def _divide_where_stable(numerator: np.ndarray, margin: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` where ``margin > 0``, ``inf`` elsewhere (no division warnings)."""
    xp = array_namespace(numerator, margin, denominator)
    stable = margin > 0
    return xp.where(stable, numerator / xp.where(stable, denominator, 1.0), xp.inf)


def single_pole_hinf(lam: np.ndarray, gain: np.ndarray, *, discrete: bool) -> np.ndarray:
    """H∞ of ``c bᵀ/(z − λ)``: DT ``s/(1 − |λ|)`` at ω = arg λ; CT ``s/|Re λ|`` at ω = Im λ (docs/concepts/derivations.md#state-hinf-single)."""
    margin = stability_margin(lam, discrete=discrete)
    return _divide_where_stable(gain, margin, margin)


def single_pole_h2_squared(lam: np.ndarray, gain: np.ndarray, *, discrete: bool) -> np.ndarray:
    """H2² of ``c bᵀ/(z − λ)``: DT ``s²/(1 − |λ|²)``; CT ``s²/(2|Re λ|)`` (docs/concepts/derivations.md#state-hinf-single)."""
    xp = array_namespace(lam)
    margin = stability_margin(lam, discrete=discrete)
    denominator = one_minus_abs_squared(lam) if discrete else -2.0 * xp.real(lam)
    return _divide_where_stable(gain**2, margin, denominator)


def pair_h2_squared(lam: np.ndarray, B: np.ndarray, C: np.ndarray, *, discrete: bool) -> np.ndarray:
    """Exact H2² of the conjugate pair ``2Re(c_i b_iᵀ)/(z − λ_i)`` for every state, shape (..., n).

    DT: ``2s²/(1 − r²) + 2 Re((cᵀc)(bᵀb)/(1 − λ²))``; CT: ``s²/|Re λ| − Re((cᵀc)(bᵀb)/λ)``
    (docs/concepts/derivations.md#state-h2-pair; ``cᵀc`` and ``bᵀb`` are unconjugated).
    """
    xp = array_namespace(lam, B, C)
    gain2 = single_pole_gain(B, C) ** 2
    cross = xp.einsum("...pn,...pn->...n", C, C) * xp.einsum("...nm,...nm->...n", B, B)
    margin = stability_margin(lam, discrete=discrete)
    safe_lam = xp.where(margin > 0, lam, -0.5 + 0j)
    if discrete:
        a, b = xp.real(safe_lam), xp.imag(safe_lam)
        one_minus_square = one_minus_products(a, b, a, -b) - 2j * (a * b)  # 1 − λ², compensated near λ = ±1
        value = 2.0 * gain2 / one_minus_abs_squared(safe_lam) + 2.0 * xp.real(cross / one_minus_square)
    else:
        value = gain2 / xp.abs(xp.real(safe_lam)) - xp.real(cross / safe_lam)
    return xp.where(margin > 0, xp.clip(value, min=0.0), xp.inf)


def _angle(lam):
    """arg λ in the array namespace of ``lam`` (the array API has no ``angle``)."""
    xp = array_namespace(lam)
    return xp.atan2(xp.imag(lam), xp.real(lam))


def pair_factors(B: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2×2 triangular factors of every state's real/imaginary parts, shapes (..., n, 2, 2).

    With c = x + jy and b = u + jv (real vectors), ``[x, y] = Q_c R_c`` and ``[u, v] = Q_b R_b``
    (QR), so the pair ``α c bᵀ + β conj(c) conj(b)ᵀ = [x, y] K [u, v]ᵀ`` has the singular values of
    ``R_c K R_bᵀ`` (see ``pair_sigma_max_squared``). Costs O(n·(p + m)).
    """
    xp = array_namespace(B, C)
    columns_c = xp.stack([xp.real(C), xp.imag(C)], axis=-1)  # (..., p, n, 2)
    columns_b = xp.stack([xp.real(B), xp.imag(B)], axis=-1)  # (..., n, m, 2)
    _, R_c = xp.linalg.qr(xp.moveaxis(columns_c, -3, -2))  # (..., n, min(p, 2), 2) from (..., n, p, 2)
    _, R_b = xp.linalg.qr(columns_b)  # (..., n, min(m, 2), 2)
    return _square_r(R_c), _square_r(R_b)


def _square_r(R: np.ndarray) -> np.ndarray:
    """QR of a (k, 2) matrix with k = 1 gives a (1, 2) R: pad it to 2×2 with a zero row."""
    if R.shape[-2] == 2:
        return R
    xp = array_namespace(R)
    return xp.concat([R, xp.zeros_like(R)], axis=-2)


def pair_sigma_max_squared(
    omega: np.ndarray, lam: np.ndarray, R_c: np.ndarray, R_b: np.ndarray, *, discrete: bool
) -> np.ndarray:
    """σ_max² of the conjugate pair ``G = α c bᵀ + β conj(c) conj(b)ᵀ`` at ``omega``.

    α = 1/(z − λ), β = 1/(z − conj λ). Writing c = x + jy, b = u + jv gives
    ``G = [x, y] K [u, v]ᵀ`` with ``K = [[α + β, j(α − β)], [j(α − β), −(α + β)]]``, hence
    σ(G) = σ(M), ``M = R_c K R_bᵀ`` (2×2, ``pair_factors``). With ``MᴴM = [[a, h], [conj h, d]]``:
    ``σ_max² = (a + d)/2 + sqrt(((a − d)/2)² + |h|²)`` — a sum of non-negative terms, accurate
    even where σ_max is tiny (a trace/determinant form loses half the digits there;
    docs/concepts/derivations.md#state-hinf-pair-stable).
    ``omega`` has shape (..., n, k); ``lam`` (..., n, 1); ``R_c``, ``R_b`` (..., n, 1, 2, 2).
    """
    alpha, beta = resolvent_pair(omega, lam, discrete=discrete)
    return _pair_sigma2(alpha, beta, R_c, R_b)


def _pair_matrix(alpha, beta, R_c, R_b):
    """The 2×2 ``M = R_c K R_bᵀ`` of ``α c bᵀ + β conj(c) conj(b)ᵀ`` as (m11, m12, m21, m22) (see
    ``pair_sigma_max_squared``); linear in (α, β)."""
    s, d = alpha + beta, 1j * (alpha - beta)
    (c11, c12), (c21, c22) = (R_c[..., 0, 0], R_c[..., 0, 1]), (R_c[..., 1, 0], R_c[..., 1, 1])
    (b11, b12), (b21, b22) = (R_b[..., 0, 0], R_b[..., 0, 1]), (R_b[..., 1, 0], R_b[..., 1, 1])
    # T = R_c K (2×2), then M = T R_bᵀ
    t11, t12 = c11 * s + c12 * d, c11 * d - c12 * s
    t21, t22 = c21 * s + c22 * d, c21 * d - c22 * s
    return t11 * b11 + t12 * b12, t11 * b21 + t12 * b22, t21 * b11 + t22 * b12, t21 * b21 + t22 * b22


def _pair_sigma2(alpha, beta, R_c, R_b):
    """σ_max² of ``α c bᵀ + β conj(c) conj(b)ᵀ`` from the 2×2 factors (see ``pair_sigma_max_squared``)."""
    xp = array_namespace(alpha, beta)
    m11, m12, m21, m22 = _pair_matrix(alpha, beta, R_c, R_b)
    a = xp.abs(m11) ** 2 + xp.abs(m21) ** 2
    e = xp.abs(m12) ** 2 + xp.abs(m22) ** 2
    h = xp.conj(m11) * m12 + xp.conj(m21) * m22
    return 0.5 * (a + e) + xp.sqrt((0.5 * (a - e)) ** 2 + xp.abs(h) ** 2)


def _pair_sigma2_slope(alpha, beta, d_alpha, d_beta, R_c, R_b) -> np.ndarray:
    """d σ_max²/dω ``= 2 Re((Mv)ᴴ M'v)`` with v the top right singular vector of M and M' = M(α', β') (NumPy)."""
    m11, m12, m21, m22 = _pair_matrix(alpha, beta, R_c, R_b)
    n11, n12, n21, n22 = _pair_matrix(d_alpha, d_beta, R_c, R_b)
    a = np.abs(m11) ** 2 + np.abs(m21) ** 2
    e = np.abs(m12) ** 2 + np.abs(m22) ** 2
    h = np.conj(m11) * m12 + np.conj(m21) * m22
    top = 0.5 * (a + e) + np.sqrt((0.5 * (a - e)) ** 2 + np.abs(h) ** 2)
    first = np.abs(top - e) >= np.abs(top - a)  # the better conditioned of the two eigenvector formulas
    v1 = np.where(first, top - e, h)
    v2 = np.where(first, np.conj(h), top - a)
    norm = np.sqrt(np.abs(v1) ** 2 + np.abs(v2) ** 2)
    v1, v2 = v1 / np.where(norm > 0, norm, 1.0), np.where(norm > 0, v2 / np.where(norm > 0, norm, 1.0), 1.0)
    Mv = (m11 * v1 + m12 * v2, m21 * v1 + m22 * v2)
    Nv = (n11 * v1 + n12 * v2, n21 * v1 + n22 * v2)
    return 2.0 * np.real(np.conj(Mv[0]) * Nv[0] + np.conj(Mv[1]) * Nv[1])


def _candidate_frequencies(lam: np.ndarray, margin: np.ndarray, *, discrete: bool) -> np.ndarray:
    """Per-state grids (..., K) that resolve the resonance of a pair: dense around |arg λ| (DT) or
    |Im λ| (CT) on the scale of the damping, plus a coarse global grid; sorted, inside the domain."""
    xp = array_namespace(lam, margin)
    real_dtype = margin.dtype

    def constant(values: np.ndarray):
        return xp.asarray(values, dtype=real_dtype, device=array_api_compat.device(margin))

    width = xp.clip(margin, min=1e-300)[..., None]
    u = constant(np.tan(np.linspace(-np.pi / 2, np.pi / 2, 67)[1:-1]))  # includes tan(0) = 0, the resonance
    if discrete:
        center = xp.abs(_angle(lam))[..., None]
        coarse = constant(np.linspace(0.0, np.pi, 33))
        upper = np.pi
    else:
        center = xp.abs(xp.imag(lam))[..., None]
        scale = xp.clip(xp.abs(lam), min=1e-300)[..., None]
        coarse = scale * constant(np.concatenate([np.linspace(0.0, 2.0, 17), [3.0, 5.0, 10.0, 100.0]]))
        upper = np.inf
    local = center + width * u
    grid = xp.concat([xp.broadcast_to(coarse, local.shape[:-1] + coarse.shape[-1:]), local], axis=-1)
    return xp.sort(xp.clip(grid, min=0.0, max=upper), axis=-1)


def maximize_on_grid(
    func, grid: np.ndarray, *, iterations: int = 80, scale: np.ndarray | float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise a smooth function independently along the last axis of ``grid`` (..., K).

    ``func(omega)`` maps an array of shape (..., k) to values of the same shape, for any k.
    The best grid point is refined by golden-section search on the bracket formed by its
    neighbours, until the bracket is below 1e-15·max(|x|, ``scale``) (``scale`` broadcasts against
    the leading axes: the absolute resolution wanted near x = 0). Returns ``(max_value, argmax)``, each of
    shape (...,); the value is one of ``func``'s own evaluations, so never above the true maximum.
    NumPy or torch, as ``grid``.
    """
    xp = array_namespace(grid)
    values = func(grid)

    def func_point(x: np.ndarray) -> np.ndarray:
        return func(x[..., None])[..., 0]

    best = xp.argmax(values, axis=-1, keepdims=True)
    best_value = xp.take_along_axis(values, best, axis=-1)[..., 0]
    best_omega = xp.take_along_axis(grid, best, axis=-1)[..., 0]
    # bracket: nearest distinct grid points on either side (the grid may repeat points up to round-off)
    spacing = (1e-12 * xp.maximum(xp.abs(best_omega), scale + xp.zeros_like(best_omega)))[..., None]
    lo = xp.max(xp.where(grid < best_omega[..., None] - spacing, grid, -xp.inf), axis=-1)
    hi = xp.min(xp.where(grid > best_omega[..., None] + spacing, grid, xp.inf), axis=-1)
    lo = xp.where(xp.isfinite(lo), lo, best_omega)
    hi = xp.where(xp.isfinite(hi), hi, best_omega)
    x1 = hi - _GOLDEN * (hi - lo)
    x2 = lo + _GOLDEN * (hi - lo)
    f1, f2 = func_point(x1), func_point(x2)
    for _ in range(iterations):
        left = f1 >= f2  # maximum lies in [lo, x2]
        hi = xp.where(left, x2, hi)
        lo = xp.where(left, lo, x1)
        x2_new = xp.where(left, x1, lo + _GOLDEN * (hi - lo))
        x1_new = xp.where(left, hi - _GOLDEN * (hi - lo), x2)
        f_new = func_point(xp.where(left, x1_new, x2_new))
        f1, f2 = xp.where(left, f_new, f2), xp.where(left, f1, f_new)
        x1, x2 = x1_new, x2_new
        resolution = 1e-15 * xp.maximum(xp.maximum(xp.abs(hi), xp.abs(lo)), scale + xp.zeros_like(hi))
        if bool(xp.all(hi - lo <= resolution)):
            break
    for x, f in ((x1, f1), (x2, f2)):
        better = f > best_value
        best_value = xp.where(better, f, best_value)
        best_omega = xp.where(better, x, best_omega)
    return best_value, best_omega


# ------------------------------------------------------------------ per-state pair H∞ in closed form
def _pair_stationary_points(lam: np.ndarray, R_c: np.ndarray, R_b: np.ndarray, *, discrete: bool) -> np.ndarray:
    """Candidates (..., 3) in ``x = cos ω`` (DT) or ``x = ω²/|λ|²`` (CT) containing every stationary point of a
    pair's σ_max²: the two roots of the quadratic ``Q T'² − T T' Q' + κ Q'²`` and its vertex (``nan`` where none).

    With ``N = P(z)·M`` (P(z) = (z − λ)(z − conj λ)) the pair's σ² = μ solves ``Qμ² − Tμ + κ = 0``, T = tr NᴴN
    linear and Q = |P|² quadratic in x, κ = (det R_c det R_b)² (docs/concepts/derivations.md#state-hinf-pair-closed-form).
    """
    a, eta = lam.real, lam.imag
    E1 = np.array([[1.0, 0.0], [0.0, -1.0]])
    E2 = np.array([[0.0, 1.0], [1.0, 0.0]])
    U = R_c @ E1 @ np.swapaxes(R_b, -1, -2)  # (..., n, 2, 2) real
    V = R_c @ E2 @ np.swapaxes(R_b, -1, -2)
    A1, A0 = U, -a[..., None, None] * U - eta[..., None, None] * V  # N(z) = z A1 + A0

    def det(X: np.ndarray) -> np.ndarray:
        return X[..., 0, 0] * X[..., 1, 1] - X[..., 0, 1] * X[..., 1, 0]

    kappa = (det(R_c) * det(R_b)) ** 2
    tr11, tr00 = np.sum(A1 * A1, axis=(-1, -2)), np.sum(A0 * A0, axis=(-1, -2))
    r2 = a * a + eta * eta
    if discrete:  # T = t0 + t1 x, Q = Q0 + Q1 x + Q2 x²
        t0, t1 = tr11 + tr00, 2.0 * np.sum(A1 * A0, axis=(-1, -2))
        Q0, Q1, Q2 = (1.0 - r2) ** 2 + 4.0 * a * a, -4.0 * a * (1.0 + r2), 4.0 * r2
    else:  # in x = ω²/|λ|², with Q divided by |λ|⁴
        t0, t1 = tr00, tr11 * r2
        Q0, Q1, Q2 = np.ones_like(a), 4.0 * a * a / np.where(r2 > 0, r2, 1.0) - 2.0, np.ones_like(a)
    q0 = t1 * t1 * Q0 - t1 * t0 * Q1 + kappa * Q1 * Q1
    q1 = -2.0 * t0 * t1 * Q2 + 4.0 * kappa * Q1 * Q2
    q2 = -t1 * t1 * Q2 + 4.0 * kappa * Q2 * Q2
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(q1 * q1 - 4.0 * q2 * q0)  # nan: no real root (the vertex still is a candidate)
        s = -0.5 * (q1 + np.where(q1 < 0, -root, root))
        return np.stack([s / q2, q0 / s, -0.5 * q1 / q2], axis=-1)


def pair_hinf(lam: np.ndarray, B: np.ndarray, C: np.ndarray, *, discrete: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact H∞ of every conjugate pair ``2Re(c_i b_iᵀ)/(z − λ_i)`` and its peak frequency, shapes (..., n).

    The maximum over ω ∈ [0, π] (DT) or [0, ∞) (CT) of the closed-form σ_max(ω) of ``pair_sigma_max_squared`` —
    the response is conjugate-symmetric, so negative frequencies repeat these values. The candidates are the
    real roots of the pair's stationarity quadratic (``_pair_stationary_points``, in cos ω or ω²), the ends
    of the range and a few offsets around the resonance on the scale of the damping (where the roots, near a
    double root of the denominator, lose accuracy); σ² is evaluated at each in the offset form ``ω = θ + δ``
    (θ = |arg λ| or |Im λ|) and the best is polished by golden section between its neighbours, so the value is
    a σ_max the pair actually reaches, then two Newton steps on the analytic slope place the peak to ~ε of its
    width (docs/concepts/derivations.md#state-hinf-pair-closed-form). Unstable
    pairs give ``inf`` with peak ``nan``. Memory O(n·(m + p)). NumPy, or torch tensors (solved on the host in
    float64, returned in the input's real dtype and device).
    """
    if not isinstance(lam, np.ndarray):
        xp = array_namespace(lam, B, C)
        host = [np.asarray(x.detach().cpu().to(xp.complex128)) for x in (lam, B, C)]
        value, peak = _pair_hinf_numpy(*host, discrete=discrete)
        dtype, device = xp.real(lam).dtype, array_api_compat.device(lam)
        return xp.asarray(value, dtype=dtype, device=device), xp.asarray(peak, dtype=dtype, device=device)
    return _pair_hinf_numpy(lam, B, C, discrete=discrete)


def _pair_hinf_numpy(lam: np.ndarray, B: np.ndarray, C: np.ndarray, *, discrete: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pair_hinf` on NumPy arrays."""
    lam = np.asarray(lam, dtype=complex)
    margin = stability_margin(lam, discrete=discrete)
    stable = margin > 0
    safe_lam = np.where(stable, lam, 0.5 if discrete else -0.5)
    g = stability_margin(safe_lam, discrete=discrete)
    R_c, R_b = pair_factors(np.asarray(B, dtype=complex), np.asarray(C, dtype=complex))
    size_c, size_b = np.linalg.norm(R_c, axis=(-2, -1)), np.linalg.norm(R_b, axis=(-2, -1))
    gain = size_c * size_b
    R_c = R_c / np.where(size_c > 0, size_c, 1.0)[..., None, None]  # σ² is homogeneous: solve for unit factors
    R_b = R_b / np.where(size_b > 0, size_b, 1.0)[..., None, None]
    theta = np.abs(_angle(safe_lam) if discrete else safe_lam.imag)  # the resonance of the pair, ω = θ
    # DT: the offset to the end π is φ = π − θ, formed from λ (π − θ in floating point loses all its digits when
    # λ is within an ulp of the negative axis, where both poles resonate at π)
    phi = np.arctan2(np.abs(safe_lam.imag), -safe_lam.real) if discrete else np.full_like(g, np.inf)
    roots = _pair_stationary_points(safe_lam, R_c, R_b, discrete=discrete)
    size = np.abs(safe_lam)[..., None]
    t, f = theta[..., None], phi[..., None]
    with np.errstate(invalid="ignore"):
        if discrete:
            from_roots = np.where(np.abs(roots) <= 1.0 + 1e-9, np.arccos(np.clip(roots, -1.0, 1.0)), 0.0)  # nan → 0
            coarse = np.linspace(0.0, np.pi, 5)
        else:
            from_roots = np.where(roots >= -1e-9, size * np.sqrt(np.clip(roots, 0.0, None)), 0.0)
            coarse = size * np.array([0.0, 0.5, 1.0, 2.0, 4.0])
    omega = np.concatenate([from_roots, coarse + np.zeros_like(t)], axis=-1)
    if not discrete:  # a right end beyond every stationary point (σ² → 0 as ω → ∞)
        omega = np.concatenate([omega, 2.0 * np.max(omega, axis=-1, keepdims=True) + size], axis=-1)
    near_pi = t > 0.5 * np.pi
    offsets = np.where(near_pi, (omega - np.pi) + f, omega - t) if discrete else omega - t
    local = g[..., None] * np.tan(np.linspace(-np.pi / 2, np.pi / 2, 13)[1:-1])  # δ around the resonance, incl. 0
    ends = [-t, f] if discrete else [-t]  # ω = 0 and π (DT); the CT far end is among the candidates above
    offsets = np.sort(np.clip(np.concatenate([offsets, local, *ends], axis=-1), -t, f), axis=-1)
    upper_half = (safe_lam.imag >= 0)[..., None]  # λ itself resonates at +θ (else its conjugate does)
    R_c_k, R_b_k, g_k = R_c[..., None, :, :], R_b[..., None, :, :], g[..., None]

    def terms(delta: np.ndarray, g, t, f, near_pi, upper_half):
        """(α, β, dα/dω, dβ/dω) at ω = θ + δ, in the offset form."""
        if discrete:  # the other pole resonates at ω = −θ ≡ 2π − θ: its offset 2θ + δ ≡ δ − 2φ
            other = np.where(near_pi, delta - 2.0 * f, 2.0 * t + delta)
            den_near, den_far = _offset_denominator(g, delta), _offset_denominator(g, other)
            near, far = np.exp(-1j * t) / den_near, np.exp(1j * t) / den_far
            d_near, d_far = -1j * near * np.exp(1j * delta) / den_near, -1j * far * np.exp(1j * other) / den_far
        else:  # jω − λ = g + jδ and jω − conj λ = g + j(2θ + δ) for Im λ ≥ 0
            near, far = 1.0 / (g + 1j * delta), 1.0 / (g + 1j * (2.0 * t + delta))
            d_near, d_far = -1j * near * near, -1j * far * far
        alpha, beta = np.where(upper_half, near, far), np.where(upper_half, far, near)
        return alpha, beta, np.where(upper_half, d_near, d_far), np.where(upper_half, d_far, d_near)

    def sigma2_offset(delta: np.ndarray) -> np.ndarray:
        alpha, beta, _, _ = terms(delta, g_k, t, f, near_pi, upper_half)
        return _pair_sigma2(alpha, beta, R_c_k, R_b_k)

    # σ² has its singularities ≥ ~g from the real axis, so a bracket of 1e-9·g costs ≲ 1e-17 of the value
    value2, delta = maximize_on_grid(sigma2_offset, offsets, iterations=200, scale=1e6 * g)
    # the value is now exact to rounding, but comparisons of σ² place the peak only to ~1e-8 of its width; two
    # Newton steps on dσ²/dω (analytic slope, central-difference curvature) place it to ~ε of the width, which
    # the envelope-theorem gradients of ssmtools.torch need
    flat = (g, theta, phi, near_pi[..., 0], upper_half[..., 0])

    def slope(d: np.ndarray) -> np.ndarray:
        alpha, beta, d_alpha, d_beta = terms(d, *flat)
        return _pair_sigma2_slope(alpha, beta, d_alpha, d_beta, R_c, R_b)

    polished = delta
    for _ in range(2):
        h = 1e-6 * (g + np.abs(polished))
        curvature = (slope(polished + h) - slope(polished - h)) / (2.0 * h)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = -slope(polished) / curvature
        keep = (curvature < 0) & (np.abs(step) <= 1e-3 * (g + np.abs(polished)))
        polished = np.clip(np.where(keep, polished + step, polished), -theta, phi)
    alpha, beta, _, _ = terms(polished, *flat)
    polished_value2 = _pair_sigma2(alpha, beta, R_c, R_b)
    better = polished_value2 >= value2 * (1.0 - 1e-15)
    delta = np.where(better, polished, delta)
    value2 = np.maximum(value2, polished_value2)
    value = np.sqrt(value2) * gain
    return np.where(stable, value, np.inf), np.where(stable, theta + delta, np.nan)


def _offset_denominator(g, delta):
    """``e^{jδ} − r = (g − 2 sin²(δ/2)) + j sin δ`` with g = 1 − r, without cancellation."""
    xp = array_namespace(g, delta)
    half = xp.sin(0.5 * delta)
    return (g - 2.0 * half * half) + 1j * xp.sin(delta)


def _complex_expm1(x, y):
    """``e^{x + jy} − 1`` from real and imaginary parts, without cancellation for small arguments:
    ``expm1(x)·cos y − 2 sin²(y/2) + j·e^x sin y``."""
    xp = array_namespace(x, y)
    half = xp.sin(0.5 * y)
    return (xp.expm1(x) * xp.cos(y) - 2.0 * half * half) + 1j * (xp.exp(x) * xp.sin(y))


def horizon_sum(lam_i, lam_j, horizon, *, discrete: bool):
    """Finite-horizon kernel of the diagonal Gramians (broadcast), defined for every pole.

    DT: ``S = Σ_{k=0}^{L−1} (λ_i conj λ_j)^k = (1 − μ^L)/(1 − μ)`` with μ = λ_i conj λ_j and L = ``horizon``
    (an integer ≥ 0), evaluated as ``expm1(L·t)/expm1(t)`` with ``t = log μ = ½(log|λ_i|² + log|λ_j|²) +
    j(arg λ_i − arg λ_j)``: ``log|λ|² = log1p(−(1 − |λ|²))`` with the compensated
    :func:`one_minus_abs_squared`, so S keeps its relative accuracy as μ → 1 and equals L exactly at μ = 1
    (a pole on the circle). A zero pole gives μ = 0 and S = 1 (L ≥ 1). CT: ``S = ∫_0^T e^{st} dt =
    expm1(sT)/s`` with s = λ_i + conj λ_j and T = ``horizon``, T at s = 0
    (docs/concepts/derivations.md#finite-horizon-gramians). Growth beyond the float range gives ``inf``.
    """
    xp = array_namespace(lam_i, lam_j)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if not discrete:
            s = lam_i + xp.conj(lam_j)
            x, y = xp.real(s), xp.imag(s)
            zero = (x == 0) & (y == 0)
            safe = xp.where(zero, xp.ones_like(s), s)
            value = _complex_expm1(horizon * x, horizon * y) / safe
            return xp.where(zero, horizon + 0j, value)
        zero_pole = (lam_i == 0) | (lam_j == 0)
        safe_i = xp.where(lam_i == 0, xp.ones_like(lam_i), lam_i)
        safe_j = xp.where(lam_j == 0, xp.ones_like(lam_j), lam_j)
        x = 0.5 * (xp.log1p(-one_minus_abs_squared(safe_i)) + xp.log1p(-one_minus_abs_squared(safe_j)))
        y = _angle(safe_i) - _angle(safe_j)
        x, y = x + xp.zeros_like(y), y + xp.zeros_like(x)
        at_one = (x == 0) & (y == 0)
        denominator = _complex_expm1(x, y)
        value = _complex_expm1(horizon * x, horizon * y) / xp.where(at_one, xp.ones_like(denominator), denominator)
        value = xp.where(at_one, horizon + 0j, value)
        return xp.where(zero_pole, (1.0 if horizon >= 1 else 0.0) + 0j, value)


def diagonal_controllability_gramian(
    lam: np.ndarray, B: np.ndarray, *, discrete: bool, horizon: float | None = None
) -> np.ndarray:
    """Closed-form Gramian of ``x⁺ = Λx + Bu`` (or ``ẋ = Λx + Bu``), shape (..., n, n) (docs/concepts/derivations.md#gramians).

    DT ``P_ij = (BBᴴ)_ij / (1 − λ_i conj λ_j)``; CT ``P_ij = −(BBᴴ)_ij / (λ_i + conj λ_j)``. With a
    ``horizon`` (DT: L steps, CT: time T) the finite-horizon Gramian ``Σ_{k<L} ΛᵏBBᴴΛᴴᵏ`` (CT ``∫_0^T``):
    ``P_ij = (BBᴴ)_ij · S_ij`` with :func:`horizon_sum` (docs/concepts/derivations.md#finite-horizon-gramians).
    """
    xp = array_namespace(lam, B)
    BBh = B @ xp.conj(xp.matrix_transpose(B))
    if horizon is not None:
        return BBh * horizon_sum(lam[..., :, None], lam[..., None, :], horizon, discrete=discrete)
    return BBh / _square_denominators(lam, discrete=discrete)


def diagonal_observability_gramian(
    lam: np.ndarray, C: np.ndarray, *, discrete: bool, horizon: float | None = None
) -> np.ndarray:
    """Closed-form Gramian ``Q`` of the pair (Λ, C), shape (..., n, n) (docs/concepts/derivations.md#gramians).

    DT ``Q_ij = (CᴴC)_ij / (1 − conj λ_i λ_j)``; CT ``Q_ij = −(CᴴC)_ij / (conj λ_i + λ_j)``. With a
    ``horizon``: ``Q_ij = (CᴴC)_ij · conj(S_ij)`` (:func:`horizon_sum`).
    """
    xp = array_namespace(lam, C)
    ChC = xp.conj(xp.matrix_transpose(C)) @ C
    if horizon is not None:
        return ChC * xp.conj(horizon_sum(lam[..., :, None], lam[..., None, :], horizon, discrete=discrete))
    return ChC / xp.conj(_square_denominators(lam, discrete=discrete))  # conj(1 − λ_i conj λ_j) = 1 − conj λ_i λ_j


BLOCK_ELEMENTS = 2**14
"""Entries of one square tile of the pairwise H2 sum: bounds its working memory (nine real arrays of this many
numbers, 128 KiB each, small enough to stay in cache) whatever the number of states."""


def gramian_denominators(lam_i, margin_i, nu_j, *, discrete: bool):
    """Denominators ``1 − λ_i ν_j`` (DT) or ``−(λ_i + ν_j)`` (CT) of the Gramian sums, broadcast (ν_j = conj λ_j).

    DT as ``m_i + λ_i·(conj λ_i − ν_j)`` with ``m_i = 1 − |λ_i|²`` from the compensated
    :func:`one_minus_abs_squared` (``margin_i``): the same number, and for poles in the closed unit disc every entry
    keeps a relative error of a few ε, because ``|1 − λ_i conj λ_j| ≥ max(|λ_i − λ_j|, m_i/2)`` bounds the rounding
    of its two operations (docs/concepts/derivations.md#layer-h2). Two complex operations per entry.
    """
    if not discrete:
        return -(lam_i + nu_j)
    xp = array_namespace(lam_i, nu_j)
    return margin_i + lam_i * (xp.conj(lam_i) - nu_j)


def _square_denominators(lam, *, discrete: bool):
    """The n×n :func:`gramian_denominators` ``d_ij`` of the poles ``lam`` (..., n) with themselves: P = BBᴴ/d."""
    xp = array_namespace(lam)
    margin = one_minus_abs_squared(lam)[..., :, None] if discrete else None
    return gramian_denominators(lam[..., :, None], margin, xp.conj(lam)[..., None, :], discrete=discrete)


_UFUNCS = {operator.add: np.add, operator.sub: np.subtract, operator.mul: np.multiply, operator.truediv: np.divide}


def _into(op, x, y, out):
    """``op(x, y)`` (an ``operator`` function), written into ``out`` when given (NumPy tiles reuse their buffers)."""
    return op(x, y) if out is None else _UFUNCS[op](x, y, out=out)


def _inverse_denominators(a_i, b_i, margin_i, a_j, b_j, margin_j, signs, *, discrete: bool, work=None):
    """``[(P, R), ...]`` with ``1/d_ij = P − jR`` for each ν_j = a_j − j·sign·b_j in ``signs``, in real arithmetic.

    ``+1`` is ν_j = conj λ_j (the Gramian's own denominators), ``−1`` is ν_j = λ_j (the (λ_i, conj λ_j) quarter of a
    real-output layer); the two share their common parts. DT: ``2 Re d = (m_i + m_j) + (a_i − a_j)² + (b_i ∓ b_j)²``,
    a sum of non-negative terms, and ``2 Im d = 2b_i(a_i − a_j) − 2a_i(b_i ∓ b_j)``: the parts of
    :func:`gramian_denominators`' ``m_i + λ_i(conj λ_i − ν_j)``, with the same few-ε accuracy for poles in the closed
    disc (docs/concepts/derivations.md#layer-h2). CT: ``d = −(a_i + a_j) − j(b_i ∓ b_j)``. ``work``: NumPy buffers
    of the tile's shape, 5 + 2·len(signs) of them (the tile then allocates nothing), or ``None``.
    """
    add, sub, mul, div = operator.add, operator.sub, operator.mul, operator.truediv
    w_da, w_shared, w_cross, w_db, w_q, *w_out = [None] * (5 + 2 * len(signs)) if work is None else work
    if discrete:
        da = _into(sub, a_i, a_j, w_da)
        shared = _into(add, _into(add, margin_i, margin_j, w_shared), _into(mul, da, da, w_q), w_shared)
        cross = _into(mul, 2.0 * b_i, da, w_cross)
    else:
        shared = _into(mul, _into(add, a_i, a_j, w_shared), -1.0, w_shared)
    parts = []
    for k, sign in enumerate(signs):
        w_real, w_imag = w_out[2 * k], w_out[2 * k + 1]
        db = _into(sub if sign > 0 else add, b_i, b_j, w_db)
        if discrete:
            real = _into(add, shared, _into(mul, db, db, w_real), w_real)
            imag = _into(sub, cross, _into(mul, 2.0 * a_i, db, w_imag), w_imag)
        else:
            real, imag = _into(mul, shared, 1.0, w_real), _into(mul, db, -1.0, w_imag)
        q = _into(add, _into(mul, real, real, w_q), _into(mul, imag, imag, w_db), w_q)
        scale = _into(div, 2.0 if discrete else 1.0, q, w_q)  # DT: real and imag are those of 2d
        parts.append((_into(mul, real, scale, w_real), _into(mul, imag, scale, w_imag)))
    return parts


def _tile_sum(P, R, rows, cols):
    """``Re Σ_ij w_ij (P_ij − jR_ij)`` of one tile, with ``w_ij = G_i·conj(G_j)`` (``rows``, ``cols`` = (Re G, Im G),
    each (..., k, r)) or ``w_ij = (B_i·conj B_j)(C_i·conj C_j)`` (``rows``, ``cols`` = (B, Cᵀ), complex (..., k, m)
    and (..., k, p)). ``Re(w·(P − jR)) = Re w·P + Im w·R``; the G form as four real matrix products."""
    xp = array_namespace(P)
    first, second = rows
    if xp.isdtype(first.dtype, "complex floating"):
        (B_i, C_i), (B_j, C_j) = rows, cols
        weight = (B_i @ xp.conj(xp.matrix_transpose(B_j))) * (C_i @ xp.conj(xp.matrix_transpose(C_j)))
        return xp.sum(xp.real(weight) * P + xp.imag(weight) * R, axis=(-1, -2))
    (Gr_i, Gi_i), (Gr_j, Gi_j) = rows, cols
    # Re w = Gr_i·Gr_j + Gi_i·Gi_j, Im w = Gi_i·Gr_j − Gr_i·Gi_j
    PGr, PGi, RGr, RGi = P @ Gr_j, P @ Gi_j, R @ Gr_j, R @ Gi_j
    return xp.sum(Gr_i * (PGr - RGi) + Gi_i * (PGi + RGr), axis=(-1, -2))


def h2_squared_diagonal(
    lam: np.ndarray,
    B: np.ndarray,
    C: np.ndarray,
    D: np.ndarray,
    *,
    discrete: bool,
    feedthrough_cross: np.ndarray | None,
    horizon: float | None = None,
    conj_pairs: bool = False,
    block_elements: int = BLOCK_ELEMENTS,
) -> np.ndarray:
    """``‖G‖²_H2`` of a diagonal system without forming its n×n Gramian, shape (...,).

    ``tr(C P Cᴴ) + ‖D‖²_F [+ 2 Re tr(Dᴴ CB)]`` with P the controllability Gramian, as ``Σ_ij w_ij / d_ij`` with
    ``w_ij = (BBᴴ)_ij (CᴴC)_ji`` and the denominators :func:`gramian_denominators`
    (docs/concepts/derivations.md#layer-h2). The terms are Hermitian in (i, j), so only the tiles on and above the
    diagonal are evaluated, in square tiles of ``block_elements`` entries: O(n·(m + p)) memory whatever n (24000²
    complex numbers are 9 GB for a 12000-state conjugate-symmetric layer). The tiles run in real arithmetic
    (``1/d = P − jR`` from :func:`_inverse_denominator_parts`, then real matrix products). ``conj_pairs``:
    ``lam, B, C`` are the stored half of the augmented realization ``([λ, conj λ], [B; conj B], ½[C, conj C])``;
    its four quarters are two sums over the stored states, (λ_i, λ_j) and (λ_i, conj λ_j), each doubled (half
    the work), evaluated in one pass that shares their common differences. With a ``horizon`` the finite-horizon
    factors :func:`horizon_sum` replace ``1/d_ij`` (docs/concepts/derivations.md#finite-horizon-gramians).
    """
    xp = array_namespace(lam, B, C, D)
    n = lam.shape[-1]
    if conj_pairs:
        C = 0.5 * C
    Ct = xp.matrix_transpose(C)  # (..., n, p)
    m, p = B.shape[-1], C.shape[-2]
    if m * p <= m + p:  # w = G Gᴴ with G_i = vec(c_i b_iᵀ) of m·p entries: cheaper than (BBᴴ)∘(CᴴC)
        G = xp.reshape(Ct[..., :, :, None] * B[..., :, None, :], (*lam.shape, m * p))
        data = [(xp.real(G), xp.imag(G))] + ([(xp.real(G), -xp.imag(G))] if conj_pairs else [])
    else:
        data = [(B, Ct)] + ([(xp.conj(B), xp.conj(Ct))] if conj_pairs else [])
    a, b = xp.real(lam), xp.imag(lam)
    margin = one_minus_abs_squared(lam) if discrete else None
    size = max(1, math.isqrt(max(1, block_elements // max(1, math.prod(lam.shape[:-1])))))
    signs = (1.0, -1.0)[: len(data)]  # ν_j = conj λ_j, then ν_j = λ_j
    in_place = isinstance(a, np.ndarray) and horizon is None  # NumPy tiles reuse buffers (no allocation per tile)

    def row_block(start: int):
        """The tiles on and right of the diagonal in the row block starting at ``start``."""
        part = slice(start, min(n, start + size))
        a_i, b_i, lam_i = a[..., part, None], b[..., part, None], lam[..., part, None]
        margin_i = None if margin is None else margin[..., part, None]
        rows = _take(data[0], part)
        shape = (*lam.shape[:-1], part.stop - part.start, min(size, n))
        work = [np.empty(shape) for _ in range(5 + 2 * len(signs))] if in_place else None
        block_total = 0.0
        for first in range(start, n, size):
            cols = slice(first, min(n, first + size))
            if horizon is not None:
                poles_j = lam[..., None, cols]
                kernels = [horizon_sum(lam_i, poles_j if sign > 0 else xp.conj(poles_j), horizon, discrete=discrete)
                           for sign in signs]  # fmt: skip
                parts = [(xp.real(kernel), -xp.imag(kernel)) for kernel in kernels]
            else:
                tile = None if work is None else [w[..., : cols.stop - cols.start] for w in work]
                margin_j = None if margin is None else margin[..., None, cols]
                a_j, b_j = a[..., None, cols], b[..., None, cols]
                parts = _inverse_denominators(
                    a_i, b_i, margin_i, a_j, b_j, margin_j, signs, discrete=discrete, work=tile
                )
            tile_sum = sum(_tile_sum(P, R, rows, _take(block, cols)) for (P, R), block in zip(parts, data))
            block_total = block_total + (tile_sum if first == start else 2.0 * tile_sum)  # (J, I): the conjugate
        return block_total

    partial = [row_block(start) for start in range(0, n, size)]
    total = xp.zeros(lam.shape[:-1], dtype=a.dtype, device=array_api_compat.device(lam))
    for block_total in partial:
        total = total + block_total
    if conj_pairs:
        total = 2.0 * total  # the conjugate half of the rows
    value = total + xp.sum(xp.abs(D) ** 2, axis=(-1, -2))
    if feedthrough_cross is not None:
        value = value + 2.0 * xp.real(xp.sum(xp.conj(D) * feedthrough_cross, axis=(-1, -2)))
    return xp.clip(value, min=0.0)


def _take(data, part: slice):
    """Rows ``part`` (state axis −2) of a ``(Re G, Im G)`` or ``(B, Cᵀ)`` pair."""
    return tuple(x[..., part, :] for x in data)


def _cross_denominator(f: np.ndarray, f_k: complex, *, discrete: bool) -> np.ndarray:
    """Denominators ``1 − f_i conj f_k`` (DT, compensated) or ``−(f_i + conj f_k)`` (CT) of a Cauchy-like Gramian."""
    return one_minus_cross(f, f_k) if discrete else -(f + np.conj(f_k))


# Schur-complement pivots below this fraction of the first one are exact zeros for gramian_factor (their σ would
# be ≲ 1e-100 of σ₁; going on would run the elimination in subnormal numbers).
_NEGLIGIBLE_PIVOT = 2.0**-700


def gramian_factor(poles: np.ndarray, G: np.ndarray, *, discrete: bool) -> np.ndarray:
    """Factor ``F`` (n, r) with ``F Fᴴ = X`` of the Cauchy-like Gramian ``X_ij = g_i g_jᴴ/(1 − f_i conj f_j)``.

    ``poles`` f (n,), generator ``G`` (n, m) with rows g_i; CT ``X_ij = −g_i g_jᴴ/(f_i + conj f_j)``. The
    controllability Gramian is ``(λ, B)``, the observability one ``(conj λ, Cᴴ)``. Pivoted LDLᴴ
    ``X = Π L D Lᴴ Πᵀ`` (largest remaining diagonal first, so ``|L_ij| ≤ 1``) computed from the generators,
    never from X: the Schur complement of a Cauchy-like matrix is Cauchy-like with generator rows
    ``g_i (f_i − f_k)/(1 − f_i conj f_k)`` (CT ``/(f_i + conj f_k)``) once a Householder reflection has turned
    ``g_k`` into ``(‖g_k‖, 0, …)``. Only differences of poles and the compensated denominators enter, so every
    pivot ``d_k`` keeps its relative accuracy however close the poles are (an eigendecomposition of the formed
    X resolves its eigenvalues only to ~eps·‖X‖; docs/concepts/derivations.md#hankel-singular-values).
    Returns ``Π L D^{1/2}``: rows in the original order, columns in pivot order, r = number of pivots above
    2⁻⁷⁰⁰ (~1e-211) times the first (smaller ones are zeros).
    """
    n, m = G.shape
    G = np.array(G, dtype=complex)
    if m > n:  # G Gᴴ = Rᴴ R with Gᴴ = Q R: an n-column generator with the same rows' norms
        R = np.linalg.qr(np.conj(G.T), mode="r")
        G = np.conj(np.asarray(R).T)
        m = n
    f = np.array(poles, dtype=complex)
    own = one_minus_abs_squared(f) if discrete else -2.0 * np.real(f)  # the diagonal denominators, > 0 when stable
    rows = np.arange(n)
    F = np.zeros((n, n), dtype=complex)
    rank, cut = 0, 0.0
    for k in range(n):
        diagonal = np.sum(np.real(G) ** 2 + np.imag(G) ** 2, axis=1) / own
        j = int(np.argmax(diagonal))
        cut = cut or float(diagonal[j]) * _NEGLIGIBLE_PIVOT
        if not diagonal[j] > cut:
            break
        G[diagonal <= cut] = 0.0  # keeps later products out of subnormal numbers (slow, and below any use)
        if j:
            for values in (G, rows, f, own):
                values[[0, j]] = values[[j, 0]]
        if m > 1:
            _reflect_onto_first_column(G)
        gamma = G[:, 0]
        denominator = _cross_denominator(f, f[0], discrete=discrete)
        denominator[0] = own[0]
        pivot = abs(gamma[0]) ** 2 / own[0]
        F[rows, k] = gamma * (np.conj(gamma[0]) / np.sqrt(pivot)) / denominator
        G[1:, 0] = gamma[1:] * (f[1:] - f[0]) / denominator[1:]
        G, rows, f, own = G[1:], rows[1:], f[1:], own[1:]
        rank = k + 1
    return F[:, :rank]


def _reflect_onto_first_column(G: np.ndarray) -> None:
    """In place ``G ← G H`` with a Householder H such that the first row becomes ``(β, 0, …, 0)``, |β| = ‖g_0‖."""
    x = np.conj(G[0])
    norm = float(np.linalg.norm(x))
    phase = x[0] / abs(x[0]) if x[0] != 0 else 1.0
    u = x.copy()
    u[0] += phase * norm
    uu = float(np.real(np.vdot(u, u)))
    if uu > 0:
        G -= (2.0 / uu) * np.einsum("im,m->i", G, u)[:, None] * np.conj(u)  # einsum: no BLAS call per step
    G[0, 1:] = 0.0


def psd_factor(gramian: np.ndarray) -> np.ndarray:
    """A factor ``L`` with ``L Lᴴ = gramian`` from its Hermitian eigendecomposition (negative
    round-off eigenvalues clipped to 0); well defined even when the Gramian is singular."""
    hermitian = 0.5 * (gramian + np.conj(np.swapaxes(gramian, -1, -2)))
    eigenvalues, vectors = np.linalg.eigh(hermitian)
    return vectors * np.sqrt(np.maximum(eigenvalues, 0.0))[..., None, :]


def graded_svd(F_Q: np.ndarray, F_P: np.ndarray, *, compute_uv: bool = False):
    """SVD of ``M = F_Qᴴ F_P`` for the column-graded factors of :func:`gramian_factor`.

    M is graded on both sides (``D_Q^{1/2} Z D_P^{1/2}``, Z well conditioned, both scales descending). A QR
    factorisation with column pivoting ``M Π = Q R`` leaves a row-graded R whose conjugate transpose, column
    graded, an SVD resolves value by value (Demmel & Veselić; docs/concepts/derivations.md#hankel-singular-values).
    Returns the k = min(shape) singular values, descending, or ``(U, σ, V)`` with ``M = U diag(σ) Vᴴ``.
    """
    import scipy.linalg

    M = np.conj(F_Q.T) @ F_P
    k = min(M.shape)
    if k == 0:
        empty = np.zeros(0)
        return (np.zeros((M.shape[0], 0), M.dtype), empty, np.zeros((M.shape[1], 0), M.dtype)) if compute_uv else empty
    if not compute_uv:
        R, _ = scipy.linalg.qr(M, pivoting=True, mode="r")
        return np.linalg.svd(np.conj(R[:k].T), compute_uv=False)
    Q, R, pivots = scipy.linalg.qr(M, pivoting=True, mode="economic")
    left, values, right_h = np.linalg.svd(np.conj(R.T), full_matrices=False)  # Rᴴ = left σ right_h
    V = np.zeros((M.shape[1], k), dtype=left.dtype)
    V[pivots] = left  # M = Q R Πᵀ = (Q right_hᴴ) σ (Π left)ᴴ
    return Q @ np.conj(right_h.T), values, V


def graded_hankel_singular_values(
    lam: np.ndarray, B: np.ndarray, C: np.ndarray, *, discrete: bool, horizon: float | None = None
) -> np.ndarray:
    """Hankel singular values of one diagonal system ``(Λ, B, C)``, accurate relative to *each* σ, descending (N,).

    Square-root method on structured factors: ``P = F_P F_Pᴴ`` and ``Q = F_Q F_Qᴴ`` from
    :func:`gramian_factor` (pivoted LDLᴴ from the generators B and Cᴴ, never from the formed Gramians), then the
    singular values of ``F_Qᴴ F_P`` by :func:`graded_svd`. Row scales of B and C spanning many orders of
    magnitude and poles closer than 1e-10 to each other are both resolved; what is left is the sensitivity of
    the data itself (docs/concepts/derivations.md#hankel-singular-values). States with ``b_i = 0`` or
    ``c_i = 0`` contribute zeros.
    ``horizon``: the finite-horizon Gramians instead (docs/concepts/derivations.md#finite-horizon-gramians), formed
    with their scales kept apart and factored by eigh — the structured factorisation covers the infinite horizon only.
    """
    out = np.zeros(lam.shape[-1])
    if horizon is None:
        F_P = gramian_factor(lam, B, discrete=discrete)
        F_Q = gramian_factor(np.conj(lam), np.conj(C.T), discrete=discrete)
        values = graded_svd(F_Q, F_P)
    else:
        s_b, s_c = np.linalg.norm(B, axis=1), np.linalg.norm(C, axis=0)
        live = (s_b > 0) & (s_c > 0)
        if not np.any(live):
            return out
        lam, s_b, s_c = lam[live], s_b[live], s_c[live]
        P = diagonal_controllability_gramian(lam, B[live] / s_b[:, None], discrete=discrete, horizon=horizon)
        Q = diagonal_observability_gramian(lam, C[:, live] / s_c[None, :], discrete=discrete, horizon=horizon)
        values = graded_svd(s_c[:, None] * psd_factor(Q), s_b[:, None] * psd_factor(P))  # L̃_Qᴴ S_c S_b L̃_P
    out[: values.size] = values
    return out

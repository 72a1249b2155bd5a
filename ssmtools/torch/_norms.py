"""Differentiable system norms of :class:`TorchSSM` systems (docs/concepts/derivations.md#differentiable-norms).

Every value is a torch tensor in the graph of the system's parameters. The closed forms (per-state H∞ of
complex output, per-state H2, layer H2 from the diagonal Gramian) are the formulas of ``ssmtools._kernels``
run on tensors, so autograd differentiates the very expressions the NumPy functions evaluate. Quantities
defined by a maximisation (the H∞ of a conjugate pair, the layer H∞) or by a spectral decomposition (Hankel
singular values) are located without grad by the existing certified methods and differentiated at the
optimum: envelope theorem for the maxima, first-order eigenvalue perturbation for the HSVs — never a
gradient through a search.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import _kernels as _numpy_annotated_kernels, norms
from .._backends.threads import one_blas_thread
from ..errors import ArgumentError
from ._system import TorchSSM
from ._warm import HinfTracker

#: the kernels are namespace-generic but annotated with NumPy arrays; here they run on tensors
_kernels: Any = _numpy_annotated_kernels


def _augmented(sys: TorchSSM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(Λ_a, B_a, C_a)`` of :func:`ssmtools.systems.augmented_realization`, as tensors in the graph."""
    if sys.output == "complex":
        return sys.poles, sys.B, sys.C
    lam = torch.cat([sys.poles, sys.poles.conj()], dim=-1)
    B = torch.cat([sys.B, sys.B.conj()], dim=-2)
    C = 0.5 * torch.cat([sys.C, sys.C.conj()], dim=-1)
    return lam, B, C


def _stable_poles(sys: TorchSSM) -> tuple[torch.Tensor, torch.Tensor]:
    """``(stable, poles)`` with unstable poles replaced by a harmless stable one (their entries become inf later),
    so that no inf or NaN enters the graph of the entries that are kept."""
    stable, safe, _ = _stable_poles_and_margin(sys)
    return stable, safe


def _stable_poles_and_margin(sys: TorchSSM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_stable_poles` and the compensated stability margin of the poles (valid where stable)."""
    margin = _kernels.stability_margin(sys.poles, discrete=sys.is_discrete)
    stable = margin > 0
    safe = torch.where(stable, sys.poles, torch.full_like(sys.poles, 0.5 if sys.is_discrete else -0.5))
    return stable, safe, margin


def _with_value(value: torch.Tensor, differentiable: torch.Tensor) -> torch.Tensor:
    """``value`` (computed without grad) carrying the gradient of ``differentiable`` (equal to it to first order)."""
    return value + (differentiable - differentiable.detach())


# ---------------------------------------------------------------------------------------------- per state
def _pair_sigma_max(omega: torch.Tensor, lam: torch.Tensor, B: torch.Tensor, C: torch.Tensor, *, discrete: bool):
    """σ_max of the conjugate pair ``α c bᵀ + β conj(c) conj(b)ᵀ`` at ``omega`` (..., n), differentiable.

    With ``c = x + jy``, ``b = u + jv`` the pair is ``[x, y] K [u, v]ᵀ`` (``_kernels.pair_sigma_max_squared``);
    its σ² are the eigenvalues of the 2×2 ``Kᴴ G_c K G_b``, ``G_c = [x, y]ᵀ[x, y]``, ``G_b = [u, v]ᵀ[u, v]``:
    ``σ_max² = t/2 + sqrt(t²/4 − 16|αβ|² det G_c det G_b)``, ``t = tr(Kᴴ G_c K G_b)`` (smooth where σ₁ > σ₂).
    """
    alpha, beta = _kernels.resolvent_pair(omega, lam, discrete=discrete)
    s, d = alpha + beta, 1j * (alpha - beta)
    x, y, u, v = C.real, C.imag, B.real, B.imag
    c11, c12, c22 = (x * x).sum(-2), (x * y).sum(-2), (y * y).sum(-2)
    b11, b12, b22 = (u * u).sum(-1), (u * v).sum(-1), (v * v).sum(-1)
    t11, t12 = c11 * s + c12 * d, c11 * d - c12 * s
    t21, t22 = c12 * s + c22 * d, c12 * d - c22 * s
    w11 = s.conj() * t11 + d.conj() * t21
    w12 = s.conj() * t12 + d.conj() * t22
    w22 = d.conj() * t12 - s.conj() * t22
    trace = w11.real * b11 + w22.real * b22 + 2.0 * w12.real * b12
    det = 16.0 * (alpha * beta).abs() ** 2 * (c11 * c22 - c12 * c12) * (b11 * b22 - b12 * b12)
    discriminant = (0.25 * trace * trace - det).clamp(min=torch.finfo(trace.dtype).tiny)
    return (0.5 * trace + discriminant.sqrt()).clamp(min=0.0).sqrt()


def state_hinf_norms(sys: TorchSSM) -> torch.Tensor:
    """H∞ norm of every one-state subsystem, differentiable, shape ``(*batch, n)``.

    Parameters
    ----------
    sys : TorchSSM
        Any batch shape, DT or CT, complex or real output.

    Returns
    -------
    torch.Tensor
        Real, ``inf`` where a state is not asymptotically stable (no gradient there). The values equal
        :func:`ssmtools.state_hinf_norms` of ``sys.to_numpy()``.

    Notes
    -----
    Complex output: the closed form ``‖c_i‖‖b_i‖/(1 − |λ_i|)`` (DT) or ``/|Re λ_i|`` (CT), differentiated as
    written. Real output: ½ of the exact conjugate-pair norm ``max_ω σ_max(G_i(ω))``; the peak ω* is found
    without grad (``_kernels.pair_hinf`` on the host, in float64) and the gradient is that of σ_max(G_i(ω*)) at fixed ω* (envelope
    theorem: ∂ω*/∂θ does not enter because ∂σ/∂ω = 0 at an interior maximum). Where the pair's two singular
    values coincide at ω* the norm is not differentiable and the returned gradient is one of its one-sided
    derivatives (docs/concepts/derivations.md#differentiable-norms).
    """
    discrete = sys.is_discrete
    if sys.output == "complex":
        gain = _kernels.single_pole_gain(sys.B, sys.C)
        return _kernels.single_pole_hinf(sys.poles, gain, discrete=discrete)
    host = [t.detach().cpu().to(torch.complex128).numpy() for t in (sys.poles, sys.B, sys.C)]
    values_host, peaks_host = _kernels.pair_hinf(*host, discrete=discrete)  # the search, on the host, without grad
    values, peaks = (
        torch.as_tensor(a, device=sys.poles.device).to(sys.poles.real.dtype) for a in (values_host, peaks_host)
    )
    stable, lam = _stable_poles(sys)
    omega = torch.where(stable, peaks, torch.zeros_like(peaks))
    sigma = _pair_sigma_max(omega, lam, sys.B, sys.C, discrete=discrete)
    return torch.where(stable, 0.5 * _with_value(values, sigma), torch.full_like(values, torch.inf))


def state_h2_norms(sys: TorchSSM) -> torch.Tensor:
    """H2 norm of every one-state subsystem, differentiable, shape ``(*batch, n)``.

    Parameters
    ----------
    sys : TorchSSM
        Any batch shape.

    Returns
    -------
    torch.Tensor
        ``inf`` where a state is unstable; equals :func:`ssmtools.state_h2_norms` of ``sys.to_numpy()``.

    Notes
    -----
    The closed forms of ``_kernels`` (complex output: ``s_i/sqrt(1 − |λ_i|²)`` DT, ``s_i/sqrt(2|Re λ_i|)`` CT;
    real output: ½ of the exact pair H2 with its cross term), differentiated as written. The square root makes
    the gradient infinite at a state whose H2 is exactly 0; penalise the squared value there.
    """
    if sys.output == "complex":
        gain = _kernels.single_pole_gain(sys.B, sys.C)
        return _kernels.single_pole_h2_squared(sys.poles, gain, discrete=sys.is_discrete).sqrt()
    return 0.5 * _kernels.pair_h2_squared(sys.poles, sys.B, sys.C, discrete=sys.is_discrete).sqrt()


# ---------------------------------------------------------------------------------------------- layer H2
def h2_squared(sys: TorchSSM) -> torch.Tensor:
    """Squared layer H2 norm ``‖G‖²_H2``, differentiable everywhere it is finite, shape ``batch_shape``.

    Parameters
    ----------
    sys : TorchSSM
        Any batch shape.

    Returns
    -------
    torch.Tensor
        ``tr(C_a P_a C_aᴴ) + ‖D‖²_F [+ 2 Re tr(Dᴴ C_a B_a)]`` from the closed-form diagonal Gramian
        (docs/concepts/derivations.md#layer-h2); ``inf`` for unstable systems and CT systems with D ≠ 0.
    """
    stable, safe = _stable_poles(sys)
    lam, B, C = _augmented(sys.__class__(safe, sys.B, sys.C, sys.D, **_conventions(sys)))
    cross = C @ B if sys.state_includes_input else None
    value2 = _kernels.h2_squared_diagonal(lam, B, C, sys.D, discrete=sys.is_discrete, feedthrough_cross=cross)
    infinite = ~stable.all(dim=-1)
    if not sys.is_discrete:
        infinite = infinite | (sys.D != 0).any(dim=-1).any(dim=-1)
    return torch.where(infinite, torch.full_like(value2, torch.inf), value2)


def h2_norm(sys: TorchSSM) -> torch.Tensor:
    """Layer H2 norm, differentiable, shape ``batch_shape``: ``sqrt(h2_squared(sys))``.

    Parameters
    ----------
    sys : TorchSSM
        Any batch shape.

    Returns
    -------
    torch.Tensor
        Equals :func:`ssmtools.h2_norm` of ``sys.to_numpy()``.
    """
    return h2_squared(sys).sqrt()


def _conventions(sys: TorchSSM) -> dict:
    return dict(dt=sys.dt, output=sys.output, state_includes_input=sys.state_includes_input)


# ---------------------------------------------------------------------------------------------- layer H∞
def response_at(sys: TorchSSM, omega: torch.Tensor) -> torch.Tensor:
    """``G`` at given frequencies, ``omega`` of shape ``batch_shape + extra``; result ``(*batch, *extra, p, m)``.

    Parameters
    ----------
    sys : TorchSSM
        Any batch shape.
    omega : torch.Tensor
        Real, rad/sample (DT) or rad/s (CT); ``inf`` gives D (CT). Its leading axes are the batch; trailing
        ``extra`` axes (none: one frequency per system) evaluate each system at several frequencies.

    Returns
    -------
    torch.Tensor
        Complex; the resolvent is ``_kernels.resolvent`` (accurate next to the boundary).
    """
    return _response(sys, omega, None)


def _spread(sys: TorchSSM, omega: torch.Tensor, margin: torch.Tensor | None):
    """``(poles, B, C, D, margin)`` of ``sys`` with singleton axes for the trailing (extra) axes of ``omega``."""
    extra = (1,) * (omega.ndim - len(sys.batch_shape))
    batch = sys.batch_shape

    def spread(t: torch.Tensor, trailing: int) -> torch.Tensor:  # (*batch, *trailing dims) → (*batch, *extra, …)
        return t.reshape(*batch, *extra, *t.shape[t.ndim - trailing :])

    return (
        spread(sys.poles, 1),
        spread(sys.B, 2),
        spread(sys.C, 2),
        spread(sys.D, 2),
        None if margin is None else spread(margin, 1),
    )


def _response(sys: TorchSSM, omega: torch.Tensor, margin: torch.Tensor | None) -> torch.Tensor:
    """:func:`response_at`, reusing the poles' compensated ``margin`` (:func:`_stable_poles`) when given."""
    at_infinity = torch.isinf(omega)
    omega = torch.where(at_infinity, torch.zeros_like(omega), omega).to(sys.poles.real.dtype)
    sums, D = _resolvent_sums(sys, omega, margin, lambda r: r[..., None, :])
    G = sums[..., 0, :, :]
    if sys.state_includes_input:
        G = G * torch.exp(1j * omega)[..., None, None]
    G = torch.where(at_infinity[..., None, None], torch.zeros_like(G), G)
    return G + D


def _resolvent_sums(sys: TorchSSM, omega: torch.Tensor, margin: torch.Tensor | None, kernels: Any):
    """``(S, D)``: ``S = Σ_i c_i k(r_i) b_iᵀ`` (both conjugate halves, halved, for a real-output layer), shape
    ``(*batch, *extra, K, p, m)``, with ``k = kernels`` mapping the resolvents ``r_i = 1/(z − λ_i)`` (…, n) to K
    weights (…, K, n); ``D`` spread to the same leading axes (:func:`_spread`)."""
    poles, B, C, D, margin = _spread(sys, omega, margin)
    if sys.output == "real":
        r, r_conj = _kernels.resolvent_pair(omega[..., None], poles, discrete=sys.is_discrete, margin=margin)
        sums = 0.5 * (
            torch.einsum("...pn,...kn,...nm->...kpm", C, kernels(r), B)
            + torch.einsum("...pn,...kn,...nm->...kpm", C.conj(), kernels(r_conj), B.conj())
        )
    else:
        r = _kernels.resolvent(omega[..., None], poles, discrete=sys.is_discrete)
        sums = torch.einsum("...pn,...kn,...nm->...kpm", C, kernels(r), B)
    return sums, D


def hinf_norm(
    sys: TorchSSM,
    *,
    rtol: float = 1e-8,
    return_peak: bool = False,
    tracker: HinfTracker | None = None,
    name: str = "",
):
    """Layer H∞ norm with its envelope-theorem (sub)gradient, shape ``batch_shape``.

    Parameters
    ----------
    sys : TorchSSM
        Any batch shape, DT or CT.
    rtol : float
        Relative accuracy of the certified peak search (:func:`ssmtools.hinf_result`, ``method="diagonal"``).
    return_peak : bool
        Also return the peak frequencies ω* (a tensor without grad; ``nan`` where unstable, ``inf`` for a CT
        supremum approached as ω → ∞).
    tracker : HinfTracker, optional
        Warm start from the peak this tracker holds for ``name`` (training loops): what is certified then
        depends on the call, see :class:`HinfTracker`. ``None``: the full certified search.
    name : str
        The system's key in ``tracker``.

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        ``σ_max(G(ω*))`` with ω* the certified peak, ``inf`` (no gradient) for unstable systems; with
        ``return_peak=True`` the pair ``(value, peak)``.

    Notes
    -----
    The peak ω* is found on the host, without grad, by the certified branch and bound (which polishes the
    peak frequency itself); the value is evaluated in torch at fixed ω*, so its gradient is
    ``Re(u₁ᴴ (∂G(ω*)/∂θ) v₁)`` with u₁, v₁ the top singular vectors — the derivative of the norm wherever the
    peak is unique and σ₁(G(ω*)) is simple (envelope theorem). At a repeated peak (two frequencies, or a
    multiple σ₁, attaining the norm) the norm is a maximum of smooth branches: the gradient returned is that
    of the branch at the returned ω*, one element of the Clarke subdifferential, i.e. a valid subgradient for
    descent but not the directional derivative in every direction (docs/concepts/derivations.md#differentiable-norms).
    Cost per call: the host search plus one O(n(m + p)) response and a p×m SVD per system.
    """
    stable_now, safe, margin = _stable_poles_and_margin(sys)
    if tracker is not None and not tracker.due(name, sys.batch_shape) and bool(stable_now.all()):
        value, peak, moved = _local_step(sys, tracker.tracked(name), margin if sys.is_discrete else None)
        tracker.advance(name, moved)
        return (value, peak) if return_peak else value
    host = sys.to_numpy()
    with one_blas_thread():
        if tracker is None:
            found = np.asarray(norms.hinf_result(host, method="diagonal", rtol=rtol).peak, dtype=float)
        else:
            found = tracker.peaks(name, host, rtol=rtol)
    peak = torch.as_tensor(found, device=sys.poles.device)
    stable = ~torch.isnan(peak)
    omega = torch.where(stable, peak, torch.zeros_like(peak))
    sigma = _sigma_max(response_at(sys.__class__(safe, sys.B, sys.C, sys.D, **_conventions(sys)), omega))
    value = torch.where(stable, sigma, torch.full_like(sigma, torch.inf))
    return (value, peak) if return_peak else value


def _sigma_max(G: torch.Tensor) -> torch.Tensor:
    """σ_max of every matrix of ``G`` as ``Re(u₁ᴴ G v₁)``, u₁ and v₁ its top singular vectors computed without
    grad: the envelope-theorem gradient ``Re(u₁ v₁ᴴ)``-weighted, without differentiating an SVD."""
    with torch.no_grad():
        U, _, Vh = torch.linalg.svd(G)
    u, v = U[..., :, 0], Vh[..., 0, :].conj()
    return (u.conj()[..., :, None] * G * v[..., None, :]).sum(dim=(-2, -1)).real


#: a tracked peak where σ_max is not locally concave moves uphill by this fraction of the distance to the nearest pole
_UPHILL = 0.05


def _local_step(
    sys: TorchSSM, tracked: np.ndarray, margin: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """A tracker's local call (see :class:`HinfTracker`) on a stable system, in torch.

    ``tracked`` (systems × candidates, user frequencies, ``nan``-padded, first column finite): σ_max and its first
    two derivatives in ω at every candidate (:func:`_sigma_derivatives`, without grad); the best candidate is the
    peak, where the value is evaluated in the graph (attained, with its envelope gradient); every candidate moves
    by one Newton step ``−σ′/σ″`` where σ is locally concave (else ``_UPHILL`` of the distance to the nearest pole
    uphill), by at most half that distance. Returns ``(value, peak, moved)``, ``moved`` in the layout of ``tracked``.
    """
    batch, real = sys.batch_shape, sys.poles.real.dtype
    count = tracked.shape[-1]
    given = torch.as_tensor(tracked.reshape(*batch, count), dtype=real, device=sys.poles.device)
    present = ~torch.isnan(given)
    omega = torch.where(present, given, given[..., :1])
    with torch.no_grad():
        point = torch.exp(1j * omega) if sys.is_discrete else 1j * omega
        poles = sys.poles[..., None, :]
        scale = (point[..., None] - poles).abs().amin(dim=-1)
        if sys.output == "real":  # the conjugate poles are poles of the layer too
            scale = torch.minimum(scale, (point[..., None] - poles.conj()).abs().amin(dim=-1))
        sigma, slope, curvature, vector, left = _sigma_derivatives(sys, omega, margin)
        sigma = torch.where(present, sigma, torch.full_like(sigma, -torch.inf))
        concave = curvature < 0
        newton = -slope / torch.where(concave, curvature, -torch.ones_like(curvature))
        step = torch.where(concave, newton, _UPHILL * scale * torch.sign(slope))
        moved = _wrap(omega + step.clamp(-0.5 * scale, 0.5 * scale), sys)
        moved = torch.where(present, moved, torch.full_like(moved, torch.nan))
        order = torch.argsort(sigma, dim=-1, descending=True)
        moved = torch.take_along_dim(moved, order, dim=-1)
        moved = _one_per_lobe(moved, torch.take_along_dim(scale, order, dim=-1))
        best = order[..., :1]
        peak = torch.take_along_dim(omega, best, dim=-1)[..., 0]
        v = torch.take_along_dim(vector, best[..., None], dim=-2)[..., 0, :]
    moved_host = moved.cpu().to(torch.float64).numpy().reshape(tracked.shape)
    G = _response(sys, peak, margin)
    product = (v.conj()[..., None, :] @ G)[..., 0, :] if left else (G @ v[..., None])[..., 0]
    value = torch.linalg.vector_norm(product, dim=-1)
    return value, _wrap(peak, sys).to(torch.float64), moved_host


def _one_per_lobe(moved: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``moved`` (…, candidates, best first) with ``nan`` for every candidate within 1e-3 of its distance to the
    nearest pole (``scale``) of a better one: two candidates that climbed onto one lobe free a slot for the next
    certificate's runners-up."""
    apart = torch.angle(torch.exp(1j * (moved[..., :, None] - moved[..., None, :]))).abs()
    better = torch.ones(moved.shape[-1], moved.shape[-1], dtype=torch.bool, device=moved.device).tril(-1)
    duplicate = ((apart < 1e-3 * scale[..., :, None]) & better).any(dim=-1)
    return torch.where(duplicate, torch.full_like(moved, torch.nan), moved)


def _sigma_derivatives(sys: TorchSSM, omega: torch.Tensor, margin: torch.Tensor | None):
    """σ = σ_max(G(ω)) and its derivatives σ′, σ″ in ω, ``omega`` of shape ``batch_shape + extra``, without grad.

    σ² = μ is the top eigenvalue of ``H = GᴴG`` (of ``GGᴴ`` when p < m, which has the same nonzero σ²); with the
    eigenpairs (μ_k, v_k) of H and ``H′ = G′ᴴG + GᴴG′``, ``H″ = G″ᴴG + 2G′ᴴG′ + GᴴG″``, perturbation theory of a
    simple eigenvalue gives ``μ′ = v₁ᴴH′v₁`` and ``μ″ = v₁ᴴH″v₁ + 2 Σ_{k>1} |v_kᴴH′v₁|²/(μ₁ − μ_k)``; then
    ``σ′ = μ′/(2σ)`` and ``σ″ = μ″/(2σ) − μ′²/(4σ³)`` (docs/concepts/derivations.md#differentiable-norms).
    Returns ``(σ, σ′, σ″, v₁, left)``: ``v₁`` the top eigenvector of H, a right singular vector of G (a left
    one when ``left``), so that σ = ‖G v₁‖ (or ‖v₁ᴴ G‖).
    """
    G, G1, G2 = _response_and_derivatives(sys, omega, margin)
    left = G.shape[-2] < G.shape[-1]
    if left:  # σ of G are those of Gᴴ, and (Gᴴ)′ = (G′)ᴴ
        G, G1, G2 = G.mH, G1.mH, G2.mH
    mu, V = torch.linalg.eigh(G.mH @ G)
    top, v = mu[..., -1].clamp(min=0.0), V[..., :, -1]
    g, g1, g2 = (M @ v[..., None] for M in (G, G1, G2))  # (…, p, 1)
    slope2 = 2.0 * (g.mH @ g1)[..., 0, 0].real
    w = G1.mH @ g + G.mH @ g1  # H′v₁
    coupling = (V.mH @ w)[..., :-1, 0].abs() ** 2
    gap = (top[..., None] - mu[..., :-1]).clamp(min=torch.finfo(mu.dtype).tiny)
    curvature2 = 2.0 * ((g.mH @ g2)[..., 0, 0].real + (g1.abs() ** 2).sum(dim=(-2, -1))) + 2.0 * (coupling / gap).sum(
        -1
    )
    sigma = top.sqrt()
    safe = sigma.clamp(min=torch.finfo(sigma.dtype).tiny)
    return sigma, slope2 / (2.0 * safe), curvature2 / (2.0 * safe) - slope2**2 / (4.0 * safe**3), v, left


def _response_and_derivatives(sys: TorchSSM, omega: torch.Tensor, margin: torch.Tensor | None):
    """``(G, ∂G/∂ω, ∂²G/∂ω²)`` at ``omega`` (shape ``batch_shape + extra``), each ``(*batch, *extra, p, m)``.

    DT, r = 1/(z − λ), z = e^{jω}: ``r′ = −j z r²``, ``r″ = z r² − 2 z² r³``; CT, z = jω: ``r′ = −j r²``,
    ``r″ = −2 r³``; with the state including the input, the factor z differentiates by the product rule.
    """
    omega = omega.to(sys.poles.real.dtype)
    z = torch.exp(1j * omega)[..., None] if sys.is_discrete else None

    def kernels(r: torch.Tensor) -> torch.Tensor:  # (…, n) → (…, 3, n): r, r′, r″
        if z is None:
            return torch.stack([r, -1j * r * r, -2.0 * r * r * r], dim=-2)
        zr = z * r
        return torch.stack([r, -1j * zr * r, zr * r - 2.0 * zr * zr * r], dim=-2)

    G, D = _resolvent_sums(sys, omega, margin, kernels)
    F, F1, F2 = G.unbind(-3)
    if z is not None and sys.state_includes_input:  # (z f)′ = j z f + z f′, (z f)″ = −z f + 2j z f′ + z f″
        e = z[..., None]
        F, F1, F2 = e * F, e * (1j * F + F1), e * (-F + 2j * F1 + F2)
    return F + D, F1, F2


def _wrap(omega: torch.Tensor, sys: TorchSSM) -> torch.Tensor:
    """User frequencies as the certified routes report them: DT in (−π, π], |ω| for a real-output layer."""
    if sys.is_discrete:
        omega = torch.atan2(torch.sin(omega), torch.cos(omega))
    return omega.abs() if sys.output == "real" else omega


# ---------------------------------------------------------------------------------------------- Hankel
def hankel_singular_values(sys: TorchSSM, *, accurate: bool = True, horizon: int | float | None = None) -> torch.Tensor:
    """Hankel singular values, descending, differentiable, shape ``(*batch, N)`` (N = n, or 2n for real output).

    Parameters
    ----------
    sys : TorchSSM
        Asymptotically stable unless ``horizon`` is given (an unstable system raises
        :class:`ssmtools.ArgumentError`).
    accurate : bool
        ``True``: the values of :func:`ssmtools.hankel_singular_values` (graded square-root method on structured
        factors, accurate to each σ). ``False`` (what the penalties use): the singular values of the factor
        product below, accurate to ~1e-15·σ₁ in absolute terms only, at a fraction of the cost; everything
        runs on the system's device.
    horizon : int or float, optional
        Finite-horizon (time-limited) values from the Gramians over L steps (DT) or time T (CT), as
        :func:`ssmtools.hankel_singular_values` with the same ``horizon``: defined for every pole
        (docs/concepts/derivations.md#finite-horizon-gramians).

    Returns
    -------
    torch.Tensor
        The values carrying the gradient of σ_j = sqrt(eig_j(PQ)).

    Notes
    -----
    With Gramian factors ``P = L_P L_Pᴴ``, ``Q = L_Q L_Qᴴ`` and the SVD ``L_Qᴴ L_P = U Σ Vᴴ``, the right and left
    eigenvectors of PQ are ``x_j = L_P v_j`` and ``y_j = L_Q u_j`` with ``y_jᴴ x_j = σ_j``, so
    ``dσ_j = Re(y_jᴴ (dP·Q + P·dQ) x_j)/(2σ_j²)``. The factors (Hermitian eigendecompositions of the Cauchy-like
    closed-form Gramians, in double precision) and vectors are computed without grad; P and Q are the differentiable
    closed-form Gramians. A simple σ_j gets its exact gradient. In a cluster of
    equal values the individual σ_j are not differentiable: their gradients depend on the basis the SVD
    picked, but their **sum** gets its exact gradient, so a penalty on the sum beyond an order k is exact
    unless k splits a cluster. Values below 1e-12·σ₁ get no gradient (docs/concepts/derivations.md#differentiable-norms).
    """
    P, Q = _gramians(sys, horizon)
    X, Y, S = _hankel_vectors(P, Q)
    values = S.to(sys.poles.real.dtype)
    if accurate:
        with one_blas_thread():
            graded = norms.hankel_singular_values(sys.to_numpy(), horizon=horizon)
        values = torch.as_tensor(graded, device=sys.poles.device)
        values = values.to(sys.poles.real.dtype)
    live = S > 1e-12 * S[..., :1].clamp(min=torch.finfo(S.dtype).tiny)
    S_safe = torch.where(live, S, torch.ones_like(S)).to(values.dtype)
    sigma2 = (Y.conj() * (P @ (Q @ X))).sum(dim=-2).real / S_safe
    first_order = (sigma2 - sigma2.detach()) / (2.0 * S_safe)
    return values + torch.where(live, first_order, torch.zeros_like(first_order))


def _gramians(sys: TorchSSM, horizon: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The closed-form Gramians P, Q in the graph, in the coordinates the HSVs are computed in.

    Complex output: those of (Λ, B, C). Real output: those of the augmented realization
    ``([λ, conj λ], [B; conj B], ½[C, conj C])`` mapped by the unitary ``T = [[I, I], [−jI, jI]]/√2`` to the
    real coordinates ``[Re x; Im x]·√2``, where they are real: with the blocks ``G₁₁`` (pairs λ_i, conj λ_j) and
    ``G₁₂`` (pairs λ_i, λ_j) of the augmented Gramian ``[[G₁₁, G₁₂], [conj G₁₂, conj G₁₁]]``,
    ``T G Tᴴ = [[Re(G₁₁ + G₁₂), Im(G₁₂ − G₁₁)], [Im(G₁₁ + G₁₂), Re(G₁₁ − G₁₂)]]`` — two n×n blocks computed instead
    of the 2n×2n complex Gramian, and a real factorisation (the HSVs do not change under a unitary change of
    coordinates). The kernels are ``1/d`` with :func:`ssmtools._kernels.gramian_denominators` (accurate next to
    the circle; an unstable system raises) or, with a ``horizon``, the finite-horizon sums
    :func:`ssmtools._kernels.horizon_sum`, defined for every pole.
    """
    horizon = norms.check_horizon(sys, horizon)
    lam, B, C, discrete = sys.poles, sys.B, sys.C, sys.is_discrete
    lam_i, lam_j = lam[..., :, None], lam[..., None, :]
    if horizon is None:
        stable, _ = _stable_poles(sys)
        if not bool(stable.all()):
            raise ArgumentError(
                "Hankel singular values need an asymptotically stable system: "
                f"{int((~stable).sum())} pole(s) on or outside the stability boundary; pass horizon=L for the "
                "finite-horizon values, defined for every pole"
            )
        margin = _kernels.one_minus_abs_squared(lam)[..., :, None] if discrete else None

        def kernel(nu_j: torch.Tensor) -> torch.Tensor:  # 1/(1 − λ_i ν_j), ν_j = conj λ_j or λ_j
            return 1.0 / _kernels.gramian_denominators(lam_i, margin, nu_j, discrete=discrete)
    else:

        def kernel(nu_j: torch.Tensor) -> torch.Tensor:  # Σ_{k<L} (λ_i ν_j)^k
            return _kernels.horizon_sum(lam_i, nu_j.conj(), horizon, discrete=discrete)

    across = kernel(lam_j.conj())
    P = (B @ B.mH) * across
    Q = (C.mH @ C) * across.conj()
    if sys.output == "complex":
        return P, Q
    along = kernel(lam_j)
    P12 = (B @ B.mT) * along
    Q12 = 0.25 * (C.mH @ C.conj()) * along.conj()
    return _real_coordinates(P, P12), _real_coordinates(0.25 * Q, Q12)


def _real_coordinates(G11: torch.Tensor, G12: torch.Tensor) -> torch.Tensor:
    """``T G Tᴴ`` of the augmented-pair matrix ``G = [[G₁₁, G₁₂], [conj G₁₂, conj G₁₁]]`` (see :func:`_gramians`)."""
    top = torch.cat([(G11 + G12).real, (G12 - G11).imag], dim=-1)
    bottom = torch.cat([(G11 + G12).imag, (G11 - G12).real], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def _hankel_tail(sys: TorchSSM, order: int, horizon: float | None = None) -> torch.Tensor:
    """``Σ_{j>order} σ_j`` (the fast HSVs of :func:`hankel_singular_values`), shape ``batch_shape``, with its gradient.

    With the eigenvectors of :func:`hankel_singular_values`, ``Q x_j = σ_j y_j`` and ``y_jᴴ P = σ_j x_jᴴ``, so
    ``dσ_j = Re(y_jᴴ dP y_j + x_jᴴ dQ x_j)/(2σ_j)`` and the tail's differential is the trace
    ``½ Re tr(dP·W_P + dQ·W_Q)``, ``W_P = Σ_{j>k} y_j y_jᴴ/σ_j``, ``W_Q = Σ_{j>k} x_j x_jᴴ/σ_j`` (constant
    matrices computed without grad): an O(N²) elementwise product in the graph instead of two N×N×N products.
    Exact for a tail that does not split a cluster of equal values (docs/concepts/derivations.md#differentiable-norms).
    """
    P, Q = _gramians(sys, horizon)
    X, Y, S = _hankel_vectors(P, Q)
    S_t = S[..., order:]
    live = S_t > 1e-12 * S[..., :1].clamp(min=torch.finfo(S.dtype).tiny)
    inverse = torch.where(live, 1.0 / torch.where(live, S_t, torch.ones_like(S_t)), torch.zeros_like(S_t)).to(P.dtype)
    X_t, Y_t = X[..., order:], Y[..., order:]
    W_P = (Y_t * inverse[..., None, :]) @ Y_t.mH
    W_Q = (X_t * inverse[..., None, :]) @ X_t.mH
    surrogate = (
        0.5 * ((P * W_P.transpose(-1, -2)).sum(dim=(-2, -1)) + (Q * W_Q.transpose(-1, -2)).sum(dim=(-2, -1))).real
    )
    return S_t.sum(dim=-1).to(surrogate.dtype) + (surrogate - surrogate.detach())


def _hankel_vectors(P: torch.Tensor, Q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X, Y, σ)``: right/left eigenvectors ``L_P V`` and ``L_Q U`` of PQ (dtype of P) and the HSVs (float64),
    computed without grad from factors ``G = L Lᴴ`` of P and Q (in double precision; real arithmetic for the real
    Gramians of :func:`_gramians`): :func:`_psd_factors`. Any factors give the same σ and eigenvectors."""
    with torch.no_grad():
        wide = torch.float64 if not P.is_complex() else torch.complex128
        L_P, L_Q = (_psd_factors(G.detach().to(wide)) for G in (P, Q))
        U, S, Vh = torch.linalg.svd(L_Q.mH @ L_P)
        return (L_P @ Vh.mH).to(P.dtype), (L_Q @ U).to(P.dtype), S


def _psd_factors(G: torch.Tensor) -> torch.Tensor:
    """Factors ``L`` with ``L Lᴴ = G`` of Hermitian positive semidefinite matrices (batched): Cholesky (a tenth of
    an eigendecomposition's cost) where every matrix of the batch is numerically positive definite, else
    ``V·sqrt(max(Λ, 0))`` from the eigendecomposition (singular or rounding-indefinite Gramians)."""
    G = 0.5 * (G + G.mH)
    L, info = torch.linalg.cholesky_ex(G)
    if not bool((info == 0).all()):
        eigenvalues, vectors = torch.linalg.eigh(G)
        L = vectors * eigenvalues.clamp(min=0.0).sqrt()[..., None, :]
    return L


# ---------------------------------------------------------------------------------------------- scores
def lamp_normalize(scores: torch.Tensor, *, dim: int = -1) -> torch.Tensor:
    """LAMP / LAST normalisation ``s_(k)/Σ_{j≥k} s_(j)`` along ``dim``, differentiable (equal ties, as NumPy).

    Parameters
    ----------
    scores : torch.Tensor
        Non-negative raw scores (``inf`` allowed: kept as ``inf`` and left out of the sums).
    dim : int
        The axis of one layer's units.

    Returns
    -------
    torch.Tensor
        Same shape, in [0, 1]; equals :func:`ssmtools.pruning.normalize.lamp_normalize` slice by slice. The
        ranking is piecewise constant, so the gradient is that of the ratio for the current order.
    """
    x = scores.movedim(dim, -1)
    ascending, order = torch.sort(x, dim=-1, stable=True)  # inf last
    finite = torch.isfinite(ascending)
    values = torch.where(finite, ascending, torch.zeros_like(ascending))
    tail = values.flip(-1).cumsum(-1).flip(-1)
    keys = ascending.detach().contiguous()
    run_last = torch.searchsorted(keys, keys, right=True) - 1  # ties: the run's last member
    numerator = torch.take_along_dim(values, run_last, dim=-1)
    denominator = torch.take_along_dim(tail, run_last, dim=-1)
    positive = denominator > 0
    ratio = torch.where(positive, numerator / torch.where(positive, denominator, torch.ones_like(denominator)), 0.0)
    ratio = torch.where(finite, ratio, torch.full_like(ratio, torch.inf))
    out = torch.empty_like(ratio).scatter(-1, order, ratio)
    return out.movedim(-1, dim)


def last_scores(sys: TorchSSM, *, exact: bool = False) -> torch.Tensor:
    """LAST scores of every stored state, LAMP-normalised over the state axis, shape ``(*batch, n)``.

    Parameters
    ----------
    sys : TorchSSM
        The layer (for S4D-style multi-SISO layers every channel of the batch is normalised on its own).
    exact : bool
        ``False`` (criterion ``"last"``): raw score ``(‖c_i‖‖b_i‖/(1 − |λ_i|))²``, the single-pole bound;
        ``True`` (``"last-exact"``): the exact ``‖G_i‖∞²`` (:func:`state_hinf_norms`).

    Returns
    -------
    torch.Tensor
        ``inf`` for unstable states, as in :mod:`ssmtools.pruning.criteria`.
    """
    if exact:
        raw = state_hinf_norms(sys)
    else:
        raw = _kernels.single_pole_hinf(sys.poles, _kernels.single_pole_gain(sys.B, sys.C), discrete=sys.is_discrete)
    return lamp_normalize(raw**2)


def aire_scores(sys: TorchSSM) -> torch.Tensor:
    """AIRE scores (criterion ``"aire"``, ``form="exact"``): exact ``‖G_i‖₂²`` LAMP-normalised over the states.

    Parameters
    ----------
    sys : TorchSSM
        The layer.

    Returns
    -------
    torch.Tensor
        Shape ``(*batch, n)``; ``inf`` for unstable states.
    """
    return lamp_normalize(state_h2_norms(sys) ** 2)

"""Level-set certificate of a diagonal layer's H∞ norm: local optimisation, then one Hamiltonian eigenproblem.

Pure functions on the unit-circle form of :mod:`ssmtools._hinf_diagonal` (docs/benchmarks.md, "How the
diagonal H∞ works"). The branch and bound there certifies a bracket with interval bounds; on layers whose
response is D-dominated with ripples at every frequency (s5-pytorch and S4D initialisations) its cheap bounds
cannot settle anything and it forms G at hundreds of frequencies. This route replaces that by:

1. **Seeding**: Rayleigh lower bounds (a few power iterations, no G formed) and σ_max of G compressed to D's
   top singular pairs on the pole angles and a uniform grid; the best four are evaluated exactly (G formed) and
   the two best local maxima climbed by safeguarded secant steps on the slope (:func:`climb`).
2. **Level-set test** at ``γ = (1 + rtol/2)·L`` (L the best value attained): the system is mapped by the
   Cayley transform ``z = ±(1 + s)/(1 − s)`` to continuous time, which keeps it diagonal
   (``a_i = (μ_i − 1)/(μ_i + 1)``) and σ_max pointwise; γ is a singular value of G at a frequency iff the
   Hamiltonian matrix ``H(γ)`` (Bruinsma–Steinbuch) has an eigenvalue ``j t`` there. A conjugate-paired
   (real-output) layer is taken to real 2×2 blocks first, so the eigenproblem is real of size 4P.
3. **No crossing**: σ_max < γ on the whole circle (it is below γ at the seed and continuous), so the bracket
   is ``[L − floor, (1 + rtol)·L + atol]`` — the tested level sits rtol/2 below the claimed upper bound, so
   that a crossing missed by rounding (a peak within ~1e-10 of γ, whose eigenvalues leave the axis by more
   than the tolerance) still lies under it. **Crossings**: σ_max is evaluated at them and between them, the
   best is refined (step 1) and the test repeated — the Bruinsma–Steinbuch iteration from a near-optimal
   start, usually one or two eigenproblems in all.

The test's verdict rests on a backward-stable eigensolver: an eigenvalue is taken as a crossing when its real
part is within ``1e-11·max|λ|`` of the axis (a tangency just below the level leaves the axis by ~sqrt of the
gap, 1e-8·max|λ| at a relative gap 5e-9, so it is not mistaken for a crossing); a crossing that does not lead to a larger value (a tangency at the
tested level, or rounding) hands the system back to the branch and bound (``None``), as does a layer with a
pole within ``_MIN_GAP`` of the circle, where the eigenvalues of H cannot be told from the axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._backends import slycot as _slycot

if TYPE_CHECKING:  # the circle form's type only; _hinf_diagonal imports this module
    from ._hinf_diagonal import _CircleForm

_EPS = float(np.finfo(float).eps)
_MIN_GAP = 1e-7  # smallest 1 − |μ| the level-set test is used for (closer poles: branch and bound)
_AXIS = 1e-11  # |Re λ| ≤ _AXIS·max|λ|: the eigenvalue is a crossing of the level (see the module docstring)
_ROUNDS = 6  # level-set tests before handing back to the branch and bound
_CROSSING_SEEDS = 1  # local maxima of the values between crossings climbed, per round
_CROSSING_EXACT = 8  # points between crossings with the best Rayleigh bounds evaluated exactly, per round
_EXACT_SEEDS = 4  # seeds with the best Rayleigh bounds evaluated exactly before the pick
_HOPE = 4.0  # a later seed's climb stops once fx + _HOPE·(predicted gain) is below the best value found
_CLIMB = 16  # evaluations a climb may spend
_RIVAL_CLIMB = 6  # ... and a later seed's climb (the caller climbs one where an eigenproblem costs more evaluations)
_POLISHED = 1e-14  # the certified peak is polished until its predicted gain is below this relative to its value
_GAIN = 1.0 / 16.0  # a climb stops once its predicted gain is below _GAIN·rtol of its value (the level tested
# sits rtol/2 above the value, so a peak climbed to within rtol/16 passes the test)


def realization(form: _CircleForm) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Continuous-time realization ``(A, B, C, D, shift)`` with ``G_form(e^{jω}) = G_c(j tan((ω − shift)/2))``.

    From ``G = D + C diag(κ) B + Σ_i c_i (e^{jθ_i} b_i)ᵀ/(z − μ_i)`` (the form's B rows carry e^{−jθ_i}), the
    Cayley map ``z = e^{j·shift}(1 + s)/(1 − s)`` gives ``a_i = (μ'_i − 1)/(μ'_i + 1)``, ``B_c = √2 (A' + I)⁻¹B'``,
    ``C_c = √2 C(A' + I)⁻¹``, ``D_c = D' − C(A' + I)⁻¹B'`` with ``μ' = e^{−j·shift}μ``; shift ∈ {0, π} is chosen
    to keep the poles away from the map's pole ``μ' = −1``. A is diagonal (complex) or, for conjugate-paired
    states, real block-diagonal in the permuted basis [Re x; Im x] (B, C, D real then).
    """
    rotation = np.exp(1j * form.theta)
    mu = form.radius * rotation
    shift = 0.0
    if np.min(np.abs(mu + 1.0)) < np.min(np.abs(mu - 1.0)):
        mu, rotation, shift = -mu, -rotation, np.pi
    inv = 1.0 / (mu + 1.0)
    a = (mu - 1.0) * inv
    B_c = np.sqrt(2.0) * (inv * rotation)[:, None] * form.B
    C_c = np.sqrt(2.0) * form.C * inv
    # D_c = D + C diag(κ) B − C diag(inv) B̂ with B̂ = e^{jθ}B (rotated with the shift): one product
    coefficient = form.offset - inv * rotation
    half = a.size // 2
    paired = (
        a.size % 2 == 0
        and np.array_equal(a[half:], np.conj(a[:half]))
        and np.array_equal(B_c[half:], np.conj(B_c[:half]))
        and np.array_equal(C_c[:, half:], np.conj(C_c[:, :half]))
        and np.array_equal(coefficient[half:], np.conj(coefficient[:half]))
        and not np.any(np.iscomplex(form.D))
    )
    if not paired:
        return np.diag(a), B_c, C_c, form.D + (form.C * coefficient) @ form.B, shift
    # the conjugate states add the conjugate terms: D_c = D + 2 Re(C₁ diag(κ₁) B₁) over the first of each pair
    X, B_1 = form.C[:, :half] * coefficient[:half], form.B[:half]
    D_c = form.D.real + 2.0 * (X.real @ B_1.real - X.imag @ B_1.imag)
    # x = u + jv for the first state of each pair: u' = Re(a)u − Im(a)v + Re(b)w, v' = Im(a)u + Re(a)v + Im(b)w,
    # and the pair's output c x + conj(c x) = 2(Re c·u − Im c·v)
    alpha, beta = np.diag(a[:half].real), np.diag(a[:half].imag)
    A_r = np.block([[alpha, -beta], [beta, alpha]])
    B_r = np.concatenate([B_c[:half].real, B_c[:half].imag], axis=0)
    C_r = 2.0 * np.concatenate([C_c[:, :half].real, -C_c[:, :half].imag], axis=1)
    return A_r, B_r, C_r, D_c, shift


def hamiltonian(A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray, gamma: float) -> np.ndarray:
    """Bruinsma–Steinbuch ``H(γ)``: ``j t`` is an eigenvalue iff γ is a singular value of ``G_c(jt)``.

    ``H = [[A − BR⁻¹DᴴC, −γBR⁻¹Bᴴ], [γCᴴS⁻¹C, −Aᴴ + CᴴDR⁻¹Bᴴ]]``, ``R = DᴴD − γ²I``, ``S = DDᴴ − γ²I``
    (γ above σ_max(D) = σ_max(G_c(j∞)), which the seeds include, so R and S are definite).
    """
    p, m = D.shape
    Dh = np.conj(D.T)
    Bh, Ch = np.conj(B.T), np.conj(C.T)
    if p == m and not np.any(D - np.diag(np.diag(D))):  # diagonal D (S5/S4D/LRU): R and S are diagonal
        r = np.abs(np.diag(D)) ** 2 - gamma**2
        RBh, RDhC, SC = Bh / r[:, None], (Dh @ C) / r[:, None], C / r[:, None]
    else:  # one factorisation: S⁻¹ = (D R⁻¹ Dᴴ − I)/γ² (multiply out S·(D R⁻¹ Dᴴ − I) = γ²I)
        R = Dh @ D - gamma**2 * np.eye(m)
        solved = np.linalg.solve(R, np.concatenate([Bh, Dh @ C], axis=1))
        RBh, RDhC = solved[:, : Bh.shape[1]], solved[:, Bh.shape[1] :]
        SC = (D @ RDhC - C) / gamma**2
    H11 = A - B @ RDhC
    # R Hermitian: the (2, 2) block C^H D R⁻¹ B^H − A^H is −H11^H
    return np.block([[H11, -gamma * (B @ RBh)], [gamma * (Ch @ SC), -np.conj(H11.T)]])


def crossings(realized: tuple, gamma: float) -> np.ndarray:
    """Frequencies t (sorted) of the eigenvalues ``j t`` of ``H(γ)`` on the imaginary axis (see ``_AXIS``).

    A real H (conjugate-paired layer) goes to SLICOT MB03XD (``_backends.slycot.hamiltonian_eigenvalues``), whose
    eigenvalues keep the Hamiltonian pairing ±λ exactly; a complex one, or one too large, to LAPACK's ``geev``."""
    A, B, C, D, _ = realized
    H = hamiltonian(A, B, C, D, gamma)
    n = H.shape[0] // 2
    # real (conjugate-paired) layers up to 320 real states: SLICOT's structure-preserving solver (1.2–1.8× faster)
    eig = _slycot.hamiltonian_eigenvalues(H[:n, :n], H[:n, n:], H[n:, :n]) if np.isrealobj(H) else None
    if eig is None:
        eig = np.linalg.eigvals(H)
    scale = max(float(np.max(np.abs(eig))), 1.0)
    on_axis = np.abs(eig.real) <= _AXIS * scale
    return np.sort(eig.imag[on_axis])


def feedthrough_norm(D: np.ndarray) -> float:
    """σ_max(D) from the eigenvalues of the smaller Gram (σ_max of G_c at infinity: not rounded up)."""
    Dh = np.conj(D.T)
    gram = Dh @ D if D.shape[1] <= D.shape[0] else D @ Dh
    return float(np.sqrt(max(np.linalg.eigvalsh(gram)[-1], 0.0))) if gram.size else 0.0


def to_circle(t: np.ndarray, shift: float) -> np.ndarray:
    """Frequencies ω of the circle form for CT frequencies t of :func:`realization`: ``ω = shift + 2·atan t``."""
    omega = shift + 2.0 * np.arctan(t)
    return np.angle(np.exp(1j * omega))


def applicable(form: _CircleForm) -> bool:
    """Whether the level-set route is used: every pole at least ``_MIN_GAP`` inside the circle."""
    return bool(form.gain.size) and float(np.min(form.gap)) >= _MIN_GAP


def _scale(form: _CircleForm, omega: float, rtol: float) -> tuple[float, float]:
    """``(distance, xtol)`` of a local search at ``omega``: σ_max varies on the scale of the distance from
    e^{jω} to the nearest pole, so a resolution ``1e-6·distance`` leaves a value error ~1e-12 relative,
    whatever ``rtol`` (the searches stop at ``_GAIN·rtol`` of predicted gain; the certified peak is then polished). The secant
    steps converge superlinearly, so the fine resolution costs one or two evaluations."""
    delta = np.angle(np.exp(1j * (omega - form.theta)))
    distance = float(np.min(np.hypot(form.gap, delta)))
    return distance, max(min(1e-6, 0.01 * np.sqrt(rtol)) * distance, 1e-15 * max(1.0, abs(omega)))


def _refine(
    form: _CircleForm, fs: Any, omega: np.ndarray, values: np.ndarray, rtol: float, seeds: int
) -> tuple[float, float, Search | None]:
    """Local maxima of σ_max from the best ``seeds`` local maxima of ``values`` on the sorted points ``omega``
    (a closed circle); returns the best ``(ω, σ_max)`` and the search that reached it (``None`` when no search
    did better than the best of ``values``)."""
    order = np.argsort(omega)
    w, s = omega[order], values[order]
    n = w.size
    left, right = np.roll(s, 1), np.roll(s, -1)
    peaks = np.flatnonzero((s >= left) & (s >= right)) if n > 2 else np.arange(n)
    peaks = peaks[np.argsort(-s[peaks])][:seeds]
    best = (float(w[int(np.argmax(s))]), float(np.max(s)))
    found = None
    for i, k in enumerate(peaks):
        a = w[k - 1] if k > 0 else w[-1] - 2.0 * np.pi
        b = w[k + 1] if k + 1 < n else w[0] + 2.0 * np.pi
        if n == 1:
            a, b = w[k] - np.pi, w[k] + np.pi
        distance, xtol = _scale(form, float(w[k]), rtol)
        beat = best[1] if i else None  # a later seed's climb is abandoned once it cannot beat the best
        search = climb(
            fs,
            float(a),
            float(b),
            float(w[k]),
            xtol=xtol,
            first=0.5 * distance,
            gain=_GAIN * rtol,
            budget=_CLIMB if beat is None else _RIVAL_CLIMB,
            beat=beat,
        )
        if search.best[1] > best[1]:
            best, found = search.best, search
    return best[0], best[1], found


def _between(points: np.ndarray, peak: float, half: bool) -> tuple[np.ndarray, np.ndarray]:
    """The crossing frequencies (with the peak) and the points between them to evaluate: σ_max ≥ γ on some
    interval between consecutive crossings (Bruinsma–Steinbuch), its midpoint a candidate. A symmetric response
    (``half``) is folded onto [0, π]: an interval [−a, a] (or one around π) folds to [0, a], whose midpoint on
    the circle is the end 0 itself, so the ends 0 and π are candidates too."""
    if half:
        points = np.unique(np.append(np.abs(points), peak))
        ends = np.unique(np.concatenate([points, [0.0, np.pi]]))
        return points, np.concatenate([0.5 * (ends[:-1] + ends[1:]), [0.0, np.pi]])
    points = np.unique(np.append(points, peak))
    between = 0.5 * (points + np.roll(points, -1))
    between[-1] = points[-1] + 0.5 * (points[0] + 2.0 * np.pi - points[-1])
    return points, np.angle(np.exp(1j * between))


def certify(
    form: _CircleForm,
    omega: np.ndarray,
    lower: np.ndarray,
    *,
    rtol: float,
    evaluate: Any,
    slope: Any,
    cheap: Any,
    profile: Any,
    rayleigh: Any = None,
    seeds: int = 1,
):
    """Level-set certificate from seed frequencies ``omega`` with lower bounds ``lower`` (module docstring).

    ``evaluate(ω array) -> (lower, upper)`` evaluates σ_max exactly (G formed), ``slope(ω) -> (σ_max, dσ_max/dω)``
    steers the local searches (:func:`climb`) and ``cheap(ω array) -> lower`` gives Rayleigh lower bounds (no G
    formed) between crossings; ``profile(ω array) -> lower`` gives cheap lower bounds at the seeds and at the
    midpoints between them (``_hinf_diagonal.feedthrough_profile``); ``rayleigh(ω array) -> lower`` (default:
    the lower half of ``evaluate``) gives converged Rayleigh lower bounds with G formed
    (``_hinf_diagonal.rayleigh_values``), used wherever no upper bound is needed: every value but σ_max(D_c)
    (the level must exceed it, so it is evaluated exactly). The best ``_EXACT_SEEDS`` seeds are evaluated with
    G formed before one is picked; ``seeds`` local maxima are climbed (a later one's climb abandoned once it cannot
    beat the best: worth it where an eigenproblem costs many evaluations, the caller's choice). Returns
    ``(value, peak, exact evaluations, eigenproblems)`` with ``value ≤ ‖G‖∞ < (1 + rtol/2)·value`` as the
    eigensolver sees it, or ``None`` when the test cannot decide (hand back to the branch and bound).
    """
    realized = realization(form)
    shift = realized[4]
    count = [0]
    if rayleigh is None:
        rayleigh = lambda w: evaluate(w)[0]  # noqa: E731

    def fs(w: float) -> tuple[float, float]:
        count[0] += 1
        return slope(w)

    # σ_max at the map's point at infinity (ω = shift + π) is σ_max(D_c): the level tested must exceed it (it is
    # taken from the D_c that H(γ) is built from, so R and S there are definite)
    infinity = float(np.angle(np.exp(1j * (shift + np.pi))))
    order = np.argsort(omega)
    middle = 0.5 * (omega[order][1:] + omega[order][:-1])
    omega = np.concatenate([omega, middle])
    lower = np.concatenate([lower, np.zeros(middle.size)])
    lower = np.maximum(lower, profile(omega))
    count[0] += 1
    omega, lower = np.append(omega, infinity), np.append(lower, feedthrough_norm(realized[3]))
    best = np.argsort(-lower)[:_EXACT_SEEDS]  # Rayleigh bounds can mislead on D-dominated layers: decide exactly
    lower = lower.copy()
    lower[best] = rayleigh(omega[best])
    count[0] += best.size
    peak, value, search = _refine(form, fs, omega, lower, rtol, seeds)
    for round_ in range(_ROUNDS):
        gamma = value * (1.0 + 0.5 * rtol)
        t = crossings(realized, gamma)
        if t.size == 0:  # certified; the value is then climbed to full accuracy (a larger value keeps the bracket)
            distance, xtol = _scale(form, peak, rtol)
            if search is not None and search.x == peak:  # the search that found the peak goes on from there
                search = polish(fs, search, xtol=xtol, first=1e-3 * distance)
            else:
                search = climb(fs, peak - distance, peak + distance, peak, xtol=xtol, first=1e-3 * distance)
            if search.best[1] > value:
                peak, value = search.best
            return value, peak, count[0], round_ + 1
        points, between = _between(to_circle(t, shift), peak, form.half)
        values = cheap(between)
        top = np.argsort(-values)[:_CROSSING_EXACT]
        values[top] = rayleigh(between[top])
        count[0] += top.size
        candidates, values = np.concatenate([points, between]), np.concatenate([np.full(points.size, -np.inf), values])
        new_peak, new_value, new_search = _refine(form, fs, candidates, values, rtol, _CROSSING_SEEDS)
        if new_value <= value * (1.0 + 0.25 * rtol):
            return None  # crossings without a larger value: a tangency at γ or rounding; let the B&B decide
        peak, value, search = new_peak, new_value, new_search
    return None


@dataclass(frozen=True)
class Search:
    """Where a local search (:func:`climb`) stopped: its last point ``x`` with σ_max ``fx`` and slope ``gx``, the
    point before it ``(ω, slope)`` (the secant; ``None`` after no step), the bracket ``[lo, hi]`` the slopes' signs
    kept and the best ``(ω, σ_max)`` it saw."""

    x: float
    fx: float
    gx: float
    previous: tuple[float, float] | None
    lo: float
    hi: float
    best: tuple[float, float]


def climb(
    fs: Any,
    a: float,
    b: float,
    x: float,
    *,
    xtol: float,
    first: float,
    budget: int = _CLIMB,
    gain: float = 0.0,
    known: tuple[float, float] | None = None,
    previous: tuple[float, float] | None = None,
    beat: float | None = None,
) -> Search:
    """Local maximum of σ_max on [a, b] from ``x``: safeguarded secant steps on the slope.

    ``fs(ω) -> (σ_max, slope)``; ``known``: its value at ``x`` and ``previous`` the ``(ω, slope)`` before it,
    when an earlier search stopped there (:func:`polish`). The first step goes ``first`` uphill (the scale of
    the peak), or along the secant through ``previous``; then the maximum searched for is kept bracketed by the
    signs of the slope (a bisection where the secant leaves the bracket). ``a`` and ``b`` bound the search only
    once a slope there has fixed them: until then the secant may lead up to ``first`` past them. Stops where the
    slope changes σ_max by less than rounding over ``first`` (a stationary point: ω = 0 or π of a symmetric
    response), at a step below ``xtol``, once the gain the secant's quadratic model predicts,
    ``slope²/(2·|curvature|)``, is below ``gain·σ_max`` (the value needs no more digits than asked for), once
    σ_max plus ``_HOPE`` times that gain is below ``beat`` (a later seed's climb that cannot win), or after
    ``budget`` evaluations. Returns where it stopped (its ``best`` is the best ``(ω, σ_max)``).
    """
    fx, gx = fs(x) if known is None else known
    best = (x, fx)
    lo, hi = a, b
    held = [False, False]  # whether a slope's sign has fixed lo / hi (else they are where the search was told to
    for _ in range(budget):  # look, the seed's neighbours: the peak may lie past them)
        if abs(gx) * first <= _EPS * abs(fx):  # stationary to rounding on the peak's scale: nothing to climb (ω = 0
            break  # or π of a symmetric response, where a real pole peaks, has a zero slope up to rounding)
        if gx > 0:
            lo, held[0] = x, True
        else:
            hi, held[1] = x, True
        if hi - lo <= 2.0 * xtol:
            break
        step = None
        if previous is not None and gx != previous[1]:
            step = x - gx * (x - previous[0]) / (gx - previous[1])
            # past a side no slope has fixed: follow the secant up to ``first`` beyond it (any higher value is
            # welcome; bisecting towards the side would only creep up to it)
            if step <= lo and not held[0] and lo - step <= first:
                lo = step - (x - step)
            elif step >= hi and not held[1] and step - hi <= first:
                hi = step + (step - x)
        if step is None or not lo < step < hi:
            if previous is None:
                step = x + (min(first, 0.5 * (hi - x)) if gx > 0 else -min(first, 0.5 * (x - lo)))
            else:
                step = 0.5 * (lo + hi)
        if abs(step - x) < xtol:
            step = x + np.copysign(xtol, step - x)
            if not lo < step < hi:
                break
        previous = (x, gx)
        x = step
        fx, gx = fs(x)
        if fx > best[1]:
            best = (x, fx)
        if fx >= best[1] and _gain_below(x, fx, gx, previous, gain):
            break
        if beat is not None and _predicted_peak(x, fx, gx, previous) < beat:
            break
    return Search(x, fx, gx, previous, lo, hi, best)


def _predicted_gain(x: float, gx: float, previous: tuple[float, float]) -> float:
    """The gain ``slope²/(2·|curvature|)`` the quadratic model of the secant through ``previous`` and ``(x, gx)``
    predicts up to its maximum (``inf`` when the secant does not bend down)."""
    curvature = (gx - previous[1]) / (x - previous[0])
    return gx * gx / (-2.0 * curvature) if curvature < 0 else np.inf


def _gain_below(x: float, fx: float, gx: float, previous: tuple[float, float], gain: float) -> bool:
    """Whether the predicted gain is at most ``gain·fx`` (the stop of :func:`climb`)."""
    return bool(_predicted_gain(x, gx, previous) <= gain * fx)


def _predicted_peak(x: float, fx: float, gx: float, previous: tuple[float, float]) -> float:
    """An optimistic estimate of the local maximum the secant points to: ``fx`` plus _HOPE times the predicted
    gain."""
    return fx + _HOPE * _predicted_gain(x, gx, previous)


def polish(fs: Any, search: Search, *, xtol: float, first: float, gain: float = _POLISHED) -> Search:
    """Climb on from where ``search`` stopped (its secant and bracket kept) until the predicted gain is below
    ``gain·σ_max``: the certified peak's value to about full precision, usually in one evaluation or none (the
    prediction is accurate there: measured within a few % of the gain then attained)."""
    if search.previous is not None and search.x != search.previous[0]:
        if _gain_below(search.x, search.fx, search.gx, search.previous, gain):
            return search
    return climb(
        fs,
        search.lo,
        search.hi,
        search.x,
        xtol=xtol,
        first=first,
        gain=gain,
        known=(search.fx, search.gx),
        previous=search.previous,
    )

"""Exact H∞ on the initialisations of the real packages (s5-pytorch, LRU-pytorch, S4D-Lin/Inv, HiPPO-LegS,
D-dominated) against SLICOT AB13DD, both certificates (level set, branch and bound), and the never-slower switch
of ``hinf_result(method="auto")`` to AB13DD."""

from __future__ import annotations

import numpy as np
import pytest

from ssmtools import DiagonalSSM, _hinf_diagonal as hd, hinf_result, load
from ssmtools._backends.slycot import linf_norm
from ssmtools.examples import INITIALISATIONS, init_layer
from ssmtools.systems import real_standard_form


def ab13dd(sys: DiagonalSSM) -> float:
    """SLICOT AB13DD on the real standard form, tol 1e-12: not our code."""
    A, B, C, D = real_standard_form(sys)
    return linf_norm(A, B, C, D, discrete=sys.is_discrete, tol=1e-12)[0]


def bracket(sys: DiagonalSSM, *, level_set: bool) -> hd.HinfBracket:
    return hd.hinf_bracket(
        sys.poles,
        sys.B,
        sys.C,
        sys.D,
        discrete=sys.is_discrete,
        real_output=sys.output == "real",
        state_includes_input=sys.state_includes_input,
        level_set=level_set,
    )


def assert_exact(sys: DiagonalSSM, *, route: str = "level-set") -> None:
    """Both certificates contain AB13DD's value and agree with it to 1e-8; the default takes ``route``."""
    reference = ab13dd(sys)
    for level_set in (True, False):
        result = bracket(sys, level_set=level_set)
        assert result.certified
        assert result.value == pytest.approx(reference, rel=1e-8)
        assert result.lower <= reference * (1 + 1e-10) and result.upper >= reference * (1 - 1e-10)
        assert result.upper <= result.value * (1 + 1e-8) + 1e-10 * result.value
        assert result.route == (route if level_set else "branch-and-bound")


def _package_layer(module) -> DiagonalSSM:
    model = load(module)
    return model[list(model)[0]].system


@pytest.mark.parametrize("kind", INITIALISATIONS)
@pytest.mark.parametrize("P, H", [(6, 4), (12, 8)])
def test_initialisation_families_match_ab13dd(kind, P, H):
    assert_exact(init_layer(kind, P, H, seed=P + H))


def test_s5_pytorch_default_init_matches_ab13dd():
    torch = pytest.importorskip("torch")
    s5 = pytest.importorskip("s5")
    for seed, (H, P) in enumerate([(8, 6), (16, 12)]):
        torch.manual_seed(seed)
        layer = _package_layer(s5.S5Block(H, P, bidir=False))
        magnitude = np.abs(layer.poles)
        assert magnitude.min() > 0.9 and magnitude.max() < 1  # the package's HiPPO-N init: slow, D-dominated
        assert_exact(layer)


def test_lru_pytorch_default_init_matches_ab13dd():
    torch = pytest.importorskip("torch")
    LRU_pytorch = pytest.importorskip("LRU_pytorch")
    torch.manual_seed(0)
    assert_exact(_package_layer(LRU_pytorch.LRU(6, 5, 8)))


@pytest.mark.parametrize("real_output", [True, False])
@pytest.mark.parametrize("near_minus_one", [False, True])
def test_level_set_realization_reproduces_the_response(real_output, near_minus_one):
    """The Cayley-mapped continuous-time realization has the circle form's response at ω = shift + 2 atan t: real
    (2×2 blocks) for a real-output layer, complex diagonal otherwise, and mapped with shift π when the poles sit
    next to z = −1 (S4D-Inv's poles negated), with a dense D."""
    from ssmtools import _hinf_levelset as ls

    sys = init_layer("S4D-Inv", 5, 3, seed=1)
    if near_minus_one:
        sys = sys.replace(poles=-sys.poles, D=sys.D + 0.1 * np.random.default_rng(2).standard_normal(sys.D.shape))
    form, _ = hd.circle_form(
        sys.poles, sys.B, sys.C, sys.D, discrete=True, real_output=real_output, state_includes_input=True
    )
    A, B, C, D, shift = ls.realization(form)
    assert shift == (np.pi if near_minus_one else 0.0)
    assert np.isrealobj(A) == real_output and A.shape == ((10, 10) if real_output else (5, 5))
    t = np.array([-3.0, -0.2, 0.0, 0.7, 40.0])
    omega = ls.to_circle(t, shift)
    expected = hd._formed_responses(form, hd._resolvent(form, omega), None)
    for k, tk in enumerate(t):
        G = C @ np.linalg.solve(1j * tk * np.eye(A.shape[0]) - A, B) + D
        np.testing.assert_allclose(G, expected[k], atol=1e-12 * np.abs(expected[k]).max())


def _defeating_layer(P: int = 24, H: int = 24, seed: int = 0) -> DiagonalSSM:
    """Broadband and next to the circle: poles 1e-8 inside it (too close for the level-set test) at random
    frequencies, with a full-rank D, so the branch and bound needs about a thousand exact evaluations."""
    rng = np.random.default_rng(seed)
    poles = (1 - 1e-8) * np.exp(1j * np.sort(rng.uniform(0.05, 3.1, P)))
    B = (rng.standard_normal((P, H)) + 1j * rng.standard_normal((P, H))) * 1e-9
    C = rng.standard_normal((H, P)) + 1j * rng.standard_normal((H, P))
    return DiagonalSSM(poles, B, C, np.diag(rng.uniform(0.5, 1.0, H)), dt=True, output="real")


def test_auto_switches_to_ab13dd_before_the_branch_and_bound_costs_more():
    layer = _defeating_layer()
    form, _ = hd.circle_form(
        layer.poles, layer.B, layer.C, layer.D, discrete=True, real_output=True, state_includes_input=False
    )
    from ssmtools import norms

    budget = norms._switch_budget(layer)
    with pytest.raises(hd.WorkBudgetExceeded):  # the mechanism: the B&B stops at half of AB13DD's expected cost
        hd.certify(form, budget=budget)
    switched = hinf_result(layer)
    assert switched.method == "slycot"
    # AB13DD, cross-checked at the pole frequencies (the route skips the I/O compression of a full-rank diagonal D,
    # which the reference applies: the two agree to rounding)
    assert switched.value >= ab13dd(layer) * (1 - 1e-13)
    full = hinf_result(layer, method="diagonal")  # an explicit method never switches
    assert full.method == "diagonal"
    # AB13DD's own accuracy next to the circle (documented): within 1e-3 here, never above the certified upper bound
    assert full.lower * (1 - 1e-3) <= switched.value <= full.upper


def test_a_batch_reports_which_engines_ran():
    easy = init_layer("S4D-Lin", 24, 24, seed=0)
    hard = _defeating_layer()
    batch = DiagonalSSM(
        np.stack([easy.poles, hard.poles]),
        np.stack([easy.B, hard.B]),
        np.stack([easy.C, hard.C]),
        np.stack([easy.D, hard.D]),
        dt=True,
        output="real",
        state_includes_input=False,
    )
    result = hinf_result(batch)
    assert result.method == "diagonal+slycot"
    assert result.value[0] == pytest.approx(ab13dd(batch[0]), rel=1e-8)


def test_tiny_layers_go_straight_to_ab13dd_unless_next_to_the_circle():
    from ssmtools.norms import auto_hinf_method

    tiny = init_layer("S4D-Lin", 8, 4, seed=0)  # 16 real states
    assert auto_hinf_method(tiny) == "slycot" and hinf_result(tiny).method == "slycot"
    assert auto_hinf_method(init_layer("S4D-Lin", 16, 4, seed=0)) == "diagonal"  # 32 real states
    close = tiny.replace(poles=(1 - 1e-8) * tiny.poles / np.abs(tiny.poles))  # AB13DD loses digits there
    assert auto_hinf_method(close) == "diagonal"
    wide = init_layer("S4D-Inv", 4, 64, seed=0)  # 8 real states but 64 inputs and outputs: AB13DD costs more
    assert auto_hinf_method(wide) == "diagonal" and auto_hinf_method(init_layer("S4D-Inv", 4, 24, seed=0)) == "slycot"
    result = hinf_result(wide)
    assert result.method == "diagonal" and result.value == pytest.approx(ab13dd(wide), rel=1e-8)


def test_folded_crossings_keep_the_interval_around_zero_and_pi():
    """A symmetric response folded onto [0, π]: σ_max ≥ γ on [−a, a] (crossings ±a) is an interval whose
    midpoint is 0, so 0 (and π) are candidates between crossings — a peak at ω = 0 is not lost (it was, on
    an s5-pytorch S5Block(256, 128) layer, which then fell back to the branch and bound)."""
    from ssmtools import _hinf_levelset as ls

    points, between = ls._between(np.array([-2e-4, 2e-4]), 0.08, True)
    np.testing.assert_allclose(points, [2e-4, 0.08])
    assert 0.0 in between and np.pi in between
    assert np.all((between >= 0) & (between <= np.pi))
    points, between = ls._between(np.array([-0.3, 0.5]), 0.1, False)  # a full circle: wrapped midpoints
    np.testing.assert_allclose(np.sort(between), np.sort(np.angle(np.exp(1j * np.array([-0.1, 0.3, 0.1 + np.pi])))))


@pytest.mark.parametrize("dense", [False, True])
def test_feedthrough_profile_is_a_lower_bound_that_tracks_a_d_dominated_response(dense):
    """σ_max of G compressed to D's top singular pairs never exceeds σ_max (numpy's SVD of the formed G) and,
    on a D-dominated layer, follows it to the size of the ripples."""
    sys = init_layer("D-dominated flat", 10, 6, seed=3)
    if dense:
        rng = np.random.default_rng(0)
        sys = sys.replace(D=sys.D + 0.05 * rng.standard_normal(sys.D.shape))
    form, _ = hd.circle_form(sys.poles, sys.B, sys.C, sys.D, discrete=True, real_output=True, state_includes_input=True)
    assert (form.diagonal_D is None) == dense
    omega = np.linspace(0.0, np.pi, 97)
    profile = hd.feedthrough_profile(form, omega)
    sigma = np.linalg.norm(hd._formed_responses(form, hd._resolvent(form, omega), None), ord=2, axis=(1, 2))
    assert np.all(profile <= sigma * (1 + 1e-12))
    assert np.max(sigma - profile) < 0.05 * np.max(sigma)


def test_feedthrough_profile_compresses_g_to_the_top_channels():
    """The profile is σ_max of G compressed to D's top channels: on an s5-pytorch-like layer (|d| uniform in [0, 1),
    so top channels couple) it is at least the largest diagonal entry |G_kk| of those channels (the scalar
    responses), never above σ_max (numpy's SVD of the formed G), and with every channel kept it is σ_max itself."""
    rng = np.random.default_rng(4)
    sys = init_layer("S4D-Lin", 12, 10, seed=4)
    sys = sys.replace(D=np.diag(rng.uniform(0.0, 1.0, 10)))
    form, _ = hd.circle_form(sys.poles, sys.B, sys.C, sys.D, discrete=True, real_output=True, state_includes_input=True)
    omega = np.linspace(0.0, np.pi, 61)
    G = hd._formed_responses(form, hd._resolvent(form, omega), None)
    sigma = np.linalg.norm(G, ord=2, axis=(1, 2))
    top = np.argsort(-np.abs(np.diag(sys.D)))[:4]
    scalar = np.max(np.abs(G[:, top, top]), axis=1)
    profile = hd.feedthrough_profile(form, omega, directions=4)
    assert np.all(profile >= scalar * (1 - 1e-12)) and np.any(profile > scalar * (1 + 1e-6))
    assert np.all(profile <= sigma * (1 + 1e-12))
    np.testing.assert_allclose(hd.feedthrough_profile(form, omega, directions=10), sigma, rtol=1e-12)


def test_top_singular_pairs_of_a_dense_feedthrough_match_the_svd():
    """The profile's directions of a dense D: unit vectors whose ``uᴴ D v`` are D's top singular values (numpy's
    SVD), largest first; a rank-deficient D keeps only the directions it does not map to zero."""
    rng = np.random.default_rng(1)
    D = rng.standard_normal((7, 5)) + 1j * rng.standard_normal((7, 5))
    V, Uh = hd._top_singular_pairs(D, 3)
    assert V.shape == (5, 3) and Uh.shape == (3, 7)
    np.testing.assert_allclose(np.linalg.norm(V, axis=0), 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(Uh, axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(
        np.abs(np.sum(Uh * (D @ V).T, axis=1)), np.linalg.svd(D, compute_uv=False)[:3], rtol=1e-12
    )
    low_rank = rng.standard_normal((6, 1)) @ rng.standard_normal((1, 6))
    V, Uh = hd._top_singular_pairs(low_rank, 4)
    assert V.shape[1] == Uh.shape[0] >= 1
    assert np.all(np.isfinite(Uh))


def test_a_coarse_climb_is_polished_from_where_it_stopped():
    """``polish`` continues a climb stopped at a coarse predicted gain along its own secant: on a smooth peak
    (a quartic with its maximum 2 at ω = 0.3) it reaches the maximum to rounding in at most two evaluations, and
    a search already converged is returned without evaluating anything."""
    from ssmtools import _hinf_levelset as ls

    calls = []

    def fs(w):
        calls.append(w)
        d = w - 0.3
        return 2.0 - d**2 + 0.5 * d**3 - d**4, -2.0 * d + 1.5 * d**2 - 4.0 * d**3

    coarse = ls.climb(fs, -1.0, 1.0, 0.0, xtol=1e-12, first=0.5, gain=ls._GAIN * 1e-8)  # the certificate's stop
    assert coarse.best[1] < 2.0 and coarse.previous is not None
    calls.clear()
    fine = ls.polish(fs, coarse, xtol=1e-12, first=1e-3)
    assert len(calls) <= 2
    assert fine.best[1] == pytest.approx(2.0, rel=1e-15, abs=0)
    calls.clear()
    again = ls.polish(fs, fine, xtol=1e-12, first=1e-3)
    assert calls == [] and again.best == fine.best


def test_a_rival_climb_is_abandoned_once_it_cannot_beat_the_best():
    """A later seed's search (``beat``) stops as soon as its secant predicts a local maximum (optimistically, with
    ``_HOPE`` times the predicted gain) below the best value found: on a peak of height 2 at ω = 0.3 it stops after
    two evaluations against a best of 3, and climbs the peak as before against a best of 1.9."""
    from ssmtools import _hinf_levelset as ls

    calls = []

    def fs(w):
        calls.append(w)
        d = w - 0.3
        return 2.0 - d**2, -2.0 * d

    abandoned = ls.climb(fs, -1.0, 1.0, 0.0, xtol=1e-12, first=0.1, gain=1e-10, beat=3.0)
    assert len(calls) == 2 and abandoned.best[1] < 2.0
    calls.clear()
    climbed = ls.climb(fs, -1.0, 1.0, 0.0, xtol=1e-12, first=0.1, gain=1e-10, beat=1.9)
    assert climbed.best[1] == pytest.approx(2.0, rel=1e-10)


def test_a_climb_follows_its_secant_past_the_seeds_neighbours():
    """The bracket a search is given (the seed's neighbours on the grid) is not a wall: with the peak (2 at ω = 0.3)
    beyond it, the secant leads there in a few evaluations (it used to bisect towards the bracket's end, 16 of them
    on an S4D-Inv layer, and leave the peak to a second eigenproblem); a side where a slope has changed sign
    stays a bound."""
    from ssmtools import _hinf_levelset as ls

    calls = []

    def fs(w):
        calls.append(w)
        d = w - 0.3
        return 2.0 - d**2 + 0.5 * d**3, -2.0 * d + 1.5 * d**2

    search = ls.climb(fs, -0.1, 0.25, 0.2, xtol=1e-12, first=0.2, gain=1e-12)
    assert search.best[1] == pytest.approx(2.0, rel=1e-12) and len(calls) <= 6
    assert search.lo <= search.best[0] <= search.hi


def test_a_climb_from_a_stationary_point_stops_at_once():
    """At ω = 0 of a symmetric response (where a real pole peaks) the slope is zero up to rounding: the search
    stops there instead of bisecting towards it (S4D-Lin layers with 2–4 states spent 16 evaluations on it)."""
    from ssmtools import _hinf_levelset as ls

    calls = []

    def fs(w):
        calls.append(w)
        return 5.0 / (1.0 + 1e6 * w * w), 1.4e-18 if w == 0.0 else -1e7 * w / (1.0 + 1e6 * w * w) ** 2

    search = ls.climb(fs, -np.pi, 0.002, 0.0, xtol=1e-12, first=1e-3, gain=ls._GAIN * 1e-8)
    assert calls == [0.0] and search.best == (0.0, 5.0)


def test_a_real_pole_peaking_at_zero_is_certified_without_switching():
    """S4D-Lin with 2 stored states and 96 channels: a real pole makes the peak sit at ω = 0; ``auto`` certifies it
    with the diagonal algorithm (it used to exhaust the never-slower budget there and hand over to AB13DD)."""
    sys = init_layer("S4D-Lin", 2, 96, seed=0)
    result = hinf_result(sys)
    assert result.method == "diagonal"
    assert float(result.peak) == 0.0
    assert float(result.value) == pytest.approx(ab13dd(sys), rel=1e-12)

"""ssmtools.torch warm starts: HinfTracker (certified routes against the certified search and slycot, local
calls as attained lower bounds) and the fast Hankel path (against ssmtools.hankel_singular_values)."""

from __future__ import annotations

import numpy as np
import pytest

import ssmtools
from ssmtools.errors import ArgumentError

torch = pytest.importorskip("torch")
stt = pytest.importorskip("ssmtools.torch")


def _layer(seed, *, n=6, m=3, p=3, dt=True, scale=1.0):
    rng = np.random.default_rng(seed)
    if dt:
        lam = rng.uniform(0.5, 0.95, n) * np.exp(1j * rng.uniform(0.1, 3.0, n))
    else:
        lam = -rng.uniform(0.1, 1.0, n) + 1j * rng.uniform(-3, 3, n)
    B = scale * (rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m)))
    C = rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))
    return ssmtools.DiagonalSSM(
        lam, B, C, np.zeros((p, m)), dt=dt if dt else 0, output="real", state_includes_input=bool(dt)
    )


def _drift(sys, t):
    """The system after a small, smooth parameter change t (a training step's worth)."""
    rotate = np.exp(1j * 0.01 * t * np.arange(sys.n_states))
    return ssmtools.DiagonalSSM(
        sys.poles * rotate,
        sys.B * (1 + 0.02 * t),
        sys.C,
        sys.D,
        dt=sys.dt,
        output=sys.output,
        state_includes_input=sys.state_includes_input,
    )


@pytest.mark.parametrize("dt", [True, False], ids=["dt", "ct"])
def test_certified_calls_match_slycot_and_the_cold_gradient(dt):
    tracker = stt.HinfTracker(certify_every=1)
    base = _layer(1, dt=dt)
    for t in range(4):
        sys = stt.TorchSSM.from_numpy(_drift(base, t), requires_grad=True)
        warm = stt.hinf_norm(sys, rtol=1e-9, tracker=tracker, name="layer")
        reference = ssmtools.hinf_norm(sys.to_numpy(), method="slycot")
        assert float(warm.detach()) == pytest.approx(float(reference), rel=1e-8)
        warm.backward()
        grads = [t_.grad.clone() for t_ in (sys.poles, sys.B, sys.C)]
        cold_sys = stt.TorchSSM.from_numpy(sys.to_numpy(), requires_grad=True)
        stt.hinf_norm(cold_sys, rtol=1e-9).backward()
        for g, t_ in zip(grads, (cold_sys.poles, cold_sys.B, cold_sys.C)):
            torch.testing.assert_close(g, t_.grad, rtol=1e-5, atol=1e-7)
    assert tracker.counts["search"] == 1 and tracker.counts["level-set"] == 3


@pytest.mark.parametrize("dt", [True, False], ids=["dt", "ct"])
def test_local_calls_are_attained_lower_bounds_that_converge(dt):
    tracker = stt.HinfTracker(certify_every=100)
    base = _layer(2, dt=dt)
    stt.hinf_norm(stt.TorchSSM.from_numpy(base), tracker=tracker, name="x")
    moved = _drift(base, 1.0)
    true = float(ssmtools.hinf_norm(moved, method="slycot"))
    values = []
    for _ in range(4):  # the same parameters: the Newton steps converge to the tracked lobe's maximum
        value, peak = stt.hinf_norm(stt.TorchSSM.from_numpy(moved), tracker=tracker, name="x", return_peak=True)
        attained = float(np.linalg.norm(ssmtools.freqresp(moved, np.array([float(peak)]))[0], 2))
        assert float(value.detach()) == pytest.approx(attained, rel=1e-10)
        assert float(value.detach()) <= true * (1 + 1e-12)
        values.append(float(value.detach()))
    assert tracker.counts == {"search": 1, "level-set": 0, "local": 4}
    assert values[-1] == pytest.approx(true, rel=1e-12)  # quadratic convergence: 4 steps reach rounding


@pytest.mark.parametrize("dt", [True, False], ids=["dt", "ct"])
@pytest.mark.parametrize("output", ["real", "complex"])
@pytest.mark.parametrize(("p", "m"), [(3, 4), (4, 3)], ids=["wide", "tall"])
def test_local_step_derivatives_match_central_differences_of_the_numpy_response(dt, output, p, m):
    """σ_max(ω) of the NumPy frequency response, differenced in ω, against the torch σ′, σ″ of the Newton step."""
    from ssmtools.torch import _norms

    rng = np.random.default_rng(7)
    n = 6
    if dt:
        lam = rng.uniform(0.8, 0.99, n) * np.exp(1j * rng.uniform(0.1, 3.0, n))
    else:
        lam = -rng.uniform(0.05, 1.0, n) + 1j * rng.uniform(-3, 3, n)
    feedthrough = rng.standard_normal((p, m)) + (1j * rng.standard_normal((p, m)) if output == "complex" else 0)
    sys = ssmtools.DiagonalSSM(
        lam,
        rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m)),
        rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n)),
        feedthrough,
        dt=dt if dt else 0,
        output=output,
        state_includes_input=bool(dt),
    )
    omega = np.array([0.4, 1.3, 2.2])
    h = 1e-4

    def sigma(w):
        return np.array([np.linalg.norm(G, 2) for G in ssmtools.freqresp(sys, w)])

    low, centre, high = sigma(omega - h), sigma(omega), sigma(omega + h)
    value, slope, curvature, _, _ = _norms._sigma_derivatives(
        stt.TorchSSM.from_numpy(sys), torch.as_tensor(omega), None
    )
    np.testing.assert_allclose(value.numpy(), centre, rtol=1e-13)
    np.testing.assert_allclose(slope.numpy(), (high - low) / (2 * h), rtol=1e-6, atol=1e-6 * np.abs(centre).max())
    np.testing.assert_allclose(
        curvature.numpy(), (high - 2 * centre + low) / h**2, rtol=1e-4, atol=1e-4 * np.abs(centre).max()
    )


def test_tracker_searches_again_on_a_new_batch_shape_and_reports_unstable_systems():
    tracker = stt.HinfTracker(certify_every=1)
    large = _layer(3, n=5)
    pair = ssmtools.DiagonalSSM(
        np.stack([large.poles, 0.9 * large.poles]),
        large.B,
        large.C,
        large.D,
        dt=True,
        output="real",
        state_includes_input=True,
    )
    for sys in (large, pair, pair):
        value = stt.hinf_norm(stt.TorchSSM.from_numpy(sys), tracker=tracker, name="x")
        np.testing.assert_allclose(value.numpy(), ssmtools.hinf_norm(sys, method="slycot"), rtol=1e-7)
    assert tracker.counts == {"search": 3, "level-set": 2, "local": 0}
    poles = large.poles.copy()
    poles[0] = 1.01
    unstable = ssmtools.DiagonalSSM(poles, large.B, large.C, large.D, dt=True, output="real")
    assert torch.isinf(stt.hinf_norm(stt.TorchSSM.from_numpy(unstable), tracker=tracker, name="x"))
    tracker.reset()
    stt.hinf_norm(stt.TorchSSM.from_numpy(large), tracker=tracker, name="x")
    assert tracker.counts["search"] == 4
    with pytest.raises(ArgumentError, match="certify_every"):
        stt.HinfTracker(certify_every=0)


def test_hinf_penalty_with_a_tracker_follows_the_model():
    s5 = pytest.importorskip("s5")
    torch.manual_seed(0)
    model = torch.nn.Sequential(s5.S5(8, 8), s5.S5(8, 8))
    tracker = stt.HinfTracker(certify_every=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(4):
        optimizer.zero_grad()
        penalty = stt.hinf_penalty(model, tracker=tracker, reduction="none")
        cold = stt.hinf_penalty(model, reduction="none")
        assert torch.all(penalty <= cold * (1 + 1e-5))
        penalty.sum().backward()
        optimizer.step()
    assert tracker.counts["search"] == 2 and tracker.counts["local"] + tracker.counts["level-set"] == 6


@pytest.mark.parametrize("dt", [True, False], ids=["dt", "ct"])
def test_fast_hankel_values_and_gradient_match_the_graded_method(dt):
    sys = _layer(4, dt=dt, scale=0.3)
    fast = stt.TorchSSM.from_numpy(sys, requires_grad=True)
    values = stt.hankel_singular_values(fast, accurate=False)
    reference = ssmtools.hankel_singular_values(sys)
    np.testing.assert_allclose(values.detach().numpy(), reference, rtol=0, atol=1e-12 * reference[0])
    values[3:].sum().backward()
    accurate = stt.TorchSSM.from_numpy(sys, requires_grad=True)
    stt.hankel_singular_values(accurate)[3:].sum().backward()
    for a, b in zip((fast.poles, fast.B, fast.C), (accurate.poles, accurate.B, accurate.C)):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-10)
    poles = sys.poles.copy()
    poles[0] = 1.5 if dt else 0.5
    bad = ssmtools.DiagonalSSM(poles, sys.B, sys.C, sys.D, dt=sys.dt, output="real")
    with pytest.raises(ArgumentError, match="stable"):
        stt.hankel_singular_values(stt.TorchSSM.from_numpy(bad), accurate=False)


def test_hankel_tail_trace_gradient_matches_the_eigenvector_gradient():
    sys = _layer(5, scale=0.5)
    a = stt.TorchSSM.from_numpy(sys, requires_grad=True)
    b = stt.TorchSSM.from_numpy(sys, requires_grad=True)
    tail = stt.hankel_nuclear_penalty(a, order=4)
    reference = stt.hankel_singular_values(b)[4:].sum()
    assert float(tail.detach()) == pytest.approx(float(reference.detach()), rel=1e-10)
    tail.backward()
    reference.backward()
    for x, y in zip((a.poles, a.B, a.C), (b.poles, b.B, b.C)):
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_finite_horizon_hankel_values_and_penalty_gradient_on_an_unstable_layer(output):
    """horizon=L: the fast values equal the NumPy finite-horizon HSVs on a layer with a pole outside the circle,
    and the penalty's gradient matches central differences of the NumPy values."""
    base = _layer(7, n=5)
    poles = base.poles.copy()
    poles[0] = 1.004 * np.exp(0.3j)  # a trained s5-pytorch layer's unstable state
    layer = ssmtools.DiagonalSSM(poles, base.B, base.C, base.D, dt=True, output=output, state_includes_input=True)
    expected = ssmtools.hankel_singular_values(layer, horizon=40)
    fast = stt.hankel_singular_values(stt.TorchSSM.from_numpy(layer), accurate=False, horizon=40)
    np.testing.assert_allclose(fast.numpy(), expected, rtol=1e-9, atol=1e-13 * expected[0])
    with pytest.raises(ArgumentError, match="horizon=L"):
        stt.hankel_nuclear_penalty(stt.TorchSSM.from_numpy(layer), order=2)
    with pytest.raises(ArgumentError, match="integer"):
        stt.hankel_nuclear_penalty(stt.TorchSSM.from_numpy(layer), order=2, horizon=2.5)
    tensors = [torch.tensor(a, requires_grad=True) for a in (layer.poles, layer.B, layer.C)]
    sys = stt.TorchSSM(*tensors, dt=True, output=output, state_includes_input=True)
    stt.hankel_nuclear_penalty(sys, order=2, horizon=40).backward()
    rng = np.random.default_rng(3)
    directions = [rng.standard_normal(t.shape) + 1j * rng.standard_normal(t.shape) for t in tensors]
    analytic = sum(float(np.sum(np.real(np.conj(t.grad.numpy()) * d))) for t, d in zip(tensors, directions))

    def tail(h):
        moved = [t.detach().numpy() + h * d for t, d in zip(tensors, directions)]
        sys_h = ssmtools.DiagonalSSM(*moved, None, dt=True, output=output, state_includes_input=True)
        return float(np.sum(ssmtools.hankel_singular_values(sys_h, horizon=40)[2:]))

    h = 1e-6
    assert analytic == pytest.approx((tail(h) - tail(-h)) / (2 * h), rel=1e-5)


def test_candidates_that_climb_onto_one_lobe_free_a_slot():
    from ssmtools.torch import _norms

    moved = torch.tensor([[0.5, 0.5 + 1e-7, 1.2], [0.3, 2.0, 0.3 - 1e-7]], dtype=torch.float64)
    scale = torch.full_like(moved, 0.01)
    kept = _norms._one_per_lobe(moved, scale)
    assert torch.equal(torch.isnan(kept), torch.tensor([[False, True, False], [False, False, True]]))
    assert torch.equal(kept[~torch.isnan(kept)], moved[~torch.isnan(kept)])


def test_tracked_candidates_settle_on_distinct_local_maxima_including_a_band_edge():
    """A DC lobe (the peak), a lightly damped resonance above half of it and a resonance below (real output):
    after the search and a few local calls on fixed parameters, the two lobes above half the peak are tracked, one
    candidate each, on their local maxima of the swept σ_max; ω = 0, where σ_max is stationary by symmetry, is one."""
    lam = np.array([0.97 * np.exp(0.4j), 0.9 * np.exp(2.0j), 0.95])
    B = np.array([[1.0], [1.5], [1.2]], dtype=complex)
    C = np.array([[1.0, 1.0, 1.0]], dtype=complex)
    sys = ssmtools.DiagonalSSM(lam, B, C, np.zeros((1, 1)), dt=True, output="real")
    tracker = stt.HinfTracker(certify_every=100, candidates=4)
    for _ in range(5):
        stt.hinf_norm(stt.TorchSSM.from_numpy(sys), tracker=tracker, name="x")
    assert tracker.counts == {"search": 1, "level-set": 0, "local": 4}
    tracked = tracker.tracked("x")[0]
    tracked = np.sort(tracked[~np.isnan(tracked)])
    assert len(tracked) == 2 and np.min(np.diff(tracked)) > 0.1
    assert abs(tracked[0]) < 1e-9  # the band edge
    grid = np.linspace(0.0, np.pi, 20001)
    sigma = np.array([np.linalg.norm(G, 2) for G in ssmtools.freqresp(sys, grid)])
    for omega in tracked:
        k = int(np.argmin(np.abs(grid - omega)))
        window = sigma[max(0, k - 50) : k + 51]
        assert np.linalg.norm(ssmtools.freqresp(sys, np.array([omega]))[0], 2) >= window.max() * (1 - 1e-9)


def test_gramian_factors_fall_back_to_the_eigendecomposition_for_a_singular_gramian():
    from ssmtools.torch import _norms

    rng = np.random.default_rng(3)
    F = rng.standard_normal((2, 5, 3))
    singular = torch.as_tensor(F @ F.transpose(0, 2, 1))  # rank 3 of 5: Cholesky fails
    definite = singular + torch.eye(5, dtype=torch.float64)
    for G in (singular, definite):
        L = _norms._psd_factors(G)
        torch.testing.assert_close(L @ L.mH, G, rtol=1e-12, atol=1e-12)
    assert not bool((torch.linalg.cholesky_ex(singular)[1] == 0).all())

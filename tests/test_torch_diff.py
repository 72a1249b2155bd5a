"""ssmtools.torch: gradcheck of every differentiable function, gradients against central differences of the NumPy
reference implementations (ssmtools.norms, ssmtools.pruning criteria), H∞ (sub)gradients at simple and repeated
peaks, and the penalties."""

from __future__ import annotations

import numpy as np
import pytest

import ssmtools
from ssmtools.errors import ArgumentError, ArgumentTypeError, OptionError
from ssmtools.model import SSMLayer
from ssmtools.pruning.criteria import get_criterion

torch = pytest.importorskip("torch")
stt = pytest.importorskip("ssmtools.torch")

CASES = [(True, "complex"), (True, "real"), (0, "complex"), (0, "real")]
CASE_IDS = ["dt-complex", "dt-real", "ct-complex", "ct-real"]


def _params(seed, dt, *, n=3, m=2, p=2, margin=None):
    """Real parameter arrays (Re λ, Im λ, Re B, Im B, Re C, Im C, D) of a random stable system."""
    rng = np.random.default_rng(seed)
    if dt:
        radius = 1.0 - margin if margin is not None else rng.uniform(0.3, 0.9, n)
        lam = radius * np.exp(1j * rng.uniform(0.2, 2.9, n) * rng.choice([-1, 1], n))
    else:
        decay = margin if margin is not None else rng.uniform(0.1, 1.0, n)
        lam = -decay + 1j * rng.uniform(-3, 3, n)
    B = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
    C = rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))
    D = 0.1 * rng.standard_normal((p, m)) if dt else np.zeros((p, m))
    return [lam.real, lam.imag, B.real, B.imag, C.real, C.imag, D]


def _torch_system(tensors, dt, output):
    lr, li, br, bi, cr, ci, d = tensors
    return stt.TorchSSM(
        torch.complex(lr, li),
        torch.complex(br, bi),
        torch.complex(cr, ci),
        d,
        dt=dt,
        output=output,
        state_includes_input=bool(dt),
    )


def _numpy_system(arrays, dt, output):
    lr, li, br, bi, cr, ci, d = arrays
    return ssmtools.DiagonalSSM(
        lr + 1j * li, br + 1j * bi, cr + 1j * ci, d, dt=dt, output=output, state_includes_input=bool(dt)
    )


def _layer_scores(name, sys, **options):
    criterion = get_criterion(name, **options)
    return criterion.normalize(criterion.raw_scores(SSMLayer("layer", sys)))


# torch function, NumPy reference of the same quantity
FUNCTIONS = {
    "state_hinf": (stt.state_hinf_norms, ssmtools.state_hinf_norms),
    "state_h2": (stt.state_h2_norms, ssmtools.state_h2_norms),
    "h2": (stt.h2_norm, ssmtools.h2_norm),
    "hinf": (stt.hinf_norm, lambda s: ssmtools.hinf_norm(s, method="diagonal", rtol=1e-12)),
    "hsv": (stt.hankel_singular_values, ssmtools.hankel_singular_values),
    "last": (stt.last_scores, lambda s: _layer_scores("last", s)),
    "last_exact": (lambda s: stt.last_scores(s, exact=True), lambda s: _layer_scores("last-exact", s)),
    "aire": (stt.aire_scores, lambda s: _layer_scores("aire", s, form="exact")),
}


#: defined by a search or a host decomposition: gradcheck in fast mode (random projections of the Jacobian)
SEARCHED = {"state_hinf", "last_exact", "hinf", "hsv"}


def _differentiable_inputs(dt, name):
    """Indices of the parameters the function is differentiated in (CT H2 is infinite for D ≠ 0)."""
    return [0, 1, 2, 3, 4, 5] if (not dt and name == "h2") else [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize(("dt", "output"), CASES, ids=CASE_IDS)
def test_gradcheck(name, dt, output):
    func = FUNCTIONS[name][0]
    arrays = _params(1, dt)
    active = _differentiable_inputs(dt, name)
    fixed = [torch.tensor(a) for a in arrays]

    def f(*free):
        tensors = list(fixed)
        for i, t in zip(active, free):
            tensors[i] = t
        return func(_torch_system(tensors, dt, output))

    inputs = [torch.tensor(arrays[i], requires_grad=True) for i in active]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=name in SEARCHED)


@pytest.mark.parametrize("name", ["state_hinf", "state_h2", "h2", "hinf", "hsv"])
@pytest.mark.parametrize(("dt", "output"), CASES, ids=CASE_IDS)
def test_gradcheck_near_the_boundary(name, dt, output):
    """Poles 1e-3 from the stability boundary: values ~1e3, derivatives ~1e6, still consistent."""
    func = FUNCTIONS[name][0]
    arrays = _params(2, dt, margin=1e-3)
    active = _differentiable_inputs(dt, name)
    fixed = [torch.tensor(a) for a in arrays]

    def f(*free):
        tensors = list(fixed)
        for i, t in zip(active, free):
            tensors[i] = t
        return func(_torch_system(tensors, dt, output))

    inputs = [torch.tensor(arrays[i], requires_grad=True) for i in active]
    # the layer H∞ follows a resonance 1e-3 wide: central differences carry an O(eps²/margin³) truncation error
    rtol = 1e-3 if name == "hinf" else 1e-5
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-3, rtol=rtol, fast_mode=name in SEARCHED)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize(("dt", "output"), CASES, ids=CASE_IDS)
def test_values_and_gradients_match_numpy_reference(name, dt, output):
    """Values equal the NumPy functions; ∇F·d equals the central difference of the NumPy F along d."""
    func, reference = FUNCTIONS[name]
    arrays = _params(3, dt)
    active = _differentiable_inputs(dt, name)
    rng = np.random.default_rng(4)
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    value = func(_torch_system(tensors, dt, output))
    np.testing.assert_allclose(value.detach().numpy(), reference(_numpy_system(arrays, dt, output)), rtol=1e-10)
    weights = rng.standard_normal(value.shape)
    (value * torch.tensor(weights)).sum().backward()
    directions = [rng.standard_normal(a.shape) if i in active else np.zeros(a.shape) for i, a in enumerate(arrays)]
    analytic = sum(float(np.sum(t.grad.numpy() * d)) for t, d in zip(tensors, directions) if t.grad is not None)

    def F(h):
        moved = [a + h * d for a, d in zip(arrays, directions)]
        return float(np.sum(weights * np.asarray(reference(_numpy_system(moved, dt, output)))))

    h = 1e-5
    numeric = (F(h) - F(-h)) / (2 * h)
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8)


# ---------------------------------------------------------------------------------------------- H∞ at the peak
def _siso_dt(lam, b, c):
    return stt.TorchSSM(
        torch.tensor(lam, dtype=torch.complex128, requires_grad=True),
        torch.tensor(b, dtype=torch.complex128, requires_grad=True),
        torch.tensor(c, dtype=torch.complex128, requires_grad=True),
        dt=True,
    )


def _flat_grad(sys):
    return torch.cat([t.grad.reshape(-1) for t in (sys.poles, sys.B, sys.C)])


def test_hinf_gradient_at_a_simple_peak_is_the_derivative():
    """One dominant resonance: the envelope gradient equals the central difference of the certified norm."""
    lam = np.array([0.9 * np.exp(0.7j), 0.5 * np.exp(-2.0j)])
    sys = _siso_dt(lam, [[1.0 + 0.2j], [0.3]], [[0.8, 0.5 - 0.1j]])
    stt.hinf_norm(sys).backward()
    d_lam = np.array([0.3 - 0.2j, 0.1 + 0.4j])  # a direction in the poles (complex perturbation)
    analytic = float(np.sum(sys.poles.grad.numpy().real * d_lam.real + sys.poles.grad.numpy().imag * d_lam.imag))

    def F(h):
        moved = ssmtools.DiagonalSSM(lam + h * d_lam, sys.B.detach().numpy(), sys.C.detach().numpy(), dt=True)
        return float(ssmtools.hinf_norm(moved, method="diagonal", rtol=1e-12))

    h = 1e-6
    assert analytic == pytest.approx((F(h) - F(-h)) / (2 * h), rel=1e-6)


def test_hinf_gradient_at_a_repeated_peak_is_a_subgradient():
    """Two mirror resonances of a complex-output system give two equal peaks at ±ω*: the norm has a kink. The
    gradient returned is the gradient of one branch, and ∇f·d ≤ f'(θ; d) (one-sided derivative) for every d."""
    lam = np.array([0.9 * np.exp(1.0j), 0.9 * np.exp(-1.0j)])
    b, c = np.array([[1.0], [1.0]]), np.array([[1.0, 1.0]])
    sys = _siso_dt(lam, b, c)
    value, peak = stt.hinf_norm(sys, return_peak=True)
    value.backward()
    grad = _flat_grad(sys)
    peak = float(peak)
    branches = []
    for omega in (peak, -peak):
        branch = _siso_dt(lam, b, c)
        torch.linalg.matrix_norm(stt.response_at(branch, torch.tensor(omega, dtype=torch.float64)), ord=2).backward()
        branches.append(_flat_grad(branch))
    assert not torch.allclose(branches[0], branches[1])  # a genuine kink
    assert any(torch.allclose(grad, g, rtol=1e-10, atol=1e-12) for g in branches)
    # one-sided directional derivatives of the NumPy reference (max over branches)
    rng = np.random.default_rng(5)
    parts = [lam.size, b.size, c.size]
    for _ in range(6):
        direction = rng.standard_normal(sum(parts)) + 1j * rng.standard_normal(sum(parts))
        d_lam, d_b, d_c = np.split(direction, np.cumsum(parts)[:-1])
        h = 1e-7
        moved = ssmtools.DiagonalSSM(
            lam + h * d_lam, b + h * d_b.reshape(b.shape), c + h * d_c.reshape(c.shape), dt=True
        )
        base = ssmtools.DiagonalSSM(lam, b, c, dt=True)
        one_sided = (
            float(ssmtools.hinf_norm(moved, method="diagonal", rtol=1e-13))
            - float(ssmtools.hinf_norm(base, method="diagonal", rtol=1e-13))
        ) / h
        along = float(torch.sum(grad.real * torch.tensor(direction.real) + grad.imag * torch.tensor(direction.imag)))
        assert along <= one_sided + 1e-5 * max(1.0, abs(one_sided))


def test_unstable_states_and_systems_give_inf_without_nan_gradients():
    lam = torch.tensor([0.5 + 0j, 1.2 + 0j], dtype=torch.complex128, requires_grad=True)
    B = torch.ones((2, 1), dtype=torch.complex128, requires_grad=True)
    C = torch.ones((1, 2), dtype=torch.complex128, requires_grad=True)
    for output in ("complex", "real"):
        sys = stt.TorchSSM(lam, B, C, dt=True, output=output)
        values = stt.state_hinf_norms(sys)
        assert torch.isinf(values[1]) and torch.isfinite(values[0])
        values[0].backward()
        assert torch.isfinite(lam.grad).all() and torch.isfinite(B.grad).all()
        lam.grad = B.grad = C.grad = None
        with pytest.warns(ssmtools.UnstableSystemWarning):
            assert torch.isinf(stt.hinf_norm(sys))
        assert torch.isinf(stt.h2_norm(sys))
        with pytest.raises(ArgumentError, match="asymptotically stable"):
            stt.hankel_singular_values(sys)


def test_batched_systems_match_their_members():
    arrays = [np.stack([a, 0.9 * a]) for a in _params(6, True)]
    sys = _numpy_system(arrays, True, "real")
    batched = stt.TorchSSM.from_numpy(sys)
    for name in ("state_hinf", "h2", "hinf", "hsv"):
        func = FUNCTIONS[name][0]
        together = func(batched)
        for k in range(2):
            np.testing.assert_allclose(together[k].numpy(), func(stt.TorchSSM.from_numpy(sys[k])).numpy(), rtol=1e-12)


def test_lamp_normalize_matches_numpy_with_ties_and_inf():
    from ssmtools.pruning.normalize import lamp_normalize

    scores = np.array([[4.0, 1.0, 3.0, 2.0, 2.0, np.inf], [0.0, 0.0, 1.0, 5.0, 5.0, 5.0]])
    got = stt.lamp_normalize(torch.tensor(scores))
    for row, want in zip(got.numpy(), scores):
        np.testing.assert_array_equal(row, lamp_normalize(want))


def test_torch_ssm_checks_its_arguments():
    one = torch.ones((2, 1), dtype=torch.complex128)
    with pytest.raises(ArgumentTypeError, match="torch.Tensor"):
        stt.TorchSSM(np.ones(2), one, one.T)
    with pytest.raises(ssmtools.ShapeError, match="one row of B"):
        stt.TorchSSM(torch.ones(3, dtype=torch.complex128), one, one.T)
    with pytest.raises(ArgumentError, match="discrete-time"):
        stt.TorchSSM(torch.ones(2, dtype=torch.complex128), one, one.T, state_includes_input=True)


# ---------------------------------------------------------------------------------------------- penalties
def test_penalties_formulas_and_reductions():
    systems = [stt.TorchSSM.from_numpy(_numpy_system(_params(s, True), True, "real")) for s in (7, 8)]
    numpy_systems = [s.to_numpy().replace(D=None) for s in systems]
    h2 = [float(ssmtools.h2_norm(s)) ** 2 for s in numpy_systems]
    hinf = [float(ssmtools.hinf_norm(s)) for s in numpy_systems]
    tail = [float(np.sum(ssmtools.hankel_singular_values(s)[2:])) for s in numpy_systems]
    last = [float(np.sum(_layer_scores("last", s)) - 1.0) for s in numpy_systems]
    assert float(stt.h2_penalty(systems)) == pytest.approx(sum(h2), rel=1e-12)
    assert float(stt.h2_penalty(systems, reduction="mean")) == pytest.approx(np.mean(h2), rel=1e-12)
    np.testing.assert_allclose(stt.hinf_penalty(systems, reduction="none").numpy(), hinf, rtol=1e-6)
    assert float(stt.hinf_penalty(systems, reduction="max")) == pytest.approx(max(hinf), rel=1e-6)
    assert float(stt.hankel_nuclear_penalty(systems, order=2)) == pytest.approx(sum(tail), rel=1e-10)
    assert float(stt.last_sparsity_penalty(systems)) == pytest.approx(sum(last), rel=1e-12)
    with_d = float(stt.h2_penalty(systems[0], feedthrough=True))
    assert with_d == pytest.approx(float(ssmtools.h2_norm(systems[0].to_numpy())) ** 2, rel=1e-12)
    with pytest.raises(ArgumentError, match="order"):
        stt.hankel_nuclear_penalty(systems, order=-1)
    with pytest.raises(OptionError, match="reduction"):
        stt.h2_penalty(systems, reduction="avg")
    with pytest.raises(ArgumentTypeError, match="penalty takes"):
        stt.h2_penalty([1, 2])


def test_hankel_nuclear_penalty_gradient_matches_central_difference():
    arrays = _params(9, True, n=4)
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    stt.hankel_nuclear_penalty(_torch_system(tensors, True, "real"), order=3).backward()
    rng = np.random.default_rng(10)
    directions = [rng.standard_normal(a.shape) for a in arrays]
    analytic = sum(float(np.sum(t.grad.numpy() * d)) for t, d in zip(tensors, directions) if t.grad is not None)

    def F(h):
        moved = [a + h * d for a, d in zip(arrays, directions)]
        return float(np.sum(ssmtools.hankel_singular_values(_numpy_system(moved, True, "real"))[3:]))

    h = 1e-5
    assert analytic == pytest.approx((F(h) - F(-h)) / (2 * h), rel=1e-6)


def test_penalties_stack_layers_of_one_layout_and_keep_the_layer_order():
    """Layers of equal layout run as one batch; terms come back in layer order, each equal to the NumPy value."""
    small = [stt.TorchSSM.from_numpy(_numpy_system(_params(s, True), True, "real")) for s in (11, 12)]
    large = stt.TorchSSM.from_numpy(_numpy_system(_params(13, True, n=5), True, "real"))
    layers = {"a": small[0], "b": large, "c": small[1]}
    numpy_layers = {k: s.to_numpy().replace(D=None) for k, s in layers.items()}
    expected_h2 = [float(ssmtools.h2_norm(s)) ** 2 for s in numpy_layers.values()]
    expected_tail = [float(np.sum(ssmtools.hankel_singular_values(s)[1:])) for s in numpy_layers.values()]
    np.testing.assert_allclose(stt.h2_penalty(layers, reduction="none").numpy(), expected_h2, rtol=1e-12)
    np.testing.assert_allclose(
        stt.hankel_nuclear_penalty(layers, order=1, reduction="none").numpy(), expected_tail, rtol=1e-9
    )
    tracker = stt.HinfTracker(certify_every=1)
    hinf = stt.hinf_penalty(layers, reduction="none", tracker=tracker)
    expected_hinf = [float(ssmtools.hinf_norm(s, method="slycot")) for s in numpy_layers.values()]
    np.testing.assert_allclose(hinf.numpy(), expected_hinf, rtol=1e-6)
    assert set(tracker._peaks) == {"a+c", "b"}  # one tracked group per layout
    leaves = {k: stt.TorchSSM.from_numpy(s, requires_grad=True) for k, s in numpy_layers.items()}
    (stt.hankel_nuclear_penalty(leaves, order=1) + stt.h2_penalty(leaves)).backward()
    for key, s in numpy_layers.items():  # each layer's gradient is the one it gets alone
        alone = stt.TorchSSM.from_numpy(s, requires_grad=True)
        (stt.hankel_nuclear_penalty(alone, order=1) + stt.h2_penalty(alone)).backward()
        for stacked_leaf, alone_leaf in zip(
            (leaves[key].poles, leaves[key].B, leaves[key].C), (alone.poles, alone.B, alone.C)
        ):
            torch.testing.assert_close(stacked_leaf.grad, alone_leaf.grad, rtol=1e-10, atol=1e-12)

"""ssmtools.torch.systems on live modules (s5-pytorch S5/S5Block, LRU-pytorch, a minimal S4D kernel): values equal
ssmtools.load of the module's state dict, gradients reach the module's own parameters and agree with central
differences through the NumPy read path (ssmtools.load), on the module's dtype."""

from __future__ import annotations

import numpy as np
import pytest

import ssmtools
from ssmtools.errors import ArgumentTypeError, FormatError

from .adapters.reference import f64

torch = pytest.importorskip("torch")
stt = pytest.importorskip("ssmtools.torch")
s5 = pytest.importorskip("s5")
LRU_pytorch = pytest.importorskip("LRU_pytorch")


class S4DKernel(torch.nn.Module):
    """The parameters of state-spaces/s4 ``models/s4/s4d.py`` ``S4DKernel`` (C stored as view_as_real)."""

    def __init__(self, H: int, N2: int, generator: torch.Generator) -> None:
        super().__init__()
        self.log_dt = torch.nn.Parameter(torch.rand(H, generator=generator, dtype=torch.float64) * 2 - 4)
        self.log_A_real = torch.nn.Parameter(torch.log(0.5 * torch.ones(H, N2, dtype=torch.float64)))
        self.A_imag = torch.nn.Parameter(np.pi * torch.arange(N2, dtype=torch.float64).repeat(H, 1))
        C = torch.randn(H, N2, dtype=torch.complex128, generator=generator)
        self.C = torch.nn.Parameter(torch.view_as_real(C))


class S4D(torch.nn.Module):
    def __init__(self, H: int, N2: int, generator: torch.Generator) -> None:
        super().__init__()
        self.D = torch.nn.Parameter(torch.randn(H, generator=generator, dtype=torch.float64))
        self.kernel = S4DKernel(H, N2, generator)


class SSMKernelDiag(torch.nn.Module):
    """The parameters of state-spaces/s4 ``SSMKernelDiag`` (full layout): S = 2 copies of (A, B) for H = 4 channels,
    c = 2 output channels, softplus real transform, bilinear discretisation."""

    def __init__(self, generator: torch.Generator, H: int = 4, S: int = 2, N2: int = 3, c: int = 2) -> None:
        super().__init__()
        self.disc, self.real_transform, self.imag_transform, self.dt_transform = "bilinear", "softplus", "none", "exp"

        def randn(*shape):
            return torch.randn(*shape, generator=generator, dtype=torch.float64)

        self.inv_dt = torch.nn.Parameter(randn(H, 1) * 0.3 - 2.0)
        self.A_real = torch.nn.Parameter(randn(S, N2) * 0.2 + 0.5)
        self.A_imag = torch.nn.Parameter(torch.pi * torch.arange(N2, dtype=torch.float64).repeat(S, 1) + 0.1)
        self.B = torch.nn.Parameter(randn(1, S, N2, 2))
        self.C = torch.nn.Parameter(randn(c, H, N2, 2))


class FFTConv(torch.nn.Module):
    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.D = torch.nn.Parameter(torch.randn(2, 4, generator=generator, dtype=torch.float64))
        self.kernel = SSMKernelDiag(generator)


def _s4d_full():
    generator = torch.Generator().manual_seed(3)
    return torch.nn.ModuleDict({"layers": torch.nn.ModuleList([FFTConv(generator) for _ in range(2)])})


def _s5(wide=True):
    torch.manual_seed(0)
    model = torch.nn.Sequential(s5.S5(4, 6), s5.S5Block(4, 6, bidir=False))
    return f64(model) if wide else model


def _lru():
    torch.manual_seed(1)
    return f64(torch.nn.Sequential(LRU_pytorch.LRU(3, 2, 5, rmin=0.4, rmax=0.95)))


def _s4d():
    generator = torch.Generator().manual_seed(2)
    return torch.nn.ModuleDict({"layers": torch.nn.ModuleList([S4D(3, 4, generator) for _ in range(2)])})


MODELS = {"s5-pytorch": _s5, "lru": _lru, "s4d": _s4d, "s4d-full": _s4d_full}
#: the settings ssmtools.load needs for the state dict of each model (the live module carries them as attributes)
LOAD_OPTIONS = {"s4d-full": {"discretization": "bilinear", "real_transform": "softplus"}}


def _assert_same_system(got, want):
    for name in ("poles", "B", "C", "D"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12, atol=1e-14, err_msg=name)
    assert (got.dt, got.output, got.state_includes_input) == (want.dt, want.output, want.state_includes_input)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_systems_match_load_of_the_state_dict(family):
    model = MODELS[family]()
    views = stt.systems(model)
    loaded = ssmtools.load({k: v.detach() for k, v in model.state_dict().items()}, **LOAD_OPTIONS.get(family, {}))
    assert loaded.family == family
    assert list(views) == list(loaded)
    for name, view in views.items():
        _assert_same_system(view.to_numpy(), loaded[name].system)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_gradients_reach_every_parameter_of_the_layers(family):
    model = MODELS[family]()
    loss = stt.h2_penalty(model, feedthrough=True) + stt.hankel_nuclear_penalty(model, order=1)
    loss.backward()
    layer_parameters = {
        "s5-pytorch": ["Lambda", "B", "C", "D", "log_step"],
        "lru": ["nu_log", "theta_log", "gamma_log", "B", "C", "D"],
        "s4d": ["log_dt", "log_A_real", "A_imag", "C", "D"],
        "s4d-full": ["inv_dt", "A_real", "A_imag", "B", "C", "D"],
    }[family]
    named = dict(model.named_parameters())
    for leaf in layer_parameters:
        grads = [p.grad for key, p in named.items() if key.rsplit(".", 1)[-1] == leaf]
        assert grads and all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads), leaf


@pytest.mark.parametrize(
    ("family", "parameter"),
    [
        ("s5-pytorch", "0.seq.log_step"),
        ("s5-pytorch", "1.s5.seq.Lambda"),
        ("lru", "0.nu_log"),
        ("s4d", "layers.1.log_dt"),
        ("s4d-full", "layers.0.kernel.A_real"),
        ("s4d-full", "layers.1.kernel.inv_dt"),
    ],
)
def test_gradient_through_the_discretisation_matches_central_difference_of_load(family, parameter):
    """d(Σ H2² + Σ_{j>1} σ_j)/dθ for one entry θ of a raw module parameter, against the NumPy read path."""
    key = parameter.replace("layers.1.log_dt", "layers.1.kernel.log_dt")
    model = MODELS[family]()
    loss = stt.h2_penalty(model) + stt.hankel_nuclear_penalty(model, order=1)
    loss.backward()
    param = dict(model.named_parameters())[key]
    direction = torch.zeros_like(param)
    direction.view(-1)[0] = 1.0
    analytic = (
        float((param.grad * direction.conj()).real.sum()) if param.is_complex() else float(param.grad.view(-1)[0])
    )

    def F(h):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        state[key] = state[key] + h * direction
        total = 0.0
        for layer in ssmtools.load(state, **LOAD_OPTIONS.get(family, {})).values():
            system = layer.system.replace(D=None)
            total += float(np.sum(np.asarray(ssmtools.h2_norm(system)) ** 2))
            total += float(np.sum(ssmtools.hankel_singular_values(system)[..., 1:]))
        return total

    h = 1e-4  # the terms are smooth on this scale; smaller steps only add round-off
    assert analytic == pytest.approx((F(h) - F(-h)) / (2 * h), rel=1e-6, abs=1e-10)


def test_module_dtype_and_float64_option():
    model = _s5(wide=False)
    view = stt.systems(model)["0.seq"]
    assert view.poles.dtype == torch.complex64 and view.poles.device == model[0].seq.Lambda.device
    wide = stt.systems(model, dtype=torch.float64)["0.seq"]
    assert wide.poles.dtype == torch.complex128
    stt.h2_penalty(stt.systems(model, dtype=torch.float64)).backward()
    assert model[0].seq.Lambda.grad.dtype == torch.complex64 and torch.isfinite(model[0].seq.Lambda.grad).all()


def test_one_line_in_a_training_loop_reduces_the_penalty():
    model = _s5()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    before = float(stt.hankel_nuclear_penalty(model, order=2).detach())
    for _ in range(3):
        optimizer.zero_grad()
        loss = stt.hankel_nuclear_penalty(model, order=2) + stt.last_sparsity_penalty(model)
        loss.backward()
        optimizer.step()
    assert float(stt.hankel_nuclear_penalty(model, order=2).detach()) < before


def test_unsupported_modules_are_clear_errors():
    with pytest.raises(FormatError, match="no SSM layer found in Linear"):
        stt.systems(torch.nn.Linear(2, 2))
    with pytest.raises(ArgumentTypeError, match="torch.nn.Module"):
        stt.systems({"Lambda": 1})
    torch.manual_seed(0)
    with pytest.raises(FormatError, match="bidirectional='split'"):
        stt.systems(s5.S5(4, 6, bidir=True))
    with pytest.raises(FormatError, match="low-rank term P"):
        kernel = SSMKernelDiag(torch.Generator().manual_seed(0))
        kernel.P = torch.nn.Parameter(torch.zeros(1))
        stt.systems(kernel)


def test_bidirectional_s5_split_into_its_two_scans():
    torch.manual_seed(0)
    model = f64(torch.nn.Sequential(s5.S5(4, 6, bidir=True)))
    views = stt.systems(model, bidirectional="split")
    assert list(views) == ["0.seq", "0.seq.backward"]
    layer = ssmtools.load({k: v.detach() for k, v in model.state_dict().items()})["0.seq"].system
    assert isinstance(layer, ssmtools.BidirectionalSSM)
    _assert_same_system(views["0.seq"].to_numpy(), layer.forward)
    np.testing.assert_allclose(views["0.seq.backward"].to_numpy().C, layer.C_backward, rtol=1e-12)
    # the two scans' H2 energies add up to the layer's two-sided energy but for the doubly counted h_0 = (C₁ + C₂)B̄
    h2 = stt.h2_penalty(views, reduction="none", feedthrough=False)
    backward = views["0.seq.backward"].to_numpy()
    two_sided = float(ssmtools.h2_norm(layer.__class__(layer.forward.replace(D=None), layer.C_backward))) ** 2
    h0 = [np.real(0.5 * (C @ backward.B + np.conj(C) @ np.conj(backward.B))) for C in (layer.forward.C, backward.C)]
    overlap = 2.0 * float(np.sum(h0[0] * h0[1]))
    assert float(h2.sum().detach()) == pytest.approx(two_sided - overlap, rel=1e-9)
    h2.sum().backward()
    assert torch.all(model[0].seq.C.grad.abs().sum(0) > 0)  # both halves of C (forward and backward columns)
    with pytest.raises(ssmtools.OptionError, match="bidirectional"):
        stt.systems(model, bidirectional="merge")

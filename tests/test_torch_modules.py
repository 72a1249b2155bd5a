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


MODELS = {"s5-pytorch": _s5, "lru": _lru, "s4d": _s4d}


def _assert_same_system(got, want):
    for name in ("poles", "B", "C", "D"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12, atol=1e-14, err_msg=name)
    assert (got.dt, got.output, got.state_includes_input) == (want.dt, want.output, want.state_includes_input)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_systems_match_load_of_the_state_dict(family):
    model = MODELS[family]()
    views = stt.systems(model)
    loaded = ssmtools.load({k: v.detach() for k, v in model.state_dict().items()})
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
        for layer in ssmtools.load(state).values():
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
    with pytest.raises(FormatError, match="bidirectional"):
        stt.systems(s5.S5(4, 6, bidir=True))

"""``last_prune(module, ...)`` prunes a torch module in place (as Torch-Pruning does), against the real packages.

The pruned module has new, smaller parameters, runs and trains as it is, and its output equals the masked
model's: the same module pruned with ``mask=True`` (shapes unchanged), itself checked against a masked copy of
the package's state dict. The state-dict route gives the same parameters and leaves the module untouched.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import ssmtools

from ..adapters.reference import f64

torch = pytest.importorskip("torch")
s5 = pytest.importorskip("s5")
LRU_pytorch = pytest.importorskip("LRU_pytorch")

H, P, L = 4, 8, 30


def s5_module(bidir: bool):
    torch.manual_seed(7)
    module = s5.S5(width=H, state_width=P, bidir=bidir)
    with torch.no_grad():  # away from the structured init, so that every parameter matters
        for param in module.parameters():
            param.add_(0.2 * torch.randn_like(param))
    return f64(module)


def s5_run(module, u):
    return module(torch.as_tensor(u, dtype=torch.float64)[None])[0]


def lru_module():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # LRU-pytorch allocates its output and state in the default dtype
    try:
        torch.manual_seed(8)
        return LRU_pytorch.LRU(3, 2, P, rmin=0.4, rmax=0.95)
    finally:
        torch.set_default_dtype(old)


def lru_run(module, u):
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return module(torch.as_tensor(u))
    finally:
        torch.set_default_dtype(old)


CASES = {
    "s5-pytorch": (lambda: s5_module(False), s5_run, H),
    "s5-pytorch-bidir": (lambda: s5_module(True), s5_run, H),
    "lru": (lru_module, lru_run, 3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_module_pruned_in_place_runs_like_the_masked_model(case):
    make, run, width = CASES[case]
    u = np.random.default_rng(0).standard_normal((L, width))
    module, masked, untouched = make(), make(), make()
    state = {k: v.clone() for k, v in untouched.state_dict().items()}
    parameter_count = sum(p.numel() for p in module.parameters())

    returned, plan = ssmtools.last_prune(module, 0.5)
    assert returned is module and plan.n_removed == P // 2
    assert sum(p.numel() for p in module.parameters()) < parameter_count  # new, smaller parameters
    masked_module, masked_plan = ssmtools.last_prune(masked, 0.5, mask=True)
    assert masked_module is masked and [layer.keep.tolist() for layer in masked_plan.layers] == [
        layer.keep.tolist() for layer in plan.layers
    ]
    for key, value in masked.state_dict().items():  # mask=True in place: shapes unchanged
        assert value.shape == state[key].shape, key

    with torch.no_grad():
        y_pruned, y_masked, y_full = (run(m, u).numpy() for m in (module, masked, untouched))
    np.testing.assert_allclose(y_pruned, y_masked, atol=1e-10, rtol=0)
    assert np.abs(y_full - y_masked).max() > 1e-3  # pruning changed the output

    # the state-dict route: same parameters, its input left as it was
    params, _ = ssmtools.last_prune(untouched.state_dict(), 0.5)
    for key, value in params.items():
        torch.testing.assert_close(module.state_dict()[key], value, rtol=0, atol=0)
    for key, value in untouched.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)

    # the pruned module trains: gradients reach the new leaf parameters
    run(module, u).square().sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in module.parameters() if p.requires_grad)


def test_lru_run_time_state_is_resized_or_refused():
    module = lru_module()
    ssmtools.last_prune(module, 0.5)
    assert module.state.shape == (P // 2,)
    busy = lru_module()
    busy.state = torch.ones(P, dtype=torch.complex128)
    before = copy.deepcopy(busy.state_dict())
    with pytest.raises(ValueError, match="run-time tensor 'state'"):
        ssmtools.last_prune(busy, 0.5)
    for key, value in busy.state_dict().items():  # refused before anything changed
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


class S4DKernel(torch.nn.Module):
    """The minimal S4D kernel of state-spaces/s4 (``models/s4/s4d.py``), written out: parameters registered with
    ``lr=0`` there become buffers, as here for ``log_A_real`` and ``A_imag``."""

    def __init__(self, H: int, N: int):
        super().__init__()
        g = torch.Generator().manual_seed(9)
        self.log_dt = torch.nn.Parameter(torch.rand(H, generator=g, dtype=torch.float64) * 2.0 - 4.0)
        self.C = torch.nn.Parameter(torch.randn(H, N // 2, 2, generator=g, dtype=torch.float64))
        self.register_buffer("log_A_real", torch.log(0.5 + torch.rand(H, N // 2, generator=g, dtype=torch.float64)))
        self.register_buffer("A_imag", torch.pi * torch.arange(N // 2, dtype=torch.float64).repeat(H, 1))

    def forward(self, L: int):
        dt = torch.exp(self.log_dt)
        C = torch.view_as_complex(self.C)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag
        dtA = A * dt.unsqueeze(-1)
        K = dtA.unsqueeze(-1) * torch.arange(L, dtype=torch.float64)
        C = C * (torch.exp(dtA) - 1.0) / A
        return 2 * torch.einsum("hn,hnl->hl", C, torch.exp(K)).real


class S4D(torch.nn.Module):
    """y = K * u + D u per channel (the FFT convolution of s4d.py, without its activation and output layer)."""

    def __init__(self, H: int = 3, N: int = 8):
        super().__init__()
        self.kernel = S4DKernel(H, N)
        self.D = torch.nn.Parameter(torch.linspace(-1.0, 1.0, H, dtype=torch.float64))

    def forward(self, u):  # u (H, L)
        L = u.shape[-1]
        k = self.kernel(L)
        y = torch.fft.irfft(torch.fft.rfft(k, n=2 * L) * torch.fft.rfft(u, n=2 * L), n=2 * L)[..., :L]
        return y + u * self.D.unsqueeze(-1)


def test_s4d_module_with_buffers_pruned_in_place():
    u = torch.as_tensor(np.random.default_rng(1).standard_normal((3, L)))
    module, masked = S4D(), S4D()
    returned, plan = ssmtools.last_prune(module, 0.5)
    assert returned is module and module.kernel.C.shape == (3, 2, 2) and module.kernel.A_imag.shape == (3, 2)
    assert set(dict(module.named_buffers())) == {"kernel.log_A_real", "kernel.A_imag"}  # still buffers
    ssmtools.last_prune(masked, 0.5, mask=True, units="state")
    with torch.no_grad():
        np.testing.assert_allclose(module(u).numpy(), masked(u).numpy(), atol=1e-10, rtol=0)
        assert np.abs(S4D()(u).numpy() - masked(u).numpy()).max() > 1e-3

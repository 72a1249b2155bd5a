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

"""LRU: the PyPI package LRU-pytorch (``from LRU_pytorch import LRU``) and the paper's parameter names."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import ssmtools
from ssmtools.errors import FormatError

from .reference import lru_forward, simulate

torch = pytest.importorskip("torch")
LRU_pytorch = pytest.importorskip("LRU_pytorch")

H_IN, H_OUT, N, L = 3, 2, 6, 20


@contextlib.contextmanager
def float64_default():
    """LRU-pytorch allocates its output and state with the default dtype: run it in float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _package(seed: int, n: int = N):
    with float64_default():
        torch.manual_seed(seed)
        return LRU_pytorch.LRU(H_IN, H_OUT, n, rmin=0.4, rmax=0.95)


def _forward(module, u):
    with float64_default(), torch.no_grad():
        return module(torch.as_tensor(u)).numpy()


@pytest.fixture
def u():
    return np.random.default_rng(0).standard_normal((L, H_IN))


def test_package_layout_matches_forward(u):
    module = _package(1)
    model = ssmtools.load(module.state_dict())
    assert model.family == "lru" and list(model) == [""]
    sys = model[""].system
    assert sys.B.shape == (N, H_IN) and sys.C.shape == (H_OUT, N) and sys.D.shape == (H_OUT, H_IN)
    np.testing.assert_allclose(simulate(sys, u), _forward(module, u), atol=1e-12)


def test_prune_half_loads_strict_into_smaller_package(u):
    module = _package(2)
    state = module.state_dict()
    model = ssmtools.load({f"rnn.{k}": v for k, v in state.items()})
    keep = np.zeros(N, dtype=bool)
    keep[np.random.default_rng(3).choice(N, N // 2, replace=False)] = True
    pruned = model.apply({"rnn": keep})
    smaller = _package(4, n=N // 2)
    smaller.load_state_dict({k[4:]: v for k, v in pruned.params.items()}, strict=True)
    masked_state = {k: v.clone() for k, v in state.items()}
    masked_state["B"][~torch.as_tensor(keep)] = 0
    masked = _package(5)
    masked.load_state_dict(masked_state, strict=True)
    expected = _forward(masked, u)
    np.testing.assert_allclose(_forward(smaller, u), expected, atol=1e-12)
    assert np.abs(_forward(module, u) - expected).max() > 1e-3
    mask_model = model.apply({"rnn": keep}, mask=True)
    np.testing.assert_allclose(simulate(mask_model["rnn"].system, u), expected, atol=1e-12)


def test_replace_systems_through_package(u):
    module = _package(6)
    model = ssmtools.load(module.state_dict())
    rng = np.random.default_rng(7)
    n = 4
    poles = np.array([0.9 * np.exp(0.5j), 0.7 * np.exp(-2.0j), 0.5, -0.6 + 0j])  # arg < 0, real ±
    B = rng.standard_normal((n, H_IN)) + 1j * rng.standard_normal((n, H_IN))
    C = rng.standard_normal((H_OUT, n)) + 1j * rng.standard_normal((H_OUT, n))
    given = model[""].system.replace(poles=poles, B=B, C=C)
    replaced = model.replace_systems({"": given})
    assert np.all(np.asarray(replaced.params["theta_log"]) > -np.inf)
    smaller = _package(8, n=n)
    smaller.load_state_dict(replaced.params, strict=True)
    np.testing.assert_allclose(_forward(smaller, u), simulate(given, u), atol=1e-12)


def _paper(rng, *, transposed=False, H=3):
    params = {
        "nu_log": np.log(-np.log(rng.uniform(0.4, 0.95, N))),
        "theta_log": np.log(rng.uniform(0.1, np.pi, N)),
        "gamma_log": rng.uniform(-1, 0, N),
        "B_re": rng.standard_normal((N, H)),
        "B_im": rng.standard_normal((N, H)),
        "C_re": rng.standard_normal((H, N)),
        "C_im": rng.standard_normal((H, N)),
        "D": rng.standard_normal(H),
    }
    if transposed:
        for key in ("B_re", "B_im", "C_re", "C_im"):
            params[key] = params[key].T.copy()
    return params


@pytest.mark.parametrize("transposed", [False, True])
def test_paper_layout_read_prune_replace(transposed):
    rng = np.random.default_rng(9)
    tree = {"blocks_0": {"lru": _paper(rng, transposed=transposed)}, "head": {"kernel": np.ones((3, 1))}}
    model = ssmtools.load(tree)
    name = "blocks_0/lru"
    u = rng.standard_normal((L, 3))
    params = tree["blocks_0"]["lru"]
    np.testing.assert_allclose(
        simulate(model[name].system, u), lru_forward(params, u, transposed=transposed), atol=1e-12
    )
    keep = np.array([True, False, True, True, False, False])
    pruned = model.apply({name: keep})
    new = pruned.params["blocks_0"]["lru"]
    assert new["B_re"].shape == ((3, 3) if transposed else (3, 3)) and new["nu_log"].shape == (3,)
    by_hand = {k: v.copy() for k, v in params.items()}
    if transposed:
        by_hand["B_re"][:, ~keep] = 0
        by_hand["B_im"][:, ~keep] = 0
    else:
        by_hand["B_re"][~keep] = 0
        by_hand["B_im"][~keep] = 0
    np.testing.assert_allclose(
        lru_forward(new, u, transposed=transposed), lru_forward(by_hand, u, transposed=transposed), atol=1e-12
    )
    reduced = pruned[name].system
    flipped = reduced.replace(poles=np.conj(reduced.poles), B=np.conj(reduced.B), C=np.conj(reduced.C))
    again = pruned.replace_systems({name: flipped})
    np.testing.assert_allclose(
        lru_forward(again.params["blocks_0"]["lru"], u, transposed=transposed), simulate(flipped, u), atol=1e-12
    )
    assert np.all(again.params["blocks_0"]["lru"]["gamma_log"] == 0)


def test_square_transposed_layout_needs_the_flag():
    rng = np.random.default_rng(10)
    params = _paper(rng, transposed=True, H=N)  # N = H: shapes cannot tell
    u = rng.standard_normal((L, N))
    default = ssmtools.load(params)
    assert np.abs(simulate(default[""].system, u) - lru_forward(params, u, transposed=True)).max() > 1e-3
    flagged = ssmtools.load(params, transposed=True)
    np.testing.assert_allclose(simulate(flagged[""].system, u), lru_forward(params, u, transposed=True), atol=1e-12)


def test_bad_lru_input():
    module = _package(11)
    state = module.state_dict()
    with pytest.raises(FormatError, match="'C' is real .* complex dtype mismatch"):
        ssmtools.load(dict(state, C=state["C"].real))
    with pytest.raises(FormatError, match="'B' has shape"):
        ssmtools.load(dict(state, B=state["B"][:, :, None]))
    with pytest.raises(FormatError, match="'D' has shape"):
        ssmtools.load(dict(state, D=torch.ones(5)))
    model = ssmtools.load(state)
    unstable = model[""].system.replace(poles=np.full(N, 1.01 + 0j))
    with pytest.raises(ValueError, match=r"\|λ\| = exp"):
        model.replace_systems({"": unstable})

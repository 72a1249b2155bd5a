"""s5-pytorch (PyPI 0.2.1, ``from s5 import S5``): read, prune, replace, against the real package."""

from __future__ import annotations

import numpy as np
import pytest

import ssmtools
from ssmtools.errors import FormatError

from .reference import f64, simulate

torch = pytest.importorskip("torch")
s5 = pytest.importorskip("s5")

H, P, L = 4, 8, 40


def _model(seed: int, *, bidir: bool, state_width: int = P, double: bool = True):
    torch.manual_seed(seed)
    model = s5.S5(width=H, state_width=state_width, bidir=bidir)
    with torch.no_grad():  # move away from the structured init so that every parameter matters
        for param in model.parameters():
            param.add_(0.2 * torch.randn_like(param))
    return f64(model) if double else model


def _forward(model, u: np.ndarray) -> np.ndarray:
    dtype = torch.float64 if model.seq.D.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        return model(torch.as_tensor(u, dtype=dtype)[None]).numpy()[0]


@pytest.fixture
def u():
    return np.random.default_rng(0).standard_normal((L, H))


@pytest.mark.parametrize("bidir", [False, True])
def test_read_matches_package_forward(bidir, u):
    model = _model(1, bidir=bidir)
    loaded = ssmtools.load(model.state_dict())
    assert loaded.family == "s5-pytorch" and list(loaded) == ["seq"]
    layer = loaded["seq"]
    assert layer.bidirectional == bidir
    assert layer.system.output == "real" and layer.system.state_includes_input and layer.system.is_discrete
    y_package = _forward(model, u)
    y_ssm = simulate(layer.system, u)
    np.testing.assert_allclose(y_ssm, y_package, atol=1e-10, rtol=0)


def test_read_float32_package_and_step_scale(u):
    model = _model(2, bidir=False, double=False)
    loaded = ssmtools.load(model.state_dict(), step_scale=0.5)
    with torch.no_grad():
        y = model(torch.as_tensor(u, dtype=torch.float32)[None], step_scale=0.5).numpy()[0]
    np.testing.assert_allclose(simulate(loaded["seq"].system, u), y, atol=1e-5 * np.abs(y).max())


def test_s5block_prefix_and_non_ssm_passthrough():
    torch.manual_seed(3)
    block = s5.S5Block(H, P, bidir=False)
    loaded = ssmtools.load(block)
    assert list(loaded) == ["s5.seq"]
    keep = {"s5.seq": np.arange(P) % 2 == 0}
    pruned = loaded.apply(keep)
    state = loaded.params
    for key, value in state.items():
        if not key.startswith("s5.seq."):
            assert pruned.params[key] is value  # untouched
    smaller = s5.S5Block(H, P // 2, bidir=False)
    smaller.load_state_dict(pruned.params, strict=True)


@pytest.mark.parametrize("bidir", [False, True])
def test_prune_half_loads_strict_and_matches_masked_original(bidir, u):
    model = _model(4, bidir=bidir)
    state = model.state_dict()
    loaded = ssmtools.load(state)
    rng = np.random.default_rng(5)
    keep = np.zeros(P, dtype=bool)
    keep[rng.choice(P, P // 2, replace=False)] = True

    pruned = loaded.apply({"seq": keep})
    smaller = f64(s5.S5(width=H, state_width=P // 2, bidir=bidir))
    smaller.load_state_dict(pruned.params, strict=True)
    assert pruned.params["seq.Lambda"].dtype == state["seq.Lambda"].dtype
    assert pruned["seq"].n_states == P // 2

    # masked original, built by hand from the package's own state dict
    masked_state = {k: v.clone() for k, v in state.items()}
    masked_state["seq.B"][~torch.as_tensor(keep)] = 0
    columns = np.concatenate([keep, keep]) if bidir else keep
    masked_state["seq.C"][:, ~torch.as_tensor(columns)] = 0
    masked = f64(s5.S5(width=H, state_width=P, bidir=bidir))
    masked.load_state_dict(masked_state, strict=True)
    y_masked = _forward(masked, u)
    np.testing.assert_allclose(_forward(smaller, u), y_masked, atol=1e-10, rtol=0)
    assert np.abs(_forward(model, u) - y_masked).max() > 1e-3  # pruning changed something

    # mask=True gives the same masked state dict, shapes unchanged
    masked_by_ssmtools = loaded.apply({"seq": keep}, mask=True)
    for key in state:
        torch.testing.assert_close(masked_by_ssmtools.params[key], masked_state[key], rtol=0, atol=0)
    # and ssmtools' pruned layer is the original one with the states removed
    np.testing.assert_allclose(pruned["seq"].system.poles, loaded["seq"].system.poles[keep], rtol=1e-14)
    np.testing.assert_allclose(simulate(pruned["seq"].system, u), y_masked, atol=1e-10)


@pytest.mark.parametrize("bidir", [False, True])
def test_replace_systems_roundtrip_through_package(bidir, u):
    model = _model(6, bidir=bidir)
    loaded = ssmtools.load(model.state_dict())
    rng = np.random.default_rng(7)
    n = 5
    poles = rng.uniform(0.3, 0.95, n) * np.exp(1j * rng.uniform(-np.pi, np.pi, n))
    poles[0] = 0.7  # a real pole
    B = rng.standard_normal((n, H)) + 1j * rng.standard_normal((n, H))
    C = rng.standard_normal((H, n)) + 1j * rng.standard_normal((H, n))
    system = getattr(loaded["seq"].system, "forward", loaded["seq"].system).replace(poles=poles, B=B, C=C)
    if bidir:
        system = ssmtools.BidirectionalSSM(system, rng.standard_normal((H, n)) + 0j)
    replaced = loaded.replace_systems({"seq": system})
    smaller = f64(s5.S5(width=H, state_width=n, bidir=bidir))
    smaller.load_state_dict(replaced.params, strict=True)
    expected = simulate(system, u)
    # s5-pytorch casts B to complex64 inside forward (as_complex), even in float64: float32-level agreement
    np.testing.assert_allclose(_forward(smaller, u), expected, atol=1e-6 * np.abs(expected).max(), rtol=0)


def test_bad_input_messages():
    state = _model(8, bidir=False).state_dict()
    missing = {k: v for k, v in state.items() if k != "seq.B"}
    with pytest.raises(FormatError, match=r"missing parameter\(s\) \['seq.B'\]"):
        ssmtools.load(missing)
    wrong = dict(state, **{"seq.log_step": torch.zeros(P + 1)})
    with pytest.raises(FormatError, match="'seq.log_step' has shape"):
        ssmtools.load(wrong)
    real_lambda = dict(state, **{"seq.Lambda": state["seq.Lambda"].real})
    with pytest.raises(FormatError, match="'seq.Lambda' is real .* complex dtype mismatch"):
        ssmtools.load(real_lambda)
    with pytest.raises(TypeError, match="unknown setting"):
        ssmtools.load(state, conj_sym=True)
    loaded = ssmtools.load(state)
    with pytest.raises(ValueError, match="removes every state"):
        loaded.apply({"seq": np.zeros(P, dtype=bool)})
    with pytest.raises(ssmtools.ShapeError, match="expected the layer's poles shape"):
        loaded.apply({"seq": np.ones(P + 1, dtype=bool)})
    with pytest.raises(KeyError, match="unknown layer"):
        loaded.apply({"nope": np.ones(P, dtype=bool)})


def test_load_analyse_prune_save_reload_in_package(tmp_path, u):
    """The issue's workflow end to end: checkpoint file -> norms -> prune half -> save -> S5(strict=True)."""
    model = _model(9, bidir=False, double=False)
    torch.save(model.state_dict(), tmp_path / "s5.pt")
    loaded = ssmtools.load(tmp_path / "s5.pt")
    scores = ssmtools.state_hinf_norms(loaded["seq"].system)  # Re output: exact one-state H∞ (math.md §3.2)
    keep = scores >= np.median(scores)
    assert keep.sum() == P // 2
    out = ssmtools.save(loaded.apply({"seq": keep}), tmp_path / "s5_pruned.pt")
    smaller = s5.S5(width=H, state_width=P // 2)
    smaller.load_state_dict(torch.load(out, weights_only=True), strict=True)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["seq.B"][~torch.as_tensor(keep)] = 0
    model.load_state_dict(state)
    np.testing.assert_allclose(_forward(smaller, u), _forward(model, u), atol=1e-6, rtol=0)

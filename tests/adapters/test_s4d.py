"""S4D (state-spaces/s4): minimal S4DKernel and full SSMKernelDiag layouts against the convolution kernel."""

from __future__ import annotations

import numpy as np
import pytest

import ssmtools
from ssmtools.errors import FormatError

from .reference import s4d_full_forward, s4d_minimal_forward, simulate

H, N2, L = 3, 4, 25


def _minimal(rng, *, with_b=False) -> dict:
    kernel = {
        "log_dt": rng.uniform(np.log(1e-2), np.log(0.5), H),
        "log_A_real": np.log(rng.uniform(0.05, 1.0, (H, N2))),
        "A_imag": np.pi * np.arange(N2) * rng.uniform(0.5, 1.5, (H, N2)),
        "C": rng.standard_normal((H, N2, 2)),
    }
    if with_b:
        kernel["B"] = rng.standard_normal((H, N2, 2))
    return kernel


def _minimal_tree(seed, *, with_b=False, torch_tensors=False):
    """A state dict as ``S4D`` modules in a model would produce (``layers.{i}.kernel.*``, ``layers.{i}.D``)."""
    rng = np.random.default_rng(seed)
    state = {"encoder.weight": rng.standard_normal((H, 2))}
    for i in range(2):
        state[f"layers.{i}.D"] = rng.standard_normal(H)
        for key, value in _minimal(rng, with_b=with_b).items():
            state[f"layers.{i}.kernel.{key}"] = value
        state[f"layers.{i}.output_linear.0.weight"] = rng.standard_normal((2 * H, H, 1))
    if torch_tensors:
        torch = pytest.importorskip("torch")
        state = {k: torch.as_tensor(v) for k, v in state.items()}
    return state


def _group(state, prefix):
    out = {k[len(prefix) + 1 :]: np.asarray(v) for k, v in state.items() if k.startswith(prefix + ".")}
    return {k: v for k, v in out.items() if "." not in k}


def _channel_outputs(layer, u):
    """Simulate each channel h of a multi-SISO layer on its own input column; (channels, L, H)."""
    sys = layer.system
    ys = [simulate(sys[h], u[:, h : h + 1]) for h in range(sys.batch_shape[0])]  # each (L, channels)
    return np.stack(ys, axis=2).transpose(1, 0, 2)


@pytest.mark.parametrize("with_b", [False, True])
@pytest.mark.parametrize("torch_tensors", [False, True])
def test_minimal_matches_convolution(with_b, torch_tensors):
    state = _minimal_tree(1, with_b=with_b, torch_tensors=torch_tensors)
    model = ssmtools.load(state)
    assert model.family == "s4d" and list(model) == ["layers.0.kernel", "layers.1.kernel"]
    layer = model["layers.0.kernel"]
    sys = layer.system
    assert sys.batch_shape == (H,) and sys.poles.shape == (H, N2) and sys.B.shape == (H, N2, 1)
    assert sys.C.shape == (H, 1, N2) and sys.D.shape == (H, 1, 1)
    u = np.random.default_rng(2).standard_normal((L, H))
    expected = s4d_minimal_forward(_group(state, "layers.0.kernel"), np.asarray(state["layers.0.D"]), u)
    np.testing.assert_allclose(_channel_outputs(layer, u)[0], expected, atol=1e-11)


def _full(rng, *, S=H, channels=2, dt_tie=True):
    kernel = {
        "inv_dt": rng.uniform(np.log(1e-2), np.log(0.5), (H, 1) if dt_tie else (H, N2)),
        "A_real": np.log(rng.uniform(0.05, 1.0, (S, N2))),
        "A_imag": np.pi * np.arange(N2) * rng.uniform(0.5, 1.5, (S, N2)),
        "B": rng.standard_normal((1, S, N2, 2)),
        "C": rng.standard_normal((channels, H, N2, 2)),
    }
    return {"layer.D": rng.standard_normal((channels, H)), **{f"layer.kernel.{k}": v for k, v in kernel.items()}}


@pytest.mark.parametrize("S", [H, 1])
@pytest.mark.parametrize("dt_tie", [True, False])
@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_full_kernel_matches_convolution(S, dt_tie, disc):
    state = _full(np.random.default_rng(3), S=S, dt_tie=dt_tie)
    model = ssmtools.load(state, discretization=disc)
    layer = model["layer.kernel"]
    assert layer.system.C.shape == (H, 2, N2) and layer.system.D.shape == (H, 2, 1)
    u = np.random.default_rng(4).standard_normal((L, H))
    expected = s4d_full_forward(_group(state, "layer.kernel"), state["layer.D"], u, disc=disc)
    np.testing.assert_allclose(_channel_outputs(layer, u), expected, atol=1e-11)


def test_prune_equal_counts_and_mask_minimal():
    state = _minimal_tree(5, with_b=True)
    model = ssmtools.load(state)
    rng = np.random.default_rng(6)
    keep = np.zeros((H, N2), dtype=bool)
    for h in range(H):
        keep[h, rng.choice(N2, N2 // 2, replace=False)] = True
    pruned = model.apply({"layers.1.kernel": keep})
    masked = model.apply({"layers.1.kernel": keep}, mask=True)
    assert pruned.params["layers.1.kernel.log_A_real"].shape == (H, N2 // 2)
    assert masked.params["layers.1.kernel.C"].shape == (H, N2, 2)
    assert pruned.params["layers.0.kernel.C"] is state["layers.0.kernel.C"]
    u = rng.standard_normal((L, H))
    by_hand = _group(state, "layers.1.kernel")
    by_hand["C"] = by_hand["C"].copy()
    by_hand["C"][~keep] = 0
    expected = s4d_minimal_forward(by_hand, state["layers.1.D"], u)
    np.testing.assert_allclose(
        s4d_minimal_forward(_group(pruned.params, "layers.1.kernel"), state["layers.1.D"], u), expected, atol=1e-12
    )
    np.testing.assert_allclose(
        s4d_minimal_forward(_group(masked.params, "layers.1.kernel"), state["layers.1.D"], u), expected, atol=1e-12
    )
    np.testing.assert_allclose(_channel_outputs(pruned["layers.1.kernel"], u)[0], expected, atol=1e-11)


def test_prune_full_kernel_shared_and_untied():
    state = _full(np.random.default_rng(7), S=1, dt_tie=False)
    model = ssmtools.load(state)
    keep = np.tile(np.array([True, False, True, False]), (H, 1))  # same states in every channel (shared A, B)
    pruned = model.apply({"layer.kernel": keep})
    assert pruned.params["layer.kernel.A_real"].shape == (1, 2)
    assert pruned.params["layer.kernel.inv_dt"].shape == (H, 2)
    assert pruned.params["layer.kernel.C"].shape == (2, H, 2, 2)
    u = np.random.default_rng(8).standard_normal((L, H))
    by_hand = _group(state, "layer.kernel")
    by_hand["C"] = by_hand["C"].copy()
    by_hand["C"][:, ~keep] = 0
    np.testing.assert_allclose(
        s4d_full_forward(_group(pruned.params, "layer.kernel"), state["layer.D"], u),
        s4d_full_forward(by_hand, state["layer.D"], u),
        atol=1e-12,
    )
    different = keep.copy()
    different[1] = [False, True, True, False]
    with pytest.raises(ValueError, match="share one \\(A, B\\) copy"):
        model.apply({"layer.kernel": different})
    model.apply({"layer.kernel": different}, mask=True)  # masking is always possible


def test_unequal_counts_need_mask():
    model = ssmtools.load(_minimal_tree(9))
    keep = np.ones((H, N2), dtype=bool)
    keep[0, 0] = False
    with pytest.raises(ValueError, match="same number of kept states in every channel.*mask=True"):
        model.apply({"layers.0.kernel": keep})
    assert model.apply({"layers.0.kernel": keep}, mask=True)["layers.0.kernel"].n_states == N2


@pytest.mark.parametrize("layout", ["minimal", "minimal-B", "full"])
def test_replace_systems(layout):
    rng = np.random.default_rng(10)
    if layout == "full":
        state, name = _full(rng, channels=1), "layer.kernel"
    else:
        state, name = _minimal_tree(11, with_b=layout == "minimal-B"), "layers.0.kernel"
    model = ssmtools.load(state)
    sys = model[name].system
    n = 3
    poles = rng.uniform(0.3, 0.95, (H, n)) * np.exp(1j * rng.uniform(-3, 3, (H, n)))
    B = rng.standard_normal((H, n, 1)) + 1j * rng.standard_normal((H, n, 1))
    C = rng.standard_normal((H, 1, n)) + 1j * rng.standard_normal((H, 1, n))
    given = sys.replace(poles=poles, B=B, C=C)
    replaced = model.replace_systems({name: given})
    u = rng.standard_normal((L, H))
    expected = np.stack([simulate(given[h], u[:, h : h + 1])[:, 0] for h in range(H)], axis=1)
    group = _group(replaced.params, name)
    if layout == "full":
        got = s4d_full_forward(group, replaced.params["layer.D"], u)[0]
    else:
        got = s4d_minimal_forward(group, replaced.params["layers.0.D"], u)
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_bad_s4d_trees():
    state = _minimal_tree(12)
    with pytest.raises(FormatError, match=r"missing parameter\(s\) \['layers.0.kernel.A_imag'\]"):
        ssmtools.load({k: v for k, v in state.items() if k != "layers.0.kernel.A_imag"})
    with pytest.raises(FormatError, match="'layers.0.D' has shape"):
        ssmtools.load(dict(state, **{"layers.0.D": np.ones(H + 1)}))
    full = _full(np.random.default_rng(13))
    with pytest.raises(FormatError, match="S4 \\(DPLR\\) kernel"):
        ssmtools.load(dict(full, **{"layer.kernel.P": np.ones((1, H, N2, 2))}))
    with pytest.raises(ValueError, match="ZOH only"):
        ssmtools.load(state, discretization="bilinear")

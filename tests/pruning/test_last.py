"""last_prune / last_scores end to end on S5 (flax tree, s5-pytorch package) and S4D weights."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import ssmtools
from ssmtools import last_prune, last_scores

from ..adapters.reference import s5_flax_forward
from .reference import released_keep, released_lamp, released_raw_scores, s5_tree, seq_layers

L = 60


def tree_arrays_equal(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(tree_arrays_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


@pytest.mark.parametrize("bidirectional, stacked", [(False, False), (True, False), (True, True)])
def test_s5_flax_pruned_equals_masked(bidirectional, stacked):
    rng = np.random.default_rng(30)
    P, H = 8, 4
    tree = s5_tree(rng, n_layers=3, P=P, H=H, bidirectional=bidirectional, stacked_c=stacked)
    original = copy.deepcopy(tree)
    pruned, plan = last_prune(tree, 0.5)
    masked, masked_plan = last_prune(tree, 0.5, mask=True)
    assert tree_arrays_equal(tree, original)  # input untouched
    assert plan.n_removed == 12 and plan.realized_ratio == 0.5
    assert all(np.array_equal(a, b) for a, b in zip(plan.keep.values(), masked_plan.keep.values()))
    u = rng.standard_normal((L, H))
    for (name, seq), (_, seq_p), (_, seq_m) in zip(seq_layers(tree), seq_layers(pruned), seq_layers(masked)):
        keep = plan[name].keep
        n = int(keep.sum())
        assert n < P and seq_p["Lambda_re"].shape == (n,) and seq_p["B"].shape == (n, H, 2)
        assert seq_p["log_step"].shape == (n, 1)
        assert seq_m["Lambda_re"].shape == (P,)  # masking keeps shapes
        np.testing.assert_array_equal(seq_p["Lambda_im"], seq["Lambda_im"][keep])
        if "C1" in seq:
            assert seq_p["C1"].shape == seq_p["C2"].shape == (H, n, 2)
        else:
            assert seq_p["C"].shape == (H, (2 if bidirectional else 1) * n, 2)
        np.testing.assert_array_equal(seq_p["D"], seq["D"])
        y_pruned, y_masked = s5_flax_forward(seq_p, u), s5_flax_forward(seq_m, u)
        np.testing.assert_allclose(y_pruned, y_masked, atol=1e-6 * np.abs(y_masked).max(), rtol=0)
        np.testing.assert_allclose(y_pruned, y_masked, atol=1e-12, rtol=0)
        # the plan's exact error bounds the output error: ‖y − y_r‖₂ ≤ ‖G − G_r‖∞ ‖u‖₂ (math.md §5)
        delta = np.linalg.norm(s5_flax_forward(seq, u) - y_pruned)
        assert delta <= plan[name].hinf_error * np.linalg.norm(u) * (1 + 1e-9)
        assert delta > 0 and plan[name].hinf_error > 0
    # non-SSM leaves pass through
    np.testing.assert_array_equal(
        pruned["params"]["encoder"]["encoder"]["kernel"], tree["params"]["encoder"]["encoder"]["kernel"]
    )


def test_released_pipeline_matches_the_reference_threshold():
    """last-official + allocation="released" on a bidirectional tree = math.md §6 written out in the test."""
    rng = np.random.default_rng(31)
    tree = s5_tree(rng, n_layers=4, P=8, H=3, bidirectional=True)
    _, plan = last_prune(tree, 0.3, "last-official", allocation="released", mask=True)
    scores = [released_lamp(released_raw_scores(seq)) for _, seq in seq_layers(tree)]
    keep, tau = released_keep(scores, 30)
    assert plan.threshold == pytest.approx(tau, rel=1e-12)
    for (name, _), expected in zip(seq_layers(tree), keep):
        np.testing.assert_array_equal(plan[name].keep, expected)
    assert plan.n_kept == sum(int(k.sum()) for k in keep)


def test_last_scores():
    rng = np.random.default_rng(32)
    tree = s5_tree(rng, n_layers=2, P=5, H=3)
    scores = last_scores(tree, "last-official")
    raw = last_scores(tree, "last-official", normalized=False)
    for name, seq in seq_layers(tree):
        assert scores[name].max() == 1.0
        np.testing.assert_allclose(raw[name], released_raw_scores(seq), rtol=1e-12)
        np.testing.assert_allclose(scores[name], released_lamp(released_raw_scores(seq)), rtol=1e-12)
    model = ssmtools.load(tree)
    by_model = last_scores(model)
    by_systems = last_scores({name: layer.system for name, layer in model.items()})
    for name in by_model:
        np.testing.assert_array_equal(by_model[name], by_systems[name])


def test_output_file_and_errors(tmp_path):
    rng = np.random.default_rng(33)
    tree = s5_tree(rng, n_layers=2, P=6, H=3)
    target = tmp_path / "pruned.npz"
    pruned, plan = last_prune(tree, 0.25, "aire", output=target)
    reloaded = ssmtools.load(target)
    assert reloaded.n_states == plan.n_kept == 12 - math.floor(0.25 * 12)
    with pytest.raises(ValueError, match="not in \\[0, 1\\)"):
        last_prune(tree, 1.5)
    with pytest.raises(ValueError, match="already an SSMModel"):
        last_prune(ssmtools.load(tree), 0.5, conj_sym=False)


def test_s5_pytorch_package_loads_and_runs_pruned_weights():
    torch = pytest.importorskip("torch")
    s5 = pytest.importorskip("s5")
    H, P = 4, 12
    for bidir in (False, True):
        torch.manual_seed(0)
        module = s5.S5(width=H, state_width=P, bidir=bidir)
        with torch.no_grad():
            for param in module.parameters():
                param.add_(0.2 * torch.randn_like(param))
        state = module.state_dict()
        pruned, plan = last_prune(state, 0.25)
        masked, _ = last_prune(state, 0.25, mask=True)
        kept = plan.n_kept
        assert kept == 9 and pruned["seq.Lambda"].shape == (kept,)
        small = s5.S5(width=H, state_width=kept, bidir=bidir)
        small.load_state_dict(pruned)
        full = s5.S5(width=H, state_width=P, bidir=bidir)
        full.load_state_dict(masked)
        u = torch.randn(1, 50, H)
        with torch.no_grad():
            y_small, y_full = small(u), full(u)
        assert torch.allclose(y_small, y_full, atol=1e-5, rtol=0), float((y_small - y_full).abs().max())


def s4d_tree(rng, H=3, N2=6):
    return {
        "layers.0.D": rng.normal(size=H),
        "layers.0.kernel.log_dt": rng.uniform(-4, -1, H),
        "layers.0.kernel.log_A_real": np.log(rng.uniform(0.1, 1.0, (H, N2))),
        "layers.0.kernel.A_imag": rng.uniform(0, 10, (H, N2)),
        "layers.0.kernel.C": rng.normal(size=(H, N2, 2)),
    }


def simulate_s4d(params, u):
    """Minimal S4D by its recurrence (model_formats.md §3): per channel, ZOH, y = 2Re(Σ C x) + D u."""
    A = -np.exp(params["layers.0.kernel.log_A_real"]) + 1j * params["layers.0.kernel.A_imag"]
    dt = np.exp(params["layers.0.kernel.log_dt"])[:, None]
    lam = np.exp(dt * A)
    B = (lam - 1) / A
    C = params["layers.0.kernel.C"][..., 0] + 1j * params["layers.0.kernel.C"][..., 1]
    x = np.zeros(A.shape, dtype=complex)
    y = np.zeros_like(u)
    for k in range(u.shape[0]):
        x = lam * x + B * u[k][:, None]
        y[k] = 2 * np.sum(C * x, axis=1).real + params["layers.0.D"] * u[k]
    return y


def test_s4d_state_units_physical_and_channel_units_masked():
    rng = np.random.default_rng(34)
    params = s4d_tree(rng)
    pruned, plan = last_prune(params, 0.5)  # units="auto" -> "state": the same states leave every channel
    assert plan.units == "state" and pruned["layers.0.kernel.C"].shape == (3, 3, 2)
    masked, _ = last_prune(params, 0.5, mask=True, units="state")
    u = rng.standard_normal((L, 3))
    np.testing.assert_allclose(simulate_s4d(pruned, u), simulate_s4d(masked, u), atol=1e-12, rtol=0)
    _, channel_plan = last_prune(params, 0.5, mask=True)
    assert channel_plan.units == "channel-state" and channel_plan.n_removed == 9
    with pytest.raises(ValueError, match="same number of kept states in every channel|units"):
        last_prune(params, 0.4, units="channel-state")


@pytest.mark.parametrize("order_allocation", ["global", "uniform"])
def test_balanced_truncation_written_back(order_allocation):
    control = pytest.importorskip("control")
    rng = np.random.default_rng(35)
    tree = s5_tree(rng, n_layers=3, P=8, H=3)
    pruned, plan = last_prune(tree, 0.5, "balanced", criterion_options={"order_allocation": order_allocation})
    before, after = ssmtools.load(tree), ssmtools.load(pruned)
    assert plan.criterion == "balanced" and plan.n_kept == after.n_states < before.n_states
    slots = [int(layer.keep.sum()) for layer in plan.layers]
    assert sum(slots) == 24 - 12  # the ratio is met exactly in Hankel slots
    if order_allocation == "uniform":
        assert slots == [4, 4, 4]
    for entry in plan.layers:
        a, b = before[entry.name].system, after[entry.name].system
        assert entry.n_kept == b.n_states
        error, _ = control.linfnorm(a.to_control() - b.to_control(), tol=1e-12)
        assert entry.hinf_error == pytest.approx(error, rel=1e-7)
        hsv = ssmtools.hankel_singular_values(a)
        r = 2 * int(entry.keep.sum())
        assert hsv[r] * (1 - 1e-9) <= error <= 2 * hsv[r:].sum() * (1 + 1e-9)  # Enns / Glover bounds
    with pytest.raises(ValueError, match="no state keep-mask"):
        _ = plan.keep
    with pytest.raises(ValueError, match="mask=True"):
        last_prune(tree, 0.5, "balanced", mask=True)
    with pytest.raises(ValueError, match="bidirectional"):
        last_prune(s5_tree(rng, n_layers=1, P=4, H=2, bidirectional=True), 0.5, "balanced")


def test_readme_last_quick_start_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## LAST pruning quick start.*?```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    plan, pruned = namespace["plan"], namespace["pruned"]
    assert plan.n_removed == 12 and pruned["layers_0"]["seq"]["Lambda_re"].shape[0] < 8
    assert ssmtools.PruningPlan.from_json(tmp_path / "plan.json").to_json() == plan.to_json()
    assert set(namespace["scores"]) == set(plan.keep)

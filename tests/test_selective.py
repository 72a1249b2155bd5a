"""Calibration of Mamba / Mamba-2 models: the streamed statistics against brute-force sums over trajectories written
here, the views against their definitions and closed-form norms, the d_state plan's constraint and its effect."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ssmtools
from ssmtools.calibration import calibrate, calibrated, evaluate_keep, read_module
from ssmtools.errors import ArgumentError, OptionError
from ssmtools.pruning import selective_prune_plan
from ssmtools.selective import CHUNK, SelectiveStats, scan_inputs

from .adapters.test_mamba import D_MODEL, N, hf_mamba, hf_mamba2, mambapy_model

T = 12


def brute_energies(p, x):
    """Σ_t h_t² and Σ_t q_t, q_t = Σ_{k≥t} C_k² Π_{j=t+1..k} exp(2Δ_j A), by the definitions (O(T²) loops)."""
    s = scan_inputs(p, x)
    A, g = p.channel_A(), p.channel_group()
    h, hs = np.zeros(A.shape), []
    for t in range(len(x)):
        h = np.exp(s.delta[t][:, None] * A) * h + (s.delta[t] * s.u[t])[:, None] * s.B[t][g]
        hs.append(h.copy())
    q_total = np.zeros(A.shape)
    for t in range(len(x)):
        for k in range(t, len(x)):
            phi = np.exp(2 * A * s.delta[t + 1 : k + 1].sum(0)[:, None])
            q_total += s.C[k][g] ** 2 * phi
    return np.sum(np.square(hs), axis=0), q_total, s


@pytest.mark.parametrize(
    ("build", "backend"),
    [(hf_mamba, "numpy"), (hf_mamba2, "numpy"), (mambapy_model, "numpy"), (hf_mamba2, "torch")],
)
def test_streamed_statistics_match_brute_force(build, backend):
    m = build()
    model = read_module(m)
    rng = np.random.default_rng(0)
    if build is mambapy_model:
        inputs = rng.standard_normal((3, T, D_MODEL))
    else:
        inputs = rng.integers(0, 40, (3, T))
    budget = 2 * T + 5  # two whole sequences and a cut third
    cal = calibrate(m, inputs, max_tokens=budget, batch_size=2, backend=backend)  # torch: float64 here
    assert cal.tokens == budget
    name = next(iter(model))
    p = model[name].params
    captured = {}

    def grab(mod, args, kwargs):
        captured.setdefault("x", args[0] if args else kwargs["hidden_states"])

    handle = dict(m.named_modules())[name].register_forward_pre_hook(grab, with_kwargs=True)
    with torch.no_grad():
        m(torch.as_tensor(inputs)) if build is mambapy_model else m(input_ids=torch.as_tensor(inputs))
    handle.remove()
    x = captured["x"].double().numpy()
    h2, q, deltas, dbs, cs = 0, 0, [], [], []
    for b, length in ((0, T), (1, T), (2, 5)):
        e_h, e_q, s = brute_energies(p, x[b, :length])
        h2, q = h2 + e_h, q + e_q
        deltas.append(s.delta)
        dbs.append(s.delta[:, :, None] * s.B[:, p.channel_group()])
        cs.append(s.C[:, p.channel_group()])
    stats = cal.stats[name]
    np.testing.assert_allclose(stats.input_energy, h2 / budget, rtol=1e-10)
    np.testing.assert_allclose(stats.output_energy, q / budget, rtol=1e-10)
    np.testing.assert_allclose(stats.gramian_scores, np.sqrt(h2 * q) / budget, rtol=1e-10)
    # the averaged view: poles exp(mean Δ·A), B̄ = mean Δ·B, C = mean C
    view = calibrated(model, cal, "averaged")[name].system
    mean_delta = np.concatenate(deltas).mean(0)
    np.testing.assert_allclose(view.poles.real, np.exp(mean_delta[:, None] * p.channel_A()), rtol=1e-12)
    np.testing.assert_allclose(view.B[..., 0].real, np.concatenate(dbs).mean(0), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(view.C[:, 0, :].real, np.concatenate(cs).mean(0), rtol=1e-10, atol=1e-14)


def test_frozen_view_norms_are_the_single_pole_closed_form():
    m = hf_mamba()
    model = read_module(m)
    cal = calibrate(m, np.random.default_rng(1).integers(0, 40, (2, T)), n_samples=4)
    layer = calibrated(model, cal, "frozen", sample=2)["backbone.layers.0.mixer"]
    assert layer.view == "frozen"
    delta, B, C = layer.stats.samples[2]
    lam = np.exp(delta[:, None] * layer.params.A)
    # SISO real pole in (0, 1), y = z·c·b/(z − λ): peak |c·Δb|/(1 − λ) at z = 1; H2 = |c·Δb|/√(1 − λ²)
    gain = np.abs(C[0] * delta[:, None] * B[0])
    np.testing.assert_allclose(ssmtools.state_hinf_norms(layer.system), gain / (1 - lam), rtol=1e-9)
    np.testing.assert_allclose(ssmtools.state_h2_norms(layer.system), gain / np.sqrt(1 - lam**2), rtol=1e-9)
    with pytest.raises(ArgumentError, match="sample=9"):
        calibrated(model, cal, "frozen", sample=9)


def test_d_state_plan_is_uniform_and_its_checkpoint_reloads():
    m = hf_mamba2()
    model = read_module(m)
    ids = np.random.default_rng(2).integers(0, 40, (2, T))
    cal = calibrate(m, ids)
    cm = calibrated(model, cal, "averaged")
    plan = selective_prune_plan(cm, 0.4, "gramian")  # ⌊0.4·6⌋ = 2 states per layer
    kept = {name: keep[0].sum() for name, keep in plan.keep.items()}
    assert set(kept.values()) == {N - 2} and all(np.all(k == k[:1]) for k in plan.keep.values())
    pruned = model.apply(plan.keep)
    small = hf_mamba2(state_size=N - 2)
    small.load_state_dict(pruned.params, strict=True)
    # its effect on the batch: keep-all changes nothing; the masked model is the pruned one
    effect = evaluate_keep(m, model, {n: np.ones_like(k) for n, k in plan.keep.items()}, ids)
    assert max(effect.output_error.values()) == 0.0 and effect.loss == effect.loss_before
    effect = evaluate_keep(m, model, plan.keep, ids)
    with torch.no_grad():
        loss_small = float(small(input_ids=torch.as_tensor(ids), labels=torch.as_tensor(ids)).loss)
    assert effect.loss == pytest.approx(loss_small, rel=1e-6) and min(effect.output_error.values()) > 0
    free = selective_prune_plan(cm, 0.4, "gramian", uniform=False, errors=False)
    assert sum(k[0].sum() for k in free.keep.values()) == 2 * N - int(0.4 * 2 * N)
    with pytest.raises(ArgumentError, match="no calibration statistics"):
        selective_prune_plan(model, 0.5, "gramian")


def test_stats_need_tokens():
    with pytest.raises(ArgumentError, match="no calibration token"):
        _ = SelectiveStats(4, 2).input_energy


@pytest.mark.parametrize("build", [hf_mamba, hf_mamba2])
def test_chunked_energies_and_torch_backend_match_brute_force(build):
    model = read_module(build())
    p = next(iter(model.values())).params
    x = np.random.default_rng(1).standard_normal((2 * CHUNK + 7, D_MODEL))  # several chunks, a cut last one
    h2, q, s = brute_energies(p, x)
    results = {}
    for options in (
        {},
        {"backend": "torch"},
        {"backend": "torch", "dtype": "float32"},
        {"backend": "torch", "device": "cpu"},
    ):
        stats = SelectiveStats(p.d_inner, p.d_state, p.n_groups)
        stats.update(p, s, **options)
        results[str(options)] = stats
        rtol = 1e-5 if options.get("dtype") == "float32" else 1e-10
        np.testing.assert_allclose(stats.sum_h2, h2, rtol=rtol, atol=rtol * np.abs(h2).max())
        np.testing.assert_allclose(stats.sum_q, q, rtol=rtol)
    assert np.array_equal(
        results["{}"].gramian_scores.argsort(None), results["{'backend': 'torch'}"].gramian_scores.argsort(None)
    )


def test_update_backend_options_are_checked():
    model = read_module(hf_mamba())
    p = next(iter(model.values())).params
    s = scan_inputs(p, np.zeros((3, D_MODEL)))
    stats = SelectiveStats(p.d_inner, p.d_state)
    with pytest.raises(OptionError, match="backend"):
        stats.update(p, s, backend="jax")
    with pytest.raises(OptionError, match="dtype"):
        stats.update(p, s, backend="torch", dtype="float16")
    with pytest.raises(ArgumentError, match="backend='torch'"):
        stats.update(p, s, dtype="float32")
    assert stats.tokens == 0

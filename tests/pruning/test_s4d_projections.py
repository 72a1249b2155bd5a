"""Projections on a real S4D model: every channel filled to its budget, stable channels kept stable, strict reloads."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import ssmtools
from ssmtools.pruning import PruningPlan, get_reduction
from tests.test_pruning_benchmark import run

LENGTH = run.TASKS["mnist1d"].length


@pytest.fixture(scope="module")
def params() -> dict[str, torch.Tensor]:
    """The benchmark's S4D classifier at its real size (H = 32, 16 modes per channel, S4D-Lin initialisation)."""
    torch.manual_seed(0)
    model = run.Classifier("s4d", [run.STATES["s4d"]] * run.DEPTH, 10, run.WIDTH)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _prune(params: dict, ratio: float, reduction: str) -> tuple[dict, PruningPlan]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned, plan = ssmtools.last_prune(
            params,
            ratio,
            "balanced",
            criterion_options={"horizon": LENGTH},
            reduction=reduction,
            reduction_options={"horizon": LENGTH},
            errors=False,
        )
    return {k: torch.as_tensor(np.asarray(v)) for k, v in pruned.items()}, plan


def _reload(pruned: dict) -> run.Classifier:
    model = run.Classifier("s4d", run.state_sizes("s4d", pruned), 10, run.WIDTH)
    model.load_state_dict(pruned, strict=True)
    return model


@pytest.mark.parametrize("ratio", run.RATIOS_FULL[1:] + [0.95])
def test_every_ratio_prunes_writes_back_and_reloads_strictly(params: dict, ratio: float) -> None:
    pruned, plan = _prune(params, ratio, "balanced-truncation")
    model = _reload(pruned)
    for index, layer in enumerate(plan.layers):
        assert layer.n_kept == layer.n_allocated  # every channel holds exactly its budget
        assert 0 <= layer.n_padded < layer.n_kept
        modes = int(pruned[f"seqs.{index}.kernel.log_A_real"].shape[1])
        assert layer.n_kept == run.WIDTH * modes
    assert plan.realized_ratio == pytest.approx(1 - sum(run.state_sizes("s4d", pruned)) / (run.DEPTH * 16))
    # independent of the plan: the rebuilt torch kernel is the impulse response of the unfilled balanced truncation
    original = ssmtools.load(params)["seqs.0.kernel"].system
    k = run.state_sizes("s4d", pruned)[0]
    reference = ssmtools.balanced_truncation(original, states=k, horizon=LENGTH, stable=True)
    with torch.no_grad():
        kernel = model.seqs[0].kernel(LENGTH).double().numpy()  # (H, L)
    kernel[:, 0] += pruned["seqs.0.D"].double().numpy()
    for h, system in enumerate(reference.systems):
        response = ssmtools.impulse_response(system, LENGTH)[:, 0, 0]
        np.testing.assert_allclose(kernel[h], response, rtol=1e-4, atol=1e-5 * np.max(np.abs(response)))


@pytest.mark.parametrize(("reduction", "ratio"), [("singular-perturbation", 0.6), ("h2-optimal", 0.5)])
def test_other_projections_reload_strictly(params: dict, reduction: str, ratio: float) -> None:
    pruned, plan = _prune(params, ratio, reduction)
    _reload(pruned)
    assert all(layer.n_kept == layer.n_allocated for layer in plan.layers)
    reread = ssmtools.load({k: v.numpy() for k, v in pruned.items()})
    for layer in reread.values():
        assert np.all(layer.system.stability_margin > 0)


def test_filler_states_have_zero_gain_and_are_recorded_in_the_plan(params: dict) -> None:
    pruned, plan = _prune(params, 0.3, "balanced-truncation")
    padded = {layer.name: layer.n_padded for layer in plan.layers if layer.n_padded}
    assert padded  # this model's channels re-diagonalise to fewer states than the budget at 30 %
    assert "zero-gain filler states" in str(plan)
    again = PruningPlan.from_json(plan.to_json())
    assert [layer.n_padded for layer in again.layers] == [layer.n_padded for layer in plan.layers]
    reread = ssmtools.load({k: v.numpy() for k, v in pruned.items()})
    for name, count in padded.items():
        system = reread[name].system
        silent = (np.abs(system.B[..., 0]) == 0) | (np.abs(system.C[..., 0, :]) == 0)
        assert int(np.count_nonzero(silent)) >= count


def test_stable_channels_stay_stable_under_finite_horizon_truncation(params: dict) -> None:
    system = ssmtools.load(params)["seqs.0.kernel"].system
    assert np.all(system.stability_margin > 0)
    plain = ssmtools.balanced_truncation(system, states=2, horizon=LENGTH)
    left = [h for h, r in enumerate(plain.systems) if np.any(r.stability_margin <= 0)]
    assert left  # finite-horizon truncation alone moves poles of some stable channels out of the circle
    kept = ssmtools.balanced_truncation(system, states=2, horizon=LENGTH, stable=True)
    for h, r in enumerate(kept.systems):
        assert np.all(r.stability_margin > 0)
        if h not in left:  # channels that stayed stable are untouched
            np.testing.assert_array_equal(r.poles, plain.systems[h].poles)
    infinite = ssmtools.balanced_truncation(system[left[0]], states=2)
    np.testing.assert_allclose(np.sort_complex(kept.systems[left[0]].poles), np.sort_complex(infinite.system.poles))


def test_keep_stable_false_restores_the_plain_finite_horizon_reduction(params: dict) -> None:
    model = ssmtools.load(params)
    layer = model["seqs.0.kernel"]
    keep = np.zeros(layer.system.poles.shape, dtype=bool)
    keep[:, :2] = True
    loose = get_reduction("balanced-truncation", horizon=LENGTH, keep_stable=False).reduce(layer, keep)
    assert any(np.any(r.stability_margin <= 0) for r in loose.systems)
    strict = get_reduction("balanced-truncation", horizon=LENGTH).reduce(layer, keep)
    assert all(np.all(r.stability_margin > 0) for r in strict.systems)

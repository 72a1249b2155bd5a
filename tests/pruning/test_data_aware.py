"""``"empirical-balanced"`` (data-aware): the empirical input Gramian against a brute-force state simulation and
the closed-form finite-horizon Gramian, the reduction through ``last_prune``, and what the data buys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ssmtools
from ssmtools import DiagonalSSM
from ssmtools.pruning import get_reduction, last_prune
from ssmtools.pruning.data_aware import calibrate_module, empirical_gramian, register_calibration
from ssmtools.systems import augmented_realization
from tests.conftest import simulate

from .reference import s5_tree
from .test_reductions import LAYER0


def random_layer(rng, n=6, m=2, p=2, output="real"):
    poles = rng.uniform(0.3, 0.97, n) * np.exp(1j * rng.uniform(-3, 3, n))
    B = rng.normal(size=(n, m)) + 1j * rng.normal(size=(n, m))
    C = rng.normal(size=(p, n)) + 1j * rng.normal(size=(p, n))
    return DiagonalSSM(poles, B, C, np.eye(p, m), dt=True, output=output, state_includes_input=True)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_empirical_gramian_matches_a_brute_force_state_simulation(output):
    rng = np.random.default_rng(21)
    system = random_layer(rng, output=output)
    u = rng.normal(size=(3, 25, 2))
    lam, B, _ = augmented_realization(system)
    expected = np.zeros((lam.size, lam.size), dtype=complex)
    for s in range(3):
        x = np.zeros(lam.size, dtype=complex)
        for t in range(25):
            x = lam * x + B @ u[s, t]
            expected += np.outer(x, np.conj(x))
    np.testing.assert_allclose(empirical_gramian(system, u), expected / 75, rtol=1e-12, atol=1e-14)


def test_unit_impulses_give_the_finite_horizon_gramian():
    rng = np.random.default_rng(22)
    system = random_layer(rng)
    T = 30
    u = np.zeros((2, T, 2))
    u[0, 0, 0] = u[1, 0, 1] = 1.0
    P = empirical_gramian(system, u) * (2 * T)
    np.testing.assert_allclose(P, ssmtools.gramians(system, horizon=T)[0], rtol=1e-10, atol=1e-12)


def lowpass(rng, shape, pole=0.95):
    noise = rng.normal(size=shape)
    out = np.zeros(shape)
    for t in range(shape[1]):
        out[:, t] = (pole * out[:, t - 1] if t else 0.0) + noise[:, t]
    return out


def test_data_aware_reduction_fits_the_budget_and_beats_data_free_on_its_data():
    rng = np.random.default_rng(23)
    tree = s5_tree(rng, n_layers=1, P=8, H=3)
    system = ssmtools.load(tree)[LAYER0].system
    u = lowpass(rng, (16, 60, 3))
    key = register_calibration({LAYER0: u})
    pruned, plan = last_prune(
        tree, 0.5, "balanced", reduction="empirical-balanced", reduction_options={"calibration": key}, errors=False
    )
    assert plan.reduction == "empirical-balanced" and plan.reduction_options["calibration"] == key
    data_aware = ssmtools.load(pruned)[LAYER0].system
    free = ssmtools.load(last_prune(tree, 0.5, "balanced", errors=False)[0])[LAYER0].system
    assert data_aware.n_states == free.n_states == 4

    def output_error(reduced):
        return sum(np.sum((simulate(system, seq) - simulate(reduced, seq)) ** 2) for seq in u)

    assert output_error(data_aware) < output_error(free)


def test_calibrate_module_records_the_layer_inputs_through_pre_hooks():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    batch = torch.randn(4, 10, 3)
    key = calibrate_module(module, batch, ["1"])
    with torch.no_grad():
        expected = module[0](batch).numpy()
    reduction = get_reduction("empirical-balanced", calibration=key)
    np.testing.assert_allclose(
        reduction._inputs(ssmtools.SSMLayer("1", random_layer(np.random.default_rng(0), m=3))), expected
    )
    with pytest.raises(ValueError, match="register_calibration"):
        get_reduction("empirical-balanced").reduce(
            ssmtools.SSMLayer("1", random_layer(np.random.default_rng(0))), np.arange(6) < 3
        )
    with pytest.raises(ValueError, match="no submodule"):
        calibrate_module(module, batch, ["seq"])
    with pytest.raises(ValueError, match="horizon"):
        get_reduction("empirical-balanced", horizon=40)

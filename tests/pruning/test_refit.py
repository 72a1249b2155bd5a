"""``"balanced-refit"``: C and diagonal D refitted in H2, against brute-force least squares on impulse responses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings, strategies as st

import ssmtools
from ssmtools import DiagonalSSM
from ssmtools.model import SSMLayer
from ssmtools.pruning import available_reductions, get_reduction
from ssmtools.pruning.refit import refit_output


def _layer(seed: int, n: int = 6, m: int = 3, *, sii: bool = True, radius: float = 0.95) -> DiagonalSSM:
    rng = np.random.default_rng(seed)
    poles = rng.uniform(0.3, radius, n) * np.exp(1j * rng.uniform(0.05, 3.0, n))
    B = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
    C = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
    D = np.diag(rng.standard_normal(m))
    return DiagonalSSM(poles, B, C, D, dt=True, output="real", state_includes_input=sii)


def _responses(poles, B, C, D, steps, sii):
    """h_k = Re(C Λ^k B) (+ D at k = 0) with state includes input; Re(C Λ^{k−1} B), h_0 = D otherwise (numpy only)."""
    out = []
    for k in range(steps):
        power = k if sii else k - 1
        state = np.real(C @ (poles[:, None] ** power * B)) if power >= 0 else np.zeros((C.shape[0], B.shape[1]))
        out.append(state + (D if k == 0 else 0))
    return np.array(out)  # (steps, p, m)


def _brute_force(original: DiagonalSSM, reduced: DiagonalSSM, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Row by row: unknowns (Re c_j, Im c_j, d_j), one equation per (k, input) of the truncated response."""
    sii = original.state_includes_input
    target = _responses(original.poles, original.B, original.C, original.D, steps, sii)
    r, m = reduced.n_states, reduced.n_inputs
    C, D = np.zeros((m, r), complex), np.zeros((m, m))
    for j in range(m):
        columns = []
        for i in range(r):
            e = np.zeros(r)
            e[i] = 1
            columns.append(_responses(reduced.poles, reduced.B, e[None, :], np.zeros((1, m)), steps, sii)[:, 0, :])
            columns.append(_responses(reduced.poles, reduced.B, 1j * e[None, :], np.zeros((1, m)), steps, sii)[:, 0, :])
        d = np.zeros((steps, m))
        d[0, j] = 1
        columns.append(d)
        design = np.stack([c.ravel() for c in columns], axis=1)
        solution = scipy.linalg.lstsq(design, target[:, j, :].ravel())[0]
        C[j] = solution[0 : 2 * r : 2] + 1j * solution[1 : 2 * r : 2]
        D[j, j] = solution[-1]
    return C, D


def _h2_squared(original, reduced, steps):
    sii = original.state_includes_input
    a = _responses(original.poles, original.B, original.C, original.D, steps, sii)
    b = _responses(reduced.poles, reduced.B, reduced.C, reduced.D, steps, sii)
    return float(np.sum((a - b) ** 2))


@pytest.mark.parametrize("sii", [True, False])
@pytest.mark.parametrize("horizon", [12, None])
def test_refit_matches_brute_force_least_squares(sii: bool, horizon: int | None) -> None:
    original = _layer(3, sii=sii, radius=0.9)
    start = ssmtools.balanced_truncation(original, states=3, horizon=horizon).system
    fitted = refit_output(original, start, horizon=horizon)
    steps = horizon if horizon is not None else 600  # 0.9^600 ≈ 1e-27: the infinite sum to float64
    C, D = _brute_force(original, start, steps)
    np.testing.assert_allclose(fitted.C, C, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fitted.D, D, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(fitted.poles, start.poles)
    np.testing.assert_array_equal(fitted.B, start.B)
    assert _h2_squared(original, fitted, steps) <= _h2_squared(original, start, steps)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), states=st.integers(1, 5), sii=st.booleans())
def test_never_worse_in_h2_than_balanced_truncation(seed: int, states: int, sii: bool) -> None:
    original = _layer(seed, sii=sii)
    bt = get_reduction("balanced-truncation")
    refit = get_reduction("balanced-refit")
    keep = np.arange(original.n_states) < states
    layer = SSMLayer(name="x", system=original)
    (_, [plain]), (_, [better]) = bt.reduce_layer(layer, keep), refit.reduce_layer(layer, keep)
    steps = 800
    assert _h2_squared(original, better, steps) <= _h2_squared(original, plain, steps) * (1 + 1e-10) + 1e-20
    assert not np.any(better.D * (1 - np.eye(3)))  # D stays diagonal


def test_registered_and_prunes_an_s5_model_end_to_end() -> None:
    assert "balanced-refit" in available_reductions()
    import torch

    from tests.test_pruning_benchmark import run

    torch.manual_seed(0)
    model = run.Classifier("s5", [8] * run.DEPTH, 3, 8)
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned, plan = ssmtools.last_prune(params, 0.5, "balanced", reduction="balanced-refit")
    rebuilt = run.Classifier("s5", run.state_sizes("s5", pruned), 3, 8)
    rebuilt.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in pruned.items()}, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, bt_plan = ssmtools.last_prune(params, 0.5, "balanced")
    for refit_layer, bt_layer in zip(plan.layers, bt_plan.layers):
        assert refit_layer.h2_error <= bt_layer.h2_error * (1 + 1e-9)

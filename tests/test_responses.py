"""Impulse and step responses of diagonal layers against python-control and scipy.signal simulations."""

from __future__ import annotations

import control
import numpy as np
import pytest
import scipy.signal

from ssmtools import (
    ArgumentError,
    ArgumentTypeError,
    BidirectionalSSM,
    DiagonalSSM,
    OptionError,
    impulse_response,
    step_response,
)
from ssmtools.examples import s5_layer_e5

N = 40


def random_plant(seed: int, dt, n=5, m=2, p=3):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    A = (
        A / (1.1 * np.max(np.abs(np.linalg.eigvals(A))))
        if dt
        else A - (np.max(np.linalg.eigvals(A).real) + 0.3) * np.eye(n)
    )
    return control.ss(A, rng.standard_normal((n, m)), rng.standard_normal((p, n)), rng.standard_normal((p, m)), dt)


def control_response(kind, plant, T):
    """python-control's response as ``(k, p, m)``."""
    data = (control.impulse_response if kind == "impulse" else control.step_response)(plant, T=T, squeeze=False)
    return np.moveaxis(np.asarray(data.outputs), -1, 0)


@pytest.mark.parametrize("kind, ours", [("impulse", impulse_response), ("step", step_response)])
def test_discrete_time_matches_control(kind, ours):
    plant = random_plant(1, True)
    sys = DiagonalSSM.from_control(plant)
    expected = control_response(kind, plant, np.arange(N))
    np.testing.assert_allclose(ours(sys, N), expected, rtol=1e-9, atol=1e-10)


def test_state_includes_input_step_matches_scipy_dlsim():
    """The S5 scan x_k = Λx_{k−1} + Bu_k: scipy simulates its real standard form (A, B, CA, CB + D)."""
    layer = s5_layer_e5()
    assert layer.state_includes_input
    real = layer.to_control()
    A, B, C, D = (np.asarray(x) for x in (real.A, real.B, real.C, real.D))
    u = np.zeros((N, layer.n_inputs))
    u[:, 1] = 1.0
    _, y, _ = scipy.signal.dlsim((A, B, C, D, 1), u)
    np.testing.assert_allclose(step_response(layer, N)[:, :, 1], y, rtol=1e-10, atol=1e-12)
    impulse = np.zeros_like(u)
    impulse[0, 0] = 1.0
    _, h, _ = scipy.signal.dlsim((A, B, C, D, 1), impulse)
    np.testing.assert_allclose(impulse_response(layer, N)[:, :, 0], h, rtol=1e-10, atol=1e-12)


def test_complex_output_and_batch_follow_the_recursion():
    """Complex output y = Cx + Du, batched over channels: the responses of the simulated recursion."""
    rng = np.random.default_rng(2)
    poles = 0.9 * np.exp(1j * rng.uniform(0, np.pi, (3, 4))) * rng.uniform(0.5, 1, (3, 4))
    B, C = rng.normal(size=(3, 4, 2)) + 1j * rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 1, 4)) + 0j
    D = rng.normal(size=(3, 1, 2)) + 0j
    for includes in (False, True):
        sys = DiagonalSSM(poles, B, C, D, dt=True, state_includes_input=includes)
        h, s = impulse_response(sys, N), step_response(sys, N)
        assert h.shape == s.shape == (3, N, 1, 2) and np.iscomplexobj(h)
        for ch in range(3):
            for j in range(2):
                for u in (np.eye(N)[0], np.ones(N)):
                    x, y = np.zeros(4, complex), []
                    for k in range(N):
                        if includes:
                            x = poles[ch] * x + B[ch][:, j] * u[k]
                            y.append(C[ch] @ x + D[ch][:, j] * u[k])
                        else:
                            y.append(C[ch] @ x + D[ch][:, j] * u[k])
                            x = poles[ch] * x + B[ch][:, j] * u[k]
                    got = (h if u[1] == 0 else s)[ch, :, :, j]
                    np.testing.assert_allclose(got, np.array(y), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind, ours", [("impulse", impulse_response), ("step", step_response)])
def test_continuous_time_samples_match_control(kind, ours):
    plant = random_plant(3, 0)
    if kind == "impulse":  # the D·δ(t) part has no samples (control warns about it): compare the rest
        plant = control.ss(plant.A, plant.B, plant.C, 0)
    sys = DiagonalSSM.from_control(plant)
    t_step = 0.05
    expected = control_response(kind, plant, np.arange(N) * t_step)
    np.testing.assert_allclose(ours(sys, N, t_step=t_step), expected, rtol=1e-8, atol=1e-10)


def test_continuous_time_integrator_step_is_a_ramp():
    sys = DiagonalSSM([0.0, -1.0], [[2.0], [1.0]], [[1.5, 1.0]], dt=0, output="real")
    t = np.arange(6) * 0.5
    np.testing.assert_allclose(step_response(sys, 6, t_step=0.5)[:, 0, 0], 3.0 * t + (1 - np.exp(-t)), rtol=1e-14)


def test_bad_arguments_say_what_to_do():
    dt_sys, ct_sys = s5_layer_e5(), DiagonalSSM([-1.0], [[1.0]], [[1.0]], dt=0)
    with pytest.raises(ArgumentError, match="positive integer"):
        impulse_response(dt_sys, 0)
    with pytest.raises(OptionError, match="t_step > 0"):
        step_response(ct_sys, 5)
    with pytest.raises(OptionError, match="continuous-time"):
        impulse_response(dt_sys, 5, t_step=0.1)
    with pytest.raises(ArgumentTypeError, match="two-sided"):
        impulse_response(BidirectionalSSM(dt_sys, dt_sys.C), 5)
    with pytest.raises(ArgumentTypeError, match="from_control"):
        step_response(control.ss(-1, 1, 1, 0), 5)

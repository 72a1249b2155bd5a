"""Shared test helpers: random diagonal systems and independent reference computations."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest
from hypothesis import settings

from ssmtools import DiagonalSSM

# CI runs the property tests with a fixed example sequence (reproducible failures); locally they explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

SYSTEM_CASES = [
    dict(dt=True, output="real", state_includes_input=True),
    dict(dt=True, output="real", state_includes_input=False),
    dict(dt=True, output="complex", state_includes_input=True),
    dict(dt=True, output="complex", state_includes_input=False),
    dict(dt=0.1, output="real", state_includes_input=False),
    dict(dt=0, output="real", state_includes_input=False),
    dict(dt=0, output="complex", state_includes_input=False),
]
"""Time domain × output map × state convention: the combinations every norm test covers."""


def case_id(case: dict) -> str:
    """Readable pytest id of one of :data:`SYSTEM_CASES`."""
    return "-".join(f"{key}={value}" for key, value in case.items())


def random_poles(rng: np.random.Generator, shape, *, discrete: bool, min_margin: float = 1e-3, max_margin: float = 0.7):
    """Stable poles whose distance to the stability boundary is log-uniform in [min_margin, max_margin]."""
    margin = np.exp(rng.uniform(np.log(min_margin), np.log(max_margin), shape))
    angle = rng.uniform(-np.pi, np.pi, shape)
    if discrete:
        return (1.0 - margin) * np.exp(1j * angle)
    return -margin + 1j * rng.uniform(-5.0, 5.0, shape)


def random_system(
    seed: int = 0,
    *,
    n: int = 4,
    m: int = 2,
    p: int = 3,
    batch: tuple[int, ...] = (),
    dt: float | bool = True,
    output: str = "real",
    with_d: bool = True,
    state_includes_input: bool = False,
    min_margin: float = 1e-3,
) -> DiagonalSSM:
    """A random stable DiagonalSSM (complex B, C; real D for real output)."""
    rng = np.random.default_rng(seed)
    discrete = dt is True or dt > 0
    poles = random_poles(rng, batch + (n,), discrete=discrete, min_margin=min_margin)
    B = rng.standard_normal(batch + (n, m)) + 1j * rng.standard_normal(batch + (n, m))
    C = rng.standard_normal(batch + (p, n)) + 1j * rng.standard_normal(batch + (p, n))
    D = None
    if with_d:
        D = rng.standard_normal(batch + (p, m))
        if output == "complex":
            D = D + 1j * rng.standard_normal(batch + (p, m))
    return DiagonalSSM(poles, B, C, D, dt=dt, output=output, state_includes_input=state_includes_input)


def simulate(sys: DiagonalSSM, u: np.ndarray) -> np.ndarray:
    """Reference time-domain simulation of one discrete-time system, written from the definition.

    x_k = Λ x_{k−1} + B u_k (state includes input) or x_{k+1} = Λ x_k + B u_k; y = out(C x) + D u.
    """
    x = np.zeros(sys.n_states, dtype=complex)
    outputs = []
    for u_k in u:
        if sys.state_includes_input:
            x = sys.poles * x + sys.B @ u_k
            v = sys.C @ x
        else:
            v = sys.C @ x
            x = sys.poles * x + sys.B @ u_k
        v = v.real if sys.output == "real" else v
        outputs.append(v + sys.D @ u_k)
    return np.array(outputs)


def impulse_response(sys: DiagonalSSM, length: int) -> np.ndarray:
    """Markov parameters h_0..h_{length−1}, shape (length, p, m), by simulating unit impulses."""
    columns = []
    for j in range(sys.n_inputs):
        u = np.zeros((length, sys.n_inputs))
        u[0, j] = 1.0
        columns.append(simulate(sys, u))
    return np.stack(columns, axis=-1)


def sweep_sigma_max(sys: DiagonalSSM, omega: np.ndarray) -> np.ndarray:
    """σ_max(G) on a frequency grid through python-control's own evaluation of ``to_control()``."""
    plant = sys.to_control()
    z = np.exp(1j * omega) if sys.is_discrete else 1j * omega
    response = np.stack([plant(zk) for zk in z])  # (k, p, m)
    return np.linalg.svd(np.atleast_3d(response), compute_uv=False)[:, 0]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)

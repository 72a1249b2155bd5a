"""Small, deterministic example systems for demos, docs and tests (nothing is downloaded)."""

from __future__ import annotations

import numpy as np

from .systems import DiagonalSSM


def zoh_discretize(Lambda: np.ndarray, B_tilde: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order hold of a diagonal CT system, one step per state (math.md §2).

    ``λ̄ = exp(ΛΔ)``, ``B̄_i = (λ̄_i − 1)/λ_i · B̃_i``. Shapes: Lambda (..., P), B_tilde (..., P, H),
    step broadcastable to (..., P). Returns (λ̄, B̄).
    """
    Lambda = np.asarray(Lambda, dtype=complex)
    lam_bar = np.exp(Lambda * step)
    return lam_bar, ((lam_bar - 1.0) / Lambda)[..., None] * np.asarray(B_tilde)


def s5_layer_e5() -> DiagonalSSM:
    """Worked example E5 of math.md §8: a 2-state S5 layer (conj_sym, ZOH, D = diag(0.3, −0.2))."""
    Lambda = np.array([-0.5 + 1j, -0.1 + 3j])
    B_tilde = np.array([[1, 0], [1j, 1]])
    C_tilde = np.array([[1, 1j], [0.5, -1]])
    lam_bar, B_bar = zoh_discretize(Lambda, B_tilde, np.array([0.1, 0.2]))
    return DiagonalSSM(lam_bar, B_bar, 2 * C_tilde, np.diag([0.3, -0.2]), dt=True, output="real",
                       state_includes_input=True)


def random_s5_model(
    n_layers: int = 4, n_states: int = 16, width: int = 8, *, seed: int = 0
) -> dict[str, DiagonalSSM]:
    """A random S5-style model: ``n_layers`` conj-sym ZOH layers with P = ``n_states`` stored pairs and
    H = ``width`` channels, in the state-includes-input convention with diagonal D.

    Continuous poles ``−exp(U[log 0.02, log 0.5]) + jπk``, steps log-uniform in [1e-3, 0.1],
    lecun-normal-like B̃ and C̃ (the S5 initialisation ranges, model_formats.md §1).
    """
    rng = np.random.default_rng(seed)
    layers = {}
    for index in range(n_layers):
        real = -np.exp(rng.uniform(np.log(0.02), np.log(0.5), n_states))
        imag = np.pi * np.arange(n_states) * rng.uniform(0.5, 1.5)
        step = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), n_states))
        B_tilde = (rng.standard_normal((n_states, width)) + 1j * rng.standard_normal((n_states, width))) / np.sqrt(2 * width)
        C_tilde = (rng.standard_normal((width, n_states)) + 1j * rng.standard_normal((width, n_states))) / np.sqrt(2 * n_states)
        lam_bar, B_bar = zoh_discretize(real + 1j * imag, B_tilde, step)
        layers[f"layers_{index}"] = DiagonalSSM(
            lam_bar, B_bar, 2 * C_tilde, np.diag(rng.standard_normal(width)), dt=True, output="real",
            state_includes_input=True,
        )
    return layers

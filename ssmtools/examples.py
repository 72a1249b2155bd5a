"""Small, deterministic example systems for demos, docs and tests (nothing is downloaded)."""

from __future__ import annotations

import numpy as np

from .errors import UnknownNameError, check_integer
from .systems import DiagonalSSM


def zoh_discretize(Lambda: np.ndarray, B_tilde: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order hold of a diagonal CT system, one step per state.

    ``λ̄ = exp(ΛΔ)``, ``B̄_i = (λ̄_i − 1)/λ_i · B̃_i`` (docs/concepts/derivations.md#zoh).

    Parameters
    ----------
    Lambda : ndarray of complex, shape ``(..., P)``
        Continuous-time poles λ_i (nonzero).
    B_tilde : ndarray, shape ``(..., P, H)``
        Continuous-time input matrix, one row per state.
    step : ndarray of float, broadcastable to ``(..., P)``
        Step Δ_i of each state (time units per sample).

    Returns
    -------
    lam_bar : ndarray of complex, shape ``(..., P)``
        Discrete poles ``exp(λ_i Δ_i)``.
    B_bar : ndarray of complex, shape ``(..., P, H)``
        Discrete input matrix.
    """
    Lambda = np.asarray(Lambda, dtype=complex)
    lam_bar = np.exp(Lambda * step)
    return lam_bar, ((lam_bar - 1.0) / Lambda)[..., None] * np.asarray(B_tilde)


def s5_layer_e5() -> DiagonalSSM:
    """The worked example E5: a 2-state S5 layer (conj_sym, ZOH, D = diag(0.3, −0.2)).

    Its numbers (poles, per-state and layer norms, HSVs) are worked out in
    docs/concepts/derivations.md#worked-example-e5.

    Returns
    -------
    DiagonalSSM
        Discrete time, ``output="real"`` with ``C = 2C̃`` (κ = 2), state includes input, 2 states, 2 inputs
        and 2 outputs.
    """
    Lambda = np.array([-0.5 + 1j, -0.1 + 3j])
    B_tilde = np.array([[1, 0], [1j, 1]])
    C_tilde = np.array([[1, 1j], [0.5, -1]])
    lam_bar, B_bar = zoh_discretize(Lambda, B_tilde, np.array([0.1, 0.2]))
    return DiagonalSSM(
        lam_bar, B_bar, 2 * C_tilde, np.diag([0.3, -0.2]), dt=True, output="real", state_includes_input=True
    )


def random_s5_model(n_layers: int = 4, n_states: int = 16, width: int = 8, *, seed: int = 0) -> dict[str, DiagonalSSM]:
    """A random S5-style model of conjugate-symmetric ZOH layers.

    Each layer is in the state-includes-input convention with diagonal D. Continuous poles
    ``−exp(U[log 0.02, log 0.5]) + jπk``, steps log-uniform in [1e-3, 0.1], lecun-normal-like B̃ and C̃
    (the ranges of the S5 initialisation; Smith et al., ICLR 2023, arXiv 2208.04933).

    Parameters
    ----------
    n_layers : int
        Number of layers.
    n_states : int
        Stored states (conjugate pairs) P per layer.
    width : int
        Channels H (inputs = outputs) per layer.
    seed : int
        Seed of the NumPy random generator: the same seed gives the same model.

    Returns
    -------
    dict of str to DiagonalSSM
        ``{"layers_0": ..., "layers_1": ...}``, each discrete time with ``output="real"`` and ``C = 2C̃``.
    """
    n_layers, n_states = check_integer("n_layers", n_layers), check_integer("n_states", n_states, 1)
    width, seed = check_integer("width", width, 1), check_integer("seed", seed)
    rng = np.random.default_rng(seed)
    layers = {}
    for index in range(n_layers):
        real = -np.exp(rng.uniform(np.log(0.02), np.log(0.5), n_states))
        imag = np.pi * np.arange(n_states) * rng.uniform(0.5, 1.5)
        step = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), n_states))
        B_tilde = (rng.standard_normal((n_states, width)) + 1j * rng.standard_normal((n_states, width))) / np.sqrt(
            2 * width
        )
        C_tilde = (rng.standard_normal((width, n_states)) + 1j * rng.standard_normal((width, n_states))) / np.sqrt(
            2 * n_states
        )
        lam_bar, B_bar = zoh_discretize(real + 1j * imag, B_tilde, step)
        layers[f"layers_{index}"] = DiagonalSSM(
            lam_bar,
            B_bar,
            2 * C_tilde,
            np.diag(rng.standard_normal(width)),
            dt=True,
            output="real",
            state_includes_input=True,
        )
    return layers


INITIALISATIONS = ("S4D-Lin", "S4D-Inv", "HiPPO-LegS", "D-dominated flat")


def _hippo_legs_normal(P: int, H: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (one per conjugate pair) of the normal part of HiPPO-LegS and a B̃ projected on its eigenvectors."""
    N = 2 * P
    q = np.sqrt(1.0 + 2.0 * np.arange(N))
    normal = -0.5 * np.eye(N) - 0.5 * (np.tril(np.outer(q, q), -1) - np.triu(np.outer(q, q), 1))
    lam, V = np.linalg.eig(normal)
    order = np.argsort(-lam.imag)[:P]
    return lam[order], np.conj(V.T)[order] @ (q[:, None] * rng.standard_normal((N, H)) / np.sqrt(N))


def init_layer(kind: str, n_states: int, width: int, *, seed: int = 0) -> DiagonalSSM:
    """One S5-shaped layer (real output, state includes input) with a published pole initialisation.

    Parameters
    ----------
    kind : {"S4D-Lin", "S4D-Inv", "HiPPO-LegS", "D-dominated flat"}
        ``"S4D-Lin"``: λ_n = −1/2 + jπn; ``"S4D-Inv"``: λ_n = −1/2 + j(P/π)(P/(2n + 1) − 1);
        ``"HiPPO-LegS"``: the eigenvalues of the normal part of HiPPO-LegS, B̃ projected on its eigenvectors;
        ``"D-dominated flat"``: S4D-Lin poles, C̃ scaled by 1e-3 and D = I + 1e-2·N(0, 1) on the diagonal.
    n_states : int
        P, the stored conjugate pairs (2P real states).
    width : int
        H inputs and outputs.
    seed : int
        Seed of the steps (log-uniform in [1e-3, 1e-1], ZOH), the lecun-normal B̃, C̃ and D ~ N(0, 1) (diagonal).

    Returns
    -------
    DiagonalSSM
        ``dt=True, output="real", state_includes_input=True``.
    """
    if kind not in INITIALISATIONS:
        raise UnknownNameError(f"kind={kind!r} is not one of {', '.join(INITIALISATIONS)}")
    rng = np.random.default_rng(seed)
    P, H, n = n_states, width, np.arange(n_states)
    B_tilde = (rng.standard_normal((P, H)) + 1j * rng.standard_normal((P, H))) / np.sqrt(2 * H)
    C_tilde = (rng.standard_normal((H, P)) + 1j * rng.standard_normal((H, P))) * np.sqrt(0.5 / P)
    D = np.diag(rng.standard_normal(H))
    step = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), P))
    if kind == "S4D-Inv":
        lam = -0.5 + 1j * (P / np.pi) * (P / (2 * n + 1) - 1)
    elif kind == "HiPPO-LegS":
        lam, B_tilde = _hippo_legs_normal(P, H, rng)
    else:
        lam = -0.5 + 1j * np.pi * n
    if kind == "D-dominated flat":
        C_tilde, D = 1e-3 * C_tilde, np.diag(1.0 + 1e-2 * rng.standard_normal(H))
    lam_bar, B_bar = zoh_discretize(lam, B_tilde, step)
    return DiagonalSSM(lam_bar, B_bar, C_tilde, D, dt=True, output="real", state_includes_input=True)

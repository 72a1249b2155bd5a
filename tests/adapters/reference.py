"""Independent references for the adapter tests, written from model_formats.md / math.md, not from ssmtools.

Nothing here imports ssmtools' adapters: each function runs a layer from its *raw* parameters
(the recurrence or convolution of the family's paper/code) so that the adapters are checked
against the definition rather than against themselves.
"""

from __future__ import annotations

import numpy as np

from ..conftest import simulate as simulate_forward


def f64(module):
    """Cast a torch module's parameters to float64 / complex128 in place (``.double()`` skips complex ones)."""
    import torch

    for param in module.parameters():
        param.data = param.data.to(torch.complex128 if param.is_complex() else torch.float64)
    return module


def simulate(system, u: np.ndarray) -> np.ndarray:
    """ssmtools' convention from its definition: x_k = λ̄x_{k−1} + B̄u_k, y_k = Re(Cx_k) + Du_k (+ backward scan).

    ``u`` (L, m) real; unbatched ``system`` (DiagonalSSM or BidirectionalSSM) with ``output="real"``. The forward
    scan is ``conftest.simulate``; a BidirectionalSSM's backward scan runs in reverse time with the same poles and B̄
    and adds Re(C_backward x^b_k).
    """
    C_backward = getattr(system, "C_backward", None)
    system = getattr(system, "forward", system)
    poles, B = system.poles, system.B
    y = simulate_forward(system, u)
    if C_backward is not None:
        x = np.zeros(poles.shape, dtype=complex)
        for k in range(u.shape[0] - 1, -1, -1):
            x = poles * x + B @ u[k]
            y[k] += (C_backward @ x).real
    return y


def s5_flax_discretize(seq: dict, *, discretization="zoh", step_rescale=1.0, clip_eigs=False):
    """(λ̄, B̄, C̃ (H, P or 2P: [C1 | C2] when bidirectional)) of an official S5 ``seq`` dict, whose complex
    parameters are stored with a trailing axis of 2 (real, imaginary); ZOH or bilinear (model_formats.md §1)."""

    def pair(value):
        return value[..., 0] + 1j * value[..., 1]

    lam_re = np.minimum(seq["Lambda_re"], -1e-4) if clip_eigs else seq["Lambda_re"]
    lam = lam_re + 1j * seq["Lambda_im"]
    B = pair(seq["B"])
    C = np.concatenate([pair(seq["C1"]), pair(seq["C2"])], 1) if "C1" in seq else pair(seq["C"])
    step = step_rescale * np.exp(seq["log_step"][:, 0])
    if discretization == "zoh":
        lam_bar = np.exp(lam * step)
        B_bar = ((lam_bar - 1) / lam)[:, None] * B
    else:
        bl = 1 / (1 - step / 2 * lam)
        lam_bar = bl * (1 + step / 2 * lam)
        B_bar = (bl * step)[:, None] * B
    return lam_bar, B_bar, C


def s5_flax_forward(
    seq: dict, u: np.ndarray, *, conj_sym=True, discretization="zoh", step_rescale=1.0, clip_eigs=False
) -> np.ndarray:
    """One official S5 ``S5SSM`` layer (lindermanlab/S5 s5/ssm.py, model_formats.md §1) on u (L, H)."""
    lam_bar, B_bar, C = s5_flax_discretize(
        seq, discretization=discretization, step_rescale=step_rescale, clip_eigs=clip_eigs
    )
    P = lam_bar.shape[0]
    xs = np.zeros((u.shape[0], P), dtype=complex)
    x = np.zeros(P, dtype=complex)
    for k in range(u.shape[0]):
        x = lam_bar * x + B_bar @ u[k]
        xs[k] = x
    if C.shape[1] == 2 * P:
        xb = np.zeros((u.shape[0], P), dtype=complex)
        x = np.zeros(P, dtype=complex)
        for k in range(u.shape[0] - 1, -1, -1):
            x = lam_bar * x + B_bar @ u[k]
            xb[k] = x
        xs = np.concatenate([xs, xb], axis=1)
    out = xs @ C.T
    y = 2 * out.real if conj_sym else out.real
    return y + seq["D"] * u


def s4d_minimal_forward(kernel: dict, D: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Minimal S4D (state-spaces/s4 models/s4/s4d.py): y = K * u + D u with
    K_h[l] = 2 Re Σ_n C_{h,n} (exp(Δ_h A_{h,n}) − 1)/A_{h,n} · exp(l Δ_h A_{h,n}) [· B_{h,n} if stored];
    u (L, H)."""
    dt = np.exp(kernel["log_dt"])
    A = -np.exp(kernel["log_A_real"]) + 1j * kernel["A_imag"]
    C = kernel["C"][..., 0] + 1j * kernel["C"][..., 1]
    if "B" in kernel:
        C = C * (kernel["B"][..., 0] + 1j * kernel["B"][..., 1])
    dtA = A * dt[:, None]
    L = u.shape[0]
    K = 2 * np.einsum("hn,hnl->hl", C * (np.exp(dtA) - 1) / A, np.exp(dtA[..., None] * np.arange(L))).real
    return _causal_conv(K[None], u)[0] + D * u


def s4d_full_forward(kernel: dict, D: np.ndarray, u: np.ndarray, *, disc="zoh") -> np.ndarray:
    """SSMKernelDiag (state-spaces/s4 src/models/sequence/kernels/ssm.py, default transforms exp/exp/none)
    + FFTConv's D: returns (channels, L, H): y_c = K_c * u + D_c u."""
    dt = np.exp(kernel["inv_dt"])  # (H, 1) or (H, N)
    A = -np.exp(kernel["A_real"]) - 1j * kernel["A_imag"]  # (S, N)
    B = kernel["B"][..., 0] + 1j * kernel["B"][..., 1]  # (1, S, N)
    C = kernel["C"][..., 0] + 1j * kernel["C"][..., 1]  # (c, H, N)
    H = C.shape[1]
    repeat = H // A.shape[0]
    A = np.tile(A, (repeat, 1))
    B = np.tile(B, (1, repeat, 1))
    dtA = dt * A
    if disc == "zoh":
        coef = B * C * (np.exp(dtA) - 1) / A
        dA = np.exp(dtA)
    else:
        coef = B * C / (1 - dtA / 2) * dt
        dA = (1 + dtA / 2) / (1 - dtA / 2)
    L = u.shape[0]
    K = 2 * np.einsum("chn,hnl->chl", coef, dA[..., None] ** np.arange(L)).real
    return _causal_conv(K, u) + D[:, None, :] * u[None]


def _causal_conv(K: np.ndarray, u: np.ndarray) -> np.ndarray:
    """y_c[k, h] = Σ_{l ≤ k} K_c[h, l] u[k − l, h]; K (c, H, L), u (L, H) -> (c, L, H)."""
    L = u.shape[0]
    y = np.zeros((K.shape[0], L, u.shape[1]))
    for k in range(L):
        y[:, k] = np.einsum("chl,lh->ch", K[:, :, : k + 1], u[k::-1])
    return y


def lru_forward(params: dict, u: np.ndarray, *, transposed=False) -> np.ndarray:
    """LRU (Orvieto et al. 2023) from its paper parameters: x_k = λ x_{k−1} + γ⊙(B u_k), y_k = Re(C x_k) + D u_k."""
    lam = np.exp(-np.exp(params["nu_log"]) + 1j * np.exp(params["theta_log"]))
    gamma = np.exp(params["gamma_log"]) if "gamma_log" in params else np.ones(lam.shape)
    B = params["B_re"] + 1j * params["B_im"]
    C = params["C_re"] + 1j * params["C_im"]
    if transposed:
        B, C = B.T, C.T
    D = params["D"]
    D = np.diag(D) if D.ndim == 1 else D
    x = np.zeros(lam.shape, dtype=complex)
    y = np.zeros((u.shape[0], C.shape[0]))
    for k, u_k in enumerate(u):
        x = lam * x + gamma * (B @ u_k)
        y[k] = (C @ x).real + D @ u_k
    return y

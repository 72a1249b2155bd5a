"""Selective (input-dependent) diagonal SSM layers — Mamba and Mamba-2 — and their labelled LTI views.

A Mamba mixer is *not* LTI: its step Δ_t, input map B_t and output map C_t depend on the token. Per channel c
(``d_inner`` of them) and state n (``d_state`` = N), with A = −exp(A_log) (docs/concepts/selective.md#recurrence)::

    h_t[c, n] = exp(Δ_t[c]·A[c, n])·h_{t−1}[c, n] + Δ_t[c]·B_t[g(c), n]·u_t[c]
    y_t[c]    = Σ_n C_t[g(c), n]·h_t[c, n] + D[c]·u_t[c]

Mamba-1: Δ_t = softplus(dt_proj(δ_t)), (δ_t, B_t, C_t) = x_proj(u_t), one group (g = 0).
Mamba-2: one scalar A, D and dt_bias per head, Δ_t = clamp(softplus(dt_t + dt_bias), lo, hi) (``time_step_limit``,
default (0, ∞): no clamp), G groups of (B_t, C_t) and
channel c = h·P + p of head h using group h // (H/G); the scan output then passes a gated RMSNorm.

:class:`SelectiveParams` holds a mixer's arrays (float64), :func:`mixer_forward` is its whole forward pass,
:func:`scan_inputs` / :func:`selective_scan` the two halves of it. An :class:`SelectiveLayer` is an
:class:`~ssmtools.model.SSMLayer` whose ``system`` is one *view* of the time-varying layer, named by ``view``:

- ``"bias"`` (what :func:`ssmtools.load` gives): Δ = softplus(bias) (the step at δ = 0), B = C = 1: the decay
  rates of the states only;
- ``"frozen"`` (:func:`frozen_view`): the LTI system of one token (Δ_t, B_t, C_t frozen);
- ``"averaged"`` (:func:`averaged_view`): mean Δ, mean Δ·B and mean C over calibration tokens.

The empirical-Gramian energies (:class:`SelectiveStats`) are per-state statistics, not a system.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ._backends.torch import torch_module
from .errors import ArgumentError, ShapeError, check_choice
from .model import SSMLayer
from .systems import DiagonalSSM

__all__ = [
    "SelectiveParams",
    "SelectiveLayer",
    "ScanInputs",
    "SelectiveStats",
    "scan_inputs",
    "selective_scan",
    "mixer_forward",
    "bias_view",
    "frozen_view",
    "averaged_view",
    "with_view",
]

Kind = Literal["mamba", "mamba2"]
#: The LTI views of a selective layer, by name (``SelectiveLayer.view``).
VIEWS = ("bias", "frozen", "averaged")


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + eˣ), overflow-safe (torch's ``F.softplus`` with its threshold 20 agrees to float64 rounding)."""
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def silu(x: np.ndarray) -> np.ndarray:
    """x·σ(x)."""
    return x / (1.0 + np.exp(-x))


@dataclass(frozen=True, eq=False)
class SelectiveParams:
    """The arrays of one Mamba / Mamba-2 mixer, float64, in the source package's layout.

    Parameters
    ----------
    kind : {"mamba", "mamba2"}
        Mamba-1 (per-(channel, state) A, ``x_proj``/``dt_proj``) or Mamba-2 (per-head scalar A, ``dt_bias``).
    A : ndarray
        −exp(A_log): ``(d_inner, N)`` (Mamba-1) or ``(H,)`` (Mamba-2).
    D : ndarray
        Skip gain, ``(d_inner,)`` or ``(H,)``.
    in_proj, in_bias : ndarray, ndarray or None
        Input projection (rows: x ‖ z for Mamba-1, z ‖ x ‖ B ‖ C ‖ dt for Mamba-2) and its bias.
    conv_w, conv_b : ndarray, ndarray or None
        Depthwise causal convolution, weight ``(channels, K)`` and bias.
    out_proj, out_bias : ndarray, ndarray or None
        Output projection and its bias.
    d_state : int
        N.
    x_proj, dt_proj_w, dt_proj_b : ndarray or None
        Mamba-1: ``(R + 2N, d_inner)``, ``(d_inner, R)``, ``(d_inner,)``.
    dt_bias, norm_w : ndarray or None
        Mamba-2: ``(H,)`` and the gated RMSNorm weight ``(d_inner,)``.
    n_groups : int
        G (1 for Mamba-1).
    norm_eps : float
        ε of the Mamba-2 gated RMSNorm.
    dt_limit : tuple of float
        Mamba-2: Δ_t is clamped to ``[lo, hi]`` after the softplus (``Mamba2Config.time_step_limit``; (0, ∞): none).
    """

    kind: Kind
    A: np.ndarray
    D: np.ndarray
    in_proj: np.ndarray
    in_bias: np.ndarray | None
    conv_w: np.ndarray
    conv_b: np.ndarray | None
    out_proj: np.ndarray
    out_bias: np.ndarray | None
    d_state: int
    x_proj: np.ndarray | None = None
    dt_proj_w: np.ndarray | None = None
    dt_proj_b: np.ndarray | None = None
    dt_bias: np.ndarray | None = None
    norm_w: np.ndarray | None = None
    n_groups: int = 1
    norm_eps: float = 1e-5
    dt_limit: tuple[float, float] = (0.0, float("inf"))

    @property
    def d_inner(self) -> int:
        """Channels of the scan."""
        return int(self.out_proj.shape[1])

    @property
    def n_heads(self) -> int:
        """H (Mamba-2); d_inner for Mamba-1 (every channel has its own A row)."""
        return int(self.A.shape[0]) if self.kind == "mamba2" else self.d_inner

    @property
    def head_dim(self) -> int:
        """Channels per head, P = d_inner / H (1 for Mamba-1)."""
        return self.d_inner // self.n_heads

    @property
    def dt_rank(self) -> int:
        """R, the rank of Mamba-1's Δ projection (0 for Mamba-2)."""
        return 0 if self.x_proj is None else int(self.x_proj.shape[0] - 2 * self.d_state)

    def channel_A(self) -> np.ndarray:
        """A per (channel, state), ``(d_inner, N)`` (a Mamba-2 head's scalar repeated over its channels and states).

        Returns
        -------
        ndarray, shape ``(d_inner, N)``
        """
        if self.kind == "mamba":
            return self.A
        return np.repeat(self.A, self.head_dim)[:, None] * np.ones(self.d_state)

    def channel_D(self) -> np.ndarray:
        """D per channel, ``(d_inner,)``.

        Returns
        -------
        ndarray, shape ``(d_inner,)``
        """
        return self.D if self.kind == "mamba" else np.repeat(self.D, self.head_dim)

    def channel_group(self) -> np.ndarray:
        """Group g(c) of every channel, ``(d_inner,)``: head h = c // P uses group h // (H/G).

        Returns
        -------
        ndarray of int, shape ``(d_inner,)``
        """
        if self.kind == "mamba":
            return np.zeros(self.d_inner, dtype=np.int64)
        heads = np.arange(self.d_inner) // self.head_dim
        return heads // (self.n_heads // self.n_groups)

    def step(self, pre: np.ndarray) -> np.ndarray:
        """Δ from its pre-activation (Δ bias included): softplus, then Mamba-2's clamp to ``dt_limit``.

        Parameters
        ----------
        pre : ndarray
            dt_proj(δ_t) + bias (Mamba-1) or dt_t + dt_bias (Mamba-2).

        Returns
        -------
        ndarray
        """
        delta = softplus(pre)
        if self.kind == "mamba2" and self.dt_limit != (0.0, float("inf")):
            delta = np.clip(delta, *self.dt_limit)
        return delta

    def bias_step(self) -> np.ndarray:
        """Δ at δ = 0, per channel: softplus of the Δ bias (clamped to ``dt_limit``).

        Returns
        -------
        ndarray, shape ``(d_inner,)``
        """
        bias = self.dt_proj_b if self.kind == "mamba" else self.dt_bias
        assert bias is not None
        return self.step(bias if self.kind == "mamba" else np.repeat(bias, self.head_dim))


@dataclass(frozen=True)
class ScanInputs:
    """What the scan of one sequence sees (float64).

    Parameters
    ----------
    u : ndarray, shape ``(T, d_inner)``
        Scan input (after the convolution and SiLU).
    delta : ndarray, shape ``(T, d_inner)``
        Δ_t per channel.
    B, C : ndarray, shape ``(T, G, N)``
        Input and output maps of every group.
    z : ndarray, shape ``(T, d_inner)``
        Gate.
    """

    u: np.ndarray
    delta: np.ndarray
    B: np.ndarray
    C: np.ndarray
    z: np.ndarray


def _conv(p: SelectiveParams, x: np.ndarray) -> np.ndarray:
    """Depthwise causal convolution (PyTorch ``conv1d`` with ``padding=K−1``, first T outputs), then SiLU."""
    T, K = x.shape[0], p.conv_w.shape[1]
    padded = np.concatenate([np.zeros((K - 1, x.shape[1])), x], axis=0)
    out = sum(p.conv_w[:, k] * padded[k : k + T] for k in range(K))
    if p.conv_b is not None:
        out = out + p.conv_b
    return silu(out)


def scan_inputs(p: SelectiveParams, x: ArrayLike) -> ScanInputs:
    """The scan's input, Δ_t, B_t, C_t and gate for one sequence of mixer inputs.

    Parameters
    ----------
    p : SelectiveParams
        The mixer.
    x : array_like, shape ``(T, d_model)``
        Mixer input (the hidden states after the block's norm).

    Returns
    -------
    ScanInputs
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != p.in_proj.shape[1]:
        raise ShapeError(f"mixer input must be (T, {p.in_proj.shape[1]}), got shape {x.shape}")
    proj = x @ p.in_proj.T + (0.0 if p.in_bias is None else p.in_bias)
    di, N, G = p.d_inner, p.d_state, p.n_groups
    if p.kind == "mamba":
        assert p.x_proj is not None and p.dt_proj_w is not None and p.dt_proj_b is not None
        u, z = _conv(p, proj[:, :di]), proj[:, di:]
        dbc = u @ p.x_proj.T
        R = p.dt_rank
        delta = p.step(dbc[:, :R] @ p.dt_proj_w.T + p.dt_proj_b)
        B, C = dbc[:, R : R + N, None].swapaxes(1, 2), dbc[:, R + N :, None].swapaxes(1, 2)
        return ScanInputs(u, delta, B, C, z)
    assert p.dt_bias is not None
    z, xbc, dt = proj[:, :di], proj[:, di : di + di + 2 * G * N], proj[:, di + di + 2 * G * N :]
    xbc = _conv(p, xbc)
    T = x.shape[0]
    B = xbc[:, di : di + G * N].reshape(T, G, N)
    C = xbc[:, di + G * N :].reshape(T, G, N)
    delta = np.repeat(p.step(dt + p.dt_bias), p.head_dim, axis=1)
    return ScanInputs(xbc[:, :di], delta, B, C, z)


def selective_scan(p: SelectiveParams, s: ScanInputs, keep: ArrayLike | None = None) -> np.ndarray:
    """y_t of the selective recurrence (the module docstring's formula), shape ``(T, d_inner)``.

    Parameters
    ----------
    p : SelectiveParams
        The mixer (A, D and the channel→group map).
    s : ScanInputs
        From :func:`scan_inputs`.
    keep : array_like of bool, shape ``(d_inner, N)`` or ``(N,)``, optional
        States kept; the others get zero input and output gains (the masked model).

    Returns
    -------
    ndarray
    """
    A, g = p.channel_A(), p.channel_group()
    mask = np.ones(A.shape) if keep is None else np.broadcast_to(np.asarray(keep, dtype=float), A.shape)
    h = np.zeros(A.shape)
    y = np.empty_like(s.u)
    for t in range(s.u.shape[0]):
        h = np.exp(s.delta[t][:, None] * A) * h + (s.delta[t] * s.u[t])[:, None] * s.B[t][g] * mask
        y[t] = np.einsum("cn,cn->c", h, s.C[t][g])
    return y + s.u * p.channel_D()


def mixer_forward(p: SelectiveParams, x: ArrayLike, keep: ArrayLike | None = None) -> np.ndarray:
    """The whole mixer: in_proj → conv → scan → gate (Mamba-1) or gated RMSNorm (Mamba-2) → out_proj.

    Parameters
    ----------
    p : SelectiveParams
        The mixer.
    x : array_like, shape ``(T, d_model)`` or ``(batch, T, d_model)``
        Mixer input.
    keep : array_like of bool, optional
        As in :func:`selective_scan` (the masked model).

    Returns
    -------
    ndarray
        The mixer output, shaped like ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([mixer_forward(p, xi, keep) for xi in x])
    s = scan_inputs(p, x)
    y = selective_scan(p, s, keep)
    if p.kind == "mamba":
        y = y * silu(s.z)
    else:
        assert p.norm_w is not None
        y = y * silu(s.z)
        grouped = y.reshape(y.shape[0], p.n_groups, -1)
        grouped = grouped / np.sqrt((grouped**2).mean(-1, keepdims=True) + p.norm_eps)
        y = grouped.reshape(y.shape) * p.norm_w
    return y @ p.out_proj.T + (0.0 if p.out_bias is None else p.out_bias)


def _view_system(p: SelectiveParams, delta: np.ndarray, b: np.ndarray, c: np.ndarray) -> DiagonalSSM:
    """Per channel, SISO: poles exp(Δ_c·A_cn), B̄_cn = b_cn, C_cn = c_cn, D_c (discrete, state includes input)."""
    poles = np.exp(delta[:, None] * p.channel_A())
    return DiagonalSSM(
        poles,
        b[..., None],
        c[:, None, :],
        p.channel_D()[:, None, None],
        dt=True,
        output="real",
        state_includes_input=True,
    )


def bias_view(p: SelectiveParams) -> DiagonalSSM:
    """View ``"bias"``: Δ = softplus(Δ bias), B = C = 1 — the states' decay rates, not the token-dependent gains.

    Parameters
    ----------
    p : SelectiveParams
        The mixer.

    Returns
    -------
    DiagonalSSM
        Batch ``(d_inner,)``, N states, B̄ = Δ, C = 1.
    """
    delta = p.bias_step()
    shape = (p.d_inner, p.d_state)
    return _view_system(p, delta, delta[:, None] * np.ones(shape), np.ones(shape))


def frozen_view(p: SelectiveParams, delta: ArrayLike, B: ArrayLike, C: ArrayLike) -> DiagonalSSM:
    """View ``"frozen"``: the LTI system of one token, Δ_t, B_t and C_t held fixed.

    Parameters
    ----------
    p : SelectiveParams
        The mixer.
    delta : array_like, shape ``(d_inner,)``
        Δ_t per channel.
    B, C : array_like, shape ``(G, N)``
        B_t and C_t of the token.

    Returns
    -------
    DiagonalSSM
        Batch ``(d_inner,)``: poles exp(Δ_t A), B̄ = Δ_t·B_t, C = C_t, D.
    """
    step, g = np.asarray(delta, dtype=float), p.channel_group()
    b, c = np.asarray(B, dtype=float)[g], np.asarray(C, dtype=float)[g]
    return _view_system(p, step, step[:, None] * b, c)


#: Backends of ``SelectiveStats.update``.
BACKENDS = ("numpy", "torch")
#: Tokens whose decays exp(Δ_t·A) and inputs Δ_t·u_t·B_t are formed at once (memory 3·CHUNK·d_inner·N).
CHUNK = 8


def _energies(
    A: np.ndarray, delta: np.ndarray, u: np.ndarray, B: np.ndarray, C: np.ndarray, backend: str, device: Any, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """Σ_t h_t² and Σ_t q_t of one sequence, per (group, channel, state), in one forward pass.

    ``A`` is ``(G, c, N)``, ``delta`` and ``u`` ``(T, G, c)``, ``B`` and ``C`` ``(T, G, N)``. The output side's
    backward recurrence q_t = C_t² + d_{t+1}²·q_{t+1} (d_t = exp(Δ_t·A)) sums to Σ_t q_t = Σ_s C_s²·w_s with the
    forward recurrence w_s = 1 + d_s²·w_{s−1}, w_{−1} = 0 (docs/concepts/selective.md#empirical-gramians), so one
    exponential per token serves both sides. The state is laid out ``(G, N, c)`` (channels innermost: every
    broadcast of Δ_t, u_t, B_t, C_t is contiguous or a scalar); where A is equal over the states (Mamba-2: one A
    per head) the decays are formed per channel only, N times fewer exponentials. Decays and inputs go into
    buffers allocated once, ``CHUNK`` tokens at a time; the recurrence updates in place (torch: fused ``addcmul``;
    NumPy: ``out=``), on NumPy arrays or torch tensors. Returns ``(G, c, N)`` arrays.
    """
    At = np.ascontiguousarray(A.transpose(0, 2, 1))
    if np.all(At == At[:, :1]):
        At = np.ascontiguousarray(At[:, :1])
    arrays = [At, delta[:, :, None, :], (delta * u)[:, :, None, :], B[..., None], (C * C)[..., None]]
    if backend == "torch":
        torch = torch_module()
        kind = torch.float64 if dtype == "float64" else torch.float32
        arrays = [torch.as_tensor(a).to(device=device, dtype=kind) for a in arrays]
        zeros, empty, exp, mul = torch.zeros, torch.empty, torch.exp, torch.mul
        options: dict[str, Any] = {"dtype": kind, "device": device}
        one = torch.ones((), **options)
    else:
        zeros, empty, exp, mul = np.zeros, np.empty, np.exp, np.multiply
        options = {}
    At, dA, x, Bt, c2 = arrays
    T, shape = delta.shape[0], (A.shape[0], A.shape[2], A.shape[1])
    h, h2, w, qs = (zeros(shape, **options) for _ in range(4))
    L = min(CHUNK, T)
    decay, decay2, drive = (
        empty((L, *At.shape), **options),
        empty((L, *At.shape), **options),
        empty((L, *shape), **options),
    )
    tmp = None if backend == "torch" else np.empty(shape)
    for t0 in range(0, T, CHUNK):
        n = min(CHUNK, T - t0)
        dec, dec2, drv, c2n = decay[:n], decay2[:n], drive[:n], c2[t0 : t0 + n]
        exp(mul(dA[t0 : t0 + n], At, out=dec), out=dec)
        mul(dec, dec, out=dec2)
        mul(x[t0 : t0 + n], Bt[t0 : t0 + n], out=drv)
        if backend == "torch":
            for i in range(n):  # fused updates, one pass over (G, N, c) each (elementwise aliasing)
                torch.addcmul(drv[i], h, dec[i], out=h)
                h2.addcmul_(h, h)
                torch.addcmul(one, w, dec2[i], out=w)
                qs.addcmul_(w, c2n[i])
        else:
            for i in range(n):
                h *= dec[i]
                h += drv[i]
                h2 += np.multiply(h, h, out=tmp)
                w *= dec2[i]
                w += 1.0
                qs += np.multiply(w, c2n[i], out=tmp)
    if backend == "torch":
        h2, qs = h2.double().cpu().numpy(), qs.double().cpu().numpy()
    return h2.transpose(0, 2, 1), qs.transpose(0, 2, 1)


def _delta_b_sum(delta: np.ndarray, B: np.ndarray, backend: str, device: Any) -> np.ndarray:
    """Σ_t Δ_t·B_tᵀ per group, ``(G, c, N)`` in float64, from ``delta`` ``(T, G, c)`` and ``B`` ``(T, G, N)``.

    With ``backend="torch"`` the product runs in torch (float64), not in NumPy's BLAS: a NumPy BLAS call between
    torch's elementwise passes leaves the BLAS thread pool spinning against torch's threads, which made the whole
    update 1.5× slower on 2 cores (docs/benchmarks.md, Mamba section).
    """
    if backend == "torch":
        torch = torch_module()
        d, b = (torch.as_tensor(a).to(device=device, dtype=torch.float64) for a in (delta, B))
        return torch.matmul(d.permute(1, 2, 0), b.permute(1, 0, 2)).cpu().numpy()
    return np.matmul(delta.transpose(1, 2, 0), B.transpose(1, 0, 2))


@dataclass
class SelectiveStats:
    """Streaming calibration statistics of one selective layer (memory O(d_inner·N), whatever the token count).

    Update with :meth:`update` per sequence. Sums are over every calibration token t:
    Δ_t, Δ_t·B_t (per channel and state), C_t, C_t², the input-side energy h_t² of the trajectories and the
    output-side energy q_t (docs/concepts/selective.md#empirical-gramians), and ``samples`` frozen tokens
    (Δ_t, B_t, C_t) kept by reservoir sampling for the frozen-token views.

    Parameters
    ----------
    d_inner, d_state, n_groups : int
        The layer's sizes.
    n_samples : int
        Frozen tokens kept.
    seed : int
        Seed of the reservoir sampling.
    """

    d_inner: int
    d_state: int
    n_groups: int = 1
    n_samples: int = 16
    seed: int = 0
    tokens: int = field(init=False, default=0)
    sum_delta: np.ndarray = field(init=False)
    sum_delta_b: np.ndarray = field(init=False)
    sum_c: np.ndarray = field(init=False)
    sum_h2: np.ndarray = field(init=False)
    sum_q: np.ndarray = field(init=False)
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        shape = (self.d_inner, self.d_state)
        self.sum_delta = np.zeros(self.d_inner)
        self.sum_delta_b, self.sum_c = np.zeros(shape), np.zeros(shape)
        self.sum_h2, self.sum_q = np.zeros(shape), np.zeros(shape)
        self._rng = np.random.default_rng(self.seed)

    def update(
        self,
        p: SelectiveParams,
        s: ScanInputs,
        budget: int | None = None,
        *,
        backend: str = "numpy",
        device: Any = None,
        dtype: str = "float64",
    ) -> int:
        """Add one sequence (at most ``budget`` of its tokens, from its start); returns the tokens used.

        Parameters
        ----------
        p : SelectiveParams
            The layer.
        s : ScanInputs
            The sequence's scan inputs.
        budget : int, optional
            Most tokens to add.
        backend : {"numpy", "torch"}
            Where the energies' recurrence runs (the sums stay float64 NumPy arrays).
        device : torch device, optional
            ``backend="torch"`` only (``None``: CPU).
        dtype : {"float64", "float32"}
            Precision of the recurrence with ``backend="torch"`` (float32: relative error about 1e-5).

        Returns
        -------
        int
        """
        check_choice("backend", backend, BACKENDS)
        check_choice("dtype", dtype, ("float64", "float32"))
        if backend == "numpy" and (device is not None or dtype != "float64"):
            raise ArgumentError("device and dtype='float32' need backend='torch'")
        T = s.u.shape[0] if budget is None else min(budget, s.u.shape[0])
        if T <= 0:
            return 0
        # channels of one group are contiguous: work on (G, d_inner/G, N) so B_t[g], C_t[g] broadcast, never copied
        G = self.n_groups
        A = p.channel_A().reshape(G, -1, self.d_state)
        delta, u = s.delta[:T].reshape(T, G, -1), s.u[:T].reshape(T, G, -1)
        self.sum_delta += s.delta[:T].sum(0)
        self.sum_delta_b += _delta_b_sum(delta, s.B[:T], backend, device).reshape(self.sum_delta_b.shape)
        self.sum_c += np.broadcast_to(s.C[:T].sum(0)[:, None, :], A.shape).reshape(self.sum_c.shape)
        h2, qs = _energies(A, delta, u, s.B[:T], s.C[:T], backend, device, dtype)
        self.sum_h2 += h2.reshape(self.sum_h2.shape)
        self.sum_q += qs.reshape(self.sum_q.shape)
        self.sample(s, T)
        return T

    def sample(self, s: ScanInputs, T: int) -> None:
        """Reservoir-sample frozen tokens from the first ``T`` tokens of ``s`` and count them (part of :meth:`update`).

        Parameters
        ----------
        s : ScanInputs
            The sequence.
        T : int
            Its tokens used.
        """
        for t in range(T):
            seen = self.tokens + t
            slot = seen if seen < self.n_samples else int(self._rng.integers(0, seen + 1))
            if slot < self.n_samples:
                item = (s.delta[t].copy(), s.B[t].copy(), s.C[t].copy())
                if slot < len(self.samples):
                    self.samples[slot] = item
                else:
                    self.samples.append(item)
        self.tokens += T

    def _mean(self, total: np.ndarray) -> np.ndarray:
        if self.tokens == 0:
            raise ArgumentError("no calibration token was recorded for this layer; run calibrate() on a batch first")
        return total / self.tokens

    @property
    def input_energy(self) -> np.ndarray:
        """Mean h_t² per (channel, state): the diagonal of the empirical reachability Gramian E[h hᵀ]."""
        return self._mean(self.sum_h2)

    @property
    def output_energy(self) -> np.ndarray:
        """Mean q_t per (channel, state): the diagonal of the time-varying observability Gramian."""
        return self._mean(self.sum_q)

    @property
    def gramian_scores(self) -> np.ndarray:
        """√(mean h² · mean q) per (channel, state): the diagonal analogue of the Hankel singular values."""
        return np.sqrt(self.input_energy * self.output_energy)


def averaged_view(p: SelectiveParams, stats: SelectiveStats) -> DiagonalSSM:
    """View ``"averaged"``: poles exp(mean Δ·A), B̄ = mean(Δ_t·B_t), C = mean C_t over the calibration tokens.

    Parameters
    ----------
    p : SelectiveParams
        The mixer.
    stats : SelectiveStats
        Its calibration statistics.

    Returns
    -------
    DiagonalSSM
    """
    return _view_system(p, stats._mean(stats.sum_delta), stats._mean(stats.sum_delta_b), stats._mean(stats.sum_c))


@dataclass(frozen=True, eq=False)
class SelectiveLayer(SSMLayer):
    """A Mamba / Mamba-2 mixer: its arrays, and ``system``, one labelled LTI *view* of the time-varying layer.

    Parameters
    ----------
    name : str
        The mixer's prefix in the state dict.
    system : DiagonalSSM
        The view named by ``view`` (batch ``(d_inner,)``, N states per channel, state n shared by every channel).
    output_scale : float
        1 (the view's C is the stored C_t).
    params : SelectiveParams or None
        The mixer's arrays.
    view : str
        ``"bias"``, ``"frozen"`` or ``"averaged"`` (see :data:`VIEWS`).
    stats : SelectiveStats or None
        Calibration statistics, once :func:`with_view` attached them.
    """

    params: SelectiveParams | None = None
    view: str = "bias"
    stats: SelectiveStats | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("view", self.view, VIEWS)


def with_view(
    layer: SelectiveLayer, view: str, stats: SelectiveStats | None = None, *, sample: int = 0
) -> SelectiveLayer:
    """``layer`` with ``system`` replaced by the named view (and ``stats`` attached).

    Parameters
    ----------
    layer : SelectiveLayer
        A layer read by the ``mamba`` / ``mamba2`` adapters.
    view : {"bias", "frozen", "averaged"}
        The view.
    stats : SelectiveStats, optional
        Needed by ``"frozen"`` and ``"averaged"``.
    sample : int
        Which sampled token the ``"frozen"`` view freezes.

    Returns
    -------
    SelectiveLayer
    """
    check_choice("view", view, VIEWS)
    p = layer.params
    if p is None:
        raise ArgumentError(f"layer {layer.name!r} has no mixer parameters")
    stats = stats if stats is not None else layer.stats
    if view == "bias":
        system = bias_view(p)
    elif stats is None:
        raise ArgumentError(f"view {view!r} of layer {layer.name!r} needs calibration statistics (calibrate first)")
    elif view == "averaged":
        system = averaged_view(p, stats)
    else:
        if not 0 <= sample < len(stats.samples):
            raise ArgumentError(f"sample={sample} is not one of the {len(stats.samples)} frozen tokens recorded")
        system = frozen_view(p, *stats.samples[sample])
    return replace(layer, system=system, view=view, stats=stats)

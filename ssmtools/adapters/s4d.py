"""S4D (Gu, Gupta, Goel & Ré, NeurIPS 2022, arXiv 2206.11893): ``state-spaces/s4`` layouts.

A layer is H independent SISO systems (one per channel h), each with N/2 stored modes and output
``2·Re`` (docs/concepts/conventions.md; ``output_scale`` 2). Two layouts, told apart by names, are two
registered families:

- ``family="s4d"``, the **minimal** layout (``models/s4/s4d.py``; group ``kernel``): ``log_dt`` (H,), ``log_A_real`` (H, N/2),
  ``A_imag`` (H, N/2), ``C`` (H, N/2, 2), optional ``B`` (H, N/2, 2) (B ≡ 1 when absent); ``D`` (H,) in
  the enclosing module. Δ_h = exp(log_dt_h), A = −exp(log_A_real) + i·A_imag, ZOH.
- ``family="s4d-full"``, the **full** layout (``src/models/sequence/kernels/ssm.py`` ``SSMKernelDiag``): ``inv_dt`` (H, 1) or (H, N/2),
  ``A_real``, ``A_imag`` (S, N/2), ``B`` (1, S, N/2, 2), ``C`` (c, H, N/2, 2); ``D`` (c, H) in the enclosing
  ``FFTConv``. Δ = dt_transform(inv_dt), A = −real_transform(A_real) − i·imag_transform(A_imag), (A, B)
  repeated H/S times along H (channel h uses copy h mod S); ``disc`` zoh or bilinear.

Per channel: λ̄ = exp(Δ_h A), B̄ = (λ̄ − 1)/A · B̃ (ZOH), y = 2·Re(Σ_n C_n x_n) + D u, so the ssmtools
system has batch_shape (H,), poles (H, N/2), B (H, N/2, 1), C (H, c, N/2) = 2·C, D (H, c, 1).
The layer name is the kernel's path (e.g. ``layers.0.kernel``); D is read from its parent.

Until 0.1 one ``"s4d"`` family read both layouts; ``family="s4d"`` on a full-layout tree now raises
a FormatError that names ``"s4d-full"`` (``family="auto"`` picks the right one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ArgumentError, check_choice
from ..model import SSMLayer
from ..systems import DiagonalSSM
from ._base import Adapter, Context, check_real, check_shape, exp_param, real_pair, require, to_pair
from ._discretize import discretize, undiscretize
from ._registry import register_adapter
from ._tree import Group, join_key

TRANSFORMS = ("none", "exp", "softplus", "sigmoid")


def _transform(name: str, x: np.ndarray) -> np.ndarray:
    """``param_transform`` of state-spaces/s4 (a positive parameter under a transform)."""
    if name == "exp":
        return np.exp(x)
    if name == "softplus":
        return np.logaddexp(0.0, x)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    return x


def _inverse(name: str, p: np.ndarray, what: str) -> np.ndarray:
    """Inverse of ``_transform``; ValueError outside its range."""
    if name in ("exp", "softplus", "sigmoid") and np.any(p <= 0):
        raise ArgumentError(f"{what}: a value ≤ 0 cannot be written under transform {name!r} (pole with |λ̄| ≥ 1?)")
    if name == "exp":
        return np.log(p)
    if name == "softplus":
        return np.log(np.expm1(p))
    if name == "sigmoid":
        if np.any(p >= 1):
            raise ArgumentError(f"{what}: a value ≥ 1 cannot be written under the sigmoid transform")
        return np.log(p / (1 - p))
    return p


KAPPA = 2.0  # output 2·Re: system.C = 2·C̃


def _with_d(ctx: Context, group: Group, keys: dict[str, str]) -> dict[str, str]:
    """``keys`` plus the optional ``B`` of the kernel and ``D`` of its enclosing module."""
    if "B" in group.keys:
        keys["B"] = group.keys["B"]
    parent, sep = group.parent()
    d_key = join_key(parent, sep, "D")
    if d_key in ctx.leaves:
        keys["D"] = d_key
    return keys


def _kept_index(layer: SSMLayer, keep: np.ndarray) -> np.ndarray:
    """Kept state indices per channel, (H, k); ValueError unless every channel keeps k states."""
    counts = keep.sum(axis=-1)
    if np.any(counts != counts[0]):
        raise ArgumentError(
            f"layer {layer.name!r}: physical removal needs the same number of kept states in every channel "
            f"(the arrays are (H, N/2)); the keep mask keeps between {counts.min()} and {counts.max()}. "
            "Pass mask=True to zero the pruned states instead, or prune states shared by all channels."
        )
    return np.nonzero(keep)[1].reshape(keep.shape[0], int(counts[0]))


@register_adapter
class S4D(Adapter):
    """The minimal ``S4DKernel`` of ``models/s4/s4d.py``: ``log_dt``, ``log_A_real``, ``A_imag``, ``C`` (, ``B``)."""

    family = "s4d"
    detection_keys = (frozenset({"log_A_real"}),)
    defaults = {"discretization": "zoh"}

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Validate the values of the ``s4d`` settings.

        Parameters
        ----------
        config : Mapping
            The settings, defaults completed.

        Raises
        ------
        OptionError
            A setting has a value the family does not accept.
        """
        if config["discretization"] != "zoh":
            raise ArgumentError("the minimal S4D kernel (log_A_real) is ZOH only; drop discretization=")

    def _keys(self, ctx: Context, prefix: str) -> dict[str, str]:
        group = ctx.groups[prefix]
        return _with_d(ctx, group, require(ctx, group, ["log_dt", "log_A_real", "A_imag", "C"], "S4D"))

    def read_layer(self, ctx: Context, prefix: str, config: Mapping[str, Any]) -> SSMLayer:
        """Read the ``s4d`` layer at ``prefix`` into an [`SSMLayer`][ssmtools.model.SSMLayer].

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree (leaves, their paths, groups by prefix).
        prefix : str
            The layer's prefix in the tree (its name in the model).
        config : Mapping
            The family's settings (defaults completed, see ``defaults``).

        Returns
        -------
        SSMLayer
            The layer in the family's convention, ``output_scale`` set.

        Raises
        ------
        FormatError
            A key is missing, or an array has the wrong shape or dtype.
        """
        keys = self._keys(ctx, prefix)
        a = {name: ctx.array(key) for name, key in keys.items()}
        for name, array in a.items():
            check_real(ctx, keys[name], array, " (complex parts as a trailing axis of 2)" if name in ("B", "C") else "")
        check_shape(ctx, keys["log_A_real"], a["log_A_real"], (None, None), "log(−Re A), (H, N/2)")
        H, N2 = a["log_A_real"].shape
        check_shape(ctx, keys["log_dt"], a["log_dt"], (H,), "log Δ, one step per channel")
        check_shape(ctx, keys["A_imag"], a["A_imag"], (H, N2), "Im A, (H, N/2)")
        check_shape(ctx, keys["C"], a["C"], (H, N2, 2), "C as (H, N/2, 2) real/imag")
        A = -exp_param(ctx, keys["log_A_real"], a["log_A_real"], "−Re A") + 1j * a["A_imag"]
        step = exp_param(ctx, keys["log_dt"], a["log_dt"], "Δ")[:, None] * np.ones(N2)
        B_tilde = np.ones((H, N2), dtype=complex)
        if "B" in a:
            check_shape(ctx, keys["B"], a["B"], (H, N2, 2), "B as (H, N/2, 2) real/imag")
            B_tilde = real_pair(a["B"])
        C = real_pair(a["C"])[:, None, :]  # (H, 1, N2)
        D = np.zeros((H, 1, 1))
        if "D" in a:
            check_shape(ctx, keys["D"], a["D"], (H,), "feedthrough, one value per channel")
            D = a["D"][:, None, None]
        lam_bar, B_bar = discretize(A, B_tilde[..., None], step, "zoh")
        system = DiagonalSSM(lam_bar, B_bar, KAPPA * C, D, dt=True, output="real", state_includes_input=True)
        return SSMLayer(prefix, system, output_scale=KAPPA)

    def prune_layer(
        self, ctx: Context, layer: SSMLayer, keep: np.ndarray, mask: bool, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """New ``s4d`` leaves that keep only the states where ``keep`` is True (or zero the others).

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree (leaves, their paths, groups by prefix).
        layer : SSMLayer
            The layer as read from ``ctx``.
        keep : ndarray of bool, shape ``layer.system.poles.shape``
            States that stay.
        mask : bool
            Zero the removed states' parameters instead of deleting them.
        config : Mapping
            The family's settings (defaults completed, see ``defaults``).

        Returns
        -------
        dict
            Full key -> new leaf (same container type and dtype as the leaf it replaces).
        """
        keys = self._keys(ctx, layer.name)
        out: dict[str, Any] = {}
        if mask:
            for name in ("C", "B"):
                if name in keys:
                    array = ctx.array(keys[name]).copy()
                    array[~keep] = 0
                    out[keys[name]] = ctx.new(keys[name], array)
            return out
        index = _kept_index(layer, keep)
        for name in ("log_A_real", "A_imag", "C", "B"):
            if name in keys:
                out[keys[name]] = ctx.new(keys[name], _gather(ctx.array(keys[name]), index, axis=1))
        return out

    def replace_layer(self, ctx: Context, layer: SSMLayer, new: SSMLayer, config: Mapping[str, Any]) -> dict[str, Any]:
        """New ``s4d`` leaves that realise ``new`` in this family's parameterisation.

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree (leaves, their paths, groups by prefix).
        layer : SSMLayer
            The layer as read from ``ctx``.
        new : SSMLayer
            The replacement, in the layer's convention.
        config : Mapping
            The family's settings (defaults completed, see ``defaults``).

        Returns
        -------
        dict
            Full key -> new leaf (same container type and dtype as the leaf it replaces).
        """
        keys = self._keys(ctx, layer.name)
        sys = new.system
        where = f"{ctx.where}: layer {layer.name!r}"
        step = np.exp(ctx.array(keys["log_dt"]))[:, None] * np.ones(sys.n_states)
        A, B_tilde = undiscretize(sys.poles, sys.B, step, "zoh")  # (H, n), (H, n, 1)
        C = sys.C / KAPPA  # (H, 1, n)
        out: dict[str, Any] = {}
        if "B" in keys:
            out[keys["B"]] = ctx.new(keys["B"], to_pair(B_tilde[..., 0]))
        else:  # B ≡ 1: the SISO gain C·B̃ goes into C
            C = C * B_tilde[:, None, :, 0]
        if np.any(A.real >= 0):
            raise ArgumentError(f"{where}: a replacement pole has |λ̄| ≥ 1, which log_A_real cannot store")
        out[keys["log_A_real"]] = ctx.new(keys["log_A_real"], np.log(-A.real))
        out[keys["A_imag"]] = ctx.new(keys["A_imag"], A.imag)
        out[keys["C"]] = ctx.new(keys["C"], to_pair(C[:, 0, :]))
        if "D" in keys:
            out[keys["D"]] = ctx.new(keys["D"], sys.D[:, 0, 0])
        return out


@register_adapter
class S4DFull(Adapter):
    """The full repository's ``SSMKernelDiag``: ``inv_dt``, ``A_real``, ``A_imag``, ``B``, ``C``; D in the ``FFTConv``."""

    family = "s4d-full"
    detection_keys = (frozenset({"A_real", "inv_dt"}),)
    defaults = {
        "discretization": "zoh",
        "dt_transform": "exp",
        "real_transform": "exp",
        "imag_transform": "none",
    }

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Validate the values of the ``s4d-full`` settings.

        Parameters
        ----------
        config : Mapping
            The settings, defaults completed.

        Raises
        ------
        OptionError
            A setting has a value the family does not accept.
        """
        check_choice("discretization", config["discretization"], ("zoh", "bilinear"))
        for name in ("dt_transform", "real_transform", "imag_transform"):
            check_choice(name, config[name], TRANSFORMS)

    def _keys(self, ctx: Context, prefix: str) -> dict[str, str]:
        group = ctx.groups[prefix]
        if "P" in group.keys:
            raise ctx.error(prefix, "has a low-rank term P: this is an S4 (DPLR) kernel, not a diagonal S4D one")
        if "A_imag" not in group.keys:
            raise ctx.error(prefix, "has no A_imag: real-valued S4D (is_real=True) is not supported")
        return _with_d(ctx, group, require(ctx, group, ["inv_dt", "A_real", "A_imag", "B", "C"], "S4D"))

    def read_layer(self, ctx: Context, prefix: str, config: Mapping[str, Any]) -> SSMLayer:
        """Read the ``s4d-full`` layer at ``prefix`` into an [`SSMLayer`][ssmtools.model.SSMLayer].

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree (leaves, their paths, groups by prefix).
        prefix : str
            The layer's prefix in the tree (its name in the model).
        config : Mapping
            The family's settings (defaults completed, see ``defaults``).

        Returns
        -------
        SSMLayer
            The layer in the family's convention, ``output_scale`` set.

        Raises
        ------
        FormatError
            A key is missing, or an array has the wrong shape or dtype.
        """
        keys = self._keys(ctx, prefix)
        a = {name: ctx.array(key) for name, key in keys.items()}
        for name, array in a.items():
            check_real(ctx, keys[name], array, " (complex parts as a trailing axis of 2)" if name in ("B", "C") else "")
        check_shape(ctx, keys["A_real"], a["A_real"], (None, None), "Re A under real_transform, (S, N/2)")
        S, N2 = a["A_real"].shape
        check_shape(ctx, keys["A_imag"], a["A_imag"], (S, N2), "−Im A under imag_transform, (S, N/2)")
        check_shape(ctx, keys["B"], a["B"], (1, S, N2, 2), "B as (1, S, N/2, 2) real/imag")
        check_shape(ctx, keys["C"], a["C"], (None, None, N2, 2), "C as (channels, H, N/2, 2) real/imag")
        channels, H = a["C"].shape[:2]
        if H % S:
            raise ctx.error(keys["A_real"], f"has {S} SSM copies, which does not divide H={H}")
        inv_dt = a["inv_dt"]
        if inv_dt.shape not in ((H, 1), (H, N2)):
            check_shape(ctx, keys["inv_dt"], inv_dt, (H, 1), f"Δ under dt_transform, (H, 1) or (H, {N2})")
        copy = np.arange(H) % S
        A = (
            -_transform(config["real_transform"], a["A_real"]) - 1j * _transform(config["imag_transform"], a["A_imag"])
        )[copy]
        step = _transform(config["dt_transform"], inv_dt) * np.ones(N2)
        B_tilde = real_pair(a["B"][0])[copy]
        C = np.moveaxis(real_pair(a["C"]), 0, 1)  # (H, channels, N2)
        D = np.zeros((H, channels, 1))
        if "D" in a:
            check_shape(ctx, keys["D"], a["D"], (channels, H), "feedthrough as (channels, H)")
            D = a["D"].T[:, :, None]
        lam_bar, B_bar = discretize(A, B_tilde[..., None], step, config["discretization"])
        system = DiagonalSSM(lam_bar, B_bar, KAPPA * C, D, dt=True, output="real", state_includes_input=True)
        return SSMLayer(prefix, system, output_scale=KAPPA)

    def prune_layer(
        self, ctx: Context, layer: SSMLayer, keep: np.ndarray, mask: bool, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """New ``s4d-full`` leaves that keep only the states where ``keep`` is True (or zero the others).

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree (leaves, their paths, groups by prefix).
        layer : SSMLayer
            The layer as read from ``ctx``.
        keep : ndarray of bool, shape ``layer.system.poles.shape``
            States that stay.
        mask : bool
            Zero the removed states' parameters instead of deleting them.
        config : Mapping
            The family's settings (defaults completed, see ``defaults``).

        Returns
        -------
        dict
            Full key -> new leaf (same container type and dtype as the leaf it replaces).
        """
        keys = self._keys(ctx, layer.name)
        if mask:
            C = ctx.array(keys["C"]).copy()
            C[:, ~keep] = 0
            return {keys["C"]: ctx.new(keys["C"], C)}
        index = _kept_index(layer, keep)
        H = keep.shape[0]
        out: dict[str, Any] = {}
        S = ctx.array(keys["A_real"]).shape[0]
        copy_index = index[:S]
        for h in range(S, H):
            if not np.array_equal(index[h], copy_index[h % S]):
                raise ArgumentError(
                    f"layer {layer.name!r}: channels {h % S} and {h} share one (A, B) copy (n_ssm={S} < H={H}) but keep "
                    "different states; keep the same states in channels that share a copy, or pass mask=True"
                )
        for name in ("A_real", "A_imag"):
            out[keys[name]] = ctx.new(keys[name], _gather(ctx.array(keys[name]), copy_index, axis=1))
        out[keys["B"]] = ctx.new(keys["B"], _gather(ctx.array(keys["B"])[0], copy_index, axis=1)[None])
        C = ctx.array(keys["C"])
        out[keys["C"]] = ctx.new(keys["C"], np.stack([_gather(c, index, axis=1) for c in C]))
        inv_dt = ctx.array(keys["inv_dt"])
        if inv_dt.shape[1] != 1:
            out[keys["inv_dt"]] = ctx.new(keys["inv_dt"], _gather(inv_dt, index, axis=1))
        return out

    def replace_layer(self, ctx: Context, layer: SSMLayer, new: SSMLayer, config: Mapping[str, Any]) -> dict[str, Any]:
        """New ``s4d-full`` leaves that realise ``new`` in this family's parameterisation.

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree (leaves, their paths, groups by prefix).
        layer : SSMLayer
            The layer as read from ``ctx``.
        new : SSMLayer
            The replacement, in the layer's convention.
        config : Mapping
            The family's settings (defaults completed, see ``defaults``).

        Returns
        -------
        dict
            Full key -> new leaf (same container type and dtype as the leaf it replaces).
        """
        keys = self._keys(ctx, layer.name)
        sys = new.system
        where = f"{ctx.where}: layer {layer.name!r}"
        inv_dt = ctx.array(keys["inv_dt"])
        step = _transform(config["dt_transform"], inv_dt[:, :1]) * np.ones(sys.n_states)
        A, B_tilde = undiscretize(sys.poles, sys.B, step, config["discretization"])  # (H, n), (H, n, 1)
        C = sys.C / KAPPA  # (H, c, n)
        D = sys.D[:, :, 0]  # (H, c)
        S = ctx.array(keys["A_real"]).shape[0]
        if S != sys.batch_shape[0]:
            raise ArgumentError(
                f"{where}: (A, B) are shared by groups of channels (n_ssm={S} < H={sys.batch_shape[0]}); replacing "
                "them with per-channel reduced systems is not representable"
            )
        out: dict[str, Any] = {}
        out[keys["A_real"]] = ctx.new(keys["A_real"], _inverse(config["real_transform"], -A.real, where))
        out[keys["A_imag"]] = ctx.new(keys["A_imag"], _inverse(config["imag_transform"], -A.imag, where))
        out[keys["B"]] = ctx.new(keys["B"], to_pair(B_tilde[..., 0])[None])
        out[keys["C"]] = ctx.new(keys["C"], to_pair(np.moveaxis(C, 1, 0)))
        if inv_dt.shape[1] != 1:
            out[keys["inv_dt"]] = ctx.new(keys["inv_dt"], np.repeat(inv_dt[:, :1], sys.n_states, axis=1))
        if "D" in keys:
            out[keys["D"]] = ctx.new(keys["D"], D.T)
        return out


def _gather(array: np.ndarray, index: np.ndarray, *, axis: int) -> np.ndarray:
    """``array[h, index[h], ...]`` along ``axis`` (=1) for every row h."""
    idx = index.reshape(index.shape + (1,) * (array.ndim - index.ndim))
    return np.take_along_axis(array, idx, axis=axis)

"""Mamba (``"mamba"``) and Mamba-2 (``"mamba2"``) mixers: selective SSMs, read as labelled LTI views.

Layouts read from state dicts alone (docs/concepts/selective.md#layouts); per mixer, under any prefix
(``backbone.layers.{i}.mixer`` for Hugging Face ``MambaForCausalLM``/``MambaModel``/``Mamba2ForCausalLM`` and the
``mamba_ssm`` LM layout, ``layers.{i}.mixer`` for ``mambapy``'s ``Mamba``):

- Mamba-1: ``A_log`` (d_inner, N), ``D`` (d_inner,), ``in_proj.weight`` (2·d_inner, d_model), ``conv1d.weight``
  (d_inner, 1, K), ``x_proj.weight`` (R + 2N, d_inner) → (δ, B_t, C_t), ``dt_proj.weight`` (d_inner, R),
  ``dt_proj.bias``, ``out_proj.weight``; optional biases. A = −exp(A_log), Δ_t = softplus(dt_proj(δ_t)).
- Mamba-2: ``A_log``, ``dt_bias``, ``D`` (H,), ``in_proj.weight`` (2·d_inner + 2GN + H, d_model) split
  z ‖ xBC ‖ dt with xBC = x (d_inner) ‖ B (G·N) ‖ C (G·N), ``conv1d.weight`` (d_inner + 2GN, 1, K), ``norm.weight``
  (d_inner,) (gated RMSNorm), ``out_proj.weight``. G·N is in the shapes, G alone is not: setting ``n_groups``
  (default 1; ``Mamba2Config.n_groups`` of the checkpoint). Δ_t's clamp after the softplus,
  ``Mamba2Config.time_step_limit``, is not in the weights either: setting ``time_step_limit`` (default (0, ∞), the
  transformers default: no clamp); :func:`ssmtools.calibration.read_module` takes it from the live module.
  Learnable initial states (mambapy ``init_states``) are refused: the views assume h₋₁ = 0.

The layer is :class:`~ssmtools.selective.SelectiveLayer`: its arrays plus the ``"bias"`` view as ``system``
(``ssmtools.selective.with_view`` gives the calibrated views). Pruning removes a state n from every channel
(keep masks equal over channels): Mamba-1 column n of ``A_log`` and rows R+n, R+N+n of ``x_proj``; Mamba-2 the B
and C rows of every group in ``in_proj`` and the matching ``conv1d`` channels. ``mask=True`` zeroes those rows
(and the conv channels) instead. Look-alikes are refused by name: a lone ``A_log`` (Gated-DeltaNet), no
``A_log`` (Mamba-3), inner layernorms (Jamba), Mamba mixers beside attention layers (Jamba, Bamba, Zamba).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..errors import ArgumentError, FormatError
from ..model import SSMLayer
from ..selective import SelectiveLayer, SelectiveParams, bias_view
from ._base import Adapter, Capabilities, Context, check_real, check_shape, require
from ._registry import register_adapter
from ._tree import Group, join_key

_SUPPORTED = (
    "supported: Hugging Face MambaForCausalLM/MambaModel and Mamba2ForCausalLM/Mamba2Model, mambapy Mamba, "
    "mamba_ssm MambaLMHeadModel (pure Mamba / Mamba-2 stacks)"
)
_ATTENTION_MARKERS = ("self_attn.", "q_proj.", ".attention.")
_INNER_NORMS = ("dt_layernorm", "b_layernorm", "c_layernorm", "B_layernorm", "C_layernorm")


def _sub(groups: Mapping[str, Group], group: Group, name: str) -> Group | None:
    return groups.get(join_key(group.prefix, group.sep, name))


def _kind(groups: Mapping[str, Group], group: Group) -> str | None:
    """``"mamba"``, ``"mamba2"``, ``"lookalike"`` (claimed, to be refused by name) or None."""
    keys = group.keys
    has_in = (_sub(groups, group, "in_proj") or Group("", ".")).keys.get("weight") is not None
    if "A_log" in keys:
        if "dt_bias" in keys and has_in and _sub(groups, group, "x_proj") is None:
            return "mamba2"
        return "lookalike" if "dt_bias" in keys else "mamba"
    if "dt_bias" in keys and "D" in keys and has_in:
        return "lookalike"  # Mamba-3-like: selective, but no fixed A
    return None


class _Selective(Adapter):
    """Shared by the two Mamba families: detection by key names and sibling groups, hybrid refusal, leaves."""

    capabilities = Capabilities(can_prune=True, can_mask=True, can_replace=False)
    kinds: ClassVar[tuple[str, ...]] = ()

    def find(self, groups: Mapping[str, Group]) -> list[str]:
        """Prefixes of the mixers of this family (and, for ``"mamba"``, of look-alikes it refuses by name).

        Parameters
        ----------
        groups : Mapping[str, Group]
            The tree's leaves grouped by prefix.

        Returns
        -------
        list of str
        """
        return [prefix for prefix, group in groups.items() if _kind(groups, group) in self.kinds]

    def resolve_config(self, ctx: Context, prefixes: list[str], config: dict[str, Any]) -> dict[str, Any]:
        """Refuse look-alike layers (by name) and hybrid models (attention layers beside the mixers).

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree.
        prefixes : list of str
            The mixers found.
        config : dict
            The settings.

        Returns
        -------
        dict
            ``config`` unchanged.
        """
        for prefix in prefixes:
            self._refuse_lookalike(ctx, ctx.groups[prefix])
        attention = [key for key in ctx.leaves if any(marker in key for marker in _ATTENTION_MARKERS)]
        if attention:
            raise FormatError(
                f"{ctx.where}: hybrid model: Mamba mixers at {sorted(prefixes)[:2]} beside attention layers "
                f"({attention[0]!r}, ... {len(attention)} keys), as in Jamba, Bamba or Zamba; these are not read "
                f"(their block structure and mixer variants differ); {_SUPPORTED}"
            )
        return config

    def _subkeys(self, ctx: Context, group: Group, name: str, required: list[str], optional: list[str]) -> dict:
        sub = _sub(ctx.groups, group, name)
        if sub is None:
            raise FormatError(
                f"{ctx.where}: {self.family} mixer {group.prefix!r} has no {name} parameters "
                f"({join_key(group.prefix, group.sep, name)}.weight); found {sorted(group.keys)}. Is the checkpoint "
                "complete?"
            )
        keys = require(ctx, sub, required, self.family)
        keys.update({o: sub.keys[o] for o in optional if o in sub.keys})
        return keys

    def _linear(self, ctx: Context, group: Group, name: str, shape: tuple, meaning: str) -> tuple:
        keys = self._subkeys(ctx, group, name, ["weight"], ["bias"])
        w = ctx.array(keys["weight"])
        check_real(ctx, keys["weight"], w)
        check_shape(ctx, keys["weight"], w, shape, meaning)
        b = ctx.array(keys["bias"]) if "bias" in keys else None
        if b is not None:
            check_shape(ctx, keys["bias"], b, (w.shape[0],), f"bias of {name}")
        return w, b, keys

    def _conv(self, ctx: Context, group: Group, channels: int) -> tuple:
        w, b, keys = self._linear(ctx, group, "conv1d", (channels, 1, None), "depthwise causal convolution")
        return w[:, 0, :], b, keys

    def _vector(self, ctx: Context, group: Group, name: str, n: int | None, meaning: str) -> np.ndarray:
        key = group.keys[name]
        value = ctx.array(key)
        check_real(ctx, key, value)
        check_shape(ctx, key, value, (n,), meaning)
        return value

    def _refuse_lookalike(self, ctx: Context, group: Group) -> None:
        if _kind(ctx.groups, group) == "mamba2":
            return
        found = sorted(group.keys) + sorted(
            p[len(group.prefix) + 1 :] for p in ctx.groups if p.startswith(group.prefix + group.sep)
        )
        inner = [name for name in _INNER_NORMS if _sub(ctx.groups, group, name) is not None]
        if inner:
            what = f"a Mamba mixer with inner layernorms {inner} (Jamba / mambapy inner_layernorms=True)"
        elif "A_log" not in group.keys:
            what = "a selective layer without A_log (Mamba-3-like: no fixed diagonal A)"
        elif "dt_bias" in group.keys:
            what = "a layer with A_log and dt_bias but no Mamba-2 in_proj (Gated-DeltaNet-like linear attention)"
        elif ctx.array(group.keys["A_log"]).ndim != 2 or _sub(ctx.groups, group, "x_proj") is None:
            what = "an A_log without Mamba-1's x_proj / Mamba-2's dt_bias (not a Mamba mixer)"
        else:
            return
        raise FormatError(
            f"{ctx.where}: layer {group.prefix!r} ({', '.join(found[:10])}) is {what}; it is not a diagonal "
            f"selective SSM that ssmtools reads; {_SUPPORTED}"
        )

    def prune_layer(
        self, ctx: Context, layer: SSMLayer, keep: np.ndarray, mask: bool, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """New leaves without the states ``keep`` drops (or with their B, C gains zeroed when ``mask``).

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree.
        layer : SelectiveLayer
            The layer as read.
        keep : ndarray of bool, shape ``(d_inner, N)``
            Kept states; equal in every channel (a state lives in all channels of a mixer).
        mask : bool
            Zero instead of remove.
        config : Mapping
            The settings.

        Returns
        -------
        dict
            Full key -> new leaf.
        """
        if not np.all(keep == keep[:1]):
            raise ArgumentError(
                f"layer {layer.name!r}: a Mamba state n lives in every channel of the mixer (B_t and C_t are shared); "
                "keep the same states in every channel (score with units='state')"
            )
        return self._write(ctx, ctx.groups[layer.name], np.asarray(keep[0], dtype=bool), mask, config)

    def _write(self, ctx: Context, group: Group, keep: np.ndarray, mask: bool, config: Mapping[str, Any]) -> dict:
        raise NotImplementedError  # pragma: no cover - each family defines it


@register_adapter
class Mamba(_Selective):
    """Mamba-1 mixers (HF ``MambaMixer``, mambapy ``MambaBlock``, ``mamba_ssm`` ``Mamba``); refuses look-alikes."""

    family = "mamba"
    detection_keys = (frozenset({"A_log", "D"}),)
    defaults = {}
    kinds = ("mamba", "lookalike")

    def read_layer(self, ctx: Context, prefix: str, config: Mapping[str, Any]) -> SelectiveLayer:
        """Read the Mamba-1 mixer at ``prefix``.

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree.
        prefix : str
            The mixer's prefix.
        config : Mapping
            The settings (none).

        Returns
        -------
        SelectiveLayer
            View ``"bias"``.

        Raises
        ------
        FormatError
            A key is missing or has the wrong shape, or the layer is a look-alike (named in the message).
        """
        group = ctx.groups[prefix]
        self._refuse_lookalike(ctx, group)
        keys = require(ctx, group, ["A_log", "D"], "mamba")
        A_log = ctx.array(keys["A_log"])
        check_real(ctx, keys["A_log"], A_log)
        check_shape(ctx, keys["A_log"], A_log, (None, None), "log(−A), (d_inner, d_state)")
        di, N = A_log.shape
        D = self._vector(ctx, group, "D", di, "skip gain, one per channel")
        x_proj, _, xk = self._linear(ctx, group, "x_proj", (None, di), "x_proj: (dt_rank + 2·d_state, d_inner)")
        R = x_proj.shape[0] - 2 * N
        if R < 1:
            raise ctx.error(
                xk["weight"], f"has {x_proj.shape[0]} rows, expected dt_rank + 2·d_state with d_state = {N} (A_log)"
            )
        dt_w, dt_b, dk = self._linear(ctx, group, "dt_proj", (di, R), f"dt_proj: (d_inner, dt_rank = {R})")
        if dt_b is None:
            raise ctx.error(dk["weight"], "has no bias beside it (dt_proj.bias, the Δ bias)")
        in_w, in_b, _ = self._linear(ctx, group, "in_proj", (2 * di, None), "in_proj: (2·d_inner, d_model)")
        conv_w, conv_b, _ = self._conv(ctx, group, di)
        out_w, out_b, _ = self._linear(ctx, group, "out_proj", (in_w.shape[1], di), "out_proj: (d_model, d_inner)")
        params = SelectiveParams(
            "mamba", -np.exp(A_log), D, in_w, in_b, conv_w, conv_b, out_w, out_b, N,
            x_proj=x_proj, dt_proj_w=dt_w, dt_proj_b=dt_b,
        )  # fmt: skip
        return SelectiveLayer(prefix, bias_view(params), params=params)

    def _write(self, ctx: Context, group: Group, keep: np.ndarray, mask: bool, config: Mapping[str, Any]) -> dict:
        a_key, x_key = group.keys["A_log"], self._subkeys(ctx, group, "x_proj", ["weight"], [])["weight"]
        A_log, x_proj = ctx.array(a_key), ctx.array(x_key)
        N = A_log.shape[1]
        R = x_proj.shape[0] - 2 * N
        rows = np.concatenate([np.ones(R, dtype=bool), keep, keep])
        if mask:
            return {x_key: ctx.new(x_key, np.where(rows[:, None], x_proj, 0.0))}
        return {a_key: ctx.new(a_key, A_log[:, keep]), x_key: ctx.new(x_key, x_proj[rows])}


@register_adapter
class Mamba2(_Selective):
    """Mamba-2 mixers (HF ``Mamba2Mixer``, ``mamba_ssm`` ``Mamba2``): per-head A, grouped B/C, gated RMSNorm."""

    family = "mamba2"
    detection_keys = (frozenset({"A_log", "D", "dt_bias"}),)
    defaults = {"n_groups": 1, "norm_eps": 1e-5, "time_step_limit": (0.0, float("inf"))}
    kinds = ("mamba2",)

    def check_config(self, config: Mapping[str, Any]) -> None:
        """``n_groups`` must be a positive integer, ``time_step_limit`` a pair 0 ≤ lo ≤ hi.

        Parameters
        ----------
        config : Mapping
            The settings.
        """
        g = config["n_groups"]
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
            raise ArgumentError(f"family 'mamba2': setting n_groups={g!r} must be a positive integer")
        limit = config["time_step_limit"]
        try:
            lo, hi = (float(v) for v in limit)
        except (TypeError, ValueError):
            lo, hi = float("nan"), float("nan")
        if not 0.0 <= lo <= hi:
            raise ArgumentError(
                f"family 'mamba2': setting time_step_limit={limit!r} must be a pair (lo, hi) with 0 ≤ lo ≤ hi "
                "(Mamba2Config.time_step_limit; (0, inf): no clamp)"
            )

    def _sizes(self, ctx: Context, group: Group, config: Mapping[str, Any]) -> tuple[int, int, int, int]:
        """(H, d_inner, G, N) from the shapes and ``n_groups``."""
        H = self._vector(ctx, group, "A_log", None, "log(−A), one value per head").shape[0]
        norm = self._subkeys(ctx, group, "norm", ["weight"], [])["weight"]
        di = ctx.array(norm).shape[0]
        conv = ctx.array(self._subkeys(ctx, group, "conv1d", ["weight"], [])["weight"])
        G = int(config["n_groups"])
        gn2 = conv.shape[0] - di
        if gn2 <= 0 or gn2 % (2 * G) or H % G or di % H:
            raise ctx.error(
                norm,
                f"gives d_inner = {di}, with conv1d channels {conv.shape[0]} (d_inner + 2·G·N), H = {H} heads and "
                f"n_groups = {G}: no consistent Mamba-2 sizes (pass n_groups= as in the model's config)",
            )
        return H, di, G, gn2 // (2 * G)

    def read_layer(self, ctx: Context, prefix: str, config: Mapping[str, Any]) -> SelectiveLayer:
        """Read the Mamba-2 mixer at ``prefix``.

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree.
        prefix : str
            The mixer's prefix.
        config : Mapping
            ``n_groups``, ``norm_eps`` and ``time_step_limit``.

        Returns
        -------
        SelectiveLayer
            View ``"bias"``.

        Raises
        ------
        FormatError
            A key is missing or has the wrong shape.
        """
        group = ctx.groups[prefix]
        if "init_states" in group.keys:
            raise FormatError(
                f"{ctx.where}: Mamba-2 mixer {prefix!r} has learnable initial states ({group.keys['init_states']!r}, "
                "mambapy learnable_init_states=True); the views and statistics assume a zero initial state, so it is "
                f"not read; {_SUPPORTED}"
            )
        H, di, G, N = self._sizes(ctx, group, config)
        A_log = self._vector(ctx, group, "A_log", H, "log(−A), one value per head")
        dt_bias = self._vector(ctx, group, "dt_bias", H, "Δ bias, one value per head")
        D = self._vector(ctx, group, "D", H, "skip gain, one value per head")
        rows = 2 * di + 2 * G * N + H
        in_w, in_b, _ = self._linear(ctx, group, "in_proj", (rows, None), "in_proj: (2·d_inner + 2·G·N + H, d_model)")
        conv_w, conv_b, _ = self._conv(ctx, group, di + 2 * G * N)
        norm_w, _, _ = self._linear(ctx, group, "norm", (di,), "gated RMSNorm weight (d_inner,)")
        out_w, out_b, _ = self._linear(ctx, group, "out_proj", (in_w.shape[1], di), "out_proj: (d_model, d_inner)")
        params = SelectiveParams(
            "mamba2", -np.exp(A_log), D, in_w, in_b, conv_w, conv_b, out_w, out_b, N,
            dt_bias=dt_bias, norm_w=norm_w, n_groups=G, norm_eps=float(config["norm_eps"]),
            dt_limit=tuple(float(v) for v in config["time_step_limit"]),  # type: ignore[arg-type]
        )  # fmt: skip
        return SelectiveLayer(prefix, bias_view(params), params=params)

    def _write(self, ctx: Context, group: Group, keep: np.ndarray, mask: bool, config: Mapping[str, Any]) -> dict:
        H, di, G, N = self._sizes(ctx, group, config)
        bc = np.tile(keep, 2 * G)  # B of every group, then C of every group
        conv_rows = np.concatenate([np.ones(di, dtype=bool), bc])
        in_rows = np.concatenate([np.ones(di, dtype=bool), conv_rows, np.ones(H, dtype=bool)])
        out: dict[str, Any] = {}
        for name, rows in (("in_proj", in_rows), ("conv1d", conv_rows)):
            keys = self._subkeys(ctx, group, name, ["weight"], ["bias"])
            for key in keys.values():
                value = ctx.array(key)
                if mask:
                    zero = (~rows).reshape((-1,) + (1,) * (value.ndim - 1))
                    out[key] = ctx.new(key, np.where(zero, 0.0, value))
                else:
                    out[key] = ctx.new(key, value[rows])
        return out

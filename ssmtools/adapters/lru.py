"""LRU (Orvieto et al., ICML 2023, arXiv 2303.06349): paper layout and PyPI ``LRU-pytorch``.

Keys per layer (docs/concepts/derivations.md#lru): ``nu_log``, ``theta_log``, ``gamma_log`` (N,) and either
``B_re``, ``B_im`` (N, H) and ``C_re``, ``C_im`` (H, N) (paper), or complex ``B`` (N, H_in) and ``C``
(H_out, N) (``LRU-pytorch`` 0.1.3, ``from LRU_pytorch import LRU``); some re-implementations store
the transposes (detected from the shapes; pass ``transposed=True`` when N = H makes it ambiguous).
``D`` is (H,) (diagonal) or (H_out, H_in) (full). Discrete time, no Δ::

    λ = exp(−exp(nu_log) + i·exp(theta_log)),   B̄ = diag(exp(gamma_log))·B,   y_k = Re(C x_k) + D u_k

Writing a replacement system: nu_log = log(−log|λ|), theta_log = log(arg λ) with every state
conjugate-flipped to arg λ ∈ [0, π] (exact for the Re output with real inputs: (λ, b, c) → conj) and
arg λ = 0 stored as 2π; gamma_log = 0, B = B̄.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ArgumentError
from ..model import SSMLayer
from ..systems import DiagonalSSM
from ._base import Adapter, Context, check_complex, check_real, check_shape, diagonal_of, exp_param, require
from ._registry import register_adapter


@register_adapter
class LRU(Adapter):
    """LRU layers (paper names or LRU-pytorch's complex ``B``/``C``); ``output_scale`` 1 (output ``Re``)."""

    family = "lru"
    detection_keys = (frozenset({"nu_log", "theta_log"}),)
    defaults = {"transposed": None}

    def resolve_config(self, ctx: Context, prefixes: list[str], config: dict[str, Any]) -> dict[str, Any]:
        """Infer ``transposed`` from the first layer whose B shape tells (N ≠ H); False (paper) if none does.

        Parameters
        ----------
        ctx : Context
            The flattened parameter tree.
        prefixes : list of str
            The prefixes of the LRU layers.
        config : dict
            The settings; ``transposed=None`` means "infer it".

        Returns
        -------
        dict
            The settings with ``transposed`` decided.
        """
        if config["transposed"] is not None:
            return config
        inferred = False
        for prefix in prefixes:
            keys = self._keys(ctx, prefix)
            N = ctx.array(keys["nu_log"]).shape[-1]
            B = ctx.array(keys["B"] if "B" in keys else keys["B_re"])
            if B.ndim == 2 and N in B.shape and B.shape[0] != B.shape[1]:
                inferred = B.shape[0] != N
                break
        return dict(config, transposed=inferred)

    def _keys(self, ctx: Context, prefix: str) -> dict[str, str]:
        group = ctx.groups[prefix]
        names = ["nu_log", "theta_log"]
        names += ["B_re", "B_im"] if ("B_re" in group.keys or "B" not in group.keys) else ["B"]
        names += ["C_re", "C_im"] if ("C_re" in group.keys or "C" not in group.keys) else ["C"]
        keys = require(ctx, group, names, "LRU")
        for optional in ("gamma_log", "D"):
            if optional in group.keys:
                keys[optional] = group.keys[optional]
        return keys

    def _matrix(self, ctx: Context, keys: dict[str, str], name: str) -> np.ndarray:
        if name in keys:
            array = ctx.array(keys[name])
            check_complex(ctx, keys[name], array)
            return array
        re, im = ctx.array(keys[name + "_re"]), ctx.array(keys[name + "_im"])
        check_real(ctx, keys[name + "_re"], re)
        check_real(ctx, keys[name + "_im"], im)
        if re.shape != im.shape:
            raise ctx.error(keys[name + "_im"], f"has shape {im.shape} but {name}_re has shape {re.shape}")
        return re + 1j * im

    @staticmethod
    def _transposed(array: np.ndarray, N: int, states_axis: int, config: Mapping[str, Any]) -> bool | None:
        """Whether a (…) 2-D matrix stores states on the other axis than the paper layout; None if impossible."""
        if array.ndim != 2 or N not in array.shape:
            return None
        if array.shape[0] == array.shape[1]:
            return bool(config["transposed"])
        return array.shape[states_axis] != N

    def read_layer(self, ctx: Context, prefix: str, config: Mapping[str, Any]) -> SSMLayer:
        """Read the ``lru`` layer at ``prefix`` into an [`SSMLayer`][ssmtools.model.SSMLayer].

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
        nu, theta = ctx.array(keys["nu_log"]), ctx.array(keys["theta_log"])
        for name in ("nu_log", "theta_log", "gamma_log", "D"):
            if name in keys:
                check_real(ctx, keys[name], ctx.array(keys[name]))
        check_shape(ctx, keys["nu_log"], nu, (None,), "log(−log|λ|), one value per state")
        N = nu.shape[0]
        check_shape(ctx, keys["theta_log"], theta, (N,), "log(arg λ), one value per state")
        gamma = np.ones(N)
        if "gamma_log" in keys:
            gamma_log = ctx.array(keys["gamma_log"])
            check_shape(ctx, keys["gamma_log"], gamma_log, (N,), "log γ, one value per state")
            gamma = exp_param(ctx, keys["gamma_log"], gamma_log, "γ")
        B, C = self._matrix(ctx, keys, "B"), self._matrix(ctx, keys, "C")
        b_key = keys["B"] if "B" in keys else keys["B_re"]
        c_key = keys["C"] if "C" in keys else keys["C_re"]
        b_t, c_t = self._transposed(B, N, 0, config), self._transposed(C, N, 1, config)
        if b_t is None:
            check_shape(ctx, b_key, B, (N, None), "one row per state (or its transpose)")
        if c_t is None:
            check_shape(ctx, c_key, C, (None, N), "one column per state (or its transpose)")
        B = B.T if b_t else B
        C = C.T if c_t else C
        m, p = B.shape[1], C.shape[0]
        D = np.zeros((p, m))
        if "D" in keys:
            d = ctx.array(keys["D"])
            if d.shape == (p, m):
                D = d
            elif d.shape == (p,) and p == m:
                D = np.diag(d)
            else:
                check_shape(ctx, keys["D"], d, (p, m), f"feedthrough as ({p},) (diagonal) or ({p}, {m}) (full)")
        lam = np.exp(
            -exp_param(ctx, keys["nu_log"], nu, "−log|λ|") + 1j * exp_param(ctx, keys["theta_log"], theta, "arg λ")
        )
        system = DiagonalSSM(lam, gamma[:, None] * B, C, D, dt=True, output="real", state_includes_input=True)
        return SSMLayer(prefix, system, output_scale=1.0)

    def _layout(self, ctx: Context, keys: dict[str, str], config: Mapping[str, Any]) -> tuple[bool, bool]:
        N = ctx.array(keys["nu_log"]).shape[0]
        B, C = self._matrix(ctx, keys, "B"), self._matrix(ctx, keys, "C")
        return bool(self._transposed(B, N, 0, config)), bool(self._transposed(C, N, 1, config))

    def _write_matrix(self, ctx: Context, keys: dict[str, str], name: str, values: np.ndarray) -> dict[str, Any]:
        if name in keys:
            return {keys[name]: ctx.new(keys[name], values)}
        return {
            keys[name + "_re"]: ctx.new(keys[name + "_re"], values.real),
            keys[name + "_im"]: ctx.new(keys[name + "_im"], values.imag),
        }

    def prune_layer(
        self, ctx: Context, layer: SSMLayer, keep: np.ndarray, mask: bool, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """New ``lru`` leaves that keep only the states where ``keep`` is True (or zero the others).

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
        b_t, c_t = self._layout(ctx, keys, config)
        B = self._matrix(ctx, keys, "B")
        C = self._matrix(ctx, keys, "C")
        B = B.T if b_t else B  # (N, m)
        C = C.T if c_t else C  # (p, N)
        out: dict[str, Any] = {}
        if mask:
            B, C = B.copy(), C.copy()
            B[~keep] = 0
            C[:, ~keep] = 0
        else:
            B, C = B[keep], C[:, keep]
            for name in ("nu_log", "theta_log", "gamma_log"):
                if name in keys:
                    out[keys[name]] = ctx.new(keys[name], ctx.array(keys[name])[keep])
        out.update(self._write_matrix(ctx, keys, "B", B.T if b_t else B))
        out.update(self._write_matrix(ctx, keys, "C", C.T if c_t else C))
        return out

    def replace_layer(self, ctx: Context, layer: SSMLayer, new: SSMLayer, config: Mapping[str, Any]) -> dict[str, Any]:
        """New ``lru`` leaves that realise ``new`` in this family's parameterisation.

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
        b_t, c_t = self._layout(ctx, keys, config)
        sys = new.system
        lam, B, C = sys.poles.copy(), sys.B.copy(), sys.C.copy()
        radius = np.abs(lam)
        if np.any(radius >= 1) or np.any(radius == 0):
            raise ArgumentError(
                f"{ctx.where}: layer {layer.name!r}: LRU stores |λ| = exp(−exp(nu_log)) ∈ (0, 1); the replacement has "
                f"poles with |λ| in [{radius.min():.3g}, {radius.max():.3g}]"
            )
        flip = np.angle(lam) < 0
        lam[flip], B[flip], C[:, flip] = np.conj(lam[flip]), np.conj(B[flip]), np.conj(C[:, flip])
        theta = np.angle(lam)
        theta = np.where(theta == 0, 2 * np.pi, theta)
        out = {
            keys["nu_log"]: ctx.new(keys["nu_log"], np.log(-np.log(radius))),
            keys["theta_log"]: ctx.new(keys["theta_log"], np.log(theta)),
        }
        if "gamma_log" in keys:
            out[keys["gamma_log"]] = ctx.new(keys["gamma_log"], np.zeros(lam.shape))
        out.update(self._write_matrix(ctx, keys, "B", B.T if b_t else B))
        out.update(self._write_matrix(ctx, keys, "C", C.T if c_t else C))
        if "D" in keys:
            d = ctx.array(keys["D"])
            D = sys.D if d.ndim == 2 else diagonal_of(sys.D, f"{ctx.where}: layer {layer.name!r}")
            out[keys["D"]] = ctx.new(keys["D"], D)
        elif np.any(sys.D != 0):
            raise ArgumentError(f"{ctx.where}: layer {layer.name!r} has no D parameter but the replacement has D ≠ 0")
        return out

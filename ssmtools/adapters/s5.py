"""S5 (Smith, Warrington & Linderman, ICLR 2023, arXiv 2208.04933): official flax tree and s5-pytorch.

Official JAX/flax (``lindermanlab/S5`` ``s5/ssm.py``; docs/concepts/conventions.md), one layer per group with
``Lambda_re, Lambda_im`` (P,), ``B`` (P, H, 2), ``C`` (H, P, 2) [or (H, 2P, 2), or ``C1``/``C2``
when bidirectional], ``D`` (H,), ``log_step`` (P, 1)::

    Λ = Lambda_re + i·Lambda_im   (Re clipped to ≤ −1e-4 when clip_eigs)
    Δ = step_rescale · exp(log_step),   (λ̄, B̄) = ZOH or bilinear of (Λ, B[...,0] + i·B[...,1])
    y_k = κ·Re(C̃ x_k) + D ⊙ u_k,   κ = 2 if conj_sym else 1

s5-pytorch 0.2.1 (``i404788/s5-pytorch``; docs/concepts/conventions.md): ``Lambda`` (P,) complex, ``B``
(P, H, 2), ``C`` (H, P) or (H, 2P) complex, ``D`` (H,), ``log_step`` (P,); Δ = step_scale·exp(log_step),
output ``Re(C̃x) + D ⊙ u`` (κ = 1, no conjugate symmetry). Bidirectional layers (docs/concepts/derivations.md#bidirectional) share
(λ̄, B̄); the forward columns go into ``system.C``, the backward ones into the layer's [`BidirectionalSSM`][ssmtools.systems.BidirectionalSSM].

ssmtools' ``system`` is ``DiagonalSSM(λ̄, B̄, κ·C̃_forward, diag(D), dt=True, output="real",
state_includes_input=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ArgumentError, check_choice
from ..model import SSMLayer
from ..systems import BidirectionalSSM, DiagonalSSM
from ._base import (
    Adapter,
    Context,
    check_complex,
    check_real,
    check_shape,
    diagonal_of,
    exp_param,
    real_pair,
    require,
    to_pair,
)
from ._discretize import Method, discretize, undiscretize
from ._registry import register_adapter

CLIP = -1e-4


def _system(
    lam: np.ndarray,
    B_tilde: np.ndarray,
    C_tilde: np.ndarray,
    D: np.ndarray,
    step: np.ndarray,
    method: Method,
    kappa: float,
) -> DiagonalSSM | BidirectionalSSM:
    """The layer's system from continuous-time parameters (C_tilde (H, P), or (H, 2P) when bidirectional)."""
    P = lam.shape[-1]
    lam_bar, B_bar = discretize(lam, B_tilde, step, method)
    forward = DiagonalSSM(
        lam_bar, B_bar, kappa * C_tilde[:, :P], np.diag(D), dt=True, output="real", state_includes_input=True
    )
    return BidirectionalSSM(forward, kappa * C_tilde[:, P:]) if C_tilde.shape[1] == 2 * P else forward


def _continuous(
    new: SSMLayer, step: float, method: Method, kappa: float, clip: bool, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(Λ, B̃, C̃ (H, P) or (H, 2P), D) realising ``new`` with every step equal to ``step``."""
    system = new.system
    lam, B_tilde = undiscretize(system.poles, system.B, np.full(system.n_states, step), method)
    if clip and np.any(lam.real > CLIP):
        raise ArgumentError(
            f"{where}: a replacement pole has Re Λ > {CLIP} (|λ̄| too close to 1 for step {step}); with clip_eigs=True "
            "the layer would clip it and no longer match. Drop that state or load with clip_eigs=False."
        )
    C_tilde = system.C / kappa
    if isinstance(system, BidirectionalSSM):
        C_tilde = np.concatenate([C_tilde, system.C_backward / kappa], axis=1)
    return lam, B_tilde, C_tilde, diagonal_of(system.D, where)


def _c_columns(keep: np.ndarray, bidirectional: bool, stacked: bool) -> np.ndarray:
    """Column selector of a C holding [forward | backward] when ``stacked``."""
    return np.concatenate([keep, keep]) if (bidirectional and stacked) else keep


def _check_discretization(config: Mapping[str, Any]) -> None:
    check_choice("discretization", config["discretization"], ("zoh", "bilinear"))


@register_adapter
class S5Flax(Adapter):
    """The official flax parameter tree (``Lambda_re``, ``Lambda_im``, ``B``, ``C``/``C1``/``C2``, ``D``, ``log_step``).

    ``output_scale`` of its layers: 2 with ``conj_sym=True`` (output ``2·Re``), else 1.
    """

    family = "s5"
    detection_keys = (frozenset({"Lambda_re", "Lambda_im"}),)
    defaults = {
        "conj_sym": True,
        "discretization": "zoh",
        "step_rescale": 1.0,
        "clip_eigs": False,
        "bidirectional": None,
    }

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Validate the values of the ``s5`` settings.

        Parameters
        ----------
        config : Mapping
            The settings, defaults completed.

        Raises
        ------
        OptionError
            A setting has a value the family does not accept.
        """
        _check_discretization(config)

    def _keys(self, ctx: Context, prefix: str) -> dict[str, str]:
        group = ctx.groups[prefix]
        names = ["Lambda_re", "Lambda_im", "B", "D", "log_step"]
        names += ["C1", "C2"] if ("C1" in group.keys or "C2" in group.keys) else ["C"]
        return require(ctx, group, names, "S5")

    def read_layer(self, ctx: Context, prefix: str, config: Mapping[str, Any]) -> SSMLayer:
        """Read the ``s5`` layer at ``prefix`` into an [`SSMLayer`][ssmtools.model.SSMLayer].

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
        arrays = {name: ctx.array(key) for name, key in keys.items()}
        for name, array in arrays.items():
            check_real(
                ctx,
                keys[name],
                array,
                " (complex parts as a trailing axis of 2)" if name in ("B", "C", "C1", "C2") else "",
            )
        lam_re, lam_im, B = arrays["Lambda_re"], arrays["Lambda_im"], arrays["B"]
        check_shape(ctx, keys["Lambda_re"], lam_re, (None,), "Re Λ, one value per stored state")
        P = lam_re.shape[0]
        check_shape(ctx, keys["Lambda_im"], lam_im, (P,), "Im Λ, one value per stored state")
        check_shape(ctx, keys["B"], B, (P, None, 2), "B̃ as (P, H, 2) real/imag")
        H = B.shape[1]
        log_step = arrays["log_step"]
        if log_step.shape not in ((P, 1), (P,)):
            check_shape(ctx, keys["log_step"], log_step, (P, 1), "log Δ, one step per state")
        check_shape(ctx, keys["D"], arrays["D"], (H,), "diagonal feedthrough")
        if "C1" in arrays:
            check_shape(ctx, keys["C1"], arrays["C1"], (H, P, 2), "forward C̃ of a bidirectional layer")
            check_shape(ctx, keys["C2"], arrays["C2"], (H, P, 2), "backward C̃ of a bidirectional layer")
            C_tilde = np.concatenate([real_pair(arrays["C1"]), real_pair(arrays["C2"])], axis=1)
        else:
            C = arrays["C"]
            if C.ndim != 3 or C.shape[0] != H or C.shape[1] not in (P, 2 * P) or C.shape[2] != 2:
                check_shape(ctx, keys["C"], C, (H, P, 2), f"C̃ as (H, P, 2), or (H, {2 * P}, 2) when bidirectional")
            C_tilde = real_pair(C)
        bidirectional = C_tilde.shape[1] == 2 * P
        if config["bidirectional"] is not None and bool(config["bidirectional"]) != bidirectional:
            raise ctx.error(
                keys.get("C", keys.get("C1", "")),
                f"says bidirectional={bidirectional} (C width {C_tilde.shape[1]} for P={P}) but "
                f"bidirectional={config['bidirectional']} was passed",
            )
        lam = lam_re + 1j * lam_im
        if config["clip_eigs"]:
            lam = np.minimum(lam_re, CLIP) + 1j * lam_im
        step = exp_param(ctx, keys["log_step"], log_step.reshape(P), "Δ", float(config["step_rescale"]))
        kappa = 2.0 if config["conj_sym"] else 1.0
        system = _system(lam, real_pair(B), C_tilde, arrays["D"], step, config["discretization"], kappa)
        return SSMLayer(prefix, system, output_scale=kappa)

    def prune_layer(
        self, ctx: Context, layer: SSMLayer, keep: np.ndarray, mask: bool, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """New ``s5`` leaves that keep only the states where ``keep`` is True (or zero the others).

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
        out = {}
        if mask:
            B = ctx.array(keys["B"]).copy()
            B[~keep] = 0
            out[keys["B"]] = ctx.new(keys["B"], B)
            for name in ("C", "C1", "C2"):
                if name in keys:
                    C = ctx.array(keys[name]).copy()
                    C[:, ~_c_columns(keep, layer.bidirectional, name == "C")] = 0
                    out[keys[name]] = ctx.new(keys[name], C)
            return out
        for name in ("Lambda_re", "Lambda_im", "B", "log_step"):
            out[keys[name]] = ctx.new(keys[name], ctx.array(keys[name])[keep])
        for name in ("C", "C1", "C2"):
            if name in keys:
                C = ctx.array(keys[name])
                out[keys[name]] = ctx.new(keys[name], C[:, _c_columns(keep, layer.bidirectional, name == "C")])
        return out

    def replace_layer(self, ctx: Context, layer: SSMLayer, new: SSMLayer, config: Mapping[str, Any]) -> dict[str, Any]:
        """New ``s5`` leaves that realise ``new`` in this family's parameterisation.

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
        kappa = 2.0 if config["conj_sym"] else 1.0
        step = float(config["step_rescale"])  # log_step = 0
        lam, B_tilde, C_tilde, D = _continuous(
            new, step, config["discretization"], kappa, config["clip_eigs"], f"{ctx.where}: layer {layer.name!r}"
        )
        P = lam.shape[0]
        log_step = ctx.array(keys["log_step"])
        out = {
            keys["Lambda_re"]: ctx.new(keys["Lambda_re"], lam.real),
            keys["Lambda_im"]: ctx.new(keys["Lambda_im"], lam.imag),
            keys["B"]: ctx.new(keys["B"], to_pair(B_tilde)),
            keys["log_step"]: ctx.new(keys["log_step"], np.zeros((P,) + log_step.shape[1:])),
            keys["D"]: ctx.new(keys["D"], D),
        }
        if "C1" in keys:
            out[keys["C1"]] = ctx.new(keys["C1"], to_pair(C_tilde[:, :P]))
            out[keys["C2"]] = ctx.new(keys["C2"], to_pair(C_tilde[:, P:]))
        else:
            out[keys["C"]] = ctx.new(keys["C"], to_pair(C_tilde))
        return out


@register_adapter
class S5PyTorch(Adapter):
    """PyPI ``s5-pytorch`` (``from s5 import S5``): ``seq.Lambda``, ``seq.B``, ``seq.C``, ``seq.D``, ``seq.log_step``.

    ``output_scale`` of its layers: 1 (output ``Re``).
    """

    family = "s5-pytorch"
    detection_keys = (frozenset({"Lambda", "log_step"}),)
    defaults = {"step_scale": 1.0, "discretization": "zoh", "bidirectional": None}

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Validate the values of the ``s5-pytorch`` settings.

        Parameters
        ----------
        config : Mapping
            The settings, defaults completed.

        Raises
        ------
        OptionError
            A setting has a value the family does not accept.
        """
        _check_discretization(config)

    def _keys(self, ctx: Context, prefix: str) -> dict[str, str]:
        group = ctx.groups[prefix]
        if "BP" in group.keys or "CP" in group.keys:
            raise ctx.error(
                prefix,
                "is a factorized s5-pytorch layer (BH, BP, CH, CP): only bcInit='dense'/'complex_normal' "
                "layers (B, C stored densely) are supported",
            )
        return require(ctx, group, ["Lambda", "B", "C", "D", "log_step"], "s5-pytorch")

    def read_layer(self, ctx: Context, prefix: str, config: Mapping[str, Any]) -> SSMLayer:
        """Read the ``s5-pytorch`` layer at ``prefix`` into an [`SSMLayer`][ssmtools.model.SSMLayer].

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
        arrays = {name: ctx.array(key) for name, key in keys.items()}
        check_complex(ctx, keys["Lambda"], arrays["Lambda"])
        check_complex(ctx, keys["C"], arrays["C"])
        for name in ("B", "D", "log_step"):
            check_real(ctx, keys[name], arrays[name])
        lam = arrays["Lambda"]
        check_shape(ctx, keys["Lambda"], lam, (None,), "Λ, one complex value per stored state")
        P = lam.shape[0]
        check_shape(ctx, keys["B"], arrays["B"], (P, None, 2), "B̃ as (P, H, 2) real/imag")
        H = arrays["B"].shape[1]
        check_shape(ctx, keys["log_step"], arrays["log_step"], (P,), "log Δ, one step per state")
        check_shape(ctx, keys["D"], arrays["D"], (H,), "diagonal feedthrough")
        C = arrays["C"]
        if C.ndim != 2 or C.shape[0] != H or C.shape[1] not in (P, 2 * P):
            check_shape(ctx, keys["C"], C, (H, P), f"C̃ as (H, P) complex, or (H, {2 * P}) when bidir=True")
        bidirectional = C.shape[1] == 2 * P
        if config["bidirectional"] is not None and bool(config["bidirectional"]) != bidirectional:
            raise ctx.error(keys["C"], f"has width {C.shape[1]} for P={P} but bidirectional={config['bidirectional']}")
        step = exp_param(ctx, keys["log_step"], arrays["log_step"], "Δ", float(config["step_scale"]))
        system = _system(lam, real_pair(arrays["B"]), C, arrays["D"], step, config["discretization"], 1.0)
        return SSMLayer(prefix, system, output_scale=1.0)

    def prune_layer(
        self, ctx: Context, layer: SSMLayer, keep: np.ndarray, mask: bool, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """New ``s5-pytorch`` leaves that keep only the states where ``keep`` is True (or zero the others).

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
        columns = _c_columns(keep, layer.bidirectional, True)
        if mask:
            B, C = ctx.array(keys["B"]).copy(), ctx.array(keys["C"]).copy()
            B[~keep] = 0
            C[:, ~columns] = 0
            return {keys["B"]: ctx.new(keys["B"], B), keys["C"]: ctx.new(keys["C"], C)}
        out = {keys[name]: ctx.new(keys[name], ctx.array(keys[name])[keep]) for name in ("Lambda", "B", "log_step")}
        out[keys["C"]] = ctx.new(keys["C"], ctx.array(keys["C"])[:, columns])
        return out

    def replace_layer(self, ctx: Context, layer: SSMLayer, new: SSMLayer, config: Mapping[str, Any]) -> dict[str, Any]:
        """New ``s5-pytorch`` leaves that realise ``new`` in this family's parameterisation.

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
        step = float(config["step_scale"])
        lam, B_tilde, C_tilde, D = _continuous(
            new, step, config["discretization"], 1.0, False, f"{ctx.where}: layer {layer.name!r}"
        )
        return {
            keys["Lambda"]: ctx.new(keys["Lambda"], lam),
            keys["B"]: ctx.new(keys["B"], to_pair(B_tilde)),
            keys["C"]: ctx.new(keys["C"], C_tilde),
            keys["D"]: ctx.new(keys["D"], D),
            keys["log_step"]: ctx.new(keys["log_step"], np.zeros(lam.shape[0])),
        }

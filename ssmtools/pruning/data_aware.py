"""``"empirical-balanced"`` (data-aware): balanced truncation with the empirical input Gramian of each layer.

Data-free balanced truncation weighs every input direction and frequency alike (white-noise Gramians). A
trained layer sees something else: smooth, correlated, channel-dependent inputs. With a small calibration batch
of the inputs each layer actually receives, the controllability Gramian is replaced by the **empirical** one,

    P̂ = (1/(S·T)) Σ_{s,t} x_t^{(s)} x_t^{(s)ᴴ},   x_t = Λx_{t−1} + Bu_t,

(augmented state for real output), which equals the closed-form P for unit white noise and otherwise weighs
the states by the energy the data puts into them — frequency-weighted balanced truncation with the data's own
spectrum (docs/concepts/reduction.md#data-aware-balanced-truncation). The observability Gramian is the
closed-form one over the same horizon, Q(T) with T the calibration sequences' length (outputs weighted
alike, over the steps the data spans). Unstable states are kept exactly, as for balanced truncation.

The batch is registered once (:func:`register_calibration`, or :func:`calibrate_module` from a live torch
module and a batch, through forward pre-hooks on the layer modules) and named in the reduction's option
``calibration=`` by its digest, so a plan stays serialisable and records which data it used. Clearly labelled
data-aware; every data-free reduction stays the default.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from .. import _kernels
from ..errors import ArgumentError, ShapeError
from ..norms import gramians
from ..reduction import _balancing, _minimal_order, _real_coordinates, _rediagonalize, _reduce_dense
from ..systems import BidirectionalSSM, DiagonalSSM, augmented_realization, real_realization
from .reductions import BalancedTruncation, fill_channels, register_reduction

if TYPE_CHECKING:
    from ..model import SSMLayer

__all__ = ["EmpiricalBalanced", "calibrate_module", "empirical_gramian", "register_calibration"]

_CALIBRATIONS: dict[str, dict[str, np.ndarray]] = {}


def register_calibration(inputs: Mapping[str, ArrayLike]) -> str:
    """Store layer inputs for ``"empirical-balanced"``; returns the digest to pass as ``calibration=``.

    Parameters
    ----------
    inputs : Mapping[str, array_like]
        Layer name -> the inputs that layer receives, shape ``(S, T, m)`` (S sequences of T steps, m channels).

    Returns
    -------
    str
        A digest of the data (16 hex digits), the key of the stored batch in this process.
    """
    digest = hashlib.sha256()
    stored = {}
    for name in sorted(inputs):
        value = inputs[name]
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        array = np.asarray(value, dtype=float)
        if array.ndim != 3 or not np.all(np.isfinite(array)):
            raise ShapeError(
                f"calibration inputs of layer {name!r} have shape {array.shape}: expected finite values of shape "
                "(sequences, steps, channels)"
            )
        stored[name] = array
        digest.update(name.encode())
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    key = digest.hexdigest()[:16]
    _CALIBRATIONS[key] = stored
    return key


def calibrate_module(module: Any, batch: Any, layers: list[str]) -> str:
    """Run a torch module on a batch, record the inputs of the named layer modules, register them.

    Parameters
    ----------
    module : torch.nn.Module
        The live model; ``layers`` are names of its submodules (``module.get_submodule``), which for state
        dicts read by ``ssmtools.load`` are the layer names of the model (e.g. ``"seqs.0.seq"``).
    batch : torch.Tensor
        Model input; the model is run once on it without gradients.
    layers : list of str
        The layer submodules whose first positional input is recorded, shape ``(S, T, m)``. A layer module
        called under ``torch.vmap`` (s5-pytorch's ``S5`` calls its ``seq`` once per sequence) hides its batched
        input; then the input of its parent module is recorded (``s5.S5`` passes it on unchanged).

    Returns
    -------
    str
        The digest from :func:`register_calibration`.
    """
    import torch

    recorded: dict[str, np.ndarray] = {}
    parents: dict[str, np.ndarray] = {}

    def hook(store: dict[str, np.ndarray], name: str):
        def record(_module: Any, args: tuple) -> None:
            try:
                store.setdefault(name, args[0].detach().cpu().numpy())
            except RuntimeError:  # a tensor under torch.vmap (s5-pytorch calls its SSM per sample)
                pass

        return record

    handles = []
    for name in layers:
        try:
            target = module.get_submodule(name)
            parent = module.get_submodule(name.rpartition(".")[0])
        except AttributeError:
            raise ArgumentError(
                f"the module has no submodule {name!r}; pass the layer names of ssmtools.load(...)"
            ) from None
        handles.append(target.register_forward_pre_hook(hook(recorded, name)))
        if parent is not module:
            handles.append(parent.register_forward_pre_hook(hook(parents, name)))
    try:
        with torch.no_grad():
            module(batch)
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in layers if name not in recorded and name not in parents]
    if missing:
        raise ArgumentError(f"the forward pass on the batch did not call the layer modules {missing}")
    recorded = {name: recorded.get(name, parents.get(name)) for name in layers}  # type: ignore[misc]
    return register_calibration(recorded)


def empirical_gramian(system: DiagonalSSM, inputs: ArrayLike) -> np.ndarray:
    """Empirical controllability Gramian ``(1/(S·T)) Σ x_t x_tᴴ`` of the augmented realization driven by ``inputs``.

    Parameters
    ----------
    system : DiagonalSSM
        Unbatched.
    inputs : array_like, shape ``(S, T, m)``
        S input sequences of T steps (zero initial state).

    Returns
    -------
    ndarray of complex128, shape ``(N, N)``
        N = n (complex output) or 2n (real output), the realization of :func:`ssmtools.gramians`.
    """
    u = np.asarray(inputs, dtype=float)
    if u.ndim != 3 or u.shape[-1] != system.n_inputs:
        raise ShapeError(f"inputs have shape {u.shape}; expected (sequences, steps, {system.n_inputs})")
    lam, B, _ = augmented_realization(system)
    drive = u @ B.T  # (S, T, N): B u_t
    x = np.zeros((u.shape[0], lam.size), dtype=complex)
    total = np.zeros((lam.size, lam.size), dtype=complex)
    for t in range(u.shape[1]):
        x = lam * x + drive[:, t]
        total += x.T @ np.conj(x)
    return total / (u.shape[0] * u.shape[1])


def _reduce_one(system: DiagonalSSM, inputs: np.ndarray, budget: int) -> DiagonalSSM:
    """Empirical-Gramian balanced truncation of one unbatched layer to at most ``budget`` stored states."""
    unstable = system.stability_margin <= 0
    n_u = int(np.count_nonzero(unstable))
    part = system.replace(poles=system.poles[~unstable], B=system.B[~unstable], C=system.C[:, ~unstable])
    kept = system.replace(poles=system.poles[unstable], B=system.B[unstable], C=system.C[:, unstable])
    room = max(budget - n_u, 0)
    if part.n_states:
        P, Q = empirical_gramian(part, inputs), gramians(part, horizon=inputs.shape[1])[1]
        if part.output == "real":
            P, Q = _real_coordinates(P, Q)
            A, B, C, _ = real_realization(part)
        else:
            A, B, C = np.diag(part.poles), part.B, part.C
        dim = 2 if part.output == "real" else 1
        hsv, TV, WU = _balancing(_kernels.psd_factor(P), _kernels.psd_factor(Q), dim * part.n_states)
        n_min = _minimal_order(hsv)
        candidate = min(dim * room, n_min)
        while True:
            A_r, B_r, C_r, _ = _reduce_dense(A, B, C, hsv, TV, WU, candidate, candidate, "sqrt", system.is_discrete)
            reduced = _rediagonalize(A_r, B_r, C_r, part.D, part)
            excess = reduced.n_states - room
            if excess <= 0 or candidate == 0:
                break
            candidate = max(candidate - excess, 0)
        part = reduced
    return part.replace(
        poles=np.concatenate([part.poles, kept.poles]),
        B=np.concatenate([part.B, kept.B]),
        C=np.concatenate([part.C, kept.C], axis=-1),
    )


@register_reduction
@dataclass(frozen=True)
class EmpiricalBalanced(BalancedTruncation):
    """**Data-aware** balanced truncation: empirical input Gramians from a registered calibration batch.

    Parameters
    ----------
    fit : {"states"}
        The stored-state budget is met exactly (largest real order whose re-diagonalised layer fits).
    unstable : {"keep"}
        States with |λ̄| ≥ 1 are kept exactly; the stable part is reduced.
    horizon : None
        No horizon: the calibration sequences' length plays its part.
    keep_stable : bool
        Inherited; no effect (no horizon).
    calibration : str, optional
        Digest from :func:`register_calibration` / :func:`calibrate_module` (required; ``None`` is refused with a
        message saying how to make one).

    Notes
    -----
    Causal layers only; a multi-SISO layer (batch of H single-input channels) takes channel h of the layer's
    inputs for batch element h. Written back with ``SSMModel.replace_systems`` like balanced truncation; the
    plan's errors are the usual data-free norms of ``G − G_r``.
    """

    name: ClassVar[str] = "empirical-balanced"
    calibration: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fit != "states" or self.horizon is not None or self.unstable != "keep":
            raise ArgumentError(
                "reduction 'empirical-balanced' fits the stored-state budget (fit='states'), keeps unstable states "
                "(unstable='keep') and has no horizon (the calibration sequences set it)"
            )

    def _inputs(self, layer: SSMLayer) -> np.ndarray:
        if self.calibration is None or self.calibration not in _CALIBRATIONS:
            raise ArgumentError(
                f"reduction 'empirical-balanced' needs calibration=<digest of a registered batch>, got "
                f"{self.calibration!r}; make one with ssmtools.pruning.data_aware.register_calibration({{layer: inputs}}) "
                "or calibrate_module(module, batch, layers) in this process"
            )
        stored = _CALIBRATIONS[self.calibration]
        if layer.name not in stored:
            raise ArgumentError(
                f"calibration {self.calibration!r} has no inputs for layer {layer.name!r} (it has {sorted(stored)})"
            )
        return stored[layer.name]

    def reduce_layer(self, layer: SSMLayer, keep: np.ndarray) -> tuple[np.ndarray, tuple[DiagonalSSM, ...]]:
        """Empirical-Gramian balanced truncation of every batch element to its number of kept slots.

        Parameters
        ----------
        layer : SSMLayer
            A causal layer with calibration inputs.
        keep : ndarray of bool
            Kept slots (only their count per batch element matters).

        Returns
        -------
        keep : ndarray of bool
            The prefix of the reduced stored-state count per batch element (channels filled to their budget
            with zero-gain states, :func:`~ssmtools.pruning.reductions.fill_channels`).
        systems : tuple of DiagonalSSM
            The re-diagonalised reductions, one per batch element.
        """
        system = layer.system
        if isinstance(system, BidirectionalSSM):
            raise ArgumentError(f"layer {layer.name!r} is bidirectional: 'empirical-balanced' needs a causal layer")
        inputs = self._inputs(layer)
        slots = keep.sum(axis=-1)
        if np.all(slots == keep.shape[-1]):
            return np.ones_like(keep), tuple([system[i] for i in np.ndindex(*system.batch_shape)] or [system])
        out = []
        for position, index in enumerate(np.ndindex(*system.batch_shape)):
            one = system[index] if system.batch_shape else system
            data = (
                inputs
                if not system.batch_shape
                else inputs[..., position * one.n_inputs : (position + 1) * one.n_inputs]
            )
            out.append(_reduce_one(one, data, int(slots[index])))
        return fill_channels(system, slots, tuple(out))

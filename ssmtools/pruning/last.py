"""``last_prune`` and ``last_scores``: checkpoint in, pruned checkpoint (same format) and plan out.

The one-call entry points of LAST (Gwak et al., NeurIPS 2024, arXiv 2411.02824): read the weights
through the adapters ([`ssmtools.load`][ssmtools.io.load]), score and allocate with [`prune_plan`][ssmtools.pruning.plan.prune_plan], then remove
the pruned states physically with [`ssmtools.SSMModel.apply`][ssmtools.model.SSMModel.apply] (smaller P, loadable by the original
package with the smaller state size) or, with ``mask=True``, zero them as the released code does.
Given a ``torch.nn.Module``, ``last_prune`` writes the result into the module itself and returns it (the
convention of Torch-Pruning), so the smaller module runs and trains as it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from ..adapters import refuse_training_state
from ..errors import ArgumentError, check_choice
from ..io import load, save
from ..model import SSMModel
from .allocation import AllocationRule
from .criteria import Criterion
from .measure import PLAN_RTOL
from .plan import Progress, apply_plan, as_model, prune_plan
from .reductions import Reduction
from .results import PruningPlan
from .scoring import Units

__all__ = ["last_prune", "last_scores"]


def _read(weights: Any, family: str, config: Mapping[str, Any]) -> SSMModel:
    if isinstance(weights, SSMModel):
        if config or family != "auto":
            raise ArgumentError(
                "weights is already an SSMModel: family= and config options apply when reading raw weights; pass "
                "them to ssmtools.load(...) instead"
            )
        return weights
    return load(weights, family, **config)


def _is_module(weights: Any) -> bool:
    """A ``torch.nn.Module`` (duck-typed: torch is imported only when one is given)."""
    return not isinstance(weights, Mapping) and callable(getattr(weights, "named_parameters", None))


def _write_into_module(module: Any, before: SSMModel, after: SSMModel) -> None:
    """Make ``module`` hold the parameters of ``after`` in place (``before``: what was read from it).

    A tensor of unchanged shape is copied into the existing parameter or buffer (optimisers keep their
    references); one of a new shape replaces it by a new ``torch.nn.Parameter`` (same dtype, device and
    ``requires_grad``) or buffer. A plain tensor attribute of a pruned layer's submodule whose size along a
    dimension is the layer's old state count is run-time state (LRU-pytorch keeps its recurrent state so): when
    it is all zeros it is resized to the new count; otherwise the module is refused before anything changes.
    """
    import torch

    original = before.params
    changed = [key for key, value in after.params.items() if value is not original[key]]
    stale: list[tuple[Any, str, int, int, int]] = []  # submodule, attribute, dimension, old, new count
    for name, layer in before.items():
        old, new = layer.system.poles.shape[-1], after[name].system.poles.shape[-1]
        if old == new:
            continue
        owner = module.get_submodule(name) if name else module
        for attribute, value in vars(owner).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter) and old in value.shape:
                if torch.count_nonzero(value):
                    raise ArgumentError(
                        f"layer {name or '(root)'!r}: the module holds a non-zero run-time tensor {attribute!r} of "
                        f"shape {tuple(value.shape)} sized by its {old} states; reset it (e.g. run no sequence, or "
                        "set it to zeros) before pruning the module in place, or prune module.state_dict() instead"
                    )
                stale.append((owner, attribute, list(value.shape).index(old), old, new))
    for key in changed:
        path, _, leaf = key.rpartition(".")
        owner = module.get_submodule(path) if path else module
        current, value = getattr(owner, leaf), after.params[key]
        with torch.no_grad():
            value = torch.as_tensor(value).to(device=current.device, dtype=current.dtype)
            if value.shape == current.shape:
                current.copy_(value)
            elif isinstance(current, torch.nn.Parameter):
                setattr(owner, leaf, torch.nn.Parameter(value.clone(), requires_grad=current.requires_grad))
            else:
                owner.register_buffer(leaf, value.clone(), persistent=leaf not in owner._non_persistent_buffers_set)
    for owner, attribute, dim, _old, new in stale:
        value = getattr(owner, attribute)
        shape = list(value.shape)
        shape[dim] = new
        setattr(owner, attribute, value.new_zeros(shape))


def _default_units(model: SSMModel, units: str, mask: bool) -> Units:
    check_choice("units", units, ("auto", "state", "channel-state"))
    if units == "state":
        return "state"
    if units == "channel-state":
        return "channel-state"
    multi_siso = any(layer.system.batch_shape for layer in model.values())
    return "state" if (multi_siso and not mask) else "channel-state"


def last_prune(
    weights: Any,
    ratio: float,
    criterion: str | Criterion = "last",
    *,
    reduction: str | Reduction | None = None,
    family: str = "auto",
    mask: bool = False,
    min_states_per_layer: int = 1,
    units: Literal["auto", "state", "channel-state"] = "auto",
    allocation: AllocationRule | None = None,
    errors: bool | Literal["absolute"] = True,
    criterion_options: Mapping[str, Any] | None = None,
    reduction_options: Mapping[str, Any] | None = None,
    output: str | os.PathLike | None = None,
    hinf_rtol: float = PLAN_RTOL,
    progress: Progress | None = None,
    **config: Any,
) -> tuple[Any, PruningPlan]:
    """Prune a fraction ``ratio`` of the stored states of an SSM checkpoint with LAST (or another criterion).

    Parameters
    ----------
    weights : str, os.PathLike, Mapping, torch.nn.Module or SSMModel
        A checkpoint file, an in-memory state dict / flax parameter tree, a module, or a model already
        read with [`ssmtools.load`][ssmtools.io.load] (S5 flax, s5-pytorch, S4D, LRU). A module is pruned
        in place: its SSM parameters are replaced by new, smaller ones (or masked, with ``mask=True``) and
        the module is returned; pass ``module.state_dict()`` to leave it untouched.
    ratio : float
        Fraction of stored states removed model-wide, in [0, 1) (``0.3`` for the released code's
        ``--pruning_ratio=30``).
    criterion : str or Criterion
        A name of [`available_criteria`][ssmtools.pruning.criteria.available_criteria] (default LAST) or an instance; see
        [`prune_plan`][ssmtools.pruning.plan.prune_plan].
    reduction : str or Reduction, optional
        What is done to the layers ([`available_reductions`][ssmtools.pruning.reductions.available_reductions]); default: the
        criterion's ``default_reduction`` (modal truncation, except balanced truncation for the
        Hankel-slot criterion).
    family : str
        Passed to [`ssmtools.load`][ssmtools.io.load] (``"auto"`` detects it).
    mask : bool
        ``False`` (default): remove the pruned states (smaller arrays). ``True``: zero their input rows
        and output columns, shapes unchanged — the released code's behaviour (modal truncation only).
    min_states_per_layer : int
        Floor on the states every layer keeps (≥ 1).
    units : {"auto", "state", "channel-state"}
        Prunable units of multi-SISO (S4D) layers. ``"auto"``: ``"state"`` (a state removed from every
        channel, as physical removal requires) unless ``mask=True``, then ``"channel-state"``.
    allocation : {"exact", "released"}, optional
        ``"exact"`` meets the ratio exactly; ``"released"`` uses the released code's threshold rule.
        Default: the criterion's (``"released"`` for ``"last-official"``, ``"exact"`` otherwise).
    errors : bool or "absolute"
        Exact truncation errors in the plan (see [`prune_plan`][ssmtools.pruning.plan.prune_plan]). Default
        ``True``: ‖G − G_r‖∞ and ‖G − G_r‖₂, absolute and relative to the unpruned layer's norms (its H∞
        certified to ``hinf_rtol``). ``"absolute"`` skips the unpruned layers' H∞ norms (no relative H∞ error;
        the previous default), ``False`` skips all norms.
    criterion_options : Mapping, optional
        Options for a criterion given by name.
    reduction_options : Mapping, optional
        Options for the reduction.
    output : str or os.PathLike, optional
        Also write the pruned weights there ([`ssmtools.save`][ssmtools.io.save]: atomic, format from the extension,
        never over the input file).
    hinf_rtol : float
        Relative accuracy certified for the plan's H∞ norms (default
        :data:`~ssmtools.pruning.measure.PLAN_RTOL` = 1e-4).
    progress : callable, optional
        ``progress(items, what)`` iterating the layers while showing progress (see
        [`prune_plan`][ssmtools.pruning.plan.prune_plan]); the CLI passes its progress bar.
    **config
        Settings not stored in the weights, for [`ssmtools.load`][ssmtools.io.load] (``conj_sym``, ``step_rescale``,
        ``discretization``, ``clip_eigs``, ...).

    Returns
    -------
    pruned : same type as the parameters read (nested dict / state dict), or the module
        The pruned parameters in the original format; non-SSM entries are shared, the input is not modified.
        For a ``torch.nn.Module``: that module, pruned in place (its output is the masked model's).
    plan : PruningPlan
        What was kept, the scores, the threshold and each layer's exact ‖G − G_r‖∞, ‖G − G_r‖₂.

    Notes
    -----
    Physical removal of state i deletes λ̄_i's parameters (e.g. ``Lambda_re[i]``, ``Lambda_im[i]``,
    ``log_step[i]``), the row ``B[i]`` and the column(s) ``C[:, i]`` (both scans when bidirectional);
    D and every other parameter stay. The pruned model's output equals the masked model's (modal
    truncation, docs/concepts/derivations.md#modal-truncation-error), and on any input sequence ``‖y − y_pruned‖₂ ≤ hinf_error·‖u‖₂`` per layer.

    Examples
    --------
    >>> import numpy as np, ssmtools
    >>> rng = np.random.default_rng(0)
    >>> seq = {"Lambda_re": -rng.uniform(0.1, 1, 4), "Lambda_im": rng.normal(size=4),
    ...        "B": rng.normal(size=(4, 2, 2)), "C": rng.normal(size=(2, 4, 2)), "D": np.ones(2),
    ...        "log_step": np.full((4, 1), -2.0)}
    >>> pruned, plan = ssmtools.last_prune({"layers_0": {"seq": seq}}, 0.5)
    >>> pruned["layers_0"]["seq"]["Lambda_re"].shape, plan.n_removed
    ((2,), 2)
    """
    model = _read(weights, family, config)
    if model.params is not None:  # before the work: the write-back would refuse it anyway
        refuse_training_state(model.params, model.source or "<in-memory parameters>")
    plan = prune_plan(
        model,
        ratio,
        criterion,
        min_states_per_layer=min_states_per_layer,
        units=_default_units(model, units, mask),
        allocation=allocation,
        errors=errors,
        criterion_options=criterion_options,
        reduction=reduction,
        reduction_options=reduction_options,
        hinf_rtol=hinf_rtol,
        progress=progress,
    )
    pruned = apply_plan(model, plan, mask=mask)
    if output is not None:
        save(pruned, output)
    if _is_module(weights):
        _write_into_module(weights, model, pruned)
        return weights, plan
    return pruned.params, plan


def last_scores(
    weights: Any,
    criterion: str | Criterion = "last",
    *,
    family: str = "auto",
    normalized: bool = True,
    units: Units = "channel-state",
    criterion_options: Mapping[str, Any] | None = None,
    **config: Any,
) -> dict[str, np.ndarray]:
    """Per-state scores of every layer (what [`last_prune`][ssmtools.pruning.last.last_prune] ranks), without pruning.

    Parameters
    ----------
    weights : str, os.PathLike, Mapping, torch.nn.Module, SSMModel, or Mapping[str, DiagonalSSM]
        A checkpoint or parameter tree (read with [`ssmtools.load`][ssmtools.io.load]), a model, or named systems.
    criterion : str or Criterion
        As for [`last_prune`][ssmtools.pruning.last.last_prune].
    family : str
        Passed to [`ssmtools.load`][ssmtools.io.load].
    normalized : bool
        ``True``: the normalised scores compared across layers (LAMP for LAST: the top state of every
        layer scores 1); ``False``: the criterion's raw scores (squared per-state H∞ for LAST).
    units : {"state", "channel-state"}
        Multi-SISO layers: score (channel, state) modes or states shared by all channels.
    criterion_options : Mapping, optional
        Options for a criterion given by name.
    **config
        Loader settings, as for [`last_prune`][ssmtools.pruning.last.last_prune].

    Returns
    -------
    dict[str, ndarray]
        Layer name -> scores of shape ``layer.system.poles.shape`` (a shared state's score repeated
        over channels). Unstable states score ``inf`` under the stability-guarded criteria and raise
        one [`UnstableSystemWarning`][ssmtools.errors.UnstableSystemWarning].
    """
    if isinstance(weights, SSMModel) or (
        isinstance(weights, Mapping)
        and weights
        and not config
        and family == "auto"
        and all(hasattr(v, "poles") or hasattr(v, "system") for v in weights.values())
    ):
        model = as_model(weights)
    else:
        model = _read(weights, family, config)
    if model.params is not None:  # before the work: the write-back would refuse it anyway
        refuse_training_state(model.params, model.source or "<in-memory parameters>")
    plan = prune_plan(model, 0.0, criterion, units=units, errors=False, criterion_options=criterion_options)
    return {layer.name: (layer.scores if normalized else layer.raw_scores) for layer in plan.layers}

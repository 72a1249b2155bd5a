"""``prune_plan``: score → allocate → reduce → measure, for a model-wide pruning ratio.

Each step is a public function that can be used (and is tested) on its own:

1. [`score_model`][ssmtools.pruning.scoring.score_model] — a [`Criterion`][ssmtools.pruning.criteria.Criterion]
   scores every stored state; scores are grouped into prunable units and normalised per layer;
2. [`allocate`][ssmtools.pruning.allocation.allocate] — one global ranking (``scope="global"`` criteria) or
   the same ratio in every layer (``scope="layer"``) gives every layer's keep mask;
3. [`reduce_model`][ssmtools.pruning.reductions.reduce_model] — a [`Reduction`][ssmtools.pruning.reductions.Reduction]
   (modal truncation, balanced truncation, ...) reduces every layer to its mask;
4. [`measure`][ssmtools.pruning.measure.measure] — the exact ``‖G − G_r‖∞``, ``‖G − G_r‖₂`` of every layer.

[`apply_plan`][ssmtools.pruning.plan.apply_plan] then writes a plan into the weights through the reduction the plan records.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, UnstableSystemWarning, check_choice
from ..model import SSMLayer, SSMModel
from ..systems import BidirectionalSSM, DiagonalSSM
from .allocation import AllocationRule, allocate, check_ratio
from .criteria import Criterion
from .measure import PLAN_RTOL, measure
from .reductions import Reduction, get_reduction
from .results import LayerPruning, PruningPlan
from .scoring import Units, score_model

__all__ = ["prune_plan", "apply_plan", "as_model", "Progress"]

Progress = Callable[[list[Any], str], Iterable[Any]]
"""A progress callback ``progress(items, what)``: iterates ``items`` (one per layer) while showing progress, e.g.
the CLI's progress bar; ``what`` names the work ("norms", "errors")."""


# ------------------------------------------------------------------------------------------ helpers
def as_model(model: Any) -> SSMModel:
    """An [`SSMModel`][ssmtools.model.SSMModel] from a model, a mapping of named systems/layers, or a list of systems.

    Parameters
    ----------
    model : SSMModel, Mapping[str, DiagonalSSM, BidirectionalSSM or SSMLayer] or list of DiagonalSSM
        The layers; unnamed systems become ``layer_0``, ``layer_1``, ...

    Returns
    -------
    SSMModel
    """
    if isinstance(model, SSMModel):
        return model
    if isinstance(model, DiagonalSSM):
        model = [model]
    if isinstance(model, (list, tuple)):
        model = {f"layer_{i}": value for i, value in enumerate(model)}
    if isinstance(model, Mapping):
        layers = {}
        for name, value in model.items():
            if isinstance(value, SSMLayer):
                layers[name] = value
            elif isinstance(value, (DiagonalSSM, BidirectionalSSM)):
                layers[name] = SSMLayer(name, value)
            else:
                raise ArgumentTypeError(
                    f"layer {name!r} is a {type(value).__name__}; expected a DiagonalSSM or SSMLayer"
                )
        return SSMModel(layers)
    raise ArgumentTypeError(
        f"expected an SSMModel (ssmtools.load(...)), a mapping of named DiagonalSSM/SSMLayer or a list of "
        f"DiagonalSSM, got {type(model).__name__}"
    )


# ------------------------------------------------------------------------------------------ public
def prune_plan(
    model: Any,
    ratio: float,
    criterion: str | Criterion = "last",
    *,
    reduction: str | Reduction | None = None,
    min_states_per_layer: int = 1,
    units: Units = "channel-state",
    allocation: AllocationRule | None = None,
    errors: bool | Literal["absolute"] = True,
    criterion_options: Mapping[str, Any] | None = None,
    reduction_options: Mapping[str, Any] | None = None,
    hinf_rtol: float = PLAN_RTOL,
    progress: Progress | None = None,
) -> PruningPlan:
    """Decide which stored states to remove so that a fraction ``ratio`` of the model's states goes.

    Parameters
    ----------
    model : SSMModel, Mapping[str, DiagonalSSM or SSMLayer] or list of DiagonalSSM
        The layers (``ssmtools.load(...)`` or hand-built).
    ratio : float
        Fraction of stored states removed model-wide, in [0, 1) (``0.3``, not ``30``). A stored state
        of a conjugate-symmetric layer is a conjugate pair (two real dimensions).
    criterion : str or Criterion
        A name of [`available_criteria`][ssmtools.pruning.criteria.available_criteria] or an instance: scores the units.
    reduction : str or Reduction, optional
        What is done to every layer: a name of [`available_reductions`][ssmtools.pruning.reductions.available_reductions] or an
        instance. Default: the criterion's ``default_reduction`` (modal truncation, except balanced
        truncation for the Hankel-slot criterion; see docs/concepts/pruning.md).
    min_states_per_layer : int
        Every layer keeps at least this many units (every channel, with ``units="channel-state"`` on
        multi-SISO layers), so no layer is emptied. ≥ 1.
    units : {"channel-state", "state"}
        Multi-SISO layers (S4D, ``batch_shape == (H,)``): ``"channel-state"`` prunes every (channel,
        state) mode on its own; ``"state"`` prunes state n in all channels at once (scores combined by
        the criterion's ``channel_reduction``: max for H∞-type, sum for energies) — needed for physical
        removal, which requires the same number of states in every channel. No effect on MIMO layers.
    allocation : {"exact", "released"}, optional
        Default: the criterion's ``default_allocation`` (the released rule for the criterion that reproduces
        the released LAST code, so that it keeps the states that code keeps; exact for the others). ``"exact"``: remove exactly ⌊ratio·U + 1e-9⌋ of the U units (see Notes). ``"released"``: the
        released LAST code's rule, ``K = max(int(U·(100 − 100·ratio)/100), 1)`` units kept, threshold
        τ = the K-th largest score, keep ⇔ score ≥ τ (so ties at τ keep more than K; docs/concepts/derivations.md#allocation).
    errors : bool or "absolute"
        ``True``: every layer's exact truncation errors ‖G − G_r‖∞ (AB13DD on the I/O-compressed error
        system) and ‖G − G_r‖₂ (closed-form Gramians), and the unpruned layer's norms for the relative
        errors. ``"absolute"``: skip the unpruned layers' H∞ norms — on wide layers (H ≫ P) the
        dominant cost, since D has full rank H — keeping the errors and the relative H2 error.
        ``False``: no norms (None in the plan).
    criterion_options : Mapping, optional
        Options for a criterion given by name (e.g. ``{"bidirectional_formula": "intended"}``).
    reduction_options : Mapping, optional
        Options for the reduction (its dataclass fields).
    hinf_rtol : float
        Relative accuracy certified for the plan's H∞ norms (default
        :data:`~ssmtools.pruning.measure.PLAN_RTOL` = 1e-4; 1e-8 for publication-grade digits).
    progress : callable, optional
        ``progress(items, what)`` iterates the layers of the reduce-and-measure step (the long one) while showing
        progress; the CLI passes its progress bar. ``None``: no progress shown.

    Returns
    -------
    PruningPlan

    Notes
    -----
    **Ranking and ties.** Units are ordered by (normalised score, raw score, layer position, unit
    index) ascending and removed from the front: among equal scores the unit of the earlier layer,
    then the lower state index (channel-major for (channel, state) units), goes first. A layer's (or
    channel's) ``min_states_per_layer`` best units are never removed. ``scope="layer"`` criteria
    remove ⌊ratio·U_l⌋ units from every layer, the remainder up to ⌊ratio·U⌋
    going to the layers with the largest fractional parts (earlier layer first).

    **Exactness.** With equal unit sizes (always for S5, LRU, and (channel, state) units) exactly
    ⌊ratio·U + 1e-9⌋ units are removed, so the ratio is met exactly whenever ratio·U is an integer; a
    ratio that ``min_states_per_layer`` makes infeasible raises ValueError. With ``units="state"`` on
    multi-SISO layers of different widths, units are removed greedily in score order while the removed
    stored-state count stays ≤ ⌊ratio·N⌋.

    **Pipeline.** ``prune_plan`` is [`score_model`][ssmtools.pruning.scoring.score_model],
    [`allocate`][ssmtools.pruning.allocation.allocate], [`Reduction.reduce`][ssmtools.pruning.reductions.Reduction.reduce] and
    [`measure`][ssmtools.pruning.measure.measure] in sequence; call them one by one to inspect or replace
    a step.

    **Errors.** Removing a set S of states of a diagonal layer leaves D and the other states unchanged,
    so G − G_r is the subsystem of S alone with D = 0 (docs/concepts/derivations.md#modal-truncation-error): ``hinf_error`` is its H∞ norm
    (AB13DD; L∞ of forward plus backward part for bidirectional layers), ``h2_error`` its H2 norm,
    both exact; relative errors divide by the unpruned layer's norms (D included). Multi-SISO layers
    are block-diagonal over channels: H∞ = max over channels, H2² = sum.

    Unstable states (|λ̄| ≥ 1) give an [`UnstableSystemWarning`][ssmtools.errors.UnstableSystemWarning] and are listed
    in ``plan.unstable``; criteria that score them ``inf`` always keep them.
    """
    ratio = check_ratio(ratio)
    check_choice("units", units, ("channel-state", "state"))
    if allocation is not None:
        check_choice("allocation", allocation, ("exact", "released"))
    check_choice("errors", errors, (True, False, "absolute"))
    model = as_model(model)
    if len(model) == 0:
        raise ArgumentError("the model has no SSM layers to prune")
    scores = score_model(model, criterion, units=units, criterion_options=criterion_options)
    crit = scores.criterion
    defaults = crit.reduction_options() if reduction is None else {}
    method = get_reduction(
        crit.default_reduction if reduction is None else reduction, **{**defaults, **dict(reduction_options or {})}
    )
    if method.selects_states and not crit.ranks_states:
        raise ArgumentError(
            f"criterion {crit.name!r} does not score stored states, so its ranking cannot select states for the "
            f"{method.name!r} reduction; use its default reduction {crit.default_reduction!r} (reduction=None)"
        )
    allocation = crit.default_allocation if allocation is None else allocation
    chosen = allocate(scores, ratio, allocation=allocation, min_states_per_layer=min_states_per_layer)

    results = []
    pairs = list(zip(model.values(), scores.layers))
    for layer, layer_scores in pairs if progress is None else progress(pairs, "errors" if errors else "reduce"):
        reduced = method.reduce(layer, chosen.keep[layer.name])
        cost = measure(layer, reduced, relative_hinf=errors is True, rtol=hinf_rtol) if errors else None
        results.append(
            LayerPruning(
                name=layer.name,
                keep=reduced.keep,
                scores=layer_scores.scores,
                raw_scores=layer_scores.raw,
                n_total=int(reduced.keep.size),
                n_kept=reduced.n_kept,
                n_allocated=int(np.count_nonzero(chosen.keep[layer.name])),
                n_padded=reduced.n_padded,
                n_unstable=int(np.count_nonzero(layer.system.stability_margin <= 0)),
                n_unstable_removed=int(np.count_nonzero((layer.system.stability_margin <= 0) & ~reduced.keep))
                if method.selects_states
                else 0,
                bidirectional=layer.bidirectional,
                threshold=chosen.thresholds[layer.name],
                hinf_error=None if cost is None else cost.hinf_error,
                h2_error=None if cost is None else cost.h2_error,
                hinf_norm=None if cost is None else cost.hinf_norm,
                h2_norm=None if cost is None else cost.h2_norm,
            )
        )
    unstable_total = sum(r.n_unstable for r in results)
    if unstable_total:
        where = {r.name: r.n_unstable for r in results if r.n_unstable}
        removed = sum(r.n_unstable_removed for r in results)
        warnings.warn(
            f"{unstable_total} of {sum(r.n_total for r in results)} stored states are not asymptotically stable "
            f"(|λ̄| ≥ 1) in layers {where}: their norms are infinite; this plan removes {removed} of them; see "
            "plan.unstable and LayerPruning.n_unstable_removed",
            UnstableSystemWarning,
            stacklevel=2,
        )
    return PruningPlan(
        criterion=crit.name,
        criterion_options=crit.options(),
        ratio=ratio,
        allocation=allocation,
        units=units,
        min_states_per_layer=int(min_states_per_layer),
        threshold=chosen.threshold,
        layers=tuple(results),
        reduction=method.name,
        reduction_options=method.options(),
    )


def apply_plan(model: SSMModel, plan: PruningPlan, *, mask: bool = False) -> SSMModel:
    """Write a plan into the model's weights through the reduction the plan records.

    Parameters
    ----------
    model : SSMModel
        The model the plan was made for, read from a checkpoint (its ``params`` are not modified).
    plan : PruningPlan
        From [`prune_plan`][ssmtools.pruning.plan.prune_plan] or [`PruningPlan.from_json`][ssmtools.pruning.results.PruningPlan.from_json]; ``plan.reduction`` must be registered
        ([`available_reductions`][ssmtools.pruning.reductions.available_reductions]).
    mask : bool
        ``True``: zero the removed states instead of deleting them (shapes unchanged); only for
        reductions that select states (modal truncation).

    Returns
    -------
    SSMModel
        A new model in the same family and format.
    """
    method = get_reduction(plan.reduction, **plan.reduction_options)
    return method.apply(model, {layer.name: layer.keep for layer in plan.layers}, mask=mask)

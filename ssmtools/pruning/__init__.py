"""State pruning for deep SSMs as score → allocate → reduce → measure, with LAST and its relatives.

- [`criteria`][ssmtools.pruning.criteria] — [`Criterion`][ssmtools.pruning.criteria.Criterion] and its registry ([`available_criteria`][ssmtools.pruning.criteria.available_criteria],
  [`get_criterion`][ssmtools.pruning.criteria.get_criterion]); the Hankel-slot criterion ``"balanced"`` in [`balanced`][ssmtools.pruning.balanced];
- [`normalize`][ssmtools.pruning.normalize] — [`lamp_normalize`][ssmtools.pruning.normalize.lamp_normalize] (the one LAMP/LAST normalisation);
- [`scoring`][ssmtools.pruning.scoring] — [`score_model`][ssmtools.pruning.scoring.score_model] (step 1: units and normalised scores);
- [`allocation`][ssmtools.pruning.allocation] — [`allocate`][ssmtools.pruning.allocation.allocate] (step 2: keep masks for a model-wide ratio);
- [`reductions`][ssmtools.pruning.reductions] — [`Reduction`][ssmtools.pruning.reductions.Reduction] and its registry ([`available_reductions`][ssmtools.pruning.reductions.available_reductions],
  [`get_reduction`][ssmtools.pruning.reductions.get_reduction]), [`reduce_model`][ssmtools.pruning.reductions.reduce_model] (step 3: modal or balanced truncation);
- [`measure`][ssmtools.pruning.measure] — [`measure`][ssmtools.pruning.measure] (step 4: exact ‖G − G_r‖∞, ‖G − G_r‖₂);
- [`plan`][ssmtools.pruning.plan] — [`prune_plan`][ssmtools.pruning.plan.prune_plan] (the four steps) and [`apply_plan`][ssmtools.pruning.plan.apply_plan];
- [`results`][ssmtools.pruning.results] — [`PruningPlan`][ssmtools.pruning.results.PruningPlan], [`LayerPruning`][ssmtools.pruning.results.LayerPruning] (tables, JSON);
- [`last`][ssmtools.pruning.last] — [`last_prune`][ssmtools.pruning.last.last_prune], [`last_scores`][ssmtools.pruning.last.last_scores] (checkpoint in, pruned checkpoint out).
"""

from . import balanced as balanced  # registers "balanced"
from .allocation import Allocation as Allocation, allocate as allocate
from .criteria import (
    Criterion as Criterion,
    available_criteria as available_criteria,
    get_criterion as get_criterion,
    register as register,
)
from .last import last_prune as last_prune, last_scores as last_scores
from .measure import LayerErrors as LayerErrors, measure as measure
from .normalize import lamp_normalize as lamp_normalize
from .plan import apply_plan as apply_plan, prune_plan as prune_plan
from .reductions import (
    BalancedTruncation as BalancedTruncation,
    ModalTruncation as ModalTruncation,
    ReducedLayer as ReducedLayer,
    Reduction as Reduction,
    available_reductions as available_reductions,
    get_reduction as get_reduction,
    reduce_model as reduce_model,
    register_reduction as register_reduction,
)
from .results import LayerPruning as LayerPruning, PruningPlan as PruningPlan
from .scoring import LayerScores as LayerScores, ModelScores as ModelScores, score_model as score_model

"""State pruning for deep SSMs as score → allocate → reduce → measure, with LAST and its relatives.

- :mod:`~ssmtools.pruning.criteria` — :class:`Criterion` and its registry (:func:`available_criteria`,
  :func:`get_criterion`); the Hankel-slot criterion ``"balanced"`` in :mod:`~ssmtools.pruning.balanced`;
- :mod:`~ssmtools.pruning.normalize` — :func:`lamp_normalize` (the one LAMP/LAST normalisation);
- :mod:`~ssmtools.pruning.scoring` — :func:`score_model` (step 1: units and normalised scores);
- :mod:`~ssmtools.pruning.allocation` — :func:`allocate` (step 2: keep masks for a model-wide ratio);
- :mod:`~ssmtools.pruning.reductions` — :class:`Reduction` and its registry (:func:`available_reductions`,
  :func:`get_reduction`), :func:`reduce_model` (step 3: modal or balanced truncation);
- :mod:`~ssmtools.pruning.data_aware` — ``"empirical-balanced"`` (data-aware: empirical input Gramians);
- :mod:`~ssmtools.pruning.error_allocation` — ``"h2-greedy"`` (orders allocated greedily on exact H2 errors);
- :mod:`~ssmtools.pruning.h2_optimal` — ``"h2-optimal"`` (H2-optimal reduction from balanced truncation);
- :mod:`~ssmtools.pruning.refit` — ``"balanced-refit"`` (balanced truncation, C and diagonal D refitted in H2);
- :mod:`~ssmtools.pruning.measure` — :func:`measure` (step 4: exact ‖G − G_r‖∞, ‖G − G_r‖₂);
- :mod:`~ssmtools.pruning.plan` — :func:`prune_plan` (the four steps) and :func:`apply_plan`;
- :mod:`~ssmtools.pruning.results` — :class:`PruningPlan`, :class:`LayerPruning` (tables, JSON);
- :mod:`~ssmtools.pruning.selective` — ``"gramian"`` and :func:`selective_prune_plan` (Mamba d_state pruning);
- :mod:`~ssmtools.pruning.last` — :func:`last_prune`, :func:`last_scores` (checkpoint in, pruned checkpoint out).
"""

from . import (
    balanced as balanced,  # registers "balanced"
    data_aware as data_aware,  # registers "empirical-balanced" (data-aware)
    error_allocation as error_allocation,  # registers "h2-greedy"
    h2_optimal as h2_optimal,  # registers "h2-optimal"
    refit as refit,  # registers "balanced-refit"
)
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
    SingularPerturbation as SingularPerturbation,
    available_reductions as available_reductions,
    get_reduction as get_reduction,
    reduce_model as reduce_model,
    register_reduction as register_reduction,
)
from .results import LayerPruning as LayerPruning, PruningPlan as PruningPlan
from .scoring import LayerScores as LayerScores, ModelScores as ModelScores, score_model as score_model
from .selective import EmpiricalGramian as EmpiricalGramian, selective_prune_plan as selective_prune_plan

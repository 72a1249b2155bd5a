"""State pruning for deep SSMs: LAST and its relatives, as pluggable criteria and a model-wide plan.

- :mod:`~ssmtools.pruning.criteria` — :class:`Criterion`, the registry (:func:`get_criterion`) and every
  criterion (``"last"``, ``"last-official"``, ``"last-exact"``, ``"aire"``, ``"uniform-hinf"``,
  ``"global-hinf"``, ``"magnitude"``, ``"lamp-magnitude"``, ``"random"``; ``"balanced"`` in
  :mod:`~ssmtools.pruning.balanced`);
- :mod:`~ssmtools.pruning.normalize` — :func:`lamp_normalize` (the one LAMP/LAST normalisation);
- :mod:`~ssmtools.pruning.plan` — :func:`prune_plan` and :class:`PruningPlan`;
- :mod:`~ssmtools.pruning.last` — :func:`last_prune`, :func:`last_scores` (checkpoint in, pruned checkpoint out).
"""

from . import balanced as balanced  # registers "balanced"
from .criteria import (
    Criterion as Criterion,
    available_criteria as available_criteria,
    get_criterion as get_criterion,
    register as register,
)
from .last import last_prune as last_prune, last_scores as last_scores
from .normalize import lamp_normalize as lamp_normalize
from .plan import LayerPruning as LayerPruning, PruningPlan as PruningPlan, prune_plan as prune_plan

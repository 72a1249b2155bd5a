"""ssmtools: control theory for deep state-space models.

Public API (re-exported by name; importing does no work):

- :class:`DiagonalSSM`, :func:`freqresp` — the batched diagonal LTI system;
- :func:`hinf_norm`, :func:`hinf_bounds`, :func:`h2_norm`, :func:`state_hinf_norms`, :func:`state_h2_norms`,
  :func:`gramians`, :func:`hankel_singular_values` — exact norms;
- :func:`modal_truncation`, :func:`balanced_truncation`, :class:`ReductionResult` — model reduction
  with error bounds, returning DiagonalSSM layers;
- :func:`load`, :func:`save`, :class:`SSMModel`, :class:`SSMLayer` — S5/S4D/LRU checkpoints.
- :func:`prune_plan`, :class:`PruningPlan`, :func:`last_prune`, :func:`last_scores` — LAST state pruning
  (criteria in :mod:`ssmtools.pruning`);
- :mod:`ssmtools.plot` — sigma/Bode plots, pole maps, score distributions, HSV decay, pruning curves
  (matplotlib, imported on first use).
"""

from . import (
    examples as examples,
    plot as plot,  # matplotlib is imported inside the plot functions, on first use
)
from ._version import __version__ as __version__
from .errors import (
    FormatError as FormatError,
    NonFiniteError as NonFiniteError,
    NotDiagonalizableError as NotDiagonalizableError,
    ShapeError as ShapeError,
    SSMToolsError as SSMToolsError,
    UnstableSystemWarning as UnstableSystemWarning,
)
from .io import load as load, save as save
from .model import SSMLayer as SSMLayer, SSMModel as SSMModel
from .norms import (
    gramians as gramians,
    h2_norm as h2_norm,
    hankel_singular_values as hankel_singular_values,
    hinf_bounds as hinf_bounds,
    hinf_norm as hinf_norm,
    state_h2_norms as state_h2_norms,
    state_hinf_norms as state_hinf_norms,
)
from .pruning import (
    PruningPlan as PruningPlan,
    last_prune as last_prune,
    last_scores as last_scores,
    prune_plan as prune_plan,
)
from .reduction import (
    ReductionResult as ReductionResult,
    balanced_truncation as balanced_truncation,
    modal_truncation as modal_truncation,
)
from .systems import DiagonalSSM as DiagonalSSM, freqresp as freqresp


"""ssmtools: control theory for deep state-space models.

Public API (re-exported by name; importing does no work):

- :class:`DiagonalSSM`, :class:`BidirectionalSSM`, :func:`freqresp` — the batched diagonal LTI system and the
  bidirectional (non-causal) layer;
- :func:`hinf_norm`, :func:`hinf_result` (:class:`HinfResult`: value, peak, certified bracket), :func:`h2_norm`,
  :func:`state_hinf_norms`, :func:`state_hinf_result`, :func:`state_h2_norms`, :func:`gramians`,
  :func:`hankel_singular_values` — exact norms of either system type;
- :func:`modal_truncation`, :func:`balanced_truncation`, :class:`ReductionResult` — model reduction
  with error bounds, returning DiagonalSSM layers;
- :func:`load`, :func:`save`, :class:`SSMModel`, :class:`SSMLayer` — S5/S4D/LRU checkpoints.
- :func:`prune_plan`, :class:`PruningPlan`, :func:`last_prune`, :func:`last_scores` — LAST state pruning
  (criteria in :mod:`ssmtools.pruning`);
- :mod:`ssmtools.plot` — sigma/Bode plots, pole maps, score distributions, HSV decay, pruning curves
  (matplotlib, imported on first use);
- :mod:`ssmtools.torch` — differentiable norms, live-module views and training penalties (PyTorch; imported on
  first access of ``ssmtools.torch``).
"""

import importlib
from typing import Any as _Any

from . import (
    examples as examples,
    plot as plot,  # matplotlib is imported inside the plot functions, on first use
)
from ._version import __version__ as __version__
from .errors import (
    ArgumentError as ArgumentError,
    ArgumentTypeError as ArgumentTypeError,
    BatchIndexError as BatchIndexError,
    FormatError as FormatError,
    NonFiniteError as NonFiniteError,
    NotDiagonalizableError as NotDiagonalizableError,
    OptionError as OptionError,
    ShapeError as ShapeError,
    SSMToolsError as SSMToolsError,
    UnknownNameError as UnknownNameError,
    UnstableSystemWarning as UnstableSystemWarning,
)
from .io import load as load, save as save
from .model import SSMLayer as SSMLayer, SSMModel as SSMModel
from .norms import (
    HinfResult as HinfResult,
    gramians as gramians,
    h2_norm as h2_norm,
    hankel_singular_values as hankel_singular_values,
    hinf_norm as hinf_norm,
    hinf_result as hinf_result,
    state_h2_norms as state_h2_norms,
    state_hinf_norms as state_hinf_norms,
    state_hinf_result as state_hinf_result,
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
from .systems import BidirectionalSSM as BidirectionalSSM, DiagonalSSM as DiagonalSSM, freqresp as freqresp


def __getattr__(name: str) -> _Any:
    """``ssmtools.torch`` is imported on first access (it needs PyTorch; ``import ssmtools`` never imports it)."""
    if name == "torch":
        return importlib.import_module(f"{__name__}.torch")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""ssmtools: control theory for deep state-space models.

Public API (re-exported by name; importing does no work):

- [`DiagonalSSM`][ssmtools.systems.DiagonalSSM], [`BidirectionalSSM`][ssmtools.systems.BidirectionalSSM], [`freqresp`][ssmtools.systems.freqresp] — the batched diagonal LTI system and the
  bidirectional (non-causal) layer; [`impulse_response`][ssmtools.responses.impulse_response], [`step_response`][ssmtools.responses.step_response] — their time responses;
- [`hinf_norm`][ssmtools.norms.hinf_norm], [`hinf_result`][ssmtools.norms.hinf_result] ([`HinfResult`][ssmtools.norms.HinfResult]: value, peak, certified bracket), [`h2_norm`][ssmtools.norms.h2_norm],
  [`state_hinf_norms`][ssmtools.norms.state_hinf_norms], [`state_hinf_result`][ssmtools.norms.state_hinf_result], [`state_h2_norms`][ssmtools.norms.state_h2_norms], [`gramians`][ssmtools.norms.gramians], [`gramian_factors`][ssmtools.norms.gramian_factors],
  [`hankel_singular_values`][ssmtools.norms.hankel_singular_values] — exact norms of either system type;
- [`modal_truncation`][ssmtools.reduction.modal_truncation], [`balanced_truncation`][ssmtools.reduction.balanced_truncation], [`ReductionResult`][ssmtools.reduction.ReductionResult] — model reduction
  with error bounds, returning DiagonalSSM layers;
- [`load`][ssmtools.io.load], [`save`][ssmtools.io.save], [`SSMModel`][ssmtools.model.SSMModel], [`SSMLayer`][ssmtools.model.SSMLayer] — S5/S4D/LRU checkpoints.
- [`available_families`][ssmtools.adapters.available_families] — the checkpoint formats the adapters read (registry of [`ssmtools.adapters`][ssmtools.adapters]);
- [`prune_plan`][ssmtools.pruning.plan.prune_plan], [`PruningPlan`][ssmtools.pruning.results.PruningPlan], [`last_prune`][ssmtools.pruning.last.last_prune], [`last_scores`][ssmtools.pruning.last.last_scores] — LAST state pruning;
  [`available_criteria`][ssmtools.pruning.criteria.available_criteria], [`available_reductions`][ssmtools.pruning.reductions.available_reductions] — the registries of ``ssmtools.pruning``;
- [`ssmtools.plot`][ssmtools.plot] — sigma/Bode plots, pole maps, score distributions, HSV decay, pruning curves
  (matplotlib, imported on first use);
- [`ssmtools.torch`][ssmtools.torch] — differentiable norms, live-module views and training penalties (PyTorch;
  imported on first access of ``ssmtools.torch``).
"""

import importlib
from typing import Any as _Any

from . import (
    adapters as adapters,
    examples as examples,
    plot as plot,  # matplotlib is imported inside the plot functions, on first use
)
from ._version import __version__ as __version__
from .adapters import available_families as available_families
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
    gramian_factors as gramian_factors,
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
    available_criteria as available_criteria,
    available_reductions as available_reductions,
    last_prune as last_prune,
    last_scores as last_scores,
    prune_plan as prune_plan,
)
from .reduction import (
    ReductionResult as ReductionResult,
    balanced_truncation as balanced_truncation,
    modal_truncation as modal_truncation,
)
from .responses import impulse_response as impulse_response, step_response as step_response
from .systems import BidirectionalSSM as BidirectionalSSM, DiagonalSSM as DiagonalSSM, freqresp as freqresp


def __getattr__(name: str) -> _Any:
    """``ssmtools.torch`` is imported on first access (it needs PyTorch; ``import ssmtools`` never imports it)."""
    if name == "torch":
        return importlib.import_module(f"{__name__}.torch")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""d_state pruning of selective (Mamba / Mamba-2) layers: the empirical-Gramian criterion and the plan.

A state n of a mixer lives in every channel (B_t and C_t are shared), so the unit is the state
(``units="state"``). Criteria score a *view* of the layer (``ssmtools.calibration.calibrated``): the registry's
LTI criteria score the view's DiagonalSSM, ``"gramian"`` the calibration energies attached to it
(docs/concepts/selective.md#empirical-gramians). The Hugging Face, mambapy and mamba_ssm formats hold one
``state_size`` for all layers: :func:`selective_prune_plan` with ``uniform=True`` (default) removes the same
number ⌊ratio·N⌋ of states from every layer — each layer its own lowest-scored ones — so that the pruned
checkpoint loads into the original class built with ``state_size = N − ⌊ratio·N⌋``.
"""

from __future__ import annotations

from dataclasses import dataclass, make_dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

import numpy as np

from ..errors import ArgumentError
from ..selective import SelectiveLayer
from .allocation import check_ratio
from .criteria import Criterion, get_criterion, register
from .normalize import lamp_normalize
from .plan import prune_plan
from .results import PruningPlan

if TYPE_CHECKING:
    from ..model import SSMLayer, SSMModel

__all__ = ["EmpiricalGramian", "selective_prune_plan"]


@register
@dataclass(frozen=True)
class EmpiricalGramian(Criterion):
    """Selective layers: √(mean h² · mean q) per (channel, state) from calibration, summed over channels, LAMP.

    The diagonal analogue of a Hankel singular value of the time-varying layer on the calibration data
    (docs/concepts/selective.md#empirical-gramians); needs a layer from ``ssmtools.calibration.calibrated``.
    """

    name: ClassVar[str] = "gramian"
    channel_reduction: ClassVar[Literal["max", "sum"]] = "sum"

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """The layer's empirical-Gramian scores.

        Parameters
        ----------
        layer : SSMLayer
            A calibrated :class:`~ssmtools.selective.SelectiveLayer`.
        model : SSMModel, optional
            Unused.

        Returns
        -------
        ndarray of float64, shape ``(d_inner, N)``
        """
        stats = getattr(layer, "stats", None)
        if not isinstance(layer, SelectiveLayer) or stats is None:
            raise ArgumentError(
                f"criterion 'gramian' scores calibrated selective layers (Mamba); layer {layer.name!r} has no "
                "calibration statistics: use ssmtools.calibration.calibrate and calibrated first"
            )
        return stats.gramian_scores

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """LAMP normalisation.

        Parameters
        ----------
        scores : ndarray of float64
            One layer's raw unit scores.

        Returns
        -------
        ndarray of float64
        """
        return lamp_normalize(scores)


def _per_layer(criterion: Criterion) -> Criterion:
    """The same criterion (name, options) with ``scope = "layer"`` (the same ratio in every layer)."""
    cls = type(criterion)
    if cls.scope == "layer":
        return criterion
    per_layer = make_dataclass(cls.__name__ + "PerLayer", [], bases=(cls,), frozen=True, namespace={"scope": "layer"})
    return cast(Criterion, per_layer(**criterion.options()))


def selective_prune_plan(
    model: SSMModel,
    ratio: float,
    criterion: str | Criterion = "gramian",
    *,
    uniform: bool = True,
    errors: bool = True,
    criterion_options: dict[str, Any] | None = None,
) -> PruningPlan:
    """A d_state pruning plan of a (calibrated) Mamba model: :func:`~ssmtools.prune_plan` with ``units="state"``.

    Parameters
    ----------
    model : SSMModel
        A ``mamba`` / ``mamba2`` model, usually ``calibrated(model, calibration, view)``; the norms in the plan
        are those of that view (labelled in ``model[name].view``).
    ratio : float
        Fraction of states removed, in [0, 1).
    criterion : str or Criterion
        A name of :func:`~ssmtools.pruning.available_criteria` (``"gramian"``, ``"last"``, ``"magnitude"``,
        ``"random"``, ...) or an instance.
    uniform : bool
        True: one d_state for all layers (the formats' constraint), ⌊ratio·N⌋ states removed from each layer,
        the ratio rounded down to whole states. False: the criterion's own allocation (write with ``mask=True``).
    errors : bool
        Compute the view's truncation errors.
    criterion_options : dict, optional
        Options of a criterion given by name.

    Returns
    -------
    PruningPlan
    """
    ratio = check_ratio(ratio)
    layers = list(model.values())
    if not layers or not all(isinstance(layer, SelectiveLayer) for layer in layers):
        raise ArgumentError("selective_prune_plan needs a mamba / mamba2 model (ssmtools.load of a Mamba checkpoint)")
    crit = get_criterion(criterion, **dict(criterion_options or {}))
    if uniform:
        sizes = {layer.n_states for layer in layers}
        if len(sizes) != 1:
            raise ArgumentError(f"layers have different d_state {sorted(sizes)}; pass uniform=False")
        n = sizes.pop()
        ratio = np.floor(ratio * n + 1e-9) / n
        crit = _per_layer(crit)
    return prune_plan(model, float(ratio), crit, units="state", errors=errors)

"""State-pruning criteria: small objects that score the prunable units of one layer, registered by name.

A criterion maps an [`SSMLayer`][ssmtools.model.SSMLayer] to one raw score per stored state (shape
``layer.system.poles.shape``; higher = more important) and normalises a layer's unit scores so they
can be compared across layers. Allocation (how many units go, where) lives in ``allocation.py``; what
is done to a layer in ``reductions.py`` (physical removal in the adapters). Options are dataclass
fields, so a criterion prints and serialises into a plan. The registered names are
[`available_criteria`][ssmtools.pruning.criteria.available_criteria] (a test keeps this table equal to it).

=====================  ==============================================================  ================
name                   raw score of stored state i                                     normalisation
=====================  ==============================================================  ================
``"last"``             ``‖G_i‖∞²`` single-pole bound ``(s_i/(1 − r_i))²``               LAMP, global
``"last-official"``    released code: ``‖c̃_i‖²‖b_i‖²/((1 − r_i)² + 1e-8)``               LAMP, global
``"last-exact"``       exact subsystem ``‖G_i‖∞²`` (conjugate pair, bidirectional)      LAMP, global
``"aire"``             ``‖c̃_i‖²‖b_i‖²/(1 − r_i² + 1e-8)`` or exact ``‖G_i‖₂²``           LAMP, global
``"uniform-hinf"``     ``‖G_i‖∞`` (single-pole bound or exact)                          none, per layer
``"global-hinf"``      ``‖G_i‖∞``                                                       none, global
``"magnitude"``        ``|λ̄_i|``                                                        none, global
``"lamp-magnitude"``   ``|λ̄_i|²``                                                       LAMP, global
``"random"``           uniform on [0, 1), seeded per layer                              none, global
``"balanced"``         Hankel-slot energy (``balanced.py``; balanced-truncation orders)  LAMP, global
``"h2-greedy"``        BT slot: rise of the exact H2 error² (``error_allocation.py``)  1/‖G‖₂², global
``"gramian"``          Mamba: √(mean h²·mean q) from calibration (``selective.py``)     LAMP, global
=====================  ==============================================================  ================

s_i = ‖c_i‖‖b_i‖ with c_i the column of ``system.C`` (κ·C̃ for 2Re families) and b_i the row of B̄;
r_i = |λ̄_i|. LAMP: [`lamp_normalize`][ssmtools.pruning.normalize.lamp_normalize]. Sources: LAST, Gwak et al.,
NeurIPS 2024, arXiv 2411.02824, code ``msgwak/LAST`` ``s5/ssm.py``; AIRE-Prune, Padhy et al., arXiv
2602.00534, code ``falcon-arrow/AIRE-Prune``; LAMP, Lee et al., ICLR 2021. Derivations and the
released code's quirks: docs/concepts/derivations.md#state-hinf, docs/concepts/derivations.md#last-released-quirks, docs/concepts/derivations.md#aire.

**Unstable states** (|λ̄| ≥ 1). ``"last"``, ``"last-exact"``, ``"aire"``, ``"uniform-hinf"`` and ``"global-hinf"``
score them ``inf``: they are kept unless the ratio exceeds a layer's stable fraction, and then the plan removes
some of them. ``"last-official"`` keeps the released code's finite value ``‖c̃‖²‖b‖²/((1 − r)² + 1e-8)``: large
only when the state's gains are not small, so an unstable state with small gains scores low and may be removed.
``"magnitude"`` and ``"lamp-magnitude"`` rank them by |λ̄| (highest), ``"random"`` ignores stability. Every plan
reports, per layer, how many unstable states it removes (``LayerPruning.n_unstable_removed``, table, warning).
"""

from __future__ import annotations

import abc
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from .. import _kernels
from ..errors import ArgumentError, check_choice, silence_unstable
from ..norms import state_h2_norms, state_hinf_norms
from ..systems import BidirectionalSSM
from ._registry import NamedOptions, Registry
from .normalize import lamp_normalize

if TYPE_CHECKING:
    from ..model import SSMLayer, SSMModel

__all__ = [
    "Criterion",
    "register",
    "get_criterion",
    "available_criteria",
    "output_scale",
    "subsystem_hinf",
    "released_score",
    "Last",
    "LastOfficial",
    "LastExact",
    "Aire",
    "UniformHinf",
    "GlobalHinf",
    "Magnitude",
    "LampMagnitude",
    "Random",
]

BidirectionalFormula = Literal["released", "intended"]
RELEASED_EPS = 1e-8  # the "+ 1e-8" of the released LAST / AIRE-Prune denominators


class Criterion(NamedOptions, abc.ABC):
    """Scores the prunable units of one layer; higher means more important.

    Subclasses set ``name`` (registry key), optionally ``scope`` (``"global"``: one threshold across
    layers; ``"layer"``: every layer pruned by the same ratio), ``channel_reduction`` (how a state
    shared by the channels of a multi-SISO layer combines its per-channel scores: ``"max"`` for
    H∞-type scores — the H∞ norm of a block-diagonal system is the largest block's — ``"sum"`` for
    energies), ``ranks_states`` (False when the scored units are not the stored states, e.g. Hankel
    slots, so a state-selecting reduction cannot use them), ``default_reduction`` (the
    [`reductions`][ssmtools.pruning.reductions] name ``prune_plan`` uses when none is given) and
    ``default_allocation`` (the allocation rule ``prune_plan`` uses when none is given: ``"exact"``, or
    ``"released"`` for the criterion that reproduces the released LAST code), and implement
    [`raw_scores`][ssmtools.pruning.criteria.Criterion.raw_scores]. A criterion never changes a layer: what is done with its ranking is the
    reduction's business.
    """

    name: ClassVar[str]
    scope: ClassVar[Literal["global", "layer"]] = "global"
    channel_reduction: ClassVar[Literal["max", "sum"]] = "max"
    ranks_states: ClassVar[bool] = True
    default_reduction: ClassVar[str] = "modal-truncation"
    default_allocation: ClassVar[Literal["exact", "released"]] = "exact"

    @abc.abstractmethod
    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Raw score of every stored state, shape ``layer.system.poles.shape``.

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to, for criteria that need more than the layer.

        Returns
        -------
        ndarray of float64
            ``inf`` for units that must stay (unstable states under the exact criteria; the plan reports
        them). ``model`` gives access to the family and its config (e.g. κ for ``"last-official"``).
        """

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """Make one layer's unit scores comparable across layers. Default: unchanged.

        Parameters
        ----------
        scores : ndarray of float64
            One layer's raw unit scores, shape ``(u,)``.

        Returns
        -------
        ndarray of float64
            The normalised scores, same shape.
        """
        return np.asarray(scores, dtype=float)

    def reduction_options(self) -> dict[str, Any]:
        """Options this criterion passes to its ``default_reduction`` when the plan names no reduction.

        Returns
        -------
        dict
            Default: none. The Hankel-slot criterion passes its ``horizon`` and ``unstable`` policy, so
            that the slots it scores are the ones its balanced truncation keeps.
        """
        return {}


_CRITERIA: Registry[Criterion] = Registry("criterion", Criterion)


def register(cls: type[Criterion]) -> type[Criterion]:
    """Class decorator: make a [`Criterion`][ssmtools.pruning.criteria.Criterion] subclass selectable by its ``name``.

    Returns
    -------
    type
        ``cls`` unchanged.
    """
    return _CRITERIA.register(cls)


def available_criteria() -> list[str]:
    """Registered criterion names, sorted.

    Returns
    -------
    list of str
    """
    return _CRITERIA.names()


def get_criterion(criterion: str | Criterion, **options: Any) -> Criterion:
    """A criterion instance from a registered name (with options) or an instance (options replaced if given).

    Parameters
    ----------
    criterion : str or Criterion
        A name of [`available_criteria`][ssmtools.pruning.criteria.available_criteria], or an instance.
    **options
        Dataclass fields of the named criterion (e.g. ``bidirectional_formula="intended"``).

    Returns
    -------
    Criterion
    """
    return _CRITERIA.get(criterion, **options)


# ------------------------------------------------------------------------------------------ shared pieces
def output_scale(layer: SSMLayer | SSMModel | None) -> float:
    """κ with ``system.C = κ·C̃`` (C̃ the stored C parameter; docs/concepts/derivations.md#output-map).

    Parameters
    ----------
    layer : SSMLayer, SSMModel or None
        ``layer.output_scale`` as the adapter recorded it: 2 for conjugate-symmetric S5 (flax,
        ``conj_sym=True``) and S4D (output ``2Re``); 1 for s5-pytorch, LRU, ``conj_sym=False`` S5 and
        hand-built layers. For a model, the common value of its layers (ValueError if they differ).

    Returns
    -------
    float
        κ; 1 for ``None``.
    """
    if layer is None:
        return 1.0
    if not hasattr(layer, "layers"):  # an SSMLayer
        return float(layer.output_scale)
    scales = {item.output_scale for item in layer.values()}  # type: ignore[union-attr]
    if len(scales) > 1:
        raise ArgumentError(f"the model's layers have different output scales {sorted(scales)}; pass one layer")
    return scales.pop() if scales else 1.0


def _column_norms(C: np.ndarray) -> np.ndarray:
    return np.linalg.norm(C, axis=-2)  # (..., n)


def _row_norms(B: np.ndarray) -> np.ndarray:
    return np.linalg.norm(B, axis=-1)  # (..., n)


def _quiet(func, *args, **kwargs):
    """Call a norms function without its UnstableSystemWarning (the plan reports unstable states once)."""
    with silence_unstable():
        return func(*args, **kwargs)


def subsystem_hinf(layer: SSMLayer, *, exact: bool) -> np.ndarray:
    """H∞ (L∞ for bidirectional layers) of every one-state subsystem, shape ``poles.shape``; ``inf`` if unstable.

    Parameters
    ----------
    layer : SSMLayer
        Causal or bidirectional.
    exact : bool
        ``False``: the single-pole value ``s_i/(1 − r_i)`` of docs/concepts/derivations.md#state-hinf-single (LAST paper), with
        ``s_i = (‖c1_i‖ + ‖c2_i‖)‖b_i‖`` for a bidirectional layer (triangle-inequality bound of
        docs/concepts/derivations.md#bidirectional). ``True``: exact — [`ssmtools.state_hinf_norms`][ssmtools.norms.state_hinf_norms] (the conjugate pair's
        exact norm for real output) or, for bidirectional layers, the L∞ norm of
        ``out[c1 bᵀ/(1 − λ̄e^{−jω}) + c2 bᵀ/(1 − λ̄e^{jω})]`` (``_bidirectional.state_linf``: closed-form 2×2
        σ_max² maximised over ω; agrees with AB13DD on the stacked realisation to ~1e-13).

    Returns
    -------
    ndarray of float64
    """
    system = layer.system
    if not exact:
        c_norm = _column_norms(system.C)
        if isinstance(system, BidirectionalSSM):
            c_norm = c_norm + _column_norms(system.C_backward)
        return _kernels.single_pole_hinf(system.poles, c_norm * _row_norms(system.B), discrete=system.is_discrete)
    return _quiet(state_hinf_norms, system)


def subsystem_h2_squared(layer: SSMLayer) -> np.ndarray:
    """Exact H2² (two-sided L2² when bidirectional) of every one-state subsystem, shape ``poles.shape``.

    Parameters
    ----------
    layer : SSMLayer
        Causal or bidirectional.

    Returns
    -------
    ndarray of float64
        [`ssmtools.state_h2_norms`][ssmtools.norms.state_h2_norms] squared (includes the conjugate-pair cross term of docs/concepts/derivations.md#state-h2-pair); bidirectional: ``ssmtools.h2_norm`` of every one-state subsystem, squared.
    """
    return _quiet(state_h2_norms, layer.system) ** 2


def released_score(
    layer: SSMLayer,
    *,
    kappa: float,
    denominator: Literal["hinf", "h2"],
    bidirectional_formula: BidirectionalFormula = "released",
) -> np.ndarray:
    """Raw score of the released LAST (``"hinf"``) / AIRE-Prune (``"h2"``) code, shape ``poles.shape``.

    Parameters
    ----------
    layer : SSMLayer
        Discretised parameters (λ̄, B̄, C = κ·C̃).
    kappa : float
        Output scale; the code works on the stored C̃ = C/κ.
    denominator : {"hinf", "h2"}
        ``"hinf"``: ``(1 − |λ̄|)² + 1e-8`` (LAST); ``"h2"``: ``1 − |λ̄|² + 1e-8`` (AIRE-Prune).
    bidirectional_formula : {"released", "intended"}
        Numerator of a bidirectional layer: ``"released"`` evaluates the code's ``(a + b)/2 **2`` as
        Python does, i.e. ``(a + b)/4 · ‖b̄‖²`` (a = ‖C̃1[:, i]‖, b = ‖C̃2[:, i]‖; docs/concepts/derivations.md#last-released-quirks);
        ``"intended"``: ``((a + b)/2)² · ‖b̄‖²``.

    Returns
    -------
    ndarray of float64
        Unidirectional: ``‖c̃_i‖²‖b̄_i‖² / denominator`` (docs/concepts/derivations.md#last-score, docs/concepts/derivations.md#aire). Unstable states keep the
        code's value (LAST: finite and large; AIRE: negative) — the plan reports them.
    """
    check_choice("denominator", denominator, ("hinf", "h2"))
    check_choice("bidirectional_formula", bidirectional_formula, ("released", "intended"))
    system = layer.system
    radius = np.abs(system.poles)
    denom = (1.0 - radius) ** 2 + RELEASED_EPS if denominator == "hinf" else (1.0 - radius**2) + RELEASED_EPS
    b2 = _row_norms(system.B) ** 2
    c1 = _column_norms(system.C) / kappa
    if not isinstance(system, BidirectionalSSM):
        numerator = c1**2 * b2
    else:
        c2 = _column_norms(system.C_backward) / kappa
        numerator = ((c1 + c2) / 4.0 if bidirectional_formula == "released" else ((c1 + c2) / 2.0) ** 2) * b2
    return numerator / denom


# ------------------------------------------------------------------------------------------ criteria
@register
@dataclass(frozen=True)
class Last(Criterion):
    """LAST (Gwak et al., NeurIPS 2024, arXiv 2411.02824) as written in the paper, stability-guarded.

    Raw score: the squared single-pole H∞ ``(s_i/(1 − |λ̄_i|))²`` of every stored state (docs/concepts/derivations.md#state-hinf-single),
    ``s_i = ‖c_i‖‖b̄_i‖`` — for a bidirectional layer ``s_i = (‖c1_i‖ + ‖c2_i‖)‖b̄_i‖``, the triangle
    bound of docs/concepts/derivations.md#bidirectional (= 4 × the code's *intended* expression; constants cancel in LAMP). LAMP
    normalisation per layer ([`lamp_normalize`][ssmtools.pruning.normalize.lamp_normalize]), one global
    threshold. Differences from ``"last-official"``: no ``+1e-8``, unstable states (|λ̄| ≥ 1) score
    ``inf`` (always kept, reported) instead of a large finite value, the bidirectional formula is the
    intended one, equal scores tie. The paper normalises H∞ norms, the code their squares (same order
    within a layer, different values across layers): we follow the code (squares).
    """

    name: ClassVar[str] = "last"

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Squared single-pole H∞ ``(s_i/(1 − |λ̄_i|))²``, ``inf`` where unstable.

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to (unused: the layer carries what the score needs).

        Returns
        -------
        ndarray of float64
            One score per stored state, shape ``layer.system.poles.shape``.
        """
        return subsystem_hinf(layer, exact=False) ** 2

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """LAMP normalisation (equal ties).

        Parameters
        ----------
        scores : ndarray of float64
            One layer's raw unit scores, shape ``(u,)``.

        Returns
        -------
        ndarray of float64
            The normalised scores, same shape.
        """
        return lamp_normalize(scores)


@register
@dataclass(frozen=True)
class LastOfficial(Criterion):
    """The released LAST code's scores and threshold (``msgwak/LAST`` ``s5/ssm.py``; docs/concepts/derivations.md#last-released-quirks).

    Parameters
    ----------
    bidirectional_formula : {"released", "intended"}
        ``"released"`` (default) reproduces ``(‖c̃1‖ + ‖c̃2‖)/2 **2`` as Python parses it, i.e. divided
        by 4 and not squared (docs/concepts/derivations.md#last-released-quirks, docs/concepts/derivations.md#worked-example-e7: 7.99999968); ``"intended"`` squares the mean
        (E7: 31.99999872).
    c_scale : float, optional
        κ with ``system.C = κ·C̃``; default: the layer's ``output_scale``, set by its adapter ([`output_scale`][ssmtools.pruning.criteria.output_scale]).

    Notes
    -----
    Raw score ``‖c̃_i‖²‖b̄_i‖²/((1 − |λ̄_i|)² + 1e-8)`` on the discretised parameters (so it depends on
    the learned steps Δ_i), the single-pole formula even for a conjugate pair (drops the pair's factor
    2 and its cross term, docs/concepts/derivations.md#last-released-quirks), no stability guard (|λ̄| > 1 scores high, |λ̄| = 1 gives
    1e8·s²; the plan reports such states). LAMP normalisation with the code's sort-order tie rule
    (``ties="stable-sort"``), and by default (``default_allocation``) the code's threshold rule,
    ``allocation="released"``. With that allocation the kept states are the released code's, state for
    state, evaluated on the parameters in float64 (the adapters read every array in float64; the code's
    own float32 arithmetic can order scores that agree to float32 rounding differently). Passing
    ``allocation="exact"`` keeps the scores but meets the ratio exactly instead.
    Deviation: a layer of all-zero scores normalises to 0, not NaN.
    """

    name: ClassVar[str] = "last-official"
    default_allocation: ClassVar[Literal["exact", "released"]] = "released"
    bidirectional_formula: BidirectionalFormula = "released"
    c_scale: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("bidirectional_formula", self.bidirectional_formula, ("released", "intended"))

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """The released LAST code's score ([`released_score`][ssmtools.pruning.criteria.released_score], ``denominator="hinf"``).

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to (unused: the layer carries what the score needs).

        Returns
        -------
        ndarray of float64
            One score per stored state, shape ``layer.system.poles.shape``.
        """
        kappa = self.c_scale if self.c_scale is not None else output_scale(layer)
        return released_score(layer, kappa=kappa, denominator="hinf", bidirectional_formula=self.bidirectional_formula)

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """LAMP normalisation with the released code's stable-sort tie rule.

        Parameters
        ----------
        scores : ndarray of float64
            One layer's raw unit scores, shape ``(u,)``.

        Returns
        -------
        ndarray of float64
            The normalised scores, same shape.
        """
        return lamp_normalize(scores, ties="stable-sort")


@register
@dataclass(frozen=True)
class LastExact(Criterion):
    """LAST normalisation on exact one-state norms (docs/concepts/derivations.md#state-hinf-pair, docs/concepts/derivations.md#bidirectional-linf).

    Raw score ``‖G_i‖∞²`` with G_i the exact subsystem of stored state i: the conjugate pair for real
    output ([`ssmtools.state_hinf_norms`][ssmtools.norms.state_hinf_norms]), and for bidirectional layers the L∞ norm of the
    non-causal ``out[c1 bᵀ/(1 − λ̄e^{−jω}) + c2 bᵀ/(1 − λ̄e^{jω})]`` (closed-form σ_max(ω) maximised
    over ω; cross-checked against AB13DD on the stacked realisation of docs/concepts/derivations.md#bidirectional). Unstable states
    score ``inf``: always kept and reported in the plan. LAMP, global.
    """

    name: ClassVar[str] = "last-exact"

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Squared exact one-state H∞ (L∞) norms, ``inf`` where unstable.

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to (unused: the layer carries what the score needs).

        Returns
        -------
        ndarray of float64
            One score per stored state, shape ``layer.system.poles.shape``.
        """
        return subsystem_hinf(layer, exact=True) ** 2

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """LAMP normalisation (equal ties).

        Parameters
        ----------
        scores : ndarray of float64
            One layer's raw unit scores, shape ``(u,)``.

        Returns
        -------
        ndarray of float64
            The normalised scores, same shape.
        """
        return lamp_normalize(scores)


@register
@dataclass(frozen=True)
class Aire(Criterion):
    """AIRE-Prune (Padhy et al., arXiv 2602.00534; ``falcon-arrow/AIRE-Prune``): the H2 variant of LAST.

    Parameters
    ----------
    form : {"official", "exact"}
        ``"official"``: the code's ``‖c̃_i‖²‖b̄_i‖²/(1 − |λ̄_i|² + 1e-8)`` (squared single-pole DT H2,
        docs/concepts/derivations.md#aire), bidirectional numerator as selected by ``bidirectional_formula``. ``"exact"``:
        the exact subsystem ``‖G_i‖₂²`` — [`ssmtools.state_h2_norms`][ssmtools.norms.state_h2_norms] squared (the conjugate-pair
        cross term included, docs/concepts/derivations.md#state-h2-pair), two-sided energy for bidirectional layers.
    bidirectional_formula : {"released", "intended"}
        As for ``"last-official"`` (the AIRE fork keeps the ``(a + b)/2 **2`` expression).
    c_scale : float, optional
        κ with ``system.C = κ·C̃`` (``form="official"``); default: the layer's ``output_scale``.

    Notes
    -----
    Unstable states (|λ̄| ≥ 1) score ``inf`` in both forms (kept, reported) — a deviation: the code's
    negative denominator would rank them lowest and prune them first (docs/concepts/derivations.md#aire). LAMP, global.
    For units shared by the channels of a multi-SISO layer the per-channel energies add.
    """

    name: ClassVar[str] = "aire"
    channel_reduction: ClassVar[Literal["max", "sum"]] = "sum"
    form: Literal["official", "exact"] = "official"
    bidirectional_formula: BidirectionalFormula = "released"
    c_scale: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("bidirectional_formula", self.bidirectional_formula, ("released", "intended"))

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """The AIRE-Prune score of the selected ``form``, ``inf`` where unstable.

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to (unused: the layer carries what the score needs).

        Returns
        -------
        ndarray of float64
            One score per stored state, shape ``layer.system.poles.shape``.
        """
        if self.form == "exact":
            return subsystem_h2_squared(layer)
        kappa = self.c_scale if self.c_scale is not None else output_scale(layer)
        scores = released_score(layer, kappa=kappa, denominator="h2", bidirectional_formula=self.bidirectional_formula)
        return np.where(layer.system.stability_margin > 0, scores, np.inf)

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """LAMP normalisation (stable-sort ties for ``form="official"``).

        Parameters
        ----------
        scores : ndarray of float64
            One layer's raw unit scores, shape ``(u,)``.

        Returns
        -------
        ndarray of float64
            The normalised scores, same shape.
        """
        return lamp_normalize(scores, ties="stable-sort" if self.form == "official" else "equal")


@register
@dataclass(frozen=True)
class UniformHinf(Criterion):
    """Baseline of the LAST paper: every layer pruned by the same ratio, ranked by per-state H∞.

    Parameters
    ----------
    exact : bool
        ``False``: single-pole value ``s_i/(1 − |λ̄_i|)``; ``True``: exact subsystem norm
        ([`subsystem_hinf`][ssmtools.pruning.criteria.subsystem_hinf]). Unstable states score ``inf``.
    """

    name: ClassVar[str] = "uniform-hinf"
    scope: ClassVar[Literal["global", "layer"]] = "layer"
    exact: bool = False

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Per-state H∞ (single-pole or exact), ``inf`` where unstable.

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to (unused: the layer carries what the score needs).

        Returns
        -------
        ndarray of float64
            One score per stored state, shape ``layer.system.poles.shape``.
        """
        return subsystem_hinf(layer, exact=self.exact)


@register
@dataclass(frozen=True)
class GlobalHinf(Criterion):
    """Baseline of the LAST paper: raw per-state H∞ norms ranked across all layers (no normalisation).

    Parameters
    ----------
    exact : bool
        ``False``: single-pole value; ``True``: exact subsystem norm. Unstable states score ``inf``.
    """

    name: ClassVar[str] = "global-hinf"
    exact: bool = False

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Per-state H∞ (single-pole or exact), ``inf`` where unstable.

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to (unused: the layer carries what the score needs).

        Returns
        -------
        ndarray of float64
            One score per stored state, shape ``layer.system.poles.shape``.
        """
        return subsystem_hinf(layer, exact=self.exact)


@register
@dataclass(frozen=True)
class Magnitude(Criterion):
    """Baseline: pole magnitude ``|λ̄_i|`` (slow modes kept), one global threshold, no normalisation."""

    name: ClassVar[str] = "magnitude"

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Pole magnitudes ``|λ̄_i|``.

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to (unused: the layer carries what the score needs).

        Returns
        -------
        ndarray of float64
            One score per stored state, shape ``layer.system.poles.shape``.
        """
        return np.abs(layer.system.poles)


@register
@dataclass(frozen=True)
class LampMagnitude(Criterion):
    """Baseline: LAMP (Lee et al., ICLR 2021) on squared pole magnitudes ``|λ̄_i|²``, global threshold."""

    name: ClassVar[str] = "lamp-magnitude"

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Squared pole magnitudes ``|λ̄_i|²``.

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to (unused: the layer carries what the score needs).

        Returns
        -------
        ndarray of float64
            One score per stored state, shape ``layer.system.poles.shape``.
        """
        return np.abs(layer.system.poles) ** 2

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """LAMP normalisation (equal ties).

        Parameters
        ----------
        scores : ndarray of float64
            One layer's raw unit scores, shape ``(u,)``.

        Returns
        -------
        ndarray of float64
            The normalised scores, same shape.
        """
        return lamp_normalize(scores)


@register
@dataclass(frozen=True)
class Random(Criterion):
    """Baseline: uniform random scores, one global threshold.

    Parameters
    ----------
    seed : int
        Scores of layer ``name`` come from ``numpy.random.default_rng([seed, crc32(name)])``, so they
        are reproducible and do not depend on the order in which layers are scored.
    """

    name: ClassVar[str] = "random"
    seed: int = 0

    def raw_scores(self, layer: SSMLayer, *, model: SSMModel | None = None) -> np.ndarray:
        """Uniform scores on [0, 1), seeded by ``seed`` and the layer name.

        Parameters
        ----------
        layer : SSMLayer
            The layer to score.
        model : SSMModel, optional
            The model the layer belongs to (unused: the layer carries what the score needs).

        Returns
        -------
        ndarray of float64
            One score per stored state, shape ``layer.system.poles.shape``.
        """
        rng = np.random.default_rng([int(self.seed), zlib.crc32(layer.name.encode())])
        return rng.random(layer.system.poles.shape)

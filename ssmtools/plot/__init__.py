"""Plots for SSM layers: sigma and Bode plots, pole maps, score distributions, HSV decay, pruning curves, and the
Δ maps and state-energy heatmaps of calibrated Mamba layers.

Every function takes ``ax=None`` (a new figure is made with ``pyplot.subplots`` when omitted),
draws on that Axes and returns it (``bode`` returns its two-panel ``Figure``). Nothing calls
``pyplot.show()``; all functions work on a headless backend (``MPLBACKEND=Agg``).

The plots take plain inputs — systems, arrays, dicts — so they do not depend on how the numbers were
produced: per-layer scores are ``{layer name: array}``, keep masks are boolean arrays (or dicts of
them), pruning curves are ``{criterion: (ratios, metric)}``. Artists that tests and users may want to
find carry a ``gid``: ``"hinf-peak"``, ``"nyquist"``, ``"poles"``, ``"kept-poles"``,
``"pruned-poles"``, ``"stability-boundary"``, ``"threshold"``.

Frequencies are rad/sample in discrete time (Nyquist frequency π) and rad per time unit in
continuous time, as everywhere in ssmtools.
"""

from .figures import (
    FIGURE_FORMATS as FIGURE_FORMATS,
    FIGURE_KINDS as FIGURE_KINDS,
    FigureKind as FigureKind,
    figure_bytes as figure_bytes,
    figure_writer as figure_writer,
    model_figure as model_figure,
)
from .frequency import bode as bode, sigma as sigma
from .poles import pole_map as pole_map
from .pruning import (
    plan_allocation as plan_allocation,
    pruning_curves as pruning_curves,
    state_allocation as state_allocation,
)
from .scores import hsv_decay as hsv_decay, plan_scores as plan_scores, score_distributions as score_distributions
from .selective import delta_map as delta_map, selective_arrays as selective_arrays, state_energy as state_energy

__all__ = [
    "sigma",
    "bode",
    "pole_map",
    "score_distributions",
    "hsv_decay",
    "pruning_curves",
    "state_allocation",
    "plan_scores",
    "plan_allocation",
    "delta_map",
    "state_energy",
    "selective_arrays",
    "model_figure",
    "figure_bytes",
    "figure_writer",
    "FigureKind",
]

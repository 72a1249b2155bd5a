"""Plots for SSM layers: sigma and Bode plots, pole maps, score distributions, HSV decay, pruning curves.

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

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import ShapeError, check_choice
from .norms import hankel_singular_values, hinf_norm, state_h2_norms, state_hinf_norms
from .systems import DiagonalSSM, freqresp

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
]

Systems = Any  # DiagonalSSM | SSMLayer | ReductionResult | Mapping[str, ...] | Sequence[...]


# ---------------------------------------------------------------------------------------------- inputs
def _system_of(obj: Any, what: str) -> DiagonalSSM:
    """A DiagonalSSM from a DiagonalSSM, an SSMLayer (``.system``) or a ReductionResult (``.system``)."""
    if isinstance(obj, DiagonalSSM):
        return obj
    system = getattr(obj, "system", None)
    if isinstance(system, DiagonalSSM):
        return system
    raise TypeError(
        f"{what} is a {type(obj).__name__}; expected a DiagonalSSM, an SSMLayer or a reduction result "
        "(anything with a .system DiagonalSSM), or a dict / list of them"
    )


Named = tuple[str, DiagonalSSM, "np.ndarray | None"]  # label, causal system, backward output columns


def _flatten(name: str, system: DiagonalSSM, backward: np.ndarray | None) -> list[Named]:
    if not system.batch_shape:
        return [(name, system, backward)]
    out = []
    for index in np.ndindex(*system.batch_shape):
        suffix = ",".join(str(i) for i in index)
        out.append((f"{name}[{suffix}]" if name else suffix, system[index],
                    None if backward is None else backward[index]))
    return out


def _entry(value: Any, what: str) -> tuple[DiagonalSSM, np.ndarray | None]:
    return _system_of(value, what), getattr(value, "C_backward", None)  # SSMLayer: bidirectional S5


def _named_systems(systems: Systems, what: str = "systems") -> list[Named]:
    """Unbatched ``(label, system, C_backward)``: batches are split, dicts keep their keys as labels."""
    many = getattr(systems, "systems", None)  # ReductionResult: one system per batch element, ndindex order
    if isinstance(many, tuple) and many and all(isinstance(s, DiagonalSSM) for s in many):
        items = [("" if len(many) == 1 else str(i), (s, None)) for i, s in enumerate(many)]
    elif isinstance(systems, Mapping):
        items = [(str(name), _entry(value, f"{what}[{name!r}]")) for name, value in systems.items()]
    elif isinstance(systems, Sequence) and not isinstance(systems, str):
        items = [(str(i), _entry(value, f"{what}[{i}]")) for i, value in enumerate(systems)]
    else:
        items = [("", _entry(systems, what))]
    if not items:
        raise ValueError(f"{what} is empty; pass at least one system")
    named = [entry for name, (system, backward) in items for entry in _flatten(name, system, backward)]
    if len({system.is_discrete for _, system, _ in named}) > 1:
        raise ValueError(
            f"{what} mixes continuous- and discrete-time systems; plot them on separate axes "
            "(their frequency axes differ: rad/s vs rad/sample)"
        )
    return named


def _new_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _legend(ax: Axes, max_entries: int = 24) -> None:
    """A legend when something is labelled (matplotlib warns on an empty one) and it stays readable."""
    if 0 < len(ax.get_legend_handles_labels()[0]) <= max_entries:
        ax.legend(fontsize="small")


def _color(index: int) -> str:
    import matplotlib as mpl

    colors = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    return colors[index % len(colors)]


# ---------------------------------------------------------------------------------------------- frequency plots
def _frequency_grid(systems: list[DiagonalSSM], extra: np.ndarray, n_points: int, xscale: str) -> np.ndarray:
    """Grid covering the systems' resonances: pole angles (DT) / |λ| (CT) and ``extra`` are added."""
    discrete = systems[0].is_discrete
    poles = np.concatenate([s.poles.ravel() for s in systems])
    symmetric = any(s.output == "complex" for s in systems) and xscale == "linear"
    if discrete:
        char = np.abs(np.angle(poles))
        high = np.pi
    else:
        char = np.abs(poles)
        high = 10.0 * float(np.max(char)) if np.any(char > 0) else 10.0
    margins = np.concatenate([s.stability_margin.ravel() for s in systems])
    positive = np.concatenate([char[char > 0], margins[margins > 0]])  # resonance widths set the low end
    low = min(1e-3 if discrete else 1e-3 * high, 0.1 * float(np.min(positive)) if positive.size else 1.0)
    if xscale == "log":
        grid = np.geomspace(low, high, n_points)
    else:
        grid = np.linspace(-high if symmetric else 0.0, high, n_points)
    resonances = np.concatenate([char, -char] if symmetric else [char])
    grid = np.concatenate([grid, resonances, np.asarray(extra, dtype=float)])
    lower = -high if symmetric else (low if xscale == "log" else 0.0)
    grid = grid[np.isfinite(grid) & (grid >= lower) & (grid <= high)]
    return np.unique(grid)


_CHUNK_BYTES = 2**26  # frequency responses are evaluated in chunks of at most 64 MiB


def _response(system: DiagonalSSM, backward: np.ndarray | None, omega: np.ndarray) -> np.ndarray:
    """G(e^{jω}), shape (k, p, m); with a backward scan (bidirectional S5, math.md §1.3) its anti-causal
    part ``C2 (I − Λ̄e^{jω})⁻¹ B̄`` is the causal response of (Λ̄, B̄, C2) at −ω."""
    response = freqresp(system, omega)
    if backward is not None:
        response = response + freqresp(system.replace(C=backward, D=None), -omega)
    return response


def _singular_values(entry: tuple[DiagonalSSM, Any], omega: np.ndarray,
                     minus: tuple[DiagonalSSM, Any] | None = None) -> np.ndarray:
    """Singular values of G(ω) (or of G(ω) − G_minus(ω)), shape (k, min(p, m)), descending, in chunks."""
    system, backward = entry
    per_frequency = 16 * system.n_outputs * max(system.n_inputs, system.n_states)
    step = max(1, _CHUNK_BYTES // per_frequency)
    out = []
    for start in range(0, omega.size, step):
        chunk = omega[start:start + step]
        response = _response(system, backward, chunk)
        if minus is not None:
            response = response - _response(*minus, chunk)
        out.append(np.linalg.svd(response, compute_uv=False))
    return np.concatenate(out) if out else np.zeros((0, min(system.n_outputs, system.n_inputs)))


def _magnitude(values: np.ndarray, db: bool) -> np.ndarray:
    if not db:
        return values
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(values)


def _frequency_label(discrete: bool) -> str:
    return "frequency ω (rad/sample)" if discrete else "frequency ω (rad/s)"


def _mark_nyquist(ax: Axes, discrete: bool) -> None:
    if discrete:
        ax.axvline(np.pi, color="0.4", linestyle=":", linewidth=1, gid="nyquist", label="Nyquist ω = π")


def _resolve_xscale(systems: list[DiagonalSSM], xscale: str | None) -> str:
    if xscale is None:
        return "linear" if any(s.output == "complex" for s in systems) else "log"
    check_choice("xscale", xscale, ("log", "linear"))
    return xscale


def _visible(peak: float, omega: np.ndarray, xscale: str) -> float:
    """Where to draw a peak: a peak at ω = 0 sits at the left end of a log axis (its curve is flat there)."""
    return float(max(peak, omega[0])) if xscale == "log" and peak <= 0 and omega.size else peak


def _peaks(named: list[Named], mark_peak: bool) -> list[tuple[float, float]]:
    """(‖G‖∞, peak frequency) per system; bidirectional layers: (L∞ norm, nan), the frequency is found
    on the plotted grid."""
    if not mark_peak:
        return [(np.nan, np.nan)] * len(named)
    peaks = []
    for _, system, backward in named:
        if backward is not None:
            from .pruning._bidir import bidirectional_linf  # the one place of the L∞ formula

            peaks.append((float(bidirectional_linf(system, backward)), np.nan))
            continue
        value, peak = hinf_norm(system, return_peak=True)
        if system.output == "real":
            peak = abs(peak)  # real-output responses are conjugate-symmetric
        peaks.append((float(value), float(peak)))
    return peaks


def _peak_label(value: float, peak: float, bidirectional: bool) -> str:
    if bidirectional:
        return f"‖G‖_L∞ = {value:.4g} (non-causal), grid peak ω ≈ {peak:.4g}"
    return f"‖G‖∞ = {value:.4g} at ω = {peak:.4g}"


def sigma(
    systems: Systems,
    *,
    reduced: Systems | None = None,
    omega: Any = None,
    ax: Axes | None = None,
    mark_peak: bool = True,
    singular_values: Literal["max", "all"] = "max",
    db: bool = True,
    xscale: Literal["log", "linear"] | None = None,
    n_points: int = 1000,
) -> Axes:
    """Singular-value (sigma) plot of one layer or of many layers overlaid, H∞ peaks marked.

    Draws σ_max(G(e^{jω})) (DT) or σ_max(G(jω)) (CT) against ω, where G is the layer's transfer
    matrix including D and the ``state_includes_input`` factor z. The H∞ norm
    ``‖G‖∞ = sup_ω σ_max(G)`` computed by :func:`ssmtools.hinf_norm` (default method) is marked at
    its peak frequency with a star (``gid="hinf-peak"``). Discrete time: the Nyquist frequency
    π rad/sample is marked (``gid="nyquist"``).

    Parameters
    ----------
    systems : DiagonalSSM, SSMLayer, SSMModel, dict or list of them
        One curve per system; batched systems give one curve per batch element (layers, channels).
        Dict keys (layer names) become legend labels. A bidirectional ``SSMLayer`` (S5) is drawn with
        its full non-causal response, forward plus backward scan (math.md §1.3), and marked with its
        L∞ norm (AB13DD on the stacked realization) at the grid frequency where the curve peaks.
    reduced : same structure as ``systems``, optional
        Reduced or pruned counterparts: ``DiagonalSSM`` systems, or a ``ReductionResult`` (its
        ``systems``, one per batch element of the original). Drawn dashed in the same colour, with
        the error σ_max(G − G_r) dotted.
    omega : array_like, optional
        Frequencies (rad/sample in DT, rad/s in CT). Default: ``n_points`` points, plus every pole's
        resonance frequency and the H∞ peaks so that narrow peaks are not missed.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    mark_peak : bool
        Mark each system's H∞ peak (one :func:`ssmtools.hinf_norm` call per system).
    singular_values : {"max", "all"}
        ``"all"`` also draws the smaller singular values, thinner.
    db : bool
        Magnitude in dB (``20 log10 σ``) instead of absolute gain on a log axis.
    xscale : {"log", "linear"}, optional
        Default ``"log"`` (positive frequencies), ``"linear"`` over (−π, π] for complex-output
        systems, whose response is not conjugate-symmetric.
    n_points : int
        Size of the default frequency grid.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.sigma(st.examples.s5_layer_e5())
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('frequency ω (rad/sample)', 'σ_max (dB)')
    """
    check_choice("singular_values", singular_values, ("max", "all"))
    named = _named_systems(systems)
    named_reduced = _named_systems(reduced, "reduced") if reduced is not None else None
    if named_reduced is not None and len(named_reduced) != len(named):
        raise ShapeError(
            f"reduced has {len(named_reduced)} systems but systems has {len(named)}; pass one reduced "
            "system per original (same dict keys / batch shape)"
        )
    all_systems = [s for _, s, _ in named] + ([s for _, s, _ in named_reduced] if named_reduced else [])
    scale = _resolve_xscale(all_systems, xscale)
    peaks = _peaks(named, mark_peak)
    if omega is None:
        omega = _frequency_grid(all_systems, np.array([p for _, p in peaks]), n_points, scale)
    else:
        omega = np.sort(np.asarray(omega, dtype=float).ravel())
    ax = _new_axes(ax)
    discrete = named[0][1].is_discrete
    for index, (label, system, backward) in enumerate(named):
        color = _color(index)
        values = _singular_values((system, backward), omega)
        ax.plot(omega, _magnitude(values[:, 0], db), color=color, label=label or None)
        if singular_values == "all" and values.shape[1] > 1:
            ax.plot(omega, _magnitude(values[:, 1:], db), color=color, linewidth=0.6, alpha=0.6)
        value, peak = peaks[index]
        if backward is not None and omega.size:
            peak = float(omega[np.argmax(values[:, 0])])
        if mark_peak and np.isfinite(value):
            ax.plot([_visible(peak, omega, scale)], _magnitude(np.array([value]), db), marker="*", markersize=11, linestyle="none",
                    color=color, markeredgecolor="k", gid="hinf-peak",
                    label=_peak_label(value, peak, backward is not None))
        if named_reduced is not None:
            reduced_entry = named_reduced[index][1:]
            ax.plot(omega, _magnitude(_singular_values(reduced_entry, omega)[:, 0], db), color=color,
                    linestyle="--", label=f"{label} reduced".strip(), gid="reduced")
            error = _singular_values((system, backward), omega, minus=reduced_entry)
            ax.plot(omega, _magnitude(error[:, 0], db), color=color, linestyle=":",
                    label=f"{label} error σ_max(G − G_r)".strip(), gid="reduction-error")
    _mark_nyquist(ax, discrete)
    ax.set_xscale(scale)
    if not db:
        ax.set_yscale("log")
    ax.set_xlabel(_frequency_label(discrete))
    ax.set_ylabel("σ_max (dB)" if db else "σ_max (gain)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return ax


def bode(
    systems: Systems,
    *,
    output_index: int = 0,
    input_index: int = 0,
    reduced: Systems | None = None,
    omega: Any = None,
    axes: Sequence[Axes] | None = None,
    mark_peak: bool = True,
    xscale: Literal["log", "linear"] | None = None,
    n_points: int = 1000,
) -> Figure:
    """Bode plot (magnitude in dB and phase in degrees) of one input→output channel of each system.

    Plots ``G_ij(e^{jω})`` (DT) or ``G_ij(jω)`` (CT) with ``i = output_index``, ``j = input_index``.
    With ``mark_peak`` the frequency of each system's H∞ peak (of the whole MIMO layer, from
    :func:`ssmtools.hinf_norm`) is marked by a vertical line on both panels and a star on the
    magnitude at that frequency (``gid="hinf-peak"``); the Nyquist frequency π is marked in DT.

    Parameters
    ----------
    systems : DiagonalSSM, SSMLayer, SSMModel, dict or list of them
        One curve per (unbatched) system, as in :func:`sigma` (bidirectional layers included).
    output_index : int
        Output (row of G) to plot.
    input_index : int
        Input (column of G) to plot.
    reduced : same structure as ``systems``, optional
        Reduced/pruned counterparts, drawn dashed in the same colour.
    omega : array_like, optional
        Frequencies; default as in :func:`sigma`.
    axes : pair of matplotlib Axes, optional
        (magnitude, phase) axes to draw on; a new two-panel figure when omitted.
    mark_peak : bool
        Mark each system's H∞ peak frequency.
    xscale : {"log", "linear"}, optional
        As in :func:`sigma`.
    n_points : int
        Size of the default frequency grid.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the magnitude (``fig.axes[0]``) and phase panels.

    Examples
    --------
    >>> import ssmtools as st
    >>> fig = st.plot.bode(st.examples.s5_layer_e5(), output_index=1, input_index=0)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['|G_10| (dB)', 'phase (deg)']
    """
    named = _named_systems(systems)
    named_reduced = _named_systems(reduced, "reduced") if reduced is not None else None
    if named_reduced is not None and len(named_reduced) != len(named):
        raise ShapeError(f"reduced has {len(named_reduced)} systems but systems has {len(named)}; pass one per original")
    for label, system, _ in named + (named_reduced or []):
        if not (-system.n_outputs <= output_index < system.n_outputs and -system.n_inputs <= input_index < system.n_inputs):
            raise IndexError(
                f"channel (output {output_index}, input {input_index}) does not exist in system {label!r} with "
                f"{system.n_outputs} outputs and {system.n_inputs} inputs"
            )
    all_systems = [s for _, s, _ in named] + ([s for _, s, _ in named_reduced] if named_reduced else [])
    scale = _resolve_xscale(all_systems, xscale)
    peaks = _peaks(named, mark_peak)
    if omega is None:
        omega = _frequency_grid(all_systems, np.array([p for _, p in peaks]), n_points, scale)
    else:
        omega = np.sort(np.asarray(omega, dtype=float).ravel())
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 1, sharex=True)
    if len(axes) != 2:
        raise ValueError(f"axes must be a pair (magnitude, phase) of Axes, got {len(axes)}")
    ax_mag, ax_phase = axes
    discrete = named[0][1].is_discrete

    def channel(system: DiagonalSSM, backward: np.ndarray | None, grid: np.ndarray) -> np.ndarray:
        siso = system.replace(B=system.B[:, [input_index]], C=system.C[[output_index], :],
                              D=system.D[[output_index]][:, [input_index]])  # only the plotted entry
        return _response(siso, None if backward is None else backward[[output_index], :], grid)[:, 0, 0]

    for index, (label, system, backward) in enumerate(named):
        color = _color(index)
        response = channel(system, backward, omega)
        ax_mag.plot(omega, _magnitude(np.abs(response), True), color=color, label=label or None)
        ax_phase.plot(omega, np.degrees(np.unwrap(np.angle(response))), color=color)
        value, peak = peaks[index]
        if backward is not None and mark_peak and omega.size:  # bidirectional: σ_max peak on the grid
            peak = float(omega[np.argmax(_singular_values((system, backward), omega)[:, 0])])
        if mark_peak and np.isfinite(value):
            at_peak = np.abs(channel(system, backward, np.array([peak])))
            ax_mag.plot([_visible(peak, omega, scale)], _magnitude(at_peak, True), marker="*", markersize=11, linestyle="none", color=color,
                        markeredgecolor="k", gid="hinf-peak", label=f"H∞ peak ω = {peak:.4g}")
            for panel in (ax_mag, ax_phase):
                panel.axvline(_visible(peak, omega, scale), color=color, linestyle="-.", linewidth=0.8, alpha=0.7)
        if named_reduced is not None:
            reduced_response = channel(*named_reduced[index][1:], omega)
            ax_mag.plot(omega, _magnitude(np.abs(reduced_response), True), color=color, linestyle="--",
                        label=f"{label} reduced".strip(), gid="reduced")
            ax_phase.plot(omega, np.degrees(np.unwrap(np.angle(reduced_response))), color=color, linestyle="--",
                          gid="reduced")
    for panel in (ax_mag, ax_phase):
        _mark_nyquist(panel, discrete)
        panel.set_xscale(scale)
        panel.grid(True, which="both", alpha=0.3)
    ax_mag.set_ylabel(f"|G_{output_index}{input_index}| (dB)")
    ax_phase.set_ylabel("phase (deg)")
    ax_phase.set_xlabel(_frequency_label(discrete))
    _legend(ax_mag)
    return ax_mag.figure


# ---------------------------------------------------------------------------------------------- pole maps
_SCORE_LABELS = {"hinf": "per-state H∞ norm", "h2": "per-state H2 norm", "last": "LAST score",
                 "hsv": "Hankel singular value"}


def _named_scores(layer: Any, name: str) -> tuple[np.ndarray, str]:
    """Per-state scores of a layer by name (shape ``(*batch, n)``) and their colour-bar label."""
    system = _system_of(layer, "system")
    if name == "hinf":
        return state_hinf_norms(system), _SCORE_LABELS[name]
    if name == "h2":
        return state_h2_norms(system), _SCORE_LABELS[name]
    if name == "hsv":
        return _state_hsv(system), _SCORE_LABELS[name]
    from .model import SSMLayer
    from .pruning import available_criteria, get_criterion

    if name not in available_criteria():
        raise ValueError(
            f"scores={name!r} is not valid; choose one of {['hinf', 'h2', 'hsv'] + available_criteria()} "
            "or pass an array of scores"
        )
    criterion = get_criterion(name)
    if not isinstance(layer, SSMLayer):
        layer = SSMLayer("", system)
    raw = np.asarray(criterion.raw_scores(layer), dtype=float)
    label = _SCORE_LABELS.get(name, f"{name} score") + " (normalised per layer)"
    return np.asarray(criterion.normalize(raw.ravel()), dtype=float).reshape(raw.shape), label


def _state_hsv(system: DiagonalSSM) -> np.ndarray:
    """Hankel singular value of each state seen alone (its one-state subsystem), shape (*batch, n).

    The HSVs of a layer belong to its balanced realization, not to individual diagonal states, so a
    per-state "HSV" score is the largest HSV of the state's own subsystem (computed by
    :func:`ssmtools.hankel_singular_values` on each one-state system).
    """
    singles = system.replace(poles=system.poles[..., :, None], B=system.B[..., :, None, :],
                             C=np.swapaxes(system.C, -1, -2)[..., :, :, None], D=system.D[..., None, :, :])
    return hankel_singular_values(singles)[..., 0]


def pole_map(
    system: Any,
    *,
    scores: str | Any | None = None,
    keep: Any = None,
    ax: Axes | None = None,
    score_label: str | None = None,
    log_color: bool = True,
    show_conjugates: bool = False,
    cmap: str = "viridis",
) -> Axes:
    """Poles of a layer in the complex plane, coloured by a per-state score, kept vs pruned marked.

    Discrete time: the unit circle |λ| = 1 is drawn (``gid="stability-boundary"``); continuous
    time: the imaginary axis Re λ = 0. Kept states are filled circles (``gid="kept-poles"``), pruned
    states crosses (``gid="pruned-poles"``); without a mask all poles share ``gid="poles"``.

    Parameters
    ----------
    system : DiagonalSSM or SSMLayer
        Any batch shape; all poles are drawn (e.g. every channel of a multi-SISO layer).
    scores : str or array_like of shape ``(*batch, n)``, optional
        Colour of each pole. ``"hinf"``: :func:`ssmtools.state_hinf_norms`; ``"h2"``:
        :func:`ssmtools.state_h2_norms`; ``"hsv"``: the Hankel singular value of each state's
        one-state subsystem; ``"last"`` or any other name of
        :func:`ssmtools.pruning.available_criteria`: that criterion's per-layer normalised score
        (LAST: LAMP-normalised squared per-state H∞). Non-finite scores (unstable states) are drawn
        in red.
    keep : array_like of bool, shape ``(*batch, n)``, optional
        Keep mask (e.g. one entry of ``PruningPlan.keep``); True = kept.
    ax : matplotlib Axes, optional
    score_label : str, optional
        Colour-bar label; defaults to the score's name.
    log_color : bool
        Logarithmic colour scale (when all finite scores are positive).
    show_conjugates : bool
        Also draw the mirrored conjugate poles of ``output="real"`` systems (faded,
        ``gid="conjugate-poles"``): each stored state stands for the pair (λ, conj λ).
    cmap : str
        Matplotlib colour map.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.pole_map(st.examples.s5_layer_e5(), scores="hinf", keep=[False, True])
    >>> [len(c.get_offsets()) for c in ax.collections if c.get_gid() in ("kept-poles", "pruned-poles")]
    [1, 1]
    """
    import matplotlib.colors as mcolors

    layer, system = system, _system_of(system, "system")
    poles = system.poles.ravel()
    label = score_label
    values = None
    if scores is not None:
        if isinstance(scores, str):
            scores, default_label = _named_scores(layer, scores)
            label = label or default_label
        values = np.asarray(scores, dtype=float)
        if values.shape != system.poles.shape:
            raise ShapeError(f"scores has shape {values.shape} but the poles have shape {system.poles.shape}; "
                             "pass one score per state")
        values = values.ravel()
    if keep is None:
        mask = None
    else:
        mask = np.asarray(keep)
        if mask.dtype != bool:
            raise TypeError(f"keep must be a boolean mask, got dtype {mask.dtype}; pass e.g. scores >= threshold")
        if mask.shape != system.poles.shape:
            raise ShapeError(f"keep has shape {mask.shape} but the poles have shape {system.poles.shape}; "
                             "pass one entry per state")
        mask = mask.ravel()
    ax = _new_axes(ax)
    if system.is_discrete:
        theta = np.linspace(0, 2 * np.pi, 400)
        ax.plot(np.cos(theta), np.sin(theta), color="0.5", linewidth=0.8, gid="stability-boundary")
        ax.set_aspect("equal", adjustable="datalim")
    else:
        ax.axvline(0.0, color="0.5", linewidth=0.8, gid="stability-boundary")
    norm = None
    finite = np.ones(poles.shape, bool) if values is None else np.isfinite(values)
    if values is not None and np.any(finite):
        low, high = values[finite].min(), values[finite].max()
        if log_color and low > 0 and high > low:
            norm = mcolors.LogNorm(low, high)
        else:
            norm = mcolors.Normalize(low, high if high > low else low + 1)
    groups = [("poles", np.ones(poles.shape, bool), "o")] if mask is None else [
        ("kept-poles", mask, "o"), ("pruned-poles", ~mask, "X")]
    mappable = None
    for gid, selected, marker in groups:
        chosen = selected & finite
        kwargs: dict[str, Any] = dict(marker=marker, s=36, gid=gid, edgecolors="k", linewidths=0.4,
                                      label=f"{gid.split('-')[0]} ({int(selected.sum())})" if mask is not None else None)
        if values is not None:
            kwargs.update(c=values[chosen], cmap=cmap, norm=norm)
        collection = ax.scatter(poles.real[chosen], poles.imag[chosen], **kwargs)
        if values is not None:
            mappable = collection
        if np.any(selected & ~finite):
            ax.scatter(poles.real[selected & ~finite], poles.imag[selected & ~finite], marker=marker, s=36,
                       color="red", gid=f"{gid}-unstable", label="non-finite score")
    if show_conjugates and system.output == "real":
        ax.scatter(poles.real, -poles.imag, marker="o", s=20, facecolors="none", edgecolors="0.6",
                   gid="conjugate-poles")
    if mappable is not None:
        ax.figure.colorbar(mappable, ax=ax, label=label or "score")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title("poles (unit circle)" if system.is_discrete else "poles (imaginary axis)", fontsize="medium")
    if mask is not None:
        _legend(ax)
        legend = ax.get_legend()
        if legend is not None and values is not None:  # neutral markers: colour encodes the score
            for handle, text in zip(legend.legend_handles, legend.get_texts()):
                if text.get_text().startswith(("kept", "pruned")):
                    handle.set_facecolor("0.6")
    return ax


# ---------------------------------------------------------------------------------------------- score plots
def _as_layer_dict(values: Any, what: str) -> dict[str, np.ndarray]:
    if isinstance(values, Mapping):
        return {str(k): np.asarray(v) for k, v in values.items()}
    if isinstance(values, Sequence) and not isinstance(values, str):
        return {str(i): np.asarray(v) for i, v in enumerate(values)}
    raise TypeError(f"{what} must be a dict {{layer name: array}} or a list of arrays, got {type(values).__name__}")


def score_distributions(
    scores: Mapping[str, Any] | Sequence[Any],
    *,
    threshold: float | None = None,
    keep: Mapping[str, Any] | Sequence[Any] | None = None,
    ax: Axes | None = None,
    log: bool = True,
    ylabel: str = "score",
) -> Axes:
    """Per-layer score distributions (one column of points per layer) and the global threshold.

    Each layer's scores are drawn as a column of points at x = layer index, spread sideways by
    rank so that ties stay visible (deterministic, no random jitter). With ``threshold`` (e.g. the
    LAST global threshold τ of a pruning plan) a horizontal line marks it (``gid="threshold"``);
    with ``keep`` kept and pruned states get different markers (``gid="kept-scores"`` /
    ``"pruned-scores"``), otherwise every layer's points carry ``gid="scores"``.

    Parameters
    ----------
    scores : dict {layer name: array_like} or list of array_like
        Scores of each layer (any shape per layer; flattened).
    threshold : float, optional
        Global threshold to draw.
    keep : dict or list of boolean arrays, optional
        Keep masks with the same keys and shapes as ``scores``.
    ax : matplotlib Axes, optional
    log : bool
        Logarithmic y axis (non-positive scores are then not drawn).
    ylabel : str
        y-axis label.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.score_distributions({"a": [1.0, 0.1], "b": [1.0, 0.5, 0.2]}, threshold=0.3)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['a', 'b']
    """
    layers = _as_layer_dict(scores, "scores")
    masks = _as_layer_dict(keep, "keep") if keep is not None else None
    if masks is not None and set(masks) != set(layers):
        raise ValueError(f"keep has layers {sorted(masks)} but scores has {sorted(layers)}; pass one mask per layer")
    ax = _new_axes(ax)
    for index, (name, values) in enumerate(layers.items()):
        values = values.astype(float).ravel()
        order = np.argsort(np.argsort(values, kind="stable"), kind="stable")
        x = index + 0.35 * (order / max(len(values) - 1, 1) - 0.5)
        color = _color(index)
        if masks is None:
            ax.scatter(x, values, s=14, color=color, gid="scores")
            continue
        mask = masks[name].astype(bool).ravel()
        if mask.shape != values.shape:
            raise ShapeError(f"keep[{name!r}] has {mask.size} entries but scores[{name!r}] has {values.size}")
        for gid, selected, marker in (("kept-scores", mask, "o"), ("pruned-scores", ~mask, "x")):
            ax.scatter(x[selected], values[selected], s=16, marker=marker, color=color, gid=gid)
    handles = []
    if masks is not None:  # neutral legend entries: the colours stand for layers
        from matplotlib.lines import Line2D

        n_kept = sum(int(m.astype(bool).sum()) for m in masks.values())
        n_pruned = sum(int((~m.astype(bool)).sum()) for m in masks.values())
        handles = [Line2D([], [], marker="o", color="0.35", linestyle="none", label=f"kept ({n_kept})"),
                   Line2D([], [], marker="x", color="0.35", linestyle="none", label=f"pruned ({n_pruned})")]
    if threshold is not None:
        ax.axhline(threshold, color="k", linestyle="--", linewidth=1, gid="threshold",
                   label=f"global threshold τ = {threshold:.3g}")
    ax.set_xticks(range(len(layers)), list(layers), rotation=30 if len(layers) > 6 else 0)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if threshold is not None or masks is not None:
        ax.legend(handles=handles + [h for h in ax.get_legend_handles_labels()[0]], fontsize="small")
    return ax


def hsv_decay(
    systems: Systems | Mapping[str, Any],
    *,
    ax: Axes | None = None,
    normalize: bool = True,
) -> Axes:
    """Hankel singular value decay σ_j (or σ_j/σ_1) against j, one curve per layer, log scale.

    A fast decay means a low-order balanced truncation is accurate: keeping r states costs at most
    ``2 Σ_{j>r} σ_j`` in H∞ (math.md §5).

    Parameters
    ----------
    systems : DiagonalSSM, SSMModel, dict or list of systems, dict {name: HSV array}, or ReductionResult
        Systems (HSVs computed by :func:`ssmtools.hankel_singular_values`), precomputed HSVs, or a
        balanced-truncation result (its ``hsv``).
    ax : matplotlib Axes, optional
    normalize : bool
        Divide each curve by its largest value σ_1.

    Notes
    -----
    Values below ``1e-15 σ_1`` (numerically zero: the realization is not minimal, e.g. a real pole
    stored as a conjugate pair) are left out of the log-scale curve (drawn as gaps).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.hsv_decay(st.examples.s5_layer_e5(), normalize=False)
    >>> ax.lines[0].get_ydata().round(6).tolist()
    [9.980727, 9.949928, 1.273408, 0.801057]
    """
    if isinstance(systems, Mapping) and systems and all(
        isinstance(v, np.ndarray | list | tuple) for v in systems.values()
    ):
        curves = {str(k): np.asarray(v, dtype=float).ravel() for k, v in systems.items()}
    elif isinstance(getattr(systems, "hsv", None), np.ndarray):  # a balanced-truncation result
        hsv = systems.hsv.reshape(-1, systems.hsv.shape[-1])
        curves = {("" if len(hsv) == 1 else str(i)): row for i, row in enumerate(hsv)}
    else:
        curves = {label: hankel_singular_values(system) for label, system, _ in _named_systems(systems)}
    ax = _new_axes(ax)
    for index, (label, values) in enumerate(curves.items()):
        values = np.sort(values)[::-1]
        values = np.where(values > values[0] * 1e-15, values, np.nan)  # zeros: a non-minimal realization
        if normalize:
            values = values / values[0]
        ax.plot(np.arange(1, len(values) + 1), values, marker=".", color=_color(index), label=label or None)
    ax.set_yscale("log")
    ax.set_xlabel("index j")
    ax.set_ylabel("σ_j / σ_1" if normalize else "Hankel singular value σ_j")
    if any(curves):
        _legend(ax)
    return ax


def pruning_curves(
    curves: Mapping[str, tuple[Any, Any]],
    *,
    ax: Axes | None = None,
    baseline: float | None = None,
    xlabel: str = "pruning ratio (%)",
    ylabel: str = "accuracy",
) -> Axes:
    """A metric (accuracy, H∞ error, ...) against the pruning ratio, one line per criterion.

    Parameters
    ----------
    curves : dict {criterion: (ratios, metric)}
        Ratios and metric values of each criterion (equal lengths; drawn in ratio order).
    ax : matplotlib Axes, optional
    baseline : float, optional
        Metric of the unpruned model (horizontal line, ``gid="baseline"``).
    xlabel : str
        x-axis label (say whether ratios are percentages or fractions).
    ylabel : str
        y-axis label.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.pruning_curves({"last": ([0, 50], [0.9, 0.8]), "random": ([0, 50], [0.9, 0.5])})
    >>> [line.get_label() for line in ax.lines]
    ['last', 'random']
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError("curves must be a non-empty dict {criterion: (ratios, metric)}")
    ax = _new_axes(ax)
    for index, (name, pair) in enumerate(curves.items()):
        ratios, metric = (np.asarray(v, dtype=float).ravel() for v in pair)
        if ratios.shape != metric.shape:
            raise ShapeError(f"curves[{name!r}]: {ratios.size} ratios but {metric.size} metric values")
        order = np.argsort(ratios, kind="stable")
        ax.plot(ratios[order], metric[order], marker="o", markersize=4, color=_color(index), label=str(name))
    if baseline is not None:
        ax.axhline(baseline, color="0.4", linestyle=":", gid="baseline", label="_unpruned")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return ax


def state_allocation(
    kept: Mapping[str, Any],
    totals: Mapping[str, int] | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Kept states per layer as bars (one group of bars per layer, one bar per plan).

    Parameters
    ----------
    kept : dict {layer: count} or dict {plan name: dict {layer: count}}
        Kept-state counts (or boolean keep masks, which are counted) per layer; several plans
        (e.g. criteria at the same ratio) are drawn side by side.
    totals : dict {layer: int}, optional
        Stored states per layer, drawn as outlined bars behind (``gid="total-states"``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import ssmtools as st
    >>> ax = st.plot.state_allocation({"layer_0": 3, "layer_1": 1}, totals={"layer_0": 4, "layer_1": 4})
    >>> [float(p.get_height()) for p in ax.containers[1]]
    [3.0, 1.0]
    """
    if not isinstance(kept, Mapping) or not kept:
        raise TypeError("kept must be a non-empty dict {layer: count} or {plan: {layer: count}}")

    def count(value: Any) -> float:
        array = np.asarray(value)
        return float(array.sum()) if array.dtype == bool else float(array)

    plans = kept if all(isinstance(v, Mapping) for v in kept.values()) else {"": kept}
    layers = list(dict.fromkeys(name for plan in plans.values() for name in plan))
    x = np.arange(len(layers))
    ax = _new_axes(ax)
    if totals is not None:
        missing = [name for name in layers if name not in totals]
        if missing:
            raise ValueError(f"totals has no entry for layers {missing}")
        ax.bar(x, [totals[name] for name in layers], width=0.9, facecolor="none", edgecolor="0.5",
               gid="total-states", label="stored")
    width = 0.8 / len(plans)
    for index, (plan, counts) in enumerate(plans.items()):
        heights = [count(counts.get(name, 0)) for name in layers]
        ax.bar(x - 0.4 + width * (index + 0.5), heights, width=width, color=_color(index),
               gid="kept-states", label=f"kept {plan}".strip())
    ax.set_xticks(x, layers, rotation=30 if len(layers) > 6 else 0)
    ax.set_xlabel("layer")
    ax.set_ylabel("states")
    _legend(ax)
    return ax


# ---------------------------------------------------------------------------------------------- pruning plans
def _plans(plans: Any) -> dict[str, Any]:
    if isinstance(plans, Mapping):
        return {str(k): v for k, v in plans.items()}
    if hasattr(plans, "layers") and hasattr(plans, "criterion"):
        return {str(plans.criterion): plans}
    raise TypeError(
        f"expected a PruningPlan (ssmtools.pruning.prune_plan) or a dict {{label: PruningPlan}}, got {type(plans).__name__}"
    )


def plan_scores(plan: Any, *, ax: Axes | None = None, log: bool = True) -> Axes:
    """The normalised scores of a pruning plan per layer, kept vs pruned, with its global threshold.

    :func:`score_distributions` applied to ``plan.layers[i].scores`` (the values the criterion
    ranked), ``plan.keep`` and ``plan.threshold``.

    Parameters
    ----------
    plan : PruningPlan
        Result of :func:`ssmtools.pruning.prune_plan`.
    ax : matplotlib Axes, optional
    log : bool
        Logarithmic y axis.

    Returns
    -------
    matplotlib.axes.Axes
    """
    (label, plan), = _plans(plan).items()
    scores = {layer.name: layer.scores for layer in plan.layers}
    return score_distributions(scores, threshold=plan.threshold, keep=plan.keep, ax=ax, log=log,
                               ylabel=f"{label} score (normalised per layer)")


def plan_allocation(plans: Any, *, ax: Axes | None = None) -> Axes:
    """Kept states per layer of one or several pruning plans, against the stored states.

    :func:`state_allocation` applied to ``layer.n_kept`` and ``layer.n_total`` of every plan layer.

    Parameters
    ----------
    plans : PruningPlan or dict {label: PruningPlan}
        Plans of the same model (e.g. several criteria at one ratio); one bar per plan and layer.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    plans = _plans(plans)
    kept = {label: {layer.name: layer.n_kept for layer in plan.layers} for label, plan in plans.items()}
    totals: dict[str, int] = {}
    for plan in plans.values():
        for layer in plan.layers:
            if totals.setdefault(layer.name, layer.n_total) != layer.n_total:
                raise ValueError(f"the plans disagree on the size of layer {layer.name!r}: plans of different models")
    return state_allocation(kept, totals, ax=ax)

"""Frequency-response plots: [`sigma`][ssmtools.plot.sigma] (singular values, H∞ peaks) and [`bode`][ssmtools.plot.bode] (one channel).

Frequencies are rad/sample in discrete time (Nyquist frequency π) and rad per time unit in
continuous time. Bidirectional S5 layers are drawn with their full non-causal response.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ArgumentError, BatchIndexError, ShapeError, check_choice, silence_unstable
from ..norms import hinf_result
from ..pruning.measure import PLAN_RTOL
from ..systems import BidirectionalSSM, LTISystem, freqresp
from ._common import Named, Systems, _color, _legend, _named_systems, _new_axes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = ["sigma", "bode"]


def _frequency_grid(systems: list[LTISystem], extra: np.ndarray, n_points: int, xscale: str) -> np.ndarray:
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


def _singular_values(system: LTISystem, omega: np.ndarray, minus: LTISystem | None = None) -> np.ndarray:
    """Singular values of G(ω) (or of G(ω) − G_minus(ω)), shape (k, min(p, m)), descending, in chunks."""
    per_frequency = 16 * system.n_outputs * max(system.n_inputs, system.n_states)
    step = max(1, _CHUNK_BYTES // per_frequency)
    out = []
    for start in range(0, omega.size, step):
        chunk = omega[start : start + step]
        response = freqresp(system, chunk)
        if minus is not None:
            response = response - freqresp(minus, chunk)
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


def _resolve_xscale(systems: list[LTISystem], xscale: str | None) -> str:
    if xscale is None:
        return "linear" if any(s.output == "complex" for s in systems) else "log"
    check_choice("xscale", xscale, ("log", "linear"))
    return xscale


def _visible(peak: float, omega: np.ndarray, xscale: str) -> float:
    """Where to draw a peak: a peak at ω = 0 sits at the left end of a log axis (its curve is flat there)."""
    return float(max(peak, omega[0])) if xscale == "log" and peak <= 0 and omega.size else peak


def _peaks(named: list[Named], mark_peak: bool) -> list[tuple[float, float]]:
    """(‖G‖∞, peak frequency) per system (L∞ and its peak for bidirectional layers)."""
    if not mark_peak:
        return [(np.nan, np.nan)] * len(named)
    peaks = []
    for _, system in named:
        with silence_unstable():  # unstable curves are labelled as such (inf norm, no peak)
            result = hinf_result(system, rtol=PLAN_RTOL)  # a marker needs no more digits than a table
        value, peak = result.value, result.peak
        if system.output == "real":
            peak = abs(peak)  # real-output responses are conjugate-symmetric
        peaks.append((float(value), float(peak)))
    return peaks


def _peak_label(value: float, peak: float, bidirectional: bool, db: bool) -> str:
    """The norm in the unit of the magnitude axis (dB on a dB axis, the gain in brackets) and its frequency."""
    amount = f"{20.0 * np.log10(value):.4g} dB ({value:.4g})" if db and value > 0 else f"{value:.4g}"
    if bidirectional:
        return f"‖G‖_L∞ = {amount} (non-causal) at ω = {peak:.4g}"
    return f"‖G‖∞ = {amount} at ω = {peak:.4g}"


def _unstable_suffix(system: LTISystem) -> str:
    """Legend note of an unstable system: its curve is a frequency response but not a gain (‖G‖∞ = ∞)."""
    return "" if bool(np.all(system.is_stable)) else " (unstable: ‖G‖∞ = ∞)"


def _paired(systems: Systems, reduced: Systems | None) -> tuple[list[Named], list[Named] | None]:
    """The unbatched systems and, when given, their reduced counterparts, one per original."""
    named = _named_systems(systems)
    named_reduced = _named_systems(reduced, "reduced") if reduced is not None else None
    if named_reduced is not None and len(named_reduced) != len(named):
        raise ShapeError(
            f"reduced has {len(named_reduced)} systems but systems has {len(named)}; pass one reduced "
            "system per original (same dict keys / batch shape)"
        )
    return named, named_reduced


def _frequency_axis(
    named: list[Named],
    named_reduced: list[Named] | None,
    omega: ArrayLike | None,
    xscale: str | None,
    mark_peak: bool,
    n_points: int,
) -> tuple[str, list[tuple[float, float]], np.ndarray]:
    """(x scale, H∞ peaks of ``named``, sorted frequencies): ``omega`` as given, or a grid that covers every
    system's resonances and peaks."""
    all_systems = [s for _, s in named] + ([s for _, s in named_reduced] if named_reduced else [])
    scale = _resolve_xscale(all_systems, xscale)
    peaks = _peaks(named, mark_peak)
    if omega is None:
        return scale, peaks, _frequency_grid(all_systems, np.array([p for _, p in peaks]), n_points, scale)
    return scale, peaks, np.sort(np.asarray(omega, dtype=float).ravel())


def _mark_peak(ax: Axes, x: float, y: np.ndarray, color: str, label: str) -> None:
    """A star at an H∞ peak (``gid="hinf-peak"``)."""
    ax.plot(
        [x],
        y,
        marker="*",
        markersize=11,
        linestyle="none",
        color=color,
        markeredgecolor="k",
        gid="hinf-peak",
        label=label,
    )


def sigma(
    systems: Systems,
    *,
    reduced: Systems | None = None,
    omega: ArrayLike | None = None,
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
    ``‖G‖∞ = sup_ω σ_max(G)`` computed by [`ssmtools.hinf_norm`][ssmtools.norms.hinf_norm] (default method) is marked at
    its peak frequency with a star (``gid="hinf-peak"``). Discrete time: the Nyquist frequency
    π rad/sample is marked (``gid="nyquist"``).

    Parameters
    ----------
    systems : DiagonalSSM, SSMLayer, SSMModel, dict or list of them
        One curve per system; batched systems give one curve per batch element (layers, channels).
        Dict keys (layer names) become legend labels. A bidirectional ``SSMLayer`` (S5) is drawn with
        its full non-causal response, forward plus backward scan
        (docs/concepts/derivations.md#bidirectional-linf), and marked with its L∞ norm and peak (AB13DD on
        the stacked realization).
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
        Mark each system's H∞ peak (one [`ssmtools.hinf_norm`][ssmtools.norms.hinf_norm] call per system).
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
    named, named_reduced = _paired(systems, reduced)
    scale, peaks, omega = _frequency_axis(named, named_reduced, omega, xscale, mark_peak, n_points)
    ax = _new_axes(ax)
    discrete = named[0][1].is_discrete
    for index, (label, system) in enumerate(named):
        color = _color(index)
        values = _singular_values(system, omega)
        unstable = _unstable_suffix(system)
        ax.plot(
            omega,
            _magnitude(values[:, 0], db),
            color=color,
            label=(label + unstable).strip() or None,
            linestyle="-." if unstable else "-",
            gid="unstable-response" if unstable else None,
        )
        if singular_values == "all" and values.shape[1] > 1:
            ax.plot(omega, _magnitude(values[:, 1:], db), color=color, linewidth=0.6, alpha=0.6)
        value, peak = peaks[index]
        if mark_peak and np.isfinite(value):
            _mark_peak(
                ax,
                _visible(peak, omega, scale),
                _magnitude(np.array([value]), db),
                color,
                _peak_label(value, peak, isinstance(system, BidirectionalSSM), db),
            )
        if named_reduced is not None:
            reduced_entry = named_reduced[index][1]
            ax.plot(
                omega,
                _magnitude(_singular_values(reduced_entry, omega)[:, 0], db),
                color=color,
                linestyle="--",
                label=f"{label} reduced".strip(),
                gid="reduced",
            )
            error = _singular_values(system, omega, minus=reduced_entry)
            ax.plot(
                omega,
                _magnitude(error[:, 0], db),
                color=color,
                linestyle=":",
                label=f"{label} error σ_max(G − G_r)".strip(),
                gid="reduction-error",
            )
    _mark_nyquist(ax, discrete)
    ax.set_xscale(scale)
    if not db:
        ax.set_yscale("log")
    ax.set_xlabel(_frequency_label(discrete))
    ax.set_ylabel("σ_max (dB)" if db else "σ_max (gain)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, outside=len(named) > 1)
    return ax


def _attaining_channel(
    system: LTISystem, peak: tuple[float, float], output_index: int | None, input_index: int | None
) -> tuple[int, int]:
    """The (output, input) channel of the largest ``|G_ij|`` at the H∞ peak frequency (ω = 0 without a finite peak);
    an index already given is kept."""
    value, frequency = peak
    frequency = frequency if np.isfinite(value) and np.isfinite(frequency) else 0.0
    gains = np.abs(freqresp(system, np.array([frequency]))[0])
    rows = range(gains.shape[0]) if output_index is None else [output_index]
    columns = range(gains.shape[1]) if input_index is None else [input_index]
    candidates = [(i, j) for i in rows for j in columns if -gains.shape[0] <= i < gains.shape[0]]
    candidates = [(i, j) for i, j in candidates if -gains.shape[1] <= j < gains.shape[1]]
    if not candidates:
        return (output_index or 0, input_index or 0)  # out of range: the caller's check names the channel
    return max(candidates, key=lambda channel: gains[channel])


def bode(
    systems: Systems,
    *,
    output_index: int | None = None,
    input_index: int | None = None,
    reduced: Systems | None = None,
    omega: ArrayLike | None = None,
    axes: Sequence[Axes] | None = None,
    mark_peak: bool = True,
    xscale: Literal["log", "linear"] | None = None,
    n_points: int = 1000,
) -> Figure | SubFigure:
    """Bode plot (magnitude in dB and phase in degrees) of one input→output channel of each system.

    Plots ``G_ij(e^{jω})`` (DT) or ``G_ij(jω)`` (CT) with ``i = output_index``, ``j = input_index``; by default
    the channel that attains the H∞ peak: the largest entry ``|G_ij|`` of the first system at its peak frequency
    (for a SISO layer ``|G(ω*)| = ‖G‖∞``). With ``mark_peak`` the frequency of each system's H∞ peak (of the
    whole MIMO layer, from :func:`ssmtools.hinf_norm`) is marked by a vertical line on both panels and a star on
    the plotted channel's magnitude at that frequency (``gid="hinf-peak"``); the Nyquist frequency π is marked in
    DT. Unstable systems are labelled as such (their norm is infinite; no peak is marked).

    Parameters
    ----------
    systems : DiagonalSSM, SSMLayer, SSMModel, dict or list of them
        One curve per (unbatched) system, as in :func:`sigma` (bidirectional layers included).
    output_index : int, optional
        Output (row of G) to plot; default: that of the channel attaining the H∞ peak.
    input_index : int, optional
        Input (column of G) to plot; default: that of the channel attaining the H∞ peak.
    reduced : same structure as ``systems``, optional
        Reduced/pruned counterparts, drawn dashed in the same colour.
    omega : array_like, optional
        Frequencies; default as in [`sigma`][ssmtools.plot.sigma].
    axes : pair of matplotlib Axes, optional
        (magnitude, phase) axes to draw on; a new two-panel figure when omitted.
    mark_peak : bool
        Mark each system's H∞ peak frequency.
    xscale : {"log", "linear"}, optional
        As in [`sigma`][ssmtools.plot.sigma].
    n_points : int
        Size of the default frequency grid.

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.figure.SubFigure
        The figure holding the magnitude (``fig.axes[0]``) and phase panels (the subfigure when the given
        ``axes`` live in one).

    Examples
    --------
    >>> import ssmtools as st
    >>> fig = st.plot.bode(st.examples.s5_layer_e5(), output_index=1, input_index=0)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['|G_10| (dB)', 'phase (deg)']
    """
    named, named_reduced = _paired(systems, reduced)
    scale, peaks, omega = _frequency_axis(named, named_reduced, omega, xscale, mark_peak, n_points)
    if output_index is None or input_index is None:
        output_index, input_index = _attaining_channel(named[0][1], peaks[0], output_index, input_index)
    for label, system in named + (named_reduced or []):
        if not (
            -system.n_outputs <= output_index < system.n_outputs and -system.n_inputs <= input_index < system.n_inputs
        ):
            raise BatchIndexError(
                f"channel (output {output_index}, input {input_index}) does not exist in system {label!r} with "
                f"{system.n_outputs} outputs and {system.n_inputs} inputs"
            )
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 1, sharex=True)
    if len(axes) != 2:
        raise ArgumentError(f"axes must be a pair (magnitude, phase) of Axes, got {len(axes)}")
    ax_mag, ax_phase = axes
    discrete = named[0][1].is_discrete

    def channel(system: LTISystem, grid: np.ndarray) -> np.ndarray:
        siso = system.replace(
            B=system.B[:, [input_index]],
            C=system.C[[output_index], :],
            D=system.D[[output_index]][:, [input_index]],
            **({"C_backward": system.C_backward[[output_index], :]} if isinstance(system, BidirectionalSSM) else {}),
        )  # only the plotted entry
        return freqresp(siso, grid)[:, 0, 0]

    for index, (label, system) in enumerate(named):
        color = _color(index)
        response = channel(system, omega)
        ax_mag.plot(
            omega,
            _magnitude(np.abs(response), True),
            color=color,
            label=(label + _unstable_suffix(system)).strip() or None,
        )
        ax_phase.plot(omega, np.degrees(np.unwrap(np.angle(response))), color=color)
        value, peak = peaks[index]
        if mark_peak and np.isfinite(value):
            at_peak = np.abs(channel(system, np.array([peak])))
            _mark_peak(
                ax_mag,
                _visible(peak, omega, scale),
                _magnitude(at_peak, True),
                color,
                f"|G_{output_index}{input_index}| at the H∞ peak ω = {peak:.4g}",
            )
            for panel in (ax_mag, ax_phase):
                panel.axvline(_visible(peak, omega, scale), color=color, linestyle="-.", linewidth=0.8, alpha=0.7)
        if named_reduced is not None:
            reduced_response = channel(named_reduced[index][1], omega)
            ax_mag.plot(
                omega,
                _magnitude(np.abs(reduced_response), True),
                color=color,
                linestyle="--",
                label=f"{label} reduced".strip(),
                gid="reduced",
            )
            ax_phase.plot(
                omega, np.degrees(np.unwrap(np.angle(reduced_response))), color=color, linestyle="--", gid="reduced"
            )
    for panel in (ax_mag, ax_phase):
        _mark_nyquist(panel, discrete)
        panel.set_xscale(scale)
        panel.grid(True, which="both", alpha=0.3)
    ax_mag.set_ylabel(f"|G_{output_index}{input_index}| (dB)")
    ax_phase.set_ylabel("phase (deg)")
    ax_phase.set_xlabel(_frequency_label(discrete))
    _legend(ax_mag)
    return ax_mag.figure

"""What ``analyze`` and ``prune`` do for selective (Mamba / Mamba-2) checkpoints: calibrate, label the view, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from ..calibration import calibrate, calibrated, evaluate_keep, module_for, state_statistics
from ..errors import ArgumentError
from ..model import SSMModel
from ..pruning import selective_prune_plan
from ..selective import SelectiveLayer
from ._app import console, norm_table

SELECTIVE_FAMILIES = ("mamba", "mamba2")
MAMBA_PANEL = "Mamba (selective) checkpoints"
# the options analyze and prune share for selective checkpoints (one definition, one help text)
CALIBRATION_OPTION: Any = typer.Option(
    None,
    help="calibration inputs (.npy token ids (batch, T), or embeddings (batch, T, d_model))",
    rich_help_panel=MAMBA_PANEL,
)
VIEW_OPTION: Any = typer.Option(
    "averaged",
    help="the LTI view of the selective layers: averaged, frozen or bias; see docs/concepts/selective.md",
    rich_help_panel=MAMBA_PANEL,
)
MAX_TOKENS_OPTION: Any = typer.Option(4096, help="calibration tokens per layer", rich_help_panel=MAMBA_PANEL)
VIEW_LABELS = {
    "bias": "view 'bias' of a time-varying layer: Δ = softplus(Δ bias), B = C = 1",
    "averaged": "view 'averaged' of a time-varying layer: mean Δ, Δ·B, C over the calibration tokens",
    "frozen": "view 'frozen' of a time-varying layer: one calibration token's Δ, B, C",
}


def is_selective(model: SSMModel) -> bool:
    """Whether the model's layers are selective (Mamba) layers.

    Parameters
    ----------
    model : SSMModel
        A loaded model.

    Returns
    -------
    bool
    """
    return model.family in SELECTIVE_FAMILIES


def _calibrate(path: Path, model: SSMModel, calibration: Path, view: str, max_tokens: int) -> tuple[Any, Any, Any]:
    config = path.parent / "config.json"
    module = module_for(model, config_json=config if config.exists() else None)
    tokens = np.load(calibration, allow_pickle=False)
    cal = calibrate(module, tokens, model=model, max_tokens=max_tokens, progress=console.is_terminal)
    return module, tokens, calibrated(model, cal, view)


def check_calibration_args(model: SSMModel, calibration: Path | None, view: str) -> None:
    """Refuse ``--calibration`` / ``--view`` for families that are LTI.

    Parameters
    ----------
    model : SSMModel
        The loaded model.
    calibration : Path or None
        ``--calibration``.
    view : str
        ``--view``.
    """
    if not is_selective(model) and (calibration is not None or view != "averaged"):
        raise ArgumentError(
            f"--calibration and --view apply to selective (Mamba) checkpoints; this one is {model.family!r} (LTI)"
        )
    if is_selective(model) and calibration is None and view != "bias" and view != "averaged":
        raise ArgumentError(f"--view {view} needs --calibration tokens.npy")


def analyze_selective(path: Path, model: SSMModel, calibration: Path | None, view: str, max_tokens: int) -> None:
    """Print the labelled view's norms and, when calibrated, every layer's per-state statistics.

    Parameters
    ----------
    path : Path
        The checkpoint.
    model : SSMModel
        It, loaded.
    calibration : Path or None
        Token ids (.npy, (batch, T) integers) or embeddings ((batch, T, d_model) floats).
    view : str
        The view shown.
    max_tokens : int
        Token budget per layer.
    """
    if calibration is None:
        console.print(norm_table(f"{path} ({model.family}, {VIEW_LABELS['bias']}): layer norms", model))
        return
    _, _, cm = _calibrate(path, model, calibration, view, max_tokens)
    console.print(norm_table(f"{path} ({model.family}, {VIEW_LABELS[view]}): layer norms", cm))
    table = Table(title="per-state statistics (summed over channels): empirical Gramian and frozen-token H∞")
    for column in ("layer", "state", "mean Δ·|A|", "gramian", "input energy", "output energy", "H∞ q50", "H∞ max"):
        table.add_column(column, justify="right")
    for name, layer in cm.items():
        assert isinstance(layer, SelectiveLayer) and layer.params is not None and layer.stats is not None
        stats = state_statistics(layer)
        rate = (layer.stats.sum_delta / layer.stats.tokens)[:, None] * -layer.params.channel_A()
        for n in range(layer.n_states):
            table.add_row(
                name, str(n), f"{rate[:, n].mean():.4g}", f"{stats['gramian'][:, n].sum():.4g}",
                f"{stats['input_energy'][:, n].sum():.4g}", f"{stats['output_energy'][:, n].sum():.4g}",
                f"{stats['hinf_q50'][:, n].max():.4g}", f"{stats['hinf_max'][:, n].max():.4g}",
            )  # fmt: skip
    console.print(table)


def prune_selective(
    path: Path, model: SSMModel, ratio: float, criterion: str, calibration: Path | None, view: str, max_tokens: int,
    mask: bool,
) -> tuple[Any, Any]:  # fmt: skip
    """The pruned parameters and plan of a Mamba checkpoint (one d_state for all layers), with its effect printed.

    Parameters
    ----------
    path : Path
        The checkpoint.
    model : SSMModel
        It, loaded.
    ratio : float
        Fraction of states removed (rounded down to whole states per layer).
    criterion : str
        A registered criterion, scoring the view.
    calibration : Path or None
        Calibration inputs (.npy); without them the criteria score the ``"bias"`` view.
    view : str
        The view scored.
    max_tokens : int
        Token budget per layer.
    mask : bool
        Zero the removed states instead.

    Returns
    -------
    tuple
        (parameters, plan).
    """
    if calibration is None:
        plan = selective_prune_plan(model, ratio, criterion, errors=False)
        console.print(f"no --calibration: criterion {criterion!r} scored the {VIEW_LABELS['bias']}")
        return model.apply(plan.keep, mask=mask).params, plan
    module, tokens, cm = _calibrate(path, model, calibration, view, max_tokens)
    plan = selective_prune_plan(cm, ratio, criterion, errors=False)
    n = next(iter(model.values())).n_states
    kept = int(next(iter(plan.keep.values()))[0].sum())
    console.print(f"one d_state for all layers (the format's constraint): state_size {n} -> {kept}")
    table = Table(title=f"effect on the calibration batch ({VIEW_LABELS[view]} scored by {criterion!r})")
    for column in ("criterion", "next-token loss", "max layer output error"):
        table.add_column(column, justify="right")
    for name in dict.fromkeys([criterion, "magnitude", "random"]):
        chosen = plan if name == criterion else selective_prune_plan(cm, ratio, name, errors=False)
        effect = evaluate_keep(module, model, chosen.keep, tokens)
        loss = "—" if effect.loss is None else f"{effect.loss:.5g} (before {effect.loss_before:.5g})"
        table.add_row(name, loss, f"{max(effect.output_error.values()):.4g}")
    console.print(table)
    return model.apply(plan.keep, mask=mask).params, plan

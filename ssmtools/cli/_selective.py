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
from ..report import summary_json
from ..selective import SelectiveLayer
from ._app import console, norm_table, summaries
from ._outputs import text_writer, write_all

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
    limit = getattr(module.config, "time_step_limit", None) if model.family == "mamba2" else None
    if limit is not None and tuple(limit) != tuple(model.config["time_step_limit"]):  # from config.json
        assert model.adapter is not None
        model = model.adapter.read(model.params, source=model.source, **{**model.config, "time_step_limit": limit})
    tokens = np.load(calibration, allow_pickle=False)
    cal = calibrate(module, tokens, model=model, max_tokens=max_tokens, progress=console.is_terminal)
    return module, tokens, calibrated(model, cal, view)


def calibrated_model(path: Path, model: SSMModel, calibration: Path, view: str, max_tokens: int) -> SSMModel:
    """``model`` calibrated on the inputs in ``calibration``, every layer showing ``view``.

    Parameters
    ----------
    path : Path
        The checkpoint (a ``config.json`` beside it configures the module).
    model : SSMModel
        It, loaded.
    calibration : Path
        Token ids or embeddings (.npy).
    view : str
        The LTI view.
    max_tokens : int
        Token budget per layer.

    Returns
    -------
    SSMModel
    """
    return _calibrate(path, model, calibration, view, max_tokens)[2]


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


#: Per-state statistics of the analyze table and JSON (summed over channels, except the H∞ quantiles: max).
STATE_COLUMNS = ("mean Δ·|A|", "gramian", "input energy", "output energy", "H∞ q50", "H∞ max")


def state_rows(layer: SelectiveLayer) -> list[dict[str, float]]:
    """Per state of a calibrated layer: the :data:`STATE_COLUMNS`, over its channels.

    Parameters
    ----------
    layer : SelectiveLayer
        From :func:`ssmtools.calibration.calibrated`.

    Returns
    -------
    list of dict
        One per state, keyed by JSON names (``mean_rate``, ``gramian``, ``input_energy``, ``output_energy``,
        ``hinf_q50``, ``hinf_max``).
    """
    assert layer.params is not None and layer.stats is not None
    stats = state_statistics(layer)
    rate = (layer.stats.sum_delta / layer.stats.tokens)[:, None] * -layer.params.channel_A()
    return [
        {
            "mean_rate": float(rate[:, n].mean()),
            "gramian": float(stats["gramian"][:, n].sum()),
            "input_energy": float(stats["input_energy"][:, n].sum()),
            "output_energy": float(stats["output_energy"][:, n].sum()),
            "hinf_q50": float(stats["hinf_q50"][:, n].max()),
            "hinf_max": float(stats["hinf_max"][:, n].max()),
        }
        for n in range(layer.n_states)
    ]


def analyze_selective(
    path: Path, model: SSMModel, calibration: Path | None, view: str, max_tokens: int, json_path: Path | None = None,
    rtol: float = 1e-8,
) -> None:  # fmt: skip
    """Print the labelled view's norms and, when calibrated, every layer's per-state statistics (and write JSON).

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
    json_path : Path or None
        Also write the table as the analyze JSON document, with its ``view`` and the layers' ``states``.
    rtol : float
        Relative accuracy of the view's H∞ norms.
    """
    cm, shown, tokens = model, "bias", None
    if calibration is not None:
        cm, shown = calibrated_model(path, model, calibration, view, max_tokens), view
        tokens = min(layer.stats.tokens for layer in cm.values() if isinstance(layer, SelectiveLayer) and layer.stats)
    rows = summaries(cm, rtol=rtol)
    console.print(norm_table(f"{path} ({model.family}, {VIEW_LABELS[shown]}): layer norms", cm, rtol=rtol, rows=rows))
    states = {
        name: state_rows(layer) for name, layer in cm.items() if isinstance(layer, SelectiveLayer) and layer.stats
    }
    if states:
        table = Table(title="per-state statistics (summed over channels): empirical Gramian and frozen-token H∞")
        for column in ("layer", "state", *STATE_COLUMNS):
            table.add_column(column, justify="right")
        for name, per_state in states.items():
            for n, row in enumerate(per_state):
                table.add_row(name, str(n), *(f"{value:.4g}" for value in row.values()))
        console.print(table)
    if json_path is not None:
        label = {"name": shown, "label": VIEW_LABELS[shown], "time_varying": True, "calibration_tokens": tokens}
        fields = {name: {"states": per_state} for name, per_state in states.items()}
        write_all([(json_path, text_writer(summary_json(cm, rtol=rtol, rows=rows, view=label, layer_fields=fields)))])


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

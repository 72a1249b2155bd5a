"""``ssmtools demo``: analyse a small bundled S5-style model."""

from __future__ import annotations

import typer

from .. import examples
from ..model import SSMModel
from ..pruning import prune_plan
from ._app import app, console, fail, norm_table


@app.command(help="Analyse a small bundled S5-style model: layer norms, then a LAST pruning plan.")
def demo(
    layers: int = typer.Option(4, min=1, help="number of layers of the bundled random S5-style model"),
    states: int = typer.Option(16, min=1, help="stored states per layer"),
    width: int = typer.Option(8, min=1, help="model width H (inputs = outputs)"),
    seed: int = typer.Option(0, min=0, help="random seed of the example model (≥ 0)"),
    ratio: float = typer.Option(0.3, help="LAST pruning ratio shown at the end"),
) -> None:
    """Analyse a small bundled S5-style model: layer norms, then a LAST pruning plan.

    Parameters
    ----------
    layers : int
        Number of random S5-style layers (the worked example layer E5 comes first).
    states : int
        Stored states per layer.
    width : int
        Model width H (inputs = outputs).
    seed : int
        Random seed of the example model.
    ratio : float
        LAST pruning ratio of the plan printed at the end.
    """
    model = SSMModel.from_systems(
        {"e5": examples.s5_layer_e5(), **examples.random_s5_model(layers, states, width, seed=seed)}
    )
    console.print(norm_table("ssmtools demo: layer norms (exact, discrete time, rad/sample)", model))
    try:
        plan = prune_plan(model, ratio, "last")
    except ValueError as exc:
        raise fail(exc) from None
    console.print(plan)

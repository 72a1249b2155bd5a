"""Command-line interface: argument parsing and printing only; the work lives in the library."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Control theory for deep state-space models.")


@app.callback()
def _root() -> None:
    """ssmtools command-line interface."""


@app.command()
def demo(
    layers: int = typer.Option(4, min=1, help="number of layers of the bundled random S5-style model"),
    states: int = typer.Option(16, min=1, help="stored states per layer"),
    width: int = typer.Option(8, min=1, help="model width H (inputs = outputs)"),
    seed: int = typer.Option(0, help="random seed of the example model"),
) -> None:
    """Analyse a small bundled S5-style model and print its layer norms."""
    import numpy as np

    from . import examples, h2_norm, hankel_singular_values, hinf_norm, state_hinf_norms

    console = Console()
    model = {"e5": examples.s5_layer_e5(), **examples.random_s5_model(layers, states, width, seed=seed)}
    table = Table(title="ssmtools demo: layer norms (exact, discrete time, rad/sample)")
    for column in ("layer", "states", "H∞ (AB13DD)", "peak ω", "H2", "max state H∞", "σ₁ (HSV)", "stable"):
        table.add_column(column, justify="right")
    for name, layer in model.items():
        value, peak = hinf_norm(layer, return_peak=True)
        table.add_row(
            name, str(layer.n_states), f"{value:.6g}", f"{peak:.4f}", f"{h2_norm(layer):.6g}",
            f"{np.max(state_hinf_norms(layer)):.6g}", f"{hankel_singular_values(layer)[0]:.6g}",
            str(bool(layer.is_stable)),
        )
    console.print(table)


def main() -> None:
    """Entry point of the ``ssmtools`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

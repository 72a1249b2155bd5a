"""Δ maps and state-energy heatmaps of calibrated Mamba layers (``ssmtools.plot.selective``), headless (Agg).

The drawn mean Δ is checked against Δ_t recomputed from the real module's own ``x_proj`` output (captured by a
hook, softplus(dt_proj(δ_t)) written here), not against the calibration code that produced it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from safetensors.torch import save_file
from typer.testing import CliRunner

from ssmtools.calibration import calibrate, calibrated, read_module
from ssmtools.cli import app
from ssmtools.errors import ArgumentError, ShapeError
from ssmtools.plot import delta_map, model_figure, selective_arrays, state_energy

from .adapters.test_mamba import N, hf_mamba, softplus


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_heatmaps_draw_log10_of_the_values():
    ax = delta_map({"a": [0.01, 0.1, 1.0], "b": [0.0, 1e-3, 10.0]})
    image = ax.images[0]
    assert image.get_gid() == "delta-map"
    np.testing.assert_allclose(image.get_array(), [[-2, -1, 0], [-4, -3, 1]])  # 0 drawn a decade below the min
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    ax = state_energy(np.array([[1.0, 100.0], [10.0, 0.1]]), label="gramian")
    np.testing.assert_allclose(ax.images[0].get_array(), [[0, 2], [1, -1]])
    assert ax.get_xlabel() == "state n" and ax.images[0].get_gid() == "state-energy"
    with pytest.raises(ShapeError):
        delta_map({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ShapeError):
        state_energy([1.0, 2.0])
    with pytest.raises(ArgumentError):
        state_energy([[1.0, np.nan]])
    with pytest.raises(ArgumentError):
        delta_map({"a": [-1.0]})


def test_delta_map_of_a_calibrated_model_is_the_modules_mean_step():
    m = hf_mamba()
    tokens = np.random.default_rng(2).integers(0, 40, (2, 7))
    captured = []
    mixer = m.backbone.layers[0].mixer
    handle = mixer.x_proj.register_forward_hook(lambda mod, args, out: captured.append(out.detach().numpy()))
    try:
        cm = calibrated(read_module(m), calibrate(m, tokens, max_tokens=None))
    finally:
        handle.remove()
    R = mixer.dt_proj.weight.shape[1]
    dbc = np.concatenate([c.reshape(-1, c.shape[-1]) for c in captured])  # (batch·T, R + 2N)
    steps = softplus(dbc[:, :R] @ mixer.dt_proj.weight.detach().numpy().T + mixer.dt_proj.bias.detach().numpy())
    arrays = selective_arrays(cm)
    np.testing.assert_allclose(arrays["backbone.layers.0.mixer"]["delta"], steps.mean(0), rtol=1e-10)
    fig = model_figure(cm, "delta")
    np.testing.assert_allclose(fig.axes[0].images[0].get_array()[0], np.log10(steps.mean(0)), rtol=1e-10)
    fig = model_figure(cm, "energy")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 and panels[0].images[0].get_array().shape == (2 * 16, N)
    layer = cm["backbone.layers.1.mixer"]
    np.testing.assert_allclose(panels[1].images[0].get_array(), np.log10(layer.stats.gramian_scores))
    with pytest.raises(ArgumentError, match="calibration"):
        model_figure(read_module(m), "energy")


def test_cli_plot_delta_and_energy_need_a_calibrated_mamba_checkpoint(tmp_path):
    m = hf_mamba()
    ckpt = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items() if k != "lm_head.weight"}, ckpt)
    np.save(tmp_path / "tokens.npy", np.random.default_rng(0).integers(0, 40, (2, 8)))
    runner = CliRunner()
    for kind in ("delta", "energy"):
        out = tmp_path / f"{kind}.png"
        args = ["plot", str(ckpt), "--kind", kind, "--calibration", str(tmp_path / "tokens.npy"), "-o", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = runner.invoke(app, ["plot", str(ckpt), "--kind", "delta", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "--calibration" in result.output and not (tmp_path / "x.png").exists()

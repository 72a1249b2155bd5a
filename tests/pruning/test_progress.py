"""Progress callbacks of prune_plan / last_prune and the prune command; relative plan errors by default."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import ssmtools
from ssmtools.cli import app, prune as prune_command
from ssmtools.examples import random_s5_model
from ssmtools.pruning import last_prune, prune_plan

from .reference import s5_tree


def recorder(calls):
    def progress(items, what):
        calls.append((len(items), what))
        yield from items

    return progress


def test_prune_plan_and_last_prune_iterate_their_layers_through_the_progress_callback():
    layers = random_s5_model(3, n_states=6, width=2, seed=0)
    calls: list = []
    plan = prune_plan(layers, 0.5, progress=recorder(calls))
    assert calls == [(3, "errors")]
    assert plan.to_json() == prune_plan(layers, 0.5).to_json()  # the callback only observes
    calls.clear()
    model = ssmtools.load(s5_tree(np.random.default_rng(0), n_layers=3, P=4, H=3))
    last_prune(model, 0.5, errors=False, progress=recorder(calls))
    assert calls == [(3, "reduce")]


def test_last_prune_reports_relative_errors_by_default():
    model = ssmtools.load(s5_tree(np.random.default_rng(1), n_layers=2, P=4, H=3))
    _, plan = last_prune(model, 0.5)
    for layer, unpruned in zip(plan.layers, model.values()):
        reference = float(ssmtools.hinf_norm(unpruned.system, method="slycot"))  # AB13DD on the unpruned layer
        assert layer.hinf_norm == pytest.approx(reference, rel=2e-4)
        assert layer.relative_hinf_error == pytest.approx(layer.hinf_error / layer.hinf_norm, rel=1e-12)
    _, absolute = last_prune(model, 0.5, errors="absolute")
    assert all(layer.relative_hinf_error is None for layer in absolute.layers)
    np.testing.assert_allclose([x.hinf_error for x in absolute.layers], [x.hinf_error for x in plan.layers])


def test_the_prune_command_shows_its_progress_through_the_cli_helper(tmp_path, monkeypatch):
    source = tmp_path / "model.npz"
    ssmtools.save(ssmtools.load(s5_tree(np.random.default_rng(4), n_layers=2, P=4, H=3)), source)
    calls: list = []
    monkeypatch.setattr(prune_command, "progress", recorder(calls))
    result = CliRunner().invoke(app, ["prune", str(source), "--ratio", "0.5", "-o", str(tmp_path / "out.npz")])
    assert result.exit_code == 0, result.output
    assert calls == [(2, "errors")]
    assert "rel ∞" in result.output and "│     - │" not in result.output

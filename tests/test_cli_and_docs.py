"""The demo command, the docstring examples of every module, and the README quick start."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import ssmtools
from ssmtools.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_demo_prints_layer_norms_that_match_the_library():
    result = CliRunner().invoke(app, ["demo", "--layers", "2", "--states", "4", "--width", "3"])
    assert result.exit_code == 0, result.output
    assert "e5" in result.output and "layers_1" in result.output
    assert f"{ssmtools.hinf_norm(ssmtools.examples.s5_layer_e5()):.6g}" in result.output  # 19.7336


def test_demo_rejects_bad_option_with_exit_code_2():
    result = CliRunner().invoke(app, ["demo", "--layers", "0"])
    assert result.exit_code == 2


MODULES = sorted(
    info.name for info in pkgutil.walk_packages(ssmtools.__path__, "ssmtools.") if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {module_name}"


def test_readme_quick_start_runs_and_its_printed_values_hold():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quick start\s+```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    layer = namespace["layer"]
    result = ssmtools.hinf_result(layer)
    value, peak = result.value, result.peak
    assert (round(float(value), 10), round(float(peak), 7)) == (19.7336337552, 0.5998007)
    np.testing.assert_allclose(ssmtools.state_hinf_norms(layer), [2.45623942, 19.70135311], rtol=1e-8)


# ----------------------------------------------------------------------------- analyze / prune on a checkpoint
@pytest.fixture
def s5_checkpoint(tmp_path):
    from .pruning.reference import s5_tree

    tree = s5_tree(np.random.default_rng(3), n_layers=2, P=6, H=4)
    path = tmp_path / "s5.npz"
    ssmtools.save(ssmtools.load(tree), path)
    return path


def test_analyze_prints_the_library_norms(s5_checkpoint):
    result = CliRunner().invoke(app, ["analyze", str(s5_checkpoint)])
    assert result.exit_code == 0, result.output
    model = ssmtools.load(s5_checkpoint)
    for name, layer in model.items():
        assert name in result.output
        assert f"{ssmtools.hinf_norm(layer.system):.6g}" in result.output


def test_analyze_marks_bidirectional_values_as_linf_and_names_a_root_layer(tmp_path):
    """A bidirectional layer's peak gain is an L∞ norm; a checkpoint of one bare layer shows it as ``(root)``."""
    from .pruning.reference import s5_tree

    tree = s5_tree(np.random.default_rng(4), n_layers=1, P=4, H=3, bidirectional=True)
    seq = tree["params"]["encoder"]["layers_0"]["seq"]
    path = tmp_path / "bare.npz"
    ssmtools.save(ssmtools.load(seq, bidirectional=True), path)
    result = CliRunner().invoke(app, ["analyze", str(path), "--family", "s5"])
    assert result.exit_code == 0, result.output
    (layer,) = ssmtools.load(path, "s5", bidirectional=True).values()
    assert layer.bidirectional and layer.name == ""
    row = next(line for line in result.output.splitlines() if "(root)" in line)
    assert f"{ssmtools.hinf_norm(layer.system):.6g} L∞" in row
    assert "yes" in row


def test_prune_writes_a_smaller_checkpoint_and_the_plan(s5_checkpoint, tmp_path):
    before = s5_checkpoint.read_bytes()
    out, plan_path = tmp_path / "pruned.npz", tmp_path / "plan.json"
    result = CliRunner().invoke(
        app, ["prune", str(s5_checkpoint), "--ratio", "0.5", "-o", str(out), "--plan-json", str(plan_path)]
    )
    assert result.exit_code == 0, result.output
    assert s5_checkpoint.read_bytes() == before  # input untouched
    pruned = ssmtools.load(out)
    assert sum(layer.n_states for layer in pruned.values()) == 6  # 12 stored states, half removed
    assert ssmtools.PruningPlan.from_json(plan_path).n_removed == 6


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["analyze", "missing.npz"], "missing.npz"),
        (["prune", "{ckpt}", "--ratio", "1.5", "-o", "{out}"], "ratio"),
        (["prune", "{ckpt}", "--ratio", "0.5", "-o", "{ckpt}"], "overwrite"),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(s5_checkpoint, tmp_path, arguments, message):
    arguments = [a.format(ckpt=s5_checkpoint, out=tmp_path / "o.npz") for a in arguments]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    assert message in result.output.lower() or message in (result.stderr or "").lower()


def test_readme_model_reduction_snippet_runs_and_bounds_hold():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Model reduction\s+```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    bt, mt = namespace["bt"], namespace["mt"]
    assert bt.system.n_states == 6  # 12 real dimensions = 6 stored conjugate pairs
    assert bt.hsv[12] <= bt.error_hinf * (1 + 1e-8) and bt.error_hinf <= bt.bound * (1 + 1e-8)
    assert mt.error_hinf <= mt.bound * (1 + 1e-8)

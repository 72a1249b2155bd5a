"""The family registry: discovery, lookup, generated family lists, the model's adapter, no model -> adapters import."""

from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import numpy as np
import pytest

import ssmtools
from ssmtools.adapters import Adapter, available_families, get_adapter
from ssmtools.errors import FormatError

from .test_s4d import _full, _minimal_tree

PACKAGE = Path(ssmtools.__file__).parent


def test_every_public_adapter_module_is_discovered():
    modules = {p.stem for p in (PACKAGE / "adapters").glob("*.py") if not p.stem.startswith("_")}
    owners = {type(get_adapter(family)).__module__.rsplit(".", 1)[1] for family in available_families()}
    assert owners == modules
    assert set(available_families()) >= {"s5", "s5-pytorch", "s4d", "s4d-full", "lru"}


@pytest.mark.parametrize("family", ["s5", "s5-pytorch", "s4d", "s4d-full", "lru"])
def test_adapters_declare_keys_capabilities_and_frozen_defaults(family):
    adapter = get_adapter(family)
    assert isinstance(adapter, Adapter) and adapter.family == family and get_adapter(adapter) is adapter
    assert adapter.detection_keys and all(isinstance(keys, frozenset) for keys in adapter.detection_keys)
    assert isinstance(adapter.defaults, types.MappingProxyType)
    caps = adapter.capabilities
    assert caps.can_prune and caps.can_mask and caps.can_replace


def test_unknown_family_lists_the_registry():
    listed = re.escape(str(list(available_families())))
    with pytest.raises(ValueError, match=rf"family='mamba3' is not valid; choose 'auto' or one of {listed}"):
        get_adapter("mamba3")


def test_the_model_holds_its_adapter():
    model = ssmtools.load(_minimal_tree(0))
    assert model.adapter is get_adapter("s4d") and model.family == "s4d"
    assert all(layer.output_scale == 2.0 for layer in model.values())
    custom = ssmtools.SSMModel.from_systems([model["layers.0.kernel"].system])
    assert custom.adapter is None and custom.family == "custom"
    with pytest.raises(ValueError, match="family='custom' and no parameters"):
        custom.apply({"layer_0": np.ones(custom["layer_0"].system.poles.shape, dtype=bool)})


def test_s4d_layouts_are_two_families():
    full = _full(np.random.default_rng(1))
    assert ssmtools.load(full).family == "s4d-full"
    with pytest.raises(
        FormatError, match="no s4d layer found .*log_A_real.*holds s4d-full layers: pass family='s4d-full'"
    ):
        ssmtools.load(full, family="s4d")
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['dt_transform'\] for family 's4d'"):
        ssmtools.load(_minimal_tree(2), dt_transform="exp")


def test_model_module_does_not_import_adapters():
    tree = ast.parse((PACKAGE / "model.py").read_text(encoding="utf-8"))
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert imported and not [name for name in imported if "adapters" in name]


def test_cli_family_help_comes_from_the_registry():
    from typer.testing import CliRunner

    from ssmtools.cli import app

    result = CliRunner().invoke(app, ["analyze", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert all(family in result.output for family in available_families())

"""benchmarks/bench_regularised.py: its trained-model cache reproduces the run that trained (tiny setup)."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("s5")
pytest.importorskip("mnist1d")

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_regularised.py"


def _module():
    spec = importlib.util.spec_from_file_location("bench_regularised", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # s5-pytorch applies torch.jit.script at import
        spec.loader.exec_module(module)
    return module


def test_cached_models_reproduce_the_training_run(tmp_path):
    bench = _module()
    setup = dict(width=8, states=4, depth=1, epochs=1, n_samples=300, ratios=[0.0, 0.5], cache=tmp_path)
    trained = bench.run(**setup)
    assert len(list(tmp_path.glob("*.pt"))) == 2 and not list(tmp_path.glob("*.tmp"))
    reloaded = bench.run(**setup)
    assert reloaded == trained  # same curves, tails and recorded training seconds
    uncached = bench.run(**{**setup, "cache": None})
    for label, variant in uncached["variants"].items():  # training is deterministic: the cache changes nothing
        assert variant["curve"] == trained["variants"][label]["curve"]

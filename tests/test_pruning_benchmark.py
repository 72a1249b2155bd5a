"""Smoke tests of benchmarks/pruning/run.py's pieces on tiny configurations (seconds, no training run)."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import ssmtools
from ssmtools.pruning import available_criteria, available_reductions, get_criterion, get_reduction

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "pruning" / "run.py"
SPEC = importlib.util.spec_from_file_location("pruning_benchmark", PATH)
assert SPEC is not None and SPEC.loader is not None
run = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = run  # dataclasses look their module up
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # s5-pytorch applies torch.jit.script at import
    SPEC.loader.exec_module(run)


def tiny(kind: str, states: int = 4, width: int = 4, classes: int = 3) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = run.Classifier(kind, [states] * run.DEPTH, classes, width)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_methods_cover_every_registered_criterion_and_projection() -> None:
    found = run.methods(17)
    labels = [m.label for m in found]
    assert len(set(labels)) == len(labels)
    # criteria whose default reduction is a projection (the Hankel slot: balanced, h2-greedy) drive the projections
    slot = {n for n in available_criteria() if not get_reduction(get_criterion(n).default_reduction).selects_states}
    assert "balanced" in slot
    assert {m.criterion for m in found if m.reduction is None} | slot == set(available_criteria())
    assert {m.criterion for m in found if m.reduction is not None} == slot
    projections = [name for name in available_reductions() if not get_reduction(name).selects_states]
    assert projections
    for name in projections:
        variants = [m for m in found if m.reduction == name]
        horizons = {m.reduction_options.get("horizon", "absent") for m in variants}
        if "horizon" in get_reduction(name).options():
            assert horizons >= {17, None}
            assert all(m.criterion_options.get("horizon") == m.reduction_options["horizon"] for m in variants)


def test_sines_task_is_deterministic_and_balanced() -> None:
    a = run.sines_splits(60, 20, 20, length=32)
    b = run.sines_splits(60, 20, 20, length=32)
    for split in ("train", "val", "test"):
        assert torch.equal(a[split][0], b[split][0]) and torch.equal(a[split][1], b[split][1])
    assert a["train"][0].shape == (60, 32) and a["test"][0].shape == (20, 32)
    assert abs(float(a["train"][0].mean())) < 1e-5 and set(a["train"][1].tolist()) <= set(range(8))


def test_s4d_module_matches_the_s4d_adapter() -> None:
    """The benchmark's S4D layer is what ssmtools reads from the s4 layout: kernel + D = impulse response."""
    params = tiny("s4d")
    model = run.Classifier("s4d", [4] * run.DEPTH, 3, 4)
    model.load_state_dict(params, strict=True)
    loaded = ssmtools.load(params)
    assert loaded.family == "s4d"
    system = loaded["seqs.0.kernel"].system
    response = ssmtools.impulse_response(system, 12)[:, :, 0, 0]  # (H, L)
    with torch.no_grad():
        kernel = model.seqs[0].kernel(12).double().numpy()
    kernel[:, 0] += params["seqs.0.D"].double().numpy()
    np.testing.assert_allclose(response, kernel, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["s5", "lru", "s4d"])
def test_evaluate_prunes_reloads_strictly_and_matches_the_reference(kind: str) -> None:
    splits = run.sines_splits(8, 8, 8, length=10)
    params = tiny(kind)
    seen: dict = {}
    row = run.evaluate(kind, params, 0.5, run.Method("last", "last"), splits, 3, seen)
    assert sum(row["sizes"]) == 2 * run.DEPTH and row["realized_ratio"] == 0.5  # half of the 2 × 4 states
    assert 0.0 <= row["test"] <= 100.0 and len(seen) == 1
    if kind == "lru":
        assert row["reference_gap"] < 1e-4  # the FFT forward is LRU.forward
    again = run.evaluate(kind, params, 0.5, run.Method("last-exact", "last-exact"), splits, 3, seen)
    assert again["test"] == row["test"] or len(seen) == 2


def test_summary_and_tables_on_a_fake_report() -> None:
    base = {"ratio": 0.0, "realized_ratio": 0.0, "val": 80.0, "test": 78.0}

    def rows(val: list[float]) -> list[dict]:
        return [base] + [{"ratio": r, "realized_ratio": r, "val": v, "test": v - 1} for r, v in zip([0.5, 0.8], val)]

    units = [
        {
            "task": "sines",
            "kind": "s4d",
            "seed": s,
            "base": base,
            "rows": {"aire": rows([79.5, 60]), "good": rows([79.5, 79.2])},
        }
        for s in (0, 1)
    ]
    units[0]["rows"]["broken"] = [base] + [{"ratio": r, "error": "ArgumentError: no"} for r in (0.5, 0.8)]
    units[1]["rows"]["broken"] = units[0]["rows"]["broken"]
    summary = run.summarise(units)
    entry = summary["sines"]["s4d"]
    assert entry["methods"]["good"]["max_ratio_val"] == {"mean": 0.8, "std": 0.0}
    assert entry["methods"]["aire"]["max_ratio_test"]["mean"] == 0.5
    assert entry["methods"]["broken"]["failed"] and run.best_method(entry) == "good"
    report = {"depth": 2, "width": 4, "states": 4, "epochs": {}, "seeds": [0, 1], "seconds": 1.0, "jobs": 1}
    report.update(ratios=[0.0, 0.5, 0.8], lengths={"sines": 64}, tasks=summary)
    text = run.tables(report)
    assert "| sines / s4d | 80.0 / 78.0 % | `good` | 80 ± 0 % / 80 ± 0 % |" in text
    assert "1.6×" in text and "`broken` is not applicable here: ArgumentError: no" in text


def test_a_failing_method_is_recorded_and_skipped_after_fail_fast_ratios() -> None:
    splits = run.sines_splits(8, 8, 8, length=10)
    params = tiny("s5")
    base = {"ratio": 0.0, "realized_ratio": 0.0, "val": 50.0, "test": 50.0}
    rows = run.evaluate_method(
        "s5", params, base, run.Method("x", "no-such-criterion"), [0.0, 0.3, 0.5, 0.7, 0.9], splits, 3, {}
    )
    assert rows[0] is base and all("no-such-criterion" in r["error"] for r in rows[1:])
    assert [bool(r.get("skipped")) for r in rows[1:]] == [False] * run.FAIL_FAST + [True] * (4 - run.FAIL_FAST)


def test_summary_when_aire_keeps_nothing() -> None:
    base = {"ratio": 0.0, "realized_ratio": 0.0, "val": 80.0, "test": 80.0}
    bad = [base, {"ratio": 0.5, "realized_ratio": 0.5, "val": 10.0, "test": 10.0}]
    good = [base, {"ratio": 0.5, "realized_ratio": 0.5, "val": 80.0, "test": 80.0}]
    units = [{"task": "t", "kind": "k", "seed": 0, "base": base, "rows": {"aire": bad, "good": good, "last": bad}}]
    report = {"depth": 2, "width": 4, "states": 4, "epochs": {}, "seeds": [0], "seconds": 1.0, "jobs": 1}
    report.update(ratios=[0.0, 0.5], lengths={"t": 8}, tasks=run.summarise(units), complete=False)
    text = run.tables(report)
    assert "∞ (AIRE 0 %)" in text and "PARTIAL" in text


def test_retry_errors_reruns_only_methods_whose_rows_hold_an_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(run, "CACHE", tmp_path)
    ratios = [0.0, 0.5]
    found = run.methods(run.TASKS["sines"].length)
    good = [{"ratio": 0.0, "val": 1.0, "test": 1.0}, {"ratio": 0.5, "val": 1.0, "test": 1.0}]
    done = {run._key(method, ratios): good for method in found}
    store = run._store("sines", "s5", 0, 1)
    store.parent.mkdir(parents=True)
    store.write_text(run.json.dumps(done))
    assert run.is_cached("sines", "s5", 0, 1, ratios) and run.is_cached("sines", "s5", 0, 1, ratios, retry=True)
    done[run._key(found[0], ratios)] = [good[0], {"ratio": 0.5, "error": "ShapeError: ..."}]
    store.write_text(run.json.dumps(done))
    assert run.is_cached("sines", "s5", 0, 1, ratios)
    assert not run.is_cached("sines", "s5", 0, 1, ratios, retry=True)
    assert run._failed(done[run._key(found[0], ratios)]) and not run._failed(good)

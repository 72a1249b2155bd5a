"""CONTRIBUTING.md's "Add a criterion or a reduction" example runs as written, and its error is AB13DD's."""

from __future__ import annotations

import re
from pathlib import Path

import control
import numpy as np
import pytest

from ssmtools.pruning import criteria, reductions

CONTRIBUTING = Path(__file__).resolve().parents[2] / "CONTRIBUTING.md"


def test_contributing_criterion_and_reduction_example(monkeypatch):
    section = CONTRIBUTING.read_text(encoding="utf-8").split("## Add a criterion or a reduction", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setattr(criteria._CRITERIA, "_classes", dict(criteria._CRITERIA._classes))  # registrations stay here
    monkeypatch.setattr(reductions._REDUCTIONS, "_classes", dict(reductions._REDUCTIONS._classes))
    namespace: dict = {}
    exec(compile(block, "CONTRIBUTING.md", "exec"), namespace)
    assert "input-gain" in criteria.available_criteria() and "drop-feedthrough" in reductions.available_reductions()
    plan, layer = namespace["plan"], namespace["layer"]
    assert plan.reduction == "drop-feedthrough" and plan.criterion == "input-gain" and plan.n_removed == 3
    keep = plan["a"].keep
    gains = np.linalg.norm(layer.B, axis=-1)
    assert set(np.flatnonzero(keep)) == set(np.argsort(gains)[3:])  # the largest input gains stay
    reduced = layer.replace(poles=layer.poles[keep], B=layer.B[keep], C=layer.C[:, keep], D=None)
    expected, _ = control.linfnorm(layer.to_control() - reduced.to_control(), tol=1e-12)
    assert plan["a"].hinf_error == pytest.approx(expected, rel=1e-7)

"""A toy family added with nothing but this file: load, detect, norms, prune and replace through the registry.

The adapter ``Toy`` below is, line for line, the module CONTRIBUTING.md shows as ``ssmtools/adapters/toy.py``
(there ``@register_adapter`` registers it on import; here a fixture registers it and unregisters it
afterwards, so that other tests see only the shipped families). Every number is checked against the
toy's recurrence written from its definition (``toy_forward``) or its closed-form norms, not against ssmtools.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ssmtools
from ssmtools.adapters import (
    Adapter,
    Capabilities,
    CapabilityError,
    Context,
    available_families,
    detect_family,
    register_adapter,
    unregister_adapter,
)
from ssmtools.adapters._base import check_real, check_shape, require
from ssmtools.errors import FormatError
from ssmtools.model import SSMLayer
from ssmtools.systems import DiagonalSSM

from .reference import simulate


class Toy(Adapter):
    """H independent channels of N real one-pole states: ``toy_a`` (poles), ``toy_b``, ``toy_c`` (H, N).

    x_k[h, n] = toy_a[h, n]·x_{k−1}[h, n] + toy_b[h, n]·u_k[h],   y_k[h] = Σ_n toy_c[h, n]·x_k[h, n].
    """

    family = "toy"
    detection_keys = (frozenset({"toy_a", "toy_b", "toy_c"}),)
    capabilities = Capabilities(can_prune=True, can_mask=True, can_replace=True)
    defaults: Mapping[str, Any] = {}

    def _keys(self, ctx: Context, prefix: str) -> dict[str, str]:
        return require(ctx, ctx.groups[prefix], ["toy_a", "toy_b", "toy_c"], "toy")

    def read_layer(self, ctx: Context, prefix: str, config: Mapping[str, Any]) -> SSMLayer:
        keys = self._keys(ctx, prefix)
        a, b, c = (ctx.array(keys[name]) for name in ("toy_a", "toy_b", "toy_c"))
        check_shape(ctx, keys["toy_a"], a, (None, None), "poles, (H, N)")
        for key, array in ((keys["toy_a"], a), (keys["toy_b"], b), (keys["toy_c"], c)):
            check_real(ctx, key, array)
            check_shape(ctx, key, array, a.shape, "one value per (channel, state)")
        system = DiagonalSSM(a, b[..., None], c[:, None, :], dt=True, output="real", state_includes_input=True)
        return SSMLayer(prefix, system, output_scale=1.0)  # system.C is toy_c itself

    def prune_layer(
        self, ctx: Context, layer: SSMLayer, keep: np.ndarray, mask: bool, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        keys = self._keys(ctx, layer.name)
        if mask:  # zero the pruned states' input and output gains, shapes unchanged
            return {keys[n]: ctx.new(keys[n], np.where(keep, ctx.array(keys[n]), 0)) for n in ("toy_b", "toy_c")}
        counts = keep.sum(axis=-1)
        if np.any(counts != counts[0]):
            raise ValueError(
                f"layer {layer.name!r}: toy arrays are (H, N); keep as many states in every channel or pass mask=True"
            )
        return {keys[n]: ctx.new(keys[n], ctx.array(keys[n])[keep].reshape(len(keep), -1)) for n in keys}

    def replace_layer(self, ctx: Context, layer: SSMLayer, new: SSMLayer, config: Mapping[str, Any]) -> dict[str, Any]:
        keys, sys = self._keys(ctx, layer.name), new.system
        if np.any(sys.poles.imag != 0) or np.any(sys.D != 0):
            raise ValueError(f"layer {layer.name!r}: the toy family stores real poles and no feedthrough")
        # real pole, real input: y = Re(c·x) with x driven by b·u, so only the gain Re(b·c) matters
        gain = (sys.B[..., 0] * sys.C[:, 0, :]).real
        return {
            keys["toy_a"]: ctx.new(keys["toy_a"], sys.poles.real),
            keys["toy_b"]: ctx.new(keys["toy_b"], np.ones_like(gain)),
            keys["toy_c"]: ctx.new(keys["toy_c"], gain),
        }


@pytest.fixture
def toy_family():
    register_adapter(Toy)
    yield
    unregister_adapter("toy")


H, N, L = 3, 4, 30


def toy_tree(seed: int) -> dict:
    """A state dict of two toy layers beside an unrelated leaf; a ∈ (0, 0.9), b, c > 0."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {"encoder.weight": rng.standard_normal((H, 2))}
    for i in range(2):
        state[f"layers.{i}.toy_a"] = rng.uniform(0.0, 0.9, (H, N))
        state[f"layers.{i}.toy_b"] = rng.uniform(0.5, 1.5, (H, N))
        state[f"layers.{i}.toy_c"] = rng.uniform(0.5, 1.5, (H, N))
    return state


def toy_forward(a: np.ndarray, b: np.ndarray, c: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The toy recurrence from its definition; ``u`` (L, H) -> y (L, H)."""
    x = np.zeros(a.shape)
    y = np.zeros(u.shape)
    for k in range(u.shape[0]):
        x = a * x + b * u[k][:, None]
        y[k] = (c * x).sum(axis=1)
    return y


def raw(params: Mapping, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.asarray(params[f"{name}.toy_{x}"]) for x in "abc")  # type: ignore[return-value]


def layer_outputs(layer: SSMLayer, u: np.ndarray) -> np.ndarray:
    return np.stack([simulate(layer.system[h], u[:, h : h + 1])[:, 0] for h in range(H)], axis=1)


def test_load_and_detect(toy_family):
    state = toy_tree(0)
    assert "toy" in available_families() and detect_family(state) == "toy"
    model = ssmtools.load(state)
    assert model.family == "toy" and isinstance(model.adapter, Toy) and list(model) == ["layers.0", "layers.1"]
    u = np.random.default_rng(1).standard_normal((L, H))
    for name, layer in model.items():
        assert layer.system.batch_shape == (H,) and layer.output_scale == 1.0
        np.testing.assert_allclose(layer_outputs(layer, u), toy_forward(*raw(state, name), u), atol=1e-12)
    with pytest.raises(FormatError, match="toy: toy_a\\+toy_b\\+toy_c"):  # the error lists the declared keys
        ssmtools.load({"dense": {"kernel": np.ones((2, 2))}})
    with pytest.raises(FormatError, match="no toy layer found .*toy_a\\+toy_b\\+toy_c"):
        ssmtools.load({"nu_log": np.zeros(2), "theta_log": np.zeros(2)}, family="toy")
    with pytest.raises(TypeError, match="unknown setting\\(s\\) \\['conj_sym'\\] for family 'toy'"):
        ssmtools.load(state, conj_sym=True)


def test_unregistered_after_the_fixture():
    assert "toy" not in available_families()
    with pytest.raises(FormatError, match="no layer of a known SSM family found"):
        ssmtools.load(toy_tree(0))


def test_norms_match_closed_forms(toy_family):
    state = toy_tree(2)
    model = ssmtools.load(state)
    a, b, c = raw(state, "layers.0")
    g = b * c
    # positive gains and poles in (0, 1): the peak is at ω = 0, |G_h(1)| = Σ_n g/(1 − a)
    hinf = (g / (1 - a)).sum(axis=1)
    # ‖h‖₂² = Σ_k (Σ_n g_n a_n^k)² = Σ_{n,m} g_n g_m / (1 − a_n a_m)
    h2 = np.sqrt(np.einsum("hn,hm,hnm->h", g, g, 1 / (1 - a[:, :, None] * a[:, None, :])))
    layer = model["layers.0"].system
    np.testing.assert_allclose(ssmtools.hinf_norm(layer), hinf, rtol=1e-8)
    np.testing.assert_allclose(ssmtools.h2_norm(layer), h2, rtol=1e-12)
    np.testing.assert_allclose(ssmtools.state_hinf_norms(layer), g / (1 - a), rtol=1e-12)


def test_prune_physically_and_by_mask(toy_family):
    state = toy_tree(3)
    model = ssmtools.load(state)
    keep = np.zeros((H, N), dtype=bool)
    keep[:, [0, 2]] = True
    keep[1] = [False, True, True, False]  # other states in another channel, same count
    pruned = model.apply({"layers.1": keep})
    masked = model.apply({"layers.1": keep}, mask=True)
    assert pruned.params["layers.1.toy_a"].shape == (H, 2) and masked.params["layers.1.toy_a"].shape == (H, N)
    assert pruned.params["layers.0.toy_a"] is state["layers.0.toy_a"] and pruned.family == "toy"
    u = np.random.default_rng(4).standard_normal((L, H))
    a, b, c = raw(state, "layers.1")
    expected = toy_forward(a, b, np.where(keep, c, 0), u)
    np.testing.assert_allclose(toy_forward(*raw(pruned.params, "layers.1"), u), expected, atol=1e-12)
    np.testing.assert_allclose(toy_forward(*raw(masked.params, "layers.1"), u), expected, atol=1e-12)
    np.testing.assert_allclose(layer_outputs(pruned["layers.1"], u), expected, atol=1e-12)
    plan = ssmtools.prune_plan(model, 0.5, "last-exact")  # criteria and the plan work on the new family as is
    assert ssmtools.load(state).apply(plan, mask=True).n_states == model.n_states


def test_replace_round_trip(toy_family):
    state = toy_tree(5)
    model = ssmtools.load(state)
    rng = np.random.default_rng(6)
    n = 2
    given = DiagonalSSM(
        rng.uniform(-0.9, 0.9, (H, n)) + 0j,
        rng.standard_normal((H, n, 1)) + 1j * rng.standard_normal((H, n, 1)),
        rng.standard_normal((H, 1, n)) + 1j * rng.standard_normal((H, 1, n)),
        dt=True,
        output="real",
        state_includes_input=True,
    )
    replaced = model.replace_systems({"layers.0": given})
    assert replaced.params["layers.0.toy_a"].shape == (H, n) and replaced.family == "toy"
    u = rng.standard_normal((L, H))
    expected = np.stack([simulate(given[h], u[:, h : h + 1])[:, 0] for h in range(H)], axis=1)
    np.testing.assert_allclose(toy_forward(*raw(replaced.params, "layers.0"), u), expected, atol=1e-12)
    with pytest.raises(ValueError, match="stores real poles"):
        model.replace_systems({"layers.0": given.replace(poles=given.poles * np.exp(0.1j))})


def test_capabilities_are_checked_before_writing(toy_family):
    class ReadOnlyToy(Toy):
        family = "toy-read-only"
        capabilities = Capabilities(can_prune=False, can_mask=True, can_replace=False)

    model = ssmtools.load(toy_tree(7), family=ReadOnlyToy())  # an adapter instance, not registered
    assert model.family == "toy-read-only" and not model.adapter.capabilities.can_replace
    keep = {"layers.0": np.tile([True, False, True, True], (H, 1))}
    with pytest.raises(CapabilityError, match="cannot remove states \\(try mask=True\\)"):
        model.apply(keep)
    assert model.apply(keep, mask=True).params["layers.0.toy_c"][0, 1] == 0
    with pytest.raises(CapabilityError, match="cannot write replacement layers"):
        model.replace_systems({"layers.0": model["layers.0"].system})


def test_registration_is_validated(toy_family):
    class NoReplace(Adapter):
        family = "broken"
        detection_keys = (frozenset({"x"}),)

        def read_layer(self, ctx, prefix, config):  # pragma: no cover - never read
            raise AssertionError

    with pytest.raises(TypeError, match="promise prune_layer"):
        register_adapter(NoReplace)
    with pytest.raises(ValueError, match="family 'toy' is already registered by Toy"):
        register_adapter(type("Other", (Toy,), {}))
    with pytest.raises(ValueError, match="other than \\['auto', 'custom'\\]"):
        register_adapter(type("Auto", (Toy,), {"family": "auto"}))
    with pytest.raises(TypeError, match="mappingproxy"):
        Toy.defaults["gain"] = 2.0  # type: ignore[index]


CONTRIBUTING = Path(__file__).parents[2] / "CONTRIBUTING.md"


def contributing_blocks() -> dict[str, str]:
    """The python blocks of CONTRIBUTING.md's worked example, keyed by the path in their first line."""
    text = CONTRIBUTING.read_text(encoding="utf-8")
    return {path: code for path, code in re.findall(r"```python\n# (\S+)\n(.*?)```", text, re.S)}


def test_contributing_shows_this_adapter():
    blocks = contributing_blocks()
    assert set(blocks) == {"ssmtools/adapters/toy.py", "tests/adapters/test_toy.py"}
    assert inspect.getsource(Toy) in blocks["ssmtools/adapters/toy.py"]


def test_contributing_example_runs_as_written(monkeypatch):
    """Run the two files of CONTRIBUTING.md as if they were in the package and the test suite."""
    blocks = contributing_blocks()
    module = types.ModuleType("ssmtools.adapters.toy")
    module.__package__ = "ssmtools.adapters"
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(blocks["ssmtools/adapters/toy.py"], "ssmtools/adapters/toy.py", "exec"), module.__dict__)
    try:
        assert available_families().count("toy") == 1 and ssmtools.adapters.get_adapter("toy").family == "toy"
        tests = types.ModuleType("tests.adapters.test_toy")
        tests.__package__ = "tests.adapters"
        exec(compile(blocks["tests/adapters/test_toy.py"], "tests/adapters/test_toy.py", "exec"), tests.__dict__)
        ran = [name for name, test in sorted(vars(tests).items()) if name.startswith("test_") and test() is None]
        assert ran == ["test_load_detect_and_norms", "test_prune_and_replace"]
    finally:
        unregister_adapter("toy")

"""The write-back check of float32 checkpoints: its rounding bound against randomly rounded parameters, and a
layer at |λ̄| within 1e-4 of 1."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

import ssmtools
from ssmtools.adapters._checks import _check_same_response, rounding_bound
from ssmtools.errors import ArgumentError
from tests.test_pruning_benchmark import run

UNIT = 2.0**-24  # float32 unit roundoff


def _checkpoint(kind: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    model = run.Classifier(kind, [6] * run.DEPTH, 3, 8)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _near_circle(system: ssmtools.DiagonalSSM, margin: float) -> ssmtools.DiagonalSSM:
    poles = system.poles.copy()
    poles[..., 0] = (1 - margin) * np.exp(2.6j)
    poles[..., 1] = (1 - margin / 3) * np.exp(0.2j)
    return system.replace(poles=poles)


@pytest.mark.parametrize("kind", ["s5", "lru", "s4d"])
def test_rounding_bound_covers_parameters_rounded_at_random(kind: str) -> None:
    """Float64 copies of the stored leaves, each entry moved by a random relative amount up to u (brute force)."""
    params = {k: v.double() if v.is_floating_point() else v.to(torch.complex128) for k, v in _checkpoint(kind).items()}
    model = ssmtools.load(params)
    rng = np.random.default_rng(0)
    omega = np.linspace(0, np.pi, 4097)
    magnitude = max(1.0, max(float(v.abs().max()) for v in params.values()))
    for trial in range(20):
        moved = {}
        for key, value in params.items():
            array = value.numpy()
            if np.iscomplexobj(array):
                factor = 1 + UNIT * (rng.uniform(-1, 1, array.shape) + 1j * rng.uniform(-1, 1, array.shape)) / 2
            else:
                factor = 1 + UNIT * rng.uniform(-1, 1, array.shape)
            moved[key] = torch.as_tensor(array * factor)
        other = ssmtools.load(moved)
        for name, layer in model.layers.items():
            a, b = other[name].system, layer.system
            gap = np.max(np.abs(ssmtools.freqresp(a, omega) - ssmtools.freqresp(b, omega)), axis=(-2, -1))
            bound = rounding_bound(b, omega, UNIT, magnitude)
            assert np.all(gap <= bound), (kind, trial, name, float(np.max(gap / bound)))


@pytest.mark.parametrize("margin", [1e-4, 3e-5, 1e-5])
def test_a_float32_s5_layer_near_the_circle_writes_back(margin: float) -> None:
    params = _checkpoint("s5")
    model = ssmtools.load(params)
    name = "seqs.0.seq"
    wanted = _near_circle(model[name].system, margin)
    written = model.replace_systems({name: wanted})  # raised before the rounding bound at margin ≤ 1e-5 here
    got = ssmtools.load({k: torch.as_tensor(np.asarray(v)) for k, v in written.params.items()})[name].system
    assert got.poles.dtype == np.complex128 and np.asarray(written.params["seqs.0.seq.Lambda"]).dtype == np.complex64
    np.testing.assert_allclose(got.poles, wanted.poles, rtol=1e-6)
    # the relative response error is what a fixed 5e3·eps tolerance refuses, and within the derived bound
    omega = np.unique(np.concatenate([np.linspace(0, np.pi, 257), np.abs(np.angle(wanted.poles))]))
    ga, gb = ssmtools.freqresp(got, omega), ssmtools.freqresp(wanted, omega)
    gap = np.max(np.abs(ga - gb), axis=(-2, -1))
    assert np.all(gap <= 4 * rounding_bound(wanted, omega, UNIT, 64.0))


def test_a_float32_layer_within_1e_4_of_the_circle_exceeded_the_fixed_tolerance() -> None:
    """The case the old fixed tolerance refused: relative error above 5e3·eps, accepted now."""
    params = _checkpoint("s5")
    model = ssmtools.load(params)
    name = "seqs.0.seq"
    wanted = _near_circle(model[name].system, 1e-5)
    written = model.replace_systems({name: wanted})
    got = ssmtools.load({k: torch.as_tensor(np.asarray(v)) for k, v in written.params.items()})[name].system
    omega = np.abs(np.angle(wanted.poles))
    gb = ssmtools.freqresp(wanted, np.linspace(0, np.pi, 257))
    relative = np.max(np.abs(ssmtools.freqresp(got, omega) - ssmtools.freqresp(wanted, omega))) / np.max(np.abs(gb))
    assert relative > 5e3 * np.finfo(np.float32).eps


def test_a_wrong_write_is_still_refused() -> None:
    """A pole turned by 3e-4 rad (three margins) is far beyond rounding: the check raises."""
    params = _checkpoint("s5")
    model = ssmtools.load(params)
    layer = model["seqs.0.seq"]
    wanted = dataclasses.replace(layer, system=_near_circle(layer.system, 1e-4))
    poles = wanted.system.poles.copy()
    poles[0] *= np.exp(3e-4j)
    wrong = dataclasses.replace(wanted, system=wanted.system.replace(poles=poles))
    updates = {"seqs.0.seq.Lambda": params["seqs.0.seq.Lambda"]}
    _check_same_response("seqs.0.seq", wanted, wanted, None, updates)
    with pytest.raises(ArgumentError, match="rounding to the stored precision"):
        _check_same_response("seqs.0.seq", wrong, wanted, None, updates)


def test_float64_checkpoints_keep_the_tight_tolerance() -> None:
    params = {k: v.double() if v.is_floating_point() else v.to(torch.complex128) for k, v in _checkpoint("s5").items()}
    layer = ssmtools.load(params)["seqs.0.seq"]
    poles = layer.system.poles.copy()
    poles[0] *= 1 + 1e-7
    wrong = dataclasses.replace(layer, system=layer.system.replace(poles=poles))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ArgumentError):
            _check_same_response("seqs.0.seq", wrong, layer, None, {"seqs.0.seq.Lambda": params["seqs.0.seq.Lambda"]})

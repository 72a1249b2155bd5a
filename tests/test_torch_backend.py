"""backend="torch" (CPU here; the same code runs on a GPU via device=) against independent
references: python-control's frequency response, SLICOT AB13BD/AB13DD, closed forms in the test."""

from __future__ import annotations

import sys as _sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ssmtools import freqresp, h2_norm, hinf_norm, state_h2_norms, state_hinf_norms, state_hinf_result  # noqa: E402
from ssmtools._backends.slycot import h2_norm as ab13bd, linf_norm  # noqa: E402
from ssmtools.systems import real_standard_form  # noqa: E402

from .conftest import random_system  # noqa: E402

CASES = [
    dict(dt=True, output="real", state_includes_input=True),
    dict(dt=True, output="complex", state_includes_input=False),
    dict(dt=0, output="real", state_includes_input=False),
    dict(dt=0, output="complex", state_includes_input=False),
]
IDS = ["-".join(f"{k}={v}" for k, v in case.items()) for case in CASES]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_freqresp_matches_python_control(case, device):
    sys = random_system(1, n=5, m=2, p=3, **case)
    omega = np.linspace(0.0, 3.0, 7)
    response = freqresp(sys, omega, backend="torch", device=device)
    assert isinstance(response, torch.Tensor) and response.dtype == torch.complex128
    assert response.device.type == device
    plant = sys.to_control()
    z = np.exp(1j * omega) if sys.is_discrete else 1j * omega
    expected = np.stack([np.atleast_2d(plant(zk)) for zk in z])
    if sys.output == "complex":  # the realified plant: G = top-left + j·bottom-left blocks
        p, m = sys.n_outputs, sys.n_inputs
        expected = expected[:, :p, :m] + 1j * expected[:, p:, :m]
    np.testing.assert_allclose(response.cpu().numpy(), expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_h2_norm_matches_ab13bd(case):
    sys = random_system(2, n=6, m=2, p=2, with_d=case["dt"] != 0, batch=(2,), **case)
    values = h2_norm(sys, backend="torch")
    assert isinstance(values, torch.Tensor) and values.shape == (2,) and values.dtype == torch.float64
    A, B, C, D = real_standard_form(sys)
    scale = 1.0 if sys.output == "real" else np.sqrt(2.0)  # realified complex signals double the energy
    for i in range(2):
        expected = ab13bd(A[i], B[i], C[i], D[i], discrete=sys.is_discrete) / scale
        assert float(values[i]) == pytest.approx(expected, rel=1e-10)


def test_state_norms_complex_output_closed_form():
    """Complex output: s/(1 − |λ|) and s/sqrt(1 − |λ|²), written out here from math.md §3.1."""
    sys = random_system(3, n=8, m=3, p=2, output="complex", batch=(4,))
    s = np.linalg.norm(sys.C, axis=-2) * np.linalg.norm(sys.B, axis=-1)
    r = np.abs(sys.poles)
    result = state_hinf_result(sys, backend="torch")
    values, peaks = result.value, result.peak
    np.testing.assert_allclose(values.numpy(), s / (1 - r), rtol=1e-13)
    np.testing.assert_allclose(peaks.numpy(), np.angle(sys.poles), rtol=1e-13)
    np.testing.assert_allclose(state_h2_norms(sys, backend="torch").numpy(), s / np.sqrt(1 - r**2), rtol=1e-13)


@pytest.mark.parametrize("dt", [True, 0])
def test_state_norms_real_output_match_slycot_per_pair(dt):
    """Real output: each stored state is ½ of a conjugate pair; reference AB13DD/AB13BD on that pair."""
    sys = random_system(4, n=4, m=2, p=3, output="real", dt=dt, with_d=False)
    hinf = state_hinf_norms(sys, backend="torch").numpy()
    h2 = state_h2_norms(sys, backend="torch").numpy()
    for i in range(sys.n_states):
        one = sys.replace(poles=sys.poles[i : i + 1], B=sys.B[i : i + 1], C=sys.C[:, i : i + 1], D=None)
        A, B, C, D = real_standard_form(one)
        assert hinf[i] == pytest.approx(linf_norm(A, B, C, D, discrete=one.is_discrete, tol=1e-12)[0], rel=1e-9)
        assert h2[i] == pytest.approx(ab13bd(A, B, C, D, discrete=one.is_discrete), rel=1e-10)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hinf_norm_diagonal_on_torch_matches_ab13dd(case):
    sys = random_system(5, n=6, m=2, p=2, **case)
    A, B, C, D = real_standard_form(sys)
    expected = linf_norm(A, B, C, D, discrete=sys.is_discrete, tol=1e-12)[0]
    assert hinf_norm(sys, method="diagonal", backend="torch", device="cpu") == pytest.approx(expected, rel=1e-8)


def test_float32_only_on_request_with_documented_accuracy():
    sys = random_system(6, n=16, m=4, p=4, output="real", state_includes_input=True, batch=(3,))
    single = h2_norm(sys, backend="torch", dtype="float32")
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), h2_norm(sys, method="slycot"), rtol=1e-4)
    response = freqresp(sys, np.linspace(0, 3, 5), backend="torch", dtype="float32")
    assert response.dtype == torch.complex64
    with pytest.raises(ValueError, match="dtype='float16' is not valid"):
        state_h2_norms(sys, backend="torch", dtype="float16")


def test_bad_backend_and_device_raise():
    sys = random_system(7)
    with pytest.raises(ValueError, match="backend='jax' is not valid"):
        h2_norm(sys, backend="jax")
    with pytest.raises(ValueError, match="needs backend='torch'"):
        state_hinf_norms(sys, device="cpu")
    with pytest.raises(ValueError, match="needs backend='torch'"):
        freqresp(sys, [0.1], device="cpu")
    with pytest.raises(ValueError, match="AB13BD runs in SLICOT"):
        h2_norm(sys, method="slycot", backend="torch")


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(_sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match=r'pip install "ssmtools\[torch\]"'):
        h2_norm(random_system(8), backend="torch")


class _TorchCalls(torch.overrides.TorchFunctionMode):
    """Records the name of every torch function called inside the block (torch's own dispatch hook)."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("output", ["real", "complex"])
def test_backend_torch_really_computes_with_torch(output):
    """The seam's rule: backend="torch" runs the formulas in torch and returns tensors; proven by torch's own
    function-dispatch hook, which sees the arithmetic of each function (and, for the diagonal H∞, the
    batched eigvalsh of its exact-evaluation stage)."""
    sys = random_system(8, n=5, m=2, p=3, output=output, dt=True, state_includes_input=True, batch=(2,))
    calls = {
        "hinf_norm": lambda: hinf_norm(sys, backend="torch"),
        "h2_norm": lambda: h2_norm(sys, backend="torch"),
        "state_hinf_norms": lambda: state_hinf_norms(sys, backend="torch"),
        "state_h2_norms": lambda: state_h2_norms(sys, backend="torch"),
        "freqresp": lambda: freqresp(sys, np.linspace(0, 3, 4), backend="torch"),
    }
    for name, call in calls.items():
        with _TorchCalls() as mode:
            result = call()
        assert isinstance(result, torch.Tensor), name
        arithmetic = [n for n in mode.names if n not in ("as_tensor", "to", "__get__")]
        assert len(arithmetic) >= 5, (name, mode.names[:20])
        if name == "hinf_norm":
            assert "linalg_eigvalsh" in mode.names
    reference = {
        "hinf_norm": hinf_norm(sys),
        "h2_norm": h2_norm(sys),
        "state_hinf_norms": state_hinf_norms(sys),
        "state_h2_norms": state_h2_norms(sys),
    }
    for name, expected in reference.items():
        np.testing.assert_allclose(calls[name]().numpy(), expected, rtol=1e-9, err_msg=name)


def test_backend_numpy_does_not_touch_torch():
    sys = random_system(9, n=4, m=2, p=2, output="real", dt=True)
    with _TorchCalls() as mode:
        values = (hinf_norm(sys), h2_norm(sys), state_hinf_norms(sys), state_h2_norms(sys))
    assert mode.names == [] and all(isinstance(v, (np.ndarray, np.generic)) for v in values)

"""DiagonalSSM: validation, properties, batching, realizations and the frequency response."""

from __future__ import annotations

import control
import numpy as np
import pytest

from ssmtools import DiagonalSSM, freqresp
from ssmtools.errors import NonFiniteError, NotDiagonalizableError, ShapeError
from ssmtools.systems import real_standard_form

from .conftest import impulse_response, random_system


def test_properties_and_shapes():
    sys = random_system(0, n=5, m=2, p=3, batch=(4, 2))
    assert (sys.n_states, sys.n_inputs, sys.n_outputs, sys.batch_shape) == (5, 2, 3, (4, 2))
    assert sys.is_discrete and sys.is_stable.shape == (4, 2) and bool(np.all(sys.is_stable))
    assert sys[1].batch_shape == (2,) and sys[1, 0].batch_shape == ()
    np.testing.assert_array_equal(sys[1, 0].poles, sys.poles[1, 0])
    assert len(sys) == 4 and [s.batch_shape for s in sys] == [(2,)] * 4


def test_batch_dimensions_broadcast():
    poles = np.full((3, 1, 4), 0.5)
    B = np.ones((2, 4, 1))
    C = np.ones((1, 4))
    sys = DiagonalSSM(poles, B, C, dt=True)
    assert sys.batch_shape == (3, 2)
    assert sys.D.shape == (3, 2, 1, 1) and not sys.has_feedthrough


def test_arrays_are_read_only_copies():
    poles = np.array([0.5, 0.2])
    sys = DiagonalSSM(poles, np.ones((2, 1)), np.ones((1, 2)), dt=True)
    poles[0] = 0.9
    assert sys.poles[0] == 0.5
    with pytest.raises(ValueError):
        sys.poles[0] = 0.1


def test_stability_flags():
    sys = DiagonalSSM([[0.5, 0.99], [0.5, 1.0]], np.ones((2, 1)), np.ones((1, 2)), dt=True)
    np.testing.assert_array_equal(sys.is_stable, [True, False])
    ct = DiagonalSSM([[-1.0, 2j], [-1.0, -0.1 + 1j]], np.ones((2, 1)), np.ones((1, 2)))
    np.testing.assert_array_equal(ct.is_stable, [False, True])


@pytest.mark.parametrize("output", ["real", "complex"])
@pytest.mark.parametrize("state_includes_input", [False, True])
def test_freqresp_matches_python_control_evaluation(output, state_includes_input):
    """Our vectorised formula vs python-control evaluating the real realization (independent)."""
    sys = random_system(1, n=5, m=2, p=3, output=output, state_includes_input=state_includes_input)
    omega = np.linspace(-np.pi, np.pi, 13)
    ours = freqresp(sys, omega)
    plant = sys.to_control()
    for k, w in enumerate(omega):
        theirs = np.atleast_2d(plant(np.exp(1j * w)))
        if output == "complex":  # realified: [[Re G, -Im G], [Im G, Re G]]
            p, m = sys.n_outputs, sys.n_inputs
            theirs = theirs[:p, :m] + 1j * theirs[p:, :m]
        np.testing.assert_allclose(ours[k], theirs, rtol=1e-10, atol=1e-10)


def test_freqresp_continuous_time():
    sys = random_system(2, n=4, dt=0, output="real")
    omega = np.array([0.0, 0.3, 2.0, 10.0])
    plant = sys.to_control()
    for k, w in enumerate(omega):
        np.testing.assert_allclose(freqresp(sys, omega)[k], np.atleast_2d(plant(1j * w)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("output", ["real", "complex"])
def test_standard_form_reproduces_the_scan_impulse_response(output):
    """Markov parameters of (A, B, CA, CB + D) equal the simulated scan x_k = Λx_{k−1} + Bu_k (math.md §1.1)."""
    sys = random_system(3, n=4, m=2, p=2, output=output, state_includes_input=True)
    A, B, C, D = real_standard_form(sys)
    markov = [D] + [C @ np.linalg.matrix_power(A, k - 1) @ B for k in range(1, 8)]
    reference = impulse_response(sys, 8)
    if output == "complex":
        p, m = sys.n_outputs, sys.n_inputs
        markov = [h[:p, :m] + 1j * h[p:, :m] for h in markov]
    np.testing.assert_allclose(np.array(markov), reference, rtol=1e-12, atol=1e-12)


def test_to_control_requires_unbatched_system():
    sys = random_system(4, batch=(2,))
    with pytest.raises(ValueError, match=r"needs an unbatched system, got batch_shape \(2,\)"):
        sys.to_control()


@pytest.mark.parametrize("dt", [0, True])
def test_from_control_round_trip(dt):
    rng = np.random.default_rng(5)
    A = rng.standard_normal((6, 6))
    A = A / (1.2 * np.max(np.abs(np.linalg.eigvals(A)))) if dt else A - 4 * np.eye(6)
    plant = control.ss(A, rng.standard_normal((6, 2)), rng.standard_normal((3, 6)), rng.standard_normal((3, 2)), dt)
    sys = DiagonalSSM.from_control(plant)
    assert sys.output == "real" and sys.n_states <= 6
    np.testing.assert_allclose(
        np.sort_complex(np.concatenate([sys.poles, np.conj(sys.poles[np.abs(sys.poles.imag) > 0])])),
        np.sort_complex(np.linalg.eigvals(A)),
        atol=1e-10,
    )
    omega = np.array([0.1, 0.7, 2.0])
    for k, w in enumerate(omega):
        z = np.exp(1j * w) if dt else 1j * w
        np.testing.assert_allclose(freqresp(sys, omega)[k], np.atleast_2d(plant(z)), rtol=1e-9, atol=1e-10)


def test_from_control_rejects_jordan_block():
    plant = control.ss([[0.5, 1.0], [0.0, 0.5]], [[0.0], [1.0]], [[1.0, 0.0]], 0, True)
    with pytest.raises(NotDiagonalizableError, match="not \\(numerically\\) diagonalizable"):
        DiagonalSSM.from_control(plant)


# ----------------------------------------------------------------------------- bad input
def test_nan_is_rejected_with_array_name():
    with pytest.raises(NonFiniteError, match="B contains 1 NaN/Inf"):
        DiagonalSSM([0.5], [[np.nan]], [[1.0]], dt=True)
    with pytest.raises(NonFiniteError, match="poles contains"):
        DiagonalSSM([np.inf], [[1.0]], [[1.0]], dt=True)


def test_shape_errors_name_array_and_shapes():
    with pytest.raises(ShapeError, match=r"B has shape \(3, 1\) but poles have shape \(2,\)"):
        DiagonalSSM([0.1, 0.2], np.ones((3, 1)), np.ones((1, 2)), dt=True)
    with pytest.raises(ShapeError, match=r"C has shape \(1, 3\)"):
        DiagonalSSM([0.1, 0.2], np.ones((2, 1)), np.ones((1, 3)), dt=True)
    with pytest.raises(ShapeError, match=r"D has shape \(2, 2\).*expected D of shape \(\.\.\., 1, 1\)"):
        DiagonalSSM([0.1, 0.2], np.ones((2, 1)), np.ones((1, 2)), np.eye(2), dt=True)
    with pytest.raises(ShapeError, match="at least 2 dimension"):
        DiagonalSSM([0.1], [1.0], [[1.0]], dt=True)


def test_batch_mismatch_is_a_shape_error():
    with pytest.raises(ShapeError, match="batch dimensions do not broadcast"):
        DiagonalSSM(np.full((3, 2), 0.5), np.ones((4, 2, 1)), np.ones((1, 2)), dt=True)


@pytest.mark.parametrize("dt", [-1.0, None, False, float("nan")])
def test_invalid_dt(dt):
    with pytest.raises(ValueError, match="dt="):
        DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=dt)


def test_invalid_output_and_convention():
    with pytest.raises(ValueError, match="output='imag' is not valid"):
        DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True, output="imag")
    with pytest.raises(ValueError, match="discrete-time scan convention"):
        DiagonalSSM([-0.5], [[1.0]], [[1.0]], dt=0, state_includes_input=True)
    with pytest.raises(TypeError, match="D must be real"):
        DiagonalSSM([0.5], [[1.0]], [[1.0]], [[1j]], dt=True, output="real")
    with pytest.raises(TypeError, match="numeric array"):
        DiagonalSSM(["a"], [[1.0]], [[1.0]], dt=True)


def test_freqresp_rejects_bad_frequencies():
    sys = random_system(6)
    with pytest.raises(ShapeError, match="omega must be a 1-D"):
        freqresp(sys, np.ones((2, 2)))
    with pytest.raises(NonFiniteError, match="omega contains NaN"):
        freqresp(sys, [np.nan])


def test_indexing_errors():
    sys = random_system(7, batch=(2,))
    with pytest.raises(IndexError, match="too many indices"):
        sys[0, 1]
    with pytest.raises(TypeError, match="unbatched"):
        len(sys[0])


def test_truthy_strings_and_string_sampling_times_are_refused():
    from ssmtools import ArgumentTypeError

    with pytest.raises(ArgumentTypeError, match="dt must be"):
        DiagonalSSM([0.5], [[1.0]], [[1.0]], dt="0.1")
    with pytest.raises(ArgumentTypeError, match="state_includes_input must be True or False"):
        DiagonalSSM([0.5], [[1.0]], [[1.0]], dt=True, state_includes_input="no")


@pytest.mark.parametrize("dt", [0, 0.1])
def test_from_control_accepts_a_transfer_function(dt):
    """A TransferFunction is realised with control.ss; the diagonal system has the same frequency response."""
    tf = control.tf([[[1.0, 0.5]], [[2.0, -0.3, 0.1]]], [[[1.0, -0.9, 0.2]], [[1.0, 0.1, 0.3, 0.05]]], dt)
    if not dt:
        tf = control.tf([[[1.0, 0.5]], [[2.0, -0.3, 0.1]]], [[[1.0, 3.0, 2.0]], [[1.0, 2.0, 3.0, 1.0]]])
    sys = DiagonalSSM.from_control(tf)
    assert sys.n_outputs == 2 and sys.n_inputs == 1 and sys.dt == dt
    omega = np.array([0.05, 0.4, 1.3])
    for k, w in enumerate(omega):
        z = np.exp(1j * w) if dt else 1j * w
        np.testing.assert_allclose(freqresp(sys, omega)[k], np.reshape(tf(z), (2, 1)), rtol=1e-9, atol=1e-11)


def test_from_control_rejects_other_objects_with_a_hint():
    with pytest.raises(TypeError, match=r"control.StateSpace or control.TransferFunction, got ndarray.*control.ss"):
        DiagonalSSM.from_control(np.eye(2))

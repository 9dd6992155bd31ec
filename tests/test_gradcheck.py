"""gradcheck itself: it passes correct VJPs and catches wrong ones, in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from tape.tensor import plain
from tests.strategies import FLOAT_DTYPES


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_passes_a_correct_vjp(dtype):
    rng = np.random.default_rng(0)
    assert tape.gradcheck(
        lambda x, y: np.sin(x) * y, rng.random((3, 2)).astype(dtype), rng.random(2).astype(dtype)
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_catches_a_wrong_vjp(dtype):
    wrong = tape.Op(np.sin, lambda g, out, x: g * np.cos(x) * 1.1, name="wrong_sin")
    with pytest.raises(tape.GradcheckError, match=r"input 0 .*at index"):
        tape.gradcheck(wrong, np.linspace(0.1, 1.0, 5).astype(dtype))


def test_catches_a_wrong_vjp_on_large_inputs_by_the_inner_product():
    wrong = tape.Op(np.exp, lambda g, out, x: g * out * 0.9, name="wrong_exp")
    with pytest.raises(tape.GradcheckError, match="<u, J v>"):
        tape.gradcheck(wrong, np.linspace(0, 1, 1000), max_elements=10)


def test_catches_a_wrong_jvp_rule_beside_a_right_vjp():
    wrong = tape.Op(np.exp, lambda g, out, x: g * out, name="exp_with_a_wrong_jvp")
    wrong.defjvp(lambda tangents, out, x: tangents[0] * out * 0.9)
    with pytest.raises(tape.GradcheckError, match="forward mode"):
        tape.gradcheck(wrong, np.linspace(0, 1, 5))


def test_non_differentiable_inputs_pass_through():
    rng = np.random.default_rng(1)
    index = np.array([0, 2, 2])
    assert tape.gradcheck(lambda x, i: x[i] * 2, rng.random(4), index)


def test_several_outputs():
    rng = np.random.default_rng(2)
    assert tape.gradcheck(lambda x: (np.sin(x), np.cos(x).sum()), rng.random(3))


def test_result_without_history_is_reported():
    with pytest.raises(tape.GradcheckError, match="does not depend"):
        tape.gradcheck(lambda x: tape.tensor(np.ones(2)), np.ones(2))


def test_needs_a_floating_input():
    with pytest.raises(ValueError, match="no floating-point input"):
        tape.gradcheck(lambda i: i, np.arange(3))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_gradgradcheck_passes_vjps_written_in_numpy(dtype):
    rng = np.random.default_rng(3)
    x, w = rng.random((3, 2)).astype(dtype), rng.random((2, 4)).astype(dtype)
    assert tape.gradgradcheck(lambda x, w: np.tanh(x @ w) * np.exp(-x.sum()), x, w)


def test_gradgradcheck_catches_a_vjp_that_leaves_the_tape():
    # plain() takes the data: the VJP's value is right but it is not recorded, so the second derivative
    # is lost. gradcheck cannot see this; gradgradcheck must.
    detached = tape.Op(lambda x: x**3, lambda g, out, x: g * 3 * plain(x) ** 2, name="detached_cube")
    x = np.linspace(0.5, 1.5, 4)
    assert tape.gradcheck(detached, x)
    with pytest.raises(tape.GradcheckError):
        tape.gradgradcheck(detached, x)


def test_a_vjp_that_converts_its_input_with_np_asarray_is_refused_when_differentiated_again():
    converting = tape.Op(lambda x: x**3, lambda g, out, x: g * 3 * np.asarray(x) ** 2, name="converting")
    x = np.linspace(0.5, 1.5, 4)
    assert tape.gradcheck(converting, x)
    with pytest.raises(TypeError, match="converted to a plain numpy array while recording"):
        tape.gradgradcheck(converting, x)


def test_gradgradcheck_needs_one_tensor_result():
    with pytest.raises(TypeError, match="must return one tensor"):
        tape.gradgradcheck(lambda x: (x, x), np.ones(2))


# Complex values, with VJPs written by hand in PyTorch's convention: for a real loss L, the gradient of
# z = x + iy is dL/dx + i dL/dy, and a complex output's cotangent u stands for L = Re(sum(conj(u) * w)).
COMPLEX_DTYPES = [np.complex128, np.complex64]
SCALE = np.array([2 - 1j, 0.5 + 1j, -1 + 0.25j])
LIFT = 1 + 2j


def _own(forward, *vjps, name):
    return tape.Op(forward, *vjps, name=name, complex_rule="own")


def _points(dtype):
    return np.array([1 + 2j, 3 - 1j, -0.5 + 0.5j]).astype(dtype)


scale = _own(lambda z: z * SCALE, lambda g, out, z: g * np.conj(SCALE), name="scale")
conj = _own(np.conj, lambda g, out, z: np.conj(g), name="conj")
abs2 = _own(lambda z: z.real**2 + z.imag**2, lambda g, out, z: 2 * z * g, name="abs2")
lift = _own(lambda x: x * LIFT, lambda g, out, x: np.real(g * np.conj(LIFT)), name="lift")
times = _own(
    lambda x, z: x * z,
    lambda g, out, x, z: np.real(g * np.conj(z)),
    lambda g, out, x, z: g * x,
    name="times",
)

CORRECT = {"scale": scale, "conj": conj, "abs2": abs2}
WRONG = {  # each misses a conj, so only a complex cotangent or a perturbation along i can tell
    "scale": (_own(lambda z: z * SCALE, lambda g, out, z: g * SCALE, name="scale"), "real"),
    "conj": (_own(np.conj, lambda g, out, z: g, name="conj"), "imaginary"),
    "abs2": (
        _own(lambda z: z.real**2 + z.imag**2, lambda g, out, z: 2 * np.conj(z) * g, name="abs2"),
        "imaginary",
    ),
}


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("name", CORRECT)
def test_passes_a_correct_complex_vjp(name, dtype):
    assert tape.gradcheck(CORRECT[name], _points(dtype))


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("name", WRONG)
def test_catches_a_complex_vjp_missing_a_conj_and_names_the_axis(name, dtype):
    wrong, axis = WRONG[name]
    with pytest.raises(tape.GradcheckError, match=rf"input 0 .*perturbed along the {axis} axis: at index"):
        tape.gradcheck(wrong, _points(dtype))


def test_the_gradient_of_a_complex_input_is_dl_dx_plus_i_dl_dy():
    z = tape.tensor(np.array(1 + 2j), requires_grad=True)
    abs2(z).backward()
    assert z.grad == 2 + 4j
    wrong = WRONG["abs2"][0]
    with pytest.raises(
        tape.GradcheckError, match=r"at index \(\) the VJP gives .* \(the imaginary part of its gradient\)"
    ):
        tape.gradcheck(wrong, np.array(1 + 2j))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_real_input_to_a_complex_output_gets_a_real_gradient(dtype):
    x = np.array([0.5, -1.0, 2.0], dtype)
    assert tape.gradcheck(lift, x)
    wrong = _own(lambda x: x * LIFT, lambda g, out, x: np.real(g * LIFT), name="lift")
    with pytest.raises(tape.GradcheckError, match=r"input 0 \(shape \(3,\), float(64|32)\): at index"):
        tape.gradcheck(wrong, x)


def test_real_and_complex_inputs_together():
    x, z = np.array([0.5, -1.0, 2.0]), _points(np.complex128)
    assert tape.gradcheck(times, x, z)
    wrong_x = _own(
        lambda x, z: x * z, lambda g, out, x, z: np.real(g * z), lambda g, out, x, z: g * x, name="times"
    )
    with pytest.raises(tape.GradcheckError, match=r"input 0 \(shape \(3,\), float64\)"):
        tape.gradcheck(wrong_x, x, z)
    wrong_z = _own(
        lambda x, z: x * z,
        lambda g, out, x, z: np.real(g * np.conj(z)),
        lambda g, out, x, z: np.conj(g) * x,
        name="times",
    )
    with pytest.raises(tape.GradcheckError, match=r"input 1 \(shape \(3,\), complex128\), perturbed along"):
        tape.gradcheck(wrong_z, x, z)


def test_catches_a_complex_vjp_on_large_inputs_by_the_inner_product():
    z = np.exp(1j * np.linspace(0, 3, 500)) * np.linspace(1, 2, 500)
    assert tape.gradcheck(conj, z, max_elements=10)
    with pytest.raises(tape.GradcheckError, match="<u, J v>"):
        tape.gradcheck(WRONG["conj"][0], z, max_elements=10)


def test_complex64_takes_float32_tolerances_and_complex128_float64_ones():
    slightly_off = _own(lambda z: z * SCALE, lambda g, out, z: g * np.conj(SCALE) * 1.001, name="scale")
    assert tape.gradcheck(slightly_off, _points(np.complex64))
    with pytest.raises(tape.GradcheckError):
        tape.gradcheck(slightly_off, _points(np.complex128))


def test_complex_python_scalars_are_differentiated():
    assert tape.gradcheck(abs2, 1 + 2j)
    with pytest.raises(tape.GradcheckError, match="imaginary axis"):
        tape.gradcheck(WRONG["abs2"][0], 1 + 2j)


# Second order: the first-order VJPs are ops too, each with its own hand-written VJP, so that
# gradgradcheck differentiates (z, u) -> J(z)^T u with u complex. They keep their input's dtype.
def _times(z, c):
    return z * c.astype(z.dtype)


scale_by_conj = _own(
    lambda u: _times(u, np.conj(SCALE)), lambda g, out, u: _times(g, SCALE), name="scale_by_conj"
)
scale_twice = _own(  # its VJP misses the conj
    lambda u: _times(u, np.conj(SCALE)), lambda g, out, u: _times(g, np.conj(SCALE)), name="scale_twice"
)
scale_recorded = _own(lambda z: _times(z, SCALE), lambda g, out, z: scale_by_conj(g), name="scale")
conj_recorded = _own(np.conj, lambda g, out, z: conj_recorded(g), name="conj_recorded")
double_times = _own(  # (z, g) -> 2 z g with g real: the VJP of abs2
    lambda z, g: 2 * z * g,
    lambda h, out, z, g: 2 * h * g,
    lambda h, out, z, g: np.real(2 * h * np.conj(z)),
    name="double_times",
)
abs2_recorded = _own(lambda z: z.real**2 + z.imag**2, lambda g, out, z: double_times(z, g), name="abs2")
lower = _own(lambda g: np.real(g * np.conj(LIFT)), lambda h, out, g: h * LIFT, name="lower")
lift_recorded = _own(lambda x: x * LIFT, lambda g, out, x: lower(g), name="lift")


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
def test_gradgradcheck_passes_recorded_complex_vjps(dtype):
    z = _points(dtype)
    assert tape.gradgradcheck(scale_recorded, z)
    assert tape.gradgradcheck(conj_recorded, z)
    assert tape.gradgradcheck(abs2_recorded, z)


def test_gradgradcheck_of_a_real_input_to_a_complex_output():
    assert tape.gradgradcheck(lift_recorded, np.array([0.5, -1.0, 2.0]))


def test_gradgradcheck_differentiates_the_complex_cotangent():
    # The VJP's VJP misses a conj: first order cannot see it, second order (with respect to u) must.
    scale_wrongly = _own(lambda z: _times(z, SCALE), lambda g, out, z: scale_twice(g), name="scale")
    z = _points(np.complex128)
    assert tape.gradcheck(scale_wrongly, z)
    with pytest.raises(tape.GradcheckError, match=r"input 1 .*complex128\), perturbed along the \w+ axis"):
        tape.gradgradcheck(scale_wrongly, z)

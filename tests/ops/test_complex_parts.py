"""Complex tensors: ops/complex_parts.py (real, imag, angle, real_if_close) and the engine's complex rule
(``tape.Op(..., complex_rule=...)``): holomorphic ops conjugated into PyTorch's convention, ops that handle
complex values themselves, and the refusal of every other op. Checked against Wirtinger finite differences
(dL/dx + i dL/dy, no peer needed) and against PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, nonempty_shapes

Z = np.array([[0.7 + 0.3j, -1.2 + 0.5j, 0.4 - 0.9j], [-0.3 - 0.6j, 1.1 + 0.2j, 0.5 + 1.3j]])
W = np.array([[0.2 - 0.4j, 0.9 + 0.1j], [-0.5 + 0.7j, 0.3 + 0.3j], [1.1 - 0.2j, -0.6 - 0.8j]])


def wirtinger_gradient(loss: Callable[[np.ndarray], float], z: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """dL/dx + i dL/dy of a real ``loss`` at complex ``z``, by central differences: PyTorch's ``.grad``."""
    gradient = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        for direction in (1.0, 1j):
            step = np.zeros_like(z)
            step[index] = eps * direction
            slope = (loss(z + step) - loss(z - step)) / (2 * eps)
            gradient[index] += slope * direction
    return gradient


def plain_loss(function: Callable[[Any], Any]) -> Callable[[np.ndarray], float]:
    return lambda z: float(np.sum(np.abs(function(z)) ** 2 + np.real(function(z))))


# name: (a function of a complex tensor that numpy and tape both run, the same in torch)
FUNCTIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], Any]]] = {
    "arithmetic": (lambda z: (z * z + 2 * z - 1) / (z + 3), lambda t, z: (z * z + 2 * z - 1) / (z + 3)),
    "exp, log": (lambda z: np.exp(z) * np.log(z + 2), lambda t, z: t.exp(z) * t.log(z + 2)),
    "trigonometric": (
        lambda z: np.sin(z) + np.cos(z) * np.tanh(z),
        lambda t, z: t.sin(z) + t.cos(z) * t.tanh(z),
    ),
    "powers": (
        lambda z: np.sqrt(z + 2) + np.square(z) - np.reciprocal(z),
        lambda t, z: t.sqrt(z + 2) + z**2 - 1 / z,
    ),
    "matmul, sum, mean": (
        lambda z: np.sum(z @ W) * np.mean(z),
        lambda t, z: (z @ t.tensor(W)).sum() * z.mean(),
    ),
    "shape and indexing": (lambda z: np.reshape(z.T, (-1,))[1:4], lambda t, z: t.reshape(z.T, (-1,))[1:4]),
    "parts": (
        lambda z: np.real(z) * np.imag(z) + np.angle(z) * np.abs(z) + np.conj(z),
        lambda t, z: t.real(z) * t.imag(z) + t.angle(z) * t.abs(z) + t.conj(z),
    ),
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_complex_gradients_are_wirtinger_derivatives(name):
    function = FUNCTIONS[name][0]
    z = tape.tensor(Z, requires_grad=True)
    value = function(z)
    loss = np.sum(np.abs(value) ** 2 + np.real(value))
    loss.backward()
    np.testing.assert_allclose(z.grad, wirtinger_gradient(plain_loss(function), Z), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_complex_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = FUNCTIONS[name]
    z = tape.tensor(Z, requires_grad=True)
    value = ours(z)
    np.sum(np.abs(value) ** 2 + np.real(value)).backward()
    zt = torch.tensor(Z, requires_grad=True)
    value_t = theirs(torch, zt)
    (value_t.abs() ** 2 + value_t.real).sum().backward()
    np.testing.assert_allclose(z.grad, zt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_abs_squared_has_pytorchs_gradient_not_its_conjugate():
    z = tape.tensor([1 + 2j], requires_grad=True)
    np.sum(np.abs(z) ** 2).backward()
    np.testing.assert_array_equal(z.grad, [2 + 4j])  # JAX and autograd give 2 - 4j


def test_a_real_input_to_a_complex_result_gets_the_real_part():
    x = tape.tensor([1.0, -2.0], requires_grad=True)
    np.sum(np.abs(x * (1 + 2j) + 1j)).backward()
    z = np.array([1.0, -2.0]) * (1 + 2j) + 1j
    np.testing.assert_allclose(x.grad, np.real(np.conj(1 + 2j) * z / np.abs(z)), rtol=1e-12)
    assert x.grad.dtype == np.float64


def test_a_complex_result_needs_an_explicit_gradient_and_takes_one():
    z = tape.tensor([1 + 1j], requires_grad=True)
    with pytest.raises(
        RuntimeError, match=r"backward: the tensor is complex \(complex128\); .*pass gradient="
    ):
        np.sum(z * z).backward()
    (z * z).backward(np.array([1 - 1j]))
    np.testing.assert_allclose(z.grad, (1 - 1j) * np.conj(2 * (1 + 1j)))


@pytest.mark.parametrize("call", [lambda z: np.sort(z), lambda z: np.maximum(z, 0), lambda z: np.fmin(z, 0)])
def test_ops_without_a_complex_rule_refuse_complex_tensors(call):
    z = tape.tensor(Z, requires_grad=True)
    with pytest.raises(TypeError, match=r"complex tensors that require grad are not supported by \w+ yet"):
        call(z)
    with tape.no_grad():
        call(z)  # without a gradient, numpy's own result
    call(tape.tensor(Z))


def test_complex_tensors_can_require_grad_and_integers_still_cannot():
    assert tape.tensor(Z, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match="only floating-point tensors can require grad"):
        tape.tensor([1, 2], requires_grad=True)


# -- on real tensors, numpy's values and zero gradients ---------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_complex_helpers_on_real_tensors(dtype, data):
    x = data.draw(arrays(data.draw(nonempty_shapes), dtype, away_from=0.0))
    check_op(lambda x: np.real(x) * x, x)
    check_op(lambda x: np.real_if_close(x) ** 2, x)
    check_op(lambda x: np.conj(x) * np.conjugate(x), x)
    check_op(lambda x: np.imag(x) + x, x)
    check_op(lambda x: np.angle(x) * x, x)
    check_op(lambda x: np.angle(x, deg=True) + x, x)


def test_complex_helpers_give_numpys_values_and_zero_gradients():
    x = tape.tensor([2.0, -3.0, 0.0], requires_grad=True)
    assert np.real(x) is x and np.real_if_close(x, tol=10) is x
    np.testing.assert_array_equal(np.angle(x).data, np.angle(x.data))
    (np.angle(x) + np.imag(x)).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])
    assert np.imag(tape.tensor(np.array([1, 2]))).dtype == np.int64  # numpy's dtype, integers too


def test_real_if_close_keeps_a_complex_tensor_whose_imaginary_part_is_not_small():
    z = tape.tensor([1 + 1e-20j, 2 + 0j], requires_grad=True)
    assert np.real_if_close(z).dtype == np.float64
    w = tape.tensor([1 + 1j], requires_grad=True)
    assert np.real_if_close(w) is w


COMPLEX_HELPERS = {
    "real": lambda x: np.real(x) ** 3,
    "real_if_close": lambda x: np.sin(np.real_if_close(x)) * x,
    "imag": lambda x: np.imag(x) * x + x**3,
    "angle": lambda x: np.angle(x) * x**2,
}


@pytest.mark.parametrize("name", COMPLEX_HELPERS)
def test_complex_helpers_second_derivatives(name):
    x = np.array([[0.7, -1.3, 0.4], [-0.2, 1.1, 2.05]])
    assert tape.gradgradcheck(COMPLEX_HELPERS[name], x)


def test_a_users_op_declares_its_complex_rule():
    cube = tape.Op(lambda z: z**3, lambda g, out, z: g * 3 * z**2, name="cube", complex_rule="holomorphic")
    z = tape.tensor(Z, requires_grad=True)
    np.sum(np.abs(cube(z)) ** 2).backward()
    expected = wirtinger_gradient(lambda z: float(np.sum(np.abs(z**3) ** 2)), Z)
    np.testing.assert_allclose(z.grad, expected, rtol=1e-6, atol=1e-8)
    with pytest.raises(TypeError, match=r"^square: complex tensors that require grad are not supported"):
        tape.Op(np.square, lambda g, out, z: g * 2 * z, name="square")(tape.tensor(Z, requires_grad=True))
    with pytest.raises(ValueError, match=r"complex_rule is one of \['holomorphic', 'own', 'refused'\]"):
        tape.Op(np.square, complex_rule="analytic")


def _gradient_of_loss(z: Any) -> Any:
    """The Wirtinger gradient of a real loss of z, recorded (create_graph) when z requires grad."""
    value = np.sin(z) * z + np.exp(z) / (z + 2)
    (gradient,) = tape.gradients(np.sum(np.abs(value) ** 2), [z], create_graph=True)
    return gradient


def test_second_derivatives_of_complex_functions():
    z = tape.tensor(Z[0], requires_grad=True)
    gradient = _gradient_of_loss(z)
    np.sum(np.abs(gradient) ** 2 + np.real(gradient * np.conj(z))).backward()

    def outer(values: np.ndarray) -> float:
        inner = _gradient_of_loss(tape.tensor(values, requires_grad=True)).data
        return float(np.sum(np.abs(inner) ** 2 + np.real(inner * np.conj(values))))

    np.testing.assert_allclose(z.grad, wirtinger_gradient(outer, Z[0]), rtol=1e-6, atol=1e-7)
    torch = pytest.importorskip("torch")
    zt = torch.tensor(Z[0], requires_grad=True)
    value = torch.sin(zt) * zt + torch.exp(zt) / (zt + 2)
    (gradient_t,) = torch.autograd.grad((value.abs() ** 2).sum(), zt, create_graph=True)
    (gradient_t.abs() ** 2 + (gradient_t * zt.conj()).real).sum().backward()
    np.testing.assert_allclose(z.grad, zt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_grad_and_vjp_take_complex_inputs_and_the_other_transforms_refuse_them():
    loss = lambda z: np.sum(np.abs(np.sin(z)) ** 2)
    expected = wirtinger_gradient(lambda z: float(np.sum(np.abs(np.sin(z)) ** 2)), Z[0])
    np.testing.assert_allclose(tape.grad(loss)(Z[0]), expected, rtol=1e-6, atol=1e-8)
    assert tape.gradcheck(loss, Z[0]) and tape.gradgradcheck(lambda z: np.sin(z) * z, Z[0])
    for transform in (tape.jacobian(np.sin), tape.hessian(loss)):
        with pytest.raises(TypeError, match=r"complex inputs are not supported by (jacobian|hessian) yet"):
            transform(Z[0])

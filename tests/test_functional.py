"""Functional transforms: gradients, grad, value_and_grad, vjp, jvp, hvp, and their nesting."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from tests.strategies import FLOAT_DTYPES


def _numeric_gradient(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for j in range(x.size):
        step = np.zeros_like(x)
        step.flat[j] = eps
        grad.flat[j] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def _energy(x):
    return np.sum(np.sin(x) * np.exp(x / 2))


def _energy_value(x):
    return float(np.sum(np.sin(x) * np.exp(x / 2)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_grad_matches_finite_differences_and_keeps_dtype(dtype):
    x = np.linspace(-1, 1, 5).astype(dtype)
    g = tape.grad(_energy)(x)
    assert type(g) is np.ndarray and g.dtype == dtype
    np.testing.assert_allclose(
        g, _numeric_gradient(_energy_value, x.astype(np.float64)), rtol=1e-4, atol=1e-4
    )


def test_grad_nests_to_third_order():
    f = lambda x: x**4 + np.sin(x)
    x = 0.7
    assert tape.grad(f)(x) == pytest.approx(4 * x**3 + np.cos(x))
    assert tape.grad(tape.grad(f))(x) == pytest.approx(12 * x**2 - np.sin(x))
    assert tape.grad(tape.grad(tape.grad(f)))(x) == pytest.approx(24 * x - np.cos(x))


def test_argnums_tuple_and_pytrees():
    def loss(params, x):
        return np.sum((x @ params["w"] + params["b"][0]) ** 2)

    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 2)), "b": [rng.standard_normal(2)]}
    x = rng.standard_normal((4, 3))
    grads = tape.grad(loss)(params, x)
    assert set(grads) == {"w", "b"} and isinstance(grads["b"], list)
    residual = x @ params["w"] + params["b"][0]
    np.testing.assert_allclose(grads["w"], 2 * x.T @ residual)
    np.testing.assert_allclose(grads["b"][0], 2 * residual.sum(axis=0))
    value, (_, g_x) = tape.value_and_grad(loss, argnums=(0, 1))(params, x)
    assert value == pytest.approx(np.sum(residual**2))
    np.testing.assert_allclose(g_x, 2 * residual @ params["w"].T)


def test_has_aux():
    g, aux = tape.grad(lambda x: (np.sum(x**2), "note"), has_aux=True)(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(g, [2.0, 4.0])
    assert aux == "note"


def test_grad_of_non_scalar_is_an_error():
    with pytest.raises(TypeError, match=r"single-element tensor.*shape \(2,\)"):
        tape.grad(lambda x: x * 2)(np.ones(2))


def test_grad_of_integer_input_is_an_error():
    with pytest.raises(TypeError, match="floating-point"):
        tape.grad(lambda x: np.sum(x))(np.arange(3))


def test_unused_argument_gets_zeros():
    g = tape.grad(lambda x, y: np.sum(x), argnums=1)(np.ones(2), np.ones(3))
    np.testing.assert_array_equal(g, np.zeros(3))


def test_vjp_returns_output_and_pullback():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    out, pullback = tape.vjp(lambda x, y: np.tanh(x @ y), a, b)
    u = rng.standard_normal((3, 2))
    da, db = pullback(u)
    dh = u * (1 - np.tanh(a @ b) ** 2)
    np.testing.assert_allclose(out, np.tanh(a @ b))
    np.testing.assert_allclose(da, dh @ b.T)
    np.testing.assert_allclose(db, a.T @ dh)
    da_again, _ = pullback(u)  # the pullback can be called again
    np.testing.assert_allclose(da_again, da)


def test_jvp_matches_directional_finite_difference():
    rng = np.random.default_rng(2)
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    f = lambda t: np.sin(t) * np.sum(t**2)
    out, tangent = tape.jvp(f, (x,), (v,))
    eps = 1e-6
    expected = (
        np.sin(x + eps * v) * np.sum((x + eps * v) ** 2) - np.sin(x - eps * v) * np.sum((x - eps * v) ** 2)
    ) / (2 * eps)
    np.testing.assert_allclose(out, np.sin(x) * np.sum(x**2))
    np.testing.assert_allclose(tangent, expected, rtol=1e-6)


def test_hvp_matches_finite_differences_of_the_gradient():
    rng = np.random.default_rng(3)
    x, v = rng.standard_normal(5), rng.standard_normal(5)
    (hv,) = tape.hvp(_energy, (x,), (v,))
    gradient = tape.grad(_energy)
    eps = 1e-6
    np.testing.assert_allclose(hv, (gradient(x + eps * v) - gradient(x - eps * v)) / (2 * eps), rtol=1e-5)


def test_gradients_with_respect_to_an_intermediate_tensor():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = np.sum(h**2)
    dh, dx = tape.gradients(y, [h, x])
    np.testing.assert_array_equal(dh, 2 * h.data)
    np.testing.assert_array_equal(dx, 6 * h.data)
    assert x.grad is None  # gradients() leaves .grad alone


def test_gradients_reports_unused_inputs():
    x = tape.tensor([1.0], requires_grad=True)
    unused = tape.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"input 1 .* was not used"):
        tape.gradients((x * 2).sum(), [x, unused])
    assert tape.gradients((x * 2).sum(), [x, unused], allow_unused=True)[1] is None


def test_transforms_on_tensors_inside_a_recorded_computation():
    # grad called on a tensor that an outer backward differentiates: d/dx (d/dx x^3) = 6x.
    x = tape.tensor(1.5, requires_grad=True)
    first = tape.grad(lambda t: t**3)(x)
    assert isinstance(first, tape.Tensor) and first.requires_grad
    first.backward()
    assert x.grad == pytest.approx(9.0)


def test_writing_into_what_vjp_returned_cannot_change_its_pullback():
    # The pullback reads saved buffers (exp's output, an input returned as it is): vjp returns copies.
    x = np.array([0.5, 1.0])
    out, pullback = tape.vjp(np.exp, x)
    out *= 0.0
    np.testing.assert_allclose(pullback(np.ones(2))[0], np.exp(x))
    (same, cube), pullback = tape.vjp(lambda a: (a, a**3), x)
    cube[...] = -1.0
    same[...] = 100.0
    np.testing.assert_allclose(pullback((np.zeros(2), np.ones(2)))[0], 3 * x**2)
    np.testing.assert_array_equal(x, [0.5, 1.0])


def test_a_pullback_differentiated_in_its_cotangent():
    # u -> VJP(u) is linear: its derivative along v is J^T v, by grad and by jvp (JAX: jax.grad of the same).
    x0, v = np.array([0.3, -0.7, 1.1]), np.array([1.0, 2.0, 3.0])
    slope = np.sin(x0) + x0 * np.cos(x0)  # d/dx of sin(x) x, a diagonal Jacobian

    def pulled(u):
        return tape.vjp(lambda y: np.sin(y) * y, x0)[1](u)[0]

    np.testing.assert_allclose(tape.grad(lambda u: np.sum(pulled(u) * v))(np.ones(3)), slope * v, rtol=1e-15)
    np.testing.assert_allclose(tape.jvp(pulled, (np.ones(3),), (v,))[1], slope * v, rtol=1e-15)
    assert type(pulled(np.ones(3))) is np.ndarray  # at top level, plain arrays

"""Transforms compose to any depth, with any argnums and with closures, and take and return trees.

The oracle needs no peer: a nested transform ``outer(inner)`` must agree with central finite differences
of ``inner`` evaluated at top level (where a transform sees only plain arrays), so each level is checked
against the one below it. With PyTorch installed, ``torch.func`` is a second oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tape

X = np.array([0.3, -0.7])
Y = np.array([0.4, 1.1])


def f(x: Any, y: Any) -> Any:
    return np.sum(np.sin(x) * np.cos(y) + x**2 * y + np.exp(x * y) / 3)


def finite_jacobian(function: Callable[..., Any], args: tuple[Any, ...], wrt: int, eps: float = 1e-6) -> Any:
    """d function(*args) / d args[wrt] by central differences, in JAX's layout (output + input shape)."""
    base = np.asarray(args[wrt], dtype=np.float64)
    columns = []
    for index in np.ndindex(base.shape or ()):
        shifted = []
        for sign in (1.0, -1.0):
            moved = base.copy()
            moved[index] += sign * eps
            shifted.append(np.asarray(function(*args[:wrt], moved, *args[wrt + 1 :]), dtype=np.float64))
        columns.append((shifted[0] - shifted[1]) / (2 * eps))
    stacked = np.stack(columns, axis=-1)
    return stacked.reshape(np.shape(columns[0]) + base.shape)


def plain(value: Any) -> Any:
    return value.data if isinstance(value, tape.Tensor) else np.asarray(value)


# (name, the nested transform, the inner function it differentiates, which argument the outer takes)
NESTED = [
    (
        "grad of grad, other argnums",
        tape.grad(lambda x, y: np.sum(tape.grad(f, 1)(x, y)), 0),
        lambda x, y: np.sum(tape.grad(f, 1)(x, y)),
        0,
    ),
    (
        "grad of grad, same argnum",
        tape.grad(lambda x, y: np.sum(tape.grad(f, 0)(x, y) ** 2), 0),
        lambda x, y: np.sum(tape.grad(f, 0)(x, y) ** 2),
        0,
    ),
    ("jacobian of grad", tape.jacobian(tape.grad(f, 0), 1), tape.grad(f, 0), 1),
    (
        "jacobian of jacobian",
        tape.jacobian(tape.jacobian(lambda x, y: np.sin(x) * y, 0), 1),
        tape.jacobian(lambda x, y: np.sin(x) * y, 0),
        1,
    ),
    (
        "grad of jvp",
        tape.grad(lambda x, y: np.sum(tape.jvp(lambda a: np.sin(a * y), (x,), (y,))[1]), 1),
        lambda x, y: np.sum(tape.jvp(lambda a: np.sin(a * y), (x,), (y,))[1]),
        1,
    ),
    (
        "jacobian of vjp",
        tape.jacobian(lambda x, y: tape.vjp(lambda a: np.tanh(a * y), x)[1](y)[0], 0),
        lambda x, y: tape.vjp(lambda a: np.tanh(a * y), x)[1](y)[0],
        0,
    ),
    (
        "grad of hvp",
        tape.grad(lambda x, y: np.sum(tape.hvp(lambda a: f(a, y), (x,), (y,))[0]), 1),
        lambda x, y: np.sum(tape.hvp(lambda a: f(a, y), (x,), (y,))[0]),
        1,
    ),
    (
        "grad of value_and_grad",
        tape.grad(lambda x, y: np.sum(tape.value_and_grad(f, 1)(x, y)[1] * x), 0),
        lambda x, y: np.sum(tape.value_and_grad(f, 1)(x, y)[1] * x),
        0,
    ),
    (
        "grad of hessian",
        tape.grad(lambda x, y: np.sum(tape.hessian(f, 0)(x, y) * np.outer(y, y)), 1),
        lambda x, y: np.sum(tape.hessian(f, 0)(x, y) * np.outer(y, y)),
        1,
    ),
    (
        "grad of checkpoint",
        tape.grad(lambda x, y: np.sum(tape.checkpoint(lambda a, b: np.sin(a) * b, x, y)), 1),
        lambda x, y: np.sum(tape.checkpoint(lambda a, b: np.sin(a) * b, x, y)),
        1,
    ),
]


@pytest.mark.parametrize("name, nested, inner, wrt", NESTED, ids=[case[0] for case in NESTED])
def test_a_nested_transform_is_the_derivative_of_its_inner_one(name, nested, inner, wrt):
    expected = finite_jacobian(lambda *args: plain(inner(*args)), (X, Y), wrt)
    got = nested(X, Y)
    assert not isinstance(got, tape.Tensor), f"{name}: a top-level transform returns plain arrays"
    np.testing.assert_allclose(got, expected.reshape(np.shape(got)), rtol=1e-6, atol=1e-7)


def test_third_derivatives_mixing_arguments():
    g = lambda x, y: np.sin(x) * np.cos(y)
    assert np.isclose(tape.grad(tape.grad(g, 1), 0)(0.3, 0.4), -np.cos(0.3) * np.sin(0.4))
    assert np.isclose(tape.grad(tape.grad(tape.grad(g, 1), 0), 1)(0.3, 0.4), -np.cos(0.3) * np.cos(0.4))
    assert np.isclose(tape.grad(tape.grad(tape.grad(g, 1), 0), 0)(0.3, 0.4), np.sin(0.3) * np.sin(0.4))


def test_an_inner_transform_closing_over_an_outer_variable():
    def fun(x):
        inner = lambda y: x * y
        return x * tape.grad(inner)(2.0)

    assert tape.grad(fun)(1.0) == pytest.approx(2.0)

    def deeper(x):
        return tape.grad(lambda y: np.sin(x * y) * tape.grad(lambda z: x * z * y)(1.0))(0.5)

    expected = finite_jacobian(lambda x: plain(deeper(x)), (0.7,), 0)
    assert tape.grad(deeper)(0.7) == pytest.approx(float(expected), rel=1e-6)


def test_perturbations_of_different_levels_are_not_confused():
    # d/dx [x * d/dy (x + y)] = 1: the inner derivative is 1 whatever x (the classic confusion gives 2).
    assert tape.grad(lambda x: x * tape.grad(lambda y: x + y)(1.0))(3.0) == pytest.approx(1.0)


def test_a_transform_inside_no_grad_still_differentiates():
    with tape.no_grad():
        assert tape.grad(lambda x: x**3)(2.0) == pytest.approx(12.0)
        assert not isinstance(tape.grad(lambda x: x**3)(tape.tensor(2.0, requires_grad=True)), tape.Tensor)


@pytest.mark.parametrize(
    "transform",
    [
        lambda: tape.grad(f, 1)(X, Y),
        lambda: tape.jvp(lambda a: np.sin(a * a[0]), (X,), (Y[:1] * np.ones(2),))[1],
        lambda: tape.hvp(lambda a: f(a, Y), (X,), (Y,))[0],
        lambda: tape.jacobian(lambda a: np.sin(a) * Y, 0)(X),
        lambda: tape.hessian(f, 0)(X, Y),
    ],
    ids=["grad", "jvp", "hvp", "jacobian", "hessian"],
)
def test_every_transform_gives_the_same_numbers_inside_no_grad(transform):
    outside = transform()
    with tape.no_grad():
        inside = transform()
    assert np.any(outside != 0)
    np.testing.assert_array_equal(inside, outside)


def test_second_derivative_through_checkpoint_of_a_plain_array_is_plain():
    # checkpoint tracks its plain array arguments to recompute: those leaves are no outside input.
    inner = lambda a: np.sum(tape.checkpoint(lambda a, b: np.sin(a * b), a, Y))
    got = tape.grad(lambda a: np.sum(tape.grad(inner)(a)))(X)
    assert type(got) is np.ndarray
    np.testing.assert_allclose(got, -np.sin(X * Y) * Y * Y, rtol=1e-12)


def test_a_transform_of_recorded_inputs_stays_on_the_tape():
    x = tape.tensor(X, requires_grad=True)
    gradient = tape.grad(lambda a: np.sum(np.sin(a) ** 2))(x)
    assert isinstance(gradient, tape.Tensor) and gradient.requires_grad
    np.sum(gradient).backward()
    np.testing.assert_allclose(x.grad, 2 * np.cos(2 * X), rtol=1e-12)


# -- trees in and out -----------------------------------------------------------------------------------
def test_jacobian_of_tree_outputs_with_respect_to_tree_inputs():
    def fn(p):
        return {"y": (p["a"] * p["b"][0], np.sum(p["a"]))}

    params = {"a": np.array([1.0, 2.0]), "b": [np.array(3.0)]}
    jac = tape.jacobian(fn)(params)
    assert set(jac) == {"y"} and isinstance(jac["y"], tuple)
    np.testing.assert_allclose(jac["y"][0]["a"], 3.0 * np.eye(2))
    np.testing.assert_allclose(jac["y"][0]["b"][0], [1.0, 2.0])
    np.testing.assert_allclose(jac["y"][1]["a"], [1.0, 1.0])
    assert jac["y"][1]["b"][0] == 0.0


def test_jacobian_of_a_tuple_output_with_respect_to_two_argnums():
    jac = tape.jacobian(lambda x, y: (x * y, [np.sum(x)]), (0, 1))(X, Y)
    np.testing.assert_allclose(jac[0][0], np.diag(Y))
    np.testing.assert_allclose(jac[0][1], np.diag(X))
    np.testing.assert_allclose(jac[1][0][0], np.ones(2))
    np.testing.assert_allclose(jac[1][0][1], np.zeros(2))


def test_hessian_of_a_function_of_a_dict_and_of_a_tuple():
    h = tape.hessian(lambda p: np.sum(p["a"] ** 2 * p["b"]))({"a": X, "b": np.array(3.0)})
    np.testing.assert_allclose(h["a"]["a"], 6.0 * np.eye(2))
    np.testing.assert_allclose(h["a"]["b"], 2 * X)
    np.testing.assert_allclose(h["b"]["a"], 2 * X)
    assert h["b"]["b"] == 0.0
    h = tape.hessian(lambda pair: np.sum(pair[0] ** 3 * pair[1]))((X, Y))
    np.testing.assert_allclose(h[0][0], np.diag(6 * X * Y))
    np.testing.assert_allclose(h[0][1], np.diag(3 * X**2))


@pytest.mark.parametrize("constant", [np.floor, np.sign, lambda x: 3.0, lambda x: np.ones(2)])
def test_jvp_of_a_function_that_does_not_depend_on_its_input_is_zero(constant):
    out, tangent = tape.jvp(constant, (X,), (Y,))
    np.testing.assert_array_equal(tangent, np.zeros(np.shape(out)))


def test_jvp_and_vjp_of_tree_outputs():
    _, tangent = tape.jvp(lambda x: (x * 2, {"sq": x**2}), (X,), (Y,))
    np.testing.assert_allclose(tangent[0], 2 * Y)
    np.testing.assert_allclose(tangent[1]["sq"], 2 * X * Y)
    _, pullback = tape.vjp(lambda x, y: {"p": x * y, "s": np.sum(x)}, X, Y)
    gx, gy = pullback({"p": np.ones(2), "s": np.array(2.0)})
    np.testing.assert_allclose(gx, Y + 2)
    np.testing.assert_allclose(gy, X)
    with pytest.raises(ValueError, match=r"^vjp: the cotangent's structure .* does not match"):
        pullback(np.ones(2))


@pytest.mark.parametrize("transform", [tape.grad, tape.jacobian, tape.hessian, tape.value_and_grad])
def test_an_argument_named_twice_in_argnums_is_refused(transform):
    with pytest.raises(ValueError, match=r"argnums \(0, -2\) names an argument twice"):
        transform(f, (0, -2))(X, Y)


def test_transforms_refuse_what_they_cannot_differentiate():
    with pytest.raises(TypeError, match=r"^grad: can only differentiate with respect to floating-point"):
        tape.grad(lambda n: n * 2.0)(3)
    with pytest.raises(ValueError, match=r"^grad: argnums 2 out of range"):
        tape.grad(f, 2)(X, Y)
    with pytest.raises(TypeError, match=r"^grad: the function must return a single-element tensor"):
        tape.grad(lambda x: x * 2)(X)


# -- torch.func as a second oracle ----------------------------------------------------------------------
def test_nested_transforms_match_torch_func():
    torch = pytest.importorskip("torch")
    func = torch.func

    def f_torch(x, y):
        return torch.sum(torch.sin(x) * torch.cos(y) + x**2 * y + torch.exp(x * y) / 3)

    x, y = torch.tensor(X), torch.tensor(Y)
    pairs = [
        (
            tape.grad(lambda a, b: np.sum(tape.grad(f, 1)(a, b)), 0)(X, Y),
            func.grad(lambda a, b: func.grad(f_torch, 1)(a, b).sum(), 0)(x, y),
        ),
        (tape.jacobian(tape.grad(f, 0), 1)(X, Y), func.jacrev(func.grad(f_torch, 0), 1)(x, y)),
        (tape.hessian(f, 0)(X, Y), func.hessian(f_torch, 0)(x, y)),
        (
            tape.jacobian(tape.jacobian(lambda a, b: np.sin(a) * b, 0), 1)(X, Y),
            func.jacfwd(func.jacrev(lambda a, b: torch.sin(a) * b, 0), 1)(x, y),
        ),
        (tape.jvp(lambda a: f(a, Y), (X,), (Y,))[1], func.jvp(lambda a: f_torch(a, y), (x,), (y,))[1]),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)

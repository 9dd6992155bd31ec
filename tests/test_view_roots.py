"""A view whose base was written in place after the cut, and that no op read since, is where a sweep starts:
what ``backward`` seeds, what a transform's function returns. Its history must be the fresh cut's (the
base's new values), as PyTorch regenerates a view's ``grad_fn``; the old cut's would be a silently wrong
derivative. Every entry point of a sweep is checked against the derivative of ``3 x[:2]``, and ``backward``
against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import tape

X = np.array([1.0, 2.0, 3.0])
V = np.array([1.0, 10.0, 100.0])
U = np.array([1.0, -2.0])
JACOBIAN = 3.0 * np.eye(3)[:2]  # of x -> 3 x[:2]


def cut_then_write(x):
    a = x * 1.0
    y = a[:2]  # a view of a
    a[...] = a * 3.0  # written in place: y now shows 3 x[:2]
    return y


def cut_twice_then_write(x):
    a = x * 1.0
    y = a[:2].reshape(1, 2)[0]  # a view of a view
    a *= 3.0
    return y


FUNCTIONS = {"a view": cut_then_write, "a view of a view": cut_twice_then_write}

ENTRY_POINTS = {
    "jvp": lambda f: tape.jvp(f, (X,), (V,))[1],
    "vjp": lambda f: tape.vjp(f, X)[1](U)[0],
    "jacobian": lambda f: tape.jacobian(f)(X),
    "jacfwd": lambda f: tape.jacfwd(f)(X),
    "jacobian_operator @ v": lambda f: tape.jacobian_operator(f, X, structured=False) @ V,
    "u @ jacobian_operator": lambda f: U @ tape.jacobian_operator(f, X, structured=False),
    "grad": lambda f: tape.grad(lambda x: f(x)[1])(X),
    "returned in a tree": lambda f: tape.jvp(lambda x: {"y": f(x)}, (X,), (V,))[1]["y"],
}
EXPECTED = {
    "jvp": JACOBIAN @ V,
    "vjp": U @ JACOBIAN,
    "jacobian": JACOBIAN,
    "jacfwd": JACOBIAN,
    "jacobian_operator @ v": JACOBIAN @ V,
    "u @ jacobian_operator": U @ JACOBIAN,
    "grad": JACOBIAN[1],
    "returned in a tree": JACOBIAN @ V,
}


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_transform_of_a_function_returning_a_stale_view(entry, function):
    np.testing.assert_allclose(ENTRY_POINTS[entry](FUNCTIONS[function]), EXPECTED[entry], rtol=1e-15)


@pytest.mark.parametrize("grad_mode", [True, False], ids=["recording", "under no_grad"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_backward_and_gradients_from_a_stale_view_agree_with_pytorch(function, grad_mode):
    torch = pytest.importorskip("torch")
    x_torch = torch.tensor(X, requires_grad=True)
    a = x_torch * 1.0
    y_torch = a[:2] if function == "a view" else a[:2].reshape(1, 2)[0]
    a.mul_(3.0)
    y_torch.backward(torch.tensor(U))
    for entry in ("backward", "gradients"):
        x = tape.tensor(X, requires_grad=True)
        y = FUNCTIONS[function](x)
        with tape.set_grad_enabled(grad_mode):
            if entry == "backward":
                y.backward(U)
                found = x.grad
            else:
                (found,) = tape.gradients(y, x, U)
        np.testing.assert_allclose(found, x_torch.grad.numpy(), rtol=1e-15, err_msg=entry)


def test_the_forward_value_and_the_derivative_describe_the_same_function():
    out, tangent = tape.jvp(cut_then_write, (X,), (V,))
    np.testing.assert_allclose(out, 3 * X[:2])
    np.testing.assert_allclose(tangent, 3 * V[:2])


# -- a view cut before its base had a history ----------------------------------------------------------------
def test_a_write_through_a_view_cut_before_its_base_had_a_history_is_recorded():
    x = tape.tensor(X, requires_grad=True)
    buffer = tape.zeros(3)
    view = buffer[1:]  # cut while the buffer is a constant
    buffer[...] = np.sin(x)  # the buffer now has a history; the view is stale
    view[...] = 0.0
    buffer.sum().backward()
    np.testing.assert_allclose(buffer.data, [np.sin(X[0]), 0.0, 0.0])
    np.testing.assert_allclose(x.grad, [np.cos(X[0]), 0.0, 0.0], rtol=1e-15)


def test_a_view_cut_before_its_base_had_a_history_as_the_source_of_a_write():
    torch = pytest.importorskip("torch")
    x = tape.tensor(X, requires_grad=True)
    buffer = tape.zeros(2)
    view = buffer[:]
    buffer[...] = np.sin(x[:2])
    out = tape.zeros(2)
    out[...] = view
    np.sum(out * x[:2]).backward()
    x_torch = torch.tensor(X, requires_grad=True)
    (torch.sin(x_torch[:2]) * x_torch[:2]).sum().backward()
    np.testing.assert_allclose(x.grad, x_torch.grad.numpy(), rtol=1e-15)


def returns_a_view_cut_before_the_history(a):
    buffer = tape.zeros(3)
    view = buffer[1:]
    buffer[...] = np.sin(a)
    return view


@pytest.mark.parametrize("how", ["backward", "checkpoint", "grad"])
def test_returning_a_view_cut_before_its_base_had_a_history(how):
    x = tape.tensor(X, requires_grad=True)
    if how == "grad":
        found = tape.grad(lambda a: np.sum(returns_a_view_cut_before_the_history(a) * U))(X)
    else:
        f = returns_a_view_cut_before_the_history
        out = f(x) if how == "backward" else tape.checkpoint(f, x)
        out.backward(U)
        found = x.grad
    np.testing.assert_allclose(found, [0.0, *(np.cos(X[1:]) * U)], rtol=1e-15)


def test_writing_with_grad_through_a_view_cut_under_no_grad_is_refused():
    x = tape.tensor(X, requires_grad=True)
    y = x * 1.0
    with tape.no_grad():
        view = y[1:]
    with pytest.raises(RuntimeError, match=r"multiply \(in place\): .* a view cut under no_grad"):
        view *= 0.0
    with tape.no_grad():  # the explicit way: unrecorded, as PyTorch allows
        view *= 0.0
    np.testing.assert_allclose(y.data, [X[0], 0.0, 0.0])

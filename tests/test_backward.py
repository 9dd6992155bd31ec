"""The reverse sweep: order, accumulation, release of saved values, and its error messages."""

from __future__ import annotations

import numpy as np
import pytest

import tape


def test_issue_example():
    rng = np.random.default_rng(1)
    x_data, w_data = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    x = tape.tensor(x_data, requires_grad=True)
    w = tape.tensor(w_data, requires_grad=True)
    loss = np.sum(np.tanh(x @ w) ** 2) + (x * 3.0).mean()
    loss.backward()
    # Independent closed form: d/dh sum(tanh(h)^2) = 2 tanh(h) (1 - tanh(h)^2), h = x w.
    t = np.tanh(x_data @ w_data)
    dh = 2 * t * (1 - t**2)
    np.testing.assert_allclose(x.grad, dh @ w_data.T + 3.0 / x_data.size)
    np.testing.assert_allclose(w.grad, x_data.T @ dh)
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype


def test_deep_chain_runs_without_recursion():
    x = tape.tensor([0.5, -0.25], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_shared_subexpressions_sum_their_cotangents():
    x = tape.tensor(3.0, requires_grad=True)
    a = x * x  # used twice below
    y = a * a + a
    y.backward()
    assert x.grad == pytest.approx(4 * 27.0 + 6.0)


def test_gradients_accumulate_across_calls_like_pytorch():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_grad_buffers_do_not_alias():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    w = tape.tensor([3.0, 4.0], requires_grad=True)
    g = np.array([1.0, 1.0])
    (x + w).backward(g)
    x.grad *= 10  # in-place scaling (as gradient clipping does) must not touch w.grad or g
    np.testing.assert_array_equal(w.grad, [1.0, 1.0])
    np.testing.assert_array_equal(g, [1.0, 1.0])


def test_a_fresh_cotangent_becomes_the_grad_without_a_copy_and_a_shared_one_is_copied():
    from tape.backward import _unshared

    fresh = np.ones(3)
    entry = [None, fresh]
    assert not _unshared(entry)  # ``fresh`` still names it
    del fresh
    assert _unshared(entry)
    entry = [None, np.ones(6).reshape(2, 3)]  # a view of an array that only the view refers to
    assert _unshared(entry)
    base = np.ones((2, 3))
    entry = [None, base[0]]  # a view of an array someone else holds
    assert not _unshared(entry)
    entry = [None, np.broadcast_to(np.ones(1), (3,))]  # read-only
    assert not _unshared(entry)


def test_backward_hands_a_fresh_cotangent_to_grad_without_copying_it():
    addresses = []

    def fresh_cotangent(g, out, x):
        cotangent = g * 2.0
        addresses.append(cotangent.__array_interface__["data"][0])
        return cotangent

    double = tape.Op(lambda x: x * 2.0, fresh_cotangent, name="double")
    x = tape.tensor(np.ones(4), requires_grad=True)
    double(x).backward(np.ones(4))
    assert x.grad.__array_interface__["data"][0] == addresses[0]
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0, 2.0])


def test_grads_of_the_same_views_seed_and_leaves_stay_apart():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    seed = np.array([1.0, 1.0])
    (x * 1.0).backward(seed)
    x.grad += 1  # a grad is the user's to change in place
    np.testing.assert_array_equal(seed, [1.0, 1.0])
    a = tape.tensor(np.ones((2, 2)), requires_grad=True)
    b = tape.tensor(np.ones((2, 2)), requires_grad=True)
    (a.T + b).sum().backward()
    a.grad[0, 0] = 5.0
    np.testing.assert_array_equal(b.grad, np.ones((2, 2)))


def test_backward_with_explicit_gradient():
    x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).backward(np.array([1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 12.0])


def test_unused_leaf_keeps_no_grad():
    x = tape.tensor([1.0], requires_grad=True)
    unused = tape.tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    assert unused.grad is None


def test_backward_on_a_leaf():
    x = tape.tensor(2.0, requires_grad=True)
    x.backward()
    assert x.grad == 1.0


def test_non_scalar_without_gradient_is_an_error():
    x = tape.tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"has shape \(1, 2\).*pass gradient= with shape \(1, 2\)"):
        (x * 2).backward()


def test_gradient_of_wrong_shape_is_an_error():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\) but the tensor has shape \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_a_complex_gradient_for_a_real_tensor_is_refused_not_cast():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    message = (
        r"^backward: gradient has dtype complex128 but the tensor has dtype float64: the cast would drop "
        r"its imaginary part"
    )
    with pytest.raises(TypeError, match=message):
        y.backward(np.array([1.0 + 1.0j, 2.0j]))
    with pytest.raises(TypeError, match=message):
        y.backward(tape.tensor(np.array([1.0 + 1.0j, 2.0j])))
    assert x.grad is None
    with pytest.raises(TypeError, match=r"^gradients: gradient has dtype complex64 but the tensor has"):
        tape.gradients(y, x, np.ones(2, dtype=np.complex64))


def test_a_gradient_that_is_not_numbers_is_refused():
    y = tape.tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(
        TypeError, match=r"^backward: gradient has dtype object but the tensor has dtype float64"
    ):
        y.backward(np.array([1.0, None], dtype=object))
    with pytest.raises(
        TypeError, match=r"^backward: gradient has dtype <U1 but the tensor has dtype float64"
    ):
        y.backward(np.array(["a", "b"]))


def test_a_numeric_gradient_of_another_precision_is_cast_as_in_pytorch():
    x = tape.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    (x * 2).backward(np.array([1.0, 3.0]))  # float64 for a float32 tensor
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 6.0])
    x.grad = None
    (x * 2).backward(np.array([1, 0]))  # integers
    np.testing.assert_array_equal(x.grad, [2.0, 0.0])


def test_backward_of_untracked_tensor_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tape.tensor([1.0]).sum().backward()


def test_second_backward_through_released_records_is_an_error():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"record of 'sum' was released.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])


def test_backward_releases_saved_values():
    x = tape.tensor(np.ones(3), requires_grad=True)
    y = np.exp(x)
    z = y.sum()
    record = y.record
    assert not record.released
    z.backward()
    assert record.released and record.out is None and record.args is None


def test_broadcast_shapes_that_do_not_match_name_the_op_and_shapes():
    a = tape.tensor(np.ones((2, 3)), requires_grad=True)
    b = tape.tensor(np.ones((4,)), requires_grad=True)
    # numpy's own error, with a note naming the op and what it was given (pytest matches notes too).
    message = (
        r"^operands could not be broadcast together with shapes \(2,3\) \(4,\) ?\n"
        r"add: array arguments of shapes \(2, 3\), \(4,\); dtypes float64, float64$"
    )
    with pytest.raises(ValueError, match=message):
        a + b


def test_create_graph_gives_differentiable_gradients():
    x = tape.tensor(2.0, requires_grad=True)
    (x**3).backward(create_graph=True)
    first = x.grad
    assert isinstance(first, tape.Tensor) and first.requires_grad
    assert first.item() == pytest.approx(12.0)
    x.grad = None
    first.backward()
    assert x.grad.item() == pytest.approx(12.0)  # d/dx 3x^2 = 6x


def test_records_are_numbered_in_tape_order():
    x = tape.tensor(1.0, requires_grad=True)
    a = x * 2
    b = a + 1
    c = b * a
    assert a.record.position < b.record.position < c.record.position
    assert "multiply" in repr(c.record)

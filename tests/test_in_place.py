"""In-place changes (+=, t[...] = v, no_grad updates) are recorded correctly or refused, never wrong."""

from __future__ import annotations

import numpy as np
import pytest

import tape


def test_augmented_assignment_on_a_recorded_tensor_is_recorded():
    x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y += x  # 3x
    y *= x  # 3x^2
    y -= 1.0
    y /= 2.0  # (3x^2 - 1) / 2
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 3 * x.data)


def test_in_place_keeps_the_python_object_and_numpy_view_semantics():
    x = tape.tensor(np.ones(4), requires_grad=True)
    y = x * 1.0
    view = y.reshape(2, 2)
    alias = y
    y += 1.0
    assert alias is y
    np.testing.assert_array_equal(view.data, np.full((2, 2), 2.0))  # numpy: views see the change


def test_in_place_on_a_leaf_that_requires_grad_is_refused_while_recording():
    w = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add \(in place\): a leaf tensor that requires grad .*no_grad"):
        w += 1.0


def test_parameter_update_under_no_grad_changes_the_leaf_in_place():
    w = tape.tensor([1.0, 2.0], requires_grad=True)
    buffer = w.data
    (w * w).sum().backward()
    with tape.no_grad():
        w -= 0.1 * w.grad
    assert np.shares_memory(w.data, buffer) and w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.data, [0.8, 1.6])


def test_changing_a_saved_input_is_caught_at_backward():
    w = tape.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    with tape.no_grad():
        w -= 1.0  # changes the value multiply saved
    with pytest.raises(
        RuntimeError,
        match=r"multiply: its input 0 \(a tensor of shape \(2,\), float64\) was changed in place "
        r".*version 0, now 1\), and multiply reads it to compute its gradient",
    ):
        loss.backward()


def test_changing_a_saved_output_is_caught_at_backward():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = np.exp(x)  # exp's VJP uses its output
    with tape.no_grad():
        y += 1.0
    with pytest.raises(RuntimeError, match=r"exp: its output \(.*\) was changed in place"):
        y.backward(np.ones(2))


def test_in_place_on_a_recorded_tensor_keeps_the_earlier_record_correct():
    x = tape.tensor([0.5, 1.0], requires_grad=True)
    y = np.exp(x)  # exp's VJP reads y; the in-place below must not corrupt it
    y += 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.exp(x.data))


def test_changing_a_tensor_another_record_saved_is_caught():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    product = h * h  # saves h
    h += 1.0
    with pytest.raises(RuntimeError, match=r"multiply: its input 0 \(.*\) was changed in place"):
        product.sum().backward()


def test_setitem_into_a_constant_buffer_records_the_value():
    v = tape.tensor(2.0, requires_grad=True)
    buffer = tape.zeros(3)
    buffer[1] = v * 3
    assert buffer.requires_grad and not buffer.is_leaf
    (buffer * buffer).sum().backward()
    assert v.grad == pytest.approx(2 * 6.0 * 3)


def test_in_place_that_cannot_cast_is_refused():
    counts = tape.tensor([1, 2])
    with pytest.raises(TypeError, match=r"add \(in place\): cannot write a float64 result into a int64"):
        counts += tape.tensor([0.5, 0.5])


# -- writes through views ----------------------------------------------------------------------------------
def _through_views(x, v, write):
    """exp(x), written through a view by ``write``, then a weighted sum that reads every element."""
    y = np.exp(x)
    write(y, v)
    return np.sum(y * np.arange(1.0, 1.0 + y.size).reshape(y.shape))


WRITES = {
    "y[1:, 0] += v": lambda y, v: y[1:, 0].__iadd__(v[:2]),
    "alias of a column *= v": lambda y, v: y[:, 1].__imul__(v),
    "view of a view": lambda y, v: y.T[1][::2].__iadd__(v[:2]),
    "reshape view": lambda y, v: y.reshape(-1)[2:5].__isub__(v),
    "y[...] = v broadcast": lambda y, v: y.__setitem__(Ellipsis, v[:2]),
    "alias += then y[i] = alias": lambda y, v: y.__setitem__(0, y[1] + v[:2]),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(WRITES))
def test_writes_through_views_are_recorded(name, dtype):
    write = WRITES[name]
    x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(3, 2)
    v = np.array([0.5, 1.5, 2.5], dtype=dtype)
    assert tape.gradcheck(lambda x, v: _through_views(x, v, write), x, v)


def test_writing_through_a_view_updates_the_base_history_for_later_use():
    x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = tape.tensor(10.0, requires_grad=True)
    y = x * 1.0
    alias = y[1:]
    alias += v  # y is now [x0, x1 + v, x2 + v]
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * y.data)
    assert v.grad == pytest.approx(2 * (y.data[1] + y.data[2]))


def test_writing_through_a_view_of_a_leaf_is_refused():
    w = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"a leaf tensor that requires grad .* \(through a view of it\)"):
        w[0:1] += tape.tensor([1.0], requires_grad=True)


def test_a_view_cut_before_its_base_changed_follows_the_base():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = np.exp(x)
    view = y[:1]
    y *= 3.0  # numpy: the view sees the new values; its history must say 3 exp(x)[:1] from now on
    (view * 2).sum().backward()
    np.testing.assert_allclose(x.grad, [6 * np.exp(1.0), 0.0])


def test_a_view_used_before_its_base_changed_is_caught():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = np.exp(x)
    view = y[:1]
    product = view * view  # saves the view's values
    y *= 3.0
    with pytest.raises(RuntimeError, match=r"multiply: its input 0 \(.*\) was changed in place"):
        product.sum().backward()


def test_a_reshape_that_copies_is_not_treated_as_a_view():
    x = tape.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * 1.0
    flat = y.T.reshape(-1)  # a copy: the transpose is not contiguous
    flat += 100.0
    assert y.data.max() < 100  # numpy did not write y
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.ones((2, 3)))


def test_numpy_gives_a_read_only_view_so_saved_values_cannot_change_behind_the_tape():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = np.exp(x)
    array = y.numpy()
    assert np.shares_memory(array, y.data)
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 5.0
    y += 1.0  # the tensor's own in-place op is recorded, and the view shows it, as numpy views do
    np.testing.assert_allclose(array, np.exp([1.0, 2.0]) + 1)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]))

"""ops/selection.py: take, take_along_axis, put_along_axis, sort, partition, choose, select, compress and
extract, checked against numpy's forward and against finite differences, in float64 and float32, with
repeated indices, every mode, ties, size-0 arrays, second derivatives and the error messages."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, distinct_arrays, nonempty_shapes, shapes

MODES = ["raise", "wrap", "clip"]
#: Shapes of index arrays, 0-d and size-0 included.
index_shapes = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4)


def axes_of(ndim: int, allow_none: bool = True) -> st.SearchStrategy[Any]:
    """An ``axis`` argument: None (when allowed) or an int, possibly negative."""
    choices = [st.none()] if allow_none else []
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
    return st.one_of(choices)


def index_values(size: int, mode: str) -> st.SearchStrategy[int]:
    """Indices numpy accepts for an axis of ``size``: in range (negative too) for 'raise', any otherwise."""
    if mode == "raise":
        return st.integers(-size, size - 1)
    return st.integers(-2 * size - 1, 2 * size + 1)


@st.composite
def index_arrays(draw: st.DrawFn, size: int, mode: str = "raise", shape: Any = None) -> np.ndarray:
    """Integer indices into an axis of ``size`` (repeats are likely); empty when the axis is empty."""
    shape = draw(index_shapes) if shape is None else shape
    if size == 0:
        shape = (0,) if not shape or 0 not in shape else shape
        return np.zeros(shape, dtype=np.intp)
    return draw(hnp.arrays(np.intp, shape, elements=index_values(size, mode)))


def second_derivative_matches_finite_differences(f: Any, x: np.ndarray, seed: int = 0) -> None:
    """``tape.hvp`` (a gradient of a gradient) against central differences of ``tape.grad`` along v."""
    v = np.random.default_rng(seed).standard_normal(x.shape)
    (hessian_v,) = tape.hvp(f, (x,), (v,))
    gradient = tape.grad(f)
    eps = 1e-6
    numeric = (gradient(x + eps * v) - gradient(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hessian_v, numeric, rtol=1e-5, atol=1e-6)


# -- take --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_take(dtype, mode, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    axis = data.draw(axes_of(x.ndim))
    size = x.size if axis is None else x.shape[axis]
    indices = data.draw(index_arrays(size, mode))
    check_op(lambda x: np.take(x, indices, axis=axis, mode=mode), x)
    check_op(lambda x: x.take(indices, axis=axis, mode=mode), x)  # the method is numpy's function
    if size:
        check_op(lambda x: np.take(x, int(indices.flat[0]) if indices.size else -1, axis, mode=mode), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_take_from_a_0d_array_along_axis_0_reads_it_as_1d(dtype):
    check_op(lambda x: np.take(x, [0, -1, 0], axis=0), np.array(1.5, dtype=dtype))
    check_op(lambda x: np.take(x, 0, axis=-1), np.array(-0.5, dtype=dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(size=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_take_with_repeated_indices_accumulates_their_cotangents(size, dtype, seed):
    rng = np.random.default_rng(seed)
    indices = rng.integers(-size, size, size=2 * size + 1)  # repeats are certain
    g = rng.standard_normal(indices.shape).astype(dtype)
    x = tape.tensor(rng.standard_normal(size), dtype=dtype, requires_grad=True)
    np.take(x, indices).backward(g)
    expected = np.bincount(indices % size, weights=g, minlength=size)  # summed in float64
    np.testing.assert_allclose(x.grad, expected, rtol=1e-5, atol=1e-5 if dtype == np.float32 else 1e-12)
    assert x.grad.dtype == dtype


def test_take_with_indices_given_as_a_tensor_or_a_list():
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    check_op(lambda x: np.take(x, tape.tensor([2, 0, 2]), axis=1), x)
    check_op(lambda x: np.take(x, [[5, 0], [1, 1]]), x)
    check_op(lambda x: np.take(x, [], axis=0), x)
    check_op(lambda x: np.take(x, [True, False], axis=0), x)  # numpy casts booleans to 1 and 0


@given(seed=st.integers(0, 2**32 - 1), axis=st.sampled_from([None, 0, -1]))
def test_take_second_derivative(seed, axis):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(3, 4))
    indices = rng.integers(-3, 3, size=5)
    second_derivative_matches_finite_differences(lambda x: np.sum(np.take(x, indices, axis=axis) ** 3), x)


# -- take_along_axis ---------------------------------------------------------------------------------------
@st.composite
def along_axis_indices(draw: st.DrawFn, shape: tuple[int, ...], axis: int | None) -> np.ndarray:
    """Indices for ``*_along_axis``: one axis per axis of ``shape``, each of length one or the same length,
    any length along ``axis`` (1-d into the flattened array for None)."""
    if axis is None:
        return draw(index_arrays(int(np.prod(shape)), shape=(draw(st.integers(0, 5)),)))
    axis %= len(shape)
    index_shape = tuple(
        draw(st.integers(0, 4)) if dim == axis else draw(st.sampled_from([1, size]))
        for dim, size in enumerate(shape)
    )
    if shape[axis] == 0:
        index_shape = (*index_shape[:axis], 0, *index_shape[axis + 1 :])
    return draw(index_arrays(shape[axis], shape=index_shape))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_take_along_axis(dtype, data):
    x = data.draw(arrays(data.draw(shapes.filter(len)), dtype))
    axis = data.draw(axes_of(x.ndim))
    indices = data.draw(along_axis_indices(x.shape, axis))
    check_op(lambda x: np.take_along_axis(x, indices, axis=axis), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_take_along_axis_of_argsort_and_argmax(dtype, data):
    x = data.draw(distinct_arrays(data.draw(nonempty_shapes.filter(len)), dtype))
    axis = data.draw(axes_of(x.ndim, allow_none=False))
    check_op(lambda x: np.take_along_axis(x, np.argsort(x, axis=axis), axis=axis), x)
    check_op(lambda x: np.take_along_axis(x, np.argmax(x, axis=axis, keepdims=True), axis), x)


# -- put_along_axis ----------------------------------------------------------------------------------------
@st.composite
def shapes_broadcasting_to(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shapes numpy broadcasts to ``shape`` when assigning: a suffix of it, some axes shrunk to one."""
    kept = shape[len(shape) - draw(st.integers(0, len(shape))) :]
    return tuple(1 if draw(st.booleans()) else size for size in kept)


def put_into_exp(indices: np.ndarray, axis: int | None):
    """``x -> exp(x)`` with ``values`` put along ``axis``: the target has a history (exp, whose VJP needs its
    output), and the function runs the same on arrays (numpy's answer) and on tensors."""

    def put(x, values):
        y = np.exp(x)
        np.put_along_axis(y, indices, values, axis)
        return y

    return put


def written_shape(shape: tuple[int, ...], indices: np.ndarray, axis: int | None) -> tuple[int, ...]:
    if axis is None:
        return indices.shape
    axis %= len(shape)
    return tuple(np.broadcast_shapes((*shape[:axis], 1, *shape[axis + 1 :]), indices.shape))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_put_along_axis_into_a_tensor_with_history(dtype, data):
    x = data.draw(arrays(data.draw(shapes.filter(len)), dtype))
    axis = data.draw(axes_of(x.ndim))
    indices = data.draw(along_axis_indices(x.shape, axis))
    values_shape = data.draw(shapes_broadcasting_to(written_shape(x.shape, indices, axis)))
    check_op(put_into_exp(indices, axis), x, data.draw(arrays(values_shape, dtype)))


def expected_put_gradients(x, indices, values, axis, g):
    """The gradients of ``put_into_exp`` written out element by element: each written position gives its
    cotangent to the value numpy wrote there last (C order of the broadcast index) and none to exp(x)."""
    axis %= x.ndim
    index_shape = tuple(np.broadcast_shapes((*x.shape[:axis], 1, *x.shape[axis + 1 :]), indices.shape))
    full_indices = np.broadcast_to(indices, index_shape)
    last_writer = {}
    for position in np.ndindex(index_shape):
        target = (*position[:axis], int(full_indices[position]) % x.shape[axis], *position[axis + 1 :])
        last_writer[target] = position
    x_grad = g * np.exp(x)
    values_grad = np.zeros(index_shape)
    for target, position in last_writer.items():
        x_grad[target] = 0.0
        values_grad[position] = g[target]
    # Sum the values' cotangents down to their own (broadcast) shape.
    extra = values_grad.ndim - values.ndim
    values_grad = values_grad.sum(axis=tuple(range(extra)))
    squeezed = tuple(k for k, n in enumerate(values.shape) if n == 1 and values_grad.shape[k] != 1)
    return x_grad, values_grad.sum(axis=squeezed, keepdims=True).reshape(values.shape)


@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_put_along_axis_gradients_match_a_hand_written_reference(data, seed):
    x_data = data.draw(arrays(data.draw(nonempty_shapes.filter(len)), np.float64))
    axis = data.draw(axes_of(x_data.ndim, allow_none=False))
    indices = data.draw(along_axis_indices(x_data.shape, axis))
    values_data = data.draw(
        arrays(data.draw(shapes_broadcasting_to(written_shape(x_data.shape, indices, axis))))
    )
    x = tape.tensor(x_data, requires_grad=True)
    values = tape.tensor(values_data, requires_grad=True)
    y = put_into_exp(indices, axis)(x, values)
    g = np.random.default_rng(seed).standard_normal(x_data.shape)
    y.backward(g)
    x_grad, values_grad = expected_put_gradients(x_data, indices, values_data, axis, g)
    np.testing.assert_allclose(x.grad, x_grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(values.grad, values_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_put_along_axis_with_repeated_indices_keeps_the_value_written_last(dtype):
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], dtype=dtype)
    indices = np.array([[2, 0, 2], [1, 1, 1]])
    values = np.arange(1.0, 7.0, dtype=dtype).reshape(2, 3)
    check_op(put_into_exp(indices, 1), x, values)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_put_along_axis_of_a_constant_gives_the_written_positions_no_gradient(dtype):
    x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(3, 2)
    indices = np.array([[1], [0], [1]])
    check_op(lambda x: put_into_exp(indices, 1)(x, 7.0), x)


def test_put_along_axis_into_a_tensor_without_history_records_the_values():
    target = tape.tensor(np.zeros((2, 3)))
    values = tape.tensor([[1.0], [2.0]], requires_grad=True)
    np.put_along_axis(target, np.array([[2], [0]]), values, axis=1)
    np.testing.assert_array_equal(target.data, [[0.0, 0.0, 1.0], [2.0, 0.0, 0.0]])
    assert target.requires_grad
    (target * np.arange(6.0).reshape(2, 3)).sum().backward()
    np.testing.assert_array_equal(values.grad, [[2.0], [3.0]])


def test_put_along_axis_into_plain_arrays_is_numpys():
    plain = np.zeros(4)
    assert np.put_along_axis(plain, tape.tensor([3, 1]), 2.0, axis=0) is None
    np.testing.assert_array_equal(plain, [0.0, 2.0, 0.0, 2.0])
    with tape.no_grad():
        np.put_along_axis(plain, np.array([0]), tape.tensor([5.0], requires_grad=True), axis=0)
    np.testing.assert_array_equal(plain, [5.0, 2.0, 0.0, 2.0])


def test_put_along_axis_returns_none_and_writes_the_tensors_own_buffer():
    y = tape.tensor(np.arange(4.0), requires_grad=True) * 1.0
    view = y[1:]
    assert np.put_along_axis(y, np.array([1, 3]), np.array([9.0, 8.0]), None) is None
    np.testing.assert_array_equal(view.data, [9.0, 2.0, 8.0])


@given(seed=st.integers(0, 2**32 - 1), axis=st.sampled_from([1, -1, None]))
def test_put_along_axis_second_derivative(seed, axis):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(3, 4))
    indices = rng.integers(-4, 4, size=(3, 2)) if axis is not None else rng.integers(0, 12, size=5)

    def f(x):
        y = np.exp(x)
        values = np.sin(x[:, :2]) if axis is not None else np.sin(np.reshape(x, -1)[:5])
        np.put_along_axis(y, indices, values, axis)
        return np.sum(y**3)

    second_derivative_matches_finite_differences(f, x, seed)


# -- sort and partition ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [None, "stable", "quicksort"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_sort_without_ties(dtype, kind, data):
    x = data.draw(distinct_arrays(data.draw(shapes), dtype))
    axis = data.draw(axes_of(x.ndim))
    check_op(lambda x: np.sort(x, axis=axis, kind=kind), x)
    if x.ndim:
        check_op(np.sort, x)  # along the last axis


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_sort_with_ties_sends_each_cotangent_where_numpys_stable_sort_put_the_element(dtype, data, seed):
    rng = np.random.default_rng(seed)
    x_data = rng.integers(0, 3, size=data.draw(nonempty_shapes.filter(len))).astype(dtype)  # many ties
    axis = data.draw(axes_of(x_data.ndim))
    x = tape.tensor(x_data, requires_grad=True)
    out = np.sort(x, axis=axis)
    np.testing.assert_array_equal(out.data, np.sort(x_data, axis=axis))
    g = rng.standard_normal(out.shape).astype(dtype)
    out.backward(g)
    # The element numpy's stable sort puts at output position i receives g[i].
    flat = x_data.reshape(-1) if axis is None else x_data
    along = 0 if axis is None else axis
    expected = np.zeros_like(flat)
    np.put_along_axis(expected, np.argsort(flat, axis=along, kind="stable"), g, axis=along)
    np.testing.assert_array_equal(x.grad, expected.reshape(x_data.shape))
    assert x.grad.dtype == dtype


def test_sort_of_nans_puts_them_last_with_their_cotangents():
    x = tape.tensor([np.nan, 1.0, -1.0, np.nan], requires_grad=True)
    out = np.sort(x)
    np.testing.assert_array_equal(out.data, np.sort(x.data))
    out.backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [3.0, 2.0, 1.0, 4.0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_partition_without_ties(dtype, data):
    x = data.draw(distinct_arrays(data.draw(nonempty_shapes.filter(len)), dtype))
    axis = data.draw(axes_of(x.ndim))
    size = x.size if axis is None else x.shape[axis]
    kth = data.draw(st.lists(st.integers(-size, size - 1), min_size=1, max_size=2))
    check_op(lambda x: np.partition(x, kth, axis=axis), x)


@given(seed=st.integers(0, 2**32 - 1))
def test_partition_with_ties_sends_every_cotangent_to_an_element_of_the_same_value(seed):
    rng = np.random.default_rng(seed)
    x_data = rng.integers(0, 3, size=(3, 7)).astype(np.float64)
    x = tape.tensor(x_data, requires_grad=True)
    out = np.partition(x, 3, axis=1)
    np.testing.assert_array_equal(out.data, np.partition(x_data, 3, axis=1))
    out.backward(np.arange(1.0, 22.0).reshape(3, 7))  # distinct cotangents show where each one went
    for row in range(3):
        received = {float(value) for value in x.grad[row]}
        assert received == set(np.arange(1.0, 8.0) + 7 * row)  # a permutation of the row's cotangents
        for position, value in enumerate(out.data[row]):
            source = np.flatnonzero(x.grad[row] == 1.0 + position + 7 * row)
            assert x_data[row, source] == value


def test_sort_second_derivative():
    x = np.array([[0.3, -1.2, 0.8], [2.0, 0.1, -0.4]])
    weights = np.array([1.0, -2.0, 0.5])
    second_derivative_matches_finite_differences(lambda x: np.sum(weights * np.sort(x, axis=1) ** 3), x)


# -- choose and select -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), count=st.integers(1, 3))
def test_choose(dtype, mode, count, data):
    index_shape, *choice_shapes = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=count + 1, max_dims=3, max_side=3)
    ).input_shapes
    low, high = (0, count - 1) if mode == "raise" else (-2 * count, 2 * count)
    chosen = data.draw(hnp.arrays(np.intp, index_shape, elements=st.integers(low, high)))
    choices = [data.draw(arrays(shape, dtype)) for shape in choice_shapes]
    check_op(lambda *choices: np.choose(chosen, list(choices), mode=mode), *choices)
    # Plain arrays among the choices take no part in the gradient.
    check_op(lambda first: np.choose(chosen, [first, *choices[1:]], mode=mode), choices[0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_choose_from_one_stacked_array_reads_its_first_axis(dtype):
    stacked = np.linspace(-1.0, 1.0, 12, dtype=dtype).reshape(3, 4)
    check_op(lambda stacked: np.choose([2, 0, 1, 2], stacked), stacked)
    check_op(lambda stacked: np.choose(tape.tensor([[1], [0]]), stacked, mode="clip"), stacked)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), count=st.integers(1, 3))
def test_select(dtype, count, data):
    *shapes_drawn, default_shape = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2 * count + 1, max_dims=3, max_side=3)
    ).input_shapes
    conditions = [data.draw(hnp.arrays(np.bool_, shape)) for shape in shapes_drawn[:count]]
    choices = [data.draw(arrays(shape, dtype)) for shape in shapes_drawn[count:]]
    default = data.draw(arrays(default_shape, dtype))
    check_op(lambda default, *choices: np.select(conditions, list(choices), default), default, *choices)
    check_op(lambda *choices: np.select(conditions, list(choices)), *choices)


# -- compress and extract ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), extra_false=st.integers(0, 2))
def test_compress(dtype, data, extra_false):
    x = data.draw(arrays(data.draw(shapes), dtype))
    axis = data.draw(axes_of(x.ndim))
    size = x.size if axis is None else x.shape[axis]
    # numpy reads a shorter condition as false beyond its end, and takes a longer one whose extra entries
    # are false.
    condition = data.draw(hnp.arrays(np.bool_, data.draw(st.integers(0, size))))
    longer = np.concatenate([np.ones(size, dtype=bool), np.zeros(extra_false, dtype=bool)])
    check_op(lambda x: np.compress(condition, x, axis=axis), x)
    check_op(lambda x: np.compress(longer, x, axis=axis), x)


def test_compress_method_takes_the_condition_first():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(
        tape.tensor(x).compress([True, False, True]).data, x.compress([True, False, True])
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_extract(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    condition = data.draw(hnp.arrays(np.bool_, data.draw(shapes.filter(lambda s: int(np.prod(s)) <= x.size))))
    check_op(lambda x: np.extract(condition, x), x)
    check_op(lambda x: np.extract(x > 0, x), x)  # a condition made from x itself


# -- errors ------------------------------------------------------------------------------------------------
def test_take_refuses_an_index_out_of_bounds_naming_the_index_and_the_axis_size():
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(IndexError, match=r"^take: index 3 is out of bounds for axis 1 with size 3$"):
        np.take(x, [0, 3], axis=1)
    with pytest.raises(IndexError, match=r"^take: index -3 is out of bounds for axis 0 with size 2$"):
        np.take(x, -3, axis=-2)
    with pytest.raises(
        IndexError, match=r"^take: index 6 is out of bounds for the flattened array with size 6"
    ):
        x.take(6)
    with pytest.raises(IndexError, match=r"^take: cannot take index 0 from axis 1, which has size 0"):
        np.take(tape.tensor(np.ones((2, 0))), [0], axis=1, mode="wrap")


def test_take_refuses_a_bad_mode_bad_indices_and_a_bad_axis():
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"^take: mode must be one of 'raise', 'wrap' or 'clip', got 'wrp'"):
        np.take(x, 0, mode="wrp")
    with pytest.raises(TypeError, match=r"^take: indices must be integers, got an array of dtype float64"):
        np.take(x, [0.0, 1.0])
    with pytest.raises(
        np.exceptions.AxisError, match=r"^take: axis 2 is out of bounds for array of dimension 2"
    ):
        np.take(x, 0, axis=2)


def test_take_along_axis_errors_name_the_op():
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(
        IndexError, match=r"^take_along_axis: index 3 is out of bounds for axis 1 with size 3$"
    ):
        np.take_along_axis(x, np.array([[0], [3]]), axis=1)
    with pytest.raises(
        ValueError, match=r"^take_along_axis: indices and arr must have the same number of dim"
    ):
        np.take_along_axis(x, np.array([0, 1]), axis=1)
    with pytest.raises(ValueError, match=r"^take_along_axis: with axis=None, indices must be 1-d"):
        np.take_along_axis(x, np.array([[0]]), axis=None)
    with pytest.raises(IndexError, match=r"^take_along_axis: indices must be integers"):
        np.take_along_axis(x, np.array([[0.0]]), axis=1)
    with pytest.raises(IndexError, match=r"^take_along_axis: indices of shape \(3, 1\) do not broadcast"):
        np.take_along_axis(x, np.zeros((3, 1), dtype=int), axis=1)


def test_put_along_axis_errors_name_the_op():
    y = tape.tensor(np.ones((2, 3)), requires_grad=True) * 1.0
    with pytest.raises(
        IndexError, match=r"^put_along_axis: index -4 is out of bounds for axis 1 with size 3$"
    ):
        np.put_along_axis(y, np.array([[-4], [0]]), 1.0, axis=1)
    with pytest.raises(
        IndexError, match=r"^put_along_axis: index 6 is out of bounds for the flattened array"
    ):
        np.put_along_axis(y, np.array([6]), 1.0, axis=None)
    with pytest.raises(
        ValueError,
        match=r"^shape mismatch: value array of shape \(4,\) could not be broadcast.*\nput_along_axis: array",
    ):
        np.put_along_axis(y, np.array([[0], [1]]), np.ones(4), axis=1)
    leaf = tape.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^put_along_axis \(in place\): a leaf tensor that requires grad"):
        np.put_along_axis(leaf, np.array([0]), 2.0, axis=0)
    values = tape.tensor([2.0], requires_grad=True)
    with pytest.raises(
        TypeError, match=r"^put_along_axis: cannot record writing values that require grad into"
    ):
        np.put_along_axis(np.ones(3), np.array([0]), values, axis=0)


def test_choose_errors_name_the_op_the_index_and_the_number_of_choices():
    x = tape.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"^choose: index 2 is out of bounds for 2 choices$"):
        np.choose([0, 2, 1], [x, x])
    with pytest.raises(ValueError, match=r"^choose: index -1 is out of bounds for 2 choices$"):
        np.choose([0, -1, 1], [x, x])
    with pytest.raises(ValueError, match=r"^choose: mode must be one of"):
        np.choose([0, 1, 1], [x, x], mode="bad")


def test_compress_and_extract_refuse_a_condition_longer_than_the_array_naming_both_lengths():
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(
        IndexError, match=r"^compress: condition of length 4 selects index 3, but axis 1 has length 3"
    ):
        np.compress([True, False, False, True], x, axis=1)
    with pytest.raises(
        IndexError, match=r"condition of length 7 selects index 6, but the flattened array has len"
    ):
        np.compress([False] * 6 + [True], x)
    with pytest.raises(ValueError, match=r"^compress: condition must be 1-d, got shape \(1, 2\)"):
        np.compress([[True, False]], x, axis=0)
    with pytest.raises(
        IndexError, match=r"^extract: condition of size 8 selects index 7, but arr has size 6"
    ):
        np.extract(np.arange(8) == 7, x)


def test_sort_and_select_errors_name_the_op():
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(
        np.exceptions.AxisError, match=r"^sort: axis 2 is out of bounds for array of dimension 2"
    ):
        np.sort(x, axis=2)
    with pytest.raises(ValueError, match=r"^sort: kind must be one of"):
        np.sort(x, kind="bubble")
    with pytest.raises(TypeError, match=r"^numpy\.sort: order= .* is not supported"):
        np.sort(x, order="f0")
    with pytest.raises(ValueError, match=r"^list of cases must be same length") as caught:
        np.select([x.data > 0], [x, x])
    assert caught.value.__notes__ == ["select: numpy's own check of condlist and choicelist failed"]


def test_no_warnings_on_empty_selections():
    x = tape.tensor(np.ones((0, 3)), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.take(x, [], axis=0, mode="wrap").sum().backward()
        np.sort(x, axis=0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((0, 3)))

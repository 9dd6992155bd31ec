"""ops/indexing.py: reading ``t[index]`` and writing ``t[index] = v`` with basic, integer-array and boolean
indices, checked against numpy's forward and against finite differences, in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, distinct_arrays, nonempty_shapes, shapes

#: Shapes with at least one axis and no empty one, so that integer indices exist.
indexable_shapes = nonempty_shapes.filter(len)


def integer_indices(shape: tuple[int, ...]) -> st.SearchStrategy[tuple[np.ndarray, ...]]:
    """One integer array per axis (negative and repeated entries included), as numpy's fancy indexing."""
    return hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=0, max_dims=2, max_side=5))


@st.composite
def shapes_broadcasting_to(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shapes numpy broadcasts to ``shape`` when assigning: a suffix of it, some axes shrunk to one."""
    kept = shape[len(shape) - draw(st.integers(0, len(shape))) :]
    return tuple(1 if draw(st.booleans()) else size for size in kept)


# -- reading -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_basic_index(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    index = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    check_op(lambda x: x[index], x)


def test_basic_index_is_a_view_and_advanced_index_a_copy_as_in_numpy():
    x = tape.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert np.shares_memory(x[1:, ::2].data, x.data)
    assert not np.shares_memory(x[[1, 0]].data, x.data)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_integer_array_index(dtype, data):
    x = data.draw(arrays(data.draw(indexable_shapes), dtype))
    index = data.draw(integer_indices(x.shape))
    check_op(lambda x: x[index], x)
    check_op(lambda x: x[index[0]], x)  # along the first axis only
    check_op(lambda x: x[..., index[-1]], x)  # along the last axis, after a slice


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_boolean_mask(dtype, data):
    x = data.draw(arrays(data.draw(shapes.filter(len)), dtype))
    mask = data.draw(hnp.arrays(np.bool_, x.shape))
    first_axis_mask = data.draw(hnp.arrays(np.bool_, x.shape[:1]))
    check_op(lambda x: x[mask], x)
    check_op(lambda x: x[first_axis_mask], x)
    check_op(lambda x: x[first_axis_mask, ...], x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(size=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_repeated_indices_accumulate_their_cotangents(size, dtype, seed):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, size, size=2 * size)  # repeats are certain
    g = rng.standard_normal(index.shape).astype(dtype)
    x = tape.tensor(rng.standard_normal(size), dtype=dtype, requires_grad=True)
    x[index].backward(g)
    expected = np.bincount(index, weights=g, minlength=size)  # summed in float64
    np.testing.assert_allclose(x.grad, expected, rtol=1e-5, atol=1e-5 if dtype == np.float32 else 1e-12)
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_index_given_as_a_tensor(dtype, data):
    x = data.draw(arrays(data.draw(indexable_shapes), dtype))
    index = data.draw(integer_indices(x.shape))
    mask = data.draw(hnp.arrays(np.bool_, x.shape))
    check_op(lambda x: x[tape.tensor(index[0])], x)
    check_op(lambda x: x[tuple(tape.tensor(i) for i in index)], x)
    check_op(lambda x: x[tape.tensor(mask)], x)
    check_op(lambda x: x[[tape.tensor(0), tape.tensor(-1)]], x)
    check_op(lambda x: x[x > 0], x)  # a boolean tensor made from x itself


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_index_computed_by_argmax(dtype, data):
    x = data.draw(distinct_arrays(data.draw(indexable_shapes), dtype))
    check_op(lambda x: x.reshape(-1)[np.argmax(x)], x)


# -- writing -----------------------------------------------------------------------------------------------
def assign(index: object):
    """``x -> exp(x)`` with ``value`` written at ``index``: exp's VJP needs its output, which the write
    overwrites, so this also checks that the write keeps what earlier records saved."""

    def written(x, value):
        y = np.exp(x) if np.ndim(x) else np.copy(np.exp(x))  # numpy's exp of a 0-d array is a scalar
        y[index] = value
        return y

    return written


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_setitem_with_a_basic_index(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    index = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    slot_shape = x[index].shape
    value_shape = data.draw(shapes_broadcasting_to(slot_shape))
    check_op(assign(index), x, data.draw(arrays(value_shape, dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_setitem_with_integer_arrays_where_the_last_of_repeated_writes_wins(dtype, data):
    x = data.draw(arrays(data.draw(indexable_shapes), dtype))
    index = data.draw(integer_indices(x.shape))
    value_shape = data.draw(shapes_broadcasting_to(x[index].shape))
    check_op(assign(index), x, data.draw(arrays(value_shape, dtype)))
    check_op(assign(index[0]), x, data.draw(arrays(x[index[0]].shape, dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_setitem_with_repeated_indices_gives_the_cotangent_to_the_value_written_last(dtype):
    x = tape.tensor([0.5, -1.0, 2.0], dtype=dtype, requires_grad=True)
    value = tape.tensor([1.0, 2.0, 3.0, 4.0], dtype=dtype, requires_grad=True)
    y = x * 1.0
    y[[2, 0, 2, 0]] = value
    expected = x.data.copy()
    expected[[2, 0, 2, 0]] = value.data
    np.testing.assert_array_equal(y.data, expected)
    g = np.array([10.0, 20.0, 30.0], dtype=dtype)
    y.backward(g)
    np.testing.assert_array_equal(x.grad, [0.0, 20.0, 0.0])
    np.testing.assert_array_equal(value.grad, [0.0, 0.0, 30.0, 10.0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_setitem_with_a_boolean_mask(dtype, data):
    x = data.draw(arrays(data.draw(shapes.filter(len)), dtype))
    mask = data.draw(hnp.arrays(np.bool_, x.shape))
    check_op(assign(mask), x, data.draw(arrays(x[mask].shape, dtype)))
    check_op(assign(mask), x, data.draw(arrays((), dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("index", [0, (slice(None), 1), [1, 0, 1], np.array([True, False])], ids=str)
def test_setitem_with_a_value_that_has_extra_leading_axes_of_length_one(index, dtype):
    x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(2, 3)
    slot_shape = x[index].shape
    check_op(
        assign(index), x, np.linspace(0.5, 1.5, int(np.prod(slot_shape)), dtype=dtype).reshape(1, *slot_shape)
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_setitem_of_a_constant_value_gives_the_written_positions_no_gradient(dtype, data):
    x = data.draw(arrays(data.draw(indexable_shapes), dtype))
    index = data.draw(integer_indices(x.shape))
    constant = data.draw(arrays(x[index].shape, dtype))
    check_op(lambda x: assign(index)(x, constant), x)


@given(data=st.data())
def test_setitem_of_float64_into_float32_casts_and_gives_each_its_own_gradient(data):
    x = data.draw(arrays(data.draw(indexable_shapes), np.float32))
    index = data.draw(integer_indices(x.shape))
    check_op(assign(index), x, data.draw(arrays(x[index].shape, np.float64)), keeps_dtype=False)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_setitem_with_an_index_given_as_a_tensor(dtype):
    x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(2, 3)
    value = np.array([0.25, 0.75], dtype=dtype)

    def written(x, value):
        y = np.exp(x)
        y[tape.tensor([1, 0]), tape.tensor([2, 2])] = value
        return y

    leaves = [tape.tensor(x, requires_grad=True), tape.tensor(value, requires_grad=True)]
    expected = np.exp(x)
    expected[[1, 0], [2, 2]] = value
    np.testing.assert_array_equal(written(*leaves).data, expected)
    assert tape.gradcheck(written, x, value)


# -- augmented assignment through an index -----------------------------------------------------------------
# ``y[index] += v`` is ``tmp = y[index]; tmp += v; y[index] = tmp``. With an advanced index ``tmp`` is a copy;
# with a basic index it is a view, and ``tmp += v`` rewrites y's history through it.


def add_at(index: object):
    def updated(x, value):
        y = np.exp(x)
        y[index] += value
        return y

    return updated


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("index", [(slice(1, None), 0), 1, Ellipsis], ids=["slices", "int", "ellipsis"])
def test_augmented_assignment_with_a_basic_index(index, dtype):
    x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(3, 2)
    check_op(add_at(index), x, np.linspace(0.5, 1.5, x[index].size, dtype=dtype).reshape(x[index].shape))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    "index", [[2, 0], [0, 2, 0], np.array([True, False, True])], ids=["integers", "repeated", "mask"]
)
def test_augmented_assignment_with_an_advanced_index(index, dtype):
    # With repeated indices, numpy keeps the last write: y[0] becomes exp(x[0]) + value[2].
    x = np.linspace(-1.0, 1.0, 3, dtype=dtype)
    check_op(add_at(index), x, np.linspace(0.5, 1.5, x[index].size, dtype=dtype))


def test_a_write_through_a_view_is_never_taken_for_the_recorded_value():
    x_data = np.array([0.3, -0.2, 0.5])
    x = tape.tensor(x_data, requires_grad=True)
    y = np.exp(x)
    view = y[:2]
    view += 2.0  # y's buffer changes under the exp record
    y += 1.0
    try:
        y.sum().backward()
    except RuntimeError:
        return  # refusing is right too
    np.testing.assert_allclose(x.grad, np.exp(x_data))


# -- errors ------------------------------------------------------------------------------------------------
def test_an_index_out_of_bounds_is_refused():
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 0 with size 2"):
        x[5]
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 0 with size 2"):
        x[[0, 5]]


def test_a_mask_of_the_wrong_shape_is_refused():
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(IndexError, match="boolean index did not match indexed array along axis 0"):
        x[np.array([True, False, True])]


def test_setitem_of_a_value_that_does_not_fit_is_refused_naming_the_op():
    y = tape.tensor(np.ones((2, 3)), requires_grad=True) * 1.0
    # numpy's own error; the op and what it was given are in a note (pytest matches notes too)
    message = r"^could not broadcast input array from shape \(4,\).*\nsetitem: array arguments of shapes"
    with pytest.raises(ValueError, match=message):
        y[0] = np.ones(4)


def test_setitem_into_a_leaf_that_requires_grad_is_refused():
    x = tape.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^setitem \(in place\): a leaf tensor that requires grad"):
        x[0] = 2.0

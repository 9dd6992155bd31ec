"""ops/shape.py: reshape, ravel, transpose, swapaxes, moveaxis, expand_dims, squeeze, broadcast_to and
where, as functions and as methods, checked against numpy's forward and against finite differences, in
float64 and float32."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, broadcastable_shapes, shapes


def same_size_shapes(shape: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes with as many elements as ``shape`` (with a -1 where numpy can infer it)."""
    size = int(np.prod(shape))
    candidates = [(size,), (-1,), shape[::-1], (1, *shape), (*shape, 1), ()]
    return st.sampled_from([c for c in candidates if c != () or size == 1])


def signed(axes: tuple[int, ...], ndim: int, flips: list[bool]) -> tuple[int, ...]:
    """``axes`` with some of them written as negative axes."""
    return tuple(a - ndim if flip else a for a, flip in zip(axes, flips, strict=False))


# -- reshape and ravel -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
@given(data=st.data())
def test_reshape(order, dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    new_shape = data.draw(same_size_shapes(x.shape))
    check_op(lambda x: np.reshape(x, new_shape, order=order), x)
    check_op(lambda x: np.reshape(x, shape=new_shape, order=order), x)
    check_op(lambda x: x.reshape(new_shape, order=order), x)
    if new_shape:
        check_op(lambda x: x.reshape(*new_shape, order=order), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(6,), (3, 2), (1, 6, 1)], ids=str)
def test_reshape_method_takes_the_shape_as_arguments_or_as_a_tuple(shape, dtype):
    x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(shape)
    check_op(lambda x: x.reshape(2, 3), x)
    check_op(lambda x: x.reshape((2, 3)), x)
    check_op(lambda x: x.reshape([3, -1]), x)
    check_op(lambda x: x.reshape(np.int64(6)), x)


def test_reshape_of_contiguous_data_is_a_view_as_in_numpy():
    x = tape.tensor(np.arange(6.0), requires_grad=True)
    assert np.shares_memory(x.reshape(2, 3).data, x.data)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
@given(data=st.data())
def test_ravel(order, dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    check_op(lambda x: np.ravel(x, order=order), x)
    check_op(lambda x: np.ravel(x, order), x)


# -- transpose, swapaxes, moveaxis -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_transpose(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    permutation = data.draw(st.permutations(range(x.ndim)))
    axes = signed(tuple(permutation), x.ndim, data.draw(st.lists(st.booleans(), min_size=x.ndim)))
    check_op(np.transpose, x)
    check_op(lambda x: np.transpose(x, axes), x)
    check_op(lambda x: x.transpose(), x)
    check_op(lambda x: x.transpose(axes), x)
    check_op(lambda x: x.transpose(*axes), x)
    check_op(lambda x: x.T, x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_matrix_transpose(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=0, max_side=3))
    check_op(lambda x: x.mT, data.draw(arrays(shape, dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_swapaxes(dtype, data):
    x = data.draw(arrays(data.draw(shapes.filter(len)), dtype))
    axis1, axis2 = data.draw(st.tuples(*[st.integers(-x.ndim, x.ndim - 1)] * 2))
    check_op(lambda x: np.swapaxes(x, axis1, axis2), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_moveaxis(dtype, data):
    x = data.draw(arrays(data.draw(shapes.filter(len)), dtype))
    count = data.draw(st.integers(1, x.ndim))
    source = data.draw(hnp.valid_tuple_axes(x.ndim, min_size=count, max_size=count))
    destination = data.draw(hnp.valid_tuple_axes(x.ndim, min_size=count, max_size=count))
    check_op(lambda x: np.moveaxis(x, source, destination), x)
    check_op(lambda x: np.moveaxis(x, source[0], destination[0]), x)


# -- axes added, removed, broadcast ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_expand_dims(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    count = data.draw(st.integers(1, 2))
    axis = data.draw(hnp.valid_tuple_axes(x.ndim + count, min_size=count, max_size=count))
    check_op(lambda x: np.expand_dims(x, axis), x)
    single = data.draw(st.integers(-x.ndim - 1, x.ndim))
    check_op(lambda x: np.expand_dims(x, single), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_squeeze(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=2))
    x = data.draw(arrays(shape, dtype))
    ones = [a for a, size in enumerate(shape) if size == 1]
    axis = tuple(data.draw(st.lists(st.sampled_from(ones), unique=True))) if ones else ()
    axis = signed(axis, x.ndim, data.draw(st.lists(st.booleans(), min_size=len(axis))))
    check_op(np.squeeze, x)
    check_op(lambda x: np.squeeze(x, axis=axis), x)
    check_op(lambda x: x.squeeze(axis), x)
    if axis:
        check_op(lambda x: x.squeeze(axis[0]), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_broadcast_to(dtype, data):
    x_shape, other_shape = data.draw(broadcastable_shapes(2))
    target = np.broadcast_shapes(x_shape, other_shape)
    check_op(lambda x: np.broadcast_to(x, target), data.draw(arrays(x_shape, dtype)))


# -- where -------------------------------------------------------------------------------------------------
def conditions(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.bool_, shape)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_where_with_three_arguments_that_broadcast(dtype, data):
    condition_shape, x_shape, y_shape = data.draw(broadcastable_shapes(3))
    condition = data.draw(conditions(condition_shape))
    x = data.draw(arrays(x_shape, dtype))
    y = data.draw(arrays(y_shape, dtype))
    check_op(lambda x, y: np.where(condition, x, y), x, y)
    check_op(lambda x: np.where(condition, x, 0.5), x)
    check_op(lambda y: np.where(condition, 0.5, y), y)


@given(data=st.data())
def test_where_between_float32_and_float64_gives_float64_and_each_its_own_gradient(data):
    condition_shape, x_shape, y_shape = data.draw(broadcastable_shapes(3))
    condition = data.draw(conditions(condition_shape))
    check_op(
        lambda x, y: np.where(condition, x, y),
        data.draw(arrays(x_shape, np.float32)),
        data.draw(arrays(y_shape, np.float64)),
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_where_with_a_condition_computed_from_a_tensor(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype, away_from=0.0))
    check_op(lambda x: np.where(x > 0, x, 0.1 * x), x)  # leaky relu: the condition is a boolean tensor


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_where_with_one_argument_gives_the_indices(dtype, data):
    x = data.draw(arrays(data.draw(shapes.filter(len)), dtype, -1.0, 1.0))  # numpy refuses 0-d here
    t = tape.tensor(x, requires_grad=True)
    indices = np.where(t > 0)
    expected = np.where(x > 0)
    assert isinstance(indices, tuple) and len(indices) == len(expected)
    for index, numpy_index in zip(indices, expected, strict=True):
        assert isinstance(index, tape.Tensor) and not index.requires_grad
        assert index.dtype == numpy_index.dtype
        np.testing.assert_array_equal(index.data, numpy_index)
    np.testing.assert_array_equal(t[indices].data, x[expected])


def test_where_with_two_arguments_is_refused():
    x = tape.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(
        TypeError, match=r"numpy\.where: give either only a condition, or a condition, x and y"
    ):
        np.where(x > 0, x)


def test_where_refuses_a_condition_that_requires_grad():
    x = tape.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"^where: argument 0 requires grad but where has no gradient"):
        np.where(x, x, 0.0)


# -- views ------------------------------------------------------------------------------------------------
VIEWS = {
    "reshape": lambda y: np.reshape(y, -1),
    "ravel": np.ravel,
    "transpose": np.transpose,
    "T": lambda y: y.T,
    "mT": lambda y: y.mT,
    "swapaxes": lambda y: np.swapaxes(y, 0, 1),
    "moveaxis": lambda y: np.moveaxis(y, 0, -1),
    "expand_dims": lambda y: np.expand_dims(y, 0),
    "squeeze": lambda y: np.squeeze(y[:1]),
}


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_change_through_a_view_rewrites_the_base(view):
    x_data = np.array([[0.3, -0.2], [0.5, 0.1]])
    x = tape.tensor(x_data, requires_grad=True)
    v = tape.tensor(2.0, requires_grad=True)
    y = np.exp(x)  # exp's VJP reads its output, so it must still see exp(x) after the change below
    alias = view(y)
    assert np.shares_memory(alias.data, y.data)  # numpy gives a view here...
    alias *= v  # ...so this changes y, as in numpy, and y's history with it
    y_data = np.exp(x_data)
    alias_data = view(y_data)
    alias_data *= 2.0
    np.testing.assert_array_equal(y.data, y_data)
    weights = np.array([[1.0, 2.0], [3.0, 4.0]])
    (y * weights).sum().backward()
    scale = np.where(y_data != np.exp(x_data), 2.0, 1.0)  # where the view reached, y is 2 exp(x)
    np.testing.assert_allclose(x.grad, weights * scale * np.exp(x_data))
    assert v.grad == pytest.approx(np.sum(np.where(scale == 2.0, weights * np.exp(x_data), 0.0)))


# -- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        # numpy's own errors; the op and what it was given are in a note (pytest matches notes too)
        (
            lambda x: np.reshape(x, (4,)),
            ValueError,
            r"^cannot reshape array of size 6 into shape \(4,\)\nreshape: array arguments of shapes \(2, 3\)",
        ),
        (
            lambda x: x.reshape(4, 2),
            ValueError,
            r"^cannot reshape array of size 6 into shape \(4, ?2\)\nreshape: array arguments",
        ),
        (lambda x: np.transpose(x, (0, 0)), ValueError, r"^repeated axis in transpose\ntranspose: array"),
        (
            lambda x: np.swapaxes(x, 0, 2),
            np.exceptions.AxisError,
            r"^.*axis 2 is out of bounds.*\nswapaxes: array",
        ),
        (
            lambda x: np.moveaxis(x, 0, 5),
            np.exceptions.AxisError,
            r"^.*axis 5 is out of bounds.*\nmoveaxis: array",
        ),
        (
            lambda x: np.expand_dims(x, 4),
            np.exceptions.AxisError,
            r"^axis 4 is out of bounds.*\nexpand_dims: ",
        ),
        (lambda x: np.squeeze(x, 0), ValueError, r"^cannot select an axis to squeeze out.*\nsqueeze: array"),
        (
            lambda x: np.broadcast_to(x, (3, 3)),
            ValueError,
            r"^operands could not be broadcast.*\nbroadcast_to: ",
        ),
    ],
    ids=[
        "reshape",
        "reshape method",
        "transpose",
        "swapaxes",
        "moveaxis",
        "expand_dims",
        "squeeze",
        "broadcast",
    ],
)
def test_impossible_shapes_are_refused_naming_the_op(call: Any, error: type, message: str):
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(error, match=message):
        call(x)


# -- meshgrid ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize(("sparse", "copy"), [(False, True), (True, True), (False, False)])
@pytest.mark.parametrize("count", [1, 2, 3])
@given(seed=st.integers(0, 2**32 - 1))
def test_meshgrid(count, sparse, copy, indexing, dtype, seed):
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(size).astype(dtype) for size in (3, 2, 4)[:count]]
    for k in range(count):
        check_op(
            lambda *xs, k=k: np.meshgrid(*xs, sparse=sparse, copy=copy, indexing=indexing)[k] * (k + 1),
            *inputs,
        )


def test_meshgrid_second_derivative_and_errors():
    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.3])
    assert tape.gradgradcheck(lambda x, y: np.prod(np.stack(np.meshgrid(x, y)), axis=0) ** 2, x, y)
    with pytest.raises(ValueError, match=r"^meshgrid: indexing must be 'xy' or 'ij', got 'yx'"):
        np.meshgrid(tape.tensor(x), indexing="yx")


def test_meshgrid_matches_torch():
    torch = pytest.importorskip("torch")
    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.3])
    for indexing in ("xy", "ij"):
        ours = np.meshgrid(tape.tensor(x), tape.tensor(y), indexing=indexing)
        theirs = torch.meshgrid(torch.tensor(x), torch.tensor(y), indexing=indexing)
        for grid, reference in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(grid.data, reference.numpy())

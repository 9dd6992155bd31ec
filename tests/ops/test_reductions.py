"""ops/reductions.py: sum, mean, prod, max and min (functions, methods and ufunc.reduce) over every kind of
axis argument, checked against numpy's forward and against finite differences, in float64 and float32."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib.array_utils import normalize_axis_tuple

import tape
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, distinct_arrays, nonempty_shapes, shapes


def axes(ndim: int) -> st.SearchStrategy[Any]:
    """``axis`` arguments for an array of ``ndim`` axes: None, an int (maybe negative) or a tuple."""
    choices = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
    return st.one_of(choices)


def reduced_count(shape: tuple[int, ...], axis: Any) -> int:
    """How many elements each output element of a reduction over ``axis`` combines."""
    if axis is None:
        return int(np.prod(shape))
    axis = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axis]))


def away_from_zero(shape: tuple[int, ...], dtype: Any) -> st.SearchStrategy[np.ndarray]:
    """Values in ±[0.5, 1.5]: products of many of them stay near 1 in size."""
    return arrays(shape, dtype, -1.5, 1.5, away_from=0.0, margin=0.5)


SUMS = {
    "np.sum": lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    "sum method": lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims),
    "np.mean": lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
    "mean method": lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims),
}
EXTREMA = {
    "np.max": lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
    "np.amax": lambda x, axis, keepdims: np.amax(x, axis=axis, keepdims=keepdims),
    "max method": lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims),
    "np.min": lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
    "np.amin": lambda x, axis, keepdims: np.amin(x, axis=axis, keepdims=keepdims),
    "min method": lambda x, axis, keepdims: x.min(axis=axis, keepdims=keepdims),
}


# Means over no elements are NaN, with numpy's warning: their (empty) gradients are still checked.
@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduce", SUMS.values(), ids=SUMS.keys())
@given(data=st.data(), keepdims=st.booleans())
def test_sum_and_mean(reduce, dtype, data, keepdims):
    x = data.draw(arrays(data.draw(shapes), dtype))
    axis = data.draw(axes(x.ndim))
    check_op(lambda x: reduce(x, axis, keepdims), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), keepdims=st.booleans())
def test_prod(dtype, data, keepdims):
    x = data.draw(away_from_zero(data.draw(shapes), dtype))
    axis = data.draw(axes(x.ndim))
    check_op(lambda x: np.prod(x, axis=axis, keepdims=keepdims), x)
    check_op(lambda x: x.prod(axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), keepdims=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_prod_of_inputs_with_zeros(dtype, data, keepdims, seed):
    x = data.draw(away_from_zero(data.draw(nonempty_shapes), dtype))
    x[np.random.default_rng(seed).random(x.shape) < 0.4] = 0  # often one zero in a product, often more
    axis = data.draw(axes(x.ndim))
    check_op(lambda x: np.prod(x, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_prod_gradient_with_zeros_is_the_product_of_the_others(dtype):
    rows = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.5, 2.0, -3.0], [5.0, 0.0, 1.0]], dtype=dtype)
    x = tape.tensor(rows, requires_grad=True)
    g = np.array([1.0, 2.0, -1.0, 0.5], dtype=dtype)
    np.prod(x, axis=1).backward(g)
    expected = [[g[i] * np.prod(np.delete(rows[i], j)) for j in range(3)] for i in range(4)]
    np.testing.assert_allclose(x.grad, expected)
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduce", EXTREMA.values(), ids=EXTREMA.keys())
@given(data=st.data(), keepdims=st.booleans())
def test_max_and_min_without_ties(reduce, dtype, data, keepdims):
    x = data.draw(distinct_arrays(data.draw(nonempty_shapes), dtype))
    axis = data.draw(axes(x.ndim))
    check_op(lambda x: reduce(x, axis, keepdims), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("name", ["sum", "prod", "max", "min", "amax", "amin"])
def test_reduction_of_a_0d_tensor_along_axis_0_or_minus_1(name, axis, dtype):
    # numpy accepts these axes on a 0-d array (not a tuple of them, and not for mean) and reduces nothing.
    reduce = getattr(np, name)
    check_op(lambda x: reduce(x, axis=axis), np.array(-1.5, dtype=dtype))
    if hasattr(np.ndarray, name):
        check_op(lambda x: getattr(x, name)(axis=axis, keepdims=True), np.array(0.5, dtype=dtype))


def split_evenly_among_extremes(x: np.ndarray, g: np.ndarray, axis: Any, extreme: Any) -> np.ndarray:
    """The expected gradient of a max (or min) with ties, one output element at a time."""
    reduced = tuple(range(x.ndim)) if axis is None else normalize_axis_tuple(axis, x.ndim)
    kept = [a for a in range(x.ndim) if a not in reduced]
    moved = np.moveaxis(x, [*kept, *reduced], list(range(x.ndim)))
    rows = moved.reshape(int(np.prod([x.shape[a] for a in kept])), -1)
    cotangents = np.reshape(g, -1)
    grad_rows = np.zeros(rows.shape)
    for i, row in enumerate(rows):
        winners = np.flatnonzero(row == extreme(row))
        grad_rows[i, winners] = cotangents[i] / len(winners)
    return np.moveaxis(grad_rows.reshape(moved.shape), list(range(x.ndim)), [*kept, *reduced])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduce", EXTREMA.values(), ids=EXTREMA.keys())
@given(data=st.data(), keepdims=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_tied_extremes_share_the_cotangent_evenly(reduce, dtype, data, keepdims, seed):
    rng = np.random.default_rng(seed)
    x_data = np.asarray(rng.integers(0, 3, size=data.draw(nonempty_shapes)), dtype)  # many ties
    axis = data.draw(axes(x_data.ndim))
    x = tape.tensor(x_data, requires_grad=True)
    out = reduce(x, axis, keepdims)
    np.testing.assert_array_equal(out.data, reduce(x_data, axis, keepdims))
    g = rng.standard_normal(out.shape).astype(dtype)
    out.backward(g)
    extreme = np.max if reduce(np.array([0.0, 1.0]), None, False) == 1.0 else np.min
    np.testing.assert_allclose(x.grad, split_evenly_among_extremes(x_data, g, axis, extreme), rtol=1e-6)
    assert x.grad.dtype == dtype


def test_max_of_nans_gives_the_cotangent_to_the_nans():
    x = tape.tensor([[1.0, np.nan, 3.0, np.nan], [1.0, 2.0, 3.0, 0.0]], requires_grad=True)
    out = np.max(x, axis=1)
    np.testing.assert_array_equal(out.data, [np.nan, 3.0])
    out.backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 0.5, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0]])


# -- ufunc.reduce ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("ufunc", [np.add, np.multiply, np.maximum, np.minimum], ids=lambda u: u.__name__)
@given(data=st.data(), keepdims=st.booleans())
def test_ufunc_reduce_is_the_matching_reduction(ufunc, dtype, data, keepdims):
    shape = data.draw(nonempty_shapes.filter(lambda shape: len(shape) > 0))
    x = data.draw(
        distinct_arrays(shape, dtype) if ufunc in (np.maximum, np.minimum) else away_from_zero(shape, dtype)
    )
    axis = data.draw(axes(x.ndim))
    check_op(ufunc.reduce, x)  # along axis 0
    check_op(lambda x: ufunc.reduce(x, axis=axis, keepdims=keepdims), x)


# -- dtype and positional arguments ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "prod"])
@given(data=st.data())
def test_dtype_argument_casts_the_gradient_back(name, data):
    x = data.draw(away_from_zero(data.draw(nonempty_shapes), np.float32))
    reduce = getattr(np, name)
    check_op(lambda x: reduce(x, dtype=np.float64), x, keeps_dtype=False)
    check_op(lambda x: getattr(x, name)(axis=-1 if x.ndim else None, dtype=np.float64), x, keeps_dtype=False)
    if name == "sum":
        check_op(lambda x: np.add.reduce(x, axis=None, dtype=np.float64), x, keeps_dtype=False)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_positional_arguments_follow_numpys_signatures(dtype):
    x = np.arange(1.0, 7.0, dtype=dtype).reshape(2, 3)
    check_op(lambda x: np.sum(x, 1, None, None, True), x)  # (a, axis, dtype, out, keepdims)
    check_op(lambda x: np.prod(x, -1, np.float64, None, True), x, keeps_dtype=False)
    check_op(lambda x: np.max(x, 0, None, True), x)  # (a, axis, out, keepdims)
    check_op(lambda x: np.amin(x, (0, 1), None, True), x)


# -- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "prod", "max", "min"])
def test_initial_is_refused(name):
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=rf"numpy\.{name}: initial= is not supported on tape tensors"):
        getattr(np, name)(x, initial=0.5)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min"])
def test_where_and_out_are_refused(name):
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=rf"numpy\.{name}: where= is not supported on tape tensors"):
        getattr(np, name)(x, where=np.array([True, False]))
    with pytest.raises(TypeError, match=rf"numpy\.{name}: out= is not supported on tape tensors"):
        getattr(np, name)(x, out=np.empty(()))


@pytest.mark.parametrize(("name", "numpy_name"), [("max", "maximum"), ("min", "minimum")])
def test_extremum_of_an_empty_tensor_is_refused(name, numpy_name):
    x = tape.tensor(np.empty((0, 3)), requires_grad=True)
    # numpy's own error; the op and what it was given are in a note (pytest matches notes too)
    message = rf"^zero-size array to reduction operation {numpy_name}.*\n{name}: array arguments"
    with pytest.raises(ValueError, match=message):
        getattr(np, name)(x)


def test_an_axis_out_of_range_is_refused_naming_the_op():
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"^axis 2 is out of bounds for array of dimension 2\nsum: array"):
        np.sum(x, axis=2)


@pytest.mark.filterwarnings("error")
def test_prod_gradient_at_an_infinite_entry_is_quiet():
    # out / x is inf / inf there: nan, as torch's gradient, without a numpy warning.
    x = tape.tensor([1.5, np.inf, -0.5], requires_grad=True)
    np.prod(x).backward()
    np.testing.assert_array_equal(x.grad, [-np.inf, np.nan, np.inf])


POSITIONAL_OUT = {  # a function and its arguments before out=
    "sum": (np.sum, (0, None)),
    "mean": (np.mean, (0, None)),
    "prod": (np.prod, (0, None)),
    "max": (np.max, (0,)),
    "min": (np.amin, (0,)),
    "take": (np.take, ([0, 4], None)),
}


@pytest.mark.parametrize("name", POSITIONAL_OUT)
def test_out_given_by_position_is_written_or_refused_as_out_by_keyword(name):
    function, before = POSITIONAL_OUT[name]
    data = np.arange(6.0).reshape(2, 3)
    x = tape.tensor(data, requires_grad=True)
    expected = function(data, *before)
    with pytest.raises(TypeError, match=r"out= is not supported on tape tensors while recording"):
        function(x, *before, np.zeros_like(expected))
    out = np.full_like(expected, -1.0)
    with tape.no_grad():
        function(x, *before, out)
    np.testing.assert_array_equal(out, expected)

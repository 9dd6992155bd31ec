"""ops/statistics.py: var, std, the nan* reductions, average, median and quantiles, cumsum, cumprod, ptp and
diff, checked against numpy's forward and finite differences (float64 and float32), with the documented
choices where the derivative is not unique: ties, zero spread, NaN, zeros in a cumulative product."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tape.ops.statistics import QUANTILE_METHODS
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, distinct_arrays, empty_shapes, nonempty_shapes, shapes


def axes(ndim: int) -> st.SearchStrategy[Any]:
    """``axis`` arguments for an array of ``ndim`` axes: None, an int (maybe negative) or a tuple."""
    choices = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
    return st.one_of(choices)


def single_axes(ndim: int) -> st.SearchStrategy[Any]:
    """``axis`` for the functions that take one axis or None (cumsum, cumprod)."""
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1)) if ndim else st.none()


def reduced_count(shape: tuple[int, ...], axis: Any) -> int:
    """How many elements each output element of a reduction over ``axis`` combines."""
    if axis is None:
        return int(np.prod(shape))
    axis = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axis]))


def with_nans(x: np.ndarray, seed: int, fraction: float = 0.3) -> np.ndarray:
    x = x.copy()
    x[np.random.default_rng(seed).random(x.shape) < fraction] = np.nan
    return x


def gradient(f: Any, x: np.ndarray) -> np.ndarray:
    leaf = tape.tensor(x, requires_grad=True)
    f(leaf).backward()
    return leaf.grad


def assert_hessian_vector_product_matches(f: Any, x: np.ndarray, eps: float = 1e-6) -> None:
    """``tape.hvp`` of ``<u, f(x)>`` against central differences of its (first-order) gradient."""
    rng = np.random.default_rng(7)
    u = rng.standard_normal(np.shape(f(x)))
    v = rng.standard_normal(x.shape)

    def scalar(x: Any) -> Any:
        return np.sum(f(x) * u)

    first = tape.grad(scalar)
    numeric = (first(x + eps * v) - first(x - eps * v)) / (2 * eps)
    (analytic,) = tape.hvp(scalar, (x,), (v,))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(numeric).max()))


# -- var and std ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), keepdims=st.booleans(), as_method=st.booleans())
def test_var_and_std(dtype, data, keepdims, as_method):
    x = data.draw(arrays(data.draw(shapes), dtype))
    axis = data.draw(axes(x.ndim))
    # ddof below the count (an empty reduction is NaN whatever ddof is, and has no gradient to check).
    ddof = data.draw(st.integers(0, max(0, min(2, reduced_count(x.shape, axis) - 1))))
    options = {"axis": axis, "ddof": ddof, "keepdims": keepdims}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # empty reductions are NaN, as in numpy
        if as_method:
            check_op(lambda x: x.var(**options), x)
            check_op(lambda x: x.std(**options), x)
        else:
            check_op(lambda x: np.var(x, **options), x)
            check_op(lambda x: np.std(x, **options), x)


@given(data=st.data())
def test_var_and_std_dtype_argument(data):
    x = data.draw(arrays(data.draw(nonempty_shapes), np.float32))
    check_op(lambda x: np.var(x, dtype=np.float64), x, keeps_dtype=False)
    check_op(lambda x: np.std(x, axis=-1 if x.ndim else None, dtype=np.float64), x, keeps_dtype=False)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["var", "std", "nanvar", "nanstd"])
def test_positional_arguments_and_correction_follow_numpy(name, dtype):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    reduce = getattr(np, name)
    check_op(lambda x: reduce(x, 1, None, None, 1, True), x)  # (a, axis, dtype, out, ddof, keepdims)
    check_op(lambda x: reduce(x, axis=0, correction=1), x)
    check_op(lambda x: reduce(x, axis=0, ddof=1.5), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["std", "nanstd"])
def test_std_at_zero_spread_has_a_zero_gradient(name, dtype):
    # Documented choice: the least-norm subgradient 0, where PyTorch and JAX give NaN.
    x = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]], dtype=dtype)
    reduce = getattr(np, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grad = gradient(lambda x: reduce(x, axis=1).sum(), x)
    np.testing.assert_array_equal(grad[0], 0.0)
    assert grad.dtype == dtype
    # The row with a spread gets the usual gradient (x - mean) / (n * std).
    row = x[1].astype(np.float64)
    np.testing.assert_allclose(grad[1], (row - row.mean()) / (3 * row.std()), rtol=1e-6)


def test_var_of_too_few_elements_for_ddof_follows_numpy():
    x = tape.tensor([1.0, 3.0], requires_grad=True)
    with pytest.warns(RuntimeWarning, match="Degrees of freedom"), np.errstate(divide="ignore"):
        out = np.var(x, ddof=2)
        expected = np.var(np.array([1.0, 3.0]), ddof=2)
    assert np.isinf(out.data) and np.isinf(expected)
    with np.errstate(invalid="ignore"):
        out.backward()
    assert np.all(np.isinf(x.grad))  # 2 (x - mean) / 0, as the value is


# -- nansum, nanmean, nanvar, nanstd ------------------------------------------------------------------------
NAN_REDUCTIONS = {
    "nansum": lambda x, axis, keepdims: np.nansum(x, axis=axis, keepdims=keepdims),
    "nanmean": lambda x, axis, keepdims: np.nanmean(x, axis=axis, keepdims=keepdims),
    "nanvar": lambda x, axis, keepdims: np.nanvar(x, axis=axis, keepdims=keepdims),
    "nanstd": lambda x, axis, keepdims: np.nanstd(x, axis=axis, keepdims=keepdims, ddof=0),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # empty and all-NaN slices, as in numpy
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", list(NAN_REDUCTIONS))
@given(data=st.data(), keepdims=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_nan_reductions(dtype, name, data, keepdims, seed):
    reduce = NAN_REDUCTIONS[name]
    clean = data.draw(arrays(data.draw(shapes), dtype))
    axis = data.draw(axes(clean.ndim))
    check_op(lambda x: reduce(x, axis, keepdims), clean)  # without NaN: the plain reduction
    x = with_nans(clean, seed)
    if np.isnan(reduce(x, axis, keepdims)).any():
        return  # an all-NaN slice: covered by test_all_nan_slices_give_no_gradient
    # Perturbing a NaN leaves it NaN, so finite differences there are 0, as the VJP must be.
    check_op(lambda x: reduce(x, axis, keepdims), x)
    grad = gradient(lambda x: reduce(x, axis, keepdims).sum(), x)
    np.testing.assert_array_equal(grad[np.isnan(x)], 0.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ["nansum", "nanmean", "nanvar", "nanstd", "nanmedian"])
def test_all_nan_slices_give_no_gradient(name):
    x = np.array([[np.nan, np.nan, np.nan], [1.0, np.nan, 4.0]])
    grad = gradient(lambda x: (getattr(np, name)(x, axis=1) * np.array([0.0, 1.0])).sum(), x)
    assert not np.isnan(grad).any()
    np.testing.assert_array_equal(grad[np.isnan(x)], 0.0)
    assert np.all(grad[1, [0, 2]] != 0)


# -- average -----------------------------------------------------------------------------------------------
def positive_weights(shape: tuple[int, ...], dtype: Any) -> st.SearchStrategy[np.ndarray]:
    return arrays(shape, dtype, 0.5, 2.0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), keepdims=st.booleans(), returned=st.booleans())
def test_average(dtype, data, keepdims, returned):
    a = data.draw(arrays(data.draw(nonempty_shapes), dtype))
    axis = data.draw(axes(a.ndim))
    full = data.draw(st.booleans()) or axis is None
    if full:
        w = data.draw(positive_weights(a.shape, dtype))
    else:  # weights along the axes only, in the order the axes are given (numpy >= 2)
        picked = (axis,) if isinstance(axis, int) else axis
        w = data.draw(positive_weights(tuple(a.shape[k] for k in picked), dtype))
    pick = 0 if not returned else data.draw(st.sampled_from([0, 1]))

    def average(a: Any, w: Any) -> Any:
        result = np.average(a, axis=axis, weights=w, returned=returned, keepdims=keepdims)
        return result[pick] if returned else result

    check_op(average, a, w)
    check_op(lambda a: np.average(a, axis=axis, keepdims=keepdims), a)  # no weights: the mean


def test_average_returned_without_weights_gives_the_count():
    a = tape.tensor(np.ones((2, 3)), requires_grad=True)
    result, count = np.average(a, axis=1, returned=True)
    expected, expected_count = np.average(np.ones((2, 3)), axis=1, returned=True)
    np.testing.assert_array_equal(result.data, expected)
    np.testing.assert_array_equal(np.asarray(count), expected_count)


def test_average_errors():
    a = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ZeroDivisionError, match="weights sum to zero"):
        np.average(a, axis=1, weights=np.array([1.0, -1.0, 0.0]))
    with pytest.raises(TypeError, match="axis must be specified"):
        np.average(a, weights=np.ones(3))
    with pytest.raises(ValueError, match=r"weights of shape \(2,\) do not match"):
        np.average(a, axis=1, weights=np.ones(2))


# -- median, quantile, percentile --------------------------------------------------------------------------
def probabilities(dtype: Any) -> st.SearchStrategy[Any]:
    """q: a Python float, or an array of up to 3 (of the input's dtype, so numpy keeps that dtype)."""
    scalar = st.floats(0.0, 1.0)
    return st.one_of(scalar, st.lists(scalar, min_size=0, max_size=3).map(lambda q: np.array(q, dtype)))


ORDER_STATISTICS = {
    "median": lambda x, q, axis, keepdims: np.median(x, axis=axis, keepdims=keepdims),
    "quantile": lambda x, q, axis, keepdims: np.quantile(x, q, axis=axis, keepdims=keepdims),
    "percentile": lambda x, q, axis, keepdims: np.percentile(x, q * 100, axis=axis, keepdims=keepdims),
    "nanmedian": lambda x, q, axis, keepdims: np.nanmedian(x, axis=axis, keepdims=keepdims),
    "nanquantile": lambda x, q, axis, keepdims: np.nanquantile(x, q, axis=axis, keepdims=keepdims),
    "nanpercentile": lambda x, q, axis, keepdims: np.nanpercentile(x, q * 100, axis=axis, keepdims=keepdims),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", list(ORDER_STATISTICS))
@given(data=st.data(), keepdims=st.booleans())
def test_order_statistics_without_ties(dtype, name, data, keepdims):
    x = data.draw(distinct_arrays(data.draw(nonempty_shapes), dtype))
    axis = data.draw(axes(x.ndim) if x.ndim else st.none())  # numpy refuses axis=() on 0-d arrays here
    q = data.draw(probabilities(dtype))
    check_op(lambda x: ORDER_STATISTICS[name](x, q, axis, keepdims), x)


@pytest.mark.parametrize("name", list(ORDER_STATISTICS))
def test_order_statistics_over_no_axis_are_the_elements(name):
    x = np.random.default_rng(5).permutation(6).reshape(2, 3) / 4.0
    check_op(lambda x: ORDER_STATISTICS[name](x, np.array([0.25, 0.5]), (), False), x)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the median of an empty slice is NaN, as in numpy
@given(shape=empty_shapes, data=st.data())
def test_order_statistics_of_size_0_arrays(shape, data):
    x = np.zeros(shape)
    axis = data.draw(single_axes(len(shape)))  # numpy's own quantile fails on axis=() of empty arrays
    check_op(lambda x: np.median(x, axis=axis), x)
    if reduced_count(shape, axis) > 0:  # numpy's quantile refuses empty slices
        check_op(lambda x: np.quantile(x, [0.25, 0.5], axis=axis), x)


@pytest.mark.parametrize("method", QUANTILE_METHODS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_every_quantile_method(method, dtype):
    x = np.random.default_rng(3).permutation(18).reshape(3, 6).astype(dtype) / 4
    # Rows of 6: q = k/6 and k/5 are the exact ranks and the jumps of the discrete methods.
    q = np.array([0.0, 1 / 6, 0.2, 0.3, 0.5, 0.8, 5 / 6, 0.95, 1.0], dtype)
    check_op(lambda x: np.quantile(x, q, axis=1, method=method), x)
    check_op(lambda x: np.nanpercentile(x, 25.0, axis=0, method=method), x)


def test_float64_q_promotes_float32_data_as_numpy_does():
    x = np.random.default_rng(0).permutation(6).astype(np.float32)
    check_op(lambda x: np.quantile(x, np.array([0.2, 0.7])), x, keeps_dtype=False)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([2.0, 2.0, 2.0], [0.0, 1.0, 0.0]),  # odd count: the middle rank of a stable sort
        ([2.0, 1.0, 2.0], [1.0, 0.0, 0.0]),  # ranks 1, 2 are the twos at 0 and 2; rank 1 is the earlier
        ([1.0, 2.0, 2.0, 3.0], [0.0, 0.5, 0.5, 0.0]),  # even count: half to each middle element
        ([5.0, 5.0, 5.0, 5.0], [0.0, 0.5, 0.5, 0.0]),
        ([3.0, 0.0, 3.0, 1.0], [0.5, 0.0, 0.0, 0.5]),  # sorted: 0 (1), 1 (3), 3 (0), 3 (2)
        # Long enough that an unstable sort would reorder the ties: ranks 19 and 20 are the last zero
        # (position 39) and the first one (position 0).
        ([1.0, 0.0] * 20, [0.5] + [0.0] * 38 + [0.5]),
    ],
)
def test_tied_median_follows_the_stable_sort(values, expected):
    np.testing.assert_array_equal(gradient(np.median, np.array(values)), expected)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_tied_order_statistics_give_the_interpolation_weights_to_selected_values(dtype, data, seed):
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.integers(0, 3, size=data.draw(nonempty_shapes.filter(lambda s: len(s) > 0))), dtype)
    q = data.draw(st.floats(0.0, 1.0))
    rows = np.moveaxis(x, -1, 0).reshape(x.shape[-1], -1).T  # one row per output element
    g = rng.standard_normal(rows.shape[0]).astype(dtype)
    grad = gradient(lambda x: (np.quantile(x, q, axis=-1) * g.reshape(x.shape[:-1])).sum(), x)
    grad_rows = np.moveaxis(grad, -1, 0).reshape(x.shape[-1], -1).T
    for row, grad_row, g_row in zip(rows, grad_rows, g, strict=True):
        index = (row.size - 1) * q
        lower, upper = np.sort(row)[int(np.floor(index))], np.sort(row)[int(np.ceil(index))]
        np.testing.assert_allclose(grad_row.sum(), g_row, rtol=1e-5)  # the weights sum to one
        assert np.count_nonzero(grad_row) <= 2
        assert set(row[grad_row != 0]) <= {lower, upper}


def test_median_of_a_slice_with_nan_gives_its_cotangent_to_the_first_nan():
    x = tape.tensor([[1.0, np.nan, 3.0, np.nan], [1.0, 2.0, 3.0, 0.0]], requires_grad=True)
    out = np.median(x, axis=1)
    np.testing.assert_array_equal(out.data, [np.nan, 1.5])
    out.backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])


def test_order_statistics_never_change_the_data():
    data = np.array([3.0, 1.0, 2.0])
    x = tape.tensor(data.copy(), requires_grad=True)
    np.median(x, overwrite_input=True).backward()
    np.quantile(x, 0.5, overwrite_input=True)
    np.testing.assert_array_equal(x.data, data)


def test_quantile_errors():
    x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"numpy\.quantile: method 'bogus' is not one of numpy's methods"):
        np.quantile(x, 0.5, method="bogus")
    with pytest.raises(TypeError, match=r"numpy\.percentile: weights= is not supported"):
        np.percentile(x, 50, method="inverted_cdf", weights=np.ones(3))
    with pytest.raises(TypeError, match=r"numpy\.quantile: q is not differentiable"):
        np.quantile(x, tape.tensor(0.5, requires_grad=True))
    with pytest.raises(ValueError, match=r"^Quantiles must be in the range \[0, 1\]\nquantile: array"):
        np.quantile(x, 1.5)
    with pytest.raises(TypeError, match=r"numpy\.median: out= is not supported"):
        np.median(x, 0, np.empty(()))


# -- cumsum and cumprod ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@given(data=st.data(), as_method=st.booleans())
def test_cumsum_and_cumprod(name, dtype, data, as_method):
    x = data.draw(arrays(data.draw(shapes), dtype, -1.5, 1.5, away_from=0.0, margin=0.5))
    axis = data.draw(single_axes(x.ndim))
    if as_method:
        check_op(lambda x: getattr(x, name)(axis), x)
    else:
        check_op(lambda x: getattr(np, name)(x, axis=axis), x)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("axis", [0, -1, None])
def test_cumulative_of_a_0d_tensor_is_flat(name, axis):
    check_op(lambda x: getattr(np, name)(x, axis=axis), np.array(1.5))


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@given(data=st.data())
def test_cumulative_dtype_argument(name, data):
    x = data.draw(arrays(data.draw(nonempty_shapes), np.float32, -1.5, 1.5, away_from=0.0, margin=0.5))
    check_op(lambda x: getattr(np, name)(x, 0 if x.ndim else None, np.float64), x, keeps_dtype=False)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_cumprod_of_inputs_with_exact_zeros(dtype, data, seed):
    x = data.draw(arrays(data.draw(nonempty_shapes), dtype, -1.5, 1.5, away_from=0.0, margin=0.5))
    x[np.random.default_rng(seed).random(x.shape) < 0.4] = 0  # often one zero in a slice, often more
    axis = data.draw(single_axes(x.ndim))
    check_op(lambda x: np.cumprod(x, axis=axis), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_cumprod_gradient_with_zeros_is_a_sum_of_products_of_the_others(dtype):
    rows = np.array([[0.0, 2.0, 3.0, 0.5], [1.5, 0.0, 0.0, 4.0], [1.5, 2.0, -3.0, 0.0]], dtype=dtype)
    g = np.array([[1.0, -2.0, 0.5, 3.0], [2.0, 1.0, -1.0, 0.5], [-1.0, 1.0, 2.0, 1.0]], dtype=dtype)
    x = tape.tensor(rows, requires_grad=True)
    np.cumprod(x, axis=1).backward(g)
    # d out_j / d x_i = prod_{m <= j, m != i} x_m for i <= j
    expected = [
        [sum(g[r, j] * np.prod(np.delete(rows[r, : j + 1], i)) for j in range(i, 4)) for i in range(4)]
        for r in range(3)
    ]
    np.testing.assert_allclose(x.grad, expected, rtol=1e-6)
    assert x.grad.dtype == dtype


# -- ptp and diff ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), keepdims=st.booleans())
def test_ptp(dtype, data, keepdims):
    x = data.draw(distinct_arrays(data.draw(nonempty_shapes), dtype))
    axis = data.draw(axes(x.ndim))
    check_op(lambda x: np.ptp(x, axis=axis, keepdims=keepdims), x)
    # ndarray.ptp is gone in numpy 2, but Tensor.ptp stays numpy's function, as the other methods do.
    np.testing.assert_array_equal(tape.tensor(x).ptp(axis).data, np.ptp(x, axis))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_diff(dtype, data):
    x = data.draw(arrays(data.draw(shapes.filter(lambda s: len(s) > 0)), dtype))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = data.draw(st.integers(1, 3))
    edge_shape = tuple(2 if k == axis % x.ndim else size for k, size in enumerate(x.shape))
    prepend = data.draw(st.sampled_from([None, "scalar", "array"]))
    if prepend is None:
        check_op(lambda x: np.diff(x, n, axis), x)
    elif prepend == "scalar":
        check_op(lambda x: np.diff(x, n=n, axis=axis, prepend=dtype(0.5), append=dtype(-1.0)), x)
    else:
        edge = data.draw(arrays(edge_shape, dtype))
        check_op(lambda x, edge: np.diff(x, n=n, axis=axis, prepend=edge, append=edge * 2), x, edge)


def test_diff_of_order_zero_is_the_input_itself():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    assert np.diff(x, n=0) is x


# -- second derivatives ------------------------------------------------------------------------------------
ZEROS = np.array(
    [[0.5, 0.0, 1.5, -2.0, 0.0, 0.7], [1.2, -0.8, 0.9, 0.0, 1.1, 0.0], [0.0, 0.0, 0.0, 1.0, 2, 3]]
)
SMOOTH = np.random.default_rng(5).standard_normal((3, 6))
SECOND_ORDER = {
    "var": (lambda x: np.var(x, axis=1, ddof=1), SMOOTH),
    "std": (lambda x: np.std(x, axis=(0, 1)), SMOOTH),
    "nanvar": (lambda x: np.nanvar(x, axis=0), SMOOTH),
    "average": (lambda x: np.average(x, axis=1, weights=x[0] ** 2 + 1), SMOOTH),
    "cumsum": (lambda x: np.cumsum(x, axis=0) ** 2, SMOOTH),
    "cumprod": (lambda x: np.cumprod(x, axis=1), SMOOTH),
    "cumprod with zeros": (lambda x: np.cumprod(x, axis=1), ZEROS),
    "cumprod flat with zeros": (lambda x: np.cumprod(x), ZEROS),
    "cumprod with zeros and dtype": (lambda x: np.cumprod(x, axis=0, dtype=np.float64), ZEROS),
    "quantile": (lambda x: np.quantile(x, [0.3, 0.8], axis=1) ** 2, SMOOTH),
    "diff": (lambda x: np.diff(x, 2) ** 2, SMOOTH),
}


@pytest.mark.parametrize(("f", "x"), SECOND_ORDER.values(), ids=SECOND_ORDER.keys())
def test_hessian_vector_products(f, x):
    assert_hessian_vector_product_matches(f, x)


def test_second_derivative_of_var_is_constant():
    # d^2/dx_i^2 of var(x) = 2 (1 - 1/n) / n, whatever x is.
    x = np.array([0.3, -1.0, 2.0, 0.5])
    second = tape.grad(lambda x: tape.grad(lambda x: np.var(x))(x)[2])(x)
    step = np.array([0.0, 0.0, 1e-6, 0.0])
    numeric = (tape.grad(np.var)(x + step) - tape.grad(np.var)(x - step)) / 2e-6
    np.testing.assert_allclose(second, numeric, rtol=1e-6, atol=1e-9)


# -- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["var", "std", "nanvar", "nanstd"])
def test_bad_arguments_are_refused_naming_the_function(name):
    x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    reduce = getattr(np, name)
    with pytest.raises(TypeError, match=rf"numpy\.{name}: ddof must be a real number .* got str"):
        reduce(x, ddof="1")
    with pytest.raises(TypeError, match=rf"numpy\.{name}: mean= is not supported"):
        reduce(x, mean=np.array(2.0))
    if hasattr(x, name):  # numpy's own dispatcher refuses unknown keywords before tape sees them
        with pytest.raises(TypeError, match=rf"numpy\.{name}: keyword argument\(s\) \['bias'\]"):
            getattr(x, name)(bias=True)
    with pytest.raises(TypeError, match=rf"numpy\.{name}: where= is not supported"):
        reduce(x, where=np.array([True, False, True]))
    with pytest.raises(ValueError, match=rf"numpy\.{name}: ddof and correction"):
        reduce(x, ddof=1, correction=1)


def test_unsupported_keywords_of_the_other_functions_are_refused():
    x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy\.nansum: initial= is not supported"):
        np.nansum(x, initial=1.0)
    with pytest.raises(TypeError, match=r"numpy\.cumsum: out= is not supported"):
        np.cumsum(x, 0, None, np.empty(3))
    with pytest.raises(TypeError, match=r"numpy\.cumprod: keyword argument\(s\) \['include_initial'\]"):
        x.cumprod(include_initial=True)
    with pytest.raises(ValueError, match=r"^axis 1 is out of bounds.*\nvar: array arguments"):
        np.var(x, axis=1)


@pytest.mark.filterwarnings("error")
def test_cumprod_gradient_at_an_infinite_entry_is_quiet():
    # The reversed sums hold inf - inf and inf / inf: nan, as torch's gradient, without a numpy warning.
    x = tape.tensor([1.5, np.inf, -0.5], requires_grad=True)
    np.cumprod(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [np.nan, np.nan, np.inf])


# -- cumulative_sum and cumulative_prod (numpy >= 2.1) -----------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["cumulative_sum", "cumulative_prod"])
@pytest.mark.parametrize("include_initial", [False, True])
@given(data=st.data())
def test_cumulative_sum_and_prod(name, include_initial, dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype, -1.5, 1.5, away_from=0.0, margin=0.5))
    axis = (
        data.draw(st.integers(-x.ndim, x.ndim - 1)) if x.ndim > 1 else data.draw(st.sampled_from([None, 0]))
    )
    function = getattr(np, name)
    check_op(lambda x: function(x, axis=axis, include_initial=include_initial), x)


@pytest.mark.parametrize("name", ["cumulative_sum", "cumulative_prod"])
def test_cumulative_dtype_and_second_derivative(name):
    function = getattr(np, name)
    x = np.array([[0.5, -1.2, 0.8], [1.5, 0.7, -0.9]], np.float32)
    check_op(lambda x: function(x, axis=1, dtype=np.float64, include_initial=True), x, keeps_dtype=False)
    assert tape.gradgradcheck(lambda x: function(x, axis=0, include_initial=True) ** 2, x.astype(np.float64))


@pytest.mark.parametrize("name", ["cumulative_sum", "cumulative_prod"])
def test_cumulative_errors_name_the_function(name):
    x = tape.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=rf"^{name}: an array of shape \(2, 3\) has more than one axis"):
        getattr(np, name)(x)
    with pytest.raises(TypeError, match=rf"numpy\.{name}: out= is not supported"):
        getattr(np, name)(x, axis=0, out=np.empty((2, 3)))


def test_cumulative_sum_matches_torch_cumsum():
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(3).standard_normal((3, 4))
    x, reference = tape.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    np.sum(np.cumulative_sum(x, axis=1) ** 2).backward()
    (torch.cumsum(reference, 1) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad, reference.grad.numpy(), rtol=1e-12)

"""ops/nondifferentiable.py: comparisons, predicates, index queries, constants and shape queries on tensors
give numpy's answers, are never recorded, and let gradients flow around them where they are used."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tests.ops.opcheck import check_op
from tests.strategies import (
    FLOAT_DTYPES,
    arrays,
    broadcastable_shapes,
    distinct_arrays,
    nonempty_shapes,
    shapes,
)


def assert_constant_like_numpy(result: object, expected: object) -> None:
    """``result`` is a tensor that does not require grad and holds numpy's ``expected``."""
    expected = np.asarray(expected)
    assert isinstance(result, tape.Tensor), f"expected a tensor, got {type(result).__name__}"
    assert not result.requires_grad
    assert result.record is None
    assert result.dtype == expected.dtype
    assert result.shape == expected.shape
    np.testing.assert_array_equal(result.data, expected)


COMPARISONS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "np.less": np.less,
    "np.less_equal": np.less_equal,
    "np.greater": np.greater,
    "np.greater_equal": np.greater_equal,
    "np.equal": np.equal,
    "np.not_equal": np.not_equal,
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("compare", COMPARISONS.values(), ids=COMPARISONS.keys())
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_comparison_gives_a_boolean_tensor_that_does_not_require_grad(compare, dtype, data, seed):
    x_shape, y_shape = data.draw(broadcastable_shapes(2))
    rng = np.random.default_rng(seed)
    x_data = np.asarray(rng.integers(0, 3, size=x_shape), dtype)  # ties, so == and <= are exercised
    y_data = np.asarray(rng.integers(0, 3, size=y_shape), dtype)
    x = tape.tensor(x_data, requires_grad=True)
    y = tape.tensor(y_data, requires_grad=True)
    assert_constant_like_numpy(compare(x, y), compare(x_data, y_data))
    assert_constant_like_numpy(compare(x, y_data), compare(x_data, y_data))  # an array on the right
    assert_constant_like_numpy(compare(x_data, y), compare(x_data, y_data))  # an array on the left
    assert_constant_like_numpy(compare(x, 1.0), compare(x_data, 1.0))
    assert_constant_like_numpy(compare(1.0, y), compare(1.0, y_data))  # reflected


@pytest.mark.parametrize("logical", [np.logical_and, np.logical_or, np.logical_xor], ids=lambda u: u.__name__)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_logical_ufuncs(logical, data, seed):
    x_shape, y_shape = data.draw(broadcastable_shapes(2))
    rng = np.random.default_rng(seed)
    x_data, y_data = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    x = tape.tensor(x_data, requires_grad=True)
    y = tape.tensor(y_data, requires_grad=True)
    assert_constant_like_numpy(logical(x > 0, y > 0), logical(x_data > 0, y_data > 0))
    assert_constant_like_numpy(np.logical_not(x > 0), np.logical_not(x_data > 0))


SPECIAL_VALUES = np.array([0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("predicate", [np.isnan, np.isinf, np.isfinite, np.signbit], ids=lambda u: u.__name__)
def test_predicates(predicate, dtype):
    values = SPECIAL_VALUES.astype(dtype)
    x = tape.tensor(values, requires_grad=True)
    assert_constant_like_numpy(predicate(x), predicate(values))
    assert_constant_like_numpy(predicate(x * 2.0), predicate(values * 2.0))  # on a recorded tensor too


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), keepdims=st.booleans())
def test_argmax_and_argmin(dtype, data, keepdims):
    x_data = data.draw(distinct_arrays(data.draw(nonempty_shapes), dtype))
    x = tape.tensor(x_data, requires_grad=True)
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1)) if x.ndim else None
    for query in (np.argmax, np.argmin):
        assert_constant_like_numpy(query(x), query(x_data))
        assert_constant_like_numpy(
            query(x, axis=axis, keepdims=keepdims), query(x_data, axis, keepdims=keepdims)
        )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_other_queries(dtype, data):
    x_data = data.draw(arrays(data.draw(shapes.filter(len)), dtype, -1.0, 1.0))
    x = tape.tensor(x_data, requires_grad=True)
    assert_constant_like_numpy(np.argsort(x, axis=-1), np.argsort(x_data, axis=-1))
    assert_constant_like_numpy(np.count_nonzero(x > 0), np.count_nonzero(x_data > 0))
    assert_constant_like_numpy(np.all(x > -0.5), np.all(x_data > -0.5))
    assert_constant_like_numpy(np.any(x > 0.5, axis=0), np.any(x_data > 0.5, axis=0))
    assert_constant_like_numpy(np.isclose(x, x_data + 1e-12), np.isclose(x_data, x_data + 1e-12))
    for index, numpy_index in zip(np.nonzero(x > 0), np.nonzero(x_data > 0), strict=True):
        assert_constant_like_numpy(index, numpy_index)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_constants_like_a_tensor(dtype, data):
    x_data = data.draw(arrays(data.draw(shapes), dtype))
    x = tape.tensor(x_data, requires_grad=True) * 2.0
    assert_constant_like_numpy(np.zeros_like(x), np.zeros_like(x_data))
    assert_constant_like_numpy(np.ones_like(x), np.ones_like(x_data))
    assert_constant_like_numpy(np.full_like(x, 3.5), np.full_like(x_data, 3.5))
    assert_constant_like_numpy(np.zeros_like(x, dtype=np.int32), np.zeros_like(x_data, dtype=np.int32))
    empty = np.empty_like(x)
    assert isinstance(empty, tape.Tensor) and not empty.requires_grad
    assert (empty.shape, empty.dtype) == (x.shape, x.dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_queries_of_shape_and_closeness_return_what_numpy_returns(dtype):
    x_data = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(2, 3)
    x = tape.tensor(x_data, requires_grad=True)
    assert np.shape(x) == (2, 3)
    assert np.ndim(x) == 2
    assert np.size(x) == 6
    assert np.allclose(x, x_data + 1e-9) is True
    assert np.allclose(x, x_data + 1.0) is False
    assert np.allclose(x, tape.tensor(x_data)) is True
    assert np.array_equal(x, x_data) is True
    assert np.array_equal(x, x_data[:1]) is False
    assert np.isrealobj(x) is True
    assert np.iscomplexobj(x) is False


# -- gradients flow around the constants they are combined with --------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_a_mask_from_a_comparison_scales_the_gradient(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype, away_from=0.0))
    check_op(lambda x: x * (x > 0), x)  # relu: the boolean factor carries no gradient
    check_op(lambda x: x * np.isfinite(x) + np.zeros_like(x), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_a_comparison_is_not_recorded_even_between_recorded_tensors(dtype):
    x = tape.tensor(np.array([1.0, -1.0], dtype=dtype), requires_grad=True)
    y = x * 2.0
    mask = y > x
    assert mask.record is None and not mask.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        mask.backward()


def test_masks_combine_with_bitwise_operators_and_carry_no_gradient():
    x = tape.tensor([0.5, -1.0, 2.0], requires_grad=True)
    plain = np.array([0.5, -1.0, 2.0])
    both = (x > 0) & (x < 1)
    np.testing.assert_array_equal(both.data, (plain > 0) & (plain < 1))
    np.testing.assert_array_equal(((x > 0) | (x < -0.5)).data, (plain > 0) | (plain < -0.5))
    np.testing.assert_array_equal(((x > 0) ^ np.array([True, True, False])).data, [False, True, True])
    np.testing.assert_array_equal((~(x > 0)).data, plain <= 0)
    assert not both.requires_grad


# -- searchsorted, digitize, bincount, histogram ---------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    "query",
    [
        lambda a, v: np.searchsorted(a, v),
        lambda a, v: np.searchsorted(a, v, side="right"),
        lambda a, v: np.digitize(v, a),
        lambda a, v: np.digitize(v, a, right=True),
    ],
    ids=["searchsorted", "searchsorted_right", "digitize", "digitize_right"],
)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_searchsorted_and_digitize_give_constant_integers(query, dtype, data, seed):
    rng = np.random.default_rng(seed)
    a = np.sort(rng.integers(0, 4, size=5)).astype(dtype)  # ties, so both sides are exercised
    v = rng.integers(-1, 5, size=data.draw(shapes)).astype(dtype)
    result = query(tape.tensor(a, requires_grad=True), tape.tensor(v, requires_grad=True))
    assert_constant_like_numpy(result, query(a, v))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 6))
def test_bincount_is_differentiable_in_its_weights(dtype, seed, size):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=size)
    weights = rng.standard_normal(size).astype(dtype)
    check_op(lambda w: np.bincount(x, w, minlength=3), weights, keeps_dtype=False)
    assert_constant_like_numpy(np.bincount(tape.tensor(x)), np.bincount(x))
    if size:
        assert tape.gradgradcheck(lambda w: np.bincount(tape.tensor(x), w) ** 2, weights.astype(np.float64))


@pytest.mark.parametrize(
    "options",
    [
        {"bins": 4},
        {"bins": 3, "range": (-1.0, 1.0)},
        {"bins": np.array([-2.0, -0.5, 0.0, 3.0])},
        {"density": True},
    ],
    ids=["bins", "range", "edges", "density"],
)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(seed=st.integers(0, 2**32 - 1))
def test_histogram_counts_are_constant_and_weights_differentiable(options, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(12).astype(dtype)
    counts, edges = np.histogram(tape.tensor(a, requires_grad=True), **options)
    expected_counts, expected_edges = np.histogram(a, **options)
    assert_constant_like_numpy(counts, expected_counts)
    assert_constant_like_numpy(edges, expected_edges)
    weights = rng.random(12).astype(dtype)
    check_op(
        lambda w: np.histogram(a, weights=w, **options)[0], weights, keeps_dtype="density" not in options
    )
    assert tape.gradgradcheck(
        lambda w: np.histogram(a, weights=w, **options)[0] ** 2, weights.astype(np.float64)
    )


def test_searchsorted_bucketize_and_bincount_match_torch():
    torch = pytest.importorskip("torch")
    boundaries = np.array([0.0, 1.0, 1.0, 2.5])
    values = np.array([[-1.0, 1.0], [1.5, 3.0]])
    for right in (False, True):
        np.testing.assert_array_equal(
            np.searchsorted(
                tape.tensor(boundaries), tape.tensor(values), side="right" if right else "left"
            ).data,
            torch.searchsorted(torch.tensor(boundaries), torch.tensor(values), right=right).numpy(),
        )
        np.testing.assert_array_equal(
            np.digitize(tape.tensor(values), boundaries, right=right).data,
            torch.bucketize(torch.tensor(values), torch.tensor(boundaries), right=not right).numpy(),
        )
    x = np.array([0, 3, 3, 1])
    weights = np.array([0.5, -1.0, 2.0, 1.5])
    # torch's bincount has no derivative: compare the weighted sums only.
    np.testing.assert_array_equal(
        np.bincount(x, tape.tensor(weights, requires_grad=True), minlength=5).data,
        torch.bincount(torch.tensor(x), torch.tensor(weights), minlength=5).numpy(),
    )

"""ops/special.py: logsumexp, softmax and log_softmax, checked against the naive numpy formulas where those
are exact, against finite differences in float64 and float32, on extreme and ``-inf`` inputs where the
naive formulas fail, and to second order."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tape.ops.special import log_softmax, logsumexp, softmax
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, nonempty_shapes, shapes

#: A tolerance per dtype for values compared with a float64 reference.
VALUE_TOLERANCE = {np.float64: {"rtol": 1e-12, "atol": 1e-12}, np.float32: {"rtol": 2e-6, "atol": 2e-6}}


def axes(ndim: int) -> st.SearchStrategy[Any]:
    """``axis`` arguments for an array of ``ndim`` axes: None, an int (maybe negative) or a tuple."""
    choices = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
    return st.one_of(choices)


def naive_logsumexp(x: np.ndarray, axis: Any, keepdims: bool = False) -> np.ndarray:
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def naive_softmax(x: np.ndarray, axis: Any) -> np.ndarray:
    return np.exp(x) / np.sum(np.exp(x), axis=axis, keepdims=True)


def naive_log_softmax(x: np.ndarray, axis: Any) -> np.ndarray:
    return x - naive_logsumexp(x, axis, keepdims=True)


FUNCTIONS = {
    "softmax": (softmax, naive_softmax),
    "log_softmax": (log_softmax, naive_log_softmax),
    "logsumexp": (logsumexp, naive_logsumexp),
}


def second_derivative_matches_finite_differences(f: Any, x: np.ndarray, seed: int = 0) -> None:
    """``tape.hvp`` (a gradient of a gradient) against central differences of ``tape.grad`` along v."""
    v = np.random.default_rng(seed).standard_normal(x.shape)
    (hessian_v,) = tape.hvp(f, (x,), (v,))
    gradient = tape.grad(f)
    eps = 1e-6
    numeric = (gradient(x + eps * v) - gradient(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hessian_v, numeric, rtol=1e-5, atol=1e-6)


# -- values and first derivatives --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_and_log_softmax(name, dtype, data):
    function, naive = FUNCTIONS[name]
    x = data.draw(arrays(data.draw(shapes), dtype, -3.0, 3.0))
    axis = data.draw(axes(x.ndim))
    check_op(lambda x: function(x, axis=axis), x)
    np.testing.assert_allclose(function(x, axis), naive(x.astype(np.float64), axis), **VALUE_TOLERANCE[dtype])
    if x.ndim:
        check_op(function, x)  # along the last axis


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), keepdims=st.booleans())
def test_logsumexp(dtype, data, keepdims):
    x = data.draw(arrays(data.draw(nonempty_shapes), dtype, -3.0, 3.0))
    axis = data.draw(axes(x.ndim))
    check_op(lambda x: logsumexp(x, axis=axis, keepdims=keepdims), x)
    np.testing.assert_allclose(
        logsumexp(x, axis, keepdims),
        naive_logsumexp(x.astype(np.float64), axis, keepdims),
        **VALUE_TOLERANCE[dtype],
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), keepdims=st.booleans())
def test_logsumexp_with_weights(dtype, data, keepdims):
    x_shape, b_shape = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)
    ).input_shapes
    x = data.draw(arrays(x_shape, dtype, -3.0, 3.0))
    b = data.draw(arrays(b_shape, dtype, 0.5, 2.0))
    axis = data.draw(axes(len(np.broadcast_shapes(x_shape, b_shape))))
    check_op(lambda x, b: logsumexp(x, axis=axis, keepdims=keepdims, b=b), x, b)
    check_op(lambda x: logsumexp(x, axis=axis, keepdims=keepdims, b=b), x)  # constant weights
    expected = np.log(
        np.sum(b.astype(np.float64) * np.exp(x.astype(np.float64)), axis=axis, keepdims=keepdims)
    )
    np.testing.assert_allclose(logsumexp(x, axis, keepdims, b=b), expected, **VALUE_TOLERANCE[dtype])


def test_a_weight_of_zero_removes_its_entry_even_an_infinite_one():
    x = tape.tensor([np.inf, 0.5, 1.5], requires_grad=True)
    out = logsumexp(x, b=np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(out.data, np.log(np.exp(0.5) + 2 * np.exp(1.5)))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_logsumexp_over_no_elements_is_minus_infinity_without_warnings(dtype, data):
    x = np.zeros(data.draw(shapes.filter(lambda shape: 0 in shape)), dtype=dtype)
    zero_axes = tuple(k for k, size in enumerate(x.shape) if size == 0)
    axis = data.draw(st.sampled_from([None, zero_axes[0], zero_axes]))
    out = logsumexp(tape.tensor(x, requires_grad=True), axis=axis)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(out.data, naive_logsumexp(x, axis))
    assert out.dtype == dtype


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_plain_arrays_give_plain_arrays_and_tensors_give_tensors(name):
    function, naive = FUNCTIONS[name]
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, 1.0]])
    assert type(function(x, axis=1)) is np.ndarray
    constant = function(tape.tensor(x), axis=1)
    assert isinstance(constant, tape.Tensor) and not constant.requires_grad
    tracked = function(tape.tensor(x, requires_grad=True), axis=1)
    assert isinstance(tracked, tape.Tensor) and tracked.requires_grad
    np.testing.assert_allclose(tracked.data, naive(x, 1), rtol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_integer_input_gives_float64(name):
    function, naive = FUNCTIONS[name]
    x = np.array([[1, 2, 3], [0, -1, 4]])
    out = function(x, axis=-1)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, naive(x.astype(np.float64), -1), rtol=1e-12)


# -- extreme inputs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shift", [1e4, -1e4])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_large_shifts_change_nothing_but_logsumexp_by_the_shift(name, dtype, shift, data, seed):
    # exp overflows (or underflows to 0) at +-1e4 in both dtypes, so the naive formula fails on x + shift;
    # all three functions are shift-invariant (logsumexp up to the shift), which gives the reference.
    function, naive = FUNCTIONS[name]
    shifted = data.draw(arrays(data.draw(nonempty_shapes.filter(len)), dtype, -3.0, 3.0)) + dtype(shift)
    moderate = shifted.astype(np.float64) - shift  # exactly the moderate values shifted holds
    axis = data.draw(st.sampled_from([-1, None]))
    expected = naive(moderate, axis) + (shift if name == "logsumexp" else 0.0)
    tolerance = dict(VALUE_TOLERANCE[dtype])
    if name != "softmax":  # a result near the shift carries the shift's rounding error
        tolerance["atol"] = np.finfo(dtype).eps * abs(shift) * 4
    x = tape.tensor(shifted, requires_grad=True)
    out = function(x, axis=axis)
    np.testing.assert_allclose(out.data, expected, **tolerance)
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    out.backward(g)
    # The gradient is shift-invariant too: compare it with the gradient at the moderate values.
    reference = tape.tensor(moderate, requires_grad=True)
    function(reference, axis=axis).backward(g.astype(np.float64))
    assert np.all(np.isfinite(x.grad))
    # logsumexp's VJP is exp(x - out): out near the shift is rounded to the dtype's eps * shift, and so is
    # the exponent.
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    if name == "logsumexp":
        rtol = max(rtol, 8 * np.finfo(dtype).eps * abs(shift))
    np.testing.assert_allclose(x.grad, reference.grad, rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_the_largest_floats_do_not_overflow(dtype):
    big = np.finfo(dtype).max
    x = tape.tensor(np.array([[big, big, 0.0], [big, -big, big / 2]], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total = logsumexp(x, axis=1)
        probabilities = softmax(x, axis=1)
        logs = log_softmax(x, axis=1)
    np.testing.assert_array_equal(total.data, [big, big])  # big + log 2 rounds to big
    np.testing.assert_array_equal(probabilities.data, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(logs.data[:, 0], [-np.log(2.0), 0.0], rtol=1e-6)
    for out in (total, probabilities):
        out.backward(np.ones(out.shape, dtype=dtype))
    assert np.all(np.isfinite(x.grad))


@st.composite
def logits_with_minus_infinity(draw: st.DrawFn, dtype: Any) -> np.ndarray:
    """Rows of moderate logits where some entries are -inf (masked out), each row keeping a finite one."""
    x = draw(arrays(draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)), dtype, -3.0, 3.0))
    masked = draw(hnp.arrays(np.bool_, x.shape))
    masked[..., draw(st.integers(0, x.shape[-1] - 1))] = False
    return np.where(masked, -np.inf, x).astype(dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_minus_infinity_entries_get_probability_and_gradient_zero(dtype, data):
    x = data.draw(logits_with_minus_infinity(dtype))
    masked = np.isneginf(x)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(
            softmax(x), naive_softmax(x.astype(np.float64), -1), **VALUE_TOLERANCE[dtype]
        )
        np.testing.assert_allclose(
            log_softmax(x), naive_log_softmax(x.astype(np.float64), -1), **VALUE_TOLERANCE[dtype]
        )
        np.testing.assert_allclose(
            logsumexp(x, -1), naive_logsumexp(x.astype(np.float64), -1), **VALUE_TOLERANCE[dtype]
        )
    # Finite differences at -inf entries are 0 (moving -inf by eps leaves it -inf); the VJPs must agree.
    # log_softmax is -inf at those entries, so it is checked where it is finite.
    check_op(softmax, x)
    check_op(lambda x: logsumexp(x, axis=-1), x)
    check_op(lambda x: np.where(masked, 0.0, log_softmax(x)), x)
    for function in (softmax, log_softmax, lambda x: logsumexp(x, axis=-1)):
        t = tape.tensor(x, requires_grad=True)
        out = function(t)
        out.backward(np.where(np.isfinite(out.data), 1.0, 0.0).astype(dtype))
        assert np.all(np.isfinite(t.grad))
        np.testing.assert_array_equal(t.grad[masked], 0.0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_a_slice_of_only_minus_infinity_has_logsumexp_minus_infinity_and_gradient_nan(dtype):
    x = tape.tensor(
        np.array([[-np.inf, -np.inf], [0.0, 1.0], [-np.inf, 2.0]], dtype=dtype), requires_grad=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = logsumexp(x, axis=1)
        out.backward(np.ones(3, dtype=dtype))
    np.testing.assert_allclose(out.data, [-np.inf, np.logaddexp(0.0, 1.0), 2.0], rtol=1e-6)
    # exp(x - out) = exp(-inf + inf) in the all -inf row: nan, as PyTorch and JAX give.
    np.testing.assert_allclose(
        x.grad, [[np.nan, np.nan], naive_softmax(np.array([0.0, 1.0]), -1), [0.0, 1.0]], rtol=1e-6
    )
    assert x.grad.dtype == dtype
    # A row with one finite entry has softmax one there, log_softmax zero, and no gradient leaking to -inf.
    row = tape.tensor(np.array([-np.inf, 2.0, -np.inf], dtype=dtype), requires_grad=True)
    np.testing.assert_array_equal(softmax(row).data, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(log_softmax(row).data, [-np.inf, 0.0, -np.inf])
    # softmax of an all -inf slice is undefined (0 / 0): nan, as the formula gives.
    assert np.isnan(softmax(np.array([-np.inf, -np.inf]))).all()


# -- infinite and nan entries: forward and gradient as torch.logsumexp defines them -------------------------
INF, NAN = np.inf, np.nan
LOGSUMEXP_EDGES = [  # (x, logsumexp(x), its gradient exp(x - out))
    ([50.0, INF], INF, [0.0, NAN]),
    ([INF, INF], INF, [NAN, NAN]),
    ([INF, -INF], INF, [NAN, 0.0]),
    ([-INF, -INF], -INF, [NAN, NAN]),
    ([-INF], -INF, [NAN]),
    ([-INF, 1.0], 1.0, [0.0, 1.0]),
    ([1.0, NAN], NAN, [NAN, NAN]),
    ([NAN, -INF], NAN, [NAN, NAN]),
    ([INF, NAN], NAN, [NAN, NAN]),
    ([0.0, -0.0], np.log(2.0), [0.5, 0.5]),
]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(("values", "expected", "gradient"), LOGSUMEXP_EDGES, ids=repr)
def test_logsumexp_at_infinite_and_nan_entries(values, expected, gradient, dtype):
    x = tape.tensor(np.array(values, dtype=dtype), requires_grad=True)
    out = logsumexp(x)
    out.backward()
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    np.testing.assert_allclose(x.grad, gradient, rtol=1e-6)
    assert x.grad.dtype == dtype


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_at_infinite_and_nan_entries_along_each_axis(keepdims):
    x = np.array([[50.0, INF, 0.0], [-INF, -INF, -INF], [1.0, NAN, -INF], [-INF, 2.0, 2.0]])
    for axis, expected, gradient in [
        (1, [INF, -INF, NAN, 2.0 + np.log(2.0)], [[0, NAN, 0], [NAN, NAN, NAN], [NAN] * 3, [0, 0.5, 0.5]]),
        (
            0,
            [np.logaddexp(50.0, 1.0), NAN, np.logaddexp(0.0, 2.0)],
            [
                [1 / (1 + np.exp(-49.0)), NAN, 1 / (1 + np.e**2)],
                [0, NAN, 0],
                [np.exp(-49.0), NAN, 0],
                [0, NAN, 1 / (1 + np.e**-2)],
            ],
        ),
    ]:
        t = tape.tensor(x, requires_grad=True)
        out = logsumexp(t, axis=axis, keepdims=keepdims)
        out.backward(np.ones(out.shape))
        np.testing.assert_allclose(np.squeeze(out.data, axis) if keepdims else out.data, expected)
        np.testing.assert_allclose(t.grad, gradient)


@pytest.mark.filterwarnings("error")
def test_logsumexp_with_weights_at_infinite_entries():
    # A weight of zero takes its entry out, x's gradient there is 0; the weight's own is exp(x - out).
    x = tape.tensor([INF, 0.0, 1.0], requires_grad=True)
    b = tape.tensor([0.0, 1.0, 2.0], requires_grad=True)
    out = logsumexp(x, b=b)
    out.backward()
    total = 1.0 + 2.0 * np.e
    np.testing.assert_allclose(out.data, np.log(total))
    np.testing.assert_allclose(x.grad, [0.0, 1.0 / total, 2.0 * np.e / total])
    np.testing.assert_allclose(b.grad, [INF, 1.0 / total, np.e / total])
    # A weighted +inf entry makes the result +inf: nan at that entry, 0 at the others, as without weights.
    x = tape.tensor([INF, 0.0], requires_grad=True)
    b = tape.tensor([0.5, 1.0], requires_grad=True)
    out = logsumexp(x, b=b)
    out.backward()
    assert out.data == INF
    np.testing.assert_array_equal(x.grad, [NAN, 0.0])
    np.testing.assert_array_equal(b.grad, [NAN, 0.0])


# -- second derivatives ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_second_derivative(name, data, seed):
    function, _ = FUNCTIONS[name]
    x = data.draw(arrays(data.draw(nonempty_shapes.filter(len)), np.float64, -2.0, 2.0))
    axis = data.draw(axes(x.ndim))
    out_shape = np.shape(function(x, axis=axis))
    # A weighted sum, so that the Hessian is not trivially zero (softmax sums to one).
    weights = np.random.default_rng(seed).standard_normal(out_shape)
    second_derivative_matches_finite_differences(lambda x: np.sum(weights * function(x, axis=axis)), x, seed)


def test_second_derivative_of_logsumexp_with_weights():
    x = np.array([[0.3, -1.0, 0.7], [1.2, 0.0, -0.4]])
    b = np.array([0.5, 1.5, 2.0])
    weights = np.array([1.0, -3.0])
    second_derivative_matches_finite_differences(lambda x: np.sum(weights * logsumexp(x, axis=1, b=b)), x)
    second_derivative_matches_finite_differences(lambda b: np.sum(weights * logsumexp(x, axis=1, b=b)), b)


def test_softmax_hessian_matches_its_closed_form():
    # f(x) = w . softmax(x) has gradient s * u with u = w - s . w, and Hessian
    # diag(s * u) - (s * u) s^T - s (s * u)^T, from ds/dx = diag(s) - s s^T.
    x = np.array([0.2, -0.7, 1.1, 0.4])
    w = np.array([1.0, -2.0, 0.5, 3.0])
    s = naive_softmax(x, -1)
    su = s * (w - s @ w)
    hessian = np.diag(su) - np.outer(su, s) - np.outer(s, su)
    np.testing.assert_allclose(tape.grad(lambda x: np.sum(w * softmax(x)))(x), su, rtol=1e-12)
    for k in range(4):
        (column,) = tape.hvp(lambda x: np.sum(w * softmax(x)), (x,), (np.eye(4)[k],))
        np.testing.assert_allclose(column, hessian[:, k], rtol=1e-12, atol=1e-14)


# -- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_an_axis_out_of_range_is_refused_naming_the_function(name):
    function, _ = FUNCTIONS[name]
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(
        np.exceptions.AxisError, match=rf"^axis 2 is out of bounds for array of dimension 2\n{name}: array"
    ):
        function(x, axis=2)
    with pytest.raises(ValueError, match=rf"^repeated axis\n{name}: array arguments of shapes \(2, 3\)"):
        function(x, axis=(0, -2))

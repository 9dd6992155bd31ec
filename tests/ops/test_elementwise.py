"""ops/elementwise.py: every registered ufunc, clip, round, astype and copy, and the operators that map to
them, checked against numpy's forward and against finite differences, in float64 and float32."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tape import registry
from tape.ops import elementwise
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, broadcastable_shapes, shapes


def off_grid(
    shape: tuple[int, ...], dtype: Any, step: float = 0.5, offset: float = 0.25
) -> st.SearchStrategy[np.ndarray]:
    """Values ``offset`` steps (give or take a tenth) above a multiple of ``step``.

    With ``step=0.5`` they are at least 0.075 from every integer and half-integer (the jumps of floor,
    ceil, trunc and rint), and their quotients by ``divisors`` stay at least 0.0375 from an integer.
    With offsets 0.25 and 0.75, two draws are at least 0.15 apart (no ties between them).
    """

    def build(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        multiples = rng.integers(-6, 6, size=shape)
        return np.asarray(step * (multiples + offset + rng.uniform(-0.1, 0.1, size=shape)), dtype)

    return st.integers(0, 2**32 - 1).map(build)


def divisors(shape: tuple[int, ...], dtype: Any) -> st.SearchStrategy[np.ndarray]:
    """Divisors drawn from ±0.5, ±1, ±2, so that ``off_grid(...) / divisor`` is never near an integer."""

    def build(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.asarray(rng.choice([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0], size=shape), dtype)

    return st.integers(0, 2**32 - 1).map(build)


def domain(low: float, high: float, away_from: float | None = None, margin: float = 0.1) -> Any:
    """Where an op's inputs are drawn: ``domain(...)(shape, dtype)`` is the strategy for its arrays."""

    def values(shape: tuple[int, ...], dtype: Any) -> st.SearchStrategy[np.ndarray]:
        return arrays(shape, dtype, low, high, away_from=away_from, margin=margin)

    return values


ANY = domain(-2.0, 2.0)
POSITIVE = domain(0.2, 3.0)
NONZERO = domain(-2.0, 2.0, away_from=0.0, margin=0.2)
UNIT = domain(-0.8, 0.8)


def shifted(shape: tuple[int, ...], dtype: Any) -> st.SearchStrategy[np.ndarray]:
    """``off_grid`` values half a step up: never within 0.15 of an ``off_grid`` value."""
    return off_grid(shape, dtype, offset=0.75)


UNARY = [  # (ufunc, where its inputs are drawn: inside the domain and away from kinks)
    (np.negative, ANY),
    (np.positive, ANY),
    (np.square, ANY),
    (np.sqrt, POSITIVE),
    (np.cbrt, NONZERO),
    (np.reciprocal, NONZERO),
    (np.absolute, NONZERO),
    (np.fabs, NONZERO),
    (np.exp, ANY),
    (np.exp2, ANY),
    (np.expm1, ANY),
    (np.log, POSITIVE),
    (np.log2, POSITIVE),
    (np.log10, POSITIVE),
    (np.log1p, domain(-0.8, 2.0)),
    (np.sin, domain(-3.0, 3.0)),
    (np.cos, domain(-3.0, 3.0)),
    (np.tan, domain(-1.2, 1.2)),
    (np.arcsin, UNIT),
    (np.arccos, UNIT),
    (np.arctan, ANY),
    (np.sinh, ANY),
    (np.cosh, ANY),
    (np.tanh, ANY),
    (np.arcsinh, ANY),
    (np.arccosh, domain(1.2, 3.0)),
    (np.arctanh, UNIT),
    (np.deg2rad, ANY),
    (np.rad2deg, ANY),
    (np.radians, ANY),
    (np.degrees, ANY),
    (np.conjugate, ANY),
    # Flat almost everywhere: the gradient is zero, checked away from the jumps.
    (np.sign, NONZERO),
    (np.floor, off_grid),
    (np.ceil, off_grid),
    (np.trunc, off_grid),
    (np.rint, off_grid),
]

BINARY = [  # (ufunc, first argument's values, second argument's values)
    (np.add, ANY, ANY),
    (np.subtract, ANY, ANY),
    (np.multiply, ANY, ANY),
    (np.divide, ANY, NONZERO),
    (np.power, domain(0.3, 2.0), ANY),
    (np.logaddexp, ANY, ANY),
    (np.logaddexp2, ANY, ANY),
    # arctan2(y, x) jumps by 2 pi across y = 0 when x < 0.
    (np.arctan2, NONZERO, NONZERO),
    (np.hypot, NONZERO, ANY),
    # Never tied (ties are tested on purpose below).
    (np.maximum, off_grid, shifted),
    (np.minimum, off_grid, shifted),
    (np.fmax, off_grid, shifted),
    (np.fmin, off_grid, shifted),
    (np.floor_divide, off_grid, divisors),
    (np.remainder, off_grid, divisors),
    (np.fmod, off_grid, divisors),
]


def _name(ufunc: np.ufunc) -> str:
    return ufunc.__name__


def test_every_registered_elementwise_ufunc_is_tested_here():
    elementwise_ops = [value for value in vars(elementwise).values() if isinstance(value, tape.Op)]
    registered = {
        ufunc
        for ufunc, op in registry.UFUNCS.items()
        if any(op is candidate for candidate in elementwise_ops)
    }
    tested = {ufunc for ufunc, _ in UNARY} | {ufunc for ufunc, _, _ in BINARY}
    assert registered - tested == set()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(("ufunc", "values"), UNARY, ids=[_name(u) for u, _ in UNARY])
@given(data=st.data())
def test_unary_ufunc(ufunc, values, dtype, data):
    x = data.draw(values(data.draw(shapes), dtype))
    check_op(ufunc, x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(("ufunc", "x_values", "y_values"), BINARY, ids=[_name(u) for u, _, _ in BINARY])
@given(data=st.data())
def test_binary_ufunc_with_broadcasting(ufunc, x_values, y_values, dtype, data):
    x_shape, y_shape = data.draw(broadcastable_shapes(2))
    x = data.draw(x_values(x_shape, dtype))
    y = data.draw(y_values(y_shape, dtype))
    check_op(ufunc, x, y)
    # A Python scalar on either side is weak: the result keeps the tensor's dtype.
    x_scalar = float(data.draw(x_values((), np.float64)))
    y_scalar = float(data.draw(y_values((), np.float64)))
    check_op(lambda y: ufunc(x_scalar, y), y)
    check_op(lambda x: ufunc(x, y_scalar), x)


@pytest.mark.parametrize(("ufunc", "x_values", "y_values"), BINARY, ids=[_name(u) for u, _, _ in BINARY])
@given(data=st.data())
def test_binary_ufunc_on_float32_and_float64_gives_float64_and_each_its_own_gradient(
    ufunc, x_values, y_values, data
):
    x_shape, y_shape = data.draw(broadcastable_shapes(2, min_side=1))
    x = data.draw(x_values(x_shape, np.float32))
    y = data.draw(y_values(y_shape, np.float64))
    check_op(ufunc, x, y)


# -- operators ---------------------------------------------------------------------------------------------
OPERATORS = [  # (symbol, binary, in place, left operand's values, right operand's values)
    ("+", operator.add, operator.iadd, ANY, ANY),
    ("-", operator.sub, operator.isub, ANY, ANY),
    ("*", operator.mul, operator.imul, ANY, ANY),
    ("/", operator.truediv, operator.itruediv, ANY, NONZERO),
    ("//", operator.floordiv, operator.ifloordiv, off_grid, divisors),
    ("%", operator.mod, operator.imod, off_grid, divisors),
    ("**", operator.pow, operator.ipow, domain(0.3, 2.0), ANY),
]
OPERATOR_IDS = [symbol for symbol, *_ in OPERATORS]
OPERATOR_FIELDS = ("symbol", "binary", "in_place", "x_values", "y_values")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(OPERATOR_FIELDS, OPERATORS, ids=OPERATOR_IDS)
@given(data=st.data())
def test_operator_between_tensors(symbol, binary, in_place, x_values, y_values, dtype, data):
    x_shape, y_shape = data.draw(broadcastable_shapes(2))
    check_op(binary, data.draw(x_values(x_shape, dtype)), data.draw(y_values(y_shape, dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(OPERATOR_FIELDS, OPERATORS, ids=OPERATOR_IDS)
@given(data=st.data())
def test_reflected_operator_with_a_python_scalar_or_an_array_on_the_left(
    symbol, binary, in_place, x_values, y_values, dtype, data
):
    scalar = float(data.draw(x_values((), np.float64)))
    constant = data.draw(x_values(data.draw(shapes), dtype))
    y = data.draw(y_values(constant.shape[1:], dtype))
    check_op(lambda y: binary(scalar, y), y)  # float.__op__ gives way to Tensor.__rop__
    check_op(lambda y: binary(constant, y), y)  # ndarray.__op__ calls the ufunc, which defers to the tensor


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(OPERATOR_FIELDS, OPERATORS, ids=OPERATOR_IDS)
@given(data=st.data())
def test_in_place_operator_is_recorded(symbol, binary, in_place, x_values, y_values, dtype, data):
    x_shape, y_shape = data.draw(broadcastable_shapes(2))
    x = data.draw(x_values(np.broadcast_shapes(x_shape, y_shape), dtype))
    y = data.draw(y_values(y_shape, dtype))

    def update(x, y):
        target = x.copy()  # x * 1.0 would be a numpy scalar, not an array, when x is 0-d
        updated = in_place(target, y)
        assert updated is target
        return updated

    check_op(update, x, y)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    ("symbol", "unary", "values"),
    [("-", operator.neg, ANY), ("+", operator.pos, ANY), ("abs", abs, NONZERO)],
    ids=["neg", "pos", "abs"],
)
@given(data=st.data())
def test_unary_operator(symbol, unary, values, dtype, data):
    check_op(unary, data.draw(values(data.draw(shapes), dtype)))


# -- power's special cases ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, 0.5, 2.5], ids=str)
@given(data=st.data())
def test_power_with_a_scalar_exponent(exponent, dtype, data):
    low = 0.3 if exponent != int(exponent) or exponent < 0 else -2.0
    x = data.draw(arrays(data.draw(shapes), dtype, low, 2.0, away_from=0.0, margin=0.2))
    check_op(lambda x: x**exponent, x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_power_with_integer_exponents_takes_negative_bases(dtype, data):
    x_shape, y_shape = data.draw(broadcastable_shapes(2))
    x = data.draw(NONZERO(x_shape, dtype))
    seed = data.draw(st.integers(0, 2**32 - 1))
    exponents = np.asarray(np.random.default_rng(seed).integers(0, 4, size=y_shape), np.int8)
    check_op(np.power, x, exponents)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_power_at_a_zero_base(dtype):
    x = np.array([0.0, 0.5, 0.0, 1.5], dtype=dtype)
    check_op(lambda x: x**2, x)
    check_op(lambda x: x**0, x)
    # d(0**y)/dy is 0 for y > 0 (the limit), not log(0) * 0 = NaN.
    check_op(lambda y: np.zeros(4, dtype) ** y, np.array([1.5, 2.0, 0.7, 3.0], dtype=dtype))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_power_exponent_gradient_at_a_zero_base_is_the_limit(dtype):
    # d(0**y)/dy = 0**y * log(0): 0 for y >= 0 (taken so at y = 0), -inf for y < 0 (inf * -inf), as in torch.
    x = tape.tensor(np.array([0.0, 0.0, 0.0, 0.0], dtype=dtype), requires_grad=True)
    y = tape.tensor(np.array([2.0, 0.0, np.inf, np.nan], dtype=dtype), requires_grad=True)
    (x**y).backward(np.ones(4, dtype))
    np.testing.assert_array_equal(y.grad, [0.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, np.nan, np.nan])  # y * 0**(y-1), inf * 0 at y = inf
    y = tape.tensor(np.array([-1.0, -np.inf], dtype=dtype), requires_grad=True)
    with np.errstate(divide="ignore"):  # numpy's forward warns for 0 ** -1 itself
        (np.zeros(2, dtype) ** y).backward(np.ones(2, dtype))
    np.testing.assert_array_equal(y.grad, [-np.inf, -np.inf])


# -- arctan2, logaddexp, cbrt and hypot at zeros and infinities ----------------------------------------------
@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_arctan2_gradient_at_the_origin_is_zero_signed_as_in_pytorch(dtype):
    # d/dy = x / (x^2 + y^2) and d/dx = -y / (x^2 + y^2), with 1 / 0 read as 0: signed as x and -y.
    zeros = np.array([0.0, 0.0, -0.0, -0.0], dtype=dtype)
    y = tape.tensor(zeros, requires_grad=True)
    x = tape.tensor(zeros[[0, 2, 1, 3]], requires_grad=True)
    np.arctan2(y, x).backward(np.ones(4, dtype))
    np.testing.assert_array_equal(y.grad, 0.0)
    np.testing.assert_array_equal(x.grad, 0.0)
    np.testing.assert_array_equal(np.signbit(y.grad), np.signbit(x.data))
    np.testing.assert_array_equal(np.signbit(x.grad), ~np.signbit(y.data))
    # Away from the origin nothing changes; at an infinity inf / inf is nan, as in PyTorch.
    y = tape.tensor(np.array([1.0, np.inf, 1.0], dtype=dtype), requires_grad=True)
    x = tape.tensor(np.array([0.0, 1.0, np.inf], dtype=dtype), requires_grad=True)
    np.arctan2(y, x).backward(np.ones(3, dtype))
    np.testing.assert_array_equal(y.grad, [0.0, 0.0, np.nan])
    np.testing.assert_array_equal(x.grad, [-1.0, np.nan, 0.0])


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("ufunc", [np.logaddexp, np.logaddexp2])
def test_logaddexp_gradient_at_infinity_is_the_limit(ufunc):
    # d/dx = 1 / (1 + base**(y - x)): 1 where x alone is +inf, 0 where y alone is; nan where both are +inf.
    x = tape.tensor([np.inf, np.inf, np.inf, 1.0, -np.inf, np.inf], requires_grad=True)
    y = tape.tensor([1.0, -np.inf, np.inf, np.inf, -np.inf, np.nan], requires_grad=True)
    with np.errstate(invalid="ignore"):  # numpy's own forward warns at (inf, inf)
        out = ufunc(x, y)
    out.backward(np.ones(6))
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, np.nan, 0.0, np.nan, np.nan])
    np.testing.assert_array_equal(y.grad, [0.0, 0.0, np.nan, 1.0, np.nan, np.nan])


@pytest.mark.filterwarnings("error")
def test_cbrt_and_hypot_gradients_at_zero_give_no_warning():
    x = tape.tensor([0.0, -0.0, 8.0], requires_grad=True)
    np.cbrt(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [np.inf, np.inf, 1 / 12])  # a vertical tangent at 0
    x = tape.tensor([0.0, 3.0], requires_grad=True)
    y = tape.tensor([0.0, 4.0], requires_grad=True)
    np.hypot(x, y).backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [np.nan, 0.6])  # 0 / 0 at the origin, as in PyTorch
    np.testing.assert_array_equal(y.grad, [np.nan, 0.8])


# -- ties and NaN in maximum, minimum, fmax, fmin ----------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    ("ufunc", "x_wins"),
    [(np.maximum, np.greater), (np.minimum, np.less), (np.fmax, np.greater), (np.fmin, np.less)],
    ids=["maximum", "minimum", "fmax", "fmin"],
)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_tied_extrema_share_the_cotangent_evenly(ufunc, x_wins, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    x_data = np.asarray(rng.integers(0, 3, size=shape), dtype)  # many ties
    y_data = np.asarray(rng.integers(0, 3, size=shape), dtype)
    g = rng.standard_normal(shape).astype(dtype)
    x = tape.tensor(x_data, requires_grad=True)
    y = tape.tensor(y_data, requires_grad=True)
    ufunc(x, y).backward(g)
    share_of_x = np.where(x_data == y_data, 0.5, x_wins(x_data, y_data).astype(float))
    np.testing.assert_allclose(x.grad, g * share_of_x)
    np.testing.assert_allclose(y.grad, g * (1 - share_of_x))


@pytest.mark.parametrize(
    ("ufunc", "nan_wins"),
    [(np.maximum, True), (np.minimum, True), (np.fmax, False), (np.fmin, False)],
    ids=["maximum", "minimum", "fmax", "fmin"],
)
def test_nan_gets_the_cotangent_where_it_wins(ufunc, nan_wins):
    x_data = np.array([np.nan, 1.0, -1.0])
    y_data = np.array([0.5, np.nan, 2.0])
    x = tape.tensor(x_data, requires_grad=True)
    y = tape.tensor(y_data, requires_grad=True)
    out = ufunc(x, y)
    np.testing.assert_array_equal(out.data, ufunc(x_data, y_data))
    out.backward(np.ones(3))
    # maximum and minimum propagate a NaN; fmax and fmin ignore it.
    x_share = [1.0, 0.0] if nan_wins else [0.0, 1.0]
    x_share.append(float(out.data[2] == x_data[2]))
    np.testing.assert_array_equal(x.grad, x_share)
    np.testing.assert_array_equal(y.grad, 1 - np.array(x_share))


# -- clip --------------------------------------------------------------------------------------------------
def banded(shape: tuple[int, ...], dtype: Any) -> st.SearchStrategy[np.ndarray]:
    """Values in [-1.8, -1.4], [-0.2, 0.2] or [1.4, 1.8]: at least 0.2 from any bound in ±[0.4, 1.2]."""

    def build(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        centre = rng.choice([-1.6, 0.0, 1.6], size=shape)
        return np.asarray(centre + rng.uniform(-0.2, 0.2, size=shape), dtype)

    return st.integers(0, 2**32 - 1).map(build)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_clip_with_scalar_bounds(dtype, data):
    x = data.draw(banded(data.draw(shapes), dtype))
    check_op(lambda x: np.clip(x, -0.8, 0.8), x)
    check_op(lambda x: np.clip(x, None, 0.8), x)
    check_op(lambda x: np.clip(x, -0.8, None), x)
    check_op(lambda x: np.clip(x, min=-0.8, max=0.8), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_clip_with_tensor_bounds_that_broadcast(dtype, data):
    x_shape, low_shape, high_shape = data.draw(broadcastable_shapes(3))
    x = data.draw(banded(x_shape, dtype))
    low = data.draw(arrays(low_shape, dtype, -1.2, -0.4))
    high = data.draw(arrays(high_shape, dtype, 0.4, 1.2))
    check_op(np.clip, x, low, high)
    check_op(lambda x, high: np.clip(x, None, high), x, high)


def test_clip_refuses_an_unknown_keyword():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(
        TypeError, match=r"numpy\.clip: keyword argument\(s\) \['casting'\] are not supported"
    ):
        np.clip(x, 0.0, 1.0, casting="unsafe")


# -- round -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("decimals", [0, 1, -1])
@given(data=st.data())
def test_round_has_a_zero_gradient_away_from_its_jumps(decimals, dtype, data):
    x = data.draw(off_grid(data.draw(shapes), dtype, step=0.5 * 10.0**-decimals))
    check_op(lambda x: np.round(x, decimals), x)
    check_op(lambda x: np.round(x, decimals=decimals), x)
    check_op(lambda x: np.around(x, decimals), x)


# -- astype and copy ---------------------------------------------------------------------------------------
@given(data=st.data())
def test_astype_casts_the_gradient_back_to_the_input_dtype(data):
    shape = data.draw(shapes)
    check_op(lambda x: x.astype(np.float64), data.draw(arrays(shape, np.float32)), keeps_dtype=False)
    # Rounding to float32 makes small finite-difference steps noisy; the function is linear.
    x = data.draw(arrays(shape, np.float64))
    check_op(lambda x: x.astype(np.float32), x, keeps_dtype=False, eps=1e-2, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_astype_to_an_integer_dtype_is_not_recorded(dtype):
    x = tape.tensor([1.5, -2.5], dtype=dtype, requires_grad=True)
    y = x.astype(np.int64)
    assert y.dtype == np.int64
    assert not y.requires_grad
    np.testing.assert_array_equal(y.data, x.data.astype(np.int64))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_ufunc_dtype_argument_casts_the_inputs_first(dtype, data):
    x_shape, y_shape = data.draw(broadcastable_shapes(2))
    x = data.draw(arrays(x_shape, dtype))
    y = data.draw(arrays(y_shape, dtype))
    check_op(lambda x, y: np.multiply(x, y, dtype=np.float64), x, y, keeps_dtype=False)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_copy(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    check_op(np.copy, x)
    check_op(lambda x: x.copy(), x)
    t = tape.tensor(x, requires_grad=True)
    assert not np.shares_memory(np.copy(t).data, t.data)
    assert not np.shares_memory(t.copy().data, t.data)


# -- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("requires_grad", [True, False])
def test_a_ufunc_without_a_vjp_is_refused_at_forward_time(requires_grad):
    x = tape.tensor([0.5, -1.0], requires_grad=requires_grad)
    with pytest.raises(
        TypeError, match=r"numpy\.heaviside is not supported on tape tensors \(it has no VJP\)"
    ):
        np.heaviside(x, 0.5)
    with pytest.raises(TypeError, match=r"numpy\.spacing is not supported on tape tensors"):
        np.spacing(x)


@pytest.mark.parametrize("method", ["accumulate", "outer", "reduceat"])
def test_ufunc_methods_other_than_call_and_reduce_are_refused(method):
    x = tape.tensor([0.5, -1.0], requires_grad=True)
    args = {"accumulate": (x,), "outer": (x, x), "reduceat": (x, [0])}[method]
    with pytest.raises(TypeError, match=rf"numpy\.add\.{method} is not supported on tape tensors"):
        getattr(np.add, method)(*args)


def test_out_argument_is_refused():
    x = tape.tensor([0.5, -1.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy\.sin: out= is not supported on tape tensors"):
        np.sin(x, out=np.empty(2))
    with pytest.raises(TypeError, match=r"numpy\.add: out= is not supported on tape tensors"):
        np.add(x, x, out=np.empty(2))


def test_an_array_updated_in_place_by_a_tensor_is_refused():
    total = np.zeros(2)
    with pytest.raises(TypeError, match=r"numpy\.add: out= is not supported on tape tensors"):
        total += tape.tensor([0.5, -1.0], requires_grad=True)


def test_where_argument_is_refused():
    x = tape.tensor([0.5, -1.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy\.sin: where= is not supported on tape tensors"):
        np.sin(x, where=np.array([True, False]))


def test_other_ufunc_keywords_are_refused():
    x = tape.tensor([0.5, -1.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy\.add: keyword argument\(s\) \['casting'\] are not supported"):
        np.add(x, x, casting="unsafe")


@pytest.mark.parametrize(
    ("combine", "name"),
    [(operator.add, "add"), (np.multiply, "multiply"), (np.maximum, "maximum"), (operator.pow, "power")],
    ids=["+", "multiply", "maximum", "**"],
)
def test_shapes_that_do_not_broadcast_are_refused_naming_the_op(combine, name):
    x = tape.tensor(np.ones(3), requires_grad=True)
    y = tape.tensor(np.ones(2), requires_grad=True)
    # numpy's own error; the op and what it was given are in a note (pytest matches notes too)
    message = rf"^operands could not be broadcast together with shapes.*\n{name}: array arguments of shapes"
    with pytest.raises(ValueError, match=message):
        combine(x, y)


# -- fabs, sinc, nan_to_num ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    ("function", "values"),
    [
        (np.sinc, ANY),
        (lambda x: np.nan_to_num(x, nan=1.5, posinf=2.0, neginf=-2.0), ANY),
        (lambda x: np.nan_to_num(x, copy=False), ANY),
    ],
    ids=["sinc", "nan_to_num", "nan_to_num_copy_false"],
)
@given(data=st.data())
def test_sinc_nan_to_num(function, values, dtype, data):
    check_op(function, data.draw(values(data.draw(shapes), dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_fabs_second_derivative(dtype):
    assert tape.gradgradcheck(lambda x: np.fabs(x) ** 3, np.array([-1.5, -0.3, 0.4, 2.0], dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_sinc_gradient_is_finite_at_zero_and_differentiable_again(dtype):
    x = np.array([0.0, 1e-9, 0.01, 0.019, 0.021, 0.24, 0.26, 0.5, -1.5], dtype)
    assert tape.gradcheck(np.sinc, x)
    assert tape.gradgradcheck(np.sinc, x)
    second = tape.grad(lambda t: np.sum(tape.grad(lambda u: np.sum(np.sinc(u)))(t)))(tape.tensor(x[:1]))
    np.testing.assert_allclose(second, [-(np.pi**2) / 3], rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_nan_to_num_gradient_is_zero_where_replaced_and_copy_false_leaves_the_tensor(dtype):
    data = np.array([1.0, np.nan, np.inf, -np.inf, -2.0], dtype)
    x = tape.tensor(data, requires_grad=True)
    y = np.nan_to_num(x, copy=False, posinf=5.0)
    np.testing.assert_array_equal(y.data, np.nan_to_num(data, posinf=5.0))
    assert np.isnan(x.data[1])
    np.sum(y * 3).backward()
    np.testing.assert_array_equal(x.grad, np.array([3, 0, 0, 0, 3], dtype))
    assert tape.gradgradcheck(lambda t: np.nan_to_num(t) ** 3, data[[0, 4]])


def test_nan_to_num_refuses_a_replacement_that_requires_grad():
    with pytest.raises(TypeError, match=r"^nan_to_num: nan= is a constant"):
        np.nan_to_num(tape.tensor([np.nan]), nan=tape.tensor(1.0, requires_grad=True))


@pytest.mark.parametrize("name", ["sinc", "nan_to_num"])
def test_sinc_and_nan_to_num_match_torch(name):
    torch = pytest.importorskip("torch")
    data = np.array([0.0, 0.3, -1.7, 2.5, np.nan, np.inf, -np.inf])
    x = tape.tensor(data, requires_grad=True)
    reference = torch.tensor(data, requires_grad=True)
    getattr(np, name)(x).sum().backward() if name == "nan_to_num" else np.sum(np.sinc(x[:4])).backward()
    if name == "nan_to_num":
        getattr(torch, name)(reference, nan=0.0, posinf=np.finfo(np.float64).max).sum().backward()
        np.testing.assert_array_equal(x.grad, reference.grad.numpy())
    else:
        torch.sinc(reference[:4]).sum().backward()
        np.testing.assert_allclose(x.grad, reference.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_power_second_derivative_at_a_zero_exponent():
    # d/dy of d(x**y)/dx = y x**(y-1) at y = 0 is 1/x: masking y == 0 in the first derivative would lose it.
    exponents, bases = np.array([0.0, 1.0, 0.0]), np.array([2.0, 0.5, 3.0])
    assert tape.gradgradcheck(lambda y, x: np.power(x, y), exponents, bases)
    x = tape.tensor([0.0, 2.0], requires_grad=True)
    np.sum(x ** tape.tensor([0.0, 0.0], requires_grad=True)).backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])  # 0 at the origin too, not 0 * inf

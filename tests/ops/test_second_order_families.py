"""Second derivatives of every registered op and every ``tape.nn.functional`` op that no other test file
checks to second order, in float64; a float32 second-order check across the op families; and a coverage
test that fails when a registered op is checked to second order nowhere.

``tape.gradgradcheck`` differentiates each recorded VJP against finite differences of the first derivative,
with respect to the inputs and to the cotangent. A piecewise-linear op (median, partition, relu, l1_loss,
...) has a zero second derivative in its inputs, but its VJP is linear in the cotangent and must itself be
recorded: the check of that derivative is what fails when a VJP leaves the tape. Inputs are drawn away
from the points where an op is not differentiable: distinct values (no ties for median, partition, max),
none near a multiple of 0.1, where the cases put every kink (relu's 0, hardtanh's bounds, the margins).

Linear algebra (``ops/linalg.py``, ``ops/decompositions.py``) is left to its own test files.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
import tape.nn.functional as F
from tape import registry
from tests.ops.test_second_order import BINARY, FLAT, UNARY
from tests.strategies import arrays


def off_grid(shape: tuple[int, ...], offset: float = 0.05) -> st.SearchStrategy[np.ndarray]:
    """Arrays of distinct values ``0.1 k + offset``, each moved by at most 0.01, in a random order.

    With the default offset every value is at least 0.04 from any multiple of 0.1 and 0.08 from any other
    value; with ``offset=0`` the values lie within 0.01 of multiples of 0.1, so that the difference of two
    arrays, one of each kind, is again at least 0.03 from every multiple of 0.1.
    """

    def build(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        size = int(np.prod(shape))
        values = (rng.permutation(size) - size // 2) * 0.1 + offset + rng.uniform(-0.01, 0.01, size)
        return values.reshape(shape)

    return st.integers(0, 2**32 - 1).map(build)


def probabilities(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return arrays(shape, low=0.1, high=0.9)


def positive(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return arrays(shape, low=0.5, high=2.0)


class Case(NamedTuple):
    """``function`` exercises ``op`` (the callable registered for it, or the ``tape.nn.functional``
    function); ``inputs`` draws the tuple of arrays it is differentiated at."""

    op: Any
    function: Callable[..., Any]
    inputs: st.SearchStrategy[tuple[np.ndarray, ...]]


def case(op: Any, function: Callable[..., Any], *inputs: st.SearchStrategy[np.ndarray]) -> Case:
    return Case(op, function, st.tuples(*inputs))


# -- in-place operators, each on a fresh intermediate so that the leaf itself is never written ------------
def _copy_into(x):
    y = x * 1.0
    np.copyto(y, np.sin(x[1]), where=np.array([True, False, True, True]))
    return y * x


def _add_in_place(x):
    y = x * 1.0
    y += np.sin(x)
    return y * y


def _subtract_in_place(x):
    y = x * 1.0
    y -= x**3
    return y * x


def _multiply_in_place(x):
    y = x * 1.0
    y *= np.cos(x)
    return y


def _divide_in_place(x):
    y = x * 1.0
    y /= x**2 + 1.0
    return y


def _power_in_place(x):
    y = np.exp(x)
    y **= 1.5
    return y


def _remainder_in_place(x):
    y = x * 1.0
    y %= 0.7  # jumps at multiples of 0.7, never near an off-grid value
    return y * y


def _floor_divide_in_place(x):
    y = x * 1.0
    y //= 0.3
    return y * x


def _matmul_in_place(x):
    y = x * 1.0
    y @= np.cos(x).T @ x
    return np.tanh(y)


# -- constants: class indices, labels, masks ---------------------------------------------------------------
CLASSES = np.array([0, 3, 1])
LABELS = np.array([[1, -1, -1, 1], [-1, 1, -1, 1], [1, 1, -1, -1]])
ROW_LABELS = np.array([1, -1, -1])
MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
CHOSEN = np.array([[0, 2, 1, 1], [2, 0, 0, 1], [1, 1, 2, 0]])
REPEATED = np.array([[3, 0, 3], [1, 1, 2], [0, 2, 2]])


def _cosine_away_from_margin(pair: tuple[np.ndarray, np.ndarray], margin: float = 0.1) -> bool:
    x1, x2 = pair
    cosine = np.sum(x1 * x2, axis=-1) / np.sqrt(np.sum(x1 * x1, axis=-1) * np.sum(x2 * x2, axis=-1))
    return bool(np.all(np.abs(cosine - margin) > 0.01))


SECOND_ORDER = {
    # piecewise constant: a zero gradient, recorded under create_graph; multiplied by x to leave a slope
    "floor": case(np.floor, lambda x: np.floor(x) * x, off_grid((3, 4))),
    "ceil": case(np.ceil, lambda x: np.ceil(x) * x, off_grid((3, 4))),
    "trunc": case(np.trunc, lambda x: np.trunc(x) * x, off_grid((3, 4))),
    "rint": case(np.rint, lambda x: np.rint(x) * x, off_grid((3, 4))),
    "sign": case(np.sign, lambda x: np.sign(x) * x**2, off_grid((3, 4))),
    "round": case(np.round, lambda x: np.round(x) * x, off_grid((3, 4))),
    "around": case(np.around, lambda x: np.around(x) * x, off_grid((3, 4))),
    "floor_divide": case(np.floor_divide, lambda x: np.floor_divide(x, 0.3) * x, off_grid((3, 4))),
    # in-place operators
    "copyto": case(np.copyto, _copy_into, off_grid((3, 4))),
    "iadd": case(operator.iadd, _add_in_place, off_grid((3, 4))),
    "isub": case(operator.isub, _subtract_in_place, off_grid((3, 4))),
    "imul": case(operator.imul, _multiply_in_place, off_grid((3, 4))),
    "itruediv": case(operator.itruediv, _divide_in_place, off_grid((3, 4))),
    "ipow": case(operator.ipow, _power_in_place, off_grid((3, 4))),
    "imod": case(operator.imod, _remainder_in_place, off_grid((3, 4))),
    "ifloordiv": case(operator.ifloordiv, _floor_divide_in_place, off_grid((3, 4))),
    "imatmul": case(operator.imatmul, _matmul_in_place, off_grid((3, 4))),
    # copies and casts
    "copy": case(np.copy, lambda x: np.copy(x) * x, off_grid((3, 4))),
    "astype": case(np.ndarray.astype, lambda x: np.sin(x).astype(np.float64) * x, off_grid((3, 4))),
    "ravel": case(np.ravel, lambda x: np.ravel(x) ** 3, off_grid((3, 4))),
    # rearranging
    "atleast_1d": case(np.atleast_1d, lambda x: np.atleast_1d(x) ** 3, off_grid(())),
    "atleast_2d": case(np.atleast_2d, lambda x: np.atleast_2d(x) * x, off_grid((4,))),
    "fliplr": case(np.fliplr, lambda x: np.fliplr(x) * x, off_grid((3, 4))),
    "flipud": case(np.flipud, lambda x: np.flipud(x) * x, off_grid((3, 4))),
    # joining and splitting
    "append": case(np.append, lambda x, y: np.append(x, y, axis=0) ** 2, off_grid((2, 3)), off_grid((1, 3))),
    "append flat": case(
        np.append, lambda x, y: np.append(x, y) * np.sin(np.append(y, x)), off_grid((2, 3)), off_grid((2,))
    ),
    "array_split": case(
        np.array_split,
        lambda x: np.array_split(x, 3, axis=1)[0][:, :1] * np.array_split(x, 3, axis=1)[2] ** 2,
        off_grid((3, 4)),
    ),
    "hsplit": case(np.hsplit, lambda x: np.hsplit(x, 2)[0] * np.hsplit(x, 2)[1] ** 2, off_grid((3, 4))),
    "vsplit": case(
        np.vsplit, lambda x: np.vsplit(x, [1])[0] * np.cos(np.vsplit(x, [1])[1]), off_grid((3, 4))
    ),
    "dsplit": case(
        np.dsplit, lambda x: np.dsplit(x, [1])[0] * np.dsplit(x, [1])[1] ** 2, off_grid((2, 2, 3))
    ),
    "column_stack": case(
        np.column_stack, lambda x, y: np.column_stack([x, y]) ** 3, off_grid((3,)), off_grid((3, 2))
    ),
    "hstack": case(np.hstack, lambda x, y: np.hstack([x, y]) ** 3, off_grid((2, 3)), off_grid((2, 1))),
    "vstack": case(np.vstack, lambda x, y: np.vstack([x, y]) ** 3, off_grid((2, 3)), off_grid((3,))),
    "dstack": case(np.dstack, lambda x, y: np.dstack([x, y]) ** 3, off_grid((2, 3)), off_grid((2, 3))),
    # selection
    "take_along_axis": case(
        np.take_along_axis, lambda x: np.take_along_axis(x, REPEATED, axis=1) ** 2, off_grid((3, 4))
    ),
    "take_along_axis flat": case(
        np.take_along_axis,
        lambda x: np.take_along_axis(x, np.array([5, 0, 5, 11]), axis=None),
        off_grid((3, 4)),
    ),
    "choose": case(np.choose, lambda a, b, c: np.choose(CHOSEN, [a, b**2, c]) ** 2, *[off_grid((3, 4))] * 3),
    "choose wrap": case(
        np.choose,
        lambda a, b: np.choose(CHOSEN - 1, [a, b], mode="wrap") * a,
        off_grid((3, 4)),
        off_grid((4,)),
    ),
    "select": case(
        np.select,
        lambda x, y, z: np.select([MASK, ~MASK & (CHOSEN == 0)], [x**2, np.sin(y)], default=z) * x,
        *[off_grid((3, 4))] * 3,
    ),
    "compress": case(
        np.compress, lambda x: np.compress([True, False, True], x, axis=0) ** 2, off_grid((3, 4))
    ),
    "compress flat": case(np.compress, lambda x: np.compress([False, True, True], x), off_grid((3, 4))),
    "extract": case(np.extract, lambda x: np.extract(MASK, x) * np.extract(MASK, x**2), off_grid((3, 4))),
    "partition": case(np.partition, lambda x: np.partition(x, 1, axis=1) ** 2, off_grid((3, 4))),
    "partition several": case(np.partition, lambda x: np.partition(x, [0, 2], axis=0) * x, off_grid((3, 4))),
    "partition flat": case(np.partition, lambda x: np.partition(x, 5, axis=None), off_grid((3, 4))),
    # nn functions
    "relu": case(F.relu, lambda x: F.relu(x) * x, off_grid((3, 4))),
    "leaky_relu": case(F.leaky_relu, lambda x: F.leaky_relu(x, 0.2), off_grid((3, 4))),
    "selu": case(F.selu, F.selu, off_grid((3, 4))),
    "hardtanh": case(F.hardtanh, lambda x: F.hardtanh(x, -0.3, 0.4) * x, off_grid((3, 4))),
    # a fixed rng: every call, finite differences included, drops the same elements
    "dropout": case(
        F.dropout, lambda x: F.dropout(x, 0.4, rng=np.random.default_rng(0)) ** 2, off_grid((3, 4))
    ),
    "embedding": case(F.embedding, lambda w: F.embedding(REPEATED, w) ** 2, off_grid((4, 2))),
    "dropout2d": case(
        F.dropout2d, lambda x: F.dropout2d(x, 0.4, rng=np.random.default_rng(0)) ** 2, off_grid((2, 3, 2, 2))
    ),
    # losses
    "mse_loss": case(F.mse_loss, F.mse_loss, off_grid((3, 4)), off_grid((3, 4), offset=0.0)),
    "l1_loss": case(
        F.l1_loss,
        lambda x, t: F.l1_loss(x, t, reduction="none"),
        off_grid((3, 4)),
        off_grid((3, 4), offset=0.0),
    ),
    "smooth_l1_loss": case(
        F.smooth_l1_loss,
        lambda x, t: F.smooth_l1_loss(x, t, reduction="sum", beta=0.5),
        off_grid((3, 4)),
        off_grid((3, 4), offset=0.0),
    ),
    "huber_loss": case(
        F.huber_loss,
        lambda x, t: F.huber_loss(x, t, reduction="none", delta=0.3),
        off_grid((3, 4)),
        off_grid((3, 4), offset=0.0),
    ),
    "binary_cross_entropy": case(
        F.binary_cross_entropy,
        lambda p, t: F.binary_cross_entropy(p, t, weight=np.array([1.0, 0.5, 2.0, 1.5])),
        probabilities((3, 4)),
        probabilities((3, 4)),
    ),
    "binary_cross_entropy_with_logits": case(
        F.binary_cross_entropy_with_logits,
        lambda x, t, w: F.binary_cross_entropy_with_logits(x, t, reduction="sum", pos_weight=w),
        off_grid((3, 4)),
        probabilities((3, 4)),
        positive((4,)),
    ),
    "nll_loss": case(
        F.nll_loss,
        lambda x: F.nll_loss(np.tanh(x), CLASSES, weight=np.array([0.5, 1.0, 2.0, 1.5])),
        off_grid((3, 4)),
    ),
    "cross_entropy probability targets": case(
        F.cross_entropy,
        lambda x, t: F.cross_entropy(x, t / np.sum(t, axis=1, keepdims=True), reduction="none"),
        off_grid((3, 4)),
        probabilities((3, 4)),
    ),
    "kl_div": case(
        F.kl_div, lambda x, t: F.kl_div(x, t, reduction="batchmean"), off_grid((3, 4)), probabilities((3, 4))
    ),
    "kl_div log target": case(
        F.kl_div,
        lambda x, t: F.kl_div(x, t, reduction="none", log_target=True),
        off_grid((3, 4)),
        off_grid((3, 4)),
    ),
    "hinge_embedding_loss": case(
        F.hinge_embedding_loss,
        lambda x: F.hinge_embedding_loss(x, LABELS, margin=0.2, reduction="sum"),
        off_grid((3, 4)),
    ),
    "cosine_embedding_loss": Case(
        F.cosine_embedding_loss,
        lambda x1, x2: F.cosine_embedding_loss(x1, x2, ROW_LABELS, margin=0.1, reduction="none"),
        st.tuples(off_grid((3, 4)), off_grid((3, 4))).filter(_cosine_away_from_margin),
    ),
    "margin_ranking_loss": case(
        F.margin_ranking_loss,
        lambda x1, x2: F.margin_ranking_loss(x1, x2, LABELS, margin=0.1),
        off_grid((3, 4)),
        off_grid((3, 4), offset=0.0),
    ),
}


@pytest.mark.parametrize("name", SECOND_ORDER)
@given(data=st.data())
def test_second_derivative(name, data):
    op_case = SECOND_ORDER[name]
    assert tape.gradgradcheck(op_case.function, *data.draw(op_case.inputs))


# -- reductions and order statistics over a drawn axis, the nan* forms with NaNs in the input ------------
METHODS = st.sampled_from(
    [
        "linear",
        "lower",
        "higher",
        "nearest",
        "midpoint",
        "inverted_cdf",
        "averaged_inverted_cdf",
        "closest_observation",
        "interpolated_inverted_cdf",
        "hazen",
        "weibull",
        "median_unbiased",
        "normal_unbiased",
    ]
)
PERCENTS = st.sampled_from([37.0, [10.0, 75.0], np.array([[0.0, 50.0], [90.0, 100.0]])])
FRACTIONS = st.sampled_from([0.4, [0.05, 0.5, 1.0]])

# name -> (the numpy function, a strategy for its other keyword arguments, whether the input holds NaNs)
STATISTICS: dict[str, tuple[Callable[..., Any], st.SearchStrategy[dict[str, Any]], bool]] = {
    "amax": (np.amax, st.just({}), False),
    "amin": (np.amin, st.just({}), False),
    "ptp": (np.ptp, st.just({}), False),
    "median": (np.median, st.just({}), False),
    "percentile": (np.percentile, st.fixed_dictionaries({"q": PERCENTS, "method": METHODS}), False),
    "nansum": (np.nansum, st.just({}), True),
    "nanmean": (np.nanmean, st.just({}), True),
    "nanstd": (np.nanstd, st.fixed_dictionaries({"ddof": st.sampled_from([0, 1])}), True),
    "nanvar with NaNs": (np.nanvar, st.fixed_dictionaries({"ddof": st.sampled_from([0, 1])}), True),
    "nanmedian": (np.nanmedian, st.just({}), True),
    "nanpercentile": (np.nanpercentile, st.fixed_dictionaries({"q": PERCENTS, "method": METHODS}), True),
    "nanquantile": (np.nanquantile, st.fixed_dictionaries({"q": FRACTIONS, "method": METHODS}), True),
}


@st.composite
def with_some_nans(draw: st.DrawFn, shape: tuple[int, int] = (3, 4)) -> np.ndarray:
    """An off-grid ``shape`` array with at most one NaN in each row and each column: every slice along
    either axis keeps at least two numbers."""
    x = draw(off_grid(shape))
    columns = draw(st.permutations(range(shape[1])))
    for row, has_nan in enumerate(draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0]))):
        if has_nan:
            x[row, columns[row]] = np.nan
    return x


@pytest.mark.parametrize("name", STATISTICS)
@given(
    data=st.data(),
    axis=st.sampled_from([None, 0, 1, -1, (0, 1), (1, 0)]),
    keepdims=st.booleans(),
)
def test_statistic_second_derivative(name, data, axis, keepdims):
    function, options_strategy, nans = STATISTICS[name]
    options = data.draw(options_strategy)
    x = data.draw(with_some_nans() if nans else off_grid((3, 4)))
    assert tape.gradgradcheck(lambda x: function(x, axis=axis, keepdims=keepdims, **options) ** 2, x)


# -- float32 -----------------------------------------------------------------------------------------------
def _layer_norm(x, w):
    return F.layer_norm(x, (4,), w[0], w[1])


def _set_rows(x):
    y = x * 1.0
    y[[0, 2]] = np.sin(x[1])
    return y * x


# One or more ops of every family. The VJPs, and the VJPs of the VJPs, run in float32; gradcheck compares
# them with finite differences of the first derivative computed in float64, within its float32 tolerances.
FLOAT32 = {
    "elementwise unary": case(np.tanh, lambda x: np.tanh(x) * np.exp(x), off_grid((3, 4))),
    "elementwise sqrt log": case(np.sqrt, lambda x: np.sqrt(x) * np.log(x), positive((3, 4))),
    "elementwise binary": case(
        np.arctan2, lambda x, y: np.arctan2(x, y) / (y * y + 1), off_grid((3, 4)), off_grid((4,), offset=0.0)
    ),
    "power": case(np.power, np.power, positive((3, 4)), off_grid((3, 1))),
    "maximum": case(np.maximum, lambda x, y: np.maximum(x, y) ** 2, off_grid((3, 4)), off_grid((3, 4), 0.0)),
    "matmul": case(np.matmul, lambda x, y: np.tanh(x @ y.T), off_grid((3, 4)), off_grid((2, 4))),
    "sum": case(np.sum, lambda x: np.sum(x**2, axis=0) ** 2, off_grid((3, 4))),
    "max": case(np.max, lambda x: np.max(x, axis=1) ** 2, off_grid((3, 4))),
    "prod": case(np.prod, lambda x: np.prod(x, axis=0), off_grid((3, 4))),
    "var": case(np.var, lambda x: np.var(x, axis=1), off_grid((3, 4))),
    "std": case(np.std, lambda x: np.std(x, axis=0, ddof=1), off_grid((3, 4))),
    "median": case(np.median, lambda x: np.median(x, axis=1) ** 2, off_grid((3, 4))),
    "quantile": case(
        np.quantile, lambda x: np.quantile(x, np.array([0.3, 0.8], x.dtype), axis=0) ** 2, off_grid((3, 4))
    ),
    "nanmean": case(np.nanmean, lambda x: np.nanmean(x, axis=0) ** 2, with_some_nans()),
    "cumprod": case(np.cumprod, lambda x: np.cumprod(x, axis=1), off_grid((3, 4))),
    "reshape transpose": case(np.reshape, lambda x: np.reshape(x, (2, 6)).T ** 3, off_grid((3, 4))),
    "flip": case(np.flip, lambda x: np.flip(x, 1) * x, off_grid((3, 4))),
    "pad": case(np.pad, lambda x: np.pad(x, 1, mode="reflect") ** 2, off_grid((3, 4))),
    "tile": case(np.tile, lambda x: np.sin(np.tile(x, (2, 1))), off_grid((3, 2))),
    "getitem repeated": case(operator.getitem, lambda x: x[[0, 0, 2]] ** 3, off_grid((3, 4))),
    "setitem": case(operator.setitem, _set_rows, off_grid((3, 4))),
    "copyto": case(np.copyto, _copy_into, off_grid((3, 4))),
    "sort": case(np.sort, lambda x: np.sort(x, axis=0) ** 2, off_grid((3, 4))),
    "take_along_axis": case(
        np.take_along_axis, lambda x: np.take_along_axis(x, REPEATED, 1) ** 2, off_grid((3, 4))
    ),
    "choose": case(
        np.choose, lambda a, b: np.choose(CHOSEN % 2, [a, b]) ** 2, off_grid((3, 4)), off_grid((3, 4))
    ),
    "concatenate": case(
        np.concatenate, lambda x, y: np.concatenate([x, y]) ** 3, off_grid((3, 4)), off_grid((1, 4))
    ),
    "stack": case(np.stack, lambda x: np.prod(np.stack([x, np.cos(x)], axis=-1), axis=-1), off_grid((3, 4))),
    "split": case(
        np.split, lambda x: np.split(x, 2, axis=1)[0] * np.split(x, 2, axis=1)[1] ** 2, off_grid((3, 4))
    ),
    "softmax": case(F.softmax, lambda x: F.softmax(x, axis=1) * x, off_grid((3, 4))),
    "log_softmax": case(F.log_softmax, lambda x: F.log_softmax(x, axis=0) ** 2, off_grid((3, 4))),
    "relu": case(F.relu, lambda x: F.relu(x) * x, off_grid((3, 4))),
    "gelu": case(F.gelu, F.gelu, off_grid((3, 4))),
    "layer_norm": case(F.layer_norm, _layer_norm, off_grid((3, 4)), positive((2, 4))),
    "conv2d": case(
        F.conv2d,
        lambda x, w: np.tanh(F.conv2d(x, w, padding=1)),
        off_grid((1, 2, 3, 3)),
        off_grid((2, 2, 2, 2)),
    ),
    "max_pool2d": case(F.max_pool2d, lambda x: F.max_pool2d(x, 2, 1) ** 2, off_grid((1, 1, 3, 3))),
    "conv_transpose2d": case(
        F.conv_transpose2d,
        lambda x, w: np.tanh(F.conv_transpose2d(x, w, stride=2)),
        off_grid((1, 2, 2, 2)),
        off_grid((2, 1, 2, 2)),
    ),
    "interpolate": case(
        F.interpolate,
        lambda x: F.interpolate(x, scale_factor=2, mode="bilinear") ** 2,
        off_grid((1, 1, 2, 3)),
    ),
    "adaptive_avg_pool2d": case(
        F.adaptive_avg_pool2d, lambda x: F.adaptive_avg_pool2d(x, (2, 2)) ** 2, off_grid((1, 2, 3, 3))
    ),
    "group_norm": case(F.group_norm, lambda x: np.tanh(F.group_norm(x, 2)), off_grid((2, 4, 2, 1))),
    "scaled_dot_product_attention": case(
        F.scaled_dot_product_attention,
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True) ** 2,
        off_grid((2, 3)),
        off_grid((2, 3), offset=0.02),
        off_grid((2, 2)),
    ),
    "cross_entropy": case(F.cross_entropy, lambda x: F.cross_entropy(x, CLASSES), off_grid((3, 4))),
    "mse_loss": case(F.mse_loss, F.mse_loss, off_grid((3, 4)), off_grid((3, 4), offset=0.0)),
    "binary_cross_entropy_with_logits": case(
        F.binary_cross_entropy_with_logits,
        F.binary_cross_entropy_with_logits,
        off_grid((3, 4)),
        probabilities((3, 4)),
    ),
    "kl_div": case(
        F.kl_div, lambda x, t: F.kl_div(x, t, reduction="sum"), off_grid((3, 4)), probabilities((3, 4))
    ),
}


@pytest.mark.parametrize("name", FLOAT32)
@given(data=st.data())
def test_float32_second_derivative(name, data):
    op_case = FLOAT32[name]
    inputs = [x.astype(np.float32) for x in data.draw(op_case.inputs)]
    out, pullback = tape.vjp(op_case.function, *inputs)
    assert out.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in pullback(np.ones_like(out.data)))
    assert tape.gradgradcheck(op_case.function, *inputs)


# -- coverage ----------------------------------------------------------------------------------------------
#: Registered callables whose results are booleans, integers, shapes or new constant arrays: no gradient.
NOT_DIFFERENTIABLE = (
    *(np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal),
    *(np.logical_and, np.logical_or, np.logical_xor, np.logical_not),
    *(np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert),
    *(np.isfinite, np.isinf, np.isnan, np.signbit),
    *(np.all, np.any, np.allclose, np.isclose, np.array_equal, np.count_nonzero, np.nonzero),
    *(np.argmax, np.argmin, np.argsort, np.shape, np.size, np.ndim, np.iscomplexobj, np.isrealobj),
    *(np.empty_like, np.zeros_like, np.ones_like, np.full_like),
    *(np.searchsorted, np.digitize),
    tape.Tensor.backward,  # the reverse sweep, registered beside the ops but not one of them
)
#: ops/linalg.py and ops/decompositions.py: checked by tests/ops/test_linalg.py, test_decompositions.py and
#: test_linalg_complex.py (eig, eigvals).
LINEAR_ALGEBRA = (
    *(np.dot, np.vdot, np.inner, np.outer, np.kron, np.tensordot, np.cross, np.einsum, np.einsum_path),
    *(np.vecdot, np.matvec, np.vecmat),
    *(np.linalg.matmul, np.linalg.outer, np.linalg.tensordot, np.linalg.vecdot, np.linalg.cross),
    *(
        np.linalg.multi_dot,
        np.linalg.matrix_power,
        np.linalg.norm,
        np.linalg.vector_norm,
        np.linalg.matrix_norm,
    ),
    *(np.linalg.cond, np.linalg.matrix_rank, np.linalg.det, np.linalg.slogdet, np.linalg.inv, np.linalg.pinv),
    *(np.linalg.solve, np.linalg.lstsq, np.linalg.cholesky, np.linalg.qr, np.linalg.svd, np.linalg.svdvals),
    *(np.linalg.eigh, np.linalg.eigvalsh, np.linalg.eig, np.linalg.eigvals),
)
#: Ops whose second derivatives another file checks (gradgradcheck, or tape.hvp against differences of
#: tape.grad through a nonlinear function of the op).
CHECKED_ELSEWHERE = {
    "tests/ops/test_second_order.py": (
        *({ufunc for ufunc, *_ in (*UNARY, *BINARY)} - FLAT),
        *(np.sum, np.mean, np.prod, np.max, np.min, np.reshape, np.transpose, np.moveaxis, np.swapaxes),
        *(np.expand_dims, np.squeeze, np.broadcast_to, np.where, np.clip, np.matmul),
        *(operator.getitem, operator.setitem),
    ),
    "tests/ops/test_statistics.py": (
        *(np.var, np.std, np.nanvar, np.average, np.cumsum, np.cumprod, np.quantile, np.diff),
        *(np.cumulative_sum, np.cumulative_prod),
    ),
    "tests/ops/test_rearrange.py": (
        *(np.tile, np.repeat, np.flip, np.roll, np.rot90, np.diag, np.diagflat, np.diagonal, np.trace),
        *(np.triu, np.tril, np.atleast_3d, np.pad, np.rollaxis),
    ),
    "tests/ops/test_elementwise.py": (np.fabs, np.sinc, np.nan_to_num),
    "tests/ops/test_shape.py": (np.meshgrid,),
    "tests/ops/test_nondifferentiable.py": (np.bincount, np.histogram),
    "tests/ops/test_ranges.py": (np.linspace, np.logspace),
    "tests/ops/test_selection.py": (np.take, np.put_along_axis, np.sort),
    "tests/ops/test_joining.py": (np.concatenate, np.stack, np.block, np.split, np.unstack),
    "tests/ops/test_nn.py": (
        F.sigmoid,
        F.tanh,
        F.gelu,
        F.softplus,
        F.elu,
        F.linear,
        F.layer_norm,
        F.batch_norm,
    ),
    "tests/ops/test_conv.py": (F.conv1d, F.conv2d, F.avg_pool2d, F.max_pool2d),
    "tests/ops/test_special.py": (F.softmax, F.log_softmax),
    "tests/ops/test_losses.py": (F.cross_entropy,),
    "tests/nn/test_normalization.py": (F.group_norm, F.instance_norm),
    "tests/ops/test_attention.py": (F.scaled_dot_product_attention,),
    "tests/ops/test_spatial.py": (F.conv_transpose2d, F.interpolate, F.adaptive_avg_pool2d),
    # scipy.special's ufuncs, registered only once tape.ops.scipy_special is imported (lazily, by dispatch).
    "tests/ops/test_scipy_special.py": getattr(getattr(tape.ops, "scipy_special", None), "REGISTERED", ()),
    "tests/ops/test_signal.py": (
        *(np.convolve, np.correlate, np.interp, np.polyval, np.gradient),
        *(np.real, np.imag, np.angle, np.real_if_close),
    ),
    "tests/ops/test_fft.py": (
        *(np.fft.fft, np.fft.ifft, np.fft.fft2, np.fft.ifft2, np.fft.fftn, np.fft.ifftn),
        *(np.fft.rfft, np.fft.irfft, np.fft.rfft2, np.fft.irfft2, np.fft.rfftn, np.fft.irfftn),
        *(np.fft.hfft, np.fft.ihfft, np.fft.fftshift, np.fft.ifftshift),
    ),
}


def _name(op: Any) -> str:
    return f"{getattr(op, '__module__', None) or ''}.{getattr(op, '__qualname__', op)}"


def _checked() -> set[Any]:
    return {
        *(op_case.op for op_case in SECOND_ORDER.values()),
        *(function for function, _, _ in STATISTICS.values()),
        *(op for ops in CHECKED_ELSEWHERE.values() for op in ops),
    }


def test_every_registered_op_is_checked_to_second_order():
    registered = [*registry.UFUNCS, *registry.FUNCTIONS]
    exempt = {*NOT_DIFFERENTIABLE, *LINEAR_ALGEBRA}
    missing = sorted(_name(op) for op in registered if op not in exempt and op not in _checked())
    assert not missing, f"no second-order check for: {', '.join(missing)}"


def test_every_nn_functional_op_is_checked_to_second_order():
    missing = sorted(name for name in F.__all__ if getattr(F, name) not in _checked())
    assert not missing, f"no second-order check for tape.nn.functional.{', '.join(missing)}"


def test_the_lists_name_only_registered_ops():
    known = {*registry.UFUNCS, *registry.FUNCTIONS, *(getattr(F, name) for name in F.__all__)}
    listed = {
        *_checked(),
        *NOT_DIFFERENTIABLE,
        *LINEAR_ALGEBRA,
        *(op_case.op for op_case in FLOAT32.values()),
    }
    stale = sorted(_name(op) for op in listed if op not in known)
    assert not stale, f"listed but neither registered nor in tape.nn.functional: {', '.join(stale)}"

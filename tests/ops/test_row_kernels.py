"""The row kernels of ops/special.py, ops/losses.py, ops/reductions.py and ops/statistics.py: softmax,
log_softmax and their VJPs, cross-entropy against class indices and its VJP, the VJP of max and min, and
the VJP of var and std.

Each kernel agrees with its numpy twin (random rows of both dtypes, empty rows and batches, extreme and
non-finite logits, ties); each op takes its kernel in the layout it is for and only there; the gradient
through the kernel equals the gradient of the general numpy path (the same reduction written with a
tuple axis, or a class axis that is not last), and second derivatives, whose VJPs run numpy on tensors,
still hold.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tape import jit
from tape.ops import losses, reductions, special, statistics
from tests.strategies import FLOAT_DTYPES

IGNORE = -1  # the ignore_index of these tests' cross-entropy targets


@pytest.fixture(autouse=True)
def kernel_must_compile():
    """A silent fallback to the twin would make every kernel-against-twin check compare the twin twice."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", jit.JitFallbackWarning)
        yield


def tolerance(dtype: Any) -> dict[str, float]:
    # The kernels sum in float64 and in row order, numpy in the dtype and pairwise; exp and log differ too.
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


# -- arguments for each kernel, from random rows ------------------------------------------------------------
def _targets(rng: np.random.Generator, rows: int, classes: int) -> np.ndarray:
    """Class indices with about one in four ignored (all ignored when there are no classes)."""
    if classes == 0:
        return np.full(rows, IGNORE, dtype=np.int64)
    return np.where(rng.uniform(size=rows) < 0.25, IGNORE, rng.integers(0, classes, rows))


def _class_weight(rng: np.random.Generator, classes: int, weighted: bool) -> np.ndarray:
    return rng.uniform(0.5, 2.0, classes) if weighted else np.ones(classes)


def _cross_entropy_arguments(rng: np.random.Generator, x: np.ndarray) -> tuple[Any, ...]:
    rows, classes = x.shape
    smoothing = float(rng.choice([0.0, 0.2]))
    weight = _class_weight(rng, classes, bool(rng.integers(2)))
    return x, _targets(rng, rows, classes), weight, IGNORE, smoothing


def _arguments(name: str, rng: np.random.Generator, x: np.ndarray) -> tuple[Any, ...]:
    """Arguments of kernel ``name`` built around the rows ``x``."""
    g = rng.standard_normal(x.shape).astype(x.dtype)
    row_g = rng.standard_normal(x.shape[0])
    if name in ("softmax_rows", "log_softmax_rows"):
        return (x,)
    if name == "softmax_vjp_rows":
        return g, special.softmax_rows.twin(x)
    if name == "log_softmax_vjp_rows":
        return g, special.log_softmax_rows.twin(x)
    if name == "cross_entropy_rows":
        return _cross_entropy_arguments(rng, x)
    if name == "cross_entropy_vjp_rows":
        return (*_cross_entropy_arguments(rng, x), row_g)
    if name == "extremum_vjp_rows":
        ties = np.round(x).astype(x.dtype)  # few distinct values: many ties
        extreme = np.max(ties, axis=1) if x.shape[1] else np.zeros(x.shape[0], x.dtype)
        return row_g.astype(x.dtype), ties, extreme
    if name == "centred_rows":
        return x, row_g
    raise AssertionError(name)


KERNELS = {
    "softmax_rows": special.softmax_rows,
    "log_softmax_rows": special.log_softmax_rows,
    "softmax_vjp_rows": special.softmax_vjp_rows,
    "log_softmax_vjp_rows": special.log_softmax_vjp_rows,
    "cross_entropy_rows": losses.cross_entropy_rows,
    "cross_entropy_vjp_rows": losses.cross_entropy_vjp_rows,
    "extremum_vjp_rows": reductions.extremum_vjp_rows,
    "centred_rows": statistics.centred_rows,
}


def check_kernel_against_twin(name: str, arguments: tuple[Any, ...]) -> None:
    kernel = KERNELS[name]
    with jit.use_jit(True), np.errstate(all="ignore"):
        result = kernel(*arguments)
    with np.errstate(all="ignore"):
        expected = kernel.twin(*arguments)
    dtype = arguments[0].dtype if name != "extremum_vjp_rows" else arguments[1].dtype
    assert result.dtype == expected.dtype == dtype
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, **tolerance(dtype))


# -- each kernel against its twin ---------------------------------------------------------------------------
def test_every_kernel_of_these_modules_is_tested_here():
    modules = ("tape.ops.special.", "tape.ops.losses.", "tape.ops.reductions.", "tape.ops.statistics.")
    registered = {name for name in jit.kernels() if name.startswith(modules)}
    assert registered == {kernel.name for kernel in KERNELS.values()}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", KERNELS)
@given(rows=st.integers(0, 5), length=st.integers(0, 9), seed=st.integers(0, 2**32 - 1))
def test_kernel_matches_twin_on_random_rows(name, dtype, rows, length, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (rows, length)).astype(dtype)
    check_kernel_against_twin(name, _arguments(name, rng, x))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_matches_twin_on_long_rows(name, dtype):
    rng = np.random.default_rng(7)
    x = rng.uniform(-3, 3, (9, 1000)).astype(dtype)
    check_kernel_against_twin(name, _arguments(name, rng, x))


def _extreme_rows(dtype: Any) -> np.ndarray:
    """Rows of logits of +-1000, with -inf (masked) entries, +inf, NaN, and a row of only -inf."""
    inf, nan = np.inf, np.nan
    return np.array(
        [
            [1000.0, -1000.0, 999.0, 0.0],
            [-1000.0, -1000.0, -999.5, -1000.0],
            [-inf, 2.0, -inf, 1000.0],
            [-inf, -inf, -inf, -inf],
            [inf, 1.0, 0.0, -inf],
            [nan, 1.0, 2.0, 3.0],
            [inf, inf, 0.0, 1.0],
        ],
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_matches_twin_on_extreme_and_non_finite_rows(name, dtype):
    rng = np.random.default_rng(3)
    x = _extreme_rows(dtype)
    with np.errstate(all="ignore"):
        arguments = list(_arguments(name, rng, x))
    if name == "extremum_vjp_rows":
        arguments[1] = x
        arguments[2] = np.max(x, axis=1)
    if name.startswith("cross_entropy"):
        arguments[1] = np.array([0, 2, 3, 1, IGNORE, 2, 3])  # the all -inf row's loss is nan in both
    check_kernel_against_twin(name, tuple(arguments))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_logits_of_a_thousand_give_finite_exact_results(dtype):
    # exp(1000) overflows in both dtypes: the kernels must shift by the row's maximum.
    x = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1001.0, -1000.0]], dtype=dtype)
    moderate = x.astype(np.float64) - np.max(x.astype(np.float64), axis=1, keepdims=True)
    expected_log = moderate - np.log(np.sum(np.exp(moderate), axis=1, keepdims=True))
    with jit.use_jit(True):
        np.testing.assert_allclose(special.softmax_rows(x), np.exp(expected_log), **tolerance(dtype))
        np.testing.assert_allclose(special.log_softmax_rows(x), expected_log, **tolerance(dtype))
        row_losses = losses.cross_entropy_rows(x, np.array([2, 1]), np.ones(3), IGNORE, 0.0)
    np.testing.assert_allclose(row_losses, -expected_log[[0, 1], [2, 1]], **tolerance(dtype))


def test_extremum_vjp_shares_ties_evenly_and_gives_nan_rows_to_their_nans():
    x = np.array([[1.0, 3.0, 3.0, 3.0], [np.nan, 1.0, np.nan, 0.0], [2.0, 2.0, 2.0, 2.0]])
    g = np.array([3.0, 4.0, 8.0])
    with jit.use_jit(True):
        grad = reductions.extremum_vjp_rows(g, x, np.max(x, axis=1))
    np.testing.assert_array_equal(grad, [[0.0, 1.0, 1.0, 1.0], [2.0, 0.0, 2.0, 0.0], [2.0, 2.0, 2.0, 2.0]])


# -- which calls take the kernels ---------------------------------------------------------------------------
class Spy:
    """Stands in for a kernel: counts its calls and runs the kernel."""

    def __init__(self, kernel: jit.Kernel) -> None:
        self.kernel, self.twin, self.calls = kernel, kernel.twin, 0

    def __call__(self, *arguments: Any) -> Any:
        self.calls += 1
        return self.kernel(*arguments)


def spy_on(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> Spy:
    spy = Spy(getattr(module, name))
    monkeypatch.setattr(module, name, spy)
    return spy


def _forward_and_backward(function: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    t = tape.tensor(x, requires_grad=True)
    out = function(t)
    out.backward(np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype))
    return t.grad


ROWS = np.random.default_rng(11).uniform(-2, 2, (6, 5))
TARGETS = np.array([0, 4, IGNORE, 2, 2, 1])

#: op, module and names of its forward and VJP kernels (None: it has no kernel there).
OPS = {
    "softmax": (lambda x, axis=-1: special.softmax(x, axis), special, "softmax_rows", "softmax_vjp_rows"),
    "log_softmax": (
        lambda x, axis=-1: special.log_softmax(x, axis),
        special,
        "log_softmax_rows",
        "log_softmax_vjp_rows",
    ),
    "max": (lambda x, axis=-1: np.max(x, axis=axis), reductions, None, "extremum_vjp_rows"),
    "min": (lambda x, axis=-1: np.min(x, axis=axis), reductions, None, "extremum_vjp_rows"),
    "var": (lambda x, axis=-1: np.var(x, axis=axis, ddof=1), statistics, None, "centred_rows"),
    "std": (lambda x, axis=-1: np.std(x, axis=axis), statistics, None, "centred_rows"),
    "cross_entropy": (
        lambda x, axis=-1: losses.cross_entropy(x, TARGETS, ignore_index=IGNORE, label_smoothing=0.1),
        losses,
        "cross_entropy_rows",
        "cross_entropy_vjp_rows",
    ),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", OPS)
def test_rows_along_the_last_axis_take_the_kernels(name, dtype, monkeypatch):
    function, module, forward, vjp = OPS[name]
    spies = [spy_on(monkeypatch, module, kernel) for kernel in (forward, vjp) if kernel]
    _forward_and_backward(function, ROWS.astype(dtype))
    assert [spy.calls for spy in spies] == [1] * len(spies)
    if name != "cross_entropy":  # all axes of a C-contiguous array are one row
        _forward_and_backward(lambda x: function(x, None), ROWS.astype(dtype))
        assert [spy.calls for spy in spies] == [2] * len(spies)


#: Inputs the kernels are not for, as tensors: from a leaf of rows, a view of them strided or transposed.
LAYOUTS = {
    "strided": lambda leaf: leaf[:, ::2],
    "transposed": lambda leaf: leaf.T,
    "other axis": lambda leaf: leaf,
    "create_graph": lambda leaf: leaf,
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", OPS)
def test_other_layouts_and_create_graph_run_numpy(name, layout, monkeypatch):
    function, module, forward, vjp = OPS[name]
    if name == "cross_entropy" and layout in ("other axis", "transposed"):
        pytest.skip("cross_entropy's class axis is fixed")
    leaf = tape.tensor(np.random.default_rng(1).uniform(-2, 2, (6, 10)), requires_grad=True)
    x = LAYOUTS[layout](leaf)
    assert layout not in ("strided", "transposed") or not x.data.flags.c_contiguous
    spies = [spy_on(monkeypatch, module, kernel) for kernel in (forward, vjp) if kernel]
    out = function(x, 0 if layout == "other axis" else -1)
    if layout == "create_graph":
        spies = [spy for spy in spies if spy.kernel.name.endswith("vjp_rows")]  # forwards run arrays
        (grad,) = tape.gradients(np.sum(out * out), [leaf], create_graph=True)
        assert isinstance(grad, tape.Tensor) and grad.requires_grad
    else:
        if layout != "other axis" and name in ("softmax", "log_softmax"):
            # These VJPs read the output, which numpy made C-contiguous: their kernel may run.
            spies = spies[:1]
        out.backward(np.ones(out.shape))
    assert all(spy.calls == 0 for spy in spies)


@pytest.mark.parametrize("name", OPS)
def test_integer_input_runs_numpy(name, monkeypatch):
    function, module, forward, vjp = OPS[name]
    if name == "cross_entropy":
        pytest.skip("cross_entropy's input is floating")
    spies = [spy_on(monkeypatch, module, kernel) for kernel in (forward, vjp) if kernel]
    function(np.arange(30).reshape(6, 5) % 7)
    assert all(spy.calls == 0 for spy in spies)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cross_entropy"])
def test_float32_above_the_limit_runs_numpy(name, monkeypatch):
    function, module, forward, vjp = OPS[name]
    monkeypatch.setattr(module, "FLOAT32_EXP_KERNEL_LIMIT", ROWS.size - 1)
    spies = {kernel: spy_on(monkeypatch, module, kernel) for kernel in (forward, vjp)}
    grad = _forward_and_backward(function, ROWS.astype(np.float32))
    exponentiating = {forward, vjp} - {"softmax_vjp_rows"}  # softmax's VJP has no exp: no limit
    assert all(spy.calls == (kernel not in exponentiating) for kernel, spy in spies.items())
    _forward_and_backward(function, ROWS)  # float64 takes the kernels at any size
    assert all(spy.calls >= 1 for spy in spies.values())
    monkeypatch.setattr(module, "FLOAT32_EXP_KERNEL_LIMIT", ROWS.size)
    np.testing.assert_allclose(grad, _forward_and_backward(function, ROWS.astype(np.float32)), rtol=1e-5)


# -- the kernel path gives the numpy path's values and gradients -------------------------------------------
def _general_path(name: str, function: Callable[..., Any]) -> Callable[[Any], Any]:
    """The same function computed by the general numpy code: a tuple axis, or a trailing class axis."""
    if name != "cross_entropy":
        return lambda x: function(x, (np.ndim(x) - 1,))

    def cross_entropy_with_a_trailing_axis(x: Any) -> Any:
        loss = losses.cross_entropy(
            x[..., None], TARGETS[:, None], ignore_index=IGNORE, label_smoothing=0.1, reduction="none"
        )
        return np.sum(loss) / np.count_nonzero(TARGETS != IGNORE)

    return cross_entropy_with_a_trailing_axis


@pytest.mark.parametrize("use_jit", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", OPS)
def test_kernel_path_gives_the_general_paths_values_and_gradients(name, dtype, use_jit):
    function = OPS[name][0]
    x = ROWS.astype(dtype)
    with jit.use_jit(use_jit):
        values = [f(tape.tensor(x)).data for f in (function, _general_path(name, function))]
        grads = [_forward_and_backward(f, x) for f in (function, _general_path(name, function))]
    np.testing.assert_allclose(values[0], values[1], **tolerance(dtype))
    assert grads[0].dtype == grads[1].dtype == dtype
    np.testing.assert_allclose(grads[0], grads[1], **tolerance(dtype))


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_strided_input_gives_the_contiguous_inputs_values_and_gradient(name, dtype):
    function = OPS[name][0]
    leaf = tape.tensor(np.repeat(ROWS, 2, axis=1).astype(dtype), requires_grad=True)
    strided = leaf[:, ::2]  # a view: its data is not C-contiguous
    assert not strided.data.flags.c_contiguous
    out = function(strided)
    g = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    out.backward(g)
    contiguous = tape.tensor(ROWS.astype(dtype), requires_grad=True)
    expected = function(contiguous)
    expected.backward(g)
    np.testing.assert_allclose(out.data, expected.data, **tolerance(dtype))
    np.testing.assert_allclose(leaf.grad[:, ::2], contiguous.grad, **tolerance(dtype))
    np.testing.assert_array_equal(leaf.grad[:, 1::2], 0.0)


@pytest.mark.parametrize("use_jit", [True, False])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_a_broadcast_cotangent_reaches_the_vjp_kernel(name, use_jit, monkeypatch):
    # The VJP of a sum over axis 0 hands on a read-only broadcast view: the kernel path copies it first.
    function, module, _, vjp = OPS[name]
    spy = spy_on(monkeypatch, module, vjp)

    def column_weighted(f: Callable[[Any], Any], x: Any) -> Any:
        return np.sum(np.sum(f(x), axis=0) * np.arange(5.0))

    x = tape.tensor(ROWS, requires_grad=True)
    with jit.use_jit(use_jit):
        column_weighted(function, x).backward()
    assert spy.calls == 1
    reference = tape.tensor(ROWS, requires_grad=True)
    column_weighted(_general_path(name, function), reference).backward()
    np.testing.assert_allclose(x.grad, reference.grad, **tolerance(np.float64))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_fused_cross_entropy_matches_the_general_op(dtype, weighted, reduction):
    rng = np.random.default_rng(5)
    x = rng.uniform(-3, 3, (7, 4)).astype(dtype)
    targets = np.array([0, 3, IGNORE, 1, 1, 2, IGNORE])
    weight = rng.uniform(0.5, 2, 4) if weighted else None
    for smoothing in (0.0, 0.3):
        options = {"ignore_index": IGNORE, "reduction": reduction, "label_smoothing": smoothing}

        def fused(x: Any, options: dict[str, Any] = options) -> Any:
            return losses.cross_entropy(x, targets, weight, **options)

        def general(x: Any, options: dict[str, Any] = options) -> Any:  # a trailing axis of length one
            return np.squeeze(losses.cross_entropy(x[..., None], targets[:, None], weight, **options))

        np.testing.assert_allclose(
            _forward_and_backward(fused, x), _forward_and_backward(general, x), **tolerance(dtype)
        )


@pytest.mark.parametrize("name", OPS)
def test_jacobian_through_the_kernels(name):
    # jacobian runs these (unbatched) VJPs once per output element, on one cotangent of its batch each.
    function = OPS[name][0]
    np.testing.assert_allclose(
        tape.jacobian(function)(ROWS),
        tape.jacobian(_general_path(name, function))(ROWS),
        **tolerance(np.float64),
    )


def test_cross_entropy_of_nested_lists_is_that_of_arrays():
    logits = [[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]]
    expected = losses.cross_entropy(np.array(logits), np.array([1, 0]))
    assert losses.cross_entropy(logits, [1, 0]) == expected


# -- empty arrays -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_jit", [True, False])
@pytest.mark.parametrize("shape", [(0, 4), (3, 0)])
def test_empty_rows_and_batches(shape, use_jit):
    x = np.zeros(shape)
    with jit.use_jit(use_jit), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # var and std of no elements: nan, as numpy warns
        for name in ("softmax", "log_softmax", "var", "std") + (("max", "min") if shape[1] else ()):
            grad = _forward_and_backward(OPS[name][0], x)
            assert grad.shape == shape
            assert not np.any(grad)
        targets = np.full(shape[0], IGNORE)
        loss = losses.cross_entropy(tape.tensor(x, requires_grad=True), targets, ignore_index=IGNORE)
        assert np.isnan(loss.data)  # nothing to average, as in torch
        total = tape.tensor(x, requires_grad=True)
        losses.cross_entropy(total, targets, ignore_index=IGNORE, reduction="sum").backward()
        np.testing.assert_array_equal(total.grad, np.zeros(shape))


# -- second derivatives (VJPs recorded on tensors: the numpy path) ------------------------------------------
@pytest.mark.parametrize("name", OPS)
def test_second_derivatives_hold(name):
    function = OPS[name][0]
    weights = np.random.default_rng(2).standard_normal(np.shape(function(ROWS)))
    assert tape.gradgradcheck(lambda x: np.sum(weights * function(x)), ROWS)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_second_derivative_of_weighted_cross_entropy(smoothing):
    weight = np.array([0.5, 2.0, 1.0, 1.5, 0.7])
    for reduction in ("mean", "none"):

        def total_loss(x: Any, reduction: str = reduction) -> Any:
            loss = losses.cross_entropy(x, TARGETS, weight, IGNORE, reduction, label_smoothing=smoothing)
            return np.sum(loss * np.arange(1, np.size(loss) + 1))

        assert tape.gradgradcheck(total_loss, ROWS)

"""Forward values and gradients at 0, -0.0, +inf, -inf and nan, family by family, compared with PyTorch
element by element.

Where tape and PyTorch differ, the difference is named in one of three dicts, each entry with its reason:
``NUMPY_FORWARD`` (numpy's own forward differs from torch's; tape follows numpy), ``CONVENTIONS``
(no agreed value: PyTorch and JAX differ from each other or from the limit, and tape keeps its documented
choice) and ``DEFECTS`` (tape is wrong in a file outside this test's scope: a strict xfail, so a fix shows).
Also checked: no numpy warning escapes tape's ops where numpy's own forward gives none (``WARNING_DEFECTS``
lists the ops that still leak one). The two edge cases fixed in ops/ are also checked against closed forms,
with no peer needed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest

import tape
from tape.ops import losses, nn
from tape.ops.special import log_softmax, logsumexp, softmax

INF, NAN = np.inf, np.nan
#: The edge values, and finite probes at the domains' ends and around softplus's threshold.
VALUES = np.array([0.0, -0.0, INF, -INF, NAN, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 30.0, -30.0])
#: Every pair of edge values (and a few finite ones) as the two arguments of a binary op.
PAIR_VALUES = np.array([0.0, -0.0, INF, -INF, NAN, 1.0, -1.0, 2.0, 0.5])
FIRST, SECOND = (grid.ravel() for grid in np.meshgrid(PAIR_VALUES, PAIR_VALUES, indexing="ij"))
#: Rows reduced along their axis (odd length, so that median is one element).
ROWS = {
    "finite": [1.5, 0.25, -0.5],
    "zero": [1.5, 0.0, -0.5],
    "minus zero": [1.5, -0.0, -0.5],
    "inf": [1.5, INF, -0.5],
    "minus inf": [1.5, -INF, -0.5],
    "nan": [1.5, NAN, -0.5],
    "two inf": [INF, INF, 1.0],
    "all minus inf": [-INF, -INF, -INF],
    "inf and minus inf": [INF, -INF, 0.0],
    "zeros": [0.0, -0.0, 0.0],
    "two zeros": [0.0, 0.0, 2.0],
    "nan and infinities": [NAN, INF, -INF],
    "inf and zero": [INF, 0.0, 2.0],
}


def _nan(x: np.ndarray) -> np.ndarray:
    return np.isnan(x)


def _any(condition: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A row predicate from an element predicate: the whole row is concerned when any element is."""
    return lambda row: np.broadcast_to(condition(row).any(), row.shape)


def _torch_cbrt(torch: Any, x: Any) -> Any:
    return torch.sign(x) * torch.abs(x) ** (1 / 3)  # torch has no cbrt


def _torch_median(torch: Any, x: Any) -> Any:
    return torch.median(x, dim=-1).values


def _torch_nanmedian(torch: Any, x: Any) -> Any:
    return torch.nanmedian(x, dim=-1).values


def _torch_cross_entropy_of_class_0(torch: Any, x: Any) -> Any:
    return torch.nn.functional.cross_entropy(x[None], torch.tensor([0]), reduction="none")


# -- the ops and their PyTorch peers ---------------------------------------------------------------------
# Each peer is a dotted name under ``torch`` and its keyword arguments; tape's side is a callable.
UNARY = {
    "negative": (np.negative, "neg"),
    "positive": (np.positive, "positive"),
    "square": (np.square, "square"),
    "sqrt": (np.sqrt, "sqrt"),
    "cbrt": (np.cbrt, _torch_cbrt),
    "reciprocal": (np.reciprocal, "reciprocal"),
    "absolute": (np.absolute, "abs"),
    "exp": (np.exp, "exp"),
    "exp2": (np.exp2, "exp2"),
    "expm1": (np.expm1, "expm1"),
    "log": (np.log, "log"),
    "log2": (np.log2, "log2"),
    "log10": (np.log10, "log10"),
    "log1p": (np.log1p, "log1p"),
    "sin": (np.sin, "sin"),
    "cos": (np.cos, "cos"),
    "tan": (np.tan, "tan"),
    "arcsin": (np.arcsin, "asin"),
    "arccos": (np.arccos, "acos"),
    "arctan": (np.arctan, "atan"),
    "sinh": (np.sinh, "sinh"),
    "cosh": (np.cosh, "cosh"),
    "tanh": (np.tanh, "tanh"),
    "arcsinh": (np.arcsinh, "asinh"),
    "arccosh": (np.arccosh, "acosh"),
    "arctanh": (np.arctanh, "atanh"),
    "deg2rad": (np.deg2rad, "deg2rad"),
    "rad2deg": (np.rad2deg, "rad2deg"),
    "radians": (np.radians, "deg2rad"),
    "degrees": (np.degrees, "rad2deg"),
    "conjugate": (np.conjugate, "conj"),
    "sign": (np.sign, "sign"),
    "floor": (np.floor, "floor"),
    "ceil": (np.ceil, "ceil"),
    "trunc": (np.trunc, "trunc"),
    "rint": (np.rint, "round"),
    "round": (np.round, "round"),
    "erf": (tape.erf, "erf"),
    "relu": (nn.relu, "relu"),
    "leaky_relu": (lambda x: nn.leaky_relu(x, 0.1), ("nn.functional.leaky_relu", {"negative_slope": 0.1})),
    "elu": (nn.elu, "nn.functional.elu"),
    "selu": (nn.selu, "nn.functional.selu"),
    "gelu": (nn.gelu, "nn.functional.gelu"),
    "gelu tanh": (lambda x: nn.gelu(x, "tanh"), ("nn.functional.gelu", {"approximate": "tanh"})),
    "sigmoid": (nn.sigmoid, "sigmoid"),
    "nn tanh": (nn.tanh, "tanh"),
    "softplus": (nn.softplus, "nn.functional.softplus"),
    "hardtanh": (nn.hardtanh, "nn.functional.hardtanh"),
}

BINARY = {
    "add": (np.add, "add"),
    "subtract": (np.subtract, "sub"),
    "multiply": (np.multiply, "mul"),
    "divide": (np.divide, "div"),
    "power": (np.power, "pow"),
    "logaddexp": (np.logaddexp, "logaddexp"),
    "logaddexp2": (np.logaddexp2, "logaddexp2"),
    "arctan2": (np.arctan2, "atan2"),
    "hypot": (np.hypot, "hypot"),
    "maximum": (np.maximum, "maximum"),
    "minimum": (np.minimum, "minimum"),
    "fmax": (np.fmax, "fmax"),
    "fmin": (np.fmin, "fmin"),
    "remainder": (np.remainder, "remainder"),
    "fmod": (np.fmod, "fmod"),
    "floor_divide": (np.floor_divide, None),
}

#: Elementwise losses (reduction 'none') of the edge values against a target of 0.5.
LOSSES = {
    "mse_loss": (losses.mse_loss, "nn.functional.mse_loss"),
    "l1_loss": (losses.l1_loss, "nn.functional.l1_loss"),
    "smooth_l1_loss": (losses.smooth_l1_loss, "nn.functional.smooth_l1_loss"),
    "huber_loss": (losses.huber_loss, "nn.functional.huber_loss"),
    "binary_cross_entropy_with_logits": (
        losses.binary_cross_entropy_with_logits,
        "nn.functional.binary_cross_entropy_with_logits",
    ),
}

#: Reductions along the last axis of each row.
ROW_OPS = {
    "sum": (lambda x: np.sum(x, axis=-1), ("sum", {"dim": -1})),
    "mean": (lambda x: np.mean(x, axis=-1), ("mean", {"dim": -1})),
    "prod": (lambda x: np.prod(x, axis=-1), ("prod", {"dim": -1})),
    "max": (lambda x: np.max(x, axis=-1), ("amax", {"dim": -1})),
    "min": (lambda x: np.min(x, axis=-1), ("amin", {"dim": -1})),
    "norm 2": (lambda x: np.linalg.norm(x, axis=-1), ("linalg.vector_norm", {"dim": -1})),
    "norm 1": (lambda x: np.linalg.norm(x, ord=1, axis=-1), ("linalg.vector_norm", {"ord": 1, "dim": -1})),
    "norm inf": (
        lambda x: np.linalg.norm(x, ord=INF, axis=-1),
        ("linalg.vector_norm", {"ord": INF, "dim": -1}),
    ),
    "norm 3": (lambda x: np.linalg.norm(x, ord=3, axis=-1), ("linalg.vector_norm", {"ord": 3, "dim": -1})),
    "vector_norm 3": (
        lambda x: np.linalg.vector_norm(x, ord=3, axis=-1),
        ("linalg.vector_norm", {"ord": 3, "dim": -1}),
    ),
    "var": (lambda x: np.var(x, axis=-1), ("var", {"dim": -1, "correction": 0})),
    "var ddof 1": (lambda x: np.var(x, axis=-1, ddof=1), ("var", {"dim": -1, "correction": 1})),
    "std": (lambda x: np.std(x, axis=-1), ("std", {"dim": -1, "correction": 0})),
    "median": (lambda x: np.median(x, axis=-1), _torch_median),
    "nanmedian": (lambda x: np.nanmedian(x, axis=-1), _torch_nanmedian),
    "quantile": (lambda x: np.quantile(x, 0.3, axis=-1), ("quantile", {"q": 0.3, "dim": -1})),
    "nansum": (lambda x: np.nansum(x, axis=-1), ("nansum", {"dim": -1})),
    "nanmean": (lambda x: np.nanmean(x, axis=-1), ("nanmean", {"dim": -1})),
    "cumsum": (lambda x: np.cumsum(x, axis=-1), ("cumsum", {"dim": -1})),
    "cumprod": (lambda x: np.cumprod(x, axis=-1), ("cumprod", {"dim": -1})),
    "logsumexp": (lambda x: logsumexp(x, axis=-1), ("logsumexp", {"dim": -1})),
    "softmax": (lambda x: softmax(x, axis=-1), ("softmax", {"dim": -1})),
    "log_softmax": (lambda x: log_softmax(x, axis=-1), ("log_softmax", {"dim": -1})),
    "cross_entropy": (
        lambda x: losses.cross_entropy(x[None], np.array([0]), reduction="none"),
        _torch_cross_entropy_of_class_0,
    ),
}
#: The ops whose forward is tape's own, not numpy's: none of them may warn on these inputs.
TAPE_FORWARD = {
    "erf",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "gelu tanh",
    "sigmoid",
    "nn tanh",
    "softplus",
}
TAPE_FORWARD |= {"hardtanh", *LOSSES, "logsumexp", "softmax", "log_softmax", "cross_entropy"}

# -- where tape and PyTorch differ, and why -------------------------------------------------------------
#: numpy's own forward differs from torch's: tape follows numpy (value and gradient not compared there).
NUMPY_FORWARD: dict[str, tuple[Callable[..., np.ndarray], str]] = {
    "sign": (_nan, "np.sign(nan) is nan; torch.sign(nan) is 0"),
    "absolute": (_nan, "the gradient is g * np.sign(x), nan at nan; torch's is g * torch.sign(nan) = 0"),
    "l1_loss": (_nan, "the gradient is g * np.sign(x - t), nan at nan; torch's uses torch.sign(nan) = 0"),
    "nanmedian": (
        _any(_nan),
        "an even count of non-nan values: numpy averages the middle two (g / 2 each), torch takes the lower",
    ),
    "norm 1": (_any(_nan), "the gradient is g * np.sign(x), nan at nan; torch's uses torch.sign(nan) = 0"),
}

#: No agreed value (PyTorch and JAX differ, or neither gives the limit): tape keeps its documented choice
#: and the gradient (and the forward, for ``FORWARD_CONVENTIONS``) is not compared there.
CONVENTIONS: dict[str, tuple[Callable[..., np.ndarray], str]] = {
    "cbrt": (
        lambda x: x == 0,
        "torch has no cbrt (the peer is sign(x)*|x|**(1/3), nan at 0); tape gives the limit, +inf, as JAX",
    ),
    "maximum": (
        lambda x, y: np.isnan(x) | np.isnan(y),
        "tape gives the cotangent to the nan that is returned; torch to both sides (2x), JAX to neither",
    ),
    "minimum": (
        lambda x, y: np.isnan(x) | np.isnan(y),
        "tape gives the cotangent to the nan that is returned; torch to both sides (2x), JAX to neither",
    ),
    "fmax": (lambda x, y: x == y, "ties share the cotangent evenly, as tape's maximum; torch gives it to x"),
    "fmin": (lambda x, y: x == y, "ties share the cotangent evenly, as tape's minimum; torch gives it to x"),
    "relu": (_nan, "torch passes g at nan (threshold on result <= 0), JAX gives 0 (x > 0), as tape"),
    "elu": (_nan, "torch passes g at nan (x <= 0 is false); JAX gives nan, as tape (out + alpha)"),
    "selu": (_nan, "torch passes scale * g at nan (x <= 0 is false); JAX gives nan, as tape"),
    "norm inf": (
        _any(_nan),
        "max |x| is nan: tape gives nan to the row, torch 0 (no entry equals nan), the max convention below",
    ),
    "max": (
        _any(_nan),
        "tape gives the cotangent to the nan that is returned; torch and JAX 0/0 = nan to the whole row",
    ),
    "min": (
        _any(_nan),
        "tape gives the cotangent to the nan that is returned; torch and JAX 0/0 = nan to the whole row",
    ),
    "softmax": (
        _any(np.isposinf),
        "with a +inf entry and no nan, tape gives nan there and 0 elsewhere (exp(x) / inf, the limit off the"
        " inf entries, as torch.logsumexp's own gradient); torch and JAX subtract the max, nan everywhere",
    ),
    "log_softmax": (
        _any(np.isposinf),
        "with a +inf entry, tape gives -inf off it and gradient g - 0 * sum(g); torch and JAX nan everywhere",
    ),
    "cross_entropy": (
        _any(np.isposinf),
        "a +inf logit: tape's loss is +inf (or nan at it) with 0/-1 gradients off it, as its log_softmax;"
        " torch nan everywhere",
    ),
}

FORWARD_CONVENTIONS = {"softmax", "log_softmax", "cross_entropy"}

#: tape is wrong here, in a file outside this test's scope: (the elements concerned, minimal reproducer).
DEFECTS: dict[str, tuple[Callable[..., np.ndarray], str]] = {}

#: Ops whose forward or VJP leaks a numpy warning where numpy's own forward gives none (minimal inputs).
WARNING_DEFECTS = {
    "sqrt": "np.sqrt(tensor([0.0])) backward: 1 / 0 (kept: a warning guard costs ~10% of a small backward)",
    "divide": "tensor([inf]) / tensor([0.0]) backward: g / 0 (kept: a guard costs ~10% of a small backward)",
    "gelu": "gelu(tensor([-inf])) forward: -inf * 0, numpy's own warning (kept: a guard costs ~20% of a "
    "small forward)",
    "gelu tanh": "gelu(tensor([-inf]), approximate='tanh') forward: as gelu",
    "softplus": "softplus(tensor([nan])) forward: numpy's logaddexp flags nan (kept: as gelu)",
}


# -- running an op on both sides ---------------------------------------------------------------------------
def _peer(torch: Any, spec: Any) -> Callable[..., Any]:
    if callable(spec):
        return partial(spec, torch)
    name, kwargs = (spec, {}) if isinstance(spec, str) else spec
    function = torch
    for part in name.split("."):
        function = getattr(function, part)
    return lambda *args: function(*args, **kwargs)


def _tape_side(function: Callable[..., Any], arrays: list[np.ndarray], grads: int) -> tuple[Any, list, list]:
    inputs = [tape.tensor(array, requires_grad=k < grads) for k, array in enumerate(arrays)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = function(*inputs)
        out.backward(np.ones(out.shape))
    return out.data, [t.grad for t in inputs[:grads]], [str(w.message) for w in caught]


def _torch_side(torch: Any, function: Callable[..., Any], arrays: list[np.ndarray], grads: int) -> tuple:
    inputs = [torch.tensor(array, requires_grad=k < grads) for k, array in enumerate(arrays)]
    out = function(*inputs)
    if out.requires_grad:
        out.backward(torch.ones_like(out))
    return out.detach().numpy(), [
        np.zeros_like(a) if t.grad is None else t.grad.numpy() for t, a in zip(inputs, arrays, strict=True)
    ][:grads]


def _numpy_warns(function: Callable[..., Any], arrays: list[np.ndarray]) -> bool:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        function(*arrays)
    return bool(caught)


def _mask(
    table: dict[str, tuple[Callable[..., np.ndarray], str]], name: str, arrays: list[np.ndarray]
) -> Any:
    if name not in table:
        return np.zeros(np.shape(arrays[0]), bool)
    return np.asarray(table[name][0](*(arrays[:1] if name in LOSSES else arrays)))


def _compare(actual: Any, expected: Any, skip: np.ndarray, what: str) -> None:
    actual, expected = np.broadcast_arrays(np.asarray(actual, float), np.asarray(expected, float))
    if skip.shape != actual.shape:  # a reduced row: concerned as a whole
        skip = np.full(actual.shape, skip.any())
    np.testing.assert_allclose(
        actual[~skip], expected[~skip], rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=what
    )


def _check(torch: Any, name: str, function: Callable[..., Any], spec: Any, arrays: list[np.ndarray]) -> None:
    """tape against torch on ``arrays`` (all differentiable but a loss's target), skipping the elements that
    the dicts above explain; then the warnings."""
    grads = 1 if name in LOSSES else len(arrays)
    value, gradients, _ = _tape_side(function, arrays, grads)
    if spec is None:  # no peer: a flat function, whose gradient is zero
        with np.errstate(all="ignore"):  # numpy's own warnings, for its own forward
            peer_value = function(*arrays)
        peer_gradients = [np.zeros_like(a) for a in arrays]
    else:
        peer_value, peer_gradients = _torch_side(torch, _peer(torch, spec), arrays, grads)
    numpy_forward = _mask(NUMPY_FORWARD, name, arrays)
    convention = _mask(CONVENTIONS, name, arrays)
    in_forward = numpy_forward | convention if name in FORWARD_CONVENTIONS else numpy_forward
    _compare(value, peer_value, in_forward, f"{name}: forward")
    skip = numpy_forward | convention | _mask(DEFECTS, name, arrays)
    for k, (gradient, peer_gradient) in enumerate(zip(gradients, peer_gradients, strict=True)):
        _compare(gradient, peer_gradient, skip, f"{name}: gradient of argument {k}")


def _warns_alone(name: str, function: Callable[..., Any], arrays: list[np.ndarray]) -> list[str]:
    """Where tape warns (forward or backward) on an element, or row, where numpy's own forward does not."""
    leaks = []
    for k in range(len(arrays[0])):
        single = [np.array(a[k]) for a in arrays]
        grads = 1 if name in LOSSES else len(arrays)
        caught = _tape_side(function, single, grads)[2]
        if caught and (name in TAPE_FORWARD or not _numpy_warns(function, single)):
            leaks.append(f"{name} at {[a.tolist() for a in single]}: {caught}")
    return leaks


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _elementwise_cases() -> list[Any]:
    cases = [pytest.param(name, f, spec, [VALUES.copy()], id=name) for name, (f, spec) in UNARY.items()]
    cases += [
        pytest.param(name, f, spec, [FIRST.copy(), SECOND.copy()], id=name)
        for name, (f, spec) in BINARY.items()
    ]
    target = np.full_like(VALUES, 0.5)
    cases += [
        pytest.param(
            name,
            lambda x, t, f=f: f(x, t, reduction="none"),
            (spec, {"reduction": "none"}),
            [VALUES.copy(), target],
            id=name,
        )
        for name, (f, spec) in LOSSES.items()
    ]
    return cases


def _row_cases() -> list[Any]:
    return [
        pytest.param(name, f, spec, [np.array(row)], id=f"{name}-{label}")
        for name, (f, spec) in ROW_OPS.items()
        for label, row in ROWS.items()
    ]


@pytest.mark.parametrize(("name", "function", "spec", "arrays"), _elementwise_cases())
def test_elementwise_op_at_edge_values_agrees_with_torch(torch, name, function, spec, arrays):
    _check(torch, name, function, spec, arrays)


@pytest.mark.parametrize(("name", "function", "spec", "arrays"), _row_cases())
def test_reduction_at_edge_values_agrees_with_torch(torch, name, function, spec, arrays):
    _check(torch, name, function, spec, arrays)


def _warning_cases() -> list[Any]:
    cases = [case for case in _elementwise_cases() if case.id != "floor_divide"]
    rows = [np.array(list(ROWS.values()))]
    cases += [pytest.param(name, f, None, rows, id=name) for name, (f, _) in ROW_OPS.items()]
    return [
        pytest.param(
            *case.values, id=case.id, marks=pytest.mark.xfail(reason=WARNING_DEFECTS[case.id], strict=True)
        )
        if case.id in WARNING_DEFECTS
        else case
        for case in cases
    ]


@pytest.mark.parametrize(("name", "function", "spec", "arrays"), _warning_cases())
def test_no_warning_escapes_where_numpy_gives_none(name, function, spec, arrays):
    assert _warns_alone(name, function, arrays) == []


def _defect_cases() -> list[Any]:
    cases = [case for case in _elementwise_cases() + _row_cases() if case.values[0] in DEFECTS]
    return [
        pytest.param(
            *case.values, id=case.id, marks=pytest.mark.xfail(reason=DEFECTS[case.values[0]][1], strict=True)
        )
        for case in cases
        if _mask(DEFECTS, case.values[0], case.values[3]).any()
    ]


@pytest.mark.parametrize(("name", "function", "spec", "arrays"), _defect_cases())
def test_known_defects_still_differ_from_torch(torch, name, function, spec, arrays):
    explained = dict(DEFECTS)
    del DEFECTS[name]
    try:
        _check(torch, name, function, spec, arrays)
    finally:
        DEFECTS.update(explained)


# -- the two fixed edge cases, in closed form (no peer needed) ---------------------------------------------
@pytest.mark.filterwarnings("error")
def test_logsumexp_gradient_is_the_softmax_at_infinite_and_nan_entries():
    for values, gradient in [
        ([50.0, INF], [0.0, NAN]),
        ([INF, -INF], [NAN, 0.0]),
        ([-INF, -INF], [NAN, NAN]),
        ([1.0, NAN], [NAN, NAN]),
        ([-INF, 0.0], [0.0, 1.0]),
    ]:
        x = tape.tensor(values, requires_grad=True)
        logsumexp(x).backward()
        np.testing.assert_array_equal(x.grad, gradient)


@pytest.mark.filterwarnings("error")
def test_arctan2_gradient_at_signed_zeros():
    y = tape.tensor([0.0, 0.0, -0.0, -0.0], requires_grad=True)
    x = tape.tensor([0.0, -0.0, 0.0, -0.0], requires_grad=True)
    np.arctan2(y, x).backward(np.ones(4))
    np.testing.assert_array_equal(y.grad, 0.0)
    np.testing.assert_array_equal(x.grad, 0.0)
    np.testing.assert_array_equal(np.signbit(y.grad), [False, True, False, True])  # the sign of x
    np.testing.assert_array_equal(np.signbit(x.grad), [True, True, False, False])  # the sign of -y

"""ops/elementwise_kernels.py: each fused kernel agrees with its numpy twin, and the ops that use them give
the same values and gradients on the kernel path (large plain arrays) as on the numpy path, to any order."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tape
import tape.ops.elementwise_kernels as fused
import tape.ops.nn as F
from tape import jit
from tests.strategies import FLOAT_DTYPES


@pytest.fixture(autouse=True)
def kernel_must_compile():
    """A silent fallback to the twin would make the kernel half of every test compare the twin twice."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", jit.JitFallbackWarning)
        yield


def set_thresholds(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    for name in ("LARGE", "LARGE_TRANSCENDENTAL"):
        monkeypatch.setattr(fused, name, size)


@pytest.fixture
def kernel_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every array is large enough for the kernels."""
    set_thresholds(monkeypatch, 0)


def tolerance(dtype):
    # Kernels compute float32 in float64 and round once, and may group a product differently: where terms
    # cancel (gelu's far left tail) the twin's float32 roundings show in absolute terms.
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


# name: (public wrapper, its kernel, the arrays it takes after g from a random x, scalar arguments)
KERNELS = {
    "tanh_vjp": (fused.tanh_vjp, fused.tanh_vjp_kernel, lambda x: (np.tanh(x),), ()),
    "sigmoid_vjp": (fused.sigmoid_vjp, fused.sigmoid_vjp_kernel, lambda x: (1 / (1 + np.exp(-x)),), ()),
    "relu_vjp": (fused.relu_vjp, fused.relu_vjp_kernel, lambda x: (np.maximum(x, 0),), ()),
    "square_vjp": (fused.square_vjp, fused.square_vjp_kernel, lambda x: (x,), ()),
    "sqrt_vjp": (fused.sqrt_vjp, fused.sqrt_vjp_kernel, lambda x: (np.sqrt(np.abs(x) + 0.1),), ()),
    "leaky_relu_vjp": (fused.leaky_relu_vjp, fused.leaky_relu_vjp_kernel, lambda x: (x,), (0.2,)),
    "elu_vjp": (fused.elu_vjp, fused.elu_vjp_kernel, lambda x: (np.where(x > 0, x, np.expm1(x)), x), (1.5,)),
    "sin_vjp": (fused.sin_vjp, fused.sine_kernel, lambda x: (x,), ()),
    "cos_vjp": (fused.cos_vjp, fused.sine_kernel, lambda x: (x,), ()),
    "gelu_vjp": (fused.gelu_vjp, fused.gelu_vjp_kernel, lambda x: (x,), ()),
    "softplus_vjp": (fused.softplus_vjp, fused.softplus_vjp_kernel, lambda x: (x,), (2.0, 20.0)),
    "maximum_vjp": (fused.extremum_vjp, fused.extremum_vjp_kernel, lambda x: (x,), (0.0, False, True)),
    "minimum_vjp": (fused.extremum_vjp, fused.extremum_vjp_kernel, lambda x: (x,), (1.0, True, True)),
    "fmax_vjp": (fused.extremum_vjp, fused.extremum_vjp_kernel, lambda x: (x,), (0.0, False, False)),
}


def kernel_inputs(name, shape, dtype, seed=0):
    """A cotangent and the kernel's arrays for ``x`` uniform in [-15, 15] (past softplus' threshold)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-15, 15, shape)
    g = rng.standard_normal(shape).astype(dtype)
    _, _, arrays, _ = KERNELS[name]
    return g, tuple(np.asarray(a).astype(dtype) for a in arrays(x))


#: Arguments the kernel takes after the wrapper's: sine_kernel's quarter turns and its use of g.
KERNEL_ONLY = {"sin_vjp": (1, True, fused._NO_SLOPE), "cos_vjp": (2, True, fused._NO_SLOPE)}
#: Kernels that their wrappers run on float64 only (numpy's float32 loops are as fast).
FLOAT64_ONLY = {"sin_vjp", "cos_vjp"}


def test_every_kernel_of_the_module_is_tested_here():
    registered = {name for name in jit.kernels() if name.startswith("tape.ops.elementwise_kernels.")}
    assert registered == {kernel.name for _, kernel, _, _ in KERNELS.values()}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("size", [0, 1, 1000])
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_matches_its_twin(name, size, dtype):
    if name in FLOAT64_ONLY and dtype != np.float64:
        pytest.skip("float32 takes numpy's loop (tested through the wrapper)")
    _, kernel, _, scalars = KERNELS[name]
    g, arrays = kernel_inputs(name, (size,), dtype)
    scalars = (*scalars, *KERNEL_ONLY.get(name, ()))
    with jit.use_jit(True):
        result = kernel(g, *arrays, *scalars)
    expected = kernel.twin(g, *arrays, *scalars)
    assert kernel.signatures(), "the compiled kernel did not run"
    assert result.dtype == dtype and result.shape == (size,)
    np.testing.assert_allclose(result, expected, **tolerance(dtype))


@pytest.mark.parametrize("name", KERNELS)
def test_kernel_matches_its_twin_at_zeros_infinities_and_nan(name):
    """numba's own rules (ZeroDivisionError on x / 0.0, say) must not leak: numpy's answers everywhere."""
    _, kernel, arrays, scalars = KERNELS[name]
    x = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-300, 1e300])
    x, g = np.repeat(x, x.size), np.tile(np.where(np.isfinite(x), x, 1.0), x.size)  # every pair
    scalars = (*scalars, *KERNEL_ONLY.get(name, ()))
    with np.errstate(all="ignore"):
        arrays = (x,) * len(arrays(x))  # the special values themselves, in every argument
        with jit.use_jit(True):
            result = kernel(g, *arrays, *scalars)
        expected = kernel.twin(g, *arrays, *scalars)
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("use_jit", [True, False])
@pytest.mark.parametrize("layout", ["C", "transposed", "strided", "broadcast g", "batched g", "0-d"])
@pytest.mark.parametrize("name", KERNELS)
def test_wrapper_gives_the_twin_for_any_layout(name, layout, use_jit, dtype):
    """The wrapper runs the kernel on C-contiguous arrays and the twin on anything else; same result."""
    wrapper, kernel, _, scalars = KERNELS[name]
    shape = {"0-d": (), "strided": (4, 10)}.get(layout, (4, 5))
    g, arrays = kernel_inputs(name, shape, dtype, seed=1)
    if layout == "transposed":
        g, arrays = g.T, tuple(a.T for a in arrays)
    elif layout == "strided":
        g, arrays = g[:, ::2], tuple(a[:, ::2] for a in arrays)
    elif layout == "broadcast g":
        g = np.broadcast_to(g[:1, :1], g.shape)
    elif layout == "batched g":  # a jacobian's stack of cotangents: one more leading axis
        g = np.stack([g, -g])
    with jit.use_jit(use_jit):
        result = wrapper(g, *arrays, *scalars)
    expected = kernel.twin(g, *arrays, *scalars, *KERNEL_ONLY.get(name, ()))
    assert result.shape == expected.shape and result.dtype == dtype
    np.testing.assert_allclose(result, expected, **tolerance(dtype))


# -- sine and cosine by polynomial ---------------------------------------------------------------------------
def sine_inputs():
    """Points where a range reduction goes wrong first: near multiples of pi/2 (the reduced argument is
    tiny), the reduction limit, tiny and huge values, signed zeros, infinities and NaN."""
    rng = np.random.default_rng(2)
    multiples = np.arange(-42000, 42000, 7) * (np.pi / 2)
    limit = fused._REDUCTION_LIMIT
    special = [0.0, -0.0, 5e-324, -1e-310, 1e-8, limit, np.nextafter(limit, np.inf), -limit, 1e22, -3e300]
    return np.concatenate(
        [
            rng.uniform(-4, 4, 3000),
            rng.uniform(-1e4, 1e4, 3000),
            multiples,
            np.nextafter(multiples, np.inf),
            np.nextafter(multiples, -np.inf),
            special,
            [np.inf, -np.inf, np.nan],
        ]
    )


@pytest.mark.parametrize("quarter_turns", [0, 1, 2, 3])
def test_sine_kernel_is_within_two_ulp_of_numpy(quarter_turns):
    x = sine_inputs()
    g = np.random.default_rng(3).standard_normal(x.size)
    with jit.use_jit(True), np.errstate(invalid="ignore"):
        value = fused.sine_kernel(x, x, quarter_turns, False, fused._NO_SLOPE)
        scaled = fused.sine_kernel(g, x, quarter_turns, True, fused._NO_SLOPE)
        expected = fused.sine_kernel.twin(x, x, quarter_turns, False, fused._NO_SLOPE)
    finite = np.isfinite(x)
    np.testing.assert_array_equal(np.isnan(value), ~finite)
    ulp = np.abs(value[finite] - expected[finite]) / np.spacing(np.abs(expected[finite]))
    assert ulp.max() <= 2, f"{ulp.max()} ulp at x = {x[finite][ulp.argmax()]!r}"
    np.testing.assert_array_equal(np.signbit(value[x == 0]), np.signbit(expected[x == 0]))  # sin(-0) is -0
    np.testing.assert_allclose(scaled[finite], g[finite] * value[finite], rtol=1e-15, atol=0)


@pytest.mark.parametrize("use_jit", [True, False], ids=["kernel", "twin"])
@pytest.mark.parametrize("quarter_turns", [0, 1, 2, 3])
def test_sine_kernel_gives_the_value_and_the_tangent_in_one_pass(quarter_turns, use_jit):
    x = sine_inputs()
    g = np.random.default_rng(4).standard_normal(x.size)
    slope = np.empty(x.size)
    with jit.use_jit(use_jit), np.errstate(invalid="ignore"):
        value = fused.sine_kernel(g, x, quarter_turns, False, slope)
        alone = fused.sine_kernel(x, x, quarter_turns, False, fused._NO_SLOPE)
        derivative = fused.sine_kernel.twin(x, x, quarter_turns + 1, False, fused._NO_SLOPE)
    np.testing.assert_array_equal(value, alone)  # the forward's bits, whether or not the slope is wanted
    finite = np.isfinite(x)
    np.testing.assert_array_equal(np.isnan(slope), ~finite | np.isnan(g))
    error = np.abs(slope[finite] - g[finite] * derivative[finite])
    assert (error <= 3 * np.spacing(np.abs(g[finite] * derivative[finite]))).all()


def test_sine_with_tangent_declines_what_its_kernel_does_not_take():
    x = np.linspace(-3, 3, 12)
    assert fused.sine_with_tangent(x.astype(np.float32), x.astype(np.float32), 0) is None
    assert fused.sine_with_tangent(x, x[::-1], 0) is None  # a tangent laid out backwards
    assert fused.sine_with_tangent(x, x[::-1].copy(), 0) is not None
    assert fused.sine_with_tangent(x.reshape(3, 4).T, x.reshape(3, 4).T, 0) is None  # not C-contiguous
    assert fused.sine_with_tangent(x, np.ones((1, 12)), 0) is None  # a tangent of another shape
    value, tangent = fused.sine_with_tangent(x.reshape(3, 4), np.ones((3, 4)), 1)
    np.testing.assert_allclose(value, np.cos(x).reshape(3, 4), rtol=1e-15)
    np.testing.assert_allclose(tangent, -np.sin(x).reshape(3, 4), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("size", [0, 1])
def test_sine_kernel_on_tiny_arrays(size):
    x = np.full(size, 0.5)
    with jit.use_jit(True):
        np.testing.assert_array_equal(fused.sine_kernel(x, x, 0, False, fused._NO_SLOPE), np.sin(x))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("function", [fused.sin, fused.cos], ids=["sin", "cos"])
def test_forward_wrapper_keeps_shape_and_dtype(function, dtype):
    x = np.random.default_rng(3).uniform(-4, 4, (6, 8)).astype(dtype)
    numpy_function = np.sin if function is fused.sin else np.cos
    for view in (x, x.T, x[:, ::2]):
        result = function(view)
        assert result.shape == view.shape and result.dtype == dtype
        np.testing.assert_allclose(result, numpy_function(view), rtol=5e-16 if dtype == np.float64 else 0)


def test_scalars_that_are_not_numbers_take_the_numpy_expression():
    g, x = np.ones(3), np.array([-1.0, 0.5, 2.0])
    np.testing.assert_allclose(fused.leaky_relu_vjp(g, x, np.array(0.1)), [0.1, 1.0, 1.0])
    np.testing.assert_allclose(fused.elu_vjp(g, x, x, np.array([1.0, 2.0, 3.0])), [0.0, 1.0, 1.0])
    np.testing.assert_allclose(fused.softplus_vjp(g, x, 1.0, None), 1 / (1 + np.exp(-x)))


# -- the ops on the kernel path ---------------------------------------------------------------------------
# name: (function of a tensor, x of shape (30, 40) on which it is smooth)
OPS = {
    "sin": (np.sin, lambda rng: rng.uniform(-4, 4, (30, 40))),
    "cos": (np.cos, lambda rng: rng.uniform(-4, 4, (30, 40))),
    "tanh": (np.tanh, lambda rng: rng.uniform(-3, 3, (30, 40))),
    "x ** 2": (lambda x: x**2, lambda rng: rng.uniform(-3, 3, (30, 40))),
    "square": (np.square, lambda rng: rng.uniform(-3, 3, (30, 40))),
    "sqrt": (np.sqrt, lambda rng: rng.uniform(0.5, 3, (30, 40))),
    "relu": (F.relu, lambda rng: _away_from_zero(rng)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda rng: _away_from_zero(rng)),
    "elu": (lambda x: F.elu(x, 1.5), lambda rng: _away_from_zero(rng)),
    "gelu": (F.gelu, lambda rng: rng.uniform(-3, 3, (30, 40))),
    "sigmoid": (F.sigmoid, lambda rng: rng.uniform(-3, 3, (30, 40))),
    "softplus": (lambda x: F.softplus(x, beta=2.0, threshold=4.0), lambda rng: _away_from(rng, 2.0)),
    "nn.tanh": (F.tanh, lambda rng: rng.uniform(-3, 3, (30, 40))),
    "np.maximum(x, 0)": (lambda x: np.maximum(x, 0), lambda rng: _away_from_zero(rng)),
    "np.minimum(x, 1.5)": (lambda x: np.minimum(x, 1.5), lambda rng: _away_from(rng, 1.5)),
    "np.fmax(x, 0.5)": (lambda x: np.fmax(x, 0.5), lambda rng: _away_from(rng, 0.5)),
}


def _away_from(rng, point):
    x = rng.uniform(-3, 3, (30, 40))
    return np.where(np.abs(x - point) < 0.1, x + 0.3, x)


def _away_from_zero(rng):
    return _away_from(rng, 0.0)


def value_and_gradient(function, x0, use_jit):
    x = tape.tensor(x0, requires_grad=True)
    with jit.use_jit(use_jit):
        y = function(x)
        y.backward(np.random.default_rng(5).standard_normal(y.shape).astype(y.dtype))
    return y.data, x.grad


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", OPS)
def test_kernel_path_gives_the_numpy_path_values_and_gradients(name, dtype, monkeypatch):
    function, make_x = OPS[name]
    x0 = make_x(np.random.default_rng(4)).astype(dtype)
    set_thresholds(monkeypatch, x0.size + 1)
    expected_value, expected_gradient = value_and_gradient(function, x0, use_jit=True)
    set_thresholds(monkeypatch, x0.size)
    for use_jit in (True, False):
        value, gradient = value_and_gradient(function, x0, use_jit)
        assert value.dtype == dtype and gradient.dtype == dtype
        np.testing.assert_allclose(value, expected_value, **tolerance(dtype))
        np.testing.assert_allclose(gradient, expected_gradient, **tolerance(dtype))


@pytest.mark.parametrize("name", OPS)
def test_gradients_on_the_kernel_path_pass_gradcheck(name, kernel_path):
    function, make_x = OPS[name]
    x = make_x(np.random.default_rng(6))[:2, :3]
    assert tape.gradcheck(function, x)
    assert tape.gradcheck(function, x.astype(np.float32))


@pytest.mark.parametrize("name", OPS)
def test_second_derivatives_on_the_kernel_path(name, kernel_path):
    """Under create_graph the VJPs see tensors and take the numpy expressions; the VJPs of those run on
    plain arrays and may take kernels again."""
    function, make_x = OPS[name]
    assert tape.gradgradcheck(function, make_x(np.random.default_rng(7))[:2, :3])


def test_a_jacobian_on_the_kernel_path(kernel_path):
    x = np.random.default_rng(8).uniform(-2, 2, 5)
    jacobian = tape.jacobian(lambda t: np.sin(np.tanh(t)))(x)
    np.testing.assert_allclose(jacobian, np.diag(np.cos(np.tanh(x)) * (1 - np.tanh(x) ** 2)), rtol=1e-12)


def test_float16_on_the_kernel_path_takes_numpy(kernel_path):
    x = tape.tensor(np.linspace(-1, 1, 5, dtype=np.float16), requires_grad=True)
    np.sum(np.tanh(np.sin(x))).backward()
    assert x.grad.dtype == np.float16
    expected = np.cos(x.data) * (1 - np.tanh(np.sin(x.data)) ** 2)
    np.testing.assert_allclose(x.grad, expected, rtol=2e-3)


def test_an_equal_but_distinct_dtype_object_still_takes_the_kernel(monkeypatch):
    # Arrays unpickled or built from another dtype instance carry float64 dtypes that are == but not `is`.
    distinct = np.dtype(np.float64).newbyteorder("=")
    assert distinct == np.float64 and distinct is not np.dtype(np.float64)
    g = np.linspace(-1.0, 1.0, 64)
    out = np.linspace(-2.0, 2.0, 64).astype(distinct)
    calls = []
    original = fused.relu_vjp_kernel.twin
    monkeypatch.setattr(fused.relu_vjp_kernel, "twin", lambda *args: calls.append(1) or original(*args))
    with jit.use_jit(True):
        result = fused.relu_vjp(g, out)
    np.testing.assert_array_equal(result, g * (out > 0))
    assert not calls  # the kernel ran, not the twin

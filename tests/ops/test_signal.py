"""ops/signal.py: convolve, correlate, interp, polyval and gradient on real tensors,
checked against numpy's forward and finite differences (float64 and float32), to second order, against
PyTorch where it has the same function, and for the errors that name the function."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, distinct_arrays, shapes

MODES = ["full", "same", "valid"]
SEQUENCE_FUNCTIONS = {"convolve": np.convolve, "correlate": np.correlate}
#: (len(a), len(v)): equal, a longer, v longer (numpy swaps them), and length-1 sequences.
LENGTHS = [(1, 1), (1, 4), (4, 1), (2, 5), (5, 2), (3, 3), (4, 6), (6, 3)]


def sequences(draw: st.DrawFn, dtype: Any, a_length: int, v_length: int) -> tuple[np.ndarray, np.ndarray]:
    return draw(arrays((a_length,), dtype)), draw(arrays((v_length,), dtype))


def away_from_knots(x: np.ndarray, knots: np.ndarray, margin: float = 0.01) -> np.ndarray:
    """``x`` with every value within ``margin`` of a knot moved ``2 margin`` to its right (the knots are
    at least 0.05 apart), where interp's slope jumps and finite differences straddle two segments."""
    distance = np.min(np.abs(x.astype(np.float64)[..., None] - knots), axis=-1)
    return np.where(distance < margin, x + 2 * margin, x).astype(x.dtype)


def knots(count: int) -> st.SearchStrategy[np.ndarray]:
    """Increasing sample points at least 0.05 apart, around 0."""
    return distinct_arrays((count,)).map(np.sort)


def coordinates(length: int, seed: int, uniform: bool) -> np.ndarray:
    if uniform:
        return np.arange(length) * 0.5 - 1.0
    steps = np.random.default_rng(seed).uniform(0.5, 1.5, length)
    return np.cumsum(steps)


def combined(results: Any) -> Any:
    """One tensor from np.gradient's tuple (several axes), each axis weighted differently."""
    if isinstance(results, tuple):
        return sum((k + 1.0) * result for k, result in enumerate(results))
    return results


# -- convolve and correlate --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SEQUENCE_FUNCTIONS)
@given(data=st.data(), a_length=st.integers(1, 7), v_length=st.integers(1, 7))
def test_convolve_and_correlate(name, mode, dtype, data, a_length, v_length):
    function = SEQUENCE_FUNCTIONS[name]
    a, v = sequences(data.draw, dtype, a_length, v_length)
    check_op(lambda a, v: function(a, v, mode), a, v)


@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SEQUENCE_FUNCTIONS)
def test_convolve_and_correlate_when_v_is_longer_or_length_one(name, mode, lengths):
    function = SEQUENCE_FUNCTIONS[name]
    rng = np.random.default_rng(sum(lengths))
    a, v = rng.standard_normal(lengths[0]), rng.standard_normal(lengths[1])
    check_op(lambda a, v: function(a, v, mode), a, v)
    check_op(lambda a: function(a, list(v), mode), a)  # v as a list, a differentiated alone
    check_op(lambda v: function(a, v, mode), v)


@pytest.mark.parametrize("name", SEQUENCE_FUNCTIONS)
def test_convolve_and_correlate_follow_numpy_dtypes_and_mode_spellings(name):
    function = SEQUENCE_FUNCTIONS[name]
    a = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    v = np.array([1.5, 0.25])
    check_op(lambda a, v: function(a, v), a, v, keeps_dtype=False)  # float32 with float64: float64
    check_op(lambda a, v: function(a, v, 2), a, v.astype(np.float32))  # mode 2 is 'full'
    check_op(lambda a, v: function(a, v, mode=1), v, a)  # mode 1 is 'same'


def test_convolve_reads_zero_dimensional_sequences_as_numpy_does():
    # np.convolve reads a 0-d array as a sequence of one; np.correlate refuses it, as numpy does.
    check_op(lambda v: np.convolve(np.float32(2.0), v), np.array([1.5, 0.25], dtype=np.float32))
    check_op(lambda a: np.convolve(a, 3.0, mode="same"), np.array(1.25))
    with pytest.raises(ValueError, match="too small depth"):
        np.correlate(tape.tensor(1.0, requires_grad=True), [1.0, 2.0])


@pytest.mark.parametrize("lengths", [(1, 1), (2, 5), (5, 2), (4, 4)])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SEQUENCE_FUNCTIONS)
def test_convolve_and_correlate_second_derivatives(name, mode, lengths):
    function = SEQUENCE_FUNCTIONS[name]
    rng = np.random.default_rng(7)
    a, v = rng.standard_normal(lengths[0]), rng.standard_normal(lengths[1])
    assert tape.gradgradcheck(lambda a, v: function(a, v, mode), a, v)
    assert tape.gradgradcheck(lambda a, v: np.tanh(function(a * v[0], v, mode)), a, v)


@pytest.mark.parametrize("name", SEQUENCE_FUNCTIONS)
def test_convolve_and_correlate_refuse_what_numpy_refuses(name):
    function = SEQUENCE_FUNCTIONS[name]
    a = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=rf"numpy.{name}: mode must be one of 'valid', 'same', or 'full'"):
        function(a, a, "centre")
    with pytest.raises(ValueError, match="cannot be empty") as error:
        function(tape.tensor(np.zeros(0), requires_grad=True), a)
    assert any(note.startswith(f"{name}:") for note in error.value.__notes__)


@pytest.mark.parametrize("mode", ["full", "valid"])
@pytest.mark.parametrize("name", SEQUENCE_FUNCTIONS)
def test_convolve_and_correlate_agree_with_torch_conv1d(name, mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, v, g = rng.standard_normal(7), rng.standard_normal(3), rng.standard_normal(9 if mode == "full" else 5)
    a_torch = torch.tensor(a, requires_grad=True)
    v_torch = torch.tensor(v, requires_grad=True)
    # conv1d is a cross-correlation; a convolution is one with the kernel flipped.
    weight = torch.flip(v_torch, [0]) if name == "convolve" else v_torch
    padding = 2 if mode == "full" else 0
    expected = torch.nn.functional.conv1d(a_torch[None, None], weight[None, None], padding=padding)[0, 0]
    expected.backward(torch.tensor(g))

    a_tape, v_tape = tape.tensor(a, requires_grad=True), tape.tensor(v, requires_grad=True)
    result = SEQUENCE_FUNCTIONS[name](a_tape, v_tape, mode)
    result.backward(g)
    np.testing.assert_allclose(result.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a_tape.grad, a_torch.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v_tape.grad, v_torch.grad.numpy(), rtol=1e-12, atol=1e-12)


# -- interp ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("ends", ["end values", "left and right"])
@given(data=st.data(), count=st.integers(1, 6))
def test_interp(dtype, ends, data, count):
    xp = data.draw(knots(count))
    fp = data.draw(arrays((count,), dtype))
    x = away_from_knots(data.draw(arrays(data.draw(shapes), dtype, low=-1.0, high=1.0)), xp)
    if ends == "end values":
        check_op(lambda x, fp: np.interp(x, xp, fp), x, fp, keeps_dtype=False)  # float64, as numpy's
    else:
        constants = np.array([0.75, -0.5], dtype=dtype)
        check_op(
            lambda x, fp, left, right: np.interp(x, xp, fp, left, right), x, fp, *constants, keeps_dtype=False
        )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), count=st.integers(1, 5))
def test_interp_periodic(dtype, data, count):
    period = 1.7
    xp = data.draw(knots(count)) + 0.3  # some knots below 0: numpy reduces them modulo the period
    fp = data.draw(arrays((count,), dtype))
    x = data.draw(arrays((3, 2), dtype, low=-2.0, high=4.0))
    x = away_from_knots(x, np.ravel((xp % period)[:, None] + period * np.arange(-2, 4)[None, :]))
    check_op(lambda x, fp: np.interp(x, xp, fp, period=period), x, fp, keeps_dtype=False)
    check_op(lambda x, fp: np.interp(x, xp, fp, 5.0, 6.0, -period), x, fp, keeps_dtype=False)


def test_interp_on_knots_takes_the_slope_numpy_evaluates():
    xp = np.array([-1.0, 0.0, 2.0, 3.0])
    fp = np.array([1.0, 3.0, 2.0, 6.0])
    slopes = np.diff(fp) / np.diff(xp)  # 2, -0.5, 4
    x = tape.tensor([-1.0, 0.0, 2.0, 3.0, -2.0, 4.0], requires_grad=True)
    fp_tensor = tape.tensor(fp, requires_grad=True)
    result = np.interp(x, xp, fp_tensor)
    np.testing.assert_array_equal(result.data, np.interp(x.data, xp, fp))
    result.sum().backward()
    # on a knot, the segment to its right; at the last knot, the last segment; outside, flat
    np.testing.assert_array_equal(x.grad, [slopes[0], slopes[1], slopes[2], slopes[2], 0.0, 0.0])
    # each knot's value goes out whole; the end values take the points outside
    np.testing.assert_array_equal(fp_tensor.grad, [2.0, 1.0, 1.0, 2.0])


def test_interp_left_and_right_take_the_points_outside():
    xp, fp = np.array([0.0, 1.0]), tape.tensor([2.0, 4.0], requires_grad=True)
    left, right = tape.tensor(-1.0, requires_grad=True), tape.tensor(9.0, requires_grad=True)
    x = np.array([-0.5, -0.1, 0.0, 0.25, 1.0, 1.5])
    np.interp(x, xp, fp, left, right).sum().backward()
    assert left.grad == 2.0 and right.grad == 1.0
    np.testing.assert_array_equal(fp.grad, [1.75, 1.25])


def test_interp_second_derivatives():
    rng = np.random.default_rng(5)
    xp = np.array([-1.0, -0.3, 0.4, 1.2])
    x = away_from_knots(rng.uniform(-1.5, 1.5, (2, 3)), xp)
    fp = rng.standard_normal(4)
    assert tape.gradgradcheck(lambda x, fp: np.interp(x, xp, fp), x, fp)
    assert tape.gradgradcheck(lambda x, fp, left: np.interp(x, xp, fp, left=left) * x, x, fp, np.array(0.5))
    periodic_x = away_from_knots(x, np.ravel((xp % 2.5)[:, None] + 2.5 * np.arange(-1, 2)[None, :]))
    assert tape.gradgradcheck(lambda x, fp: np.interp(x, xp, fp, period=2.5) ** 2, periodic_x, fp)


def test_interp_refuses_a_differentiable_xp_and_a_zero_period():
    x = tape.tensor([0.5], requires_grad=True)
    xp = tape.tensor([0.0, 1.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy.interp: xp is not differentiable.*xp.detach\(\)"):
        np.interp(x, xp, [0.0, 1.0])
    assert np.interp(x, xp.detach(), [0.0, 2.0]).data == 1.0  # detached, it is a constant
    with pytest.raises(ValueError, match=r"numpy.interp: period must be a non-zero value"):
        np.interp(x, [0.0, 1.0], [0.0, 1.0], period=0)
    with pytest.raises(ValueError, match=r"numpy.interp: fp and xp are not of the same length"):
        np.interp(x, [0.0, 1.0], [0.0, 1.0, 2.0], period=3.0)


# -- polyval -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), count=st.integers(1, 5))
def test_polyval(dtype, data, count):
    p = data.draw(arrays((count,), dtype))
    x = data.draw(arrays(data.draw(shapes), dtype))
    check_op(np.polyval, p, x)
    check_op(lambda x: np.polyval(list(p.astype(np.float64)), x), x, keeps_dtype=dtype == np.float64)
    check_op(lambda p: np.polyval(p, 1.5), p, keeps_dtype=False)  # a Python float x: float64, as numpy


def test_polyval_second_derivatives():
    rng = np.random.default_rng(2)
    for count in (1, 2, 5):
        assert tape.gradgradcheck(np.polyval, rng.standard_normal(count), rng.standard_normal((2, 3)))
    assert tape.gradgradcheck(lambda x: np.polyval([0.5, -1.0, 2.0, 1.0], x), rng.standard_normal(4))


def test_polyval_accepts_a_list_of_tensors_and_refuses_what_it_does_not_support():
    a = tape.tensor(2.0, requires_grad=True)
    x = tape.tensor([1.0, 3.0], requires_grad=True)
    np.polyval([a, 1.0], x).sum().backward()
    assert a.grad == 4.0
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    with pytest.raises(ValueError, match=r"numpy.polyval: p must be a 1-D sequence.*\(2, 2\)"):
        np.polyval(np.ones((2, 2)), x)
    with pytest.raises(TypeError, match=r"numpy.polyval: poly1d is not supported"):
        np.polyval(np.poly1d([1.0, 2.0]), x)


# -- gradient ----------------------------------------------------------------------------------------------
SPACINGS = ["none", "scalar", "per axis", "uniform coordinates", "coordinates"]


def spacing_arguments(kind: str, shape: tuple[int, ...], axes: tuple[int, ...], seed: int) -> tuple[Any, ...]:
    if kind == "none":
        return ()
    if kind == "scalar":
        return (0.7,)
    if kind == "per axis":
        return tuple(0.5 + 0.25 * k for k in range(len(axes)))
    uniform = kind == "uniform coordinates"
    return tuple(coordinates(shape[axis], seed + axis, uniform) for axis in axes)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("kind", SPACINGS)
@given(
    shape=st.lists(st.integers(3, 5), min_size=1, max_size=3).map(tuple),
    axis_choice=st.sampled_from(["all", "first", "last", "pair"]),
    seed=st.integers(0, 2**16),
)
def test_gradient(dtype, edge_order, kind, shape, axis_choice, seed):
    ndim = len(shape)
    axis = {"all": None, "first": 0, "last": -1, "pair": (0, -1) if ndim > 1 else (0,)}[axis_choice]
    axes = tuple(range(ndim)) if axis is None else tuple(a % ndim for a in np.atleast_1d(axis))
    spacing = spacing_arguments(kind, shape, axes, seed)
    f = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    check_op(lambda f: combined(np.gradient(f, *spacing, axis=axis, edge_order=edge_order)), f)
    results = np.gradient(tape.tensor(f, requires_grad=True), *spacing, axis=axis, edge_order=edge_order)
    expected = np.gradient(f, *spacing, axis=axis, edge_order=edge_order)
    assert isinstance(results, tuple) == isinstance(
        expected, tuple
    )  # a tuple for several axes, an array for one, as numpy


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_gradient_of_the_shortest_axes(dtype):
    f = np.array([[1.0, 4.0], [2.0, -3.0], [0.5, 0.25]], dtype=dtype)
    check_op(lambda f: np.gradient(f, axis=1), f)  # two values: one-sided at both ends
    check_op(lambda f: np.gradient(f, 0.5, axis=0, edge_order=2), f)  # three values for order 2
    assert np.gradient(tape.tensor(2.0, requires_grad=True)) == ()  # a 0-d array has no axis, as numpy


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("kind", ["scalar", "coordinates"])
def test_gradient_second_derivatives(kind, edge_order):
    f = np.random.default_rng(4).standard_normal((4, 5))
    spacing = spacing_arguments(kind, f.shape, (0, 1), 4)
    assert tape.gradgradcheck(lambda f: combined(np.gradient(f, *spacing, edge_order=edge_order)), f)
    assert tape.gradgradcheck(lambda f: np.gradient(f, *spacing[:1], axis=0, edge_order=edge_order) ** 2, f)


def test_gradient_refuses_a_differentiable_spacing_and_a_wrong_count():
    f = tape.tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy.gradient: spacing is not differentiable.*spacing.detach\(\)"):
        np.gradient(f, tape.tensor(0.5, requires_grad=True))
    with pytest.raises(TypeError, match=r"numpy.gradient: invalid number of arguments.*\(2\), got 3"):
        np.gradient(f, 1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="at least \\(edge_order \\+ 1\\) elements") as error:
        np.gradient(f[:2], axis=0, edge_order=2)
    assert any(note.startswith("gradient:") for note in error.value.__notes__)


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("kind", ["scalar", "coordinates"])
def test_gradient_agrees_with_torch(kind, edge_order):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    f, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    positions = coordinates(5, 1, uniform=False)
    spacing = (0.5,) if kind == "scalar" else (positions,)
    torch_spacing = 0.5 if kind == "scalar" else (torch.tensor(positions),)

    f_torch = torch.tensor(f, requires_grad=True)
    (expected,) = torch.gradient(f_torch, spacing=torch_spacing, dim=0, edge_order=edge_order)
    expected.backward(torch.tensor(g))
    f_tape = tape.tensor(f, requires_grad=True)
    result = np.gradient(f_tape, *spacing, axis=0, edge_order=edge_order)
    result.backward(g)
    np.testing.assert_allclose(result.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f_tape.grad, f_torch.grad.numpy(), rtol=1e-12, atol=1e-12)

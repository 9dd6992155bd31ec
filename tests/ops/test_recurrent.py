"""ops/recurrent.py: the fused LSTM cell against the formula written with separate numpy ops, and the
sequence op against a loop of products and cells; finite differences of first and second order in float64
and float32, each kernel against its numpy twin, what the records keep, and the errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tape.ops.recurrent import (
    _lstm_cell_vjp_numpy,
    finish_gates_kernel,
    lstm_cell,
    lstm_cell_vjp_kernel,
    lstm_sequence,
)
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays

#: (N, H): batch and hidden sizes, a zero batch about one draw in six.
SIZES = st.tuples(st.sampled_from([1, 2, 3, 4, 4, 0]), st.integers(1, 4))
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-6}


def _inputs(batch, hidden, dtype, seed=0):
    rng = np.random.default_rng(seed)
    gates = rng.uniform(-3, 3, (batch, 4 * hidden)).astype(dtype)
    c = rng.uniform(-2, 2, (batch, hidden)).astype(dtype)
    return gates, c


def _by_hand(gates, c):
    """The step as ``tape.nn.LSTM`` wrote it before the fused op: sigmoids of i, f, o, tanh of g."""
    i, f, o, g = np.split(gates, 4, axis=1)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c_new), c_new


def _both(gates, c):
    return np.concatenate(lstm_cell(gates, c), axis=1)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(sizes=SIZES, seed=st.integers(0, 2**32 - 1))
def test_forward_is_the_formula(dtype, sizes, seed):
    gates, c = _inputs(*sizes, dtype, seed)
    h, c_new = lstm_cell(gates, c)
    expected_h, expected_c = _by_hand(gates.astype(np.float64), c.astype(np.float64))
    assert h.dtype == c_new.dtype == dtype
    np.testing.assert_allclose(h, expected_h, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    np.testing.assert_allclose(c_new, expected_c, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_gradients_by_finite_differences(dtype, data):
    batch, hidden = data.draw(SIZES)
    gates = data.draw(arrays((batch, 4 * hidden), dtype, low=-3.0, high=3.0))
    c = data.draw(arrays((batch, hidden), dtype))
    check_op(_both, gates, c)  # both outputs at once: each gets its own random cotangent
    check_op(lambda gates, c: lstm_cell(gates, c)[0], gates, c)  # c_new unused: the engine's zeros


@given(data=st.data())
def test_second_derivatives(data):
    batch, hidden = data.draw(SIZES.filter(lambda sizes: sizes[0] > 0))
    gates = data.draw(arrays((batch, 4 * hidden), low=-3.0, high=3.0))
    c = data.draw(arrays((batch, hidden)))
    assert tape.gradgradcheck(_both, gates, c)
    assert tape.gradgradcheck(lambda gates, c: lstm_cell(gates, c)[0] ** 2, gates, c)


def test_second_derivatives_keep_float32():
    gates, c = _inputs(2, 3, np.float32)
    out, pullback = tape.vjp(lambda gates, c: _both(gates, c) ** 2, gates, c)
    assert out.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in pullback(np.ones_like(out.data)))
    assert tape.gradgradcheck(lambda gates, c: _both(gates, c) ** 2, gates, c)


def test_hessian_vector_product_matches_the_composed_formula():
    # The same second derivative through the fused op and through separate ops (sigmoid, tanh, ...).
    gates, c = _inputs(3, 2, np.float64, seed=4)
    direction = np.random.default_rng(5).standard_normal(gates.shape)

    def loss(cell):
        return lambda gates: np.sum(np.concatenate(cell(gates, c), axis=1) ** 3)

    composed = lambda gates, c: _by_hand_on_tensors(gates, c)
    (fused,) = tape.hvp(loss(lstm_cell), (gates,), (direction,))
    (reference,) = tape.hvp(loss(composed), (gates,), (direction,))
    np.testing.assert_allclose(np.asarray(fused), np.asarray(reference), rtol=1e-10, atol=1e-12)


def _by_hand_on_tensors(gates, c):
    i, f, o, g = np.split(gates, 4, axis=1)
    sigmoid = tape.nn.functional.sigmoid
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c_new), c_new


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("sizes", [(1, 1), (3, 5), (32, 128), (0, 4)])
def test_vjp_kernel_agrees_with_its_twin(dtype, sizes):
    batch, hidden = sizes
    rng = np.random.default_rng(7)
    gates, c = _inputs(batch, hidden, dtype, seed=8)
    _, _, activated, tanh_c = tape.ops.recurrent.lstm_cell_op(gates, c)
    cotangents = [
        rng.standard_normal(shape).astype(dtype) for shape in (c.shape, c.shape, gates.shape, c.shape)
    ]
    with tape.jit.use_jit(True):
        compiled = lstm_cell_vjp_kernel(*cotangents, activated, tanh_c, c)
    twin = _lstm_cell_vjp_numpy(*cotangents, activated, tanh_c, c)
    for mine, theirs in zip(compiled, twin, strict=True):
        assert mine.dtype == theirs.dtype == dtype and mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=TOLERANCE[dtype] * 10, atol=TOLERANCE[dtype] * 10)


@pytest.mark.parametrize("jit", [True, False])
def test_gradients_with_and_without_jit_agree(jit):
    # The record's VJP takes the kernel on plain arrays with JIT on and the twin otherwise: same numbers.
    gates, c = _inputs(4, 3, np.float64, seed=9)
    cotangent = np.random.default_rng(10).standard_normal((4, 6))
    with tape.jit.use_jit(jit):
        _, pullback = tape.vjp(_both, gates, c)
        grads = pullback(cotangent)
    with tape.jit.use_jit(not jit):
        _, pullback = tape.vjp(_both, gates, c)
        others = pullback(cotangent)
    for mine, theirs in zip(grads, others, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-14)


def test_record_keeps_the_cell_not_the_pre_activations():
    # The VJP reads the activated gates, tanh(c_new) and c, never the pre-activations: writing into those
    # after the call is harmless, writing into c is refused.
    gates, c = _inputs(2, 3, np.float64, seed=11)
    x = tape.tensor(gates, requires_grad=True)
    pre = x * 1.0
    h, _ = lstm_cell(pre, c)
    pre[...] = 0.0
    h.sum().backward()
    expected = tape.grad(lambda x: lstm_cell(x * 1.0, c)[0].sum())(gates)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-13)

    y = tape.tensor(c, requires_grad=True)
    cell = y * 1.0
    h, _ = lstm_cell(gates, cell)
    cell[...] = 0.0
    with pytest.raises(RuntimeError, match="lstm_cell: its input 1"):
        h.sum().backward()


def test_plain_arrays_in_give_plain_arrays_out():
    gates, c = _inputs(2, 3, np.float32)
    h, c_new = lstm_cell(gates, c)
    assert type(h) is np.ndarray and type(c_new) is np.ndarray and h.dtype == np.float32


def test_saturated_gates_stay_finite():
    gates = np.array([[-200.0, 200.0, -200.0, 200.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning from exp(200) either
        h, c_new = lstm_cell(gates, np.ones((1, 1), np.float32))
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(c_new))
    np.testing.assert_array_equal(c_new, [[1.0]])


@pytest.mark.parametrize(
    "gates, c, error, message",
    [
        (
            np.zeros((2, 7)),
            np.zeros((2, 2)),
            ValueError,
            r"gates of shape \(2, 7\) \(float64\) and c of shape \(2, 2\)",
        ),
        (np.zeros((3, 8)), np.zeros((2, 2)), ValueError, r"expected gates of shape \(N, 4 \* H\)"),
        (np.zeros(8), np.zeros(2), ValueError, r"gates of shape \(8,\)"),
        (np.zeros((2, 8), np.float32), np.zeros((2, 2)), TypeError, r"\(float32\) and c .* \(float64\)"),
        (np.zeros((2, 8), np.int64), np.zeros((2, 2), np.int64), TypeError, "one floating-point dtype"),
    ],
)
def test_errors_name_the_op_the_shapes_and_the_dtypes(gates, c, error, message):
    with pytest.raises(error, match=r"^lstm_cell: .*" + message):
        lstm_cell(tape.tensor(gates), c)


# -- the sequence op ---------------------------------------------------------------------------------------
#: (L, N, H): steps, batch and hidden sizes.
SEQUENCE_SIZES = st.tuples(st.integers(1, 3), st.sampled_from([1, 2, 3, 0]), st.integers(1, 3))


def _sequence_inputs(steps, batch, hidden, dtype, seed=0):
    rng = np.random.default_rng(seed)
    projected = rng.uniform(-2, 2, (steps, batch, 4 * hidden)).astype(dtype)
    h0, c0 = (rng.uniform(-1, 1, (batch, hidden)).astype(dtype) for _ in range(2))
    weight = rng.uniform(-1, 1, (4 * hidden, hidden)).astype(dtype)
    return projected, h0, c0, weight


def _loop(projected, h0, c0, weight, reverse=False):
    """The sweep as ``tape.nn.LSTM`` runs it with ``lengths``: a product and a cell per step."""
    steps = len(projected)
    h, c, outputs = h0, c0, [None] * steps
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        h, c = lstm_cell(h @ weight.T + projected[t], c)
        outputs[t] = h
    return np.stack(outputs), h, c


def _sequence_as_one(projected, h0, c0, weight, reverse=False):
    output, h_n, c_n = lstm_sequence(projected, h0, c0, weight, reverse=reverse)
    return output + 2 * h_n + 3 * c_n  # every output in one tensor, each with its own weight


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(sizes=SEQUENCE_SIZES, seed=st.integers(0, 2**32 - 1))
def test_sequence_is_a_loop_of_cells(reverse, dtype, sizes, seed):
    inputs = _sequence_inputs(*sizes, dtype, seed)
    for mine, theirs in zip(lstm_sequence(*inputs, reverse=reverse), _loop(*inputs, reverse), strict=True):
        assert mine.dtype == dtype
        np.testing.assert_allclose(mine, theirs, rtol=TOLERANCE[dtype] * 10, atol=TOLERANCE[dtype] * 10)


@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_gradients_are_the_loops(reverse):
    inputs = _sequence_inputs(4, 3, 5, np.float64, seed=12)
    cotangent = np.random.default_rng(13).standard_normal((4, 3, 5))
    loop = lambda *inputs: _loop(*inputs, reverse)[0] + 2 * _loop(*inputs, reverse)[2]
    one = lambda *inputs: (
        lstm_sequence(*inputs, reverse=reverse)[0] + 2 * lstm_sequence(*inputs, reverse=reverse)[2]
    )
    _, mine = tape.vjp(one, *inputs)
    _, theirs = tape.vjp(loop, *inputs)
    for a, b in zip(mine(cotangent), theirs(cotangent), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_sequence_gradients_by_finite_differences(reverse, dtype, data):
    steps, batch, hidden = data.draw(SEQUENCE_SIZES)
    projected = data.draw(arrays((steps, batch, 4 * hidden), dtype))
    h0, c0 = data.draw(arrays((batch, hidden), dtype)), data.draw(arrays((batch, hidden), dtype))
    weight = data.draw(arrays((4 * hidden, hidden), dtype, low=-1.0, high=1.0))
    check_op(lambda *inputs: _sequence_as_one(*inputs, reverse=reverse), projected, h0, c0, weight)


@pytest.mark.parametrize("reverse", [False, True])
@given(data=st.data())
def test_sequence_second_derivatives(reverse, data):
    steps, batch, hidden = data.draw(SEQUENCE_SIZES.filter(lambda sizes: sizes[1] > 0))
    inputs = _sequence_inputs(steps, batch, hidden, np.float64, seed=data.draw(st.integers(0, 2**32 - 1)))
    assert tape.gradgradcheck(lambda *inputs: _sequence_as_one(*inputs, reverse=reverse), *inputs)


def test_sequence_second_derivatives_keep_float32():
    inputs = _sequence_inputs(3, 2, 2, np.float32, seed=14)
    function = lambda *inputs: _sequence_as_one(*inputs) ** 2
    out, pullback = tape.vjp(function, *inputs)
    assert out.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in pullback(np.ones_like(out.data)))
    assert tape.gradgradcheck(function, *inputs)


def test_sequence_takes_a_strided_cotangent():
    # A bidirectional LSTM concatenates its directions' outputs: each gets a cotangent cut out of a wider one.
    inputs = _sequence_inputs(3, 2, 4, np.float32, seed=15)
    cotangent = np.random.default_rng(16).standard_normal((3, 2, 8)).astype(np.float32)
    wide = lambda *inputs: np.concatenate([lstm_sequence(*inputs)[0], _loop(*inputs)[0]], axis=-1)
    _, pullback = tape.vjp(wide, *inputs)
    _, reference = tape.vjp(lambda *inputs: _loop(*inputs)[0], *inputs)
    for a, b in zip(pullback(cotangent), reference(cotangent[..., :4] + cotangent[..., 4:]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_sequence_takes_a_strided_initial_state():
    # A layer's c_0 may be a view (of an unbatched state, say): the kernels still run, with the same result.
    projected, h0, c0, weight = _sequence_inputs(3, 4, 2, np.float32, seed=21)
    strided = np.asfortranarray(c0)
    cotangent = np.random.default_rng(22).standard_normal((3, 4, 2)).astype(np.float32)
    results = []
    for cell in (c0, strided):
        out, pullback = tape.vjp(lambda p, h, c, w: lstm_sequence(p, h, c, w)[0], projected, h0, cell, weight)
        results.append([out.data, *pullback(cotangent)])
    for mine, theirs in zip(*results, strict=True):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("sizes", [(1, 1), (3, 5), (32, 128), (0, 4)])
def test_finish_kernel_agrees_with_its_twin(dtype, sizes):
    batch, hidden = sizes
    rng = np.random.default_rng(17)
    activated = rng.uniform(-1, 1, (batch, 4 * hidden)).astype(dtype)
    c = rng.standard_normal((batch, hidden)).astype(dtype)
    compiled_activated, twin_activated = activated.copy(), activated.copy()
    compiled_c, twin_c = np.empty_like(c), np.empty_like(c)
    with tape.jit.use_jit(True):
        finish_gates_kernel(compiled_activated, c, compiled_c)
    finish_gates_kernel.twin(twin_activated, c, twin_c)
    np.testing.assert_allclose(
        compiled_activated, twin_activated, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype]
    )
    np.testing.assert_allclose(compiled_c, twin_c, rtol=TOLERANCE[dtype] * 10, atol=TOLERANCE[dtype] * 10)


@pytest.mark.parametrize("jit", [True, False])
def test_sequence_with_and_without_jit_agree(jit):
    inputs = _sequence_inputs(3, 4, 3, np.float64, seed=18)
    cotangent = np.random.default_rng(19).standard_normal((3, 4, 3))
    results = []
    for mode in (jit, not jit):
        with tape.jit.use_jit(mode):
            out, pullback = tape.vjp(_sequence_as_one, *inputs)
            results.append([out.data, *pullback(cotangent)])
    for mine, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-14)


def test_sequence_record_keeps_no_projection():
    inputs = _sequence_inputs(3, 2, 2, np.float64, seed=20)
    x = tape.tensor(inputs[0], requires_grad=True)
    projected = x * 1.0
    output, _, _ = lstm_sequence(projected, *inputs[1:])
    projected[...] = 0.0  # the VJP never reads the projections: harmless
    output.sum().backward()
    expected = tape.grad(lambda x: lstm_sequence(x * 1.0, *inputs[1:])[0].sum())(inputs[0])
    np.testing.assert_allclose(x.grad, expected, rtol=1e-13)


@pytest.mark.parametrize(
    "shapes, dtypes, error, message",
    [
        (((2, 3, 8), (3, 2), (3, 2), (8, 3)), "dddd", ValueError, r"weight_hh of shape \(8, 3\) \(float64\)"),
        (((2, 3, 8), (2, 2), (3, 2), (8, 2)), "dddd", ValueError, r"h0 of shape \(2, 2\)"),
        (((0, 3, 8), (3, 2), (3, 2), (8, 2)), "dddd", ValueError, r"L >= 1"),
        (((3, 8), (3, 2), (3, 2), (8, 2)), "dddd", ValueError, r"projected of shape \(3, 8\)"),
        (
            ((2, 3, 8), (3, 2), (3, 2), (8, 2)),
            "fddd",
            TypeError,
            r"projected .* \(float32\), h0 .* \(float64\)",
        ),
    ],
)
def test_sequence_errors_name_the_op_the_shapes_and_the_dtypes(shapes, dtypes, error, message):
    arguments = [
        np.zeros(shape, {"d": np.float64, "f": np.float32}[code])
        for shape, code in zip(shapes, dtypes, strict=True)
    ]
    with pytest.raises(error, match=r"^lstm_sequence: .*" + message):
        lstm_sequence(tape.tensor(arguments[0]), *arguments[1:])

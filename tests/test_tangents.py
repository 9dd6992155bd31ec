"""Forward mode on a recorded tape (``tape.tangents``): ``tape.jvp``, ``tape.jacfwd`` and ``tape.hvp`` against
finite differences and reverse mode, every kind of rule (an op's own, an elementwise op's VJPs, a transposed
VJP), the refusals, and the fallbacks to reverse mode. Every op's rule is also checked by ``tape.gradcheck``,
which all op tests run (its forward-mode check)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tape
from tape import tangents
from tests.strategies import FLOAT_DTYPES


def central_difference(f, x, v, eps=1e-6):
    return (np.asarray(f(x + eps * v), np.float64) - np.asarray(f(x - eps * v), np.float64)) / (2 * eps)


PROGRAMS = {
    "elementwise chain": lambda x: np.tanh(np.sin(x) * x + 1.0) ** 2,
    "layer": lambda x: tape.nn.functional.relu(x @ np.linspace(-1, 1, 12).reshape(4, 3) + 0.1),
    "softmax": lambda x: tape.nn.functional.softmax(x * 2.0, axis=-1),
    "reductions": lambda x: np.cumsum(x, axis=0) * np.mean(x**2, axis=1, keepdims=True),
    "indexing": lambda x: x[::-1, [0, 2, 2]] * x[:, :3].T.sum(),
    "linear algebra": lambda x: np.linalg.norm(x @ x.T + np.eye(x.shape[0]), axis=0),
}


@pytest.mark.parametrize("name", PROGRAMS)
@settings(max_examples=6, deadline=None)
@given(dtype=st.sampled_from(FLOAT_DTYPES), seed=st.integers(0, 2**16))
def test_jvp_agrees_with_finite_differences_and_reverse_mode(name, dtype, seed):
    f = PROGRAMS[name]
    rng = np.random.default_rng(seed)
    x, v = rng.uniform(-1, 1, (3, 4)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)
    out, tangent = tape.jvp(f, (x,), (v,))
    assert tangent.dtype == out.dtype == np.asarray(f(x)).dtype
    expected = central_difference(f, x.astype(np.float64), v.astype(np.float64))
    tolerance = 1e-7 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(
        tangent, expected, rtol=tolerance, atol=tolerance * max(1, np.abs(expected).max())
    )
    dense = tape.jacobian(f)(x).reshape(np.size(out), x.size) @ v.reshape(-1)
    np.testing.assert_allclose(tangent.reshape(-1), dense, rtol=tolerance * 10, atol=tolerance)


def test_each_kind_of_rule_is_the_one_that_runs():
    x = tape.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    own, elementwise, transposed = np.ones(2) @ np.stack([x, x]), np.sin(x), np.cumprod(x)
    assert own._record.op.jvp is not None
    assert elementwise._record.op.elementwise and elementwise._record.op.jvp is None
    assert cumulative_rule_is_transposed(transposed)
    v = np.array([1.0, 2.0, 3.0])
    pushed = tangents.push_forward([own, elementwise, transposed], {id(x): v})
    np.testing.assert_allclose(pushed[0], 2 * v)
    np.testing.assert_allclose(pushed[1], np.cos(x.data) * v)
    np.testing.assert_allclose(pushed[2], np.cumprod(x.data) * np.cumsum(v / x.data))


def cumulative_rule_is_transposed(t):
    op = t._record.op
    return op.jvp is None and not op.elementwise


def test_a_value_changed_in_place_after_recording_is_refused():
    a = tape.tensor(np.array([0.5, 1.5]), requires_grad=True)
    x = a * 1.0
    b = x * x  # its rule reads x
    x[0] = 5.0
    with pytest.raises(RuntimeError, match="changed in place"):
        tangents.push_forward([b], {id(a): np.ones(2)})


def test_a_vjp_that_does_not_record_falls_back_to_reverse_mode():
    # Its VJP takes the cotangent's data, so the transpose cannot be read off the tape: forward mode refuses
    # (never a zero in its place) and tape.jvp computes J v in reverse mode instead.
    def unrecorded_vjp(g, out, x):
        return np.asarray(getattr(g, "_data", g)) * 2.0

    doubling = tape.Op(
        lambda x: np.cumsum(x) * 2.0, lambda g, out, x: np.cumsum(g[::-1])[::-1] * 2.0, name="doubling"
    )
    opaque = tape.Op(lambda x: x * 2.0, unrecorded_vjp, name="opaque")
    x = tape.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(tangents.ForwardModeUnavailableError, match="opaque"):
        tangents.push_forward([opaque(x)], {id(x): np.ones(2)})
    v = np.array([1.0, -1.0])
    np.testing.assert_allclose(tape.jvp(doubling, (x.data,), (v,))[1], np.cumsum(v) * 2.0)


def test_complex_values_are_left_to_reverse_mode():
    x = tape.tensor(np.array([1.0 + 1.0j, 0.5 - 2.0j]), requires_grad=True)
    with pytest.raises(tangents.ForwardModeUnavailableError):
        tangents.push_forward([np.sin(x)], {id(x): np.ones(2, complex)})


def test_a_tangent_out_never_shares_the_tangent_in():
    v = np.arange(6.0)
    tangent = tape.jvp(lambda x: x.reshape(2, 3), (np.ones(6),), (v,))[1]
    assert not np.shares_memory(tangent, v)
    np.testing.assert_array_equal(tangent, v.reshape(2, 3))


def test_an_op_with_its_own_rule():
    cube = tape.Op(lambda x: x**3, lambda g, out, x: g * 3 * x**2, name="cube")
    cube.defjvp(lambda tangents, out, x: tangents[0] * 3 * x**2)
    assert tape.jvp(cube, (np.array([2.0]),), (np.array([0.5]),))[1] == pytest.approx(6.0)


@settings(max_examples=8, deadline=None)
@given(rows=st.integers(1, 4), columns=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_jacfwd_equals_the_reverse_jacobian(rows, columns, seed):
    w = np.random.default_rng(seed).standard_normal((columns, 5))

    def f(x):
        return np.tanh(x @ w) * np.sum(x**2)

    x = np.random.default_rng(seed + 1).standard_normal((rows, columns))
    np.testing.assert_allclose(tape.jacfwd(f)(x), tape.jacobian(f)(x), rtol=1e-12, atol=1e-12)


def test_jacfwd_inside_grad_stays_recorded():
    # d/dx sum(J(x)) where J = jacfwd(sin(x) * x): the columns stay recorded for the outer grad.
    def summed_jacobian(x):
        return np.sum(tape.jacfwd(lambda y: np.sin(y) * y)(x))

    x = np.array([0.3, 1.2])
    expected = 2 * np.cos(x) - x * np.sin(x)  # d/dx (sin x + x cos x)
    np.testing.assert_allclose(tape.grad(summed_jacobian)(x), expected, rtol=1e-12)


def test_jacfwd_refuses_trees_and_several_outputs():
    with pytest.raises(TypeError, match="one array"):
        tape.jacfwd(lambda p: p["a"] * 2)({"a": np.ones(2), "b": np.ones(2)})
    with pytest.raises(TypeError, match="one array"):
        tape.jacfwd(lambda x: (x, x))(np.ones(2))


@settings(max_examples=8, deadline=None)
@given(dtype=st.sampled_from(FLOAT_DTYPES), seed=st.integers(0, 2**16))
def test_hvp_forward_over_reverse_equals_the_hessian(dtype, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3)).astype(dtype)

    def f(x):
        return np.sum(np.tanh(x @ w) ** 2) + np.sum(np.exp(x / 3) * x)

    x, v = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    (product,) = tape.hvp(f, (x,), (v,))
    assert product.dtype == dtype
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(product, tape.hessian(f)(x) @ v, rtol=tolerance, atol=tolerance)

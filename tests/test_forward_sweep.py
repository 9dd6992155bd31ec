"""``tape.jvp`` pushing tangents while the function runs (``tape.tangents.ForwardSweep``): the joint rules
(a product and its tangent in one product, sine and cosine with their slopes in one pass) against the
separate rules, finite differences and PyTorch; records the sweep does not see (a transform inside the
function) left to the sweep afterwards; a nested result, complex values and in-place writes; and that the
sweep never outlives its call."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tape
from tape import tangents
from tape.grad_mode import state
from tape.ops import elementwise_kernels, linalg, mkl, product_kernels
from tests.strategies import FLOAT_DTYPES


def central_difference(f, x, v, eps=1e-6):
    return (np.asarray(f(x + eps * v), np.float64) - np.asarray(f(x - eps * v), np.float64)) / (2 * eps)


def swept_afterwards(f, x, v):
    """f's output and J v by the sweep over the records after f ran (no joint rules)."""
    leaf = tape.tensor(x, requires_grad=True)
    out = f(leaf)
    (pushed,) = tangents.push_forward([out], {id(leaf): v})
    return out.data, pushed


# Each branch of matmul's joint rule: which operand has the tangent, and its rank.
PRODUCTS = {
    "W @ x": (lambda w, x: w @ x, (24, 16), (16,)),
    "W @ X": (lambda w, x: w @ x, (24, 16), (16, 5)),
    "x @ W": (lambda w, x: x @ w, (16, 24), (16,)),
    "X @ W": (lambda w, x: x @ w, (16, 24), (5, 16)),
}


@pytest.mark.parametrize("name", PRODUCTS)
@settings(max_examples=5, deadline=None)
@given(dtype=st.sampled_from(FLOAT_DTYPES), seed=st.integers(0, 2**16))
def test_a_product_and_its_tangent_in_one_product(name, dtype, seed):
    # (With MKL every form is one stacked product; without it W @ x takes the two-vector kernel.)
    product, weight_shape, x_shape = PRODUCTS[name]
    rng = np.random.default_rng(seed)
    weight = tape.tensor(rng.standard_normal(weight_shape).astype(dtype))
    x, v = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(x_shape).astype(dtype)

    def f(x):
        return np.tanh(product(weight, x))

    out, tangent = tape.jvp(f, (x,), (v,))
    expected_out, expected_tangent = swept_afterwards(f, x, v)
    assert out.dtype == tangent.dtype == dtype
    assert out.flags.c_contiguous and tangent.flags.c_contiguous
    tolerance = 1e-13 if dtype == np.float64 else 1e-5  # another BLAS kernel: the last bits may differ
    np.testing.assert_allclose(out, expected_out, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(tangent, expected_tangent, rtol=tolerance, atol=tolerance)
    wide = central_difference(f, x.astype(np.float64), v.astype(np.float64))
    loose = 1e-7 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(tangent, wide, rtol=loose, atol=loose * max(1, np.abs(wide).max()))


def test_the_joint_product_rule_runs_and_declines_where_it_should(monkeypatch):
    monkeypatch.setattr(product_kernels, "MIN_ELEMENTS", 64)  # (without MKL: the two-vector kernel)
    rng = np.random.default_rng(0)
    w, x, v = rng.standard_normal((300, 250)), rng.standard_normal(250), rng.standard_normal(250)
    rule = linalg.matmul.forward_jvp
    out, tangent = rule((None, v), w, x)  # MKL's stacked product, or the two-vector kernel
    np.testing.assert_allclose(out, w @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tangent, w @ v, rtol=1e-12, atol=1e-12)
    if mkl.gemms() is None:
        assert rule((v, None), x, w.T) is None  # (the other stacked forms are MKL's only)
        return
    out, tangent = rule((None, v), w, x)
    np.testing.assert_allclose(out, w @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tangent, w @ v, rtol=1e-12, atol=1e-12)
    dw = rng.standard_normal(w.shape)
    assert rule((dw, v), w, x) is None  # both operands move: the separate rule
    assert rule((None, np.ones((250, 400))), w, np.ones((250, 400))) is None  # the moving operand is larger
    assert rule((None, v.astype(np.float32)), w.astype(np.float32), x) is None  # mixed dtypes
    assert rule((None, v + 0j), w + 0j, x + 0j) is None  # complex values: reverse mode's business
    assert rule((None, np.ones(5)), w, np.ones(5)) is None  # shapes that do not align: the forward says so


def test_a_failed_product_still_names_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(8, 6\).*\(5,\)"):
        tape.jvp(lambda x: np.ones((8, 6)) @ x, (np.ones(5),), (np.ones(5),))


@pytest.mark.parametrize("use_jit", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_without_mkl_a_matrix_times_a_vector_and_its_tangent(monkeypatch, use_jit, dtype):
    # The two-vector kernel, its rows split between threads (JIT on); with JIT off, numpy's two products.
    monkeypatch.setattr(product_kernels, "MIN_ELEMENTS", 64)
    rng = np.random.default_rng(1)
    weight = tape.tensor(rng.standard_normal((600, 300)).astype(dtype))
    x, v = rng.standard_normal(300).astype(dtype), rng.standard_normal(300).astype(dtype)
    monkeypatch.setattr(mkl, "gemms", lambda: None)
    with tape.jit.use_jit(use_jit):
        kernel = use_jit and dtype == np.float64  # (float32 products are numpy's two)
        assert (linalg.matmul.forward_jvp((None, v), weight.data, x) is not None) == kernel
        out, tangent = tape.jvp(lambda x: weight @ x, (x,), (v,))
    assert out.dtype == tangent.dtype == dtype
    tolerance = 1e-13 if dtype == np.float64 else 1e-5
    if kernel:
        np.testing.assert_allclose(out, weight.data @ x, rtol=tolerance, atol=tolerance)
    else:
        np.testing.assert_array_equal(out, weight.data @ x)  # numpy's product, to the bit
    np.testing.assert_allclose(tangent, weight.data @ v, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("function", [np.sin, np.cos], ids=["sin", "cos"])
def test_sine_and_cosine_give_value_and_tangent_in_one_pass(function):
    size = elementwise_kernels.LARGE_TRANSCENDENTAL * 2
    rng = np.random.default_rng(2)
    x, v = rng.uniform(-20, 20, (2, size)), rng.standard_normal((2, size))
    joint = function(tape.tensor(np.ones(3), requires_grad=True))._record.op.forward_jvp
    assert joint((v,), x) is not None, "the joint rule did not run"
    out, tangent = tape.jvp(function, (x,), (v,))
    expected_out, expected_tangent = swept_afterwards(function, x, v)
    np.testing.assert_array_equal(out, expected_out)  # one kernel, one polynomial: the same bits
    np.testing.assert_array_equal(tangent, expected_tangent)
    slope = np.cos(x) if function is np.sin else -np.sin(x)
    np.testing.assert_allclose(tangent, slope * v, rtol=1e-14, atol=1e-15)


def test_float32_and_small_arrays_take_the_separate_rules():
    joint = np.sin(tape.tensor(np.ones(3), requires_grad=True))._record.op.forward_jvp
    assert joint((np.ones(3),), np.ones(3)) is None
    big = np.ones(elementwise_kernels.LARGE_TRANSCENDENTAL, np.float32)
    assert joint((big,), big) is None
    out, tangent = tape.jvp(np.sin, (big,), (big,))
    assert out.dtype == tangent.dtype == np.float32
    np.testing.assert_allclose(tangent, np.cos(big), rtol=1e-6)


def test_against_pytorch_on_a_layer_and_a_chain():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    w, b = rng.standard_normal((64, 128)) / 10, rng.standard_normal(64)
    x, v = rng.uniform(-2, 2, (128, 40)), rng.standard_normal((128, 40))

    def f(x, sin=np.sin, tanh=np.tanh, relu=tape.nn.functional.relu, wrap=tape.tensor):
        h = relu(wrap(w) @ x + wrap(b[:, None]))
        for _ in range(3):
            h = tanh(sin(h) * 1.5) + 0.25
        return h

    def f_torch(x):
        return f(x, torch.sin, torch.tanh, torch.relu, torch.from_numpy)

    out, tangent = tape.jvp(f, (x,), (v,))
    expected_out, expected_tangent = torch.func.jvp(f_torch, (torch.from_numpy(x),), (torch.from_numpy(v),))
    np.testing.assert_allclose(out, expected_out.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(tangent, expected_tangent.numpy(), rtol=1e-11, atol=1e-12)


def test_records_made_inside_another_transform_are_swept_afterwards():
    # The inner grad suspends the sweep, so its records (and everything after them) are left to the sweep
    # over the records when f returns: the same rules, the same answer.
    def f(x):
        slope = tape.grad(lambda y: np.sum(np.sin(y) ** 2))(x)
        return np.tanh(slope) * x

    x, v = np.linspace(-1, 1, 5), np.linspace(2, -1, 5)
    out, tangent = tape.jvp(f, (x,), (v,))
    np.testing.assert_allclose(tangent, central_difference(f, x, v), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(out, np.tanh(2 * np.sin(x) * np.cos(x)) * x, rtol=1e-14)


def test_a_result_that_depends_on_a_captured_weight_stays_recorded():
    # jvp under an enclosing gradient: the weight requires grad, so the result is nested; the sweep stops
    # at the first record that reads the weight and reverse mode keeps the dependence.
    weight = tape.tensor(np.array([[1.0, 2.0], [0.5, -1.0]]), requires_grad=True)
    x, v = np.array([0.3, -0.7]), np.array([1.0, 0.5])
    _, tangent = tape.jvp(lambda x: np.sin(weight @ x), (x,), (v,))
    assert isinstance(tangent, tape.Tensor) and tangent.requires_grad
    np.sum(tangent).backward()
    # d/dW sum(cos(W x) * (W v)) = outer(-sin(W x) * (W v), x) + outer(cos(W x), v)
    w = weight.data
    expected = np.outer(-np.sin(w @ x) * (w @ v), x) + np.outer(np.cos(w @ x), v)
    np.testing.assert_allclose(weight.grad, expected, rtol=1e-14)
    np.testing.assert_allclose(tangent.data, np.cos(w @ x) * (w @ v), rtol=1e-14)


def test_a_saved_value_overwritten_later_in_the_function_is_no_obstacle():
    # The sweep found sin's tangent before the write; the sweep over the records afterwards refuses.
    def f(x):
        y = x * 1.0
        z = np.sin(y)
        y[...] = 0.0
        return z + y

    x, v = np.array([0.2, 1.1, -2.0]), np.array([1.0, -1.0, 0.5])
    out, tangent = tape.jvp(f, (x,), (v,))
    np.testing.assert_allclose(out, np.sin(x))
    np.testing.assert_allclose(tangent, np.cos(x) * v, rtol=1e-15)
    leaf = tape.tensor(x, requires_grad=True)
    with pytest.raises(RuntimeError, match="changed in place"):
        tangents.push_forward([f(leaf)], {id(leaf): v})


def test_complex_values_inside_are_left_to_reverse_mode():
    def f(x):
        z = x * (1 + 2j)
        return np.real(z * np.conj(z)) + np.sin(x)

    x, v = np.array([0.5, -1.5]), np.array([1.0, 2.0])
    out, tangent = tape.jvp(f, (x,), (v,))
    np.testing.assert_allclose(out, 5 * x**2 + np.sin(x), rtol=1e-14)
    np.testing.assert_allclose(tangent, 10 * x * v + np.cos(x) * v, rtol=1e-14)


def test_several_outputs_of_one_op_are_followed():
    def f(x):
        values, vectors = np.linalg.eigh(x + x.T)
        return values * np.sum(vectors**3, axis=0)

    rng = np.random.default_rng(4)
    x, v = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    _, tangent = tape.jvp(f, (x,), (v,))
    np.testing.assert_allclose(tangent, central_difference(f, x, v), rtol=1e-6, atol=1e-8)


def test_the_sweep_ends_with_its_call_even_when_the_function_raises():
    def failing(x):
        np.sin(x)
        raise KeyError("inside")

    with pytest.raises(KeyError):
        tape.jvp(failing, (np.ones(2),), (np.ones(2),))
    assert state.forward_sweep is None
    tape.jvp(np.sin, (np.ones(2),), (np.ones(2),))
    assert state.forward_sweep is None


def test_another_threads_records_are_not_swept():
    seen = []
    x = tape.tensor(np.ones(3), requires_grad=True)
    started, finish = threading.Event(), threading.Event()

    def other():
        started.wait()
        seen.append(state.forward_sweep)
        np.sin(x)  # recorded in this thread, while the main thread's jvp runs
        finish.set()

    thread = threading.Thread(target=other)
    thread.start()

    def f(y):
        started.set()
        finish.wait(10)
        return np.cos(y)

    tangent = tape.jvp(f, (np.zeros(3),), (np.ones(3),))[1]
    thread.join()
    assert seen == [None]
    np.testing.assert_allclose(tangent, -np.sin(np.zeros(3)))


def test_tangents_of_dropped_records_are_freed():
    with tangents.forward_sweep({}) as sweep:
        x = tape.tensor(np.ones(4), requires_grad=True)
        for _ in range(50):
            np.sin(x * 2.0)  # dropped at once
        kept = np.exp(x)
        gc.collect()
        assert len(sweep.tangents) <= 2  # the one kept (and at most the last dropped pair's)
        assert kept._record in sweep.tangents

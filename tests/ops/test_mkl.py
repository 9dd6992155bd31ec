"""ops/mkl.py: MKL's products agree with numpy's in every operand layout MKL reads directly, everything else
is numpy's own to the bit, and matmul and linear differentiate through MKL as through numpy.

The tests that call MKL run where tape's ``mkl`` extra is installed (the developer install has it) and are
skipped with a note elsewhere; the fallbacks are tested everywhere."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
import tape.ops.mkl as mkl

DTYPES = [np.float64, np.float32]
needs_mkl = pytest.mark.skipif(
    mkl.gemms() is None, reason="MKL is not available (tape's mkl extra is not installed, or TAPE_MKL=0)"
)


@pytest.fixture
def every_size(monkeypatch):
    """Let MKL take products of any size, so that small hypothesis shapes exercise it."""
    monkeypatch.setattr(mkl, "MIN_WORK", 0)


def assert_close_to_numpy(product, a, b):
    expected = np.matmul(a, b)
    assert product.dtype == expected.dtype and product.shape == expected.shape
    assert product.flags.c_contiguous
    # Each entry is a sum of k products: bound its rounding by k ulps of sum |a_ik| |b_kj|.
    bound = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    tolerance = 4 * max(a.shape[1], 1) * np.finfo(a.dtype).eps * bound
    np.testing.assert_array_less(np.abs(product - expected), tolerance + np.finfo(a.dtype).tiny)


def operand(rng, rows, columns, dtype, layout):
    """A (rows, columns) operand laid out as MKL may read it, or not (``"strided"``, ``"reversed"``)."""
    if layout == "C":
        return rng.standard_normal((rows, columns)).astype(dtype)
    if layout == "F":
        return np.asfortranarray(rng.standard_normal((rows, columns)).astype(dtype))
    if layout == "row slice":  # rows of a wider matrix
        return rng.standard_normal((rows, columns + 3)).astype(dtype)[:, :columns]
    if layout == "column slice":  # a transpose of rows of a wider matrix
        return rng.standard_normal((columns, rows + 2)).astype(dtype)[:, :rows].T
    if layout == "strided":
        return rng.standard_normal((rows, 2 * columns)).astype(dtype)[:, ::2]
    if layout == "reversed":
        return rng.standard_normal((rows, columns)).astype(dtype)[::-1]
    raise ValueError(layout)


LAYOUTS = ["C", "F", "row slice", "column slice", "strided", "reversed"]


@needs_mkl
@given(
    m=st.integers(1, 40),
    k=st.integers(1, 40),
    n=st.integers(1, 40),
    a_layout=st.sampled_from(LAYOUTS),
    b_layout=st.sampled_from(LAYOUTS),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_products_agree_with_numpy_in_every_layout(m, k, n, a_layout, b_layout, dtype, seed):
    # (a fixture cannot be function-scoped under hypothesis: set and restore the threshold here)
    saved, mkl.MIN_WORK = mkl.MIN_WORK, 0
    try:
        rng = np.random.default_rng(seed)
        a = operand(rng, m, k, dtype, a_layout)
        b = operand(rng, k, n, dtype, b_layout)
        assert_close_to_numpy(mkl.matmul(a, b), a, b)
    finally:
        mkl.MIN_WORK = saved


@needs_mkl
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_products_go_to_mkl_and_agree_with_numpy(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 784)).astype(dtype)
    w = rng.standard_normal((512, 784)).astype(dtype)
    assert mkl.MIN_WORK <= 128 * 784 * 512
    for a, b in [(x, w.T), (w, x.T), (x.T, x), (w[:, :700], x[:, :700].T)]:
        assert_close_to_numpy(mkl.matmul(a, b), a, b)


@needs_mkl
@pytest.mark.parametrize("dtype", DTYPES)
def test_bits_do_not_depend_on_where_the_operands_lie(dtype, every_size):
    # MKL's conditional-reproducibility mode: the same values at another alignment give the same bits.
    rng = np.random.default_rng(1)
    a = rng.standard_normal((67, 131)).astype(dtype)
    b = rng.standard_normal((131, 45)).astype(dtype)
    for offset in range(1, 16):
        shifted = np.empty(a.size + offset, dtype)[offset:].reshape(a.shape)
        shifted[...] = a
        np.testing.assert_array_equal(mkl.matmul(shifted, b), mkl.matmul(a, b))


@needs_mkl
@pytest.mark.filterwarnings("ignore:invalid value encountered in matmul")
def test_special_values_propagate_as_in_numpy(every_size):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((9, 7))
    b = rng.standard_normal((7, 5))
    a[2, 3], a[4, 0], b[1, 4] = np.nan, np.inf, -np.inf
    product, expected = mkl.matmul(a, b), np.matmul(a, b)
    np.testing.assert_array_equal(np.isnan(product), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(product[~finite], expected[~finite])
    np.testing.assert_allclose(product[finite], expected[finite], rtol=1e-12)


@needs_mkl
def test_threads_may_multiply_at_once(every_size):
    rng = np.random.default_rng(3)
    pairs = [(rng.standard_normal((60, 50)), rng.standard_normal((50, 40))) for _ in range(8)]
    results: dict[int, np.ndarray] = {}

    def multiply(index):
        for _ in range(20):
            results[index] = mkl.matmul(*pairs[index])

    threads = [threading.Thread(target=multiply, args=(index,)) for index in range(len(pairs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, (a, b) in enumerate(pairs):
        assert_close_to_numpy(results[index], a, b)


@pytest.mark.parametrize(
    "a, b",
    [
        (np.ones((200, 200), np.float32), np.ones((200, 200))),  # mixed dtypes: numpy promotes
        (np.ones((200, 200), np.int64), np.ones((200, 200), np.int64)),
        (np.ones((200, 200), np.complex128), np.ones((200, 200), np.complex128)),
        (np.ones((2, 200, 200)), np.ones((200, 200))),  # stacks of matrices
        (np.ones(200), np.ones((200, 200))),
        (np.ones((3, 4)), np.ones((4, 5))),  # below MIN_WORK
        (np.ones((200, 200), ">f8"), np.ones((200, 200), ">f8")),  # foreign byte order
        (np.ones((200, 400))[:, ::2], np.ones((200, 200))),  # no unit stride
    ],
    ids=["mixed", "int", "complex", "stack", "vector", "small", "big-endian", "strided"],
)
def test_what_mkl_does_not_take_is_numpys_to_the_bit(a, b):
    product = mkl.matmul(a, b)
    expected = np.matmul(a, b)
    assert product.dtype == expected.dtype
    np.testing.assert_array_equal(product, expected)


def test_shapes_that_do_not_align_raise_numpys_error(every_size):
    with pytest.raises(ValueError, match="matmul"):
        mkl.matmul(np.ones((3, 4)), np.ones((5, 2)))


def test_tensors_are_recorded_by_numpy_dispatch(every_size):
    a = tape.tensor(np.ones((3, 4)), requires_grad=True)
    product = mkl.matmul(a, np.ones((4, 2)))
    assert isinstance(product, tape.Tensor)
    np.sum(product).backward()
    np.testing.assert_array_equal(a.grad, np.full((3, 4), 2.0))


def test_tape_mkl_0_keeps_numpys_products(monkeypatch):
    monkeypatch.setenv("TAPE_MKL", "0")
    assert mkl.library_path() is None


def test_without_mkl_every_product_is_numpys_to_the_bit(monkeypatch, every_size):
    monkeypatch.setattr(mkl, "_gemms", None)
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((50, 60)), rng.standard_normal((60, 70))
    np.testing.assert_array_equal(mkl.matmul(a, b), np.matmul(a, b))
    assert mkl.version() is None


@needs_mkl
def test_version_names_mkl():
    assert "Math Kernel Library" in mkl.version()


@needs_mkl
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layer", ["matmul", "linear"])
def test_gradients_through_mkl_match_finite_differences(layer, dtype, every_size):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 5)).astype(dtype)
    w = rng.standard_normal((4, 5)).astype(dtype)
    bias = rng.standard_normal(4).astype(dtype)
    if layer == "matmul":
        assert tape.gradcheck(lambda x, w: np.tanh(x @ w.T) @ w, x, w)
    else:
        assert tape.gradcheck(lambda x, w, bias: tape.nn.functional.linear(x, w, bias), x, w, bias)


def test_sizes_beyond_32_bits_stay_numpys(monkeypatch, every_size):
    # MKL's interface takes 32-bit sizes: a larger dimension or row stride must never reach it.
    def refuse(*arguments):
        raise AssertionError("MKL was called")

    monkeypatch.setattr(mkl, "_gemms", {np.dtype(np.float64): refuse})
    monkeypatch.setattr(mkl, "_LARGEST_SIZE", 40)
    rng = np.random.default_rng(6)
    for a, b in [
        (rng.standard_normal((50, 30)), rng.standard_normal((30, 20))),  # a dimension over the limit
        (rng.standard_normal((30, 50))[:, :30], rng.standard_normal((30, 20))),  # a row stride over it
    ]:
        np.testing.assert_array_equal(mkl.matmul(a, b), np.matmul(a, b))
    with pytest.raises(AssertionError, match="MKL was called"):  # and below the limit it is called
        mkl.matmul(rng.standard_normal((30, 30)), rng.standard_normal((30, 20)))


def test_rows_8_kib_apart_on_the_right_stay_numpys(monkeypatch, every_size):
    # MKL's slow case (rows of the right operand read in order, a multiple of 8 KiB apart) is left to numpy;
    # the same rows read transposed, or 8 bytes further apart, go to MKL.
    def refuse(*arguments):
        raise AssertionError("MKL was called")

    monkeypatch.setattr(mkl, "_gemms", {np.dtype(np.float64): refuse})
    rng = np.random.default_rng(7)
    g, w = rng.standard_normal((4, 16)), rng.standard_normal((16, 1024))
    np.testing.assert_array_equal(mkl.matmul(g, w), np.matmul(g, w))
    for b in (rng.standard_normal((1024, 16)).T, rng.standard_normal((16, 1025))[:, :1024]):
        with pytest.raises(AssertionError, match="MKL was called"):
            mkl.matmul(g, b)

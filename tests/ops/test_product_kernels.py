"""``ops/product_kernels.py``: a matrix times two vectors in one pass, against its numpy twin and numpy's
products, on every row count the four-row loop and its remainder meet, split between threads or not, and
the layouts it declines."""

from __future__ import annotations

import numpy as np
import pytest

from tape import jit
from tape.ops import product_kernels
from tests.strategies import FLOAT_DTYPES


def tolerance(dtype):
    return {"rtol": 1e-13, "atol": 1e-13} if dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-5}


def operands(rows, columns, dtype, seed=0):
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((rows, columns)).astype(dtype)
    return matrix, rng.standard_normal(columns).astype(dtype), rng.standard_normal(columns).astype(dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("rows", [0, 1, 3, 4, 5, 9])
@pytest.mark.parametrize("columns", [0, 1, 7])
def test_kernel_matches_its_twin(rows, columns, dtype):
    matrix, x, v = operands(rows, columns, dtype)
    results = []
    for use_jit in (True, False):
        first, second = np.full(rows, np.nan, dtype), np.full(rows, np.nan, dtype)
        with jit.use_jit(use_jit):
            product_kernels.two_products_kernel(matrix, x, v, first, second, 0, rows)
        results.append((first, second))
    assert product_kernels.two_products_kernel.signatures(), "the compiled kernel did not run"
    for found, expected in zip(results[0], results[1], strict=True):
        assert found.dtype == dtype
        np.testing.assert_allclose(found, expected, **tolerance(dtype))


def test_kernel_writes_only_its_rows():
    matrix, x, v = operands(10, 6, np.float64)
    first, second = np.full(10, -1.0), np.full(10, -1.0)
    with jit.use_jit(True):
        product_kernels.two_products_kernel(matrix, x, v, first, second, 3, 8)
    np.testing.assert_allclose(first[3:8], matrix[3:8] @ x, **tolerance(np.float64))
    np.testing.assert_allclose(second[3:8], matrix[3:8] @ v, **tolerance(np.float64))
    assert (first[:3] == -1).all() and (first[8:] == -1).all() and (second[8:] == -1).all()


@pytest.fixture
def small_matrices_take_the_kernel(monkeypatch):
    monkeypatch.setattr(product_kernels, "MIN_ELEMENTS", 64)


@pytest.mark.parametrize("rows", [1, 67, 257, 1030])
def test_products_split_between_threads(rows, small_matrices_take_the_kernel):
    dtype = np.float64
    matrix, x, v = operands(rows, 300, dtype, seed=rows)
    with jit.use_jit(True):
        first, second = product_kernels.matrix_times_two_vectors(matrix, x, v)
    np.testing.assert_allclose(first, matrix @ x, **tolerance(dtype))
    np.testing.assert_allclose(second, matrix @ v, **tolerance(dtype))


def test_a_forked_process_makes_its_own_threads(monkeypatch, small_matrices_take_the_kernel):
    matrix, x, v = operands(1030, 300, np.float64)
    with jit.use_jit(True):
        product_kernels.matrix_times_two_vectors(matrix, x, v)
        before = product_kernels._pool
        monkeypatch.setattr(product_kernels, "_pool_owner", -2)  # as if made by a parent process
        first, _ = product_kernels.matrix_times_two_vectors(matrix, x, v)
    assert product_kernels._pool is not before
    np.testing.assert_allclose(first, matrix @ x, **tolerance(np.float64))


def test_what_the_kernel_does_not_take_is_declined(small_matrices_take_the_kernel):
    matrix, x, v = operands(8, 40, np.float64)
    with jit.use_jit(True):
        assert product_kernels.matrix_times_two_vectors(matrix[:, :6], x[:6], v[:6]) is None  # small
        take = product_kernels.matrix_times_two_vectors
        assert take(matrix, x, v) is not None
        assert take(matrix.T.copy().T, x, v) is None  # not C-contiguous
        assert take(matrix, x[::-1], v) is None
        assert take(matrix, x.astype(np.float32), v) is None
        assert take(matrix.astype(np.int64), x, v) is None
        assert take(*(a.astype(np.float32) for a in (matrix, x, v))) is None  # numpy's are faster
        assert take(matrix, x[:-1], v[:-1]) is None  # shapes that do not align
        assert take(matrix, x, v[:-1]) is None
        assert take(matrix, x[None], v[None]) is None
    with jit.use_jit(False):
        assert take(matrix, x, v) is None  # numpy's two products are the caller's

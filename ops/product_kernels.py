"""A matrix times two vectors in one pass over the matrix: forward mode's joint product without MKL.

``tape.jvp`` of ``W @ x`` needs ``W @ x`` and ``W @ v``. A matrix-vector product is bound by reading the
matrix, so two of them cost twice one; MKL's product of the matrix with the two vectors stacked reads it
once (``ops/linalg.py``), but numpy's BLAS computes that stacked product 2-4 times slower than two
matrix-vector products. This kernel reads four rows at a time and multiplies each by both vectors, so
every element of the matrix is loaded once for two multiply-adds; the rows are split between threads
(the kernel releases the GIL), since one core alone does not read memory as fast as a threaded BLAS.
Measured on an Intel Xeon (AVX-512, 2 cores) for W of 2048 x 4096 float64: one ``W @ x`` 1.45 ms, two
2.92 ms, this kernel 1.58 ms on two threads (``python -m benchmarks --suite forward_mode``).

Sums are reassociated (numba's ``fastmath``), so the last bits differ from numpy's product, as MKL's do.
The kernel takes float64 only: float32 products, accumulated in float64 here, lost to numpy's two (2048 x
2048: 1.6 ms against 0.8 ms). It runs only with JIT on; otherwise the rule declines and the two products
are numpy's.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tape import jit
from tape.jit import kernel

__all__ = ["MIN_ELEMENTS", "matrix_times_two_vectors", "two_products_kernel"]

#: Fewest matrix elements for which the kernel runs, its rows split between threads: below it the matrix
#: stays in cache between numpy's two products, which are then as fast (measured: even at 2048 x 1024), a
#: thread's hand-off costs about 0.1 ms, and a small JVP imports no numba.
MIN_ELEMENTS = 1 << 22
_FLOAT64 = np.dtype(np.float64)
_pool: ThreadPoolExecutor | None = None
_pool_owner = -1  # the process that made the pool (a forked child makes its own: threads do not survive)
_pool_lock = threading.Lock()


def _two_products_numpy(
    matrix: np.ndarray,
    x: np.ndarray,
    v: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    start: int,
    stop: int,
) -> None:
    first[start:stop] = matrix[start:stop] @ x
    second[start:stop] = matrix[start:stop] @ v


@kernel(_two_products_numpy, fastmath=True)
def two_products_kernel(
    matrix: np.ndarray,
    x: np.ndarray,
    v: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """``first[i] = matrix[i] @ x`` and ``second[i] = matrix[i] @ v`` for rows ``start <= i < stop``."""
    columns = matrix.shape[1]
    i = start
    while i + 4 <= stop:
        s0 = s1 = s2 = s3 = 0.0
        t0 = t1 = t2 = t3 = 0.0
        for j in range(columns):
            xj, vj = x[j], v[j]
            w0, w1, w2, w3 = matrix[i, j], matrix[i + 1, j], matrix[i + 2, j], matrix[i + 3, j]
            s0 += w0 * xj
            s1 += w1 * xj
            s2 += w2 * xj
            s3 += w3 * xj
            t0 += w0 * vj
            t1 += w1 * vj
            t2 += w2 * vj
            t3 += w3 * vj
        first[i], first[i + 1], first[i + 2], first[i + 3] = s0, s1, s2, s3
        second[i], second[i + 1], second[i + 2], second[i + 3] = t0, t1, t2, t3
        i += 4
    while i < stop:
        s = t = 0.0
        for j in range(columns):
            s += matrix[i, j] * x[j]
            t += matrix[i, j] * v[j]
        first[i], second[i] = s, t
        i += 1


def matrix_times_two_vectors(matrix: Any, x: Any, v: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(matrix @ x, matrix @ v)`` by ``two_products_kernel``, the rows split between the cores; None
    where the kernel does not apply (JIT off, a small matrix, a layout or dtype other than C-contiguous
    float64), for the caller to multiply twice.

    Examples
    --------
    >>> matrix = np.ones((2048, 2048))
    >>> found = matrix_times_two_vectors(matrix, np.arange(2048.0), np.ones(2048))
    >>> found is None or (found[0][0], found[1][0]) == (2096128.0, 2048.0)
    True
    """
    if not jit.enabled() or two_products_kernel.failed or np.size(matrix) < MIN_ELEMENTS:
        return None
    for array, ndim in ((matrix, 2), (x, 1), (v, 1)):
        if type(array) is not np.ndarray or array.ndim != ndim or not array.flags.c_contiguous:
            return None
    dtype = matrix.dtype
    if dtype != _FLOAT64 or x.dtype != dtype or v.dtype != dtype or x.shape != v.shape:
        return None
    rows, columns = matrix.shape
    if x.shape[0] != columns:
        return None
    first, second = np.empty(rows, dtype), np.empty(rows, dtype)
    two_products_kernel(matrix, x, v, first, second, 0, 0)  # compiles (or loads) here, not in a thread
    workers = min(_cores(), max(1, rows // 64))
    if workers == 1:
        two_products_kernel(matrix, x, v, first, second, 0, rows)
        return first, second
    bounds = [rows * k // workers // 4 * 4 for k in range(workers)] + [rows]
    pool = _thread_pool()
    pending = [
        pool.submit(two_products_kernel, matrix, x, v, first, second, bounds[k], bounds[k + 1])
        for k in range(1, workers)
    ]
    two_products_kernel(matrix, x, v, first, second, bounds[0], bounds[1])
    for future in pending:
        future.result()
    return first, second


def _cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _thread_pool() -> ThreadPoolExecutor:
    """The threads that take a share of the rows, made on first use (and again in a forked child)."""
    global _pool, _pool_owner
    with _pool_lock:
        if _pool is None or _pool_owner != os.getpid():
            _pool = ThreadPoolExecutor(max(1, _cores() - 1), thread_name_prefix="tape-products")
            _pool_owner = os.getpid()
        return _pool

"""Matrix products on Intel MKL, when tape's ``mkl`` extra is installed (``pip install "tape[mkl]"``).

numpy's wheels multiply matrices with OpenBLAS, which on Intel CPUs with AVX-512 is 7-20% slower than MKL,
the BLAS that PyTorch ships (``python -m benchmarks --suite peers`` measures both). With the extra
installed, ``matmul`` below hands each 2-D float32 or float64 product large enough to repay a foreign call
to MKL's ``cblas_?gemm``; everything else, and every product when MKL is missing or ``TAPE_MKL=0`` is set,
is numpy's own. MKL's last bits differ from numpy's (another summation order), as PyTorch's do;
``TAPE_MKL=0`` keeps numpy's values to the bit. MKL runs in its conditional-reproducibility mode, so a
product's bits never depend on where its operands happen to lie in memory.

The library is loaded with ctypes on the first product that qualifies, never at ``import tape``. This
module knows nothing of tensors: a product of tensors goes to ``np.matmul``, which dispatches (and records).
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import numpy as np

# Below this many multiply-adds (m * n * k) numpy's product is as fast: the foreign call costs about 10 us
# (ctypes' argument handling and MKL's threads), a 128 x 128 x 128 product about 70 us.
MIN_WORK = 128**3

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_LARGEST_SIZE = 2**31
_ALIASING_STRIDE = 8192  # bytes
_CBWR_AUTO = 2  # MKL_CBWR_AUTO: results independent of the operands' alignment
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)
_UNLOADED: Any = object()
_gemms: Any = _UNLOADED  # {dtype: cblas_?gemm} once loaded, None when MKL is not available
_loading = threading.Lock()


def library_path() -> str | None:
    """Where the ``mkl`` distribution put MKL's runtime library; None when it is not installed or
    ``TAPE_MKL=0`` is set."""
    if os.environ.get("TAPE_MKL", "1") == "0":
        return None
    from importlib import metadata  # 20 ms to import: not at ``import tape``

    try:
        distribution = metadata.distribution("mkl")
    except metadata.PackageNotFoundError:
        return None
    for file in distribution.files or ():
        if file.name.startswith(("libmkl_rt.so", "mkl_rt.")) and not file.name.endswith(".lib"):
            return str(distribution.locate_file(file))
    return None


def _load() -> Any:
    path = library_path()
    if path is None:
        return None
    mkl = ctypes.CDLL(path)
    mkl.MKL_CBWR_Set(_CBWR_AUTO)
    gemms = {}
    integer, pointer = ctypes.c_int, ctypes.c_void_p
    for dtype, gemm, scalar in (
        (_FLOAT64, mkl.cblas_dgemm, ctypes.c_double),
        (_FLOAT32, mkl.cblas_sgemm, ctypes.c_float),
    ):
        gemm.argtypes = [integer] * 6 + [scalar, pointer, integer, pointer, integer, scalar, pointer, integer]
        gemm.restype = None
        gemms[dtype] = gemm
    return gemms


def gemms() -> dict[np.dtype, Any] | None:
    """MKL's ``cblas_dgemm`` and ``cblas_sgemm`` by dtype, loading the library on the first call; None
    when MKL is not available."""
    global _gemms
    if _gemms is _UNLOADED:
        with _loading:
            if _gemms is _UNLOADED:
                _gemms = _load()
    return _gemms


def version() -> str | None:
    """MKL's version string, or None when tape's products are numpy's."""
    if gemms() is None:
        return None
    path = library_path()
    assert path is not None
    buffer = ctypes.create_string_buffer(256)
    ctypes.CDLL(path).MKL_Get_Version_String(buffer, len(buffer))
    return buffer.value.decode().strip()


def _layout(a: np.ndarray) -> tuple[int, int]:
    # (transpose flag, leading dimension) of a row-major operand, or (0, 0) when MKL cannot read it as is.
    rows, columns = a.shape
    item = a.itemsize
    row_stride, column_stride = a.strides
    if a.flags.c_contiguous:
        return _NO_TRANS, max(1, columns)
    if a.flags.f_contiguous:
        return _TRANS, max(1, rows)
    if column_stride == item and row_stride % item == 0 and row_stride >= item * max(1, columns):
        return _NO_TRANS, row_stride // item  # rows of a wider matrix: x[:, :k]
    if row_stride == item and column_stride % item == 0 and column_stride >= item * max(1, rows):
        return _TRANS, column_stride // item
    return 0, 0


def matmul(a: Any, b: Any) -> Any:
    """``a @ b``: MKL's product for 2-D float32/float64 arrays of one dtype and at least ``MIN_WORK``
    multiply-adds when MKL is available (but for the layouts where MKL was measured slower), ``np.matmul``'s
    otherwise (tensors included, which it records).

    Examples
    --------
    >>> a, b = np.ones((2, 3)), np.ones((3, 4))
    >>> matmul(a, b)
    array([[3., 3., 3., 3.],
           [3., 3., 3., 3.]])
    """
    if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2:
        m, k = a.shape
        n = b.shape[1]
        dtype = a.dtype
        if (
            m * n * k >= MIN_WORK
            and b.shape[0] == k
            and b.dtype == dtype
            and dtype in (_FLOAT64, _FLOAT32)
            and a.flags.aligned
            and b.flags.aligned
        ):
            available = gemms()
            if available is not None:
                a_trans, lda = _layout(a)
                b_trans, ldb = _layout(b)
                # MKL's LP64 interface takes 32-bit sizes; beyond them numpy's product is the safe one.
                # And MKL is 1.6-2.4 times slower than OpenBLAS when the right operand's rows, read in
                # order, lie a multiple of 8 KiB apart (g @ W for W of 2048 x 4096 in float64, measured
                # on an Intel Xeon with AVX-512; PyTorch's MKL too), so those stay numpy's.
                if (
                    lda
                    and ldb
                    and max(m, n, k, lda, ldb) < _LARGEST_SIZE
                    and not (b_trans == _NO_TRANS and ldb * b.itemsize % _ALIASING_STRIDE == 0)
                ):
                    out = np.empty((m, n), dtype)
                    available[dtype](
                        _ROW_MAJOR, a_trans, b_trans, m, n, k, 1.0, a.ctypes.data, lda,
                        b.ctypes.data, ldb, 0.0, out.ctypes.data, n,
                    )  # fmt: skip
                    return out
    return np.matmul(a, b)

"""The error function ``erf``, an op with its VJP, for the exact GELU and for users (``tape.erf``).

numpy has no ``erf``; Python's ``math.erf`` is accurate to about an ulp but runs one element at a time. The
kernel ``erf_kernel`` calls the C library's ``erf`` in a numba loop; its numpy twin maps ``math.erf`` over
the array (exact, and slow: about 100 ns an element). Both compute in float64 and round once to the input's
dtype. The VJP ``g * 2/sqrt(pi) * exp(-x^2)`` is numpy code, so it is recorded under ``create_graph``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tape.jit import kernel
from tape.op import Op

__all__ = ["erf", "erf_kernel", "erf_op"]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_ERF_OF_OBJECTS = np.frompyfunc(math.erf, 1, 1)
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _erf_numpy(x: np.ndarray) -> np.ndarray:
    """numpy twin of ``erf_kernel``: ``math.erf`` of each element of the 1-d ``x``, in ``x``'s dtype."""
    return np.asarray(_ERF_OF_OBJECTS(x.astype(np.float64)), dtype=np.float64).astype(x.dtype)


@kernel(_erf_numpy)
def erf_kernel(x: np.ndarray) -> np.ndarray:
    """``erf`` of each element of the 1-d float32/float64 array ``x`` (computed in float64)."""
    result = np.empty_like(x)
    for i in range(x.shape[0]):
        result[i] = math.erf(np.float64(x[i]))
    return result


def _erf(x: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)  # integers and booleans give float64, as numpy's ufuncs do
    flat = np.ascontiguousarray(x).reshape(-1)
    if x.dtype in _KERNEL_DTYPES:
        return erf_kernel(flat).reshape(x.shape)
    return _erf_numpy(flat).reshape(x.shape)  # float16, longdouble: math.erf in float64, rounded back


erf_op = Op(_erf, lambda g, out, x: g * (_TWO_OVER_SQRT_PI * np.exp(-(x * x))), name="erf", batched=True)


def erf(x: Any) -> Any:
    """The error function, ``2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt``, elementwise.

    Tensors in give recorded tensors out; arrays in give arrays out. float32 stays float32.

    Examples
    --------
    >>> import numpy as np
    >>> erf(np.array([0.0, 1.0])).round(6)
    array([0.      , 0.842701])
    """
    return erf_op(x)

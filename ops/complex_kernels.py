"""A fused VJP for ``abs`` of complex values: one pass where numpy makes four.

The VJP of ``|z|`` in PyTorch's convention is ``g * z / |z|`` (0 where ``z == 0``). numpy evaluates it as
``abs(z)`` (one ``hypot`` per element, which does not vectorize), a guarded division and a complex product,
each a pass over memory with its own temporary; on the 2**15 bins of a spectral loss that is several times
the cost of the loop here. The loop takes ``|z|`` as ``sqrt(re**2 + im**2)`` in float64, which vectorizes,
and flags the elements where that square may overflow or underflow (beyond 1e300 or below 1e-300, zero
included, and NaN); a second loop, run only when some were flagged, recomputes those with ``hypot``, as numpy
does. complex64 values are computed in float64 and rounded once when stored.

The wrapper runs the kernel on plain C-contiguous arrays of one shape whose cotangent has the real dtype
of ``z`` (float64 for complex128, float32 for complex64); anything else runs the twin, the numpy
expression. Nothing here records on the tape or compiles at import.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tape.jit import kernel

__all__ = ["abs_vjp", "abs_vjp_kernel"]

_REAL_OF = {np.dtype(np.complex128): np.dtype(np.float64), np.dtype(np.complex64): np.dtype(np.float32)}
#: Squares of magnitudes beyond these are recomputed with ``hypot`` (overflow, underflow, zero).
_SQUARE_HIGH = 1e300
_SQUARE_LOW = 1e-300


def _abs_vjp_numpy(g: Any, z: Any) -> Any:
    magnitude = np.abs(z)
    scale = np.zeros(np.broadcast_shapes(np.shape(g), magnitude.shape), np.result_type(g, magnitude))
    np.divide(g, magnitude, out=scale, where=magnitude != 0)
    return scale * z


@kernel(_abs_vjp_numpy)
def abs_vjp_kernel(g: np.ndarray, z: np.ndarray) -> np.ndarray:
    result = np.empty(z.shape[0], z.dtype)
    unusual = 0
    for i in range(z.shape[0]):
        re, im = np.float64(z[i].real), np.float64(z[i].imag)
        square = re * re + im * im
        scale = g[i] / math.sqrt(square) if square != 0.0 else 0.0
        # (scale + 0j) * z as numpy multiplies complex numbers: 0 * (inf + 1j) is nan + nanj there.
        result[i] = complex(scale * re - 0.0 * im, scale * im + 0.0 * re)
        unusual += not _SQUARE_LOW <= square <= _SQUARE_HIGH  # NaN too: hypot(inf, nan) is inf
    if unusual:
        for i in range(z.shape[0]):
            re, im = np.float64(z[i].real), np.float64(z[i].imag)
            square = re * re + im * im
            if not _SQUARE_LOW <= square <= _SQUARE_HIGH:
                magnitude = math.hypot(re, im)
                scale = g[i] / magnitude if magnitude != 0.0 else 0.0
                result[i] = complex(scale * re - 0.0 * im, scale * im + 0.0 * re)
    return result


def abs_vjp(g: Any, z: np.ndarray) -> Any:
    """``g * z / |z|`` (0 where ``z == 0``), the VJP of ``abs`` at complex ``z``, in one pass.

    Examples
    --------
    >>> abs_vjp(np.array([2.0, 5.0]), np.array([3 + 4j, 0j]))
    array([1.2+1.6j, 0. +0.j ])
    """
    real = _REAL_OF.get(z.dtype)
    if (
        real is None
        or type(g) is not np.ndarray
        or g.dtype != real
        or g.shape != z.shape
        or not (g.flags.c_contiguous and z.flags.c_contiguous)
    ):
        return abs_vjp_kernel.twin(g, z)
    if z.ndim == 1:
        return abs_vjp_kernel(g, z)
    return abs_vjp_kernel(g.reshape(-1), z.reshape(-1)).reshape(z.shape)

"""Fused elementwise VJPs, and sine and cosine that vectorize: numba loops that make one pass over memory.

The VJPs of ``ops/elementwise.py`` and ``ops/nn.py`` are numpy expressions, and numpy evaluates an
expression one operator at a time: tanh's ``g * (1 - out * out)`` reads and writes memory three times and
allocates two temporaries. Each kernel here computes one such VJP in a single loop, and its twin is the
very numpy expression it replaces. Sine and cosine get one more kernel (``sine_kernel``, for the forwards
of ``sin`` and ``cos`` and for their VJPs): numpy calls libm once per float64 element, while a polynomial
after a range reduction runs four elements at a time in AVX registers, several times faster, within 2 ulp.

How the ops use them (the rule that keeps ``create_graph`` working): a VJP calls the wrapper here only
when its array is a plain ``np.ndarray`` of at least ``LARGE`` elements (``LARGE_TRANSCENDENTAL`` for
sine, cosine, gelu and softplus), one inline check, so small arrays pay nothing more; otherwise it runs
its numpy expression, which records on tensors. The wrapper then runs the kernel when the cotangent is a
plain array of the same shape and float dtype (a batched cotangent, or a float16 one, goes to the twin).
The kernel sees the C-contiguous arrays as 1-d views; any other layout (a transposed or strided view, or
the stride-0 cotangent that ``sum``'s VJP broadcasts) runs the twin too, which keeps each kernel to one
compiled signature per dtype.

Every kernel is serial. Those that only multiply and add are bound by memory; a second thread gains
little on two cores, and numba's threads (OpenMP, which spin-waits) lose several milliseconds a call as
soon as another process keeps the other core busy. float32 arrays are computed in float64 inside the loop
and rounded once when stored, so a result may differ from numpy's float32 sequence of roundings in the
last bit; sine and cosine leave float32 to numpy, whose SIMD loops for it are as fast. This module records
nothing on the tape and compiles nothing at import.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tape.jit import Kernel, kernel

__all__ = [
    "LARGE",
    "LARGE_TRANSCENDENTAL",
    "cos",
    "cos_vjp",
    "elu_vjp",
    "elu_vjp_kernel",
    "extremum_vjp",
    "extremum_vjp_kernel",
    "gelu_vjp",
    "gelu_vjp_kernel",
    "leaky_relu_vjp",
    "leaky_relu_vjp_kernel",
    "relu_vjp",
    "relu_vjp_kernel",
    "sigmoid_vjp",
    "sigmoid_vjp_kernel",
    "sin",
    "sin_vjp",
    "sine_kernel",
    "sine_with_tangent",
    "softplus_vjp",
    "softplus_vjp_kernel",
    "sqrt_vjp",
    "sqrt_vjp_kernel",
    "square_vjp",
    "square_vjp_kernel",
    "tanh_vjp",
    "tanh_vjp_kernel",
]

#: Fewest elements for which the arithmetic VJPs take their kernel (tanh, sigmoid, relu, leaky_relu, elu,
#: maximum and minimum against a scalar, x**2, sqrt): below it numba's call and the wrapper's checks (2-4 µs)
#: cost more than the passes they save.
LARGE = 1 << 14
#: The same for the kernels that evaluate sin, cos or exp per element (sin, cos and their VJPs, gelu's and
#: softplus' VJPs), which save more per element.
LARGE_TRANSCENDENTAL = 1 << 11

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_FLOAT64 = np.dtype(np.float64)
_FLOAT64_ONLY = (_FLOAT64,)
_GELU_C = float(np.sqrt(2.0 / np.pi))
_GELU_K = 0.044715


# -- running a kernel on plain arrays ----------------------------------------------------------------------
def _fused(
    compiled: Kernel[Any],
    g: Any,
    arrays: tuple[np.ndarray, ...],
    *scalars: Any,
    dtypes: tuple[np.dtype, ...] = _FLOAT_DTYPES,
) -> Any:
    """``compiled(g, *arrays, *scalars)`` on 1-d views of arrays of one shape and dtype, reshaped back; the
    twin (the numpy expression) when an array is not a plain C-contiguous one of that shape and dtype, or the
    dtype is not among ``dtypes``."""
    shape, dtype = arrays[0].shape, arrays[0].dtype
    if dtype not in dtypes:
        return compiled.twin(g, *arrays, *scalars)
    for array in (g, *arrays):
        # C-contiguous only: reshape(-1) is then a view, and each kernel compiles for one layout per dtype.
        # Dtypes are compared by value: arrays loaded from a file, say, carry equal but distinct dtypes.
        if (
            type(array) is not np.ndarray
            or array.shape != shape
            or array.dtype != dtype
            or not array.flags.c_contiguous
        ):
            return compiled.twin(g, *arrays, *scalars)
    if len(shape) == 1:
        return compiled(g, *arrays, *scalars)
    return compiled(g.reshape(-1), *(array.reshape(-1) for array in arrays), *scalars).reshape(shape)


def _scalar(value: Any) -> float | None:
    """``value`` as a Python float when it is a real number (not an array, not a tensor), else None."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return float(value)
    return None


# -- arithmetic VJPs: serial, memory bound ------------------------------------------------------------------
def _tanh_vjp_numpy(g: Any, out: Any) -> Any:
    return g * (1 - out * out)


@kernel(_tanh_vjp_numpy)
def tanh_vjp_kernel(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        result[i] = g[i] * (1.0 - out[i] * out[i])
    return result


def tanh_vjp(g: Any, out: np.ndarray) -> Any:
    """``g * (1 - out * out)``, the VJP of ``tanh`` from its output, in one pass.

    Examples
    --------
    >>> tanh_vjp(np.ones(2), np.array([0.0, 0.5]))
    array([1.  , 0.75])
    """
    return _fused(tanh_vjp_kernel, g, (out,))


def _sigmoid_vjp_numpy(g: Any, out: Any) -> Any:
    return g * out * (1 - out)


@kernel(_sigmoid_vjp_numpy)
def sigmoid_vjp_kernel(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        result[i] = g[i] * out[i] * (1.0 - out[i])
    return result


def sigmoid_vjp(g: Any, out: np.ndarray) -> Any:
    """``g * out * (1 - out)``, the VJP of ``sigmoid`` from its output, in one pass.

    Examples
    --------
    >>> sigmoid_vjp(np.ones(2), np.array([0.5, 1.0]))
    array([0.25, 0.  ])
    """
    return _fused(sigmoid_vjp_kernel, g, (out,))


def _relu_vjp_numpy(g: Any, out: Any) -> Any:
    return g * (out > 0)


@kernel(_relu_vjp_numpy)
def relu_vjp_kernel(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        # A product rather than a choice, so a NaN or infinite g gives NaN where out <= 0, as numpy does.
        result[i] = g[i] * (1.0 if out[i] > 0 else 0.0)
    return result


def relu_vjp(g: Any, out: np.ndarray) -> Any:
    """``g * (out > 0)``, the VJP of ``relu`` from its output, in one pass.

    Examples
    --------
    >>> relu_vjp(np.full(2, 3.0), np.array([0.0, 2.0]))
    array([0., 3.])
    """
    return _fused(relu_vjp_kernel, g, (out,))


def _square_vjp_numpy(g: Any, x: Any) -> Any:
    return g * (x + x)


@kernel(_square_vjp_numpy)
def square_vjp_kernel(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        result[i] = g[i] * (x[i] + x[i])
    return result


def square_vjp(g: Any, x: np.ndarray) -> Any:
    """``g * (x + x)``, the VJP of ``x ** 2`` and ``square``, in one pass.

    Examples
    --------
    >>> square_vjp(np.ones(2), np.array([1.0, -3.0]))
    array([ 2., -6.])
    """
    return _fused(square_vjp_kernel, g, (x,))


def _sqrt_vjp_numpy(g: Any, out: Any) -> Any:
    return g / (2 * out)


@kernel(_sqrt_vjp_numpy)
def sqrt_vjp_kernel(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        twice = 2.0 * out[i]
        # numba raises ZeroDivisionError on x / 0.0: give numpy's infinity (NaN for 0 / 0) by hand, which
        # also lets the loop vectorize.
        result[i] = g[i] / twice if twice != 0.0 else g[i] * math.copysign(math.inf, twice)
    return result


def sqrt_vjp(g: Any, out: np.ndarray) -> Any:
    """``g / (2 * out)``, the VJP of ``sqrt`` from its output, in one pass.

    Examples
    --------
    >>> sqrt_vjp(np.ones(2), np.array([1.0, 2.0]))
    array([0.5 , 0.25])
    """
    return _fused(sqrt_vjp_kernel, g, (out,))


def _leaky_relu_vjp_numpy(g: Any, x: Any, negative_slope: float) -> Any:
    return np.where(x > 0, g, g * negative_slope)


@kernel(_leaky_relu_vjp_numpy)
def leaky_relu_vjp_kernel(g: np.ndarray, x: np.ndarray, negative_slope: float) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        result[i] = g[i] if x[i] > 0 else g[i] * negative_slope
    return result


def leaky_relu_vjp(g: Any, x: np.ndarray, negative_slope: Any) -> Any:
    """``where(x > 0, g, g * negative_slope)``, the VJP of ``leaky_relu``, in one pass.

    Examples
    --------
    >>> leaky_relu_vjp(np.ones(2), np.array([-1.0, 1.0]), 0.1)
    array([0.1, 1. ])
    """
    slope = _scalar(negative_slope)
    if slope is None:
        return _leaky_relu_vjp_numpy(g, x, negative_slope)
    return _fused(leaky_relu_vjp_kernel, g, (x,), slope)


def _elu_vjp_numpy(g: Any, out: Any, x: Any, alpha: float) -> Any:
    return np.where(x > 0, g, g * (out + alpha))


@kernel(_elu_vjp_numpy)
def elu_vjp_kernel(g: np.ndarray, out: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        result[i] = g[i] if x[i] > 0 else g[i] * (out[i] + alpha)
    return result


def elu_vjp(g: Any, out: np.ndarray, x: np.ndarray, alpha: Any) -> Any:
    """``where(x > 0, g, g * (out + alpha))``, the VJP of ``elu`` from its output, in one pass.

    Examples
    --------
    >>> elu_vjp(np.ones(2), np.array([-0.5, 1.0]), np.array([-0.7, 1.0]), 1.0)
    array([0.5, 1. ])
    """
    scale = _scalar(alpha)
    if scale is None:
        return _elu_vjp_numpy(g, out, x, alpha)
    return _fused(elu_vjp_kernel, g, (out, x), scale)


def _extremum_vjp_numpy(g: Any, x: Any, y: float, lower: bool, nan_wins: bool) -> Any:
    wins = (x < y) if lower else (x > y)
    if nan_wins:
        wins = wins | np.isnan(x)
    return g * np.where(x == y, 0.5, wins.astype(np.result_type(x, y, np.float16)))


@kernel(_extremum_vjp_numpy)
def extremum_vjp_kernel(g: np.ndarray, x: np.ndarray, y: float, lower: bool, nan_wins: bool) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        value = x[i]
        wins = (value < y) if lower else (value > y)
        if nan_wins and value != value:
            wins = True
        # A product rather than a choice, so a NaN or infinite g gives NaN where x loses, as numpy does.
        result[i] = g[i] * (1.0 if wins else (0.5 if value == y else 0.0))
    return result


def extremum_vjp(g: Any, x: np.ndarray, y: Any, lower: bool, nan_wins: bool) -> Any:
    """The VJP of ``maximum(x, y)`` (``minimum`` when ``lower``) for ``x``, against a scalar ``y``: ``g``
    where x wins, ``g / 2`` on ties, 0 where y wins, in one pass; ``nan_wins``: a NaN ``x`` wins (``maximum``,
    ``minimum``) rather than loses (``fmax``, ``fmin``).

    Examples
    --------
    >>> extremum_vjp(np.ones(3), np.array([-1.0, 0.0, 2.0]), 0.0, False, True)
    array([0. , 0.5, 1. ])
    """
    bound = _scalar(y)
    if bound is None:
        return _extremum_vjp_numpy(g, x, y, lower, nan_wins)
    return _fused(extremum_vjp_kernel, g, (x,), bound, lower, nan_wins)


# -- VJPs that call a libm function per element -------------------------------------------------------
def _gelu_vjp_numpy(g: Any, x: Any) -> Any:
    t = np.tanh((x + x * x * x * _GELU_K) * _GELU_C)
    return g * ((t + 1) * 0.5 + x * (1 - t * t) * (x * x * (3 * _GELU_K) + 1) * (0.5 * _GELU_C))


@kernel(_gelu_vjp_numpy)
def gelu_vjp_kernel(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        v = x[i]
        # tanh(u) = 1 - 2 / (exp(2u) + 1): libm's exp is several times faster than its tanh, and only the
        # absolute error of t matters here (it is a few ulp of 1); exp's overflow gives t = 1 as it should.
        t = 1.0 - 2.0 / (math.exp(2.0 * (v + v * v * v * _GELU_K) * _GELU_C) + 1.0)
        slope = (v * v * (3 * _GELU_K) + 1.0) * (0.5 * _GELU_C)
        result[i] = g[i] * ((t + 1.0) * 0.5 + v * (1.0 - t * t) * slope)
    return result


def gelu_vjp(g: Any, x: np.ndarray) -> Any:
    """The VJP of ``gelu`` (tanh form), recomputing the tanh, in one pass.

    Examples
    --------
    >>> gelu_vjp(np.ones(1), np.array([0.0]))
    array([0.5])
    """
    return _fused(gelu_vjp_kernel, g, (x,))


def _softplus_vjp_numpy(g: Any, x: Any, beta: float, threshold: float) -> Any:
    scaled = x * beta
    small = np.exp(-np.abs(scaled))  # the logistic function of scaled, without overflow
    slope = np.where(scaled >= 0, 1 / (1 + small), small / (1 + small))
    return np.where(scaled > threshold, g, g * slope)


@kernel(_softplus_vjp_numpy)
def softplus_vjp_kernel(g: np.ndarray, x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    result = np.empty(g.shape[0], g.dtype)
    for i in range(g.shape[0]):
        scaled = x[i] * beta
        if scaled > threshold:
            result[i] = g[i]
        else:
            small = math.exp(-abs(scaled))
            slope = 1.0 / (1.0 + small) if scaled >= 0 else small / (1.0 + small)
            result[i] = g[i] * slope
    return result


def softplus_vjp(g: Any, x: np.ndarray, beta: Any, threshold: Any) -> Any:
    """``g * sigmoid(beta * x)``, or ``g`` where ``beta * x > threshold``: the VJP of ``softplus``.

    ``threshold=None`` (the smooth formula everywhere) is an infinite threshold.

    Examples
    --------
    >>> softplus_vjp(np.ones(2), np.array([0.0, 30.0]), 1.0, 20.0)
    array([0.5, 1. ])
    """
    scale = _scalar(beta)
    limit = math.inf if threshold is None else _scalar(threshold)
    if scale is None or limit is None:
        return _softplus_vjp_numpy(g, x, beta, math.inf if threshold is None else threshold)
    return _fused(softplus_vjp_kernel, g, (x,), scale, limit)


# -- sine and cosine: a polynomial that vectorizes --------------------------------------------------------
# x = k pi/2 + r with |r| <= pi/4 (Cody-Waite: pi/2 as three parts, the first two of 33 significant bits, so
# k * part is exact for |k| < 2^20), then sin(x) is sin r, cos r, -sin r or -cos r by k mod 4. The Taylor
# series of sin r to r^17 and of cos r to r^18 leave out less than 1e-19 of the value on |r| <= pi/4, so
# the rounding of the Horner steps is the whole error: within 2 ulp of libm on the reduced range (tests
# measure it). Past ``_REDUCTION_LIMIT``, and for infinities and NaN, libm's own sin or cos is called.
_PIO2_HIGH = float.fromhex("0x1.921fb544p+0")
_PIO2_MIDDLE = float.fromhex("0x1.0b4611a6p-34")
_PIO2_LOW = float.fromhex("0x1.3198a2e037073p-69")
_TWO_OVER_PI = float.fromhex("0x1.45f306dc9c883p-1")
_REDUCTION_LIMIT = 65536.0
_NO_SLOPE = np.empty(0)
_S3, _S5, _S7, _S9, _S11, _S13, _S15, _S17 = ((-1) ** n / math.factorial(2 * n + 1) for n in range(1, 9))
_C2, _C4, _C6, _C8, _C10, _C12, _C14, _C16, _C18 = ((-1) ** n / math.factorial(2 * n) for n in range(1, 10))


def _sine_numpy(g: Any, x: Any, quarter_turns: int, scaled: bool, slope: Any) -> Any:
    value = np.cos(x) if quarter_turns & 1 else np.sin(x)
    if quarter_turns & 2:
        value = -value
    if slope.shape[0]:
        slope[...] = g * _sine_numpy(g, x, quarter_turns + 1, False, _NO_SLOPE)
    return g * value if scaled else value


@kernel(_sine_numpy)
def sine_kernel(
    g: np.ndarray, x: np.ndarray, quarter_turns: int, scaled: bool, slope: np.ndarray
) -> np.ndarray:
    """``sin(x + quarter_turns * pi/2)`` (sin, cos, -sin, -cos for 0 to 3), times ``g`` when ``scaled``;
    and into ``slope``, unless it is empty, ``g`` times its derivative.

    ``g`` and ``x`` are 1-d float64 arrays of one length (``g`` is not read unless ``scaled`` or a slope is
    wanted). One kernel serves the forwards of sin and cos, their VJPs ``g * cos(x)`` and ``-g * sin(x)``,
    and forward mode's value and tangent in one pass (the polynomials give both sine and cosine).
    """
    n = x.shape[0]
    result = np.empty(n, x.dtype)
    with_slope = slope.shape[0] == n and n > 0
    far = 0
    for i in range(n):
        v = x[i]
        k = np.rint(v * _TWO_OVER_PI)
        r = ((v - k * _PIO2_HIGH) - k * _PIO2_MIDDLE) - k * _PIO2_LOW
        z = r * r
        sin_tail = _S11 + z * (_S13 + z * (_S15 + z * _S17))
        s = r + r * z * (_S3 + z * (_S5 + z * (_S7 + z * (_S9 + z * sin_tail))))
        cos_tail = _C10 + z * (_C12 + z * (_C14 + z * (_C16 + z * _C18)))
        c = 1.0 + z * (_C2 + z * (_C4 + z * (_C6 + z * (_C8 + z * cos_tail))))
        s = v if v == 0.0 else s  # keeps the sign of -0.0
        turns = k + quarter_turns
        quadrant = turns - 4.0 * np.floor(turns * 0.25)
        value = c if quadrant == 1.0 or quadrant == 3.0 else s
        value = -value if quadrant >= 2.0 else value
        result[i] = g[i] * value if scaled else value
        if with_slope:  # the derivative is the next quarter turn's value
            quadrant = 0.0 if quadrant == 3.0 else quadrant + 1.0
            derivative = c if quadrant == 1.0 or quadrant == 3.0 else s
            slope[i] = g[i] * (-derivative if quadrant >= 2.0 else derivative)
        far += not abs(v) <= _REDUCTION_LIMIT
    if far:
        for i in range(n):
            v = x[i]
            if not abs(v) <= _REDUCTION_LIMIT:
                value = math.cos(v) if quarter_turns & 1 else math.sin(v)
                value = -value if quarter_turns & 2 else value
                result[i] = g[i] * value if scaled else value
                if with_slope:
                    derivative = math.sin(v) if quarter_turns & 1 else math.cos(v)
                    slope[i] = g[i] * (-derivative if (quarter_turns + 1) & 2 else derivative)
    return result


def sin(x: np.ndarray) -> np.ndarray:
    """``np.sin(x)``, by ``sine_kernel`` for a C-contiguous float64 array (numpy's own loop otherwise).

    Examples
    --------
    >>> sin(np.array([0.0]))
    array([0.])
    """
    if x.dtype != _FLOAT64 or not x.flags.c_contiguous:
        return np.sin(x)
    flat = x.reshape(-1)
    return sine_kernel(flat, flat, 0, False, _NO_SLOPE).reshape(x.shape)


def cos(x: np.ndarray) -> np.ndarray:
    """``np.cos(x)``, by ``sine_kernel`` for a C-contiguous float64 array (numpy's own loop otherwise).

    Examples
    --------
    >>> cos(np.array([0.0]))
    array([1.])
    """
    if x.dtype != _FLOAT64 or not x.flags.c_contiguous:
        return np.cos(x)
    flat = x.reshape(-1)
    return sine_kernel(flat, flat, 1, False, _NO_SLOPE).reshape(x.shape)


def sin_vjp(g: Any, x: np.ndarray) -> Any:
    """``g * cos(x)``, the VJP of ``sin``, in one pass for float64 (numpy's for float32, as fast).

    Examples
    --------
    >>> sin_vjp(np.full(2, 2.0), np.array([0.0, np.pi]))
    array([ 2., -2.])
    """
    return _fused(sine_kernel, g, (x,), 1, True, _NO_SLOPE, dtypes=_FLOAT64_ONLY)


def cos_vjp(g: Any, x: np.ndarray) -> Any:
    """``-g * sin(x)``, the VJP of ``cos``, in one pass for float64 (numpy's for float32, as fast).

    Examples
    --------
    >>> cos_vjp(np.full(2, 2.0), np.array([0.0, np.pi / 2]))
    array([-0., -2.])
    """
    return _fused(sine_kernel, g, (x,), 2, True, _NO_SLOPE, dtypes=_FLOAT64_ONLY)


def sine_with_tangent(
    x: np.ndarray, tangent: Any, quarter_turns: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``sin(x + quarter_turns * pi/2)`` and its tangent ``tangent * cos(...)`` in one pass (the joint
    forward-mode rule of sin and cos), for a C-contiguous float64 ``x`` and a tangent of its shape and
    layout; None otherwise.

    Examples
    --------
    >>> sine_with_tangent(np.array([0.0, np.pi / 2]), np.array([2.0, 2.0]), 0)
    (array([0., 1.]), array([2.0000000e+00, 1.2246468e-16]))
    """
    if (
        x.dtype != _FLOAT64
        or type(tangent) is not np.ndarray
        or tangent.shape != x.shape
        or tangent.dtype != _FLOAT64
        or not (x.flags.c_contiguous and tangent.flags.c_contiguous)
    ):
        return None
    slope = np.empty(x.size)
    value = sine_kernel(tangent.reshape(-1), x.reshape(-1), quarter_turns, False, slope)
    return value.reshape(x.shape), slope.reshape(x.shape)

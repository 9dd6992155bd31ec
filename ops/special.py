"""Special functions of machine learning: ``logsumexp``, ``softmax`` and ``log_softmax``, each an op with its
own VJP.

All three subtract the maximum along the reduced axes before exponentiating, so huge inputs (1e308) do not
overflow and ``-inf`` entries (masked-out logits) are exact zeros of probability. The VJPs are written with
numpy on the op's own output, so under ``create_graph`` they are recorded and give second derivatives.

Tensors in give tensors out (recorded when an input requires grad); plain arrays in give plain arrays out.
numpy has no such functions, so these are called directly (``tape.softmax(x)``), not through numpy.

Kernels (``tape/jit.py``): softmax and log_softmax along the last axis of a C-contiguous float32/float64
array (or over all its axes), and their VJPs, run as numba loops over rows (``softmax_rows``,
``log_softmax_rows``, ``softmax_vjp_rows``, ``log_softmax_vjp_rows``): each row is read and written while
it sits in the cache, with no temporary array of the input's size. Every other case (another axis, several
axes, a strided view, another dtype) runs the numpy code, and so do VJPs under ``create_graph``, whose
cotangents are tensors that must be recorded. The kernels that exponentiate call the C library's scalar
``exp``; numpy's vectorized float32 ``exp`` is faster, so float32 arrays above
``FLOAT32_EXP_KERNEL_LIMIT`` elements run numpy. ``python -m benchmarks.kernels`` times the kernels
against their numpy twins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from tape.jit import kernel
from tape.op import Op
from tape.tensor import plain

from .reductions import as_rows, contiguous, restore_axes

Axis = int | tuple[int, ...] | None

#: float32 arrays of more elements than this run numpy's softmax, log_softmax and log_softmax VJP with JIT
#: on too: there the kernels' scalar exp costs more than numpy's vectorized one saves (measured between
#: 4096 and 8192 elements by ``python -m benchmarks.kernels``). float64 arrays take the kernels at any size.
FLOAT32_EXP_KERNEL_LIMIT = 4096


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """``axis`` as a tuple of non-negative axes, checked (an out-of-range axis raises ``AxisError``)."""
    if axis is None:
        return tuple(range(ndim))
    if ndim == 0 and isinstance(axis, int | np.integer) and axis in (0, -1):
        return ()  # numpy's reductions read axis 0 or -1 of a 0-d array as no axis at all
    return normalize_axis_tuple(axis, ndim)


def _floating(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _shift(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The maximum along ``axes`` (kept as length-one axes), or 0 where it is not finite.

    Subtracting it keeps ``exp`` from overflowing. An all ``-inf`` (or empty) slice has maximum ``-inf``,
    and subtracting that would give ``-inf - -inf = nan``: 0 keeps such a slice at ``exp(-inf) = 0``.
    """
    largest = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    return np.where(np.isfinite(largest), largest, 0).astype(x.dtype)


def _exp_rows(x: Any, axis: Axis) -> np.ndarray | None:
    """``as_rows(x, axis)`` for the kernels that exponentiate: None also for float32 above the limit."""
    rows = as_rows(x, axis)
    if rows is not None and rows.size > FLOAT32_EXP_KERNEL_LIMIT and rows.dtype == np.float32:
        return None
    return rows


def _along_axis(
    x: Any,
    axis: Axis,
    rows_kernel: Callable[[np.ndarray], np.ndarray],
    numpy_version: Callable[[np.ndarray, tuple[int, ...]], np.ndarray],
) -> Any:
    """The forward of softmax or log_softmax along ``axis``: ``rows_kernel`` on the rows of ``x`` where it
    takes them (``_exp_rows``), ``numpy_version`` on ``x`` as floats and the axes as a tuple otherwise."""
    rows = _exp_rows(x, axis)
    if rows is not None:
        return rows_kernel(rows).reshape(x.shape)
    x = _floating(x)
    return numpy_version(x, _axes(axis, x.ndim))


# -- logsumexp ---------------------------------------------------------------------------------------------
def _logsumexp(x: Any, b: Any = None, axis: Axis = None, keepdims: bool = False) -> Any:
    x = _floating(x)
    if b is not None:
        x, b = np.broadcast_arrays(x, b)
    axes = _axes(axis, x.ndim)
    # Entries of weight zero take no part, even where x is infinite.
    shift = _shift(x if b is None else np.where(b != 0, x, -np.inf).astype(x.dtype), axes)
    with np.errstate(over="ignore"):  # x - max can only overflow to -inf, whose exp is the right 0
        terms = np.exp(x - shift)
    if b is not None:
        terms = b * np.where(b != 0, terms, 0)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the right answer for an all -inf slice
        total = np.log(np.sum(terms, axis=axes, keepdims=True)) + shift
    return total if keepdims else np.squeeze(total, axis=axes)


def _logsumexp_weights(g: Any, out: Any, x: Any, b: Any, axis: Axis, keepdims: bool) -> Any:
    """``g * exp(x - logsumexp)``, ``g`` spread over the reduced axes, in the shape ``x`` and ``b`` broadcast
    to: the cotangent of ``b``, and of ``x`` before the weights.

    ``x - logsumexp`` is at most 0 (unless weights below one lift x over the total), so exp never overflows.
    As in PyTorch and JAX, a slice whose logsumexp is ``+inf`` gives nan at its ``+inf`` entries (inf - inf)
    and 0 elsewhere, a slice holding nan gives nan throughout, and an all ``-inf`` slice nan (-inf + inf).
    """
    shape = np.shape(x) if b is None else np.broadcast_shapes(np.shape(x), np.shape(b))
    axes = _axes(axis, len(shape))
    total = restore_axes(out, len(shape), axes, keepdims)
    with np.errstate(over="ignore", invalid="ignore"):
        weights = np.exp(x - total)
    weighted = restore_axes(g, len(shape), axes, keepdims) * weights
    # With x broadcast against b, every weight that x meets takes its cotangent.
    return weighted if np.shape(weighted) == shape else np.broadcast_to(weighted, shape)


def _logsumexp_vjp_x(
    g: Any, out: Any, x: Any, b: Any = None, axis: Axis = None, keepdims: bool = False
) -> Any:
    weighted = _logsumexp_weights(g, out, x, b, axis, keepdims)
    if b is None:
        return weighted
    # An entry of weight zero takes no part: its x gets 0, even where its share exp(x - out) is inf or nan.
    with np.errstate(invalid="ignore"):
        return np.where(plain(b) != 0, weighted * b, 0.0)


def _logsumexp_vjp_b(
    g: Any, out: Any, x: Any, b: Any = None, axis: Axis = None, keepdims: bool = False
) -> Any:
    return _logsumexp_weights(g, out, x, b, axis, keepdims)


logsumexp_op = Op(_logsumexp, _logsumexp_vjp_x, _logsumexp_vjp_b, name="logsumexp")


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False, b: Any = None) -> Any:
    """``log(sum(b * exp(x)))`` over ``axis``, computed without overflow.

    Parameters
    ----------
    x : tensor or array.
    axis : None (all axes), an int or a tuple of ints, possibly negative.
    keepdims : keep the reduced axes with length one.
    b : optional non-negative weights broadcasting against ``x`` (differentiable too); where a weight is
        zero, its entry takes no part.

    Returns
    -------
    A tensor for tensor inputs, an array for arrays. An all ``-inf`` (or empty) slice gives ``-inf``. The
    gradient is ``exp(x - out)`` (times ``b``), as in PyTorch and JAX: ``-inf`` entries of a slice with a
    finite result get 0; a slice whose result is ``+inf`` gives nan at its ``+inf`` entries and 0 elsewhere;
    a slice holding nan, or only ``-inf``, gives nan to all its entries.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([0.0, np.log(3.0)], requires_grad=True)
    >>> y = tape.logsumexp(x)
    >>> y.backward()
    >>> round(float(y.data), 6), x.grad
    (1.386294, array([0.25, 0.75]))
    """
    return logsumexp_op(x, b, axis=axis, keepdims=keepdims)


# -- softmax -----------------------------------------------------------------------------------------------
def _softmax_numpy(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    # x - max can only overflow to -inf, whose exp is the right 0; a row holding inf is nan, quietly, as the
    # compiled kernels and scipy.special.softmax give it
    with np.errstate(over="ignore", invalid="ignore"):
        exponentials = np.exp(x - _shift(x, axes))
        return exponentials / np.sum(exponentials, axis=axes, keepdims=True)


def _softmax_rows_numpy(x: np.ndarray) -> np.ndarray:
    """numpy twin of ``softmax_rows``."""
    return _softmax_numpy(x, (1,))


@kernel(_softmax_rows_numpy)
def softmax_rows(x: np.ndarray) -> np.ndarray:
    """Softmax of each row of ``x`` (2-D, C-contiguous): one pass for the maximum, one for the exponentials
    and their sum, one to divide.

    As in the numpy code, the row's maximum is subtracted when it is finite: a row holding NaN gives NaN,
    one holding ``+inf`` gives NaN there (inf / inf) and 0 elsewhere, an all ``-inf`` row NaN (0 / 0).

    Examples
    --------
    >>> softmax_rows(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """
    rows, length = x.shape
    out = np.empty_like(x)
    for i in range(rows):
        row, result = x[i], out[i]
        largest = -np.inf
        for j in range(length):
            largest = max(largest, row[j])
        shift = largest if np.isfinite(largest) else 0.0
        total = 0.0
        for j in range(length):
            exponential = np.exp(row[j] - shift)
            result[j] = exponential
            total += exponential
        scale = 1.0 / total  # inf for an all -inf row, whose entries become 0 * inf = nan
        for j in range(length):
            result[j] *= scale
    return out


def _softmax(x: Any, axis: Axis = -1) -> Any:
    return _along_axis(x, axis, softmax_rows, _softmax_numpy)


def _softmax_vjp_rows_numpy(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """numpy twin of ``softmax_vjp_rows``."""
    return out * (g - np.sum(g * out, axis=1, keepdims=True))


@kernel(_softmax_vjp_rows_numpy)
def softmax_vjp_rows(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The VJP of a row softmax, ``out * (g - sum(g * out))`` per row, in two passes over each row.

    ``g`` and ``out`` are 2-D, C-contiguous, of one shape and dtype; ``out`` is the softmax.

    Examples
    --------
    >>> softmax_vjp_rows(np.array([[1.0, 0.0]]), np.array([[0.25, 0.75]]))
    array([[ 0.1875, -0.1875]])
    """
    rows, length = out.shape
    grad = np.empty_like(out)
    for i in range(rows):
        g_row, out_row, grad_row = g[i], out[i], grad[i]
        inner = 0.0
        for j in range(length):
            inner += g_row[j] * out_row[j]
        for j in range(length):
            grad_row[j] = out_row[j] * (g_row[j] - inner)
    return grad


def _softmax_vjp(g: Any, out: Any, x: Any, axis: Axis = -1) -> Any:
    rows = as_rows(out, axis) if type(g) is np.ndarray and g.dtype == out.dtype else None
    if rows is not None:
        return softmax_vjp_rows(contiguous(g, rows.shape), rows).reshape(out.shape)
    return out * (g - np.sum(g * out, axis=_axes(axis, np.ndim(out)), keepdims=True))


softmax_op = Op(_softmax, _softmax_vjp, name="softmax", shape_only=(0,))


def softmax(x: Any, axis: Axis = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed without overflow.

    Parameters
    ----------
    x : tensor or array.
    axis : an int (the last axis by default), a tuple of ints, or None for all axes.

    Returns
    -------
    A tensor for tensor inputs, an array for arrays, of ``x``'s shape. ``-inf`` entries get probability 0;
    a slice that is entirely ``-inf`` has no softmax and gives ``nan``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.softmax(np.array([0.0, np.log(3.0)]))
    array([0.25, 0.75])
    """
    return softmax_op(x, axis=axis)


# -- log_softmax -------------------------------------------------------------------------------------------
def _log_softmax_numpy(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    # -inf is the right log-probability there; a row holding inf is nan, quietly, as in the compiled kernels
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        shifted = x - _shift(x, axes)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True))


def _log_softmax_rows_numpy(x: np.ndarray) -> np.ndarray:
    """numpy twin of ``log_softmax_rows``."""
    return _log_softmax_numpy(x, (1,))


@kernel(_log_softmax_rows_numpy)
def log_softmax_rows(x: np.ndarray) -> np.ndarray:
    """Log-softmax of each row of ``x`` (2-D, C-contiguous): ``x - max - log(sum(exp(x - max)))``, one pass
    for the maximum, one for the sum of exponentials (not stored), one to write.

    Examples
    --------
    >>> log_softmax_rows(np.array([[0.0, 1000.0]]))
    array([[-1000.,     0.]])
    """
    rows, length = x.shape
    out = np.empty_like(x)
    for i in range(rows):
        row, result = x[i], out[i]
        largest = -np.inf
        for j in range(length):
            largest = max(largest, row[j])
        shift = largest if np.isfinite(largest) else 0.0
        total = 0.0
        for j in range(length):
            total += np.exp(row[j] - shift)
        log_total = np.log(total)  # -inf for an all -inf row, whose entries stay -inf
        for j in range(length):
            result[j] = (row[j] - shift) - log_total
    return out


def _log_softmax(x: Any, axis: Axis = -1) -> Any:
    return _along_axis(x, axis, log_softmax_rows, _log_softmax_numpy)


def _log_softmax_vjp_rows_numpy(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """numpy twin of ``log_softmax_vjp_rows``."""
    return g - np.exp(out) * np.sum(g, axis=1, keepdims=True)


@kernel(_log_softmax_vjp_rows_numpy)
def log_softmax_vjp_rows(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The VJP of a row log-softmax, ``g - exp(out) * sum(g)`` per row, in two passes over each row.

    ``g`` and ``out`` are 2-D, C-contiguous, of one shape and dtype; ``out`` is the log-softmax.

    Examples
    --------
    >>> log_softmax_vjp_rows(np.array([[1.0, 0.0]]), np.log(np.array([[0.25, 0.75]])))
    array([[ 0.75, -0.75]])
    """
    rows, length = out.shape
    grad = np.empty_like(out)
    for i in range(rows):
        g_row, out_row, grad_row = g[i], out[i], grad[i]
        total = 0.0
        for j in range(length):
            total += g_row[j]
        for j in range(length):
            grad_row[j] = g_row[j] - np.exp(out_row[j]) * total
    return grad


def _log_softmax_vjp(g: Any, out: Any, x: Any, axis: Axis = -1) -> Any:
    rows = _exp_rows(out, axis) if type(g) is np.ndarray and g.dtype == out.dtype else None
    if rows is not None:
        return log_softmax_vjp_rows(contiguous(g, rows.shape), rows).reshape(out.shape)
    return g - np.exp(out) * np.sum(g, axis=_axes(axis, np.ndim(out)), keepdims=True)


log_softmax_op = Op(_log_softmax, _log_softmax_vjp, name="log_softmax", shape_only=(0,))


def log_softmax(x: Any, axis: Axis = -1) -> Any:
    """``x - logsumexp(x)`` along ``axis``: the log of ``softmax``, exact where ``softmax`` underflows.

    Parameters
    ----------
    x : tensor or array.
    axis : an int (the last axis by default), a tuple of ints, or None for all axes.

    Returns
    -------
    A tensor for tensor inputs, an array for arrays, of ``x``'s shape. ``-inf`` entries stay ``-inf``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.log_softmax(np.array([0.0, 1000.0]))
    array([-1000.,     0.])
    """
    return log_softmax_op(x, axis=axis)

"""Reductions over axes (sum, mean, prod, max, min), each beside its VJP.

A reduction's VJP puts the cotangent back on the reduced axes (``restore_axes``) and broadcasts it over
them. Tied maxima and minima share the cotangent evenly, as in JAX and PyTorch's ``amax``.

Row kernels: a reduction along the last axis of a C-contiguous array, or over all of its axes, is a
reduction along the rows of a 2-D view of it (``as_rows``). For float32/float64 arrays in that layout, the
VJP of max and min runs the numba kernel ``extremum_vjp_rows`` (``tape/jit.py``), which counts each row's
ties and writes its shares in two passes over the row, where numpy makes a mask, a count and a quotient of
the input's size. Other layouts, and VJPs under ``create_graph`` (tensors, to be recorded), run numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tape.jit import kernel
from tape.op import Op, linear_jvp
from tape.registry import FUSIBLE_SUMS, implements
from tape.tensor import Tensor, plain

#: The dtypes the row kernels of ``ops`` are compiled for.
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple, possibly negative) as a sorted tuple of non-negative axes."""
    if axis is None or ndim == 0:
        # numpy lets axis 0 or -1 of a 0-d array (sum, prod, max, min) stand for no axis at all.
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    return tuple(sorted(int(a) % ndim for a in axes))


def restore_axes(g: Any, ndim: int, axis: Any, keepdims: bool) -> Any:
    """Give a reduction's cotangent back its reduced axes (length one) so it broadcasts against the input."""
    if keepdims or ndim == 0:
        return g
    if axis is None:
        return np.reshape(g, (1,) * ndim)
    return np.expand_dims(g, normalize_axes(axis, ndim))


def as_rows(x: Any, axis: Any) -> np.ndarray | None:
    """``x`` as a 2-D view ``(rows, length)`` whose rows are what a reduction over ``axis`` reduces, when the
    row kernels take it: a C-contiguous float32/float64 ndarray of at least one axis, ``axis`` its last
    axis (rows along it) or None (all axes: one row). Otherwise None. Never copies.

    Examples
    --------
    >>> as_rows(np.zeros((2, 3, 4)), -1).shape, as_rows(np.zeros((2, 3)), None).shape
    ((6, 4), (1, 6))
    >>> as_rows(np.zeros((2, 3)), 0) is None
    True
    """
    if type(x) is not np.ndarray or x.dtype not in KERNEL_DTYPES or not x.ndim or not x.flags.c_contiguous:
        return None
    if axis is None:
        return x.reshape(1, x.size)
    if axis == -1 or axis == x.ndim - 1:
        return x if x.ndim == 2 else x.reshape(math.prod(x.shape[:-1]), x.shape[-1])
    return None


def contiguous(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` reshaped to ``shape``, C-contiguous and writeable (a copy when it is a broadcast view, say),
    so that each dtype compiles one kernel signature."""
    if not (array.flags.c_contiguous and array.flags.writeable):
        array = np.array(array, order="C")
    return array.reshape(shape)


def _spread(g: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    return np.broadcast_to(restore_axes(g, np.ndim(x), axis, keepdims), np.shape(x))


def _sum(x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return np.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _sum_vjp(g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return _spread(g, x, axis, keepdims)


sum_ = Op(_sum, _sum_vjp, name="sum", shape_only=(0,), complex_rule="holomorphic")
FUSIBLE_SUMS.add(sum_)


def _mean(x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return np.mean(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _mean_vjp(g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    count = max(np.size(x) // max(np.size(out), 1), 1)
    return _spread(g, x, axis, keepdims) / count


mean = Op(_mean, _mean_vjp, name="mean", shape_only=(0,), complex_rule="holomorphic")


def _extremum_vjp_numpy(g: Any, out: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    values = plain(x)
    extreme = restore_axes(plain(out), values.ndim, axis, keepdims)
    hits = (values == extreme) | (np.isnan(values) & np.isnan(extreme))
    share = hits / np.sum(hits, axis=normalize_axes(axis, values.ndim), keepdims=True)
    return restore_axes(g, values.ndim, axis, keepdims) * share.astype(values.dtype)


def _extremum_vjp_rows_numpy(g: np.ndarray, x: np.ndarray, extreme: np.ndarray) -> np.ndarray:
    """numpy twin of ``extremum_vjp_rows``."""
    return _extremum_vjp_numpy(g, extreme, x, 1, False)


@kernel(_extremum_vjp_rows_numpy)
def extremum_vjp_rows(g: np.ndarray, x: np.ndarray, extreme: np.ndarray) -> np.ndarray:
    """The VJP of a max (or min) along the rows of ``x`` ``(N, M)``: ``g[i]`` shared evenly among the entries
    of row ``i`` equal to its extreme ``extreme[i]`` (or NaN where the extreme is NaN), 0 elsewhere.

    ``g`` and ``extreme`` are ``(N,)``; all three are C-contiguous and of one dtype.

    Examples
    --------
    >>> extremum_vjp_rows(np.array([3.0]), np.array([[1.0, 2.0, 2.0]]), np.array([2.0]))
    array([[0. , 1.5, 1.5]])
    """
    rows, length = x.shape
    grad = np.zeros_like(x)
    for i in range(rows):
        row, grad_row, target = x[i], grad[i], extreme[i]
        target_is_nan = np.isnan(target)
        hits = 0
        for j in range(length):
            hits += row[j] == target or (target_is_nan and np.isnan(row[j]))
        share = g[i] * x.dtype.type(1.0 / hits)  # the share rounded to the dtype first, as numpy's
        for j in range(length):
            if row[j] == target or (target_is_nan and np.isnan(row[j])):
                grad_row[j] = share
    return grad


def _extremum_vjp(g: Any, out: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    rows = as_rows(x, axis) if type(g) is np.ndarray and g.dtype == x.dtype else None
    if rows is None:
        return _extremum_vjp_numpy(g, out, x, axis, keepdims)
    shape = rows.shape[:1]
    return extremum_vjp_rows(contiguous(g, shape), rows, contiguous(out, shape)).reshape(x.shape)


def _max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return np.max(x, axis=axis, keepdims=keepdims)


def _min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return np.min(x, axis=axis, keepdims=keepdims)


# numpy orders complex numbers lexicographically: no gradient convention follows that, so max and min refuse.
max_ = Op(_max, _extremum_vjp, name="max")
min_ = Op(_min, _extremum_vjp, name="min")


def _prod(x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return np.prod(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _prod_vjp(g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    ndim = np.ndim(x)
    g = restore_axes(g, ndim, axis, keepdims)
    # out / x is the product of the others, but only a recorded VJP would be differentiated through the
    # division, which cancels catastrophically near zero: recorded VJPs take the exact product instead.
    if not isinstance(x, Tensor) and np.all(x != 0):
        with np.errstate(invalid="ignore"):  # an infinite x gives inf / inf = nan there, as torch's VJP does
            return g * restore_axes(out, ndim, axis, keepdims) / x
    return g * _product_of_others(x, normalize_axes(axis, ndim))


def _product_of_others(x: Any, axes: tuple[int, ...]) -> Any:
    """For each element, the product of the other elements along ``axes``; exact when some are zero."""
    if not axes:
        return np.ones_like(x)
    last = tuple(range(-len(axes), 0))
    moved = np.moveaxis(x, axes, last)
    batch_shape = np.shape(moved)[: np.ndim(moved) - len(axes)]
    flat = np.reshape(moved, (*batch_shape, -1))
    ones = np.ones_like(flat[..., :1])
    before = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    after = np.flip(np.cumprod(np.flip(np.concatenate([flat[..., 1:], ones], axis=-1), -1), axis=-1), -1)
    return np.moveaxis(np.reshape(before * after, np.shape(moved)), last, axes)


# The product is analytic: its VJP (the product of the others) is the complex derivative too.
prod = Op(_prod, _prod_vjp, name="prod", complex_rule="holomorphic")


def _reduction_handler(op: Op, takes_dtype: bool) -> Any:
    def handler(a: Any, axis: Any = None, *args: Any, **kwargs: Any) -> Any:
        names = ("dtype", "out", "keepdims") if takes_dtype else ("out", "keepdims")
        kwargs.update(zip(names, args, strict=False))
        kwargs.pop("out", None)
        if kwargs.pop("initial", np._NoValue) is not np._NoValue:
            raise TypeError(f"numpy.{op.name}: initial= is not supported on tape tensors")
        unknown = set(kwargs) - {"dtype", "keepdims"}
        if unknown:
            raise TypeError(f"numpy.{op.name}: keyword argument(s) {sorted(unknown)} are not supported")
        if not takes_dtype:
            kwargs.pop("dtype", None)
        return op(a, axis=axis, **kwargs)

    handler.__name__ = op.name
    return handler


implements(np.sum)(_reduction_handler(sum_, takes_dtype=True))
implements(np.mean)(_reduction_handler(mean, takes_dtype=True))
implements(np.prod)(_reduction_handler(prod, takes_dtype=True))
implements(np.max, np.amax)(_reduction_handler(max_, takes_dtype=False))
implements(np.min, np.amin)(_reduction_handler(min_, takes_dtype=False))


# Forward mode: each of these is linear in its first argument, so its JVP is the op on the tangent.
sum_.defjvp(linear_jvp(sum_.forward))
mean.defjvp(linear_jvp(mean.forward))

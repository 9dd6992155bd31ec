"""Statistics over axes (var, std, average, the nan* reductions, median and quantiles, cumulative sums and
products, ptp, diff), each beside its VJP.

Every forward is numpy's own function, so values agree with numpy to the last bit; the VJPs are written
with numpy calls on the cotangent, so they are recorded under ``create_graph`` like any other code.
Quantities that only steer a VJP (which elements are NaN, which element a quantile selects, where the
first zero of a cumulative product is) are computed from the data as plain arrays: they carry no gradient.

Conventions where the derivative is not unique:

* ``std`` (and ``nanstd``) at zero spread: the gradient is 0, the subgradient of least norm (the standard
  deviation is a scaled Euclidean norm of the centred values). PyTorch and JAX give NaN there.
* Order statistics (``median``, ``quantile``, ``percentile`` and their nan* forms): the cotangent goes to
  the elements of the sorted ranks the interpolation reads, weighted as the interpolation weighs them.
  Ranks come from a *stable* sort, so among tied values the one earlier in the array takes the lower
  rank. A median of an even count gives half to each of the two middle elements.
* NaN: the nan* functions give NaN elements a zero gradient. ``median`` and ``quantile`` of a slice
  holding NaN are NaN, and its cotangent goes to the slice's first NaN (as ``max`` gives it to NaNs).

Complex values: the sums, means, averages, cumulative sums and products and ``diff`` are analytic
(``complex_rule="holomorphic"``). ``var`` and ``std`` (and their nan* forms) of complex values are real,
the mean of ``|x - mean|^2`` (and its root); their VJPs, ``2 g (x - mean) / (n - ddof)`` and that over
``2 std``, are PyTorch's cotangent for complex ``x`` as written (``"own"``). The order statistics refuse
complex values: numpy orders them lexicographically, which no gradient convention follows.

This module must not change the data it is given: numpy's ``overwrite_input=`` is accepted and ignored.

Kernel: the VJPs of ``var`` and ``std`` over the last axis of a C-contiguous float32/float64 array (or
over all of its axes) run ``centred_rows`` (``tape/jit.py``), which takes each row's mean and writes the
scaled deviations from it in two passes over the row, with no temporary of the input's size. Other
layouts, a ``dtype=`` argument, and VJPs under ``create_graph`` (tensors, to be recorded) run numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from tape.jit import kernel
from tape.op import Op, linear_jvp
from tape.registry import implements
from tape.tensor import Tensor, plain

from .indexing import scatter_add
from .reductions import as_rows, normalize_axes, restore_axes

_NO_VALUE = np._NoValue


# -- handling numpy's signatures ---------------------------------------------------------------------------
def _bind(
    name: str, positional: tuple[str, ...], defaults: dict[str, Any], args: tuple[Any, ...], kwargs: dict
) -> dict[str, Any]:
    """numpy's arguments after the array as one dict, refusing what tape does not support by name."""
    if len(args) > len(positional):
        raise TypeError(f"numpy.{name}: takes at most {len(positional) + 1} positional arguments")
    bound = dict(defaults)
    for key, value in zip(positional, args, strict=False):
        if key in kwargs:
            raise TypeError(f"numpy.{name}: got multiple values for argument {key!r}")
        bound[key] = value
    unknown = set(kwargs) - set(defaults)
    if unknown:
        raise TypeError(f"numpy.{name}: keyword argument(s) {sorted(unknown)} are not supported")
    bound.update(kwargs)
    if bound.pop("out", None) is not None:
        raise TypeError(f"numpy.{name}: out= is not supported on tape tensors; assign the result instead")
    if bound.get("keepdims", False) is _NO_VALUE:
        bound["keepdims"] = False
    return bound


def _ddof(name: str, ddof: Any, correction: Any) -> Any:
    """numpy's ``ddof`` (or its array-API spelling ``correction``), checked to be a plain real number."""
    if correction is not _NO_VALUE:
        if ddof != 0:
            raise ValueError(f"numpy.{name}: ddof and correction can't be provided simultaneously")
        ddof = correction
    if not isinstance(ddof, int | float | np.integer | np.floating):
        raise TypeError(f"numpy.{name}: ddof must be a real number (int or float), got {type(ddof).__name__}")
    return ddof


def _refuse_mean(name: str, mean: Any) -> None:
    if mean is not _NO_VALUE:
        raise TypeError(f"numpy.{name}: mean= is not supported on tape tensors; the mean is recomputed")


def _count(x: Any, axis: Any) -> int:
    """How many elements each output element of a reduction over ``axis`` combines."""
    shape = np.shape(x)
    return int(np.prod([shape[a] for a in normalize_axes(axis, len(shape))], dtype=np.int64))


def _divisor(count: Any, ddof: Any) -> Any:
    """``count - ddof`` clipped at zero as numpy clips it, as a float so that dividing by it never raises."""
    return np.maximum(np.asarray(count, dtype=np.float64) - ddof, 0.0)


def _scale(numerator: float, divisor: Any) -> Any:
    """``numerator / divisor``, giving inf where the divisor is zero as numpy's own division does."""
    with np.errstate(divide="ignore"):
        return numerator / divisor


def _reciprocal_divisor(count: int, ddof: Any) -> float:
    """``1 / (count - ddof)`` as a Python float; inf where ``count - ddof`` is not positive, as ``_scale``."""
    divisor = count - ddof
    return 1.0 / divisor if divisor > 0 else math.inf


def _safe(values: Any) -> Any:
    """``values`` with zeros replaced by ones, to divide by where the zeros are masked afterwards."""
    return np.where(values == 0, 1, values)


# -- var and std -------------------------------------------------------------------------------------------
def _var(x: Any, axis: Any = None, dtype: Any = None, ddof: Any = 0, keepdims: bool = False) -> Any:
    return np.var(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)


def _centred_rows_numpy(x: np.ndarray, row_scales: np.ndarray) -> np.ndarray:
    """numpy twin of ``centred_rows``."""
    with np.errstate(invalid="ignore"):  # an infinite scale times a zero deviation: nan, as numpy's VJP
        centred = x - np.mean(x, axis=1, keepdims=True) if x.shape[1] else x
        return (centred * row_scales[:, None]).astype(x.dtype, copy=False)


@kernel(_centred_rows_numpy)
def centred_rows(x: np.ndarray, row_scales: np.ndarray) -> np.ndarray:
    """``(x[i] - mean(x[i])) * row_scales[i]`` for each row of ``x`` ``(N, M)`` (C-contiguous), in
    ``x``'s dtype; ``row_scales`` is float64 ``(N,)``. The VJP of ``var`` and ``std`` along rows.

    Examples
    --------
    >>> centred_rows(np.array([[1.0, 2.0, 6.0]]), np.array([2.0]))
    array([[-4., -2.,  6.]])
    """
    rows, length = x.shape
    out = np.empty_like(x)
    for i in range(rows):
        row, out_row = x[i], out[i]
        total = 0.0
        for j in range(length):
            total += row[j]
        mean = total / length
        scale = row_scales[i]
        for j in range(length):
            out_row[j] = (row[j] - mean) * scale
    return out


def _var_vjp(
    g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None, ddof: Any = 0, keepdims: bool = False
) -> Any:
    rows = as_rows(x, axis) if type(g) is np.ndarray and dtype is None else None
    if rows is not None:
        scale = 2.0 * _reciprocal_divisor(rows.shape[1], ddof)
        row_scales = np.multiply(g.reshape(-1), scale, dtype=np.float64)
        return centred_rows(rows, row_scales).reshape(x.shape)
    axes = normalize_axes(axis, np.ndim(x))
    centred = x - np.mean(x, axis=axes, dtype=dtype, keepdims=True)
    scale = _scale(2.0, _divisor(_count(x, axis), ddof))
    return restore_axes(g, np.ndim(x), axis, keepdims) * centred * scale.astype(centred.dtype)


var = Op(_var, _var_vjp, name="var", complex_rule="own")


def _std(x: Any, axis: Any = None, dtype: Any = None, ddof: Any = 0, keepdims: bool = False) -> Any:
    return np.std(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)


def _std_vjp(
    g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None, ddof: Any = 0, keepdims: bool = False
) -> Any:
    rows = as_rows(x, axis) if type(g) is np.ndarray and dtype is None else None
    if rows is not None:
        spread = out.reshape(-1)
        with np.errstate(divide="ignore", invalid="ignore"):  # masked below, or nan as numpy's VJP gives
            row_scales = np.divide(g.reshape(-1), spread, dtype=np.float64)
        row_scales *= _reciprocal_divisor(rows.shape[1], ddof)
        row_scales[spread == 0] = 0.0
        return centred_rows(rows, row_scales).reshape(x.shape)
    ndim = np.ndim(x)
    axes = normalize_axes(axis, ndim)
    centred = x - np.mean(x, axis=axes, dtype=dtype, keepdims=True)
    spread_out = restore_axes(out, ndim, axis, keepdims)
    scale = _scale(1.0, _divisor(_count(x, axis), ddof)).astype(centred.dtype)
    cotangent = restore_axes(g, ndim, axis, keepdims) * centred * scale / _safe(spread_out)
    return np.where(spread_out == 0, 0, cotangent)


std = Op(_std, _std_vjp, name="std", complex_rule="own")


_VAR_DEFAULTS = {
    "axis": None,
    "dtype": None,
    "out": None,
    "ddof": 0,
    "keepdims": False,
    "mean": _NO_VALUE,
    "correction": _NO_VALUE,
}


def _var_like_handler(op: Op) -> Callable[..., Any]:
    name = op.name

    def handler(a: Any, *args: Any, **kwargs: Any) -> Any:
        bound = _bind(
            name,
            ("axis", "dtype", "out", "ddof", "keepdims"),
            _VAR_DEFAULTS,
            args,
            kwargs,
        )
        _refuse_mean(name, bound.pop("mean"))
        bound["ddof"] = _ddof(name, bound["ddof"], bound.pop("correction"))
        return op(a, **bound)

    handler.__name__ = name
    handler.__doc__ = (
        f"``np.{name}`` on tensors: ``axis`` (None, int, tuple, negative), ``ddof``, ``keepdims``, ``dtype``."
    )
    return handler


implements(np.var)(_var_like_handler(var))
implements(np.std)(_var_like_handler(std))


# -- nansum, nanmean, nanvar, nanstd -----------------------------------------------------------------------
def _nan_mask(x: Any) -> np.ndarray:
    return np.isnan(plain(x))


def _nansum(x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return np.nansum(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _nansum_vjp(g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return np.where(_nan_mask(x), 0, restore_axes(g, np.ndim(x), axis, keepdims))


nansum = Op(_nansum, _nansum_vjp, name="nansum", complex_rule="holomorphic")


def _valid_count(mask: np.ndarray, axis: Any) -> np.ndarray:
    """How many non-NaN elements each output element combines, with the reduced axes kept."""
    return np.sum(~mask, axis=normalize_axes(axis, mask.ndim), keepdims=True)


def _nanmean(x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return np.nanmean(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _nanmean_vjp(
    g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False
) -> Any:
    mask = _nan_mask(x)
    # An all-NaN slice has no element to receive its cotangent; dividing by one there avoids a warning.
    count = np.maximum(_valid_count(mask, axis), 1).astype(g.dtype)
    return np.where(mask, 0, restore_axes(g, mask.ndim, axis, keepdims) / count)


nanmean = Op(_nanmean, _nanmean_vjp, name="nanmean", complex_rule="holomorphic")


def _nan_centred(x: Any, mask: np.ndarray, axis: Any, dtype: Any) -> Any:
    """``x`` minus its nanmean, with zeros (not NaN) at the NaN elements so that no NaN reaches a product.

    The mean is taken as nansum / count with the count at least one, so an all-NaN slice has mean 0
    rather than NaN with a warning (its elements are all masked anyway).
    """
    axes = normalize_axes(axis, mask.ndim)
    total = np.nansum(x, axis=axes, dtype=dtype, keepdims=True)
    centre = total / np.maximum(_valid_count(mask, axis), 1).astype(total.dtype)
    return np.where(mask, 0, np.where(mask, 0, x) - centre)


def _nanvar(x: Any, axis: Any = None, dtype: Any = None, ddof: Any = 0, keepdims: bool = False) -> Any:
    return np.nanvar(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)


def _nan_scale(numerator: float, mask: np.ndarray, axis: Any, ddof: Any) -> np.ndarray:
    """``numerator / (count - ddof)`` per slice; NaN where that is not positive, as numpy's result is."""
    divisor = np.asarray(_valid_count(mask, axis), dtype=np.float64) - ddof
    return np.where(divisor > 0, numerator / np.where(divisor > 0, divisor, 1.0), np.nan)


def _nanvar_vjp(
    g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None, ddof: Any = 0, keepdims: bool = False
) -> Any:
    mask = _nan_mask(x)
    centred = _nan_centred(x, mask, axis, dtype)
    scale = _nan_scale(2.0, mask, axis, ddof).astype(centred.dtype)
    return np.where(mask, 0, restore_axes(g, mask.ndim, axis, keepdims) * centred * scale)


nanvar = Op(_nanvar, _nanvar_vjp, name="nanvar", complex_rule="own")


def _nanstd(x: Any, axis: Any = None, dtype: Any = None, ddof: Any = 0, keepdims: bool = False) -> Any:
    return np.nanstd(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)


def _nanstd_vjp(
    g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None, ddof: Any = 0, keepdims: bool = False
) -> Any:
    mask = _nan_mask(x)
    centred = _nan_centred(x, mask, axis, dtype)
    scale = _nan_scale(1.0, mask, axis, ddof).astype(centred.dtype)
    spread_out = restore_axes(out, mask.ndim, axis, keepdims)
    cotangent = restore_axes(g, mask.ndim, axis, keepdims) * centred * scale / _safe(spread_out)
    return np.where(mask | (plain(spread_out) == 0), 0, cotangent)


nanstd = Op(_nanstd, _nanstd_vjp, name="nanstd", complex_rule="own")


_NAN_SIGNATURES = {  # positional parameters after the array, and keyword defaults
    "nansum": (("axis", "dtype", "out", "keepdims", "initial"), {"initial": _NO_VALUE}),
    "nanmean": (("axis", "dtype", "out", "keepdims"), {}),
    "nanvar": (("axis", "dtype", "out", "ddof", "keepdims"), _VAR_DEFAULTS),
    "nanstd": (("axis", "dtype", "out", "ddof", "keepdims"), _VAR_DEFAULTS),
}


def _nan_reduction_handler(op: Op) -> Callable[..., Any]:
    name = op.name
    positional, extra_defaults = _NAN_SIGNATURES[name]

    def handler(a: Any, *args: Any, **kwargs: Any) -> Any:
        defaults = {"axis": None, "dtype": None, "out": None, "keepdims": False} | extra_defaults
        bound = _bind(name, positional, defaults, args, kwargs)
        if bound.pop("initial", _NO_VALUE) is not _NO_VALUE:
            raise TypeError(f"numpy.{name}: initial= is not supported on tape tensors")
        if "ddof" in bound:
            _refuse_mean(name, bound.pop("mean"))
            bound["ddof"] = _ddof(name, bound["ddof"], bound.pop("correction"))
        return op(a, **bound)

    handler.__name__ = name
    handler.__doc__ = f"``np.{name}`` on tensors; NaN elements get a zero gradient."
    return handler


for _op, _function in ((nansum, np.nansum), (nanmean, np.nanmean), (nanvar, np.nanvar), (nanstd, np.nanstd)):
    implements(_function)(_nan_reduction_handler(_op))


# -- average -----------------------------------------------------------------------------------------------
def _weighted_average(a: Any, weights: Any, axis: Any = None, keepdims: bool = False) -> Any:
    # numpy's own steps on numpy's own layout of the weights, so the result matches it exactly.
    if np.issubdtype(np.result_type(a), np.integer) or np.result_type(a) == np.bool_:
        result_dtype = np.result_type(a, weights, "f8")
    else:
        result_dtype = np.result_type(a, weights)
    total_weight = np.sum(weights, axis=axis, dtype=result_dtype, keepdims=keepdims)
    if np.any(total_weight == 0.0):
        raise ZeroDivisionError("average: weights sum to zero, can't be normalized")
    return np.multiply(a, weights, dtype=result_dtype).sum(axis, keepdims=keepdims) / total_weight


def _weighted_average_vjp_a(
    g: Any, out: Any, a: Any, weights: Any, axis: Any = None, keepdims: bool = False
) -> Any:
    total_weight = np.sum(weights, axis=normalize_axes(axis, np.ndim(a)), keepdims=True)
    return restore_axes(g, np.ndim(a), axis, keepdims) * (weights / total_weight)


def _weighted_average_vjp_weights(
    g: Any, out: Any, a: Any, weights: Any, axis: Any = None, keepdims: bool = False
) -> Any:
    ndim = np.ndim(a)
    total_weight = np.sum(weights, axis=normalize_axes(axis, ndim), keepdims=True)
    deviation = a - restore_axes(out, ndim, axis, keepdims)
    return restore_axes(g, ndim, axis, keepdims) * deviation / total_weight


weighted_average = Op(
    _weighted_average,
    _weighted_average_vjp_a,
    _weighted_average_vjp_weights,
    name="average",
    complex_rule="holomorphic",
)


def _weights_like_numpy(weights: Any, shape: tuple[int, ...], axis: tuple[int, ...] | None) -> Any:
    """The weights laid out to broadcast against ``a``, as numpy lays them out (differentiably)."""
    if np.shape(weights) == shape:
        return weights
    if axis is None:
        raise TypeError("numpy.average: axis must be specified when shapes of a and weights differ")
    if np.shape(weights) != tuple(shape[ax] for ax in axis):
        raise ValueError(
            f"numpy.average: weights of shape {np.shape(weights)} do not match a's shape {shape} along "
            f"axis {axis} (expected {tuple(shape[ax] for ax in axis)})"
        )
    order = tuple(int(i) for i in np.argsort(axis))
    if order != tuple(range(len(order))):
        weights = np.transpose(weights, order)
    return np.reshape(weights, tuple(size if ax in axis else 1 for ax, size in enumerate(shape)))


@implements(np.average)
def average(
    a: Any, axis: Any = None, weights: Any = None, returned: bool = False, *, keepdims: Any = _NO_VALUE
) -> Any:
    """``np.average`` on tensors, differentiable in ``a`` and in ``weights``.

    ``weights`` has ``a``'s shape, or the shape of ``a`` along ``axis``; with ``returned=True`` the sum of
    the weights comes back too (a constant when there are no weights).

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([1.0, 2.0, 4.0], requires_grad=True)
    >>> w = tape.tensor([1.0, 1.0, 2.0], requires_grad=True)
    >>> np.average(a, weights=w).backward()
    >>> a.grad, w.grad
    (array([0.25, 0.25, 0.5 ]), array([-0.4375, -0.1875,  0.3125]))
    """
    keepdims = False if keepdims is _NO_VALUE else keepdims
    shape = np.shape(a)
    if axis is not None:
        axis = normalize_axis_tuple(axis, len(shape), argname="axis")
    if weights is None:
        result = np.mean(a, axis=axis, keepdims=keepdims)
        if not returned:
            return result
        count = plain(result).dtype.type(np.prod(shape, dtype=np.int64) / max(np.size(result), 1))
        return result, Tensor(np.full(np.shape(result), count))
    laid_out = _weights_like_numpy(weights, shape, axis)
    result = weighted_average(a, laid_out, axis=axis, keepdims=keepdims)
    if not returned:
        return result
    total_weight = np.sum(laid_out, axis=axis, dtype=result.dtype, keepdims=keepdims)
    if np.shape(total_weight) != np.shape(result):
        total_weight = np.broadcast_to(total_weight, np.shape(result)).copy()
    return result, total_weight


# -- median, quantile, percentile and their nan* forms ----------------------------------------------------
# numpy's interpolating methods: (alpha, beta) of Hyndman & Fan's virtual index
# n*q + alpha + q*(1 - alpha - beta) - 1.
_HYNDMAN_FAN = {
    "interpolated_inverted_cdf": (0.0, 1.0),
    "hazen": (0.5, 0.5),
    "weibull": (0.0, 0.0),
    "median_unbiased": (1 / 3.0, 1 / 3.0),
    "normal_unbiased": (3 / 8.0, 3 / 8.0),
}
#: Every method numpy's quantile takes; each has a gradient here (one or two elements, weighted).
QUANTILE_METHODS = (
    "inverted_cdf",
    "averaged_inverted_cdf",
    "closest_observation",
    *_HYNDMAN_FAN,
    "linear",
    "lower",
    "higher",
    "midpoint",
    "nearest",
)


def _snap_to_boundary(index: Any, keep_lower: Callable[[Any, Any], Any]) -> np.ndarray:
    """numpy's discrete methods: the rank below or above ``index``, never below 0."""
    lower = np.floor(index)
    chosen = np.where(keep_lower(index - lower, index), lower, lower + 1).astype(np.intp)
    return np.maximum(chosen, 0)


def _virtual_index(method: str, n: int, q: Any) -> np.ndarray:
    """Where, in ranks of a sorted slice of ``n`` values, numpy's ``method`` reads quantile ``q``.

    An integer array for the methods that select one element; a float array for the interpolating ones.
    """
    if method == "linear":
        return np.asarray((n - 1) * q)
    if method in _HYNDMAN_FAN:
        alpha, beta = _HYNDMAN_FAN[method]
        return np.asarray(n * q + (alpha + q * (1 - alpha - beta)) - 1)
    if method == "averaged_inverted_cdf":
        return np.asarray(n * q - 1)
    if method == "midpoint":
        return np.asarray(0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q)))
    if method == "lower":
        return np.floor((n - 1) * q).astype(np.intp)
    if method == "higher":
        return np.ceil((n - 1) * q).astype(np.intp)
    if method == "nearest":
        return np.around((n - 1) * q).astype(np.intp)
    if method == "inverted_cdf":
        return _snap_to_boundary(n * q - 1, lambda gamma, index: gamma == 0)
    if method == "closest_observation":
        # Hyndman & Fan's rule 3: at a tie, the even order statistic (1-based), i.e. an odd 0-based rank.
        return _snap_to_boundary(
            n * q - 1 - 0.5, lambda gamma, index: (gamma == 0) & (np.floor(index) % 2 == 1)
        )
    raise ValueError(f"quantile: {method!r} is not a valid method; use one of {', '.join(QUANTILE_METHODS)}")


def _neighbours(method: str, n: int, q: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two ranks a quantile of ``n`` sorted values reads, and the weight of the upper one."""
    index = _virtual_index(method, n, q)
    if index.dtype.kind in "iu":
        return index, index, np.zeros(index.shape)
    lower = np.floor(index)
    gamma = index - lower
    if method == "midpoint":
        gamma = np.where(index % 1 == 0, 0.0, 0.5)
    elif method == "averaged_inverted_cdf":
        gamma = np.where(gamma == 0, 0.5, 1.0)
    lower = lower.astype(np.intp)
    upper = lower + 1
    # Past either end numpy reads the end element itself.
    at_top = index >= n - 1
    at_bottom = index < 0
    lower = np.where(at_top, n - 1, np.where(at_bottom, 0, lower))
    upper = np.where(at_top, n - 1, np.where(at_bottom, 0, upper))
    return lower, upper, np.where(lower == upper, 0.0, gamma)


def _order_statistic_cotangent(g: Any, x: Any, q: Any, axis: Any, method: str, skip_nans: bool) -> Any:
    """The cotangent of ``x`` for quantiles ``q`` of ``x`` along ``axis`` (output cotangent ``g``).

    Each output reads the sorted ranks ``lower`` and ``upper`` of its slice with weights ``1 - gamma``
    and ``gamma``; the cotangent goes back to the elements at those ranks (a stable sort breaks ties by
    position). With ``skip_nans`` the ranks count only the non-NaN elements; otherwise a slice holding
    NaN gives its cotangent to its first NaN.
    """
    values = plain(x)
    full_shape = values.shape
    if values.size == 0:
        return np.zeros(full_shape, dtype=values.dtype)
    if values.ndim == 0:
        values = values.reshape(1)
    ndim = values.ndim
    axes = normalize_axes(axis, ndim)
    if not axes:  # axis=(): each slice is one element, and every quantile of it is that element
        q_axes = tuple(range(np.ndim(q)))
        return np.reshape(np.sum(np.reshape(g, np.shape(q) + values.shape), axis=q_axes), full_shape)
    kept = tuple(d for d in range(ndim) if d not in axes)
    batch_shape = tuple(values.shape[d] for d in kept)
    reduced_shape = tuple(values.shape[d] for d in axes)
    n = int(np.prod(reduced_shape, dtype=np.int64))
    rows = np.moveaxis(values, axes, tuple(range(len(kept), ndim))).reshape(*batch_shape, n)
    order = np.argsort(rows, axis=-1, kind="stable")  # NaNs sort last, in array order
    nan_count = np.count_nonzero(np.isnan(rows), axis=-1)
    counts = n - nan_count if skip_nans else np.full(batch_shape, n)

    q = np.asanyarray(q)
    out_shape = q.shape + batch_shape
    lower = np.zeros(out_shape, dtype=np.intp)
    upper = np.zeros(out_shape, dtype=np.intp)
    gamma = np.zeros(out_shape)
    live = np.broadcast_to(counts > 0, out_shape)
    # numpy computes the virtual index with the slice length as a Python int; so does this, once per length.
    for count in np.unique(counts[counts > 0]):
        below, above, weight = (
            np.reshape(item, q.shape + (1,) * len(batch_shape)) for item in _neighbours(method, int(count), q)
        )
        here = counts == count
        lower, upper, gamma = (
            np.where(here, below, lower),
            np.where(here, above, upper),
            np.where(here, weight, gamma),
        )
    if not skip_nans:
        first_nan = np.broadcast_to(n - nan_count, out_shape)
        has_nan = np.broadcast_to(nan_count > 0, out_shape)
        lower, upper, gamma = (
            np.where(has_nan, first_nan, lower),
            np.where(has_nan, first_nan, upper),
            np.where(has_nan, 0.0, gamma),
        )

    g_rows = np.reshape(g, out_shape)
    dtype = g_rows.dtype
    batch_index = tuple(np.broadcast_to(grid, out_shape) for grid in np.indices(batch_shape, sparse=True))
    cotangent = None
    for ranks, weight in ((lower, np.where(live, 1.0 - gamma, 0.0)), (upper, np.where(live, gamma, 0.0))):
        if not np.any(weight):
            continue
        positions = np.take_along_axis(order.reshape((1,) * q.ndim + order.shape), ranks[..., None], axis=-1)
        reduced_index = np.unravel_index(positions[..., 0], reduced_shape)
        index = [None] * ndim
        for d, item in zip(kept, batch_index, strict=True):
            index[d] = item
        for d, item in zip(axes, reduced_index, strict=True):
            index[d] = np.broadcast_to(item, out_shape)
        part = scatter_add(g_rows * weight.astype(dtype), tuple(index), values.shape)
        cotangent = part if cotangent is None else cotangent + part
    if cotangent is None:
        return np.zeros(full_shape, dtype=values.dtype)
    return np.reshape(cotangent, full_shape)


def _median(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return np.median(x, axis=axis, keepdims=keepdims)


def _nanmedian(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return np.nanmedian(x, axis=axis, keepdims=keepdims)


def _median_vjp(skip_nans: bool) -> Callable[..., Any]:
    def vjp(g: Any, out: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return _order_statistic_cotangent(g, x, 0.5, axis, "linear", skip_nans)

    return vjp


median = Op(_median, _median_vjp(skip_nans=False), name="median")
nanmedian = Op(_nanmedian, _median_vjp(skip_nans=True), name="nanmedian")


def _quantile_op(numpy_function: Callable[..., Any], percent: bool, skip_nans: bool) -> Op:
    def forward(
        x: Any, q: Any = 0.5, axis: Any = None, method: str = "linear", keepdims: bool = False
    ) -> Any:
        return numpy_function(x, q, axis=axis, method=method, keepdims=keepdims)

    def vjp(
        g: Any,
        out: Any,
        x: Any,
        q: Any = 0.5,
        axis: Any = None,
        method: str = "linear",
        keepdims: bool = False,
    ) -> Any:
        # The probabilities exactly as numpy derives them, so the ranks read are the ranks numpy read.
        probabilities = np.true_divide(q, 100) if percent else np.asanyarray(q)
        return _order_statistic_cotangent(g, x, probabilities, axis, method, skip_nans)

    return Op(forward, vjp, name=numpy_function.__name__)


quantile = _quantile_op(np.quantile, percent=False, skip_nans=False)
percentile = _quantile_op(np.percentile, percent=True, skip_nans=False)
nanquantile = _quantile_op(np.nanquantile, percent=False, skip_nans=True)
nanpercentile = _quantile_op(np.nanpercentile, percent=True, skip_nans=True)


def _constant(name: str, what: str, value: Any) -> Any:
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise TypeError(f"numpy.{name}: {what} is not differentiable; pass it detached (q.detach())")
        return value._data
    return value


def _median_handler(op: Op) -> Callable[..., Any]:
    name = op.name

    def handler(a: Any, *args: Any, **kwargs: Any) -> Any:
        defaults = {"axis": None, "out": None, "overwrite_input": False, "keepdims": False}
        bound = _bind(name, ("axis", "out", "overwrite_input", "keepdims"), defaults, args, kwargs)
        bound.pop("overwrite_input")  # the tensor's data is never overwritten
        return op(a, **bound)

    handler.__name__ = name
    handler.__doc__ = (
        f"``np.{name}`` on tensors. The cotangent goes to the middle element of a stable sort, or half to "
        "each of the two middle elements of an even count."
    )
    return handler


def _quantile_handler(op: Op) -> Callable[..., Any]:
    name = op.name

    def handler(a: Any, q: Any, *args: Any, **kwargs: Any) -> Any:
        defaults = {
            "axis": None,
            "out": None,
            "overwrite_input": False,
            "method": "linear",
            "keepdims": False,
            "weights": None,
        }
        bound = _bind(name, ("axis", "out", "overwrite_input", "method", "keepdims"), defaults, args, kwargs)
        bound.pop("overwrite_input")  # the tensor's data is never overwritten
        if bound.pop("weights") is not None:
            raise TypeError(f"numpy.{name}: weights= is not supported on tape tensors")
        if bound["method"] not in QUANTILE_METHODS:
            raise ValueError(
                f"numpy.{name}: method {bound['method']!r} is not one of numpy's methods "
                f"({', '.join(QUANTILE_METHODS)})"
            )
        return op(a, q=_constant(name, "q", q), **bound)

    handler.__name__ = name
    handler.__doc__ = (
        f"``np.{name}`` on tensors, for every numpy method. The cotangent goes to the one or two elements "
        "of a stable sort that the method reads, weighted by its interpolation weights."
    )
    return handler


implements(np.median)(_median_handler(median))
implements(np.nanmedian)(_median_handler(nanmedian))
implements(np.quantile)(_quantile_handler(quantile))
implements(np.percentile)(_quantile_handler(percentile))
implements(np.nanquantile)(_quantile_handler(nanquantile))
implements(np.nanpercentile)(_quantile_handler(nanpercentile))


# -- cumsum and cumprod ------------------------------------------------------------------------------------
def _along(axis: int, ndim: int, index: Any) -> tuple[Any, ...]:
    """A basic index that applies ``index`` along ``axis`` and takes everything elsewhere."""
    return (slice(None),) * (axis % ndim) + (index,)


def _reversed_cumsum(values: Any, axis: int) -> Any:
    """Sums from each position to the end along ``axis``."""
    backwards = _along(axis, np.ndim(values), slice(None, None, -1))
    return np.cumsum(values[backwards], axis=axis)[backwards]


def _flat_axis(x: Any, axis: Any) -> bool:
    """numpy flattens for ``axis=None``, and treats a 0-d array as flat whatever the axis."""
    return axis is None or np.ndim(x) == 0


def _cumsum(x: Any, axis: Any = None, dtype: Any = None) -> Any:
    return np.cumsum(x, axis=axis, dtype=dtype)


def _cumsum_vjp(g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None) -> Any:
    if _flat_axis(x, axis):
        return np.reshape(_reversed_cumsum(g, 0), np.shape(x))
    return _reversed_cumsum(g, axis)


cumsum = Op(_cumsum, _cumsum_vjp, name="cumsum", shape_only=(0,), complex_rule="holomorphic")


def _cumprod(x: Any, axis: Any = None, dtype: Any = None) -> Any:
    return np.cumprod(x, axis=axis, dtype=dtype)


def _cumprod_cotangent(g: Any, x: Any, out: Any, axis: int, depth: int) -> Any:
    """The cotangent of ``x`` for ``out = cumprod(x, axis)``, exact when ``x`` holds zeros.

    Before the first zero of a slice, ``sum_{j >= i} g_j out_j / x_i`` (no division by zero there). At the
    first zero ``k``, the same sum with ``x_k`` taken as one. After it, ``x_k`` times the cotangent of the
    cumulative product with ``x_k`` taken as one: zero in value, but its derivative is not, so under
    ``create_graph`` ``depth`` more zeros are handled the same way (two levels make second derivatives
    exact); below that the part after the zero is left out, its value being zero anyway.
    """
    zeros = plain(x) == 0
    if not zeros.any():
        return _reversed_cumsum(g * out, axis) / x
    ndim = zeros.ndim
    length = zeros.shape[axis]
    position = np.arange(length).reshape([length if d == axis % ndim else 1 for d in range(ndim)])
    first_zero = np.where(zeros.any(axis, keepdims=True), zeros.argmax(axis, keepdims=True), length)
    before, at = position < first_zero, position == first_zero
    x_without_zero = np.where(at, 1, x)
    out_without_zero = np.cumprod(x_without_zero, axis=axis)
    cotangent_before = _reversed_cumsum(g * out, axis) / np.where(before, x, 1)
    cotangent_at = _reversed_cumsum(g * out_without_zero, axis)
    # The part after the zero is exactly zero in value; only its derivatives need it, so a first-order
    # backward (plain arrays, nothing recorded) skips it.
    recording = isinstance(g, Tensor) or isinstance(x, Tensor)
    if recording and depth > 1:
        zero_value = np.sum(np.where(at, x, 0), axis=axis, keepdims=True)
        rest = _cumprod_cotangent(g, x_without_zero, out_without_zero, axis, depth - 1)
        cotangent_after = zero_value * rest
    else:
        cotangent_after = 0
    return np.where(before, cotangent_before, np.where(at, cotangent_at, cotangent_after))


def _cumprod_vjp(g: Any, out: Any, x: Any, axis: Any = None, dtype: Any = None) -> Any:
    if dtype is not None:  # compute in the dtype numpy multiplied in
        x = x.astype(np.result_type(x.dtype, dtype))
    # An infinite x gives inf - inf and inf / inf (nan) in the sums and divisions, as torch's VJP does.
    with np.errstate(invalid="ignore"):
        if _flat_axis(x, axis):
            flat = _cumprod_cotangent(g, np.reshape(x, -1), out, 0, depth=2)
            return np.reshape(flat, np.shape(x))
        return _cumprod_cotangent(g, x, out, axis, depth=2)


cumprod = Op(_cumprod, _cumprod_vjp, name="cumprod", complex_rule="holomorphic")


def _cumulative_handler(op: Op) -> Callable[..., Any]:
    name = op.name

    def handler(a: Any, *args: Any, **kwargs: Any) -> Any:
        bound = _bind(
            name, ("axis", "dtype", "out"), {"axis": None, "dtype": None, "out": None}, args, kwargs
        )
        return op(a, **bound)

    handler.__name__ = name
    handler.__doc__ = f"``np.{name}`` on tensors, along one axis or over the flattened array (axis=None)."
    return handler


implements(np.cumsum)(_cumulative_handler(cumsum))
implements(np.cumprod)(_cumulative_handler(cumprod))


def _cumulative_array_api_handler(op: Op, identity: float) -> Callable[..., Any]:
    name = {"cumsum": "cumulative_sum", "cumprod": "cumulative_prod"}[op.name]

    def handler(
        x: Any, /, *, axis: Any = None, dtype: Any = None, out: Any = None, include_initial: bool = False
    ) -> Any:
        if out is not None:
            raise TypeError(f"numpy.{name}: out= is not supported on tape tensors; assign the result instead")
        x = np.atleast_1d(x)
        if axis is None:
            if np.ndim(x) >= 2:
                raise ValueError(
                    f"{name}: an array of shape {np.shape(x)} has more than one axis, so axis= is required"
                )
            axis = 0
        result = op(x, axis=axis, dtype=dtype)
        if not include_initial:
            return result
        initial_shape = list(np.shape(result))
        initial_shape[axis] = 1
        return np.concatenate([np.full(initial_shape, identity, dtype=result.dtype), result], axis=axis)

    handler.__name__ = name
    handler.__doc__ = f"""``np.{name}`` on tensors (numpy 2.1's array-API ``{op.name}``): along ``axis``,
    which a 0-d or 1-d array may omit, with ``include_initial`` putting {identity:g} first.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = np.{name}(x, include_initial=True)
    >>> np.sum(y).backward()
    >>> y.shape, x.grad.shape
    ((4,), (3,))
    """
    return handler


if hasattr(np, "cumulative_sum"):  # numpy >= 2.1
    implements(np.cumulative_sum)(_cumulative_array_api_handler(cumsum, 0.0))
    implements(np.cumulative_prod)(_cumulative_array_api_handler(cumprod, 1.0))


# -- ptp and diff ------------------------------------------------------------------------------------------
@implements(np.ptp)
def ptp(a: Any, axis: Any = None, out: Any = None, keepdims: Any = _NO_VALUE) -> Any:
    """``np.ptp`` on tensors: ``max - min``, so tied extremes share their cotangent as in ``np.max``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([3.0, -1.0, 2.0], requires_grad=True)
    >>> np.ptp(x).backward()
    >>> x.grad
    array([ 1., -1.,  0.])
    """
    if out is not None:
        raise TypeError("numpy.ptp: out= is not supported on tape tensors; assign the result instead")
    keepdims = False if keepdims is _NO_VALUE else keepdims
    return np.max(a, axis=axis, keepdims=keepdims) - np.min(a, axis=axis, keepdims=keepdims)


def _diff(x: Any, prepend: Any, append: Any, n: int = 1, axis: int = -1) -> Any:
    return np.diff(
        x,
        n=n,
        axis=axis,
        prepend=_NO_VALUE if prepend is None else prepend,
        append=_NO_VALUE if append is None else append,
    )


def _edge_length(edge: Any, axis: int) -> int:
    """How many entries ``prepend``/``append`` adds along ``axis`` (a scalar adds one, as numpy does)."""
    if edge is None:
        return 0
    return 1 if np.ndim(edge) == 0 else np.shape(edge)[axis]


def _diff_backward(g: Any, out: Any, x: Any, prepend: Any, append: Any, n: int = 1, axis: int = -1):
    ndim = np.ndim(x)
    before, middle = _edge_length(prepend, axis), np.shape(x)[axis]
    shape = list(np.shape(g))
    cotangent = g
    # Each difference step y[i] = z[i + 1] - z[i] sends y's cotangent to z with a plus and a minus.
    for _ in range(n):
        shape[axis] += 1
        cotangent = scatter_add(cotangent, _along(axis, ndim, slice(1, None)), tuple(shape)) - scatter_add(
            cotangent, _along(axis, ndim, slice(None, -1)), tuple(shape)
        )
    return (
        cotangent[_along(axis, ndim, slice(before, before + middle))],
        None if prepend is None else cotangent[_along(axis, ndim, slice(0, before))],
        None if append is None else cotangent[_along(axis, ndim, slice(before + middle, None))],
    )


diff_op = Op(_diff, name="diff", backward=_diff_backward, shape_only=(0, 1, 2), complex_rule="holomorphic")


@implements(np.diff)
def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = _NO_VALUE, append: Any = _NO_VALUE) -> Any:
    """``np.diff`` on tensors, differentiable in ``a`` and in ``prepend`` / ``append``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 4.0, 9.0], requires_grad=True)
    >>> np.diff(x).sum().backward()
    >>> x.grad
    array([-1.,  0.,  1.])
    """
    if n == 0:
        return a  # numpy returns its input itself
    if np.ndim(a) == 0:
        raise ValueError("diff: requires input that is at least one dimensional (got a 0-d array)")
    return diff_op(
        a,
        None if prepend is _NO_VALUE else prepend,
        None if append is _NO_VALUE else append,
        n=n,
        axis=axis,
    )


# Forward mode: each of these is linear in its first argument, so its JVP is the op on the tangent.
cumsum.defjvp(linear_jvp(cumsum.forward))

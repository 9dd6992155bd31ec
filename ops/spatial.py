"""Resampling of images: ``interpolate`` (nearest, bilinear), ``adaptive_avg_pool2d`` and ``dropout2d``.

Interpolation and adaptive pooling are linear maps applied to the height and width axes one after the
other, so each is an op whose VJP is its transpose, an op too, whose VJP is the first op again: both
differentiate to any order. Interpolation gathers one or two input rows (columns) per output row (column)
and weights them; its transpose adds the weighted cotangents back, one ``np.add.reduceat`` over the runs of
equal source indices (the indices never decrease), so both cost a few passes over the output. Adaptive
pooling multiplies by a small averaging matrix on each side (``A_h @ x @ A_w.T``), torch's windows in its
rows. ``dropout2d`` is a product with a constant mask, recorded as ``multiply``.

Indices and weights follow torch's CPU kernels, down to the float32 arithmetic of nearest's source index,
so the rows picked agree with torch's. This module holds no numba kernel and must not import ``tape.nn``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from tape.op import Op
from tape.tensor import Tensor
from tape.tracing import random_values

from .nn import refuse_grad

__all__ = ["adaptive_avg_pool2d", "dropout2d", "interpolate"]

Pair = tuple[int, int]
Scales = tuple[float | None, float | None]
# Per axis: (source index, weight or None) terms, each output row the weighted sum of its sources.
Plan = list[tuple[np.ndarray, np.ndarray | None]]

_MODES = ("nearest", "bilinear")


def _data(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(_data(x))


def _check_float(op_name: str, x: Any) -> None:
    dtype = np.asarray(_data(x)).dtype
    if dtype.kind != "f":
        raise TypeError(f"{op_name}: expected a floating-point input, got dtype {dtype.name}")


# -- interpolation ---------------------------------------------------------------------------------------
def _axis_plan(
    in_size: int, out_size: int, mode: str, align_corners: bool, scale: float | None, dtype: np.dtype
) -> Plan:
    """The source rows and weights of each of ``out_size`` output rows, as torch's CPU kernels find them."""
    if mode == "nearest":
        if out_size == in_size:
            return [(np.arange(out_size), None)]
        if out_size == 2 * in_size:
            return [(np.arange(out_size) // 2, None)]
        # torch computes this index in float32 whatever the dtype; so does this, to pick the same rows.
        step = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
        index = np.floor(np.arange(out_size, dtype=np.float32) * step).astype(np.int64)
        return [(np.minimum(index, in_size - 1), None)]
    real = np.float32 if dtype == np.float32 else np.float64  # torch's opmath type
    positions = np.arange(out_size, dtype=real)
    if align_corners:
        step = real(in_size - 1) / real(out_size - 1) if out_size > 1 else real(0)
        source = positions * step
    else:
        step = real(1.0 / scale) if scale else real(in_size) / real(out_size)
        source = np.maximum(step * (positions + real(0.5)) - real(0.5), real(0))
    first = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    fraction = np.clip(source - first, 0, 1)
    second = first + (first < in_size - 1)
    return [(first, (1 - fraction).astype(dtype)), (second, fraction.astype(dtype))]


def _plans(
    input_hw: Pair, output_hw: Pair, mode: str, align_corners: bool, scales: Scales, dtype: np.dtype
) -> tuple[Plan, Plan]:
    rows = _axis_plan(input_hw[0], output_hw[0], mode, align_corners, scales[0], dtype)
    cols = _axis_plan(input_hw[1], output_hw[1], mode, align_corners, scales[1], dtype)
    return rows, cols


def _along(weight: np.ndarray | None, axis: int) -> Any:
    # A weight per position along ``axis`` (2 or 3), shaped to broadcast over an (N, C, H, W) array.
    return None if weight is None else (weight[:, None] if axis == 2 else weight)


def _gather(x: np.ndarray, plan: Plan, axis: int) -> np.ndarray:
    """Each output row along ``axis``: the weighted sum of its source rows."""
    total = None
    for index, weight in plan:
        term = np.take(x, index, axis=axis)
        if weight is not None:
            term *= _along(weight, axis)
        total = term if total is None else total + term
    assert total is not None
    return total


def _scatter(g: np.ndarray, plan: Plan, size: int, axis: int) -> np.ndarray:
    """The transpose of ``_gather``: each row's weighted cotangent added into its source rows."""
    shape = list(g.shape)
    shape[axis] = size
    total = np.zeros(shape, g.dtype)
    where: list[Any] = [slice(None)] * g.ndim
    for index, weight in plan:
        values = g if weight is None else g * _along(weight, axis)
        targets, starts = np.unique(index, return_index=True)  # runs of one source: ``index`` is sorted
        where[axis] = targets
        total[tuple(where)] += np.add.reduceat(values, starts, axis=axis)
    return total


def _interpolate_forward(
    x: np.ndarray, *, output_hw: Pair, mode: str, align_corners: bool, scales: Scales
) -> np.ndarray:
    rows, cols = _plans(x.shape[2:], output_hw, mode, align_corners, scales, x.dtype)
    return _gather(_gather(x, rows, 2), cols, 3)


def _interpolate_transpose_forward(
    g: np.ndarray, *, input_hw: Pair, output_hw: Pair, mode: str, align_corners: bool, scales: Scales
) -> np.ndarray:
    rows, cols = _plans(input_hw, output_hw, mode, align_corners, scales, g.dtype)
    return _scatter(_scatter(g, cols, input_hw[1], 3), rows, input_hw[0], 2)


interpolate_op: Op = Op(
    _interpolate_forward,
    lambda g, out, x, output_hw, mode, align_corners, scales: interpolate_transpose_op(
        g,
        input_hw=np.shape(x)[2:],
        output_hw=output_hw,
        mode=mode,
        align_corners=align_corners,
        scales=scales,
    ),
    name="interpolate",
    shape_only=(0,),
)

# The transpose of interpolation (its VJP), linear in ``g``; its own VJP is interpolation again.
interpolate_transpose_op: Op = Op(
    _interpolate_transpose_forward,
    lambda h, out, g, input_hw, output_hw, mode, align_corners, scales: interpolate_op(
        h, output_hw=output_hw, mode=mode, align_corners=align_corners, scales=scales
    ),
    name="interpolate_backward",
    shape_only=(0,),
)


def _two(value: Any, name: str, op_name: str, kind: type) -> tuple[Any, Any]:
    """``value`` (one number, or a pair of them) as a pair; each positive and of ``kind`` (int or float)."""
    items = (value, value) if np.ndim(value) == 0 else tuple(value)
    numbers = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    if len(items) != 2 or not all(
        isinstance(item, numbers) and not isinstance(item, bool) and item > 0 for item in items
    ):
        what = "int" if kind is int else "number"
        raise ValueError(f"{op_name}: {name} must be a positive {what} or a pair of them, got {value!r}")
    return kind(items[0]), kind(items[1])


def interpolate(
    x: Any,
    size: int | tuple[int, int] | None = None,
    scale_factor: float | tuple[float, float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Any:
    """Resize the images ``x`` ``(N, C, H, W)``, as torch's ``interpolate`` (modes nearest and bilinear).

    Parameters
    ----------
    x : array or tensor of shape ``(N, C, H, W)``, floating point.
    size : the output's ``(Ho, Wo)``, or one int for both. Exactly one of ``size`` and ``scale_factor``.
    scale_factor : a positive number or a pair: ``Ho = floor(H * scale)``; the source positions are computed
        from the factor itself, as torch does (``recompute_scale_factor=False``).
    mode : ``'nearest'`` (the row ``floor(i * H / Ho)``) or ``'bilinear'``.
    align_corners : bilinear only: True maps the corner pixels' centres onto each other; False (the default)
        maps the corners of the images, clamping at the border.

    Returns
    -------
    ``(N, C, Ho, Wo)`` in ``x``'s dtype, differentiable in ``x`` to any order.

    Examples
    --------
    >>> interpolate(np.array([[[[1.0, 2.0]]]]), scale_factor=2)
    array([[[[1., 1., 2., 2.],
             [1., 1., 2., 2.]]]])
    >>> interpolate(np.array([[[[0.0, 1.0]]]]), size=(1, 3), mode="bilinear", align_corners=True)
    array([[[[0. , 0.5, 1. ]]]])
    """
    op_name = "interpolate"
    x_shape = _shape(x)
    if len(x_shape) != 4:
        raise ValueError(f"{op_name}: expected input of shape (N, C, H, W), got shape {x_shape}")
    if mode not in _MODES:
        raise ValueError(f"{op_name}: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(f"{op_name}: align_corners is for mode='bilinear' only; leave it None for 'nearest'")
    if (size is None) == (scale_factor is None):
        given = "both" if size is not None else "neither"
        raise ValueError(f"{op_name}: give exactly one of size and scale_factor, got {given}")
    _check_float(op_name, x)
    scales: Scales = (None, None)
    if size is not None:
        output_hw = _two(size, "size", op_name, int)
    else:
        factors = _two(scale_factor, "scale_factor", op_name, float)
        scales = factors
        output_hw = tuple(math.floor(n * s) for n, s in zip(x_shape[2:], factors, strict=True))
        if min(output_hw) < 1:
            raise ValueError(
                f"{op_name}: scale_factor={scale_factor!r} makes an empty output {output_hw} from input of "
                f"shape {x_shape}"
            )
    return interpolate_op(x, output_hw=output_hw, mode=mode, align_corners=bool(align_corners), scales=scales)


# -- adaptive average pooling ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _averaging(in_size: int, out_size: int) -> np.ndarray:
    """``(out_size, in_size)``: row ``i`` averages torch's window ``[floor(i n / m), ceil((i + 1) n / m))``
    of the ``n = in_size`` rows, ``m = out_size``."""
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -(-((i + 1) * in_size) // out_size)
        matrix[i, start:end] = 1.0 / (end - start)
    matrix.setflags(write=False)
    return matrix


def _adaptive_forward(x: np.ndarray, *, output_hw: Pair) -> np.ndarray:
    rows = _averaging(x.shape[-2], output_hw[0]).astype(x.dtype)
    cols = _averaging(x.shape[-1], output_hw[1]).astype(x.dtype)
    return np.matmul(np.matmul(rows, x), cols.T)


def _adaptive_backward_forward(g: np.ndarray, *, input_hw: Pair, output_hw: Pair) -> np.ndarray:
    rows = _averaging(input_hw[0], output_hw[0]).astype(g.dtype)
    cols = _averaging(input_hw[1], output_hw[1]).astype(g.dtype)
    return np.matmul(np.matmul(rows.T, g), cols)


adaptive_avg_pool2d_op: Op = Op(
    _adaptive_forward,
    lambda g, out, x, output_hw: adaptive_avg_pool2d_backward_op(
        g, input_hw=np.shape(x)[-2:], output_hw=output_hw
    ),
    name="adaptive_avg_pool2d",
    shape_only=(0,),
)

adaptive_avg_pool2d_backward_op: Op = Op(
    _adaptive_backward_forward,
    lambda h, out, g, input_hw, output_hw: adaptive_avg_pool2d_op(h, output_hw=output_hw),
    name="adaptive_avg_pool2d_backward",
    shape_only=(0,),
)


def adaptive_avg_pool2d(x: Any, output_size: int | tuple[int | None, int | None] | None) -> Any:
    """Average ``x`` ``(N, C, H, W)`` or ``(C, H, W)`` over windows that tile it into ``output_size`` cells.

    Output cell ``i`` along an axis of length ``n`` averages rows ``floor(i n / m)`` to
    ``ceil((i + 1) n / m) - 1``, as torch's ``adaptive_avg_pool2d``: any output size, windows may overlap.
    ``output_size`` is an int (for both axes) or a pair; a None entry keeps that axis's input size.

    Examples
    --------
    >>> adaptive_avg_pool2d(np.arange(6.0).reshape(1, 1, 2, 3), (1, 2))
    array([[[[2., 3.]]]])
    """
    op_name = "adaptive_avg_pool2d"
    x_shape = _shape(x)
    if len(x_shape) not in (3, 4):
        raise ValueError(f"{op_name}: expected input of shape (N, C, H, W) or (C, H, W), got shape {x_shape}")
    if min(x_shape[-2:]) < 1:
        raise ValueError(f"{op_name}: expected a non-empty image, got input of shape {x_shape}")
    _check_float(op_name, x)
    items: tuple[Any, ...] = (
        (output_size, output_size)
        if output_size is None or isinstance(output_size, int | np.integer)
        else tuple(output_size)
    )
    if len(items) != 2 or not all(
        item is None or (isinstance(item, int | np.integer) and not isinstance(item, bool) and item > 0)
        for item in items
    ):
        raise ValueError(
            f"{op_name}: output_size must be a positive int, None, or a pair of them, got {output_size!r}"
        )
    output_hw = tuple(
        int(size if item is None else item) for item, size in zip(items, x_shape[-2:], strict=True)
    )
    return adaptive_avg_pool2d_op(x, output_hw=output_hw)


# -- channel dropout -------------------------------------------------------------------------------------
def dropout2d(x: Any, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None) -> Any:
    """Zero whole channels of ``x`` ``(N, C, H, W)`` with probability ``p``; scale the rest by ``1/(1-p)``.

    One draw per (sample, channel), from ``rng`` (a fresh default generator when None), as torch's
    ``dropout2d``. Out of training (``training=False``) or with ``p=0`` it returns ``x`` unchanged.

    Examples
    --------
    >>> out = dropout2d(np.ones((1, 4, 2, 2)), 0.5, rng=np.random.default_rng(0))
    >>> out[0, :, 0, 0]
    array([2., 0., 0., 0.])
    """
    refuse_grad("dropout2d", "p", p, "it is a number", ".item()")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: p must be in [0, 1], got {p}")
    x_shape = _shape(x)
    if len(x_shape) != 4:
        raise ValueError(f"dropout2d: expected input of shape (N, C, H, W), got shape {x_shape}")
    if not training or p == 0.0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    data = _data(x)
    dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float64)
    if p == 1.0:
        return x * np.zeros((*x_shape[:2], 1, 1), dtype=dtype)
    scale = dtype.type(1.0 / (1.0 - p))
    mask = random_values(
        lambda: (rng.random(x_shape[:2]) >= p).astype(dtype).reshape(*x_shape[:2], 1, 1) * scale
    )
    return x * mask

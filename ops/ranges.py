"""Evenly spaced ranges between tensor end points: ``linspace`` and ``logspace``, each beside its VJP.

The forward is numpy's own ``linspace`` on the end points' data, so the samples agree with numpy to the
bit. Sample ``k`` of ``n`` is ``start + (k / d) (stop - start)`` (``d = n - 1`` with the end point, else
``n``), so its derivative is ``1 - k / d`` in ``start`` and ``k / d`` in ``stop``; the VJPs weigh the
cotangent so and sum it along the samples' axis. ``logspace`` is ``base ** linspace``, written with
registered ops, so it is differentiable in ``base`` too. Integer dtypes give constant samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.op import Op
from tape.registry import implements
from tape.tensor import Tensor


def _fractions(g: Any, num: int, endpoint: bool, axis: int) -> Any:
    """``k / d`` for each sample ``k``, shaped to broadcast along the samples' ``axis`` of ``g``."""
    divisor = num - 1 if endpoint else num
    fractions = np.arange(num, dtype=g.dtype) / divisor if divisor > 0 else np.zeros(num, g.dtype)
    shape = [1] * np.ndim(g)
    shape[axis] = num
    return np.reshape(fractions, shape)


def _linspace(
    start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None, axis: int = 0
) -> Any:
    return np.linspace(start, stop, num, endpoint, dtype=dtype, axis=axis)


def _linspace_vjp_start(
    g: Any,
    out: Any,
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    dtype: Any = None,
    axis: int = 0,
) -> Any:
    axis = axis % np.ndim(g)
    return np.sum(g * (1 - _fractions(g, num, endpoint, axis)), axis=axis)


def _linspace_vjp_stop(
    g: Any,
    out: Any,
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    dtype: Any = None,
    axis: int = 0,
) -> Any:
    axis = axis % np.ndim(g)
    return np.sum(g * _fractions(g, num, endpoint, axis), axis=axis)


# Linear in both end points, so complex end points take the same VJPs.
linspace_op = Op(
    _linspace,
    _linspace_vjp_start,
    _linspace_vjp_stop,
    name="linspace",
    shape_only=(0, 1),
    complex_rule="holomorphic",
)


@implements(np.linspace)
def linspace(
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    retstep: bool = False,
    dtype: Any = None,
    axis: int = 0,
    *,
    device: Any = None,
) -> Any:
    """``np.linspace`` on tensors: ``num`` samples from ``start`` to ``stop`` (arrays broadcast, the samples
    along ``axis``), differentiable in both end points.

    Examples
    --------
    >>> import numpy as np, tape
    >>> start = tape.tensor(0.0, requires_grad=True)
    >>> samples = np.linspace(start, 1.0, 5)
    >>> np.sum(samples).backward()
    >>> samples.data, start.grad
    (array([0.  , 0.25, 0.5 , 0.75, 1.  ]), array(2.5))
    """
    if device not in (None, "cpu"):
        raise ValueError(f"linspace: device must be None or 'cpu' on tape tensors, got {device!r}")
    num = _sample_count(num)
    samples = linspace_op(start, stop, num, endpoint, dtype=dtype, axis=axis)
    if not retstep:
        return samples
    divisor = num - 1 if endpoint else num
    return samples, (np.subtract(stop, start) / divisor if divisor > 0 else np.nan)


def _sample_count(num: Any) -> int:
    if isinstance(num, Tensor):
        num = num._data
    if num < 0:
        raise ValueError(f"linspace: number of samples, {num}, must be non-negative")
    return int(num)


def _at_least(value: Any, ndim: int) -> Any:
    """``value`` with leading axes of length one up to ``ndim`` axes (numpy's ``ndmin``)."""
    if isinstance(value, Tensor):
        return np.reshape(value, (1,) * (ndim - value.ndim) + value.shape) if value.ndim < ndim else value
    return np.array(value, copy=None, subok=True, ndmin=ndim)


@implements(np.logspace)
def logspace(
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    base: Any = 10.0,
    dtype: Any = None,
    axis: int = 0,
) -> Any:
    """``np.logspace`` on tensors: ``base ** linspace(start, stop)``, differentiable in ``start``, ``stop``
    and ``base``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> stop = tape.tensor(2.0, requires_grad=True)
    >>> np.logspace(0.0, stop, 3).data
    array([  1.,  10., 100.])
    """
    if not isinstance(base, float | int) and np.ndim(base):
        # An array of bases broadcasts with the end points, which may change what ``axis`` means.
        ndmax = np.broadcast(*(np.empty(np.shape(value)) for value in (start, stop, base))).ndim
        start, stop, base = (_at_least(value, ndmax) for value in (start, stop, base))
        base = np.expand_dims(base, axis=axis)
    exponents = linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    powers = np.power(base, exponents)
    return powers if dtype is None else powers.astype(dtype)

"""Shape ops: reshape, transpose, axes added, removed, swapped or broadcast, meshgrid; each beside its VJP.

These ops move data without changing it, so each VJP moves the cotangent back. ``broadcast_to``'s VJP is
the identity: the engine's central unbroadcast sums the cotangent back to the input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.op import Op, linear_jvp
from tape.registry import SCALAR_FORMULAS, implements


def batch_axes(g: Any, out: Any) -> int:
    """How many leading axes ``g`` has beyond the output's: a batch of cotangents (``jacobian``) has one."""
    return np.ndim(g) - np.ndim(out)


def _in_batch(g: Any, out: Any, axes: Any, ndim: int) -> Any:
    """``axes`` of an ``ndim``-axis array, shifted past the batch axes ``g`` carries."""
    extra = batch_axes(g, out)
    if isinstance(axes, int | np.integer):
        return int(axes) % ndim + extra
    return tuple(int(a) % ndim + extra for a in axes)


def _reshape_back(g: Any, out: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    return np.reshape(g, np.shape(g)[: batch_axes(g, out)] + np.shape(x))


def _reshape(x: Any, shape: Any, order: str = "C") -> Any:
    return np.reshape(x, shape, order=order)


def _reshape_vjp(g: Any, out: Any, x: Any, shape: Any, order: str = "C") -> Any:
    return _reshape_back(g, out, x) if order == "C" else np.reshape(g, np.shape(x), order=order)


reshape_op = Op(
    _reshape,
    _reshape_vjp,
    name="reshape",
    view=True,
    shape_only=(0,),
    batched=True,
    complex_rule="holomorphic",
)


@implements(np.reshape)
def reshape(a: Any, shape: Any = None, order: str = "C", **kwargs: Any) -> Any:
    """``np.reshape`` on tensors (``newshape=`` accepted as numpy's older spelling)."""
    shape = kwargs.pop("newshape", shape)
    kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"numpy.reshape: keyword argument(s) {sorted(kwargs)} are not supported")
    return reshape_op(a, shape, order=order)


def _ravel(x: Any, order: str = "C") -> Any:
    return np.ravel(x, order=order)


ravel = Op(
    _ravel,
    lambda g, out, x, order="C": _reshape_vjp(g, out, x, None, order),
    name="ravel",
    view=True,
    shape_only=(0,),
    batched=True,
    complex_rule="holomorphic",
)
implements(np.ravel)(ravel)


def _transpose(x: Any, axes: Any = None) -> Any:
    return np.transpose(x, axes)


def _transpose_vjp(g: Any, out: Any, x: Any, axes: Any = None) -> Any:
    ndim = np.ndim(x)
    inverse = range(ndim)[::-1] if axes is None else np.argsort([a % ndim for a in axes])
    return np.transpose(g, (*range(batch_axes(g, out)), *_in_batch(g, out, inverse, max(ndim, 1))))


transpose = Op(
    _transpose,
    _transpose_vjp,
    name="transpose",
    view=True,
    shape_only=(0,),
    batched=True,
    complex_rule="holomorphic",
)
implements(np.transpose)(transpose)


def _swapaxes(x: Any, axis1: int, axis2: int) -> Any:
    return np.swapaxes(x, axis1, axis2)


swapaxes = Op(
    _swapaxes,
    lambda g, out, x, axis1, axis2: np.swapaxes(g, *_in_batch(g, out, (axis1, axis2), np.ndim(x))),
    name="swapaxes",
    view=True,
    shape_only=(0,),
    batched=True,
    complex_rule="holomorphic",
)
implements(np.swapaxes)(swapaxes)


def _moveaxis(x: Any, source: Any, destination: Any) -> Any:
    return np.moveaxis(x, source, destination)


moveaxis = Op(
    _moveaxis,
    lambda g, out, x, source, destination: np.moveaxis(
        g, _in_batch(g, out, destination, np.ndim(x)), _in_batch(g, out, source, np.ndim(x))
    ),
    name="moveaxis",
    view=True,
    shape_only=(0,),
    batched=True,
    complex_rule="holomorphic",
)
implements(np.moveaxis)(moveaxis)


def _expand_dims(x: Any, axis: Any) -> Any:
    return np.expand_dims(x, axis)


expand_dims = Op(
    _expand_dims,
    _reshape_back,
    name="expand_dims",
    view=True,
    shape_only=(0,),
    batched=True,
    complex_rule="holomorphic",
)
implements(np.expand_dims)(expand_dims)


def _squeeze(x: Any, axis: Any = None) -> Any:
    return np.squeeze(x, axis)


squeeze = Op(
    _squeeze,
    _reshape_back,
    name="squeeze",
    view=True,
    shape_only=(0,),
    batched=True,
    complex_rule="holomorphic",
)
implements(np.squeeze)(squeeze)


def _broadcast_to(x: Any, shape: Any, subok: bool = False) -> Any:
    return np.broadcast_to(x, shape)


broadcast_to = Op(
    _broadcast_to,
    lambda g, out, x, shape, subok=False: g,
    name="broadcast_to",
    view=True,
    shape_only=(0,),
    batched=True,
    complex_rule="holomorphic",
)
implements(np.broadcast_to)(broadcast_to)


def _where(condition: Any, x: Any, y: Any) -> Any:
    return np.where(condition, x, y)


where_op = Op(
    _where,
    None,
    lambda g, out, condition, x, y: np.where(condition, g, 0),
    lambda g, out, condition, x, y: np.where(condition, 0, g),
    name="where",
    shape_only=(1, 2),
    batched=True,
    complex_rule="holomorphic",
)
SCALAR_FORMULAS[where_op] = (
    lambda condition, x, y: x if condition else y,
    (None, lambda g, out, condition, x, y: g if condition else 0.0, lambda g, out, c, x, y: 0.0 if c else g),
)


@implements(np.where)
def where(condition: Any, *values: Any) -> Any:
    """``np.where(condition, x, y)`` on tensors; the one-argument form gives the (integer) indices."""
    if not values:
        return np.nonzero(condition)
    if len(values) != 2:
        raise TypeError("numpy.where: give either only a condition, or a condition, x and y")
    return where_op(condition, *values)


@implements(np.meshgrid)
def meshgrid(*xi: Any, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> tuple[Any, ...]:
    """``np.meshgrid`` on tensors: each input flattened along its own axis and broadcast to the grid (with
    ``copy=False``, broadcast views; with ``sparse=True``, not broadcast), differentiable in every input.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> xx, yy = np.meshgrid(x, np.array([0.0, 1.0]))
    >>> np.sum(xx * yy).backward()
    >>> xx.shape, x.grad
    ((2, 3), array([1., 1., 1.]))
    """
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    ndim = len(xi)
    grids = [np.reshape(x, (1,) * k + (-1,) + (1,) * (ndim - k - 1)) for k, x in enumerate(xi)]
    if indexing == "xy" and ndim > 1:
        # Cartesian indexing: the first two inputs vary along axes 1 and 0.
        grids[0] = np.reshape(grids[0], (1, -1) + (1,) * (ndim - 2))
        grids[1] = np.reshape(grids[1], (-1, 1) + (1,) * (ndim - 2))
    if not sparse:
        shape = np.broadcast_shapes(*(np.shape(grid) for grid in grids))
        grids = [np.broadcast_to(grid, shape) for grid in grids]
    if copy:
        grids = [np.copy(grid) for grid in grids]
    return tuple(grids)


# Forward mode: each of these is linear in its first argument, so its JVP is the op on the tangent.
reshape_op.defjvp(linear_jvp(reshape_op.forward))
ravel.defjvp(linear_jvp(ravel.forward))
transpose.defjvp(linear_jvp(transpose.forward))
swapaxes.defjvp(linear_jvp(swapaxes.forward))
moveaxis.defjvp(linear_jvp(moveaxis.forward))
expand_dims.defjvp(linear_jvp(expand_dims.forward))
squeeze.defjvp(linear_jvp(squeeze.forward))
broadcast_to.defjvp(linear_jvp(broadcast_to.forward))

"""Indexing: ``t[index]`` and ``t[index] = value``, with basic and advanced (integer, boolean) indices.

The VJP of reading ``x[index]`` is ``scatter_add``: the cotangent added into zeros of ``x``'s shape, so a
position read twice receives both cotangents. ``scatter_add`` is an op of its own whose VJP is a read, so
gradients of gradients flow through it.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from tape.inplace import apply_in_place
from tape.op import Op, linear_jvp
from tape.registry import implements
from tape.tensor import Tensor

from .scatter import scatter_add_into


def plain_index(index: Any) -> Any:
    """``index`` with every tensor inside replaced by its data (indices carry no gradient)."""
    if isinstance(index, Tensor):
        return index._data
    if type(index) is tuple:
        return tuple(item._data if isinstance(item, Tensor) else item for item in index)
    if type(index) is list and any(isinstance(item, Tensor) for item in index):
        return [item._data if isinstance(item, Tensor) else item for item in index]
    return index


def is_basic(index: Any) -> bool:
    """True when numpy reads ``x[index]`` as a view: only ints, slices, ``None`` and ``...``."""
    items = index if type(index) is tuple else (index,)
    return all(
        item is None
        or item is Ellipsis
        or (isinstance(item, slice | int | np.integer) and not isinstance(item, bool))
        for item in items
    )


def _scatter_add(g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    total = np.zeros(shape, dtype=g.dtype)
    if is_basic(index):
        total[index] = g
    else:
        scatter_add_into(total, index, g)
    return total


# Reading, writing and scatter-adding are linear, so complex values take the same VJPs ("holomorphic").
scatter_add = Op(
    _scatter_add,
    lambda h, out, g, index, shape: h[index],
    name="scatter_add",
    shape_only=(0,),
    complex_rule="holomorphic",
)


def _getitem(x: Any, index: Any) -> Any:
    return x[index]


def _getitem_vjp(g: Any, out: Any, x: Any, index: Any) -> Any:
    return scatter_add(g, index, np.shape(x))


getitem_view = Op(
    _getitem, _getitem_vjp, name="getitem", view=True, shape_only=(0,), complex_rule="holomorphic"
)
getitem_copy = Op(_getitem, _getitem_vjp, name="getitem", shape_only=(0,), complex_rule="holomorphic")


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]`` on a tensor: a view for basic indices, a copy for advanced ones, as in numpy."""
    index = plain_index(index)
    return (getitem_view if is_basic(index) else getitem_copy)(x, index)


def _setitem(x: Any, index: Any, value: Any) -> Any:
    result = x.copy()
    result[index] = value
    return result


def _setitem_vjp_target(g: Any, out: Any, x: Any, index: Any, value: Any) -> Any:
    kept = np.ones(np.shape(x), dtype=bool)
    kept[index] = False
    return g * kept


def _setitem_vjp_value(g: Any, out: Any, x: Any, index: Any, value: Any) -> Any:
    cotangent = g[index]
    if not is_basic(index):
        # With repeated indices numpy keeps the value written last; only that one receives the cotangent.
        order = np.arange(np.size(cotangent)).reshape(np.shape(cotangent))
        winner = np.full(np.shape(x), -1)
        winner[index] = order
        cotangent = cotangent * (winner[index] == order)
    # numpy also takes a value with extra leading axes of length one (x[0] = v with v of shape (1, n)).
    extra = np.ndim(value) - np.ndim(cotangent)
    if extra > 0:
        cotangent = np.reshape(cotangent, (1,) * extra + np.shape(cotangent))
    return cotangent


setitem_op = Op(
    _setitem,
    _setitem_vjp_target,
    None,
    _setitem_vjp_value,
    name="setitem",
    shape_only=(0, 2),
    complex_rule="holomorphic",
)


def setitem(target: Tensor, index: Any, value: Any) -> None:
    """``target[index] = value``: written into ``target``'s buffer and recorded when recording."""
    index = plain_index(index)
    if _is_own_view(value, target, index):
        # ``y[i] += v`` ends with ``y[i] = y[i]``: the view already wrote y's buffer and history.
        return
    apply_in_place(setitem_op, target, index, value)


def _is_own_view(value: Any, target: Tensor, index: Any) -> bool:
    """Whether ``value`` is the view ``target[index]`` itself (same memory, so assigning changes nothing)."""
    if not isinstance(value, Tensor) or value._view_of is None or not is_basic(index):
        return False
    base, view_op, view_args, _, _ = value._view_of
    return base is target and view_op is getitem_view and view_args == (index,)


implements(operator.getitem)(getitem)
implements(operator.setitem)(setitem)


@implements(np.copyto)
def copyto(dst: Any, src: Any, casting: str = "same_kind", where: Any = True) -> None:
    """``np.copyto`` on tensors: ``dst[...] = src``, recorded when recording, with numpy's broadcasting,
    ``casting`` rule and ``where`` mask.

    Examples
    --------
    >>> import numpy as np, tape
    >>> v = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> buffer = tape.zeros((2, 2))
    >>> np.copyto(buffer, v * v, where=np.array([True, False]))
    >>> buffer.sum().backward()
    >>> v.grad
    array([4., 0.])
    """
    if not isinstance(dst, Tensor):
        # Into a plain array: numpy's own copy, refused (by __array__) where it would drop a gradient.
        np.copyto(dst, np.asarray(src), casting=casting, where=np.asarray(where))
        return
    source_dtype = src.dtype if isinstance(src, Tensor) else np.result_type(src)
    if not np.can_cast(source_dtype, dst.dtype, casting=casting):
        raise TypeError(
            f"numpy.copyto: cannot cast {source_dtype} into the {dst.dtype} tensor with casting={casting!r}"
        )
    if where is not True:
        src = np.where(where, src, dst)
    setitem(dst, Ellipsis, src)


copyto.takes_where = True  # type: ignore[attr-defined]


# Forward mode: each of these is linear in its first argument, so its JVP is the op on the tangent.
getitem_view.defjvp(linear_jvp(getitem_view.forward))
getitem_copy.defjvp(linear_jvp(getitem_copy.forward))

"""Selection: numpy functions that pick elements by computed indices (take, take_along_axis, put_along_axis,
sort, partition, choose, compress, extract, select), each beside its VJP.

Every index here is computed from data (argsort, nonzero, a mode applied to user indices) on plain arrays
and carries no gradient. Reading is a gather ``x[index]`` whose VJP is ``scatter_add`` (repeated indices
accumulate); so a gather's gradient of a gradient is again a gather. Indices are checked and brought into
range before the op runs, so an error names the numpy function, the index and the axis size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from tape.grad_mode import state
from tape.inplace import apply_in_place
from tape.op import Op, add_note
from tape.registry import implements
from tape.tensor import Tensor

from .indexing import scatter_add

_MODES = ("raise", "wrap", "clip")
_SORT_KINDS = (None, "quicksort", "mergesort", "heapsort", "stable")


def _data(value: Any) -> Any:
    return value._data if isinstance(value, Tensor) else value


def _operand(value: Any) -> Any:
    """A tensor stays itself (it may be recorded); anything else becomes an array."""
    return value if isinstance(value, Tensor) else np.asarray(value)


def _integer_indices(name: str, indices: Any, allow_bool: bool, error: type[Exception]) -> np.ndarray:
    indices = np.asarray(_data(indices))
    if indices.size == 0 and indices.dtype.kind == "f":
        return indices.astype(np.intp)  # ``[]`` is float64 to numpy, but means "no index" here
    kinds = "biu" if allow_bool else "iu"
    if indices.dtype.kind not in kinds:
        raise error(f"{name}: indices must be integers, got an array of dtype {indices.dtype.name}")
    return indices


def _check_mode(name: str, mode: Any) -> str:
    if mode not in _MODES:
        raise ValueError(f"{name}: mode must be one of 'raise', 'wrap' or 'clip', got {mode!r}")
    return mode


def _in_range(name: str, indices: np.ndarray, size: int, where: str, mode: str = "raise") -> np.ndarray:
    """``indices`` as non-negative ``intp`` positions below ``size``, as numpy's ``mode`` reads them.

    ``where`` says what is indexed ("axis 1", "the flattened array") for the error message.
    """
    if mode == "raise":
        bad = (indices < -size) | (indices >= size)
        if np.any(bad):
            raise IndexError(
                f"{name}: index {indices[bad].flat[0]} is out of bounds for {where} with size {size}"
            )
        return np.where(indices < 0, indices + size, indices).astype(np.intp)
    if size == 0:
        if indices.size:
            raise IndexError(f"{name}: cannot take index {indices.flat[0]} from {where}, which has size 0")
        return indices.astype(np.intp)
    if mode == "wrap":
        return np.mod(indices, size).astype(np.intp)
    return np.clip(indices, 0, size - 1).astype(np.intp)


def _along_axis_index(shape: tuple[int, ...], positions: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """The advanced index that reads ``positions`` along ``axis`` and every position on the other axes."""
    ones = (1,) * len(shape)
    return tuple(
        positions if dim == axis else np.arange(size).reshape((*ones[:dim], -1, *ones[dim + 1 :]))
        for dim, size in enumerate(shape)
    )


def _check_broadcast(name: str, shape: tuple[int, ...], positions: np.ndarray, axis: int) -> None:
    """numpy's along-axis functions need ``indices`` to broadcast against ``arr`` off ``axis``."""
    for dim, (size, count) in enumerate(zip(shape, positions.shape, strict=True)):
        if dim != axis and count not in (1, size) and size != 1:
            raise IndexError(
                f"{name}: indices of shape {positions.shape} do not broadcast against arr of shape {shape} "
                f"on axis {dim} ({count} != {size})"
            )


def _flat_or_axis(name: str, a: Any, axis: Any) -> tuple[Any, int, str]:
    """``a`` flattened when ``axis`` is None (numpy's convention), with the axis to work on as an int."""
    if axis is None:
        return np.reshape(a, -1), 0, "the flattened array"
    axis = normalize_axis_index(axis, np.ndim(a), msg_prefix=name)
    return a, axis, f"axis {axis}"


# -- gathers -----------------------------------------------------------------------------------------------
def _gather(x: Any, index: Any) -> Any:
    return x[index]


def _gather_vjp(g: Any, out: Any, x: Any, index: Any) -> Any:
    return scatter_add(g, index, np.shape(x))


def _gather_op(name: str, complex_rule: str = "holomorphic") -> Op:
    """``x[index]`` for an index that is always advanced, so the result is a copy, as numpy's are.

    A gather is linear, so complex values take the same VJP; sort and partition refuse them all the same,
    as numpy orders complex numbers lexicographically, which no gradient convention follows."""
    return Op(_gather, _gather_vjp, None, name=name, shape_only=(0,), complex_rule=complex_rule)


take_op = _gather_op("take")
take_along_axis_op = _gather_op("take_along_axis")
sort_op = _gather_op("sort", complex_rule="refused")
partition_op = _gather_op("partition", complex_rule="refused")
compress_op = _gather_op("compress")
extract_op = _gather_op("extract")


@implements(np.take)
def take(a: Any, indices: Any, axis: int | None = None, out: Any = None, mode: str = "raise") -> Any:
    """``np.take`` on tensors: a gather along ``axis`` (the flattened array for None); modes as numpy's.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> np.take(x, [2, 2, 0]).sum().backward()
    >>> x.grad
    array([1., 0., 2.])
    """
    mode = _check_mode("take", mode)
    a = _operand(a)
    indices = _integer_indices("take", indices, allow_bool=True, error=TypeError)
    if np.ndim(a) == 0 and axis is not None:
        normalize_axis_index(axis, 1, msg_prefix="take")  # numpy reads a 0-d array along axis 0 as 1-d
        axis = None
    a, axis, where = _flat_or_axis("take", a, axis)
    positions = _in_range("take", indices, np.shape(a)[axis], where, mode)
    return take_op(a, (slice(None),) * axis + (positions,))


@implements(np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: int | None = -1) -> Any:
    """``np.take_along_axis`` on tensors: a gather of ``indices`` along ``axis`` (flattened for None).

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([[3.0, 1.0], [0.0, 2.0]], requires_grad=True)
    >>> np.take_along_axis(x, np.array([[0], [1]]), axis=1).sum().backward()
    >>> x.grad
    array([[1., 0.],
           [0., 1.]])
    """
    name = "take_along_axis"
    arr = _operand(arr)
    indices = _integer_indices(name, indices, allow_bool=False, error=IndexError)
    if axis is None and indices.ndim != 1:
        raise ValueError(f"{name}: with axis=None, indices must be 1-d, got shape {indices.shape}")
    arr, axis, where = _flat_or_axis(name, arr, axis)
    shape = np.shape(arr)
    if indices.ndim != len(shape):
        raise ValueError(
            f"{name}: indices and arr must have the same number of dimensions, got indices of shape "
            f"{indices.shape} and arr of shape {shape}"
        )
    positions = _in_range(name, indices, shape[axis], where)
    _check_broadcast(name, shape, positions, axis)
    return take_along_axis_op(arr, _along_axis_index(shape, positions, axis))


# -- put_along_axis: an in-place write ---------------------------------------------------------------------
def _put(x: Any, index: Any, values: Any) -> Any:
    result = x.copy()
    result[index] = values
    return result


def _put_vjp_target(g: Any, out: Any, x: Any, index: Any, values: Any) -> Any:
    kept = np.ones(np.shape(x), dtype=bool)
    kept[index] = False
    return g * kept


def _put_vjp_values(g: Any, out: Any, x: Any, index: Any, values: Any) -> Any:
    cotangent = g[index]
    # Where an index repeats, numpy keeps the value written last: only that value receives the cotangent.
    order = np.arange(np.size(cotangent)).reshape(np.shape(cotangent))
    winner = np.full(np.shape(x), -1)
    winner[index] = order
    cotangent = cotangent * (winner[index] == order)
    extra = np.ndim(values) - np.ndim(cotangent)
    if extra > 0:  # numpy also takes values with extra leading axes of length one
        cotangent = np.reshape(cotangent, (1,) * extra + np.shape(cotangent))
    return cotangent


put_along_axis_op = Op(
    _put,
    _put_vjp_target,
    None,
    _put_vjp_values,
    name="put_along_axis",
    shape_only=(0, 2),
    complex_rule="holomorphic",
)


@implements(np.put_along_axis)
def put_along_axis(arr: Any, indices: Any, values: Any, axis: int | None) -> None:
    """``np.put_along_axis`` on tensors: writes ``values`` into ``arr`` in place, recorded when recording.

    As with ``t[index] = v``, the positions written lose their gradient to ``arr``'s earlier history and
    pass it to ``values`` (to the value written last, where an index repeats). Returns None, as numpy does.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> v = tape.tensor([5.0], requires_grad=True)
    >>> y = x * 2.0
    >>> np.put_along_axis(y, np.array([1]), v, axis=0)
    >>> y.sum().backward()
    >>> x.grad, v.grad
    (array([2., 0., 2.]), array([1.]))
    """
    name = "put_along_axis"
    if not isinstance(arr, Tensor):
        if isinstance(values, Tensor) and values.requires_grad and state.grad_enabled:
            raise TypeError(
                f"{name}: cannot record writing values that require grad into a plain numpy array; make "
                "arr a tensor (tape.tensor(arr)) to differentiate through the write"
            )
        np.put_along_axis(arr, _data(indices), _data(values), axis)
        return None
    indices = _integer_indices(name, indices, allow_bool=False, error=IndexError)
    shape = arr.shape
    if axis is None:
        if indices.ndim != 1:
            raise ValueError(f"{name}: with axis=None, indices must be 1-d, got shape {indices.shape}")
        if not shape:
            raise ValueError(
                f"{name}: with axis=None, arr must have at least one dimension, got a 0-d tensor"
            )
        positions = _in_range(name, indices, arr.size, "the flattened array")
        index = np.unravel_index(positions, shape)
    else:
        axis = normalize_axis_index(axis, len(shape), msg_prefix=name)
        if indices.ndim != len(shape):
            raise ValueError(
                f"{name}: indices and arr must have the same number of dimensions, got indices of shape "
                f"{indices.shape} and arr of shape {shape}"
            )
        positions = _in_range(name, indices, shape[axis], f"axis {axis}")
        _check_broadcast(name, shape, positions, axis)
        index = _along_axis_index(shape, positions, axis)
    apply_in_place(put_along_axis_op, arr, index, values)
    return None


# -- orderings ---------------------------------------------------------------------------------------------
def _check_kind(name: str, kind: Any, allowed: Sequence[Any], order: Any) -> None:
    if order is not None:
        raise TypeError(
            f"numpy.{name}: order= (ordering structured arrays by field) is not supported on tensors"
        )
    if kind not in allowed:
        raise ValueError(f"{name}: kind must be one of {', '.join(map(repr, allowed))}, got {kind!r}")


@implements(np.sort)
def sort(
    a: Any, axis: int | None = -1, kind: str | None = None, order: Any = None, *, stable: Any = None
) -> Any:
    """``np.sort`` on tensors. Tied elements take their cotangents in numpy's stable order.

    The VJP sends each output position's cotangent back to the element sorted there; among equal
    elements, the first in the input goes to the first of their output positions (``kind="stable"``).

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([3.0, 1.0, 2.0], requires_grad=True)
    >>> np.sort(x).backward(np.array([10.0, 20.0, 30.0]))
    >>> x.grad
    array([30., 10., 20.])
    """
    _check_kind("sort", kind, _SORT_KINDS, order)
    a, axis, _ = _flat_or_axis("sort", _operand(a), axis)
    permutation = np.argsort(_data(a), axis=axis, kind="stable")
    return sort_op(a, _along_axis_index(np.shape(a), permutation, axis))


@implements(np.partition)
def partition(a: Any, kth: Any, axis: int | None = -1, kind: str = "introselect", order: Any = None) -> Any:
    """``np.partition`` on tensors: numpy's arrangement, each cotangent sent back to the element placed there.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([3.0, 1.0, 2.0], requires_grad=True)
    >>> np.partition(x, 0)[0].backward()
    >>> x.grad
    array([0., 1., 0.])
    """
    _check_kind("partition", kind, ("introselect",), order)
    a, axis, _ = _flat_or_axis("partition", _operand(a), axis)
    values = _data(a)
    arranged = np.partition(values, _data(kth), axis=axis)
    # The element at each output position: the r-th smallest of the output is the r-th smallest of the
    # input (ties paired in stable order), which pairs every position with one element, as a bijection.
    by_value_in = np.argsort(values, axis=axis, kind="stable")
    by_value_out = np.argsort(arranged, axis=axis, kind="stable")
    rank_out = np.argsort(by_value_out, axis=axis, kind="stable")
    source = np.take_along_axis(by_value_in, rank_out, axis=axis)
    return partition_op(a, _along_axis_index(np.shape(a), source, axis))


# -- choosing among arrays ---------------------------------------------------------------------------------
def _choose(chosen: Any, *choices: Any) -> Any:
    return np.choose(chosen, choices)


def _choose_backward(g: Any, out: Any, chosen: Any, *choices: Any) -> list[Any]:
    return [None, *(np.where(chosen == k, g, 0) for k in range(len(choices)))]


choose_op = Op(_choose, backward=_choose_backward, name="choose", complex_rule="holomorphic")


@implements(np.choose)
def choose(a: Any, choices: Any, out: Any = None, mode: str = "raise") -> Any:
    """``np.choose`` on tensors: each output element comes from the choice ``a`` names; only it gets gradient.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> y = tape.tensor([3.0, 4.0], requires_grad=True)
    >>> np.choose([1, 0], [x, y]).sum().backward()
    >>> x.grad, y.grad
    (array([0., 1.]), array([1., 0.]))
    """
    mode = _check_mode("choose", mode)
    # One array (or tensor) is read along its first axis, as numpy does; python scalars stay as given so
    # that numpy promotes them as it would.
    choices = list(choices)
    if not choices:
        raise ValueError("choose: choices must hold at least one array, got none")
    chosen = _integer_indices("choose", a, allow_bool=True, error=TypeError)
    count = len(choices)
    if mode == "raise":
        bad = (chosen < 0) | (chosen >= count)
        if np.any(bad):
            raise ValueError(f"choose: index {chosen[bad].flat[0]} is out of bounds for {count} choices")
    chosen = _in_range("choose", chosen, count, "the choices", mode)
    return choose_op(chosen, *choices)


def _select(chosen: Any, default: Any, *choices: Any, conditions: tuple[Any, ...] = ()) -> Any:
    return np.select(list(conditions), list(choices), default)


def _select_backward(
    g: Any, out: Any, chosen: Any, default: Any, *choices: Any, conditions: Any = ()
) -> list:
    count = len(choices)
    return [None, np.where(chosen == count, g, 0), *(np.where(chosen == k, g, 0) for k in range(count))]


select_op = Op(_select, backward=_select_backward, name="select", complex_rule="holomorphic")


@implements(np.select)
def select(condlist: Sequence[Any], choicelist: Sequence[Any], default: Any = 0) -> Any:
    """``np.select`` on tensors: the first true condition picks the choice; gradient to the chosen elements.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, -2.0], requires_grad=True)
    >>> np.select([x.data > 0], [x * 3.0], default=x).sum().backward()
    >>> x.grad
    array([3., 1.])
    """
    conditions = tuple(np.asarray(_data(condition)) for condition in condlist)
    choices = list(choicelist)
    try:
        # Which choice each element comes from (len(choices) for the default), with numpy's own checks.
        chosen = np.select(list(conditions), list(range(len(choices))), len(choices))
    except (TypeError, ValueError) as error:
        add_note(error, "select: numpy's own check of condlist and choicelist failed")
        raise
    return select_op(chosen, default, *choices, conditions=conditions)


# -- masks -------------------------------------------------------------------------------------------------
def _condition_values(name: str, condition: Any) -> np.ndarray:
    """The values of a mask: taken out of the tape, so refused while ``tape.compile`` records a function
    (a replay would select what the first call selected)."""
    if isinstance(condition, Tensor) and state.tracer is not None:
        state.tracer.refuse_exit(condition, f"np.{name}'s condition")
    return np.asarray(_data(condition))


@implements(np.compress)
def compress(condition: Any, a: Any, axis: int | None = None, out: Any = None) -> Any:
    """``np.compress`` on tensors: the slices along ``axis`` where ``condition`` is true.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> np.compress([False, True], x, axis=0).sum().backward()
    >>> x.grad
    array([[0., 0.],
           [1., 1.]])
    """
    condition = _condition_values("compress", condition)
    if condition.ndim != 1:
        raise ValueError(f"compress: condition must be 1-d, got shape {condition.shape}")
    a, axis, where = _flat_or_axis("compress", _operand(a), axis)
    size = np.shape(a)[axis]
    positions = np.flatnonzero(condition)
    if positions.size and positions[-1] >= size:
        # numpy accepts a longer condition only when its extra entries are false.
        raise IndexError(
            f"compress: condition of length {condition.size} selects index {positions[-1]}, but {where} has "
            f"length {size}"
        )
    return compress_op(a, (slice(None),) * axis + (positions,))


@implements(np.extract)
def extract(condition: Any, arr: Any) -> Any:
    """``np.extract`` on tensors: the elements of the flattened ``arr`` where the flattened condition is true.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True)
    >>> np.extract(x.data > 0, x).sum().backward()
    >>> x.grad
    array([[1., 0.],
           [0., 1.]])
    """
    condition = _condition_values("extract", condition)
    flat = np.reshape(_operand(arr), -1)
    size = np.shape(flat)[0]
    positions = np.flatnonzero(condition)
    if positions.size and positions[-1] >= size:
        raise IndexError(
            f"extract: condition of size {condition.size} selects index {positions[-1]}, but arr has "
            f"size {size}"
        )
    return extract_op(flat, (positions,))

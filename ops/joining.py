"""Joining and splitting arrays: concatenate, stack and their variants, split and its variants, with VJPs.

Every joining function (``np.concatenate``, ``np.stack``, ``np.hstack``, ``np.vstack``, ``np.dstack``,
``np.column_stack``, ``np.append``, each level of ``np.block``) is one op: its inputs, each given the
length-one axes the function adds (a new axis for ``stack``, ``atleast_2d`` for ``vstack``, ...),
concatenated along one axis. The VJP cuts the cotangent at the same offsets (basic slices; under
``create_graph``, one recorded ``np.split``) and gives each piece its input's shape back, so it reads no
input's values.

Every splitting function (``np.split``, ``np.array_split``, ``np.hsplit``, ``np.vsplit``, ``np.dsplit``,
``np.unstack``) is one op with one output per piece, and one record for all of them: the VJP concatenates
(or stacks) the pieces' cotangents, a piece that was not used counting as zeros. Backward is O(size of the
input) however many pieces there are, where one ``x[a:b]`` per piece would add a full-size scatter per
piece. The cost: the pieces are copies, not views as in numpy, so that writing into a piece in place can
never change the input (or another piece) behind the tape's back.

Tensors reach these functions inside a list, so each handler passes them to its op as separate positional
arguments (the only ones an op tracks) and keeps the list's structure for numpy. A nested list that holds
tensors, as in ``np.concatenate([[t1, t2], t3])``, is joined with a recorded ``np.stack`` first.

``np.array([t1, t2])`` cannot be recorded: ``np.array`` does not dispatch to ``__array_function__``, so
numpy reads each tensor's data through ``__array__`` and returns a plain ndarray with no gradient.
``np.stack([t1, t2])`` is the recorded way to build an array from tensors.

Numpy's out= is refused (by tape's dispatch, and here when given by position).
"""

from __future__ import annotations

import operator
from functools import reduce
from itertools import accumulate
from typing import Any

import numpy as np
from numpy.exceptions import AxisError

from tape.op import Op
from tape.registry import implements
from tape.tensor import Tensor

from .indexing import scatter_add

Shape = tuple[int, ...]

# The joining VJP reads only shapes (they travel in the op's keyword arguments), so an input changed in place
# after the join does not invalidate it. Op takes positions, not "all of them"; inputs past this count are
# version-checked as usual, which is only stricter.
_ALL_OPERANDS = tuple(range(64))


# -- joining ----------------------------------------------------------------------------------------------
def _join(
    *operands: Any,
    axis: int,
    shapes: tuple[Shape, ...],
    originals: tuple[Shape, ...],
    dtype: Any = None,
    casting: str = "same_kind",
) -> np.ndarray:
    parts = [
        x if shape == original else np.reshape(x, shape)
        for x, shape, original in zip(operands, shapes, originals, strict=True)
    ]
    return np.concatenate(parts, axis=axis, dtype=dtype, casting=casting)


def _join_backward(
    g: Any,
    out: Any,
    *operands: Any,
    axis: int,
    shapes: tuple[Shape, ...],
    originals: tuple[Shape, ...],
    dtype: Any = None,
    casting: str = "same_kind",
) -> list[Any]:
    stops = list(accumulate(shape[axis] for shape in shapes))
    if isinstance(g, Tensor):
        # Under create_graph: one recorded split, whose own VJP is one concatenate (slicing the tensor once
        # per input would give each input a full-size scatter in the next backward).
        pieces = np.split(g, stops[:-1], axis=axis)
    else:
        pieces = [
            g[_slicer(axis, stop - shape[axis], stop)] for shape, stop in zip(shapes, stops, strict=True)
        ]
    return [
        piece if shape == original else np.reshape(piece, original)
        for piece, shape, original in zip(pieces, shapes, originals, strict=True)
    ]


# Joining and splitting are linear, so complex values take the same VJPs.
def _joining_op(name: str) -> Op:
    return Op(_join, backward=_join_backward, name=name, shape_only=_ALL_OPERANDS, complex_rule="holomorphic")


_JOIN_OPS = {
    name: _joining_op(name)
    for name in ("concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "append", "block")
}


def _shape_of(x: Any) -> Shape:
    if isinstance(x, Tensor | np.ndarray):
        return x.shape
    return np.shape(x)


def _holds_tensor(x: Any) -> bool:
    if isinstance(x, Tensor):
        return True
    return isinstance(x, list | tuple) and any(_holds_tensor(item) for item in x)


def _as_operand(x: Any) -> Any:
    """``x``, or, for a nested list holding tensors, their recorded stack (numpy would drop the gradients)."""
    if isinstance(x, list | tuple) and _holds_tensor(x):
        return stack([_as_operand(item) for item in x])
    return x


def _operands(name: str, arrays: Any) -> list[Any]:
    """The arrays to join, from numpy's sequence argument (a tensor counts as the sequence of its rows)."""
    if isinstance(arrays, Tensor):
        if arrays.ndim == 0:
            raise TypeError(f"{name}: expected a sequence of arrays, got a 0-d tensor")
        return list(unstack(arrays))
    operands = [_as_operand(x) for x in arrays]
    if not operands:
        raise ValueError(f"{name}: needs at least one array to join, got an empty sequence")
    return operands


def _refuse_out(name: str, out: Any) -> None:
    if out is not None:
        raise TypeError(f"numpy.{name}: out= is not supported on tape tensors; assign the result instead")


def _normalize_axis(name: str, axis: Any, ndim: int, shape: Shape, result: bool = False) -> int:
    """``axis`` in [0, ndim), for arrays of ``shape`` (or, with ``result``, for a result of ``ndim`` axes
    made from inputs of ``shape``)."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name}: axis must be an int, got {type(axis).__name__}") from None
    if not -ndim <= axis < ndim:
        what = f"a result of {ndim} dimensions (inputs of shape {shape})" if result else f"shape {shape}"
        raise AxisError(f"{name}: axis {axis} is out of bounds for {what}")
    return axis % ndim


def _pair(shapes: tuple[Shape, ...], k: int) -> str:
    """The shapes of inputs 0 and ``k``, for an error message."""
    which = "" if len(shapes) == 2 else f" (inputs 0 and {k})"
    return f"{shapes[0]} and {shapes[k]}{which}"


def _joined(
    name: str,
    operands: list[Any],
    originals: tuple[Shape, ...],
    shapes: tuple[Shape, ...],
    axis: int,
    dtype: Any = None,
    casting: str = "same_kind",
) -> Any:
    """Check that ``operands`` (seen with ``shapes``) can be concatenated along ``axis``, then record it."""
    first = shapes[0]
    for k, shape in enumerate(shapes):
        if shape == first:
            continue
        if len(shape) != len(first):
            raise ValueError(
                f"{name}: all inputs must have the same number of dimensions, got shapes "
                f"{_pair(originals, k)}"
            )
        if any(size != other for a, (size, other) in enumerate(zip(shape, first, strict=True)) if a != axis):
            promoted = "" if shapes == originals else f", seen as {_pair(shapes, k)}"
            raise ValueError(
                f"{name}: all inputs must have the same shape except along axis {axis}, got shapes "
                f"{_pair(originals, k)}{promoted}"
            )
    if dtype is not None and np.dtype(dtype).kind not in "fc":
        for k, x in enumerate(operands):
            if isinstance(x, Tensor) and x.requires_grad:
                raise TypeError(
                    f"{name}: dtype={np.dtype(dtype).name} gives a result with no gradient, but input {k} "
                    "requires grad; give a floating-point or complex dtype, or detach the inputs"
                )
    join = _JOIN_OPS[name]
    return join(*operands, axis=axis, shapes=shapes, originals=originals, dtype=dtype, casting=casting)


@implements(np.concatenate)
def concatenate(
    arrays: Any, axis: int | None = 0, out: Any = None, *, dtype: Any = None, casting: str = "same_kind"
) -> Any:
    """``np.concatenate`` on tensors: one record, whose VJP cuts the cotangent at the inputs' offsets.

    ``axis=None`` joins the flattened inputs. ``dtype=`` and ``casting=`` behave as in numpy; a
    floating-point ``dtype`` casts the result, and each gradient comes back in its input's own dtype.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> (np.concatenate([a, [3.0]]) * [1.0, 2.0, 3.0]).sum().backward()
    >>> a.grad
    array([1., 2.])
    """
    _refuse_out("concatenate", out)
    operands = _operands("concatenate", arrays)
    originals = tuple(_shape_of(x) for x in operands)
    if axis is None:
        shapes = tuple((int(np.prod(shape)),) for shape in originals)
        return _joined("concatenate", operands, originals, shapes, 0, dtype, casting)
    for k, shape in enumerate(originals):
        if not shape:
            raise ValueError(
                f"concatenate: input {k} is zero-dimensional (shape ()), which cannot be joined along an "
                "axis; use np.stack, or axis=None to join the flattened inputs"
            )
    axis = _normalize_axis("concatenate", axis, len(originals[0]), originals[0])
    return _joined("concatenate", operands, originals, originals, axis, dtype, casting)


@implements(np.stack)
def stack(
    arrays: Any, axis: int = 0, out: Any = None, *, dtype: Any = None, casting: str = "same_kind"
) -> Any:
    """``np.stack`` on tensors: join arrays of one shape along a new axis (negative axes count from the end).

    This is the recorded way to build an array out of tensors (``np.array([t1, t2])`` returns plain data).

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> np.stack([a, a ** 2], axis=1).sum().backward()
    >>> a.grad
    array([3., 5.])
    """
    _refuse_out("stack", out)
    operands = _operands("stack", arrays)
    originals = tuple(_shape_of(x) for x in operands)
    for k, shape in enumerate(originals):
        if shape != originals[0]:
            raise ValueError(f"stack: all inputs must have the same shape, got shapes {_pair(originals, k)}")
    ndim = len(originals[0]) + 1
    axis = _normalize_axis("stack", axis, ndim, originals[0], result=True)
    shapes = tuple((*shape[:axis], 1, *shape[axis:]) for shape in originals)
    return _joined("stack", operands, originals, shapes, axis, dtype, casting)


def _at_least(shape: Shape, ndim: int) -> Shape:
    """The shape numpy's ``atleast_1d`` / ``atleast_2d`` give (a 1-D (n,) becomes (1, n))."""
    if len(shape) >= ndim:
        return shape
    return (1,) * (ndim - len(shape)) + shape


def _at_least_3d(shape: Shape) -> Shape:
    """The shape ``np.atleast_3d`` gives: (n,) becomes (1, n, 1) and (m, n) becomes (m, n, 1)."""
    if len(shape) == 0:
        return (1, 1, 1)
    if len(shape) == 1:
        return (1, shape[0], 1)
    if len(shape) == 2:
        return (*shape, 1)
    return shape


@implements(np.hstack)
def hstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    """``np.hstack`` on tensors: join along axis 1 (along axis 0 when the inputs are 1-D).

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.hstack([tape.tensor([1.0]), tape.tensor([2.0, 3.0])]).shape
    (3,)
    """
    operands = _operands("hstack", tup)
    originals = tuple(_shape_of(x) for x in operands)
    shapes = tuple(_at_least(shape, 1) for shape in originals)
    axis = 0 if len(shapes[0]) == 1 else 1
    return _joined("hstack", operands, originals, shapes, axis, dtype, casting)


@implements(np.vstack)
def vstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    """``np.vstack`` on tensors: join along axis 0, a 1-D input of length n counting as a row (1, n).

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.vstack([tape.tensor([1.0, 2.0]), tape.tensor([[3.0, 4.0]])]).shape
    (2, 2)
    """
    operands = _operands("vstack", tup)
    originals = tuple(_shape_of(x) for x in operands)
    shapes = tuple(_at_least(shape, 2) for shape in originals)
    return _joined("vstack", operands, originals, shapes, 0, dtype, casting)


@implements(np.dstack)
def dstack(tup: Any) -> Any:
    """``np.dstack`` on tensors: join along axis 2, inputs first made 3-D as ``np.atleast_3d`` does.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.dstack([tape.tensor([1.0, 2.0]), tape.tensor([3.0, 4.0])]).shape
    (1, 2, 2)
    """
    operands = _operands("dstack", tup)
    originals = tuple(_shape_of(x) for x in operands)
    shapes = tuple(_at_least_3d(shape) for shape in originals)
    return _joined("dstack", operands, originals, shapes, 2, None)


@implements(np.column_stack)
def column_stack(tup: Any) -> Any:
    """``np.column_stack`` on tensors: 1-D inputs become columns, then all are joined along axis 1.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.column_stack([tape.tensor([1.0, 2.0]), tape.tensor([[3.0], [4.0]])]).shape
    (2, 2)
    """
    operands = _operands("column_stack", tup)
    originals = tuple(_shape_of(x) for x in operands)
    shapes = tuple((*shape, 1) if len(shape) == 1 else _at_least(shape, 2) for shape in originals)
    return _joined("column_stack", operands, originals, shapes, 1, None)


@implements(np.append)
def append(arr: Any, values: Any, axis: int | None = None) -> Any:
    """``np.append`` on tensors: ``values`` after ``arr``, both flattened when ``axis`` is None.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.append(tape.tensor([[1.0, 2.0]]), 3.0).shape
    (3,)
    """
    operands = [_as_operand(arr), _as_operand(values)]
    originals = tuple(_shape_of(x) for x in operands)
    if axis is None:
        shapes = tuple((int(np.prod(shape)),) for shape in originals)
        return _joined("append", operands, originals, shapes, 0)
    if not originals[0] or not originals[1]:
        raise ValueError(
            f"append: zero-dimensional arrays cannot be appended along an axis, got shapes {originals[0]} "
            f"and {originals[1]}; use axis=None"
        )
    axis = _normalize_axis("append", axis, len(originals[0]), originals[0])
    return _joined("append", operands, originals, originals, axis)


def _block_depth(arrays: Any, where: str) -> int:
    """How deeply ``arrays`` nests lists, checked to be the same everywhere, as numpy's block requires."""
    if isinstance(arrays, tuple):
        raise TypeError(f"block: {where} is a tuple; only lists arrange blocks")
    if not isinstance(arrays, list):
        return 0
    if not arrays:
        raise ValueError(f"block: {where} is an empty list; lists cannot be empty")
    depths = [_block_depth(item, f"{where}[{k}]") for k, item in enumerate(arrays)]
    for k, depth in enumerate(depths):
        if depth != depths[0]:
            raise ValueError(
                f"block: lists must nest to the same depth everywhere, but {where}[0] has depth {depths[0]} "
                f"and {where}[{k}] has depth {depth}"
            )
    return depths[0] + 1


def _block_leaves(arrays: Any) -> list[Any]:
    if isinstance(arrays, list):
        return [leaf for item in arrays for leaf in _block_leaves(item)]
    return [arrays]


@implements(np.block)
def block(arrays: Any) -> Any:
    """``np.block`` on tensors: the innermost lists join along the last axis, the next ones along the one
    before, and so on; one record per list.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor(np.ones((2, 2)), requires_grad=True)
    >>> np.block([[a, np.zeros((2, 1))], [np.zeros((1, 2)), 1.0]]).shape
    (3, 3)
    """
    depth = _block_depth(arrays, "arrays")
    if depth == 0:
        return np.copy(arrays)
    ndim = max(depth, *(len(_shape_of(leaf)) for leaf in _block_leaves(arrays)))

    def assemble(blocks: list[Any], level: int) -> Any:
        if level == depth - 1:
            operands = list(blocks)
            originals = tuple(_shape_of(x) for x in operands)
            shapes = tuple(_at_least(shape, ndim) for shape in originals)
        else:
            operands = [assemble(item, level + 1) for item in blocks]
            originals = shapes = tuple(_shape_of(x) for x in operands)
        return _joined("block", operands, originals, shapes, ndim - depth + level)

    return assemble(arrays, 0)


# -- splitting --------------------------------------------------------------------------------------------
def _slicer(axis: int, start: int, stop: int) -> tuple[slice, ...]:
    return (slice(None),) * axis + (slice(start, stop),)


def _split(x: Any, *, bounds: tuple[tuple[int, int], ...], axis: int, shape: Shape) -> tuple[Any, ...]:
    return tuple(x[_slicer(axis, start, stop)].copy() for start, stop in bounds)


def _split_backward(
    g: tuple[Any, ...], out: Any, x: Any, *, bounds: tuple[tuple[int, int], ...], axis: int, shape: Shape
) -> list[Any]:
    starts = [start for start, _ in bounds]
    stops = [stop for _, stop in bounds]
    if starts[0] == 0 and stops[-1] == shape[axis] and starts[1:] == stops[:-1]:
        return [np.concatenate(g, axis=axis)]
    # Split points out of order make pieces overlap: add each piece's cotangent into place. (The pieces
    # still cover the whole axis, so at least one is not empty.)
    placed = [
        scatter_add(piece, _slicer(axis, start, stop), shape)
        for piece, (start, stop) in zip(g, bounds, strict=True)
        if stop > start
    ]
    return [reduce(operator.add, placed)]


_SPLIT_OPS = {
    name: Op(_split, backward=_split_backward, name=name, shape_only=(0,), complex_rule="holomorphic")
    for name in ("split", "array_split", "hsplit", "vsplit", "dsplit")
}


def _piece_bounds(
    name: str, indices_or_sections: Any, length: int, equal: bool
) -> tuple[tuple[int, int], ...]:
    """(start, stop) of each piece along the axis, 0 <= start <= stop <= length, as numpy slices them."""
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = indices_or_sections._data
    try:
        sections = operator.index(indices_or_sections)
    except TypeError:
        sections = None
    if sections is None:
        try:
            points = [operator.index(point) for point in indices_or_sections]
        except TypeError:
            raise TypeError(
                f"{name}: indices_or_sections must be an int or a sequence of ints, got "
                f"{indices_or_sections!r}"
            ) from None
        bounds = []
        for start, stop in zip([0, *points], [*points, length], strict=True):
            first, last, _ = slice(start, stop).indices(length)
            bounds.append((first, max(first, last)))
        return tuple(bounds)
    if sections <= 0:
        raise ValueError(f"{name}: the number of sections must be positive, got {sections}")
    if equal and length % sections:
        raise ValueError(
            f"{name}: an axis of length {length} cannot be split into {sections} equal sections; give the "
            "split points, or use np.array_split for sections of unequal length"
        )
    size, extra = divmod(length, sections)
    stops = list(accumulate([size + 1] * extra + [size] * (sections - extra)))
    return tuple(zip([0, *stops[:-1]], stops, strict=True))


def _split_along(name: str, ary: Any, indices_or_sections: Any, axis: Any, equal: bool) -> list[Any]:
    ary = _as_operand(ary)
    shape = _shape_of(ary)
    if not shape:
        raise ValueError(f"{name}: cannot split a zero-dimensional array (shape ())")
    axis = _normalize_axis(name, axis, len(shape), shape)
    bounds = _piece_bounds(name, indices_or_sections, shape[axis], equal)
    return list(_SPLIT_OPS[name](ary, bounds=bounds, axis=axis, shape=shape))


@implements(np.split)
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """``np.split`` on tensors: a list of pieces (copies), one record for all of them.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor(np.arange(6.0), requires_grad=True)
    >>> first, rest = np.split(x, [2])
    >>> (first * 10).sum().backward()
    >>> x.grad
    array([10., 10.,  0.,  0.,  0.,  0.])
    """
    return _split_along("split", ary, indices_or_sections, axis, equal=True)


@implements(np.array_split)
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """``np.array_split`` on tensors: as ``split``, but n sections need not divide the axis evenly.

    Examples
    --------
    >>> import numpy as np, tape
    >>> [piece.shape for piece in np.array_split(tape.tensor(np.arange(5.0)), 2)]
    [(3,), (2,)]
    """
    return _split_along("array_split", ary, indices_or_sections, axis, equal=False)


def _split_needing(name: str, ary: Any, indices_or_sections: Any, ndim: int, axis: int) -> list[Any]:
    shape = _shape_of(_as_operand(ary))
    if len(shape) < ndim:
        plural = "s" if ndim > 1 else ""
        raise ValueError(f"{name}: needs an array of at least {ndim} dimension{plural}, got shape {shape}")
    return _split_along(name, ary, indices_or_sections, axis, equal=True)


@implements(np.hsplit)
def hsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """``np.hsplit`` on tensors: split along axis 1 (axis 0 for a 1-D array).

    Examples
    --------
    >>> import numpy as np, tape
    >>> [piece.shape for piece in np.hsplit(tape.tensor(np.ones((2, 4))), 2)]
    [(2, 2), (2, 2)]
    """
    axis = 1 if len(_shape_of(_as_operand(ary))) > 1 else 0
    return _split_needing("hsplit", ary, indices_or_sections, 1, axis)


@implements(np.vsplit)
def vsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """``np.vsplit`` on tensors: split an array of 2 or more dimensions along axis 0.

    Examples
    --------
    >>> import numpy as np, tape
    >>> [piece.shape for piece in np.vsplit(tape.tensor(np.ones((4, 2))), [1])]
    [(1, 2), (3, 2)]
    """
    return _split_needing("vsplit", ary, indices_or_sections, 2, 0)


@implements(np.dsplit)
def dsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """``np.dsplit`` on tensors: split an array of 3 or more dimensions along axis 2.

    Examples
    --------
    >>> import numpy as np, tape
    >>> [piece.shape for piece in np.dsplit(tape.tensor(np.ones((1, 2, 4))), 2)]
    [(1, 2, 2), (1, 2, 2)]
    """
    return _split_needing("dsplit", ary, indices_or_sections, 3, 2)


def _unstack_forward(x: Any, *, axis: int) -> tuple[Any, ...]:
    lead = (slice(None),) * axis
    return tuple(x[(*lead, k)].copy() for k in range(x.shape[axis]))


def _unstack_backward(g: tuple[Any, ...], out: Any, x: Any, *, axis: int) -> list[Any]:
    return [np.stack(g, axis=axis)]


unstack_op = Op(
    _unstack_forward, backward=_unstack_backward, name="unstack", shape_only=(0,), complex_rule="holomorphic"
)


def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    """``np.unstack`` on tensors: the slices along ``axis`` (copies), one record for all of them.

    Examples
    --------
    >>> import numpy as np, tape
    >>> [row.shape for row in np.unstack(tape.tensor(np.ones((2, 3))), axis=1)]
    [(2,), (2,), (2,)]
    """
    x = _as_operand(x)
    shape = _shape_of(x)
    if not shape:
        raise ValueError("unstack: needs an array of at least 1 dimension, got shape ()")
    axis = _normalize_axis("unstack", axis, len(shape), shape)
    if shape[axis] == 0:
        return ()
    return unstack_op(x, axis=axis)


if hasattr(np, "unstack"):  # numpy 2.1 and later
    implements(np.unstack)(unstack)

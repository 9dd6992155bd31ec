"""Rearranging ops: tile, repeat, flip, roll, rot90, rollaxis, pad, diagonals (diag, diagflat, diagonal,
trace), triangles (triu, tril) and atleast_1d/2d/3d; each beside its VJP.

Every op here copies, moves or drops elements without combining them, so each VJP sends every output
cell's cotangent back to the input cell it came from, summing where one input cell fed several outputs
(tile, repeat, edge and reflect padding). VJPs use only registered numpy functions and ops whose own
VJPs are known (``scatter_add``; ``unpad``, the transpose of padding, whose VJP is ``pad``), never
in-place writes, so they are differentiable again under ``create_graph``. Every op here is linear, so
complex values take the same VJPs (``complex_rule="holomorphic"``). The forwards that numpy computes
as views (flip, rot90, rollaxis, diagonal, atleast_*d) return the same views here, marked ``view=True``; the
others return new arrays, as numpy does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.op import Op, linear_jvp
from tape.registry import implements
from tape.tensor import Tensor

from .indexing import scatter_add


def _as_tuple(value: Any) -> tuple[Any, ...]:
    """An int or a sequence of ints as a tuple of ints (numpy's convention for ``reps`` and pad widths)."""
    if isinstance(value, int | np.integer):
        return (int(value),)
    return tuple(int(item) for item in np.ravel(value))


# -- tile ------------------------------------------------------------------------------------------------
def _tile(x: Any, reps: Any) -> Any:
    return np.tile(x, reps)


def _tile_vjp(g: Any, out: Any, x: Any, reps: Any) -> Any:
    shape = np.shape(x)
    reps = _as_tuple(reps)
    ndim = max(len(shape), len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    padded_shape = (1,) * (ndim - len(shape)) + shape
    # Each output axis of length r * n is r copies of the input axis: split it as (r, n), sum the copies.
    interleaved = [size for pair in zip(reps, padded_shape, strict=True) for size in pair]
    copies = np.reshape(g, interleaved)
    return np.reshape(np.sum(copies, axis=tuple(range(0, 2 * ndim, 2))), shape)


tile_op = Op(_tile, _tile_vjp, name="tile", shape_only=(0,), complex_rule="holomorphic")


@implements(np.tile)
def tile(A: Any, reps: Any) -> Any:  # noqa: N803 (numpy's argument name)
    """``np.tile`` on tensors: ``reps`` an int or a tuple, longer or shorter than the array's axes.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> np.sum(np.tile(x, (2, 3))).backward()
    >>> x.grad
    array([6., 6.])
    """
    return tile_op(A, reps)


# -- repeat ----------------------------------------------------------------------------------------------
def _repeat(x: Any, repeats: Any, axis: Any = None) -> Any:
    counts = np.asarray(repeats)
    if counts.ndim > 1:
        raise ValueError(f"repeat: repeats must be an int or 1-D ints, got shape {counts.shape}")
    if counts.size not in (1, _repeated_length(np.shape(x), axis)):
        raise ValueError(
            f"repeat: {counts.size} repeats given for {_repeated_length(np.shape(x), axis)} elements along "
            f"axis {axis} of an array of shape {np.shape(x)}; give one repeat count, or one per element"
        )
    return np.repeat(x, repeats, axis=axis)


def _repeated_length(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None:
        return int(np.prod(shape))
    if not shape:  # numpy repeats a 0-d array along axis 0 or -1 as if it had one axis of length one
        return 1
    return shape[int(axis) % len(shape)]


# Sums along an axis at most this long add its slices one by one (numpy sums a short innermost axis slowly).
_SHORT_AXIS = 8


def _sum_along(values: Any, axis: int, keepdims: bool = False) -> Any:
    """``np.sum(values, axis)``, quicker when the axis is short; works on tensors too."""
    length = np.shape(values)[axis]
    if not 0 < length <= _SHORT_AXIS:
        return np.sum(values, axis=axis, keepdims=keepdims)
    leading = (slice(None),) * axis
    pick = (lambda k: slice(k, k + 1)) if keepdims else (lambda k: k)
    total = values[(*leading, pick(0))]
    for k in range(1, length):
        total = total + values[(*leading, pick(k))]
    return total


def _repeat_vjp(g: Any, out: Any, x: Any, repeats: Any, axis: Any = None) -> Any:
    shape = np.shape(x)
    if axis is None:
        source_shape, axis = (int(np.prod(shape)),), 0
    else:
        source_shape = shape or (1,)
        axis = int(axis) % len(source_shape)
    counts = np.asarray(repeats).astype(np.intp)  # an empty list of counts is float64
    if counts.size == 1:
        # Every element is repeated equally: split the axis as (n, count) and sum over the copies.
        count = int(counts.reshape(()))
        split = (*source_shape[:axis], source_shape[axis], count, *source_shape[axis + 1 :])
        return np.reshape(_sum_along(np.reshape(g, split), axis + 1), shape)
    source = np.repeat(np.arange(source_shape[axis]), counts)
    index = (slice(None),) * axis + (source,)
    return np.reshape(scatter_add(g, index, source_shape), shape)


repeat_op = Op(_repeat, _repeat_vjp, None, name="repeat", shape_only=(0,), complex_rule="holomorphic")


@implements(np.repeat)
def repeat(a: Any, repeats: Any, axis: Any = None) -> Any:
    """``np.repeat`` on tensors: ``repeats`` an int or one count per element, ``axis`` None or an int.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> np.sum(np.repeat(x, [3, 1])).backward()
    >>> x.grad
    array([3., 1.])
    """
    if isinstance(repeats, Tensor):
        repeats = repeats._data
    return repeat_op(a, repeats, axis=axis)


# -- flip, roll, rot90 ----------------------------------------------------------------------------------
def _flip(x: Any, axis: Any = None) -> Any:
    return np.flip(x, axis)


flip_op = Op(
    _flip,
    lambda g, out, x, axis=None: np.flip(g, axis),
    name="flip",
    view=True,
    shape_only=(0,),
    complex_rule="holomorphic",
)


@implements(np.flip)
def flip(m: Any, axis: Any = None) -> Any:
    """``np.flip`` on tensors (a view, as in numpy): ``axis`` None, an int or a tuple.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.flip(tape.tensor([1.0, 2.0, 3.0]))
    tensor([3., 2., 1.])
    """
    return flip_op(m, axis)


@implements(np.fliplr)
def fliplr(m: Any) -> Any:
    """``np.fliplr`` on tensors: reverse axis 1 of an array of at least 2 axes.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fliplr(tape.tensor([[1.0, 2.0]]))
    tensor([[2., 1.]])
    """
    if np.ndim(m) < 2:
        raise ValueError(f"fliplr: expected an array of at least 2 axes, got shape {np.shape(m)}")
    return flip_op(m, 1)


@implements(np.flipud)
def flipud(m: Any) -> Any:
    """``np.flipud`` on tensors: reverse axis 0 of an array of at least 1 axis.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.flipud(tape.tensor([1.0, 2.0]))
    tensor([2., 1.])
    """
    if np.ndim(m) < 1:
        raise ValueError(f"flipud: expected an array of at least 1 axis, got shape {np.shape(m)}")
    return flip_op(m, 0)


def _roll(x: Any, shift: Any, axis: Any = None) -> Any:
    return np.roll(x, shift, axis)


def _roll_vjp(g: Any, out: Any, x: Any, shift: Any, axis: Any = None) -> Any:
    return np.roll(g, np.negative(shift), axis)


roll_op = Op(_roll, _roll_vjp, name="roll", shape_only=(0,), complex_rule="holomorphic")


@implements(np.roll)
def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    """``np.roll`` on tensors: ``shift`` an int, or a tuple matching ``axis``; no axis rolls the flat array.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.roll(tape.tensor([1.0, 2.0, 3.0]), 1)
    tensor([3., 1., 2.])
    """
    return roll_op(a, shift, axis)


def _rot90(x: Any, k: int = 1, axes: Any = (0, 1)) -> Any:
    if np.ndim(x) < 2:
        raise ValueError(f"rot90: expected an array of at least 2 axes, got shape {np.shape(x)}")
    return np.rot90(x, k, axes)


rot90_op = Op(
    _rot90,
    lambda g, out, x, k=1, axes=(0, 1): np.rot90(g, -k, axes),
    name="rot90",
    view=True,
    shape_only=(0,),
    complex_rule="holomorphic",
)


@implements(np.rot90)
def rot90(m: Any, k: int = 1, axes: Any = (0, 1)) -> Any:
    """``np.rot90`` on tensors (a view, as in numpy): ``k`` quarter turns in the plane of ``axes``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.rot90(tape.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor([[2., 4.],
            [1., 3.]])
    """
    return rot90_op(m, k, axes)


def _rollaxis(x: Any, axis: int, start: int = 0) -> Any:
    return np.rollaxis(x, axis, start)


def _rolled_to(ndim: int, axis: int, start: int) -> tuple[int, int]:
    """Where ``np.rollaxis(x, axis, start)`` takes an axis from and puts it, as moveaxis's (source,
    destination); the arguments are those the forward accepted."""
    axis = axis % ndim
    start = start + ndim if start < 0 else start
    return axis, start - 1 if axis < start else start


def _rollaxis_vjp(g: Any, out: Any, x: Any, axis: int, start: int = 0) -> Any:
    source, destination = _rolled_to(np.ndim(x), axis, start)
    return np.moveaxis(g, destination, source)


rollaxis_op = Op(
    _rollaxis, _rollaxis_vjp, name="rollaxis", view=True, shape_only=(0,), complex_rule="holomorphic"
)


@implements(np.rollaxis)
def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    """``np.rollaxis`` on tensors (a view, as in numpy): ``axis`` moved to just before ``start``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.rollaxis(tape.zeros((2, 3, 4)), 2).shape
    (4, 2, 3)
    """
    return rollaxis_op(a, axis, start)


# -- pad -------------------------------------------------------------------------------------------------
#: One (before, after) pair of pad widths per axis.
Pairs = tuple[tuple[int, int], ...]
_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")
_NUMPY_PAD_MODES = (*_PAD_MODES, "linear_ramp", "maximum", "mean", "median", "minimum", "empty")


def pad_pairs(pad_width: Any, ndim: int) -> Pairs:
    """``pad_width`` in any of numpy's forms as one ``(before, after)`` pair per axis.

    Examples
    --------
    >>> pad_pairs(1, 2)
    ((1, 1), (1, 1))
    >>> pad_pairs((1, 2), 2)
    ((1, 2), (1, 2))
    >>> pad_pairs({1: (0, 3)}, 2)
    ((0, 0), (0, 3))
    """
    if isinstance(pad_width, dict):
        pairs = [(0, 0)] * ndim
        for axis, width in pad_width.items():
            both = _as_tuple(width)
            if len(both) not in (1, 2):
                raise ValueError(f"pad: pad_width[{axis}] must be an int or a (before, after) pair: {width}")
            pairs[axis] = (both[0], both[-1])
        widths = np.asarray(pairs, dtype=np.intp).reshape(ndim, 2)
    else:
        widths = np.asarray(pad_width)
        if widths.dtype.kind not in "iu":
            raise TypeError(f"pad: pad_width must be integers, got {pad_width!r} ({widths.dtype.name})")
        # numpy's rules: one number pads every side; two numbers (not as a column of two) are
        # (before, after) for every axis; otherwise one pair, or one number, per axis.
        if widths.size == 1 or (widths.size == 2 and widths.shape != (2, 1)):
            widths = widths.ravel()
        try:
            widths = np.broadcast_to(widths, (ndim, 2))
        except ValueError:
            raise ValueError(
                f"pad: pad_width {pad_width!r} (shape {widths.shape}) does not give a (before, after) pair "
                f"for each of the array's {ndim} axes"
            ) from None
    if np.any(widths < 0):
        raise ValueError(f"pad: pad widths can't be negative, got {pad_width!r}")
    return tuple((int(before), int(after)) for before, after in widths)


def _pad(x: Any, pairs: Pairs, mode: str, **options: Any) -> Any:
    # numpy reads an empty tuple of pairs (for a 0-d array) as floats; 0 pads nothing just the same.
    return np.pad(x, pairs or 0, mode, **options)


def _pad_vjp(g: Any, out: Any, x: Any, pairs: Pairs, mode: str, **options: Any) -> Any:
    if mode == "constant" or np.size(x) == 0:
        # The padded cells are constants; an empty input has no cell for any padded cell to come from.
        shape = np.shape(x)
        return g[tuple(slice(before, before + size) for (before, _), size in zip(pairs, shape, strict=True))]
    return unpad(g, pairs, mode, **options)


def _unpad(g: Any, pairs: Pairs, mode: str, **options: Any) -> Any:
    # Each axis is padded by a gather along that axis alone (a linear map for reflect_type="odd"), so the
    # transpose folds the padding back one axis at a time.
    for axis, (before, after) in enumerate(pairs):
        if before or after:
            g = _fold_axis(g, axis, before, after, mode, options)
    return g


def _fold_axis(g: np.ndarray, axis: int, before: int, after: int, mode: str, options: dict[str, Any]) -> Any:
    """The cotangent of one padded axis (``before + size + after`` long) summed back onto ``size`` cells."""
    size = g.shape[axis] - before - after
    if options.get("reflect_type", "even") == "odd":
        # Odd reflection is 2 * edge - mirror image: pad the identity to get the axis's matrix A (out = A x).
        matrix = np.pad(np.eye(size, dtype=g.dtype), ((before, after), (0, 0)), mode, **options)
        return np.moveaxis(np.moveaxis(g, axis, -1) @ matrix, -1, axis)
    # Padding the positions 0..size-1 the same way says which input cell each output cell copies.
    source = np.pad(np.arange(size), (before, after), mode, **options)
    leading = (slice(None),) * axis
    folded = g[(*leading, slice(before, before + size))].copy()
    for part in (slice(0, before), slice(before + size, before + size + after)):
        cells, values = source[part], g[(*leading, part)]
        if cells.size == 0:
            continue
        if np.all(cells == cells[0]):  # edge padding: every padded cell copies one cell
            folded[(*leading, slice(cells[0], cells[0] + 1))] += _sum_along(values, axis, keepdims=True)
        elif (run := _as_slice(cells)) is not None:  # padding no wider than the axis: a run of cells
            folded[(*leading, run)] += values
        else:
            np.add.at(folded, (*leading, cells), values)
    return folded


def _as_slice(cells: np.ndarray) -> slice | None:
    """``cells`` as a slice when they are consecutive (step 1 or -1), else None."""
    step = int(cells[1] - cells[0]) if cells.size > 1 else 1
    if abs(step) != 1 or np.any(np.diff(cells) != step):
        return None
    stop = int(cells[-1]) + step
    return slice(int(cells[0]), None if stop < 0 else stop, step)


def _unpad_vjp(h: Any, out: Any, g: Any, pairs: Pairs, mode: str, **options: Any) -> Any:
    # unpad is the transpose of padding, so its own transpose is padding again.
    return pad_op(h, pairs, mode, **options)


unpad = Op(_unpad, _unpad_vjp, name="unpad", shape_only=(0,), complex_rule="holomorphic")
pad_op = Op(_pad, _pad_vjp, name="pad", shape_only=(0,), complex_rule="holomorphic")


@implements(np.pad)
def pad(array: Any, pad_width: Any, mode: Any = "constant", **options: Any) -> Any:
    """``np.pad`` on tensors, in modes 'constant', 'edge', 'reflect', 'symmetric' and 'wrap'.

    ``pad_width`` takes every numpy form (an int, ``(before, after)``, one pair per axis, a dict from axis
    to width). ``constant_values`` and ``reflect_type`` are accepted; the constants are not differentiated.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> np.sum(np.pad(x, 2, mode="edge")).backward()
    >>> x.grad
    array([3., 1., 3.])
    """
    if callable(mode) or mode not in _PAD_MODES:
        if callable(mode) or mode in _NUMPY_PAD_MODES:
            shown = getattr(mode, "__name__", mode)
            raise TypeError(
                f"pad: mode {shown!r} is not supported on tape tensors (supported: "
                f"{', '.join(repr(m) for m in _PAD_MODES)}); detach the tensor to pad without a gradient"
            )
        raise ValueError(f"pad: mode {mode!r} is not a numpy padding mode")
    if "constant_values" in options:
        options["constant_values"] = _constant(options["constant_values"])
    return pad_op(array, pad_pairs(pad_width, np.ndim(array)), mode, **options)


def _constant(values: Any) -> Any:
    """``constant_values`` as plain numbers; a tensor that requires grad there is refused, not ignored."""
    if isinstance(values, Tensor):
        if values.requires_grad:
            raise TypeError(
                "pad: constant_values is not differentiated on tape tensors, but a tensor that requires "
                "grad was given; pass constant_values.detach(), or pad with zeros and add the constant"
            )
        return values._data
    if isinstance(values, tuple | list):
        return type(values)(_constant(item) for item in values)
    return values


# -- diagonals -------------------------------------------------------------------------------------------
def _diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    if np.ndim(x) < 2:
        raise ValueError(f"diagonal: expected an array of at least 2 axes, got shape {np.shape(x)}")
    return np.diagonal(x, offset, axis1, axis2)


def _place_on_diagonal(g: Any, shape: tuple[int, ...], offset: int, axis1: int, axis2: int) -> Any:
    """Zeros of ``shape`` with ``g`` (batch axes, then the diagonal) written on the ``offset`` diagonal."""
    axis1, axis2 = axis1 % len(shape), axis2 % len(shape)
    length = np.shape(g)[-1]
    rows = np.arange(length) + max(-offset, 0)
    columns = np.arange(length) + max(offset, 0)
    batch = tuple(size for axis, size in enumerate(shape) if axis not in (axis1, axis2))
    placed = scatter_add(g, (Ellipsis, rows, columns), (*batch, shape[axis1], shape[axis2]))
    return np.moveaxis(placed, (-2, -1), (axis1, axis2))


def _diagonal_vjp(g: Any, out: Any, x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    return _place_on_diagonal(g, np.shape(x), offset, axis1, axis2)


# numpy's diagonal is a read-only view of its input; so is this one (writing into it raises, as in numpy).
diagonal_op = Op(
    _diagonal, _diagonal_vjp, name="diagonal", view=True, shape_only=(0,), complex_rule="holomorphic"
)


@implements(np.diagonal)
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """``np.diagonal`` on tensors: a read-only view, as in numpy.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.diagonal(tape.tensor([[1.0, 2.0], [3.0, 4.0]]), 1)
    tensor([2.])
    """
    return diagonal_op(a, offset, axis1, axis2)


def _trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None) -> Any:
    if np.ndim(x) < 2:
        raise ValueError(f"trace: expected an array of at least 2 axes, got shape {np.shape(x)}")
    return np.trace(x, offset, axis1, axis2, dtype)


def _trace_vjp(
    g: Any, out: Any, x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None
) -> Any:
    shape = np.shape(x)
    axis1, axis2 = axis1 % len(shape), axis2 % len(shape)
    on_diagonal = np.eye(shape[axis1], shape[axis2], offset, dtype=g.dtype)
    return np.moveaxis(np.expand_dims(g, (-2, -1)) * on_diagonal, (-2, -1), (axis1, axis2))


trace_op = Op(_trace, _trace_vjp, name="trace", shape_only=(0,), complex_rule="holomorphic")


@implements(np.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None, out: Any = None) -> Any:
    """``np.trace`` on tensors: the sum along a diagonal of the ``axis1``, ``axis2`` planes.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> np.trace(x).backward()
    >>> x.grad
    array([[1., 0.],
           [0., 1.]])
    """
    if out is not None:
        raise TypeError("numpy.trace: out= is not supported on tape tensors; assign the result instead")
    return trace_op(a, offset, axis1, axis2, dtype)


def _diag_of_vector(v: Any, k: int = 0) -> Any:
    return np.diag(v, k)


diag_of_vector = Op(
    _diag_of_vector,
    lambda g, out, v, k=0: np.diagonal(g, k),
    name="diag",
    shape_only=(0,),
    complex_rule="holomorphic",
)
diag_of_matrix = Op(
    _diagonal, _diagonal_vjp, name="diag", view=True, shape_only=(0,), complex_rule="holomorphic"
)


@implements(np.diag)
def diag(v: Any, k: int = 0) -> Any:
    """``np.diag`` on tensors: a 1-D array becomes a 2-D array with it on diagonal ``k``; a 2-D array gives
    its diagonal ``k`` (a read-only view, as in numpy).

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.diag(tape.tensor([1.0, 2.0]))
    tensor([[1., 0.],
            [0., 2.]])
    """
    ndim = np.ndim(v)
    if ndim == 1:
        return diag_of_vector(v, k)
    if ndim == 2:
        return diag_of_matrix(v, k)
    raise ValueError(f"diag: expected a 1-D or 2-D array, got shape {np.shape(v)}")


def _diagflat(v: Any, k: int = 0) -> Any:
    return np.diagflat(v, k)


diagflat_op = Op(
    _diagflat,
    lambda g, out, v, k=0: np.reshape(np.diagonal(g, k), np.shape(v)),
    name="diagflat",
    shape_only=(0,),
    complex_rule="holomorphic",
)


@implements(np.diagflat)
def diagflat(v: Any, k: int = 0) -> Any:
    """``np.diagflat`` on tensors: the flattened input on diagonal ``k`` of a square 2-D array.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.diagflat(tape.tensor([[1.0], [2.0]]), 1)
    tensor([[0., 1., 0.],
            [0., 0., 2.],
            [0., 0., 0.]])
    """
    return diagflat_op(v, k)


# -- triangles -------------------------------------------------------------------------------------------
def _triangle_mask(shape: tuple[int, ...], k: int, upper: bool) -> np.ndarray:
    """numpy's mask for triu/tril over the last two axes (a 1-D input of length n is an n x n matrix)."""
    if upper:
        return ~np.tri(*shape[-2:], k=k - 1, dtype=bool)
    return np.tri(*shape[-2:], k=k, dtype=bool)


def _check_not_0d(name: str, x: Any) -> None:
    if np.ndim(x) < 1:
        raise ValueError(f"{name}: expected an array of at least 1 axis, got shape {np.shape(x)}")


def _triu(x: Any, k: int = 0) -> Any:
    _check_not_0d("triu", x)
    return np.triu(x, k)


def _tril(x: Any, k: int = 0) -> Any:
    _check_not_0d("tril", x)
    return np.tril(x, k)


triu_op = Op(
    _triu,
    lambda g, out, x, k=0: np.where(_triangle_mask(np.shape(x), k, upper=True), g, 0),
    name="triu",
    shape_only=(0,),
    complex_rule="holomorphic",
)
tril_op = Op(
    _tril,
    lambda g, out, x, k=0: np.where(_triangle_mask(np.shape(x), k, upper=False), g, 0),
    name="tril",
    shape_only=(0,),
    complex_rule="holomorphic",
)


@implements(np.triu)
def triu(m: Any, k: int = 0) -> Any:
    """``np.triu`` on tensors: zeros below diagonal ``k`` of the last two axes.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.triu(tape.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor([[1., 2.],
            [0., 4.]])
    """
    return triu_op(m, k)


@implements(np.tril)
def tril(m: Any, k: int = 0) -> Any:
    """``np.tril`` on tensors: zeros above diagonal ``k`` of the last two axes.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.tril(tape.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor([[1., 0.],
            [3., 4.]])
    """
    return tril_op(m, k)


# -- atleast_1d, atleast_2d, atleast_3d ------------------------------------------------------------------
def _reshape_back(g: Any, out: Any, x: Any) -> Any:
    return np.reshape(g, np.shape(x))


atleast_1d_op = Op(
    np.atleast_1d, _reshape_back, name="atleast_1d", view=True, shape_only=(0,), complex_rule="holomorphic"
)
atleast_2d_op = Op(
    np.atleast_2d, _reshape_back, name="atleast_2d", view=True, shape_only=(0,), complex_rule="holomorphic"
)
atleast_3d_op = Op(
    np.atleast_3d, _reshape_back, name="atleast_3d", view=True, shape_only=(0,), complex_rule="holomorphic"
)


def _each(op: Op, *arys: Any) -> Any:
    results = tuple(op(array) for array in arys)
    return results[0] if len(results) == 1 else results


@implements(np.atleast_1d)
def atleast_1d(*arys: Any) -> Any:
    """``np.atleast_1d`` on tensors: one array gives one result, several give a tuple, as in numpy.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.atleast_1d(tape.tensor(1.0)).shape
    (1,)
    """
    return _each(atleast_1d_op, *arys)


@implements(np.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    """``np.atleast_2d`` on tensors: one array gives one result, several give a tuple, as in numpy.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.atleast_2d(tape.tensor([1.0, 2.0])).shape
    (1, 2)
    """
    return _each(atleast_2d_op, *arys)


@implements(np.atleast_3d)
def atleast_3d(*arys: Any) -> Any:
    """``np.atleast_3d`` on tensors: one array gives one result, several give a tuple, as in numpy.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.atleast_3d(tape.tensor([1.0, 2.0])).shape
    (1, 2, 1)
    """
    return _each(atleast_3d_op, *arys)


# Forward mode: each of these is linear in its first argument, so its JVP is the op on the tangent.
tile_op.defjvp(linear_jvp(tile_op.forward))
repeat_op.defjvp(linear_jvp(repeat_op.forward))
flip_op.defjvp(linear_jvp(flip_op.forward))
roll_op.defjvp(linear_jvp(roll_op.forward))
diagonal_op.defjvp(linear_jvp(diagonal_op.forward))
trace_op.defjvp(linear_jvp(trace_op.forward))

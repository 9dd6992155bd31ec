"""Fitting a VJP's result to its input: undo broadcasting, cast to the input's dtype. The one place for it.

A VJP returns the cotangent of its input as the forward broadcast it (most often of the output's shape),
in whatever dtype its arithmetic gave; ``fit_cotangent`` sums it over the axes the input was broadcast
along and casts it to the input's dtype, so no op's VJP thinks about either. ``fit_rows`` does the same
for a batch of cotangents (a leading row axis, as ``jacobian`` sends), keeping a batch of identity rows
diagonal where it can.

Only broadcasting the forward can have done is undone (``_undoes_broadcasting`` says which). A cotangent
of any other shape is a mistake in the VJP and is refused, never summed to fit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .diagonal import DiagonalRows
from .tensor import Tensor


def fit_cotangent(cotangent: Any, args: Any, argnum: int, out: Any, op_name: str, create_graph: bool) -> Any:
    """Sum ``cotangent`` over the axes ``args[argnum]`` was broadcast along; cast it to that one's dtype.

    ``args`` are the op's arguments and ``out`` its output (a tuple of them for several outputs), as the
    record saved them: they tell which broadcasting the forward can have done.
    """
    value = args[argnum]
    if isinstance(cotangent, Tensor):
        if not create_graph:
            cotangent = cotangent._data
    elif not isinstance(cotangent, np.ndarray):
        cotangent = np.asarray(cotangent)
    if cotangent.shape != value.shape:
        cotangent = unbroadcast(cotangent, value.shape, args, out, op_name, argnum)
    if cotangent.dtype != value.dtype:
        if cotangent.dtype.kind == "c" and value.dtype.kind != "c":
            # A real input moves along the real axis only: its cotangent is the real part.
            cotangent = np.real(cotangent)
        cotangent = cotangent.astype(value.dtype)
    return cotangent


def unbroadcast(
    cotangent: Any,
    shape: tuple[int, ...],
    args: Any,
    out: Any,
    op_name: str,
    argnum: int,
    rows: int | None = None,
) -> Any:
    """Sum ``cotangent`` down to ``shape``, undoing broadcasting the op (``args`` to ``out``) can have done.

    With ``rows``, the cotangent and ``shape`` have a leading row axis that is kept as it is.
    """
    lead = 0 if rows is None else 1
    if not _undoes_broadcasting(cotangent.shape[lead:], shape[lead:], args, out):
        _refuse(cotangent.shape[lead:], shape[lead:], out, op_name, argnum, rows)
    extra = cotangent.ndim - len(shape)
    axes = tuple(range(lead, lead + extra)) + tuple(
        extra + axis
        for axis, size in enumerate(shape)
        if axis >= lead and size == 1 and cotangent.shape[extra + axis] != 1
    )
    if axes:
        cotangent = np.sum(cotangent, axis=axes, keepdims=True)
    return cotangent.reshape(shape)


def _undoes_broadcasting(
    cotangent_shape: tuple[int, ...], shape: tuple[int, ...], args: Any, out: Any
) -> bool:
    """Whether summing ``cotangent_shape`` down to ``shape`` undoes broadcasting from ``args`` to ``out``.

    ``shape`` must broadcast to ``cotangent_shape`` (numpy's rule), and the axes the sum runs over (those
    the argument lacks, or has length one along) must be explained by one of the ways numpy broadcasts:

    - against the other arguments, or into the output (elementwise ops, weights of ``average``): each
      such axis, unless of length one, has its length in the output or in an array argument, at the same
      place counted from the end;
    - over the leading loop axes of ``matmul``-like ops (``matvec``, ``solve``), whose core axes come
      last: such an axis may instead line up counted from the start, in an output or argument with more
      axes than the argument lacks (so an elementwise op's Jacobian, ``(n, n)`` for ``(n,)``, does not);
    - into part of the output (``x[1:3] = v``): the cotangent has no more elements than the output.

    Anything else (the Jacobian of an elementwise op where its product with ``g`` was due, an axis of a
    length the forward never saw) is a mistake in the VJP, and summing it would hide it.
    """
    ndim = len(cotangent_shape)
    lacking = ndim - len(shape)
    if lacking < 0:
        return False
    for axis, length in enumerate(shape):
        if length != 1 and length != cotangent_shape[lacking + axis]:
            return False
    summed = [
        (axis, length)
        for axis, length in enumerate(cotangent_shape)
        if length != 1 and (axis < lacking or shape[axis - lacking] == 1)
    ]
    if not summed:
        return True
    out_shapes = _output_shapes(out)
    if _lines_up(summed, ndim, lacking, out_shapes) or _lines_up(
        summed, ndim, lacking, out_shapes + _argument_shapes(args)
    ):
        return True
    return math.prod(cotangent_shape) <= max(math.prod(out_shape) for out_shape in out_shapes)


def _lines_up(summed: list[tuple[int, int]], ndim: int, lacking: int, shapes: list[tuple[int, ...]]) -> bool:
    """Whether each summed ``(axis, length)`` of an ``ndim``-axis cotangent has its length in one of
    ``shapes`` at the same place counted from the end, or from the start in one of more than ``lacking``
    axes."""
    return all(
        any(
            (ndim - axis <= len(seen) and seen[axis - ndim] == length)
            or (lacking < len(seen) and axis < len(seen) and seen[axis] == length)
            for seen in shapes
        )
        for axis, length in summed
    )


def _output_shapes(out: Any) -> list[tuple[int, ...]]:
    if type(out) is tuple:
        return [tuple(item.shape) for item in out]
    return [tuple(out.shape)]


def _argument_shapes(args: Any) -> list[tuple[int, ...]]:
    """Shapes of the array arguments, also those inside a tuple or list argument (an index, operands)."""
    shapes = []
    for arg in args:
        for item in arg if type(arg) is tuple or type(arg) is list else (arg,):
            item_shape = getattr(item, "shape", None)
            if type(item_shape) is tuple:
                shapes.append(item_shape)
    return shapes


def _refuse(
    cotangent_shape: tuple[int, ...],
    shape: tuple[int, ...],
    out: Any,
    op_name: str,
    argnum: int,
    rows: int | None,
) -> None:
    out_shapes = _output_shapes(out)
    batched = "" if rows is None else f"batched (with {rows} rows in front) "
    outputs = (
        f"the output {out_shapes[0]}"
        if len(out_shapes) == 1
        else "the outputs " + ", ".join(str(out_shape) for out_shape in out_shapes)
    )
    raise ValueError(
        f"{op_name}: the {batched}VJP for argument {argnum} returned shape {cotangent_shape}, which is not "
        f"the argument's shape {shape} nor one it was broadcast to in {outputs}"
    )


def fit_rows(cotangent: Any, args: Any, argnum: int, out: Any, rows: int, op_name: str) -> Any:
    """Sum a batched cotangent over the axes its input was broadcast along, keeping the row axis.

    The same rule as ``fit_cotangent``, behind the leading axis of ``rows``.
    """
    value = args[argnum]
    shape, dtype = value.shape, value.dtype
    if isinstance(cotangent, DiagonalRows):
        if cotangent.values.shape == shape:
            return cotangent if cotangent.dtype == dtype else cotangent.astype(dtype)
        cotangent = cotangent.dense()
    cotangent = np.asarray(cotangent)
    if cotangent.shape != (rows, *shape):
        if cotangent.ndim < 1 or cotangent.shape[0] != rows:
            raise ValueError(
                f"{op_name}: the batched VJP for argument {argnum} returned shape {cotangent.shape}, "
                f"which has no leading axis of {rows} rows"
            )
        cotangent = unbroadcast(cotangent, (rows, *shape), args, out, op_name, argnum, rows)
    return cotangent if cotangent.dtype == dtype else cotangent.astype(dtype)

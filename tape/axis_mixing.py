"""How each op mixes the axes of its arguments: where a batch axis of the input goes, or that it is lost.

A Jacobian is block diagonal along a batch axis when sample ``i`` of the output depends on sample ``i``
of the input alone. That is decided from the records, one op at a time: each rule below takes a record
and the batch axis of each argument that depends on the input, and returns the axis of the output that
carries the batch, or ``None`` when the op mixes samples (a sum over the batch, a matrix product that
contracts it, an argument that depends on the input but lacks the batch axis and so is broadcast along
it). Arguments that do not depend on the input (weights, constants) carry no batch axis and mix nothing.
An op missing from the table mixes everything: the safe answer. This module only reads records.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tape.ops import indexing, linalg, nn, reductions, shape, special, statistics

from .record import Record
from .trace import enter

#: ``rule(record, axes)``: ``axes`` maps each argument that depends on the input to its batch axis (None
#: when already mixed); the result is the output's batch axis, or None when the op mixes samples.
AxisRule = Callable[[Record, dict[int, int | None]], int | None]


def _known(axes: dict[int, int | None]) -> dict[int, int] | None:
    """``axes`` when every dependent argument still has a batch axis, else None."""
    if any(axis is None for axis in axes.values()):
        return None
    return {argnum: axis for argnum, axis in axes.items() if axis is not None}


def elementwise(record: Record, axes: dict[int, int | None]) -> int | None:
    """Broadcasting aligns axes from the right; every dependent argument must put its batch axis, at full
    length, on the same output axis (one that lacks it would be spread over every sample)."""
    known = _known(axes)
    if known is None:
        return None
    out_shape = np.shape(record.out)
    found: int | None = None
    for argnum, axis in known.items():
        arg_shape = np.shape(record.args[argnum])
        position = axis + len(out_shape) - len(arg_shape)
        if arg_shape[axis] != out_shape[position] or found not in (None, position):
            return None
        found = position
    return found


def matmul(record: Record, axes: dict[int, int | None]) -> int | None:
    """Only the contracted axis is mixed: a batch axis on the rows of ``x``, the columns of ``y`` or the
    stacked matrices (of both, at the same place) stays in place."""
    known = _known(axes)
    if known is None:
        return None
    x_ndim, y_ndim = np.ndim(record.args[0]), np.ndim(record.args[1])
    out_ndim = np.ndim(record.out)
    if 0 in known and 1 in known:
        # Both operands depend on the input: only a stack axis shared by both keeps samples apart.
        x_axis, y_axis = known[0], known[1]
        if x_axis >= x_ndim - 2 or y_axis >= y_ndim - 2:
            return None
        position = x_axis + out_ndim - x_ndim
        return position if position == y_axis + out_ndim - y_ndim else None
    if 0 in known:
        axis = known[0]
        if x_ndim == 1 or axis == x_ndim - 1:
            return None  # the contracted axis of x
        return axis if y_ndim == 1 else axis + out_ndim - x_ndim
    axis = known[1]
    if y_ndim == 1 or axis == y_ndim - 2:
        return None  # the contracted axis of y
    if axis == y_ndim - 1:
        return out_ndim - 1
    return axis if x_ndim == 1 else axis + out_ndim - y_ndim


def reduction(record: Record, axes: dict[int, int | None]) -> int | None:
    """Only the reduced axes are mixed; the batch axis moves down past the reduced axes before it."""
    known = _known(axes)
    if known is None or set(known) != {0} or len(record.args) != 1:
        return None
    axis, ndim = known[0], np.ndim(record.args[0])
    reduced = reductions.normalize_axes(record.kwargs.get("axis"), ndim)
    if axis in reduced:
        return None
    if record.kwargs.get("keepdims", False):
        return axis
    return axis - sum(1 for r in reduced if r < axis)


def along_axis(record: Record, axes: dict[int, int | None]) -> int | None:
    """softmax and log_softmax mix only along their ``axis``."""
    known = _known(axes)
    if known is None or set(known) != {0} or len(record.args) != 1:
        return None
    axis, ndim = known[0], np.ndim(record.args[0])
    mixed = reductions.normalize_axes(record.kwargs.get("axis", -1), ndim)
    return None if axis in mixed else axis


def same_place(record: Record, axes: dict[int, int | None]) -> int | None:
    """An identity (a transform's entry): nothing moves."""
    known = _known(axes)
    return None if known is None or set(known) != {0} else known[0]


def transposed(record: Record, axes: dict[int, int | None]) -> int | None:
    """A permutation of the axes: the batch axis goes where the permutation sends it."""
    known = _known(axes)
    if known is None or set(known) != {0}:
        return None
    ndim = np.ndim(record.args[0])
    order = record.args[1] if len(record.args) > 1 else record.kwargs.get("axes")
    permutation = list(range(ndim))[::-1] if order is None else [int(a) % ndim for a in order]
    return permutation.index(known[0])


def swapped(record: Record, axes: dict[int, int | None]) -> int | None:
    """``swapaxes(x, a, b)``: the batch axis moves only if it is ``a`` or ``b``."""
    known = _known(axes)
    if known is None or set(known) != {0} or len(record.args) != 3:
        return None
    ndim = np.ndim(record.args[0])
    first, second = int(record.args[1]) % ndim, int(record.args[2]) % ndim
    axis = known[0]
    return second if axis == first else first if axis == second else axis


def reshaped(record: Record, axes: dict[int, int | None]) -> int | None:
    """A C-order reshape (reshape, ravel, squeeze, expand_dims) keeps the batch index of every element
    when some output axis has the batch axis's length and the same number of elements after it."""
    known = _known(axes)
    if known is None or set(known) != {0} or record.kwargs.get("order", "C") != "C":
        return None
    in_shape, out_shape = np.shape(record.args[0]), np.shape(record.out)
    axis = known[0]
    after = math.prod(in_shape[axis + 1 :])
    for position, length in enumerate(out_shape):
        if length == in_shape[axis] and math.prod(out_shape[position + 1 :]) == after:
            return position
    return None


def indexed(record: Record, axes: dict[int, int | None]) -> int | None:
    """``x[:, ...]``: an index that takes every sample of a leading batch axis, in order, with basic
    indices elsewhere; anything else (picking or reordering samples, arrays, new axes) counts as mixing."""
    known = _known(axes)
    if known is None or set(known) != {0} or known[0] != 0:
        return None
    index = record.args[1]
    entries = index if isinstance(index, tuple) else (index,)
    if not entries or not isinstance(entries[0], slice) or entries[0] != slice(None):
        return None
    if all(isinstance(entry, int | np.integer | slice) or entry is Ellipsis for entry in entries[1:]):
        return 0
    return None


def broadcast(record: Record, axes: dict[int, int | None]) -> int | None:
    """``broadcast_to``: new axes are added in front; the batch axis must keep its length."""
    return elementwise(record, axes)


def selected(record: Record, axes: dict[int, int | None]) -> int | None:
    """``where(condition, x, y)``: elementwise in ``x`` and ``y`` (the condition is never differentiated)."""
    return elementwise(record, axes)


RULES: dict[Any, AxisRule] = {
    linalg.matmul: matmul,
    reductions.sum_: reduction,
    reductions.mean: reduction,
    reductions.max_: reduction,
    reductions.min_: reduction,
    reductions.prod: reduction,
    statistics.var: reduction,
    statistics.std: reduction,
    special.softmax_op: along_axis,
    special.log_softmax_op: along_axis,
    shape.transpose: transposed,
    shape.swapaxes: swapped,
    shape.reshape_op: reshaped,
    shape.ravel: reshaped,
    shape.squeeze: reshaped,
    shape.expand_dims: reshaped,
    shape.broadcast_to: broadcast,
    shape.where_op: selected,
    indexing.getitem_view: indexed,
    indexing.getitem_copy: indexed,
    nn.relu_op: elementwise,
    enter: same_place,
}


def output_batch_axis(record: Record, axes: dict[int, int | None]) -> int | None:
    """The output's batch axis for ``record`` (see ``RULES``); ops marked ``elementwise`` mix no axis, and
    ops that are neither mix everything. A record with several outputs counts as mixing."""
    if type(record.out) is tuple:
        return None
    rule = RULES.get(record.op)
    if rule is None:
        rule = elementwise if record.op.elementwise else None
    return None if rule is None else rule(record, axes)

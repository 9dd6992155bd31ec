"""Scatter-add: ``np.add.at(total, index, values)`` for any numpy index, fast, with a numba kernel.

The VJP of reading ``x[index]`` adds the cotangent into zeros of ``x``'s shape, and positions read twice
must receive both cotangents: ``total[index] += values`` would keep only one. ``np.add.at`` is correct but
slow (about a second for 10^6 rows of 64). ``scatter_add_into`` computes the same thing in three steps:

1. an index without integer arrays (slices, integers, boolean masks) never names a position twice, so
   numpy's own ``total[index] += values`` is exact and is used as is;
2. otherwise the index is turned into *row positions*: the axes at the end of ``total`` that the index
   leaves whole (trailing ``:``, or not mentioned) form a row, and each indexed element names one row of
   ``total.reshape(n_rows, row_length)``. A single integer array on axis 0 (the embedding / row-gather
   case) is its own row positions; any other index is applied to a grid of row numbers, built without
   allocating anything of ``total``'s size when ``total`` is large;
3. the kernel ``scatter_rows`` adds each row of values into its row of ``total`` in one pass.

The kernel is serial: on the machine it was measured on, splitting the row across threads (the only
race-free split when rows may repeat) was slower at every size. Only float32/float64 C-contiguous ``total``
takes the fast path; anything else is handed to ``np.add.at``. This module runs on plain arrays: it
records nothing on the tape (``ops/indexing.py`` wraps it in the ``scatter_add`` op).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tape.jit import kernel

__all__ = ["scatter_add_into", "scatter_rows"]

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INDEX_DTYPE = np.dtype(np.int64)
#: Below this many rows the grid of row numbers is built whole (one gather) instead of axis by axis.
_WHOLE_GRID_LIMIT = 1 << 16
#: The numpy twin checks for repeated rows (one sort) from this row length on: with no repeats,
#: ``total[rows] += values`` is exact and 1.5-7x faster than bincount/np.add.at for long rows; for short
#: rows the check costs more than it saves.
_UNIQUE_CHECK_ROW_LENGTH = 16
#: The numpy twin adds with ``np.bincount`` when ``total`` has at most this many elements (and is not much
#: larger than ``values``); chunks of this many values keep its temporaries small.
_BINCOUNT_LIMIT = 1 << 22


# -- the kernel and its numpy twin -------------------------------------------------------------------------
def _scatter_rows_numpy(total_rows: np.ndarray, positions: np.ndarray, value_rows: np.ndarray) -> int:
    """numpy twin of ``scatter_rows``: the same checks and sums, by whichever of fancy ``+=`` (no repeats),
    ``np.bincount`` and ``np.add.at`` is fastest for the shapes."""
    n_rows = total_rows.shape[0]
    if positions.size == 0:
        return -1
    low, high = positions.min(), positions.max()
    if low < -n_rows or high >= n_rows:
        return int(np.flatnonzero((positions < -n_rows) | (positions >= n_rows))[0])
    if low < 0:
        positions = np.where(positions < 0, positions + n_rows, positions)
    if total_rows.shape[1] >= _UNIQUE_CHECK_ROW_LENGTH and positions.size > 1:
        ordered = np.sort(positions)
        if not np.any(ordered[1:] == ordered[:-1]):
            total_rows[positions] += value_rows  # no repeats: numpy's fancy in-place add is exact
            return -1
    if total_rows.shape[1] == 1:
        # numpy's add.at has a fast loop for a 1-d target and one index array (none for rows)
        np.add.at(total_rows.reshape(-1), positions, value_rows.reshape(-1))
    elif 0 < total_rows.size <= min(4 * value_rows.size, _BINCOUNT_LIMIT):
        _add_by_bincount(total_rows, positions, value_rows)
    else:
        np.add.at(total_rows, positions, value_rows)
    return -1


def _add_by_bincount(total_rows: np.ndarray, positions: np.ndarray, value_rows: np.ndarray) -> None:
    # For rows, bincount over flat element positions is 2-3x faster than np.add.at when total is not much
    # larger than values; it sums in float64, so float32 results are at least as accurate as add.at's.
    row_length = total_rows.shape[1]
    chunk_rows = max(1, _BINCOUNT_LIMIT // row_length)
    columns = np.arange(row_length)
    flat_total = total_rows.reshape(-1)
    for start in range(0, positions.size, chunk_rows):
        rows = positions[start : start + chunk_rows]
        elements = (rows[:, None] * row_length + columns).reshape(-1)
        weights = value_rows[start : start + chunk_rows].reshape(-1)
        flat_total += np.bincount(elements, weights=weights, minlength=flat_total.size)


@kernel(_scatter_rows_numpy)
def scatter_rows(total_rows: np.ndarray, positions: np.ndarray, value_rows: np.ndarray) -> int:
    """Add ``value_rows[i]`` into ``total_rows[positions[i]]`` for every ``i``, repeats accumulating.

    ``total_rows`` is (n_rows, row_length), ``positions`` int64 of length m, ``value_rows``
    (m, row_length) of ``total_rows``'s dtype, all C-contiguous. Negative positions count from the end.
    Returns -1, or, when a position is outside [-n_rows, n_rows), the first such ``i`` (and then
    ``total_rows`` is left untouched).

    Examples
    --------
    >>> import numpy as np
    >>> total = np.zeros((3, 2))
    >>> scatter_rows(total, np.array([0, 2, 0, -1]), np.ones((4, 2)))
    -1
    >>> total
    array([[2., 2.],
           [0., 0.],
           [2., 2.]])
    """
    n_rows, row_length = total_rows.shape
    count = positions.shape[0]
    if count == 0:
        return -1
    # Bounds first, so that a bad index changes nothing; a min/max pass vectorizes (an early exit does not).
    low = high = positions[0]
    for i in range(count):
        low = min(low, positions[i])
        high = max(high, positions[i])
    if low < -n_rows or high >= n_rows:
        for i in range(count):
            if positions[i] < -n_rows or positions[i] >= n_rows:
                return i
    if low < 0:  # rare in gradients: wrap a copy once rather than test every index in the loops below
        positions = np.where(positions < 0, positions + n_rows, positions)
    if row_length == 1:  # element positions: no inner loop (about twice as fast for this common case)
        for i in range(count):
            total_rows[positions[i], 0] += value_rows[i, 0]
    else:
        for i in range(count):
            row = positions[i]
            for j in range(row_length):
                total_rows[row, j] += value_rows[i, j]
    return -1


# -- from a numpy index to row positions -------------------------------------------------------------------
def _index_items(index: Any) -> tuple[Any, ...]:
    """``index`` as a tuple of items, sequences turned into arrays as numpy reads them."""
    items = index if type(index) is tuple else (index,)
    return tuple(_as_index_array(item) if isinstance(item, list | tuple) else item for item in items)


def _as_index_array(sequence: list[Any] | tuple[Any, ...]) -> np.ndarray:
    array = np.asarray(sequence)
    # numpy reads an empty list as an empty integer index, not as the float64 array asarray gives.
    return array.astype(np.intp) if array.size == 0 and array.dtype == np.float64 else array


def _is_integer_array(item: Any) -> bool:
    return isinstance(item, np.ndarray) and item.ndim > 0 and item.dtype.kind in "iu"


def _is_plain_item(item: Any) -> bool:
    """A basic item or a boolean mask: an index made of these names no position twice."""
    if item is None or item is Ellipsis or isinstance(item, slice | bool | np.bool_):
        return True
    if isinstance(item, int | np.integer):
        return True
    if not isinstance(item, np.ndarray):
        return False
    return item.dtype == np.bool_ or (item.ndim == 0 and item.dtype.kind in "iu")


def _axes_used(item: Any) -> int:
    if item is None or isinstance(item, bool | np.bool_):
        return 0
    if isinstance(item, np.ndarray) and item.dtype == np.bool_:
        return item.ndim
    return 1


def _split_trailing_rows(
    items: tuple[Any, ...], shape: tuple[int, ...]
) -> tuple[tuple[Any, ...], int] | None:
    """The items that index the leading axes, and how many trailing axes the index leaves whole.

    ``None`` when the index cannot be read that way (several ``...``, too many indices): numpy then
    applies it to the grid of elements and raises its own error where it must.
    """
    ellipses = sum(item is Ellipsis for item in items)
    if ellipses > 1:
        return None
    used = sum(_axes_used(item) for item in items if item is not Ellipsis)
    missing = len(shape) - used
    if missing < 0:
        return None
    if ellipses:
        if missing == 0:
            # A ``...`` of no axes still parts the integer arrays around it, which moves their result axes
            # to the front in numpy; kept as it is, the grid of every axis gets the same layout.
            return items, 0
        at = next(k for k, item in enumerate(items) if item is Ellipsis)
        items = items[:at] + (slice(None),) * missing + items[at + 1 :]
    else:
        items = items + (slice(None),) * missing
    if any(item is None or isinstance(item, bool | np.bool_) for item in items):
        return items, 0  # new axes and scalar masks shift result axes; keep every axis in the grid
    whole = 0
    while whole < len(items) and _is_whole_slice(items[-1 - whole], shape[-1 - whole]):
        whole += 1
    return items[: len(items) - whole], whole


def _is_whole_slice(item: Any, length: int) -> bool:
    return isinstance(item, slice) and item.indices(length) == (0, length, 1)


def _row_grid_positions(leading_items: tuple[Any, ...], leading_shape: tuple[int, ...]) -> np.ndarray:
    """Row numbers (in C order over ``leading_shape``) of the elements ``leading_items`` selects."""
    n_rows = math.prod(leading_shape)
    if len(leading_shape) <= 1 or n_rows <= _WHOLE_GRID_LIMIT:
        return np.arange(n_rows, dtype=np.int64).reshape(leading_shape)[leading_items]
    # Large grids: one broadcast view per axis (no memory of the grid's size), each indexed like the grid;
    # the row number is the sum over axes of coordinate * stride.
    positions: np.ndarray | None = None
    stride = n_rows
    for axis, length in enumerate(leading_shape):
        stride //= length
        coordinate_shape = [1] * len(leading_shape)
        coordinate_shape[axis] = length
        coordinates = np.arange(0, length * stride, stride, dtype=np.int64).reshape(coordinate_shape)
        selected = np.broadcast_to(coordinates, leading_shape)[leading_items]
        positions = selected if positions is None else np.add(positions, selected, out=positions)
    assert positions is not None
    return positions


def _kernel_array(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    # C-contiguous and writeable, so that each dtype compiles one signature (numba types a read-only
    # array, such as a broadcast view, as a different type).
    if array.dtype == dtype and array.flags.c_contiguous and array.flags.writeable:
        return array
    array = np.ascontiguousarray(array, dtype=dtype)
    return array if array.flags.writeable else array.copy()


def scatter_add_into(total: np.ndarray, index: Any, values: Any) -> np.ndarray:
    """Add ``values`` into ``total[index]`` in place, repeated positions accumulating; return ``total``.

    The same as ``np.add.at(total, index, values)`` for any numpy index: integers, slices, ``...``,
    ``None``, integer arrays (several broadcast together, negative entries, repeats) and boolean masks,
    mixed. ``values`` broadcasts to the shape of ``total[index]``. float32 and float64 C-contiguous
    ``total`` take the fast path (``values`` are first cast to ``total``'s dtype, where np.add.at would
    add in the wider dtype and round once); other arrays go to ``np.add.at`` itself.

    Parameters
    ----------
    total : ndarray
        Written in place.
    index : any numpy index
    values : array_like
        Broadcastable to ``total[index].shape``.

    Raises
    ------
    IndexError
        An index is out of bounds (``total`` is then unchanged), or numpy rejects the index.
    ValueError
        ``values`` does not broadcast to ``total[index].shape``.

    Examples
    --------
    >>> import numpy as np
    >>> total = np.zeros(3)
    >>> scatter_add_into(total, np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]))
    array([4., 0., 2.])
    """
    values = np.asarray(values)
    if not isinstance(total, np.ndarray):
        raise TypeError(f"scatter_add_into: total must be a numpy array, got {type(total).__name__}")
    if total.dtype not in _FAST_DTYPES or values.dtype.kind not in "biuf":
        np.add.at(total, index, values)  # numpy's own casting rules for other dtypes
        return total
    takes_kernel = total.flags.c_contiguous and total.flags.writeable
    if takes_kernel and type(index) is np.ndarray and index.ndim and index.dtype.kind in "iu" and total.ndim:
        return _add_rows(total, 1, index, values)  # x[rows]'s VJP, the commonest call: no index analysis
    items = _index_items(index)
    if all(_is_plain_item(item) for item in items):
        total[index] += values  # no position named twice: numpy's own in-place add is exact
        return total
    if not takes_kernel or not all(_is_integer_array(item) or _is_plain_item(item) for item in items):
        np.add.at(total, index, values)
        return total
    split = _split_trailing_rows(items, total.shape)
    leading_items, whole = (items, 0) if split is None else split
    leading_axes = total.ndim - whole
    if len(leading_items) == 1 and leading_axes == 1 and _is_integer_array(leading_items[0]):
        return _add_rows(total, 1, leading_items[0], values)
    positions = _row_grid_positions(leading_items, total.shape[:leading_axes])
    return _add_rows(total, leading_axes, positions, values)


def _add_rows(total: np.ndarray, leading_axes: int, positions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Add ``values`` into the rows of ``total`` (its first ``leading_axes`` axes, in C order) that
    ``positions`` names; the remaining axes form each row. The kernel checks and wraps the positions."""
    leading_shape, row_shape = total.shape[:leading_axes], total.shape[leading_axes:]
    result_shape = positions.shape + row_shape
    if values.shape != result_shape:
        try:
            if values.ndim > len(result_shape):
                raise ValueError
            values = np.broadcast_to(values, result_shape)
        except ValueError:
            raise ValueError(
                f"scatter_add_into: values of shape {values.shape} do not broadcast to the shape "
                f"{result_shape} of total[index] (total of shape {total.shape})"
            ) from None
    row_length = math.prod(row_shape)
    value_rows = _kernel_array(values, total.dtype).reshape(positions.size, row_length)
    row_positions = _kernel_array(positions, _INDEX_DTYPE).reshape(-1)
    failed_at = scatter_rows(total.reshape(math.prod(leading_shape), row_length), row_positions, value_rows)
    if failed_at >= 0:
        raise IndexError(
            f"scatter_add_into: index {row_positions[failed_at]} is out of bounds for axis 0 with size "
            f"{total.shape[0]}"
        )
    return total

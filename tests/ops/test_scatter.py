"""ops/scatter.py: ``scatter_add_into`` agrees with ``np.add.at`` for every kind of numpy index, with the
numba kernel and with its numpy twin, in float64 and float32, and the kernel agrees with its twin."""

from __future__ import annotations

import warnings
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape.ops.scatter
from tape import jit
from tape.ops.scatter import scatter_add_into, scatter_rows
from tests.strategies import FLOAT_DTYPES


@pytest.fixture(autouse=True)
def kernel_must_compile():
    """A silent fallback to the twin would make the kernel half of every test compare the twin twice."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", jit.JitFallbackWarning)
        yield


def tolerance(dtype):
    # Repeated positions are summed in a different order by np.bincount (the twin) than by np.add.at.
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def check_scatter(total, index, values):
    """``scatter_add_into`` with JIT on and off, and with the grid of row numbers built whole and axis by
    axis: each gives np.add.at's result, or raises the error np.add.at raises and leaves ``total`` alone."""
    expected = total.copy()
    try:
        np.add.at(expected, index, values)
    except (IndexError, ValueError) as error:
        expected = error
    for use_jit in (True, False):
        for grid_limit in (tape.ops.scatter._WHOLE_GRID_LIMIT, 0):
            result = total.copy()
            with jit.use_jit(use_jit), mock.patch.object(tape.ops.scatter, "_WHOLE_GRID_LIMIT", grid_limit):
                if isinstance(expected, Exception):
                    with pytest.raises(type(expected)):
                        scatter_add_into(result, index, values)
                    np.testing.assert_array_equal(result, total)
                    continue
                returned = scatter_add_into(result, index, values)
            assert returned is result
            assert result.dtype == total.dtype
            np.testing.assert_allclose(result, expected, **tolerance(total.dtype))


@st.composite
def value_arrays(draw, shape, dtype):
    """Values of ``shape`` in [-2, 2], C-ordered, Fortran-ordered, reversed or strided (not contiguous)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layout = draw(st.sampled_from(["C", "F", "reversed", "strided"]))
    if layout == "strided":
        return rng.uniform(-2, 2, (*shape[:-1], 2 * shape[-1])).astype(dtype)[..., ::2] if shape else None
    values = rng.uniform(-2, 2, shape).astype(dtype)
    if layout == "F":
        return np.asfortranarray(values)
    if layout == "reversed" and shape:
        return values[::-1].copy()[::-1]
    return values


def draw_values(data, shape, dtype):
    values = data.draw(value_arrays(shape, dtype))
    return np.random.default_rng(0).uniform(-2, 2, shape).astype(dtype) if values is None else values


def draw_total(data, shape, dtype):
    seed = data.draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


def integer_array(data, length, shape):
    """Integers in [-length, length) of ``shape``: negative entries and repeats included."""
    seed = data.draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(-length, max(length, 1), size=shape)


index_shapes = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=5)


# -- the row-gather case and integer arrays ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_rows_picked_by_one_integer_array(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4).filter(lambda s: s[0]))
    rows = integer_array(data, shape[0], data.draw(index_shapes))
    total = draw_total(data, shape, dtype)
    values = draw_values(data, rows.shape + shape[1:], dtype)
    check_scatter(total, rows, values)
    check_scatter(total, (rows, Ellipsis), values)
    check_scatter(total, (rows,) + (slice(None),) * (len(shape) - 1), values)
    check_scatter(total, rows.tolist(), values)  # a list index is an integer array too


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_several_integer_arrays_broadcast_together(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    indexed_axes = data.draw(st.integers(1, len(shape)))
    index = data.draw(hnp.integer_array_indices(shape[:indexed_axes], result_shape=index_shapes))
    total = draw_total(data, shape, dtype)
    values = draw_values(data, total[index].shape, dtype)
    check_scatter(total, index, values)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_unique_rows(dtype, data):
    length = data.draw(st.integers(1, 6))
    rows = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).permutation(length)
    rows = rows[: data.draw(st.integers(0, length))] - length * data.draw(st.integers(0, 1))  # maybe negative
    row_length = data.draw(st.sampled_from([1, 3, 16, 20]))  # the twin checks for repeats from 16 on
    total = draw_total(data, (length, row_length), dtype)
    check_scatter(total, rows, draw_values(data, (rows.size, row_length), dtype))


# -- any mix of integer arrays, integers, slices, boolean masks, ``...`` and ``None`` -----------------------
@st.composite
def mixed_indices(draw, shape):
    """One item per axis (integer array, integer, slice or boolean mask; an integer array on at least one
    axis of nonzero length), then, each sometimes: trailing non-array items dropped, a run of non-array
    items written as ``...``, a ``None`` inserted."""
    data = draw(st.data())
    broadcast_shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=5))
    kinds = [
        draw(st.sampled_from(["array", "integer", "slice", "mask"] if length else ["slice", "mask"]))
        for length in shape
    ]
    masks = [axis for axis, kind in enumerate(kinds) if kind == "mask"]
    for axis in masks[1:]:
        kinds[axis] = "slice"  # two masks rarely broadcast together: keep one
    nonempty_axes = [axis for axis, length in enumerate(shape) if length]
    if "array" not in kinds and nonempty_axes:
        kinds[draw(st.sampled_from(nonempty_axes))] = "array"
    has_arrays = "array" in kinds
    items: list[object] = []
    for length, kind in zip(shape, kinds, strict=True):
        if kind == "array":
            kept = broadcast_shape[len(broadcast_shape) - draw(st.integers(1, len(broadcast_shape))) :]
            array_shape = tuple(1 if draw(st.booleans()) else side for side in kept)
            items.append(integer_array(data, length, array_shape))
        elif kind == "integer":
            items.append(draw(st.integers(-length, length - 1)))
        elif kind == "slice" or (has_arrays and not length):
            items.append(draw(st.slices(length)))  # (a mask of no axis would select nothing to broadcast)
        else:
            mask = draw(hnp.arrays(np.bool_, (length,)))
            if has_arrays and length:  # its count of True entries must broadcast with the arrays
                mask = np.zeros(length, dtype=bool)
                mask[draw(st.integers(0, length - 1))] = True
            items.append(mask)
    is_array = [kind == "array" for kind in kinds]
    droppable = len(items) - max([axis + 1 for axis, flag in enumerate(is_array) if flag], default=0)
    if draw(st.booleans()):
        cut = len(items) - draw(st.integers(0, droppable))
        items, is_array = items[:cut], is_array[:cut]
    if draw(st.booleans()):
        start = draw(st.integers(0, len(items)))
        stop = start
        while stop < len(items) and not is_array[stop] and draw(st.booleans()):
            stop += 1
        items = [*items[:start], Ellipsis, *items[stop:]]
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    return tuple(items)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_mixed_indices(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    index = data.draw(mixed_indices(shape))
    total = draw_total(data, shape, dtype)
    try:
        values_shape = total[index].shape
    except IndexError:
        assume(False)  # rarely, dropped or ``...``-merged items leave an integer on an empty axis
    values = draw_values(data, values_shape, dtype)
    check_scatter(total, index, values)
    check_scatter(total, index, values[(0,) * len(values_shape)] if values.size else values)  # a scalar


def test_an_ellipsis_of_no_axes_still_parts_integer_arrays():
    # numpy puts the broadcast axes of parted integer arrays first: total[None, [0, 1], ..., [0, 1]] has
    # shape (2, 1), against (1, 2) without the ``...``.
    total = np.zeros((2, 3))
    for index in [
        (None, np.array([0, 1]), Ellipsis, np.array([0, 1])),
        (None, np.array([0, 1]), np.array([0, 1])),
    ]:
        check_scatter(total, index, np.arange(2.0).reshape(total[index].shape))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_boolean_masks(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    total = draw_total(data, shape, dtype)
    mask = data.draw(hnp.arrays(np.bool_, shape[: data.draw(st.integers(1, len(shape)))]))
    check_scatter(total, mask, draw_values(data, total[mask].shape, dtype))
    if len(shape) >= 2 and shape[1]:
        # a mask on axis 0 beside an integer array on axis 1: repeats come from the array
        first = np.zeros(shape[0], dtype=bool)
        first[: data.draw(st.integers(0, shape[0]))] = True
        columns = integer_array(data, shape[1], (int(first.sum()),))
        index = (first, columns)
        check_scatter(total, index, draw_values(data, total[index].shape, dtype))


# -- values, shapes and dtypes at the edges ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    ("shape", "index"),
    [
        ((0,), np.array([], dtype=np.int64)),
        ((3,), np.array([], dtype=np.int64)),
        ((3, 0), np.array([0, 2, 2])),
        ((0, 4), (slice(None), np.array([1, 1]))),
        ((2, 0, 3), (np.array([1, 1]), slice(None), np.array([0, 2]))),
        ((3,), []),
        ((4, 2), np.zeros((0, 3), dtype=np.int32)),
    ],
    ids=str,
)
def test_size_zero(shape, index, dtype):
    total = np.ones(shape, dtype)
    check_scatter(total, index, np.ones(total[index].shape, dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_values_broadcast_to_the_indexed_shape(dtype):
    total = np.zeros((4, 3), dtype)
    rows = np.array([[0, 3], [3, 3]])
    check_scatter(total, rows, dtype(2.5))
    check_scatter(total, rows, np.arange(3, dtype=dtype))
    check_scatter(total, rows, np.arange(2, dtype=dtype)[:, None, None])
    check_scatter(total, rows, np.broadcast_to(np.arange(3, dtype=dtype), (2, 2, 3)))  # read-only


def test_values_of_another_dtype_are_cast_to_totals():
    total = np.zeros(4, np.float32)
    rows = np.array([1, 1, 2])
    check_scatter(total, rows, np.array([1, 2, 3]))  # integers
    check_scatter(total, rows, np.array([True, True, False]))
    check_scatter(total, rows, np.array([0.1, 0.2, 0.3]))  # float64 into float32
    check_scatter(np.zeros(4), rows, np.array([0.1, 0.2, 0.3], dtype=np.float32))


def test_arrays_the_kernel_does_not_take_go_to_numpy():
    rows = np.array([0, 2, 0])
    check_scatter(np.zeros((3, 2), dtype=np.int64), rows, np.ones((3, 2), dtype=np.int64))
    check_scatter(np.zeros((3, 2), dtype=np.float16), rows, np.ones((3, 2)))
    check_scatter(np.zeros((3, 2), dtype=np.complex128), rows, np.full((3, 2), 1j))
    check_scatter(np.asfortranarray(np.zeros((3, 2))), rows, np.ones((3, 2)))
    strided = np.zeros((3, 4))[:, ::2]
    scatter_add_into(strided, rows, np.ones((3, 2)))  # a view: the writes must land in its base
    np.testing.assert_array_equal(strided, [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]])


def test_the_kernel_compiles_one_signature_per_float_dtype():
    for dtype in FLOAT_DTYPES:
        total = np.zeros((5, 3), dtype)
        read_only = np.ones((2, 3), dtype)
        read_only.flags.writeable = False
        with jit.use_jit(True):
            scatter_add_into(total, np.array([1, 1], dtype=np.int32), np.ones((2, 3), np.float64))
            scatter_add_into(total, np.array([1, 1], dtype=np.uint8), read_only)
            scatter_add_into(total, (slice(None), np.array([0, 0])), np.ones((2, 5), dtype).T)
            scatter_add_into(total, np.broadcast_to(np.array([4]), (2,)), read_only)
    assert len(scatter_rows.signatures()) == 2


# -- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_jit", [True, False], ids=["kernel", "twin"])
@pytest.mark.parametrize(
    ("index", "message"),
    [
        (np.array([0, 4]), "index 4 is out of bounds for axis 0 with size 4"),
        (np.array([-5, 1]), "index -5 is out of bounds for axis 0 with size 4"),
        ((np.array([0]), np.array([3])), "out of bounds"),
        ((slice(None), np.array([0, -4])), "out of bounds"),
    ],
    ids=str,
)
def test_an_index_out_of_bounds_raises_and_changes_nothing(index, message, use_jit):
    total = np.arange(12.0).reshape(4, 3)
    with jit.use_jit(use_jit), pytest.raises(IndexError, match=message):
        scatter_add_into(total, index, 1.0)
    np.testing.assert_array_equal(total, np.arange(12.0).reshape(4, 3))


def test_values_that_do_not_broadcast_raise():
    total = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"values of shape \(2, 2\) do not broadcast to the shape \(2, 3\)"):
        scatter_add_into(total, np.array([0, 1]), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"values of shape \(1, 2, 3\) do not broadcast"):
        scatter_add_into(total, np.array([0, 1]), np.ones((1, 2, 3)))  # np.add.at refuses extra axes too
    check_scatter(total, np.array([0, 1]), np.ones((2, 2)))  # the same error type as np.add.at


@pytest.mark.parametrize(
    "index",
    [
        (Ellipsis, np.array([0]), Ellipsis),  # two ellipses
        (np.array([0]), 1, 2),  # too many indices
        (np.array([0]), 1.5),  # a float
        np.array([0.0, 1.0]),  # float array
        (np.array([0, 1]), np.array([0, 1, 2])),  # arrays that do not broadcast
        np.array([[True, False]]),  # a mask of the wrong shape
    ],
    ids=str,
)
def test_indices_numpy_rejects_raise_numpys_error(index):
    check_scatter(np.zeros((3, 4)), index, 1.0)


def test_total_must_be_an_array():
    with pytest.raises(TypeError, match="total must be a numpy array, got list"):
        scatter_add_into([0.0, 0.0], np.array([0]), 1.0)


# -- the kernel against its twin ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_kernel_agrees_with_its_twin(dtype, data):
    n_rows = data.draw(st.integers(0, 6))
    row_length = data.draw(st.sampled_from([0, 1, 2, 3, 16, 17]))
    count = data.draw(st.integers(0, 30))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    # mostly in [-n_rows, n_rows), sometimes one step outside
    positions = rng.integers(-n_rows - 1, n_rows + 1, size=count).astype(np.int64)
    value_rows = rng.uniform(-2, 2, (count, row_length)).astype(dtype)
    total = rng.uniform(-1, 1, (n_rows, row_length)).astype(dtype)
    compiled_total, twin_total = total.copy(), total.copy()
    with jit.use_jit(True):
        compiled_status = scatter_rows(compiled_total, positions, value_rows)
    twin_status = scatter_rows.twin(twin_total, positions, value_rows)
    outside = np.flatnonzero((positions < -n_rows) | (positions >= n_rows))
    assert compiled_status == twin_status == (outside[0] if outside.size else -1)
    np.testing.assert_allclose(compiled_total, twin_total, **tolerance(dtype))
    if outside.size:
        np.testing.assert_array_equal(compiled_total, total)
    else:
        expected = total.copy()
        np.add.at(expected, positions, value_rows)
        np.testing.assert_allclose(compiled_total, expected, **tolerance(dtype))


def test_twin_adds_by_bincount_in_chunks():
    rng = np.random.default_rng(3)
    positions = rng.integers(-2, 2, size=40)
    value_rows = rng.uniform(-2, 2, (40, 3))
    expected = np.zeros((2, 3))
    np.add.at(expected, positions, value_rows)
    total = np.zeros((2, 3))
    with mock.patch.object(tape.ops.scatter, "_BINCOUNT_LIMIT", 8):  # chunks of 2 rows
        assert scatter_rows.twin(total, positions, value_rows) == -1
    np.testing.assert_allclose(total, expected, rtol=1e-12, atol=1e-12)

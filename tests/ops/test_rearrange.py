"""ops/rearrange.py: tile, repeat, flip, fliplr, flipud, roll, rot90, pad, diag, diagflat, diagonal, trace,
triu, tril and atleast_1d/2d/3d, in every argument form numpy takes, checked against numpy's forward and
against finite differences in float64 and float32; second derivatives against finite differences of the
gradient; and the errors, which name the op and what it was given."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tape.tensor import plain
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, shapes

#: Shapes of at least one axis, and of at least two (matrices and stacks of them), size 0 included.
vectors_and_up = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)
matrices_and_up = hnp.array_shapes(min_dims=2, max_dims=3, min_side=0, max_side=4)


def axes(ndim: int) -> st.SearchStrategy[Any]:
    """``axis`` arguments: None, an int (maybe negative) or a tuple of distinct axes."""
    choices = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
    return st.one_of(choices)


def two_axes(ndim: int) -> st.SearchStrategy[tuple[int, ...]]:
    """Two different axes of an array of ``ndim`` axes, each maybe written as a negative axis."""
    return hnp.valid_tuple_axes(ndim, min_size=2, max_size=2)


def second_derivative_matches(f: Any, x: np.ndarray, seed: int = 0) -> None:
    """``tape.hvp`` (a gradient of a gradient) against central differences of ``tape.grad`` along v."""
    v = np.random.default_rng(seed).standard_normal(x.shape)
    (hessian_v,) = tape.hvp(f, (x,), (v,))
    eps = 1e-5
    gradient = tape.grad(f)
    numeric = (gradient(x + eps * v) - gradient(x - eps * v)) / (2 * eps)
    # Central differences err by about eps**2 times the third derivative, which scales with the largest
    # entry rather than with each one: a small entry beside large ones gets the large ones' error.
    scale = float(np.max(np.abs(numeric), initial=0.0))
    np.testing.assert_allclose(hessian_v, numeric, rtol=1e-5, atol=1e-7 + 1e-6 * scale)


# -- tile ------------------------------------------------------------------------------------------------
reps_forms = st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), max_size=4).map(tuple))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), reps=reps_forms)
def test_tile(dtype, data, reps):
    x = data.draw(arrays(data.draw(shapes), dtype))
    check_op(lambda x: np.tile(x, reps), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_tile_takes_reps_as_a_list_or_an_array(dtype):
    x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(2, 3)
    check_op(lambda x: np.tile(x, [2, 1, 2]), x)
    check_op(lambda x: np.tile(x, np.array([3, 2])), x)


# -- repeat ----------------------------------------------------------------------------------------------
def repeat_axes(ndim: int) -> st.SearchStrategy[int | None]:
    """None or an axis; numpy also takes axis 0 or -1 of a 0-d array (as if it had one axis)."""
    return st.one_of(st.none(), st.integers(-max(ndim, 1), max(ndim, 1) - 1))


def repeated_length(shape: tuple[int, ...], axis: int | None) -> int:
    if axis is None:
        return int(np.prod(shape))
    return shape[axis] if shape else 1


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), count=st.sampled_from([0, 1, 2, 3, 12]))  # 12: more copies than added one by one
def test_repeat_with_one_count(dtype, data, count):
    x = data.draw(arrays(data.draw(shapes), dtype))
    axis = data.draw(repeat_axes(x.ndim))
    check_op(lambda x: np.repeat(x, count, axis=axis), x)
    check_op(lambda x: np.repeat(x, [count], axis), x)
    check_op(lambda x: x.repeat(count, axis=axis), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_repeat_with_a_count_per_element(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    axis = data.draw(repeat_axes(x.ndim))
    length = repeated_length(x.shape, axis)
    counts = data.draw(st.lists(st.integers(0, 3), min_size=length, max_size=length))
    check_op(lambda x: np.repeat(x, counts, axis=axis), x)
    check_op(lambda x: np.repeat(x, np.array(counts, dtype=np.int32), axis=axis), x)
    check_op(lambda x: x.repeat(counts, axis), x)


# -- flip, fliplr, flipud, roll, rot90 -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_flip(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    axis = data.draw(axes(x.ndim))
    check_op(lambda x: np.flip(x, axis), x)
    check_op(lambda x: np.flip(x, axis=axis), x)
    check_op(np.flip, x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_fliplr_and_flipud(dtype, data):
    x = data.draw(arrays(data.draw(matrices_and_up), dtype))
    check_op(np.fliplr, x)
    check_op(np.flipud, x)
    check_op(np.flipud, data.draw(arrays(data.draw(vectors_and_up), dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), shift=st.integers(-6, 6))
def test_roll_by_one_shift(dtype, data, shift):
    x = data.draw(arrays(data.draw(shapes), dtype))
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)) if x.ndim else st.none())
    check_op(lambda x: np.roll(x, shift, axis), x)
    check_op(lambda x: np.roll(x, shift=shift, axis=axis), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_roll_by_several_shifts(dtype, data):
    x = data.draw(arrays(data.draw(vectors_and_up), dtype))
    # One shift per listed axis; an axis may be listed twice (numpy adds its shifts).
    axis = tuple(data.draw(st.lists(st.integers(-x.ndim, x.ndim - 1), min_size=1, max_size=4)))
    shift = tuple(data.draw(st.lists(st.integers(-6, 6), min_size=len(axis), max_size=len(axis))))
    check_op(lambda x: np.roll(x, shift, axis), x)
    check_op(lambda x: np.roll(x, np.array(shift), axis), x)
    check_op(lambda x: np.roll(x, shift[0], axis), x)  # one shift for every listed axis
    check_op(lambda x: np.roll(x, shift), x)  # no axis: the flattened array, rolled by each shift


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), k=st.integers(-5, 5))
def test_rot90(dtype, data, k):
    x = data.draw(arrays(data.draw(matrices_and_up), dtype))
    plane = data.draw(two_axes(x.ndim))
    check_op(lambda x: np.rot90(x, k, plane), x)
    check_op(lambda x: np.rot90(x, k=k), x)
    check_op(np.rot90, x)


# -- pad -------------------------------------------------------------------------------------------------
def pad_widths(ndim: int) -> st.SearchStrategy[Any]:
    """``pad_width`` in each of numpy's forms; up to 6 wide, so wider than the axis (reflect repeats)."""
    width = st.integers(0, 6)
    pair = st.tuples(width, width)
    forms = [width, st.tuples(width), pair, st.lists(pair, min_size=1, max_size=1)]
    if ndim:
        forms += [
            st.lists(pair, min_size=ndim, max_size=ndim).map(tuple),  # ((before, after), ...) per axis
            st.lists(st.tuples(width), min_size=ndim, max_size=ndim).map(tuple),  # ((width,), ...) per axis
            st.dictionaries(st.integers(-ndim, ndim - 1), st.one_of(width, pair), max_size=ndim),
        ]
    return st.one_of(forms)


def pad_options(mode: str, ndim: int) -> st.SearchStrategy[dict[str, Any]]:
    """The keyword arguments of ``mode``: constant_values, or reflect_type, in each of their forms."""
    if mode == "constant":
        value = st.floats(-3.0, 3.0)
        forms = [value, st.tuples(value, value)]
        if ndim:
            forms.append(st.lists(st.tuples(value, value), min_size=ndim, max_size=ndim).map(tuple))
        return st.one_of(st.just({}), st.one_of(forms).map(lambda values: {"constant_values": values}))
    if mode in ("reflect", "symmetric"):
        return st.sampled_from([{}, {"reflect_type": "even"}, {"reflect_type": "odd"}])
    return st.just({})


PAD_MODES = ["constant", "edge", "reflect", "symmetric", "wrap"]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("mode", PAD_MODES)
@given(data=st.data())
def test_pad(mode, dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    pad_width = data.draw(pad_widths(x.ndim))
    options = data.draw(pad_options(mode, x.ndim))
    try:
        np.pad(x, pad_width, mode, **options)
    except (ValueError, TypeError) as error:
        # numpy refuses some of these (an empty axis extended other than by constants): so does tape.
        with pytest.raises(type(error)):
            np.pad(tape.tensor(x, requires_grad=True), pad_width, mode, **options)
        return
    check_op(lambda x: np.pad(x, pad_width, mode, **options), x)
    check_op(lambda x: np.pad(x, pad_width, mode=mode, **options), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_pad_defaults_to_zeros(dtype):
    x = np.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(2, 3)
    check_op(lambda x: np.pad(x, 2), x)
    check_op(lambda x: np.pad(x, ((1, 0), (0, 3))), x)


@pytest.mark.parametrize("mode", PAD_MODES)
@pytest.mark.parametrize("shape", [(1,), (2, 3), (3, 1, 2)], ids=str)
def test_pad_gradient_is_how_often_each_cell_was_copied(mode, shape):
    x = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    t = tape.tensor(x, requires_grad=True)
    np.sum(np.pad(t, 5, mode)).backward()
    # Pad the positions instead of the values: every output cell names the input cell it copied.
    positions = np.arange(x.size).reshape(shape)
    copied = np.pad(positions, 5, mode) if mode != "constant" else np.pad(positions, 5, constant_values=-1)
    counts = np.bincount(copied[copied >= 0].ravel(), minlength=x.size).reshape(shape)
    np.testing.assert_array_equal(t.grad, counts)


@pytest.mark.parametrize("mode", PAD_MODES)
@pytest.mark.parametrize("reflect_type", ["even", "odd"])
@given(data=st.data())
def test_pad_second_derivative(mode, reflect_type, data):
    x = data.draw(arrays(data.draw(shapes), np.float64))
    pad_width = data.draw(pad_widths(x.ndim))
    options = {"reflect_type": reflect_type} if mode in ("reflect", "symmetric") else {}
    if x.size == 0 and mode != "constant":
        return  # numpy cannot extend an empty axis other than with constants
    second_derivative_matches(lambda x: np.sum(np.sin(np.pad(x, pad_width, mode, **options))), x)


def test_pad_keeps_float32_with_float_constants():
    x = tape.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    padded = np.pad(x, 1, constant_values=0.1)
    assert padded.dtype == np.float32
    np.testing.assert_array_equal(padded.data, np.pad(np.ones((2, 2), np.float32), 1, constant_values=0.1))


def test_pad_takes_constant_values_from_a_tensor_that_does_not_require_grad():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    padded = np.pad(x, 1, constant_values=tape.tensor(7.0))
    np.testing.assert_array_equal(padded.data, [7.0, 1.0, 2.0, 7.0])
    padded = np.pad(x, 1, constant_values=(tape.tensor(-1.0), 3.0))
    np.testing.assert_array_equal(padded.data, [-1.0, 1.0, 2.0, 3.0])


# -- diagonals -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), k=st.integers(-5, 5))
def test_diag_of_a_vector_and_of_a_matrix(dtype, data, k):
    vector = data.draw(arrays((data.draw(st.integers(0, 4)),), dtype))
    check_op(lambda v: np.diag(v, k), vector)
    check_op(np.diag, vector)
    matrix = data.draw(arrays(data.draw(hnp.array_shapes(min_dims=2, max_dims=2, max_side=4)), dtype))
    check_op(lambda m: np.diag(m, k=k), matrix)
    check_op(np.diag, matrix)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), k=st.integers(-5, 5))
def test_diagflat(dtype, data, k):
    x = data.draw(arrays(data.draw(shapes), dtype))
    check_op(lambda x: np.diagflat(x, k), x)
    check_op(np.diagflat, x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), offset=st.integers(-5, 5))
def test_diagonal(dtype, data, offset):
    x = data.draw(arrays(data.draw(matrices_and_up), dtype))
    axis1, axis2 = data.draw(two_axes(x.ndim))
    check_op(lambda x: np.diagonal(x, offset, axis1, axis2), x)
    check_op(lambda x: np.diagonal(x, offset=offset, axis1=axis1, axis2=axis2), x)
    check_op(lambda x: x.diagonal(offset, axis1, axis2), x)
    check_op(np.diagonal, x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), offset=st.integers(-5, 5))
def test_trace(dtype, data, offset):
    x = data.draw(arrays(data.draw(matrices_and_up), dtype))
    axis1, axis2 = data.draw(two_axes(x.ndim))
    check_op(lambda x: np.trace(x, offset, axis1, axis2), x)
    check_op(lambda x: np.trace(x, offset=offset, axis1=axis1, axis2=axis2), x)
    check_op(lambda x: x.trace(offset, axis1, axis2), x)
    check_op(np.trace, x)


@given(data=st.data())
def test_trace_dtype_argument_casts_the_gradient_back(data):
    x = data.draw(arrays(data.draw(matrices_and_up), np.float32))
    check_op(lambda x: np.trace(x, dtype=np.float64), x, keeps_dtype=False)
    check_op(lambda x: np.trace(x, 0, 0, 1, np.float64), x, keeps_dtype=False)


# -- triu, tril --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["triu", "tril"])
@given(data=st.data(), k=st.integers(-5, 5))
def test_triu_and_tril(name, dtype, data, k):
    # A 1-D input of length n is taken as n identical rows, as numpy does.
    x = data.draw(arrays(data.draw(vectors_and_up), dtype))
    triangle = getattr(np, name)
    check_op(lambda x: triangle(x, k), x)
    check_op(lambda x: triangle(x, k=k), x)
    check_op(triangle, x)


# -- atleast_1d, atleast_2d, atleast_3d ----------------------------------------------------------------
ATLEAST = [np.atleast_1d, np.atleast_2d, np.atleast_3d]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("atleast", ATLEAST, ids=lambda f: f.__name__)
@given(data=st.data())
def test_atleast_nd_of_one_array(atleast, dtype, data):
    check_op(atleast, data.draw(arrays(data.draw(shapes), dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("atleast", ATLEAST, ids=lambda f: f.__name__)
@given(data=st.data())
def test_atleast_nd_of_several_arrays_gives_a_tuple(atleast, dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    y = data.draw(arrays(data.draw(shapes), dtype))
    expected = atleast(x, y, 2.5)
    results = atleast(tape.tensor(x, requires_grad=True), tape.tensor(y), 2.5)
    assert type(results) is type(expected) and len(results) == 3
    assert results[0].requires_grad and not results[1].requires_grad
    for result, numpy_result in zip(results, expected, strict=True):
        assert result.dtype == numpy_result.dtype
        np.testing.assert_array_equal(plain(result), numpy_result)
    assert tape.gradcheck(lambda x, y: atleast(x, y)[0] * 2.0 + np.sum(atleast(x, y)[1]), x, y)


# -- views, as in numpy ------------------------------------------------------------------------------------
VIEWS = {
    "flip": np.flip,
    "fliplr": np.fliplr,
    "rot90": np.rot90,
    "diagonal": np.diagonal,
    "diag of a matrix": np.diag,
    "atleast_3d": np.atleast_3d,
}


@pytest.mark.parametrize("make", VIEWS.values(), ids=VIEWS.keys())
def test_views_share_memory_with_their_input_as_in_numpy(make):
    data = np.arange(6.0).reshape(2, 3)
    t = tape.tensor(data, requires_grad=True)
    assert np.shares_memory(make(t).data, t.data)
    assert np.shares_memory(make(data), data)


@pytest.mark.parametrize("make", [np.diagonal, np.diag], ids=["diagonal", "diag"])
def test_a_diagonal_is_read_only_as_in_numpy(make):
    x = tape.tensor(np.arange(4.0).reshape(2, 2), requires_grad=True)
    y = x * 1.0
    with pytest.raises(ValueError, match="read-only"):
        make(np.arange(4.0).reshape(2, 2))[0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        make(y)[0] = 5.0
    # The refused write changed nothing: the gradient is still the one of the diagonal.
    np.sum(make(y) * np.array([2.0, 3.0])).backward()
    np.testing.assert_array_equal(x.grad, [[2.0, 0.0], [0.0, 3.0]])


def test_writing_into_the_input_of_a_flip_is_seen_through_the_view_and_guarded():
    x = tape.tensor(np.arange(3.0), requires_grad=True)
    y = x * 1.0
    flipped = np.flip(y)
    squared = flipped**2  # saves flipped's values
    y[0] = 10.0
    assert flipped.data[-1] == 10.0
    with pytest.raises(RuntimeError):
        squared.sum().backward()


# -- second derivatives --------------------------------------------------------------------------------
SECOND_ORDER = {
    "tile": lambda x: np.tile(x, (2, 1, 3)),
    "repeat": lambda x: np.repeat(x, 2, axis=1),
    "repeat per element": lambda x: np.repeat(x, [2, 0, 1], axis=0),
    "repeat flattened": lambda x: np.repeat(x, 3),
    "flip": lambda x: np.flip(x, (0, 1)),
    "roll": lambda x: np.roll(x, (1, -2), (0, 1)),
    "rot90": lambda x: np.rot90(x, 3),
    "diag": lambda x: np.diag(np.diag(x, 1), -1),
    "diagflat": lambda x: np.diagflat(x, 1),
    "diagonal": lambda x: np.diagonal(x, -1),
    "trace": lambda x: np.trace(x * x, 1),
    "triu": lambda x: np.triu(x, 1),
    "tril": lambda x: np.tril(x, -1),
    "atleast_3d": np.atleast_3d,
}


@pytest.mark.parametrize("f", SECOND_ORDER.values(), ids=SECOND_ORDER.keys())
def test_second_derivative(f):
    x = np.random.default_rng(3).uniform(-2.0, 2.0, size=(3, 4))
    second_derivative_matches(lambda x: np.sum(np.sin(f(x)) * np.cos(x.sum())), x)


@given(data=st.data(), reps=reps_forms)
def test_tile_second_derivative(data, reps):
    x = data.draw(arrays(data.draw(shapes), np.float64))
    second_derivative_matches(lambda x: np.sum(np.sin(np.tile(x, reps))), x)


# -- errors ----------------------------------------------------------------------------------------------
def leaf(shape: tuple[int, ...]) -> tape.Tensor:
    return tape.tensor(np.ones(shape), requires_grad=True)


@pytest.mark.parametrize("shape", [(), (2, 2, 2)], ids=str)
def test_diag_of_neither_a_vector_nor_a_matrix_is_refused(shape):
    with pytest.raises(ValueError, match=re.escape(f"diag: expected a 1-D or 2-D array, got shape {shape}")):
        np.diag(leaf(shape))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: np.fliplr(leaf((3,))), "fliplr: expected an array of at least 2 axes, got shape (3,)"),
        (lambda: np.flipud(leaf(())), "flipud: expected an array of at least 1 axis, got shape ()"),
        (lambda: np.rot90(leaf((3,))), "rot90: expected an array of at least 2 axes, got shape (3,)"),
        (lambda: np.diagonal(leaf((3,))), "diagonal: expected an array of at least 2 axes, got shape (3,)"),
        (lambda: np.trace(leaf((3,))), "trace: expected an array of at least 2 axes, got shape (3,)"),
        (lambda: np.triu(leaf(())), "triu: expected an array of at least 1 axis, got shape ()"),
        (lambda: np.tril(leaf(())), "tril: expected an array of at least 1 axis, got shape ()"),
        (
            lambda: np.repeat(leaf((3,)), [[1, 2, 3]]),
            "repeat: repeats must be an int or 1-D ints, got shape (1, 3)",
        ),
        (
            lambda: np.repeat(leaf((2, 3)), [1, 2], axis=1),
            "repeat: 2 repeats given for 3 elements along axis 1 of an array of shape (2, 3)",
        ),
        (lambda: np.pad(leaf((3,)), -1), "pad: pad widths can't be negative, got -1"),
        (
            lambda: np.pad(leaf((2, 3)), ((1, 1), (1, 1), (1, 1))),
            "pad: pad_width ((1, 1), (1, 1), (1, 1)) (shape (3, 2)) does not give a (before, after) pair "
            "for each of the array's 2 axes",
        ),
        (lambda: np.pad(leaf((3,)), 1, mode="nearest"), "pad: mode 'nearest' is not a numpy padding mode"),
        # numpy's own errors; the op and what it was given are in a note (pytest matches notes too)
        (
            lambda: np.pad(leaf((0, 2)), 1, mode="reflect"),
            "can't extend empty axis 0 using modes other than 'constant' or 'empty'\n"
            "pad: array arguments of shapes (0, 2); dtypes float64",
        ),
        (
            lambda: np.pad(leaf((3,)), 1, mode="edge", reflect_type="odd"),
            "unsupported keyword arguments for mode 'edge': {'reflect_type'}\n"
            "pad: array arguments of shapes (3,); dtypes float64",
        ),
        (
            lambda: np.rot90(leaf((2, 2)), 1, (0, 0)),
            "Axes must be different.\nrot90: array arguments of shapes (2, 2); dtypes float64",
        ),
    ],
)
def test_value_errors_name_the_op_and_what_it_was_given(call, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        call()


@pytest.mark.parametrize("mode", ["median", "mean", "maximum", "minimum", "linear_ramp", "empty"])
def test_pad_modes_without_a_gradient_are_refused_naming_the_mode(mode):
    with pytest.raises(TypeError, match=f"^pad: mode '{mode}' is not supported on tape tensors"):
        np.pad(leaf((3,)), 1, mode=mode)


def test_pad_with_a_function_as_mode_is_refused():
    def zeros(vector, pad_width, axis, kwargs):
        vector[: pad_width[0]] = 0

    with pytest.raises(TypeError, match=r"^pad: mode 'zeros' is not supported on tape tensors"):
        np.pad(leaf((3,)), 1, mode=zeros)


def test_pad_widths_must_be_integers():
    with pytest.raises(TypeError, match=re.escape("pad: pad_width must be integers, got 1.5 (float64)")):
        np.pad(leaf((3,)), 1.5)


def test_pad_refuses_constant_values_that_require_grad():
    constant = tape.tensor(1.0, requires_grad=True)
    with pytest.raises(TypeError, match=r"^pad: constant_values is not differentiated on tape tensors"):
        np.pad(leaf((3,)), 1, constant_values=constant)
    with pytest.raises(TypeError, match=r"^pad: constant_values is not differentiated"):
        np.pad(leaf((3,)), 1, constant_values=(0.0, constant))


def test_trace_refuses_out():
    with pytest.raises(TypeError, match=r"^numpy\.trace: out= is not supported on tape tensors"):
        np.trace(leaf((2, 2)), 0, 0, 1, None, np.empty(()))
    with pytest.raises(TypeError, match=r"^numpy\.trace: out= is not supported on tape tensors"):
        np.trace(leaf((2, 2)), out=np.empty(()))


# -- rollaxis --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(("axis", "start"), [(0, 0), (2, 0), (-1, 1), (0, 3), (1, -1), (0, 2)])
@given(seed=st.integers(0, 2**32 - 1))
def test_rollaxis_is_a_view_with_the_inverse_move_as_vjp(axis, start, dtype, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, 4)).astype(dtype)
    check_op(lambda x: np.rollaxis(x, axis, start), x)
    leaf = tape.tensor(x)
    assert np.shares_memory(np.rollaxis(leaf, axis, start).data, leaf.data)
    assert tape.gradgradcheck(lambda x: np.rollaxis(x, axis, start) ** 3, x)


def test_rollaxis_refuses_an_axis_out_of_range():
    with pytest.raises(np.exceptions.AxisError):
        np.rollaxis(tape.zeros((2, 3)), 2)

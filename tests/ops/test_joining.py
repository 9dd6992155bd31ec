"""ops/joining.py: concatenate, stack, hstack, vstack, dstack, column_stack, append and block; split,
array_split, hsplit, vsplit, dsplit and unstack. Checked against numpy's forward and finite differences in
float64 and float32, with size-0 axes, tensors mixed with plain arrays, lists and scalars, mixed dtypes,
round trips, error messages and second derivatives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tape.registry import FUNCTIONS
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, shapes


@st.composite
def joinable(draw: Any, dtype: Any, max_inputs: int = 3) -> tuple[list[np.ndarray], int]:
    """1 to ``max_inputs`` arrays of 1 to 3 axes that differ only along ``axis`` (lengths 0 to 3, other
    axes 0 to 4), and that axis, sometimes negative."""
    ndim = draw(st.integers(1, 3))
    base = draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=4))
    axis = draw(st.integers(-ndim, ndim - 1))
    lengths = draw(st.lists(st.integers(0, 3), min_size=1, max_size=max_inputs))
    at = axis % ndim
    xs = [draw(arrays((*base[:at], length, *base[at + 1 :]), dtype)) for length in lengths]
    return xs, axis


def check_pieces(f: Callable[[Any], Any], x: np.ndarray) -> None:
    """``f`` splits ``x``: the pieces are numpy's (values, dtype, list or tuple), copies, and their VJPs
    pass backward (gradient shape and dtype) and ``tape.gradcheck``."""
    expected = f(x.copy())
    leaf = tape.tensor(x, requires_grad=True)
    pieces = f(leaf)
    assert type(pieces) is type(expected)
    assert len(pieces) == len(expected)
    for piece, want in zip(pieces, expected, strict=True):
        assert isinstance(piece, tape.Tensor)
        assert piece.requires_grad
        assert piece.dtype == want.dtype == x.dtype
        np.testing.assert_array_equal(piece.data, want)
        assert not np.shares_memory(piece.data, leaf.data)
    if not pieces:
        return
    rng = np.random.default_rng(2)
    total = sum((piece * rng.standard_normal(piece.shape).astype(x.dtype)).sum() for piece in pieces)
    total.backward()
    assert leaf.grad.shape == x.shape
    assert leaf.grad.dtype == x.dtype
    assert tape.gradcheck(f, x)


# -- concatenate -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_concatenate(dtype, data):
    xs, axis = data.draw(joinable(dtype))
    check_op(lambda *xs: np.concatenate(xs, axis=axis), *xs)
    check_op(lambda *xs: np.concatenate(list(xs), axis), *xs)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_concatenate_with_axis_none_flattens_inputs_of_any_shape(dtype, data):
    xs = [data.draw(arrays(data.draw(shapes), dtype)) for _ in range(data.draw(st.integers(1, 3)))]
    check_op(lambda *xs: np.concatenate(xs, axis=None), *xs)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_concatenate_of_a_tensor_joins_its_rows(dtype):
    x = np.arange(24.0, dtype=dtype).reshape(2, 3, 4) / 7
    check_op(lambda x: np.concatenate(x, axis=1), x)
    check_op(lambda x: np.stack(x, axis=-1), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_concatenate_of_a_nested_list_holding_tensors_records_them(dtype):
    # numpy would read [a, b] through __array__ and drop their gradients; it is stacked on the tape instead.
    a, b = np.array([1.0, 2.0], dtype=dtype), np.array([3.0, 4.0], dtype=dtype)
    c = np.array([[5.0, 6.0]], dtype=dtype)
    check_op(lambda a, b, c: np.concatenate([[a, b], c]), a, b, c)


def test_concatenate_sends_each_gradient_to_its_input_and_none_to_plain_inputs():
    rng = np.random.default_rng(0)
    a = tape.tensor(rng.random((2, 3)), requires_grad=True)
    plain = rng.random((2, 2))
    b = tape.tensor(rng.random((2, 1)), requires_grad=True)
    weights = rng.random((2, 6))
    (np.concatenate([a, plain, b], axis=-1) * weights).sum().backward()
    np.testing.assert_array_equal(a.grad, weights[:, :3])
    np.testing.assert_array_equal(b.grad, weights[:, 5:])
    assert type(plain) is np.ndarray
    counts = tape.tensor(np.array([[1, 2]]))  # an integer tensor joins, and takes no gradient
    mixed = np.concatenate([a[:1, :2], counts])
    assert mixed.dtype == np.float64
    np.testing.assert_array_equal(mixed.data[1], [1.0, 2.0])
    mixed.sum().backward()
    assert counts.grad is None


def test_the_same_tensor_joined_twice_gets_both_gradients():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    (np.concatenate([x, x]) * [1.0, 2.0, 3.0, 4.0]).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 6.0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_joining_tensors_with_plain_arrays_lists_and_scalars(dtype, data):
    (x, plain), axis = data.draw(joinable(dtype, max_inputs=2).filter(lambda pair: len(pair[0]) == 2))
    check_op(lambda x: np.concatenate([x, plain], axis=axis), x)
    # Python floats and lists are float64 to numpy, so float32 tensors joined with them give float64.
    if np.shape(plain.tolist()) == plain.shape:  # a list cannot hold shape (0, 3)
        check_op(lambda x: np.concatenate([plain.tolist(), x], axis=axis), x, keeps_dtype=False)
    check_op(lambda x: np.append(x, 1.5), x, keeps_dtype=False)
    check_op(lambda x: np.hstack([2.0, np.ravel(x), [3.0]]), x, keeps_dtype=False)


def test_mixed_float32_and_float64_give_float64_and_each_gradient_in_its_own_dtype():
    a = tape.tensor(np.array([[1.0, 2.0]], dtype=np.float32), requires_grad=True)
    b = tape.tensor(np.array([[3.0, 4.0]]), requires_grad=True)
    joined = np.concatenate([a, b])
    assert joined.dtype == np.float64
    joined.backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert a.grad.dtype == np.float32
    assert b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad, [[1.0, 2.0]])
    np.testing.assert_array_equal(b.grad, [[3.0, 4.0]])


@pytest.mark.parametrize("join", ["concatenate", "stack", "vstack", "hstack", "block"])
def test_mixed_dtypes_through_every_joining_function(join):
    a = np.array([[0.5, -1.0]], dtype=np.float32)
    b = np.array([[2.0, 3.0]])
    functions = {
        "concatenate": lambda a, b: np.concatenate([a, b]),
        "stack": lambda a, b: np.stack([a, b]),
        "vstack": lambda a, b: np.vstack([a, b]),
        "hstack": lambda a, b: np.hstack([a, b]),
        "block": lambda a, b: np.block([[a], [b]]),
    }
    check_op(functions[join], a, b)


def test_concatenate_with_a_floating_dtype_casts_and_gives_gradients_in_the_inputs_dtype():
    a = np.array([1.0, 2.0])
    b = np.array([3.0], dtype=np.float32)
    # The function is linear, so a large finite-difference step is exact and rises above float32 rounding.
    options = {"keeps_dtype": False, "eps": 1e-2, "rtol": 1e-4, "atol": 1e-4}
    check_op(lambda a, b: np.concatenate([a, b], dtype=np.float32), a, b, **options)
    check_op(lambda a, b: np.stack([a[:1], b], dtype="float32", casting="same_kind"), a, b, **options)


def test_concatenate_with_an_integer_dtype_is_refused_when_an_input_requires_grad():
    a = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"concatenate: dtype=int64 gives a result with no gradient"):
        np.concatenate([a, a], dtype=np.int64)
    # With nothing to differentiate, numpy's answer comes back.
    joined = np.concatenate([a.detach(), a.detach()], dtype=np.int64, casting="unsafe")
    np.testing.assert_array_equal(joined.data, [1, 2, 1, 2])


def test_casting_rules_are_numpys():
    a = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"^Cannot cast .*\nconcatenate: array arguments of shapes"):
        np.concatenate([a, a], dtype=np.float32, casting="safe")


def test_out_is_refused():
    a = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy.concatenate: out= is not supported"):
        np.concatenate([a, a], out=np.empty(4))
    with pytest.raises(TypeError, match=r"numpy.concatenate: out= is not supported"):
        np.concatenate([a, a], 0, np.empty(4))
    with pytest.raises(TypeError, match=r"numpy.stack: out= is not supported"):
        np.stack([a, a], 0, np.empty((2, 2)))


def test_changing_an_input_in_place_after_joining_does_not_stop_backward():
    # The joining VJP reads only shapes, so changing an input's values after the join is harmless.
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    joined = np.concatenate([y, x])
    y += 5.0
    (joined * [1.0, 2.0, 3.0, 4.0]).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 6.0])


# -- stack and its variants --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_stack(dtype, data):
    shape = data.draw(shapes)
    xs = [data.draw(arrays(shape, dtype)) for _ in range(data.draw(st.integers(1, 3)))]
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check_op(lambda *xs: np.stack(xs, axis=axis), *xs)


def test_stack_gradient_is_the_cotangent_slice_of_each_input():
    rng = np.random.default_rng(3)
    a = tape.tensor(rng.random((2, 3)), requires_grad=True)
    b = tape.tensor(rng.random((2, 3)), requires_grad=True)
    cotangent = rng.random((2, 2, 3))
    np.stack([a, b], axis=1).backward(cotangent)
    np.testing.assert_array_equal(a.grad, cotangent[:, 0])
    np.testing.assert_array_equal(b.grad, cotangent[:, 1])


def test_np_array_of_tensors_is_refused_and_np_stack_is_the_recorded_way():
    a = tape.tensor([1.0, 2.0], requires_grad=True)
    b = tape.tensor([3.0, 4.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"would drop its gradient.*np\.stack"):
        np.array([a, b])  # numpy's np.array does not dispatch: it would read the data through __array__
    stacked = np.stack([a, b])
    assert isinstance(stacked, tape.Tensor)
    assert stacked.requires_grad
    np.testing.assert_array_equal(stacked.data, [[1.0, 2.0], [3.0, 4.0]])
    with tape.no_grad():
        assert type(np.array([a, b])) is np.ndarray


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["hstack", "vstack", "dstack", "column_stack"])
@given(data=st.data())
def test_hstack_vstack_dstack_column_stack_of_equal_shapes(name, dtype, data):
    shape = data.draw(shapes)
    join = getattr(np, name)
    xs = [data.draw(arrays(shape, dtype)) for _ in range(data.draw(st.integers(1, 3)))]
    check_op(lambda *xs: join(xs), *xs)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(
    rows=st.lists(st.integers(0, 3), min_size=1, max_size=3), width=st.integers(0, 4), seed=st.integers(0, 9)
)
def test_vstack_of_rows_and_matrices_and_hstack_column_stack_of_columns(dtype, rows, width, seed):
    rng = np.random.default_rng(seed)
    matrices = [rng.random((n, width)).astype(dtype) for n in rows]
    row = rng.random(width).astype(dtype)
    check_op(lambda row, *ms: np.vstack([row, *ms, row]), row, *matrices)
    columns = [m.T for m in matrices]
    check_op(lambda *cs: np.hstack(cs), *columns)
    check_op(lambda row, *cs: np.column_stack([*cs, row]), row, *columns)
    check_op(lambda *ms: np.dstack([m[..., None] for m in ms] + [ms[0]]), *matrices[:1])


# -- append and block --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_append(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    values = data.draw(arrays(data.draw(shapes), dtype))
    check_op(lambda x, values: np.append(x, values), x, values)
    (x, values), axis = data.draw(joinable(dtype, max_inputs=2).filter(lambda pair: len(pair[0]) == 2))
    check_op(lambda x, values: np.append(x, values, axis=axis), x, values)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(sides=st.lists(st.integers(0, 3), min_size=4, max_size=4), seed=st.integers(0, 9))
def test_block_of_four_blocks(dtype, sides, seed):
    top, bottom, left, right = sides
    rng = np.random.default_rng(seed)
    a, b, c, d = (
        rng.random(shape).astype(dtype)
        for shape in [(top, left), (top, right), (bottom, left), (bottom, right)]
    )
    check_op(lambda a, b, c, d: np.block([[a, b], [c, d]]), a, b, c, d)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_block_with_plain_blocks_scalars_and_three_levels(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3) / 5
    v = np.array([0.5, -0.5], dtype=dtype)
    # numpy's block makes a Python float a float64 array, so float32 blocks joined with one give float64.
    blocks = lambda a: np.block([[a, np.ones((2, 1), dtype)], [np.zeros((1, 3), dtype), 7.0]])
    check_op(blocks, a, keeps_dtype=False)
    check_op(lambda v: np.block([v, 1.0, v]), v, keeps_dtype=False)
    check_op(lambda v: np.block([v, dtype(1.0), v]), v)
    check_op(lambda a, v: np.block([[[a, v[:, None]]], [[a * 2, v[:, None]]]]), a, v)
    check_op(lambda a: np.block(a), a)


# -- splitting ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_split_into_equal_sections(dtype, data):
    ndim = data.draw(st.integers(1, 3))
    axis = data.draw(st.integers(-ndim, ndim - 1))
    sections = data.draw(st.integers(1, 3))
    shape = list(data.draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=3)))
    shape[axis] = sections * data.draw(st.integers(0, 2))
    x = data.draw(arrays(tuple(shape), dtype))
    check_pieces(lambda x: np.split(x, sections, axis=axis), x)
    check_pieces(lambda x: np.split(x, sections, axis), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_split_at_points_in_any_order_and_out_of_range(dtype, data):
    ndim = data.draw(st.integers(1, 3))
    x = data.draw(
        arrays(data.draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=4)), dtype)
    )
    axis = data.draw(st.integers(-ndim, ndim - 1))
    length = x.shape[axis]
    points = data.draw(st.lists(st.integers(-length - 2, length + 2), max_size=3))
    check_pieces(lambda x: np.split(x, points, axis=axis), x)
    check_pieces(lambda x: np.array_split(x, np.array(points, dtype=np.int64), axis=axis), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_array_split_into_unequal_sections(dtype, data):
    x = data.draw(arrays(data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)), dtype))
    sections = data.draw(st.integers(1, 6))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    check_pieces(lambda x: np.array_split(x, sections, axis=axis), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    ("name", "shape", "where"),
    [
        ("hsplit", (6,), 3),
        ("hsplit", (2, 4, 1), [1, 3]),
        ("vsplit", (4, 2), 2),
        ("vsplit", (3, 2, 2), [2]),
        ("dsplit", (1, 2, 4), 2),
        ("dsplit", (2, 1, 3, 2), [0, 1]),
    ],
)
def test_hsplit_vsplit_dsplit(name, shape, where, dtype):
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    check_pieces(lambda x: getattr(np, name)(x, where), x)


@pytest.mark.skipif(not hasattr(np, "unstack"), reason="np.unstack is new in numpy 2.1")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_unstack(dtype, data):
    x = data.draw(arrays(data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)), dtype))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    check_pieces(lambda x: np.unstack(x, axis=axis), x)


def test_pieces_not_used_get_zero_gradient():
    x = tape.tensor(np.arange(1.0, 7.0), requires_grad=True)
    _, middle, _ = np.split(x, 3)
    (middle**2).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 6.0, 8.0, 0.0, 0.0])


def test_pieces_are_copies_so_writing_into_one_leaves_the_input_alone():
    x = tape.tensor(np.arange(4.0), requires_grad=True)
    first, second = np.split(x * 1.0, 2)
    first[0] = 10.0
    np.testing.assert_array_equal(x.data, np.arange(4.0))
    np.testing.assert_array_equal(second.data, [2.0, 3.0])
    (first * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 3.0, 0.0, 0.0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_concatenate_of_split_is_the_identity_with_its_gradient(dtype, data):
    x = data.draw(arrays(data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)), dtype))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    points = sorted(data.draw(st.lists(st.integers(0, x.shape[axis]), max_size=3)))
    leaf = tape.tensor(x, requires_grad=True)
    round_trip = np.concatenate(np.split(leaf, points, axis=axis), axis=axis)
    np.testing.assert_array_equal(round_trip.data, x)
    weights = np.random.default_rng(5).standard_normal(x.shape).astype(dtype)
    (round_trip * weights).sum().backward()
    np.testing.assert_array_equal(leaf.grad, weights)
    if x.shape[axis]:
        check_op(lambda x: np.stack(np.unstack(x, axis=axis), axis=axis), x)


def test_split_with_tensor_points_or_a_plain_array():
    # A tensor among the split points is enough for numpy to dispatch here; its values are only indices.
    points = tape.tensor(np.array([1, 3]))
    pieces = np.split(np.arange(5.0), points)
    assert [type(piece) for piece in pieces] == [np.ndarray] * 3
    np.testing.assert_array_equal(pieces[1], [1.0, 2.0])
    check_pieces(lambda x: np.split(x, points), np.arange(5.0))


# -- second derivatives ------------------------------------------------------------------------------------
def hvp_against_gradient_differences(f: Callable[..., Any], x: np.ndarray, eps: float = 1e-6) -> None:
    """``tape.hvp`` (a gradient of a gradient, through the VJPs under create_graph) against central
    differences of ``tape.grad`` along the same direction."""
    v = np.random.default_rng(6).standard_normal(x.shape)
    (exact,) = tape.hvp(f, (x,), (v,))
    gradient = tape.grad(f)
    numeric = (gradient(x + eps * v) - gradient(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(exact, numeric, rtol=1e-5, atol=1e-7)


JOINS_AND_SPLITS = {
    "concatenate": lambda x: np.sum(np.concatenate([x**3, np.sin(x), x[::-1] * x], axis=1) ** 2),
    "stack": lambda x: np.sum(np.prod(np.stack([x, np.cos(x), x**2], axis=-1), axis=-1)),
    "block": lambda x: np.sum(np.block([[x, x**2], [np.ones((3, 3)), x * x[:, :1]]]) ** 3),
    "split": lambda x: sum(np.sum(piece**3) * k for k, piece in enumerate(np.split(x, [1, 2], axis=1), 1)),
    "split out of order": lambda x: sum(np.sum(np.exp(piece)) for piece in np.split(x, [2, 1], axis=0)),
    "unstack": lambda x: np.sum(np.unstack(x, axis=1)[0] ** 2 * np.unstack(x, axis=1)[2]),
}


@pytest.mark.parametrize("f", JOINS_AND_SPLITS.values(), ids=JOINS_AND_SPLITS.keys())
def test_second_derivatives(f):
    hvp_against_gradient_differences(f, np.random.default_rng(7).uniform(-1.0, 1.0, (3, 3)))


def test_gradient_of_gradient_of_concatenate_by_hand():
    # d/dx sum(concatenate([x**3, sin x])**2) = 6 x**5 + sin 2x, whose derivative is 30 x**4 + 2 cos 2x.
    f = lambda x: np.sum(np.concatenate([x**3, np.sin(x)]) ** 2)
    x = np.array([0.3, -1.2, 2.0])
    second = tape.grad(lambda x: np.sum(tape.grad(f)(x)))(x)
    np.testing.assert_allclose(second, 30 * x**4 + 2 * np.cos(2 * x))


# -- errors ------------------------------------------------------------------------------------------------
def test_concatenate_errors_name_the_op_and_the_shapes():
    a = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(
        ValueError,
        match=r"^concatenate: all inputs must have the same shape except along axis 1, got shapes "
        r"\(2, 3\) and \(3, 3\)$",
    ):
        np.concatenate([a, np.ones((3, 3))], axis=1)
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(3, 3\) \(inputs 0 and 2\)"):
        np.concatenate([a, a, np.ones((3, 3))], axis=-1)
    with pytest.raises(ValueError, match=r"^concatenate: all inputs must have the same number of dimensions"):
        np.concatenate([a, np.ones(3)])
    with pytest.raises(ValueError, match=r"^concatenate: input 1 is zero-dimensional"):
        np.concatenate([a[0], 1.0])
    with pytest.raises(
        np.exceptions.AxisError, match=r"^concatenate: axis 2 is out of bounds for shape \(2, 3\)"
    ):
        np.concatenate([a, a], axis=2)
    with pytest.raises(TypeError, match=r"^concatenate: axis must be an int"):
        np.concatenate([a, a], axis=(0, 1))


@pytest.mark.parametrize("name", ["concatenate", "stack", "hstack", "vstack", "dstack", "column_stack"])
def test_joining_nothing_names_the_op(name):
    # numpy dispatches only when a tensor is among the arguments, so call the registered handler directly.
    with pytest.raises(
        ValueError, match=rf"^{name}: needs at least one array to join, got an empty sequence"
    ):
        FUNCTIONS[getattr(np, name)]([])


def test_other_joining_errors():
    a = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(
        ValueError, match=r"^stack: all inputs must have the same shape, got shapes \(2, 3\) and \(3,\)"
    ):
        np.stack([a, np.ones(3)])
    with pytest.raises(np.exceptions.AxisError, match=r"^stack: axis -4 is out of bounds for a result of 3"):
        np.stack([a, a], axis=-4)
    with pytest.raises(
        ValueError, match=r"^vstack: .* except along axis 0, got shapes \(2, 3\) and \(4,\), seen as"
    ):
        np.vstack([a, np.ones(4)])
    with pytest.raises(
        ValueError, match=r"^hstack: .* except along axis 1, got shapes \(2, 3\) and \(3, 1\)"
    ):
        np.hstack([a, np.ones((3, 1))])
    with pytest.raises(
        ValueError, match=r"^append: zero-dimensional arrays cannot be appended along an axis"
    ):
        np.append(a[0, 0], 1.0, axis=0)
    with pytest.raises(ValueError, match=r"^block: lists must nest to the same depth everywhere"):
        np.block([[a, a], a])
    with pytest.raises(TypeError, match=r"^block: arrays\[1\] is a tuple"):
        np.block([a, (a, a)])
    with pytest.raises(ValueError, match=r"^block: arrays\[1\] is an empty list"):
        np.block([[a], []])
    with pytest.raises(ValueError, match=r"^block: all inputs must have the same shape except along axis 1"):
        np.block([[a, np.ones((1, 1))]])


def test_splitting_errors_name_the_op_the_length_and_the_count():
    x = tape.tensor(np.ones((7, 4)), requires_grad=True)
    with pytest.raises(
        ValueError,
        match=r"^split: an axis of length 7 cannot be split into 3 equal sections; .*np.array_split",
    ):
        np.split(x, 3)
    with pytest.raises(
        ValueError, match=r"^hsplit: an axis of length 4 cannot be split into 3 equal sections"
    ):
        np.hsplit(x, 3)
    with pytest.raises(ValueError, match=r"^array_split: the number of sections must be positive, got 0"):
        np.array_split(x, 0)
    with pytest.raises(TypeError, match=r"^split: indices_or_sections must be an int or a sequence of ints"):
        np.split(x, [1.5])
    with pytest.raises(np.exceptions.AxisError, match=r"^split: axis 2 is out of bounds for shape \(7, 4\)"):
        np.split(x, 1, axis=2)
    with pytest.raises(ValueError, match=r"^split: cannot split a zero-dimensional array"):
        np.split(x[0, 0], 1)
    with pytest.raises(ValueError, match=r"^hsplit: needs an array of at least 1 dimension, got shape \(\)"):
        np.hsplit(x[0, 0], 1)
    with pytest.raises(
        ValueError, match=r"^vsplit: needs an array of at least 2 dimensions, got shape \(4,\)"
    ):
        np.vsplit(x[0], 2)
    with pytest.raises(
        ValueError, match=r"^dsplit: needs an array of at least 3 dimensions, got shape \(7, 4\)"
    ):
        np.dsplit(x, 2)
    with pytest.raises(ValueError, match=r"^unstack: needs an array of at least 1 dimension, got shape \(\)"):
        np.unstack(x[0, 0])

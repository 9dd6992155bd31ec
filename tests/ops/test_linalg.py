"""ops/linalg.py: matrix and tensor products (``@``, ``np.matmul``, ``np.dot``, ``.dot``, ``vdot``, ``inner``,
``outer``, ``tensordot``, ``kron``, ``multi_dot``, ``matrix_power``, ``cross``, ``vecdot``, ``matvec``,
``vecmat``) and ``einsum`` over a table of subscripts, checked against numpy's forward and against finite
differences, in float64 and float32; second derivatives against finite differences of the gradient and by
tape.gradgradcheck; and the errors for operands that do not align or subscripts that do not fit."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tape.ops.linalg import LETTERS, _matmul_vjp_y
from tape.registry import FUNCTIONS
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, broadcastable_shapes, shapes

sides = st.integers(0, 4)


@st.composite
def matmul_shapes(draw: st.DrawFn, x_kind: str, y_kind: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of a vector, a matrix or a stack of matrices (batch axes that broadcast) that align."""
    n, k, m = draw(sides), draw(sides), draw(sides)
    x_batch, y_batch = draw(broadcastable_shapes(2, min_side=0))
    x_shape = {"vector": (k,), "matrix": (n, k), "stack": (*x_batch, n, k)}[x_kind]
    y_shape = {"vector": (k,), "matrix": (k, m), "stack": (*y_batch, k, m)}[y_kind]
    return x_shape, y_shape


KINDS = ["vector", "matrix", "stack"]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("y_kind", KINDS)
@pytest.mark.parametrize("x_kind", KINDS)
@given(data=st.data())
def test_matmul(x_kind, y_kind, dtype, data):
    x_shape, y_shape = data.draw(matmul_shapes(x_kind, y_kind))
    x = data.draw(arrays(x_shape, dtype))
    y = data.draw(arrays(y_shape, dtype))
    check_op(operator.matmul, x, y)
    check_op(np.matmul, x, y)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("y_kind", ["vector", "matrix"])
@pytest.mark.parametrize("x_kind", ["vector", "matrix"])
@given(data=st.data())
def test_dot(x_kind, y_kind, dtype, data):
    x_shape, y_shape = data.draw(matmul_shapes(x_kind, y_kind))
    x = data.draw(arrays(x_shape, dtype))
    y = data.draw(arrays(y_shape, dtype))
    check_op(np.dot, x, y)
    check_op(lambda x, y: x.dot(y), x, y)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_dot_with_a_scalar_is_a_product(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype))
    check_op(np.dot, x, data.draw(arrays((), dtype)))
    check_op(np.dot, data.draw(arrays((), dtype)), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_matmul_with_an_array_on_the_left(dtype, data):
    x_shape, y_shape = data.draw(matmul_shapes("stack", "matrix"))
    constant = data.draw(arrays(x_shape, dtype))
    check_op(lambda y: constant @ y, data.draw(arrays(y_shape, dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_matmul_in_place(dtype, data):
    n = data.draw(st.integers(1, 4))
    x = data.draw(arrays((n, n), dtype))
    y = data.draw(arrays((n, n), dtype))

    def update(x, y):
        target = x.copy()
        target @= y
        return target

    check_op(update, x, y)


@given(data=st.data())
def test_matmul_of_float32_and_float64_gives_float64_and_each_its_own_gradient(data):
    x_shape, y_shape = data.draw(matmul_shapes("stack", "stack"))
    check_op(operator.matmul, data.draw(arrays(x_shape, np.float32)), data.draw(arrays(y_shape, np.float64)))


# -- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("multiply", [operator.matmul, np.matmul, np.dot], ids=["@", "np.matmul", "np.dot"])
def test_misaligned_operands_are_refused_with_both_shapes(multiply):
    x = tape.tensor(np.ones((3, 4)), requires_grad=True)
    y = tape.tensor(np.ones((5, 2)), requires_grad=True)
    with pytest.raises(ValueError, match=r"^matmul: shapes \(3, 4\) and \(5, 2\) do not align \(4 != 5\)$"):
        multiply(x, y)


@pytest.mark.parametrize(
    ("x_shape", "y_shape", "message"),
    [
        ((4,), (5,), "matmul: shapes (4,) and (5,) do not align (4 != 5)"),
        ((3, 4), (5,), "matmul: shapes (3, 4) and (5,) do not align (4 != 5)"),
        ((4,), (5, 2), "matmul: shapes (4,) and (5, 2) do not align (4 != 5)"),
        ((2, 3, 4), (6, 5, 1), "matmul: shapes (2, 3, 4) and (6, 5, 1) do not align (4 != 5)"),
    ],
    ids=["vector-vector", "matrix-vector", "vector-matrix", "stacks"],
)
def test_misaligned_vectors_and_stacks_are_refused(x_shape, y_shape, message):
    x = tape.tensor(np.ones(x_shape), requires_grad=True)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        x @ np.ones(y_shape)


def test_a_0d_operand_is_refused():
    x = tape.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"^matmul: operands must have at least one dimension, got shapes"):
        x @ np.float64(2.0)


def test_batch_axes_that_do_not_broadcast_are_refused_naming_the_op():
    x = tape.tensor(np.ones((2, 3, 4)), requires_grad=True)
    # numpy's own error; the op and what it was given are in a note (pytest matches notes too)
    message = r"^operands could not be broadcast together.*\nmatmul: array arguments of shapes \(2, 3, 4\)"
    with pytest.raises(ValueError, match=message):
        x @ np.ones((5, 4, 2))


UNSUPPORTED = {  # numpy function name: how to call it on a tensor
    "numpy.linalg.tensorinv": lambda x: np.linalg.tensorinv(x, ind=1),
    "numpy.polyfit": lambda x: np.polyfit(x[0], x[1], 1),
}


@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("name", UNSUPPORTED)
def test_a_function_without_a_vjp_is_refused_at_forward_time_naming_it(name, requires_grad):
    x = tape.tensor(np.eye(2), requires_grad=requires_grad)
    with pytest.raises(TypeError, match=f"^{re.escape(name)} is not supported on tape tensors"):
        UNSUPPORTED[name](x)


def test_matmul_vjp_of_two_vectors_takes_a_batch_of_cotangents():
    """A leading batch axis on g (one cotangent per Jacobian row) gives one cotangent of y per row."""
    rng = np.random.default_rng(0)
    x, y, rows = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(3)
    batched = _matmul_vjp_y(rows, x @ y, x, y)
    np.testing.assert_allclose(batched, np.stack([_matmul_vjp_y(row, x @ y, x, y) for row in rows]))
    np.testing.assert_allclose(batched, rows[:, None] * x)


# -- vdot, inner, outer -----------------------------------------------------------------------------------
small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_vdot_flattens_operands_of_any_shapes_with_as_many_elements(dtype, data):
    a_shape = data.draw(small_shapes)
    b_shape = data.draw(st.permutations(a_shape).map(tuple))
    b_shape = (int(np.prod(b_shape)),) if data.draw(st.booleans()) else b_shape
    check_op(np.vdot, data.draw(arrays(a_shape, dtype)), data.draw(arrays(b_shape, dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_inner_sums_over_the_last_axes(dtype, data):
    last = data.draw(st.integers(0, 3))
    a_shape = (*data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)), last)
    b_shape = (*data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)), last)
    check_op(np.inner, data.draw(arrays(a_shape, dtype)), data.draw(arrays(b_shape, dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_inner_with_a_0d_operand_is_a_product(dtype, data):
    x = data.draw(arrays(data.draw(small_shapes), dtype))
    check_op(np.inner, x, data.draw(arrays((), dtype)))
    check_op(np.inner, data.draw(arrays((), dtype)), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_outer_flattens_both_operands(dtype, data):
    a = data.draw(arrays(data.draw(small_shapes), dtype))
    b = data.draw(arrays(data.draw(small_shapes), dtype))
    check_op(np.outer, a, b)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), n=st.integers(0, 3), m=st.integers(0, 3))
def test_the_array_api_spellings_in_np_linalg(dtype, data, n, m):
    x, y = data.draw(arrays((n,), dtype)), data.draw(arrays((m,), dtype))
    check_op(np.linalg.outer, x, y)
    matrix = data.draw(arrays((m, n), dtype))
    check_op(np.linalg.matmul, matrix, x)
    check_op(lambda a, b: np.linalg.tensordot(a, b, axes=1), matrix, x)
    check_op(lambda a, b: np.linalg.tensordot(a, b, axes=([0], [0])), y, matrix)
    check_op(
        lambda a, b: np.linalg.cross(a, b, axis=0),
        data.draw(arrays((3, n), dtype)),
        data.draw(arrays((3, 1), dtype)),
    )


def test_linalg_outer_of_more_than_vectors_is_refused():
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(
        ValueError, match=r"^numpy\.linalg\.outer: operands must be 1-D, got shapes \(2, 3\) and \(2,\)$"
    ):
        np.linalg.outer(x, np.ones(2))


# -- tensordot, kron --------------------------------------------------------------------------------------
@st.composite
def tensordot_cases(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...], Any]:
    """Shapes of a and b and a pair of axis lists: the summed axes sit anywhere, named in any order, some
    counted from the end."""
    sides = st.integers(0, 3)
    summed = draw(st.lists(sides, max_size=3))
    a_free, b_free = draw(st.lists(sides, max_size=2)), draw(st.lists(sides, max_size=2))

    def place(free: list[int]) -> tuple[tuple[int, ...], list[int]]:
        slots = draw(
            st.permutations([("summed", k) for k in range(len(summed))] + [("free", f) for f in free])
        )
        shape = tuple(summed[value] if kind == "summed" else value for kind, value in slots)
        axes = [slots.index(("summed", k)) for k in range(len(summed))]
        return shape, [axis - len(shape) if draw(st.booleans()) else axis for axis in axes]

    a_shape, a_axes = place(a_free)
    b_shape, b_axes = place(b_free)
    return a_shape, b_shape, (a_axes, b_axes)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_tensordot_over_pairs_of_axis_lists(dtype, data):
    a_shape, b_shape, axes = data.draw(tensordot_cases())
    a, b = data.draw(arrays(a_shape, dtype)), data.draw(arrays(b_shape, dtype))
    check_op(lambda a, b: np.tensordot(a, b, axes=axes), a, b)
    if len(axes[0]) == 1:  # a single axis may be given as an int
        check_op(lambda a, b: np.tensordot(a, b, axes=(axes[0][0], axes[1][0])), a, b)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), count=st.integers(0, 2))
def test_tensordot_over_the_last_and_first_axes(dtype, data, count):
    summed = data.draw(hnp.array_shapes(min_dims=count, max_dims=count, min_side=0, max_side=3))
    a_free = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    b_free = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    a = data.draw(arrays((*a_free, *summed), dtype))
    b = data.draw(arrays((*summed, *b_free), dtype))
    check_op(lambda a, b: np.tensordot(a, b, axes=count), a, b)
    if count == 2:
        check_op(np.tensordot, a, b)  # numpy's default


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_kron_of_any_shapes(dtype, data):
    a = data.draw(arrays(data.draw(small_shapes), dtype))
    b = data.draw(arrays(data.draw(small_shapes), dtype))
    check_op(np.kron, a, b)


# -- multi_dot, matrix_power ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(
    data=st.data(),
    count=st.integers(2, 4),
    first_is_vector=st.booleans(),
    last_is_vector=st.booleans(),
)
def test_multi_dot_of_matrices_with_vectors_at_the_ends(dtype, data, count, first_is_vector, last_is_vector):
    sides = data.draw(st.lists(st.integers(0, 3), min_size=count + 1, max_size=count + 1))
    operand_shapes = [(sides[k], sides[k + 1]) for k in range(count)]
    if first_is_vector:
        operand_shapes[0] = operand_shapes[0][1:]
    if last_is_vector:
        operand_shapes[-1] = operand_shapes[-1][:1]
    operands = [data.draw(arrays(shape, dtype)) for shape in operand_shapes]
    check_op(lambda *operands: np.linalg.multi_dot(list(operands)), *operands)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), n=st.sampled_from([0, 1, 2, 3, 4, 5, 7, 12]))
def test_matrix_power_of_square_stacks(dtype, data, n):
    side = data.draw(st.integers(0, 3))
    batch = data.draw(hnp.array_shapes(min_dims=0, max_dims=1, min_side=0, max_side=2))
    # entries of size at most 1/side keep every power of the matrix of size at most 1
    a = data.draw(arrays((*batch, side, side), dtype, -1.0 / max(side, 1), 1.0 / max(side, 1)))
    check_op(lambda a: np.linalg.matrix_power(a, n), a)


def test_matrix_power_with_a_negative_exponent_inverts_or_is_refused():
    rng = np.random.default_rng(3)
    a = np.eye(3) * 2.0 + 0.3 * rng.standard_normal((3, 3))
    if np.linalg.inv in FUNCTIONS:
        check_op(lambda a: np.linalg.matrix_power(a, -2), a)
    else:
        with pytest.raises(TypeError, match=r"^numpy\.linalg\.matrix_power: a negative exponent \(n=-2\)"):
            np.linalg.matrix_power(tape.tensor(a, requires_grad=True), -2)


def test_matrix_power_needs_an_integer_exponent():
    a = tape.tensor(np.eye(2), requires_grad=True)
    with pytest.raises(
        TypeError, match=r"^numpy\.linalg\.matrix_power: the exponent must be an integer, got 1\.5"
    ):
        np.linalg.matrix_power(a, 1.5)


def test_matrix_power_of_a_non_square_matrix_is_refused_naming_the_op():
    a = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(np.linalg.LinAlgError, match=r"^.*square\nmatrix_power: array arguments"):
        np.linalg.matrix_power(a, 2)


# -- cross, vecdot, matvec, vecmat ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_cross_of_broadcast_stacks_of_3_vectors(dtype, data):
    a_batch, b_batch = data.draw(broadcastable_shapes(2))
    check_op(np.cross, data.draw(arrays((*a_batch, 3), dtype)), data.draw(arrays((*b_batch, 3), dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(
    data=st.data(),
    axisa=st.sampled_from([0, -2]),
    axisb=st.sampled_from([1, -1]),
    axisc=st.sampled_from([0, 1]),
)
def test_cross_along_other_axes(dtype, data, axisa, axisb, axisc):
    n = data.draw(st.integers(0, 3))
    a, b = data.draw(arrays((3, n), dtype)), data.draw(arrays((n, 3), dtype))
    check_op(lambda a, b: np.cross(a, b, axisa=axisa, axisb=axisb, axisc=axisc), a, b)
    check_op(lambda a, b: np.cross(a, b, axis=0), a, np.swapaxes(b, 0, 1).copy())


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), n=st.integers(0, 3))
def test_vecdot_of_broadcast_stacks_of_vectors(dtype, data, n):
    x_batch, y_batch = data.draw(broadcastable_shapes(2))
    x, y = data.draw(arrays((*x_batch, n), dtype)), data.draw(arrays((*y_batch, n), dtype))
    check_op(np.vecdot, x, y)
    check_op(np.linalg.vecdot, x, y)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), n=st.integers(0, 3), k=st.integers(0, 2))
def test_linalg_vecdot_along_another_axis(dtype, data, n, k):
    x = data.draw(arrays((2, n, k), dtype))
    y = data.draw(arrays((n, 1), dtype))
    check_op(lambda x, y: np.linalg.vecdot(x, y, axis=-2), x, y)
    # a non-negative axis counts in each operand's own axes: axis 1 of (2, n, k) and of (1, n)
    check_op(lambda x, y: np.linalg.vecdot(x, y, axis=1), x, y.reshape(1, n))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), m=st.integers(0, 3), n=st.integers(0, 3))
def test_matvec_and_vecmat_of_broadcast_stacks(dtype, data, m, n):
    matrix_batch, vector_batch = data.draw(broadcastable_shapes(2))
    matrix = data.draw(arrays((*matrix_batch, m, n), dtype))
    check_op(np.matvec, matrix, data.draw(arrays((*vector_batch, n), dtype)))
    check_op(np.vecmat, data.draw(arrays((*vector_batch, m), dtype)), matrix)


# -- einsum -----------------------------------------------------------------------------------------------
EINSUM = {  # what the subscripts do: subscripts
    "matmul": "ij,jk->ik",
    "matmul, implicit output": "ij,jk",
    "batched matmul": "bij,bjk->bik",
    "batched matmul, ellipsis broadcast": "...ij,...jk->...ik",
    "matrix times vector": "ij,j->i",
    "outer": "i,j->ij",
    "outer of matrices": "ij,kl->ijkl",
    "dot": "i,i->",
    "dot, implicit output": "i,i",
    "batched dot, ellipsis broadcast": "...i,...i->...",
    "trace": "ii->",
    "trace, implicit output": "ii",
    "trace of a product": "ab,ba->",
    "diagonal": "ii->i",
    "batched diagonal": "...ii->...i",
    "diagonal of a pair of axes, summed": "iij->j",
    "diagonal of non-adjacent axes": "iji->j",
    "three-way diagonal": "iii->i",
    "two diagonals times each other": "ii,jj->ij",
    "diagonal times a vector": "ii,i->i",
    "transpose": "ij->ji",
    "permutation of three axes": "ijk->kji",
    "identity, implicit output": "ij",
    "transpose, implicit output": "ji",
    "upper case before lower case, implicit output": "bA",
    "sum over all": "ij->",
    "sum over one axis": "ij->j",
    "sum over leading axis, ellipsis at the end": "i...->...",
    "identity on the ellipsis": "...",
    "ellipsis at the end, broadcast": "i...,i...->i...",
    "elementwise, ellipsis broadcast": "...,...->...",
    "index summed within one operand of two": "ij,jk->i",
    "operand summed whole": "ij,k->ij",
    "bilinear form": "i,ij,j->",
    "three operands in a chain": "ij,jk,kl->il",
    "three operands, contraction over all pairs": "ijk,ikl,jl->k",
    "scalar operand": ",ij->ij",
    "two scalars": ",->",
    "spaces around the arrow": "ij, jk -> ik",
}


@st.composite
def einsum_operands(draw: st.DrawFn, subscripts: str, dtype: Any) -> list[np.ndarray]:
    """Operands that fit ``subscripts``: a length (maybe 0) per letter, and for the operands with an
    ellipsis batch shapes that broadcast together (length-one and missing axes included)."""
    terms = subscripts.replace(" ", "").split("->")[0].split(",")
    letters = sorted(set("".join(terms).replace(".", "")))
    sizes = dict(
        zip(
            letters,
            draw(st.lists(st.integers(0, 3), min_size=len(letters), max_size=len(letters))),
            strict=True,
        )
    )
    with_ellipsis = [k for k, term in enumerate(terms) if "..." in term]
    batches = iter(
        draw(
            hnp.mutually_broadcastable_shapes(
                num_shapes=len(with_ellipsis), max_dims=2, min_side=0, max_side=3
            )
        ).input_shapes
        if with_ellipsis
        else ()
    )
    operands = []
    for term in terms:
        before, _, after = term.partition("...")
        batch = next(batches) if "..." in term else ()
        shape = (*(sizes[c] for c in before), *batch, *(sizes[c] for c in after))
        operands.append(draw(arrays(shape, dtype)))
    return operands


def interleaved(subscripts: str, operands: list[Any]) -> list[Any]:
    """The same call in numpy's interleaved form: ``a, [0, 1], b, [1, 2], [0, 2]``."""

    def sublist(term: str) -> list[Any]:
        before, has_ellipsis, after = term.partition("...")
        return (
            [LETTERS.index(c) for c in before]
            + [Ellipsis] * bool(has_ellipsis)
            + [LETTERS.index(c) for c in after]
        )

    text = subscripts.replace(" ", "")
    inputs, arrow, output = text.partition("->")
    arguments: list[Any] = []
    for operand, term in zip(operands, inputs.split(","), strict=True):
        arguments += [operand, sublist(term)]
    return arguments + [sublist(output)] * bool(arrow)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("subscripts", EINSUM.values(), ids=EINSUM.keys())
@given(data=st.data())
def test_einsum(subscripts, dtype, data):
    operands = data.draw(einsum_operands(subscripts, dtype))
    check_op(lambda *operands: np.einsum(subscripts, *operands), *operands)


@pytest.mark.parametrize("subscripts", EINSUM.values(), ids=EINSUM.keys())
@given(data=st.data())
def test_einsum_in_interleaved_form(subscripts, data):
    operands = data.draw(einsum_operands(subscripts, np.float64))
    check_op(lambda *operands: np.einsum(*interleaved(subscripts, list(operands))), *operands)


OPTIMIZED = [
    "ij,jk->ik",
    "...ij,...jk->...ik",
    "i,ij,j->",
    "ij,jk,kl->il",
    "ijk,ikl,jl->k",
    "ii,i->i",
    "ij,k->ij",
]


@pytest.mark.parametrize("optimize", [True, "greedy", "optimal", "path"])
@pytest.mark.parametrize("subscripts", OPTIMIZED)
@given(data=st.data())
def test_einsum_passes_optimize_to_numpy(subscripts, optimize, data):
    operands = data.draw(einsum_operands(subscripts, np.float64))
    if optimize == "path":
        optimize = np.einsum_path(subscripts, *operands, optimize="optimal")[0]
    check_op(lambda *operands: np.einsum(subscripts, *operands, optimize=optimize), *operands)


@pytest.mark.parametrize(
    ("subscripts", "operand_shapes"),
    [
        ("i...,i...->i...", [(2, 3), (2, 4, 1)]),
        ("i...j,j...->i...", [(2, 1, 3), (3, 4, 5)]),
        ("...ij,...jk->...ik", [(2, 3), (5, 1, 3, 4)]),
        ("...ij,...jk->ik", [(4, 2, 3), (1, 3, 2)]),
        ("j...i,...->i...", [(2, 3, 1), (4, 1)]),
    ],
)
@pytest.mark.parametrize("optimize", [False, True])
def test_einsum_ellipsis_covering_fewer_axes_in_one_operand(subscripts, operand_shapes, optimize):
    """An ellipsis that stands for fewer (or length-one) axes in one operand than in another, wherever the
    ellipsis sits in the subscripts: that operand's cotangent is summed over what it was broadcast along."""
    rng = np.random.default_rng(4)
    operands = [rng.uniform(-2.0, 2.0, shape) for shape in operand_shapes]
    if not optimize and "..." not in subscripts.split("->")[1]:
        # numpy's own einsum refuses to sum the ellipsis away unless it optimizes
        # numpy's own error; the op and what it was given are in a note (pytest matches notes too)
        with pytest.raises(ValueError, match=r"^.*no '\.\.\.' ellipsis.*\neinsum: array arguments"):
            np.einsum(subscripts, *(tape.tensor(x, requires_grad=True) for x in operands))
        return
    check_op(lambda *operands: np.einsum(subscripts, *operands, optimize=optimize), *operands)


def test_einsum_path_of_tensors_is_numpy_s():
    rng = np.random.default_rng(0)
    operands = [rng.standard_normal(shape) for shape in [(2, 30), (30, 4), (4, 50)]]
    tensors = [tape.tensor(x, requires_grad=True) for x in operands]
    assert np.einsum_path("ij,jk,kl->il", *tensors) == np.einsum_path("ij,jk,kl->il", *operands)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_einsum_with_python_scalars_and_arrays_that_need_no_gradient(dtype, data):
    x = data.draw(arrays(data.draw(small_shapes), dtype))
    check_op(lambda x: np.einsum("...,...", 2.5, x), x, keeps_dtype=False)
    check_op(lambda x: np.einsum("...,...->...", x, np.float32(0.5)), x, keeps_dtype=False)
    matrix = data.draw(arrays((2, 3), dtype))
    check_op(lambda y: np.einsum("ij,jk->ik", matrix, y), data.draw(arrays((3, 2), dtype)))


@given(data=st.data())
def test_einsum_of_float32_and_float64_gives_float64_and_each_its_own_gradient(data):
    a, b = data.draw(einsum_operands("...ij,...jk->...ik", np.float32))
    check_op(lambda a, b: np.einsum("...ij,...jk->...ik", a, b), a, b.astype(np.float64))


def test_einsum_without_summation_is_a_view_as_in_numpy():
    x = tape.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    y = x * 1.0
    diagonal = np.einsum("ii->i", y)
    assert np.shares_memory(diagonal.data, y.data)
    diagonal.sum().backward()
    np.testing.assert_array_equal(x.grad, np.eye(3))


# -- second derivatives -----------------------------------------------------------------------------------
def hvp_against_gradient_differences(f: Callable[..., Any], primals: list[np.ndarray], seed: int = 0) -> None:
    """tape.hvp against central differences of tape.grad along the same direction, in float64."""
    rng = np.random.default_rng(seed)
    tangents = [rng.standard_normal(np.shape(p)) for p in primals]
    exact = tape.hvp(f, tuple(primals), tuple(tangents))
    gradient = tape.grad(f, argnums=tuple(range(len(primals))))
    eps = 1e-5
    up = gradient(*(p + eps * t for p, t in zip(primals, tangents, strict=True)))
    down = gradient(*(p - eps * t for p, t in zip(primals, tangents, strict=True)))
    for k, found in enumerate(exact):
        np.testing.assert_allclose(
            found, (up[k] - down[k]) / (2 * eps), rtol=1e-5, atol=1e-7, err_msg=f"primal {k}"
        )


SECOND_ORDER = {  # name: (function of the operands, operand shapes)
    "einsum matmul": (lambda a, b: np.einsum("ij,jk->ik", a, b), [(2, 3), (3, 4)]),
    "einsum batched, broadcast": (
        lambda a, b: np.einsum("...ij,...jk->...ik", a, b),
        [(2, 1, 2, 3), (3, 3, 2)],
    ),
    "einsum ellipsis at the end": (lambda a, b: np.einsum("i...,i...->i...", a, b), [(2, 3), (2, 4, 1)]),
    "einsum diagonal": (lambda a: np.einsum("ii->i", a), [(3, 3)]),
    "einsum trace": (lambda a, b: np.einsum("ii,ij->j", a, b), [(3, 3), (3, 2)]),
    "einsum repeated and summed": (lambda a, b: np.einsum("iij,k->jk", a, b), [(2, 2, 3), (2,)]),
    "einsum bilinear": (lambda x, a, y: np.einsum("i,ij,j->", x, a, y), [(3,), (3, 4), (4,)]),
    "einsum three operands": (
        lambda a, b, c: np.einsum("ijk,ikl,jl->k", a, b, c),
        [(2, 3, 2), (2, 2, 2), (3, 2)],
    ),
    "einsum interleaved": (lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [0, 2]), [(2, 3), (3, 2)]),
    "tensordot pairs": (lambda a, b: np.tensordot(a, b, axes=([0, 2], [-1, 0])), [(2, 3, 4), (4, 3, 2)]),
    "tensordot int": (lambda a, b: np.tensordot(a, b, axes=1), [(2, 3), (3, 4)]),
    "vdot": (np.vdot, [(2, 3), (6,)]),
    "inner": (np.inner, [(2, 3), (4, 3)]),
    "outer": (np.outer, [(2, 2), (3,)]),
    "kron": (np.kron, [(2, 2), (3,)]),
    "multi_dot": (lambda a, b, c: np.linalg.multi_dot([a, b, c]), [(3,), (3, 4), (4, 2)]),
    "matrix_power": (lambda a: np.linalg.matrix_power(a, 5), [(2, 3, 3)]),
    "cross": (np.cross, [(2, 3), (3,)]),
    "vecdot": (np.vecdot, [(2, 3), (3,)]),
    "matvec": (np.matvec, [(2, 3), (3,)]),
    "vecmat": (np.vecmat, [(2,), (2, 3)]),
    "linalg.matmul": (np.linalg.matmul, [(2, 2, 3), (3, 2)]),
    "dot": (np.dot, [(3,), (3, 2)]),
    "linalg.outer": (np.linalg.outer, [(2,), (3,)]),
    "linalg.tensordot": (lambda a, b: np.linalg.tensordot(a, b, axes=1), [(2, 3), (3, 2)]),
    "linalg.vecdot": (lambda a, b: np.linalg.vecdot(a, b, axis=0), [(3, 2), (3, 1)]),
    "linalg.cross": (np.linalg.cross, [(2, 3), (3,)]),
    "matrix_power -2": (lambda a: np.linalg.matrix_power(a + 3 * np.eye(3), -2), [(2, 3, 3)]),
    "matrix_power 1": (lambda a: np.linalg.matrix_power(a, 1), [(2, 3, 3)]),
}


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivatives_against_finite_differences_of_the_gradient(name):
    product, operand_shapes = SECOND_ORDER[name]
    rng = np.random.default_rng(1)
    operands = [rng.uniform(-1.0, 1.0, shape) for shape in operand_shapes]
    hvp_against_gradient_differences(lambda *xs: np.sum(np.sin(product(*xs))), operands)


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivatives_by_gradgradcheck(name):
    # The VJPs of a product are products, recorded under create_graph: their own VJPs are checked here.
    product, operand_shapes = SECOND_ORDER[name]
    rng = np.random.default_rng(4)
    assert tape.gradgradcheck(product, *(rng.uniform(-1.0, 1.0, shape) for shape in operand_shapes))


def test_gradient_of_a_gradient_through_einsum_diagonal_and_summed_indices():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-1.0, 1.0, (3, 3, 2)), rng.uniform(-1.0, 1.0, (2, 4))

    def f(a, b):
        return np.sum(np.einsum("iij,jk->k", a, b) ** 3)

    def gradient_norm(a):
        (first,) = tape.gradients(f(a, b), [a], create_graph=True)
        return np.sum(first**2)

    tracked = tape.tensor(a, requires_grad=True)
    gradient_norm(tracked).backward()
    eps, numeric = 1e-6, np.zeros_like(a)
    for index in np.ndindex(a.shape):
        step = np.zeros_like(a)
        step[index] = eps
        numeric[index] = (
            gradient_norm(tape.tensor(a + step, requires_grad=True)).item()
            - gradient_norm(tape.tensor(a - step, requires_grad=True)).item()
        ) / (2 * eps)
    np.testing.assert_allclose(tracked.grad, numeric, rtol=1e-5, atol=1e-7)


# -- errors of the new products ---------------------------------------------------------------------------
EINSUM_ERRORS = [  # subscripts, operand shapes, exception, message (a regular expression)
    ("ij,ijk", [(2, 3), (2, 3)], ValueError, r"^einsum: operand 1 has 2 axes but subscripts 'ijk' name 3$"),
    (
        "ij...",
        [(2,)],
        ValueError,
        r"^einsum: operand 0 has 1 axes but subscripts 'ij\.\.\.' name at least 2$",
    ),
    ("ij,jk", [(2, 3)], ValueError, r"^einsum: subscripts 'ij,jk' name 2 operand\(s\) but 1 were given$"),
    ("ij", [(2, 3), (3,)], ValueError, r"^einsum: subscripts 'ij' name 1 operand\(s\) but 2 were given$"),
    ("i1", [(2, 3)], ValueError, r"^einsum: invalid character '1' in subscripts 'i1'"),
    (
        "i.j",
        [(2, 3)],
        ValueError,
        r"^einsum: subscripts 'i\.j' \(in 'i\.j'\) have a '\.' that is not part of one",
    ),
    (
        "ij->k",
        [(2, 3)],
        ValueError,
        r"^einsum: output subscript 'k' in 'ij->k' names no axis of any operand$",
    ),
    ("ij->ii", [(2, 3)], ValueError, r"^einsum: output subscripts in 'ij->ii' repeat i$"),
    ("ij->i->j", [(2, 3)], ValueError, r"^einsum: subscripts 'ij->i->j' have more than one '->'$"),
    # numpy's own errors; the op and what it was given are in a note (pytest matches notes too)
    ("ij,jk", [(2, 3), (4, 5)], ValueError, r"\neinsum: array arguments of shapes \(2, 3\), \(4, 5\);"),
    ("ii", [(2, 3)], ValueError, r"^dimensions .* collapsing index 'i'.*\neinsum: array arguments"),
]


@pytest.mark.parametrize(("subscripts", "operand_shapes", "error", "message"), EINSUM_ERRORS)
def test_einsum_subscripts_that_do_not_fit_are_refused(subscripts, operand_shapes, error, message):
    operands = [tape.tensor(np.ones(shape), requires_grad=True) for shape in operand_shapes]
    with pytest.raises(error, match=message):
        np.einsum(subscripts, *operands)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"dtype": np.float32}, r"^numpy\.einsum: dtype= is not supported on tape tensors"),
        ({"casting": "unsafe"}, r"^numpy\.einsum: casting='unsafe' is not supported on tape tensors$"),
        ({"out": np.zeros((2, 2))}, r"^numpy\.einsum: out= is not supported on tape tensors"),
    ],
    ids=["dtype", "casting", "out"],
)
def test_einsum_keywords_other_than_optimize_and_order_are_refused(keywords, message):
    x = tape.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(TypeError, match=message):
        np.einsum("ij,jk", x, x, **keywords)


def test_einsum_interleaved_subscripts_out_of_range_are_refused():
    x = tape.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(
        ValueError, match=r"^einsum: subscript 52 in the interleaved form is neither an integer"
    ):
        np.einsum(x, [0, 52])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda x: np.vdot(x, np.ones(5)),
            ValueError,
            r"^vdot: operands of shapes \(2, 3\) and \(5,\) have different numbers of elements \(6 != 5\)$",
        ),
        (
            lambda x: np.inner(x, np.ones(4)),
            ValueError,
            r"^inner: the last axes of shapes \(2, 3\) and \(4,\) differ \(3 != 4\)$",
        ),
        (
            lambda x: np.tensordot(x, np.ones((4, 2)), axes=1),
            ValueError,
            r"^tensordot: summed axes \(1,\) of shape \(2, 3\) \(sizes \(3,\)\) do not match "
            r"axes \(0,\) of shape \(4, 2\) \(sizes \(4,\)\)$",
        ),
        (
            lambda x: np.tensordot(x, np.ones((3, 2)), axes=([1, 0], [0])),
            ValueError,
            r"^tensordot: axes \(1, 0\) of a and \(0,\) of b name different numbers of axes$",
        ),
        (
            lambda x: np.tensordot(x, np.ones(3), axes=3),
            ValueError,
            r"^tensordot: axes=3 asks for the last 3 axes of a \(2-d\)",
        ),
        (
            lambda x: np.tensordot(x, np.ones(3), axes=([2], [0])),
            ValueError,
            r"^tensordot: axes \(2,\) out of range for a, which is 2-d$",
        ),
        (lambda x: np.linalg.multi_dot([x]), ValueError, r"^multi_dot: expected at least two arrays, got 1$"),
        (
            lambda x: np.linalg.multi_dot([x, np.ones((4, 2))]),
            ValueError,
            r"^shapes \(2,3\) and \(4,2\) not aligned.*\nmulti_dot: array arguments of shapes",
        ),
        (
            lambda x: np.cross(x[:, :2], np.ones((2, 3))),
            ValueError,
            r"^cross: only 3-vectors are supported on tape tensors; "
            r"a has shape \(2, 2\), with 2 along axis -1$",
        ),
        (
            lambda x: np.cross(np.ones(3), x, axisb=0),
            ValueError,
            r"^cross: only 3-vectors are supported on tape tensors; "
            r"b has shape \(2, 3\), with 2 along axis 0$",
        ),
        (lambda x: np.vecdot(x, np.ones(4)), ValueError, r"^vecdot: "),
        (lambda x: np.matvec(x, np.ones(4)), ValueError, r"^matvec: "),
    ],
    ids=[
        "vdot",
        "inner",
        "tensordot sizes",
        "tensordot counts",
        "tensordot int",
        "tensordot range",
        "multi_dot one",
        "multi_dot align",
        "cross a",
        "cross b",
        "vecdot",
        "matvec",
    ],
)
def test_products_of_operands_that_do_not_fit_are_refused(call, error, message):
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(error, match=message):
        call(x)


# -- dot of arrays with more than two axes ---------------------------------------------------------------
DOT_SHAPES = [
    ((2, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
    ((2, 3, 4), (4, 2)),
    ((3, 4), (2, 4, 3)),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(("a_shape", "b_shape"), DOT_SHAPES, ids=str)
@given(seed=st.integers(0, 2**32 - 1))
def test_dot_of_more_than_two_axes(a_shape, b_shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
    check_op(np.dot, a, b)


@pytest.mark.parametrize(("a_shape", "b_shape"), DOT_SHAPES, ids=str)
def test_dot_of_more_than_two_axes_second_derivative(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    assert tape.gradgradcheck(lambda a, b: np.dot(a, b) ** 2, a, b)


def test_dot_of_more_than_two_axes_refuses_misaligned_shapes():
    with pytest.raises(ValueError, match=r"^dot: shapes \(2, 3, 4\) and \(5, 3, 2\) do not align"):
        np.dot(tape.tensor(np.ones((2, 3, 4))), tape.tensor(np.ones((5, 3, 2))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_weight_read_transposed_gets_its_gradient_in_its_own_layout(dtype):
    """``x @ w.T`` (and ``w.T @ x``): w.grad is C-ordered like w, and right; an update over a transposed
    gradient would read memory across rows."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(dtype)
    w = tape.tensor(rng.standard_normal((3, 4)).astype(dtype), requires_grad=True)
    v = tape.tensor(rng.standard_normal((5, 3)).astype(dtype), requires_grad=True)
    (np.sum((x @ w.T) * 2) + np.sum(w.T @ v.T)).backward()
    assert w.grad.flags.c_contiguous and v.grad.flags.c_contiguous
    expected = 2 * np.ones((3, 5)) @ x + v.data.sum(axis=0)[:, None]
    np.testing.assert_allclose(w.grad, expected, rtol=1e-5)
    w64, v64 = w.data.astype(np.float64), v.data.astype(np.float64)
    assert tape.gradcheck(lambda w, v: (x @ w.T) * np.sum(w.T @ v.T), w64, v64)

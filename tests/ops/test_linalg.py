"""ops/linalg.py: matrix products (``@``, ``np.matmul``, ``np.dot``, ``.dot``) of vectors, matrices and
stacks of matrices with broadcast batch axes, checked against numpy's forward and against finite
differences, in float64 and float32; and the errors for operands that do not align."""

from __future__ import annotations

import operator
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
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
    with pytest.raises(ValueError, match=r"^matmul: operands could not be broadcast together"):
        x @ np.ones((5, 4, 2))


def test_dot_of_more_than_two_dimensions_is_refused():
    x = tape.tensor(np.ones((2, 3, 4)), requires_grad=True)
    with pytest.raises(
        TypeError, match=r"numpy\.dot: operands of shapes \(2, 3, 4\) and \(4,\); dot of arrays"
    ):
        np.dot(x, np.ones(4))


UNSUPPORTED = {  # numpy function name: how to call it on a tensor
    "numpy.linalg.inv": lambda x: np.linalg.inv(x),
    "numpy.linalg.det": lambda x: np.linalg.det(x),
    "numpy.linalg.solve": lambda x: np.linalg.solve(x, x),
    "numpy.fft.fft": lambda x: np.fft.fft(x),
    "numpy.tensordot": lambda x: np.tensordot(x, x),
    "numpy.einsum": lambda x: np.einsum("ij,jk->ik", x, x),
}


@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("name", UNSUPPORTED)
def test_a_function_without_a_vjp_is_refused_at_forward_time_naming_it(name, requires_grad):
    x = tape.tensor(np.eye(2), requires_grad=requires_grad)
    with pytest.raises(TypeError, match=f"^{re.escape(name)} is not supported on tape tensors"):
        UNSUPPORTED[name](x)

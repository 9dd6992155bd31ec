"""Linear algebra: products of vectors, matrices and tensors (``@``, ``dot``, ``vdot``, ``inner``, ``outer``,
``tensordot``, ``kron``, ``multi_dot``, ``matrix_power``, ``cross``, ``vecdot``, ``matvec``, ``vecmat``,
``einsum``, and the array API's spellings in ``np.linalg``), each forward beside its VJPs.

Each forward calls numpy's own function, so values are numpy's to the bit, except that large 2-D float
products go to MKL when tape's ``mkl`` extra is installed (``ops/mkl.py``). The VJPs are products too,
written with the same registered functions (the VJP of ``tensordot`` is a ``tensordot``, that of ``einsum``
an ``einsum``), so they differentiate again under ``create_graph``. Batch axes that were broadcast are
summed by the engine. Decompositions and solvers (inv, det, solve, ...) live in ``ops/decompositions.py``.

Complex values follow PyTorch's convention (see ``tape.Op``). The products that conjugate nothing are
analytic in each operand, so their VJPs, written with plain transposes, serve complex values as they are
(``complex_rule="holomorphic"``): matmul, dot, inner, outer, tensordot, kron, multi_dot, matrix_power,
cross and einsum. ``vdot``, ``vecdot`` and ``vecmat`` conjugate their first operand, so their VJPs conjugate
where the mathematics does themselves (``"own"``); so does ``matvec``'s, written with ``vecmat`` (which
conjugates). On real values that costs one dtype check.
"""

from __future__ import annotations

import functools
import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tape.inplace import apply_in_place
from tape.op import Op
from tape.registry import FUNCTIONS, implements
from tape.tensor import Tensor

from . import mkl
from .product_kernels import matrix_times_two_vectors


def _conj(x: Any) -> Any:
    """``conj(x)`` for complex values; real ones are returned as they are (no copy on the real path)."""
    return np.conj(x) if x.dtype.kind == "c" else x


# -- matmul, dot ------------------------------------------------------------------------------------------


def _matmul_vjp_x(g: Any, out: Any, x: Any, y: Any) -> Any:
    if np.ndim(y) == 1:
        # out[..., i] = sum_k x[..., i, k] y[k]  (or a scalar when x is 1-D too)
        return np.expand_dims(g, -1) * y
    if np.ndim(x) == 1 and np.ndim(y) > 2:
        # out[..., j] = sum_k x[k] y[..., k, j]
        return np.squeeze(np.matmul(y, np.expand_dims(g, -1)), -1)
    if _transposed_matrix(x) and type(g) is np.ndarray and g.ndim == 2:
        return mkl.matmul(y, g.T).T  # in x's layout (see _transposed_matrix)
    # Also x 1-D with y a matrix: g @ y.T, which keeps a batch of cotangents (jacobian's rows) in front.
    return mkl.matmul(g, np.swapaxes(y, -1, -2))


def _matmul_vjp_y(g: Any, out: Any, x: Any, y: Any) -> Any:
    if np.ndim(x) == 1:
        if np.ndim(y) == 1:
            # g is a scalar, or a row of scalars when it carries a leading batch axis (jacobian)
            return np.expand_dims(g, -1) * x
        return np.expand_dims(x, -1) * np.expand_dims(g, -2)
    if np.ndim(y) == 1:
        return np.squeeze(np.matmul(np.swapaxes(x, -1, -2), np.expand_dims(g, -1)), -1)
    if _transposed_matrix(y) and type(g) is np.ndarray and g.ndim == 2:
        return mkl.matmul(g.T, x).T  # in y's layout (see _transposed_matrix)
    return mkl.matmul(np.swapaxes(x, -1, -2), g)


def _transposed_matrix(a: Any) -> bool:
    """Whether ``a`` is a plain matrix laid out as a transpose (Fortran order): ``w.T`` of a C-ordered ``w``,
    as ``x @ w.T`` reads a weight. Its gradient is then computed as the transpose of a C-ordered product, so
    that after ``transpose``'s VJP ``w.grad`` is C-ordered like ``w``: an update ``w -= lr * w.grad`` over
    a transposed gradient reads memory across rows and takes several times as long."""
    return type(a) is np.ndarray and a.ndim == 2 and a.flags.f_contiguous and not a.flags.c_contiguous


def _check_matmul(x: Any, y: Any) -> None:
    x_shape, y_shape = np.shape(x), np.shape(y)
    if not x_shape or not y_shape:
        raise ValueError(
            f"matmul: operands must have at least one dimension, got shapes {x_shape} and {y_shape}"
        )
    inner_x = x_shape[-1]
    inner_y = y_shape[0] if len(y_shape) == 1 else y_shape[-2]
    if inner_x != inner_y:
        raise ValueError(f"matmul: shapes {x_shape} and {y_shape} do not align ({inner_x} != {inner_y})")


def _matmul(x: Any, y: Any) -> Any:
    try:
        return mkl.matmul(x, y)
    except ValueError:
        _check_matmul(x, y)
        raise


def _sum_present(*terms: Any) -> Any:
    """The sum of the terms that are not None (None if all are)."""
    present = [term for term in terms if term is not None]
    return None if not present else sum(present[1:], present[0])


def _tangent_times(dx: Any, y: Any, x_ndim: int) -> Any:
    """``dx @ y`` for the tangent ``dx`` of an ``x`` of ``x_ndim`` axes, or for several stacked on a leading
    axis, each multiplied as ``x`` would be."""
    if dx.ndim == x_ndim:
        return _matmul(dx, y)
    if x_ndim == 1:  # the stacked vectors are the rows of one matrix
        product = _matmul(dx, y)
        return product if np.ndim(y) <= 2 else np.moveaxis(product, -2, 0)
    # The stack's axis must lie before every batch axis of y's, not be paired with one.
    padding = (1,) * max(0, np.ndim(y) - x_ndim)
    return np.matmul(dx.reshape(dx.shape[:1] + padding + dx.shape[1:]), y)


def _times_tangent(x: Any, dy: Any, y_ndim: int) -> Any:
    """``x @ dy`` for the tangent ``dy`` of a ``y`` of ``y_ndim`` axes, or for several stacked on a leading
    axis, each multiplied as ``y`` would be."""
    if dy.ndim == y_ndim:
        return _matmul(x, dy)
    if y_ndim == 1:  # the stacked vectors are rows: (rows of dy) times x's transpose
        if np.ndim(x) == 1:
            return _matmul(dy, x)
        return np.moveaxis(_matmul(dy, np.swapaxes(x, -1, -2)), -2, 0)
    padding = (1,) * max(0, np.ndim(x) - y_ndim)
    return np.matmul(x, dy.reshape(dy.shape[:1] + padding + dy.shape[1:]))


def _matmul_with_tangent(tangents: tuple[Any, Any], x: Any, y: Any) -> tuple[Any, Any] | None:
    """Forward mode's joint rule: ``x @ y`` and its tangent in one product, the operand that has a tangent
    stacked with it (``[x; dx] @ y`` or ``x @ [y, dy]``), so the other operand, a layer's weight, is read
    once where the forward and then the JVP would read it twice. The stacked product is MKL's (numpy's
    BLAS is slower on two rows than on two matrix-vector products); without MKL a matrix times a vector
    and its tangent takes ``product_kernels``. Only where the other operand is the larger; None
    otherwise."""
    dx, dy = tangents
    if (dx is None) == (dy is None) or type(x) is not np.ndarray or type(y) is not np.ndarray:
        return None
    if x.dtype != y.dtype or x.dtype.kind != "f":
        return None
    with_mkl = mkl.gemms() is not None
    if dx is not None:
        if not with_mkl or x.ndim not in (1, 2) or y.ndim != 2 or x.shape[-1] != y.shape[0]:
            return None
        if dx.shape != x.shape or x.size > y.size:
            return None
        if x.ndim == 1:
            both = mkl.matmul(np.stack([x, dx]), y)
            return both[0], both[1]
        both = mkl.matmul(np.concatenate([x, dx]), y)
        return both[: len(x)], both[len(x) :]
    if x.ndim != 2 or y.ndim not in (1, 2) or x.shape[1] != y.shape[0] or dy.shape != y.shape:
        return None
    if y.size > x.size:
        return None
    if y.ndim == 1:  # W @ x: MKL takes [x; dx] as two rows times W's transpose, reading W once
        if not with_mkl:
            return matrix_times_two_vectors(x, y, dy)
        both = mkl.matmul(np.stack([y, dy]), x.T)
        return both[0], both[1]
    if not with_mkl:
        return None
    columns = y.shape[1]
    both = mkl.matmul(x, np.concatenate([y, dy], axis=1))
    return np.ascontiguousarray(both[:, :columns]), np.ascontiguousarray(both[:, columns:])


# Every VJP above also takes cotangents with leading batch axes (jacobian's rows).
matmul = Op(
    _matmul,
    _matmul_vjp_x,
    _matmul_vjp_y,
    name="matmul",
    batched=True,
    keeps_output=False,
    complex_rule="holomorphic",
    jvp=lambda tangents, out, x, y: _sum_present(
        None if tangents[0] is None else _tangent_times(tangents[0], y, np.ndim(x)),
        None if tangents[1] is None else _times_tangent(x, tangents[1], np.ndim(y)),
    ),
    forward_jvp=_matmul_with_tangent,
    batched_jvp=True,
)
implements(np.matmul)(matmul)
implements(operator.imatmul)(functools.partial(apply_in_place, matmul))


@implements(np.linalg.matmul)
def linalg_matmul(x1: Any, x2: Any, /) -> Any:
    """``np.linalg.matmul`` on tensors: the array API's spelling of ``np.matmul``."""
    return matmul(x1, x2)


def _summed_axis_of_b(b: Any) -> int:
    """The axis of ``b`` that ``np.dot`` sums against the last axis of ``a``: the second-to-last, or the
    only one of a 1-D ``b``."""
    return max(np.ndim(b) - 2, 0)


def _dot(a: Any, b: Any) -> Any:
    a_shape, b_shape = np.shape(a), np.shape(b)
    summed = _summed_axis_of_b(b)
    if a_shape[-1] != b_shape[summed]:
        raise ValueError(
            f"dot: shapes {a_shape} and {b_shape} do not align ({a_shape[-1]} (axis {len(a_shape) - 1}) "
            f"!= {b_shape[summed]} (axis {summed})); dot sums the last axis of a with the second-to-last of b"
        )
    return np.dot(a, b)


def _dot_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    # out[I, K, m] = sum_j a[I, j] b[K, j, m]: contract g's K and m axes with b's
    summed = _summed_axis_of_b(b)
    kept_b = [axis for axis in range(np.ndim(b)) if axis != summed]
    free_a = np.ndim(a) - 1
    return np.tensordot(g, b, axes=(list(range(free_a, free_a + len(kept_b))), kept_b))


def _dot_vjp_b(g: Any, out: Any, a: Any, b: Any) -> Any:
    free_a = list(range(np.ndim(a) - 1))
    return np.moveaxis(np.tensordot(a, g, axes=(free_a, free_a)), 0, _summed_axis_of_b(b))


# np.dot of operands with more than two axes (numpy computes it differently from matmul and tensordot).
dot_op = Op(_dot, _dot_vjp_a, _dot_vjp_b, name="dot", complex_rule="holomorphic")


@implements(np.dot)
def dot(a: Any, b: Any, out: Any = None) -> Any:
    """``np.dot`` on tensors: a product with a scalar, a matrix product of 1-D and 2-D operands, and for
    more axes a sum over the last axis of ``a`` and the second-to-last of ``b`` (its only one if 1-D):
    ``dot(a, b)[i, j, k, m] = sum(a[i, j, :] * b[k, :, m])``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor(np.ones((2, 3, 4)), requires_grad=True)
    >>> b = tape.tensor(np.ones((5, 4, 6)), requires_grad=True)
    >>> np.sum(np.dot(a, b)).backward()
    >>> np.dot(a, b).shape, a.grad[0, 0, 0]
    ((2, 3, 5, 6), np.float64(30.0))
    """
    if out is not None:
        raise TypeError("numpy.dot: out= is not supported on tape tensors; assign the result instead")
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return np.multiply(a, b)
    if np.ndim(a) <= 2 and np.ndim(b) <= 2:
        return matmul(a, b)
    return dot_op(a, b)


# -- vdot, inner, outer -----------------------------------------------------------------------------------


def _vdot(a: Any, b: Any) -> Any:
    if np.size(a) != np.size(b):
        raise ValueError(
            f"vdot: operands of shapes {np.shape(a)} and {np.shape(b)} have different numbers of elements "
            f"({np.size(a)} != {np.size(b)})"
        )
    return np.vdot(a, b)


# Both operands are flattened, so each cotangent is the other operand poured into this one's shape.
# vdot(a, b) = sum(conj(a) * b) depends on conj(a): a's cotangent is conj(g) * b, b's is g * a.
vdot = Op(
    _vdot,
    lambda g, out, a, b: _conj(g) * np.reshape(b, np.shape(a)),
    lambda g, out, a, b: g * np.reshape(a, np.shape(b)),
    name="vdot",
    complex_rule="own",
)
implements(np.vdot)(vdot)


def _inner(a: Any, b: Any) -> Any:
    if np.shape(a)[-1] != np.shape(b)[-1]:
        raise ValueError(
            f"inner: the last axes of shapes {np.shape(a)} and {np.shape(b)} differ "
            f"({np.shape(a)[-1]} != {np.shape(b)[-1]})"
        )
    return np.inner(a, b)


def _inner_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    # out[I, J] = sum_k a[I, k] b[J, k]: contract g's J axes with b's
    a_free, b_free = np.ndim(a) - 1, np.ndim(b) - 1
    return np.tensordot(g, b, axes=(list(range(a_free, a_free + b_free)), list(range(b_free))))


def _inner_vjp_b(g: Any, out: Any, a: Any, b: Any) -> Any:
    a_free = np.ndim(a) - 1
    return np.tensordot(g, a, axes=(list(range(a_free)), list(range(a_free))))


inner_op = Op(_inner, _inner_vjp_a, _inner_vjp_b, name="inner", complex_rule="holomorphic")


@implements(np.inner)
def inner(a: Any, b: Any) -> Any:
    """``np.inner`` on tensors: the sum over the last axes of both operands (a product if one is 0-d).

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor(np.ones((2, 3)), requires_grad=True)
    >>> np.inner(a, np.arange(3.0)).shape
    (2,)
    """
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return np.multiply(a, b)
    return inner_op(a, b)


outer_op = Op(
    np.outer,
    lambda g, out, a, b: np.reshape(np.matmul(g, np.ravel(b)), np.shape(a)),
    lambda g, out, a, b: np.reshape(np.matmul(np.ravel(a), g), np.shape(b)),
    name="outer",
    complex_rule="holomorphic",
)


@implements(np.outer)
def outer(a: Any, b: Any, out: Any = None) -> Any:
    """``np.outer`` on tensors: every element of ``ravel(a)`` times every element of ``ravel(b)``."""
    return outer_op(a, b)


@implements(np.linalg.outer)
def linalg_outer(x1: Any, x2: Any, /) -> Any:
    """``np.linalg.outer`` on tensors: ``np.outer`` of two vectors (the array API's stricter spelling)."""
    if np.ndim(x1) != 1 or np.ndim(x2) != 1:
        raise ValueError(
            f"numpy.linalg.outer: operands must be 1-D, got shapes {np.shape(x1)} and {np.shape(x2)}"
        )
    return outer_op(x1, x2)


# -- tensordot, kron --------------------------------------------------------------------------------------


def tensordot_axes(axes: Any, a_ndim: int, b_ndim: int) -> tuple[list[int], list[int]]:
    """``tensordot``'s ``axes`` (an int N, or a pair of ints or sequences) as two lists of axes >= 0."""
    if isinstance(axes, int | np.integer):
        count = int(axes)
        if count < 0 or count > min(a_ndim, b_ndim):
            raise ValueError(
                f"tensordot: axes={count} asks for the last {count} axes of a ({a_ndim}-d) and the first "
                f"{count} of b ({b_ndim}-d)"
            )
        return list(range(a_ndim - count, a_ndim)), list(range(count))
    try:
        a_axes, b_axes = axes
    except (TypeError, ValueError):
        raise TypeError(f"tensordot: axes must be an int or a pair of axis sequences, got {axes!r}") from None
    a_axes = [a_axes] if isinstance(a_axes, int | np.integer) else list(a_axes)
    b_axes = [b_axes] if isinstance(b_axes, int | np.integer) else list(b_axes)
    if len(a_axes) != len(b_axes):
        raise ValueError(
            f"tensordot: axes {tuple(a_axes)} of a and {tuple(b_axes)} of b name different numbers of axes"
        )
    for name, picked, ndim in (("a", a_axes, a_ndim), ("b", b_axes, b_ndim)):
        if any(not -ndim <= axis < ndim for axis in picked):
            raise ValueError(f"tensordot: axes {tuple(picked)} out of range for {name}, which is {ndim}-d")
    return [int(axis) % a_ndim for axis in a_axes], [int(axis) % b_ndim for axis in b_axes]


def _tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    a_axes, b_axes = tensordot_axes(axes, np.ndim(a), np.ndim(b))
    a_sizes = tuple(np.shape(a)[axis] for axis in a_axes)
    b_sizes = tuple(np.shape(b)[axis] for axis in b_axes)
    if a_sizes != b_sizes:
        raise ValueError(
            f"tensordot: summed axes {tuple(a_axes)} of shape {np.shape(a)} (sizes {a_sizes}) do not match "
            f"axes {tuple(b_axes)} of shape {np.shape(b)} (sizes {b_sizes})"
        )
    return np.tensordot(a, b, axes)


def _tensordot_vjp_a(g: Any, out: Any, a: Any, b: Any, axes: Any = 2) -> Any:
    a_axes, b_axes = tensordot_axes(axes, np.ndim(a), np.ndim(b))
    a_free = [axis for axis in range(np.ndim(a)) if axis not in a_axes]
    b_free = [axis for axis in range(np.ndim(b)) if axis not in b_axes]
    # g's axes are a's free axes then b's; contracting b's away leaves a's free axes, then a's summed
    # axes in the order of their partners in b (ascending), which a transpose puts back in place.
    grad = np.tensordot(g, b, axes=(list(range(len(a_free), len(a_free) + len(b_free))), b_free))
    partner = dict(zip(b_axes, a_axes, strict=True))
    placed = a_free + [partner[axis] for axis in sorted(b_axes)]
    return np.transpose(grad, tuple(int(axis) for axis in np.argsort(placed)))


def _tensordot_vjp_b(g: Any, out: Any, a: Any, b: Any, axes: Any = 2) -> Any:
    a_axes, b_axes = tensordot_axes(axes, np.ndim(a), np.ndim(b))
    a_free = [axis for axis in range(np.ndim(a)) if axis not in a_axes]
    b_free = [axis for axis in range(np.ndim(b)) if axis not in b_axes]
    grad = np.tensordot(a, g, axes=(a_free, list(range(len(a_free)))))
    partner = dict(zip(a_axes, b_axes, strict=True))
    placed = [partner[axis] for axis in sorted(a_axes)] + b_free
    return np.transpose(grad, tuple(int(axis) for axis in np.argsort(placed)))


tensordot_op = Op(
    _tensordot, _tensordot_vjp_a, _tensordot_vjp_b, name="tensordot", complex_rule="holomorphic"
)


@implements(np.tensordot)
def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    """``np.tensordot`` on tensors: ``axes`` is an int N (last N of ``a`` with first N of ``b``) or a pair.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor(np.ones((2, 3, 4)), requires_grad=True)
    >>> np.tensordot(a, np.ones((4, 3)), axes=([1, 2], [1, 0])).shape
    (2,)
    """
    return tensordot_op(a, b, axes)


@implements(np.linalg.tensordot)
def linalg_tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    """``np.linalg.tensordot`` on tensors: ``np.tensordot`` with ``axes`` given by keyword."""
    return tensordot_op(x1, x2, axes)


def _kron_layout(a: Any, b: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Both shapes padded with leading ones to a common length, and the output's shape split per axis
    into (a's size, b's size) pairs."""
    ndim = max(np.ndim(a), np.ndim(b))
    a_shape = (1,) * (ndim - np.ndim(a)) + np.shape(a)
    b_shape = (1,) * (ndim - np.ndim(b)) + np.shape(b)
    interleaved = tuple(size for pair in zip(a_shape, b_shape, strict=True) for size in pair)
    return a_shape, b_shape, interleaved


def _kron_blocks(g: Any, a: Any, b: Any) -> tuple[Any, Any, Any, int]:
    """g as an array with a's axes first and b's after (``out[i*m + j] = a[i] * b[j]`` per axis)."""
    a_shape, b_shape, interleaved = _kron_layout(a, b)
    ndim = len(a_shape)
    blocks = np.transpose(np.reshape(g, interleaved), (*range(0, 2 * ndim, 2), *range(1, 2 * ndim, 2)))
    return blocks, np.reshape(a, a_shape), np.reshape(b, b_shape), ndim


def _kron_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    blocks, _, padded_b, ndim = _kron_blocks(g, a, b)
    return np.reshape(np.tensordot(blocks, padded_b, axes=ndim), np.shape(a))


def _kron_vjp_b(g: Any, out: Any, a: Any, b: Any) -> Any:
    blocks, padded_a, _, ndim = _kron_blocks(g, a, b)
    return np.reshape(np.tensordot(padded_a, blocks, axes=ndim), np.shape(b))


kron_op = Op(np.kron, _kron_vjp_a, _kron_vjp_b, name="kron", complex_rule="holomorphic")


@implements(np.kron)
def kron(a: Any, b: Any) -> Any:
    """``np.kron`` on tensors: the Kronecker product, blocks of ``b`` scaled by each element of ``a``."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return np.multiply(a, b)
    return kron_op(a, b)


# -- multi_dot, matrix_power ------------------------------------------------------------------------------


def _as_matrix(x: Any, first: bool, last: bool) -> Any:
    """multi_dot's 1-D end operands as the row (first) or column (last) matrix they stand for."""
    if np.ndim(x) != 1:
        return x
    return np.reshape(x, (1, -1)) if first else np.reshape(x, (-1, 1)) if last else x


def _multi_dot_vjp(position: int, g: Any, out: Any, *arrays: Any) -> Any:
    last = len(arrays) - 1
    matrices = [_as_matrix(x, k == 0, k == last) for k, x in enumerate(arrays)]
    rows, cols = np.shape(matrices[0])[0], np.shape(matrices[-1])[-1]
    # d(A0 ... An)/dAk contracted with g is (A0 ... Ak-1)^T g (Ak+1 ... An)^T, one chain whose order
    # multi_dot chooses
    chain = [
        *(np.swapaxes(m, 0, 1) for m in reversed(matrices[:position])),
        np.reshape(g, (rows, cols)),
        *(np.swapaxes(m, 0, 1) for m in reversed(matrices[position + 1 :])),
    ]
    return np.reshape(np.linalg.multi_dot(chain), np.shape(arrays[position]))


def _multi_dot(*arrays: Any) -> Any:
    return np.linalg.multi_dot(arrays)


@functools.cache
def _multi_dot_op(count: int) -> Op:
    vjps = [functools.partial(_multi_dot_vjp, k) for k in range(count)]
    return Op(_multi_dot, *vjps, name="multi_dot", complex_rule="holomorphic")


@implements(np.linalg.multi_dot)
def multi_dot(arrays: Sequence[Any], *, out: Any = None) -> Any:
    """``np.linalg.multi_dot`` on tensors: a chain of matrix products in the cheapest order.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor(np.ones((2, 3)), requires_grad=True)
    >>> np.linalg.multi_dot([a, np.ones((3, 4)), np.ones(4)]).shape
    (2,)
    """
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError(f"multi_dot: expected at least two arrays, got {len(arrays)}")
    return _multi_dot_op(len(arrays))(*arrays)


def _matrix_power_vjp(g: Any, out: Any, a: Any, n: int) -> Any:
    if n == 0:
        return np.zeros_like(a)
    # The cotangent is F(n) = sum_{i<n} B^i g B^(n-1-i) with B = a^T. Walking n's bits from the top with
    # F(2m) = B^m F(m) + F(m) B^m and F(m+1) = g B^m + B F(m) takes O(log n) products, like the forward.
    transposed = np.swapaxes(a, -1, -2)
    power, total = transposed, g
    for bit in bin(n)[3:]:
        total = np.matmul(power, total) + np.matmul(total, power)
        power = np.matmul(power, power)
        if bit == "1":
            total = np.matmul(g, power) + np.matmul(transposed, total)
            power = np.matmul(power, transposed)
    return total


matrix_power_op = Op(
    np.linalg.matrix_power, _matrix_power_vjp, name="matrix_power", complex_rule="holomorphic"
)


@implements(np.linalg.matrix_power)
def matrix_power(a: Any, n: int) -> Any:
    """``np.linalg.matrix_power`` on tensors: ``a @ a @ ... @ a`` (n times) for square (stacks of) matrices.

    A negative ``n`` inverts first, and needs ``np.linalg.inv`` to be differentiable.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor(np.eye(2) * 2.0, requires_grad=True)
    >>> np.linalg.matrix_power(a, 3)[0, 0].item()
    8.0
    """
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(
            f"numpy.linalg.matrix_power: the exponent must be an integer, got {n!r} ({type(n).__name__})"
        ) from None
    if n < 0:
        if np.linalg.inv not in FUNCTIONS:
            raise TypeError(
                f"numpy.linalg.matrix_power: a negative exponent (n={n}) needs numpy.linalg.inv, which is "
                "not supported on tape tensors here; use a non-negative exponent"
            )
        return matrix_power_op(np.linalg.inv(a), -n)
    return matrix_power_op(a, n)


# -- cross, vecdot, matvec, vecmat ------------------------------------------------------------------------


def _from_end(axis: int, ndim: int) -> int:
    """``axis`` counted from the end (negative), so it names the same axis after leading axes are added."""
    return axis - ndim if axis >= 0 else axis


def _cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1) -> Any:
    return np.cross(a, b, axisa=axisa, axisb=axisb, axisc=axisc)


def _cross_vjp_a(g: Any, out: Any, a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1) -> Any:
    # <g, a x b> = <a, b x g>
    grad = np.cross(np.moveaxis(b, axisb, -1), np.moveaxis(g, axisc, -1))
    return np.moveaxis(grad, -1, _from_end(axisa, np.ndim(a)))


def _cross_vjp_b(g: Any, out: Any, a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1) -> Any:
    # <g, a x b> = <b, g x a>
    grad = np.cross(np.moveaxis(g, axisc, -1), np.moveaxis(a, axisa, -1))
    return np.moveaxis(grad, -1, _from_end(axisb, np.ndim(b)))


cross_op = Op(_cross, _cross_vjp_a, _cross_vjp_b, name="cross", complex_rule="holomorphic")


@implements(np.cross)
def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: int | None = None) -> Any:
    """``np.cross`` on tensors, for 3-vectors (numpy deprecates 2-vectors) along ``axisa``/``axisb``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 0.0, 0.0], requires_grad=True)
    >>> np.cross(x, np.array([0.0, 1.0, 0.0])).tolist()
    [0.0, 0.0, 1.0]
    """
    if axis is not None:
        axisa = axisb = axisc = axis
    for name, operand, picked in (("a", a, axisa), ("b", b, axisb)):
        shape = np.shape(operand)
        if not -len(shape) <= picked < len(shape):
            raise ValueError(f"cross: axis {picked} is out of range for {name} of shape {shape}")
        if shape[picked] != 3:
            raise ValueError(
                f"cross: only 3-vectors are supported on tape tensors; {name} has shape {shape}, with "
                f"{shape[picked]} along axis {picked}"
            )
    return cross_op(a, b, axisa=axisa, axisb=axisb, axisc=axisc)


@implements(np.linalg.cross)
def linalg_cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """``np.linalg.cross`` on tensors: ``np.cross`` of 3-vectors along ``axis``."""
    return cross(x1, x2, axis=axis)


def _vecdot(x1: Any, x2: Any, axis: int = -1) -> Any:
    return np.vecdot(x1, x2, axis=axis)


def _vecdot_vjp(g: Any, x: Any, other: Any, axis: int) -> Any:
    """Cotangent of ``x`` in ``sum(x * other, axis)``, both moved so that axis is last and back."""
    grad = np.expand_dims(g, -1) * np.moveaxis(other, axis, -1)
    return np.moveaxis(grad, -1, _from_end(axis, np.ndim(x)))


# vecdot(x1, x2) = sum(conj(x1) * x2, axis): x1's cotangent is conj(g) x2, x2's is g x1.
vecdot = Op(
    _vecdot,
    lambda g, out, x1, x2, axis=-1: _vecdot_vjp(_conj(g), x1, x2, axis),
    lambda g, out, x1, x2, axis=-1: _vecdot_vjp(g, x2, x1, axis),
    name="vecdot",
    complex_rule="own",
)
implements(np.vecdot)(vecdot)


@implements(np.linalg.vecdot)
def linalg_vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """``np.linalg.vecdot`` on tensors: the dot product of vectors along ``axis``, batch axes broadcast.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    >>> np.linalg.vecdot(x, np.arange(3.0)).tolist()
    [3.0, 3.0]
    """
    return vecdot(x1, x2, axis=axis)


# matvec(A, v)[..., i] = sum_j A[..., i, j] v[..., j]: A's cotangent is g conj(v)^T, v's is A^H g, which is
# conj(vecmat(g, A)) since vecmat conjugates its vector.
# vecmat(v, A)[..., j] = sum_i conj(v[..., i]) A[..., i, j] conjugates v: v's cotangent is A conj(g).
matvec = Op(
    np.matvec,
    lambda g, out, matrix, vector: np.expand_dims(g, -1) * np.expand_dims(_conj(vector), -2),
    lambda g, out, matrix, vector: _conj(np.vecmat(g, matrix)),
    name="matvec",
    complex_rule="own",
)
vecmat = Op(
    np.vecmat,
    lambda g, out, vector, matrix: np.matvec(matrix, _conj(g)),
    lambda g, out, vector, matrix: np.expand_dims(vector, -1) * np.expand_dims(g, -2),
    name="vecmat",
    complex_rule="own",
)
implements(np.matvec)(matvec)
implements(np.vecmat)(vecmat)


# -- einsum -----------------------------------------------------------------------------------------------

# The letters einsum accepts, in numpy's order: the interleaved form's integer s is LETTERS[s].
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class EinsumSpec:
    """An einsum call: what numpy is given, and the same subscripts with every ellipsis spelt out in letters
    (so each VJP can name each axis, including the broadcast ones)."""

    subscripts: str
    inputs: tuple[str, ...]
    output: str
    optimize: Any = False
    order: str = "K"


def _term_parts(term: str, subscripts: str) -> tuple[str, str, bool]:
    """A term's letters before and after its ellipsis, and whether it has one."""
    for character in term:
        if character != "." and character not in LETTERS:
            raise ValueError(
                f"einsum: invalid character {character!r} in subscripts {subscripts!r}; subscripts are "
                "letters a-z, A-Z, ',' between operands, '->' before the output and '...'"
            )
    if "." not in term:
        return term, "", False
    if term.count(".") != 3 or "..." not in term:
        raise ValueError(
            f"einsum: subscripts {term!r} (in {subscripts!r}) have a '.' that is not part of one '...'"
        )
    before, after = term.split("...")
    return before, after, True


def parse_einsum(subscripts: str, shapes: Sequence[tuple[int, ...]]) -> tuple[tuple[str, ...], str]:
    """The subscripts of each operand and of the output, with each ellipsis replaced by letters.

    The ellipsis axes broadcast right-aligned, as numpy's batch axes do: with two of them in all, an operand
    whose ellipsis covers one axis gets the second letter. An implicit output (no ``->``) is the ellipsis
    followed by the letters used once, in alphabetical order (upper case first), as numpy makes it.

    Examples
    --------
    >>> parse_einsum("...ij,jk", [(5, 2, 3), (3, 4)])
    (('Aij', 'jk'), 'Aik')
    """
    text = subscripts.replace(" ", "")
    if text.count("->") > 1:
        raise ValueError(f"einsum: subscripts {subscripts!r} have more than one '->'")
    explicit = "->" in text
    inputs_text, output_text = text.split("->") if explicit else (text, "")
    terms = inputs_text.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s) but {len(shapes)} were given"
        )
    parts = [_term_parts(term, subscripts) for term in terms]
    ellipsis_ndims = []
    for k, ((before, after, has_ellipsis), shape) in enumerate(zip(parts, shapes, strict=True)):
        named = len(before) + len(after)
        if len(shape) < named or (not has_ellipsis and len(shape) != named):
            at_least = "at least " if has_ellipsis else ""
            raise ValueError(
                f"einsum: operand {k} has {len(shape)} axes but subscripts {terms[k]!r} name "
                f"{at_least}{named}"
            )
        ellipsis_ndims.append(len(shape) - named)
    out_before, out_after, out_ellipsis = _term_parts(output_text, subscripts)

    used = set(inputs_text + output_text)
    spare = [letter for letter in LETTERS if letter not in used]
    batch_ndim = max(ellipsis_ndims, default=0)
    if batch_ndim > len(spare):
        raise ValueError(f"einsum: subscripts {subscripts!r} and the ellipsis axes need more than 52 letters")
    batch = "".join(spare[:batch_ndim])
    inputs = tuple(
        before + batch[batch_ndim - ndim :] + after
        for (before, after, _), ndim in zip(parts, ellipsis_ndims, strict=True)
    )
    if explicit:
        output = out_before + (batch if out_ellipsis else "") + out_after
        named_in_inputs = set("".join(inputs))
        for letter in output:
            if letter not in named_in_inputs:
                raise ValueError(
                    f"einsum: output subscript {letter!r} in {subscripts!r} names no axis of any operand"
                )
        repeated = sorted(letter for letter, count in Counter(output).items() if count > 1)
        if repeated:
            raise ValueError(f"einsum: output subscripts in {subscripts!r} repeat {', '.join(repeated)}")
    else:
        counts = Counter(inputs_text.replace(",", "").replace(".", ""))
        output = batch + "".join(sorted(letter for letter, count in counts.items() if count == 1))
    return inputs, output


# A training loop calls the same einsum over and over: parse each (subscripts, shapes) once.
_parse_einsum_cached = functools.lru_cache(maxsize=512)(parse_einsum)


def _interleaved_subscripts(arguments: Sequence[Any]) -> tuple[str, list[Any]]:
    """``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as ``("AB,BC->AC", [a, b])``."""
    has_output = len(arguments) % 2 == 1
    pairs = arguments[:-1] if has_output else arguments
    operands = list(pairs[0::2])

    def spell(sublist: Any) -> str:
        letters = []
        for item in sublist:
            if item is Ellipsis:
                letters.append("...")
                continue
            try:
                index = operator.index(item)
            except TypeError:
                index = -1
            if not 0 <= index < len(LETTERS):
                raise ValueError(
                    f"einsum: subscript {item!r} in the interleaved form is neither an integer in 0-51 "
                    "nor Ellipsis"
                )
            letters.append(LETTERS[index])
        return "".join(letters)

    subscripts = ",".join(spell(sublist) for sublist in pairs[1::2])
    if has_output:
        subscripts += "->" + spell(arguments[-1])
    return subscripts, operands


def _einsum(*operands: Any, spec: EinsumSpec) -> Any:
    return np.einsum(spec.subscripts, *operands, optimize=spec.optimize, order=spec.order)


def _einsum_vjp(position: int, g: Any, out: Any, *operands: Any, spec: EinsumSpec) -> Any:
    target = spec.inputs[position]
    others = [k for k in range(len(operands)) if k != position]
    named_elsewhere = set(spec.output).union(*(spec.inputs[k] for k in others))
    kept = "".join(dict.fromkeys(letter for letter in target if letter in named_elsewhere))
    # An explicit path was planned for the forward's operands, not for these.
    optimize = spec.optimize if isinstance(spec.optimize, bool | str) else "greedy"

    # 1. The cotangent contracted with the other operands, onto the target's indices that they share.
    if others or spec.output != kept:
        terms = ",".join([spec.output, *(spec.inputs[k] for k in others)])
        contracted = np.einsum(f"{terms}->{kept}", g, *(operands[k] for k in others), optimize=optimize)
    else:
        contracted = g
    if target == kept:
        return _fit_broadcast(contracted, operands[position])

    # 2. Spread onto the target's axes: an index repeated in the target (a diagonal) goes onto the
    # diagonal through an identity, an index nobody else names (summed away) is spread by ones.
    sizes = dict(zip(target, np.shape(operands[position]), strict=True))
    dtype = g.dtype
    spare = iter(letter for letter in LETTERS if letter not in set(spec.output).union(*spec.inputs))
    factors, factor_terms, placed = [contracted], [kept], []
    for letter in target:
        if letter in placed:
            fresh = next(spare, None)
            if fresh is None:
                raise ValueError(f"einsum: too many indices to differentiate {spec.subscripts!r}")
            factors.append(np.eye(sizes[letter], dtype=dtype))
            factor_terms.append(letter + fresh)
            placed.append(fresh)
        else:
            placed.append(letter)
    repeated = {letter for letter, count in Counter(target).items() if count > 1}
    for letter in dict.fromkeys(target):
        if letter not in kept and letter not in repeated:
            factors.append(np.ones(sizes[letter], dtype=dtype))
            factor_terms.append(letter)
    spread = np.einsum(f"{','.join(factor_terms)}->{''.join(placed)}", *factors)
    return _fit_broadcast(spread, operands[position])


def _fit_broadcast(cotangent: Any, operand: Any) -> Any:
    """Where only the operand had an index at full length (the others broadcast a length one against it),
    the cotangent has length one there: broadcast it up. The engine sums what is broadcast the other way."""
    shape = np.shape(cotangent)
    if shape == np.shape(operand):
        return cotangent
    full = np.broadcast_shapes(shape, np.shape(operand))
    return cotangent if full == shape else np.broadcast_to(cotangent, full)


@functools.cache
def _einsum_op(count: int, view: bool) -> Op:
    vjps = [functools.partial(_einsum_vjp, k) for k in range(count)]
    # A single operand's VJP needs only its shape; with nothing summed numpy returns a view of it.
    return Op(
        _einsum,
        *vjps,
        name="einsum",
        view=view,
        shape_only=(0,) if count == 1 else (),
        complex_rule="holomorphic",
    )


@implements(np.einsum)
def einsum(*operands: Any, optimize: Any = False, order: str = "K", **kwargs: Any) -> Any:
    """``np.einsum`` on tensors, for every subscripts numpy accepts, in string or interleaved form.

    ``optimize`` and ``order`` are passed to numpy; ``dtype`` and ``casting`` are not supported.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor(np.ones((2, 3)), requires_grad=True)
    >>> np.einsum("ij,jk->ik", a, np.ones((3, 4))).shape
    (2, 4)
    >>> np.einsum("ii", np.eye(2) * a[:, :2]).item()
    2.0
    """
    if kwargs.get("dtype") is not None:
        raise TypeError(
            "numpy.einsum: dtype= is not supported on tape tensors; cast the operands (x.astype(dtype))"
        )
    if kwargs.get("casting", "safe") != "safe":
        raise TypeError(f"numpy.einsum: casting={kwargs['casting']!r} is not supported on tape tensors")
    unknown = set(kwargs) - {"dtype", "casting"}
    if unknown:
        raise TypeError(f"numpy.einsum: keyword argument(s) {sorted(unknown)} are not supported")
    if not operands:
        raise ValueError("einsum: no subscripts and no operands given")
    if isinstance(operands[0], str):
        subscripts, arrays = operands[0], list(operands[1:])
    else:
        subscripts, arrays = _interleaved_subscripts(operands)
    inputs, output = _parse_einsum_cached(subscripts, tuple(np.shape(x) for x in arrays))
    spec = EinsumSpec(subscripts, inputs, output, optimize, order)
    view = len(arrays) == 1 and set(inputs[0]) <= set(output)
    return _einsum_op(len(arrays), view)(*arrays, spec=spec)


@implements(np.einsum_path)
def einsum_path(*operands: Any, **kwargs: Any) -> Any:
    """``np.einsum_path`` on tensors: the contraction order depends only on shapes, so stand-ins do."""
    stand_ins = [
        np.broadcast_to(np.zeros((), dtype=x.dtype), x.shape) if isinstance(x, Tensor) else x
        for x in operands
    ]
    return np.einsum_path(*stand_ins, **kwargs)

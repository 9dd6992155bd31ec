"""Linear algebra: matrix products (``@``, ``np.matmul``, ``np.dot``) beside their VJPs.

The VJPs of ``x @ y`` are ``g @ y.T`` and ``x.T @ g``; 1-D operands, which matmul promotes to a row or a
column and then drops again, are handled by giving the cotangent that axis back. Batch axes that were
broadcast are summed by the engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.op import Op
from tape.registry import implements


def _matmul_vjp_x(g: Any, out: Any, x: Any, y: Any) -> Any:
    if np.ndim(y) == 1:
        # out[..., i] = sum_k x[..., i, k] y[k]  (or a scalar when x is 1-D too)
        return np.expand_dims(g, -1) * y
    if np.ndim(x) == 1:
        # out[..., j] = sum_k x[k] y[..., k, j]
        return np.squeeze(np.matmul(y, np.expand_dims(g, -1)), -1)
    return np.matmul(g, np.swapaxes(y, -1, -2))


def _matmul_vjp_y(g: Any, out: Any, x: Any, y: Any) -> Any:
    if np.ndim(x) == 1:
        if np.ndim(y) == 1:
            return g * x
        return np.expand_dims(x, -1) * np.expand_dims(g, -2)
    if np.ndim(y) == 1:
        return np.squeeze(np.matmul(np.swapaxes(x, -1, -2), np.expand_dims(g, -1)), -1)
    return np.matmul(np.swapaxes(x, -1, -2), g)


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
        return np.matmul(x, y)
    except ValueError:
        _check_matmul(x, y)
        raise


matmul = Op(_matmul, _matmul_vjp_x, _matmul_vjp_y, name="matmul")
implements(np.matmul)(matmul)


@implements(np.dot)
def dot(a: Any, b: Any) -> Any:
    """``np.dot`` on tensors: a product with a scalar, or a matrix product of 1-D and 2-D operands."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return np.multiply(a, b)
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        raise TypeError(
            f"numpy.dot: operands of shapes {np.shape(a)} and {np.shape(b)}; dot of arrays with more than "
            "two dimensions is not supported on tape tensors, use np.matmul or np.tensordot"
        )
    return matmul(a, b)

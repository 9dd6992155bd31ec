"""A batch of cotangents that is a slice of a diagonal, kept as its diagonal until something needs rows.

``jacobian`` seeds its reverse sweep with rows of the identity. Through elementwise ops those rows stay
diagonal (the lecture's question P2: the Jacobian of an elementwise op is diagonal), so a batch of n rows
is stored as n numbers instead of n x n. Multiplying by an array of the base shape, negating, adding two
such batches, ``np.where`` against zero and a product with a matrix (``rows @ W``) keep or use that
structure; anything else receives the batch as the dense array it stands for. Only the reverse sweep of
``jacobian`` creates these; users never see one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

_SCALING = {np.multiply, np.true_divide}


class DiagonalRows(NDArrayOperatorsMixin):
    """Rows ``start:stop`` of ``diag(values.ravel())``, each reshaped to ``values.shape``.

    As an array it has shape ``(stop - start, *values.shape)``: row ``k`` is zero except at flat position
    ``start + k``, where it holds ``values.flat[start + k]``.
    """

    __slots__ = ("start", "stop", "values")

    def __init__(self, values: np.ndarray, start: int, stop: int) -> None:
        self.values = values
        self.start = start
        self.stop = stop

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.stop - self.start, *self.values.shape)

    @property
    def ndim(self) -> int:
        return 1 + self.values.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def _like(self, values: np.ndarray) -> DiagonalRows:
        return DiagonalRows(values, self.start, self.stop)

    def dense(self, dtype: Any = None) -> np.ndarray:
        """The rows as an ordinary array."""
        count = self.stop - self.start
        rows = np.zeros((count, self.values.size), dtype=dtype or self.values.dtype)
        positions = np.arange(self.start, self.stop)
        rows[np.arange(count), positions] = self.values.reshape(-1)[positions]
        return rows.reshape(self.shape)

    def astype(self, dtype: Any, copy: bool = True) -> DiagonalRows:
        return self._like(self.values.astype(dtype, copy=copy))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.dense(dtype)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method == "__call__" and not kwargs:
            kept = self._keep_structure(ufunc, inputs)
            if kept is not None:
                return kept
        dense = tuple(item.dense() if isinstance(item, DiagonalRows) else item for item in inputs)
        return getattr(ufunc, method)(*dense, **kwargs)

    def _keep_structure(self, ufunc: np.ufunc, inputs: tuple[Any, ...]) -> Any:
        shape = self.values.shape
        if ufunc in (np.negative, np.positive) and len(inputs) == 1:
            return self._like(ufunc(self.values))
        if len(inputs) != 2:
            return None
        first, second = inputs
        if ufunc in (np.add, np.subtract):
            if _same_rows(first, second):
                return first._like(ufunc(first.values, second.values))
            return None
        if ufunc in _SCALING:
            diagonal, other = (first, second) if isinstance(first, DiagonalRows) else (second, first)
            if isinstance(other, DiagonalRows) or (ufunc is np.true_divide and diagonal is second):
                return None
            if np.ndim(other) <= len(shape) and np.broadcast_shapes(np.shape(other), shape) == shape:
                return diagonal._like(ufunc(diagonal.values, other))
            return None
        if ufunc is np.matmul and first is self and self.values.ndim >= 1 and np.ndim(second) == 2:
            return self._times_matrix(np.asarray(second))
        return None

    def _times_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """``rows @ matrix`` without the product: row r, one-hot at (a..., j), is v[a..., j] * matrix[j]."""
        count = self.stop - self.start
        flat_rows = np.arange(self.start, self.stop)
        if self.values.ndim == 1:
            return self.values[flat_rows, None] * matrix[flat_rows]
        result = np.zeros(
            (count, *self.values.shape[:-1], matrix.shape[1]), dtype=np.result_type(self, matrix)
        )
        leading, column = np.divmod(flat_rows, self.values.shape[-1])
        leading_index = np.unravel_index(leading, self.values.shape[:-1])
        scale = self.values.reshape(-1)[flat_rows]
        rows = (np.arange(count), *leading_index)
        result[rows] = scale[:, None] * matrix[column]
        return result

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is np.where and len(args) == 3 and not kwargs:
            condition, x, y = args
            shape = self.values.shape
            fits = (
                np.ndim(condition) <= len(shape) and np.broadcast_shapes(np.shape(condition), shape) == shape
            )
            if fits and x is self and np.ndim(y) == 0 and y == 0:
                return self._like(np.where(condition, self.values, 0))
            if fits and y is self and np.ndim(x) == 0 and x == 0:
                return self._like(np.where(condition, 0, self.values))
        return func(*_densified(args), **_densified(kwargs))

    def __getitem__(self, index: Any) -> Any:
        return self.dense()[index]

    def __len__(self) -> int:
        return self.stop - self.start

    def __repr__(self) -> str:
        return f"DiagonalRows(rows {self.start}:{self.stop} of diag, base shape {self.values.shape})"


def _same_rows(first: Any, second: Any) -> bool:
    return (
        isinstance(first, DiagonalRows)
        and isinstance(second, DiagonalRows)
        and first.values.shape == second.values.shape
        and (first.start, first.stop) == (second.start, second.stop)
    )


def _densified(value: Any) -> Any:
    if isinstance(value, DiagonalRows):
        return value.dense()
    if type(value) in (list, tuple):
        return type(value)(_densified(item) for item in value)
    if type(value) is dict:
        return {key: _densified(item) for key, item in value.items()}
    return value

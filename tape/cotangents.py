"""Fitting a VJP's result to its input: undo broadcasting, cast to the input's dtype. The one place for it.

A VJP returns the cotangent of the broadcast output's shape, in whatever dtype its arithmetic gave;
``fit_cotangent`` sums it over the axes the input was broadcast along and casts it to the input's dtype, so
no op's VJP thinks about either. ``fit_rows`` does the same for a batch of cotangents (a leading row axis,
as ``jacobian`` sends), keeping a batch of identity rows diagonal where it can.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .diagonal import DiagonalRows
from .tensor import Tensor


def fit_cotangent(
    cotangent: Any, shape: tuple[int, ...], dtype: np.dtype, op_name: str, argnum: int, create_graph: bool
) -> Any:
    """Sum ``cotangent`` over the axes its input was broadcast along and cast it to the input's dtype."""
    if isinstance(cotangent, Tensor):
        if not create_graph:
            cotangent = cotangent.data
    elif not isinstance(cotangent, np.ndarray):
        cotangent = np.asarray(cotangent)
    if cotangent.shape != shape:
        cotangent = unbroadcast(cotangent, shape, op_name, argnum)
    if cotangent.dtype != dtype:
        cotangent = cotangent.astype(dtype)
    return cotangent


def unbroadcast(cotangent: Any, shape: tuple[int, ...], op_name: str, argnum: int) -> Any:
    """Sum ``cotangent`` down to ``shape``, undoing numpy broadcasting."""
    extra = cotangent.ndim - len(shape)
    fits = extra >= 0 and all(
        size == 1 or size == cotangent.shape[extra + axis] for axis, size in enumerate(shape)
    )
    if not fits:
        raise ValueError(
            f"{op_name}: the VJP for argument {argnum} returned shape {cotangent.shape}, which does not "
            f"reduce to the argument's shape {shape}"
        )
    axes = tuple(range(extra)) + tuple(
        extra + axis for axis, size in enumerate(shape) if size == 1 and cotangent.shape[extra + axis] != 1
    )
    if axes:
        cotangent = np.sum(cotangent, axis=axes, keepdims=True)
    return cotangent.reshape(shape)


def fit_rows(
    cotangent: Any, shape: tuple[int, ...], dtype: np.dtype, rows: int, op_name: str, argnum: int
) -> Any:
    """Sum a batched cotangent over the axes its input was broadcast along, keeping the row axis."""
    if isinstance(cotangent, DiagonalRows):
        if cotangent.values.shape == shape:
            return cotangent if cotangent.dtype == dtype else cotangent.astype(dtype)
        cotangent = cotangent.dense()
    cotangent = np.asarray(cotangent)
    if cotangent.shape != (rows, *shape):
        if cotangent.ndim < 1 or cotangent.shape[0] != rows:
            raise ValueError(
                f"{op_name}: the batched VJP for argument {argnum} returned shape {cotangent.shape}, "
                f"which has no leading axis of {rows} rows"
            )
        extra = cotangent.ndim - 1 - len(shape)
        if extra > 0:
            cotangent = np.sum(cotangent, axis=tuple(range(1, 1 + extra)))
        cotangent = unbroadcast(cotangent, (rows, *shape), op_name, argnum)
    return cotangent if cotangent.dtype == dtype else cotangent.astype(dtype)

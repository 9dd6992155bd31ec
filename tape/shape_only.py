"""What a record keeps of an argument (or output) whose VJPs read only its shape: shape and dtype, no values.

A record of ``x + y`` needs no value of ``x`` or ``y`` for its VJP, only their shapes (to undo
broadcasting) and dtypes. Keeping the arrays themselves would hold every activation of a network alive
until backward; keeping this stand-in frees them. Small arrays are kept as they are: replacing them would
cost more time than the memory is worth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Arrays with fewer elements than this are kept by records as they are.
KEEP_SMALLER_THAN = 4096


class ShapeOnly:
    """Stands in for an array in a record: ``shape``, ``dtype``, ``ndim`` and ``size``, but no values."""

    __slots__ = ("dtype", "op_name", "shape")

    def __init__(self, array: np.ndarray, op_name: str) -> None:
        self.shape = array.shape
        self.dtype = array.dtype
        self.op_name = op_name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        raise RuntimeError(
            f"{self.op_name}: a VJP read the values of an argument the op declared shape_only, or of an "
            f"output it declared keeps_output=False (shape {self.shape}, {self.dtype}); correct the op"
        )

    def __repr__(self) -> str:
        return f"ShapeOnly(shape={self.shape}, dtype={self.dtype})"


def saved_arguments(values: list[Any], shape_only: frozenset[int], op_name: str) -> tuple[Any, ...]:
    """The arguments a record keeps: large arrays its VJPs read only the shape of become ``ShapeOnly``."""
    for argnum in shape_only:
        if argnum < len(values):
            value = values[argnum]
            if type(value) is np.ndarray and value.size >= KEEP_SMALLER_THAN:
                values[argnum] = ShapeOnly(value, op_name)
    return tuple(values)


def saved_output(out: np.ndarray, op_name: str) -> Any:
    """The output a record keeps when its VJPs never read the output's values."""
    if type(out) is np.ndarray and out.size >= KEEP_SMALLER_THAN:
        return ShapeOnly(out, op_name)
    return out

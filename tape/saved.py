"""What a record keeps of the values an op saw: exactly what its VJPs read, safe from later writes.

A record of ``x * c`` where only ``x`` requires grad needs ``c`` for its VJP and nothing of ``x`` (PyTorch's
saved-tensor rule; ``tape.reads`` tells which values each VJP reads). Values no VJP reads are kept as
``ShapeOnly`` stand-ins when they are large (shape and dtype are all the engine needs of them, to undo
broadcasting), so activations are freed early. Values a VJP reads are kept safe from writes the tape cannot
see: a tensor's buffer has a version counter that backward checks; a plain ndarray (or one inside an index
tuple or a keyword argument) has none, so the record keeps a copy of it, and a later write to the caller's
array, a data loader refilling its batch buffer, changes nothing the gradient depends on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .reads import Everything

#: Arrays with fewer elements than this are kept by records as they are when no VJP reads them.
KEEP_SMALLER_THAN = 4096

ndarray = np.ndarray


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


def saved_arguments(args: tuple[Any, ...], values: list[Any], reads: Any, op_name: str) -> tuple[Any, ...]:
    """The arguments a record keeps: ``values`` (arrays in place of ``args``' tensors), with large arrays no
    VJP reads (``reads``: their positions, or everything) made ``ShapeOnly``, and plain arrays a VJP reads
    copied."""
    everything = isinstance(reads, Everything)  # (asked once: its ``in`` is a Python call)
    for argnum, value in enumerate(values):
        if not everything and argnum not in reads:
            if type(value) is ndarray and value.size >= KEEP_SMALLER_THAN:
                values[argnum] = ShapeOnly(value, op_name)
        elif type(args[argnum]) is ndarray:
            values[argnum] = value.copy()
        elif type(value) is tuple:
            values[argnum] = _copy_arrays(value)
    return tuple(values)


def saved_keywords(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments a record keeps: any VJP may read them, so arrays among them are copies."""
    for value in kwargs.values():
        if isinstance(value, ndarray) or (
            type(value) is tuple and any(isinstance(v, ndarray) for v in value)
        ):
            return {name: _copy_arrays(item) for name, item in kwargs.items()}
    return kwargs


def _copy_arrays(value: Any) -> Any:
    """``value`` with the arrays in it (itself, or the items of a tuple such as an index) copied."""
    if isinstance(value, ndarray):
        return np.array(value, copy=True)
    if type(value) is tuple:
        return tuple(np.array(item, copy=True) if isinstance(item, ndarray) else item for item in value)
    return value


def saved_output(out: np.ndarray, op_name: str) -> Any:
    """The output a record keeps when its VJPs never read the output's values."""
    if type(out) is np.ndarray and out.size >= KEEP_SMALLER_THAN:
        return ShapeOnly(out, op_name)
    return out

"""Making tensors: ``tape.tensor`` and the numpy-like constructors (``zeros``, ``ones``, ``randn``, ...)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .dtypes import floating
from .grad_mode import state
from .tensor import Tensor, leaf
from .tracing import random_values


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Make a leaf tensor holding a copy of ``data``.

    Parameters
    ----------
    data : array-like (nested lists, a numpy array, a scalar or another tensor, whose data is copied).
    dtype : numpy dtype; by default the dtype of an array or tensor given, and otherwise numpy's choice
        for ``data``, with floats in the default floating dtype (``tape.get_default_dtype()``, float64
        unless set).
    requires_grad : whether ``backward`` should compute this tensor's gradient; needs a floating dtype.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    tensor([1., 2.], dtype=float32, requires_grad=True)
    """
    if isinstance(data, Tensor):
        if state.tracer is not None:
            state.tracer.refuse_exit(data, "a new tensor made from a tensor's values (tape.tensor(t))")
        data = data._data
    array = np.array(data, dtype=dtype, copy=True)
    if dtype is None and not isinstance(data, np.ndarray | np.generic) and array.dtype == np.float64:
        array = array.astype(floating(None), copy=False)  # Python floats take the default dtype
    return leaf(array, requires_grad=requires_grad)


def zeros(shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A leaf tensor of zeros, as ``np.zeros`` (in the default floating dtype unless ``dtype`` is given)."""
    return leaf(np.zeros(shape, dtype=floating(dtype)), requires_grad=requires_grad)


def ones(shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A leaf tensor of ones, as ``np.ones`` (in the default floating dtype unless ``dtype`` is given)."""
    return leaf(np.ones(shape, dtype=floating(dtype)), requires_grad=requires_grad)


def full(shape: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A leaf tensor filled with ``fill_value``, as ``np.full`` (a float fills the default floating dtype)."""
    if dtype is None and isinstance(fill_value, float):
        dtype = floating(None)
    return leaf(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def arange(*args: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Evenly spaced values, as ``np.arange`` (floats in the default floating dtype)."""
    values = np.arange(*args, dtype=dtype)
    if dtype is None and values.dtype == np.float64:
        values = values.astype(floating(None), copy=False)
    return leaf(values, requires_grad=requires_grad)


def randn(*shape: int, dtype: Any = None, requires_grad: bool = False, seed: Any = None) -> Tensor:
    """Standard normal samples of the given shape, from ``np.random.default_rng(seed)``."""
    dtype = floating(dtype)
    samples = random_values(
        lambda: np.random.default_rng(seed).standard_normal(shape).astype(dtype, copy=False)
    )
    return leaf(samples, requires_grad=requires_grad)


def rand(*shape: int, dtype: Any = None, requires_grad: bool = False, seed: Any = None) -> Tensor:
    """Uniform samples in [0, 1) of the given shape, from ``np.random.default_rng(seed)``."""
    dtype = floating(dtype)
    samples = random_values(lambda: np.random.default_rng(seed).random(shape).astype(dtype, copy=False))
    return leaf(samples, requires_grad=requires_grad)

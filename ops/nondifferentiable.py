"""numpy calls on tensors whose results carry no gradient: comparisons, predicates, queries, constants.

They run on the data. Comparisons and predicates return boolean tensors; queries of shape and closeness
return what numpy returns; ``zeros_like`` and friends return constant tensors. None of them is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape.op import Op
from tape.registry import implements
from tape.tensor import Tensor


def _data(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value._data
    if type(value) in (list, tuple):
        return type(value)(_data(item) for item in value)
    return value


def _on_data(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` on the data of its arguments and return its result as numpy gives it."""

    def handler(*args: Any, **kwargs: Any) -> Any:
        return func(*_data(args), **{key: _data(value) for key, value in kwargs.items()})

    handler.__name__ = func.__name__
    return handler


def _as_constant_tensor(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` on the data and wrap an array result in a tensor that does not require grad."""

    def handler(*args: Any, **kwargs: Any) -> Any:
        result = func(*_data(args), **{key: _data(value) for key, value in kwargs.items()})
        if type(result) is tuple:
            return tuple(Tensor(item) for item in result)
        return Tensor(result)

    handler.__name__ = func.__name__
    return handler


for _ufunc in (
    np.less,
    np.less_equal,
    np.greater,
    np.greater_equal,
    np.equal,
    np.not_equal,
    np.logical_and,
    np.logical_or,
    np.logical_xor,
    np.logical_not,
    np.bitwise_and,
    np.bitwise_or,
    np.bitwise_xor,
    np.invert,
    np.isnan,
    np.isinf,
    np.isfinite,
    np.signbit,
):
    # No VJP: the results are boolean, so they are never recorded.
    implements(_ufunc)(Op(_ufunc, name=_ufunc.__name__))

for _func in (np.shape, np.ndim, np.size, np.allclose, np.array_equal, np.iscomplexobj, np.isrealobj):
    implements(_func)(_on_data(_func))

for _func in (
    np.isclose,
    np.all,
    np.any,
    np.argmax,
    np.argmin,
    np.argsort,
    np.nonzero,
    np.count_nonzero,
    np.zeros_like,
    np.ones_like,
    np.empty_like,
    np.full_like,
):
    implements(_func)(_as_constant_tensor(_func))

"""numpy's protocols: ``np.sin(t)`` and ``np.sum(t)`` on a tensor run the registered op.

A numpy callable with no registered op fails here, at forward time, with its name and the ways forward,
never later in backward and never by silently dropping the gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .registry import FUNCTIONS, UFUNCS

# ufunc methods that are reductions of a registered function: np.add.reduce(t) is np.sum(t).
_REDUCE_AS = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min"}

_HOW_TO_PROCEED = (
    "pass t.detach() (or t.numpy()) to compute without a gradient, or define the "
    "operation with tape.Op(forward, vjp, ...)"
)


def dispatch_ufunc(ufunc: Any, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``ufunc.method(*inputs, **kwargs)`` on tensors through its registered op."""
    name = f"numpy.{ufunc.__name__}"
    if method == "reduce" and ufunc.__name__ in _REDUCE_AS:
        reduction = getattr(np, _REDUCE_AS[ufunc.__name__])
        kwargs.setdefault("axis", 0)
        return dispatch_function(reduction, inputs, kwargs)
    if method != "__call__":
        raise TypeError(f"{name}.{method} is not supported on tape tensors; {_HOW_TO_PROCEED}")
    op = UFUNCS.get(ufunc)
    if op is None:
        raise TypeError(f"{name} is not supported on tape tensors (it has no VJP); {_HOW_TO_PROCEED}")
    _refuse_unsupported(name, kwargs)
    dtype = kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"{name}: keyword argument(s) {sorted(kwargs)} are not supported on tape tensors")
    if dtype is not None:
        # Compute in ``dtype``, as numpy does: tensors and arrays are cast first (a tensor's cast is recorded)
        inputs = tuple(x.astype(dtype) if hasattr(x, "astype") else x for x in inputs)
    return op(*inputs)


def dispatch_function(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``func(*args, **kwargs)`` on tensors through its registered handler."""
    handler = FUNCTIONS.get(func)
    name = public_name(func)
    if handler is None:
        raise TypeError(f"{name} is not supported on tape tensors (it has no VJP); {_HOW_TO_PROCEED}")
    _refuse_unsupported(name, kwargs)
    kwargs.pop("out", None)
    return handler(*args, **kwargs)


def public_name(func: Any) -> str:
    """``numpy.linalg.inv`` for ``np.linalg.inv`` (whose ``__module__`` is ``numpy.linalg._linalg``)."""
    module = getattr(func, "__module__", None) or "numpy"
    public = ".".join(part for part in module.split(".") if not part.startswith("_"))
    return f"{public}.{func.__name__}"


def _refuse_unsupported(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs.get("out") is not None:
        raise TypeError(
            f"{name}: out= is not supported on tape tensors; assign the result instead "
            "(y = f(x), or y[...] = f(x) to write into an existing tensor)"
        )
    kwargs.pop("out", None)
    where = kwargs.pop("where", True)
    if where is not True:
        raise TypeError(f"{name}: where= is not supported on tape tensors; use np.where(cond, f(x), y)")

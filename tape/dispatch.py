"""numpy's protocols: ``np.sin(t)`` and ``np.sum(t)`` on a tensor run the registered op.

A numpy callable with no registered op fails here, at forward time, with its name and the ways forward,
never later in backward and never by silently dropping the gradient.

The ops for scipy.special's ufuncs are registered lazily: ``import tape`` must not import scipy, so the
first scipy.special ufunc that meets a tensor imports their op module (``registry.LAZY_UFUNC_MODULES``),
and the lookup is tried again.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

import numpy as np

from .grad_mode import state
from .registry import FUNCTIONS, LAZY_UFUNC_MODULES, UFUNCS

# ufunc methods that are reductions of a registered function: np.add.reduce(t) is np.sum(t).
_REDUCE_AS = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min"}

_HOW_TO_PROCEED = (
    "pass t.detach() (or t.numpy()) to compute without a gradient, or define the "
    "operation with tape.Op(forward, vjp, ...)"
)


def dispatch_ufunc(ufunc: Any, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``ufunc.method(*inputs, **kwargs)`` on tensors through its registered op."""
    op = UFUNCS.get(ufunc)
    if op is not None and method == "__call__" and not kwargs:
        return op(*inputs)  # the common call, without building names for error messages
    name = ufunc_name(ufunc)
    if method == "reduce" and ufunc.__name__ in _REDUCE_AS and name.startswith("numpy."):
        reduction = getattr(np, _REDUCE_AS[ufunc.__name__])
        kwargs.setdefault("axis", 0)
        return dispatch_function(reduction, inputs, kwargs)
    if method != "__call__":
        raise TypeError(f"{name}.{method} is not supported on tape tensors; {_HOW_TO_PROCEED}")
    if op is None:
        op = _register_lazily(ufunc)
    if op is None:
        raise TypeError(f"{name} is not supported on tape tensors (it has no VJP); {_HOW_TO_PROCEED}")
    out = _out_outside_recording(kwargs)
    _refuse_unsupported(name, kwargs)
    dtype = kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"{name}: keyword argument(s) {sorted(kwargs)} are not supported on tape tensors")
    if dtype is not None:
        # Compute in ``dtype``, as numpy does: tensors and arrays are cast first (a tensor's cast is recorded)
        inputs = tuple(x.astype(dtype) if hasattr(x, "astype") else x for x in inputs)
    if out is None:
        return op(*inputs)
    written = _write_out(out, op(*inputs))
    return written[0] if len(written) == 1 else written  # numpy's ufuncs return a lone out itself


def ufunc_name(ufunc: Any) -> str:
    """``numpy.sin`` for ``np.sin``, ``scipy.special.gammaln`` for scipy's (scipy's ufuncs have no module).

    Examples
    --------
    >>> import numpy as np
    >>> ufunc_name(np.true_divide)
    'numpy.divide'
    """
    name = ufunc.__name__
    if getattr(np, name, None) is ufunc:
        return f"numpy.{name}"
    package = _lazy_package_of(ufunc)
    if package is not None:
        return f"{package}.{name}"
    module = getattr(ufunc, "__module__", None)
    return f"{module}.{name}" if module else name


def _lazy_package_of(ufunc: Any) -> str | None:
    """The package in ``LAZY_UFUNC_MODULES`` that ``ufunc`` is a public name of, if it is imported: a ufunc of
    a package that is not yet imported cannot have been called, so nothing is imported here."""
    for package in LAZY_UFUNC_MODULES:
        module = sys.modules.get(package)
        if module is not None and getattr(module, ufunc.__name__, None) is ufunc:
            return package
    return None


def _register_lazily(ufunc: Any) -> Any:
    """The op for ``ufunc`` once the op module of its package is imported, or None."""
    package = _lazy_package_of(ufunc)
    if package is None:
        return None
    importlib.import_module(LAZY_UFUNC_MODULES[package])
    return UFUNCS.get(ufunc)


def dispatch_function(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``func(*args, **kwargs)`` on tensors through its registered handler."""
    handler = FUNCTIONS.get(func)
    if handler is None:
        raise TypeError(
            f"{public_name(func)} is not supported on tape tensors (it has no VJP); {_HOW_TO_PROCEED}"
        )
    args, kwargs = _out_by_keyword(func, args, kwargs)
    if not kwargs:
        return handler(*args)
    out = _out_outside_recording(kwargs)
    if "out" in kwargs or "where" in kwargs:
        # A handler whose function's where= is its own argument (np.copyto's mask) says so.
        takes_where = getattr(handler, "takes_where", False)
        _refuse_unsupported(public_name(func), kwargs, where_is_an_argument=takes_where)
    result = handler(*args, **kwargs)
    return result if out is None else _write_out(out, result)


_NOT_LOOKED_UP: Any = object()
_OUT_POSITIONS: dict[Any, int | None] = {}  # numpy function -> the position of its out= parameter


def _out_by_keyword(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """``out`` given by position (``np.sum(x, 0, None, out)``) moved to ``kwargs``, where it is written or
    refused as ``out=`` is: handlers read their arguments by position and would drop it."""
    if len(args) < 2:  # (no numpy function takes out first; np.fix(x, out) takes it second)
        return args, kwargs
    position = _OUT_POSITIONS.get(func, _NOT_LOOKED_UP)
    if position is _NOT_LOOKED_UP:
        position = _OUT_POSITIONS[func] = _out_position(func)
    if position is None or len(args) <= position or args[position] is None:
        return args, kwargs
    return (*args[:position], None, *args[position + 1 :]), {**kwargs, "out": args[position]}


def _out_position(func: Any) -> int | None:
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    for position, parameter in enumerate(parameters):
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            return None
        if parameter.name == "out":
            return position
    return None


def _out_outside_recording(kwargs: dict[str, Any]) -> Any:
    """``out=`` taken from ``kwargs`` when nothing is recorded (under ``no_grad``): the result is written
    into it as an in-place write, counted like ``out[...] = result``. While recording it stays in ``kwargs``
    and is refused: a gradient through a buffer written behind the op would be lost."""
    out = kwargs.get("out")
    if out is None or state.grad_enabled:
        return None
    del kwargs["out"]
    return out


def _write_out(out: Any, result: Any) -> Any:
    targets = out if type(out) is tuple else (out,)
    results = result if type(result) is tuple else (result,)
    if len(targets) != len(results):
        raise ValueError(f"out= has {len(targets)} arrays for {len(results)} results")
    for target, value in zip(targets, results, strict=True):
        np.copyto(target, value)  # a tensor target takes it as target[...] = value
    return out


def public_name(func: Any) -> str:
    """``numpy.linalg.inv`` for ``np.linalg.inv`` (whose ``__module__`` is ``numpy.linalg._linalg``)."""
    module = getattr(func, "__module__", None) or "numpy"
    public = ".".join(part for part in module.split(".") if not part.startswith("_"))
    return f"{public}.{func.__name__}"


def _refuse_unsupported(name: str, kwargs: dict[str, Any], where_is_an_argument: bool = False) -> None:
    if kwargs.get("out") is not None:
        raise TypeError(
            f"{name}: out= is not supported on tape tensors while recording (the gradient would not follow "
            "the written buffer); assign the result instead (y = f(x), or y[...] = f(x) to write into an "
            "existing tensor), or use out= under tape.no_grad()"
        )
    kwargs.pop("out", None)
    if where_is_an_argument:
        return
    where = kwargs.pop("where", True)
    if where is not True:
        raise TypeError(f"{name}: where= is not supported on tape tensors; use np.where(cond, f(x), y)")

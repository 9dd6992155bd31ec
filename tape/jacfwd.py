"""``jacfwd``: the Jacobian by forward mode, its columns pushed through the records (tall Jacobians).

The function is recorded once; the columns of the Jacobian are pushes of unit tangents through the
records (``tape.tangents``), stacked so that one sweep carries many, so the cost grows with the number
of inputs, where ``tape.jacobian`` (reverse mode) grows with the number of outputs: use this one when
there are fewer inputs than outputs. Inside another transform, or with complex values, the columns come
from ``tape.jvp``'s reverse-mode path, so that enclosing levels see the dependence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .functional import jvp
from .pytree import flatten
from .tangents import ForwardModeUnavailableError, push_forward
from .tensor import Tensor
from .trace import TransformCall

# How many elements the stacked tangents of one sweep may hold (per record: 64 MiB in float64).
_CHUNK_ELEMENTS = 1 << 23


def jacfwd(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """Make a function returning the Jacobian of ``f`` with respect to ``args[argnums]`` by forward mode.

    The result has ``tape.jacobian``'s layout: for an output of shape ``S`` and an argument of shape
    ``A``, shape ``S + A``. One array argument is differentiated, and ``f`` returns one array.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.jacfwd(lambda x: np.stack([np.sum(x), np.prod(x), x[0] * 2, x[1] ** 2]))(np.array([1.0, 3.0]))
    array([[1., 1.],
           [3., 1.],
           [2., 0.],
           [0., 6.]])
    """
    if not isinstance(argnums, int):
        raise TypeError(f"jacfwd: argnums is one argument's position (an int), got {argnums!r}")

    def transformed(*args: Any) -> Any:
        if not -len(args) <= argnums < len(args):
            raise ValueError(f"jacfwd: argnums {argnums} out of range for {len(args)} arguments")
        number = argnums % len(args)
        primal = args[number]
        leaves, _ = flatten(primal)
        if len(leaves) != 1:
            raise TypeError(
                "jacfwd: the differentiated argument must be one array (use tape.jacobian for trees)"
            )
        call = TransformCall("jacfwd")
        arguments = list(args)
        arguments[number], tracked, _ = call.track_tree(primal)
        out = call.run(f, *arguments)
        if isinstance(out, tuple | list | dict):
            raise TypeError("jacfwd: f must return one array (use tape.jacobian for several outputs)")
        source = tracked[0]
        nested = call.nested([out])
        shape = np.shape(out)
        dtype = np.result_type(getattr(out, "dtype", np.float64), source.dtype)
        columns = np.zeros((source.size, *shape), dtype=dtype)
        if not isinstance(out, Tensor) or not out.requires_grad:
            return np.moveaxis(columns, 0, -1).reshape(shape + source.shape)
        if not nested:
            try:
                # The columns in chunks of identity rows, each chunk pushed in one sweep (stacked tangents).
                chunk = max(1, min(source.size, _CHUNK_ELEMENTS // max(1, out.size + source.size)))
                for start in range(0, source.size, chunk):
                    count = min(chunk, source.size - start)
                    units = np.zeros((count, source.size), source.dtype)
                    units[np.arange(count), start + np.arange(count)] = 1
                    seeds = {id(source): units.reshape(count, *source.shape)}
                    (pushed,) = push_forward([out], seeds, batch=count)
                    if pushed is not None:
                        columns[start : start + count] = pushed
                return np.moveaxis(columns, 0, -1).reshape(shape + source.shape)
            except ForwardModeUnavailableError:
                pass  # complex values: reverse mode below
        return _columns_by_jvp(f, args, number, source.size, source.shape, shape)

    transformed.__name__ = f"jacfwd({getattr(f, '__name__', 'f')})"
    return transformed


def _columns_by_jvp(
    f: Callable[..., Any],
    args: tuple[Any, ...],
    number: int,
    size: int,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
) -> Any:
    """The Jacobian column by column through ``tape.jvp`` (recorded where an enclosing transform needs it)."""
    primal = args[number]
    dtype = primal.dtype if isinstance(primal, Tensor | np.ndarray) else np.asarray(primal).dtype
    columns = []
    for j in range(size):
        unit = np.zeros(size, dtype)
        unit[j] = 1

        def of_one(x: Any) -> Any:
            full = list(args)
            full[number] = x
            return f(*full)

        columns.append(jvp(of_one, (primal,), (unit.reshape(in_shape),))[1])
    stacked = np.stack(columns, axis=-1)
    return np.reshape(stacked, out_shape + in_shape)

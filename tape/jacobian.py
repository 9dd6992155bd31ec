"""``jacobian`` and ``hessian``: whole derivative matrices, built from batches of VJPs in one sweep.

The rows of a Jacobian are the VJPs of the unit cotangents. Instead of a Python loop of reverse sweeps,
one sweep carries a batch of them (``chunk_size`` rows at a time, to bound memory). The batch starts as
rows of the identity held as their diagonal (``DiagonalRows``), which elementwise ops keep diagonal: the
Jacobian of an elementwise computation costs as much as one VJP until it is written out. Inside another
transform (when the result must stay recorded) the rows are swept one at a time, each recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backward import propagate
from .diagonal import DiagonalRows
from .functional import grad, gradients, structure_like_argnums, track_arguments
from .pytree import flatten, unflatten
from .tensor import Tensor
from .trace import TransformCall


def jacobian(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, chunk_size: int | None = None
) -> Callable[..., Any]:
    """Make a function returning the Jacobian of ``f`` with respect to ``args[argnums]``.

    The Jacobian of an output of shape ``S`` with respect to an argument of shape ``A`` has shape
    ``S + A``: entry ``[i..., j...]`` is d out[i...] / d arg[j...] (JAX's ``jacrev`` layout). Trees
    compose as in JAX: for an output that is a tuple, list or dict, the result has the output's structure,
    and each of its leaves has the structure of the differentiated argument (a tuple of them for a
    sequence of ``argnums``). It is built by reverse sweeps that carry ``chunk_size`` rows each (all rows
    at once by default); memory grows with ``chunk_size`` times the size of the largest intermediate.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.jacobian(lambda x: x ** 2)(np.array([1.0, 3.0]))
    array([[2., 0.],
           [0., 6.]])
    >>> tape.jacobian(lambda x: {"double": 2 * x, "sum": np.sum(x)})(np.array([1.0, 3.0]))
    {'double': array([[2., 0.],
           [0., 2.]]), 'sum': array([1., 1.])}
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"jacobian: chunk_size must be a positive number of rows, got {chunk_size}")

    def transformed(*args: Any) -> Any:
        call = TransformCall("jacobian")
        arguments, trees = track_arguments(call, args, argnums)
        out = call.run(f, *arguments)
        outputs, out_treedef = flatten(out)
        nested = call.nested(outputs)
        blocks = []
        for output in outputs:
            matrices = _rows_recorded(call, output) if nested else _rows_batched(call, output, chunk_size)
            blocks.append(structure_like_argnums(argnums, trees, matrices))
        return unflatten(out_treedef, blocks)

    transformed.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    return transformed


def hessian(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, chunk_size: int | None = None
) -> Callable[..., Any]:
    """Make a function returning the Hessian of the scalar function ``f``: the Jacobian of its gradient.

    For an argument of shape ``A`` the Hessian has shape ``A + A``; with a tuple of ``argnums`` it is a
    nested tuple of blocks, ``H[i][j]`` of shape ``A_i + A_j``, and for an argument that is a tree, a tree
    of trees (as JAX's ``hessian``).

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.hessian(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    transformed = jacobian(grad(f, argnums), argnums, chunk_size)
    transformed.__name__ = f"hessian({getattr(f, '__name__', 'f')})"
    return transformed


def _rows_batched(call: TransformCall, output: Any, chunk_size: int | None) -> list[Any]:
    """The Jacobian of ``output`` with respect to each tracked tensor, by sweeps carrying rows at once."""
    results = [np.zeros(np.shape(output) + t.shape, dtype=t.dtype) for t in call.tracked]
    if not isinstance(output, Tensor) or not output.requires_grad:
        return results
    flat = [r.reshape(output.size, t.size) for r, t in zip(results, call.tracked, strict=True)]
    ones = np.ones(output.shape, dtype=output.dtype)
    step = chunk_size or max(output.size, 1)
    for start in range(0, output.size, step):
        stop = min(start + step, output.size)
        seed = DiagonalRows(ones, start, stop)
        reached = propagate([(output, seed)], retain_graph=True, create_graph=False, batch=stop - start)
        for rows, tensor in zip(flat, call.tracked, strict=True):
            entry = reached.get(id(tensor))
            if entry is not None:
                block = entry[1]
                block = block.dense() if isinstance(block, DiagonalRows) else np.asarray(block)
                rows[start:stop] = block.reshape(stop - start, tensor.size)
    return results


def _rows_recorded(call: TransformCall, output: Any) -> list[Any]:
    """The Jacobian of ``output`` with respect to each tracked tensor, one recorded sweep per row, so that
    an enclosing transform can differentiate it."""
    shape = np.shape(output)
    if not isinstance(output, Tensor) or not output.requires_grad or output.size == 0:
        return [np.zeros(shape + t.shape, dtype=t.dtype) for t in call.tracked]
    rows: list[list[Any]] = [[] for _ in call.tracked]
    for row in range(output.size):
        unit = np.zeros(output.size, dtype=output.dtype)
        unit[row] = 1
        found = gradients(
            output, call.tracked, unit.reshape(shape), retain_graph=True, create_graph=True, allow_unused=True
        )
        for k, (cotangent, tensor) in enumerate(zip(found, call.tracked, strict=True)):
            rows[k].append(np.zeros(tensor.shape, dtype=tensor.dtype) if cotangent is None else cotangent)
    return [np.reshape(np.stack(rows[k]), shape + t.shape) for k, t in enumerate(call.tracked)]

"""``jacobian`` and ``hessian``: whole derivative matrices, built from batches of VJPs in one sweep.

The rows of a Jacobian are the VJPs of the unit cotangents. Instead of a Python loop of reverse sweeps,
one sweep carries a batch of them (``chunk_size`` rows at a time, to bound memory). The batch starts as
rows of the identity held as their diagonal (``DiagonalRows``), which elementwise ops keep diagonal: the
Jacobian of an elementwise computation costs as much as one VJP until it is written out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backward import propagate
from .diagonal import DiagonalRows
from .functional import _is_nested, _normalize_argnums, _result, _track, grad, vjp
from .pytree import flatten, unflatten
from .tensor import Tensor


def jacobian(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, chunk_size: int | None = None
) -> Callable[..., Any]:
    """Make a function returning the Jacobian of ``f`` with respect to ``args[argnums]``.

    The Jacobian of an output of shape ``S`` with respect to an argument of shape ``A`` has shape
    ``S + A``: entry ``[i..., j...]`` is d out[i...] / d arg[j...] (JAX's ``jacrev`` layout); an argument
    that is a tuple, list or dict of arrays gets the same structure of Jacobians. It is built
    by reverse sweeps that carry ``chunk_size`` rows each (all rows at once by default); memory grows with
    ``chunk_size`` times the size of the largest intermediate.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.jacobian(lambda x: x ** 2)(np.array([1.0, 3.0]))
    array([[2., 0.],
           [0., 6.]])
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"jacobian: chunk_size must be a positive number of rows, got {chunk_size}")

    def transformed(*args: Any) -> Any:
        numbers = _normalize_argnums(argnums, len(args))
        trees = [flatten(args[number]) for number in numbers]
        leaves = [leaf for tree_leaves, _ in trees for leaf in tree_leaves]

        def of_leaves(*values: Any) -> Any:
            full, start = list(args), 0
            for number, (tree_leaves, treedef) in zip(numbers, trees, strict=True):
                full[number] = unflatten(treedef, list(values[start : start + len(tree_leaves)]))
                start += len(tree_leaves)
            return f(*full)

        every_leaf = tuple(range(len(leaves)))
        if _is_nested(leaves):
            # Inside another transform: rows one by one, each recorded, so the result can be differentiated.
            matrices = _rows_recorded(of_leaves, tuple(leaves), every_leaf)
        else:
            matrices = _rows_batched(of_leaves, tuple(leaves), every_leaf, chunk_size)
        results, start = [], 0
        for tree_leaves, treedef in trees:
            results.append(unflatten(treedef, matrices[start : start + len(tree_leaves)]))
            start += len(tree_leaves)
        return results[0] if isinstance(argnums, int) else tuple(results)

    transformed.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    return transformed


def hessian(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, chunk_size: int | None = None
) -> Callable[..., Any]:
    """Make a function returning the Hessian of the scalar function ``f``: the Jacobian of its gradient.

    For an argument of shape ``A`` the Hessian has shape ``A + A``; with a tuple of ``argnums`` it is a
    nested tuple of blocks, ``H[i][j]`` of shape ``A_i + A_j`` (as JAX's ``hessian``).

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.hessian(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    gradient = grad(f, argnums)
    if isinstance(argnums, int):
        return jacobian(gradient, argnums, chunk_size)

    def transformed(*args: Any) -> Any:
        rows = []
        for k in range(len(tuple(argnums))):
            component = lambda *inner, k=k: gradient(*inner)[k]
            rows.append(jacobian(component, argnums, chunk_size)(*args))
        return tuple(rows)

    transformed.__name__ = f"hessian({getattr(f, '__name__', 'f')})"
    return transformed


def _rows_batched(
    f: Callable[..., Any], args: tuple[Any, ...], numbers: tuple[int, ...], chunk_size: int | None
) -> list[Any]:
    arguments = list(args)
    tracked = [_track(arguments[number]) for number in numbers]
    for number, tensor in zip(numbers, tracked, strict=True):
        arguments[number] = tensor
    out = f(*arguments)
    out_shape = np.shape(out)
    results = [np.zeros(out_shape + t.shape, dtype=t.dtype) for t in tracked]
    if not isinstance(out, Tensor) or not out.requires_grad:
        return results
    flat = [r.reshape(out.size, t.size) for r, t in zip(results, tracked, strict=True)]
    ones = np.ones(out_shape, dtype=out.dtype)
    step = chunk_size or max(out.size, 1)
    for start in range(0, out.size, step):
        stop = min(start + step, out.size)
        seed = DiagonalRows(ones, start, stop)
        reached = propagate([(out, seed)], retain_graph=True, create_graph=False, batch=stop - start)
        for rows, tensor in zip(flat, tracked, strict=True):
            entry = reached.get(id(tensor))
            if entry is not None:
                block = entry[1]
                block = block.dense() if isinstance(block, DiagonalRows) else np.asarray(block)
                rows[start:stop] = block.reshape(stop - start, tensor.size)
    return results


def _rows_recorded(f: Callable[..., Any], args: tuple[Any, ...], numbers: tuple[int, ...]) -> list[Any]:
    def restricted(*picked: Any) -> Any:
        full = list(args)
        for number, value in zip(numbers, picked, strict=True):
            full[number] = value
        return f(*full)

    out, pullback = vjp(restricted, *(args[number] for number in numbers))
    size = int(np.size(out))
    shape = np.shape(out)
    dtype = out.dtype
    matrices: list[list[Any]] = [[] for _ in numbers]
    for row in range(size):
        unit = np.zeros(size, dtype=dtype)
        unit[row] = 1
        for k, cotangent in enumerate(pullback(unit.reshape(shape))):
            matrices[k].append(cotangent)
    results = []
    for k, number in enumerate(numbers):
        arg_shape = np.shape(args[number])
        if size:
            results.append(np.reshape(np.stack(matrices[k]), shape + arg_shape))
        else:
            results.append(_result(np.zeros(shape + arg_shape), False))
    return results

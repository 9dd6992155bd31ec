"""Functional transforms: ``gradients``, ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``hvp``.

Each transform runs the function on fresh tracked inputs and sweeps the tape back to them. When the inputs
are themselves tensors recorded by an outer computation, the sweep records itself (``create_graph``), so
transforms nest freely: ``grad(grad(f))`` differentiates the first gradient. Called on plain arrays, a
transform returns plain arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backward import propagate, seed_cotangent
from .grad_mode import state
from .op import Op
from .pytree import flatten, unflatten
from .tensor import Tensor

# Marks where a transform's inputs enter, so that an input which is itself a recorded tensor gets a node
# of its own: the sweep captures its cotangent there, and the outer computation still sees the link.
_enter = Op(lambda x: x, lambda g, out, x: g, name="input", view=True)


def gradients(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Any, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, without touching any ``.grad``.

    As PyTorch's ``torch.autograd.grad``: ``grad_outputs`` are the cotangents of the outputs (implied for
    single-element outputs). ``inputs`` may be leaves or intermediate tensors.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> tape.gradients((x ** 2).sum(), x)
    (array([2., 4.]),)
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    seeds = [
        (out, seed_cotangent(out, cotangent, create_graph, "gradients"))
        for out, cotangent in zip(outputs, grad_outputs, strict=True)
    ]
    capture = {tensor._record for tensor in inputs if tensor._record is not None}
    retain = create_graph if retain_graph is None else retain_graph
    reached = propagate(seeds, retain_graph=retain, create_graph=create_graph, capture=capture)
    results = []
    for k, tensor in enumerate(inputs):
        if tensor._record is None:
            entry = reached.get(id(tensor))
            value = None if entry is None else entry[1]
        else:
            value = reached.get(tensor._record)
            if value is not None and tensor._index is not None:
                value = value[tensor._index]
        if value is None and not allow_unused:
            raise RuntimeError(
                f"gradients: input {k} (shape {tensor.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        results.append(value)
    return tuple(results)


def _track(value: Any) -> Tensor:
    """A tensor that requires grad standing for ``value``, linked to ``value``'s history if it has one."""
    if isinstance(value, Tensor):
        if value.requires_grad and state.grad_enabled:
            return _enter(value)
        return Tensor(value.data, requires_grad=True)
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise TypeError(
            f"can only differentiate with respect to floating-point values, got dtype {array.dtype.name}"
        )
    return Tensor(array, requires_grad=True)


def _is_nested(values: Sequence[Any]) -> bool:
    return state.grad_enabled and any(isinstance(v, Tensor) and v.requires_grad for v in values)


def _result(value: Any, nested: bool) -> Any:
    if nested or not isinstance(value, Tensor):
        return value
    return value.data


def _or_zeros(found: Sequence[Any], tracked: Sequence[Tensor], nested: bool) -> list[Any]:
    """Each gradient as the caller wants it, with zeros for inputs the output did not depend on."""
    return [
        _result(np.zeros_like(t.data) if g is None else g, nested)
        for g, t in zip(found, tracked, strict=True)
    ]


def _inner_product(tensors: Sequence[Any], directions: Sequence[Any]) -> Any:
    """sum_k <tensors[k], directions[k]>, recorded; ``None`` entries (unused inputs) count as zero."""
    total: Any = None
    for tensor, direction in zip(tensors, directions, strict=True):
        if tensor is None:
            continue
        if not isinstance(direction, Tensor):
            direction = np.asarray(direction, dtype=tensor.dtype)
        term = np.sum(tensor * direction)
        total = term if total is None else total + term
    return total


def _normalize_argnums(argnums: int | Sequence[int], count: int) -> tuple[int, ...]:
    numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for number in numbers:
        if not -count <= number < count:
            raise ValueError(f"argnums {argnums} out of range for a function called with {count} arguments")
    return tuple(number % count for number in numbers)


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Make a function returning ``(f(*args), gradient of f with respect to args[argnums])``.

    ``f`` must return a single-element tensor (or ``(value, aux)`` with ``has_aux``). Arguments may be
    arrays or tuples, lists and dicts of arrays; the gradient has the same structure.

    Examples
    --------
    >>> import numpy as np, tape
    >>> value, gradient = tape.value_and_grad(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0]))
    >>> float(value), gradient
    (9.0, array([ 3., 12.]))
    """

    def transformed(*args: Any) -> Any:
        numbers = _normalize_argnums(argnums, len(args))
        arguments = list(args)
        trees = []
        tracked: list[Tensor] = []
        originals: list[Any] = []
        for number in numbers:
            leaves, treedef = flatten(arguments[number])
            entered = [_track(leaf) for leaf in leaves]
            trees.append((treedef, len(entered)))
            tracked += entered
            originals += leaves
            arguments[number] = unflatten(treedef, entered)
        nested = _is_nested(originals)
        result = f(*arguments)
        value, aux = result if has_aux else (result, None)
        if np.size(value) != 1:
            raise TypeError(
                "grad: the function must return a single-element tensor, got "
                f"{type(value).__name__} of shape {np.shape(value)}; use tape.vjp or tape.jacobian otherwise"
            )
        if isinstance(value, Tensor) and value.requires_grad:
            found = gradients(value, tracked, create_graph=nested, retain_graph=nested, allow_unused=True)
        else:
            found = (None,) * len(tracked)
        grads = _or_zeros(found, tracked, nested)
        structured = []
        start = 0
        for treedef, count in trees:
            structured.append(unflatten(treedef, grads[start : start + count]))
            start += count
        gradient = structured[0] if isinstance(argnums, int) else tuple(structured)
        value = _result(value, nested)
        return ((value, aux), gradient) if has_aux else (value, gradient)

    transformed.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return transformed


def grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Make a function returning the gradient of ``f`` with respect to ``args[argnums]``.

    Transforms nest: ``grad(grad(f))`` is the second derivative of a scalar function.

    Examples
    --------
    >>> import numpy as np, tape
    >>> d2 = tape.grad(tape.grad(lambda x: x ** 4))
    >>> float(d2(2.0))
    48.0
    """
    both = value_and_grad(f, argnums, has_aux)

    def transformed(*args: Any) -> Any:
        if has_aux:
            (_, aux), gradient = both(*args)
            return gradient, aux
        return both(*args)[1]

    transformed.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return transformed


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    """Run ``f(*primals)`` and return its output and a function mapping an output cotangent to the
    cotangents of the primals (one per primal, as JAX's ``vjp``).

    Examples
    --------
    >>> import numpy as np, tape
    >>> out, pullback = tape.vjp(np.sin, np.array([0.0, np.pi]))
    >>> pullback(np.ones(2))
    (array([ 1., -1.]),)
    """
    nested = _is_nested(primals)
    tracked = [_track(p) for p in primals]
    out = f(*tracked)
    if not isinstance(out, Tensor):
        raise TypeError(f"vjp: the function must return a tensor, got {type(out).__name__}")

    def pullback(cotangent: Any) -> tuple[Any, ...]:
        if not out.requires_grad:
            return tuple(_result(np.zeros_like(t.data), nested) for t in tracked)
        found = gradients(out, tracked, cotangent, retain_graph=True, create_graph=nested, allow_unused=True)
        return tuple(_or_zeros(found, tracked, nested))

    return _result(out, nested), pullback


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """The output of ``f(*primals)`` and its directional derivative along ``tangents`` (J v).

    Computed in reverse mode by differentiating the (linear) VJP with respect to its cotangent.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.jvp(lambda x: x ** 2, (np.array([3.0]),), (np.array([1.0]),))[1]
    array([6.])
    """
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    nested = _is_nested(primals) or _is_nested(tangents)
    tracked = [_track(p) for p in primals]
    out = f(*tracked)
    if not isinstance(out, Tensor):
        raise TypeError(f"jvp: the function must return a tensor, got {type(out).__name__}")
    if not out.requires_grad:
        return _result(out, nested), _result(np.zeros_like(out.data), nested)
    # The VJP is linear in its cotangent u; differentiating <VJP(u), tangents> with respect to u gives J v.
    dummy = Tensor(np.zeros_like(out.data), requires_grad=True)
    pulled = gradients(out, tracked, dummy, retain_graph=True, create_graph=True, allow_unused=True)
    pairing = _inner_product(pulled, tangents)
    if not isinstance(pairing, Tensor) or not pairing.requires_grad:
        return _result(out, nested), _result(np.zeros_like(out.data), nested)
    (tangent_out,) = gradients(pairing, dummy, create_graph=nested, retain_graph=nested, allow_unused=True)
    if tangent_out is None:
        tangent_out = np.zeros_like(out.data)
    return _result(out, nested), _result(tangent_out, nested)


def hvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, ...]:
    """Hessian-vector product of a scalar function: H v, one result per primal, with no Hessian built.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.hvp(lambda x: np.sum(x ** 3), (np.array([1.0, 2.0]),), (np.array([1.0, 0.0]),))
    (array([6., 0.]),)
    """
    nested = _is_nested(primals) or _is_nested(tangents)
    tracked = [_track(p) for p in primals]
    value = f(*tracked)
    first = gradients(value, tracked, create_graph=True, allow_unused=True)
    pairing = _inner_product(first, tangents)
    if not isinstance(pairing, Tensor) or not pairing.requires_grad:
        return tuple(_result(np.zeros_like(t.data), nested) for t in tracked)
    second = gradients(pairing, tracked, create_graph=nested, retain_graph=nested, allow_unused=True)
    return tuple(_or_zeros(second, tracked, nested))

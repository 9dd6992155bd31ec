"""Functional transforms: ``gradients``, ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``hvp``.

Each transform runs the function on fresh tracked inputs and sweeps the tape back to them
(``tape.trace``). Inputs and outputs may be arrays, scalars, tensors, or tuples, lists and dicts of them
(nested), and results have the matching structure, as in JAX. Transforms compose with each other to any
depth, with any ``argnums`` and with values captured by closures: a result stays a recorded tensor exactly
when it depends on something an enclosing computation differentiates. Called at top level on plain
arrays, a transform returns plain arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backward import propagate, seed_cotangent
from .grad_mode import state
from .hooks import refuse_record_hooks
from .pytree import flatten, unflatten
from .tangents import ForwardModeUnavailableError, ForwardSweep, push_forward, records_between
from .tensor import Tensor, leaf
from .trace import TransformCall


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


def _normalize_argnums(argnums: int | Sequence[int], count: int, caller: str) -> tuple[int, ...]:
    numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not numbers:
        raise ValueError(f"{caller}: argnums is empty; name at least one argument to differentiate")
    for number in numbers:
        if not -count <= number < count:
            raise ValueError(
                f"{caller}: argnums {argnums} out of range for a function called with {count} arguments"
            )
    normalized = tuple(number % count for number in numbers)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{caller}: argnums {argnums} names an argument twice; name each argument once")
    return normalized


def track_arguments(
    call: TransformCall, args: tuple[Any, ...], argnums: int | Sequence[int]
) -> tuple[list[Any], list[tuple[Any, int]]]:
    """``args`` with the trees at ``argnums`` replaced by tracked tensors, and ``(treedef, leaf count)`` per
    differentiated argument, in the order of ``argnums``."""
    arguments = list(args)
    trees = []
    for number in _normalize_argnums(argnums, len(args), call.name):
        arguments[number], tracked, treedef = call.track_tree(arguments[number])
        trees.append((treedef, len(tracked)))
    return arguments, trees


def structure_like_argnums(
    argnums: int | Sequence[int], trees: list[tuple[Any, int]], values: Sequence[Any]
) -> Any:
    """One value per tracked leaf, rebuilt as the trees of ``argnums`` (a tuple of trees for a sequence)."""
    structured, start = [], 0
    for treedef, count in trees:
        structured.append(unflatten(treedef, list(values[start : start + count])))
        start += count
    return structured[0] if isinstance(argnums, int) else tuple(structured)


def _zeros_where_unused(call: TransformCall, found: Sequence[Any], nested: bool) -> list[Any]:
    """Each gradient as the caller wants it, with zeros for tracked inputs the outputs did not reach."""
    return [
        call.result(np.zeros_like(t._data) if g is None else g, nested)
        for g, t in zip(found, call.tracked, strict=True)
    ]


def _differentiable(outputs: Sequence[Any]) -> list[int]:
    """Positions of the outputs that carry a gradient (recorded tensors)."""
    return [k for k, out in enumerate(outputs) if isinstance(out, Tensor) and out.requires_grad]


def _cotangent_leaves(cotangent: Any, treedef: Any, outputs: Sequence[Any], caller: str) -> list[Any]:
    """The leaves of ``cotangent``, which must have the outputs' structure and shapes."""
    leaves, given = flatten(cotangent)
    if given != treedef:
        raise ValueError(
            f"{caller}: the cotangent's structure {given} does not match the output's structure {treedef}"
        )
    for k, (cotangent, out) in enumerate(zip(leaves, outputs, strict=True)):
        if np.shape(cotangent) != np.shape(out):
            raise ValueError(
                f"{caller}: cotangent leaf {k} has shape {np.shape(cotangent)} but the output has shape "
                f"{np.shape(out)}"
            )
    return leaves


def _zeros_like_output(output: Any) -> np.ndarray:
    """The tangent or cotangent of an output that depends on no input: zeros, floating."""
    array = np.asarray(output._data if isinstance(output, Tensor) else output)
    return np.zeros(array.shape, dtype=array.dtype if array.dtype.kind == "f" else np.float64)


def _pairing(tensors: Sequence[Any], directions: Sequence[Any]) -> Any:
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


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Make a function returning ``(f(*args), gradient of f with respect to args[argnums])``.

    ``f`` must return a single-element tensor (or ``(value, aux)`` with ``has_aux``). Arguments may be
    arrays or tuples, lists and dicts of arrays; the gradient has the same structure (a tuple of them for a
    sequence of ``argnums``).

    Examples
    --------
    >>> import numpy as np, tape
    >>> value, gradient = tape.value_and_grad(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0]))
    >>> float(value), gradient
    (9.0, array([ 3., 12.]))
    >>> f = lambda x, y: np.sin(x) * np.cos(y)
    >>> round(float(tape.grad(tape.grad(f, 1), 0)(0.3, 0.4)), 4)  # a mixed partial
    -0.372
    """

    def transformed(*args: Any) -> Any:
        call = TransformCall("grad")
        arguments, trees = track_arguments(call, args, argnums)
        result = call.run(f, *arguments)
        if has_aux:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError(
                    f"grad: with has_aux=True the function must return (value, aux), got {result!r}"
                )
            value, aux = result
        else:
            value, aux = result, None
        if np.size(value) != 1 or isinstance(value, tuple | list | dict):
            raise TypeError(
                "grad: the function must return a single-element tensor, got "
                f"{type(value).__name__} of shape {np.shape(value)}; use tape.vjp or tape.jacobian otherwise"
            )
        nested = call.nested([value])
        if isinstance(value, Tensor) and value.requires_grad:
            found = gradients(
                value, call.tracked, create_graph=nested, retain_graph=nested, allow_unused=True
            )
        else:
            found = (None,) * len(call.tracked)
        gradient = structure_like_argnums(argnums, trees, _zeros_where_unused(call, found, nested))
        value = call.result(value, nested)
        return ((value, aux), gradient) if has_aux else (value, gradient)

    transformed.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return transformed


def grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Make a function returning the gradient of ``f`` with respect to ``args[argnums]``.

    Transforms nest: ``grad(grad(f))`` is the second derivative of a scalar function, and an inner
    transform may close over an outer one's variables.

    Examples
    --------
    >>> import numpy as np, tape
    >>> d2 = tape.grad(tape.grad(lambda x: x ** 4))
    >>> float(d2(2.0))
    48.0
    >>> outer = lambda x: x * tape.grad(lambda y: x * y)(2.0)  # the inner gradient is x
    >>> float(tape.grad(outer)(1.0))
    2.0
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
    cotangents of the primals (a tuple with one per primal, as JAX's ``vjp``).

    Primals and the output may be trees (tuples, lists, dicts) of arrays; the cotangent has the output's
    structure and each primal's cotangent that primal's.

    Examples
    --------
    >>> import numpy as np, tape
    >>> out, pullback = tape.vjp(np.sin, np.array([0.0, np.pi]))
    >>> pullback(np.ones(2))
    (array([ 1., -1.]),)
    >>> out, pullback = tape.vjp(lambda p: {"twice": 2 * p["x"]}, {"x": np.ones(2)})
    >>> pullback({"twice": np.array([1.0, 3.0])})
    ({'x': array([2., 6.])},)
    """
    call = TransformCall("vjp")
    arguments, trees = track_arguments(call, primals, tuple(range(len(primals)))) if primals else ([], [])
    out = call.run(f, *arguments)
    outputs, out_treedef = flatten(out)
    nested = call.nested(outputs)
    differentiable = _differentiable(outputs)

    def pullback(cotangent: Any) -> tuple[Any, ...]:
        leaves = _cotangent_leaves(cotangent, out_treedef, outputs, "vjp")
        # A cotangent that requires grad (the pullback differentiated in it: J v the reverse way) keeps
        # the results recorded, as an output that depends on an enclosing level does.
        recorded = nested or any(isinstance(u, Tensor) and u.requires_grad for u in leaves)
        if differentiable:
            found = gradients(
                [outputs[k] for k in differentiable],
                call.tracked,
                [leaves[k] for k in differentiable],
                retain_graph=True,
                create_graph=recorded,
                allow_unused=True,
            )
        else:
            found = (None,) * len(call.tracked)
        return structure_like_argnums(
            tuple(range(len(primals))), trees, _zeros_where_unused(call, found, recorded)
        )

    # The pullback reads what the records saved, which may be the very buffers returned (an exp's output,
    # an input returned as it is): the caller gets copies, so writing into them cannot change a pullback.
    returned = [call.result(o, nested) for o in outputs]
    returned = [value.copy() if type(value) is np.ndarray else value for value in returned]
    return unflatten(out_treedef, returned), pullback


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """The output of ``f(*primals)`` and its directional derivative along ``tangents`` (J v).

    ``tangents`` has one entry per primal, of the primal's structure; the tangent out has the output's
    structure (zeros where the output does not depend on the primals). Computed in forward mode: the
    tangents are pushed through the function's records as they are made, by each op's JVP rule
    (``tape.tangents``), and an op with a joint rule (a product, sin, cos) computes its output and tangent
    together, so a JVP costs less than two forward passes. The primal output may then differ from
    ``f(*primals)`` in the last bits (another summation order in a product). Inside another
    transform, with tangents that require grad, or with complex values, it is computed in reverse mode
    instead, by differentiating the (linear) VJP with respect to its cotangent, so that every enclosing
    level sees the dependence.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.jvp(lambda x: x ** 2, (np.array([3.0]),), (np.array([1.0]),))[1]
    array([6.])
    >>> tape.jvp(np.floor, (np.array([1.5]),), (np.array([1.0]),))[1]
    array([0.])
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    call = TransformCall("jvp")
    arguments, _ = track_arguments(call, primals, tuple(range(len(primals)))) if primals else ([], [])
    directions = []
    for k, (primal, tangent) in enumerate(zip(primals, tangents, strict=True)):
        primal_leaves, primal_tree = flatten(primal)
        tangent_leaves, tangent_tree = flatten(tangent)
        if tangent_tree != primal_tree or any(
            np.shape(t) != np.shape(p) for t, p in zip(tangent_leaves, primal_leaves, strict=True)
        ):
            raise ValueError(f"jvp: tangent {k} does not have the structure and shapes of primal {k}")
        directions += tangent_leaves
    sweep = _sweep_while_running(call, directions)
    out = call.run(f, *arguments, sweep=sweep)
    outputs, out_treedef = flatten(out)
    nested = call.nested(outputs) or any(isinstance(t, Tensor) and t.requires_grad for t in directions)
    differentiable = _differentiable(outputs)
    tangents_out: list[Any] = [_zeros_like_output(o) for o in outputs]
    pushed = None
    if differentiable and not nested:
        pushed = _push_forward(call, outputs, differentiable, directions, sweep)
    if pushed is not None:
        for k, value in zip(differentiable, pushed, strict=True):
            if value is not None:
                tangents_out[k] = value
    elif differentiable:
        # Hooks would change the cotangents below, and J v with them: refused, as forward mode refuses.
        refuse_record_hooks(records_between([outputs[k] for k in differentiable]), "tape.jvp")
        # The VJP is linear in its cotangent u: the derivative of <VJP(u), tangents> in u is J v.
        dummies = [leaf(np.zeros_like(outputs[k]._data), requires_grad=True) for k in differentiable]
        call.made(dummies)
        pulled = gradients(
            [outputs[k] for k in differentiable],
            call.tracked,
            dummies,
            retain_graph=True,
            create_graph=True,
            allow_unused=True,
        )
        pairing = call.run(_pairing, pulled, directions)  # recorded, whatever the caller's mode
        if isinstance(pairing, Tensor) and pairing.requires_grad:
            found = gradients(pairing, dummies, create_graph=nested, retain_graph=nested, allow_unused=True)
            for k, value in zip(differentiable, found, strict=True):
                if value is not None:
                    tangents_out[k] = value
    return (
        unflatten(out_treedef, [call.result(o, nested) for o in outputs]),
        unflatten(out_treedef, [call.result(t, nested) for t in tangents_out]),
    )


def _seeds(call: TransformCall, directions: list[Any]) -> dict[int, Any]:
    """``{id(tracked input): its tangent as an array of its dtype}``."""
    return {
        id(tracked): np.asarray(getattr(direction, "_data", direction), dtype=tracked.dtype)
        for tracked, direction in zip(call.tracked, directions, strict=True)
    }


def _sweep_while_running(call: TransformCall, directions: list[Any]) -> ForwardSweep | None:
    """A sweep that pushes the tangents as the function runs, where forward mode will apply: not inside
    another transform or a ``tape.compile`` recording, real inputs, tangents that need no derivative of
    their own. (A result found nested as the function runs stops it.)"""
    if not call.outermost() or state.tracer is not None or call.nested([]):
        return None
    if any(isinstance(t, Tensor) and t.requires_grad for t in directions):
        return None
    if any(tracked.dtype.kind == "c" for tracked in call.tracked):
        return None
    return ForwardSweep(_seeds(call, directions), call.inside_leaves() if call.recording else None)


def _push_forward(
    call: TransformCall,
    outputs: list[Any],
    differentiable: list[int],
    directions: list[Any],
    sweep: ForwardSweep | None = None,
) -> list[Any] | None:
    """The tangents of the differentiable outputs by forward mode (found by ``sweep`` as the function ran,
    where there was one), or None where it does not apply."""
    seeds = sweep.seeds if sweep is not None else _seeds(call, directions)
    wanted = [outputs[k] for k in differentiable]
    try:
        pushed = push_forward(wanted, seeds) if sweep is None or sweep.stopped else sweep.results(wanted)
    except ForwardModeUnavailableError:
        return None
    return _not_sharing(pushed, list(seeds.values()))


def _not_sharing(values: list[Any], given: list[Any]) -> list[Any]:
    """``values``, each copied if it may share memory with one of ``given`` (a tangent out may be a view of a
    tangent in, a reshape's): results never share the caller's memory."""
    return [
        value.copy() if value is not None and any(np.may_share_memory(value, s) for s in given) else value
        for value in values
    ]


def _hessian_times(call: TransformCall, first: Sequence[Any], directions: list[Any]) -> list[Any] | None:
    """H v by pushing ``directions`` forward through the records of the gradient ``first`` (recorded with
    ``create_graph``); None where forward mode does not apply (complex values)."""
    seeds = {
        id(tracked): np.asarray(getattr(direction, "_data", direction), dtype=tracked.dtype)
        for tracked, direction in zip(call.tracked, directions, strict=True)
    }
    recorded = [k for k, g in enumerate(first) if isinstance(g, Tensor) and g.requires_grad]
    try:
        pushed = push_forward([first[k] for k in recorded], seeds)
    except ForwardModeUnavailableError:
        return None
    found: list[Any] = [None] * len(first)
    for k, value in zip(recorded, _not_sharing(pushed, list(seeds.values())), strict=True):
        found[k] = value
    return found


def hvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, ...]:
    """Hessian-vector product of a scalar function: H v, one result per primal (of its structure), with no
    Hessian built.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.hvp(lambda x: np.sum(x ** 3), (np.array([1.0, 2.0]),), (np.array([1.0, 0.0]),))
    (array([6., 0.]),)
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"hvp: {len(primals)} primals but {len(tangents)} tangents")
    call = TransformCall("hvp")
    numbers = tuple(range(len(primals)))
    arguments, trees = track_arguments(call, primals, numbers)
    directions = [leaf for tangent in tangents for leaf in flatten(tangent)[0]]
    value = call.run(f, *arguments)
    if np.size(value) != 1 or isinstance(value, tuple | list | dict):
        raise TypeError(f"hvp: the function must return a single-element tensor, got {type(value).__name__}")
    nested = call.nested([value]) or any(isinstance(t, Tensor) and t.requires_grad for t in directions)
    found: Sequence[Any] = (None,) * len(call.tracked)
    if isinstance(value, Tensor) and value.requires_grad:
        first = gradients(value, call.tracked, create_graph=True, allow_unused=True)
        pushed = None if nested else _hessian_times(call, first, directions)
        if pushed is not None:  # forward over reverse: the gradient's records, pushed along v
            return structure_like_argnums(numbers, trees, _zeros_where_unused(call, pushed, nested))
        pairing = call.run(_pairing, first, directions)  # recorded, whatever the caller's mode
        if isinstance(pairing, Tensor) and pairing.requires_grad:
            found = gradients(
                pairing, call.tracked, create_graph=nested, retain_graph=nested, allow_unused=True
            )
    return structure_like_argnums(numbers, trees, _zeros_where_unused(call, found, nested))

"""Forward mode on a recorded tape: push tangents through the records, earliest first (J v, no Jacobian).

A recorded computation is a straight-line program, so its directional derivative along tangents of its
inputs is one sweep over its records in tape order: each record maps the tangents of its inputs to the
tangent of its output with its op's JVP rule. The rules, in order of preference:

- the op's own ``jvp(tangents, out, *args, **kwargs)`` (``Op.defjvp``): matmul, the linear ops;
- for an elementwise op (``Op(..., elementwise=True)``), its VJPs: an elementwise Jacobian is diagonal, so
  the VJP of a tangent broadcast to the output's shape is the JVP;
- for any other op, the transpose of its VJP: a VJP is linear in its cotangent ``g``, so
  J v = d/dg <VJP(g), v>, computed by recording the VJP on a tracked ``g`` and sweeping it back. Exact,
  and about three times the cost of the VJP.

A rule reads exactly what the VJPs read (the same Jacobian, applied the other way), so it runs on the
record's saved values, with the backward sweep's version checks: a saved value changed in place since is
refused, never read. Complex values are not handled here (the caller uses reverse mode for them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backward import _raise_modified, _raise_output_modified, propagate
from .grad_mode import enable_grad
from .op import Op
from .record import Record
from .tensor import Tensor, leaf

ndarray = np.ndarray
_COMPLEX_KIND = "c"


class ForwardModeUnavailableError(Exception):
    """The recorded program holds something the tangent sweep does not handle (complex values)."""


def push_forward(outputs: Sequence[Tensor], tangents: dict[int, Any]) -> list[Any]:
    """The tangents of ``outputs`` given the tangents of some leaves (``{id(leaf): tangent}``); None for an
    output that no tangent reaches. Raises ``ForwardModeUnavailableError`` for complex values."""
    records = records_between(outputs)
    found: dict[Any, Any] = dict(tangents)  # id(leaf) or (record, index) -> tangent
    for record in records:
        incoming = _incoming(record, found)
        if incoming is None:
            continue
        out = record.out
        produced = tangent_of_record(record, incoming)
        if type(out) is tuple:
            for index, tangent in enumerate(produced):
                if tangent is not None:
                    found[(record, index)] = tangent
        elif produced is not None:
            found[(record, None)] = produced
    results = []
    for output in outputs:
        if output._record is None:
            results.append(found.get(id(output)))
        else:
            results.append(found.get((output._record, output._index)))
    return results


def check_unchanged(records: Sequence[Record]) -> None:
    """Refuse, as backward does, if a value one of ``records`` saved for its derivative has been changed
    in place since (for code that reads a derivative's pieces off the records without sweeping them)."""
    for record in records:
        if record.released:
            raise RuntimeError(f"the record of '{record.op.name}' was released by a backward")
        for argnum, _, _, counter, version in record.inputs:
            if counter[0] != version:
                _raise_modified(record, record.args, argnum, counter, version)
        for counter, version in record.out_versions:
            if counter[0] != version:
                _raise_output_modified(record, record.args)


def records_between(outputs: Sequence[Tensor], caller: str = "jvp") -> list[Record]:
    """The records the outputs depend on, earliest first (iteratively: deep graphs must work); ``caller``
    names the transform in the error for a record a backward released."""
    seen: set[Record] = set()
    stack = [output._record for output in outputs if output._record is not None]
    while stack:
        record = stack.pop()
        if record in seen:
            continue
        if record.released:
            raise RuntimeError(
                f"{caller}: the record of '{record.op.name}' was released by a backward; record the function "
                "again"
            )
        seen.add(record)
        for _, node, _, _, _ in record.inputs:
            if type(node) is Record and node not in seen:
                stack.append(node)
    return sorted(seen, key=lambda record: record.position)


def _incoming(record: Record, found: dict[Any, Any]) -> list[Any] | None:
    """The tangent of each positional argument of ``record`` (None where none), or None if none has one."""
    incoming: list[Any] | None = None
    for argnum, node, index, counter, version in record.inputs:
        if node is None:
            continue
        tangent = found.get(id(node)) if type(node) is not Record else found.get((node, index))
        if tangent is None:
            continue
        if counter[0] != version:
            _raise_modified(record, record.args, argnum, counter, version)
        if incoming is None:
            incoming = [None] * len(record.args)
        incoming[argnum] = tangent
    return incoming


def tangent_of_record(record: Record, tangents: list[Any]) -> Any:
    """The output tangent of one record (a tuple for several outputs) from its arguments' tangents."""
    for counter, version in record.out_versions:
        if counter[0] != version:
            _raise_output_modified(record, record.args)
    op, args, kwargs, out = record.op, record.args, record.kwargs, record.out
    outs = out if type(out) is tuple else (out,)
    if any(_is_complex(value) for value in (*outs, *args)) or any(_is_complex(t) for t in tangents):
        raise ForwardModeUnavailableError(op.name)
    if op.jvp is not None:
        produced = op.jvp(tuple(tangents), out, *args, **kwargs)
    elif op.elementwise:
        produced = _elementwise(op, tangents, out, args, kwargs)
    else:
        produced = transposed_vjp(op, tangents, out, args, kwargs)
    if type(out) is tuple:
        return tuple(None if t is None else _as_output(t, o) for t, o in zip(produced, out, strict=True))
    return None if produced is None else _as_output(produced, out)


def _is_complex(value: Any) -> bool:
    # (arrays, numpy scalars, and the shape-only stand-ins of values no VJP reads, which keep the dtype)
    dtype = getattr(value, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind == _COMPLEX_KIND


def _as_output(tangent: Any, out: Any) -> Any:
    shape, dtype = np.shape(out), out.dtype
    tangent = np.asarray(tangent)
    if tangent.shape != shape:
        tangent = np.broadcast_to(tangent, shape)
    return tangent.astype(dtype, copy=False)


def _elementwise(op: Op, tangents: list[Any], out: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    shape = np.shape(out)
    total = None
    for argnum, tangent in enumerate(tangents):
        if tangent is None:
            continue
        spread = tangent if np.shape(tangent) == shape else np.broadcast_to(tangent, shape)
        part = _vjp(op, argnum)(spread, out, *args, **kwargs)
        total = part if total is None else total + part
    return total


def transposed_vjp(op: Op, tangents: list[Any], out: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """J v as the derivative in ``g`` of <VJP(g), v>: exact for any op, since a VJP is linear in ``g``.

    The VJP runs on the saved arrays; if one of its results does not record its dependence on ``g`` (a
    compiled function's VJP differentiates only tensor arguments), it runs again with the arguments that
    take a tangent as tensors, as under ``create_graph``; if that fails too, ``ForwardModeUnavailableError``.
    """
    try:
        return _transposed(op, tangents, out, args, kwargs, tensor_arguments=False)
    except (_NotRecordedError, TypeError):  # (TypeError: a VJP that refuses tensors, a gate's)
        pass
    try:
        return _transposed(op, tangents, out, args, kwargs, tensor_arguments=True)
    except (_NotRecordedError, TypeError) as error:
        raise ForwardModeUnavailableError(
            f"{op.name}: its VJP does not record on tensor cotangents, so forward mode cannot transpose it; "
            "give the op a JVP rule (Op.defjvp)"
        ) from error


class _NotRecordedError(Exception):
    """A VJP gave a nonzero result that did not record its dependence on its tensor cotangent."""


def _transposed(
    op: Op, tangents: list[Any], out: Any, args: Any, kwargs: dict[str, Any], tensor_arguments: bool
) -> Any:
    outs = out if type(out) is tuple else (out,)
    # Any g serves (the derivative of a linear map is the map), so a random one: a VJP that skips work
    # where its cotangent is zero (as for an output nobody used) must not skip it here. Outputs that carry
    # no gradient (integers) get plain zeros.
    rng = np.random.default_rng(0)
    dummies = [
        leaf(rng.standard_normal(np.shape(o)).astype(o.dtype), requires_grad=True)
        if o.dtype.kind == "f"
        else np.zeros(np.shape(o), o.dtype)
        for o in outs
    ]
    g: Any = tuple(dummies) if type(out) is tuple else dummies[0]
    values = args
    if tensor_arguments:  # their own dependence is not followed: only g's
        values = [
            leaf(value, requires_grad=True) if tangent is not None and type(value) is ndarray else value
            for value, tangent in zip(args, tangents, strict=True)
        ]
    with enable_grad():
        if op.backward is not None:
            cotangents = list(op.backward(g, out, *values, **kwargs))
        else:
            cotangents = [
                None if tangent is None else _vjp(op, argnum)(g, out, *values, **kwargs)
                for argnum, tangent in enumerate(tangents)
            ]
        pairing: Any = None
        for argnum, (cotangent, tangent) in enumerate(zip(cotangents, tangents, strict=True)):
            if tangent is None:
                continue
            if not (isinstance(cotangent, Tensor) and cotangent.requires_grad):
                _check_constant_zero(op, argnum, g, out, args, kwargs)
                continue  # a cotangent that does not depend on g: the zero map
            shape = cotangent.shape
            spread = tangent if np.shape(tangent) == shape else np.broadcast_to(tangent, shape)
            term = np.sum(cotangent * spread)
            pairing = term if pairing is None else pairing + term
    if pairing is None:
        return tuple(None for _ in outs) if type(out) is tuple else None
    seeds = [(pairing, np.ones((), pairing.dtype))]
    reached = propagate(seeds, retain_graph=False, create_graph=False)
    found = [None if id(d) not in reached or type(d) is ndarray else reached[id(d)][1] for d in dummies]
    return tuple(found) if type(out) is tuple else found[0]


def _vjp(op: Op, argnum: int) -> Callable[..., Any]:
    vjp = op.vjps[argnum]
    if vjp is None:  # (the engine refuses to record such an argument as requiring grad)
        raise AssertionError(f"{op.name}: argument {argnum} has a tangent but no VJP")
    return vjp


def _check_constant_zero(op: Op, argnum: int, g: Any, out: Any, args: Any, kwargs: dict[str, Any]) -> None:
    """A VJP whose result did not record a dependence on a tensor ``g`` is linear and constant in ``g``, so
    it must be zero; if it is not on plain arrays, it did not record what it computed, and its transpose
    cannot be read off the tape: never a zero in its place."""
    plain_g = tuple(getattr(item, "_data", item) for item in g) if type(g) is tuple else g._data
    if op.backward is not None:
        cotangent = op.backward(plain_g, out, *args, **kwargs)[argnum]
    else:
        cotangent = _vjp(op, argnum)(plain_g, out, *args, **kwargs)
    if cotangent is not None and np.any(np.asarray(getattr(cotangent, "_data", cotangent))):
        raise _NotRecordedError(f"{op.name}: argument {argnum}")

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

``tape.jvp`` pushes the tangents while the function runs (``ForwardSweep``): each record's tangent is
computed as the record is made, while its arrays are still in cache, and an op with a joint rule
(``Op(forward_jvp=...)``) computes its output and tangent together: a product with its operand and the
operand's tangent stacked reads its matrix once, where the recorded forward and then the sweep read it twice.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .backward import _raise_modified, _raise_output_modified, propagate
from .grad_mode import enable_grad, state
from .hooks import record_hooks, refuse_record_hooks
from .op import Op, count_sweep
from .record import Record, next_position
from .tensor import Tensor, leaf
from .views import refresh_if_stale

ndarray = np.ndarray
_COMPLEX_KIND = "c"


class ForwardModeUnavailableError(Exception):
    """The recorded program holds something the tangent sweep does not handle (complex values)."""


def push_forward(
    outputs: Sequence[Tensor],
    tangents: dict[int, Any],
    known: Mapping[Record, Any] | None = None,
    batch: int | None = None,
) -> list[Any]:
    """The tangents of ``outputs`` given the tangents of some leaves (``{id(leaf): tangent}``); None for an
    output that no tangent reaches. ``known``: records whose tangents are already found (a tuple for
    several outputs, None for none), which the sweep takes as they are. ``batch``: every tangent holds
    that many, stacked on a leading axis (J V in one sweep; rules that take only one are run once per
    tangent). Raises ``ForwardModeUnavailableError`` for complex values."""
    records = records_between(outputs, known=known)
    refuse_record_hooks(records, _FORWARD_MODE)
    found: dict[Any, Any] = dict(tangents)  # id(leaf) or (record, index) -> tangent
    for record in records:
        out = record.out
        if known is not None and record in known:
            produced = known[record]
        else:
            incoming = _incoming(record, found)
            if incoming is None:
                continue
            produced = tangent_of_record(record, incoming, batch)
        if produced is None:
            continue
        if type(out) is tuple:
            for index, tangent in enumerate(produced):
                if tangent is not None:
                    found[(record, index)] = tangent
        else:
            found[(record, None)] = produced
    results = []
    for output in outputs:
        if output._record is None:
            results.append(found.get(id(output)))
        else:
            results.append(found.get((output._record, output._index)))
    return results


# What ``ForwardSweep`` finds of a record's inputs besides their tangents: one comes from a record the
# sweep did not see made (its tangent is for the later sweep to find), or from outside the transform call.
_NOT_SEEN: Any = object()
_OUTSIDE: Any = object()
_NO_JOINT_TANGENT: Any = object()
_FORWARD_MODE = "forward mode (tape.jvp, tape.jacfwd, tape.hvp, J @ v)"


class ForwardSweep:
    """Tangents pushed through each record as it is made, for ``tape.jvp``.

    While it is ``state.forward_sweep``, ``Op.__call__`` hands it every record it makes (``observe``),
    and first, for an op with a joint rule, the call itself (``joint``), which evaluates the output and
    its tangent together. A record made while the sweep was suspended (another transform running inside
    the function) or some other way is left for ``results``, which sweeps it, and whatever depends on it,
    afterwards as ``push_forward`` does: the sweep is a faster order of the same rules, never another
    answer. Tangents are held by weak reference to their records, so a record the function dropped frees
    its tangent too.

    ``inside``: the ids of the leaves made inside the transform call, when a record reading any other
    leaf, or a record made before ``start``, means the result is nested (the caller differentiates
    through it): the sweep then stops, and the caller takes reverse mode. Without it, such values have
    no tangent.
    """

    def __init__(self, seeds: dict[int, Any], inside: set[int] | None = None) -> None:
        self.seeds = seeds  # id(leaf) -> tangent
        self.tangents: weakref.WeakKeyDictionary[Record, Any] = weakref.WeakKeyDictionary()
        self.inside = inside
        self.start = next_position()
        self.stopped = False  # complex values, or a nested result: the caller sweeps otherwise

    @contextmanager
    def running(self) -> Iterator[None]:
        """Push tangents through the records made in this thread in the block."""
        previous = state.forward_sweep
        state.forward_sweep = self
        count_sweep(1)
        try:
            yield
        finally:
            count_sweep(-1)
            state.forward_sweep = previous

    def stop(self) -> None:
        """Push nothing more (the caller will not use what this found)."""
        self.stopped = True
        if state.forward_sweep is self:
            state.forward_sweep = None

    def joint(self, op: Op, inputs: Sequence[Any], values: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        """``(out, tangent)`` by ``op``'s joint rule for a call with ``inputs`` (as a record's) on
        ``values``, or None where the rule declines or the call's input tangents are not all known yet."""
        incoming = self._incoming(inputs, len(values))
        if incoming is None or incoming is _NOT_SEEN or incoming is _OUTSIDE:
            return None  # (``observe`` decides)
        state.forward_sweep = None  # the rule's own calls are not the function's
        try:
            return op.forward_jvp(tuple(incoming), *values, **kwargs)  # type: ignore[misc]
        finally:
            state.forward_sweep = self

    def observe(self, record: Record, joint_tangent: Any = _NO_JOINT_TANGENT) -> None:
        """Find the tangent of ``record``, just made (``joint_tangent``: what the joint rule gave)."""
        incoming = self._incoming(record.inputs, len(record.args))
        if incoming is _NOT_SEEN:
            return
        if incoming is _OUTSIDE:
            self.stop()
            return
        if incoming is None:
            self.tangents[record] = None
            return
        if joint_tangent is not _NO_JOINT_TANGENT:
            self.tangents[record] = _as_output(joint_tangent, record.out)
            return
        state.forward_sweep = None
        try:
            self.tangents[record] = tangent_of_record(record, incoming)
        except ForwardModeUnavailableError:
            self.stop()
        finally:
            if not self.stopped:
                state.forward_sweep = self

    def _incoming(self, inputs: Sequence[Any], count: int) -> Any:
        """Each argument's tangent (None where none), None if no argument has one, or ``_NOT_SEEN`` or
        ``_OUTSIDE``."""
        incoming: list[Any] | None = None
        for argnum, node, index, _, _ in inputs:
            if node is None:
                continue
            if type(node) is Record:
                if node.position < self.start:
                    if self.inside is not None:
                        return _OUTSIDE
                    continue
                tangent = self.tangents.get(node, _NOT_SEEN)
                if tangent is _NOT_SEEN:
                    return _NOT_SEEN
                if index is not None and tangent is not None:
                    tangent = tangent[index]
            else:
                tangent = self.seeds.get(id(node))
                if tangent is None and self.inside is not None and id(node) not in self.inside:
                    return _OUTSIDE
            if tangent is None:
                continue
            if incoming is None:
                incoming = [None] * count
            incoming[argnum] = tangent
        return incoming

    def results(self, outputs: Sequence[Tensor]) -> list[Any]:
        """The tangents of ``outputs``: found as their records were made, or swept now for those behind a
        record the sweep did not see. Raises ``ForwardModeUnavailableError`` as ``push_forward`` does."""
        if self.stopped:
            raise ForwardModeUnavailableError("the forward sweep stopped")
        if record_hooks:  # (hooks are registered after their tensor is made: looked for now)
            refuse_record_hooks(records_between(outputs), _FORWARD_MODE)
        found = []
        for output in outputs:
            refresh_if_stale(output)  # (a new cut after the sweep: swept below, by push_forward)
            record = output._record
            if record is None:
                found.append(self.seeds.get(id(output)))
            elif record in self.tangents:
                tangent = self.tangents[record]
                found.append(tangent if output._index is None or tangent is None else tangent[output._index])
            else:
                return push_forward(outputs, self.seeds, self.tangents)
        return found


@contextmanager
def forward_sweep(seeds: dict[int, Any], inside: set[int] | None = None) -> Iterator[ForwardSweep]:
    """Push ``seeds`` (``{id(leaf): tangent}``) through every record made in the block (``ForwardSweep``)."""
    sweep = ForwardSweep(seeds, inside)
    with sweep.running():
        yield sweep


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


def records_between(
    outputs: Sequence[Tensor], caller: str = "jvp", known: Mapping[Record, Any] | None = None
) -> list[Record]:
    """The records the outputs depend on, earliest first (iteratively: deep graphs must work), not looking
    behind those in ``known``; ``caller`` names the transform in the error for a record a backward
    released."""
    for output in outputs:
        refresh_if_stale(output)
    seen: set[Record] = set()
    stack = [output._record for output in outputs if output._record is not None]
    while stack:
        record = stack.pop()
        if record in seen:
            continue
        if known is not None and record in known:
            seen.add(record)
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


def tangent_of_record(record: Record, tangents: list[Any], batch: int | None = None) -> Any:
    """The output tangent of one record (a tuple for several outputs) from its arguments' tangents;
    ``batch``: each tangent holds that many, stacked on a leading axis, and so does the result."""
    for counter, version in record.out_versions:
        if counter[0] != version:
            _raise_output_modified(record, record.args)
    op, args, kwargs, out = record.op, record.args, record.kwargs, record.out
    outs = out if type(out) is tuple else (out,)
    if any(_is_complex(value) for value in (*outs, *args)) or any(_is_complex(t) for t in tangents):
        raise ForwardModeUnavailableError(op.name)
    if batch is not None and not _takes_batches(op):
        return _one_by_one(record, tangents, batch)
    if op.jvp is not None:
        produced = op.jvp(tuple(tangents), out, *args, **kwargs)
    elif op.elementwise:
        produced = _elementwise(op, tangents, out, args, kwargs, batch)
    else:
        produced = transposed_vjp(op, tangents, out, args, kwargs)
    if type(out) is tuple:
        return tuple(
            None if t is None else _as_output(t, o, batch) for t, o in zip(produced, out, strict=True)
        )
    return None if produced is None else _as_output(produced, out, batch)


def _takes_batches(op: Op) -> bool:
    """Whether ``op``'s rule takes tangents stacked on a leading axis: its own rule if it says so, its
    VJPs if it is elementwise and they take stacked cotangents."""
    if op.jvp is not None:
        return op.batched_jvp
    return op.elementwise and op.batched


def _one_by_one(record: Record, tangents: list[Any], batch: int) -> Any:
    """``tangent_of_record`` for each of ``batch`` stacked tangents, stacked again."""
    samples = [
        tangent_of_record(record, [None if t is None else t[j] for t in tangents]) for j in range(batch)
    ]
    out = record.out
    if type(out) is tuple:
        return tuple(_stacked([sample[k] for sample in samples], o) for k, o in enumerate(out))
    return _stacked(samples, out)


def _stacked(samples: list[Any], out: Any) -> Any:
    if all(sample is None for sample in samples):
        return None
    zeros = np.zeros(np.shape(out), out.dtype)
    return np.stack([zeros if sample is None else sample for sample in samples])


def _is_complex(value: Any) -> bool:
    # (arrays, numpy scalars, and the shape-only stand-ins of values no VJP reads, which keep the dtype)
    dtype = getattr(value, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind == _COMPLEX_KIND


def _as_output(tangent: Any, out: Any, batch: int | None = None) -> Any:
    shape, dtype = np.shape(out), out.dtype
    if batch is not None:
        shape = (batch, *shape)
    tangent = np.asarray(tangent)
    if tangent.shape != shape:
        tangent = np.broadcast_to(tangent, shape)
    return tangent.astype(dtype, copy=False)


def _elementwise(
    op: Op, tangents: list[Any], out: Any, args: Any, kwargs: dict[str, Any], batch: int | None = None
) -> Any:
    shape = np.shape(out)
    if batch is not None:
        shape = (batch, *shape)
    total = None
    for argnum, tangent in enumerate(tangents):
        if tangent is None:
            continue
        if batch is not None and np.ndim(tangent) < len(shape):
            # (a stacked tangent of a broadcast argument: its own axes line up with the output's last ones)
            tangent = tangent.reshape((batch,) + (1,) * (len(shape) - np.ndim(tangent)) + tangent.shape[1:])
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

"""The reverse sweep: replay records from the latest to the earliest, handing cotangents to VJPs.

Records are visited in decreasing tape position, so every record runs after all the records that used
its outputs, without building or sorting a graph, and without recursion: a chain of a million ops needs
no deeper stack than a chain of one. Each record's cotangent is popped as it is consumed. Unless
``retain_graph`` is set, the sweep claims each record's saved values before running its VJPs, so that one
backward alone consumes a record even when threads share a graph, and frees them once the VJPs ran.

Accumulation of cotangents happens here, and broadcasting and dtype casting in ``cotangents``, once for
every op. ``Tensor.backward`` runs ``backward`` below, through the table in ``tape.registry``.
"""

from __future__ import annotations

import heapq
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import hooks
from .anomaly import changed_at, check_finite
from .batched import batched_cotangents
from .cotangents import fit_cotangent
from .grad_mode import state
from .record import Record
from .registry import implements
from .tensor import Tensor, new_tensor
from .views import refresh_if_stale

_accumulation_lock = threading.Lock()


@implements(Tensor.backward)
def backward(
    root: Tensor, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False
) -> None:
    """Accumulate d(root)/d(leaf), contracted with ``gradient``, into each leaf's ``.grad``."""
    seed = seed_cotangent(root, gradient, create_graph, "backward")
    callbacks = hooks.open_callbacks()
    try:
        # A leaf with a post-accumulate hook gets its .grad as soon as the sweep has passed every record
        # that uses it, so that its hook (DistributedDataParallel's allreduce) runs beside the rest.
        finals = _final_positions(root) if hooks.post_accumulate else None

        def settle(entry: list[Any]) -> None:
            with _accumulation_lock:
                _accumulate(entry, create_graph)
            hooks.run_post_accumulate(entry[0])

        leaves = propagate(
            [(root, seed)],
            retain_graph=retain_graph or create_graph,
            create_graph=create_graph,
            finals=finals,
            settle=settle,
        )
        with _accumulation_lock:  # threads sharing a leaf must not lose each other's gradients
            for entry in leaves.values():
                _accumulate(entry, create_graph)
        if hooks.post_accumulate:
            for entry in leaves.values():
                hooks.run_post_accumulate(entry[0])
    finally:
        hooks.close_callbacks(callbacks)
    for callback in callbacks:
        callback()


def _accumulate(entry: list[Any], create_graph: bool) -> None:
    """Add the cotangent of ``entry`` (``[leaf, cotangent]``) to the leaf's ``.grad``."""
    leaf = entry[0]  # (the cotangent is not bound to a name: _unshared counts its references)
    if leaf.grad is not None:
        leaf.grad = leaf.grad + entry[1]
    elif create_graph or _unshared(entry):
        leaf.grad = entry[1]
    else:
        # The cotangent may be the seed, or shared with another leaf or a saved value (``x + y`` hands the
        # same array to both): a copy keeps in-place changes to one grad from the others.
        leaf.grad = np.array(entry[1], copy=True)


def _final_positions(root: Tensor) -> list[tuple[int, Tensor]]:
    """``(position, leaf)`` for each leaf with a post-accumulate hook in ``root``'s graph, where position
    is that of the earliest record using the leaf, latest position last.

    Records run in decreasing position, and a record only ever sends to earlier ones, so once the sweep
    reaches a record before that position, no more cotangent can reach the leaf: its gradient is final.
    """
    start = root._record
    if start is None:
        return []
    earliest: dict[int, tuple[int, Tensor]] = {}
    seen = {start}
    stack = [start]
    while stack:
        record = stack.pop()
        for _, node, _, _, _ in record.inputs:
            if node is None:
                continue
            if type(node) is Record:
                if node not in seen:
                    seen.add(node)
                    stack.append(node)
            elif node in hooks.post_accumulate:
                found = earliest.get(id(node))
                if found is None or record.position < found[0]:
                    earliest[id(node)] = (record.position, node)
    return sorted(earliest.values(), key=lambda item: item[0])


def _unshared(entry: list[Any]) -> bool:
    """Whether ``entry[1]`` is an array that nothing but ``entry`` refers to, so it can become a grad as is.

    An array's memory is reachable only through references to the array that owns it (a view refers to
    its base), so an owner referred to by ``entry`` alone, or a view referred to by ``entry`` alone whose
    base is referred to by that view alone (a reshaped sum), cannot be seen or changed by anyone else.
    """
    cotangent = entry[1]
    if type(cotangent) is not np.ndarray or not cotangent.flags.writeable:
        return False
    base = cotangent.base
    del cotangent
    if sys.getrefcount(entry[1]) > _REFERENCES_FROM_ENTRY:
        return False
    if base is None:
        return True
    # The base's references: the view's ``.base``, the local name ``base`` and getrefcount's argument.
    return type(base) is np.ndarray and base.base is None and sys.getrefcount(base) <= 3


# sys.getrefcount(entry[1]) of an array held only by ``entry``: the list's reference and the argument's.
_REFERENCES_FROM_ENTRY = 2


def seed_cotangent(root: Tensor, gradient: Any, create_graph: bool, caller: str) -> Any:
    """Check ``gradient`` against ``root`` (or make the implicit one for a single element)."""
    refresh_if_stale(root)  # a view cut before its base had the history it has now
    if not root.requires_grad:
        raise RuntimeError(
            f"{caller}: the tensor (shape {root.shape}, {root.dtype.name}) does not require grad and has "
            "no recorded history; create its inputs with requires_grad=True, outside tape.no_grad()"
        )
    if gradient is None:
        if root.dtype.kind == "c":
            raise RuntimeError(
                f"{caller}: the tensor is complex ({root.dtype.name}); a gradient can only be implied for a "
                "real single-element tensor, so pass gradient= (a complex cotangent), as PyTorch requires"
            )
        if root.size != 1:
            raise RuntimeError(
                f"{caller}: the tensor has shape {root.shape}; a gradient can only be implied for a "
                f"single-element tensor, so pass gradient= with shape {root.shape}"
            )
        seed: Any = np.ones_like(root._data)
    else:
        seed = gradient if isinstance(gradient, Tensor) else np.asarray(gradient)
        if seed.shape != root.shape:
            raise ValueError(
                f"{caller}: gradient has shape {seed.shape} but the tensor has shape {root.shape}"
            )
        if seed.dtype != root.dtype:
            _check_seed_dtype(seed.dtype, root.dtype, caller)
            seed = seed.astype(root.dtype)
    if create_graph:
        return seed if isinstance(seed, Tensor) else Tensor(seed)
    return seed._data if isinstance(seed, Tensor) else seed


# Seed dtypes that cast to a tensor's dtype without losing what they mean: numbers to real tensors; for
# complex tensors, complex numbers too. A lower precision is accepted (float64 for float32), as PyTorch does.
_REAL_KINDS = frozenset("biuf")
_COMPLEX_KINDS = frozenset("biufc")


def _check_seed_dtype(given: np.dtype, wanted: np.dtype, caller: str) -> None:
    if given.kind in (_COMPLEX_KINDS if wanted.kind == "c" else _REAL_KINDS):
        return
    if given.kind == "c":
        why = "the cast would drop its imaginary part; pass a real gradient (np.real(gradient) if meant)"
    else:
        why = f"a gradient is made of numbers; pass an array of {wanted} values"
    raise TypeError(f"{caller}: gradient has dtype {given} but the tensor has dtype {wanted}: {why}")


def propagate(
    seeds: list[tuple[Tensor, Any]],
    retain_graph: bool,
    create_graph: bool,
    capture: set[Record] | None = None,
    batch: int | None = None,
    finals: list[tuple[int, Tensor]] | None = None,
    settle: Callable[[list[Any]], None] | None = None,
) -> dict[Any, Any]:
    """Run the reverse sweep from ``seeds`` (tensor, cotangent pairs).

    With ``batch``, every cotangent carries a leading axis of that length: ``batch`` sweeps in one (the
    rows of a Jacobian). Ops marked ``batched`` take such cotangents directly; the VJPs of other ops run
    once per row.

    Returns ``{id(leaf): [leaf, cotangent]}`` for every leaf reached, and ``{record: cotangent}`` for each
    record in ``capture`` that was reached (its output cotangent, a tuple for several outputs). With
    ``capture`` and no leaf wanted, the sweep stops once every captured record has been passed.

    ``finals`` (from ``_final_positions``) names leaves to hand to ``settle`` (as ``[leaf, cotangent]``,
    after their hooks ran) as soon as their gradient is final; they are left out of what is returned.
    """
    if state.tracer is not None:
        state.tracer.refuse(
            "a backward pass ran (backward, tape.grad or another transform)",
            "compile the function and differentiate the compiled one (tape.grad(tape.compile(f))), or "
            "call .backward() on the compiled function's result",
        )
    for tensor, _ in seeds:
        refresh_if_stale(tensor)  # a view returned after its base was written: its history is a fresh cut
    sweep = _Sweep(create_graph, capture, batch)
    if finals:
        sweep.finals, sweep.settle = finals, settle
    for tensor, cotangent in seeds:
        sweep.send(tensor._record or tensor, tensor._index, cotangent)
    previous = state.grad_enabled
    state.grad_enabled = create_graph
    try:
        sweep.run(retain_graph)
        if hooks.leaf_hooks:
            hooks.run_leaf_hooks(sweep.leaves, batch is not None)
    finally:
        state.grad_enabled = previous
    return {**sweep.leaves, **sweep.captured}


class _Sweep:
    """Cotangents waiting for their record, the records in line (latest first), and the leaves reached.

    The latest record in line is kept out of the heap (``top``): in a chain each record hands its
    cotangent to the one just before it, which then goes straight to ``top`` without a heap push and pop.
    """

    __slots__ = (
        "batch",
        "captured",
        "capture",
        "create_graph",
        "finals",
        "leaves",
        "pending",
        "queue",
        "settle",
        "top",
    )

    def __init__(
        self, create_graph: bool, capture: set[Record] | None = None, batch: int | None = None
    ) -> None:
        self.pending: dict[Record, Any] = {}
        self.queue: list[tuple[int, Record]] = []
        self.top: Record | None = None
        self.leaves: dict[Any, list[Any]] = {}
        self.create_graph = create_graph
        self.capture = capture or set()
        self.captured: dict[Record, Any] = {}
        self.batch = batch
        self.finals: list[tuple[int, Tensor]] = []
        self.settle: Callable[[list[Any]], None] | None = None

    def settle_leaves(self, position: int) -> None:
        """Hand to ``settle`` each leaf in ``finals`` that no record at ``position`` or before uses."""
        finals, settle = self.finals, self.settle
        while finals and finals[-1][0] > position:
            leaf = finals.pop()[1]
            entry = self.leaves.pop(id(leaf), None)
            if entry is None or settle is None:
                continue  # no gradient reached it
            hooks.run_leaf_hooks({id(leaf): entry}, self.batch is not None)
            settle(entry)

    def schedule(self, record: Record) -> None:
        """Put ``record`` in line (it just received its first cotangent)."""
        top = self.top
        if top is None:
            self.top = record
        elif record.position > top.position:
            heapq.heappush(self.queue, (-top.position, top))
            self.top = record
        else:
            heapq.heappush(self.queue, (-record.position, record))

    def send(self, node: Any, index: int | None, cotangent: Any) -> None:
        """Add ``cotangent`` to what ``node`` (a record's output ``index``, or a leaf) has received."""
        if type(node) is Record:
            pending = self.pending
            if index is None:
                received = pending.get(node)
                if received is None:
                    pending[node] = cotangent
                    self.schedule(node)
                else:
                    pending[node] = received + cotangent
                return
            slots = pending.get(node)
            if slots is None:
                slots = pending[node] = [None] * _output_count(node)
                self.schedule(node)
            slots[index] = cotangent if slots[index] is None else slots[index] + cotangent
            return
        entry = self.leaves.get(id(node))
        if entry is None:
            self.leaves[id(node)] = [node, cotangent]
        else:
            entry[1] = entry[1] + cotangent

    def run(self, retain_graph: bool) -> None:
        queue, pending, create_graph, send = self.queue, self.pending, self.create_graph, self.send
        capture, batch, schedule = self.capture, self.batch, self.schedule
        heappop = heapq.heappop
        ndarray = np.ndarray
        hooked = hooks.Flags  # .records: whether any record has a hook (then each one is looked up)
        anomaly = state.anomaly
        profiler = state.profiler  # tape.profile: each record's VJPs are timed
        swap = _SWAP_IS_ATOMIC
        finals = self.finals  # leaves whose gradient is handed on as soon as it is final
        claimed = None  # the record whose saved values this sweep took and has not released yet
        saved: Any = None
        try:
            while True:
                record = self.top
                if record is None:
                    return
                self.top = heappop(queue)[1] if queue else None
                if finals and record.position < finals[-1][0]:
                    self.settle_leaves(record.position)
                g = pending.pop(record)
                # Another thread's backward may release this record meanwhile (see _SWAP_IS_ATOMIC). A
                # sweep that releases records claims each one first, taking its saved arguments and
                # leaving None, so only one sweep ever consumes it; the rest of the record is cleared
                # only after that. A sweep that keeps the graph reads the saved arguments last, so if
                # they are still there, what it read before them was not cleared either.
                if retain_graph:
                    inputs, out, kwargs = record.inputs, record.out, record.kwargs
                    saved = record.args
                else:
                    saved = None  # let go of the previous record's arguments here, not inside the claim
                    if swap:
                        saved, record.args = record.args, None
                    else:
                        saved = _claim_with_lock(record)
                    if saved is not None:
                        claimed = record
                    inputs, out, kwargs = record.inputs, record.out, record.kwargs
                if saved is None:
                    raise RuntimeError(
                        f"backward: the record of '{record.op.name}' was released by an earlier backward; "
                        "pass retain_graph=True to the first backward to run backward through it again"
                    )
                for argnum, _, _, counter, version in inputs:
                    if counter[0] != version:
                        _raise_modified(record, saved, argnum, counter, version)
                for counter, version in record.out_versions:
                    if counter[0] != version:
                        _raise_output_modified(record, saved)
                if type(g) is list:
                    g = tuple(
                        _zeros_for(item, batch) if slot is None else slot
                        for slot, item in zip(g, out, strict=True)
                    )
                if hooked.records:
                    g = hooks.run_record_hooks(record, g, batch is not None)
                if capture and record in capture:
                    self.captured[record] = g
                op = record.op
                if batch is not None:
                    for node, index, cotangent in batched_cotangents(
                        op, saved, kwargs, inputs, out, g, batch
                    ):
                        send(node, index, cotangent)
                    if not retain_graph:
                        record.kwargs = record.out = None
                        record.inputs = ()
                        claimed = None
                    continue
                if profiler is not None:
                    started, made = time.perf_counter_ns(), 0
                args = saved
                if create_graph:
                    args, out = _as_tensors(saved, inputs, out, record)
                joint = None if op.backward is None else op.backward(g, out, *args, **kwargs)
                vjps = op.vjps
                for argnum, node, index, _, _ in inputs:
                    if node is None:
                        continue
                    if joint is None:
                        if kwargs:
                            cotangent = vjps[argnum](g, out, *args, **kwargs)
                        else:
                            cotangent = vjps[argnum](g, out, *args)
                    else:
                        cotangent = joint[argnum]
                        if cotangent is None:
                            continue
                    value = saved[argnum]
                    if (
                        type(cotangent) is not ndarray
                        or cotangent.shape != value.shape
                        or cotangent.dtype is not value.dtype
                    ):
                        if cotangent is None:
                            continue
                        cotangent = fit_cotangent(cotangent, saved, argnum, out, op.name, create_graph)
                    if anomaly:
                        check_finite(record, saved, argnum, g, cotangent)
                    if profiler is not None:
                        made += getattr(getattr(cotangent, "_data", cotangent), "nbytes", 0)
                    if index is None and type(node) is Record:
                        received = pending.get(node)
                        if received is None:
                            pending[node] = cotangent
                            if self.top is None:  # schedule(node), inline for a chain's common case
                                self.top = node
                            else:
                                schedule(node)
                        else:
                            pending[node] = received + cotangent
                    else:
                        send(node, index, cotangent)
                if profiler is not None:
                    profiler.add_backward(op.name, started, time.perf_counter_ns(), made)
                if not retain_graph:  # the rest of record.release(), inline: this runs once per record
                    record.kwargs = record.out = None
                    record.inputs = ()
                    claimed = None
        except BaseException:
            if claimed is not None:  # its VJPs did not finish: it goes back to the graph unreleased
                claimed.args = saved
            raise


# Claiming a record (``saved, record.args = record.args, None``) must be one indivisible step: otherwise
# two threads calling backward through a shared graph could both take the record, and one of them find
# it half cleared by the other (with its inputs gone it would send nothing, and leave a wrong grad
# without a word). With a GIL it is one: since Python 3.10 the interpreter lets another thread run only
# at a call, a backward jump or the start of a function (where it checks for a request to drop the
# GIL), and none lies between reading the slot and writing it. Slots are read and written by C code, and
# no finalizer can run in between: the value taken stays referenced, and the local it lands in was
# emptied beforehand. (A tracer set to run on every bytecode could break this; line tracers, as
# debuggers and coverage use, cannot.) Without a GIL, in a free-threaded build, a lock makes the step
# indivisible, at a cost per record.
_SWAP_IS_ATOMIC = getattr(sys, "_is_gil_enabled", lambda: True)()
_claim_lock = threading.Lock()


def _claim_with_lock(record: Record) -> Any:
    with _claim_lock:
        saved = record.args
        record.args = None
    return saved


def _zeros_for(output: Any, batch: int | None) -> Any:
    if batch is None:
        return np.zeros_like(output)
    return np.zeros((batch, *output.shape), dtype=output.dtype)


def _output_count(record: Record) -> int:
    return len(record.out)


def _raise_output_modified(record: Record, saved: Any) -> None:
    for k, (counter, version) in enumerate(record.out_versions):
        if counter[0] != version:
            _raise_modified(record, saved, -1 - k, counter, version)


def _raise_modified(record: Record, saved: Any, argnum: int, counter: list[Any], version: int) -> None:
    """Refuse a record whose input ``argnum`` (or output ``-1 - argnum``), which its VJPs read, changed."""
    name = record.op.name
    if argnum >= 0:
        what, value = f"its input {argnum}", saved[argnum]
    else:
        outputs = record.out if type(record.out) is tuple else (record.out,)
        what, value = "its output", outputs[-1 - argnum]
    described = f"a tensor of shape {np.shape(value)}, {getattr(value, 'dtype', None)}"
    recorded, changed = getattr(record, "where", None), changed_at(counter)
    if recorded is None and changed is None:
        lines = "; run it under `with tape.detect_anomaly():` to see where each happened"
    else:
        lines = f". Recorded at {recorded or 'a line not noted'}; changed at {changed or 'a line not noted'}"
    raise RuntimeError(
        f"{name}: {what} ({described}) was changed in place after {name} was recorded (version {version}, "
        f"now {counter[0]}), and {name} reads it to compute its gradient, which would be wrong{lines}. "
        f"Make the change on a copy (y = t.copy(); y[...] = ...; use y from then on), or after backward"
    )


def _as_tensors(saved: Any, inputs: Any, out: Any, record: Record) -> tuple[list[Any], Any]:
    """A record's arguments and output as tensors linked to their history, for ``create_graph``."""
    args = list(saved)
    for argnum, node, index, _, _ in inputs:
        if node is None:
            continue
        if type(node) is Record:
            args[argnum] = new_tensor(args[argnum], node, index, [0])
        else:
            args[argnum] = node
    if type(out) is tuple:
        out = tuple(
            new_tensor(item, record if item.dtype.kind in "fc" else None, k, [0])
            for k, item in enumerate(out)
        )
    else:
        out = new_tensor(out, record, None, [0])
    return args, out

"""Recording a function's tape as a program for ``tape.compile``: every op called on a traced value, in order.

While a ``Tracer`` is active in a thread (``state.tracer``), ``Op.__call__`` hands it every call that had a
tensor among its arguments, differentiable or not, together with the record the call made, if any. The
tracer names each value by a *slot* and writes one ``Step`` per call: the op, its arguments with ``Slot``s
in place of traced values, and the slots of its outputs. Tensors the function reads from elsewhere (a
module's parameters, a closure's tensors) become extra inputs, read afresh on every replay.

A recorded program cannot see what happens outside ops. So while tracing, everything that would let a value
leave the tape unseen raises ``TraceError``: turning a tensor into Python or numpy data (``float(t)``,
``bool(t)``, ``t.item()``, ``np.asarray(t)``, ``t.numpy()``), an in-place write, a backward pass, a hook, a
random draw from numpy's global generator. Replaying such a value would replay the number it had while
recording, which is the silently wrong result this module exists to rule out. This module compiles nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .grad_mode import state
from .op import Op
from .record import Record
from .tensor import Tensor

_PLAIN_OPS: dict[Any, Op] = {}


class TraceError(RuntimeError):
    """Something a compiled function did while being recorded that a replay could not repeat."""


class Slot:
    """Stands for a traced value (an argument, a captured tensor or an op's output) in a step's arguments."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"v{self.index}"


@dataclass
class Step:
    """One op call of the recorded program: ``outs = op.forward(*args, **kwargs)``."""

    op: Op
    args: tuple[Any, ...]  # with Slot in place of traced values
    kwargs: dict[str, Any]
    outs: tuple[int, ...]  # the slots of the outputs
    several: bool  # whether the op returned a tuple of outputs
    record: Record | None  # the record the call made while tracing (None: nothing to differentiate)


@dataclass
class Tracer:
    """The program being recorded in this thread: its steps, and which value each slot stands for."""

    name: str
    steps: list[Step] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)  # each slot's array while recording
    captured: list[Tensor] = field(default_factory=list)  # tensors read from outside, in order
    captured_slots: list[int] = field(default_factory=list)
    captured_versions: list[tuple[Tensor, int]] = field(default_factory=list)  # versions when first read
    input_slots: list[int] = field(default_factory=list)  # the arguments' slots, in order
    modules: list[Any] = field(default_factory=list)  # modules called, whose training mode is a guard
    draws: int = 0  # steps that draw random numbers
    _slot_of_tensor: dict[int, int] = field(default_factory=dict)
    _slot_of_array: dict[int, int] = field(default_factory=dict)
    _counters: list[list[int] | None] = field(default_factory=list)  # each slot's version counter
    _views: dict[int, set[int]] = field(default_factory=dict)  # id(tensor) -> ids of the views cut from it
    _created: set[int] = field(default_factory=set)  # ids of tensors made while recording, not by an op
    _alive: list[Any] = field(default_factory=list)  # what the ids above refer to, kept alive while tracing
    _outer: Any = None

    # -- entering and leaving --------------------------------------------------------------------------
    def __enter__(self) -> Tracer:
        self._outer = state.tracer
        state.tracer = self
        self._random_state = np.random.get_state(legacy=False)
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        state.tracer = self._outer
        if kind is None and not _same_state(self._random_state, np.random.get_state(legacy=False)):
            raise TraceError(
                f"{self.name}: the function drew random numbers from numpy's global generator while being "
                "recorded; a compiled function would replay the same numbers on every call. Draw them "
                "outside and pass them as an argument (with a numpy Generator: rng.random(shape))"
            )

    def add_input(self, tensor: Tensor) -> int:
        """Give an argument's tensor a slot of its own."""
        slot = self._new_slot(tensor)
        self.input_slots.append(slot)
        return slot

    def slot_of(self, tensor: Tensor) -> int | None:
        """The slot of a traced tensor (or of a detached view of one); None for any other tensor."""
        slot = self._slot_of_tensor.get(id(tensor))
        if slot is None and not tensor.requires_grad:
            # ``detach()`` shares both the buffer and the version counter; a tensor from elsewhere does not.
            alias = self._slot_of_array.get(id(tensor._data))
            if alias is not None and self._counters[alias] in (tensor._vc, None):
                slot = alias
        return slot

    def slot_of_array(self, array: np.ndarray) -> int | None:
        """The slot whose value ``array`` is (a traced tensor's own buffer), or None."""
        return self._slot_of_array.get(id(array))

    def input_values(self) -> list[Any]:
        """The arrays of the program's inputs: the arguments', then the captured tensors'."""
        return [self.values[slot] for slot in (*self.input_slots, *self.captured_slots)]

    def _new_slot(self, tensor: Tensor) -> int:
        slot = len(self.values)
        self.values.append(tensor._data)
        self._counters.append(tensor._vc)
        self._slot_of_tensor[id(tensor)] = slot
        self._slot_of_array[id(tensor._data)] = slot
        self._alive.append(tensor)
        return slot

    # -- what ops report -------------------------------------------------------------------------------
    def observe(
        self, op: Op, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, record: Any
    ) -> None:
        """Write the step of one op call; ``result`` is its tensor, or tuple of tensors."""
        arguments = tuple(self._template(arg) for arg in args)
        keywords = {name: self._template(value) for name, value in kwargs.items()} if kwargs else {}
        self._refuse_shapes_from_values(op, arguments)
        several = type(result) is tuple
        outs = tuple(self._new_slot(item) for item in (result if several else (result,)))
        self.steps.append(Step(op, arguments, keywords, outs, several, record))
        for item in result if several else (result,):
            if item._view_of is not None:
                self._views.setdefault(id(item._view_of[0]), set()).add(id(item))

    def _refuse_shapes_from_values(self, op: Op, arguments: tuple[Any, ...]) -> None:
        """A replay runs every step at the shapes it had while recording: a result whose shape depends on
        the traced values (``nonzero``, an index by a mask) would not fit another call's values."""
        traced: set[int] = set()
        if op.name == "nonzero":
            slots_in(arguments, traced)
        elif op.name == "getitem" and len(arguments) > 1:
            slots_in(arguments[1:], traced)
            traced = {slot for slot in traced if self.values[slot].dtype == np.bool_}
        if traced:
            what = "np.nonzero of" if op.name == "nonzero" else "an index by a mask computed from"
            self.refuse(
                f"{what} the function's values gives a shape that depends on them",
                "a replay keeps the shapes of the first call: use np.where(mask, x, 0) (and sum) instead "
                "of selecting, or call the function without tape.compile",
            )

    def _template(self, value: Any) -> Any:
        if isinstance(value, Tensor):
            slot = self.slot_of(value)  # (a detached view of a traced value: the same values, no gradient)
            if slot is None and id(value) in self._created and not value.requires_grad:
                slot = self._constant_step(value)  # made inside (tape.zeros): fresh on every replay
            return Slot(self._capture(value) if slot is None else slot)
        if isinstance(value, np.ndarray):
            slot = self._slot_of_array.get(id(value))
            return value if slot is None else Slot(slot)
        if type(value) is tuple or type(value) is list:
            return type(value)(self._template(item) for item in value)
        if type(value) is dict:
            return {key: self._template(item) for key, item in value.items()}
        return value

    def _capture(self, tensor: Tensor) -> int:
        """A tensor made outside the function (a parameter): an input of the program, read on each call."""
        slot = self._new_slot(tensor)
        self.captured.append(tensor)
        self.captured_slots.append(slot)
        self.captured_versions.append((tensor, tensor._vc[0]))
        return slot

    def created(self, tensor: Tensor) -> None:
        """A tensor was made while recording, not by an op (``tape.zeros``): a constant of the program."""
        self._created.add(id(tensor))
        self._alive.append(tensor)

    # -- in-place writes ---------------------------------------------------------------------------------
    def before_write(self, op_name: str, target: Tensor, bases: list[Tensor]) -> None:
        """Check that a write into ``target`` (a view of ``bases``) can be replayed, or raise.

        A replay computes new arrays where the eager code wrote into old ones, so the written tensor and
        every base it is a view of take the slot of their new value (``rebind``). That is the whole effect
        only if nothing else reads the old buffer: so the tensors written must have been made inside the
        function (a write into an argument or an outside tensor is a side effect a replay would not make),
        and no other view of them may exist (it would go on reading the old slot).
        """
        chain = [target, *bases]
        for tensor in chain:
            if (
                id(tensor) in self._created
                and id(tensor) not in self._slot_of_tensor
                and not tensor.requires_grad
            ):
                self._constant_step(tensor)
            slot = self._slot_of_tensor.get(id(tensor))
            if slot is None or slot in self.input_slots or slot in self.captured_slots:
                self.refuse(
                    f"{op_name} wrote in place into a tensor the function did not make (an argument, or a "
                    "tensor from outside it)",
                    "a replay would not change it: write into a copy (y = x.copy(); y[...] = v), or "
                    "update it outside the compiled function",
                )
        written = {id(tensor) for tensor in chain}
        for tensor in chain:
            if self._views.get(id(tensor), set()) - written:
                self.refuse(
                    f"{op_name} wrote in place into a tensor that has other views (cut before the write)",
                    "a replay would not show them the new values: write out of place (np.where for a masked "
                    "write), or cut the views after the write",
                )

    def _constant_step(self, tensor: Tensor) -> int:
        # A fresh copy of the tensor's values on every replay, as the eager call makes a fresh tensor.
        values = tensor._data.copy()
        slot = self._new_slot(tensor)
        self.steps.append(Step(Op(values.copy, name="constant"), (), {}, (slot,), False, None))
        return slot

    def alias(self, tensor: Tensor, of: Tensor) -> None:
        """``tensor`` holds ``of``'s current value (a copy made before a write): the same slot."""
        self._slot_of_tensor[id(tensor)] = self._slot_of_tensor[id(of)]
        self._alive.append(tensor)

    def rebind(self, tensor: Tensor, value: Tensor) -> None:
        """``tensor`` was written in place (or cut again) and now holds ``value``'s values, and slot."""
        slot = self._slot_of_tensor[id(value)]
        self._slot_of_tensor[id(tensor)] = slot
        self._slot_of_array[id(tensor._data)] = slot
        self._counters[slot] = tensor._vc  # (its detached views share this counter)

    def observe_plain(self, function: Callable[..., Any], args: tuple[Any, ...], result: Tensor) -> None:
        """Write the step of a call that is not an op (a comparison, which carries no gradient)."""
        op = _PLAIN_OPS.get(function)
        if op is None:
            op = _PLAIN_OPS[function] = Op(function, name=getattr(function, "__name__", "function"))
        self.observe(op, args, {}, result, None)

    def observe_draw(self, draw: Callable[[], np.ndarray], values: np.ndarray) -> None:
        """Write a step that draws random ``values`` afresh on each replay (``draw()``)."""
        source = Op(_FirstDrawn(draw, values), name="random draw")
        slot = self._new_slot(Tensor(values))
        self._slot_of_array[id(values)] = slot
        self._counters[slot] = None  # any tensor over these very values stands for them (tape.randn's)
        self._alive.append(values)
        self.steps.append(Step(source, (), {}, (slot,), False, None))
        self.draws += 1

    def called_module(self, module: Any) -> None:
        """A module was called: its training mode (dropout, batch statistics) becomes part of the guard."""
        if not any(known is module for known in self.modules):
            self.modules.append(module)

    # -- what a trace cannot see -----------------------------------------------------------------------
    def refuse(self, what: str, advice: str) -> None:
        """Raise: ``what`` happened while recording, and a replay would not repeat it."""
        raise TraceError(
            f"{self.name}: {what} while the function was being recorded for tape.compile; {advice}"
        )

    def refuse_exit(self, tensor: Tensor, how: str) -> None:
        """Raise: a tensor's values were about to leave the tape as plain data (``float(t)``, ...)."""
        self.refuse(
            f"{how} took the values of a tensor (shape {tensor.shape}, {tensor.dtype.name}) out of the tape",
            "a compiled function would replay the value they had while recording. Keep the computation on "
            "tensors: np.where(condition, a, b) instead of an `if` on a tensor, np.clip or np.maximum "
            "instead of Python's min and max; or pass the value as a static argument "
            "(tape.compile(fn, static_argnums=...)); or call the function without tape.compile",
        )


def slots_in(value: Any, into: set[int]) -> None:
    """Add to ``into`` the slot of every ``Slot`` in ``value`` (a step's argument: tuples, lists, dicts)."""
    if type(value) is Slot:
        into.add(value.index)
    elif type(value) in (tuple, list):
        for item in value:
            slots_in(item, into)
    elif type(value) is dict:
        for item in value.values():
            slots_in(item, into)


def _same_state(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return before["bit_generator"] == after["bit_generator"] and _equal(before["state"], after["state"])


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


class _FirstDrawn:
    """``draw()``, except that its first call gives the values drawn while recording: the call that records
    a compiled function replays it at once, and must use the generator no more than the eager call did."""

    def __init__(self, draw: Callable[[], np.ndarray], drawn: np.ndarray) -> None:
        self.draw = draw
        self.drawn: np.ndarray | None = drawn

    def __call__(self) -> np.ndarray:
        drawn, self.drawn = self.drawn, None
        return self.draw() if drawn is None else drawn


def random_values(draw: Callable[[], np.ndarray]) -> np.ndarray:
    """``draw()``: random numbers (a dropout mask) that a function compiled with ``tape.compile`` draws
    afresh on every call, rather than once while it was being recorded."""
    values = draw()
    tracer = state.tracer
    if tracer is not None:
        tracer.observe_draw(draw, values)
    return values


def refuse_while_tracing(what: str, advice: str) -> None:
    """Raise ``TraceError`` if a function is being recorded for ``tape.compile`` in this thread."""
    tracer = state.tracer
    if tracer is not None:
        tracer.refuse(what, advice)

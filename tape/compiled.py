"""``tape.compile``: record a function's tape once per signature, then replay it as generated code.

The first call with a new signature (the arguments' tree structure; each array's shape, dtype and whether
it requires grad; the values of Python numbers, strings and other non-array arguments, and of
``static_argnums``) runs the function on tensors while a ``Tracer`` writes down every op it calls. Later
calls with that signature run the ``Program`` made from it: one op on the surrounding tape, whose forward
is straight-line code over arrays and whose backward runs the recorded VJPs in reverse. Tensors the
function reads from elsewhere (a module's parameters) are inputs of that op, read on every call. What the
recording read and a later call could find changed is guarded, and records again: those tensors' shapes,
dtypes and ``requires_grad``; the called modules' training mode and parameters, buffers and submodules (by
object); the objects behind the names the function's code (and its helpers') reads from closures and
module globals.
"""

from __future__ import annotations

import functools
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import jit
from .functional import gradients
from .grad_mode import enable_grad, state
from .op import Op
from .program import Program
from .pytree import TreeDef, flatten, unflatten
from .tensor import Tensor, leaf
from .trace import made_inside, track
from .tracing import TraceError, Tracer

__all__ = ["CompiledFunction", "RecordingWarning", "TraceError", "compile"]

# Argument leaves that are data (traced): everything else is part of the signature by value.
_ARRAY_TYPES = (np.ndarray, np.generic)
_STATIC_TYPES = (bool, int, float, complex, str, bytes, type(None))


class RecordingWarning(RuntimeWarning):
    """A compiled function keeps recording: its signature or what it reads changes from call to call."""


def compile(
    fn: Callable[..., Any] | None = None,
    *,
    static_argnums: int | Sequence[int] = (),
    cache_size: int = 8,
) -> Any:
    """Compile ``fn``: record its tape on the first call with each signature, replay it on later calls.

    Parameters
    ----------
    fn : a function of arrays and tensors (in tuples, lists and dicts), or a ``tape.nn.Module``.
    static_argnums : positions of arguments whose values (not just their shapes) decide what ``fn``
        computes; each new value records again. Python numbers are always treated so.
    cache_size : how many signatures are kept; the least recently used one is dropped beyond it.

    The compiled call is one op on the tape, so ``.backward()``, ``tape.grad`` and optimizers work on its
    results as on any op's. While recording, everything a replay could not repeat raises
    ``tape.TraceError``: Python control flow on tensor values (``if t.sum() > 0``, ``float(t)``), a write
    in place into an argument or an outside tensor (writes into values ``fn`` made are replayed), a
    backward pass or hook inside ``fn``, random numbers drawn from numpy's global generator.
    Random numbers drawn from a ``numpy.random.Generator`` inside ``fn`` are drawn once, while recording:
    pass them as arguments. Python side effects (printing, appending to a list) happen once, while
    recording. Second derivatives through a compiled function replay its tape eagerly, recorded.

    Examples
    --------
    >>> import numpy as np, tape
    >>> @tape.compile
    ... def loss(w, x):
    ...     return np.sum(np.tanh(x @ w) ** 2)
    >>> w = tape.tensor(np.ones((3, 2)) / 4, requires_grad=True)
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> loss(w, x).backward()
    >>> np.round(w.grad, 4)
    array([[0.0589, 0.0589],
           [0.8364, 0.8364],
           [1.6139, 1.6139]])
    """
    if fn is None:
        return functools.partial(compile, static_argnums=static_argnums, cache_size=cache_size)
    return CompiledFunction(fn, static_argnums, cache_size)


class CompiledFunction:
    """A compiled function (see ``tape.compile``); calling it records or replays."""

    def __init__(self, fn: Callable[..., Any], static_argnums: int | Sequence[int], cache_size: int) -> None:
        if not callable(fn):
            raise TypeError(f"tape.compile: expected a function or a module, got {type(fn).__name__}")
        if cache_size < 1:
            raise ValueError(f"tape.compile: cache_size must be at least 1, got {cache_size}")
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)
        self.static_argnums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        self.cache_size = cache_size
        self._entries: OrderedDict[Any, _Entry] = OrderedDict()
        self._lock = threading.Lock()  # the cache is shared by the threads that call the function
        self.recordings = 0  # how many times a signature was recorded (a new one, or a guard that failed)
        self._warned = False  # (RecordingWarning, once)
        functools.update_wrapper(self, fn, updated=())

    def __repr__(self) -> str:
        return f"<tape.compile {self.name}: {len(self._entries)} signature(s)>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        static, dynamic = self._split(args)
        leaves, treedef = flatten((dynamic, kwargs))
        key = (treedef, static, tuple(_leaf_signature(value) for value in leaves))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        reason = "a new signature" if entry is None else entry.changed()
        if reason is not None:
            entry = self._record(key, static, treedef, leaves)
            if self.recordings > self.cache_size and not self._warned:
                self._warned = True
                warnings.warn(
                    f"tape.compile({self.name}) has recorded {self.recordings} times, the last for {reason}; "
                    "each recording runs the function eagerly and writes its code again. Pass values that "
                    "change as arguments (arrays are traced, Python numbers are part of the signature), "
                    "and keep the objects it reads in place",
                    RecordingWarning,
                    stacklevel=2,
                )
        assert entry is not None
        return entry.call(leaves)

    def program(self, *args: Any, **kwargs: Any) -> Program | None:
        """The program these arguments' signature runs (recorded now if it was not yet); None if no result
        of the function comes from an op (it returns an argument, or a constant)."""
        self(*args, **kwargs)
        static, dynamic = self._split(args)
        leaves, treedef = flatten((dynamic, kwargs))
        return self._entries[(treedef, static, tuple(_leaf_signature(value) for value in leaves))].program

    def programs(self) -> list[Program]:
        """The programs of the signatures kept, least recently used first."""
        with self._lock:
            return [entry.program for entry in self._entries.values() if entry.program is not None]

    def _split(self, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        count = len(args)
        for number in self.static_argnums:
            if not -count <= number < count:
                raise ValueError(
                    f"tape.compile({self.name}): static_argnums {self.static_argnums} out of range for a "
                    f"call with {count} arguments"
                )
        positions = {number % count for number in self.static_argnums}
        static = tuple(_static_key(args[k], self.name) for k in sorted(positions))
        dynamic = tuple(_STATIC_MARK if k in positions else arg for k, arg in enumerate(args))
        return static, dynamic

    def _record(self, key: Any, static: tuple[Any, ...], treedef: TreeDef, leaves: list[Any]) -> _Entry:
        entry = _Entry(self, treedef, leaves, static)  # (threads may record at once: each its own tracer)
        with self._lock:
            self.recordings += 1
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.cache_size:
                self._entries.popitem(last=False)
        return entry


class _StaticMark:
    """Stands for a static argument in the tree of dynamic ones (its value is part of the key)."""

    def __repr__(self) -> str:
        return "<static>"


_STATIC_MARK = _StaticMark()


def _static_key(value: Any, name: str) -> Any:
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"tape.compile({name}): a static argument must be hashable (its value is part of the signature), "
            f"got {type(value).__name__}"
        ) from None
    return (type(value), value)


def _leaf_signature(value: Any) -> Any:
    if isinstance(value, Tensor):
        return ("tensor", value.shape, value.dtype, value.requires_grad)
    if isinstance(value, _ARRAY_TYPES):
        return ("array", np.shape(value), value.dtype)
    if isinstance(value, _STATIC_TYPES) or value is _STATIC_MARK:
        return ("value", type(value), value)
    return ("object", id(value))  # a generator, a module: the same object (held by the entry)


class _Stash:
    """Where a recorded call's forward keeps what its backward reads (one per call)."""

    __slots__ = ("fused", "saved")
    fused: bool
    saved: tuple[Any, ...]


class _Entry:
    """One recorded signature: its program, the op that runs it, and how results are put together."""

    def __init__(self, owner: CompiledFunction, treedef: TreeDef, leaves: list[Any], static: tuple[Any, ...]):
        name = f"compiled({owner.name})"
        self.name = name
        self.objects = [value for value in leaves if _leaf_signature(value)[0] == "object"]
        tracer = Tracer(name)
        arguments = list(leaves)
        self.data_leaves = [k for k, value in enumerate(leaves) if isinstance(value, (Tensor, *_ARRAY_TYPES))]
        versions = [(value, value._vc[0]) for value in leaves if isinstance(value, Tensor)]
        with enable_grad(), tracer:
            for k in self.data_leaves:
                value = leaves[k]
                # A copy: an array the function also reads from elsewhere must not pass for the argument.
                data = np.array(value._data if isinstance(value, Tensor) else value, copy=True)
                arguments[k] = leaf(data, requires_grad=isinstance(value, Tensor) and value.requires_grad)
                tracer.add_input(arguments[k])
            made_inside(arguments[k] for k in self.data_leaves)
            dynamic, kwargs = unflatten(treedef, arguments)
            call_args = _with_static(dynamic, static)
            result = owner.fn(*call_args, **kwargs)
            self._plan_outputs(tracer, result, arguments)
        versions += [(tensor, version) for tensor, version in tracer.captured_versions]
        for tensor, version in versions:
            if tensor._vc[0] != version:
                raise TraceError(
                    f"{name}: the function changed a tensor (shape {tensor.shape}, {tensor.dtype.name}) in "
                    "place while being recorded (an optimizer step, a write under no_grad); a compiled "
                    "function would not repeat the change. Compile the loss, and update outside it"
                )
        self.captured = tracer.captured
        self.guard = [(t.shape, t.dtype, t.requires_grad) for t in tracer.captured]
        self.modules = [(module, module.training, _contents(module)) for module in tracer.modules]
        self.scope = _scope(owner.fn)
        inputs = tracer.input_slots + tracer.captured_slots
        # None when no result comes from an op (the function returns its argument, or a constant).
        plain = frozenset(
            slot
            for k, slot in zip(self.data_leaves, tracer.input_slots, strict=True)
            if not isinstance(leaves[k], Tensor)
        )
        self.program = (
            Program(name, tracer.steps, tracer.values, inputs, self.op_slots, plain)
            if self.op_slots
            else None
        )
        self.op = Op(self._forward, name=name, backward=self._backward, complex_rule="own")
        self.draws = tracer.draws

    def _plan_outputs(self, tracer: Tracer, result: Any, arguments: list[Any]) -> None:
        """How each leaf of the result is made on later calls: an op output, an argument, or a constant."""
        out_leaves, self.out_treedef = flatten(result)
        argument_of = {id(arguments[k]): k for k in self.data_leaves}
        captured_of = {id(tensor): j for j, tensor in enumerate(tracer.captured)}
        self.op_slots: list[int] = []
        self.out_plan: list[tuple[str, Any]] = []
        for value in out_leaves:
            if isinstance(value, Tensor):
                if id(value) in argument_of:
                    self.out_plan.append(("argument", argument_of[id(value)]))
                    continue
                if id(value) in captured_of:
                    self.out_plan.append(("captured", captured_of[id(value)]))
                    continue
                slot = tracer.slot_of(value)
                if slot is None:  # a tensor no op touched: a parameter returned as it is, or a constant
                    plan = ("object", value) if value.requires_grad else ("constant", value._data.copy())
                    self.out_plan.append(plan)
                    continue
                if slot not in self.op_slots:
                    self.op_slots.append(slot)
                self.out_plan.append(("op", self.op_slots.index(slot)))
            elif isinstance(value, np.ndarray) and tracer.slot_of_array(value) is not None:
                tracer.refuse_exit(Tensor(value), "returning a tensor's data as a plain array")
            else:
                self.out_plan.append(("constant", value))
        # Results must not share memory with arguments or with each other: a write through one would
        # change another unseen. Those that do (a transpose of an argument, x and x.T) are copied.
        self.copied_outputs = [
            k
            for k, slot in enumerate(self.op_slots)
            if any(np.may_share_memory(tracer.values[slot], value) for value in tracer.input_values())
            or any(
                np.may_share_memory(tracer.values[slot], tracer.values[other]) for other in self.op_slots[:k]
            )
        ]

    def changed(self) -> str | None:
        """What no longer looks as it did while recording, in words, or None: the captured tensors (shape,
        dtype, requires_grad), the called modules (training mode, parameters, buffers and submodules, by
        object) and the names the function's code and its helpers read from closures and globals (by
        object)."""
        for tensor, (shape, dtype, requires_grad) in zip(self.captured, self.guard, strict=True):
            if (
                tensor._data.shape != shape
                or tensor._data.dtype != dtype
                or tensor.requires_grad != requires_grad
            ):
                return f"a tensor it reads from outside (shape {shape}, {dtype.name}) that changed"
        for module, training, contents in self.modules:
            if module.training != training:
                return f"a {type(module).__name__} switched to {'train' if module.training else 'eval'} mode"
            if not _same(_contents(module), contents):
                return f"a {type(module).__name__} whose parameters, buffers or submodules were replaced"
        for where, name, value in self.scope:
            if _read(where, name) is not value:
                return f"the name {name!r} bound to another object" if name else "a closure variable rebound"
        return None

    def call(self, leaves: list[Any]) -> Any:
        values = [leaves[k] for k in self.data_leaves]
        values += self.captured
        if self.op_slots:
            recording = state.grad_enabled and any(
                isinstance(value, Tensor) and value.requires_grad for value in values
            )
            results = self.op(_Stash() if recording else None, *values)
            if len(self.op_slots) == 1:
                results = (results,)
            if self.copied_outputs:
                results = tuple(
                    _copied(item) if k in self.copied_outputs else item for k, item in enumerate(results)
                )
        out_leaves = []
        for kind, where in self.out_plan:
            if kind == "op":
                out_leaves.append(results[where])
            elif kind == "argument":
                out_leaves.append(leaves[where])
            elif kind == "captured":
                out_leaves.append(self.captured[where])
            elif kind == "object":
                out_leaves.append(where)
            else:
                out_leaves.append(where.copy() if isinstance(where, np.ndarray) else where)
        return unflatten(self.out_treedef, out_leaves)

    def _forward(self, stash: _Stash | None, *values: Any) -> Any:
        program = self.program
        assert program is not None  # (the op is called only when some result comes from the program)
        if program.fused_forward is not None and jit.enabled():
            if stash is not None:
                stash.fused = True
            return program.fused_forward(stash, *values)
        if stash is not None:
            stash.fused = False
        return program.forward(stash, *values)

    def _backward(self, g: Any, out: Any, stash: Any, *values: Any) -> Any:
        if isinstance(g, Tensor) or (type(g) is tuple and any(isinstance(item, Tensor) for item in g)):
            return self._recorded_backward(g, values)
        program = self.program
        assert program is not None
        backward = program.fused_backward if stash.fused else program.backward
        assert backward is not None
        return backward(g, out, stash, *values)

    def _recorded_backward(self, g: Any, values: tuple[Any, ...]) -> list[Any]:
        """The backward under ``create_graph``: the program replayed through its ops, recorded, and swept."""
        if self.draws:
            raise RuntimeError(
                f"{self.name}: second derivatives through a compiled function that draws random numbers "
                "(dropout) would replay other draws than the forward's; differentiate it once, or call "
                "the function without tape.compile (or in eval mode) for higher derivatives"
            )
        with enable_grad():
            tracked = [track(value, self.name) if _differentiable(value) else value for value in values]
            made_inside(item for item in tracked if isinstance(item, Tensor))
            assert self.program is not None
            outputs = self.program.eager_forward(None, *tracked)
        outputs = outputs if type(outputs) is tuple else (outputs,)
        cotangents = g if type(g) is tuple else (g,)
        pairs = [
            (output, cotangent)
            for output, cotangent in zip(outputs, cotangents, strict=True)
            if isinstance(output, Tensor) and output.requires_grad
        ]
        wanted = [k for k, item in enumerate(tracked) if isinstance(item, Tensor) and item.requires_grad]
        if not pairs or not wanted:
            return [None] * (len(values) + 1)
        found = gradients(
            [output for output, _ in pairs],
            [tracked[k] for k in wanted],
            [cotangent for _, cotangent in pairs],
            retain_graph=True,
            create_graph=True,
            allow_unused=True,
        )
        result: list[Any] = [None] * (len(values) + 1)
        for k, cotangent in zip(wanted, found, strict=True):
            result[k + 1] = cotangent
        return result


def _contents(module: Any) -> tuple[Any, ...]:
    """A module's parameters, buffers and submodules, as objects: one put in another's place records again."""
    return (*module._parameters.values(), *module._buffers.values(), *module._modules.values())


def _same(objects: tuple[Any, ...], others: tuple[Any, ...]) -> bool:
    return len(objects) == len(others) and all(a is b for a, b in zip(objects, others, strict=True))


_UNBOUND = object()


def _scope(fn: Any) -> list[tuple[Any, str, Any]]:
    """What ``fn``'s code reads from closures and module globals (``(where, name, object)``), modules aside,
    and so on through the functions it reads (helpers of your own, not numpy's or tape's): rebinding one of
    those names (``w = w - lr * g``, a redefined helper) records again, rather than replaying the object read
    while recording."""
    scope: list[tuple[Any, str, Any]] = []
    functions, seen = [getattr(fn, "__func__", fn)], set()
    while functions:
        function = functions.pop()
        code = getattr(function, "__code__", None)
        if code is None or id(function) in seen or _is_library(function):
            continue
        seen.add(id(function))
        found = [(cell, "", _read(cell, "")) for cell in function.__closure__ or ()]
        namespace = function.__globals__
        found += [(namespace, name, namespace.get(name, _UNBOUND)) for name in _names(code)]
        for entry in found:
            value = entry[2]
            if value is not _UNBOUND and not isinstance(value, types.ModuleType):
                scope.append(entry)
                if isinstance(value, types.FunctionType):
                    functions.append(value)
    return scope


def _names(code: types.CodeType) -> set[str]:
    """The global names ``code`` and the functions defined in it read."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


_LIBRARIES = ("tape.", "numpy.", "scipy.", "numba.", "torch.", "jax.")


def _is_library(function: Any) -> bool:
    module = getattr(function, "__module__", None) or ""
    return module in ("tape", "numpy", "scipy") or module.startswith(_LIBRARIES)


def _read(where: Any, name: str) -> Any:
    if isinstance(where, dict):
        return where.get(name, _UNBOUND)
    try:
        return where.cell_contents
    except ValueError:  # an empty cell
        return _UNBOUND


def _differentiable(value: Any) -> bool:
    if isinstance(value, Tensor):
        return value.requires_grad
    return False


def _copied(item: Any) -> Any:
    if isinstance(item, Tensor):
        return item.copy()
    return np.array(item, copy=True)


def _with_static(dynamic: tuple[Any, ...], static: tuple[Any, ...]) -> list[Any]:
    """The call's positional arguments: the dynamic ones, with the static values back in their places."""
    values = iter(value for _, value in static)
    return [next(values) if arg is _STATIC_MARK else arg for arg in dynamic]

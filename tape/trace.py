"""One call of a transform: its inputs tracked as fresh tensors, and whether its results must stay recorded.

A transform (``grad``, ``vjp``, ``jvp``, ``jacobian``, ...) runs the user's function on tensors that stand
for its inputs, then sweeps the tape back to them. Its results must stay recorded tensors (the sweep
records itself: ``create_graph``) exactly when the computation reaches something made outside the call:
an input that is itself a recorded tensor, a tensor of an enclosing transform passed as an argument that
is not differentiated, or one captured by a closure. The tape's order tells which is which with no
bookkeeping: every record made during the call comes at or after the call's start, so a record from
before it, or a leaf the call did not make, belongs to an enclosing level. Transforms then nest to any
depth, with any ``argnums`` and any closure, as in JAX.

Transforms record whatever the caller's grad mode (as ``torch.func`` does); their results stay recorded
only when the caller records too. This module holds no transform.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .grad_mode import enable_grad, state
from .op import Op, count_sweep
from .pytree import TreeDef, flatten, unflatten
from .record import Record, next_position
from .tensor import Tensor
from .views import refresh_if_stale

#: Marks where a transform's input enters, so that an input which is itself a recorded tensor gets a node
#: of its own: the sweep captures its cotangent there, and the outer computation still sees the link.
enter = Op(lambda x: x, lambda g, out, x: g, name="input", view=True, complex_rule="holomorphic")
# The transforms whose results keep one meaning for complex inputs: a gradient (or VJP) of a real loss in
# PyTorch's convention. Jacobians, JVPs and Hessians of complex functions need conventions of their own.
_COMPLEX_CALLERS = frozenset({"grad", "vjp", "checkpoint"})


def track(value: Any, caller: str, link: bool = True) -> Tensor:
    """A tensor that requires grad standing for ``value``, linked to ``value``'s history if it has one and
    ``link`` is set (an input of a call whose caller records)."""
    if isinstance(value, Tensor):
        if value.requires_grad and link:
            with enable_grad():
                return enter(value)
        value = value._data
    array = np.asarray(value)
    if array.dtype.kind == "c" and caller.split("(")[0] not in _COMPLEX_CALLERS:
        raise TypeError(
            f"{caller}: complex inputs are not supported by {caller} yet (its result for a complex function "
            "needs a convention of its own); tape.grad and tape.vjp take them, with PyTorch's convention"
        )
    if array.dtype.kind not in "fc":
        raise TypeError(
            f"{caller}: can only differentiate with respect to floating-point values, got dtype "
            f"{array.dtype.name} ({type(value).__name__})"
        )
    return Tensor(array, requires_grad=True)


class _ActiveCalls(threading.local):
    """The transform calls running in this thread, outermost first."""

    def __init__(self) -> None:
        self.calls: list[TransformCall] = []


_active = _ActiveCalls()


def made_inside(leaves: Iterable[Tensor]) -> None:
    """Count ``leaves`` as made inside every transform call running in this thread: a leaf that stands for
    a plain value (``checkpoint``'s recomputation tracks its array arguments) is nobody's outside input."""
    ids = [id(leaf) for leaf in leaves]
    for call in _active.calls:
        call._inside.update(ids)


class TransformCall:
    """The inputs a transform call tracks, and whether its results must stay recorded (``nested``).

    A leaf made by a call (a tracked input, ``jvp``'s dummy cotangent) is inside that call and inside
    every call enclosing it, so it never makes an enclosing call's result look nested.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.recording = state.grad_enabled  # the caller's mode: results stay recorded only if it records
        self.start = next_position()
        self.tracked: list[Tensor] = []
        self._inside: set[int] = set()
        self._outer_inputs = False

    def track_tree(self, tree: Any) -> tuple[Any, list[Tensor], TreeDef]:
        """``tree`` with each leaf replaced by a tracked tensor; the tracked tensors; the tree's shape."""
        leaves, treedef = flatten(tree)
        if self.recording and any(isinstance(leaf, Tensor) and leaf.requires_grad for leaf in leaves):
            self._outer_inputs = True
        tracked = [track(leaf, self.name, link=self.recording) for leaf in leaves]
        self.tracked += tracked
        self.made(tracked)
        return unflatten(treedef, tracked), tracked, treedef

    def made(self, leaves: Iterable[Tensor]) -> None:
        """Count ``leaves`` as made by this call (and so inside every call enclosing it)."""
        leaves = list(leaves)
        self._inside.update(id(leaf) for leaf in leaves)
        made_inside(leaves)

    def run(self, f: Callable[..., Any], *args: Any, sweep: Any = None) -> Any:
        """``f(*args)``, recorded whatever the caller's grad mode; ``sweep``: the ``ForwardSweep`` that
        pushes tangents through its records (an enclosing call's sweep is suspended meanwhile)."""
        _active.calls.append(self)
        outer_sweep = state.forward_sweep
        state.forward_sweep = sweep
        if sweep is not None:
            count_sweep(1)
        try:
            with enable_grad():
                result = f(*args)
                for value in flatten(result)[0]:
                    refresh_if_stale(value)  # (a view returned after its base was written)
                return result
        finally:
            if sweep is not None:
                count_sweep(-1)
            state.forward_sweep = outer_sweep
            _active.calls.pop()

    def outermost(self) -> bool:
        """Whether no other transform call is running in this thread (asked before this one runs)."""
        return not _active.calls

    def inside_leaves(self) -> set[int]:
        """The ids of the leaves made by this call (and those inside it), as the call goes on."""
        return self._inside

    def nested(self, outputs: list[Any]) -> bool:
        """Whether results computed from ``outputs`` must stay recorded for an enclosing computation."""
        if not self.recording:
            return False
        return self._outer_inputs or _reaches_outside(outputs, self._inside, self.start)

    def result(self, value: Any, nested: bool) -> Any:
        """``value`` as the caller gets it: a recorded tensor when nested, plain data otherwise."""
        if nested or not isinstance(value, Tensor):
            return value
        return value._data


def _reaches_outside(outputs: list[Any], inside: set[int], start: int) -> bool:
    """Whether the records behind ``outputs`` reach a record made before ``start`` or a leaf that requires
    grad and is not one of the call's own tracked tensors."""
    roots = [o._record or o for o in outputs if isinstance(o, Tensor) and o.requires_grad]
    return first_outside(roots, inside, start) is not None


def first_outside(roots: list[Any], inside: set[int], start: int, entry: Op | None = None) -> Any:
    """The first node behind ``roots`` (records and leaves) that lies outside the computation begun at
    position ``start``: a record made before it, or a leaf whose id is not in ``inside``; None if none.

    Records of ``entry`` made after ``start`` are where a nested computation's inputs came in: their own
    inputs are the enclosing computation's, so the walk stops there. Iterative: graphs may be deep.
    """
    stack = list(roots)
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in inside:
            continue
        if type(node) is not Record or node.position < start:
            return node
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op is not entry or entry is None:
            stack.extend(parent for _, parent, _, _, _ in node.inputs if parent is not None)
    return None

"""One entry of the tape: an op applied to some inputs, with what its VJPs need to run later.

A record is the lecture's gate after its forward ran: it keeps the input and output values
(``self.x = x  # must keep these around!``) and the links to the records that made its inputs. Records are
numbered in the order they are made; that order is a topological order of the computation, which is
what lets backward replay them in reverse without sorting a graph. A record never refers to a ``Tensor``
object (a tensor's history can be replaced by an in-place op), only to parent records and leaves.
"""

from __future__ import annotations

import itertools
from typing import Any

# One counter for every thread: a record's inputs may come from another thread, and their records must
# still come earlier in the order. ``next`` on an ``itertools.count`` is atomic under the GIL.
_positions = itertools.count()
next_position = _positions.__next__


class Record:
    """An op call on the tape.

    Attributes
    ----------
    op : the ``Op`` that was applied.
    args : positional arguments as the forward saw them (arrays in place of tensors).
    kwargs : keyword arguments of the call.
    parents : ``(argnum, node, index)`` for each argument that requires grad, where ``node`` is the
        parent ``Record`` (``index`` names which of its outputs, or ``None``) or a leaf ``Tensor``.
    versions : ``(argnum, counter, version)`` for each tensor argument (``argnum`` is ``-1 - k`` for output
        ``k``): the version counter of its data and its value when the record was made.
    out : the output array, or a tuple of them for ops with several outputs.
    position : the record's place on the tape.
    """

    __slots__ = ("op", "args", "kwargs", "parents", "versions", "out", "position", "__weakref__")

    def __init__(
        self,
        op: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        parents: tuple[tuple[int, Any, int | None], ...],
        versions: list[tuple[int, list[int], int]],
        out: Any,
    ) -> None:
        self.op = op
        self.args = args
        self.kwargs = kwargs
        self.parents = parents
        self.versions = versions
        self.out = out
        self.position = next_position()

    @property
    def released(self) -> bool:
        """True once a backward without ``retain_graph`` has freed what this record saved."""
        return self.args is None

    def release(self) -> None:
        """Drop saved values and parent links so their memory can be freed."""
        self.args = None
        self.kwargs = None
        self.parents = ()
        self.versions = ()
        self.out = None

    def __repr__(self) -> str:
        state = "released" if self.released else f"{len(self.parents)} parent(s)"
        return f"<Record #{self.position} {self.op.name}: {state}>"

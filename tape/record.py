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
    inputs : ``(argnum, node, index, counter, version)`` for each tensor argument. ``node`` is the parent
        ``Record`` (``index`` names which of its outputs, or is ``None``), or a leaf ``Tensor``, or ``None``
        when the argument does not require grad. ``counter`` is the version counter of the argument's
        buffer and ``version`` its value when the record was made, so in-place changes are noticed.
    out : the output array, or a tuple of them for ops with several outputs.
    out_versions : ``(counter, version)`` for each output.
    position : the record's place on the tape.
    where : in anomaly mode (``tape.detect_anomaly``), the line of user code that made the record; unset
        otherwise.
    """

    __slots__ = ("op", "args", "kwargs", "inputs", "out", "out_versions", "position", "where", "__weakref__")
    where: str
    # None once released (``release``).
    args: tuple[Any, ...] | Any
    kwargs: dict[str, Any] | Any

    def __init__(
        self,
        op: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        inputs: tuple[tuple[int, Any, int | None, list[int], int], ...],
        out: Any,
        out_versions: tuple[tuple[list[int], int], ...],
    ) -> None:
        self.op = op
        self.args = args
        self.kwargs = kwargs
        self.inputs = inputs
        self.out = out
        self.out_versions = out_versions
        self.position = next_position()

    @property
    def parents(self) -> list[tuple[int, Any, int | None]]:
        """``(argnum, node, index)`` for each argument that requires grad."""
        return [(argnum, node, index) for argnum, node, index, _, _ in self.inputs if node is not None]

    @property
    def name(self) -> str:
        """The name of the op this record applied."""
        return str(self.op.name)

    @property
    def next_functions(self) -> tuple[tuple[Any, int | None], ...]:
        """``(node, output index)`` for each argument that requires grad, in argument order: the parent
        record (with which of its outputs), or the leaf tensor itself (index None), as PyTorch's
        ``grad_fn.next_functions``. Empty once a backward released the record."""
        return tuple((node, index) for _, node, index, _, _ in self.inputs if node is not None)

    @property
    def released(self) -> bool:
        """True once a backward without ``retain_graph`` has claimed (and then freed) what this saved."""
        return self.args is None

    def release(self) -> None:
        """Drop saved values and parent links so their memory can be freed."""
        self.args = self.kwargs = self.out = None
        self.inputs = ()

    def __repr__(self) -> str:
        state = "released" if self.released else f"{len(self.parents)} parent(s)"
        return f"<Record #{self.position} {self.op.name}: {state}>"

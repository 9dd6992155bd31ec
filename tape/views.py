"""Views that follow their base: a view cut before its base changed in place is cut again when next used.

A tensor made by a view op (``y[1:]``, ``y.T``, ``y.reshape(-1)``) shares its base's buffer and version
counter, and remembers how it was cut (``Tensor._view_of``: base, view op, the op's other arguments and
keyword arguments, and the counter's value at the cut). When the base is written in place the shared
buffer already shows the new values; this module gives the view the matching history. It calls view ops
through the ``Op`` objects it is handed and imports nothing above ``Tensor``.
"""

from __future__ import annotations

from typing import Any

from .grad_mode import enable_grad, state
from .tensor import Tensor


def refresh_view(view: Tensor) -> None:
    """Give a view whose base was changed in place since it was cut the history of a fresh cut."""
    chain = [view]
    while chain[-1]._view_of[0]._view_of is not None:
        chain.append(chain[-1]._view_of[0])
    for tensor in reversed(chain):  # the farthest base first, so each cut is made from a current history
        base, view_op, view_args, view_kwargs, version = tensor._view_of
        if version == tensor._vc[0]:
            continue
        cut = view_op(base, *view_args, **view_kwargs)
        if state.tracer is not None:  # tape.compile: the view now stands for the new cut
            state.tracer.rebind(tensor, cut)
        tensor._record, tensor._index, tensor.requires_grad = cut._record, None, cut.requires_grad
        tensor._view_of = (base, view_op, view_args, view_kwargs, tensor._vc[0])


def refresh_if_stale(value: Any) -> None:
    """``refresh_view(value)`` if ``value`` is a view whose base was changed in place since it was cut.

    For the tensors a sweep starts from (what ``backward`` seeds, what a transform's function returned),
    which no op has read since the write, so their history is still the old cut's. The new cut is recorded
    whatever the grad mode, so that the view stays connected to its base's history.
    """
    if isinstance(value, Tensor) and value._view_of is not None and value._view_of[4] != value._vc[0]:
        with enable_grad():
            refresh_view(value)

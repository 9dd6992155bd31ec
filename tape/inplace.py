"""In-place writes: ``t += v``, ``t[idx] = v``, ``np.put_along_axis(t, ...)`` and updates under ``no_grad``.

The result is written into the tensor's own buffer, as numpy does, so views see it. While recording the
tensor takes a new history (the op applied to its old value); the record that made the old value keeps a
copy of it; every tensor the target is a view of is rewritten as "its old value with the view's region
replaced" (``write_through_view``); and any other record that saved the old buffer notices through the
version counter and refuses to run backward. The handlers of ``t += v`` and friends are registered by the
op modules, which know the ops; this module knows none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .anomaly import bump
from .grad_mode import state
from .op import UNREAD_OUTPUT, Op, apply
from .record import Record
from .saved import saved_output
from .tensor import Tensor, new_tensor
from .views import refresh_if_stale


def apply_in_place(op: Op, target: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """Run ``op(target, *args)`` and write the result into ``target``'s own buffer, as numpy's ``+=`` does.

    Views of ``target`` see the change, as in numpy. While recording, ``target`` takes a new history (the
    op applied to its old value), and the record that made the old value keeps a copy of it, so its VJP
    still sees what it saw. Any other record that saved the old buffer notices the change through the
    version counter and refuses to run backward rather than give a wrong gradient.
    """
    if state.grad_enabled:
        # A view whose base was written since the cut (the base may have gained a history then) takes a
        # fresh cut first, as target or as source; only then is it known whether the write is recorded.
        for value in (target, *args):
            refresh_if_stale(value)
        _refuse_writing_through_a_detached_view(op, target)
    recording = state.grad_enabled and (
        target.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args)
    )
    bases = _bases(target)
    tracer = state.tracer
    if tracer is not None:
        if not recording and target.requires_grad:
            tracer.refuse(
                f"{op.name} wrote in place into a tensor that requires grad, unrecorded (under no_grad)",
                "write it out of place, or update it outside the compiled function",
            )
        tracer.before_write(op.name, target, bases)  # raises if a replay could not repeat the write
    if recording:
        for tensor in (target, *bases):
            if tensor.requires_grad and tensor._record is None:
                raise RuntimeError(
                    f"{op.name} (in place): a leaf tensor that requires grad (shape {tensor.shape}, "
                    f"{tensor.dtype.name}) cannot be changed in place while recording"
                    f"{' (through a view of it)' if tensor is not target else ''}; update it inside "
                    "`with tape.no_grad():`, or write `x = x + y` to make a new tensor"
                )
    if tracer is None and not recording:
        values = [a._data if isinstance(a, Tensor) else a for a in args]
        if not _ufunc_into(op, target, values, kwargs):
            _write_into(op, target, op.forward(target._data, *values, **kwargs))
        bump(target._vc)
        return target
    old_bases = [_snapshot(base) for base in bases]
    old = _snapshot(target)
    # An argument that shares the target's buffer (``t[i] = t[j]`` with views) would change under the
    # record when the result is written; give the record a copy of it instead.
    args = tuple(_snapshot(a) if isinstance(a, Tensor) and a._vc is target._vc else a for a in args)
    result = apply(op, (old, *args), kwargs)
    if tracer is not None and result._data.dtype != target._data.dtype:
        tracer.refuse(
            f"{op.name} wrote {result.dtype.name} values into a {target.dtype.name} tensor in place",
            "cast them first (v.astype(t.dtype)), so that a replay computes what the write kept",
        )
    _write_into(op, target, result._data)
    bump(target._vc)
    if tracer is not None:  # tape.compile: the target stands for the new value from now on
        tracer.rebind(target, result)
    _take_history(target, result._record)
    _stamp(target)
    # The write went through ``target`` into the buffers of the tensors it is a view of: each of them is
    # now its old value with the view's region replaced, and is recorded as such.
    view = target
    for base, old_base in zip(bases, old_bases, strict=True):
        _, view_op, view_args, view_kwargs, _ = view._view_of
        rebased = apply(write_through_view, (old_base, view, view_op, view_args, view_kwargs), {})
        if tracer is not None:
            tracer.rebind(base, rebased)
        _take_history(base, rebased._record)
        _stamp(base)
        view = base
    return target


def _refuse_writing_through_a_detached_view(op: Op, target: Tensor) -> None:
    """A view cut without a history (under ``no_grad``) from a tensor that requires grad would change its
    base unrecorded: refused, as PyTorch refuses it."""
    if target.requires_grad or target._view_of is None:
        return
    if any(base.requires_grad for base in _bases(target)):
        raise RuntimeError(
            f"{op.name} (in place): this tensor (shape {target.shape}, {target.dtype.name}) is a view cut "
            "under no_grad of a tensor that requires grad, so the write would change its base without "
            "its history; cut the view with grad enabled, write into the base, or write under no_grad"
        )


def _stamp(tensor: Tensor) -> None:
    """Mark a view's history as current for its buffer's version (so it is not cut again)."""
    if tensor._view_of is not None:
        tensor._view_of = (*tensor._view_of[:4], tensor._vc[0])


def _ufunc_into(op: Op, target: Tensor, values: list[Any], kwargs: dict[str, Any]) -> bool:
    """Run a ufunc op straight into the target's buffer (``p -= lr * g``: no temporary, no copy)."""
    forward = op.forward
    if type(forward) is not np.ufunc or kwargs:
        return False
    try:
        forward(target._data, *values, out=target._data, casting="same_kind")
    except (ValueError, TypeError):
        return False  # a shape or dtype that does not fit: the general path explains it
    return True


def _bases(target: Tensor) -> list[Tensor]:
    """The tensors ``target`` is a view of, nearest first."""
    bases = []
    view_of = target._view_of
    while view_of is not None:
        bases.append(view_of[0])
        view_of = view_of[0]._view_of
    return bases


def _take_history(target: Tensor, record: Record | None) -> None:
    """Make ``record`` (whose output now lives in ``target``'s buffer) ``target``'s history."""
    if record is not None:
        if record.op.keeps_output:
            record.out = target._data
            record.out_versions = ((target._vc, target._vc[0]),)
        else:  # its VJPs never read the output: later writes to the target are free
            record.out = saved_output(target._data, record.op.name)
            record.out_versions = UNREAD_OUTPUT
    target._record = record
    target._index = None
    target.requires_grad = record is not None


def _write_through_view(
    base: Any, view: Any, view_op: Op, view_args: tuple[Any, ...], view_kwargs: Any
) -> Any:
    result = base.copy()
    view_op.forward(result, *view_args, **view_kwargs)[...] = view
    return result


def _region(shape: tuple[int, ...], view_op: Op, view_args: tuple[Any, ...], view_kwargs: Any) -> Any:
    """True where a view cut by ``view_op`` from an array of ``shape`` reads it."""
    inside = np.zeros(shape, dtype=bool)
    view_op.forward(inside, *view_args, **view_kwargs)[...] = True
    return inside


write_through_view = Op(
    _write_through_view,
    lambda g, out, base, view, view_op, view_args, view_kwargs: np.where(
        _region(np.shape(base), view_op, view_args, view_kwargs), 0, g
    ),
    lambda g, out, base, view, view_op, view_args, view_kwargs: view_op(g, *view_args, **view_kwargs),
    name="write through view",
    shape_only=(0, 1),
)


def _snapshot(target: Tensor) -> Tensor:
    """A tensor holding a copy of ``target``'s current value, with ``target``'s history."""
    copy = target._data.copy()
    snapshot = new_tensor(copy, target._record, target._index, [0])
    snapshot.requires_grad = target.requires_grad
    if state.tracer is not None:  # tape.compile: the copy is the target's current value
        state.tracer.alias(snapshot, target)
    record, index = target._record, target._index
    k = index or 0
    if (
        record is not None
        and record.op.keeps_output
        and not record.released
        and record.out_versions[k][1] == target._vc[0]
    ):
        # The record that made the old value must keep seeing it after the buffer is overwritten. (If the
        # buffer already changed since, through a view, the stale version stays so that backward refuses.)
        if index is None:
            record.out = copy
        else:
            record.out = tuple(copy if i == index else item for i, item in enumerate(record.out))
        record.out_versions = tuple(
            (snapshot._vc, 0) if i == k else versions for i, versions in enumerate(record.out_versions)
        )
    return snapshot


def _write_into(op: Op, target: Tensor, result: Any) -> None:
    result = np.asarray(result)
    if result.shape != target._data.shape:
        raise ValueError(
            f"{op.name} (in place): the result has shape {result.shape}, which does not fit the target's "
            f"shape {target._data.shape}"
        )
    if not np.can_cast(result.dtype, target._data.dtype, casting="same_kind"):
        raise TypeError(
            f"{op.name} (in place): cannot write a {result.dtype.name} result into a "
            f"{target._data.dtype.name} tensor"
        )
    np.copyto(target._data, result, casting="same_kind")

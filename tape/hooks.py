"""Tensor hooks: functions the reverse sweep calls with a tensor's gradient, as PyTorch's
``Tensor.register_hook``; ``Tensor.retain_grad`` is one of them. Also the hooks that ``Tensor.backward``
calls once a leaf's ``.grad`` is final (``register_post_accumulate_grad_hook``), and the callbacks a hook
queues to run when the backward in progress has finished (``queue_callback``).

A hook belongs to the node that made the tensor's value when it was registered: the leaf tensor itself, or
the record and output index of a recorded one (records never refer to tensors). A tensor changed in place
afterwards has a new value and a new record; the hook still sees the gradient of the value it was
registered on, as in PyTorch. The sweep looks hooks up only once some record has one, so a program without
hooks pays one flag test per record. This module runs no sweep.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .grad_mode import state

Hook = Callable[[Any], Any]


class ByTensor:
    """``{tensor: value}`` by identity (a tensor's ``==`` is elementwise, so a WeakKeyDictionary cannot
    hold tensors); an entry goes when its tensor dies."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Any], Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._entries)

    def get(self, tensor: Any, default: Any = None) -> Any:
        entry = self._entries.get(id(tensor))
        return default if entry is None or entry[0]() is not tensor else entry[1]

    def __contains__(self, tensor: Any) -> bool:
        return self.get(tensor, _MISSING) is not _MISSING

    def setdefault(self, tensor: Any, value: Any) -> Any:
        found = self.get(tensor, _MISSING)
        if found is not _MISSING:
            return found
        key, entries = id(tensor), self._entries

        def forget(_: Any) -> None:  # runs as the tensor is freed, before its id can be reused
            entries.pop(key, None)

        entries[key] = (weakref.ref(tensor, forget), value)
        return value


_MISSING = object()
# {record: {output index (None for a single output): {hook id: hook}}}, and {leaf tensor: {hook id: hook}}.
record_hooks: weakref.WeakKeyDictionary[Any, dict[int | None, dict[int, Hook]]] = weakref.WeakKeyDictionary()
leaf_hooks = ByTensor()
# The non-leaf tensors whose gradient is kept on ``.grad`` (retain_grad), and their keeping hooks by record
# and index, apart from the others because they run last (PyTorch's order).
retaining = ByTensor()
_keepers: weakref.WeakKeyDictionary[Any, dict[int | None, dict[int, Hook]]] = weakref.WeakKeyDictionary()
_ids = itertools.count()
# {leaf tensor: {hook id: hook(tensor)}}: called by Tensor.backward once the leaf's .grad holds its gradient.
post_accumulate = ByTensor()


class Flags:
    """Whether any record has ever had a hook: until then the sweep never looks (one attribute test)."""

    records = False


class RemovableHandle:
    """What ``register_hook`` (and a module's ``register_*_hook``) returns: ``remove()`` unregisters the
    hook, and a second call does nothing, as in PyTorch. Also a context manager that removes it on exit.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> handle = x.register_hook(lambda g: g * 10)
    >>> handle.remove()
    >>> np.sum(x * 3).backward()
    >>> x.grad
    array([3., 3.])
    """

    __slots__ = ("_hooks", "id")

    def __init__(self, hooks: dict[int, Any]) -> None:
        self._hooks = hooks
        self.id = next(_ids)

    def remove(self) -> None:
        """Unregister the hook; nothing happens if it was removed already."""
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


def register(tensor: Any, hook: Hook) -> RemovableHandle:
    """Register ``hook`` on the node that made ``tensor``'s value (``Tensor.register_hook``)."""
    _refuse_while_tracing("register_hook")
    if not callable(hook):
        raise TypeError(f"register_hook: expected a callable taking the gradient, got {type(hook).__name__}")
    if not tensor.requires_grad:
        raise RuntimeError(
            "register_hook: the tensor does not require grad, so no gradient will reach it; "
            "create it with requires_grad=True or register the hook on a tensor computed from one"
        )
    if tensor._record is not None:
        return register_on_record(tensor._record, tensor._index, hook)
    return _add(leaf_hooks.setdefault(tensor, {}), hook)


def register_on_record(record: Any, index: int | None, hook: Hook) -> RemovableHandle:
    """Register ``hook`` on output ``index`` of ``record`` (None for a single output), as
    ``Tensor.register_hook`` does for the tensor that output became, even once that tensor is gone."""
    Flags.records = True  # from now on the sweep looks records up
    return _add(record_hooks.setdefault(record, {}).setdefault(index, {}), hook)


def _add(hooks: dict[int, Hook], hook: Hook) -> RemovableHandle:
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def register_post_accumulate_grad(tensor: Any, hook: Callable[[Any], None]) -> RemovableHandle:
    """Register ``hook(tensor)`` to run when backward has accumulated a leaf's gradient into its ``.grad``
    (``Tensor.register_post_accumulate_grad_hook``)."""
    _refuse_while_tracing("register_post_accumulate_grad_hook")
    what = "register_post_accumulate_grad_hook"
    if not callable(hook):
        raise TypeError(f"{what}: expected a callable taking the tensor, got {type(hook).__name__}")
    if not tensor.requires_grad:
        raise RuntimeError(
            f"{what}: the tensor does not require grad, so backward never accumulates into its .grad; "
            "create it with requires_grad=True"
        )
    if tensor._record is not None:
        raise RuntimeError(
            f"{what}: the tensor was made by '{tensor._record.op.name}', and only leaves accumulate a .grad; "
            "register the hook on a leaf, or use register_hook for this tensor's gradient"
        )
    return _add(post_accumulate.setdefault(tensor, {}), hook)


def run_post_accumulate(tensor: Any) -> None:
    """Call the post-accumulate hooks of ``tensor`` (a leaf whose ``.grad`` backward has just set)."""
    found = post_accumulate.get(tensor)
    if found:
        for hook in list(found.values()):
            hook(tensor)


class _Callbacks(threading.local):
    """The callbacks queued during each backward running in this thread, innermost backward last."""

    def __init__(self) -> None:
        self.queues: list[list[Callable[[], None]]] = []


_callbacks = _Callbacks()


def queue_callback(callback: Callable[[], None]) -> None:
    """Run ``callback()`` once the backward in progress in this thread has finished, after every leaf's
    ``.grad`` is set; call it from a hook. Callbacks run in the order they were queued.

    Examples
    --------
    >>> import numpy as np, tape
    >>> from tape.hooks import queue_callback
    >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> handle = x.register_hook(lambda g: queue_callback(lambda: print("done:", x.grad)))
    >>> np.sum(x * 3).backward()
    done: [3. 3.]
    """
    if not callable(callback):
        raise TypeError(
            f"queue_callback: expected a callable taking no argument, got {type(callback).__name__}"
        )
    if not _callbacks.queues:
        raise RuntimeError(
            "queue_callback: no backward is running in this thread; call it from a hook during backward"
        )
    _callbacks.queues[-1].append(callback)


def open_callbacks() -> list[Callable[[], None]]:
    """Start collecting the callbacks of a backward that begins (``Tensor.backward`` calls this)."""
    queue: list[Callable[[], None]] = []
    _callbacks.queues.append(queue)
    return queue


def close_callbacks(queue: list[Callable[[], None]]) -> None:
    """Stop collecting into ``queue`` (the backward it belongs to has ended, finished or not)."""
    queues = _callbacks.queues
    if not queues or queues[-1] is not queue:  # backwards nest, so the last one opened ends first
        raise RuntimeError("close_callbacks: the queue closed is not the innermost backward's")
    queues.pop()


def retain_grad(tensor: Any) -> None:
    """Keep a non-leaf tensor's gradient on its ``.grad`` after backward (``Tensor.retain_grad``)."""
    _refuse_while_tracing("retain_grad")
    if not tensor.requires_grad:
        raise RuntimeError("retain_grad: the tensor does not require grad, so it will have no gradient")
    if tensor._record is None or tensor in retaining:
        return  # a leaf keeps its gradient anyway
    reference = weakref.ref(tensor)

    def keep(cotangent: Any) -> None:
        kept = reference()
        if kept is None:
            return
        if type(cotangent) is np.ndarray:
            cotangent = np.array(cotangent, copy=True)  # the sweep hands it on; .grad is the user's to change
        kept._grad = cotangent if kept._grad is None else kept._grad + cotangent

    Flags.records = True
    hook_id = next(_ids)
    retaining.setdefault(tensor, hook_id)
    _keepers.setdefault(tensor._record, {}).setdefault(tensor._index, {})[hook_id] = keep


def is_retaining(tensor: Any) -> bool:
    """Whether ``retain_grad`` was called on this (non-leaf) tensor."""
    return tensor in retaining


def run_record_hooks(record: Any, g: Any, batched: bool) -> Any:
    """The cotangent ``g`` of ``record``'s output(s) after its hooks ran (a tuple for several outputs)."""
    by_index = record_hooks.get(record)
    keepers = _keepers.get(record, {})
    if not by_index and not keepers:
        return g
    if batched:
        raise RuntimeError(
            f"register_hook: a tensor made by '{record.op.name}' has a hook, and hooks do not run in the "
            "batched sweep of tape.jacobian / tape.hessian; remove the hook (handle.remove()) for this call"
        )
    if type(g) is tuple:
        return tuple(_run(by_index, keepers, index, item, record.op.name) for index, item in enumerate(g))
    return _run(by_index, keepers, None, g, record.op.name)


def _run(
    by_index: dict[int | None, dict[int, Hook]] | None,
    keepers: dict[int | None, dict[int, Hook]],
    index: int | None,
    cotangent: Any,
    op_name: str,
) -> Any:
    hooks = by_index.get(index) if by_index else None
    if hooks:
        cotangent = apply(hooks, cotangent, f"a tensor made by '{op_name}'")
    kept = keepers.get(index)
    if kept:
        for keep in list(kept.values()):
            keep(cotangent)
    return cotangent


def refuse_record_hooks(records: Any, where: str) -> None:
    """Raise if one of ``records`` made a tensor with a hook: hooks change cotangents in a backward
    sweep, which ``where`` (forward mode) does not run, so the result would depend on the path taken."""
    if not record_hooks:
        return
    for record in records:
        if any(record_hooks.get(record, {}).values()):
            raise RuntimeError(
                f"register_hook: a tensor made by '{record.op.name}' has a hook, and hooks change the "
                f"cotangents of a backward sweep, which {where} does not run; remove the hook "
                "(handle.remove()) for this call"
            )


def run_leaf_hooks(leaves: dict[Any, list[Any]], batched: bool) -> None:
    """Replace each leaf's cotangent in ``leaves`` (``{id: [leaf, cotangent]}``) by what its hooks make."""
    for entry in leaves.values():
        hooks = leaf_hooks.get(entry[0])
        if hooks:
            if batched:
                raise RuntimeError(
                    "register_hook: a leaf tensor has a hook, and hooks do not run in the batched sweep of "
                    "tape.jacobian / tape.hessian; remove the hook (handle.remove()) for this call"
                )
            entry[1] = apply(hooks, entry[1], "a leaf tensor")


def apply(hooks: dict[int, Hook], cotangent: Any, whose: str) -> Any:
    """Call each hook in order of registration; a hook's result (not None) replaces the cotangent."""
    for hook in list(hooks.values()):
        result = hook(cotangent)
        if result is None:
            continue
        shape, dtype = np.shape(cotangent), getattr(cotangent, "dtype", None)
        if not hasattr(result, "shape") or not hasattr(result, "dtype"):
            raise TypeError(
                f"register_hook: the hook of {whose} returned {type(result).__name__}; it must return None "
                f"or an array of shape {shape} and dtype {dtype}"
            )
        if result.shape != shape or result.dtype != dtype:
            raise ValueError(
                f"register_hook: the hook of {whose} returned a gradient of shape {result.shape} and dtype "
                f"{result.dtype} for a gradient of shape {shape} and dtype {dtype}"
            )
        cotangent = result
    return cotangent


def _refuse_while_tracing(what: str) -> None:
    # A compiled function's backward is generated from its tape and runs no hook on its inside values.
    if state.tracer is not None:
        state.tracer.refuse(
            f"{what} was called on a tensor",
            "hooks on values inside a compiled function would not run; register them on the compiled "
            "function's inputs or results, outside it",
        )

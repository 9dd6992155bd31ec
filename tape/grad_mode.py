"""Per-thread recording state: whether operations on tensors are recorded.

Each thread has its own switch, so ``no_grad`` in one thread never changes what another thread records.
This module holds state only; it knows nothing about tensors or ops.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _ThreadState(threading.local):
    """Recording switch of one thread; every new thread starts with recording on."""

    def __init__(self) -> None:
        self.grad_enabled = True


state = _ThreadState()


def is_grad_enabled() -> bool:
    """Return whether operations on tensors that require grad are being recorded in this thread.

    Examples
    --------
    >>> import tape
    >>> tape.is_grad_enabled()
    True
    """
    return state.grad_enabled


class set_grad_enabled:
    """Turn recording on or off in this thread, as a context manager, a decorator or a plain call.

    Examples
    --------
    >>> import tape
    >>> with tape.set_grad_enabled(False):
    ...     tape.is_grad_enabled()
    False
    """

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.previous = state.grad_enabled
        state.grad_enabled = self.mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        state.grad_enabled = self.previous


class _GradModeContext:
    """Base of ``no_grad``/``enable_grad``: sets the switch on entry and restores it on exit."""

    mode: bool

    def __enter__(self) -> None:
        self.previous = state.grad_enabled
        state.grad_enabled = self.mode

    def __exit__(self, *exc_info: object) -> None:
        state.grad_enabled = self.previous

    def __call__(self, function: F) -> F:
        mode = self.mode

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            previous = state.grad_enabled
            state.grad_enabled = mode
            try:
                return function(*args, **kwargs)
            finally:
                state.grad_enabled = previous

        return wrapper  # type: ignore[return-value]


class no_grad(_GradModeContext):
    """Stop recording in this thread: results of ops do not require grad.

    Use it for evaluation and for parameter updates. Works as a context manager and as a decorator.

    Examples
    --------
    >>> import tape
    >>> w = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> with tape.no_grad():
    ...     (w * 2).requires_grad
    False
    """

    mode = False


class enable_grad(_GradModeContext):
    """Record again inside a ``no_grad`` region. Works as a context manager and as a decorator.

    Examples
    --------
    >>> import tape
    >>> with tape.no_grad():
    ...     with tape.enable_grad():
    ...         tape.is_grad_enabled()
    True
    """

    mode = True

"""Per-thread recording state: whether operations on tensors are recorded (and where, in anomaly mode).

Each thread has its own switch, so ``no_grad`` in one thread never changes what another thread records.
This module holds state only; it knows nothing about tensors or ops.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Generator
from threading import get_ident
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _ThreadState(threading.local):
    """Recording switch of one thread; every new thread starts with recording on."""

    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False  # records and in-place writes note the user's line (``tape.detect_anomaly``)
        self.profiler: Any = None  # the open ``tape.profile``'s results, which ops and the sweep add to
        self.tracer: Any = None  # the ``tape.tracing.Tracer`` recording a function for ``tape.compile``
        self.forward_sweep: Any = None  # the ``tape.tangents.ForwardSweep`` of a running ``tape.jvp``


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


class _GradModeContext:
    """Base of the switches: sets the mode on entry, restores it on exit, and decorates functions.

    One object may be entered from several threads at once, or again inside its own block
    (``ctx = no_grad(); with ctx: with ctx: ...``), so the mode each entry replaced is kept per entry, on a
    stack per thread, never in one attribute shared by every entry.
    """

    mode: bool

    def __init__(self) -> None:
        self._saved: dict[int, list[bool]] = {}  # thread id -> the modes its open entries replaced

    def __enter__(self) -> None:
        self._saved.setdefault(get_ident(), []).append(state.grad_enabled)
        state.grad_enabled = self.mode

    def __exit__(self, *exc_info: object) -> None:
        thread = get_ident()
        saved = self._saved.get(thread)
        if not saved:
            # No entry of this thread is open: a generator suspended inside the block, closed from another
            # thread. This block never changed that thread's mode, so there is nothing to restore.
            return
        state.grad_enabled = saved.pop()
        if not saved:
            del self._saved[thread]

    def __call__(self, function: F) -> F:
        mode = self.mode
        if inspect.isgeneratorfunction(function):
            return _generator_in_mode(mode, function)  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return _run_in_mode(mode, function, *args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _run_in_mode(mode: bool, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    previous = state.grad_enabled
    state.grad_enabled = mode
    try:
        return function(*args, **kwargs)
    finally:
        state.grad_enabled = previous


def _generator_in_mode(
    mode: bool, function: Callable[..., Generator[Any, Any, Any]]
) -> Callable[..., Generator[Any, Any, Any]]:
    """A generator function that runs the body of ``function`` in ``mode`` each time it resumes.

    A generator's body runs in pieces, one per value asked for; each piece runs inside the switch, and
    between two values the caller's own mode is in force, as after a decorated function returns.
    """

    @functools.wraps(function)
    def generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        inner = function(*args, **kwargs)
        try:
            value = _run_in_mode(mode, inner.send, None)
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    _run_in_mode(mode, inner.close)
                    raise
                except BaseException as error:  # thrown in by the caller: the body may handle it
                    value = _run_in_mode(mode, inner.throw, error)
                else:
                    value = _run_in_mode(mode, inner.send, sent)
        except StopIteration as stop:
            return stop.value

    return generator


class set_grad_enabled(_GradModeContext):
    """Turn recording on or off in this thread, as a context manager, a decorator or a plain call.

    The call switches the mode at once; a ``with`` block on the result restores on exit the mode from
    before the call. As a decorator it switches the mode only while the decorated function runs.

    Examples
    --------
    >>> import tape
    >>> with tape.set_grad_enabled(False):
    ...     tape.is_grad_enabled()
    False
    >>> tape.is_grad_enabled()
    True
    """

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self.mode = bool(mode)
        # The switch made by the call itself, (thread id, mode it replaced): the first ``with`` on this
        # object in the same thread takes it over as its own entry.
        self._call: tuple[int, bool] | None = (get_ident(), state.grad_enabled)
        state.grad_enabled = self.mode

    def __enter__(self) -> None:
        replaced = self._take_over_call()
        if replaced is None:
            super().__enter__()
        else:
            self._saved.setdefault(get_ident(), []).append(replaced)
            state.grad_enabled = self.mode

    def __call__(self, function: F) -> F:
        replaced = self._take_over_call()
        if replaced is not None:  # as a decorator, the switch holds while the function runs, not from here
            state.grad_enabled = replaced
        return super().__call__(function)

    def _take_over_call(self) -> bool | None:
        """The mode the call replaced, if this thread made the call and nothing took it over yet."""
        call = self._call
        if call is None or call[0] != get_ident():
            return None
        self._call = None
        return call[1]


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

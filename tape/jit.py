"""The one place that knows about numba: kernels compiled on first use, each with a plain-numpy twin.

A kernel is a plain Python function written for numba's nopython mode (loops over arrays, no Python
objects) plus a *twin*: a numpy implementation with the same signature and the same effect. ``kernel``
turns the pair into one callable:

- with JIT on, the first call imports numba and compiles the function with
  ``njit(cache=True, nogil=True, error_model="numpy")`` (so a later process loads machine code from the
  cache instead of compiling again, and dividing by zero gives inf or nan as numpy does); every call runs
  the compiled code;
- with JIT off, every call runs the twin, and numba is never imported;
- if numba cannot be imported, or the function fails to compile, the call runs the twin and a single
  ``JitFallbackWarning`` says why; that kernel keeps running its twin for the rest of the process.

``import tape`` never imports numba and compiles nothing.

The switch
----------
``TAPE_JIT=0`` (or ``false``/``no``/``off``) in the environment turns JIT off for the whole process. It
is read once, when this module is imported (that is, at ``import tape``); changing it afterwards has no
effect. ``use_jit(False)`` / ``use_jit(True)`` overrides it inside a ``with`` block **for the current
thread only** (other threads keep the process default), which is how tests run both paths in one process.
``enabled()`` tells which path a call in this thread would take.

>>> import numpy as np
>>> from tape import jit
>>> def cumulative_numpy(values):
...     return np.cumsum(values)
>>> @jit.kernel(cumulative_numpy, register=False)
... def cumulative(values):
...     result = np.empty_like(values)
...     running = 0.0
...     for k in range(values.shape[0]):
...         running += values[k]
...         result[k] = running
...     return result
>>> with jit.use_jit(False):
...     cumulative(np.array([1.0, 2.0, 3.0]))  # runs cumulative_numpy
array([1., 3., 6.])

Parallel loops: a kernel compiled with ``parallel=True`` writes ``prange`` for the loops numba may split
across threads, imported by name (``from tape.jit import prange``, where it is plain ``range``, not
``jit.prange``); at compile time numba's own ``prange`` is put in its place. Only loops whose iterations
write disjoint memory may use it.

Caching: numba writes its cache next to the kernel's source file (``__pycache__/*.nbi``, ``*.nbc``), or
under ``NUMBA_CACHE_DIR`` when that is set, and recompiles when the source file changes. A cache entry
that cannot be loaded is compiled again without the cache (one warning).
"""

from __future__ import annotations

import os
import re
import threading
import types
import warnings
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = [
    "JitFallbackWarning",
    "Kernel",
    "disabled",
    "enabled",
    "kernel",
    "kernels",
    "prange",
    "use_jit",
]

R = TypeVar("R")

#: Name of the environment variable that turns JIT off when set to 0, false, no or off.
ENVIRONMENT_VARIABLE = "TAPE_JIT"


def _read_environment() -> bool:
    setting = os.environ.get(ENVIRONMENT_VARIABLE, "1").strip().lower()
    return setting not in {"0", "false", "no", "off"}


#: Whether JIT is on in threads that did not ask otherwise; fixed when the module is imported.
DEFAULT_ENABLED = _read_environment()

#: Stands for numba's ``prange`` in kernel source; swapped for the real one at compile time.
prange = range


class JitFallbackWarning(RuntimeWarning):
    """numba could not be imported or a kernel failed to compile: the numpy twin runs instead."""


class _ThreadState(threading.local):
    """This thread's override of the process default (``None``: no override)."""

    def __init__(self) -> None:
        self.override: bool | None = None


_state = _ThreadState()


def enabled() -> bool:
    """Return whether kernels called from this thread run compiled code (True) or their twins (False).

    Examples
    --------
    >>> from tape import jit
    >>> with jit.use_jit(False):
    ...     jit.enabled()
    False
    """
    override = _state.override
    return DEFAULT_ENABLED if override is None else override


class use_jit:
    """Context manager: run compiled kernels (``True``) or their numpy twins (``False``) in this thread.

    Other threads are not affected; the previous setting comes back on exit. Nesting works.

    Examples
    --------
    >>> from tape import jit
    >>> with jit.use_jit(False):
    ...     with jit.use_jit(True):
    ...         jit.enabled()
    True
    """

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.previous: list[bool | None] = []

    def __enter__(self) -> None:
        self.previous.append(_state.override)
        _state.override = self.mode

    def __exit__(self, *exc_info: object) -> None:
        _state.override = self.previous.pop()


def disabled() -> use_jit:
    """Context manager: run every kernel's numpy twin in this thread; same as ``use_jit(False)``.

    Examples
    --------
    >>> from tape import jit
    >>> with jit.disabled():
    ...     jit.enabled()
    False
    """
    return use_jit(False)


# numba itself, imported on the first compiled call; ``_numba_failed`` remembers a failed import so that
# it is tried (and warned about) once.
_numba: Any = None
_numba_failed = False
_numba_lock = threading.Lock()


def _import_numba() -> Any:
    global _numba, _numba_failed
    with _numba_lock:
        if _numba is None and not _numba_failed:
            try:
                import numba
            except Exception as error:  # ImportError, or a broken install raising anything at import
                _numba_failed = True
                warnings.warn(
                    f"tape.jit: numba could not be imported ({type(error).__name__}: {error}); "
                    "every kernel runs its numpy twin",
                    JitFallbackWarning,
                    stacklevel=4,
                )
            else:
                _numba = numba
    return _numba


class Kernel(Generic[R]):
    """A numba-compilable function and its numpy twin, called as one function (see the module docstring).

    Attributes
    ----------
    name : str
        ``module.qualname`` of the function, the key in ``kernels()``.
    function : callable
        The plain Python source that numba compiles.
    twin : callable
        The numpy implementation with the same signature, run when JIT is off or unavailable.
    parallel, fastmath : bool
        Options passed to ``numba.njit``.
    """

    def __init__(
        self,
        function: Callable[..., R],
        twin: Callable[..., R],
        *,
        parallel: bool = False,
        fastmath: bool = False,
    ) -> None:
        self.function = function
        self.twin = twin
        self.parallel = parallel
        self.fastmath = fastmath
        self.name = f"{function.__module__}.{function.__qualname__}"
        self.__doc__ = function.__doc__
        self.__wrapped__ = function
        self._dispatcher: Any = None
        self._failed = False
        self._uncached = False  # True once compiled without numba's cache
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        twin_name = getattr(self.twin, "__qualname__", type(self.twin).__name__)
        return f"<tape.jit.Kernel {self.name} (twin {twin_name})>"

    def __call__(self, *args: Any) -> R:
        if not enabled() or self._failed:
            return self.twin(*args)
        dispatcher = self._dispatcher if self._dispatcher is not None else self.compiled()
        if dispatcher is None:
            return self.twin(*args)
        try:
            return dispatcher(*args)
        except Exception as error:
            if not self._failed_to_compile(dispatcher, args):
                raise  # an exception raised by the compiled code itself, as the twin would raise it
            return self._recover(error, args)

    @property
    def failed(self) -> bool:
        """True once compiling failed (or numba is missing): calls run the twin from then on."""
        return self._failed

    def compiled(self) -> Any:
        """The numba dispatcher (created on the first call, compiling per signature), or ``None``.

        ``None`` means numba is unavailable or this kernel already failed to compile. Calling the
        dispatcher directly bypasses the switch and the fallback (benchmarks use it to time the
        compiled code alone).
        """
        if self._dispatcher is not None or self._failed:
            return self._dispatcher
        numba = _import_numba()
        error: Exception | None = None
        with self._lock:
            if self._dispatcher is None and not self._failed:
                if numba is None:
                    self._failed = True
                    return None
                try:
                    self._dispatcher = self._dispatcher_from(numba)
                except Exception as raised:
                    error = raised
        if error is not None:
            self._give_up(error)
        return self._dispatcher

    def _dispatcher_from(self, numba: Any) -> Any:
        source = self._source_for_numba(numba)
        try:
            return numba.njit(cache=True, **self._options())(source)
        except RuntimeError as error:
            if "cannot cache" not in str(error):
                raise
            # Defined where numba finds no source file to key a cache on (a notebook cell, a doctest):
            # compile in every process instead.
            self._uncached = True
            return numba.njit(**self._options())(source)

    def signatures(self) -> list[Any]:
        """The argument types compiled so far (numba's types), empty before the first compiled call."""
        return list(self._dispatcher.signatures) if self._dispatcher is not None else []

    def _source_for_numba(self, numba: Any) -> Callable[..., R]:
        # ``prange`` in the kernel's module is plain ``range``; give numba a copy of the function whose
        # globals hold numba's ``prange``, leaving the module and the Python function untouched.
        function = self.function
        if "prange" not in function.__code__.co_names:
            return function
        namespace = dict(function.__globals__, prange=numba.prange)
        copy = types.FunctionType(
            function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__
        )
        copy.__qualname__ = function.__qualname__
        copy.__module__ = function.__module__
        return copy

    def _failed_to_compile(self, dispatcher: Any, args: tuple[Any, ...]) -> bool:
        # A compile failure leaves no machine code for these argument types; an exception raised by the
        # compiled code at run time happens after it was compiled.
        try:
            argument_types = tuple(dispatcher.typeof_pyval(argument) for argument in args)
        except Exception:
            return True  # numba cannot even type the arguments
        return argument_types not in dispatcher.overloads

    def _recover(self, error: Exception, args: tuple[Any, ...]) -> R:
        # Errors outside numba's own (a pickle from a stale or foreign cache entry, say) may come from
        # the cache: compile once more without it before giving up on the kernel.
        numba = _numba
        if numba is not None and not self._uncached and not isinstance(error, numba.core.errors.NumbaError):
            with self._lock:
                self._uncached = True
                self._dispatcher = numba.njit(**self._options())(self._source_for_numba(numba))
            try:
                result = self._dispatcher(*args)
            except Exception as retry_error:
                if not self._failed_to_compile(self._dispatcher, args):
                    raise
                error = retry_error
            else:
                warnings.warn(
                    f"tape.jit: kernel {self.name} could not be loaded from numba's cache "
                    f"({type(error).__name__}: {error}); compiled without the cache in this process",
                    JitFallbackWarning,
                    stacklevel=3,
                )
                return result
        self._give_up(error)
        return self.twin(*args)

    def _options(self) -> dict[str, Any]:
        # error_model="numpy": x / 0 gives inf or nan as in the twin, rather than raising ZeroDivisionError,
        # and a division no longer needs a check per element (which keeps loops vectorizable).
        return {"nogil": True, "parallel": self.parallel, "fastmath": self.fastmath, "error_model": "numpy"}

    def _give_up(self, error: BaseException) -> None:
        with self._lock:
            if self._failed:
                return
            self._failed = True
            self._dispatcher = None
        # numba's messages open with the pipeline stage; the next line usually names the cause.
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # numba colours its messages for terminals
        lines = [line.strip() for line in plain.splitlines() if line.strip()]
        summary = "; ".join(lines[:2])[:300]
        warnings.warn(
            f"tape.jit: kernel {self.name} failed to compile ({type(error).__name__}: {summary}); "
            "running its numpy twin from now on",
            JitFallbackWarning,
            stacklevel=3,
        )


_KERNELS: dict[str, Kernel[Any]] = {}


def kernel(
    twin: Callable[..., R], *, parallel: bool = False, fastmath: bool = False, register: bool = True
) -> Callable[[Callable[..., R]], Kernel[R]]:
    """Decorator: make ``function`` a lazily compiled numba kernel whose numpy twin is ``twin``.

    Parameters
    ----------
    twin : callable
        numpy implementation with the same signature and effect (return value and in-place writes).
    parallel : bool
        Compile with ``parallel=True``; loops written with ``prange`` (from this module) are split
        across threads. Use only for loops whose iterations write disjoint memory.
    fastmath : bool
        Compile with ``fastmath=True`` (reassociation allowed: results may differ in the last bits).
    register : bool
        List the kernel in ``kernels()`` (the benchmarks and tests iterate it); ``False`` for throwaway
        kernels.

    Examples
    --------
    >>> import numpy as np
    >>> from tape import jit
    >>> @jit.kernel(np.add, register=False)
    ... def add(a, b):
    ...     return a + b
    >>> float(add(1.0, 2.0))
    3.0
    """

    def wrap(function: Callable[..., R]) -> Kernel[R]:
        compiled = Kernel(function, twin, parallel=parallel, fastmath=fastmath)
        if register:
            _KERNELS[compiled.name] = compiled
        return compiled

    return wrap


def kernels() -> dict[str, Kernel[Any]]:
    """Every registered kernel by name (``module.qualname``), in the order they were defined.

    Examples
    --------
    >>> import tape.ops.scatter
    >>> from tape import jit
    >>> "tape.ops.scatter.scatter_rows" in jit.kernels()
    True
    """
    return dict(_KERNELS)

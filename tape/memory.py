"""Keep freed memory for reuse: glibc's malloc thresholds, set when tape is imported.

A recorded step allocates the same large arrays every iteration: each op's output, the values its VJP
keeps, each cotangent. glibc serves an allocation above its mmap threshold with fresh pages from the
kernel, and returns free memory at the top of its heap once more than its trim threshold is free. Both
thresholds start at 128 KiB and adapt upwards to the largest block freed, the trim threshold to twice
that; a step that frees more than two of its largest arrays at once (a forward's saved values, released
by backward) therefore hands them back to the kernel, and the next step takes them again, one page fault
per 4 KiB page. On the virtual machines measured (an Intel Xeon), those faults were half of tape's
forward of a spectral loss on 2**16 samples, and a third of numpy's own forward of it.

``keep_freed_memory()`` fixes the thresholds where glibc's adaptation would end (32 MiB for mmap, the
largest it adapts to) and lets up to 256 MiB of free memory stay in the process before it is returned.
Memory that a step frees is then reused by the next one without page faults. tape calls it at import;
set ``TAPE_KEEP_FREED_MEMORY=0`` to leave malloc as it was, or call ``keep_freed_memory(False)`` to go back
to glibc's initial thresholds. On other C libraries (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import threading

__all__ = ["ENVIRONMENT_VARIABLE", "keep_freed_memory", "keeps_freed_memory"]

#: Name of the environment variable that, set to 0, false, no or off, keeps tape from tuning malloc.
ENVIRONMENT_VARIABLE = "TAPE_KEEP_FREED_MEMORY"

# mallopt's parameters (malloc.h) and the values used.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEPT = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 256 << 20}
_GLIBC_INITIAL = {_M_MMAP_THRESHOLD: 128 << 10, _M_TRIM_THRESHOLD: 128 << 10}

_lock = threading.Lock()
_keeping = False


def _mallopt() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """glibc's ``mallopt``, or None under another C library."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        return ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):
        return None


def keep_freed_memory(enabled: bool = True) -> bool:
    """Let glibc's malloc keep freed memory for reuse (``True``), or restore its initial thresholds.

    Returns whether malloc was tuned: ``False`` under a C library other than glibc.

    Examples
    --------
    >>> import tape.memory
    >>> tape.memory.keep_freed_memory() == tape.memory.keeps_freed_memory()
    True
    """
    global _keeping
    mallopt = _mallopt()
    if mallopt is None:
        return False
    with _lock:
        for parameter, value in (_KEPT if enabled else _GLIBC_INITIAL).items():
            if not mallopt(parameter, value):
                return False
        _keeping = enabled
    return True


def keeps_freed_memory() -> bool:
    """Return whether tape has asked malloc to keep freed memory (and it accepted).

    Examples
    --------
    >>> import tape.memory
    >>> isinstance(tape.memory.keeps_freed_memory(), bool)
    True
    """
    return _keeping


def _apply_environment() -> None:
    setting = os.environ.get(ENVIRONMENT_VARIABLE, "1").strip().lower()
    if setting not in {"0", "false", "no", "off"}:
        keep_freed_memory()

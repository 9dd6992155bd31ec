"""Anomaly mode: records and in-place writes note the user code that made them, and backward refuses the
first VJP that makes nan or inf from a finite gradient.

A refusal such as "multiply: its input 0 was changed in place after multiply was recorded" is only as
useful as the lines it points at, and a nan in a gradient only as findable as the op that made it.
Finding them costs a walk up the stack per op and a finiteness test per cotangent, so it is done only in
anomaly mode (``with tape.detect_anomaly():`` or ``tape.set_detect_anomaly(True)``), as PyTorch does;
outside it, the refusal says how to turn the mode on, and the sweep pays one test of a local flag. The
mode is per thread, like grad mode.
"""

from __future__ import annotations

import linecache
import os
import sys
from typing import Any

import numpy as np

from .grad_mode import state

_TAPE = os.path.dirname(os.path.abspath(__file__))
# The op modules: inside the package once installed, beside it in a checkout.
_INTERNAL = (_TAPE + os.sep, os.path.join(os.path.dirname(_TAPE), "ops") + os.sep)


class detect_anomaly:
    """Note, for every op recorded and every in-place write in this thread, the line of user code that made
    it, so an error about a value changed in place names both lines. Costs a stack walk per op.

    Examples
    --------
    >>> import numpy as np, tape
    >>> with tape.detect_anomaly():
    ...     tape.is_detecting_anomaly()
    True
    """

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(state.anomaly)
        state.anomaly = self.mode

    def __exit__(self, *exc_info: object) -> None:
        state.anomaly = self._saved.pop()


def is_detecting_anomaly() -> bool:
    """Whether anomaly mode is on in this thread (``detect_anomaly``)."""
    return state.anomaly


def set_detect_anomaly(mode: bool) -> None:
    """Turn anomaly mode on or off in this thread until changed again (``detect_anomaly`` for a block).

    Examples
    --------
    >>> import tape
    >>> tape.set_detect_anomaly(True); tape.is_detecting_anomaly()
    True
    >>> tape.set_detect_anomaly(False)
    """
    state.anomaly = bool(mode)


def _is_users(filename: str) -> bool:
    return not filename.startswith(_INTERNAL) and f"{os.sep}numpy{os.sep}" not in filename


def _describe(frame: Any) -> str:
    filename, line = frame.f_code.co_filename, frame.f_lineno
    source = linecache.getline(filename, line).strip()
    where = f"{filename}:{line} in {frame.f_code.co_name}"
    return f"{where}: {source}" if source else where


def user_line() -> str:
    """``file:line in function: source`` of the innermost frame outside tape and numpy."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        if _is_users(frame.f_code.co_filename):
            return _describe(frame)
        frame = frame.f_back
    return "an unknown line"


class Origin(str):
    """Where a record was made, in anomaly mode: the user's line (the string itself) and ``stack``, the
    user's frames from the outermost to that line (frames inside tape and numpy left out), formatted only
    when read."""

    frames: tuple[tuple[str, int, str], ...]

    @property
    def stack(self) -> tuple[str, ...]:
        """``file:line in function: source`` for each of the user's frames, outermost first."""
        lines = []
        for filename, line, function in self.frames:
            source = linecache.getline(filename, line).strip()
            lines.append(f"{filename}:{line} in {function}" + (f": {source}" if source else ""))
        return tuple(lines)


def user_origin() -> Origin:
    """The user's line and stack at this point (``Origin``), for a record made in anomaly mode."""
    frames = []
    frame: Any = sys._getframe(1)
    innermost = None
    while frame is not None:
        code = frame.f_code
        if _is_users(code.co_filename):
            if innermost is None:
                innermost = frame
            frames.append((code.co_filename, frame.f_lineno, code.co_name))
        frame = frame.f_back
    origin = Origin(_describe(innermost) if innermost is not None else "an unknown line")
    origin.frames = tuple(reversed(frames))
    return origin


def check_finite(record: Any, saved: Any, argnum: int, g: Any, cotangent: Any) -> None:
    """In anomaly mode: refuse a VJP that made nan or inf from a finite cotangent, naming the op, its
    inputs and where it was recorded (with the user's stack then)."""
    values = getattr(cotangent, "_data", cotangent)
    if np.all(np.isfinite(values)):
        return
    incoming: tuple[Any, ...] = g if type(g) is tuple else (g,)
    if not all(np.all(np.isfinite(getattr(item, "_data", item))) for item in incoming):
        return  # not this op's doing: what reached it was not finite already
    name = record.op.name
    shapes = ", ".join(str(np.shape(value)) for value in saved)
    dtypes = ", ".join(str(getattr(value, "dtype", type(value).__name__)) for value in saved)
    kind = "nan" if np.isnan(values).any() else "inf"
    origin = getattr(record, "where", None)
    if origin is None:
        where = "it was recorded outside anomaly mode: run the forward under tape.detect_anomaly() too"
        stack = ""
    else:
        where = f"it was called at {origin}"
        frames = getattr(origin, "stack", ())
        stack = "\nForward traceback (most recent call last):\n" + "\n".join(f"  {f}" for f in frames)
    raise FloatingPointError(
        f"{name}: the gradient for its argument {argnum} has {kind} values though the gradient reaching "
        f"{name} was finite ({name}'s arguments: shapes {shapes}; dtypes {dtypes}); {where}{stack}"
    )


def bump(counter: list[Any]) -> None:
    """Count an in-place write to the buffer ``counter`` versions (noting where, in anomaly mode)."""
    counter[0] += 1
    if state.anomaly:
        counter[1:] = [user_line()]
    elif len(counter) > 1:
        del counter[1:]  # a later write made outside anomaly mode: its line is unknown


def changed_at(counter: list[Any]) -> str | None:
    """Where the last write counted by ``counter`` was made, if it was made in anomaly mode."""
    return counter[1] if len(counter) > 1 else None

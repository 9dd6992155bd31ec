"""Anomaly mode: records and in-place writes note the line of user code that made them.

A refusal such as "multiply: its input 0 was changed in place after multiply was recorded" is only as
useful as the lines it points at. Finding them costs a walk up the stack per op, so it is done only in
anomaly mode (``with tape.detect_anomaly():``), as PyTorch does; outside it, the refusal says how to turn
the mode on. The mode is per thread, like grad mode.
"""

from __future__ import annotations

import linecache
import os
import sys
from typing import Any

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


def user_line() -> str:
    """``file:line in function: source`` of the innermost frame outside tape and numpy."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_INTERNAL) and f"{os.sep}numpy{os.sep}" not in filename:
            source = linecache.getline(filename, frame.f_lineno).strip()
            where = f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
            return f"{where}: {source}" if source else where
        frame = frame.f_back
    return "an unknown line"


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

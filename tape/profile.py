"""A profiler of the tape: per op, how often it ran, its forward and backward time, and the bytes its
results took, with a table and a Chrome trace.

``with tape.profile() as prof:`` profiles the ops this thread runs inside the block. While no profiler is
open, ``Op.__call__`` is the engine's own and the backward sweep tests one local flag per record, so
profiling costs nothing; while one is open, ``Op.__call__`` times each call (other threads pass through
with one attribute test) and the sweep times each record's VJPs. Forward time is the whole op call as the
program sees it (dispatch, the numpy or numba forward, recording); backward time is the record's VJPs
and the fitting of their cotangents, and an op's VJPs that call other ops under ``create_graph`` count
those ops' forward too. This module holds no op.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .grad_mode import state
from .op import Op
from .op import _call as _engine_call

_open_profilers = 0
_switch = threading.Lock()


@dataclass
class OpStats:
    """Totals for one op name: calls and seconds forward and backward, and bytes of results."""

    name: str
    calls: int = 0
    forward_seconds: float = 0.0
    backward_calls: int = 0
    backward_seconds: float = 0.0
    forward_bytes: int = 0
    backward_bytes: int = 0


@dataclass
class Profile:
    """What ``tape.profile()`` measured: ``stats`` by op name and ``events`` for the trace."""

    stats: dict[str, OpStats] = field(default_factory=dict)
    events: list[tuple[str, str, int, int]] = field(default_factory=list)  # (name, phase, start, end) ns
    thread: int = field(default_factory=threading.get_ident)

    def _entry(self, name: str) -> OpStats:
        entry = self.stats.get(name)
        if entry is None:
            entry = self.stats[name] = OpStats(name)
        return entry

    def add_forward(self, name: str, start: int, end: int, out: Any) -> None:
        entry = self._entry(name)
        entry.calls += 1
        entry.forward_seconds += (end - start) * 1e-9
        entry.forward_bytes += _nbytes(out)
        self.events.append((name, "forward", start, end))

    def add_backward(self, name: str, start: int, end: int, cotangent_bytes: int) -> None:
        entry = self._entry(name)
        entry.backward_calls += 1
        entry.backward_seconds += (end - start) * 1e-9
        entry.backward_bytes += cotangent_bytes
        self.events.append((name, "backward", start, end))

    def table(self, sort_by: str = "total", limit: int | None = None) -> str:
        """The totals as a text table, one row per op, sorted by ``"total"``, ``"forward"``,
        ``"backward"``, ``"calls"`` or ``"name"``.

        Examples
        --------
        >>> import numpy as np, tape
        >>> x = tape.tensor(np.ones(3), requires_grad=True)
        >>> with tape.profile() as prof:
        ...     np.sum(np.sin(x)).backward()
        >>> print(prof.table(sort_by="name").splitlines()[0].split())
        ['op', 'calls', 'forward', 'backward', 'total', 'forward', 'bytes', 'backward', 'bytes']
        """
        keys = {
            "total": lambda s: -(s.forward_seconds + s.backward_seconds),
            "forward": lambda s: -s.forward_seconds,
            "backward": lambda s: -s.backward_seconds,
            "calls": lambda s: -s.calls,
            "name": lambda s: s.name,
        }
        if sort_by not in keys:
            raise ValueError(f"profile.table: sort_by must be one of {sorted(keys)}, got {sort_by!r}")
        rows = sorted(self.stats.values(), key=keys[sort_by])[:limit]
        header = ["op", "calls", "forward", "backward", "total", "forward bytes", "backward bytes"]
        cells = [
            [
                s.name,
                str(s.calls),
                _seconds(s.forward_seconds),
                _seconds(s.backward_seconds),
                _seconds(s.forward_seconds + s.backward_seconds),
                _bytes(s.forward_bytes),
                _bytes(s.backward_bytes),
            ]
            for s in rows
        ]
        widths = [max(len(row[k]) for row in [header, *cells]) for k in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                 for row in [header, *cells]]  # fmt: skip
        return "\n".join(lines)

    def export_chrome_trace(self, path: str | os.PathLike[str]) -> None:
        """Write the events as a Chrome trace (JSON) that chrome://tracing and Perfetto open."""
        origin = min((start for _, _, start, _ in self.events), default=0)
        events = [
            {
                "name": name,
                "cat": phase,
                "ph": "X",
                "ts": (start - origin) / 1e3,
                "dur": (end - start) / 1e3,
                "pid": os.getpid(),
                "tid": self.thread,
                "args": {"phase": phase},
            }
            for name, phase, start, end in self.events
        ]
        try:
            with open(path, "w", encoding="utf-8") as file:
                json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, file)
        except OSError as error:
            where = os.fspath(path)
            raise OSError(f"profile.export_chrome_trace: cannot write {where!r}: {error}") from error

    def __str__(self) -> str:
        return self.table()


class profile:
    """Profile the ops this thread runs in the block: ``with tape.profile() as prof:``, then
    ``prof.table(sort_by="backward")`` and ``prof.export_chrome_trace(path)``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor(np.ones(3), requires_grad=True)
    >>> with tape.profile() as prof:
    ...     np.sum(np.sin(x) * 2.0).backward()
    >>> sorted(prof.stats), prof.stats["sin"].calls, prof.stats["sin"].backward_calls
    (['multiply', 'sin', 'sum'], 1, 1)
    """

    def __init__(self) -> None:
        self.result = Profile()
        self._saved: Any = None

    def __enter__(self) -> Profile:
        global _open_profilers
        if state.profiler is not None:
            raise RuntimeError("profile: a profiler is already open in this thread; close it first")
        with _switch:
            _open_profilers += 1
            Op.__call__ = _profiled_call  # type: ignore[assignment]
        self.result = Profile()
        state.profiler = self.result
        return self.result

    def __exit__(self, *exc_info: object) -> None:
        global _open_profilers
        state.profiler = None
        with _switch:
            _open_profilers -= 1
            if _open_profilers == 0:
                Op.__call__ = _engine_call  # type: ignore[assignment]


def _profiled_call(op: Any, *args: Any, **kwargs: Any) -> Any:
    profiler = state.profiler
    if profiler is None:
        return _engine_call(op, *args, **kwargs)
    start = time.perf_counter_ns()
    out = _engine_call(op, *args, **kwargs)
    profiler.add_forward(op.name, start, time.perf_counter_ns(), out)
    return out


def _nbytes(value: Any) -> int:
    if type(value) is tuple:
        return sum(_nbytes(item) for item in value)
    data = getattr(value, "_data", value)
    return int(data.nbytes) if isinstance(data, np.ndarray) else 0


def _seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _bytes(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"

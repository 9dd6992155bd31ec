"""Timing helpers and one table format for every benchmark.

``measure`` runs a function in several repeats and reports the median and the spread (min..max) of the
per-call time; ``measure_side_by_side`` measures several functions in turns, so that the shared machine's
load falls on all of them alike; ``print_table`` prints rows a person can read in a terminal. The clock
work is the standard library's ``timeit``: it picks the number of calls per repeat and switches the
garbage collector off while it times. Nothing here prints to stderr or draws a progress bar itself.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import math
import pstats
import statistics
import time
import timeit
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Per-call seconds over several repeats."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Timing:
        """The median, min and max of per-call ``samples``."""
        return cls(statistics.median(samples), min(samples), max(samples))

    def scaled(self, factor: float) -> Timing:
        """The same timing divided by ``factor`` (per op rather than per call, say)."""
        return Timing(self.median / factor, self.low / factor, self.high / factor)


class _LongEnough(StopIteration):
    """Stops ``Timer.autorange`` from its callback at the first trial that lasts ``min_time``."""


def calls_per_repeat(timer: timeit.Timer, min_time: float) -> int:
    """How many calls of ``timer``'s statement make one repeat last at least ``min_time`` seconds.

    ``Timer.autorange`` tries 1, 2, 5, 10, 20, 50, ... calls until a trial lasts 0.2 s. Its callback sees
    every trial, so a smaller ``min_time`` stops it at the first trial that is long enough; a larger one
    scales its answer up.

    Examples
    --------
    >>> calls_per_repeat(timeit.Timer(lambda: None), min_time=0.0)
    1
    """

    def stop_when_long_enough(number: int, seconds: float) -> None:
        if seconds >= min_time:
            raise _LongEnough(number, seconds)

    try:
        number, seconds = timer.autorange(stop_when_long_enough)
    except _LongEnough as enough:
        number, seconds = enough.args
    if seconds < min_time:
        number = math.ceil(number * min_time / max(seconds, 1e-9))
    return number


def _repeat(timer: timeit.Timer, repeats: int, number: int) -> Timing:
    return Timing.of([seconds / number for seconds in timer.repeat(repeat=repeats, number=number)])


def measure(function: Callable[[], Any], repeats: int = 7, min_time: float = 0.05) -> Timing:
    """Median, min and max seconds per call of ``function`` over ``repeats`` repeats.

    Each repeat runs ``function`` enough times to last at least ``min_time`` seconds, so that short calls
    are not dominated by the clock's resolution. One untimed call warms caches (and compiles kernels).

    Examples
    --------
    >>> timing = measure(lambda: sum(range(10)), repeats=3, min_time=1e-4)
    >>> 0 < timing.low <= timing.median <= timing.high
    True
    """
    function()
    timer = timeit.Timer(function)
    return _repeat(timer, repeats, calls_per_repeat(timer, min_time))


def measure_side_by_side(
    functions: Mapping[str, tuple[Callable[[], Any], Callable[[], Any] | None]],
    rounds: int,
    repeats: int,
    min_time: float,
    progress: Any = None,
    on_error: Callable[[str, Exception], None] | None = None,
    settle: float = 0.0,
) -> dict[str, Timing]:
    """``measure`` each function in turn, ``rounds`` times over; the median of the rounds' medians and the
    extremes of their spreads.

    The machine is shared: taking the cases in turns spreads a change of load over all of them rather than
    over whichever ran at the time, and every other round takes them backwards (a case that slows the one
    after it, or gains from it, does not always touch the same one). Each entry is ``(function, threads)``
    where ``threads`` makes the context manager (a thread limit) to measure it under, or is None. The
    calls per repeat are chosen in the first round and kept, so that every round times the same work.
    ``progress`` (a bar from ``benchmarks.console.progress_bar``) advances by one per case and round. With
    ``on_error``, a function that raises is reported to it, left out of the later rounds and of the result;
    without, it raises.
    With ``settle`` (seconds), each case waits that long and makes one untimed call before its repeats: the
    thread pools of the case before (OpenBLAS's, OpenMP's, XLA's) keep spinning for up to 0.2 s after their
    last call, and would otherwise take the cores from whichever case comes next.

    Examples
    --------
    >>> timings = measure_side_by_side({"noop": (lambda: None, None)}, rounds=2, repeats=2, min_time=1e-4)
    >>> timings["noop"].low <= timings["noop"].median <= timings["noop"].high
    True
    """
    timers = {name: timeit.Timer(function) for name, (function, _) in functions.items()}
    numbers: dict[str, int] = {}
    per_round: dict[str, list[Timing]] = {name: [] for name in functions}
    names = list(functions)
    for round_number in range(rounds):
        # Every other round runs backwards, so that no case always follows the same one.
        for name in names if round_number % 2 == 0 else names[::-1]:
            function, threads = functions[name]
            if name not in per_round:  # failed in an earlier round
                continue
            if progress is not None:
                progress.set_postfix_str(f"round {round_number + 1}/{rounds}: {name}")
            try:
                with threads() if threads is not None else contextlib.nullcontext():
                    if name not in numbers:
                        function()  # warm caches and compile kernels outside the clock
                        numbers[name] = calls_per_repeat(timers[name], min_time)
                    elif settle:
                        time.sleep(settle)
                        function()
                    per_round[name].append(_repeat(timers[name], repeats, numbers[name]))
            except Exception as error:
                if on_error is None:
                    raise
                on_error(name, error)
                del per_round[name]
            if progress is not None:
                progress.update()
    return {
        name: Timing(
            statistics.median(t.median for t in timings),
            min(t.low for t in timings),
            max(t.high for t in timings),
        )
        for name, timings in per_round.items()
    }


def profile_text(profiler: cProfile.Profile, top: int) -> str:
    """The ``top`` entries of ``profiler`` by own time (tottime), as the text pstats prints."""
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def format_time(seconds: float) -> str:
    """``1.23 µs``, ``4.56 ms``, ``7.89 s``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    raise AssertionError("unreachable")


def format_spread(low: float, high: float) -> str:
    """``1.2 ms .. 3.4 ms``: the fastest and the slowest repeat."""
    return f"{format_time(low)} .. {format_time(high)}"


def format_bytes(size: float | None) -> str:
    """``512 B``, ``3.1 KiB``, ``64 MiB``, ``1.95 GiB``; ``-`` for an unknown size.

    Examples
    --------
    >>> format_bytes(3 * 2**20), format_bytes(None)
    ('3 MiB', '-')
    """
    if size is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"


def timing_rows(timings: Mapping[str, Timing], *references: float) -> list[list[str]]:
    """One row per case: its name, median, spread and its median over each of ``references`` (``1.23x``).

    Examples
    --------
    >>> timing_rows({"numpy": Timing(2e-3, 1e-3, 3e-3)}, 1e-3)
    [['numpy', '2 ms', '1 ms .. 3 ms', '2.00x']]
    """
    return [
        [
            name,
            format_time(timing.median),
            format_spread(timing.low, timing.high),
            *(f"{timing.median / reference:.2f}x" for reference in references),
        ]
        for name, timing in timings.items()
    ]


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> None:
    """Print ``rows`` under ``header`` as aligned columns, with a title and an optional note."""
    cells = [[str(cell) for cell in header]] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * width for width in widths))
    if note:
        print(f"  {note}")


def profile_calls(call: Callable[[], Any], calls: int, top: int) -> str:
    """cProfile's ``top`` entries by own time over ``calls`` calls of ``call``, after one call outside the
    profile (to warm caches and compile kernels)."""
    call()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    return profile_text(profiler, top)

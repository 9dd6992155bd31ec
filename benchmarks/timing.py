"""Timing helpers and one table format for every benchmark.

``measure`` runs a function in several repeats and reports the median and the spread (min..max) of the
per-call time; ``measure_side_by_side`` measures several functions in turns, so that the shared machine's
load falls on all of them alike; ``print_table`` prints rows a person can read in a terminal.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import io
import pstats
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.progress import Progress


@dataclass(frozen=True)
class Timing:
    """Per-call seconds over several repeats."""

    median: float
    low: float
    high: float

    def scaled(self, factor: float) -> Timing:
        """The same timing divided by ``factor`` (per op rather than per call, say)."""
        return Timing(self.median / factor, self.low / factor, self.high / factor)


def measure(function: Callable[[], Any], repeats: int = 7, min_time: float = 0.05) -> Timing:
    """Median, min and max seconds per call of ``function`` over ``repeats`` repeats.

    Each repeat runs ``function`` enough times to last about ``min_time`` seconds, so that short calls
    are not dominated by the clock's resolution. One untimed call warms caches (and compiles kernels).
    """
    function()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or number >= 1 << 20:
            break
        number *= 2 if elapsed == 0 else max(2, min(10, int(min_time / elapsed) + 1))
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(number):
                function()
            samples.append((time.perf_counter() - start) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(statistics.median(samples), min(samples), max(samples))


def measure_side_by_side(
    functions: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]],
    rounds: int,
    repeats: int,
    min_time: float,
    progress: Progress | None = None,
) -> dict[str, Timing]:
    """``measure`` each function in turn, ``rounds`` times over; the median of the rounds' medians and the
    extremes of their spreads.

    The machine is shared: taking the cases in turns spreads a change of load over all of them rather than
    over whichever ran at the time. Each entry is ``(function, threads)`` where ``threads`` makes the
    context manager (a thread limit) to measure it under, or is None.

    Examples
    --------
    >>> timings = measure_side_by_side({"noop": (lambda: None, None)}, rounds=2, repeats=2, min_time=1e-4)
    >>> timings["noop"].low <= timings["noop"].median <= timings["noop"].high
    True
    """
    per_round: dict[str, list[Timing]] = {name: [] for name in functions}
    for round_number in range(rounds):
        for name, (function, threads) in functions.items():
            label = f"round {round_number + 1}/{rounds}: {name}"
            if progress is not None:
                progress.show(label)
            with threads() if threads is not None else contextlib.nullcontext():
                per_round[name].append(measure(function, repeats=repeats, min_time=min_time))
            if progress is not None:
                progress.advance(label)
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

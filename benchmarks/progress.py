"""A tiny progress bar on stderr, so that a long benchmark shows it is alive without touching stdout.

On a terminal the bar redraws itself in place; when stderr is a file or a pipe it writes a plain line at
most every few seconds instead, so logs stay readable. It has no dependencies and never raises.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Count finished steps out of ``total`` and show them as a bar with the current step's label.

    Examples
    --------
    >>> with Progress(3, "demo") as progress:
    ...     for step in ("a", "b", "c"):
    ...         progress.advance(step)
    """

    def __init__(
        self,
        total: int,
        title: str = "",
        stream: TextIO | None = None,
        width: int = 28,
        line_interval: float = 5.0,
    ) -> None:
        self.total = max(int(total), 1)
        self.title = title
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.line_interval = line_interval
        self.done = 0
        self.started = time.perf_counter()
        self._last_line = -float("inf")
        self._drawn_width = 0
        try:
            self.interactive = self.stream.isatty()
        except (AttributeError, ValueError):
            self.interactive = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def show(self, label: str = "") -> None:
        """Redraw the bar with ``label`` as the step now running, without counting a step."""
        fraction = min(self.done / self.total, 1.0)
        filled = round(fraction * self.width)
        elapsed = time.perf_counter() - self.started
        text = (
            f"{self.title} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{self.done}/{self.total} {elapsed:5.0f} s  {label}"
        )
        if self.interactive:
            # Pad with spaces so that a shorter line fully covers the previous one.
            self._write("\r" + text.ljust(self._drawn_width))
            self._drawn_width = len(text)
        elif elapsed - self._last_line >= self.line_interval or self.done >= self.total:
            self._last_line = elapsed
            self._write(text + "\n")

    def advance(self, label: str = "", steps: int = 1) -> None:
        """Count ``steps`` finished steps and show ``label`` (what finished, or what starts next)."""
        self.done += steps
        self.show(label)

    def close(self) -> None:
        """Clear the bar from the terminal (a log keeps its last line)."""
        if self.interactive and self._drawn_width:
            self._write("\r" + " " * self._drawn_width + "\r")
            self._drawn_width = 0

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop a benchmark
            pass

"""What a benchmark or an example shows besides its tables: its command line, and a progress bar on stderr.

The bar is tqdm's, which comes with the ``bench`` and ``examples`` extras; without tqdm everything runs the
same, with no bar. stdout is left to the tables, so that a run piped to a file reads like the terminal.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.results import report_results


class SilentBar:
    """Stands in for a tqdm bar where tqdm is not installed: it takes the same calls and shows nothing."""

    def __enter__(self) -> SilentBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def update(self, n: float = 1) -> None:
        """Count ``n`` finished steps (nothing to show)."""

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Name the step now running (nothing to show)."""

    def clear(self) -> None:
        """Wipe the bar before printing to stdout (nothing to wipe)."""

    def close(self) -> None:
        """End the bar (nothing to end)."""


def progress_bar(total: int, title: str, enabled: bool = True) -> Any:
    """A tqdm bar on stderr counting ``total`` steps, or a ``SilentBar`` when tqdm is not installed.

    Use it as a context manager; ``update()`` counts a step, ``set_postfix_str(label)`` names the one
    running, and ``clear()`` wipes the bar before a table is printed to stdout (the next step redraws it).
    The bar disappears when it closes; ``enabled=False`` shows nothing.

    Examples
    --------
    >>> with progress_bar(2, "demo", enabled=False) as bar:
    ...     for step in ("a", "b"):
    ...         bar.set_postfix_str(step)
    ...         bar.update()
    """
    try:
        from tqdm import tqdm
    except ImportError:
        return SilentBar()
    return tqdm(total=total, desc=title, file=sys.stderr, leave=False, disable=not enabled)


def command_line(prog: str, doc: str) -> argparse.ArgumentParser:
    """A parser for ``prog`` whose help is the module's docstring ``doc``: its first line describes the
    command, the rest (usage examples and what it measures) follows the options as written.

    Examples
    --------
    >>> command_line("python -m demo", "Demo.\\n\\npython -m demo --quick").description
    'Demo.'
    """
    description, _, details = doc.strip().partition("\n")
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=details.strip() or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def suite_command_line(name: str, doc: str, profile: str | None = None) -> argparse.ArgumentParser:
    """``command_line`` for ``python -m benchmarks.<name>`` with the options every suite takes, ``--quick``
    and ``--out``, and with ``profile`` (what it profiles) a ``--profile`` option."""
    parser = command_line(f"python -m benchmarks.{name}", doc)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats, for a fast check")
    parser.add_argument("--out", default=None, help="results folder (default: ./benchmark-results)")
    if profile is not None:
        parser.add_argument("--profile", action="store_true", help=f"also cProfile {profile} (top entries)")
    return parser


def run_and_report(name: str, run: Callable[..., Any], quick: bool, out: str | None) -> Any:
    """Run one suite and keep its figures: a suite whose ``run`` takes ``out`` writes its own files; what
    any other returns goes to ``<out>/<name>.json``. Returns what ``run`` returned."""
    if "out" in inspect.signature(run).parameters:
        return run(quick=quick, out=out)
    results = run(quick=quick)
    report_results(name, results, out)
    return results


def suite_main(name: str, doc: str, run: Callable[..., Any], argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.<name> [--quick] [--out DIR]`` for a suite with no options of its own."""
    options = suite_command_line(name, doc).parse_args(argv)
    run_and_report(name, run, options.quick, options.out)
    return 0

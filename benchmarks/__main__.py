"""``python -m benchmarks``: run tape's benchmarks and print their tables.

python -m benchmarks                 # the default suite
python -m benchmarks --quick         # smaller sizes and fewer repeats (under a minute)
python -m benchmarks --suite per_op  # one benchmark by name
"""

from __future__ import annotations

import argparse
import platform

import numpy as np

from benchmarks import per_op

SUITES = {"per_op": per_op.run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all", help="which benchmark to run")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a fast check")
    options = parser.parse_args(argv)
    print(
        f"tape benchmarks: Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}"
    )
    names = list(SUITES) if options.suite == "all" else [options.suite]
    for name in names:
        SUITES[name](quick=options.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

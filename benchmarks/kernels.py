"""numba kernels against their numpy twins: is each kernel worth keeping, and what does compiling cost?

For every registered kernel (``tape.jit.kernels()``) that has a case here, the public function that uses
it is timed with JIT on (the kernel), with JIT off (the numpy twin) and, for scatter-add, as plain
``np.add.at``, at a small and a large size. A second table gives the one-time costs, each measured in a
fresh interpreter with an empty numba cache and then again with the cache that run filled:
importing numba, the first call (compile, or load from the cache) and a second signature.

python -m benchmarks.kernels           # full sizes (about a minute)
python -m benchmarks.kernels --quick   # smaller sizes, fewer repeats
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import ops.scatter
from benchmarks.timing import format_time, measure, print_table
from tape import jit

REPOSITORY = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    """One workload: a name, and a callable per implementation (``kernel``, ``twin``, maybe others)."""

    label: str
    implementations: dict[str, Callable[[], Any]]


def _with_jit(mode: bool, function: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with jit.use_jit(mode):
            return function()

    return run


def scatter_cases(quick: bool) -> list[Case]:
    """``scatter_add_into`` as the VJP of ``x[rows]`` uses it: rows of an embedding table, and elements."""
    sizes = [(1_000, 100, 16), (10**5, 10**3, 64) if quick else (10**6, 10**4, 64)]
    sizes.append((10**5, 10**5, 1) if quick else (10**6, 10**6, 1))
    cases = []
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        for count, n_rows, row_length in sizes:
            rows = rng.integers(0, n_rows, count)  # repeats are certain: count >= n_rows
            values = rng.standard_normal((count, row_length)).astype(dtype)
            total = np.zeros((n_rows, row_length), dtype)
            if row_length == 1:  # element positions: a 1-d table
                values, total = values.reshape(count), total.reshape(n_rows)

            def scatter(total: Any = total, rows: Any = rows, values: Any = values) -> Any:
                return ops.scatter.scatter_add_into(total, rows, values)

            def add_at(total: Any = total, rows: Any = rows, values: Any = values) -> Any:
                return np.add.at(total, rows, values)

            shape = f"({n_rows:.0e}, {row_length})" if row_length > 1 else f"({n_rows:.0e},)"
            cases.append(
                Case(
                    f"{count:.0e} indices into {shape} {np.dtype(dtype).name}".replace("e+0", "e"),
                    {
                        "kernel": _with_jit(True, scatter),
                        "twin": _with_jit(False, scatter),
                        "np.add.at": add_at,
                    },
                )
            )
    return cases


def _scatter_example(dtype: Any) -> tuple[Any, ...]:
    return (np.zeros((10, 4), dtype), np.array([1, 1, 3], dtype=np.int64), np.ones((3, 4), dtype))


#: For each kernel: its timed workloads, and example arguments (float64, float32) for the compile timing.
CASES: dict[str, tuple[Callable[[bool], list[Case]], Callable[[Any], tuple[Any, ...]]]] = {
    "ops.scatter.scatter_rows": (scatter_cases, _scatter_example),
}
#: Kernels timed against their twins by another suite, in the workloads that use them.
TIMED_ELSEWHERE = {"ops.conv": "python -m benchmarks.conv"}


def _speed_rows(quick: bool) -> tuple[list[dict[str, Any]], list[str]]:
    results = []
    missing = []
    for name in jit.kernels():
        if name not in CASES:
            if not any(name.startswith(prefix) for prefix in TIMED_ELSEWHERE):
                missing.append(name)
            continue
        build, _ = CASES[name]
        for case in build(quick):
            timings = {
                implementation: measure(function, repeats=3 if quick else 5, min_time=0.02 if quick else 0.1)
                for implementation, function in case.implementations.items()
            }
            kernel = timings["kernel"].median
            results.append(
                {
                    "kernel": name,
                    "case": case.label,
                    **{f"{implementation}_s": timing.median for implementation, timing in timings.items()},
                    **{f"{implementation}_low_s": timing.low for implementation, timing in timings.items()},
                    **{
                        f"{implementation}_over_kernel": timing.median / kernel
                        for implementation, timing in timings.items()
                        if implementation != "kernel"
                    },
                }
            )
    return results, missing


def _probe(name: str) -> dict[str, float]:
    """In this (fresh) interpreter: seconds to import numba, then the first and a second signature."""
    import time

    _, example = CASES[name]
    kernel = jit.kernels()[name]
    start = time.perf_counter()
    import numba  # noqa: F401

    imported = time.perf_counter()
    with jit.use_jit(True):
        kernel(*example(np.float64))
        first = time.perf_counter()
        kernel(*example(np.float32))
        second = time.perf_counter()
    if kernel.failed:
        raise RuntimeError(f"{name} did not compile")
    return {
        "import_numba_s": imported - start,
        "first_call_s": first - imported,
        "second_call_s": second - first,
    }


def _probe_in_fresh_interpreter(name: str, cache_dir: str) -> dict[str, float]:
    environment = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    environment.pop(jit.ENVIRONMENT_VARIABLE, None)
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.kernels", "--probe", name],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _compile_rows() -> list[dict[str, Any]]:
    results = []
    for name in jit.kernels():
        if name not in CASES:
            continue
        with tempfile.TemporaryDirectory() as cache_dir:
            compiled = _probe_in_fresh_interpreter(name, cache_dir)
            cached = _probe_in_fresh_interpreter(name, cache_dir)
        results.append({"kernel": name, "compile": compiled, "cached": cached})
    return results


def run(quick: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Time every kernel against its twin, and its compile and cached-load cost; print both tables.

    Returns ``{"speed": [...], "one_time": [...]}``: one row per workload (seconds per call of each
    implementation, and each one's ratio to the kernel), and one row per kernel with its one-time costs
    (``{"kernel", "compile": {...}, "cached": {...}}``, seconds).
    """
    speed, missing = _speed_rows(quick)
    implementations = [key[: -len("_over_kernel")] for key in speed[0] if key.endswith("_over_kernel")]
    implementations = ["kernel", *implementations] if speed else []
    header = [
        "kernel",
        "case",
        *implementations,
        *(f"{name} / kernel" for name in implementations[1:]),
        "kernel fastest",
    ]
    table = [
        [
            row["kernel"].rsplit(".", 1)[-1],
            row["case"],
            *(format_time(row[f"{name}_s"]) for name in implementations),
            *(f"{row[f'{name}_over_kernel']:.1f}x" for name in implementations[1:]),
            "yes" if all(row[f"{name}_over_kernel"] > 1 for name in implementations[1:]) else "NO",
        ]
        for row in speed
    ]
    note = f"registered kernels with no case here: {', '.join(missing)}" if missing else ""
    print_table(
        "numba kernels vs their numpy twins (median seconds per call; kernel = JIT on, twin = JIT off)",
        header,
        table,
        note,
    )

    one_time = _compile_rows()
    print_table(
        "One-time cost per process (fresh interpreter; empty numba cache, then the cache it filled)",
        ["kernel", "cache", "import numba", "first call (float64)", "second signature (float32)"],
        [
            [
                row["kernel"].rsplit(".", 1)[-1],
                label,
                format_time(row[key]["import_numba_s"]),
                format_time(row[key]["first_call_s"]),
                format_time(row[key]["second_call_s"]),
            ]
            for row in one_time
            for label, key in (("empty (compile)", "compile"), ("filled (load)", "cached"))
        ],
        "the first call also pays numba's one-time start-up in the process (it imports scipy, if present)",
    )
    return {"speed": speed, "one_time": one_time}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kernels", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--probe", metavar="KERNEL", help=argparse.SUPPRESS)  # used by the compile timing
    options = parser.parse_args(argv)
    if options.probe:
        print(json.dumps(_probe(options.probe)))
        return 0
    run(quick=options.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Threads for elementwise kernels: numba's parallel loop against the serial one, on a quiet machine and
with one busy process beside it.

tape's elementwise kernels run serially. A ``prange`` loop on two cores halves the time of a memory-bound
VJP when the machine is quiet, but the machines this project runs on are shared: when another process
keeps a core busy, a thread that loses its core stalls the other. This suite measures both threading
layers numba offers (OpenMP, workqueue) on the VJP of ``tanh`` (``g * (1 - out * out)``), serial and
parallel side by side, first quiet and then with a busy process started beside it. numba picks its
threading layer once per process, so each layer runs in a fresh interpreter; a layer that cannot load
here is named and skipped.

python -m benchmarks --suite threads       # full repeats
python -m benchmarks.threads --quick       # one size, fewer repeats
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from benchmarks.console import suite_main
from benchmarks.timing import format_time, print_table

LAYERS = ("omp", "workqueue")
SIZES = (10**5, 10**6)
QUICK_SIZES = (10**5,)
BUSY = "while True: pass"


def _measure(layer: str, sizes: tuple[int, ...], rounds: int, repeats: int, busy: bool) -> dict[str, Any]:
    environment = {**os.environ, "NUMBA_THREADING_LAYER": layer}
    neighbour = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.threads_layer", json.dumps([sizes, rounds, repeats])],
            env=environment,
            capture_output=True,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {result.returncode}"}
    return json.loads(result.stdout)


def run(quick: bool = False) -> dict[str, Any]:
    """Measure each layer quiet and beside a busy process; print the table and return the figures."""
    sizes = QUICK_SIZES if quick else SIZES
    rounds, repeats = (2, 3) if quick else (3, 5)
    results: dict[str, Any] = {}
    rows = []
    skipped = []
    for layer in LAYERS:
        for busy in (False, True):
            measured = _measure(layer, sizes, rounds, repeats, busy)
            condition = "one busy process beside" if busy else "quiet"
            results[f"{layer}, {condition}"] = measured
            if "error" in measured:
                skipped.append(f"{layer} ({measured['error']})")
                break
            for size, figures in measured["figures"].items():
                (serial, _), (parallel, parallel_high) = figures["serial"], figures["parallel"]
                rows.append(
                    [
                        layer,
                        condition,
                        f"{int(size):.0e}".replace("e+0", "e"),
                        format_time(serial),
                        f"{format_time(parallel)} (slowest {format_time(parallel_high)})",
                        f"{serial / parallel:.2f}x",
                    ]
                )
    note = f"threading layers not available here: {', '.join(skipped)}" if skipped else ""
    print_table(
        "tanh's VJP g * (1 - out * out), float64, serial against numba's prange on the cores there are",
        ["layer", "machine", "elements", "serial", "parallel", "speed-up"],
        rows,
        note,
    )
    return {"cpu_count": os.cpu_count(), "layers": results}


if __name__ == "__main__":
    raise SystemExit(suite_main("threads", __doc__, run))

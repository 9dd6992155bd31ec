"""One threading layer's figures for ``benchmarks.threads``, measured in the interpreter this runs in.

numba chooses its threading layer once per process, so ``benchmarks.threads`` starts one interpreter per
layer with ``NUMBA_THREADING_LAYER`` set and runs this module there; it prints JSON on stdout:
``{"layer": ..., "figures": {size: {"serial": [median, slowest], "parallel": [median, slowest]}}}``.

python -m benchmarks.threads_layer '[[100000], 3, 5]'    # sizes, rounds, repeats
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numba
import numpy as np

from benchmarks.timing import measure_side_by_side


@numba.njit(cache=False)
def serial(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """tanh's VJP, ``g * (1 - out * out)``, in one loop."""
    result = np.empty_like(g)
    for i in range(g.shape[0]):
        result[i] = g[i] * (1.0 - out[i] * out[i])
    return result


@numba.njit(parallel=True, cache=False)
def parallel(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The same loop as ``serial``, split over the threads of numba's layer."""
    result = np.empty_like(g)
    for i in numba.prange(g.shape[0]):
        result[i] = g[i] * (1.0 - out[i] * out[i])
    return result


def measure(sizes: list[int], rounds: int, repeats: int) -> dict[str, Any]:
    """Both loops at each size, side by side; the layer numba ran the parallel one on."""
    figures = {}
    for size in sizes:
        g, out = np.random.default_rng(0).random((2, size))
        serial(g, out), parallel(g, out)  # compile outside the clock
        loops = {"serial": serial, "parallel": parallel}
        timings = measure_side_by_side(
            {name: (lambda loop=loop, g=g, out=out: loop(g, out), None) for name, loop in loops.items()},
            rounds=rounds,
            repeats=repeats,
            min_time=0.02,
        )
        figures[str(size)] = {name: [t.median, t.high] for name, t in timings.items()}
    return {"layer": numba.threading_layer(), "figures": figures}


if __name__ == "__main__":
    sizes, rounds, repeats = json.loads(sys.argv[1])
    print(json.dumps(measure(sizes, rounds, repeats)))

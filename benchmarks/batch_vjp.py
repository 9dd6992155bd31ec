"""The batch VJP of the lecture's layer against numpy's forward pass alone.

f(X) = relu(X @ W.T + b) for a minibatch X of 100 x 4096 and W of 2048 x 4096 (float64), and one
cotangent U of f(X)'s shape: the VJP Uᵀ J_f(X) costs the forward's matrix product plus one more
(``(U masked by relu) @ W``), so about twice numpy's forward is what any reverse mode must spend. tape's
goal is at most 2x numpy's forward-only time. The VJP written by hand in numpy (forward, then the masked
product) is the practical floor; PyTorch, JAX (``jit``), HIPS autograd and MyGrad run the same VJP when
installed. Every result is checked against the hand-written VJP before anything is timed, and all cases
are measured in turns (``measure_side_by_side``) because the machine is shared.

python -m benchmarks.batch_vjp            # full repeats
python -m benchmarks.batch_vjp --quick    # a smaller layer, fewer repeats
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import peers
from benchmarks.console import suite_main
from benchmarks.timing import Timing, measure_side_by_side, print_table, timing_rows
from benchmarks.vjp_vs_jacobian import METHODS, Layer, analytic_vjp, make_layer

INPUTS = 4096  # -> 2048 outputs
BATCH = 100
TARGET = 2.0  # tape's batch VJP over numpy's forward, at most
NUMPY_FORWARD = "numpy forward only"
NUMPY_BY_HAND = "numpy by hand VJP"
TAPE = "tape VJP"


def _numpy_forward(layer: Layer) -> Callable[[], np.ndarray]:
    weight, bias, x = layer.weight, layer.bias, layer.x
    return lambda: np.maximum(x @ weight.T + bias, 0.0)


def cases(layer: Layer) -> tuple[dict[str, Callable[[], Any]], list[str]]:
    """numpy's forward, then every VJP method of ``vjp_vs_jacobian`` whose library is installed; and the
    peer modules that are not."""
    functions: dict[str, Callable[[], Any]] = {NUMPY_FORWARD: _numpy_forward(layer)}
    expected = analytic_vjp(layer)
    vjps = [method for method in METHODS if method.kind == "VJP"]
    for method in vjps:
        if method.installed:
            run = method.prepare(layer)
            np.testing.assert_allclose(run(), expected, rtol=1e-9, atol=1e-9, err_msg=method.name)
            functions[method.name] = run
    return functions, peers.not_installed(method.module for method in vjps)


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every case side by side; print the table and return seconds and ratios to numpy's forward."""
    layer = make_layer(INPUTS // 8 if quick else INPUTS, batch=BATCH)
    functions, missing = cases(layer)
    peers.note_not_installed(missing)
    timings: dict[str, Timing] = measure_side_by_side(
        {name: (function, None) for name, function in functions.items()},
        rounds=2 if quick else 3,
        repeats=3 if quick else 5,
        min_time=0.02 if quick else 0.2,
    )
    floor = timings[NUMPY_FORWARD].median
    ratio = timings[TAPE].median / floor
    outputs, inputs = layer.weight.shape
    print_table(
        f"Batch VJP of relu(X @ W.T + b), X {BATCH} x {inputs}, W {outputs} x {inputs}, float64",
        ["case", "median", "spread", "vs numpy forward"],
        timing_rows(timings, floor),
        f"tape's batch VJP is {ratio:.2f}x numpy's forward (goal: at most {TARGET:g}x)",
    )
    return {
        "inputs": inputs,
        "outputs": outputs,
        "batch": BATCH,
        "seconds": {name: t.median for name, t in timings.items()},
        "over_numpy_forward": {name: t.median / floor for name, t in timings.items()},
        "target": TARGET,
        "skipped": missing,
    }


if __name__ == "__main__":
    raise SystemExit(suite_main("batch_vjp", __doc__, run))

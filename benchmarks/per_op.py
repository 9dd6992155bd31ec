"""Per-op overhead: a chain of 200 elementwise ops on shape-(8,) arrays, forward and forward+backward.

At this size numpy's own work is tiny, so the figures show what recording, dispatch and the reverse sweep
cost per op. numpy's forward-only time is the floor; PyTorch, HIPS autograd and MyGrad run the same chain
when installed. tape also runs in anomaly mode (``tape.detect_anomaly``: a stack walk per op recorded, a
finiteness test per cotangent), which shows what the mode costs when on; off, it costs a flag test.

python -m benchmarks.per_op            # five rounds
python -m benchmarks.per_op --quick    # two rounds, fewer repeats
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import tape
from benchmarks import peers
from benchmarks.console import suite_main
from benchmarks.timing import Timing, measure_side_by_side, print_table, timing_rows

CHAIN_LENGTH = 200
SIZE = 8


def chain(x: Any, sin: Callable[[Any], Any] = np.sin, tanh: Callable[[Any], Any] = np.tanh) -> Any:
    """200 elementwise ops: sin, scale, shift, tanh, repeated."""
    for _ in range(CHAIN_LENGTH // 4):
        x = tanh(sin(x) * 1.01 + 0.5)
    return x


def _tape_cases(x0: np.ndarray) -> dict[str, Callable[[], Any]]:
    seed = np.ones(SIZE)

    def forward() -> Any:
        return chain(tape.tensor(x0, requires_grad=True))

    def forward_backward() -> Any:
        x = tape.tensor(x0, requires_grad=True)
        chain(x).backward(seed)
        return x.grad

    def in_anomaly_mode() -> Any:
        with tape.detect_anomaly():
            return forward_backward()

    return {
        "tape forward": forward,
        "tape forward+backward": forward_backward,
        "tape forward+backward, anomaly mode": in_anomaly_mode,
    }


def _torch_cases(x0: np.ndarray) -> dict[str, Callable[[], Any]]:
    import torch

    x_torch = torch.tensor(x0)
    seed_torch = torch.ones(SIZE, dtype=torch.float64)

    def torch_step() -> Any:
        x = x_torch.clone().requires_grad_()
        chain(x, torch.sin, torch.tanh).backward(seed_torch)
        return x.grad

    return {"PyTorch forward+backward": torch_step}


def _autograd_cases(x0: np.ndarray) -> dict[str, Callable[[], Any]]:
    import autograd
    import autograd.numpy as anp

    vjp = autograd.grad(lambda x: anp.sum(chain(x, anp.sin, anp.tanh)))
    return {"autograd forward+backward": lambda: vjp(x0)}


def _mygrad_cases(x0: np.ndarray) -> dict[str, Callable[[], Any]]:
    import mygrad

    def mygrad_step() -> Any:
        x = mygrad.tensor(x0)
        chain(x, mygrad.sin, mygrad.tanh).backward(np.ones(SIZE))
        return x.grad

    return {"MyGrad forward+backward": mygrad_step}


PEER_CASES = {"torch": _torch_cases, "autograd": _autograd_cases, "mygrad": _mygrad_cases}


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every case side by side; print the table and return the figures (µs per op)."""
    x0 = np.random.default_rng(0).random(SIZE)
    cases: dict[str, Callable[[], Any]] = {"numpy forward only": lambda: chain(x0)}
    cases.update(_tape_cases(x0))
    peer_cases, missing = peers.installed_cases(PEER_CASES, x0)
    cases.update(peer_cases)
    peers.note_not_installed(missing)
    # In turns, several rounds over: the shared machine's speed drifts by 2x within minutes.
    measured = measure_side_by_side(
        {name: (case, None) for name, case in cases.items()},
        rounds=2 if quick else 5,
        repeats=3 if quick else 5,
        min_time=0.02 if quick else 0.05,
    )
    timings: dict[str, Timing] = {name: t.scaled(CHAIN_LENGTH) for name, t in measured.items()}
    print_table(
        f"Per-op overhead: chain of {CHAIN_LENGTH} elementwise ops on shape ({SIZE},), float64",
        ["case", "per op (median)", "spread", "vs numpy forward"],
        timing_rows(timings, timings["numpy forward only"].median),
    )
    return {
        name: {"median_us": t.median * 1e6, "low_us": t.low * 1e6, "high_us": t.high * 1e6}
        for name, t in timings.items()
    }


if __name__ == "__main__":
    raise SystemExit(suite_main("per_op", __doc__, run))

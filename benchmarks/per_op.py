"""Per-op overhead: a chain of 200 elementwise ops on shape-(8,) arrays, forward and forward+backward.

At this size numpy's own work is tiny, so the figures show what recording, dispatch and the reverse sweep
cost per op. numpy's forward-only time is the floor; PyTorch, HIPS autograd and MyGrad run the same chain
when installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

import tape
from benchmarks.timing import Timing, format_time, measure_side_by_side, print_table

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

    return {"tape forward": forward, "tape forward+backward": forward_backward}


def _peer_cases(x0: np.ndarray) -> tuple[dict[str, Callable[[], Any]], list[str]]:
    cases: dict[str, Callable[[], Any]] = {}
    missing = []
    if importlib.util.find_spec("torch"):
        import torch

        x_torch = torch.tensor(x0)
        seed_torch = torch.ones(SIZE, dtype=torch.float64)

        def torch_step() -> Any:
            x = x_torch.clone().requires_grad_()
            chain(x, torch.sin, torch.tanh).backward(seed_torch)
            return x.grad

        cases["PyTorch forward+backward"] = torch_step
    else:
        missing.append("torch")
    if importlib.util.find_spec("autograd"):
        import autograd
        import autograd.numpy as anp

        vjp = autograd.grad(lambda x: anp.sum(chain(x, anp.sin, anp.tanh)))
        cases["autograd forward+backward"] = lambda: vjp(x0)
    else:
        missing.append("autograd")
    if importlib.util.find_spec("mygrad"):
        import mygrad

        def mygrad_step() -> Any:
            x = mygrad.tensor(x0)
            chain(x, mygrad.sin, mygrad.tanh).backward(np.ones(SIZE))
            return x.grad

        cases["MyGrad forward+backward"] = mygrad_step
    else:
        missing.append("mygrad")
    return cases, missing


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every case side by side; print the table and return the figures (µs per op)."""
    x0 = np.random.default_rng(0).random(SIZE)
    cases: dict[str, Callable[[], Any]] = {"numpy forward only": lambda: chain(x0)}
    cases.update(_tape_cases(x0))
    peers, missing = _peer_cases(x0)
    cases.update(peers)
    # In turns, several rounds over: the shared machine's speed drifts by 2x within minutes.
    measured = measure_side_by_side(
        {name: (case, None) for name, case in cases.items()},
        rounds=2 if quick else 5,
        repeats=3 if quick else 5,
        min_time=0.02 if quick else 0.05,
    )
    timings: dict[str, Timing] = {name: t.scaled(CHAIN_LENGTH) for name, t in measured.items()}
    floor = timings["numpy forward only"].median
    rows = [
        [
            name,
            format_time(t.median),
            f"{format_time(t.low)} .. {format_time(t.high)}",
            f"{t.median / floor:.1f}x",
        ]
        for name, t in timings.items()
    ]
    note = f"peers not installed, skipped: {', '.join(missing)}" if missing else ""
    print_table(
        f"Per-op overhead: chain of {CHAIN_LENGTH} elementwise ops on shape ({SIZE},), float64",
        ["case", "per op (median)", "spread", "vs numpy forward"],
        rows,
        note,
    )
    return {
        name: {"median_us": t.median * 1e6, "low_us": t.low * 1e6, "high_us": t.high * 1e6}
        for name, t in timings.items()
    }


if __name__ == "__main__":
    run()

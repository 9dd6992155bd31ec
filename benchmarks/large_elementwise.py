"""Large arrays, where numpy's own work dominates: ``sum(tanh(x) * sin(x) + x**2)`` for x of 10^6 float64.

numpy's forward pass alone is the floor; every other case is forward+backward (the gradient with respect
to x) and is given as a multiple of that floor. tape's goal is at most 1.5 times numpy's forward. The
gradient written by hand in numpy, reusing the forward's tanh and sin, shows what any reverse mode on
numpy's ufuncs must at least spend (the backward still needs cos). tape's forward while recording is
timed too, so that the table shows what the backward sweep adds. The peers (PyTorch at its own thread
count and at one, HIPS autograd, MyGrad, JAX under ``jit``) run the same function when installed. Every
gradient is checked against the closed form before anything is timed, and the cases are measured in
turns, several rounds over, because the machine is shared.

python -m benchmarks.large_elementwise             # full repeats
python -m benchmarks.large_elementwise --quick     # fewer repeats
python -m benchmarks.large_elementwise --profile   # also cProfile tape's backward (top by own time)
"""

from __future__ import annotations

import cProfile
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tape
from benchmarks import peers
from benchmarks.console import progress_bar, run_and_report, suite_command_line
from benchmarks.timing import format_time, measure_side_by_side, print_table, profile_text, timing_rows
from benchmarks.training_step import torch_threads

SIZE = 10**6
TARGET = 1.5  # tape forward+backward over numpy's forward, at most
NUMPY_FLOOR = "numpy forward only"
NUMPY_BY_HAND = "numpy forward + hand-written gradient"
TAPE = "tape forward+backward"
TAPE_FORWARD = "tape forward (recording)"
TORCH_ONE_THREAD = "PyTorch forward+backward, 1 thread"

Case = Callable[[], Any]


def function(x: Any, tanh: Callable[[Any], Any] = np.tanh, sin: Callable[[Any], Any] = np.sin) -> Any:
    """``sum(tanh(x) * sin(x) + x**2)``, written once for numpy, tape (through dispatch) and the peers."""
    return (tanh(x) * sin(x) + x**2).sum()


def gradient(x: np.ndarray) -> np.ndarray:
    """The closed form: ``(1 - tanh^2) sin + tanh cos + 2 x``, to check every library against."""
    t = np.tanh(x)
    return (1 - t * t) * np.sin(x) + t * np.cos(x) + 2 * x


def numpy_forward_backward(x: np.ndarray) -> tuple[Any, np.ndarray]:
    """The value and its gradient written by hand in numpy, reusing tanh and sin from the forward: what any
    reverse mode built on numpy's ufuncs must at least spend (the backward still needs cos)."""
    t = np.tanh(x)
    s = np.sin(x)
    value = (t * s + x**2).sum()
    return value, (1 - t * t) * s + t * np.cos(x) + 2 * x


def _tape_cases(x0: np.ndarray) -> dict[str, Case]:
    def forward() -> Any:
        return function(tape.tensor(x0, requires_grad=True))

    def forward_backward() -> Any:
        x = tape.tensor(x0, requires_grad=True)
        function(x).backward()
        return x.grad

    return {TAPE_FORWARD: forward, TAPE: forward_backward}


def _torch_cases(x0: np.ndarray) -> dict[str, Case]:
    import torch

    x_torch = torch.from_numpy(x0)

    def torch_case() -> Any:
        x = x_torch.detach().requires_grad_()
        function(x, torch.tanh, torch.sin).backward()
        return x.grad.numpy()

    return {"PyTorch forward+backward": torch_case, TORCH_ONE_THREAD: torch_case}


def _autograd_cases(x0: np.ndarray) -> dict[str, Case]:
    import autograd
    import autograd.numpy as anp

    autograd_gradient = autograd.grad(lambda x: function(x, anp.tanh, anp.sin))
    return {"autograd forward+backward": lambda: autograd_gradient(x0)}


def _mygrad_cases(x0: np.ndarray) -> dict[str, Case]:
    import mygrad

    def mygrad_case() -> Any:
        x = mygrad.tensor(x0)
        function(x, mygrad.tanh, mygrad.sin).backward()
        return x.grad

    return {"MyGrad forward+backward": mygrad_case}


def _jax_cases(x0: np.ndarray) -> dict[str, Case]:
    import jax

    jax.config.update("jax_enable_x64", True)  # the problem is float64
    jax_gradient = jax.jit(jax.grad(lambda x: function(x, jax.numpy.tanh, jax.numpy.sin)))
    x_jax = jax.numpy.asarray(x0)
    return {"JAX jit(grad)": lambda: np.asarray(jax_gradient(x_jax).block_until_ready())}


PEER_CASES = {"torch": _torch_cases, "jax": _jax_cases, "autograd": _autograd_cases, "mygrad": _mygrad_cases}


def run(quick: bool = False, size: int = SIZE) -> dict[str, Any]:
    """Check every gradient, time every case, print the table and return the figures (seconds per call).

    Examples
    --------
    >>> figures = run(quick=True, size=1000)  # doctest: +SKIP
    >>> figures["cases"]["numpy forward only"]["ratio_to_numpy_forward"]  # doctest: +SKIP
    1.0
    """
    x0 = np.random.default_rng(0).uniform(-3, 3, size)
    cases: dict[str, Case] = {
        NUMPY_FLOOR: lambda: function(x0),
        NUMPY_BY_HAND: lambda: numpy_forward_backward(x0)[1],
    }
    cases.update(_tape_cases(x0))
    peer_cases, missing = peers.installed_cases(PEER_CASES, x0)
    cases.update(peer_cases)
    peers.note_not_installed(missing)
    expected = gradient(x0)
    for name, case in cases.items():
        if name in (NUMPY_FLOOR, TAPE_FORWARD):
            continue
        np.testing.assert_allclose(np.asarray(case()), expected, rtol=1e-10, atol=1e-12, err_msg=name)
    threads = {TORCH_ONE_THREAD: lambda: torch_threads(1)}
    functions = {name: (case, threads.get(name)) for name, case in cases.items()}
    rounds = 2 if quick else 3
    with progress_bar(rounds * len(cases), "large_elementwise") as progress:
        timings = measure_side_by_side(functions, rounds, 3 if quick else 5, 0.1 if quick else 0.3, progress)
    floor = timings[NUMPY_FLOOR].median
    ratio = timings[TAPE].median / floor
    backward = timings[TAPE].median - timings[TAPE_FORWARD].median
    notes = [
        f"target tape forward+backward <= {TARGET:g}x numpy forward: {'met' if ratio <= TARGET else 'MISSED'}"
        " "
        f"({ratio:.2f}x); tape's backward alone ~{format_time(backward)} = "
        f"{backward / timings[TAPE_FORWARD].median:.2f}x its recorded forward",
    ]
    if hasattr(os, "getloadavg"):
        notes.append(f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_table(
        f"Large elementwise: sum(tanh(x) * sin(x) + x**2), x of {size:,} float64, gradient in x",
        ["case", "time (median)", "spread", "vs numpy forward"],
        timing_rows(timings, floor),
        "\n  ".join(notes),
    )
    return {
        "size": size,
        "target_vs_numpy_forward": TARGET,
        "tape_vs_numpy_forward": ratio,
        "skipped": missing,
        "cases": {
            name: {
                "median_s": t.median,
                "low_s": t.low,
                "high_s": t.high,
                "ratio_to_numpy_forward": t.median / floor,
            }
            for name, t in timings.items()
        },
    }


def profile_tape_backward(size: int = SIZE, calls: int = 20, top: int = 15) -> str:
    """cProfile only the backward sweeps of ``calls`` runs (forwards unprofiled); top entries by tottime.

    Examples
    --------
    >>> "tottime" in profile_tape_backward(size=100, calls=1, top=3)
    True
    """
    x0 = np.random.default_rng(0).uniform(-3, 3, size)
    profiler = cProfile.Profile()
    for _ in range(calls):
        x = tape.tensor(x0, requires_grad=True)
        loss = function(x)
        profiler.enable()
        loss.backward()
        profiler.disable()
    return profile_text(profiler, top)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.large_elementwise [--quick] [--profile] [--out DIR]``."""
    options = suite_command_line("large_elementwise", __doc__, profile="tape's backward").parse_args(argv)
    run_and_report("large_elementwise", run, options.quick, options.out)
    if options.profile:
        print(f"\ncProfile of tape's backward sweep, 20 calls, x of {SIZE:,} float64, by own time:")
        print(profile_tape_backward())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A spectral power loss through ``np.fft.rfft``: tape's forward+backward against numpy's forward alone.

The loss is ``L = sum(w * abs(rfft(x)) ** 2)`` on a float64 signal of 2**16 samples with fixed positive
weights ``w``, the kind of term a spectral regulariser adds. numpy's forward-only time is the floor; tape
records the FFT, the power and the sum, then runs their VJPs (one inverse FFT for the rfft); PyTorch's
``torch.fft.rfft`` runs the same loss when installed, at its own thread count and at one thread (on a
shared machine its threads wait on each other), and its gradient is checked against tape's.

python -m benchmarks --suite fft       # five rounds
python -m benchmarks.fft --quick       # two rounds, fewer repeats
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import tape
from benchmarks import peers
from benchmarks.console import suite_main
from benchmarks.timing import measure_side_by_side, print_table, timing_rows
from benchmarks.training_step import torch_threads

SAMPLES = 2**16
TARGET = 2.5  # tape's forward+backward over numpy's forward alone, at most


def problem(samples: int = SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """The signal and the weights of its ``samples // 2 + 1`` frequency bins."""
    rng = np.random.default_rng(0)
    return rng.standard_normal(samples), rng.uniform(0.5, 1.5, samples // 2 + 1)


def spectral_power(x: Any, weights: Any, rfft: Callable[[Any], Any] = np.fft.rfft) -> Any:
    """``sum(weights * abs(rfft(x)) ** 2)``."""
    return (weights * abs(rfft(x)) ** 2).sum()


def _tape_case(x0: np.ndarray, weights: np.ndarray) -> Callable[[], Any]:
    constant = tape.tensor(weights)  # versioned by records, not copied as a plain array they read would be

    def forward_backward() -> Any:
        x = tape.tensor(x0, requires_grad=True)
        spectral_power(x, constant).backward()
        return x.grad

    return forward_backward


def _torch_cases(x0: np.ndarray, weights: np.ndarray) -> dict[str, Callable[[], Any]]:
    import torch

    x_torch, weights_torch = torch.from_numpy(x0), torch.from_numpy(weights)

    def forward_backward() -> Any:
        x = x_torch.clone().requires_grad_()
        spectral_power(x, weights_torch, torch.fft.rfft).backward()
        return x.grad

    return {"PyTorch forward+backward": forward_backward}


PEER_CASES = {"torch": _torch_cases}


def run(quick: bool = False, samples: int = SAMPLES) -> dict[str, Any]:
    """Measure every case side by side; print the table and return the figures (ms per call)."""
    x0, weights = problem(samples)
    tape_step = _tape_case(x0, weights)
    cases: dict[str, Callable[[], Any]] = {
        "numpy forward only": lambda: spectral_power(x0, weights),
        "tape forward+backward": tape_step,
    }
    peer_cases, missing = peers.installed_cases(PEER_CASES, x0, weights)
    cases.update(peer_cases)
    peers.note_not_installed(missing)
    functions: dict[str, tuple[Callable[[], Any], Any]] = {name: (case, None) for name, case in cases.items()}
    note = ""
    agreement = None
    torch_step = cases.get("PyTorch forward+backward")
    if torch_step is not None:
        functions["PyTorch 1 thread"] = (torch_step, lambda: torch_threads(1))
        ours, theirs = tape_step(), torch_step().numpy()
        agreement = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
        note = (
            f"tape's gradient agrees with PyTorch's to {agreement:.1e} (largest difference / largest value)"
        )
    measured = measure_side_by_side(
        functions,
        rounds=2 if quick else 5,
        repeats=3 if quick else 5,
        min_time=0.02 if quick else 0.1,
    )
    print_table(
        f"Spectral power loss sum(w * abs(rfft(x)) ** 2), {samples} samples, float64 (in turns, median)",
        ["case", "median", "spread", "vs numpy forward"],
        timing_rows(measured, measured["numpy forward only"].median),
        note,
    )
    ratio, verdict = target_verdict(measured["tape forward+backward"], measured["numpy forward only"])
    print(f"  target tape <= {TARGET:g}x numpy's forward: {verdict}")
    return {
        "samples": samples,
        "cases": {
            name: {"median_ms": t.median * 1e3, "low_ms": t.low * 1e3, "high_ms": t.high * 1e3}
            for name, t in measured.items()
        },
        "target_vs_numpy_forward": TARGET,
        "ratio_vs_numpy_forward": ratio,
        "verdict": verdict,
        "max_relative_difference_from_torch": agreement,
        "skipped": missing,
    }


def target_verdict(ours: Any, floor: Any) -> tuple[float, str]:
    """The ratio of medians, and "met" only when even tape's slowest repeat clears the target ("within
    the spread" when the median does and the slowest does not)."""
    ratio, slowest = ours.median / floor.median, ours.high / floor.median
    if slowest <= TARGET:
        return ratio, f"met ({ratio:.2f}x, slowest repeat {slowest:.2f}x)"
    if ratio <= TARGET:
        return ratio, f"within the spread ({ratio:.2f}x, slowest repeat {slowest:.2f}x)"
    return ratio, f"MISSED ({ratio:.2f}x)"


if __name__ == "__main__":
    raise SystemExit(suite_main("fft", __doc__, run))

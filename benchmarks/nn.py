"""One training step of two ``tape.nn`` layers, tape beside PyTorch: an LSTM and a Transformer encoder layer.

- LSTM: 1 layer, input 64, hidden 128, on a sequence of 50 steps, batch 32 (input ``(50, 32, 64)``);
- TransformerEncoderLayer: d_model 128, 4 heads, feed-forward 512, no dropout, on a batch of 16 sequences of
  64 tokens (``batch_first``, input ``(16, 64, 128)``).

A step is ``zero_grad``, forward, the mean squared error against a fixed random target of the output's
shape, ``backward`` and ``Adam.step``, in float32 and float64. tape and PyTorch start from the same
parameters (tape's initialization, loaded into torch's module through its ``state_dict``) and the same data;
their first losses must agree before anything is timed. Each runs at its default thread count and at one
thread (numpy's BLAS limited through threadpoolctl, ``torch.set_num_threads(1)``), as
``benchmarks.training_step`` does; the cases are measured in interleaved rounds (``measure_side_by_side``),
each after a short pause that lets the thread pools of the case before fall idle. The issue's target:
tape's LSTM step at most 1.5 times PyTorch's.

python -m benchmarks --suite nn            # full sizes and repeats (a few minutes)
python -m benchmarks --suite nn --quick    # small sizes, few repeats (seconds)
python -m benchmarks.nn --profile          # also cProfile tape's LSTM step at one thread
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import tape
import tape.nn as nn
from benchmarks import peers
from benchmarks.console import progress_bar, run_and_report, suite_command_line
from benchmarks.timing import (
    Timing,
    format_spread,
    format_time,
    measure_side_by_side,
    print_table,
    profile_calls,
)
from benchmarks.training_step import _threads_note, blas_threads, torch_threads

DTYPES = (np.float32, np.float64)
TAPE = "tape"
TAPE_ONE_THREAD = "tape, 1 thread"
TORCH = "PyTorch"
TORCH_ONE_THREAD = "PyTorch, 1 thread"
PAIRS = ((TAPE, TORCH), (TAPE_ONE_THREAD, TORCH_ONE_THREAD))  # each tape case and its PyTorch twin
TARGETS = {"lstm": 1.5}  # tape's step time over PyTorch's, at most
LEARNING_RATE = 1e-3
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}  # first losses, relative
ROUNDS, REPEATS, MIN_TIME, SETTLE = 3, 5, 0.2, 0.25
QUICK_ROUNDS, QUICK_REPEATS, QUICK_MIN_TIME = 2, 3, 0.02

Step = Callable[[], Any]


@dataclass(frozen=True)
class Workload:
    """One layer and its sizes: ``sizes`` are the keyword arguments of both libraries' constructors."""

    key: str
    title: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    sizes: dict[str, int]


def workloads(quick: bool) -> tuple[Workload, ...]:
    """The LSTM and the Transformer encoder layer, at the issue's sizes or (``quick``) small ones.

    Examples
    --------
    >>> [w.input_shape for w in workloads(quick=False)]
    [(50, 32, 64), (16, 64, 128)]
    """
    steps, batch, features, hidden = (10, 8, 16, 32) if quick else (50, 32, 64, 128)
    lstm = Workload(
        "lstm",
        f"LSTM {features} -> {hidden}, 1 layer, sequence {steps}, batch {batch}",
        (steps, batch, features),
        (steps, batch, hidden),
        {"input_size": features, "hidden_size": hidden},
    )
    batch, length, d_model, heads, feedforward = (4, 16, 32, 4, 64) if quick else (16, 64, 128, 4, 512)
    encoder = Workload(
        "transformer",
        f"TransformerEncoderLayer d_model {d_model}, {heads} heads, feed-forward {feedforward}, "
        f"batch {batch} x {length} tokens",
        (batch, length, d_model),
        (batch, length, d_model),
        {"d_model": d_model, "nhead": heads, "dim_feedforward": feedforward},
    )
    return lstm, encoder


@dataclass(frozen=True)
class Problem:
    """Input, target and initial parameters (tape's ``state_dict``, torch's names) of one workload."""

    workload: Workload
    x: np.ndarray
    target: np.ndarray
    parameters: dict[str, np.ndarray]


def tape_model(workload: Workload, dtype: Any, rng: np.random.Generator | None = None) -> nn.Module:
    """The workload's layer as ``tape.nn`` builds it (no dropout)."""
    if workload.key == "lstm":
        return nn.LSTM(**workload.sizes, dtype=dtype, rng=rng)
    return nn.TransformerEncoderLayer(**workload.sizes, dropout=0.0, batch_first=True, dtype=dtype, rng=rng)


def make_problem(workload: Workload, dtype: Any, seed: int = 0) -> Problem:
    """Random data and target, and the parameters of a layer drawn by tape's initialization."""
    rng = np.random.default_rng(seed)
    parameters = dict(tape_model(workload, dtype, rng).state_dict())
    x = rng.standard_normal(workload.input_shape).astype(dtype)
    target = rng.standard_normal(workload.output_shape).astype(dtype)
    return Problem(workload, x, target, parameters)


def _output(result: Any) -> Any:
    # An LSTM returns (output, (h_n, c_n)); the encoder layer returns its output.
    return result[0] if isinstance(result, tuple) else result


def tape_step(problem: Problem) -> Step:
    """``zero_grad``, forward, ``MSELoss``, ``backward`` and ``Adam.step`` with ``tape.nn``."""
    model = tape_model(problem.workload, problem.x.dtype)
    model.load_state_dict({name: value.copy() for name, value in problem.parameters.items()})
    optimizer = nn.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    criterion = nn.MSELoss()
    x, target = problem.x, problem.target

    def step() -> Any:
        optimizer.zero_grad()
        loss = criterion(_output(model(x)), target)
        loss.backward()
        optimizer.step()
        return loss

    return step


def torch_step(problem: Problem) -> Step:
    """The same step with torch.nn, torch.nn.MSELoss and torch.optim.Adam (eager)."""
    import torch

    workload = problem.workload
    dtype = getattr(torch, np.dtype(problem.x.dtype).name)
    if workload.key == "lstm":
        model = torch.nn.LSTM(**workload.sizes, dtype=dtype)
    else:
        model = torch.nn.TransformerEncoderLayer(**workload.sizes, dropout=0.0, batch_first=True, dtype=dtype)
    model.load_state_dict(
        {name: torch.from_numpy(value.copy()) for name, value in problem.parameters.items()}
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    criterion = torch.nn.MSELoss()
    x, target = torch.from_numpy(problem.x), torch.from_numpy(problem.target)

    def step() -> Any:
        optimizer.zero_grad()
        loss = criterion(_output(model(x)), target)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def cases() -> dict[str, tuple[Callable[[Problem], Step], Callable[[], Any] | None]]:
    """Case name -> (step builder, thread setting or None for the library's default), for what runs here."""
    found: dict[str, tuple[Callable[[Problem], Step], Callable[[], Any] | None]] = {
        TAPE: (tape_step, None),
        TAPE_ONE_THREAD: (tape_step, lambda: blas_threads(1)),
    }
    if peers.installed("torch"):
        found[TORCH] = (torch_step, None)
        found[TORCH_ONE_THREAD] = (torch_step, lambda: torch_threads(1))
    return found


def _loss_value(loss: Any) -> float:
    return float(np.asarray(loss.data if isinstance(loss, tape.Tensor) else loss))


def measure_workload(
    workload: Workload, dtype: Any, quick: bool, progress: Any = None
) -> tuple[dict[str, Timing], dict[str, float]]:
    """Build every case, check that their first losses agree, then time them side by side."""
    problem = make_problem(workload, dtype)
    functions = {}
    first_losses = {}
    for name, (build, threads) in cases().items():
        step = build(problem)
        with threads() if threads is not None else contextlib.nullcontext():
            first_losses[name] = _loss_value(step())  # from the initial parameters, before any update
        functions[name] = (step, threads)
    reference = first_losses.get(TORCH, first_losses[TAPE])
    for name, loss in first_losses.items():
        if not abs(loss - reference) <= TOLERANCE[np.dtype(dtype)] * max(1.0, abs(reference)):
            raise AssertionError(
                f"nn: {name}'s first {workload.key} loss {loss} differs from {reference} "
                f"({np.dtype(dtype).name}): the two layers do not compute the same function"
            )
    timings = measure_side_by_side(
        functions,
        rounds=QUICK_ROUNDS if quick else ROUNDS,
        repeats=QUICK_REPEATS if quick else REPEATS,
        min_time=QUICK_MIN_TIME if quick else MIN_TIME,
        progress=progress,
        settle=0.0 if quick else SETTLE,
    )
    return timings, first_losses


def ratios(timings: dict[str, Timing]) -> dict[str, float]:
    """tape's median over PyTorch's at default threads and at one thread, where both were measured.

    Examples
    --------
    >>> ratios({TAPE: Timing(3.0, 2.0, 4.0), TORCH: Timing(2.0, 1.0, 3.0)})
    {'default_threads': 1.5}
    """
    return {
        label: timings[ours].median / timings[theirs].median
        for label, (ours, theirs) in zip(("default_threads", "one_thread"), PAIRS, strict=True)
        if ours in timings and theirs in timings
    }


def _rows(timings: dict[str, Timing]) -> list[list[str]]:
    """One row per case; with PyTorch measured, each row's time over PyTorch's at the same threads."""
    twin = {case: torch for tape_case, torch in PAIRS for case in (tape_case, torch)}
    rows = []
    for name, timing in timings.items():
        row = [name, format_time(timing.median), format_spread(timing.low, timing.high)]
        if TORCH in timings:
            row.append(f"{timing.median / timings[twin[name]].median:.2f}x")
        rows.append(row)
    return rows


def _target_text(key: str, measured: dict[str, float]) -> str:
    if key not in TARGETS or not measured:
        return ""
    verdicts = [
        f"{label.replace('_', ' ')} {'met' if ratio <= TARGETS[key] else 'MISSED'} ({ratio:.2f}x)"
        for label, ratio in measured.items()
    ]
    return f"target tape <= {TARGETS[key]:g}x PyTorch: " + "; ".join(verdicts)


def run(quick: bool = False) -> dict[str, Any]:
    """Time both workloads in both dtypes; print one table each; return the figures (``nn.json``).

    Examples
    --------
    >>> figures = run(quick=True)  # doctest: +SKIP
    >>> sorted(figures["workloads"]["lstm"])  # doctest: +SKIP
    ['float32', 'float64']
    """
    missing = peers.note_not_installed(["torch"])
    threads_note = _threads_note()
    chosen = workloads(quick)
    rounds = QUICK_ROUNDS if quick else ROUNDS
    measured = []
    with progress_bar(len(chosen) * len(DTYPES) * len(cases()) * rounds, "nn") as progress:
        for workload in chosen:
            for dtype in DTYPES:
                measured.append(
                    (workload, np.dtype(dtype).name, *measure_workload(workload, dtype, quick, progress))
                )
    results: dict[str, Any] = {"targets_vs_pytorch": TARGETS, "threads": threads_note, "skipped": missing}
    for workload, dtype, timings, first_losses in measured:
        header = ["case", "step (median)", "spread"]
        if TORCH in timings:
            header.append("vs PyTorch, same threads")
        notes = [_target_text(workload.key, ratios(timings)), threads_note]
        if quick:
            notes.append("small sizes (--quick)")
        print_table(
            f"Training step (forward, MSE, backward, Adam), {workload.title}, {dtype}",
            header,
            _rows(timings),
            "\n  ".join(note for note in notes if note),
        )
        results.setdefault("workloads", {}).setdefault(workload.key, {})[dtype] = {
            "title": workload.title,
            "cases": {
                name: {
                    "median_s": timing.median,
                    "low_s": timing.low,
                    "high_s": timing.high,
                    "first_loss": first_losses[name],
                }
                for name, timing in timings.items()
            },
            "tape_over_pytorch": ratios(timings),
        }
    return results


def profile_tape_step(key: str = "lstm", dtype: Any = np.float64, steps: int = 10, top: int = 25) -> str:
    """cProfile ``steps`` tape training steps of one workload (full sizes) at one BLAS thread; return the
    ``top`` entries by own time (tottime) as text.

    Examples
    --------
    >>> "tottime" in profile_tape_step(steps=1, top=3)  # doctest: +SKIP
    True
    """
    workload = next(w for w in workloads(quick=False) if w.key == key)
    step = tape_step(make_problem(workload, dtype))
    with blas_threads(1):
        return profile_calls(step, steps, top)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.nn [--quick] [--profile] [--out DIR]``."""
    options = suite_command_line("nn", __doc__ or "", profile="tape's LSTM step").parse_args(argv)
    run_and_report("nn", run, options.quick, options.out)
    if options.profile:
        for dtype in DTYPES:
            print(f"\ncProfile of 10 tape LSTM steps at one thread, {np.dtype(dtype).name}, by own time:")
            print(profile_tape_step("lstm", dtype))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``tape.compile`` against eager tape and the peers: per-op cost, large arrays, training steps, first call.

``tape.compile(fn)`` records fn's tape on the first call with each signature and replays it later as
generated straight-line code, one op on the surrounding tape. Four measurements, each case side by side in
one run (``measure_side_by_side``: interleaved rounds, the median of their medians, the fastest and slowest
repeat as the spread), with the ratio to PyTorch eager where PyTorch is installed:

1. per_op's chain of 200 elementwise ops on shape (8,), float64, forward+backward: tape eager, tape.compile,
   PyTorch eager, ``torch.compile`` (where it works here: it needs a C compiler, and its first compile
   takes tens of seconds on a cold cache, so ``--quick`` leaves it out) and JAX ``jit(value_and_grad)``;
2. large_elementwise's ``sum(tanh(x) * sin(x) + x**2)`` on 10^6 float64, forward+backward: numpy's forward
   alone (the floor), tape eager, tape.compile, PyTorch eager and JAX ``jit(value_and_grad)``;
3. training_step's MLP and CNN steps (float32; float64 too without ``--quick``): tape eager, tape with its
   loss compiled (``loss = compiled(x, y); loss.backward(); optimizer.step()``) and PyTorch eager;
4. the first call of a freshly compiled MLP step (recording and generating its code): in this process,
   after one eager step has warmed tape's own kernels, and in fresh processes (the import not timed), the
   second of which finds whatever caches the first left on disk.

Every gradient (or first loss) is checked against eager tape's (or numpy's) before anything is timed. PyTorch
runs at one thread (``torch.set_num_threads(1)``) and, in the training steps, numpy's BLAS under tape at one
thread too (threadpoolctl), as the other suites' one-thread cases; JAX runs at its default.

Targets:

- the chain: tape.compile at most 0.1x PyTorch eager;
- 10^6 elements: tape.compile forward+backward at most 1.0x numpy's forward alone;
- the training steps: tape.compile at most 0.85x PyTorch eager;
- the first call: under 1 s for the MLP step, and under 0.2 s in a second process.

python -m benchmarks --suite compile           # full repeats, torch.compile where it works
python -m benchmarks --suite compile --quick   # fewer repeats, float32 steps, no torch.compile
python -m benchmarks.compile --quick           # the same, run on its own
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import tape
import tape.nn as nn
from benchmarks import peers
from benchmarks.console import progress_bar, suite_main
from benchmarks.large_elementwise import function, gradient
from benchmarks.per_op import CHAIN_LENGTH, chain
from benchmarks.per_op import SIZE as CHAIN_SIZE
from benchmarks.per_op import _torch_cases as per_op_torch_cases
from benchmarks.timing import Timing, format_time, measure_side_by_side, print_table, timing_rows
from benchmarks.training_step import (
    LEARNING_RATE,
    Problem,
    blas_threads,
    make_problem,
    numpy_forward,
    tape_model,
    tape_step,
    torch_step,
    torch_threads,
)

SIZE = 10**6
TARGETS = {
    "chain": 0.1,  # tape.compile over PyTorch eager, at most
    "elementwise": 1.0,  # tape.compile forward+backward over numpy's forward alone, at most
    "training": 0.85,  # tape.compile over PyTorch eager, at most
    "first_call_s": 1.0,  # the first compiled MLP step, seconds
    "second_process_s": 0.2,  # the same in a second fresh process, seconds
}
NUMPY_FLOOR = "numpy forward only"
TAPE = "tape eager"
COMPILED = "tape.compile"
TORCH = "PyTorch eager"
TORCH_COMPILE = "torch.compile"
JAX = "JAX jit(value_and_grad)"
PEER_MODULES = ("torch", "jax")
REPOSITORY = Path(__file__).resolve().parent.parent
FRESH_PROCESS_CODE = (
    "from benchmarks.compile import first_call_in_fresh_process; first_call_in_fresh_process()"
)

Call = Callable[[], Any]
Threads = Callable[[], contextlib.AbstractContextManager[Any]] | None


def one_torch_thread() -> contextlib.AbstractContextManager[Any]:
    """PyTorch at one thread for the block (training_step's ``torch_threads(1)``)."""
    return torch_threads(1)


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """numpy's BLAS at one thread for the block, where threadpoolctl is installed (else no limit)."""
    if importlib.util.find_spec("threadpoolctl") is None:
        return contextlib.nullcontext()
    return blas_threads(1)


def _figures(timings: dict[str, Timing], **references: float) -> dict[str, dict[str, float]]:
    """Seconds per call of each case, and its ratio to each named reference."""
    return {
        name: {
            "median_s": t.median,
            "low_s": t.low,
            "high_s": t.high,
            **{f"ratio_to_{key}": t.median / value for key, value in references.items()},
        }
        for name, t in timings.items()
    }


def _verdict(what: str, ratio: float, target: float) -> str:
    return f"target {what} <= {target:g}x: {'met' if ratio <= target else 'MISSED'} ({ratio:.2f}x)"


def _measure(
    title: str, functions: dict[str, tuple[Call, Threads]], rounds: int, repeats: int, min_time: float
) -> dict[str, Timing]:
    with progress_bar(rounds * len(functions), title) as progress:
        return measure_side_by_side(functions, rounds, repeats, min_time, progress)


# -- 1. the 200-op chain -------------------------------------------------------------------------------------
def _chain_tape_cases(x0: np.ndarray) -> dict[str, Call]:
    seed = np.ones(CHAIN_SIZE)
    compiled = tape.compile(chain)

    def eager() -> Any:
        x = tape.tensor(x0, requires_grad=True)
        chain(x).backward(seed)
        return x.grad

    def replayed() -> Any:
        x = tape.tensor(x0, requires_grad=True)
        compiled(x).backward(seed)
        return x.grad

    return {TAPE: eager, COMPILED: replayed}


def _chain_torch_cases(x0: np.ndarray) -> dict[str, Call]:
    return {TORCH: per_op_torch_cases(x0)["PyTorch forward+backward"]}


def _chain_jax_cases(x0: np.ndarray) -> dict[str, Call]:
    import jax

    jax.config.update("jax_enable_x64", True)  # the chain is float64
    value_and_grad = jax.jit(jax.value_and_grad(lambda x: chain(x, jax.numpy.sin, jax.numpy.tanh).sum()))
    x_jax = jax.numpy.asarray(x0)
    return {JAX: lambda: np.asarray(jax.block_until_ready(value_and_grad(x_jax))[1])}


def torch_compile_case(x0: np.ndarray) -> tuple[Call, float]:
    """The chain under ``torch.compile``, forward+backward, and the seconds its first call (compiling) took.
    Raises whatever torch.compile raises where it cannot work (no C compiler, say)."""
    import torch

    compiled = torch.compile(lambda x: chain(x, torch.sin, torch.tanh))
    x_torch = torch.tensor(x0)
    seed = torch.ones(CHAIN_SIZE, dtype=torch.float64)

    def step() -> Any:
        x = x_torch.clone().requires_grad_()
        compiled(x).backward(seed)
        return x.grad

    start = time.perf_counter()
    with one_torch_thread():
        step()
    return step, time.perf_counter() - start


def measure_chain(quick: bool) -> dict[str, Any]:
    """Case 1: the chain, forward+backward, every case checked against eager tape's gradient, then timed."""
    x0 = np.random.default_rng(0).random(CHAIN_SIZE)
    cases = _chain_tape_cases(x0)
    peer_cases, _ = peers.installed_cases({"torch": _chain_torch_cases, "jax": _chain_jax_cases}, x0)
    cases.update(peer_cases)
    notes = []
    if peers.installed("torch"):
        if quick:
            notes.append(
                f"{TORCH_COMPILE} left out under --quick (its first compile can take tens of seconds)"
            )
        else:
            try:
                cases[TORCH_COMPILE], compile_seconds = torch_compile_case(x0)
                notes.append(f"{TORCH_COMPILE}'s first call (compiling) took {format_time(compile_seconds)}")
            except Exception as error:  # any failure: a missing compiler, an unsupported platform
                reason = (str(error).strip().splitlines() or [""])[0][:200]
                notes.append(f"{TORCH_COMPILE} does not work here: {type(error).__name__}: {reason}")
    expected = np.asarray(cases[TAPE]())
    for name, case in cases.items():
        np.testing.assert_allclose(np.asarray(case()), expected, rtol=1e-10, atol=1e-12, err_msg=name)
    torch_cases = {TORCH, TORCH_COMPILE}
    functions = {
        name: (case, one_torch_thread if name in torch_cases else None) for name, case in cases.items()
    }
    timings = _measure(
        "compile: chain",
        functions,
        rounds=2 if quick else 5,
        repeats=3 if quick else 5,
        min_time=0.02 if quick else 0.05,
    )
    header = ["case", "fwd+bwd (median)", "spread"]
    references = {}
    if TORCH in timings:
        header.append("vs PyTorch eager")
        references["pytorch_eager"] = timings[TORCH].median
        notes.insert(
            0,
            _verdict(
                "tape.compile / PyTorch eager",
                timings[COMPILED].median / timings[TORCH].median,
                TARGETS["chain"],
            ),
        )
    header.append("vs tape eager")
    references["tape_eager"] = timings[TAPE].median
    notes.append(
        f"per op: tape eager {format_time(timings[TAPE].median / CHAIN_LENGTH)}, "
        f"tape.compile {format_time(timings[COMPILED].median / CHAIN_LENGTH)}"
    )
    print_table(
        f"tape.compile, chain of {CHAIN_LENGTH} elementwise ops on shape ({CHAIN_SIZE},), float64, "
        "forward+backward",
        header,
        timing_rows(timings, *references.values()),
        "\n  ".join(notes),
    )
    return {"notes": notes, "cases": _figures(timings, **references)}


# -- 2. 10^6 elements ----------------------------------------------------------------------------------------
def _elementwise_tape_cases(x0: np.ndarray) -> dict[str, Call]:
    compiled = tape.compile(function)

    def eager() -> Any:
        x = tape.tensor(x0, requires_grad=True)
        function(x).backward()
        return x.grad

    def replayed() -> Any:
        x = tape.tensor(x0, requires_grad=True)
        compiled(x).backward()
        return x.grad

    return {TAPE: eager, COMPILED: replayed}


def _elementwise_torch_cases(x0: np.ndarray) -> dict[str, Call]:
    import torch

    x_torch = torch.from_numpy(x0)

    def eager() -> Any:
        x = x_torch.detach().requires_grad_()
        function(x, torch.tanh, torch.sin).backward()
        return x.grad

    return {TORCH: eager}


def _elementwise_jax_cases(x0: np.ndarray) -> dict[str, Call]:
    import jax

    jax.config.update("jax_enable_x64", True)  # the problem is float64
    value_and_grad = jax.jit(jax.value_and_grad(lambda x: function(x, jax.numpy.tanh, jax.numpy.sin)))
    x_jax = jax.numpy.asarray(x0)
    return {JAX: lambda: np.asarray(jax.block_until_ready(value_and_grad(x_jax))[1])}


def measure_elementwise(quick: bool, size: int) -> dict[str, Any]:
    """Case 2: ``sum(tanh(x) * sin(x) + x**2)``; each gradient checked against the closed form, then timed."""
    x0 = np.random.default_rng(0).uniform(-3, 3, size)
    cases: dict[str, Call] = {NUMPY_FLOOR: lambda: function(x0)}
    cases.update(_elementwise_tape_cases(x0))
    peer_cases, _ = peers.installed_cases(
        {"torch": _elementwise_torch_cases, "jax": _elementwise_jax_cases}, x0
    )
    cases.update(peer_cases)
    expected = gradient(x0)
    for name, case in cases.items():
        if name != NUMPY_FLOOR:
            np.testing.assert_allclose(np.asarray(case()), expected, rtol=1e-10, atol=1e-12, err_msg=name)
    functions = {name: (case, one_torch_thread if name == TORCH else None) for name, case in cases.items()}
    timings = _measure(
        "compile: elementwise",
        functions,
        rounds=2 if quick else 3,
        repeats=3 if quick else 5,
        min_time=0.1 if quick else 0.3,
    )
    floor = timings[NUMPY_FLOOR].median
    references = {"numpy_forward": floor}
    header = ["case", "time (median)", "spread", "vs numpy forward"]
    if TORCH in timings:
        header.append("vs PyTorch eager")
        references["pytorch_eager"] = timings[TORCH].median
    ratio = timings[COMPILED].median / floor
    notes = [
        _verdict("tape.compile fwd+bwd / numpy forward", ratio, TARGETS["elementwise"]),
        f"tape.compile over tape eager: {timings[COMPILED].median / timings[TAPE].median:.2f}x",
    ]
    print_table(
        f"tape.compile, sum(tanh(x) * sin(x) + x**2), x of {size:,} float64, forward+backward "
        "(numpy: forward only)",
        header,
        timing_rows(timings, *references.values()),
        "\n  ".join(notes),
    )
    return {"size": size, "notes": notes, "cases": _figures(timings, **references)}


# -- 3. training steps ---------------------------------------------------------------------------------------
def compiled_tape_step(problem: Problem) -> Call:
    """training_step's ``tape_step`` with the loss compiled: ``zero_grad``, ``loss = compiled(x, y)``,
    ``backward``, ``SGD.step``. The first call records; the optimizer updates outside the compiled call."""
    model = tape_model(problem.kind, problem.x.dtype)
    model.load_state_dict(dict(zip(model.state_dict(), [w.copy() for w in problem.weights], strict=True)))
    optimizer = nn.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    criterion = nn.CrossEntropyLoss()

    def loss_of(x: Any, y: Any) -> Any:
        return criterion(model(x), y)

    compiled = tape.compile(loss_of)
    x, y = problem.x, problem.y

    def step() -> Any:
        optimizer.zero_grad()
        loss = compiled(x, y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _loss_value(loss: Any) -> float:
    return float(np.asarray(loss.data if isinstance(loss, tape.Tensor) else loss))


def measure_step(kind: str, dtype: Any, quick: bool) -> dict[str, Any]:
    """Case 3: one network's step in one dtype; each case's first loss checked against numpy's, then timed."""
    problem = make_problem(kind, dtype)
    builders: dict[str, tuple[Callable[[Problem], Call], Threads]] = {
        TAPE: (tape_step, one_blas_thread),
        COMPILED: (compiled_tape_step, one_blas_thread),
    }
    if peers.installed("torch"):
        builders[TORCH] = (torch_step, one_torch_thread)
    reference = _loss_value(numpy_forward(problem)())
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    functions: dict[str, tuple[Call, Threads]] = {}
    for name, (build, threads) in builders.items():
        step = build(problem)
        first = _loss_value(step())  # from the initial weights, before any update
        if abs(first - reference) > tolerance * max(1.0, abs(reference)):
            raise AssertionError(f"{name}: first {kind} loss {first} differs from numpy's {reference}")
        functions[name] = (step, threads)
    timings = _measure(
        f"compile: {kind} {np.dtype(dtype).name}",
        functions,
        rounds=2 if quick else 3,
        repeats=3 if quick else 5,
        min_time=0.05 if quick else 0.2,
    )
    references = {}
    header = ["case", "step (median)", "spread"]
    notes = []
    if TORCH in timings:
        header.append("vs PyTorch eager")
        references["pytorch_eager"] = timings[TORCH].median
        ratio = timings[COMPILED].median / timings[TORCH].median
        notes.append(_verdict("tape.compile / PyTorch eager", ratio, TARGETS["training"]))
    header.append("vs tape eager")
    references["tape_eager"] = timings[TAPE].median
    return {"timings": timings, "header": header, "references": references, "notes": notes}


def measure_steps(quick: bool) -> dict[str, Any]:
    """Case 3 for the MLP and the CNN (where tape.nn.conv exists), float32, and float64 without quick."""
    kinds = ["mlp"] if importlib.util.find_spec("tape.nn.conv") is None else ["mlp", "cnn"]
    dtypes = (np.float32,) if quick else (np.float32, np.float64)
    titles = {
        "mlp": "MLP 784-512-256-10, ReLU, cross-entropy, batch 128",
        "cnn": "CNN on 64x1x28x28 (conv 8, pool, conv 16, pool, linear 10)",
    }
    limits = ["tape's BLAS"] if importlib.util.find_spec("threadpoolctl") is not None else []
    if peers.installed("torch"):
        limits.append("PyTorch")
    threads = f"{' and '.join(limits)} at 1 thread" if limits else ""
    results: dict[str, Any] = {"threads": threads}
    for kind in kinds:
        for dtype in dtypes:
            outcome = measure_step(kind, dtype, quick)
            timings = outcome["timings"]
            print_table(
                f"tape.compile, training step, {titles[kind]}, {np.dtype(dtype).name}",
                outcome["header"],
                timing_rows(timings, *outcome["references"].values()),
                "\n  ".join(note for note in [*outcome["notes"], threads] if note),
            )
            results.setdefault(kind, {})[np.dtype(dtype).name] = {
                "notes": outcome["notes"],
                "cases": _figures(timings, **outcome["references"]),
            }
    return results


# -- 4. the first call ---------------------------------------------------------------------------------------
def first_call_seconds(warm: bool) -> dict[str, float]:
    """Seconds of the first and second step of a freshly compiled MLP step (float32); with ``warm``, one
    eager step runs first (its seconds too), so that tape's own kernels are compiled before the clock."""
    problem = make_problem("mlp", np.float32)
    seconds = {}
    if warm:
        eager = tape_step(problem)
        start = time.perf_counter()
        eager()
        seconds["eager_first_s"] = time.perf_counter() - start
    step = compiled_tape_step(problem)
    for key in ("first_s", "second_s"):
        start = time.perf_counter()
        step()
        seconds[key] = time.perf_counter() - start
    return seconds


def first_call_in_fresh_process() -> None:
    """What a fresh process runs (``python -c``, see ``fresh_process_first_call``): print the seconds of its
    first compiled MLP step, nothing warmed before it (the imports are not timed)."""
    print(repr(first_call_seconds(warm=False)["first_s"]))


def fresh_process_first_call(timeout: float = 300.0) -> float:
    """The seconds a fresh Python process takes for its first compiled MLP step."""
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_CODE],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {completed.returncode}")
    return float(completed.stdout.split()[-1])


def print_first_calls(in_process: dict[str, float], fresh: list[float | str]) -> None:
    """The table of case 4: each first call's seconds and its target."""

    def verdict(seconds: float, target: float | None) -> list[str]:
        if target is None:
            return [format_time(seconds), "", ""]
        return [format_time(seconds), f"< {format_time(target)}", "met" if seconds < target else "MISSED"]

    rows = [
        ["tape eager, first step in this process", *verdict(in_process["eager_first_s"], None)],
        [
            "tape.compile, first step (record + compile)",
            *verdict(in_process["first_s"], TARGETS["first_call_s"]),
        ],
        ["tape.compile, second step (replay)", *verdict(in_process["second_s"], None)],
    ]
    labels = ["tape.compile, first step, fresh process", "tape.compile, first step, second fresh process"]
    for label, seconds in zip(labels, fresh, strict=False):
        if isinstance(seconds, str):
            rows.append([label, "failed", "", seconds])
        else:
            target = TARGETS["second_process_s"] if label == labels[1] else None
            rows.append([label, *verdict(seconds, target)])
    print_table(
        "tape.compile, first call: an MLP 784-512-256-10 training step, float32, batch 128",
        ["case", "time", "target", "verdict"],
        rows,
        "fresh processes: a new Python runs benchmarks.compile.first_call_in_fresh_process (imports not "
        "timed); the second finds on disk the caches the first left (the first may find older ones)",
    )


# -- the suite -----------------------------------------------------------------------------------------------
def run(quick: bool = False, size: int = SIZE, fresh_processes: int = 2) -> dict[str, Any]:
    """Measure the four cases, print their tables and return the figures (seconds).

    The first call is measured before anything else compiles in this process, and printed last.
    ``fresh_processes`` (0, 1 or 2) is how many fresh processes time their first call.

    Examples
    --------
    >>> figures = run(quick=True, size=1000, fresh_processes=0)  # doctest: +SKIP
    >>> sorted(figures)  # doctest: +SKIP
    ['chain', 'elementwise', 'first_call', 'skipped', 'targets', 'training_step']
    """
    in_process = first_call_seconds(warm=True)
    fresh: list[float | str] = []
    for _ in range(fresh_processes):
        try:
            fresh.append(fresh_process_first_call())
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as error:
            fresh.append(f"{type(error).__name__}: {error}")
    missing = peers.note_not_installed(PEER_MODULES)
    results: dict[str, Any] = {"targets": TARGETS, "skipped": missing}
    results["chain"] = measure_chain(quick)
    results["elementwise"] = measure_elementwise(quick, size)
    results["training_step"] = measure_steps(quick)
    print_first_calls(in_process, fresh)
    results["first_call"] = {"this_process": in_process, "fresh_processes_s": fresh}
    if hasattr(os, "getloadavg"):
        print(f"  load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return results


if __name__ == "__main__":
    raise SystemExit(suite_main("compile", __doc__, run))

"""Convolution and pooling: each numba kernel against its numpy twin; the CNN's conv/pool part vs PyTorch.

The network is the one the project's goal names: x of 64 x 1 x 28 x 28, conv 3x3 to 8 channels, relu,
max-pool 2, conv 3x3 to 16 channels, relu, max-pool 2. Two tables, float32 and float64:

1. every kernel of ``ops/conv.py`` at the sizes that network gives it, compiled against its twin
   (a kernel is kept only if it is faster), each timed alone on the same arguments;
2. forward+backward of the conv/pool part (seeded with a fixed random cotangent, as a following layer
   would send): tape with kernels, tape with twins only (``use_jit(False)``) and PyTorch, at PyTorch's
   own thread count and at one thread.

(The full SGD step of this network, tape.nn against torch.nn, JAX and MyGrad, is timed by
``python -m benchmarks.training_step``.)

Table 2 times its contenders in alternation, repeat by repeat, so that a shared machine's load
falls on all of them alike. PyTorch at its default thread count suffers most from a busy machine (its
threads wait on each other), hence the one-thread column beside it.

python -m benchmarks.conv            # full repeats (about a minute)
python -m benchmarks.conv --quick    # fewer repeats
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

import tape
import tape.ops.conv as conv
from benchmarks import peers
from benchmarks.console import suite_main
from benchmarks.kernels import with_jit
from benchmarks.timing import Timing, format_spread, format_time, measure, measure_side_by_side, print_table
from benchmarks.training_step import torch_threads
from tape import jit

DTYPES = (np.float32, np.float64)
BATCH = 64


def _timing(function: Callable[[], Any], quick: bool) -> Timing:
    return measure(function, repeats=3 if quick else 7, min_time=0.02 if quick else 0.1)


def _spread(timing: Timing) -> str:
    return f"{format_time(timing.median)} ({format_spread(timing.low, timing.high)})"


# -- 1. kernels against twins --------------------------------------------------------------------------------
def _kernel_cases(dtype: Any) -> list[tuple[jit.Kernel[Any], str, tuple[Any, ...]]]:
    """(kernel, label, arguments) for each kernel at the sizes the CNN gives it."""
    rng = np.random.default_rng(0)
    cases: list[tuple[jit.Kernel[Any], str, tuple[Any, ...]]] = []
    # col2im: the input gradient of the second convolution (the first one's input needs none).
    columns = rng.standard_normal((BATCH, 8 * 9, 11 * 11)).astype(dtype)
    cases.append(
        (conv.col2im, "conv 8->16 3x3 on 13x13", (columns, 8, 13, 13, 3, 3, 1, 1, 0, 0, 1, 1, 11, 11))
    )
    for channels, size in ((8, 26), (16, 11)):
        x = rng.standard_normal((BATCH, channels, size, size)).astype(dtype)
        half = size // 2
        geometry = (2, 2, 2, 2, 0, 0, half, half)
        label = f"2x2 pool of {BATCH}x{channels}x{size}x{size}"
        out = conv.max_pool_forward.twin(x, *geometry)
        g = rng.standard_normal((BATCH, channels, half, half)).astype(dtype)
        cases.append((conv.max_pool_forward, label, (x, *geometry)))
        cases.append((conv.max_pool_backward, label, (g, x, out, 2, 2, 2, 2, 0, 0)))
    return cases


def kernel_rows(quick: bool) -> list[dict[str, Any]]:
    """Seconds per call of each kernel (compiled) and of its twin, and twin / kernel."""
    rows = []
    for dtype in DTYPES:
        for compiled, label, arguments in _kernel_cases(dtype):
            dispatcher = compiled.compiled()
            if dispatcher is None:
                raise RuntimeError(f"{compiled.name} did not compile")
            kernel_time = _timing(lambda d=dispatcher, a=arguments: d(*a), quick)
            twin_time = _timing(lambda t=compiled.twin, a=arguments: t(*a), quick)
            rows.append(
                {
                    "kernel": compiled.name.rsplit(".", 1)[-1],
                    "case": label,
                    "dtype": np.dtype(dtype).name,
                    "kernel_s": kernel_time.median,
                    "twin_s": twin_time.median,
                    "twin_over_kernel": twin_time.median / kernel_time.median,
                }
            )
    return rows


# -- 2. the conv/pool part, forward and backward -------------------------------------------------------------
def _weights(dtype: Any) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)

    def uniform(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        bound = 1 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(dtype)

    return {
        "w1": uniform((8, 1, 3, 3), 9),
        "b1": uniform((8,), 9),
        "w2": uniform((16, 8, 3, 3), 72),
        "b2": uniform((16,), 72),
    }


def _seed(dtype: Any) -> np.ndarray:
    """The cotangent of the conv/pool part's output (64 x 16 x 5 x 5), as a following layer would send."""
    return np.random.default_rng(4).standard_normal((BATCH, 16, 5, 5)).astype(dtype)


def _tape_features(x: Any, p: dict[str, Any]) -> Any:
    h = conv.max_pool2d(tape.ops.nn.relu(conv.conv2d(x, p["w1"], p["b1"])), 2)
    return conv.max_pool2d(tape.ops.nn.relu(conv.conv2d(h, p["w2"], p["b2"])), 2)


def _tape_conv_part(x: np.ndarray, weights: dict[str, np.ndarray]) -> Callable[[], Any]:
    parameters = {name: tape.tensor(value, requires_grad=True) for name, value in weights.items()}

    def step() -> Any:
        _tape_features(x, parameters).backward(_seed(x.dtype))
        grads = [parameters[name].grad for name in ("w1", "b1", "w2", "b2")]
        for name in ("w1", "b1", "w2", "b2"):
            parameters[name].grad = None
        return grads

    return step


def _torch_conv_part(x: np.ndarray, weights: dict[str, np.ndarray]) -> Callable[[], Any]:
    import torch
    import torch.nn.functional as F

    inputs = torch.from_numpy(x)
    seed = torch.from_numpy(_seed(x.dtype))
    parameters = {name: torch.from_numpy(value.copy()).requires_grad_() for name, value in weights.items()}

    def step() -> Any:
        h = F.max_pool2d(F.relu(F.conv2d(inputs, parameters["w1"], parameters["b1"])), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, parameters["w2"], parameters["b2"])), 2)
        h.backward(seed)
        grads = [parameters[name].grad for name in ("w1", "b1", "w2", "b2")]
        for name in ("w1", "b1", "w2", "b2"):
            parameters[name].grad = None
        return grads

    return step


def _check_against_torch(tape_step: Callable[[], Any], torch_step: Callable[[], Any]) -> float:
    """Largest relative difference between tape's and torch's gradients (a benchmark that agrees)."""
    ours = tape_step()
    theirs = [g.numpy() for g in torch_step()]
    scale = max(float(np.abs(g).max()) for g in theirs)
    return max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True)) / scale


def conv_part_rows(quick: bool) -> list[dict[str, Any]]:
    """Forward+backward of the conv/pool part: tape (kernels, twins) and torch when installed, per dtype."""
    has_torch = peers.installed("torch")
    rows = []
    for dtype in DTYPES:
        x = np.random.default_rng(2).standard_normal((BATCH, 1, 28, 28)).astype(dtype)
        weights = _weights(dtype)
        tape_step = _tape_conv_part(x, weights)
        functions: dict[str, tuple[Callable[[], Any], Any]] = {
            "tape_s": (with_jit(True, tape_step), None),
            "tape_twins_s": (with_jit(False, tape_step), None),
        }
        row: dict[str, Any] = {"dtype": np.dtype(dtype).name}
        if has_torch:
            torch_step = _torch_conv_part(x, weights)
            functions["torch_s"] = (torch_step, None)
            functions["torch_1_thread_s"] = (torch_step, lambda: torch_threads(1))
            row["max_relative_difference"] = _check_against_torch(tape_step, torch_step)
        timings = measure_side_by_side(functions, rounds=5 if quick else 15, repeats=1, min_time=0.02)
        rows.append({**row, **timings})
    return rows


# -- tables --------------------------------------------------------------------------------------------------
def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """The row for JSON: timings as their median seconds (and the spread beside them)."""
    plain: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Timing):
            plain[key] = value.median
            plain[key.replace("_s", "_range_s")] = (value.low, value.high)
        else:
            plain[key] = value
    return plain


def _comparison_row(row: dict[str, Any], columns: list[str], ratios_to: list[str]) -> list[str]:
    """dtype, the timings named by ``columns``, and tape's time over each timing named in ``ratios_to``."""
    return [
        row["dtype"],
        *(_spread(row[column]) for column in columns),
        *(f"{row['tape_s'].median / row[column].median:.2f}" for column in ratios_to),
    ]


def run(quick: bool = False) -> dict[str, Any]:
    """Print the two tables; return their rows (seconds per call, ratios)."""
    threads = None
    if peers.installed("torch"):
        import torch

        threads = torch.get_num_threads()
    load = "/".join(f"{value:.1f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "?"

    kernels = kernel_rows(quick)
    print_table(
        "numba kernels of ops/conv.py against their numpy twins (median per call)",
        ["kernel", "case", "dtype", "kernel", "twin", "twin / kernel"],
        [
            [
                r["kernel"],
                r["case"],
                r["dtype"],
                format_time(r["kernel_s"]),
                format_time(r["twin_s"]),
                f"{r['twin_over_kernel']:.2f}",
            ]
            for r in kernels
        ],
        note="a kernel stays in ops/conv.py only where twin / kernel > 1 at these sizes",
    )

    missing = peers.note_not_installed(["torch"])
    part = conv_part_rows(quick)
    header = ["dtype", "tape", "tape, twins only"]
    columns = ["tape_s", "tape_twins_s"]
    torch_columns = [] if missing else ["torch_s", "torch_1_thread_s"]
    note = ""
    if torch_columns:
        header += ["PyTorch", "PyTorch 1 thread", "tape / PyTorch", "tape / PyTorch 1 thread"]
        agreement = ", ".join(f"{r['max_relative_difference']:.1e} ({r['dtype']})" for r in part)
        note = f"PyTorch's own thread count is {threads}; gradients agree with PyTorch's to {agreement}"
    print_table(
        f"CNN conv/pool part, forward+backward, batch {BATCH} (median, min..max); load average {load}",
        header,
        [_comparison_row(r, columns + torch_columns, torch_columns) for r in part],
        note,
    )

    return {
        "kernels": kernels,
        "conv_part": [_plain(row) for row in part],
        "torch_threads": threads,
        "skipped": missing,
    }


if __name__ == "__main__":
    raise SystemExit(suite_main("conv", __doc__, run))

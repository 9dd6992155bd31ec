"""Data-parallel training steps over MPI: one rank against two, the communication, its overlap with
backward, and a model of the step time at 8, 64 and 512 ranks.

python -m benchmarks --suite ddp          # 1 and 2 ranks, two MLPs, and the scaling model
python -m benchmarks.ddp --quick          # fewer steps

Each configuration runs in fresh processes under MPICH's ``mpiexec`` (``benchmarks.ddp_rank``), one BLAS
thread per rank, with the same batch per rank (weak scaling). Per step: the whole step with the
gradients averaged by ``tape.distributed.DistributedDataParallel``; the same step with the averaging off
(compute alone); the blocking allreduce of the same buckets on its own (the communication); and the wait
for the allreduces when backward ends (the communication that did not overlap backward). Overlapped is
what the allreduce alone costs less that wait.

The model: ring allreduce of a bucket of b bytes on p ranks takes 2(p-1)/p * b / bandwidth
+ 2(p-1) * latency. Buckets start, in order, when their last gradient is final (measured on one rank) and
go one after another on the network; the step is the compute step plus whatever communication outlasts
backward. Efficiency is the one-rank compute step over that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.console import suite_main
from benchmarks.timing import format_time, print_table

CASES = [
    {"name": "digits MLP 64-128-64-10", "widths": [64, 128, 64, 10], "batch": 16, "bucket_cap_mb": 25},
    {
        "name": "wide MLP 1024-2048-2048-1024-10",
        "widths": [1024, 2048, 2048, 1024, 10],
        "batch": 64,
        "bucket_cap_mb": 25,
    },
]
NETWORKS = {"25 Gb/s Ethernet, 5 us": (25e9 / 8, 5e-6), "100 Gb/s InfiniBand, 1.5 us": (100e9 / 8, 1.5e-6)}
RANKS = (8, 64, 512)
BUCKET_CAPS_MB = (None, 25.0, 1.0)  # None: one message after backward (no bucketing, no overlap)
ROOT = Path(__file__).resolve().parent.parent


def launcher() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"  # the mpich wheel installs it beside the interpreter
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def launch(ranks: int, steps: int, warmup: int) -> dict[str, Any]:
    found = launcher()
    if found is None:
        return {"error": 'mpiexec not found: pip install "tape[mpi]"'}
    settings = {"steps": steps, "warmup": warmup, "cases": CASES}
    threads = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    result = subprocess.run(
        [found, "-n", str(ranks), sys.executable, "-m", "benchmarks.ddp_rank", json.dumps(settings)],
        env={**os.environ, **threads, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {result.returncode}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def ring_allreduce_seconds(size: float, ranks: int, bandwidth: float, latency: float) -> float:
    """2(p-1)/p * bytes / bandwidth + 2(p-1) * latency."""
    return 2 * (ranks - 1) / ranks * size / bandwidth + 2 * (ranks - 1) * latency


def buckets_of(sizes: list[int], ready: list[float], cap_mb: float | None) -> list[tuple[int, float]]:
    """(bytes, start) of each bucket: gradients in the order backward finishes them, cut at the cap; a
    bucket starts when its last gradient is final, and never before the one ahead of it."""
    if cap_mb is None:
        return [(sum(sizes), max(ready))]
    cap, buckets, size, last = cap_mb * 1024 * 1024, [], 0, 0.0
    for grad_bytes, final in zip(sizes, ready, strict=True):
        if size and size + grad_bytes > cap:
            buckets.append((size, last))
            size = 0
        size, last = size + grad_bytes, final
    buckets.append((size, last))
    return buckets


def predicted_step(
    case: dict[str, Any], ranks: int, network: tuple[float, float], cap_mb: float | None
) -> float:
    bandwidth, latency = network
    window = case["backward_after_first_gradient_s"]
    free = 0.0  # when the network finishes the buckets so far
    for size, start in buckets_of(case["gradient_bytes_in_backward_order"], case["gradient_final_s"], cap_mb):
        begin = max(start, free) if cap_mb is not None else max(window, free)
        free = begin + ring_allreduce_seconds(size, ranks, bandwidth, latency)
    return case["compute_step_s"] + max(0.0, free - window)


def run(quick: bool = False) -> dict[str, Any]:
    """Measure one and two ranks, print the tables and the model; return the figures."""
    steps, warmup = (10, 2) if quick else (30, 5)
    measured = {ranks: launch(ranks, steps, warmup) for ranks in (1, 2)}
    if any("error" in found for found in measured.values()):
        note = "; ".join(found["error"] for found in measured.values() if "error" in found)
        print(f"\n[ddp] skipped: {note}")
        return {"skipped": note}
    rows = []
    for k, case in enumerate(CASES):
        one, two = measured[1]["cases"][k], measured[2]["cases"][k]
        communication, exposed = two["allreduce_alone_s"], two["exposed_wait_s"]
        overlapped = max(0.0, communication - exposed)
        rows.append(
            [
                case["name"],
                f"{one['parameters'] * 4 / 1e6:.2f} MB / {len(two['bucket_bytes'])}",
                format_time(one["step_s"]),
                format_time(two["compute_step_s"]),
                format_time(two["step_s"]),
                format_time(communication),
                format_time(exposed),
                f"{100 * overlapped / communication:.0f}%" if communication > 0 else "-",
            ]
        )
    print_table(
        "Data-parallel step (forward, backward, averaging, SGD), float32, batch per rank fixed",
        [
            "model",
            "gradients / buckets",
            "1 rank",
            "2 ranks, no averaging",
            "2 ranks, DDP",
            "allreduce alone",
            "waited after backward",
            "overlapped",
        ],
        rows,
        "two ranks share two cores: the shared-memory allreduce needs the cores that run backward",
    )
    model = []
    for k, case in enumerate(CASES):
        one = measured[1]["cases"][k]
        for network_name, network in NETWORKS.items():
            for cap in BUCKET_CAPS_MB:
                label = "one message after backward" if cap is None else f"{cap:g} MB buckets, overlapped"
                steps_at = [predicted_step(one, p, network, cap) for p in RANKS]
                model.append(
                    [case["name"], network_name, label]
                    + [f"{format_time(t)} ({100 * one['compute_step_s'] / t:.0f}%)" for t in steps_at]
                )
    print_table(
        "Modelled step time (scaling efficiency) from the one-rank compute and ring-allreduce costs",
        ["model", "network", "averaging", *[f"{p} ranks" for p in RANKS]],
        model,
        "ring allreduce: 2(p-1)/p * bytes / bandwidth + 2(p-1) * latency; buckets in order on the network",
    )
    return {"measured": measured, "model": {"networks": NETWORKS, "ranks": RANKS, "rows": model}}


if __name__ == "__main__":
    raise SystemExit(suite_main("ddp", __doc__, run))

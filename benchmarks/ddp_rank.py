"""One rank of ``benchmarks.ddp``: ``mpiexec -n P python -m benchmarks.ddp_rank '<json settings>'``.

Each rank trains the given MLPs on its own batch (the same size on every rank: weak scaling) and times,
per step: the whole step with DistributedDataParallel's averaging, the same step with the averaging off
(``no_sync``: compute alone), the wait for the allreduces at the end of backward (the part of the
communication that did not overlap), and, apart from training, a blocking ``Allreduce`` of buffers of
the buckets' sizes (the communication alone). Rank 0 prints the medians as one JSON line.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
from mpi4py import MPI

import tape.nn as nn
from tape import distributed


def build(widths: list[int], seed: int) -> nn.Module:
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [nn.Linear(fan_in, fan_out, dtype=np.float32, rng=rng), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def median_seconds(step: Any, steps: int) -> float:
    times = []
    for _ in range(steps):
        distributed.communicator().Barrier()  # every rank starts the step together
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(widths: list[int], batch: int, bucket_cap_mb: float, steps: int, warmup: int) -> dict[str, Any]:
    rng = np.random.default_rng(distributed.rank())
    x = rng.normal(size=(batch, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], size=batch)
    model = distributed.DistributedDataParallel(build(widths, seed=0), bucket_cap_mb=bucket_cap_mb)
    # When each gradient is final (for the scaling model, which regroups them into buckets of any size).
    final_at: dict[int, float] = {}
    for parameter in model.parameters():
        parameter.register_post_accumulate_grad_hook(
            lambda p: final_at.setdefault(id(p), time.perf_counter())
        )
    optimizer = nn.optim.SGD(model.parameters(), lr=1e-3)
    waits: list[float] = []
    backwards: list[float] = []

    def step() -> None:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    def synced_step() -> None:
        step()
        waits.append(model.last_step.wait_seconds)
        backwards.append(model.last_step.backward_seconds)

    def local_step() -> None:
        with model.no_sync():
            step()

    for _ in range(warmup):
        synced_step()
        local_step()
    compute = median_seconds(local_step, steps)
    waits.clear()
    backwards.clear()
    synced = median_seconds(synced_step, steps)
    stats = model.last_step
    runs = []  # (backward after the first final gradient, when each one was final, in that order)
    for _ in range(5):
        final_at.clear()
        with model.no_sync():
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
        ended, first = time.perf_counter(), min(final_at.values())
        order = sorted(model.parameters(), key=lambda p: final_at[id(p)])
        runs.append((ended - first, [round(final_at[id(p)] - first, 7) for p in order], order))
    window, final_offsets, in_backward_order = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    buffers = [np.zeros(size // 4, dtype=np.float32) for size in stats.bucket_bytes]

    def blocking_allreduce() -> None:
        for buffer in buffers:
            distributed.communicator().Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)

    communication = median_seconds(blocking_allreduce, steps)
    return {
        "widths": widths,
        "batch_per_rank": batch,
        "parameters": int(sum(p.size for p in model.parameters())),
        "bucket_cap_mb": bucket_cap_mb,
        "bucket_bytes": stats.bucket_bytes,
        "bucket_starts_s": [round(t, 7) for t in stats.bucket_starts],
        "gradient_bytes_in_backward_order": [p.size * p.dtype.itemsize for p in in_backward_order],
        "gradient_final_s": final_offsets,
        "step_s": synced,
        "compute_step_s": compute,
        "backward_after_first_gradient_s": window,  # without averaging, as the model needs
        "backward_after_first_gradient_with_averaging_s": statistics.median(backwards),
        "exposed_wait_s": statistics.median(waits),
        "allreduce_alone_s": communication,
    }


def main() -> None:
    settings = json.loads(sys.argv[1])
    distributed.init()
    results = [
        measure(case["widths"], case["batch"], case["bucket_cap_mb"], settings["steps"], settings["warmup"])
        for case in settings["cases"]
    ]
    if distributed.rank() == 0:
        print(json.dumps({"ranks": distributed.world_size(), "cases": results}), flush=True)


if __name__ == "__main__":
    main()

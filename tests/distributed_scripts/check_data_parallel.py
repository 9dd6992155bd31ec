"""Run under ``mpiexec -n 2``: DistributedDataParallel's gradients, 50 training steps, mismatched models.

Rank 0 prints one JSON line of findings, which tests/test_distributed.py reads; every rank checks what it
can itself. Everything runs in one launch, since each launch pays for starting Python, numpy and numba.
"""

from __future__ import annotations

import json

import numpy as np

import tape
import tape.nn as nn
from tape import distributed
from tape.data import DataLoader, TensorDataset

FEATURES, HIDDEN, CLASSES = 6, 16, 3


def build(seed: int, hidden: int = HIDDEN) -> nn.Module:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(FEATURES, hidden, dtype=np.float64, rng=rng),
        nn.Tanh(),
        nn.Linear(hidden, hidden, dtype=np.float64, rng=rng),
        nn.Tanh(),
        nn.Linear(hidden, CLASSES, dtype=np.float64, rng=rng),
    )


def data(examples: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)  # the same full data set on every rank
    return rng.normal(size=(examples, FEATURES)), rng.integers(0, CLASSES, size=examples)


def mismatched_models_are_caught() -> dict[str, object]:
    """Weights that differ per rank are found, then made equal; a differently built model is refused."""
    found: dict[str, object] = {}
    model = build(seed=distributed.rank())  # a different initialisation on each rank
    try:
        distributed.verify_parameters(model)
        found["different_weights_caught"] = False
    except RuntimeError as error:
        found["different_weights_caught"] = "differs between rank 0 and rank 1" in str(error)
    distributed.broadcast_parameters(model)
    distributed.verify_parameters(model)  # raises if the broadcast did not make them equal
    found["equal_after_broadcast"] = True
    other = build(seed=0, hidden=HIDDEN + distributed.rank())  # a different architecture on rank 1
    try:
        distributed.DistributedDataParallel(other)
        found["different_shapes_caught"] = False
    except RuntimeError as error:
        found["different_shapes_caught"] = "the ranks' modules differ" in str(error)
    return found


def one_step_matches_the_full_batch() -> dict[str, object]:
    """The averaged gradients of one DDP step against one process's gradients of the whole batch."""
    ranks, me = distributed.world_size(), distributed.rank()
    x, y = data(8 * ranks)
    model = distributed.DistributedDataParallel(build(seed=7), bucket_cap_mb=0.001)  # several buckets
    mine = slice(me * 8, (me + 1) * 8)
    nn.functional.cross_entropy(model(x[mine]), y[mine]).backward()

    reference = build(seed=7)  # the same weights, one process, the whole batch
    nn.functional.cross_entropy(reference(x), y).backward()
    errors = [
        float(np.max(np.abs(p.grad - q.grad)))
        for p, q in zip(model.module.parameters(), reference.parameters(), strict=True)
    ]
    return {
        "gradient_error": max(errors),
        "buckets": model.last_step.buckets,
        "started_during_backward": model.last_step.started_during_backward,
    }


def fifty_steps_stay_identical() -> dict[str, object]:
    """50 Adam steps on each rank's share of shuffled batches: the ranks' weights stay bit-identical."""
    x, y = data(200)
    model = distributed.DistributedDataParallel(build(seed=distributed.rank() + 100), bucket_cap_mb=0.002)
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-2)
    dataset = TensorDataset(x, y)
    sampler = distributed.DistributedSampler(dataset, seed=5)
    loader = DataLoader(dataset, batch_size=10, sampler=sampler)
    losses, steps, epoch = [], 0, 0
    while steps < 50:
        sampler.set_epoch(epoch)
        for inputs, labels in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(inputs), labels)
            loss.backward()
            optimizer.step()
            losses.append(float(distributed.all_reduce(np.array(float(loss)), op="mean")))
            steps += 1
            if steps == 50:
                break
        epoch += 1
    distributed.verify_parameters(model)  # bit for bit, or every rank raises
    digest = tape.tensor(np.concatenate([p.numpy().ravel() for p in model.parameters()])).numpy().tobytes()
    everyone = distributed.communicator().allgather(digest)
    return {
        "steps": steps,
        "identical_after_50_steps": all(theirs == everyone[0] for theirs in everyone),
        "loss_first": losses[0],
        "loss_last": losses[-1],
    }


def sampler_shares_the_data() -> dict[str, object]:
    sampler = distributed.DistributedSampler(range(11), seed=3)
    sampler.set_epoch(2)
    shares = distributed.communicator().allgather(list(sampler))
    covered = sorted(index for share in shares for index in share)
    return {"shares_equal_length": len({len(s) for s in shares}) == 1, "covered": covered}


def main() -> None:
    distributed.init()
    found = {"world_size": distributed.world_size()}
    found.update(mismatched_models_are_caught())
    found.update(one_step_matches_the_full_batch())
    found.update(fifty_steps_stay_identical())
    found.update(sampler_shares_the_data())
    found["all_reduce_sum"] = distributed.all_reduce(np.array([distributed.rank() + 1.0])).tolist()
    if distributed.rank() == 0:
        print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()

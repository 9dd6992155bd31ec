"""Train the digits MLP of ``examples.train_digits`` data-parallel over MPI, with ``tape.distributed``.

mpiexec -n 2 python -m examples.train_digits_ddp              # two ranks, 30 epochs
mpiexec -n 2 python -m examples.train_digits_ddp --epochs 5   # fewer epochs
python -m examples.train_digits_ddp                           # one rank: the single-process run

Every rank builds the same MLP (``DistributedDataParallel`` broadcasts rank 0's weights anyway) and reads
its own share of each epoch's shuffled training set (``DistributedSampler``). The global batch stays 32
examples, split evenly over the ranks, so that with the averaged gradients each step is the step one
process takes on 32 examples, and the run reaches the single-process accuracy (about 97-98%) with the
same hyperparameters. Rank 0 prints the epochs and the final test accuracy. Needs the ``mpi`` and
``examples`` extras (``pip install "tape[mpi,examples]"``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import tape.nn as nn
from benchmarks.console import command_line
from examples.train_digits import DEFAULT_SETTINGS, build_model, evaluate, load_digits_split
from tape import distributed
from tape.data import DataLoader, TensorDataset

GLOBAL_BATCH = 32


def train(epochs: int | None = None, seed: int = 0, verbose: bool = True) -> dict[str, Any]:
    """Train the MLP on every rank and return (on every rank) its final test accuracy and history.

    Examples
    --------
    >>> result = train(epochs=1, verbose=False)
    >>> result["ranks"], 0.0 <= result["test_accuracy"] <= 1.0
    (1, True)
    """
    settings = DEFAULT_SETTINGS["mlp"]
    epochs = settings.epochs if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"train: epochs must be at least 1, got {epochs}")
    ranks, me = distributed.world_size(), distributed.rank()
    if GLOBAL_BATCH % ranks:
        raise ValueError(f"train: the batch of {GLOBAL_BATCH} must split evenly over the ranks, got {ranks}")
    digits = load_digits_split()
    model = distributed.DistributedDataParallel(build_model("mlp", np.random.default_rng(seed)))
    optimizer = nn.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = nn.optim.CosineAnnealingLR(optimizer, T_max=epochs)
    criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    dataset = TensorDataset(digits.x_train, digits.y_train)
    sampler = distributed.DistributedSampler(dataset, seed=seed)
    loader = DataLoader(dataset, batch_size=GLOBAL_BATCH // ranks, sampler=sampler)

    history: dict[str, list[float]] = {"train_loss": [], "test_accuracy": [], "seconds": []}
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        sampler.set_epoch(epoch)  # a new order each epoch, the same on every rank
        model.train()
        loss_sum = 0.0
        for images, labels in loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()  # averages the gradients over the ranks
            optimizer.step()
            loss_sum += float(loss) * len(labels)
        scheduler.step()
        examples = distributed.all_reduce(np.array([loss_sum, len(sampler)]))
        _, accuracy = evaluate(model.module, digits.x_test, digits.y_test)
        history["train_loss"].append(float(examples[0] / examples[1]))
        history["test_accuracy"].append(accuracy)
        history["seconds"].append(time.perf_counter() - started)
        if verbose and me == 0:
            print(
                f"epoch {epoch:3d}/{epochs}  train loss {history['train_loss'][-1]:.4f}  "
                f"test acc {100 * accuracy:5.1f}%  ({history['seconds'][-1]:.1f} s)",
                flush=True,
            )
    distributed.verify_parameters(model)  # the ranks ended with the same weights
    return {
        "ranks": ranks,
        "epochs": epochs,
        "test_accuracy": history["test_accuracy"][-1],
        "seconds": time.perf_counter() - started,
        "history": history,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, train on every rank, print the final test accuracy on rank 0."""
    parser = command_line("mpiexec -n 2 python -m examples.train_digits_ddp", __doc__)
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="initial weights and batch order (default 0)")
    options = parser.parse_args(argv)
    result = train(epochs=options.epochs, seed=options.seed)
    if distributed.rank() == 0:
        print(
            f"mlp on {result['ranks']} ranks: final test accuracy {100 * result['test_accuracy']:.2f}% "
            f"after {result['epochs']} epochs ({result['seconds']:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

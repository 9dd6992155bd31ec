"""Data-parallel training over MPI: each process (rank) runs the same model on its share of every batch,
and backward averages the gradients across ranks, so that every rank takes the same optimizer step.

Start the ranks with MPICH's launcher, ``mpiexec -n 4 python train.py``; a script run alone is a world of
one rank, where everything here works and communicates nothing. The optional extra ``mpi`` installs
mpi4py and MPICH from the package index: ``pip install "tape[mpi]"``. ``import tape`` never imports this
package, nor mpi4py.

- ``init``, ``rank``, ``world_size``: the world of ranks; an uncaught exception on one rank ends them all;
- ``all_reduce``, ``broadcast_parameters``, ``verify_parameters``: collective operations on arrays and
  modules;
- ``DistributedDataParallel``: a module wrapper whose backward averages the gradients in buckets, each
  sent as soon as backward has made it, while backward goes on;
- ``DistributedSampler``: each rank's share of a dataset, for ``tape.data.DataLoader``.

Examples
--------
>>> import numpy as np, tape.nn as nn
>>> from tape import distributed
>>> model = distributed.DistributedDataParallel(nn.Linear(3, 1, rng=np.random.default_rng(0)))
>>> loss = np.sum(model(np.ones((2, 3))) ** 2)
>>> loss.backward()  # the gradients are now averaged over every rank
>>> distributed.world_size(), model.module.weight.grad.shape
(1, (1, 3))
"""

from __future__ import annotations

try:
    import mpi4py  # noqa: F401  (only to say what is missing before the submodules import MPI)
except ImportError as error:
    raise ImportError(
        "tape.distributed needs mpi4py and an MPI library, which the optional extra 'mpi' installs: "
        'pip install "tape[mpi]" (or pip install mpi4py mpich)'
    ) from error

from .data_parallel import CommunicationStats, DistributedDataParallel
from .sampler import DistributedSampler
from .world import (
    all_reduce,
    broadcast_parameters,
    communicator,
    init,
    rank,
    verify_parameters,
    world_size,
)

__all__ = [
    "CommunicationStats",
    "DistributedDataParallel",
    "DistributedSampler",
    "all_reduce",
    "broadcast_parameters",
    "communicator",
    "init",
    "rank",
    "verify_parameters",
    "world_size",
]

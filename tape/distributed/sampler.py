"""``DistributedSampler`` with the number of ranks and this rank taken from the world of
``tape.distributed`` (the plain one, in ``tape.data``, needs no MPI)."""

from __future__ import annotations

from typing import Any

from .. import data
from .world import rank, world_size


class DistributedSampler(data.DistributedSampler):
    """``tape.data.DistributedSampler`` whose ``num_replicas`` and ``rank`` default to the world's.

    Examples
    --------
    >>> from tape.data import DataLoader
    >>> from tape.distributed import DistributedSampler
    >>> sampler = DistributedSampler(range(10), seed=1)
    >>> loader = DataLoader(range(10), batch_size=4, sampler=sampler)
    >>> for epoch in range(2):
    ...     sampler.set_epoch(epoch)
    ...     batches = list(loader)
    >>> len(batches)  # one rank: every example each epoch
    3
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            dataset,
            num_replicas=world_size() if num_replicas is None else num_replicas,
            rank=_this_rank() if rank is None else rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )


_this_rank = rank  # the parameter named rank hides the function inside __init__

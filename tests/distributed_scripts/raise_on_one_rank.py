"""Run under ``mpiexec -n 2``: rank 1 raises while rank 0 waits in a collective call. Every rank must end
(the exception hook aborts them all) instead of rank 0 waiting forever."""

from __future__ import annotations

import numpy as np

from tape import distributed

distributed.init()
if distributed.rank() == 1:
    raise ValueError("rank one failed on purpose")
distributed.all_reduce(np.ones(3))  # rank 1 never joins this
print("rank 0 finished the allreduce", flush=True)

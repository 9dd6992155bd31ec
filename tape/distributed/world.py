"""The world of ranks and the collective operations on arrays and modules that training needs.

Every function here is collective: each rank of the communicator must call it, in the same order, or the
ranks wait for each other forever. That is why an uncaught exception on one rank aborts every rank
(``init`` installs the hook): the others would otherwise hang in their next collective call. The world is
the process's, not a thread's: MPI has one per process.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import traceback
from types import TracebackType
from typing import Any, Literal

import numpy as np
from mpi4py import MPI

from ..grad_mode import no_grad
from ..nn.module import Module
from ..tensor import Tensor


class _World:
    """The communicator every function here uses, set by ``init`` (the first call to any of them)."""

    comm: MPI.Comm | None = None


def init(comm: MPI.Comm | None = None, abort_on_error: bool = True) -> None:
    """Join the world of ranks (MPI's ``COMM_WORLD`` unless ``comm`` is given).

    The other functions call it on first use, so calling it is needed only to choose ``comm`` or to keep
    the default hook off. With ``abort_on_error``, an exception that no code catches, in any thread, prints
    its traceback with the rank that raised it and aborts every rank (``MPI_Abort``) instead of leaving
    the others waiting in a collective call forever (a world of one rank keeps Python's hooks). Calling it
    again changes nothing.

    Examples
    --------
    >>> from tape import distributed
    >>> distributed.init()
    >>> distributed.rank(), distributed.world_size()
    (0, 1)
    """
    if _World.comm is not None:
        return
    _World.comm = MPI.COMM_WORLD if comm is None else comm
    if abort_on_error and _World.comm.Get_size() > 1:  # a rank alone has nobody to leave waiting
        _install_abort_hooks()


def communicator() -> MPI.Comm:
    """The mpi4py communicator of the world (joining it first if needed), for operations not here."""
    if _World.comm is None:
        init()
    assert _World.comm is not None
    return _World.comm


def rank() -> int:
    """This process's number in the world, from 0 to ``world_size() - 1``.

    Examples
    --------
    >>> from tape import distributed
    >>> distributed.rank()
    0
    """
    return int(communicator().Get_rank())


def world_size() -> int:
    """How many ranks the world has (1 for a script run without ``mpiexec``).

    Examples
    --------
    >>> from tape import distributed
    >>> distributed.world_size()
    1
    """
    return int(communicator().Get_size())


def all_reduce(array: Any, op: Literal["sum", "mean"] = "sum") -> np.ndarray:
    """The elementwise sum (or mean) of ``array`` over every rank, as a new array on every rank.

    ``array`` is a numpy array, a number or a tensor (read through its data: nothing is recorded). Every
    rank must pass the same shape and dtype. The mean of an integer array is a float array.

    Examples
    --------
    >>> import numpy as np
    >>> from tape import distributed
    >>> distributed.all_reduce(np.array([1.0, 2.0]), op="mean")  # one rank: the array itself
    array([1., 2.])
    """
    if op not in ("sum", "mean"):
        raise ValueError(f"all_reduce: op must be 'sum' or 'mean', got {op!r}")
    values = array.numpy() if isinstance(array, Tensor) else np.asarray(array)
    if values.dtype.kind not in "biufc":
        raise TypeError(f"all_reduce: expected an array of numbers, got dtype {values.dtype}")
    comm = communicator()
    total = np.array(values, copy=True, order="C")
    comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
    if op == "mean":
        return (
            total / comm.Get_size()
            if total.dtype.kind in "biu"
            else total / total.dtype.type(comm.Get_size())
        )
    return total


def broadcast_parameters(module: Module, root: int = 0) -> None:
    """Overwrite every rank's parameters and buffers of ``module`` with those of rank ``root``.

    Call it once before training (``DistributedDataParallel`` does), so that every rank starts from the
    same weights. The ranks' modules must have the same parameters (names, shapes, dtypes): if not, every
    rank raises a ``RuntimeError`` naming the first difference.

    Examples
    --------
    >>> import numpy as np, tape.nn as nn
    >>> from tape import distributed
    >>> layer = nn.Linear(2, 2, rng=np.random.default_rng(distributed.rank()))  # differs across ranks
    >>> distributed.broadcast_parameters(layer)  # now rank 0's weights everywhere
    """
    comm = communicator()
    if not 0 <= root < comm.Get_size():
        raise ValueError(
            f"broadcast_parameters: root must be a rank from 0 to {comm.Get_size() - 1}, got {root}"
        )
    _check_same_structure(module, comm, "broadcast_parameters")
    receiving = comm.Get_rank() != root
    for _, parameter in module.named_parameters():
        values = np.ascontiguousarray(parameter.numpy()) if not receiving else np.empty_like(parameter._data)
        comm.Bcast(values, root=root)
        if receiving:
            with no_grad():
                parameter[...] = values  # through the tensor, so that its version counter moves
    for _, buffer in module.named_buffers():
        values = np.ascontiguousarray(buffer)
        comm.Bcast(values, root=root)
        if receiving:
            buffer[...] = values


def verify_parameters(module: Module) -> None:
    """Raise a ``RuntimeError`` on every rank unless every rank's parameters of ``module`` are identical,
    bit for bit (names, shapes, dtypes and values).

    Use it to check that the ranks did not drift apart during training, or to catch a model built
    differently on some rank.

    Examples
    --------
    >>> import numpy as np, tape.nn as nn
    >>> from tape import distributed
    >>> distributed.verify_parameters(nn.Linear(2, 2, rng=np.random.default_rng(0)))
    """
    comm = communicator()
    _check_same_structure(module, comm, "verify_parameters")
    digests = [
        hashlib.sha256(np.ascontiguousarray(p.numpy()).tobytes()).hexdigest() for p in module.parameters()
    ]
    everyone = comm.allgather(digests)
    names = [name for name, _ in module.named_parameters()]
    for other, theirs in enumerate(everyone):
        for name, mine, their in zip(names, everyone[0], theirs, strict=True):
            if mine != their:
                raise RuntimeError(
                    f"verify_parameters: parameter {name!r} differs between rank 0 and rank {other}; call "
                    "tape.distributed.broadcast_parameters(module) before training (DistributedDataParallel "
                    "does), and give every rank the same gradients and optimizer"
                )


def _check_same_structure(module: Module, comm: MPI.Comm, caller: str) -> None:
    """Raise on every rank unless every rank's module has the same parameter names, shapes and dtypes."""
    mine = [(name, p.shape, p.dtype.str) for name, p in module.named_parameters()]
    mine += [(name, b.shape, b.dtype.str) for name, b in module.named_buffers()]
    everyone = comm.allgather(mine)
    for other, theirs in enumerate(everyone):
        if theirs == everyone[0]:
            continue
        first = next(
            (
                f"{a} on rank 0 but {b} on rank {other}"
                for a, b in zip(everyone[0], theirs, strict=False)
                if a != b
            ),
            f"{len(everyone[0])} parameters and buffers on rank 0 but {len(theirs)} on rank {other}",
        )
        raise RuntimeError(
            f"{caller}: the ranks' modules differ ({first}, as (name, shape, dtype)); build the same model "
            "on every rank"
        )


def _install_abort_hooks() -> None:
    def abort_every_rank(
        kind: type[BaseException], error: BaseException, trace: TracebackType | None
    ) -> None:
        comm = _World.comm if _World.comm is not None else MPI.COMM_WORLD
        where = f"rank {comm.Get_rank()} of {comm.Get_size()}"
        message = "".join(traceback.format_exception(kind, error, trace))
        sys.stderr.write(f"tape.distributed: {where} raised an uncaught exception; aborting every rank\n")
        sys.stderr.write(message)
        sys.stderr.flush()
        comm.Abort(1)

    def abort_from_thread(hook: threading.ExceptHookArgs) -> None:
        if hook.exc_type is SystemExit:
            return
        abort_every_rank(hook.exc_type, hook.exc_value or hook.exc_type(), hook.exc_traceback)

    sys.excepthook = abort_every_rank
    threading.excepthook = abort_from_thread

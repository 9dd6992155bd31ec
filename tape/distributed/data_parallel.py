"""``DistributedDataParallel``: a module wrapper whose backward averages the gradients over every rank.

The parameters are grouped into buckets of about ``bucket_cap_mb`` megabytes, in the reverse of their
order in the module, which is roughly the order in which backward finishes their gradients. Each parameter
has a post-accumulate hook (``Tensor.register_post_accumulate_grad_hook``); when the last gradient of a
bucket is final, the bucket's gradients are copied into one array and a non-blocking allreduce
(``Iallreduce``) starts, while backward goes on with the earlier layers. Buckets start in the same order on
every rank, as MPI requires, even where their gradients are ready in another order. A callback queued on
the backward (``tape.hooks.queue_callback``) waits for every bucket when backward ends and puts the
averages on ``.grad``, so ``loss.backward(); optimizer.step()`` needs nothing more.

MPICH moves a non-blocking collective along only inside MPI calls, so each hook also tests the buckets in
flight (``Testall``): that is what lets their transfer overlap the rest of backward.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mpi4py import MPI

from ..hooks import RemovableHandle, queue_callback
from ..nn.module import Module, Parameter
from .world import broadcast_parameters, communicator

MEGABYTE = 1024 * 1024


@dataclass
class CommunicationStats:
    """What the gradient averaging of the latest backward cost (``DistributedDataParallel.last_step``).

    Attributes
    ----------
    buckets : int
        Allreduces started (one per bucket).
    bytes : int
        Bytes each rank sent into them (the gradients, and one presence flag per parameter).
    started_during_backward : int
        Buckets whose allreduce started before backward ended, and could overlap it.
    backward_seconds : float
        From the first gradient made final to the end of backward's sweep.
    wait_seconds : float
        Time spent at the end of backward waiting for the allreduces still in flight: the communication
        that did not overlap backward.
    bucket_bytes, bucket_starts : list
        Each bucket's size, and when its allreduce started (seconds after the first gradient was final),
        in the order they started.
    """

    buckets: int = 0
    bytes: int = 0
    started_during_backward: int = 0
    backward_seconds: float = 0.0
    wait_seconds: float = 0.0
    bucket_bytes: list[int] = field(default_factory=list)
    bucket_starts: list[float] = field(default_factory=list)


@dataclass
class _Bucket:
    """Parameters whose gradients travel in one allreduce, and that allreduce's state in this backward."""

    parameters: list[Parameter]
    dtype: np.dtype
    elements: int
    ready: int = 0
    buffer: np.ndarray | None = None
    request: MPI.Request | None = None
    offsets: list[int] = field(default_factory=list)


class DistributedDataParallel(Module):
    """Wrap ``module`` so that backward averages each parameter's gradient over every rank.

    At construction, rank 0's parameters and buffers are broadcast to every rank, so all ranks start
    from the same weights. Give each rank its own share of every batch (``DistributedSampler``); call
    ``loss.backward()`` and the optimizer's ``step()`` as on one process. Every rank then holds the
    gradient of the mean loss over the whole batch and takes the same step, so the parameters stay
    identical.

    Parameters
    ----------
    module : Module
        The model; ``forward`` calls it. Its parameters must not change after wrapping.
    bucket_cap_mb : float
        Size of a bucket of gradients in megabytes (MiB). Smaller buckets start earlier and overlap more of
        backward, larger ones pay the per-message latency fewer times.
    broadcast : bool
        Broadcast rank 0's parameters and buffers at construction (off only if they are equal already).

    Each rank must compute a loss that depends on the parameters, or the others wait for it. Gradients
    are numpy arrays: ``backward(create_graph=True)`` is not averaged. ``no_sync()`` skips the averaging
    for gradient accumulation.

    Examples
    --------
    >>> import numpy as np, tape.nn as nn
    >>> from tape.distributed import DistributedDataParallel
    >>> model = DistributedDataParallel(nn.Linear(4, 2, rng=np.random.default_rng(0)), bucket_cap_mb=1)
    >>> optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
    >>> np.sum(model(np.ones((3, 4))) ** 2).backward()
    >>> optimizer.step()
    >>> model.last_step.buckets
    1
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0, broadcast: bool = True) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel: expected a tape.nn.Module, got {type(module).__name__}"
            )
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.comm = communicator()
        if broadcast:
            broadcast_parameters(module)
        parameters = [p for p in module.parameters() if p.requires_grad]
        self.buckets = _make_buckets(parameters, int(self.bucket_cap_mb * MEGABYTE))
        self._bucket_of = {id(p): bucket for bucket in self.buckets for p in bucket.parameters}
        self._handles: list[RemovableHandle] = [
            p.register_post_accumulate_grad_hook(self._gradient_ready) for p in parameters
        ]
        self._syncing = True
        self._in_backward = False
        self._next = 0  # the next bucket to start: buckets start in order on every rank
        self._backward_started = 0.0
        self.last_step = CommunicationStats()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped module."""
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Within this block, backward leaves each rank's gradients local (accumulated on ``.grad``); the
        first backward after it averages everything accumulated.

        Examples
        --------
        >>> import numpy as np, tape.nn as nn
        >>> from tape.distributed import DistributedDataParallel
        >>> model = DistributedDataParallel(nn.Linear(2, 1, rng=np.random.default_rng(0)))
        >>> with model.no_sync():
        ...     np.sum(model(np.ones((1, 2)))).backward()  # local only
        >>> np.sum(model(np.ones((1, 2)))).backward()  # averages both backwards' gradients
        """
        previous, self._syncing = self._syncing, False
        try:
            yield
        finally:
            self._syncing = previous

    def remove_hooks(self) -> None:
        """Stop averaging: unregister the hooks on the wrapped module's parameters."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    # -- during backward ---------------------------------------------------------------------------------
    def _gradient_ready(self, parameter: Parameter) -> None:
        if not self._syncing:
            return
        if not self._in_backward:
            self._in_backward = True
            self._backward_started = time.perf_counter()
            self.last_step = CommunicationStats()
            queue_callback(self._finish)
        bucket = self._bucket_of[id(parameter)]
        bucket.ready += 1
        if bucket.ready == len(bucket.parameters):
            while self._next < len(self.buckets) and self._full(self.buckets[self._next]):
                self._start(self.buckets[self._next])
                self.last_step.started_during_backward += 1
        in_flight = [b.request for b in self.buckets[: self._next] if b.request is not None]
        if in_flight:
            MPI.Request.Testall(in_flight)  # MPICH progresses a transfer only inside an MPI call

    @staticmethod
    def _full(bucket: _Bucket) -> bool:
        return bucket.ready == len(bucket.parameters)

    def _start(self, bucket: _Bucket) -> None:
        """Copy the bucket's gradients over the number of ranks (zeros where a rank has none), so that their
        sum is the mean, and start their allreduce."""
        count = len(bucket.parameters)
        buffer = np.empty(bucket.elements + count, dtype=bucket.dtype)
        share = bucket.dtype.type(1 / self.comm.Get_size())  # dividing on the way in saves a pass after
        for k, (parameter, offset) in enumerate(zip(bucket.parameters, bucket.offsets, strict=True)):
            grad, values = parameter._grad, buffer[offset : offset + parameter.size]
            if grad is None:
                values[...] = 0
            else:
                np.multiply(grad.reshape(-1), share, out=values)
            buffer[bucket.elements + k] = grad is not None  # summed: how many ranks had a gradient for it
        bucket.buffer = buffer
        bucket.request = self.comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        self._next += 1
        stats = self.last_step
        stats.buckets += 1
        stats.bytes += buffer.nbytes
        stats.bucket_bytes.append(buffer.nbytes)
        stats.bucket_starts.append(time.perf_counter() - self._backward_started)

    def _finish(self) -> None:
        """At the end of backward: start what is left, wait for every bucket, put the means on ``.grad``."""
        stats = self.last_step
        ended = time.perf_counter()
        stats.backward_seconds = ended - self._backward_started
        try:
            while self._next < len(self.buckets):  # buckets with a parameter no gradient reached here
                self._start(self.buckets[self._next])
            MPI.Request.Waitall([b.request for b in self.buckets if b.request is not None])
            stats.wait_seconds = time.perf_counter() - ended
            for bucket in self.buckets:
                buffer = bucket.buffer
                assert buffer is not None
                for k, (parameter, offset) in enumerate(zip(bucket.parameters, bucket.offsets, strict=True)):
                    if buffer[bucket.elements + k] == 0:
                        continue  # no rank had a gradient: .grad stays None, as on one process
                    parameter.grad = buffer[offset : offset + parameter.size].reshape(parameter.shape)
        finally:
            for bucket in self.buckets:
                bucket.ready, bucket.buffer, bucket.request = 0, None, None
            self._next = 0
            self._in_backward = False


def _make_buckets(parameters: list[Parameter], capacity: int) -> list[_Bucket]:
    """Parameters in reverse order, cut into buckets of one dtype and at most ``capacity`` bytes each (a
    parameter larger than that gets a bucket of its own)."""
    buckets: list[_Bucket] = []
    open_by_dtype: dict[np.dtype, _Bucket] = {}
    for parameter in reversed(parameters):
        bucket = open_by_dtype.get(parameter.dtype)
        if bucket is not None and (bucket.elements + parameter.size) * parameter.dtype.itemsize > capacity:
            bucket = None
        if bucket is None:
            bucket = _Bucket(parameters=[], dtype=parameter.dtype, elements=0)
            open_by_dtype[parameter.dtype] = bucket
            buckets.append(bucket)
        bucket.parameters.append(parameter)
        bucket.offsets.append(bucket.elements)
        bucket.elements += parameter.size
    return buckets

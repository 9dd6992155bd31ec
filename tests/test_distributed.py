"""tape/distributed/: data-parallel training over MPI.

The checks that need several processes start ``mpiexec -n 2`` on this machine and read what rank 0
prints: one launch holds most of them, since each launch pays for starting Python, numpy and numba on
every rank. The rest run here, in a world of one rank. Everything is skipped, with a note, where mpi4py
or MPICH's ``mpiexec`` is not installed (``pip install "tape[mpi]"``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tape
import tape.nn as nn

ROOT = Path(__file__).resolve().parent.parent


def test_tape_imports_no_mpi_and_tape_distributed_without_mpi4py_says_what_to_install():
    program = (
        "import sys, tape, tape.nn, tape.data\n"
        "assert 'mpi4py' not in sys.modules, 'import tape imported mpi4py'\n"
        "sys.modules['mpi4py'] = None  # as if it were not installed\n"
        "try:\n"
        "    import tape.distributed\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'pip install "tape[mpi]"' in result.stdout


try:
    from tape import distributed
except ImportError:
    distributed = None  # type: ignore[assignment]
needs_mpi = pytest.mark.skipif(distributed is None, reason='needs mpi4py: pip install "tape[mpi]"')


def mpiexec() -> str:
    # The mpich wheel puts mpiexec beside the interpreter; prefer it to another MPI's on PATH.
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip('needs MPICH\'s mpiexec: pip install "tape[mpi]"')
    return found


def launch(script: str, ranks: int = 2, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",  # two ranks on two cores: one BLAS thread each
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return subprocess.run(
        [mpiexec(), "-n", str(ranks), sys.executable, "-m", f"tests.distributed_scripts.{script}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def two_ranks() -> dict[str, object]:
    """What tests/distributed_scripts/check_data_parallel.py found on two ranks."""
    result = launch("check_data_parallel")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- two ranks ---------------------------------------------------------------------------------------------


@needs_mpi
def test_one_step_averages_to_the_full_batch_gradient(two_ranks):
    assert two_ranks["world_size"] == 2
    assert two_ranks["gradient_error"] < 1e-12  # float64: rank shares averaged == one process, whole batch
    assert two_ranks["buckets"] == 3


@needs_mpi
def test_every_bucket_starts_before_backward_ends(two_ranks):
    assert two_ranks["started_during_backward"] == two_ranks["buckets"]


@needs_mpi
def test_parameters_stay_bit_identical_over_50_steps(two_ranks):
    assert two_ranks["steps"] == 50
    assert two_ranks["identical_after_50_steps"]
    assert two_ranks["loss_last"] < two_ranks["loss_first"]


@needs_mpi
def test_models_that_differ_across_ranks_are_caught(two_ranks):
    assert two_ranks["different_weights_caught"]  # verify_parameters names the parameter and the ranks
    assert two_ranks["equal_after_broadcast"]
    assert two_ranks["different_shapes_caught"]  # refused on every rank, instead of a hang


@needs_mpi
def test_the_sampler_shares_cover_the_data_padded_to_equal_length(two_ranks):
    assert two_ranks["shares_equal_length"]
    covered = two_ranks["covered"]
    assert len(covered) == 12 and set(covered) == set(range(11))  # 11 examples padded with one
    assert two_ranks["all_reduce_sum"] == [3.0]


@needs_mpi
def test_a_rank_that_raises_ends_every_rank_with_its_error():
    try:
        result = launch("raise_on_one_rank", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("a rank raised and the other waited forever in its allreduce")
    assert result.returncode != 0
    assert "rank 1 of 2 raised an uncaught exception; aborting every rank" in result.stderr
    assert "ValueError: rank one failed on purpose" in result.stderr
    assert "rank 0 finished" not in result.stdout


# -- one rank, in this process -----------------------------------------------------------------------------


@needs_mpi
def test_a_world_of_one_rank():
    hooks = sys.excepthook
    assert distributed.rank() == 0 and distributed.world_size() == 1
    assert sys.excepthook is hooks  # a rank alone keeps Python's exception hooks
    np.testing.assert_array_equal(distributed.all_reduce(np.array([1, 2])), [1, 2])
    mean = distributed.all_reduce(tape.tensor([1.0, 3.0], requires_grad=True), op="mean")
    assert type(mean) is np.ndarray and mean.dtype == np.float64
    np.testing.assert_array_equal(mean, [1.0, 3.0])
    with pytest.raises(ValueError, match="op must be 'sum' or 'mean', got 'max'"):
        distributed.all_reduce(np.ones(2), op="max")  # type: ignore[arg-type]


@needs_mpi
def test_data_parallel_on_one_rank_trains_exactly_as_the_module_alone():
    x, y = np.random.default_rng(0).normal(size=(12, 5)), np.arange(12) % 3

    def trained(wrap: bool) -> list[np.ndarray]:
        model = nn.Linear(5, 3, dtype=np.float64, rng=np.random.default_rng(1))
        net = distributed.DistributedDataParallel(model, bucket_cap_mb=1e-4) if wrap else model
        optimizer = nn.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(3):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
        return [p.numpy().copy() for p in model.parameters()]

    for wrapped, alone in zip(trained(True), trained(False), strict=True):
        np.testing.assert_array_equal(wrapped, alone)


@needs_mpi
def test_buckets_follow_the_cap_in_reverse_order_one_dtype_each():
    model = nn.Sequential(
        nn.Linear(100, 100, dtype=np.float64, rng=np.random.default_rng(0)),  # 80 kB of weights
        nn.Linear(100, 10, dtype=np.float32, rng=np.random.default_rng(0)),
    )
    wrapped = distributed.DistributedDataParallel(model, bucket_cap_mb=0.05)
    layouts = [[tuple(p.shape) for p in bucket.parameters] for bucket in wrapped.buckets]
    assert layouts == [[(10,), (10, 100)], [(100,)], [(100, 100)]]  # the last layer first
    assert [bucket.dtype for bucket in wrapped.buckets] == [np.float32, np.float64, np.float64]
    names = [name for name, _ in wrapped.named_parameters()]
    assert names[0] == "module.0.weight"  # the wrapped module is a sub-module, as in torch
    with pytest.raises(ValueError, match="bucket_cap_mb must be positive, got 0"):
        distributed.DistributedDataParallel(model, bucket_cap_mb=0)
    with pytest.raises(TypeError, match=r"expected a tape\.nn\.Module, got list"):
        distributed.DistributedDataParallel([])  # type: ignore[arg-type]


@needs_mpi
def test_no_sync_accumulates_locally_and_an_unused_parameter_keeps_no_grad():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(2, 1, dtype=np.float64, rng=np.random.default_rng(0))
            self.unused = nn.Linear(2, 1, dtype=np.float64, rng=np.random.default_rng(0))

        def forward(self, x):
            return self.used(x)

    model = distributed.DistributedDataParallel(TwoHeads())
    with model.no_sync():
        np.sum(model(np.ones((1, 2)))).backward()
    assert model.last_step.buckets == 0  # nothing was sent
    np.sum(model(np.ones((1, 2)))).backward()
    np.testing.assert_array_equal(model.module.used.weight.grad, [[2.0, 2.0]])
    assert model.module.unused.weight.grad is None
    assert model.last_step.buckets == 1 and model.last_step.bytes == 8 * (2 + 1 + 2 + 1 + 4)


@needs_mpi
def test_broadcast_and_verify_on_one_rank_keep_the_weights():
    model = nn.Linear(3, 2, dtype=np.float64, rng=np.random.default_rng(0))
    before = model.weight.numpy().copy()
    distributed.broadcast_parameters(model)
    distributed.verify_parameters(model)
    np.testing.assert_array_equal(model.weight.numpy(), before)
    with pytest.raises(ValueError, match="root must be a rank from 0 to 0, got 1"):
        distributed.broadcast_parameters(model, root=1)


@needs_mpi
def test_the_sampler_takes_the_world_by_default():
    sampler = distributed.DistributedSampler(range(7), seed=4)
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (1, 0, 7)
    assert sorted(sampler) == list(range(7))

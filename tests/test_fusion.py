"""Fused elementwise kernels of ``tape.compile``: the same numbers as the eager ops (to rounding), their numpy
twins the same as the kernels, regions cut where they must be, and kernels found again by the next process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tape
from tape import jit

#: Fused kernels exist only where JIT is on (TAPE_JIT=0 runs each program's own ops).
needs_jit = pytest.mark.skipif(not jit.DEFAULT_ENABLED, reason="TAPE_JIT=0: programs are not fused")

UNARY = {
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "exp": lambda x: np.exp(x / 4),
    "square": np.square,
    "negative": np.negative,
    "sqrt": lambda x: np.sqrt(x * x + 1.0),
    "log": lambda x: np.log(x * x + 0.5),
    "cube": lambda x: x**3,
    "relu": tape.nn.functional.relu,
}
BINARY = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": lambda x, y: x / (y * y + 1.0),
    "maximum": np.maximum,
    "minimum": np.minimum,
    "where": lambda x, y: np.where(x > y, x * 2.0, y - 1.0),
}


def program_of(plan):
    """A function of two arrays applying ``plan``: unary ops on the running value, binary ones with ``y``."""

    def f(x, y):
        value = x
        for name in plan:
            value = UNARY[name](value) if name in UNARY else BINARY[name](value, y)
        return value

    return f


def run(f, x, y, seed=0):
    tx, ty = tape.tensor(x, requires_grad=True), tape.tensor(y, requires_grad=True)
    out = f(tx, ty)
    out.backward(np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype))
    return [out.numpy().copy(), tx.grad, ty.grad]


def assert_close(mine, theirs, dtype):
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(mine, theirs, strict=True):
        if b is None:
            assert a is None
            continue
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance * max(1.0, float(np.max(np.abs(b)))))


@settings(max_examples=12)  # each example compiles kernels of its own
@given(
    plan=st.lists(st.sampled_from(sorted(UNARY) + sorted(BINARY)), min_size=2, max_size=12),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_fused_programs_agree_with_eager_and_their_twins(plan, dtype, seed):
    rng = np.random.default_rng(seed)
    x, y = (rng.uniform(-1.5, 1.5, (3, 4)).astype(dtype) for _ in range(2))
    f = program_of(plan)
    compiled = tape.compile(f)
    fused = run(compiled, x, y)
    eager = run(f, x, y)
    assert_close(fused, eager, dtype)
    with jit.disabled():  # the program's own ops: eager's numbers to the bit
        for mine, theirs in zip(run(compiled, x, y), eager, strict=True):
            np.testing.assert_array_equal(mine, theirs) if theirs is not None else None
    for program in compiled.programs():
        for region in program.regions:
            check_twins(region, rng)


def check_twins(region, rng):
    """Each region's kernels against their numpy twins, on fresh values of the region's shape."""
    count = int(np.prod(region.shape))
    inputs = [rng.uniform(-1.5, 1.5, count).astype(region.dtype) for _ in region.inputs]
    outputs = [[np.empty(count, dtype) for dtype in region.output_dtypes] for _ in range(2)]
    for target, call in zip(outputs, (region.forward_kernel, region.forward_kernel.twin), strict=True):
        call(*inputs, *target)
    for compiled, twin in zip(*outputs, strict=True):
        assert_close([compiled], [twin], compiled.dtype) if compiled.dtype != bool else None
    if region.backward_kernel is None:
        return
    cotangents = [rng.standard_normal(count).astype(region.dtype) for _ in region.outputs]
    results = [[np.empty(count, region.dtype) for _ in region.differentiated] for _ in range(2)]
    for target, call in zip(results, (region.backward_kernel, region.backward_kernel.twin), strict=True):
        call(region.dtype.type(0), *inputs, *cotangents, *target)
    assert_close(results[0], results[1], region.dtype)


@needs_jit
def test_a_chain_is_one_region_and_a_product_cuts_it():
    w = tape.tensor(np.ones((4, 4)) / 4, requires_grad=True)

    def f(x):
        h = np.tanh(np.sin(x) * 2.0 + 1.0)
        return np.sum(np.exp(h @ w) * h)

    x = np.random.default_rng(1).standard_normal((3, 4))
    program = tape.compile(f).program(x)
    assert [len(region.steps) for region in program.regions] == [4, 2]
    first = program.regions[0]
    assert first.outputs == [first.steps[-1].outs[0]]  # tanh's output: read by matmul and its VJP


def test_broadcasting_cuts_a_region_and_stays_right():
    def f(x, b):
        return np.sum(np.tanh(np.sin(x) + b) * 3.0)

    x, b = np.random.default_rng(2).standard_normal((5, 3)), np.random.default_rng(3).standard_normal(3)
    compiled = tape.compile(f)
    regions = compiled.program(x, b).regions
    assert all(region.shape == (5, 3) for region in regions)
    for mine, theirs in zip(
        tape.grad(compiled, argnums=(0, 1))(x, b), tape.grad(f, argnums=(0, 1))(x, b), strict=True
    ):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)


@needs_jit
def test_values_unused_outside_are_never_written():
    compiled = tape.compile(lambda x: np.sum(np.cos(np.sin(x) * 2.0)))
    region = compiled.program(np.ones(3)).regions[0]
    assert len(region.outputs) == 1 and len(region.steps) == 3


@needs_jit
def test_kernels_are_found_again_by_the_next_process(tmp_path):
    script = textwrap.dedent(
        """
        import numpy as np, tape
        compiled = tape.compile(lambda x: np.sum(np.tanh(np.sin(x) * 1.5)))
        x = tape.tensor(np.linspace(0, 1, 5), requires_grad=True)
        compiled(x).backward()
        region = compiled.programs()[0].regions[0]
        kernels = (region.forward_kernel, region.backward_kernel)
        print(sum(sum(kernel.compiled().stats.cache_hits.values()) for kernel in kernels))
        """
    )
    environment = {**os.environ, "TAPE_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    assert [int(run.stdout.split()[-1]) for run in runs] == [0, 2]
    assert len(list((tmp_path / "fused").glob("tape_fused_*.py"))) == 1


@needs_jit
def test_float32_stays_float32_with_python_numbers():
    compiled = tape.compile(lambda x: np.sum(np.tanh(x * 1.01 + 0.5) ** 2))
    x = tape.tensor(np.linspace(-1, 1, 7, dtype=np.float32), requires_grad=True)
    out = compiled(x)
    out.backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32
    assert "np.float32(1.0099999904632568)" in compiled.programs()[0].regions[0].source


@pytest.mark.parametrize(
    "x", [np.array([0.0, 1.0, np.nan, -np.inf, np.inf]), np.array([2.0, 2.0, 2.0, -1.0, 0.0])]
)
def test_ties_and_special_values_follow_the_eager_ops(x):
    def f(x, y):
        return np.maximum(x, y) * 2.0 + np.minimum(x, y) * np.sqrt(np.abs(y) + 1.0)

    y = np.array([0.0, 1.0, 1.0, 0.0, 2.0])
    with np.errstate(invalid="ignore"):
        fused, eager = run(tape.compile(f), x, y), run(f, x, y)
    for mine, theirs in zip(fused, eager, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, equal_nan=True)

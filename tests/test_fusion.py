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
    "clip": lambda x: np.clip(x, -0.5, 0.75),
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
    """Each region's kernels against their numpy twins, on fresh values of the inputs' shapes."""
    inputs = [
        rng.uniform(-1.5, 1.5, region.shapes[slot]) > 0
        if dtype == np.dtype(bool)
        else rng.uniform(-1.5, 1.5, region.shapes[slot]).astype(dtype)
        for slot, dtype in zip(region.inputs, region.input_dtypes, strict=True)
    ]
    compiled = region.forward(*inputs)
    with jit.disabled():
        twin = region.forward(*inputs)
    for mine, theirs in zip(compiled, twin, strict=True):
        assert mine.shape == theirs.shape and mine.dtype == theirs.dtype
        assert_close([mine], [theirs], mine.dtype) if mine.dtype != bool else np.testing.assert_array_equal(
            mine, theirs
        )
    if region.backward_kernel is None:
        return
    cotangents = [rng.standard_normal(region.shapes[slot]).astype(region.dtype) for slot in region.received]
    compiled = region.backward(*inputs, *cotangents)
    with jit.disabled():
        twin = region.backward(*inputs, *cotangents)
    assert_close(list(compiled), list(twin), region.dtype)


@settings(max_examples=10)  # each example compiles kernels of its own
@given(
    plan=st.lists(st.sampled_from(sorted(UNARY) + sorted(BINARY)), min_size=2, max_size=8),
    y_shape=st.sampled_from([(), (4,), (1, 4), (3, 1), (3, 4)]),
    axis=st.sampled_from([None, 0, 1, -1, (0, 1)]),
    keepdims=st.booleans(),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_broadcasts_and_a_final_sum_agree_with_eager_and_their_twins(
    plan, y_shape, axis, keepdims, dtype, seed
):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-1.5, 1.5, (3, 4)).astype(dtype), rng.uniform(-1.5, 1.5, y_shape).astype(dtype)
    body = program_of(plan)

    def f(x, y):
        return np.sum(body(x, y), axis=axis, keepdims=keepdims)

    compiled = tape.compile(f)
    assert_close(run(compiled, x, y), run(f, x, y), dtype)
    for program in compiled.programs():
        for region in program.regions:
            check_twins(region, rng)


@needs_jit
@pytest.mark.parametrize("read_before", [False, True])
def test_a_large_tanh_feeding_a_region_has_its_vjp_run_by_the_kernel(read_before):
    # ``read_before``: the tanh is also read before the region ends, so its whole cotangent is not known
    # when the kernel runs, and the region must leave it alone.
    w = np.random.default_rng(4).standard_normal((64, 3))

    def f(x, y):
        t = np.tanh(x)
        product = np.sum((t @ w) ** 2) if read_before else 0.0
        total = np.sum(t * y + x * 0.5)
        return total + np.sum((t @ w) ** 2) if not read_before else total + product

    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((64, 64)), rng.standard_normal(64)
    compiled = tape.compile(f)
    region = max(compiled.program(x, y).regions, key=lambda region: region.shape)
    assert [step.op.name for step in region.precomputed] == ([] if read_before else ["tanh"])
    assert_close(run(compiled, x, y), run(f, x, y), np.float64)


def test_clip_fuses_and_keeps_the_eager_choices_at_the_bounds():
    def f(x):
        return np.clip(x * 1.0, -1.0, 2.0) * 3.0

    x = np.array([-2.0, -1.0, 0.5, 2.0, 3.0, np.nan, -np.inf, np.inf])
    compiled = tape.compile(f)
    if jit.DEFAULT_ENABLED:
        assert [step.op.name for step in compiled.program(x).regions[0].steps] == [
            "multiply",
            "clip",
            "multiply",
        ]

    def value_and_grad(function):
        t = tape.tensor(x, requires_grad=True)
        out = function(t)
        out.backward(np.ones_like(x))
        return out.numpy(), t.grad

    for mine, theirs in zip(value_and_grad(compiled), value_and_grad(f), strict=True):
        np.testing.assert_array_equal(mine, theirs)


@needs_jit
def test_a_chain_is_one_region_and_a_product_cuts_it():
    w = tape.tensor(np.ones((4, 4)) / 4, requires_grad=True)

    def f(x):
        h = np.tanh(np.sin(x) * 2.0 + 1.0)
        return np.sum(np.exp(h @ w) * h)

    x = np.random.default_rng(1).standard_normal((3, 4))
    program = tape.compile(f).program(x)
    assert [len(region.steps) for region in program.regions] == [4, 3]  # (the second ends with the sum)
    first = program.regions[0]
    assert first.outputs == [first.steps[-1].outs[0]]  # tanh's output: read by matmul and its VJP


@needs_jit
def test_broadcast_inputs_and_a_final_sum_join_the_region():
    def f(x, b):
        return np.sum(np.tanh(np.sin(x) + b) * 3.0)

    x, b = np.random.default_rng(2).standard_normal((5, 3)), np.random.default_rng(3).standard_normal(3)
    compiled = tape.compile(f)
    (region,) = compiled.program(x, b).regions
    assert region.shape == (5, 3) and len(region.steps) == 5 and region.views[region.outputs[0]] == (1, 1)
    for mine, theirs in zip(
        tape.grad(compiled, argnums=(0, 1))(x, b), tape.grad(f, argnums=(0, 1))(x, b), strict=True
    ):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)


@needs_jit
def test_values_unused_outside_are_never_written():
    compiled = tape.compile(lambda x: np.sum(np.cos(np.sin(x) * 2.0)))
    region = compiled.program(np.ones(3)).regions[0]
    assert len(region.steps) == 4 and region.outputs == [region.steps[-1].outs[0]]  # only the sum


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

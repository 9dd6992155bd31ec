"""Differential fuzzing: random small numpy programs (``tests/fuzz_programs.py``) run on tape's tensors, and
their derivatives checked against oracles that share no code with tape's VJPs.

* Finite differences, always: ``tape.gradcheck`` and ``tape.gradgradcheck`` of the program's loss, and, for
  each transform in ``TRANSFORMS`` (``grad`` of ``grad``, ``jacobian`` of ``grad``, ``hessian``, ``hvp``,
  ``jvp`` of ``grad``, ``jvp``, ``vjp``, ``jacobian``, with inner and outer argnums drawn), central
  differences of its inner transform evaluated at top level, where a transform sees plain arrays.
* PyTorch, when installed: the same program interpreted with torch; its gradient and Hessian-vector product
  by double backward, and each transform in ``TRANSFORMS`` by ``torch.func``.
* Writes into values that earlier steps made (``v += ...``, seen through every view of ``v``) must give
  numpy's forward and, unless tape refuses at backward because a saved value changed, gradients that agree
  with finite differences.

float64 and float32 are both checked; float32 results are compared with float64 finite differences or with
torch in float32, at float32's precision. The number of examples follows the hypothesis profile
(tests/conftest.py); set ``TAPE_FUZZ_EXAMPLES`` to run more, e.g.
``TAPE_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

import tape
from tests.fuzz_programs import PURE_OPS, Program, TorchAsNumpy, outputs, programs, run
from tests.strategies import FLOAT_DTYPES

FUZZ_SETTINGS = (
    settings(max_examples=int(os.environ["TAPE_FUZZ_EXAMPLES"]))
    if os.environ.get("TAPE_FUZZ_EXAMPLES")
    else settings()
)

# (rtol, atol relative to the largest expected magnitude) for comparing with an exact oracle (torch) and with
# central finite differences, by the dtype tape computed in.
EXACT_TOLERANCES = {np.float64: (1e-9, 1e-10), np.float32: (2e-3, 2e-4)}
FINITE_DIFFERENCE_TOLERANCES = {np.float64: (1e-5, 1e-6), np.float32: (2e-3, 2e-4)}

# torch 2.13's forward mode gives ``1.0 / t`` of a 0-d float32 tensor a float64 tangent, and writing it into a
# float32 tensor then fails. The torch.func comparison skips such an example (finite differences check it):
#     def f(a, b):
#         w = torch.clone(b)
#         w[[0]] = 1.0 / (1.0 + torch.exp(-a))
#         return w.sum()
#     torch.func.hessian(f, (0, 1))(torch.tensor(0.4), torch.tensor([0.3]))  # RuntimeError: Index put ...
TORCH_FORWARD_MODE_INDEX_PUT_BUG = "Index put requires the source and destination dtypes match"


def assert_close(actual: Any, expected: Any, tolerances: tuple[float, float], what: str) -> None:
    actual = np.asarray(plain(actual), dtype=np.float64)
    expected = np.asarray(plain(expected), dtype=np.float64)
    rtol, atol = tolerances
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def plain(value: Any) -> Any:
    if isinstance(value, tape.Tensor):
        return value.data
    if hasattr(value, "detach"):  # a torch tensor; torch.func returns a symbolic "zero tensor" for zeros
        return np.zeros(tuple(value.shape)) if value._is_zerotensor() else value.detach().numpy()
    return value


def leaves(tree: Any) -> list[Any]:
    """The arrays of a nested tuple, depth first."""
    if isinstance(tree, tuple | list):
        return [leaf for item in tree for leaf in leaves(item)]
    return [tree]


def loss_of(program: Program) -> Callable[..., Any]:
    def loss(*inputs: Any) -> Any:
        return run(program, np, inputs)

    return loss


def outputs_of(program: Program) -> Callable[..., Any]:
    def program_outputs(*inputs: Any) -> Any:
        return outputs(program, np, inputs)

    return program_outputs


@dataclass
class Probes:
    """Fixed random arrays the transforms are applied with, at the dtype being checked."""

    tangents: list[np.ndarray]  # one per input: the direction of jvp and hvp
    cotangents: list[np.ndarray]  # one per output of the program: what vjp pulls back
    weight: np.ndarray  # contracts an inner gradient (of input i) to a scalar for grad of grad


def probes_for(program: Program, dtype: Any, i: int) -> Probes:
    rng = np.random.default_rng(1)
    uniform = lambda shape: rng.uniform(-1, 1, shape).astype(dtype)
    return Probes(
        tangents=[uniform(x.shape) for x in program.inputs],
        cotangents=[uniform(weight.shape) for _, weight in program.weights],
        weight=uniform(program.inputs[i].shape),
    )


def central_difference(
    function: Callable[..., Any], inputs: Sequence[np.ndarray], direction: Sequence[Any]
) -> list[np.ndarray]:
    """d/dt function(inputs + t direction) at t = 0, in float64, one array per leaf of the result."""
    eps = 1e-6
    base = [np.asarray(x, np.float64) for x in inputs]
    up = function(*(x + eps * d for x, d in zip(base, direction, strict=True)))
    down = function(*(x - eps * d for x, d in zip(base, direction, strict=True)))
    return [
        (np.asarray(plain(a), np.float64) - np.asarray(plain(b), np.float64)) / (2 * eps)
        for a, b in zip(leaves(up), leaves(down), strict=True)
    ]


def finite_jacobian(function: Callable[..., Any], inputs: Sequence[np.ndarray], wrt: int) -> np.ndarray:
    """d function(*inputs) / d inputs[wrt] for a function with one result, by central differences, in JAX's
    layout (output shape + input shape)."""
    base = np.asarray(inputs[wrt], np.float64)
    columns = []
    for index in np.ndindex(base.shape):
        direction = [np.zeros(np.shape(x)) for x in inputs]
        direction[wrt][index] = 1.0
        columns.append(central_difference(function, inputs, direction)[0])
    return np.stack(columns, axis=-1).reshape(np.shape(columns[0]) + base.shape)


# -- one transform, three ways: tape, finite differences of the inner transform, torch.func ---------------
TRANSFORMS = ["grad of grad", "jacobian of grad", "hessian", "hvp", "jvp of grad", "jvp", "vjp", "jacobian"]


def with_tape(transform: str, program: Program, inputs: list[np.ndarray], i: int, j: int) -> Any:
    """``transform`` of the program with tape; ``i`` is the inner transform's argnum, ``j`` the outer's."""
    loss, program_outputs = loss_of(program), outputs_of(program)
    probes = probes_for(program, inputs[0].dtype, i)
    everything = tuple(range(len(inputs)))
    if transform == "grad of grad":
        return tape.grad(lambda *xs: np.sum(tape.grad(loss, i)(*xs) * probes.weight), j)(*inputs)
    if transform == "jacobian of grad":
        return tape.jacobian(tape.grad(loss, i), j)(*inputs)
    if transform == "hessian":
        return tape.hessian(loss, everything)(*inputs)
    if transform == "hvp":
        return tape.hvp(loss, inputs, probes.tangents)
    if transform == "jvp of grad":
        return tape.jvp(tape.grad(loss, i), inputs, probes.tangents)[1]
    if transform == "jvp":
        return tape.jvp(program_outputs, inputs, probes.tangents)[1]
    if transform == "jacobian":
        return tape.jacobian(program_outputs, j)(*inputs)
    assert transform == "vjp"
    return tape.vjp(program_outputs, *inputs)[1](tuple(probes.cotangents))


def by_finite_differences(transform: str, program: Program, dtype: Any, i: int, j: int) -> Any:
    """What ``with_tape`` should give, from central differences of the inner transform at top level (where it
    returns plain arrays), in float64."""
    inputs = list(program.inputs)
    loss, program_outputs = loss_of(program), outputs_of(program)
    probes = probes_for(program, dtype, i)
    everything = tuple(range(len(inputs)))
    if transform == "grad of grad":
        inner = lambda *xs: np.sum(tape.grad(loss, i)(*xs) * probes.weight)
        return finite_jacobian(inner, inputs, j)
    if transform == "jacobian of grad":
        return finite_jacobian(tape.grad(loss, i), inputs, j)
    if transform == "hessian":
        return [[finite_jacobian(tape.grad(loss, a), inputs, b) for b in everything] for a in everything]
    if transform == "hvp":
        return central_difference(tape.grad(loss, everything), inputs, probes.tangents)
    if transform == "jvp of grad":
        return central_difference(tape.grad(loss, i), inputs, probes.tangents)
    if transform == "jvp":
        return central_difference(program_outputs, inputs, probes.tangents)
    if transform == "jacobian":
        return [
            finite_jacobian(lambda *xs, k=k: program_outputs(*xs)[k], inputs, j)
            for k in range(len(program.weights))
        ]
    assert transform == "vjp"
    pairing = lambda *xs: sum(
        np.sum(value * u) for value, u in zip(program_outputs(*xs), probes.cotangents, strict=True)
    )
    return [finite_jacobian(pairing, inputs, k) for k in everything]


def with_torch(torch: Any, transform: str, program: Program, inputs: list[np.ndarray], i: int, j: int) -> Any:
    """What ``with_tape`` should give, from ``torch.func`` on the program interpreted with torch."""
    func = torch.func
    namespace = TorchAsNumpy(torch)
    loss = lambda *xs: run(program, namespace, xs)
    program_outputs = lambda *xs: outputs(program, namespace, xs)
    probes = probes_for(program, inputs[0].dtype, i)
    primals = tuple(torch.tensor(x) for x in inputs)
    tangents = tuple(torch.tensor(t) for t in probes.tangents)
    everything = tuple(range(len(inputs)))
    if transform == "grad of grad":
        weight = torch.tensor(probes.weight)
        return func.grad(lambda *xs: (func.grad(loss, i)(*xs) * weight).sum(), j)(*primals)
    if transform == "jacobian of grad":
        return func.jacrev(func.grad(loss, i), j)(*primals)
    if transform == "hessian":
        return func.hessian(loss, everything)(*primals)
    if transform == "hvp":
        return func.jvp(func.grad(loss, everything), primals, tangents)[1]
    if transform == "jvp of grad":
        return func.jvp(func.grad(loss, i), primals, tangents)[1]
    if transform == "jvp":
        return func.jvp(program_outputs, primals, tangents)[1]
    if transform == "jacobian":
        return func.jacrev(program_outputs, j)(*primals)
    assert transform == "vjp"
    return func.vjp(program_outputs, *primals)[1](tuple(torch.tensor(u) for u in probes.cotangents))


def assert_transform_agrees(got: Any, expected: Any, dtype: Any, tolerances: tuple[float, float], what: str):
    got_leaves, expected_leaves = leaves(got), leaves(expected)
    assert len(got_leaves) == len(expected_leaves), f"{what}: {len(got_leaves)} results"
    for k, (actual, wanted) in enumerate(zip(got_leaves, expected_leaves, strict=True)):
        assert not isinstance(actual, tape.Tensor), f"{what}: a top-level transform returns plain arrays"
        assert np.asarray(actual).dtype == dtype, f"{what}: result {k} has dtype {np.asarray(actual).dtype}"
        assert_close(actual, np.reshape(plain(wanted), np.shape(actual)), tolerances, f"{what}, result {k}")


argnums = st.integers(0, 2)


# -- finite differences --------------------------------------------------------------------------------------
@FUZZ_SETTINGS
@given(program=programs(), dtype=st.sampled_from(FLOAT_DTYPES))
def test_gradients_agree_with_finite_differences(program, dtype):
    inputs = program.inputs_as(dtype)
    loss = loss_of(program)
    assert tape.gradcheck(loss, *inputs)
    assert tape.gradgradcheck(loss, *inputs)


@FUZZ_SETTINGS
@given(
    program=programs(),
    dtype=st.sampled_from(FLOAT_DTYPES),
    transform=st.sampled_from(TRANSFORMS),
    inner=argnums,
    outer=argnums,
)
def test_transforms_agree_with_finite_differences_of_the_inner_transform(
    program, dtype, transform, inner, outer
):
    i, j = inner % len(program.inputs), outer % len(program.inputs)
    got = with_tape(transform, program, program.inputs_as(dtype), i, j)
    expected = by_finite_differences(transform, program, dtype, i, j)
    assert_transform_agrees(got, expected, dtype, FINITE_DIFFERENCE_TOLERANCES[dtype], transform)


# -- PyTorch -------------------------------------------------------------------------------------------------
@FUZZ_SETTINGS
@given(program=programs(), dtype=st.sampled_from(FLOAT_DTYPES))
def test_gradients_and_hessian_vector_products_agree_with_torch(program, dtype):
    check_against_torch(loss_of(program), program, program.inputs_as(dtype), dtype)


@FUZZ_SETTINGS
@given(program=programs(), dtype=st.sampled_from(FLOAT_DTYPES))
def test_compiled_programs_agree_with_torch(program, dtype):
    """tape.compile of the loss: recorded at the inputs, replayed at other values (fused kernels included),
    and differentiated twice (a replay of its program through the ops). A write in place that a replay could
    not repeat (into a value that has other views) is refused while recording, and only that."""
    compiled = tape.compile(loss_of(program))
    inputs = program.inputs_as(dtype)
    try:
        for values in (inputs, [np.asarray(x * dtype(1.25) - dtype(0.125), dtype=dtype) for x in inputs]):
            check_against_torch(compiled, program, values, dtype)
    except tape.TraceError as error:
        assert "in place" in str(error), str(error)
        return
    assert compiled.recordings == 1


def check_against_torch(
    loss: Callable[..., Any], program: Program, inputs: Sequence[Any], dtype: Any
) -> None:
    """``loss``'s value, gradient and Hessian-vector product at ``inputs`` against PyTorch's, run on the
    same program."""
    torch = pytest.importorskip("torch")
    tangents = probes_for(program, dtype, 0).tangents
    everything = tuple(range(len(inputs)))
    value, gradient = tape.value_and_grad(loss, everything)(*inputs)
    hessian_vector = tape.hvp(loss, inputs, tangents)

    leaves_torch = [torch.tensor(x, requires_grad=True) for x in inputs]
    loss_torch = run(program, TorchAsNumpy(torch), leaves_torch)
    gradient_torch = torch.autograd.grad(
        loss_torch, leaves_torch, create_graph=True, allow_unused=True, materialize_grads=True
    )
    pairing = sum((g * torch.tensor(t)).sum() for g, t in zip(gradient_torch, tangents, strict=True))
    if pairing.requires_grad:
        hessian_vector_torch = torch.autograd.grad(
            pairing, leaves_torch, allow_unused=True, materialize_grads=True
        )
    else:  # the program is linear in its inputs
        hessian_vector_torch = [torch.zeros_like(x) for x in leaves_torch]

    tolerances = EXACT_TOLERANCES[dtype]
    assert np.asarray(value).dtype == dtype
    assert_close(value, loss_torch, tolerances, "loss")
    for k in everything:
        assert gradient[k].dtype == dtype and hessian_vector[k].dtype == dtype
        assert_close(gradient[k], gradient_torch[k], tolerances, f"gradient of input {k}")
        assert_close(
            hessian_vector[k], hessian_vector_torch[k], tolerances, f"Hessian-vector product, input {k}"
        )


@FUZZ_SETTINGS
@given(
    program=programs(),
    dtype=st.sampled_from(FLOAT_DTYPES),
    transform=st.sampled_from(TRANSFORMS),
    inner=argnums,
    outer=argnums,
)
def test_transforms_agree_with_torch_func(program, dtype, transform, inner, outer):
    torch = pytest.importorskip("torch")
    i, j = inner % len(program.inputs), outer % len(program.inputs)
    inputs = program.inputs_as(dtype)
    got = with_tape(transform, program, inputs, i, j)
    try:
        expected = with_torch(torch, transform, program, inputs, i, j)
    except RuntimeError as error:
        if TORCH_FORWARD_MODE_INDEX_PUT_BUG not in str(error):
            raise
        reject()  # the oracle fails, not tape
    assert_transform_agrees(got, expected, dtype, EXACT_TOLERANCES[dtype], transform)


# -- writes into earlier values ------------------------------------------------------------------------------
#: Every op, with writes into earlier values drawn about one step in eight.
OPS_WITH_WRITES = (*PURE_OPS, *["update_earlier_value_in_place"] * 8)


@FUZZ_SETTINGS
@given(program=programs(ops=OPS_WITH_WRITES), dtype=st.sampled_from(FLOAT_DTYPES))
def test_writes_into_earlier_values_follow_numpy_or_are_refused(program, dtype):
    inputs = program.inputs_as(dtype)
    expected = run(program, np, inputs)
    leaves_tape = [tape.tensor(x, requires_grad=True) for x in inputs]
    assert_close(run(program, np, leaves_tape), expected, EXACT_TOLERANCES[dtype], "loss, against numpy")
    try:
        assert tape.gradcheck(loss_of(program), *inputs)
        assert tape.gradgradcheck(loss_of(program), *inputs)
    except RuntimeError as error:
        if "was changed in place after" not in str(error):
            raise


@FUZZ_SETTINGS
@given(
    program=programs(ops=OPS_WITH_WRITES),
    dtype=st.sampled_from(FLOAT_DTYPES),
    transform=st.sampled_from(["jvp", "vjp", "jacobian"]),
    outer=argnums,
)
def test_transforms_of_programs_that_write_return_what_they_wrote(program, dtype, transform, outer):
    # The program's values are returned as they are, so a view cut before a later write is where the sweep
    # starts: its derivative must be the written values'.
    j = outer % len(program.inputs)
    try:
        got = with_tape(transform, program, program.inputs_as(dtype), 0, j)
    except RuntimeError as error:
        if "was changed in place after" not in str(error):
            raise
        return  # refused, never wrong
    expected = by_finite_differences(transform, program, dtype, 0, j)
    assert_transform_agrees(got, expected, dtype, FINITE_DIFFERENCE_TOLERANCES[dtype], transform)

"""Differential suite: small programs of in-place numpy idioms, run on tape, numpy and PyTorch.

Each program is written once against a small backend table (numpy, tape, torch) and run on each:

* on tape, its values must equal plain numpy's (the oracle, which has numpy's own view and repeated-index
  semantics) and its gradients must equal central finite differences of the numpy forward;
* on PyTorch (when installed), its values and gradients must equal tape's; where PyTorch refuses, tape
  must refuse at the same point (at the write, or at backward) with a message that says what happened,
  except in the programs marked ``TorchRefuses``: there tape keeps a copy of what PyTorch would have
  lost, and its gradients are checked against finite differences instead.

Programs whose PyTorch counterpart is nondeterministic (``index_put_`` and ``scatter_`` with a repeated
index) are compared with numpy and finite differences only. This file does not test any op on its own:
``tests/test_in_place.py`` does; here the programs are the unit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import tape
import tape.nn.functional as F

X = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4))
V = np.random.default_rng(1).uniform(0.5, 1.5, 4)
INPUTS = {"x": X, "v": V}
FINITE_DIFFERENCE_STEP = 1e-6


# -- backends ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    """The few calls in which numpy, tape and PyTorch spell the same program differently."""

    name: str
    leaf: Callable[[np.ndarray], Any]
    constant: Callable[[np.ndarray], Any]
    index: Callable[[np.ndarray], Any]
    zeros: Callable[[tuple[int, ...]], Any]
    exp: Callable[[Any], Any]
    sin: Callable[[Any], Any]
    tanh: Callable[[Any], Any]
    sigmoid: Callable[[Any], Any]
    put_along_axis: Callable[[Any, np.ndarray, Any, int], None]
    copy_into: Callable[[Any, Any], None]
    add_into: Callable[[Any, Any, Any], None]
    no_grad: Callable[[], contextlib.AbstractContextManager]
    values: Callable[[Any], np.ndarray]
    grad: Callable[[Any], np.ndarray]


def _numpy_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


NUMPY = Backend(
    name="numpy",
    leaf=lambda a: np.array(a, dtype=np.float64),
    constant=np.asarray,
    index=np.asarray,
    zeros=lambda shape: np.zeros(shape),
    exp=np.exp,
    sin=np.sin,
    tanh=np.tanh,
    sigmoid=_numpy_sigmoid,
    put_along_axis=np.put_along_axis,
    copy_into=np.copyto,
    add_into=lambda a, b, out: np.add(a, b, out=out),
    no_grad=contextlib.nullcontext,
    values=lambda a: np.array(a, dtype=np.float64),
    grad=lambda a: np.full(np.shape(a), np.nan),
)

TAPE = Backend(
    name="tape",
    leaf=lambda a: tape.tensor(np.array(a, dtype=np.float64), requires_grad=True),
    constant=np.asarray,
    index=np.asarray,
    zeros=lambda shape: tape.zeros(shape),
    exp=np.exp,
    sin=np.sin,
    tanh=np.tanh,
    sigmoid=F.sigmoid,
    put_along_axis=np.put_along_axis,
    copy_into=np.copyto,
    add_into=lambda a, b, out: np.add(a, b, out=out),
    no_grad=tape.no_grad,
    values=lambda t: np.array(t.numpy()),
    grad=lambda t: np.zeros(t.shape) if t.grad is None else np.array(t.grad),
)


def torch_backend(torch: Any) -> Backend:
    """The backend table for PyTorch, in float64 on the CPU."""

    def scatter(target: Any, indices: np.ndarray, values: Any, axis: int) -> None:
        target.scatter_(axis, torch.as_tensor(indices), values)

    return Backend(
        name="torch",
        leaf=lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True),
        constant=lambda a: torch.as_tensor(a, dtype=torch.float64),
        index=torch.as_tensor,
        zeros=lambda shape: torch.zeros(shape, dtype=torch.float64),
        exp=torch.exp,
        sin=torch.sin,
        tanh=torch.tanh,
        sigmoid=torch.sigmoid,
        put_along_axis=scatter,
        copy_into=lambda target, values: target.copy_(values),
        add_into=lambda a, b, out: torch.add(a, b, out=out),
        no_grad=torch.no_grad,
        values=lambda t: t.detach().numpy().copy(),
        grad=lambda t: np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy().copy(),
    )


# -- expected outcomes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Computes:
    """Both engines compute; values and gradients agree with numpy, finite differences and each other."""


@dataclass(frozen=True)
class Refused:
    """Both engines refuse, at the in-place write (``at="write"``) or at ``backward`` (``at="backward"``)."""

    at: str
    tape_error: type[Exception]
    tape_match: str
    torch_match: str


@dataclass(frozen=True)
class TorchRefuses:
    """PyTorch refuses (``at`` the write or at backward); tape computes, matching finite differences.

    PyTorch saves the buffer itself and checks its version, and refuses to copy between overlapping memory;
    tape's in-place write leaves the record that made the old value a copy of it, and gives the record a
    copy of an argument that shares the target's buffer, so nothing a record saved has changed.
    """

    at: str
    torch_match: str
    why_tape_computes: str


COMPUTES = Computes()
LEAF_WRITE = Refused(
    at="write",
    tape_error=RuntimeError,
    tape_match="a leaf tensor that requires grad .* cannot be changed in place while recording",
    torch_match="leaf Variable that requires grad is being used in an in-place operation",
)
THROUGH_A_VIEW_OF_A_LEAF = Refused(
    at="write",
    tape_error=RuntimeError,
    tape_match=r"a leaf tensor that requires grad .* \(through a view of it\)",
    torch_match="a view of a leaf Variable that requires grad is being used in an in-place operation",
)
OUTPUT_KEPT = "the record that made the old value keeps a copy of it"
TORCH_OVERLAP = (
    "some elements of the input tensor and the written-to tensor refer to a single memory location"
)
ARGUMENT_COPIED = "an argument that shares the target's buffer is given to the record as a copy"
TORCH_MODIFIED = (
    "one of the variables needed for gradient computation has been modified by an inplace operation"
)


def saved_value_changed(op: str, which: str = r"input \d") -> Refused:
    """Refused at backward: ``op`` saved a value (``which``: an input or its output) that was changed."""
    return Refused(
        "backward", RuntimeError, rf"{op}: its {which} \(.*\) was changed in place", TORCH_MODIFIED
    )


@dataclass(frozen=True)
class Program:
    name: str
    run: Callable[..., Any]
    outcome: Computes | Refused | TorchRefuses
    torch_differs: str | None  # why PyTorch is no oracle for this program
    tape_gap: str | None  # why tape is expected to fail this program (xfail, strict)


PROGRAMS: dict[str, Program] = {}


def program(
    outcome: Computes | Refused | TorchRefuses = COMPUTES,
    *,
    torch_differs: str | None = None,
    tape_gap: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``run(b, x, v)``: ``b`` is a backend, ``x`` has shape (3, 4) and ``v`` shape (4,)."""

    def register(run: Callable[..., Any]) -> Callable[..., Any]:
        PROGRAMS[run.__name__] = Program(run.__name__, run, outcome, torch_differs, tape_gap)
        return run

    return register


# -- slice assignment --------------------------------------------------------------------------------------
@program()
def column_doubled_by_slice_assignment(b, x, v):
    m = x * 1.0
    m[:, 0] = m[:, 0] * 2
    return m


@program()
def first_row_doubled_by_assignment(b, x, v):
    h = x * 1.0
    h[0] = h[0] * 2
    return h * h


@program()
def column_doubled_in_place(b, x, v):
    m = x * 1.0
    m[:, 0] *= 2
    return m * x


@program()
def column_set_to_zero(b, x, v):
    m = x * x
    m[:, 3] = 0
    return m


@program()
def row_set_from_another_input(b, x, v):
    m = x * 1.0
    m[1] = v * v
    return m * x


@program()
def block_set_from_an_overlapping_block(b, x, v):
    m = x * 2.0
    m[1:, :2] = m[:-1, :2] + v[:2]
    return m * m


@program(saved_value_changed("multiply"))
def block_set_from_a_product_with_an_overlapping_block(b, x, v):
    m = x * 2.0
    m[1:, :2] = m[:-1, :2] * v[:2]  # multiply saved the view m[:-1, :2], which this write changes
    return m


@program()
def whole_tensor_set_by_broadcast(b, x, v):
    m = x * 1.0
    m[...] = v
    return m * x


@program(torch_differs="PyTorch has no negative-step slices")
def reversed_column_set(b, x, v):
    m = x * 1.0
    m[::-1, 0] = v[:3]
    return m * m


@program(TorchRefuses("write", TORCH_OVERLAP, ARGUMENT_COPIED))
def rows_shifted_down_by_an_overlapping_slice(b, x, v):
    m = x * 1.0
    m[1:] = m[:-1]
    return m * m


@program(TorchRefuses("write", TORCH_OVERLAP, ARGUMENT_COPIED))
def rows_set_from_an_overlapping_fancy_index(b, x, v):
    m = x * v
    m[b.index(np.array([0, 1]))] = m[1:3]
    return m * m


@program()
def row_copied_from_another_row(b, x, v):
    m = x * 1.0
    m[0] = m[2]
    return m * x


# -- loops of row updates ----------------------------------------------------------------------------------
@program()
def every_row_doubled_in_a_loop(b, x, v):
    m = x * 1.0
    for i in range(m.shape[0]):
        m[i] *= 2
    return m * m


@program()
def rows_scaled_by_their_index_in_a_loop(b, x, v):
    m = x * v
    for i in range(m.shape[0]):
        m[i] = m[i] * (i + 1)
    return m


@program()
def running_sum_recurrence(b, x, v):
    m = b.zeros((3, 4))
    m[0] = x[0]
    for i in range(1, 3):
        m[i] = m[i - 1] + x[i]
    return m * v


@program(saved_value_changed("multiply"))
def multiplicative_recurrence_reading_the_previous_row(b, x, v):
    m = x * 1.0
    for i in range(1, 3):
        m[i] = m[i - 1] * x[i]  # multiply saves the view m[i - 1], which the next write changes
    return m


@program(saved_value_changed("sin"))
def sine_recurrence_reading_the_previous_row(b, x, v):
    h = b.zeros((3, 4))
    h[0] = v
    for i in range(1, 3):
        h[i] = b.sin(h[i - 1]) + x[i]
    return h


# -- accumulation into a zeros buffer ----------------------------------------------------------------------
@program()
def zeros_buffer_accumulates_rows(b, x, v):
    t = b.zeros((2, 4))
    t[0] += v
    t[1] += v
    t[1] += x[0]
    return t * t


@program()
def zeros_buffer_filled_by_assignment(b, x, v):
    t = b.zeros((3, 4))
    t[0] = v
    t[2] = v * x[1]
    return t


@program()
def zeros_buffer_accumulates_in_a_loop(b, x, v):
    t = b.zeros((2, 4))
    for i in range(3):
        t[i % 2] += x[i] * v
    return t


# -- fancy-index and mask assignment -----------------------------------------------------------------------
@program()
def integer_array_assignment(b, x, v):
    y = (x * 1.0)[0]
    y[b.index(np.array([3, 0]))] = v[:2] * 3
    return y * v


@program()
def integer_array_augmented_assignment(b, x, v):
    y = x[1] * 1.0
    y[b.index(np.array([2, 0, 1]))] += v[:3] * v[:3]
    return y


@program()
def rows_and_columns_pair_assignment(b, x, v):
    m = x * 1.0
    m[b.index(np.array([0, 1, 2])), b.index(np.array([3, 1, 0]))] = v[:3]
    return m * m


@program()
def rows_swapped_by_fancy_index(b, x, v):
    m = x * v
    m[b.index(np.array([0, 2]))] = m[b.index(np.array([2, 0]))]
    return m * x


@program()
def boolean_mask_set_to_zero(b, x, v):
    m = x * x
    m[b.index(X > 1.0)] = 0
    return m


@program()
def boolean_mask_set_from_values(b, x, v):
    y = x[2] * 1.0
    y[b.index(np.array([True, False, True, False]))] = v[1:3]
    return y * v


@program()
def boolean_mask_scaled_in_place(b, x, v):
    m = x * 1.0
    m[b.index(X < 1.0)] *= 3
    return m * m


@program(
    torch_differs="index_put_ with a repeated index is nondeterministic in PyTorch; numpy's last write wins"
)
def repeated_index_assignment_last_write_wins(b, x, v):
    y = x[0] * 1.0
    y[b.index(np.array([0, 2, 0]))] = v[:3]
    return y * v


@program(
    torch_differs="index_put_ with a repeated index is nondeterministic in PyTorch; numpy's last write wins"
)
def repeated_index_augmented_assignment_adds_once(b, x, v):
    y = x[0] * 1.0
    y[b.index(np.array([1, 1, 3]))] += v[:3]
    return y * y


@program(
    torch_differs="index_put_ with a repeated index is nondeterministic in PyTorch; numpy's last write wins"
)
def repeated_row_assignment_last_write_wins(b, x, v):
    m = x * 1.0
    m[b.index(np.array([2, 0, 2]))] = x * v
    return m


# -- augmented assignment on intermediates -----------------------------------------------------------------
@program()
def add_subtract_multiply_divide_in_place(b, x, v):
    y = x * 1.0
    y += v
    y -= x * x
    y *= v
    y /= v * v + 1
    return y


@program()
def divided_in_place_by_an_input(b, x, v):
    y = x * 2.0
    y /= v
    return y


@program()
def broadcast_row_added_in_place(b, x, v):
    m = x * x
    m += v
    m *= v
    return m


@program()
def added_to_itself_in_place(b, x, v):
    y = x * v
    y += y
    return y * x


@program()
def matmul_result_changed_in_place(b, x, v):
    p = x @ x.T
    p[0] *= 2
    p += 1
    return p


@program()
def sum_input_changed_after_the_sum(b, x, v):
    a = x * 1.0
    total = a.sum()
    a *= 2
    return a * total


# -- writes through views ----------------------------------------------------------------------------------
@program()
def view_of_an_intermediate_scaled_in_place(b, x, v):
    y = x * 1.0
    tail = y[1:]
    tail *= 2
    return y * y


@program()
def transposed_view_row_added_in_place(b, x, v):
    y = x * 1.0
    y.T[0] += v[:3]
    return y * x


@program()
def reshaped_view_slice_scaled_in_place(b, x, v):
    y = x * 1.0
    y.reshape(-1)[2:] *= 2
    return y * v


@program()
def strided_view_of_a_view_subtracted_in_place(b, x, v):
    y = x[0] * x[1]
    y[1:][::2] -= v[:2]
    return y * y


@program()
def column_view_written_then_base_read(b, x, v):
    y = x * 1.0
    column = y[:, 1]
    column[:] = v[:3] * v[:3]
    return y * x


@program()
def view_read_after_its_base_changed(b, x, v):
    y = x * v
    tail = y[1:]
    y *= 3
    return tail * 2


@program(saved_value_changed("multiply"))
def view_saved_then_its_base_changed(b, x, v):
    y = x * 1.0
    head = y[:1]
    square = head * head
    y *= 3
    return square


# -- put_along_axis, copyto, out= --------------------------------------------------------------------------
@program()
def put_along_axis_writes_an_input(b, x, v):
    y = x * 1.0
    b.put_along_axis(y, np.array([[1], [3], [0]]), (v[:3] * v[:3]).reshape(3, 1), 1)
    return y * x


@program(
    torch_differs="scatter_ with a repeated index is nondeterministic in PyTorch; numpy's last write wins"
)
def put_along_axis_repeated_index_last_write_wins(b, x, v):
    y = x * 1.0
    b.put_along_axis(y, np.array([[1, 1], [0, 0], [2, 2]]), x[:, :2] * v[:2], 1)
    return y * y


@program()
def copyto_an_intermediate(b, x, v):
    y = x * 1.0
    b.copy_into(y, v * v)
    return y * x


@program(
    Refused(
        at="write",
        tape_error=TypeError,
        tape_match=r"numpy\.add: out= is not supported .*assign the result instead",
        torch_match=r"functions with out=\.\.\. arguments don't support automatic differentiation",
    )
)
def add_out_while_recording(b, x, v):
    out = b.zeros((3, 4))
    b.add_into(x, v, out)
    return out


# -- writes to values that records saved -------------------------------------------------------------------
@program(saved_value_changed("multiply"))
def input_saved_by_multiply_changed(b, x, v):
    a = x * 1.0
    product = a * a
    a[0] = 5
    return product


@program(saved_value_changed("multiply"))
def input_saved_by_multiply_changed_under_no_grad(b, x, v):
    a = x * 1.0
    product = a * v
    with b.no_grad():
        a[0] = 5
    return product


@program(saved_value_changed("sin"))
def input_saved_by_sine_changed(b, x, v):
    a = x * 1.0
    sine = b.sin(a)
    a += 1
    return sine


@program(saved_value_changed("matmul"))
def input_saved_by_matmul_changed(b, x, v):
    a = x * 1.0
    product = a @ v
    a[0] = 0
    return product


@program(saved_value_changed("divide"))
def divisor_saved_by_divide_changed(b, x, v):
    d = v * 1.0
    quotient = x / d
    d[0] = 1
    return quotient


@program()
def input_saved_only_for_its_shape_changed(b, x, v):
    a = x * 1.0
    shifted = a + 1
    a[0] = 5
    return shifted


@program()
def input_saved_only_for_its_shape_changed_then_both_used(b, x, v):
    a = x * 1.0
    shifted = a - v
    a[1] *= 3
    return shifted * 2 + a


@program(TorchRefuses("backward", TORCH_MODIFIED, OUTPUT_KEPT))
def exp_output_changed_in_place(b, x, v):
    e = b.exp(x * 1.0)
    e += 1
    return e


@program(TorchRefuses("backward", TORCH_MODIFIED, OUTPUT_KEPT))
def sigmoid_output_changed_by_assignment(b, x, v):
    s = b.sigmoid(x * v)
    s[0] = 0
    return s


@program(TorchRefuses("backward", TORCH_MODIFIED, OUTPUT_KEPT))
def tanh_output_changed_through_a_view(b, x, v):
    t = b.tanh(x)
    t[1:] *= 2
    return t


@program(TorchRefuses("backward", TORCH_MODIFIED, ARGUMENT_COPIED))
def multiplied_by_itself_in_place(b, x, v):
    y = x * v
    y *= y
    return y


# -- leaves ------------------------------------------------------------------------------------------------
@program(LEAF_WRITE)
def leaf_added_to_in_place(b, x, v):
    x += 1
    return x


@program(LEAF_WRITE)
def leaf_element_assigned(b, x, v):
    x[0] = v
    return x


@program(THROUGH_A_VIEW_OF_A_LEAF)
def leaf_scaled_through_a_view(b, x, v):
    x[1:] *= 2
    return x


@program(LEAF_WRITE)
def leaf_written_by_put_along_axis(b, x, v):
    b.put_along_axis(x, np.array([[0], [1], [2]]), x[:, :1] * 2, 1)
    return x


# -- running programs --------------------------------------------------------------------------------------
def weights(shape: tuple[int, ...]) -> np.ndarray:
    """A fixed cotangent for an output of ``shape``: distinct values of both signs."""
    size = int(np.prod(shape))
    return np.linspace(-1.0, 2.0, size).reshape(shape) if size > 1 else np.full(shape, 1.5)


def forward(backend: Backend, program: Program) -> tuple[dict[str, Any], Any]:
    leaves = {name: backend.leaf(array) for name, array in INPUTS.items()}
    return leaves, program.run(backend, **leaves)


def loss(backend: Backend, output: Any) -> Any:
    return (output * backend.constant(weights(tuple(output.shape)))).sum()


def numpy_pairing(program: Program, inputs: dict[str, np.ndarray]) -> float:
    output = program.run(NUMPY, **{name: array.copy() for name, array in inputs.items()})
    return float(np.sum(np.asarray(output) * weights(np.shape(output))))


def finite_difference_gradients(program: Program) -> dict[str, np.ndarray]:
    """Central differences of the numpy forward's pairing with ``weights``, for every input element."""
    gradients = {}
    for name, array in INPUTS.items():
        gradient = np.zeros_like(array)
        for j in range(array.size):
            step = np.zeros_like(array)
            step.flat[j] = FINITE_DIFFERENCE_STEP
            up = numpy_pairing(program, {**INPUTS, name: array + step})
            down = numpy_pairing(program, {**INPUTS, name: array - step})
            gradient.flat[j] = (up - down) / (2 * FINITE_DIFFERENCE_STEP)
        gradients[name] = gradient
    return gradients


def values_and_gradients(backend: Backend, program: Program) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    leaves, output = forward(backend, program)
    loss(backend, output).backward()
    return backend.values(output), {name: backend.grad(leaf) for name, leaf in leaves.items()}


def cases(*kinds: type) -> list[Any]:
    return [
        pytest.param(
            p, id=name, marks=[pytest.mark.xfail(strict=True, reason=p.tape_gap)] if p.tape_gap else []
        )
        for name, p in PROGRAMS.items()
        if isinstance(p.outcome, kinds)
    ]


def assert_gradients_close(actual: dict, expected: dict, **tolerance: float) -> None:
    for name in INPUTS:
        np.testing.assert_allclose(actual[name], expected[name], err_msg=f"gradient of {name}", **tolerance)


FINITE_DIFFERENCE_TOLERANCE = {"rtol": 1e-6, "atol": 1e-7}
ENGINE_TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}


def test_the_suite_has_at_least_forty_programs():
    assert len(PROGRAMS) >= 40


# -- tape against numpy and finite differences -------------------------------------------------------------
@pytest.mark.parametrize("program", cases(Computes, TorchRefuses))
def test_tape_values_and_gradients_match_numpy_and_finite_differences(program):
    expected_values = np.asarray(program.run(NUMPY, **{name: a.copy() for name, a in INPUTS.items()}))
    values, gradients = values_and_gradients(TAPE, program)
    np.testing.assert_allclose(values, expected_values, rtol=1e-14, atol=0)
    assert_gradients_close(gradients, finite_difference_gradients(program), **FINITE_DIFFERENCE_TOLERANCE)


def assert_refuses(
    backend: Backend, program: Program, at: str, error: type[Exception], match: str
) -> np.ndarray | None:
    """Run ``program`` expecting ``error`` at the write or at backward; return the forward's values if any."""
    if at == "write":
        with pytest.raises(error, match=match):
            forward(backend, program)
        return None
    _, output = forward(backend, program)
    with pytest.raises(error, match=match):
        loss(backend, output).backward()
    return backend.values(output)


@pytest.mark.parametrize("program", cases(Refused))
def test_tape_refuses_where_the_program_cannot_be_differentiated(program):
    refusal = program.outcome
    values = assert_refuses(TAPE, program, refusal.at, refusal.tape_error, refusal.tape_match)
    if values is not None:
        expected_values = np.asarray(program.run(NUMPY, **{name: a.copy() for name, a in INPUTS.items()}))
        np.testing.assert_allclose(values, expected_values, rtol=1e-14, atol=0)


# -- tape against PyTorch ----------------------------------------------------------------------------------
@pytest.mark.parametrize("program", cases(Computes, Refused, TorchRefuses))
def test_tape_agrees_with_torch(program):
    torch = pytest.importorskip("torch")
    if program.torch_differs:
        pytest.skip(f"compared with numpy and finite differences only: {program.torch_differs}")
    torch_engine = torch_backend(torch)
    outcome = program.outcome
    if isinstance(outcome, Refused):
        torch_values = assert_refuses(torch_engine, program, outcome.at, RuntimeError, outcome.torch_match)
        tape_values = assert_refuses(TAPE, program, outcome.at, outcome.tape_error, outcome.tape_match)
        if torch_values is not None:
            np.testing.assert_allclose(tape_values, torch_values, **ENGINE_TOLERANCE)
        return
    expected_gradients = finite_difference_gradients(program)
    if isinstance(outcome, TorchRefuses):
        torch_values = assert_refuses(torch_engine, program, outcome.at, RuntimeError, outcome.torch_match)
        values, gradients = values_and_gradients(TAPE, program)
        if torch_values is not None:
            np.testing.assert_allclose(values, torch_values, **ENGINE_TOLERANCE)
        for name in INPUTS:
            np.testing.assert_allclose(
                gradients[name],
                expected_gradients[name],
                err_msg=f"gradient of {name}; tape computes because {outcome.why_tape_computes}",
                **FINITE_DIFFERENCE_TOLERANCE,
            )
        return
    torch_values, torch_gradients = values_and_gradients(torch_engine, program)
    assert_gradients_close(torch_gradients, expected_gradients, **FINITE_DIFFERENCE_TOLERANCE)
    values, gradients = values_and_gradients(TAPE, program)
    np.testing.assert_allclose(values, torch_values, **ENGINE_TOLERANCE)
    assert_gradients_close(gradients, torch_gradients, **ENGINE_TOLERANCE)


def test_copyto_follows_numpys_casting_rule():
    y = tape.tensor(X, requires_grad=True) * 1.0
    with pytest.raises(TypeError, match=r"numpy\.copyto: cannot cast float64 into the float32 tensor"):
        np.copyto(y.astype(np.float32), y, casting="safe")
    with pytest.raises(TypeError):  # numpy's own refusal, for comparison
        np.copyto(np.zeros(4, dtype=np.float32), np.zeros(4), casting="safe")


# -- updates under no_grad between steps -------------------------------------------------------------------
LEARNING_RATE = 0.1


def objective(backend: Backend, p: Any) -> Any:
    """sum(sin(p) * X) + sum(p³) / 3: a loss whose gradient changes with ``p``."""
    return (backend.sin(p) * backend.constant(X)).sum() + (p * p * p).sum() / 3


def descend(backend: Backend, steps: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Gradient descent written as users write it: ``p -= lr * p.grad`` under no_grad, then reset the grad.

    Returns (value of p, gradient at p) for each step.
    """
    p = backend.leaf(V)
    history = []
    for _ in range(steps):
        objective(backend, p).backward()
        history.append((backend.values(p), backend.grad(p)))
        with backend.no_grad():
            p -= LEARNING_RATE * p.grad
        p.grad = None
    assert p.is_leaf and p.requires_grad
    return history


def numpy_gradient_of_objective(p: np.ndarray) -> np.ndarray:
    gradient = np.zeros_like(p)
    for j in range(p.size):
        step = np.zeros_like(p)
        step[j] = FINITE_DIFFERENCE_STEP
        up, down = objective(NUMPY, p + step), objective(NUMPY, p - step)
        gradient[j] = (up - down) / (2 * FINITE_DIFFERENCE_STEP)
    return gradient


def write_to_a_leaf_under_no_grad(backend: Backend) -> tuple[Any, Any]:
    """Writes to a leaf under no_grad (assignment, augmented, through a view), then a recorded forward."""
    w = backend.leaf(V)
    with backend.no_grad():
        w[0] = 5.0
        w *= 2
        w[1:] += 1
    return w, (w * w * backend.constant(X)).sum()


def test_gradient_descent_under_no_grad_matches_finite_differences():
    history = descend(TAPE)
    expected_p = V.copy()
    for p, gradient in history:
        np.testing.assert_allclose(p, expected_p, rtol=1e-14, atol=0)
        np.testing.assert_allclose(gradient, numpy_gradient_of_objective(p), **FINITE_DIFFERENCE_TOLERANCE)
        expected_p = p - LEARNING_RATE * gradient


def test_gradient_descent_under_no_grad_agrees_with_torch():
    torch = pytest.importorskip("torch")
    for (p, gradient), (torch_p, torch_gradient) in zip(
        descend(TAPE), descend(torch_backend(torch)), strict=True
    ):
        np.testing.assert_allclose(p, torch_p, **ENGINE_TOLERANCE)
        np.testing.assert_allclose(gradient, torch_gradient, **ENGINE_TOLERANCE)


def test_writes_to_a_leaf_under_no_grad_match_numpy_and_finite_differences():
    w, total = write_to_a_leaf_under_no_grad(TAPE)
    total.backward()
    expected_w = V * 1.0
    expected_w[0] = 5.0
    expected_w *= 2
    expected_w[1:] += 1
    np.testing.assert_allclose(TAPE.values(w), expected_w, rtol=1e-14, atol=0)
    assert w.is_leaf and w.requires_grad
    numeric = np.zeros_like(expected_w)
    for j in range(expected_w.size):
        step = np.zeros_like(expected_w)
        step[j] = FINITE_DIFFERENCE_STEP
        up = np.sum((expected_w + step) ** 2 * X)
        down = np.sum((expected_w - step) ** 2 * X)
        numeric[j] = (up - down) / (2 * FINITE_DIFFERENCE_STEP)
    np.testing.assert_allclose(TAPE.grad(w), numeric, **FINITE_DIFFERENCE_TOLERANCE)


def test_writes_to_a_leaf_under_no_grad_agree_with_torch():
    torch = pytest.importorskip("torch")
    torch_engine = torch_backend(torch)
    torch_w, torch_total = write_to_a_leaf_under_no_grad(torch_engine)
    torch_total.backward()
    w, total = write_to_a_leaf_under_no_grad(TAPE)
    total.backward()
    np.testing.assert_allclose(TAPE.values(w), torch_engine.values(torch_w), **ENGINE_TOLERANCE)
    np.testing.assert_allclose(TAPE.grad(w), torch_engine.grad(torch_w), **ENGINE_TOLERANCE)


def add_into_a_fresh_tensor_under_no_grad(backend: Backend) -> np.ndarray:
    x, v = backend.leaf(X), backend.leaf(V)
    out = backend.zeros((3, 4))
    with backend.no_grad():
        backend.add_into(x, v, out)
    return backend.values(out)


def test_out_under_no_grad_writes_the_result():
    np.testing.assert_allclose(add_into_a_fresh_tensor_under_no_grad(TAPE), X + V, rtol=1e-14, atol=0)


def test_out_under_no_grad_writes_the_result_in_torch():
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(add_into_a_fresh_tensor_under_no_grad(torch_backend(torch)), X + V, rtol=1e-14)

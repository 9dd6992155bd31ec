"""Random small numpy programs for the differential fuzzer in ``tests/test_fuzz.py``; it holds no test.

A program is data: example inputs, a list of steps (an op name from ``OPS``, the numbers of the earlier values
it reads, and fixed parameters such as axes, indices, masks and constant weights) and the weights that turn
its loose ends into one scalar. Its ``repr`` is a listing a person can read and rerun. ``run`` interprets a
program in a namespace: the ``numpy`` module itself (numpy dispatches to tape's tensors) or
``TorchAsNumpy(torch)``, which spells the same calls with torch. Every op is written once, in numpy's
vocabulary, against whichever namespace it is given (``xp``, as the array API standard names it).

Programs stay differentiable at the point they are drawn: elementwise ops are smooth (``log(x*x + 0.5)``
rather than ``log(x)``), and ops with kinks (``abs``, ``maximum``, ``max``, ``sort``, ``clip``, ``std``,
``hypot``) are only applied where their input is at least ``MARGIN`` from the kink. Values are kept finite
and at most ``BOUND`` in size, so that finite differences stay accurate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MARGIN = 0.05  # how far a drawn program keeps its values from the kink of a piecewise op
BOUND = 10.0  # a step whose values grow larger than this is not kept


# -- the program as data -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Step:
    """One line of a program: ``op`` applied to the values numbered ``args``, with fixed ``params``."""

    op: str
    args: tuple[int, ...]
    params: tuple[tuple[str, Any], ...] = ()

    def listing(self, number: int) -> str:
        arguments = [f"v{k}" for k in self.args] + [f"{key}={show(value)}" for key, value in self.params]
        return f"v{number} = {self.op}({', '.join(arguments)})"


@dataclass(frozen=True, eq=False)
class Program:
    """Inputs ``v0 ...`` (float64 examples, rounded so that the listing is exact), steps that make the values
    after them, and the loss: the sum over ``weights`` of ``sum(value * weight)``."""

    inputs: tuple[np.ndarray, ...]
    steps: tuple[Step, ...]
    weights: tuple[tuple[int, np.ndarray], ...]

    def inputs_as(self, dtype: Any) -> list[np.ndarray]:
        return [x.astype(dtype) for x in self.inputs]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # how hypothesis prints a failing example

    def __repr__(self) -> str:
        lines = [f"v{k} = {show(x)}" for k, x in enumerate(self.inputs)]
        lines += [step.listing(len(self.inputs) + k) for k, step in enumerate(self.steps)]
        terms = [f"sum(v{k} * {show(weight)})" for k, weight in self.weights]
        lines.append(f"loss = {' + '.join(terms)}")
        return "Program:\n    " + "\n    ".join(lines)


def show(value: Any) -> str:
    """A parameter as it would be written in the program: arrays as lists, slices with colons."""
    if isinstance(value, np.ndarray):
        text = np.array2string(value, separator=", ", threshold=10_000, max_line_width=10_000)
        return text if value.ndim else f"array({text})"
    if isinstance(value, slice):
        parts = ["" if part is None else str(part) for part in (value.start, value.stop, value.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if value.step is not None else "")
    if value is None:
        return "None"
    if value is Ellipsis:
        return "..."
    if (
        isinstance(value, tuple)
        and value
        and all(
            isinstance(item, slice | np.ndarray | int) or item is None or item is Ellipsis for item in value
        )
    ):
        return "[" + ", ".join(show(item) for item in value) + "]"
    return repr(value)


# -- interpreting a program ----------------------------------------------------------------------------------
def evaluate(program: Program, namespace: Any, inputs: Sequence[Any]) -> list[Any]:
    """Every value of ``program`` (inputs first), computed with ``namespace`` from ``inputs``."""
    dtype = inputs[0].dtype
    values = list(inputs)
    for step in program.steps:
        params = {key: constant(namespace, value, dtype) for key, value in step.params}
        values.append(OPS[step.op].apply(namespace, *(values[k] for k in step.args), **params))
    return values


def outputs(program: Program, namespace: Any, inputs: Sequence[Any]) -> tuple[Any, ...]:
    """The values the loss reads (those no later step consumes), in the order of ``program.weights``."""
    values = evaluate(program, namespace, inputs)
    return tuple(values[k] for k, _ in program.weights)


def run(program: Program, namespace: Any, inputs: Sequence[Any]) -> Any:
    """The program's loss: a scalar of the inputs' dtype, as a 0-d array, tape tensor or torch tensor."""
    dtype = inputs[0].dtype
    values = evaluate(program, namespace, inputs)
    total = None
    for k, weight in program.weights:
        term = namespace.sum(values[k] * constant(namespace, weight, dtype))
        total = term if total is None else total + term
    return total


def constant(namespace: Any, value: Any, dtype: Any) -> Any:
    """A fixed array of the program in ``namespace``: floating ones at the inputs' dtype. Index tuples stay
    numpy, which both numpy and torch take."""
    if not isinstance(value, np.ndarray):
        return value
    return namespace.asarray(value, dtype=dtype) if value.dtype.kind == "f" else namespace.asarray(value)


class TorchAsNumpy:
    """The numpy functions the programs call, spelled with torch (``axis`` as ``dim``, ``copy`` as ``clone``).

    Functions whose torch name and meaning are numpy's (``sin``, ``exp``, ``where``, ``matmul``, ...) are
    taken from torch directly.
    """

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.torch, name)

    def _dims(self, x: Any, axis: Any) -> tuple[int, ...]:
        if axis is None:
            return tuple(range(x.ndim))
        return (axis,) if isinstance(axis, int) else tuple(axis)

    def sum(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return self.torch.sum(x, dim=self._dims(x, axis), keepdim=keepdims)

    def mean(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return self.torch.mean(x, dim=self._dims(x, axis), keepdim=keepdims)

    def max(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return self.torch.amax(x, dim=self._dims(x, axis), keepdim=keepdims)

    def var(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return self.torch.var(x, dim=self._dims(x, axis), correction=0, keepdim=keepdims)

    def std(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return self.torch.std(x, dim=self._dims(x, axis), correction=0, keepdim=keepdims)

    def prod(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        for dim in sorted((d % max(x.ndim, 1) for d in self._dims(x, axis)), reverse=True):
            x = self.torch.prod(x, dim=dim, keepdim=keepdims)
        return x

    def cumsum(self, x: Any, axis: int) -> Any:
        return self.torch.cumsum(x, dim=axis)

    def cumprod(self, x: Any, axis: int) -> Any:
        return self.torch.cumprod(x, dim=axis)

    def sort(self, x: Any, axis: int) -> Any:
        return self.torch.sort(x, dim=axis).values

    def transpose(self, x: Any, axes: tuple[int, ...]) -> Any:
        return self.torch.permute(x, axes)

    def expand_dims(self, x: Any, axis: int) -> Any:
        return self.torch.unsqueeze(x, axis)

    def flip(self, x: Any, axis: int) -> Any:
        return self.torch.flip(x, dims=(axis,))

    def roll(self, x: Any, shift: int, axis: int) -> Any:
        return self.torch.roll(x, shifts=shift, dims=axis)

    def repeat(self, x: Any, repeats: int, axis: int) -> Any:
        return self.torch.repeat_interleave(x, repeats, dim=axis)

    def diagonal(self, x: Any, offset: int, axis1: int, axis2: int) -> Any:
        return self.torch.diagonal(x, offset=offset, dim1=axis1, dim2=axis2)

    def take_along_axis(self, x: Any, indices: Any, axis: int) -> Any:
        return self.torch.take_along_dim(x, indices, dim=axis)

    def concatenate(self, arrays: Sequence[Any], axis: int) -> Any:
        return self.torch.cat(list(arrays), dim=axis)

    def stack(self, arrays: Sequence[Any], axis: int) -> Any:
        return self.torch.stack(list(arrays), dim=axis)

    def copy(self, x: Any) -> Any:
        return self.torch.clone(x)

    def power(self, x: Any, y: Any) -> Any:
        return self.torch.pow(x, y)


# -- the op table --------------------------------------------------------------------------------------------
Choice = tuple[tuple[int, ...], dict[str, Any]]  # the values an op reads and its parameters


@dataclass(frozen=True)
class OpSpec:
    """How to apply an op (``apply(namespace, *values, **params)``) and how to draw a use of it.

    ``choose(draw, values, first, rng)`` returns the numbers of the values it reads (``first`` among them)
    and its parameters, or ``None`` where the op does not apply to those values. ``safe(*values, **params)``
    says whether the drawn values are far enough from the op's kinks.
    """

    apply: Callable[..., Any]
    choose: Callable[..., Choice | None]
    safe: Callable[..., bool] = lambda *values, **params: True
    writes_into_first: bool = False  # changes an earlier value in place (and every view sharing its memory)


def unary(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    return (first,), {}


def broadcasting_partner(draw: Any, values: list[np.ndarray], first: int) -> int:
    """A value that broadcasts with ``values[first]`` (itself, if no other does)."""
    candidates = [k for k, v in enumerate(values) if broadcasts(v.shape, values[first].shape)]
    return draw(st.sampled_from(candidates[::-1]))


def broadcasts(*shapes: tuple[int, ...]) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def binary(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    return (first, broadcasting_partner(draw, values, first)), {}


def draw_axis(draw: Any, ndim: int) -> int:
    """An axis of an array with ``ndim`` axes, possibly negative."""
    return draw(st.integers(-ndim, ndim - 1))


def reduction(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    ndim = values[first].ndim
    if ndim == 0 or draw(st.booleans()):
        axis: Any = None
    elif ndim >= 2 and draw(st.booleans()):
        axis = tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=2, max_size=ndim, unique=True)))
    else:
        axis = draw_axis(draw, ndim)
    return (first,), {"axis": axis, "keepdims": draw(st.booleans())}


def along_one_axis(
    draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator
) -> Choice | None:
    if values[first].ndim == 0:
        return None
    return (first,), {"axis": draw_axis(draw, values[first].ndim)}


def sorted_along(x: np.ndarray, axis: Any) -> np.ndarray:
    """``x`` with the axes named by ``axis`` (all for ``None``) flattened into a last axis, sorted."""
    axes = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % x.ndim for a in axes) if x.ndim else ()
    kept = [a for a in range(x.ndim) if a not in axes]
    grouped = np.transpose(x, kept + list(axes)).reshape([x.shape[a] for a in kept] + [-1])
    return np.sort(grouped, axis=-1)


def distinct_along(x: np.ndarray, axis: int) -> bool:
    """``sort`` is differentiable where no two elements it orders are tied."""
    ordered = sorted_along(x, axis)
    return ordered.shape[-1] < 2 or float(np.diff(ordered, axis=-1).min()) > MARGIN


def unique_largest(x: np.ndarray, axis: Any, **params: Any) -> bool:
    """``max`` is differentiable where the largest element along the reduced axes is unique."""
    ordered = sorted_along(x, axis)
    return ordered.shape[-1] < 2 or float((ordered[..., -1] - ordered[..., -2]).min()) > MARGIN


def reshaping(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    shape = values[first].shape
    size = int(np.prod(shape))
    divisors = [d for d in range(1, size + 1) if size % d == 0]
    options = [(-1,), shape[::-1], (1, *shape), (*shape, 1)]
    options += [(d, size // d) for d in divisors] + [(d, -1, 1) for d in divisors]
    return (first,), {"shape": draw(st.sampled_from(options))}


def transposing(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice | None:
    ndim = values[first].ndim
    if ndim < 2:
        return None
    return (first,), {"axes": tuple(draw(st.permutations(range(ndim))))}


def swapping(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice | None:
    ndim = values[first].ndim
    if ndim < 2:
        return None
    return (first,), {"axis1": draw_axis(draw, ndim), "axis2": draw_axis(draw, ndim)}


def expanding(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    return (first,), {"axis": draw(st.integers(-values[first].ndim - 1, values[first].ndim))}


def broadcasting_to(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    shape = values[first].shape
    grown = tuple(draw(st.integers(1, 3)) if size == 1 else size for size in shape)
    leading = tuple(draw(st.lists(st.integers(1, 3), max_size=1)))
    return (first,), {"shape": leading + grown}


def rolling(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice | None:
    if values[first].ndim == 0:
        return None
    return (first,), {"shift": draw(st.integers(-3, 3)), "axis": draw_axis(draw, values[first].ndim)}


def repeating(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice | None:
    if values[first].ndim == 0:
        return None
    return (first,), {"repeats": draw(st.integers(1, 3)), "axis": draw_axis(draw, values[first].ndim)}


def diagonal_of(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice | None:
    shape = values[first].shape
    if len(shape) < 2:
        return None
    axis1, axis2 = draw(st.lists(st.integers(0, len(shape) - 1), min_size=2, max_size=2, unique=True))
    offset = draw(st.integers(-shape[axis1] + 1, shape[axis2] - 1))
    return (first,), {"offset": offset, "axis1": axis1, "axis2": axis2}


def gathering(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice | None:
    shape = values[first].shape
    if not shape:
        return None
    axis = draw_axis(draw, len(shape))
    taken = list(shape)
    taken[axis] = draw(st.integers(1, 4))
    indices = rng.integers(0, shape[axis], size=taken)
    return (first,), {"indices": indices, "axis": axis}


# -- indices -------------------------------------------------------------------------------------------------
def draw_basic_index(draw: Any, shape: tuple[int, ...]) -> tuple[Any, ...]:
    """Ints, positive-step slices that select something, ``None`` and ``...``, which numpy and torch read
    alike."""
    items: list[Any] = []
    for size in shape[: draw(st.integers(0, len(shape)))]:
        kind = draw(st.sampled_from(["slice", "int", "all"]))
        if kind == "int":
            items.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            start = draw(st.integers(0, size - 1))
            items.append(
                slice(start, draw(st.integers(start + 1, size)), draw(st.sampled_from([None, 1, 2])))
            )
        else:
            items.append(slice(None))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    if draw(st.booleans()):
        items.append(Ellipsis)
    return tuple(items)


def draw_advanced_index(
    draw: Any, shape: tuple[int, ...], rng: np.random.Generator, unique: bool
) -> tuple[Any, ...] | None:
    """Integer arrays (on one axis or on two neighbouring ones, negative entries included) or a boolean mask.

    ``unique`` asks for no repeated position, so that writing through the index is well defined.
    """
    if not shape:
        return None
    kind = draw(st.sampled_from(["integers", "two integer arrays", "mask", "mask on the leading axes"]))
    if kind == "mask" or (kind == "mask on the leading axes" and len(shape) >= 2):
        leading = len(shape) if kind == "mask" else draw(st.integers(1, len(shape) - 1))
        mask = rng.random(shape[:leading]) < 0.6
        mask.flat[rng.integers(mask.size)] = True
        return (mask,)
    axis = draw(st.integers(0, len(shape) - 1))
    count = draw(st.integers(1, 4))
    if kind == "two integer arrays" and axis + 1 < len(shape):
        pairs = [(i, j) for i in range(shape[axis]) for j in range(shape[axis + 1])]
        chosen = rng.choice(len(pairs), size=min(count, len(pairs)), replace=not unique)
        rows = np.array([pairs[c][0] for c in chosen]) - shape[axis] * rng.integers(0, 2, len(chosen))
        columns = np.array([pairs[c][1] for c in chosen])
        return (slice(None),) * axis + (rows, columns)
    positions = rng.choice(shape[axis], size=min(count, shape[axis]) if unique else count, replace=not unique)
    positions = positions - shape[axis] * rng.integers(0, 2, len(positions))
    return (slice(None),) * axis + (positions,)


def indexing_basic(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    return (first,), {"index": draw_basic_index(draw, values[first].shape)}


def indexing_advanced(
    draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator
) -> Choice | None:
    index = draw_advanced_index(draw, values[first].shape, rng, unique=False)
    return None if index is None else ((first,), {"index": index})


def written_source(draw: Any, values: list[np.ndarray], first: int, target_shape: tuple[int, ...]) -> Any:
    """A value that can be assigned to a region of ``target_shape``, or ``None``: write a function of the
    region's own old contents instead."""
    fits = [
        k
        for k, v in enumerate(values)
        if v.ndim <= len(target_shape)
        and broadcasts(v.shape, target_shape)
        and np.broadcast_shapes(v.shape, target_shape) == target_shape
    ]
    return draw(st.sampled_from([None, *fits[::-1]]))


def writing_through_index(
    draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator
) -> Choice | None:
    shape = values[first].shape
    if draw(st.booleans()):
        index = draw_basic_index(draw, shape)
    else:
        index = draw_advanced_index(draw, shape, rng, unique=True)
        if index is None:
            return None
    source = written_source(draw, values, first, np.empty(shape)[index].shape)
    return ((first,) if source is None else (first, source)), {"index": index}


def adding_in_place(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    shape = values[first].shape
    source = written_source(draw, values, first, shape)
    operator = draw(st.sampled_from(["+=", "-=", "*="]))
    return ((first,) if source is None else (first, source)), {"operator": operator}


def updating_earlier_value(
    draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator
) -> Choice | None:
    if not values[first].shape or not values[first].flags.writeable:
        return None
    source = written_source(draw, values, first, values[first].shape)
    operator = draw(st.sampled_from(["+=", "*="]))
    return ((first,) if source is None else (first, source)), {"operator": operator}


def adding_through_view(
    draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator
) -> Choice | None:
    shape = values[first].shape
    if not shape:
        return None
    index = draw_basic_index(draw, shape)
    source = written_source(draw, values, first, np.empty(shape)[index].shape)
    return ((first,) if source is None else (first, source)), {"index": index}


# -- joining, products, selection ----------------------------------------------------------------------------
def joining(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice | None:
    shape = values[first].shape
    if not shape:
        return None
    options = []
    for k, v in enumerate(values):
        if v.ndim != len(shape):
            continue
        for axis in range(len(shape)):
            if all(a == b for d, (a, b) in enumerate(zip(v.shape, shape, strict=True)) if d != axis):
                options.append((k, axis))
    partner, axis = draw(st.sampled_from(options[::-1]))
    if draw(st.booleans()):
        axis -= len(shape)
    return (first, partner), {"axis": axis}


def stacking(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    shape = values[first].shape
    partner = draw(st.sampled_from([k for k, v in enumerate(values) if v.shape == shape][::-1]))
    return (first, partner), {"axis": draw(st.integers(-len(shape) - 1, len(shape)))}


def multiplying_matrices(
    draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator
) -> Choice | None:
    if values[first].ndim == 0:
        return None
    candidates = []
    for k, v in enumerate(values):
        if v.ndim == 0:
            continue
        try:
            np.matmul(values[first], v)
        except ValueError:
            continue
        candidates.append(k)
    if not candidates:
        return None
    return (first, draw(st.sampled_from(candidates[::-1]))), {}


def multiplying_by_matrix(
    draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator
) -> Choice | None:
    shape = values[first].shape
    if not shape:
        return None
    columns = draw(st.sampled_from([None, 1, 2, 3]))
    matrix_shape = (shape[-1],) if columns is None else (shape[-1], columns)
    return (first,), {"matrix": rng.uniform(-1, 1, matrix_shape).round(2)}


def gram(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice | None:
    return None if values[first].ndim < 2 else ((first,), {})


def selecting(draw: Any, values: list[np.ndarray], first: int, rng: np.random.Generator) -> Choice:
    partner = broadcasting_partner(draw, values, first)
    shape = np.broadcast_shapes(values[first].shape, values[partner].shape)
    mask_shape = shape[len(shape) - draw(st.integers(0, len(shape))) :]
    return (first, partner), {"mask": np.asarray(rng.random(mask_shape) < 0.5)}


# -- applying ops --------------------------------------------------------------------------------------------
def softmax(xp: Any, x: Any, axis: int) -> Any:
    shifted = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return shifted / xp.sum(shifted, axis=axis, keepdims=True)


def log_softmax(xp: Any, x: Any, axis: int) -> Any:
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def carrying(xp: Any, x: Any, source: Any) -> Any:
    """``x``, made to depend on ``source`` as well when there is one: numpy cannot write a recorded value into
    a plain array, so the array written into must be recorded whenever the value written is."""
    return x if source is None else x + 0.1 * xp.mean(source)


def write_through_index(xp: Any, x: Any, source: Any = None, *, index: Any) -> Any:
    written = xp.copy(carrying(xp, x, source))
    written[index] = xp.tanh(x[index]) * 2.0 if source is None else source
    return written


def update_in_place(xp: Any, x: Any, source: Any = None, *, operator: str) -> Any:
    fresh = carrying(xp, x, source) * 1.5
    change = xp.cos(x) if source is None else source
    if operator == "+=":
        fresh += change
    elif operator == "-=":
        fresh -= change
    else:
        fresh *= change
    return fresh


def update_earlier_value(xp: Any, x: Any, source: Any = None, *, operator: str) -> Any:
    change = xp.cos(x) if source is None else source
    if operator == "+=":
        x += change
    else:
        x *= change
    return x


def add_through_view(xp: Any, x: Any, source: Any = None, *, index: Any) -> Any:
    fresh = carrying(xp, x, source) * 1.0
    fresh[index] += xp.sin(x[index]) if source is None else source
    return fresh


def far_from(point: float) -> Callable[..., bool]:
    return lambda x, **params: bool(np.abs(x - point).min(initial=np.inf) > MARGIN)


OPS: dict[str, OpSpec] = {
    # smooth elementwise functions, with their domains kept safe
    "sin": OpSpec(lambda xp, x: xp.sin(x), unary),
    "cos": OpSpec(lambda xp, x: xp.cos(x), unary),
    "tanh": OpSpec(lambda xp, x: xp.tanh(x), unary),
    "arctan": OpSpec(lambda xp, x: xp.arctan(x), unary),
    "arcsinh": OpSpec(lambda xp, x: xp.arcsinh(x), unary),
    "square": OpSpec(lambda xp, x: xp.square(x), unary),
    "cube": OpSpec(lambda xp, x: x**3, unary),
    "exp_of_tanh": OpSpec(lambda xp, x: xp.exp(xp.tanh(x)), unary),
    "gaussian": OpSpec(lambda xp, x: xp.exp(-x * x), unary),
    "sigmoid": OpSpec(lambda xp, x: 1.0 / (1.0 + xp.exp(-x)), unary),
    "log_of_square_plus_half": OpSpec(lambda xp, x: xp.log(x * x + 0.5), unary),
    "sqrt_of_square_plus_tenth": OpSpec(lambda xp, x: xp.sqrt(x * x + 0.1), unary),
    "reciprocal_of_square_plus_one": OpSpec(lambda xp, x: 1.0 / (x * x + 1.0), unary),
    "affine": OpSpec(lambda xp, x: 0.5 - 2.0 * x, unary),
    "negative": OpSpec(lambda xp, x: -x, unary),
    # piecewise elementwise functions, away from their kinks
    "abs": OpSpec(lambda xp, x: xp.abs(x), unary, far_from(0.0)),
    "clip": OpSpec(
        lambda xp, x: xp.clip(x, -0.5, 0.5),
        unary,
        lambda x, **params: far_from(-0.5)(x) and far_from(0.5)(x),
    ),
    # binary, broadcasting
    "add": OpSpec(lambda xp, x, y: x + y, binary),
    "subtract": OpSpec(lambda xp, x, y: x - y, binary),
    "multiply": OpSpec(lambda xp, x, y: x * y, binary),
    "divide_by_square_plus_one": OpSpec(lambda xp, x, y: x / (y * y + 1.0), binary),
    "logaddexp": OpSpec(lambda xp, x, y: xp.logaddexp(x, y), binary),
    "power_of_square_plus_one": OpSpec(lambda xp, x, y: xp.power(x * x + 1.0, xp.tanh(y)), binary),
    "maximum": OpSpec(lambda xp, x, y: xp.maximum(x, y), binary, lambda x, y: far_from(0.0)(x - y)),
    "hypot": OpSpec(lambda xp, x, y: xp.hypot(x, y), binary, lambda x, y: far_from(0.0)(np.hypot(x, y))),
    # reductions
    "sum": OpSpec(lambda xp, x, **params: xp.sum(x, **params), reduction),
    "mean": OpSpec(lambda xp, x, **params: xp.mean(x, **params), reduction),
    "prod": OpSpec(lambda xp, x, **params: xp.prod(x, **params), reduction),
    "var": OpSpec(lambda xp, x, **params: xp.var(x, **params), reduction),
    "std": OpSpec(
        lambda xp, x, **params: xp.std(x, **params),
        reduction,
        lambda x, **params: bool(np.min(np.std(x, **params), initial=np.inf) > MARGIN),
    ),
    "max": OpSpec(lambda xp, x, **params: xp.max(x, **params), reduction, unique_largest),
    "softmax": OpSpec(softmax, along_one_axis),
    "log_softmax": OpSpec(log_softmax, along_one_axis),
    "cumsum": OpSpec(lambda xp, x, axis: xp.cumsum(x, axis=axis), along_one_axis),
    "cumprod": OpSpec(lambda xp, x, axis: xp.cumprod(x, axis=axis), along_one_axis),
    "sort": OpSpec(
        lambda xp, x, axis: xp.sort(x, axis=axis),
        along_one_axis,
        distinct_along,
    ),
    # rearranging
    "reshape": OpSpec(lambda xp, x, shape: xp.reshape(x, shape), reshaping),
    "transpose": OpSpec(lambda xp, x, axes: xp.transpose(x, axes), transposing),
    "swapaxes": OpSpec(lambda xp, x, axis1, axis2: xp.swapaxes(x, axis1, axis2), swapping),
    "expand_dims": OpSpec(lambda xp, x, axis: xp.expand_dims(x, axis), expanding),
    "flip": OpSpec(lambda xp, x, axis: xp.flip(x, axis), along_one_axis),
    "roll": OpSpec(lambda xp, x, shift, axis: xp.roll(x, shift, axis), rolling),
    "repeat": OpSpec(lambda xp, x, repeats, axis: xp.repeat(x, repeats, axis), repeating),
    "broadcast_to": OpSpec(lambda xp, x, shape: xp.broadcast_to(x, shape), broadcasting_to),
    "diagonal": OpSpec(lambda xp, x, **params: xp.diagonal(x, **params), diagonal_of),
    # indexing
    "basic_index": OpSpec(lambda xp, x, index: x[index], indexing_basic),
    "advanced_index": OpSpec(lambda xp, x, index: x[index], indexing_advanced),
    "take_along_axis": OpSpec(lambda xp, x, indices, axis: xp.take_along_axis(x, indices, axis), gathering),
    # joining
    "concatenate": OpSpec(lambda xp, x, y, axis: xp.concatenate([x, y], axis), joining),
    "stack": OpSpec(lambda xp, x, y, axis: xp.stack([x, y], axis), stacking),
    # products
    "matmul": OpSpec(lambda xp, x, y: x @ y, multiplying_matrices),
    "matmul_by_constant": OpSpec(lambda xp, x, matrix: x @ matrix, multiplying_by_matrix),
    "gram": OpSpec(lambda xp, x: x @ xp.swapaxes(x, -1, -2), gram),
    # selection with a fixed mask
    "where": OpSpec(lambda xp, x, y, mask: xp.where(mask, x, y), selecting),
    # writes: on a copy, in place on a fresh intermediate, and through a view of one
    "setitem_on_copy": OpSpec(write_through_index, writing_through_index),
    "in_place_update": OpSpec(update_in_place, adding_in_place),
    "in_place_add_through_view": OpSpec(add_through_view, adding_through_view),
}
#: Ops that keep the values they read unchanged: the same program means the same thing in numpy and torch.
PURE_OPS = tuple(OPS)

#: ``v += ...`` on a value earlier steps made (not an input), seen by every view of it: numpy's semantics.
#: tape must follow numpy or refuse at backward; torch's views differ from numpy's, so it is no oracle here.
OPS["update_earlier_value_in_place"] = OpSpec(
    update_earlier_value, updating_earlier_value, writes_into_first=True
)


# -- drawing programs ----------------------------------------------------------------------------------------
def acceptable(value: np.ndarray) -> bool:
    """Whether a step's value keeps finite differences accurate: finite, moderate and not empty."""
    return value.size > 0 and bool(np.all(np.isfinite(value))) and float(np.abs(value).max()) <= BOUND


@st.composite
def programs(
    draw: Any, max_inputs: int = 3, min_steps: int = 2, max_steps: int = 8, ops: Sequence[str] = PURE_OPS
) -> Program:
    """Programs of 1 to ``max_inputs`` inputs of broadcast-compatible shapes (up to 3 axes of up to 3
    elements) and ``min_steps`` to ``max_steps`` steps drawn from ``ops``."""
    count = draw(st.integers(1, max_inputs))
    fewest_axes = draw(st.sampled_from([1, 0]))  # 0-d inputs now and then
    shortest_side = draw(st.integers(1, 2))  # half the time no axis of length one, so no tiny programs only
    shapes = draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=count, min_dims=fewest_axes, max_dims=3, min_side=shortest_side, max_side=3
        )
    ).input_shapes
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    inputs = [np.asarray(rng.uniform(-1.5, 1.5, shape).round(3)) for shape in shapes]
    values = list(inputs)
    steps: list[Step] = []
    wanted = draw(st.integers(min_steps, max_steps))
    for _ in range(4 * max_steps):
        if len(steps) == wanted:
            break
        name = draw(st.sampled_from(ops))
        spec = OPS[name]
        first = len(values) - 1 - draw(st.integers(0, len(values) - 1))  # shrinks to the newest value
        choice = spec.choose(draw, values, first, rng)
        if choice is None:
            continue
        args, params = choice
        operands = [values[k] for k in args]
        if spec.writes_into_first and any(
            np.shares_memory(values[first], v) for v in [*inputs, *(v for v in values if v.ndim == 0)]
        ):
            # An input that requires grad cannot change in place; and numpy returns 0-d results as scalars,
            # which share no memory, so a write into a view of one would not follow numpy's arrays.
            continue
        if not spec.safe(*operands, **params):
            continue
        trial = [x.copy() for x in operands] if spec.writes_into_first else operands
        value = np.asarray(spec.apply(np, *trial, **params), dtype=np.float64)
        if not acceptable(value):
            continue
        if spec.writes_into_first:
            value = spec.apply(np, *operands, **params)
        steps.append(Step(name, args, tuple(params.items())))
        values.append(value)
    consumed = {k for step in steps for k in step.args}
    loose_ends = [k for k in range(len(values)) if k not in consumed]
    weights = tuple((k, np.asarray(rng.uniform(-1, 1, values[k].shape).round(2))) for k in loose_ends)
    return Program(tuple(inputs), tuple(steps), weights)

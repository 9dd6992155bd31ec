"""Fusing runs of elementwise steps of a recorded program into one numba kernel each way.

A *region* is a run of consecutive steps whose values share one shape and one floating dtype, each an op
with scalar formulas (``registry.SCALAR_FORMULAS``, kept beside the op: arithmetic, sqrt, power, exp, log,
sin, cos, tanh, maximum, minimum, clip, relu, where) or a comparison. Their arguments are Python numbers or
values of any shape that broadcasts to the region's; a sum of the run's last value (``registry.FUSIBLE_SUMS``,
over any axes) may end the run. The forward kernel reads the region's inputs once, each through its
broadcast, and writes only the values used outside it, accumulating the sum: no temporaries. The backward
kernel recomputes the region's values from its inputs, element by element, runs the scalar VJPs in reverse,
and sums the cotangents of broadcast inputs, so the backward keeps nothing of the inside either. A large
tanh, exp or log that feeds a region keeps its own (vectorized) forward, but its VJP runs in the region's
backward kernel (``PRECOMPUTED``).

Each kernel is a ``tape.jit.Kernel`` whose twin runs the region's ops themselves (their numpy forwards and
VJPs), so the tests compare the two. The generated source is written to a file under the cache directory
(``TAPE_CACHE_DIR``, else ``~/.cache/tape``), named by its hash, so numba's cache finds the machine code again
in the next process. Loop lengths are arguments: one kernel serves every shape with the same broadcasts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import jit
from .registry import FUSIBLE_SUMS, SCALAR_FORMULAS
from .tracing import Slot, Step, slots_in

_FLOATS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})
_BOOL = np.dtype(bool)
#: Comparisons (not ops: they carry no gradient) and their scalar forms.
COMPARISONS = {
    np.greater: lambda x, y: x > y,
    np.greater_equal: lambda x, y: x >= y,
    np.less: lambda x, y: x < y,
    np.less_equal: lambda x, y: x <= y,
    np.equal: lambda x, y: x == y,
    np.not_equal: lambda x, y: x != y,
}
#: Fewer steps than this are not worth a kernel call of their own.
SMALLEST_REGION = 2
#: Ops whose scalar formulas call libm one value at a time: numba does not vectorize them (without Intel's
#: SVML), while numpy's ufuncs and tape's sine kernel do, so on arrays larger than ``LARGEST_SCALAR_LOOP``
#: they stay the ops' own calls (python -m benchmarks --suite compile: 10^6 tanh and sin fused ran 5x slower
#: than unfused).
TRANSCENDENTAL = frozenset({"sin", "cos", "tanh", "exp", "log", "power"})
#: Of those, the ones whose VJP is arithmetic on the output or the input. A region adopts such a step that
#: feeds it: the op still computes the value, but the region's backward kernel runs its VJP, so the
#: cotangent in between is never written to memory.
PRECOMPUTED = frozenset({"tanh", "exp", "log"})
LARGEST_SCALAR_LOOP = 1 << 11


def formulas_of(step: Step) -> tuple[Any, tuple[Any, ...]] | None:
    """The scalar forward and VJPs of a step's op, or None if it has none."""
    found = SCALAR_FORMULAS.get(step.op)
    if found is not None:
        return found
    comparison = COMPARISONS.get(step.op.forward)  # type: ignore[call-overload]
    return None if comparison is None else (comparison, (None, None))


@dataclass
class Region:
    """A run of elementwise steps, with the slots it reads, writes for outside use, and differentiates.

    ``shape`` is the shape of the run's values; an input may have any shape that broadcasts to it, and the
    last step may be a sum of the run's last value (over any axes), whose result has the sum's shape.
    ``precomputed`` steps are computed by their op before the forward kernel, which reads their values as
    inputs. The kernels loop over ``loops``: ``shape`` with its axes of length 1 dropped and neighbouring
    axes merged where every array is either whole or broadcast along both; ``views`` gives each array's
    shape in those loops (its length along a loop, or 1 where it is broadcast).
    """

    steps: list[Step]
    shape: tuple[int, ...]
    dtype: np.dtype
    inputs: list[int]
    constants: list[Any]  # the Python numbers the steps read, in order of first use
    outputs: list[int]  # the values the forward kernel writes (those read outside the region)
    differentiated: list[int]  # inputs that receive a cotangent
    received: list[int] = field(default_factory=list)  # the values whose cotangent the backward reads
    precomputed: list[Step] = field(default_factory=list)
    reduction: Step | None = None  # a sum ending the run
    shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)  # each input's and output's shape
    input_dtypes: list[np.dtype] = field(default_factory=list)
    output_dtypes: list[np.dtype] = field(default_factory=list)
    loops: tuple[int, ...] = ()
    views: dict[int, tuple[int, ...]] = field(default_factory=dict)
    forward_kernel: Any = None  # tape.jit.Kernel (the backward's: None when nothing is differentiated)
    backward_kernel: Any = None
    source: str = ""  # the kernels' source, as numba compiles it

    def __post_init__(self) -> None:
        # For each step that made a record: the op whose VJPs run, and the arguments that take a cotangent.
        self.gradients = {
            id(step): (
                step.record.op,
                [argnum for argnum, node, _, _, _ in step.record.inputs if node is not None],
            )
            for step in self.steps
            if step.record is not None
        }

    # -- what the generated program calls -------------------------------------------------------------
    def forward(self, *inputs: Any) -> tuple[np.ndarray, ...]:
        """The region's outputs from its inputs (arrays of their own shapes)."""
        outputs = []
        for slot, dtype in zip(self.outputs, self.output_dtypes, strict=True):
            summed = self.reduction is not None and slot == self.reduction.outs[0]
            # A sum accumulates in float64 (float32 sums come out more accurate than numpy's, not less).
            outputs.append(np.zeros(self.views[slot]) if summed else np.empty(self.views[slot], dtype))
        self.forward_kernel(*self.loops, *self._viewed(self.inputs, inputs), *outputs)
        return tuple(
            output.astype(dtype, copy=False).reshape(self.shapes[slot])
            for output, slot, dtype in zip(outputs, self.outputs, self.output_dtypes, strict=True)
        )

    def backward(self, *inputs_and_cotangents: Any) -> tuple[np.ndarray, ...]:
        """The cotangents of the differentiated inputs, from the inputs and the outputs' cotangents (None
        for an output that received none)."""
        count = len(self.inputs)
        inputs, cotangents = inputs_and_cotangents[:count], inputs_and_cotangents[count:]
        cotangents = tuple(
            np.zeros(self.views[slot], self.dtype) if g is None else g
            for g, slot in zip(cotangents, self.received, strict=True)
        )
        results = [
            np.empty(self.views[slot], self.dtype) if self._whole(slot) else np.zeros(self.views[slot])
            for slot in self.differentiated
        ]
        self.backward_kernel(
            self.dtype.type(0),
            *self.loops,
            *self._viewed(self.inputs, inputs),
            *self._viewed(self.received, cotangents),
            *results,
        )
        return tuple(
            result.astype(self.dtype, copy=False).reshape(self.shapes[slot])
            for result, slot in zip(results, self.differentiated, strict=True)
        )

    def _viewed(self, slots: list[int], arrays: Any) -> list[np.ndarray]:
        return [
            np.ascontiguousarray(array, None if array.dtype == _BOOL else self.dtype).reshape(self.views[s])
            for s, array in zip(slots, arrays, strict=True)
        ]

    def _whole(self, slot: int) -> bool:
        return self.views[slot] == self.loops


def find_regions(steps: list[Step], values: list[Any], outputs: list[int]) -> list[Region]:
    """The regions of ``steps`` (see the module docstring); ``values`` gives each slot's shape and dtype."""
    runs: list[tuple[list[Step], tuple[int, ...], np.dtype]] = []
    current: list[Step] = []
    produced: set[int] = set()
    key: Any = None

    def close() -> None:
        if len(current) >= SMALLEST_REGION:
            runs.append((list(current), *key))
        current.clear()
        produced.clear()

    for step in steps:
        if key is not None and _ends_run(step, values, key[0], produced):
            current.append(step)
            close()
            key = None
            continue
        step_key = _fusible(step, values)
        if step_key is None or step_key != key:
            close()
            key = step_key
        if step_key is not None:
            current.append(step)
            produced.update(step.outs)
    if key is not None:
        close()
    adopted = _adopt_precomputed(runs, steps, values)
    regions = []
    for (run, shape, dtype), early in zip(runs, adopted, strict=True):
        inside = {id(step) for step in (*early, *run)}
        regions.append(_region(early, run, shape, dtype, steps, inside, outputs, values))
    return regions


def _adopt_precomputed(
    runs: list[tuple[list[Step], tuple[int, ...], np.dtype]], steps: list[Step], values: list[Any]
) -> list[list[Step]]:
    """For each run, the large tanh, exp and log steps whose values it reads and whose VJP its backward
    kernel can run: those no other run holds, of the run's shape and dtype, and read only by the run or
    after it (so that their whole cotangent is known when the kernel runs)."""
    position = {id(step): k for k, step in enumerate(steps)}
    producer = {slot: step for step in steps for slot in step.outs}
    readers: dict[int, list[Step]] = {}
    for step in steps:
        read: set[int] = set()
        slots_in((step.args, tuple(step.kwargs.values())), read)
        for slot in read:
            readers.setdefault(slot, []).append(step)
    taken = {id(step) for run, _, _ in runs for step in run}
    adopted = []
    for run, shape, dtype in runs:
        members, last = {id(step) for step in run}, position[id(run[-1])]
        early: list[Step] = []
        for step in run:
            for arg in step.args:
                source = producer.get(arg.index) if type(arg) is Slot else None
                if (
                    source is None
                    or id(source) in taken
                    or source.op.name not in PRECOMPUTED
                    or not _large_transcendental(source, values)
                    or _fusible(source, values, any_size=True) != (shape, dtype)
                    or any(id(r) not in members and position[id(r)] < last for r in readers[arg.index])
                ):
                    continue
                taken.add(id(source))
                early.append(source)
        adopted.append(sorted(early, key=lambda step: position[id(step)]))
    return adopted


def _fusible(
    step: Step, values: list[Any], any_size: bool = False
) -> tuple[tuple[int, ...], np.dtype] | None:
    formulas = formulas_of(step)
    if formulas is None or step.several or step.kwargs:
        return None
    out = values[step.outs[0]]
    shape, dtypes = out.shape, {out.dtype}
    for arg in step.args:
        if type(arg) is Slot:
            value = values[arg.index]
            if value.ndim > len(shape) or np.broadcast_shapes(value.shape, shape) != shape:
                return None
            dtypes.add(value.dtype)
        elif type(arg) not in (int, float, bool):
            return None
    floating = dtypes - {_BOOL}
    if len(floating) != 1 or not floating <= _FLOATS:
        return None
    if not any_size and _large_transcendental(step, values):
        return None
    record = step.record
    if record is not None:
        if record.op is not step.op:  # a complex twin
            return None
        for argnum, node, _, _, _ in record.inputs:
            if node is not None and (formulas[1][argnum] is None or type(step.args[argnum]) is not Slot):
                return None
    return shape, next(iter(floating))


def _large_transcendental(step: Step, values: list[Any]) -> bool:
    # x ** 2 with the 2 written in the kernel's source is no call: LLVM makes it a product.
    square = step.op.name == "power" and type(step.args[1]) in (int, float) and step.args[1] == 2
    return values[step.outs[0]].size > LARGEST_SCALAR_LOOP and step.op.name in TRANSCENDENTAL and not square


def _ends_run(step: Step, values: list[Any], shape: tuple[int, ...], produced: set[int]) -> bool:
    """Whether ``step`` sums a value the run made (over any axes, into its own dtype): it ends the run."""
    if step.op not in FUSIBLE_SUMS or step.several or len(step.args) != 1 or type(step.args[0]) is not Slot:
        return False
    if step.args[0].index not in produced or values[step.args[0].index].shape != shape:
        return False
    if step.kwargs.get("dtype") is not None or set(step.kwargs) - {"axis", "dtype", "keepdims"}:
        return False
    if step.record is not None and step.record.op is not step.op:
        return False
    return values[step.outs[0]].dtype == values[step.args[0].index].dtype


def _summed_axes(step: Step, ndim: int) -> set[int]:
    axis = step.kwargs.get("axis")
    if axis is None:
        return set(range(ndim))
    return {int(a) % ndim for a in (axis if isinstance(axis, tuple | list) else (axis,))}


def _layout(
    shape: tuple[int, ...], patterns: dict[int, tuple[bool, ...]]
) -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]]:
    """The loops over ``shape`` and each array's view in them (see ``Region``); ``patterns`` says, for each
    array, along which axes of ``shape`` it is whole (True) or broadcast (False)."""
    axes = [axis for axis, length in enumerate(shape) if length != 1]
    groups: list[list[int]] = []
    for axis in axes:
        if groups and all(p[groups[-1][-1]] == p[axis] for p in patterns.values()):
            groups[-1].append(axis)
        else:
            groups.append([axis])
    if not groups:  # one element
        return (1,), {slot: (1,) for slot in patterns}
    loops = tuple(int(np.prod([shape[a] for a in group])) for group in groups)
    views = {
        slot: tuple(length if p[group[0]] else 1 for length, group in zip(loops, groups, strict=True))
        for slot, p in patterns.items()
    }
    return loops, views


def _region(
    precomputed: list[Step],
    run: list[Step],
    shape: tuple[int, ...],
    dtype: np.dtype,
    steps: list[Step],
    inside: set[int],
    program_outputs: list[int],
    values: list[Any],
) -> Region:
    reduction = run[-1] if run[-1].op in FUSIBLE_SUMS else None
    early = {id(step) for step in precomputed}
    run = [*precomputed, *run]
    produced = {slot for step in run if id(step) not in early for slot in step.outs}
    early_values = {step.outs[0] for step in precomputed}  # inputs whose cotangent stays in the kernel
    inputs: list[int] = []
    constants: list[Any] = []
    differentiated: list[int] = []
    for step in run:
        sources = step.outs if id(step) in early else [a.index for a in step.args if type(a) is Slot]
        for slot in sources:
            if slot not in produced and slot not in inputs:
                inputs.append(slot)
        if step.record is not None and id(step) not in early:
            for argnum, node, _, _, _ in step.record.inputs:
                slot = step.args[argnum].index
                if node is not None and slot not in produced | early_values and slot not in differentiated:
                    differentiated.append(slot)
    for step in precomputed:  # their VJPs run in the backward kernel, on their own inputs
        for arg in step.args:
            if type(arg) is Slot and arg.index not in inputs:
                inputs.append(arg.index)
        if step.record is not None:
            for argnum, node, _, _, _ in step.record.inputs:
                if node is not None and step.args[argnum].index not in differentiated:
                    differentiated.append(step.args[argnum].index)
    read_outside: set[int] = set(program_outputs)
    for step in steps:
        if id(step) not in inside:
            slots_in((step.args, tuple(step.kwargs.values())), read_outside)
    outputs = [slot for step in run if id(step) not in early for slot in step.outs if slot in read_outside]
    # A precomputed value read outside too gets its cotangent from there as well, for its VJP in the kernel.
    received = outputs + [step.outs[0] for step in precomputed if step.outs[0] in read_outside]
    differentiated.sort(key=inputs.index)
    for step in run:
        for arg in step.args:
            if type(arg) is not Slot and not any(type(c) is type(arg) and c == arg for c in constants):
                constants.append(arg)
    shapes = {slot: values[slot].shape for slot in (*inputs, *outputs)}
    patterns = {slot: _pattern(values[slot].shape, shape) for slot in inputs if slot not in outputs}
    for slot in received:
        patterns[slot] = tuple(True for _ in shape)
    if reduction is not None and reduction.outs[0] in outputs:
        summed = _summed_axes(reduction, len(shape))
        patterns[reduction.outs[0]] = tuple(axis not in summed for axis in range(len(shape)))
    region = Region(
        run,
        shape,
        dtype,
        inputs,
        constants,
        outputs,
        differentiated,
        received=received,
        precomputed=precomputed,
        reduction=reduction,
        shapes=shapes,
    )
    region.input_dtypes = [values[slot].dtype for slot in inputs]
    region.output_dtypes = [values[slot].dtype for slot in outputs]
    region.loops, region.views = _layout(shape, patterns)
    forward_source, backward_source = _sources(region)
    module = _load(_module_source(region, forward_source, backward_source))
    region.forward_kernel = jit.Kernel(module.forward, _forward_twin(region))
    if region.differentiated and region.received:
        region.backward_kernel = jit.Kernel(module.backward, _backward_twin(region))
    region.source = forward_source + "\n" + backward_source
    return region


def _pattern(shape: tuple[int, ...], full: tuple[int, ...]) -> tuple[bool, ...]:
    padded = (1,) * (len(full) - len(shape)) + tuple(shape)
    return tuple(length == whole for length, whole in zip(padded, full, strict=True))


def _sources(region: Region) -> tuple[str, str]:
    """The forward and backward kernels' Python source, for numba."""
    loops = len(region.loops)
    counters = [f"a{k}" for k in range(loops)]

    def at(slot: int) -> str:  # an array's element at the loops' position
        view = region.views[slot]
        return ", ".join(name if length != 1 else "0" for name, length in zip(counters, view, strict=True))

    reduction = region.reduction
    early = {id(step) for step in region.precomputed}
    computed_steps = [s for s in region.steps if id(s) not in early and s is not reduction]
    expressions = {
        id(step): [f"v{arg.index}" if type(arg) is Slot else _literal(arg, region.dtype) for arg in step.args]
        for step in region.steps
    }
    extents = [f"n{k}" for k in range(loops)]
    inputs = [f"i{k}" for k in range(len(region.inputs))]
    loads = [f"v{slot} = i{k}[{at(slot)}]" for k, slot in enumerate(region.inputs)]
    computed = [
        f"v{step.outs[0]} = {_formula_name(step, 0)}({', '.join(expressions[id(step)])})"
        for step in computed_steps
    ]
    summed, addend = None, ""
    if reduction is not None and reduction.outs[0] in region.outputs:
        summed, addend = reduction.outs[0], f"v{reduction.args[0].index}"
    stores = [
        f"o{k}[{at(slot)}] += {addend}" if slot == summed else f"o{k}[{at(slot)}] = v{slot}"
        for k, slot in enumerate(region.outputs)
    ]
    before: list[str] = []
    after: list[str] = []
    if summed is not None and set(region.views[summed]) == {1}:  # a total: summed in a local variable
        k = region.outputs.index(summed)
        before, after = [f"    total = o{k}[{at(summed)}]"], [f"    o{k}[{at(summed)}] = total"]
        stores[k] = f"total += {addend}"
    outputs = [f"o{k}" for k in range(len(region.outputs))]
    forward = [
        f"def forward({', '.join(extents + inputs + outputs)}):",
        *(before + _nest(extents, loads + computed + stores) + after if outputs else ["    return"]),
    ]
    cotangents = [f"g{k}" for k in range(len(region.received))]
    results = [f"r{k}" for k in range(len(region.differentiated))]
    signature = f"def backward({', '.join(['zero', *extents, *inputs, *cotangents, *results])}):"
    if not results or not region.received:
        return "\n".join(forward) + "\n", f"{signature}\n    return\n"
    slots = [slot for step in region.steps for slot in step.outs] + region.inputs
    body = [
        *loads,
        *computed,
        *(f"c{slot} = zero" for slot in dict.fromkeys(slots) if slot not in region.received),
        *(f"c{slot} = g{k}[{at(slot)}]" for k, slot in enumerate(region.received)),
    ]
    for step in reversed(region.steps):
        if step.record is None:
            continue
        if step is reduction:
            body.append(f"c{step.args[0].index} = c{step.args[0].index} + c{step.outs[0]}")
            continue
        out = f"v{step.outs[0]}"
        for argnum, node, _, _, _ in step.record.inputs:
            if node is None:
                continue
            target = step.args[argnum].index
            arguments = ", ".join(expressions[id(step)])
            call = f"{_formula_name(step, argnum + 1)}(c{step.outs[0]}, {out}, {arguments})"
            body.append(f"c{target} = c{target} + {call}")
    for k, slot in enumerate(region.differentiated):
        body.append(f"r{k}[{at(slot)}] {'=' if region._whole(slot) else '+='} c{slot}")
    backward = [signature, *_nest(extents, body)]
    return "\n".join(forward) + "\n", "\n".join(backward) + "\n"


def _nest(extents: list[str], body: list[str]) -> list[str]:
    """``body`` inside one loop per extent, outermost first."""
    lines = [f"{'    ' * (depth + 1)}for a{depth} in range({n}):" for depth, n in enumerate(extents)]
    indent = "    " * (len(extents) + 1)
    return lines + [indent + line for line in body]


def _literal(value: Any, dtype: np.dtype) -> str:
    """A Python number in the region's dtype, as numpy casts it (float32 * 1.01 is float32), as source."""
    number = float(dtype.type(value))
    text = (
        repr(number)
        if np.isfinite(number)
        else ("np.nan" if number != number else f"{'-' * (number < 0)}np.inf")
    )
    return text if dtype == np.float64 else f"np.{dtype.name}({text})"


def _formula_name(step: Step, index: int) -> str:
    return f"f_{_NOT_IN_NAMES.sub('_', step.op.name)}_{index}"


_NOT_IN_NAMES = re.compile(r"\W")


def _module_source(region: Region, forward: str, backward: str) -> str:
    lines = [
        '"""Kernels tape.compile made for a run of elementwise steps (numba caches them by this file)."""',
        "import numpy as np",
        "from tape.fusion import scalar",
        "",
    ]
    for step in region.steps:
        if step is region.reduction:
            continue
        formulas = formulas_of(step)
        assert formulas is not None
        for index in range(1 + len(formulas[1])):
            line = f"{_formula_name(step, index)} = scalar({step.op.name!r}, {index})"
            if line not in lines:
                lines.append(line)
    return "\n".join([*lines, "", "", forward, "", backward])


def scalar(name: str, index: int) -> Any:
    """Formula ``index`` (0: the forward, then the VJPs) of the op named ``name``, compiled by numba."""
    key = (name, index)
    compiled = _COMPILED_FORMULAS.get(key)
    if compiled is None:
        formula = _formulas_by_name()[name][index]
        numba = jit._import_numba()
        compiled = formula if numba is None or formula is None else numba.njit(error_model="numpy")(formula)
        _COMPILED_FORMULAS[key] = compiled
    return compiled


_COMPILED_FORMULAS: dict[tuple[str, int], Any] = {}


def _formulas_by_name() -> dict[str, tuple[Any, ...]]:
    table: dict[str, tuple[Any, ...]] = {}
    for op, (forward, vjps) in SCALAR_FORMULAS.items():
        if op.name in table:
            raise RuntimeError(f"tape.fusion: two ops with scalar formulas are named {op.name!r}")
        table[op.name] = (forward, *vjps)
    for comparison, forward in COMPARISONS.items():
        table[comparison.__name__] = (forward, None, None)
    return table


def cache_directory() -> Path:
    """Where generated kernels are written: ``TAPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/tape``, else
    ``~/.cache/tape``."""
    configured = os.environ.get("TAPE_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tape"


def _load(source: str) -> Any:
    """Import ``source`` as a module from a file named by its hash (written once), for numba's cache."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"tape_fused_{digest}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    directory = cache_directory() / "fused"
    path = directory / f"{name}.py"
    try:
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".tmp", delete=False) as file:
                file.write(source)
            os.replace(file.name, path)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except OSError:  # no writable cache: compile in memory, in every process
        module = type(sys)(name)
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    sys.modules[name] = module
    return module


def _resolve(arg: Any, env: dict[int, Any]) -> Any:
    return env[arg.index] if type(arg) is Slot else arg


def _forward_twin(region: Region) -> Any:
    """The forward kernel's twin: the region's ops' own forwards, on the arrays' views in the loops."""

    def forward(*arrays: Any) -> None:
        loops = len(region.loops)
        env = _values(region, arrays[loops : loops + len(region.inputs)])
        for target, slot in zip(arrays[loops + len(region.inputs) :], region.outputs, strict=True):
            target[...] = env[slot]

    return forward


def _values(region: Region, inputs: Any) -> dict[int, Any]:
    """Every value of the region, by slot, from its inputs (with the sum kept whole where it was taken)."""
    env = dict(zip(region.inputs, inputs, strict=True))
    early = {id(step) for step in region.precomputed}
    for step in region.steps:
        if id(step) in early:
            continue
        if step is region.reduction:
            view = region.views.get(step.outs[0], ())
            axes = tuple(axis for axis, length in enumerate(view) if length == 1)
            env[step.outs[0]] = np.sum(env[step.args[0].index], axis=axes, keepdims=True)
            continue
        env[step.outs[0]] = np.asarray(step.op.forward(*(_resolve(arg, env) for arg in step.args)))
    return env


def _backward_twin(region: Region) -> Any:
    """The backward kernel's twin: the region's ops' own VJPs, latest first, as the eager sweep runs them."""

    def backward(zero: Any, *arrays: Any) -> None:
        loops, count = len(region.loops), len(region.inputs)
        env = _values(region, arrays[loops : loops + count])
        given = arrays[loops + count : loops + count + len(region.received)]
        cotangents: dict[int, Any] = dict(zip(region.received, given, strict=True))
        for step in reversed(region.steps):
            g = cotangents.get(step.outs[0])
            if id(step) not in region.gradients or g is None:
                continue
            args = [_resolve(arg, env) for arg in step.args]
            op, argnums = region.gradients[id(step)]
            for argnum in argnums:
                slot = step.args[argnum].index
                if step is region.reduction:
                    cotangent = np.broadcast_to(g, region.loops)
                else:
                    cotangent = np.asarray(op.vjps[argnum](g, env[step.outs[0]], *args), dtype=region.dtype)
                cotangents[slot] = cotangent if slot not in cotangents else cotangents[slot] + cotangent
        results = arrays[loops + count + len(region.received) :]
        for target, slot in zip(results, region.differentiated, strict=True):
            view = region.views[slot]
            axes = tuple(axis for axis, length in enumerate(view) if length == 1)
            whole = np.broadcast_to(cotangents.get(slot, zero), region.loops)
            target[...] = np.sum(whole, axis=axes, keepdims=True)

    return backward

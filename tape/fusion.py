"""Fusing runs of elementwise steps of a recorded program into one numba kernel each way.

A *region* is a run of consecutive steps of one shape and one floating dtype, each an op with scalar formulas
(``registry.SCALAR_FORMULAS``, kept beside the op) or a comparison, whose arguments are values of that shape
or Python numbers. Its forward kernel reads the region's inputs once and writes only the values used outside
it: no temporaries. Its backward kernel recomputes the region's values from its inputs, element by element,
and runs the scalar VJPs in reverse, so the backward keeps nothing of the inside either.

Each kernel is a ``tape.jit.Kernel`` whose twin runs the region's ops themselves (their numpy forwards and
VJPs), so ``TAPE_JIT=0`` gives the unfused program's numbers and the tests compare the two. The generated
source is written to a file under the cache directory (``TAPE_CACHE_DIR``, else ``~/.cache/tape``), named
by its hash, so numba's cache finds the machine code again in the next process.
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
from .registry import SCALAR_FORMULAS
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
#: SVML), while numpy's ufuncs do, so on arrays larger than ``LARGEST_SCALAR_LOOP`` they stay numpy's calls
#: (python -m benchmarks --suite compile: 10^6 tanh and sin fused ran 5x slower than unfused).
TRANSCENDENTAL = frozenset({"sin", "cos", "tanh", "exp", "log", "power"})
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
    """A run of elementwise steps, with the slots it reads, writes for outside use, and differentiates."""

    steps: list[Step]
    shape: tuple[int, ...]
    dtype: np.dtype
    inputs: list[int]
    constants: list[Any]  # the Python numbers the steps read, in order of first use
    outputs: list[int]
    differentiated: list[int]  # inputs that receive a cotangent
    output_dtypes: list[np.dtype] = field(default_factory=list)
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
        outputs = tuple(np.empty(self.shape, dtype) for dtype in self.output_dtypes)
        self.forward_kernel(*_flat(inputs), *(o.reshape(-1) for o in outputs))
        return outputs

    def backward(self, *inputs_and_cotangents: Any) -> tuple[np.ndarray, ...]:
        count = len(self.inputs)
        inputs, cotangents = inputs_and_cotangents[:count], inputs_and_cotangents[count:]
        cotangents = tuple(
            np.zeros(self.shape, self.dtype) if g is None else np.asarray(g, dtype=self.dtype)
            for g in cotangents
        )
        results = tuple(np.empty(self.shape, self.dtype) for _ in self.differentiated)
        self.backward_kernel(
            self.dtype.type(0),
            *_flat(inputs),
            *_flat(cotangents),
            *(r.reshape(-1) for r in results),
        )
        return results


def _flat(arrays: Any) -> list[np.ndarray]:
    return [np.ascontiguousarray(a).reshape(-1) for a in arrays]


def find_regions(steps: list[Step], values: list[Any], outputs: list[int]) -> list[Region]:
    """The regions of ``steps`` (see the module docstring); ``values`` gives each slot's shape and dtype."""
    runs: list[tuple[list[Step], tuple[int, ...], np.dtype]] = []
    current: list[Step] = []
    key: Any = None
    for step in steps:
        step_key = _fusible(step, values)
        if step_key is not None and step_key == key:
            current.append(step)
            continue
        if len(current) >= SMALLEST_REGION:
            runs.append((current, *key))
        current, key = ([step], step_key) if step_key is not None else ([], None)
    if len(current) >= SMALLEST_REGION:
        runs.append((current, *key))
    regions = []
    for run, shape, dtype in runs:
        inside = {id(step) for step in run}
        regions.append(_region(run, shape, dtype, steps, inside, outputs, values))
    return regions


def _fusible(step: Step, values: list[Any]) -> tuple[tuple[int, ...], np.dtype] | None:
    formulas = formulas_of(step)
    if formulas is None or step.several or step.kwargs:
        return None
    out = values[step.outs[0]]
    shape, dtypes = out.shape, {out.dtype}
    for arg in step.args:
        if type(arg) is Slot:
            value = values[arg.index]
            if value.shape != shape:
                return None
            dtypes.add(value.dtype)
        elif type(arg) not in (int, float, bool):
            return None
    floating = dtypes - {_BOOL}
    if len(floating) != 1 or not floating <= _FLOATS:
        return None
    if out.size > LARGEST_SCALAR_LOOP and step.op.name in TRANSCENDENTAL and not _is_square(step):
        return None
    record = step.record
    if record is not None:
        if record.op is not step.op:  # a complex twin
            return None
        for argnum, node, _, _, _ in record.inputs:
            if node is not None and (formulas[1][argnum] is None or type(step.args[argnum]) is not Slot):
                return None
    return shape, next(iter(floating))


def _is_square(step: Step) -> bool:
    # x ** 2 with the 2 written in the kernel's source: LLVM makes the pow call a product.
    return step.op.name == "power" and type(step.args[1]) in (int, float) and step.args[1] == 2


def _region(
    run: list[Step],
    shape: tuple[int, ...],
    dtype: np.dtype,
    steps: list[Step],
    inside: set[int],
    program_outputs: list[int],
    values: list[Any],
) -> Region:
    produced = {slot for step in run for slot in step.outs}
    inputs: list[int] = []
    constants: list[Any] = []
    differentiated: list[int] = []
    for step in run:
        for arg in step.args:
            if type(arg) is Slot and arg.index not in produced and arg.index not in inputs:
                inputs.append(arg.index)
        if step.record is not None:
            for argnum, node, _, _, _ in step.record.inputs:
                slot = step.args[argnum].index
                if node is not None and slot not in produced and slot not in differentiated:
                    differentiated.append(slot)
    read_outside: set[int] = set(program_outputs)
    for step in steps:
        if id(step) not in inside:
            slots_in((step.args, tuple(step.kwargs.values())), read_outside)
    outputs = [slot for step in run for slot in step.outs if slot in read_outside]
    differentiated.sort(key=inputs.index)
    for step in run:
        for arg in step.args:
            if type(arg) is not Slot and not any(type(c) is type(arg) and c == arg for c in constants):
                constants.append(arg)
    region = Region(run, shape, dtype, inputs, constants, outputs, differentiated)
    region.output_dtypes = [values[slot].dtype for slot in outputs]
    forward_source, backward_source = _sources(region)
    module = _load(_module_source(region, forward_source, backward_source))
    region.forward_kernel = jit.Kernel(module.forward, _forward_twin(region))
    if region.differentiated and region.outputs:
        region.backward_kernel = jit.Kernel(module.backward, _backward_twin(region))
    region.source = forward_source + "\n" + backward_source
    return region


def _sources(region: Region) -> tuple[str, str]:
    """The forward and backward kernels' Python source, for numba."""
    expressions: list[list[str]] = []  # each step's argument expressions
    for step in region.steps:
        expressions.append(
            [f"v{arg.index}" if type(arg) is Slot else _literal(arg, region.dtype) for arg in step.args]
        )
    inputs = [f"i{k}" for k in range(len(region.inputs))]
    constants: list[str] = []  # (written in the source as literals: numba folds them, x ** 2.0 is x * x)
    loads = [f"        v{slot} = i{k}[e]" for k, slot in enumerate(region.inputs)]
    computed = [
        f"        v{step.outs[0]} = {_formula_name(step, 0)}({', '.join(arguments)})"
        for step, arguments in zip(region.steps, expressions, strict=True)
    ]
    outputs = [f"o{k}" for k in range(len(region.outputs))]
    forward = [
        f"def forward({', '.join(inputs + constants + outputs)}):",
        f"    for e in range({outputs[0]}.shape[0]):" if outputs else "    return",
        *loads,
        *computed,
        *(f"        o{k}[e] = v{slot}" for k, slot in enumerate(region.outputs)),
    ]
    cotangents = [f"g{k}" for k in range(len(region.outputs))]
    results = [f"r{k}" for k in range(len(region.differentiated))]
    slots = [slot for step in region.steps for slot in step.outs] + region.inputs
    signature = f"def backward({', '.join(['zero', *inputs, *constants, *cotangents, *results])}):"
    if not results or not region.outputs:
        return "\n".join(forward) + "\n", f"{signature}\n    return\n"
    backward = [
        signature,
        f"    for e in range({results[0]}.shape[0]):",
        *loads,
        *computed,
        *(f"        c{slot} = zero" for slot in slots if slot not in region.outputs),
        *(f"        c{slot} = g{k}[e]" for k, slot in enumerate(region.outputs)),
    ]
    for step, arguments in reversed(list(zip(region.steps, expressions, strict=True))):
        if step.record is None:
            continue
        out = f"v{step.outs[0]}"
        for argnum, node, _, _, _ in step.record.inputs:
            if node is None:
                continue
            target = step.args[argnum].index
            call = f"{_formula_name(step, argnum + 1)}(c{step.outs[0]}, {out}, {', '.join(arguments)})"
            backward.append(f"        c{target} = c{target} + {call}")
    backward += [f"        r{k}[e] = c{slot}" for k, slot in enumerate(region.differentiated)]
    return "\n".join(forward) + "\n", "\n".join(backward) + "\n"


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
    """The forward kernel's twin: the region's ops' own forwards, on the flattened arrays."""

    def forward(*arrays: Any) -> None:
        count = len(region.inputs)
        env = dict(zip(region.inputs, arrays[:count], strict=True))
        for step in region.steps:
            env[step.outs[0]] = np.asarray(step.op.forward(*(_resolve(arg, env) for arg in step.args)))
        for target, slot in zip(arrays[count:], region.outputs, strict=True):
            target[...] = env[slot]

    return forward


def _backward_twin(region: Region) -> Any:
    """The backward kernel's twin: the region's ops' own VJPs, latest first, as the eager sweep runs them."""

    def backward(zero: Any, *arrays: Any) -> None:
        count = len(region.inputs)
        env = dict(zip(region.inputs, arrays[:count], strict=True))
        for step in region.steps:
            env[step.outs[0]] = np.asarray(step.op.forward(*(_resolve(arg, env) for arg in step.args)))
        given = arrays[count : count + len(region.outputs)]
        cotangents: dict[int, Any] = dict(zip(region.outputs, given, strict=True))
        for step in reversed(region.steps):
            g = cotangents.get(step.outs[0])
            if id(step) not in region.gradients or g is None:
                continue
            args = [_resolve(arg, env) for arg in step.args]
            op, argnums = region.gradients[id(step)]
            for argnum in argnums:
                slot = step.args[argnum].index
                cotangent = np.asarray(op.vjps[argnum](g, env[step.outs[0]], *args), dtype=region.dtype)
                cotangents[slot] = cotangent if slot not in cotangents else cotangents[slot] + cotangent
        results = arrays[count + len(region.outputs) :]
        for target, slot in zip(results, region.differentiated, strict=True):
            target[...] = cotangents.get(slot, 0)

    return backward

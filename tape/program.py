"""A recorded tape as a program: straight-line Python over ndarrays, generated once per signature.

``Program`` takes the steps a ``Tracer`` recorded and writes two functions:

- ``forward(stash, *inputs)`` calls each step's ``op.forward`` on arrays, in order: no ``Tensor``, no
  record, no dispatch. When ``stash`` is given (the call is recorded) it keeps there the values the
  backward reads, and copies of the constant arrays the backward reads (a caller's array read by a closure
  may change before backward runs, as a plain array saved by an eager record may not);
- ``backward(g, out, stash, *inputs)`` runs the VJPs of the steps that made records, latest first, each
  cotangent fitted to its input's shape and dtype as the eager sweep fits it, and sums the cotangents of
  each value in the order the eager sweep would.

The VJPs are handed what the eager records were handed: values a VJP reads, and shape-only stand-ins for
values it does not. With ``create_graph`` (a Tensor cotangent) the program is replayed through the ops
themselves, recorded, and swept by the engine, so second derivatives are the eager ones. The generated
source is kept (``source``) so it can be read. Fusing elementwise runs is not this module's job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import jit
from .cotangents import fit_cotangent
from .fusion import Region, find_regions
from .saved import ShapeOnly
from .tracing import Slot, Step, slots_in

ndarray = np.ndarray


def _fit(
    cotangent: Any, args: tuple[Any, ...], argnum: int, out: Any, name: str, shape: Any, dtype: Any
) -> Any:
    """A VJP's cotangent as the eager sweep fits it: unbroadcast to ``shape``, cast to ``dtype``."""
    if cotangent is None:
        return None
    if type(cotangent) is ndarray and cotangent.shape == shape and cotangent.dtype is dtype:
        return cotangent
    return fit_cotangent(cotangent, args, argnum, out, name, False)


class _Writer:
    """Names for a generated function's globals (ops, VJPs, constants) and its lines."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"np": np, "FIT": _fit, "asarray": np.asarray}
        self.lines: list[str] = []
        self._names: dict[int, str] = {}

    def name(self, value: Any, prefix: str) -> str:
        """A global name bound to ``value`` (the same name for the same object)."""
        known = self._names.get(id(value))
        if known is not None:
            return known
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        self._names[id(value)] = name
        return name

    def line(self, text: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + text)

    def compile(self, header: str, filename: str) -> tuple[Callable[..., Any], str]:
        source = "\n".join([header, *self.lines]) + "\n"
        exec(compile(source, filename, "exec"), self.namespace)
        function_name = header.split()[1].split("(")[0]
        return self.namespace[function_name], source


class Program:
    """The straight-line forward and backward of one recorded signature.

    Parameters
    ----------
    name : the compiled function's name, for error messages and the generated files' names.
    steps : the recorded op calls, in order.
    values : each slot's array while recording (shapes and dtypes).
    inputs : the slots of the program's inputs, in the order ``forward`` takes them.
    outputs : the slots ``forward`` returns (one array, or a tuple when there are several).
    """

    def __init__(
        self,
        name: str,
        steps: list[Step],
        values: list[Any],
        inputs: list[int],
        outputs: list[int],
        plain_inputs: frozenset[int] = frozenset(),
    ) -> None:
        self.name = name
        # Arrays whose changes no version counter sees: plain array arguments, and the constants the
        # steps read (arrays made inside the function, or read from its enclosing scope).
        self._unguarded_arrays = [values[slot] for slot in plain_inputs] + [
            constant for step in steps for constant in _arrays_in((step.args, tuple(step.kwargs.values())))
        ]
        self.inputs = inputs
        self.outputs = outputs
        self.values = values
        self.steps = _live_steps(steps, outputs)
        self.several = len(outputs) != 1
        self.backward, self.backward_source, read_slots, read_constants = self._write_backward([])
        self.forward, self.forward_source = self._write_forward(read_slots, read_constants, [], fast=True)
        self.eager_forward, _ = self._write_forward([], [], [], fast=False)
        # With JIT on, runs of elementwise steps become fused kernels (``tape.fusion``), in a second pair of
        # functions; with it off (in this thread, when called) the pair above runs: the kernels' twins.
        self.regions = find_regions(self.steps, values, outputs) if jit.enabled() else []
        self.fused_forward: Callable[..., Any] | None = None
        self.fused_backward: Callable[..., Any] | None = None
        self.fused_forward_source: str | None = None
        self.fused_backward_source: str | None = None
        if self.regions:
            self.fused_backward, self.fused_backward_source, read_slots, read_constants = (
                self._write_backward(self.regions)
            )
            self.fused_forward, self.fused_forward_source = self._write_forward(
                read_slots, read_constants, self.regions, fast=True
            )
        # The trace-time arrays are no longer needed: only their shapes and dtypes, kept by the source.
        for step in self.steps:
            step.record = None
        self.values = [ShapeOnly(value, name) for value in values]
        self._unguarded_arrays = []

    # -- forward ----------------------------------------------------------------------------------------
    def _write_forward(
        self, read_slots: list[int], read_constants: list[Any], regions: list[Region], fast: bool
    ) -> tuple[Callable[..., Any], str]:
        writer = _Writer()
        # A region's precomputed steps (its values numpy computes) run where they were recorded.
        first_of = {id(region.steps[len(region.precomputed)]): region for region in regions}
        fused = {id(step) for region in regions for step in region.steps[len(region.precomputed) :]}
        for step in self.steps:
            region = first_of.get(id(step))
            if region is not None:
                targets = "".join(f"v{slot}, " for slot in region.outputs)
                inputs = ", ".join(f"v{slot}" for slot in region.inputs)
                writer.line(f"{targets}= {writer.name(region.forward, 'R')}({inputs})")
                continue
            if id(step) not in fused:
                self._write_step(writer, step, fast)
        if read_slots or read_constants:
            # A value the backward reads that shares memory with an array no version counter guards (a
            # plain array argument, a constant: x.T of either) is kept as a copy, as an eager record would.
            kept = [f"v{slot}.copy()" if self._unguarded(slot) else f"v{slot}" for slot in read_slots]
            kept += [f"{writer.name(constant, 'K')}.copy()" for constant in read_constants]
            writer.line("if stash is not None:")
            writer.line(f"stash.saved = ({', '.join(kept)},)", indent=2)
        returned = ", ".join(f"v{slot}" for slot in self.outputs)
        writer.line(f"return ({returned},)" if self.several else f"return {returned}")
        header = f"def forward(stash, {', '.join(f'v{slot}' for slot in self.inputs)}):"
        return writer.compile(header, f"<tape.compile {self.name} forward>")

    def _write_step(self, writer: _Writer, step: Step, fast: bool) -> None:
        """``outs = op.forward(*args, **kwargs)`` (``op(...)``, recorded, unless ``fast``)."""
        call = writer.name(step.op.forward if fast else step.op, "F")
        arguments = ", ".join(self._expression(writer, arg) for arg in step.args)
        if step.kwargs:
            keywords = ", ".join(f"{key}={self._expression(writer, v)}" for key, v in step.kwargs.items())
            arguments = f"{arguments}, {keywords}" if arguments else keywords
        targets = ", ".join(f"v{slot}" for slot in step.outs)
        if step.several:
            targets += "," if len(step.outs) == 1 else ""
        writer.line(f"{targets} = {call}({arguments})")
        for slot in step.outs:
            if fast and self.values[slot].shape == ():  # numpy gives scalars there; ops give 0-d arrays
                writer.line(f"v{slot} = asarray(v{slot})")

    def _unguarded(self, slot: int) -> bool:
        return any(np.may_share_memory(self.values[slot], array) for array in self._unguarded_arrays)

    def _expression(self, writer: _Writer, value: Any) -> str:
        if type(value) is Slot:
            return f"v{value.index}"
        if type(value) is tuple:
            items = [self._expression(writer, item) for item in value]
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        if type(value) is list:
            return f"[{', '.join(self._expression(writer, item) for item in value)}]"
        if type(value) is dict:
            return (
                "{" + ", ".join(f"{key!r}: {self._expression(writer, v)}" for key, v in value.items()) + "}"
            )
        if value is None or type(value) in (bool, int) or (type(value) is float and np.isfinite(value)):
            return repr(value)
        return writer.name(value, "K")

    # -- backward ---------------------------------------------------------------------------------------
    def _write_backward(self, regions: list[Region]) -> tuple[Callable[..., Any], str, list[int], list[Any]]:
        writer = _Writer()
        last_of = {id(region.steps[-1]): region for region in regions}
        fused = {id(step) for region in regions for step in region.steps}
        inputs = set(self.inputs)
        read_slots: list[int] = []  # intermediates the backward reads: kept by the forward
        read_constants: list[Any] = []  # constant arrays the backward reads: copied by the forward
        stash_names: list[str] = []

        def saved_expression(value: Any, template: Any) -> str:
            """What a VJP is handed for one saved value: the eager record's ``value``, from ``template``."""
            if isinstance(value, ShapeOnly):
                return writer.name(value, "S")
            if type(template) is Slot:
                if template.index not in inputs and template.index not in read_slots:
                    read_slots.append(template.index)
                return f"v{template.index}"
            if type(template) is tuple:
                parts = [saved_expression(v, t) for v, t in zip(value, template, strict=True)]
                return f"({', '.join(parts)}{',' if len(parts) == 1 else ''})"
            if isinstance(template, ndarray):
                if not any(constant is template for constant in read_constants):
                    read_constants.append(template)
                return f"c{[id(c) for c in read_constants].index(id(template))}"
            return self._expression(writer, template)

        if self.several:
            for k, slot in enumerate(self.outputs):
                writer.line(f"g{slot} = g[{k}]")
        else:
            writer.line(f"g{self.outputs[0]} = g")
        cotangent_of: set[int] = set(self.outputs)
        referenced: set[int] = set()  # the slots whose cotangent the code names
        for number, step in reversed(list(enumerate(self.steps))):
            region = last_of.get(id(step))
            if region is not None:
                if region.backward_kernel is None or not cotangent_of & set(region.received):
                    continue
                for slot in region.inputs:
                    if slot not in inputs and slot not in read_slots:
                        read_slots.append(slot)
                referenced.update(region.received)
                condition = " or ".join(f"g{slot} is not None" for slot in region.received)
                given = ", ".join(
                    [*(f"v{slot}" for slot in region.inputs), *(f"g{s}" for s in region.received)]
                )
                writer.line(f"if {condition}:")
                writer.line(f"q = {writer.name(region.backward, 'R')}({given})", 2)
                for k, slot in enumerate(region.differentiated):
                    if slot in cotangent_of:
                        writer.line(f"g{slot} = q[{k}] if g{slot} is None else g{slot} + q[{k}]", 2)
                    else:
                        writer.line(f"g{slot} = q[{k}]", 2)
                        cotangent_of.add(slot)
                continue
            record = step.record
            if id(step) in fused or record is None or not cotangent_of & set(step.outs):
                continue
            referenced.update(step.outs)
            op = record.op
            outs = record.out if type(record.out) is tuple else (record.out,)
            out_parts = [
                writer.name(value, "S") if isinstance(value, ShapeOnly) else f"v{slot}"
                for value, slot in zip(outs, step.outs, strict=True)
            ]
            for value, slot in zip(outs, step.outs, strict=True):
                if not isinstance(value, ShapeOnly) and slot not in inputs and slot not in read_slots:
                    read_slots.append(slot)
            out_expression = f"({', '.join(out_parts)},)" if step.several else out_parts[0]
            arguments = [saved_expression(v, t) for v, t in zip(record.args, step.args, strict=True)]
            args_name, out_name = f"a{number}", f"o{number}"
            keywords = "".join(
                f", {key}={saved_expression(record.kwargs[key], template)}"
                for key, template in step.kwargs.items()
            )
            if step.several:

                def zeros_dtype(value: Any) -> str:
                    return writer.name(value.dtype, "D")

                cotangents = [
                    f"g{slot} if g{slot} is not None else np.zeros({value.shape!r}, {zeros_dtype(value)})"
                    for slot, value in zip(step.outs, outs, strict=True)
                ]
                condition = " or ".join(f"g{slot} is not None" for slot in step.outs)
                incoming = f"({', '.join(cotangents)},)"
            else:
                condition, incoming = f"g{step.outs[0]} is not None", f"g{step.outs[0]}"
            writer.line(f"if {condition}:")
            writer.line(f"{args_name} = ({', '.join(arguments)}{',' if len(arguments) == 1 else ''})", 2)
            writer.line(f"{out_name} = {out_expression}", 2)
            writer.line(f"h = {incoming}", 2)
            if op.backward is not None:
                joint = writer.name(op.backward, "B")
                writer.line(f"j = {joint}(h, {out_name}, *{args_name}{keywords})", 2)
            name = writer.name(op.name, "N")
            for argnum, node, _, _, _ in record.inputs:
                if node is None:
                    continue
                target = step.args[argnum]
                if type(target) is not Slot:
                    raise AssertionError(f"{self.name}: argument {argnum} of {op.name} has no slot")
                if op.backward is not None:
                    produced = f"j[{argnum}]"
                else:
                    vjp = writer.name(op.vjps[argnum], "V")
                    produced = f"{vjp}(h, {out_name}, *{args_name}{keywords})"
                value = record.args[argnum]
                shape, dtype = value.shape, writer.name(value.dtype, "D")
                writer.line(
                    f"c = FIT({produced}, {args_name}, {argnum}, {out_name}, {name}, {shape!r}, {dtype})", 2
                )
                slot = target.index
                if slot in cotangent_of:
                    writer.line(f"if c is not None: g{slot} = c if g{slot} is None else g{slot} + c", 2)
                else:
                    writer.line(f"g{slot} = c", 2)
                    cotangent_of.add(slot)
        # Every cotangent starts as None, so that a first contribution skipped at run time (no cotangent
        # reached its step) leaves it None rather than unbound.
        starts = sorted((cotangent_of | referenced) - set(self.outputs))
        if starts:
            writer.lines.insert(0, f"    {' = '.join(f'g{slot}' for slot in starts)} = None")
        returned = ", ".join(f"g{slot}" if slot in cotangent_of else "None" for slot in self.inputs)
        writer.line(f"return [None, {returned}]")
        stash_names = [f"v{slot}" for slot in read_slots] + [f"c{k}" for k in range(len(read_constants))]
        if stash_names:
            writer.lines.insert(0, f"    {', '.join(stash_names)}, = stash.saved")
        header = f"def backward(g, out, stash, {', '.join(f'v{slot}' for slot in self.inputs)}):"
        function, source = writer.compile(header, f"<tape.compile {self.name} backward>")
        return function, source, read_slots, read_constants

    # -- reading ----------------------------------------------------------------------------------------
    @property
    def kernel_sources(self) -> list[str]:
        """The source of each fused kernel pair (forward, then backward), as numba compiles it."""
        return [region.source for region in self.regions]

    def __str__(self) -> str:
        """One line per step: outputs, op, arguments (``v3`` for traced values), shapes and dtypes."""
        lines = [f"program {self.name}: inputs {', '.join(f'v{slot}' for slot in self.inputs)}"]
        kernel_of = {id(step): k for k, region in enumerate(self.regions) for step in region.steps}
        precomputed = {id(step) for region in self.regions for step in region.precomputed}
        for step in self.steps:
            described = ", ".join(
                f"v{slot}: {self.values[slot].dtype.name}{list(self.values[slot].shape)}"
                for slot in step.outs
            )
            arguments = ", ".join(_describe(arg) for arg in step.args)
            fused = ""
            if id(step) in kernel_of:
                part = "its VJP in " if id(step) in precomputed else ""
                fused = f"  ({part}fused kernel {kernel_of[id(step)]})"
            lines.append(f"  {described} = {step.op.name}({arguments}){fused}")
        lines.append(f"  return {', '.join(f'v{slot}' for slot in self.outputs)}")
        return "\n".join(lines)


def _describe(value: Any) -> str:
    if type(value) is Slot:
        return repr(value)
    if type(value) is tuple:
        return f"({', '.join(_describe(item) for item in value)})"
    if isinstance(value, ndarray):
        return f"array{list(value.shape)}"
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _arrays_in(value: Any) -> list[np.ndarray]:
    if isinstance(value, ndarray):
        return [value]
    if type(value) in (tuple, list):
        return [array for item in value for array in _arrays_in(item)]
    if type(value) is dict:
        return [array for item in value.values() for array in _arrays_in(item)]
    return []


def _live_steps(steps: list[Step], outputs: list[int]) -> list[Step]:
    """The steps whose outputs the program's outputs depend on (through their forward), in order."""
    needed = set(outputs)
    live = []
    for step in reversed(steps):
        if needed & set(step.outs):
            live.append(step)
            slots_in(step.args, needed)
            slots_in(tuple(step.kwargs.values()), needed)
    return live[::-1]

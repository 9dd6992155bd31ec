"""Imports point one way: engine -> ops -> transforms -> tape.nn -> the facade ``tape/__init__.py``.

The import graph is read from the sources with ``ast`` (nothing is imported), with ``ops/`` taken as
``tape.ops``. Inside the engine, modules are ranked from the bottom (``grad_mode``) to the top
(``creation``), and each imports only modules ranked below it; no other layer holds an import cycle. No
module of tape imports another of tape inside a function: that is how cycles hide.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The engine, bottom first: each module may import only those before it.
ENGINE = [
    "tape.memory",
    "tape.dtypes",
    "tape.grad_mode",
    "tape.anomaly",
    "tape.record",
    "tape.reads",
    "tape.saved",
    "tape.jit",
    "tape.pytree",
    "tape.diagonal",
    "tape.hooks",
    "tape.registry",
    "tape.dispatch",
    "tape.tensor",
    "tape.views",
    "tape.op",
    "tape.tracing",
    "tape.inplace",
    "tape.cotangents",
    "tape.batched",
    "tape.backward",
    "tape.creation",
    "tape.profile",
]
TRANSFORMS = {
    "tape.trace",
    "tape.tangents",
    "tape.functional",
    "tape.jacobian",
    "tape.axis_mixing",  # with tape.jacobian_structure: what tape.jacobian_operator reads off the tape
    "tape.jacobian_structure",
    "tape.jacobian_operator",
    "tape.jacfwd",
    "tape.checkpoint",
    "tape.gradcheck",
    "tape.graph",
    "tape.fusion",
    "tape.program",
    "tape.compiled",
}
LAYERS = ["engine", "ops", "transforms", "nn", "facade"]


def layer_of(module: str) -> str:
    if module in ENGINE:
        return "engine"
    if module == "tape.ops" or module.startswith("tape.ops."):
        return "ops"
    if module in TRANSFORMS or module == "tape.scipy" or module.startswith("tape.scipy."):
        return "transforms"  # tape.scipy.special: scipy's functions on tensors, built on the ops
    if module == "tape.nn" or module.startswith("tape.nn.") or module == "tape.data":
        return "nn"  # tape.data: batches for training loops, plain numpy
    if module == "tape.distributed" or module.startswith("tape.distributed."):
        return "nn"  # data-parallel training: wraps tape.nn modules, feeds tape.data; never imported by tape
    if module == "tape":
        return "facade"
    raise AssertionError(f"{module} belongs to no layer: add it to tests/test_layers.py")


def source_modules() -> dict[str, Path]:
    modules = {}
    for top, package in (("tape", "tape"), ("ops", "tape.ops")):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT / top).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


MODULES = source_modules()


def imports_of(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """``(imported tape module, line, inside a function)`` for each import of a tape module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                    for alias in child.names
                ]
            for target in targets:
                while target and target not in MODULES:  # ``import tape.ops.conv`` names tape.ops.conv
                    target = target.rpartition(".")[0]
                if target and target != module:
                    found.append((target, child.lineno, in_function))
            visit(child, nested)

    visit(ast.parse(path.read_text()), False)
    return found


EDGES = {module: imports_of(module, path) for module, path in MODULES.items()}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module: str):
    mine = LAYERS.index(layer_of(module))
    for target, line, _ in EDGES[module]:
        theirs = LAYERS.index(layer_of(target))
        assert theirs <= mine, f"{module} (line {line}) imports {target}, which is in a higher layer"
        if layer_of(module) == layer_of(target) == "engine":
            assert ENGINE.index(target) < ENGINE.index(module), (
                f"{module} (line {line}) imports {target}, which is above it in the engine"
            )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_tape_module_is_imported_inside_a_function(module: str):
    inside = [(target, line) for target, line, in_function in EDGES[module] if in_function]
    assert not inside, f"{module} imports {inside} inside a function"


def test_no_layer_holds_an_import_cycle():
    state: dict[str, str] = {}

    def walk(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target, _, _ in EDGES[module]:
            if layer_of(target) != layer_of(module) or target.startswith(module + "."):
                continue  # a package importing its own submodules is not a cycle
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*path, module, target]))
            if target not in state:
                walk(target, [*path, module])
        state[module] = "done"

    for module in sorted(MODULES):
        if module not in state:
            walk(module, [])


def test_the_engine_never_names_an_op_or_tape_nn():
    for module in ENGINE:
        for target, line, _ in EDGES[module]:
            assert layer_of(target) == "engine", f"{module} (line {line}) imports {target}"

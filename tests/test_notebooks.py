"""The notebooks run top to bottom without error, in a kernel on this interpreter with this checkout's tape.

Each notebook is kept as a jupytext percent-format source, ``notebooks/NN_name.py``, paired with
``NN_name.ipynb``, which is stored executed with its outputs. The source is executed in a fresh ``python3``
kernel (cwd ``notebooks/``, the repository first on ``PYTHONPATH``); the stored notebook must be paired
with it, hold the same cells, and have been run once top to bottom, so that the two never drift apart.
The notebooks themselves import nothing of the checkout but ``tape``: they run from an installed package.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import Any

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

REPOSITORY = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPOSITORY / "notebooks"
SOURCES = sorted(NOTEBOOK_DIR.glob("*.py"))
CELL_TIMEOUT = 120  # seconds
PAIRING = "ipynb,py:percent"
REFRESH = 'OPENBLAS_NUM_THREADS=1 PYTHONPATH="$PWD" jupytext --sync --execute notebooks/0*.py'
# Importable from the checkout (its root is on the kernel's PYTHONPATH) but not installed with tape.
CHECKOUT_ONLY = {"benchmarks", "examples", "tests"}


def kernel_environment() -> dict[str, str]:
    """This process's environment with the checkout first on PYTHONPATH, so the kernel imports its tape."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPOSITORY), *filter(None, [environment.get("PYTHONPATH")])]
    )
    # The notebooks' matrices are small: one BLAS thread is faster, and steadier on a shared machine.
    environment.setdefault("OPENBLAS_NUM_THREADS", "1")
    return environment


def execute(notebook: Any) -> Any:
    """Run every cell in a fresh python3 kernel; nbclient raises CellExecutionError on the first error."""
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        record_timing=False,
    )
    client.execute(env=kernel_environment())
    return notebook


def stream_text(cell: Any) -> str:
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


def errors(notebook: Any) -> list[Any]:
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]


def cells(notebook: Any) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_kernel_runs_this_interpreter_and_this_checkout() -> None:
    probe = nbformat.v4.new_notebook()
    source = "import sys, tape\nprint(sys.executable)\nprint(tape.__file__)"
    probe.cells.append(nbformat.v4.new_code_cell(source))
    executable, tape_file = stream_text(execute(probe).cells[0]).splitlines()
    assert os.path.realpath(executable) == os.path.realpath(sys.executable), (
        f"the python3 kernel runs {executable}, not this interpreter ({sys.executable}); install ipykernel "
        "in this environment (python -m ipykernel install --user)"
    )
    assert Path(tape_file).resolve().parent == REPOSITORY / "tape"


def test_every_stored_notebook_has_its_source() -> None:
    assert SOURCES, "notebooks/ holds no notebook source"
    orphans = sorted({path.stem for path in NOTEBOOK_DIR.glob("*.ipynb")} - {path.stem for path in SOURCES})
    assert not orphans, f"no .py source for {orphans}; pair them with jupytext --set-formats {PAIRING}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.stem)
def test_notebook_imports_nothing_of_the_checkout_but_tape(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    modules = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    assert not modules & CHECKOUT_ONLY, f"{source.name} imports {sorted(modules & CHECKOUT_ONLY)}"
    assert "sys.path" not in text, f"{source.name} changes sys.path"


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(source: Path) -> None:
    notebook = execute(jupytext.read(source))
    found = errors(notebook)
    assert not found, f"{source.name}: {found[0].ename}: {found[0].evalue}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.stem)
def test_notebook_is_stored_paired_and_executed(source: Path) -> None:
    text = jupytext.read(source)
    path = source.with_suffix(".ipynb")
    assert path.exists(), f"{path.name} is missing; run {REFRESH}"
    stored = nbformat.read(path, as_version=4)
    nbformat.validate(stored)
    for name, notebook in [(source.name, text), (path.name, stored)]:
        formats = notebook.metadata.get("jupytext", {}).get("formats")
        assert formats == PAIRING, f"{name} is paired as {formats!r}, not {PAIRING!r}"
    assert cells(stored) == cells(text), f"{path.name} holds other cells than {source.name}; run {REFRESH}"
    code = [cell for cell in stored.cells if cell.cell_type == "code" and cell.source.strip()]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name} is not stored as run once top to bottom (execution counts {counts}); run {REFRESH}"
    )
    assert not errors(stored), f"{path.name} is stored with an error"

"""The notebooks run top to bottom without error, in a kernel on this interpreter with this checkout's tape.

Every ``notebooks/*.ipynb`` is executed in a fresh ``python3`` kernel (cwd ``notebooks/``, the repository
first on ``PYTHONPATH``), and must also be stored executed, with its outputs. The notebooks that
``notebooks/build.py`` writes must hold the cells it defines, so that the two never drift apart.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

REPOSITORY = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPOSITORY / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path: Path) -> None:
    notebook = execute(nbformat.read(path, as_version=4))
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_executed(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    cells = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name} is not stored as run once top to bottom (execution counts {counts}); "
        "run python notebooks/build.py, or execute it in order and save"
    )
    assert not [output for cell in cells for output in cell.outputs if output.output_type == "error"]


def test_built_notebooks_hold_the_cells_build_py_defines() -> None:
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOK_DIR / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.NOTEBOOKS, "build.py defines no notebook"
    for name, cells in build.NOTEBOOKS.items():
        path = NOTEBOOK_DIR / f"{name}.ipynb"
        assert path.exists(), f"{path.name} is defined in build.py but missing; run python notebooks/build.py"
        stored = [(cell.cell_type, cell.source) for cell in nbformat.read(path, as_version=4).cells]
        assert stored == cells, f"{path.name} differs from build.py; run python notebooks/build.py {name[:2]}"

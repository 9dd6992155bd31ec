"""The installed distribution contains every package of the source tree (``pip install .`` must not leave
out a subpackage such as ``tape.nn``), and ``import tape`` stays light."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_of_the_source_tree_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    for top in ("tape", "ops"):
        for init in (ROOT / top).rglob("__init__.py"):
            package = ".".join(init.parent.relative_to(ROOT).parts)
            assert any(fnmatch.fnmatch(package, pattern) for pattern in patterns), package


def test_import_tape_compiles_nothing_and_does_not_import_numba():
    code = "import sys, tape; print('numba' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"


def test_any_module_can_be_imported_first():
    for module in ("ops.conv", "ops", "ops.nn", "tape.nn", "tape.nn.conv", "ops.scatter", "tape.jit"):
        code = f"import {module}, numpy as np, tape; assert np.sin in tape.registry.UFUNCS"
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

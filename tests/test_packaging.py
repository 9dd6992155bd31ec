"""The wheel holds one package, ``tape`` (the op modules of ``ops/`` installed as ``tape.ops``), and
``import tape`` stays light."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of the sources alone: a build/ folder left in the checkout could add stale files.
    source = tmp_path_factory.mktemp("source")
    for name in ("tape", "ops"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)],
        check=True,
        cwd=out,
    )
    (built,) = out.glob("tape-*.whl")
    return built


def test_the_wheel_holds_tape_alone_with_every_source_module(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"tape"}
    expected = {
        f"tape/{path.relative_to(ROOT / 'tape').as_posix()}" for path in (ROOT / "tape").rglob("*.py")
    }
    expected |= {
        f"tape/ops/{path.relative_to(ROOT / 'ops').as_posix()}" for path in (ROOT / "ops").rglob("*.py")
    }
    assert expected <= set(names), sorted(expected - set(names))
    assert "tape/py.typed" in names
    assert "tape/corpus/lecture.txt" in names  # the text examples/char_lm.py trains on


def test_installed_wheel_imports_tape_ops_and_no_top_level_ops(wheel: Path, tmp_path: Path):
    # A venv that sees this interpreter's numpy and numba but not the checkout.
    venv.create(tmp_path / "env", system_site_packages=True, with_pip=False)
    python = tmp_path / "env" / "bin" / "python"
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib.util, numpy as np, tape;"
        "assert importlib.util.find_spec('ops') is None, 'a top-level ops package is importable';"
        "assert tape.ops.__file__.startswith(sys.argv[1]), tape.ops.__file__;"
        "x = tape.tensor([1.0, 2.0], requires_grad=True); np.sum(np.sin(x)).backward();"
        "assert np.allclose(x.grad, np.cos([1.0, 2.0]))"
    )
    subprocess.run([str(python), "-c", code, str(target)], check=True, cwd=tmp_path)


def test_import_tape_compiles_nothing_and_does_not_import_numba():
    code = "import sys, tape; print('numba' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "module",
    ["tape.ops.conv", "tape.ops", "tape.ops.nn", "tape.nn", "tape.nn.conv", "tape.ops.scatter", "tape.jit"],
)
def test_any_module_can_be_imported_first(module: str):
    code = f"import {module}, numpy as np, tape; assert np.sin in tape.registry.UFUNCS"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

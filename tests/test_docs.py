"""The examples in the documentation run and print what they say.

Every ``>>>`` example in the docstrings of ``tape`` and ``tape.ops`` runs here as a doctest (imported by
its package name, so ``ops/`` is ``tape.ops`` as installed), and every ``python`` code block of README.md
runs, top to bottom, in one namespace in a temporary folder.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import tape

ROOT = Path(__file__).resolve().parent.parent
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[str]:
    names = ["tape"]
    packages = [tape, tape.ops, tape.nn]
    # tape.distributed needs the optional extra ``mpi``; without mpi4py its examples cannot run.
    with_mpi = importlib.util.find_spec("mpi4py") is not None
    if with_mpi:
        packages.append(importlib.import_module("tape.distributed"))
    for package in packages:
        names += [info.name for info in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]
    if not with_mpi:
        names.remove("tape.distributed")
    return sorted(set(names) | {"tape.ops", "tape.nn"})


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder()
    tests = []
    for name in _modules():
        module = importlib.import_module(name)
        tests += [test for test in finder.find(module, name) if test.examples]
    return sorted(tests, key=lambda test: test.name)


DOCTESTS = _doctests()


def test_the_docstrings_hold_examples_everywhere():
    documented = {test.name.split(".")[1] for test in DOCTESTS if test.name.count(".") >= 1}
    assert {"tensor", "op", "functional", "jacobian", "ops", "nn"} <= documented
    assert sum(len(test.examples) for test in DOCTESTS) > 400


@pytest.mark.parametrize("test", DOCTESTS, ids=lambda test: test.name)
def test_docstring_example(test: doctest.DocTest, capsys: pytest.CaptureFixture[str]):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    with np.printoptions(legacy=False):
        result = runner.run(test)
    report = capsys.readouterr().out
    assert result.failed == 0, report


def _readme_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.S | re.M)


def test_readme_code_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocks = _readme_blocks()
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # the blocks may save files
    namespace: dict[str, object] = {"__name__": "readme"}
    for number, block in enumerate(blocks, 1):
        if "tape import distributed" in block and importlib.util.find_spec("mpi4py") is None:
            continue  # the ``mpi`` extra is not installed
        try:
            exec(compile(block, f"README.md, python block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"README.md's python block {number} fails:\n{block}") from error

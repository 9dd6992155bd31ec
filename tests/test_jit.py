"""tape/jit.py: kernels run compiled code with JIT on and their numpy twins with JIT off (per thread, or for
the process through TAPE_JIT=0), ``import tape`` imports no numba, and a kernel that cannot be compiled,
or a missing numba, falls back to the twin with a single warning instead of failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import tape.ops.scatter
from tape import jit
from tape.jit import prange

REPOSITORY = Path(__file__).resolve().parents[1]


class CountingTwin:
    """A twin that counts its calls, so a test can tell which path ran."""

    def __init__(self, function):
        self.function = function
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return self.function(*args)


# Throwaway kernels (not registered), defined at module level so that numba can cache them.
running_sum_twin = CountingTwin(np.cumsum)


@jit.kernel(running_sum_twin, register=False)
def running_sum(values):
    result = np.empty_like(values)
    total = 0.0
    for k in range(values.shape[0]):
        total += values[k]
        result[k] = total
    return result


def _quotients_numpy(numerators, denominators):
    return numerators / denominators


@jit.kernel(_quotients_numpy, register=False)
def quotients(numerators, denominators):
    result = np.empty_like(numerators)
    for k in range(numerators.shape[0]):
        result[k] = numerators[k] / denominators[k]
    return result


def test_a_kernel_divides_by_zero_as_numpy_does():
    numerators, denominators = np.array([1.0, -1.0, 0.0, 2.0]), np.array([0.0, 0.0, 0.0, 4.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = _quotients_numpy(numerators, denominators)
    with jit.use_jit(True):  # (whatever TAPE_JIT says: this is about the compiled code)
        np.testing.assert_array_equal(quotients(numerators, denominators), expected)  # inf, -inf, nan, 0.5
    assert quotients.signatures()  # the compiled code ran, not the twin


def _sum_numpy(values):
    return float(np.sum(values))


@jit.kernel(_sum_numpy, register=False)
def uncompilable_sum(values):
    return object()  # no numba type: typing fails


def _checked_sum_numpy(values):
    if np.any(values < 0):
        raise ValueError("negative value")
    return float(np.sum(values))


@jit.kernel(_checked_sum_numpy, register=False)
def checked_sum(values):
    total = 0.0
    for k in range(values.shape[0]):
        if values[k] < 0:
            raise ValueError("negative value")
        total += values[k]
    return total


def _row_sums_numpy(matrix, sums):
    np.sum(matrix, axis=1, out=sums)


@jit.kernel(_row_sums_numpy, parallel=True, register=False)
def parallel_row_sums(matrix, sums):
    for row in prange(matrix.shape[0]):  # rows are independent: each iteration writes its own sum
        total = 0.0
        for column in range(matrix.shape[1]):
            total += matrix[row, column]
        sums[row] = total


@pytest.fixture(autouse=True)
def no_unexpected_fallback():
    """Every kernel in this file except the uncompilable one must really compile."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", jit.JitFallbackWarning)
        yield


def run_python(code: str, **environment: str) -> dict:
    """Run ``code`` in a fresh interpreter at the repository root; it prints one JSON object."""
    env = {key: value for key, value in os.environ.items() if key != jit.ENVIRONMENT_VARIABLE}
    env.update(environment)
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


# -- the switch --------------------------------------------------------------------------------------------
def test_jit_on_runs_compiled_code_and_jit_off_runs_the_twin():
    values = np.random.default_rng(0).standard_normal(7)
    calls = running_sum_twin.calls
    with jit.use_jit(True):
        compiled_result = running_sum(values)
    assert running_sum_twin.calls == calls
    assert len(running_sum.signatures()) == 1
    with jit.disabled():
        twin_result = running_sum(values)
    assert running_sum_twin.calls == calls + 1
    np.testing.assert_allclose(compiled_result, np.cumsum(values), rtol=1e-12)
    np.testing.assert_allclose(twin_result, np.cumsum(values), rtol=1e-12)


def test_use_jit_nests_and_restores():
    outer = jit.enabled()
    with jit.use_jit(False):
        assert not jit.enabled()
        with jit.use_jit(True):
            assert jit.enabled()
        assert not jit.enabled()
    assert jit.enabled() == outer


def test_the_switch_is_per_thread():
    seen = {}

    def report(name):
        seen[name] = jit.enabled()

    with jit.use_jit(not jit.DEFAULT_ENABLED):
        other = threading.Thread(target=report, args=("other thread",))
        other.start()
        other.join()
        report("this thread")
    assert seen == {"other thread": jit.DEFAULT_ENABLED, "this thread": not jit.DEFAULT_ENABLED}


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("0", False), ("false", False), (" OFF ", False), ("no", False), ("1", True), ("yes", True), ("", True)],
)
def test_environment_variable_values(setting, expected, monkeypatch):
    monkeypatch.setenv(jit.ENVIRONMENT_VARIABLE, setting)
    assert jit._read_environment() is expected


def test_import_tape_does_not_import_numba():
    result = run_python(
        "import sys, json, tape, tape.ops.scatter; print(json.dumps({'numba': 'numba' in sys.modules}))"
    )
    assert result == {"numba": False}


def test_tape_jit_0_runs_every_twin_and_use_jit_true_overrides_it():
    code = """
import sys, json
import numpy as np
import tape
from tape import jit
from tape.ops.scatter import scatter_add_into, scatter_rows
total = np.zeros((4, 2))
scatter_add_into(total, np.array([1, 1, -1]), np.ones((3, 2)))
off = {"enabled": jit.enabled(), "numba": "numba" in sys.modules,
       "signatures": len(scatter_rows.signatures()), "total": total.tolist()}
with jit.use_jit(True):
    scatter_add_into(total, np.array([0]), np.ones((1, 2)))
on = {"numba": "numba" in sys.modules, "signatures": len(scatter_rows.signatures())}
print(json.dumps({"off": off, "on": on}))
"""
    result = run_python(code, TAPE_JIT="0")
    expected = np.zeros((4, 2))
    np.add.at(expected, [1, 1, -1], 1.0)
    assert result["off"] == {"enabled": False, "numba": False, "signatures": 0, "total": expected.tolist()}
    assert result["on"] == {"numba": True, "signatures": 1}


# -- falling back ------------------------------------------------------------------------------------------
def test_a_kernel_that_fails_to_compile_runs_its_twin_after_one_warning():
    values = np.arange(4.0)
    with jit.use_jit(True):
        with pytest.warns(jit.JitFallbackWarning, match=r"uncompilable_sum failed to compile \(TypingError"):
            assert uncompilable_sum(values) == 6.0
        assert uncompilable_sum.failed
        assert uncompilable_sum.compiled() is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert uncompilable_sum(values + 1) == 10.0  # no second warning


def test_an_exception_raised_by_compiled_code_propagates():
    with jit.use_jit(True):
        assert checked_sum(np.arange(3.0)) == 3.0
        with pytest.raises(ValueError, match="negative value"):
            checked_sum(np.array([1.0, -1.0]))
    assert not checked_sum.failed
    with jit.disabled(), pytest.raises(ValueError, match="negative value"):
        checked_sum(np.array([1.0, -1.0]))


def test_missing_numba_falls_back_with_one_warning():
    code = """
import sys, json, warnings
sys.modules["numba"] = None  # makes `import numba` raise ImportError
import numpy as np
from tape import jit
from tape.ops.scatter import scatter_add_into, scatter_rows
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with jit.use_jit(True):
        first = scatter_add_into(np.zeros(3), np.array([0, 0, 2]), np.ones(3)).tolist()
        second = scatter_add_into(np.zeros(3), np.array([1]), np.ones(1)).tolist()
print(json.dumps({"results": [first, second], "warnings": [str(w.message) for w in caught],
                  "categories": [w.category.__name__ for w in caught], "failed": scatter_rows.failed}))
"""
    result = run_python(code)
    assert result["results"] == [[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    assert result["categories"] == ["JitFallbackWarning"]
    assert "numba could not be imported" in result["warnings"][0]
    assert result["failed"]


@pytest.mark.slow  # two fresh interpreters, each compiling
def test_an_unusable_cache_entry_is_compiled_again_with_a_warning(tmp_path):
    # numba keys its cache on the source file, but the cached code names the module it was imported as:
    # a file first run under another module name leaves an entry that a normal import cannot load.
    (tmp_path / "doubling.py").write_text(
        "import numpy as np\n"
        "from tape import jit\n"
        "@jit.kernel(lambda value: value * 2, register=False)\n"
        "def double(value):\n"
        "    return value * 2\n"
    )
    load_as = """
import importlib.util, json, sys, warnings
import numpy as np
sys.path.insert(0, {folder!r})
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    if {alias!r}:
        spec = importlib.util.spec_from_file_location({alias!r}, {folder!r} + "/doubling.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        import doubling as module
    result = module.double(1.5)
print(json.dumps({{"result": result, "warnings": [str(w.message) for w in caught]}}))
"""
    first = run_python(load_as.format(folder=str(tmp_path), alias="not_importable_name"))
    second = run_python(load_as.format(folder=str(tmp_path), alias=""))
    assert first == {"result": 3.0, "warnings": []}
    assert second["result"] == 3.0
    assert len(second["warnings"]) == 1
    assert "could not be loaded from numba's cache" in second["warnings"][0]


# -- parallel kernels and the registry ---------------------------------------------------------------------
def test_a_parallel_kernel_gets_numbas_prange_and_leaves_the_module_alone():
    matrix = np.random.default_rng(1).standard_normal((9, 5))
    sums = np.zeros(9)
    with jit.use_jit(True):
        parallel_row_sums(matrix, sums)
    np.testing.assert_allclose(sums, matrix.sum(axis=1), rtol=1e-12)
    import numba

    # numba compiled a copy of the function that sees numba's prange; the module still sees range
    assert parallel_row_sums.compiled().py_func.__globals__["prange"] is numba.prange
    assert prange is range
    assert parallel_row_sums.function.__globals__["prange"] is range


def test_registry_lists_the_library_kernels_and_not_throwaway_ones():
    registered = jit.kernels()
    assert registered["tape.ops.scatter.scatter_rows"] is tape.ops.scatter.scatter_rows
    assert all(isinstance(kernel, jit.Kernel) and kernel.name == name for name, kernel in registered.items())
    assert all(callable(kernel.twin) and kernel.twin is not kernel.function for kernel in registered.values())
    assert not {running_sum.name, uncompilable_sum.name, checked_sum.name} & set(registered)
    assert "tests.test_jit.running_sum" in repr(running_sum)

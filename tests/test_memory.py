"""tape.memory: at import, tape asks glibc's malloc to keep freed memory, so that a step's large arrays
reuse the pages the previous step freed instead of faulting in fresh ones; the setting can be undone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tape
import tape.memory

glibc = pytest.mark.skipif(not tape.memory._mallopt(), reason="malloc is not glibc's")


# Minor page faults taken by 30 rounds of a forward and backward that keeps about 3 MiB alive, in a fresh
# process (in this one, earlier tests decide what the heap looks like).
STEPS = 30
MEASURE_PAGE_FAULTS = f"""
import resource, numpy as np, tape
x = tape.tensor(np.random.default_rng(0).standard_normal(1 << 16), requires_grad=True)
def step():
    (np.sin(x) * np.cos(x) + x * x).sum().backward()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({STEPS}):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def run_fresh(code: str, keep_freed_memory: str = "1") -> str:
    environment = {**os.environ, tape.memory.ENVIRONMENT_VARIABLE: keep_freed_memory}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        cwd=Path(tape.__file__).parent.parent,  # the tape this process imported
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@glibc
def test_tape_keeps_freed_memory_from_import():
    assert tape.memory.keeps_freed_memory()


@glibc
def test_steps_reuse_freed_pages():
    # Each step allocates about 3 MiB in 512 KiB arrays: hundreds of pages a step when they are returned to
    # the kernel and taken again, a few when the freed memory is kept.
    returned = int(run_fresh(MEASURE_PAGE_FAULTS, keep_freed_memory="0"))
    kept = int(run_fresh(MEASURE_PAGE_FAULTS))
    assert returned > 100 * STEPS
    assert kept < returned / 10


@glibc
def test_the_setting_can_be_undone_and_redone():
    try:
        assert tape.memory.keep_freed_memory(False)
        assert not tape.memory.keeps_freed_memory()
        assert tape.memory.keep_freed_memory(True)
        assert tape.memory.keeps_freed_memory()
    finally:
        tape.memory.keep_freed_memory(True)


def test_the_environment_variable_leaves_malloc_alone():
    code = "import tape.memory, tape; print(tape.memory.keeps_freed_memory())"
    assert run_fresh(code, keep_freed_memory="0") == "False"

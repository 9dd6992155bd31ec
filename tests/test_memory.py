"""tape.memory: at import, tape asks glibc's malloc to keep freed memory, so that a step's large arrays
reuse the pages the previous step freed instead of faulting in fresh ones; the setting can be undone."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import numpy as np
import pytest

import tape
import tape.memory

glibc = pytest.mark.skipif(not tape.memory._mallopt(), reason="malloc is not glibc's")


def page_faults_of_steps(steps: int = 30) -> int:
    """Minor page faults taken by ``steps`` rounds of a forward and backward that keeps 2 MiB alive."""
    x = tape.tensor(np.random.default_rng(0).standard_normal(1 << 16), requires_grad=True)

    def step() -> None:
        (np.sin(x) * np.cos(x) + x * x).sum().backward()

    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc
def test_tape_keeps_freed_memory_from_import():
    assert tape.memory.keeps_freed_memory()


@glibc
def test_steps_reuse_freed_pages_and_the_setting_can_be_undone():
    # Each step allocates about 3 MiB in 512 KiB arrays: 768 pages a step when they are returned to the
    # kernel and taken again, a few when the freed memory is kept.
    steps = 30
    try:
        assert tape.memory.keep_freed_memory(False)
        assert not tape.memory.keeps_freed_memory()
        returned = page_faults_of_steps(steps)
        assert tape.memory.keep_freed_memory(True)
        kept = page_faults_of_steps(steps)
    finally:
        tape.memory.keep_freed_memory(True)
    assert returned > 100 * steps
    assert kept < returned / 10


def test_the_environment_variable_leaves_malloc_alone():
    code = "import tape.memory, tape; print(tape.memory.keeps_freed_memory())"
    environment = {**os.environ, tape.memory.ENVIRONMENT_VARIABLE: "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"

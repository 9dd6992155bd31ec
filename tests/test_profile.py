"""tape/profile.py: per-op counts, times and bytes, the table, the Chrome trace, and nothing left behind
once the profiler closes."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import tape
from tape.op import Op, _call


def small_step(x, w):
    return np.sum(np.tanh(x @ w) ** 2)


def leaves(seed=0):
    rng = np.random.default_rng(seed)
    x = tape.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w = tape.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    return x, w


def test_counts_times_and_bytes_per_op():
    x, w = leaves()
    with tape.profile() as prof:
        for _ in range(3):
            small_step(x, w).backward()
    assert set(prof.stats) == {"matmul", "tanh", "power", "sum"}
    for name in ("matmul", "tanh", "power", "sum"):
        stats = prof.stats[name]
        assert stats.calls == 3 and stats.backward_calls == 3
        assert stats.forward_seconds > 0 and stats.backward_seconds > 0
    assert prof.stats["matmul"].forward_bytes == 3 * 4 * 2 * 8  # three (4, 2) float64 results
    # matmul's VJPs made the cotangents of x (4, 3) and w (3, 2), three times
    assert prof.stats["matmul"].backward_bytes == 3 * (4 * 3 + 3 * 2) * 8


def test_the_table_sorts_and_refuses_an_unknown_key():
    x, w = leaves()
    with tape.profile() as prof:
        small_step(x, w).backward()
    for key in ("total", "forward", "backward", "calls", "name"):
        lines = prof.table(sort_by=key).splitlines()
        assert lines[0].split()[:5] == ["op", "calls", "forward", "backward", "total"]
        assert len(lines) == 1 + 4
    names = [line.split()[0] for line in prof.table(sort_by="name").splitlines()[1:]]
    assert names == sorted(names)
    assert len(prof.table(limit=2).splitlines()) == 3
    with pytest.raises(ValueError, match="sort_by must be one of"):
        prof.table(sort_by="speed")


def test_chrome_trace_holds_one_complete_event_per_call_and_sweep(tmp_path):
    x, w = leaves()
    with tape.profile() as prof:
        small_step(x, w).backward()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    events = json.loads(path.read_text())["traceEvents"]
    assert len(events) == 8 and all(event["ph"] == "X" and event["dur"] >= 0 for event in events)
    assert sorted(e["name"] for e in events if e["cat"] == "forward") == ["matmul", "power", "sum", "tanh"]
    assert sorted(e["name"] for e in events if e["cat"] == "backward") == ["matmul", "power", "sum", "tanh"]
    assert min(event["ts"] for event in events) == 0


def test_an_unwritable_trace_path_is_a_clear_error(tmp_path):
    with tape.profile() as prof:
        np.sin(tape.tensor([1.0], requires_grad=True))
    target = tmp_path / "missing" / "trace.json"
    with pytest.raises(OSError, match="export_chrome_trace: cannot write"):
        prof.export_chrome_trace(target)


def test_closing_the_profiler_puts_the_engine_back():
    assert Op.__call__ is _call
    with tape.profile():
        assert Op.__call__ is not _call
    assert Op.__call__ is _call
    with pytest.raises(KeyError), tape.profile():
        raise KeyError("inside")
    assert Op.__call__ is _call
    assert tape.grad_mode.state.profiler is None


def test_one_profiler_per_thread_and_other_threads_are_not_counted():
    x, _ = leaves()
    with tape.profile() as prof:
        with pytest.raises(RuntimeError, match="already open in this thread"), tape.profile():
            pass
        worker = threading.Thread(target=lambda: small_step(*leaves(1)).backward())
        worker.start()
        worker.join()
        np.sin(x)
    assert set(prof.stats) == {"sin"}


def test_second_order_sweeps_count_the_ops_their_vjps_record():
    x = tape.tensor([0.5, 1.5], requires_grad=True)
    with tape.profile() as prof:
        (first,) = tape.gradients(np.sum(np.sin(x)), [x], create_graph=True)
        np.sum(first).backward()
    assert prof.stats["sin"].backward_calls == 1
    assert prof.stats["cos"].calls >= 1 and prof.stats["cos"].backward_calls == 1
    np.testing.assert_allclose(x.grad, -np.sin([0.5, 1.5]))


def test_results_are_the_same_with_and_without_the_profiler():
    x, w = leaves()
    small_step(x, w).backward()
    plain = x.grad.copy(), w.grad.copy()
    x.grad = w.grad = None
    with tape.profile():
        small_step(x, w).backward()
    np.testing.assert_array_equal(x.grad, plain[0])
    np.testing.assert_array_equal(w.grad, plain[1])

"""Memory stays flat over long loops, and threads computing gradients at once each get their own."""

from __future__ import annotations

import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

import tape

ITERATIONS = 10_000


def _model(x, w1, w2):
    return np.mean((np.tanh(x @ w1) @ w2) ** 2)


def _growth_over(step, iterations):
    """Bytes still allocated after ``iterations`` calls of ``step``, beyond what a short warm-up left."""
    tracemalloc.start()
    try:
        for _ in range(200):
            step()
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(iterations):
            step()
        return tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()


def test_training_loop_memory_is_flat():
    rng = np.random.default_rng(0)
    x = tape.tensor(rng.standard_normal((8, 4)))
    w1 = tape.tensor(rng.standard_normal((4, 6)), requires_grad=True)
    w2 = tape.tensor(rng.standard_normal((6, 1)), requires_grad=True)

    def step():
        loss = _model(x, w1, w2)
        loss.backward()
        with tape.no_grad():
            for w in (w1, w2):
                w -= 1e-4 * w.grad
                w.grad = None

    assert _growth_over(step, ITERATIONS) < 64 * 1024


def test_forward_passes_dropped_without_backward_keep_memory_flat():
    rng = np.random.default_rng(1)
    x = tape.tensor(rng.standard_normal((8, 4)))
    w1 = tape.tensor(rng.standard_normal((4, 6)), requires_grad=True)
    w2 = tape.tensor(rng.standard_normal((6, 1)), requires_grad=True)

    def step():
        _model(x, w1, w2)  # recorded, then dropped: its records must go with it

    assert _growth_over(step, ITERATIONS) < 64 * 1024


def test_two_threads_get_their_own_correct_gradients():
    barrier = threading.Barrier(2)
    results = {}
    errors = []

    def worker(name, power):
        try:
            barrier.wait(10)
            for _ in range(300):
                x = tape.tensor(np.linspace(0.5, 1.5, 5), requires_grad=True)
                (x**power).sum().backward()
                expected = power * x.data ** (power - 1)
                if not np.allclose(x.grad, expected):
                    raise AssertionError(f"{name}: {x.grad} != {expected}")
            results[name] = True
        except Exception as error:  # reported to the main thread below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"t{p}", p)) for p in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert results == {"t2": True, "t3": True}


def test_threads_accumulating_into_a_shared_leaf_lose_nothing():
    w = tape.tensor(np.ones(3), requires_grad=True)
    barrier = threading.Barrier(2)

    def worker(scale):
        x = tape.tensor(np.full(3, scale))
        barrier.wait(10)
        for _ in range(500):
            (w * x).sum().backward()

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1.0, 2.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_array_equal(w.grad, np.full(3, 500 * 1.0 + 500 * 2.0))


def _hand_over_the_gil(g, out, x):
    time.sleep(0)  # as BLAS calls and large numpy loops do: other threads run in the middle of this VJP
    return g


# Shared by every thread below: the one record their graphs have in common.
_hand_over = tape.Op(np.copy, _hand_over_the_gil, name="hand_over")


def _own_part(h, scale):
    for _ in range(25):
        h = np.sin(h) * scale
    return h.sum()


def test_threads_racing_to_release_one_shared_record_leave_exactly_one_winner():
    # Eight threads call backward at once, without retain_graph, on outputs of one graph that share a
    # record: exactly one may consume it; the others must get the released error, and no grad may be
    # a wrong number (a record consumed twice, or read while another thread cleared it).
    threads_count, seconds, max_rounds = 8, 2.0, 60
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal(4)
    scales = [1.0 + k / threads_count for k in range(threads_count)]
    expected = []
    for scale in scales:
        x = tape.tensor(x0, requires_grad=True)
        _own_part(_hand_over(x), scale).backward()
        expected.append(x.grad)
    released = "was released by an earlier backward; pass retain_graph=True"
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        deadline = time.monotonic() + seconds
        for _ in range(max_rounds):
            if time.monotonic() > deadline:
                break
            x = tape.tensor(x0, requires_grad=True)
            shared = _hand_over(x)
            outputs = [_own_part(shared, scale) for scale in scales]
            barrier = threading.Barrier(threads_count)
            outcomes: list[object] = [None] * threads_count

            def worker(k, barrier=barrier, outputs=outputs, outcomes=outcomes):
                barrier.wait(10)
                try:
                    outputs[k].backward()
                    outcomes[k] = "done"
                except Exception as error:  # checked in the main thread below
                    outcomes[k] = error

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(threads_count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            winners = [k for k, outcome in enumerate(outcomes) if outcome == "done"]
            assert len(winners) == 1, outcomes
            np.testing.assert_array_equal(x.grad, expected[winners[0]])
            for outcome in outcomes:
                if outcome != "done":
                    assert isinstance(outcome, RuntimeError) and released in str(outcome), outcome
    finally:
        sys.setswitchinterval(interval)


def test_records_do_not_keep_large_arguments_their_vjps_only_need_the_shape_of():
    rng = np.random.default_rng(2)
    x = tape.tensor(rng.standard_normal((256, 64)))
    weights = [tape.tensor(rng.standard_normal((64, 64)) * 0.1, requires_grad=True) for _ in range(8)]

    def held_by_forward() -> int:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            h = x
            for w in weights:
                h = np.tanh(h @ w + 0.5)  # matmul keeps h and w; add keeps nothing; tanh keeps its output
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        h.sum().backward()
        return held

    activation = x.data.nbytes
    # Per layer: the matmul's output (the add needs only its shape) is freed, tanh's output is kept (and
    # is the next matmul's input). Keeping every argument would hold about three activations per layer.
    assert held_by_forward() < 1.5 * activation * len(weights)


def test_a_vjp_reading_a_shape_only_argument_is_an_error_naming_the_op():
    from tape import saved

    wrong = tape.Op(np.sin, lambda g, out, x: g * np.cos(x), name="wrongly_shape_only", shape_only=(0,))
    x = tape.tensor(np.linspace(0, 1, saved.KEEP_SMALLER_THAN), requires_grad=True)
    y = wrong(x)
    with pytest.raises(RuntimeError, match="wrongly_shape_only: a VJP read the values of an argument"):
        y.sum().backward()

"""no_grad, enable_grad, set_grad_enabled: per thread, as context managers and decorators."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tape


@pytest.fixture(autouse=True)
def _recording_back_on():
    yield
    tape.set_grad_enabled(True)  # a test that fails must not leave recording off for the tests after it


def test_no_grad_context_stops_recording_and_restores():
    x = tape.tensor([1.0], requires_grad=True)
    assert tape.is_grad_enabled()
    with tape.no_grad():
        assert not tape.is_grad_enabled()
        y = x * 2
    assert tape.is_grad_enabled()
    assert not y.requires_grad and y.record is None


def test_no_grad_as_decorator_and_enable_grad_inside():
    x = tape.tensor([1.0], requires_grad=True)

    @tape.no_grad()
    def evaluate(t):
        inside = t * 2
        with tape.enable_grad():
            recorded = t * 3
        return inside, recorded

    inside, recorded = evaluate(x)
    assert not inside.requires_grad and recorded.requires_grad
    assert tape.is_grad_enabled()


def test_set_grad_enabled_as_call_and_context():
    with tape.set_grad_enabled(False):
        assert not tape.is_grad_enabled()
    assert tape.is_grad_enabled()
    tape.set_grad_enabled(False)
    try:
        assert not tape.is_grad_enabled()
    finally:
        tape.set_grad_enabled(True)


def test_no_grad_restores_after_an_exception():
    with pytest.raises(KeyError, match="boom"), tape.no_grad():
        raise KeyError("boom")
    assert tape.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with tape.no_grad():
            inside.set()
            release.wait(5)
            seen["worker"] = tape.is_grad_enabled()

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(5)
    x = tape.tensor(np.ones(2), requires_grad=True)
    seen["main"] = (x * 2).requires_grad
    release.set()
    thread.join()
    assert seen == {"main": True, "worker": False}


def test_no_grad_on_a_generator_applies_while_it_runs_each_time_it_resumes():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    seen = []

    @tape.no_grad()
    def doubled(t):
        for _ in range(2):
            seen.append(tape.is_grad_enabled())
            scale = yield t * 2
            t = t * scale
        return "done"

    generator = doubled(x)
    first = next(generator)
    assert tape.is_grad_enabled()  # between two values, the caller's mode
    assert not first.requires_grad and first.record is None
    second = generator.send(3.0)
    np.testing.assert_array_equal(second.data, [6.0, 12.0])
    assert not second.requires_grad
    try:
        generator.send(1.0)
    except StopIteration as stop:
        assert stop.value == "done"
    assert seen == [False, False]
    assert tape.is_grad_enabled()


def test_no_grad_generator_handles_thrown_exceptions_and_close_inside_the_mode():
    seen = []

    @tape.no_grad()
    def numbers():
        try:
            yield 1
        except KeyError:
            seen.append(("thrown", tape.is_grad_enabled()))
            yield 2
        finally:
            seen.append(("closed", tape.is_grad_enabled()))

    generator = numbers()
    assert next(generator) == 1
    assert generator.throw(KeyError("k")) == 2
    generator.close()
    assert seen == [("thrown", False), ("closed", False)]
    assert tape.is_grad_enabled()


def test_one_context_object_re_entered_inside_itself_restores_each_level():
    for switch_off in (tape.no_grad, lambda: tape.set_grad_enabled(False)):
        ctx = switch_off()
        with ctx:
            with ctx:
                assert not tape.is_grad_enabled()
            assert not tape.is_grad_enabled()  # still inside the outer block
        assert tape.is_grad_enabled()
    ctx = tape.enable_grad()
    with tape.no_grad():
        with ctx:
            with ctx:
                assert tape.is_grad_enabled()
            assert tape.is_grad_enabled()
        assert not tape.is_grad_enabled()
    assert tape.is_grad_enabled()


def test_one_context_object_shared_by_two_threads_restores_each_threads_own_mode():
    ctx = tape.no_grad()
    first_inside = threading.Event()
    second_inside = threading.Event()
    first_left = threading.Event()
    seen = {}

    def first():
        with ctx:  # replaces True
            first_inside.set()
            second_inside.wait(5)
        seen["first after"] = tape.is_grad_enabled()
        first_left.set()

    def second():
        first_inside.wait(5)
        tape.set_grad_enabled(False)
        with ctx:  # replaces False, while the first thread is still inside
            second_inside.set()
            first_left.wait(5)
        seen["second after"] = tape.is_grad_enabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"first after": True, "second after": False}
    assert tape.is_grad_enabled()


def test_set_grad_enabled_as_a_decorator_switches_only_while_the_function_runs():
    @tape.set_grad_enabled(False)
    def mode():
        return tape.is_grad_enabled()

    assert tape.is_grad_enabled()
    assert mode() is False
    assert tape.is_grad_enabled()

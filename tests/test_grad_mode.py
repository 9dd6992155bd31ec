"""no_grad, enable_grad, set_grad_enabled: per thread, as context managers and decorators."""

from __future__ import annotations

import threading

import numpy as np

import tape


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
    try:
        with tape.no_grad():
            raise KeyError("boom")
    except KeyError:
        pass
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

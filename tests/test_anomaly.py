"""tape/anomaly.py: anomaly mode finds the op whose VJP made nan or inf, names where the user called it
(with the forward's stack), and changes nothing outside the mode."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import tape


def quiet():
    """numpy's own warnings off: the VJPs below divide by zero on purpose."""
    return np.errstate(all="ignore")


def log_of_zero_loss(x):
    h = x * 2.0
    y = np.log(h - 2.0)  # a nan/inf gradient where x == 1
    return np.sum(y * 0.0 + h)


def test_the_first_op_to_make_nan_is_named_with_the_users_line_and_stack():
    x = tape.tensor([1.0, 3.0], requires_grad=True)
    with tape.detect_anomaly(), quiet():
        loss = log_of_zero_loss(x)
        with pytest.raises(FloatingPointError) as raised:
            loss.backward()
    message = str(raised.value)
    assert message.startswith("log: the gradient for its argument 0 has")
    assert "shapes (2,); dtypes float64" in message
    assert "test_anomaly.py" in message and "y = np.log(h - 2.0)" in message
    stack = message.split("Forward traceback (most recent call last):\n")[1].splitlines()
    # outermost first, ending at the line that called log; no frame of tape or numpy in between
    assert "loss = log_of_zero_loss(x)" in stack[-2] and "np.log(h - 2.0)" in stack[-1]
    assert not any("/tape/" in frame or "/numpy/" in frame for frame in stack)


def test_the_op_whose_vjp_made_the_inf_is_named_not_the_ops_before_it():
    # w * c with c = inf: multiply's VJP for w is g * c, inf from a finite g. The exp before it is fine.
    c = np.array([np.inf, 1.0])
    w = tape.tensor([0.5, 2.0], requires_grad=True)
    with tape.detect_anomaly(), quiet():
        z = np.sum(np.exp(w) * c)
        with pytest.raises(FloatingPointError, match=r"^multiply: the gradient for its argument 0 has inf"):
            z.backward()


def test_a_vjp_handed_a_zero_cotangent_can_still_make_nan():
    # d(y * 0)/dy = 0 is finite; log's VJP then divides it by x = 0: 0 / 0, log's doing.
    x = tape.tensor([0.0, 1.0], requires_grad=True)
    with tape.detect_anomaly(), quiet():
        z = np.sum(np.log(x) * 0.0)
        with pytest.raises(FloatingPointError, match=r"^log: the gradient for its argument 0 has nan"):
            z.backward()


def test_records_made_outside_the_mode_say_how_to_find_the_line():
    x = tape.tensor([1.0, 3.0], requires_grad=True)
    with quiet():
        loss = log_of_zero_loss(x)
    with tape.detect_anomaly(), quiet(), pytest.raises(FloatingPointError, match="outside anomaly mode"):
        loss.backward()


def test_outside_the_mode_backward_gives_numpys_values_and_warning():
    x = tape.tensor([1.0, 3.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_of_zero_loss(x).backward()
    assert not np.all(np.isfinite(x.grad))
    assert any(issubclass(w.category, RuntimeWarning) for w in caught)


def test_finite_gradients_pass_and_match_those_outside_the_mode():
    values = np.array([0.3, -1.2, 2.0])
    x = tape.tensor(values, requires_grad=True)
    with tape.detect_anomaly():
        np.sum(np.tanh(x) * np.exp(x)).backward()
    inside = x.grad
    x.grad = None
    np.sum(np.tanh(x) * np.exp(x)).backward()
    np.testing.assert_array_equal(inside, x.grad)


def test_anomaly_mode_checks_second_order_sweeps_too():
    # d(x^1.5)/dx = 1.5 sqrt(x) is finite at 0; its own derivative is not.
    x = tape.tensor([0.0, 2.0], requires_grad=True)
    with tape.detect_anomaly(), quiet():
        (first,) = tape.gradients(np.sum(x**1.5), [x], create_graph=True)
        with pytest.raises(FloatingPointError, match="the gradient for its argument"):
            tape.gradients(np.sum(first), [x])


def test_set_detect_anomaly_is_per_thread_and_restored_by_the_context_manager():
    seen = []
    tape.set_detect_anomaly(True)
    try:
        thread = threading.Thread(target=lambda: seen.append(tape.is_detecting_anomaly()))
        thread.start()
        thread.join()
        with tape.detect_anomaly(False):
            assert not tape.is_detecting_anomaly()
        assert tape.is_detecting_anomaly()
    finally:
        tape.set_detect_anomaly(False)
    assert seen == [False]
    assert not tape.is_detecting_anomaly()

"""tape.checkpoint: same gradients as the plain call (first and second order), intermediates not kept,
and an error rather than a lost gradient when the function reads a tensor it was not given."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

import tape
from tests.strategies import FLOAT_DTYPES


def _block(x, w):
    return np.tanh(x @ w) * 0.5 + x


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_gradients_match_the_plain_call(dtype):
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal((3, 3)).astype(dtype)
    grads = []
    for use_checkpoint in (False, True):
        x, w = tape.tensor(x0, requires_grad=True), tape.tensor(w0, requires_grad=True)
        y = x
        for _ in range(3):
            y = tape.checkpoint(_block, y, w) if use_checkpoint else _block(y, w)
        np.sum(y**2).backward()
        grads.append((x.grad, w.grad))
    (x_plain, w_plain), (x_checked, w_checked) = grads
    assert x_checked.dtype == dtype and w_checked.dtype == dtype
    np.testing.assert_allclose(x_checked, x_plain, rtol=1e-6)
    np.testing.assert_allclose(w_checked, w_plain, rtol=1e-6)


def test_gradcheck_and_second_derivatives_through_a_checkpoint():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 3))
    assert tape.gradcheck(lambda x, w: tape.checkpoint(_block, x, w), x, w)
    assert tape.gradgradcheck(lambda x, w: tape.checkpoint(_block, x, w), x, w)
    assert tape.grad(tape.grad(lambda x: tape.checkpoint(lambda x: x**4, x)))(2.0) == pytest.approx(48.0)


def test_intermediates_are_not_kept():
    x = tape.tensor(np.ones(100_000), requires_grad=True)
    deep = lambda x: np.sin(np.sin(np.sin(np.sin(x))))

    def held_after_forward(fn):
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            y = fn(x)
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        del y
        return held

    plain = held_after_forward(deep)
    checked = held_after_forward(lambda x: tape.checkpoint(deep, x))
    # The plain call keeps every intermediate sine for backward; the checkpoint keeps the output only.
    assert checked < plain / 2


def test_a_tensor_read_from_outside_is_refused():
    x = tape.tensor(np.ones(2), requires_grad=True)
    w = tape.tensor(np.ones((2, 2)), requires_grad=True)
    y = tape.checkpoint(lambda x: np.tanh(w @ x), x).sum()
    with pytest.raises(RuntimeError, match="not passed as an argument"):
        y.backward()


def test_constants_read_from_outside_are_fine():
    x = tape.tensor(np.array([0.5, 1.5]), requires_grad=True)
    scale = np.array([2.0, 3.0])
    tape.checkpoint(lambda x: np.sum(np.sin(x) * scale), x).backward()
    np.testing.assert_allclose(x.grad, np.cos(x.data) * scale)


def test_result_must_be_one_tensor():
    with pytest.raises(TypeError, match="must return one tensor"):
        tape.checkpoint(lambda x: (x, x), tape.tensor(np.ones(2), requires_grad=True))


def test_a_closure_over_a_differentiated_value_is_refused_even_when_no_argument_requires_grad():
    x0 = np.array([0.3, -0.7, 1.1])
    with pytest.raises(RuntimeError, match=r"uses a tensor of shape \(\) that requires grad but was not"):
        tape.grad(lambda a: np.sum(tape.checkpoint(lambda y: np.sin(y * a), x0)))(2.0)
    found = tape.grad(lambda a: np.sum(tape.checkpoint(lambda y, a: np.sin(y * a), x0, a)))(2.0)
    np.testing.assert_allclose(found, np.sum(np.cos(2.0 * x0) * x0), rtol=1e-15)
    np.testing.assert_allclose(tape.checkpoint(np.sin, x0), np.sin(x0))  # nothing to differentiate: fine

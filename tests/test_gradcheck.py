"""gradcheck itself: it passes correct VJPs and catches wrong ones, in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from tape.tensor import plain
from tests.strategies import FLOAT_DTYPES


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_passes_a_correct_vjp(dtype):
    rng = np.random.default_rng(0)
    assert tape.gradcheck(
        lambda x, y: np.sin(x) * y, rng.random((3, 2)).astype(dtype), rng.random(2).astype(dtype)
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_catches_a_wrong_vjp(dtype):
    wrong = tape.Op(np.sin, lambda g, out, x: g * np.cos(x) * 1.1, name="wrong_sin")
    with pytest.raises(tape.GradcheckError, match=r"input 0 .*at index"):
        tape.gradcheck(wrong, np.linspace(0.1, 1.0, 5).astype(dtype))


def test_catches_a_wrong_vjp_on_large_inputs_by_the_inner_product():
    wrong = tape.Op(np.exp, lambda g, out, x: g * out * 0.9, name="wrong_exp")
    with pytest.raises(tape.GradcheckError, match="<u, J v>"):
        tape.gradcheck(wrong, np.linspace(0, 1, 1000), max_elements=10)


def test_non_differentiable_inputs_pass_through():
    rng = np.random.default_rng(1)
    index = np.array([0, 2, 2])
    assert tape.gradcheck(lambda x, i: x[i] * 2, rng.random(4), index)


def test_several_outputs():
    rng = np.random.default_rng(2)
    assert tape.gradcheck(lambda x: (np.sin(x), np.cos(x).sum()), rng.random(3))


def test_result_without_history_is_reported():
    with pytest.raises(tape.GradcheckError, match="does not depend"):
        tape.gradcheck(lambda x: tape.tensor(np.ones(2)), np.ones(2))


def test_needs_a_floating_input():
    with pytest.raises(ValueError, match="no floating-point input"):
        tape.gradcheck(lambda i: i, np.arange(3))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_gradgradcheck_passes_vjps_written_in_numpy(dtype):
    rng = np.random.default_rng(3)
    x, w = rng.random((3, 2)).astype(dtype), rng.random((2, 4)).astype(dtype)
    assert tape.gradgradcheck(lambda x, w: np.tanh(x @ w) * np.exp(-x.sum()), x, w)


def test_gradgradcheck_catches_a_vjp_that_leaves_the_tape():
    # plain() takes the data: the VJP's value is right but it is not recorded, so the second derivative
    # is lost. gradcheck cannot see this; gradgradcheck must.
    detached = tape.Op(lambda x: x**3, lambda g, out, x: g * 3 * plain(x) ** 2, name="detached_cube")
    x = np.linspace(0.5, 1.5, 4)
    assert tape.gradcheck(detached, x)
    with pytest.raises(tape.GradcheckError):
        tape.gradgradcheck(detached, x)


def test_a_vjp_that_converts_its_input_with_np_asarray_is_refused_when_differentiated_again():
    converting = tape.Op(lambda x: x**3, lambda g, out, x: g * 3 * np.asarray(x) ** 2, name="converting")
    x = np.linspace(0.5, 1.5, 4)
    assert tape.gradcheck(converting, x)
    with pytest.raises(TypeError, match="converted to a plain numpy array while recording"):
        tape.gradgradcheck(converting, x)


def test_gradgradcheck_needs_one_tensor_result():
    with pytest.raises(TypeError, match="must return one tensor"):
        tape.gradgradcheck(lambda x: (x, x), np.ones(2))

"""ops/erf.py: erf against math.erf, its kernel against its twin, its first and second derivatives."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tape import jit
from tape.ops.erf import erf_kernel
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, shapes


@pytest.fixture(autouse=True)
def kernel_must_compile():
    """A silent fallback to the twin would make the kernel half of these tests compare the twin twice."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", jit.JitFallbackWarning)
        yield


def _exact(x):
    return np.array([math.erf(float(value)) for value in np.ravel(x)]).reshape(np.shape(x))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_erf_values_and_gradients(dtype, data):
    x = data.draw(arrays(data.draw(shapes), dtype, -3.0, 3.0))
    check_op(tape.erf, x)
    result = tape.erf(x)
    assert result.dtype == dtype
    tolerance = {"rtol": 1e-15, "atol": 1e-16} if dtype == np.float64 else {"rtol": 1e-6, "atol": 1e-7}
    np.testing.assert_allclose(result, _exact(x), **tolerance)


@pytest.mark.parametrize("use_jit", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("layout", ["C", "transposed", "strided", "empty", "0-d"])
def test_kernel_and_twin_agree_on_any_layout(use_jit, dtype, layout):
    values = np.random.default_rng(0).uniform(-5, 5, (6, 8)).astype(dtype)
    x = {
        "C": values,
        "transposed": values.T,
        "strided": values[::2, ::3],
        "empty": values[:0],
        "0-d": values[0, 0].reshape(()),
    }[layout]
    with jit.use_jit(use_jit):
        result = tape.erf(x)
    assert result.shape == x.shape and result.dtype == dtype
    np.testing.assert_array_equal(result, _exact(x).astype(dtype))


def test_the_kernel_ran_and_matches_its_twin_at_extremes():
    x = np.array([0.0, -0.0, 1e-300, -1e-300, 6.0, -6.0, 30.0, np.inf, -np.inf, np.nan])
    with jit.use_jit(True):
        compiled = erf_kernel(x)
    assert erf_kernel.signatures()
    twin = erf_kernel.twin(x)
    np.testing.assert_array_equal(compiled, twin)
    assert np.signbit(compiled[1]) and compiled[7] == 1.0 and compiled[8] == -1.0 and np.isnan(compiled[9])


def test_integers_give_float64_and_float16_stays_float16():
    assert tape.erf(np.array([0, 1])).dtype == np.float64
    half = tape.erf(np.array([0.5], dtype=np.float16))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, math.erf(0.5), rtol=1e-3)


def test_second_derivatives():
    x = np.random.default_rng(1).uniform(-2, 2, 7)
    assert tape.gradgradcheck(tape.erf, x)

"""Second derivatives of the first families of ops (elementwise, reductions, shape, indexing, matmul):
``tape.gradgradcheck`` differentiates each recorded VJP against finite differences of the first
derivative. The later families test their second derivatives in their own files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tests.ops.test_elementwise import BINARY, UNARY, _name
from tests.strategies import broadcastable_shapes, nonempty_shapes

# Zero-gradient ops have nothing to differentiate a second time.
FLAT = {np.sign, np.floor, np.ceil, np.trunc, np.rint, np.floor_divide}


@pytest.mark.parametrize(("ufunc", "values"), UNARY, ids=[_name(u) for u, _ in UNARY])
@given(data=st.data())
def test_unary_ufunc_second_derivative(ufunc, values, data):
    if ufunc in FLAT:
        return
    x = data.draw(values((3,), np.float64))
    assert tape.gradgradcheck(ufunc, x)


@pytest.mark.parametrize(("ufunc", "x_values", "y_values"), BINARY, ids=[_name(u) for u, _, _ in BINARY])
@given(data=st.data())
def test_binary_ufunc_second_derivative(ufunc, x_values, y_values, data):
    if ufunc in FLAT:
        return
    x_shape, y_shape = data.draw(broadcastable_shapes(2, min_side=1))
    x = data.draw(x_values(x_shape, np.float64))
    y = data.draw(y_values(y_shape, np.float64))
    assert tape.gradgradcheck(ufunc, x, y)


REDUCTIONS = {
    "sum": lambda x: np.sum(x, axis=0) ** 2,
    "mean": lambda x: np.mean(x**2, axis=-1),
    "prod": lambda x: np.prod(x, axis=0),
    "max": lambda x: np.max(x, axis=0) ** 2,
    "min": lambda x: np.min(np.sin(x), axis=-1, keepdims=True),
}
SHAPES = {
    "reshape": lambda x: np.reshape(x, (-1,)) ** 3,
    "transpose": lambda x: np.transpose(x) * x.T,
    "moveaxis": lambda x: np.moveaxis(x, 0, -1) ** 2,
    "expand_squeeze": lambda x: np.squeeze(np.expand_dims(x, 0)) ** 2,
    "broadcast_to": lambda x: np.broadcast_to(x, (2, *x.shape)) ** 2,
    "where": lambda x: np.where(x > 0, x**2, x**3),
    "basic index": lambda x: x[..., :1] ** 3,
    "advanced index": lambda x: x[np.array([0, 0, -1])] ** 2,
    "setitem": lambda x: _assign(x),
    "matmul": lambda x: np.tanh(x @ np.swapaxes(x, -1, -2)),
    "clip": lambda x: np.clip(x, -0.55, 0.55) * x,
}


def _assign(x):
    y = x * 1.0
    y[0] = np.sin(x[-1])
    y[..., 1:] += x[..., :1] ** 2
    return y * y


@pytest.mark.parametrize("name", sorted(REDUCTIONS) + sorted(SHAPES))
@given(shape=nonempty_shapes.filter(lambda s: len(s) >= 2), seed=st.integers(0, 2**16))
def test_reductions_and_shape_ops_second_derivative(name, shape, seed):
    # Distinct values, none near zero: no ties for max and min, no kink for where.
    count = int(np.prod(shape))
    ranks = np.random.default_rng(seed).permutation(count).reshape(shape)
    x = (ranks + 1) * 0.1 * (-1.0) ** ranks
    f = {**REDUCTIONS, **SHAPES}[name]
    assert tape.gradgradcheck(f, x.astype(np.float64))

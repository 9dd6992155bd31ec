"""ops/ranges.py: linspace and logspace with tensor end points, checked against numpy's forward and finite
differences in float64 and float32 (torch's linspace has no gradient for its end points: no comparison)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, broadcastable_shapes

OPTIONS = [
    {"num": 5},
    {"num": 4, "endpoint": False},
    {"num": 1},
    {"num": 0},
    {"num": 3, "axis": -1},
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["linspace", "logspace"])
@pytest.mark.parametrize("options", OPTIONS, ids=str)
@given(data=st.data())
def test_linspace_and_logspace_with_tensor_end_points(name, options, dtype, data):
    start_shape, stop_shape = data.draw(broadcastable_shapes(2, min_side=1))
    start = data.draw(arrays(start_shape, dtype, 0.2, 1.0))
    stop = data.draw(arrays(stop_shape, dtype, 1.2, 2.0))
    check_op(
        lambda start, stop: getattr(np, name)(start, stop, **options),
        start,
        stop,
        keeps_dtype=name == "linspace",
    )


@pytest.mark.parametrize("name", ["linspace", "logspace"])
def test_second_derivative_and_base(name):
    start, stop = np.array([0.3, 1.1]), np.array([[2.0], [2.5]])
    assert tape.gradgradcheck(lambda s, t: getattr(np, name)(s, t, 4, axis=1) ** 2, start, stop)
    if name == "logspace":
        assert tape.gradgradcheck(lambda s, b: np.logspace(s, 1.5, 4, base=b), start, np.array(2.0))


def test_linspace_retstep_and_errors():
    start = tape.tensor(0.5, requires_grad=True)
    _, step = np.linspace(start, 2.0, 4, retstep=True)
    assert step.data == np.linspace(0.5, 2.0, 4, retstep=True)[1]
    with pytest.raises(ValueError, match=r"^linspace: number of samples, -1, must be non-negative"):
        np.linspace(start, 2.0, -1)

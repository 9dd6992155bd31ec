"""Hypothesis strategies for op tests: shapes that broadcast, with size-1, size-0 and 0-d cases, and
values kept away from the points where an op is not differentiable."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = [np.float64, np.float32]


def rarely(rare: st.SearchStrategy[Any], common: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draws from ``rare`` about one time in six, from ``common`` otherwise (and shrinks towards
    ``common``): empty arrays are an edge case worth a few examples, not the half of them that shapes with
    zero-length sides would take."""
    return st.sampled_from([common] * 5 + [rare]).flatmap(lambda strategy: strategy)


#: Shapes with no zero-length axis (for reductions like max that reject empty input).
nonempty_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
#: Shapes with at least one zero-length axis (size-0 arrays).
empty_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4).filter(
    lambda shape: 0 in shape
)
#: Shapes of up to 3 axes of up to 4 elements, including 0-d; about one draw in six has a zero-length axis.
shapes = rarely(empty_shapes, nonempty_shapes)


def broadcastable_shapes(num_shapes: int = 2, min_side: int = 0) -> st.SearchStrategy[Any]:
    """Tuples of ``num_shapes`` shapes that broadcast together (numpy's rules, size-1 axes included);
    with ``min_side=0``, at most one draw in five has a zero-length axis."""

    def draw(min_side: int) -> st.SearchStrategy[Any]:
        return hnp.mutually_broadcastable_shapes(
            num_shapes=num_shapes, min_dims=0, max_dims=3, min_side=min_side, max_side=4
        ).map(lambda result: result.input_shapes)

    return draw(1) if min_side else rarely(draw(0), draw(1))


def arrays(
    shape: tuple[int, ...],
    dtype: Any = np.float64,
    low: float = -2.0,
    high: float = 2.0,
    away_from: float | None = None,
    margin: float = 0.1,
) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``shape`` with values in [low, high], optionally at least ``margin`` from ``away_from``."""

    def build(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        values = rng.uniform(low, high, size=shape)
        if away_from is not None:
            near = np.abs(values - away_from) < margin
            values = np.where(near, away_from + np.sign(values - away_from + 1e-12) * margin * 2, values)
        return values.astype(dtype)

    return st.integers(0, 2**32 - 1).map(build)


def distinct_arrays(shape: tuple[int, ...], dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Arrays whose elements are all distinct and at least 0.05 apart (no ties for max, sort, ...)."""

    def build(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        size = int(np.prod(shape))
        values = rng.permutation(size) * 0.1 - size * 0.05 + rng.uniform(-0.02, 0.02, size)
        return values.reshape(shape).astype(dtype)

    return st.integers(0, 2**32 - 1).map(build)

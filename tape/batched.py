"""VJPs applied to a batch of cotangents at once: the rows of a Jacobian in one reverse sweep.

A batched cotangent has a leading axis, one entry per row. An op marked ``batched`` has VJPs that accept
it as they are (elementwise ops, ``where``, ``matmul``: numpy broadcasting carries the extra axis through);
for any other op the VJPs run once per row and the results are stacked. Either way the cotangents are
summed back to ``(rows, *input shape)`` here, as ``fit_cotangent`` does for a single cotangent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .cotangents import fit_cotangent, fit_rows
from .diagonal import DiagonalRows


def batched_cotangents(
    op: Any, args: Any, kwargs: Any, inputs: Any, out: Any, g: Any, rows: int
) -> Iterator[tuple[Any, int | None, Any]]:
    """For each of a record's ``inputs`` that requires grad: ``(node, index, cotangent with a row axis)``.

    ``op``, ``args``, ``kwargs``, ``inputs`` and ``out`` are the record's, as the sweep read them.
    """
    wanted = [(argnum, node, index) for argnum, node, index, _, _ in inputs if node is not None]
    if getattr(op, "batched", False):
        joint = None if op.backward is None else op.backward(g, out, *args, **kwargs)
        for argnum, node, index in wanted:
            cotangent = op.vjps[argnum](g, out, *args, **kwargs) if joint is None else joint[argnum]
            if cotangent is not None:
                yield node, index, fit_rows(cotangent, args, argnum, out, rows, op.name)
        return
    dense = tuple(_dense(item) for item in g) if type(g) is tuple else _dense(g)
    stacked: dict[int, list[Any]] = {argnum: [] for argnum, _, _ in wanted}
    for row in range(rows):
        g_row = tuple(item[row] for item in dense) if type(dense) is tuple else dense[row]
        joint = None if op.backward is None else op.backward(g_row, out, *args, **kwargs)
        for argnum, _, _ in wanted:
            cotangent = op.vjps[argnum](g_row, out, *args, **kwargs) if joint is None else joint[argnum]
            value = args[argnum]
            if cotangent is None:
                cotangent = np.zeros(value.shape, dtype=value.dtype)
            stacked[argnum].append(fit_cotangent(cotangent, args, argnum, out, op.name, False))
    for argnum, node, index in wanted:
        value = args[argnum]
        if rows:
            yield node, index, np.stack(stacked[argnum])
        else:
            yield node, index, np.zeros((0, *value.shape), dtype=value.dtype)


def _dense(g: Any) -> Any:
    return g.dense() if isinstance(g, DiagonalRows) else g

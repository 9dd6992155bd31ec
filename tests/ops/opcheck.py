"""The check every op test runs: the forward agrees with numpy, dtypes are kept, gradients pass gradcheck.

A test writes its function once, as plain numpy code (``lambda x, y: np.sin(x) * y``); the same function
runs on the plain arrays (numpy's answer) and on tensors (tape's answer). This module holds no test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import tape


def is_differentiable(value: Any) -> bool:
    """Floating-point arrays are the inputs a check differentiates; anything else is passed through."""
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def check_op(f: Callable[..., Any], *inputs: Any, keeps_dtype: bool = True, **gradcheck_options: Any) -> None:
    """Check ``f`` at ``inputs`` (arrays; the floating-point ones are differentiated).

    * ``f`` on tensors gives numpy's result on the arrays: same values, same dtype;
    * with ``keeps_dtype``, that dtype is the inputs' own (float32 in, float32 out);
    * ``backward`` leaves every gradient with its input's shape and dtype;
    * ``tape.gradcheck`` finds the VJPs in agreement with finite differences.

    Examples
    --------
    >>> check_op(np.sin, np.linspace(0.0, 1.0, 4, dtype=np.float32))
    """
    expected = np.asarray(f(*(x.copy() if isinstance(x, np.ndarray) else x for x in inputs)))
    leaves = [tape.tensor(x, requires_grad=True) if is_differentiable(x) else x for x in inputs]
    result = f(*leaves)

    assert isinstance(result, tape.Tensor), f"expected a tensor, got {type(result).__name__}"
    assert result.requires_grad
    assert result.dtype == expected.dtype, f"dtype {result.dtype}, numpy gives {expected.dtype}"
    if keeps_dtype:
        assert result.dtype == np.result_type(*(x for x in inputs if is_differentiable(x)))
    np.testing.assert_array_equal(result.data, expected)

    cotangent = np.random.default_rng(1).standard_normal(result.shape).astype(result.dtype)
    result.backward(cotangent)
    for leaf in leaves:
        if isinstance(leaf, tape.Tensor) and leaf.grad is not None:
            assert leaf.grad.shape == leaf.shape
            assert leaf.grad.dtype == leaf.dtype, f"gradient dtype {leaf.grad.dtype}, input {leaf.dtype}"

    assert tape.gradcheck(f, *inputs, **gradcheck_options)

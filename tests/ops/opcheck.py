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


def check_op(
    f: Callable[..., Any],
    *inputs: Any,
    keeps_dtype: bool = True,
    compiles: bool = True,
    **gradcheck_options: Any,
) -> None:
    """Check ``f`` at ``inputs`` (arrays; the floating-point ones are differentiated).

    * ``f`` on tensors gives numpy's result on the arrays: same values, same dtype;
    * with ``keeps_dtype``, that dtype is the inputs' own (float32 in, float32 out);
    * ``backward`` leaves every gradient with its input's shape and dtype;
    * ``tape.gradcheck`` finds the VJPs in agreement with finite differences;
    * with ``compiles``, ``tape.compile(f)`` gives the same value and gradients (``check_compiled``).

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
    if compiles:
        check_compiled(f, *inputs)


def check_compiled(f: Callable[..., Any], *inputs: Any) -> None:
    """``tape.compile(f)`` agrees with ``f``, in value and gradients, at ``inputs`` and at other values of the
    same signature (a replay that froze a value seen while recording would differ there): to the bit with
    JIT off (the program's own ops), and to rounding with JIT on, where runs of elementwise ops are fused
    kernels with their own arithmetic."""
    key = _function_key(f, inputs)
    if key in _COMPILED_CHECKED:  # once per function and signature: hypothesis draws many values of each
        return
    _COMPILED_CHECKED.add(key)
    compiled = tape.compile(f)
    rng = np.random.default_rng(2)
    moved = [
        np.asarray(x * (1 + 1e-3 * rng.uniform(0.5, 1.0, x.shape)), dtype=x.dtype)
        if is_differentiable(x)
        else x
        for x in inputs
    ]
    # Recorded with JIT on; then replayed at other values, unfused (to the bit) and fused.
    for values, jit in ((inputs, True), (moved, False), (moved, True)):
        with tape.jit.use_jit(jit):  # eager's own kernels, or their twins, as the replay runs them
            eager = _value_and_grads(f, values)
        try:
            with tape.jit.use_jit(jit):
                replayed = _value_and_grads(compiled, values)
        except tape.TraceError as error:
            # Refused, not replayed (documented): in-place writes, shapes or masks taken from the values.
            assert any(reason in str(error) for reason in REFUSED), str(error)
            return
        fused = jit and any(program.regions for program in compiled.programs())
        for mine, theirs in zip(replayed, eager, strict=True):
            if theirs is None:
                assert mine is None
                continue
            assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
            if fused:
                tolerance = 1e-4 if theirs.dtype == np.float32 else 1e-10
                scale = float(np.max(np.abs(theirs), initial=0.0, where=np.isfinite(theirs)))
                np.testing.assert_allclose(mine, theirs, rtol=tolerance, atol=tolerance * max(scale, 1.0))
            else:
                np.testing.assert_array_equal(mine, theirs)
    assert compiled.recordings == 1


_COMPILED_CHECKED: set[Any] = set()
REFUSED = ("in place", "gives a shape that depends on them", "condition took the values")


def _function_key(f: Callable[..., Any], inputs: Any) -> Any:
    code = getattr(f, "__code__", None)
    cells = tuple(repr(cell.cell_contents) for cell in getattr(f, "__closure__", None) or ())
    signature = tuple((np.shape(x), getattr(x, "dtype", type(x))) for x in inputs)
    return (code or id(f), cells, signature)


def _value_and_grads(f: Callable[..., Any], values: Any) -> list[Any]:
    leaves = [tape.tensor(x, requires_grad=True) if is_differentiable(x) else x for x in values]
    result = f(*leaves)
    cotangent = np.random.default_rng(3).standard_normal(result.shape).astype(result.dtype)
    result.backward(cotangent)
    return [result.numpy().copy()] + [leaf.grad for leaf in leaves if isinstance(leaf, tape.Tensor)]

"""``gradcheck``: compare tape's VJPs with central finite differences computed in float64.

Two checks, both built on a random output cotangent ``u``:

* the inner-product identity ⟨u, J v⟩ = ⟨Jᵀu, v⟩ for a random direction ``v`` (one pair of function
  evaluations, any size);
* for inputs small enough, every element of ``Jᵀu`` against the central difference of ⟨u, f(x)⟩.

The VJP runs at the inputs' own dtype (so float32 gradients are checked as float32); the finite differences
always run in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backward import propagate
from .functional import vjp
from .grad_mode import enable_grad, no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """A VJP disagreed with finite differences, or a gradient had the wrong shape or dtype."""


_TOLERANCES = {  # dtype: (rtol, atol)
    np.dtype(np.float64): (1e-5, 1e-7),
    np.dtype(np.float32): (2e-2, 2e-3),
    np.dtype(np.float16): (1e-1, 5e-2),
}


def gradcheck(
    f: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    rtol: float | None = None,
    atol: float | None = None,
    max_elements: int = 256,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``f`` at ``inputs`` against finite differences; raise if they disagree.

    Parameters
    ----------
    f : function of tensors returning a tensor or a tuple of tensors.
    *inputs : arrays, tensors or scalars. Floating-point ones are differentiated; others pass through.
    eps : finite-difference step, in float64.
    rtol, atol : tolerances; by default set by the inputs' dtype (tight for float64, looser for float32).
    max_elements : inputs with more elements than this are checked by the inner-product identity only.
    seed : seeds the random cotangent and direction.

    Returns
    -------
    True when every check passes; otherwise ``GradcheckError`` says which input, where and by how much.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.gradcheck(lambda x, y: np.sin(x) * y, np.random.rand(3, 2), np.random.rand(2))
    True
    """
    rng = np.random.default_rng(seed)
    arrays = [_as_array(x) for x in inputs]
    floating = {i: a for i, a in enumerate(arrays) if a is not None and a.dtype.kind == "f"}
    wrt = list(floating)
    if not wrt:
        raise ValueError("gradcheck: no floating-point input to differentiate")
    leaves = {i: Tensor(floating[i], requires_grad=True) for i in wrt}
    call_args = [leaves.get(i, x) for i, x in enumerate(inputs)]
    outputs = _as_tuple(f(*call_args))
    positions = [k for k, out in enumerate(outputs) if isinstance(out, Tensor) and out.requires_grad]
    recorded = [outputs[k] for k in positions]
    if not recorded:
        raise GradcheckError("gradcheck: f's result does not depend on any input that requires grad")
    cotangents = [rng.standard_normal(out.shape).astype(out.dtype) for out in recorded]
    reached = propagate(list(zip(recorded, cotangents, strict=True)), retain_graph=False, create_graph=False)
    analytic = {}
    for i in wrt:
        leaf = leaves[i]
        entry = reached.get(id(leaf))
        grad = np.zeros_like(leaf._data) if entry is None else entry[1]
        if grad.shape != leaf.shape or grad.dtype != leaf.dtype:
            raise GradcheckError(
                f"gradcheck: the gradient of input {i} has shape {grad.shape} and dtype {grad.dtype}, "
                f"expected {leaf.shape} and {leaf.dtype}"
            )
        analytic[i] = grad.astype(np.float64)

    def pairing(perturbed: dict[int, np.ndarray]) -> float:
        """⟨u, f(x)⟩ in float64, with the differentiated inputs replaced by ``perturbed``."""
        args = [Tensor(perturbed[i]) if i in perturbed else x for i, x in enumerate(inputs)]
        with no_grad():
            results = _as_tuple(f(*args))
        return float(
            sum(
                np.sum(np.asarray(results[k], np.float64) * u)
                for k, u in zip(positions, cotangents, strict=True)
            )
        )

    base = {i: floating[i].astype(np.float64) for i in wrt}
    dtype = np.result_type(*(floating[i].dtype for i in wrt))
    default_rtol, default_atol = _TOLERANCES.get(np.dtype(dtype), _TOLERANCES[np.dtype(np.float64)])
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol

    for i in wrt:
        if base[i].size > max_elements:
            continue
        numeric = np.zeros_like(base[i])
        for j in range(base[i].size):
            shifted = dict(base)
            step = np.zeros_like(base[i])
            step.flat[j] = eps
            shifted[i] = base[i] + step
            up = pairing(shifted)
            shifted[i] = base[i] - step
            numeric.flat[j] = (up - pairing(shifted)) / (2 * eps)
        scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
        error = np.abs(analytic[i] - numeric)
        bad = error > atol * scale + rtol * np.abs(numeric)
        if bad.any():
            where = np.unravel_index(int(np.argmax(np.where(bad, error, -1))), base[i].shape)
            raise GradcheckError(
                f"gradcheck: input {i} (shape {base[i].shape}, {floating[i].dtype}): at index {where} the "
                f"VJP gives {analytic[i][where]:.8g} but finite differences give {numeric[where]:.8g}"
            )
    directions = {i: rng.standard_normal(base[i].shape) for i in wrt}
    plus = pairing({i: base[i] + eps * directions[i] for i in wrt})
    minus = pairing({i: base[i] - eps * directions[i] for i in wrt})
    numeric_directional = (plus - minus) / (2 * eps)
    analytic_directional = float(sum(np.sum(analytic[i] * directions[i]) for i in wrt))
    scale = max(1.0, abs(numeric_directional), sum(float(np.abs(analytic[i]).sum()) for i in wrt) / 10)
    if abs(analytic_directional - numeric_directional) > atol * scale + rtol * abs(numeric_directional):
        raise GradcheckError(
            f"gradcheck: <u, J v> from finite differences is {numeric_directional:.8g} but <J^T u, v> from "
            f"the VJPs is {analytic_directional:.8g}"
        )

    return True


def gradgradcheck(
    f: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    rtol: float | None = None,
    atol: float | None = None,
    max_elements: int = 256,
    seed: int = 0,
) -> bool:
    """Check second derivatives: ``gradcheck`` of the function ``(x..., u) -> J(x)ᵀu``.

    The VJPs of ``f`` are recorded (``create_graph=True``) and then differentiated, with respect to the
    inputs and to the cotangent ``u``, against finite differences. Takes the same options as
    ``gradcheck``; ``f`` returns one tensor.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.gradgradcheck(lambda x: np.sin(x) * x, np.random.rand(3))
    True
    """
    arrays = [_as_array(x) for x in inputs]
    wrt = [i for i, a in enumerate(arrays) if a is not None and a.dtype.kind == "f"]
    if not wrt:
        raise ValueError("gradgradcheck: no floating-point input to differentiate")
    with no_grad():
        probe = f(*(Tensor(arrays[i]) if i in wrt else x for i, x in enumerate(inputs)))
    if not isinstance(probe, Tensor):
        raise TypeError(f"gradgradcheck: f must return one tensor, got {type(probe).__name__}")
    rng = np.random.default_rng(seed + 1)
    cotangent = rng.standard_normal(probe.shape).astype(probe.dtype)

    def first_order(*args: Any) -> tuple[Any, ...]:
        *xs, u = args

        def of_differentiated(*picked: Any) -> Any:
            full = list(xs)
            for i, value in zip(wrt, picked, strict=True):
                full[i] = value
            return f(*full)

        # Recording stays on even inside gradcheck's no_grad finite differences: the VJP must run there.
        with enable_grad():
            _, pullback = vjp(of_differentiated, *(xs[i] for i in wrt))
            return tuple(pullback(u))

    return gradcheck(
        first_order,
        *inputs,
        cotangent,
        eps=eps,
        rtol=rtol,
        atol=atol,
        max_elements=max_elements,
        seed=seed,
    )


def _as_array(x: Any) -> np.ndarray | None:
    if isinstance(x, Tensor):
        return x._data
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, float):
        return np.asarray(x)
    return None


def _as_tuple(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, tuple | list) else (result,)

"""``gradcheck``: compare tape's VJPs with central finite differences computed in float64.

Two checks, both built on a random output cotangent ``u``:

* the inner-product identity ⟨u, J v⟩ = ⟨Jᵀu, v⟩ for a random direction ``v`` (one pair of function
  evaluations, any size);
* for inputs small enough, every element of ``Jᵀu`` against the central difference of ⟨u, f(x)⟩.

The VJP runs at the inputs' own dtype (so float32 gradients are checked as float32); the finite differences
always run in float64 (complex128 for complex values).

Complex values follow PyTorch's convention. A complex input ``z = x + iy`` is perturbed along its real
and its imaginary axis separately, and its gradient is ``∂L/∂x + i ∂L/∂y``; a complex output ``w`` gets a
complex cotangent ``u``, which stands for the real loss ``L = Re(Σ conj(u) · w)``; a real input feeding
complex outputs gets the real number ``∂L/∂x``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backward import propagate
from .functional import vjp
from .grad_mode import enable_grad, no_grad
from .tangents import ForwardModeUnavailableError, forward_sweep, push_forward
from .tensor import Tensor


class GradcheckError(AssertionError):
    """A VJP disagreed with finite differences, or a gradient had the wrong shape or dtype."""


_TOLERANCES = {  # dtype: (rtol, atol); a complex dtype takes those of its real and imaginary parts
    np.dtype(np.float64): (1e-5, 1e-7),
    np.dtype(np.float32): (2e-2, 2e-3),
    np.dtype(np.float16): (1e-1, 5e-2),
}
_DIFFERENTIABLE_KINDS = frozenset("fc")
_FLOAT64, _COMPLEX128 = np.dtype(np.float64), np.dtype(np.complex128)
# The unit steps of a finite difference, by the kind of the input: along the real line, or along the real
# and then the imaginary axis (each with its name for error messages).
_AXES = {"f": ((None, 1.0),), "c": (("real", 1.0), ("imaginary", 1j))}


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
    *inputs : arrays, tensors or scalars. Floating-point ones, real or complex, are differentiated; others
        pass through.
    eps : finite-difference step, in float64; a complex input takes it along each axis in turn.
    rtol, atol : tolerances; by default set by the inputs' dtype (tight for float64 and complex128, looser
        for float32 and complex64).
    max_elements : inputs with more elements than this are checked by the inner-product identity only.
    seed : seeds the random cotangent and direction.

    Returns
    -------
    True when every check passes; otherwise ``GradcheckError`` says which input, where and by how much (and,
    for a complex input, whether along the real or the imaginary axis).

    Notes
    -----
    Complex inputs and outputs follow PyTorch's convention: the gradient of a complex input ``x + iy`` is
    ``∂L/∂x + i ∂L/∂y`` for the real loss ``L = Re(Σ conj(u) · f(x))`` made with a random complex cotangent
    ``u`` of each complex output.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.gradcheck(lambda x, y: np.sin(x) * y, np.random.rand(3, 2), np.random.rand(2))
    True
    >>> tape.gradcheck(lambda z: np.abs(z) ** 2, np.array([1 + 2j, 3 - 1j]))
    True
    """
    rng = np.random.default_rng(seed)
    arrays = [_as_array(x) for x in inputs]
    floating = {i: a for i, a in enumerate(arrays) if a is not None and a.dtype.kind in _DIFFERENTIABLE_KINDS}
    wrt = list(floating)
    if not wrt:
        raise ValueError("gradcheck: no floating-point input (real or complex) to differentiate")
    leaves = {i: Tensor(floating[i], requires_grad=True) for i in wrt}
    call_args = [leaves.get(i, x) for i, x in enumerate(inputs)]
    # Forward mode along a random v, every way: pushed as f runs (tape.jvp's way, joint rules included),
    # swept over the records afterwards (before backward releases them), and stacked with a second
    # direction w in one sweep (J V, each rule's stacked form).
    tangent_rng = np.random.default_rng(seed + 7)
    tangent_directions = {i: _standard_normal(tangent_rng, t.shape, t.dtype) for i, t in leaves.items()}
    second_directions = {i: _standard_normal(tangent_rng, t.shape, t.dtype) for i, t in leaves.items()}
    seeds = {id(leaves[i]): tangent_directions[i] for i in wrt}
    stacked_seeds = {id(leaves[i]): np.stack([tangent_directions[i], second_directions[i]]) for i in wrt}
    with forward_sweep(seeds) as sweep:
        outputs = _as_tuple(f(*call_args))
    positions = [k for k, out in enumerate(outputs) if isinstance(out, Tensor) and out.requires_grad]
    recorded = [outputs[k] for k in positions]
    if not recorded:
        raise GradcheckError("gradcheck: f's result does not depend on any input that requires grad")
    try:
        stacked = push_forward(recorded, stacked_seeds, batch=2)
        pushed = {
            "as f ran": sweep.results(recorded),
            "over the records": push_forward(recorded, seeds),
            "stacked with another": [None if t is None else t[0] for t in stacked],
        }
        pushed_second = {"stacked with another": [None if t is None else t[1] for t in stacked]}
    except ForwardModeUnavailableError:
        pushed = {}  # complex values: forward mode is reverse mode's business there (tape.jvp)
    cotangents = [_standard_normal(rng, out.shape, out.dtype) for out in recorded]
    reached = propagate(list(zip(recorded, cotangents, strict=True)), retain_graph=False, create_graph=False)
    # Per output: its position, its cotangent, and the dtype its values are paired in.
    paired = [(k, u, _widest(u.dtype)) for k, u in zip(positions, cotangents, strict=True)]
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
        analytic[i] = grad.astype(_widest(grad.dtype))

    def pairing(perturbed: dict[int, np.ndarray]) -> float:
        """⟨u, f(x)⟩ (its real part) in float64, with the differentiated inputs replaced by ``perturbed``."""
        args = [Tensor(perturbed[i]) if i in perturbed else x for i, x in enumerate(inputs)]
        with no_grad():
            results = _as_tuple(f(*args))
        return float(
            sum(
                np.sum(np.asarray(results[k], wide) * u)
                if wide is _FLOAT64
                else _real_inner(u, np.asarray(results[k], wide))
                for k, u, wide in paired
            )
        )

    base = {i: floating[i].astype(_widest(floating[i].dtype)) for i in wrt}
    # The inputs' precision: that of their real and imaginary parts for complex ones.
    dtype = np.finfo(np.result_type(*(floating[i].dtype for i in wrt))).dtype
    default_rtol, default_atol = _TOLERANCES.get(dtype, _TOLERANCES[_FLOAT64])
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol

    for i in wrt:
        if base[i].size > max_elements:
            continue
        axes = _AXES[base[i].dtype.kind]
        numeric = np.zeros_like(base[i])
        targets = [(unit, _part(numeric, axis)) for axis, unit in axes]  # views into ``numeric``
        for j in range(base[i].size):
            shifted = dict(base)
            for unit, target in targets:
                step = np.zeros_like(base[i])
                step.flat[j] = eps * unit
                shifted[i] = base[i] + step
                up = pairing(shifted)
                shifted[i] = base[i] - step
                target.flat[j] = (up - pairing(shifted)) / (2 * eps)
        scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
        for axis, _ in axes:
            given, expected = _part(analytic[i], axis), _part(numeric, axis)
            error = np.abs(given - expected)
            bad = error > atol * scale + rtol * np.abs(expected)
            if bad.any():
                flat = int(np.argmax(np.where(bad, error, -1)))
                where = tuple(int(k) for k in np.unravel_index(flat, base[i].shape))
                along = "" if axis is None else f", perturbed along the {axis} axis"
                part = "" if axis is None else f" (the {axis} part of its gradient)"
                raise GradcheckError(
                    f"gradcheck: input {i} (shape {base[i].shape}, {floating[i].dtype}){along}: at index "
                    f"{where} the VJP gives {given[where]:.8g}{part} but finite differences give "
                    f"{expected[where]:.8g}"
                )
    directions = {i: _standard_normal(rng, base[i].shape, base[i].dtype) for i in wrt}
    plus = pairing({i: base[i] + eps * directions[i] for i in wrt})
    minus = pairing({i: base[i] - eps * directions[i] for i in wrt})
    numeric_directional = (plus - minus) / (2 * eps)
    analytic_directional = float(sum(_real_inner(analytic[i], directions[i]) for i in wrt))
    scale = max(1.0, abs(numeric_directional), sum(float(np.abs(analytic[i]).sum()) for i in wrt) / 10)
    if abs(analytic_directional - numeric_directional) > atol * scale + rtol * abs(numeric_directional):
        raise GradcheckError(
            f"gradcheck: <u, J v> from finite differences is {numeric_directional:.8g} but <J^T u, v> from "
            f"the VJPs is {analytic_directional:.8g}"
        )
    if pushed:
        _check_forward_mode(f, inputs, base, positions, pushed, tangent_directions, eps, rtol, atol)
        _check_forward_mode(f, inputs, base, positions, pushed_second, second_directions, eps, rtol, atol)
    return True


def _check_forward_mode(
    f: Callable[..., Any],
    inputs: tuple[Any, ...],
    base: dict[int, np.ndarray],
    positions: list[int],
    pushed: dict[str, list[Any]],
    directions: dict[int, np.ndarray],
    eps: float,
    rtol: float,
    atol: float,
) -> None:
    """Forward mode's J v (each way in ``pushed``) against the central difference of the outputs along v."""

    def outputs_at(sign: float) -> tuple[Any, ...]:
        args = [
            Tensor(base[i] + sign * eps * directions[i].astype(base[i].dtype)) if i in base else x
            for i, x in enumerate(inputs)
        ]
        with no_grad():
            return _as_tuple(f(*args))

    plus, minus = outputs_at(1.0), outputs_at(-1.0)
    for way, tangents in pushed.items():
        for k, tangent in zip(positions, tangents, strict=True):
            _check_tangent(way, k, tangent, plus[k], minus[k], eps, rtol, atol)


def _check_tangent(
    way: str, k: int, tangent: Any, plus: Any, minus: Any, eps: float, rtol: float, atol: float
) -> None:
    """Output ``k``'s tangent found ``way`` against the central difference of its values ``plus`` and
    ``minus`` (at ``eps`` along v each side)."""
    expected = (np.asarray(plus, np.float64) - np.asarray(minus, np.float64)) / (2 * eps)
    given = np.zeros_like(expected) if tangent is None else np.asarray(tangent, np.float64)
    if given.shape != expected.shape:
        raise GradcheckError(
            f"gradcheck: output {k}'s tangent from forward mode ({way}) has shape {given.shape}, expected "
            f"{expected.shape}"
        )
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    error = np.abs(given - expected)
    bad = error > atol * scale + rtol * np.abs(expected)
    if bad.any():
        flat = int(np.argmax(np.where(bad, error, -1)))
        where = tuple(int(j) for j in np.unravel_index(flat, expected.shape))
        raise GradcheckError(
            f"gradcheck: output {k} (shape {expected.shape}): at index {where} forward mode (the JVP "
            f"rules, {way}) gives {given[where]:.8g} for J v but finite differences give "
            f"{expected[where]:.8g}"
        )


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
    ``gradcheck``; ``f`` returns one tensor. When that tensor is complex, so is ``u``, and it is
    differentiated as a complex input.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.gradgradcheck(lambda x: np.sin(x) * x, np.random.rand(3))
    True
    """
    arrays = [_as_array(x) for x in inputs]
    wrt = [i for i, a in enumerate(arrays) if a is not None and a.dtype.kind in _DIFFERENTIABLE_KINDS]
    if not wrt:
        raise ValueError("gradgradcheck: no floating-point input (real or complex) to differentiate")
    with no_grad():
        probe = f(*(Tensor(arrays[i]) if i in wrt else x for i, x in enumerate(inputs)))
    if not isinstance(probe, Tensor):
        raise TypeError(f"gradgradcheck: f must return one tensor, got {type(probe).__name__}")
    rng = np.random.default_rng(seed + 1)
    cotangent = _standard_normal(rng, probe.shape, probe.dtype)

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
    if isinstance(x, float | complex):
        return np.asarray(x)
    return None


def _standard_normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Standard normal values of ``dtype``; for a complex dtype, both the real and the imaginary parts."""
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _widest(dtype: np.dtype) -> np.dtype:
    """Where the finite differences run: complex128 for complex values, float64 for the rest."""
    return _COMPLEX128 if dtype.kind == "c" else _FLOAT64


def _part(values: np.ndarray, axis: str | None) -> np.ndarray:
    """What a finite difference along ``axis`` measures of a gradient: all of it for a real input."""
    if axis is None:
        return values
    return values.real if axis == "real" else values.imag


def _real_inner(a: np.ndarray, b: np.ndarray) -> Any:
    """Re Σ conj(a) · b: the inner product of complex numbers as pairs of reals (Σ a · b for real ones)."""
    if a.dtype.kind == "c" or b.dtype.kind == "c":
        return np.sum(a.real * b.real + a.imag * b.imag)
    return np.sum(a * b)


def _as_tuple(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, tuple | list) else (result,)

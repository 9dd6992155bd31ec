"""Signals and polynomials: convolve, correlate, interp, polyval and gradient, each beside its VJP.

Every forward is numpy's own function, so values and dtypes agree with numpy to the last bit. The VJPs are
numpy calls on the cotangent (``np.correlate`` for ``np.convolve``, ``np.polyval`` of the derivative
polynomial, the transposed stencil of ``np.gradient``), so they are recorded under ``create_graph`` and
differentiate again. Which segment, knot or mode window a cotangent goes to is read from the data as plain
arrays: it carries no gradient.

Conventions where numpy leaves a choice:

* ``interp`` at ``x`` exactly on a knot ``xp[k]``: numpy evaluates the segment with
  ``xp[j] <= x < xp[j + 1]``, so ``x`` takes the slope of the segment to the right of the knot; at the
  last knot ``xp[-1]`` (the end of the closed interval), the slope of the last segment. Outside
  ``[xp[0], xp[-1]]``, where ``left``/``right`` (or the end values) apply, the slope is 0.

Complex values follow PyTorch's convention. convolve, polyval, gradient and interp (complex ``fp``,
``left`` and ``right``; ``x`` and ``xp`` are real, as numpy requires) are analytic in every argument they
differentiate, so their VJPs are written as for real values (``complex_rule="holomorphic"``). numpy's
correlate conjugates ``v``, so its VJPs conjugate where that calls for it (``"own"``).

The sample points ``xp`` of ``interp`` and the spacings of ``gradient`` are not differentiated: asking for
their gradient is an error, never a silently dropped one. This module must not change the data it is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from tape.op import Op
from tape.registry import implements
from tape.tensor import Tensor, plain

from .indexing import scatter_add

_MODES = {"valid": "valid", "same": "same", "full": "full", 0: "valid", 1: "same", 2: "full"}


def _constant(name: str, what: str, value: Any) -> Any:
    """``value`` as plain data; a tensor that requires grad is refused (it would lose its gradient)."""
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise TypeError(
                f"numpy.{name}: {what} is not differentiable on tape tensors, but it requires grad; pass "
                f"{what}.detach() or a plain array"
            )
        return value._data
    return value


# -- convolve and correlate --------------------------------------------------------------------------------
def _mode(name: str, mode: Any) -> str:
    try:
        return _MODES[mode]
    except (KeyError, TypeError):
        raise ValueError(
            f"numpy.{name}: mode must be one of 'valid', 'same', or 'full' (got {mode!r})"
        ) from None


def _sequences(*values: Any) -> tuple[Any, ...]:
    """Tensors as they are, anything else as an array (numpy's own reading of a list)."""
    return tuple(value if isinstance(value, Tensor) else np.asarray(value) for value in values)


def _window(name: str, a_length: int, v_length: int, mode: str) -> int:
    """Where numpy's ``mode`` result starts in the full result (``np.convolve``'s, or ``np.correlate``'s).

    'valid' keeps the positions where the shorter sequence lies wholly inside the longer one; 'same' keeps
    as many as the longer one holds, centred. numpy's convolve centres on the shorter length whichever
    argument is shorter; its correlate, which swaps its arguments when ``v`` is longer and reverses the
    result, centres on ``a`` from the other end then.
    """
    shorter = min(a_length, v_length)
    if mode == "full":
        return 0
    if mode == "valid":
        return shorter - 1
    if name == "correlate" and v_length > a_length:
        return a_length // 2
    return (shorter - 1) // 2


def _full_cotangent(name: str, g: Any, a: Any, v: Any, mode: str) -> Any:
    """The cotangent of the full result: ``g`` where the ``mode`` window kept it, zeros elsewhere."""
    a_length, v_length = np.size(a), np.size(v)
    full_length = a_length + v_length - 1
    if mode == "full":
        return g
    start = _window(name, a_length, v_length, mode)
    return scatter_add(g, (slice(start, start + np.shape(g)[0]),), (full_length,))


def _convolve(a: Any, v: Any, mode: str = "full") -> Any:
    return np.convolve(a, v, mode)


def _unconjugated(values: Any) -> Any:
    """``values`` flattened, and conjugated when complex: np.correlate conjugates its second argument, so
    ``np.correlate(g, _unconjugated(v))`` is the correlation ``sum_n g[n + k] v[n]`` for real and complex."""
    flat = np.ravel(values)
    return np.conj(flat) if plain(flat).dtype.kind == "c" else flat


def _convolve_a(g: Any, out: Any, a: Any, v: Any, mode: str = "full") -> Any:
    # out[k] = sum_i a[i] v[k - i], so the cotangent of a[i] is sum_k g[k] v[k - i]: a correlation with v.
    full = _full_cotangent("convolve", g, a, v, mode)
    return np.reshape(np.correlate(full, _unconjugated(v), "valid"), np.shape(a))


def _convolve_v(g: Any, out: Any, a: Any, v: Any, mode: str = "full") -> Any:
    full = _full_cotangent("convolve", g, a, v, mode)
    return np.reshape(np.correlate(full, _unconjugated(a), "valid"), np.shape(v))


convolve_op = Op(_convolve, _convolve_a, _convolve_v, name="convolve", complex_rule="holomorphic")


def _correlate(a: Any, v: Any, mode: str = "valid") -> Any:
    return np.correlate(a, v, mode)


def _correlate_a(g: Any, out: Any, a: Any, v: Any, mode: str = "valid") -> Any:
    # out[k] = sum_n a[n + k] conj(v[n]) (k counted from the full result's start), analytic in a: a's
    # cotangent, sum_k g[k] conj(conj(v[n])), is a convolution of the cotangent with v, complex or not.
    full = _full_cotangent("correlate", g, a, v, mode)
    return np.reshape(np.convolve(full, np.ravel(v), "valid"), np.shape(a))


def _correlate_v(g: Any, out: Any, a: Any, v: Any, mode: str = "valid") -> Any:
    # v's is a correlation of the cotangent with a, read backwards; out depends on conj(v), so for complex
    # values v's cotangent is sum_k conj(g[k]) a[n + k]: the conjugate of that correlation.
    full = _full_cotangent("correlate", g, a, v, mode)
    cotangent = np.reshape(np.correlate(full, np.ravel(a), "valid")[::-1], np.shape(v))
    return np.conj(cotangent) if plain(cotangent).dtype.kind == "c" else cotangent


correlate_op = Op(_correlate, _correlate_a, _correlate_v, name="correlate", complex_rule="own")


@implements(np.convolve)
def convolve(a: Any, v: Any, mode: Any = "full") -> Any:
    """``np.convolve`` on tensors, in every mode, differentiable in ``a`` and ``v``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> np.convolve(a, [0.0, 1.0, 0.5], "same").sum().backward()
    >>> a.grad
    array([1.5, 1.5, 1. ])
    """
    return convolve_op(*_sequences(a, v), mode=_mode("convolve", mode))


@implements(np.correlate)
def correlate(a: Any, v: Any, mode: Any = "valid") -> Any:
    """``np.correlate`` on tensors, in every mode, differentiable in ``a`` and ``v`` (numpy conjugates ``v``).

    Examples
    --------
    >>> import numpy as np, tape
    >>> v = tape.tensor([0.0, 1.0, 0.5], requires_grad=True)
    >>> np.correlate([1.0, 2.0, 3.0], v).backward()
    >>> v.grad
    array([1., 2., 3.])
    """
    return correlate_op(*_sequences(a, v), mode=_mode("correlate", mode))


# -- interp ------------------------------------------------------------------------------------------------
def _interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None) -> Any:
    return np.interp(x, xp, fp, left, right)


class _Segments:
    """Where each ``x`` falls among the knots ``xp``, as numpy's interpolation reads it.

    ``lower``/``upper``: the knots of the segment used (the last segment for ``x`` at or past ``xp[-1]``,
    the first before ``xp[0]``); ``below``/``above``: ``x`` outside ``[xp[0], xp[-1]]``; ``steps``: the
    segments' widths, with 1 where a width is 0 (a repeated knot, never divided by in numpy's branch).
    """

    def __init__(self, x: Any, xp: Any) -> None:
        points = plain(x)
        knots = np.asarray(xp, dtype=np.float64)
        count = knots.shape[0]
        self.count = count
        self.below = points < knots[0]
        self.above = points > knots[-1]
        self.at_end = points >= knots[-1]
        self.lower = np.clip(np.searchsorted(knots, points, side="right") - 1, 0, max(count - 2, 0))
        self.upper = np.minimum(self.lower + 1, count - 1)
        widths = np.diff(knots)
        self.flat = widths == 0
        self.steps = np.where(self.flat, 1.0, widths)
        self.knots = knots


def _interp_x(g: Any, out: Any, x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None) -> Any:
    segments = _Segments(x, xp)
    if segments.count == 1:
        return np.zeros_like(g)
    slopes = np.where(segments.flat, 0, np.diff(fp) / segments.steps)
    outside = segments.below | segments.above
    return g * np.where(outside, 0, slopes[segments.lower])


def _interp_weights(g: Any, x: Any, xp: Any, left: Any, right: Any) -> tuple[_Segments, Any, Any]:
    """The cotangent each ``x`` sends to its lower and to its upper knot's ``fp``."""
    segments = _Segments(x, xp)
    lower_knot = segments.knots[segments.lower]
    fraction = (x - lower_knot) / segments.steps[segments.lower] if segments.count > 1 else 0 * x
    fraction = np.where(segments.at_end, 1, np.where(segments.below, 0, fraction))
    to_constant = (segments.below & (left is not None)) | (segments.above & (right is not None))
    kept = np.where(to_constant, 0, g)
    upper_share = kept * fraction
    return segments, kept - upper_share, upper_share


def _interp_fp(g: Any, out: Any, x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None) -> Any:
    segments, lower_share, upper_share = _interp_weights(g, x, xp, left, right)
    shape = (segments.count,)
    return scatter_add(np.ravel(lower_share), (np.ravel(segments.lower),), shape) + scatter_add(
        np.ravel(upper_share), (np.ravel(segments.upper),), shape
    )


def _interp_left(g: Any, out: Any, x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None) -> Any:
    return np.sum(np.where(plain(x) < np.asarray(xp)[0], g, 0))


def _interp_right(g: Any, out: Any, x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None) -> Any:
    return np.sum(np.where(plain(x) > np.asarray(xp)[-1], g, 0))


interp_op = Op(
    _interp,
    _interp_x,
    None,
    _interp_fp,
    _interp_left,
    _interp_right,
    name="interp",
    complex_rule="holomorphic",
)


def _periodic(x: Any, xp: Any, fp: Any, period: Any) -> tuple[Any, Any, Any]:
    """numpy's reduction of a periodic ``interp`` to a plain one, step by step, on tensors where given."""
    period = _constant("interp", "period", period)
    if period == 0:
        raise ValueError("numpy.interp: period must be a non-zero value")
    period = abs(period)
    x = x.astype(np.float64) if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
    xp = np.asarray(xp, dtype=np.float64)
    values = np.complex128 if np.iscomplexobj(plain(fp)) else np.float64  # numpy's dtype for fp
    fp = fp.astype(values) if isinstance(fp, Tensor) else np.asarray(fp, dtype=values)
    if xp.ndim != 1 or fp.ndim != 1:
        raise ValueError("numpy.interp: data points must be 1-D sequences")
    if xp.shape[0] != fp.shape[0]:
        raise ValueError(
            f"numpy.interp: fp and xp are not of the same length ({fp.shape[0]} != {xp.shape[0]})"
        )
    x = x % period
    xp = xp % period
    order = np.argsort(xp)
    xp, fp = xp[order], fp[order]
    xp = np.concatenate((xp[-1:] - period, xp, xp[0:1] + period))
    fp = np.concatenate((fp[-1:], fp, fp[0:1]))
    return x, xp, fp


@implements(np.interp)
def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None, period: Any = None) -> Any:
    """``np.interp`` on tensors, differentiable in ``x``, ``fp``, ``left`` and ``right`` (``fp``, ``left``
    and ``right`` may be complex, ``x`` and ``xp`` are real, as in numpy).

    ``x`` takes the slope of its segment (on a knot, the segment to its right; at ``xp[-1]``, the last
    segment), 0 outside ``[xp[0], xp[-1]]``; ``fp`` takes the interpolation weights of its two knots.
    ``xp`` is not differentiated. With ``period``, numpy's own reduction to a plain interpolation is
    recorded. The result is float64 (complex128 for complex ``fp``), as numpy's is.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([0.5, 2.5], requires_grad=True)
    >>> fp = tape.tensor([0.0, 1.0, 4.0], requires_grad=True)
    >>> np.interp(x, [0.0, 1.0, 2.0], fp).sum().backward()
    >>> x.grad, fp.grad
    (array([1., 0.]), array([0.5, 0.5, 1. ]))
    """
    xp = _constant("interp", "xp", xp)
    x = x if isinstance(x, Tensor) else np.asarray(x)
    fp = fp if isinstance(fp, Tensor) else np.asarray(fp)
    if period is not None:
        x, xp, fp = _periodic(x, xp, fp, period)
        left = right = None
    return interp_op(x, xp, fp, left, right)


# -- polyval -----------------------------------------------------------------------------------------------
def _polyval(p: Any, x: Any) -> Any:
    return np.polyval(p, x)


def _polyval_p(g: Any, out: Any, p: Any, x: Any) -> Any:
    # The cotangent of p[k] is the sum of g * x ** (n - 1 - k), the powers built by products (never 0 ** 0).
    count = np.shape(p)[0]
    totals = []
    weighted = g
    for _ in range(count):
        totals.append(np.sum(weighted))
        weighted = weighted * x
    return np.stack(totals[::-1]) if totals else np.zeros(0, dtype=plain(g).dtype)


def _polyval_x(g: Any, out: Any, p: Any, x: Any) -> Any:
    count = np.shape(p)[0]
    orders = np.arange(count - 1, 0, -1, dtype=plain(p).dtype)
    return g * np.polyval(p[:-1] * orders, x)


polyval_op = Op(_polyval, _polyval_p, _polyval_x, name="polyval", complex_rule="holomorphic")


@implements(np.polyval)
def polyval(p: Any, x: Any) -> Any:
    """``np.polyval`` on tensors: ``p`` (highest power first; a tensor, list or array) and ``x``.

    Differentiable in ``p`` (the powers of ``x``) and in ``x`` (the derivative polynomial).

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> np.polyval([3.0, 0.0, 1.0], x).sum().backward()
    >>> x.grad
    array([ 6., 12.])
    """
    if isinstance(x, np.poly1d) or isinstance(p, np.poly1d):
        raise TypeError(
            "numpy.polyval: poly1d is not supported on tape tensors; pass its coefficients p.coeffs"
        )
    if isinstance(p, list | tuple) and any(isinstance(item, Tensor) for item in p):
        p = np.stack(p)
    elif not isinstance(p, Tensor):
        p = np.asarray(p)
    if not isinstance(x, Tensor):
        x = np.asanyarray(x)
    if np.ndim(p) != 1:
        raise ValueError(
            f"numpy.polyval: p must be a 1-D sequence of coefficients on tape tensors, "
            f"got shape {np.shape(p)}"
        )
    return polyval_op(p, x)


# -- gradient ----------------------------------------------------------------------------------------------
def _stencil(length: int, spacing: Any, edge_order: int) -> tuple[np.ndarray, ...]:
    """numpy's finite-difference weights along one axis of ``length``, as numpy's ``gradient`` forms them.

    Returns the weights of ``f[i - 1]``, ``f[i]``, ``f[i + 1]`` for each interior ``i`` and those of the
    first ``edge_order + 1`` values (first output) and of the last ``edge_order + 1`` (last output).
    """
    spacing = np.asarray(spacing)
    steps = np.diff(spacing.astype(np.float64)) if spacing.ndim == 1 else spacing.astype(np.float64)
    if steps.ndim == 1 and (steps == steps[0]).all():
        steps = steps[0]
    if steps.ndim == 0:  # uniform
        interior = (np.full(length - 2, -0.5 / steps), np.zeros(length - 2), np.full(length - 2, 0.5 / steps))
        if edge_order == 1:
            return (*interior, np.array([-1.0, 1.0]) / steps, np.array([-1.0, 1.0]) / steps)
        return (*interior, np.array([-1.5, 2.0, -0.5]) / steps, np.array([0.5, -2.0, 1.5]) / steps)
    before, after = steps[:-1], steps[1:]
    interior = (
        -after / (before * (before + after)),
        (after - before) / (before * after),
        before / (after * (before + after)),
    )
    if edge_order == 1:
        return (*interior, np.array([-1.0, 1.0]) / steps[0], np.array([-1.0, 1.0]) / steps[-1])
    first, second = steps[0], steps[1]
    start = np.array(
        [
            -(2.0 * first + second) / (first * (first + second)),
            (first + second) / (first * second),
            -first / (second * (first + second)),
        ]
    )
    first, second = steps[-2], steps[-1]
    end = np.array(
        [
            second / (first * (first + second)),
            -(second + first) / (first * second),
            (2.0 * second + first) / (second * (first + second)),
        ]
    )
    return (*interior, start, end)


def _gradient(f: Any, spacing: Any = 1.0, axis: int = 0, edge_order: int = 1) -> Any:
    return np.gradient(f, spacing, axis=axis, edge_order=edge_order)


def _weigh(weights: np.ndarray, rows: Any, trailing: tuple[int, ...]) -> Any:
    """``rows`` (axis 0 first) scaled by one weight per row, in the rows' dtype."""
    return np.reshape(weights.astype(rows.dtype), (-1, *trailing)) * rows


def _gradient_vjp(g: Any, out: Any, f: Any, spacing: Any = 1.0, axis: int = 0, edge_order: int = 1) -> Any:
    # The stencil's transpose: each output's cotangent goes back to the values its difference read.
    length = np.shape(f)[axis]
    lower, middle, upper, start, end = _stencil(length, spacing, edge_order)
    along = np.moveaxis(g, axis, 0)
    shape = np.shape(along)
    trailing = (1,) * (len(shape) - 1)

    taps = edge_order + 1
    first, last = along[0:1], along[length - 1 : length]
    cotangent = scatter_add(_weigh(start, first, trailing), (slice(0, taps),), shape) + scatter_add(
        _weigh(end, last, trailing), (slice(length - taps, length),), shape
    )
    if length > 2:
        inner = along[1 : length - 1]
        cotangent = (
            cotangent
            + scatter_add(_weigh(lower, inner, trailing), (slice(0, length - 2),), shape)
            + scatter_add(_weigh(middle, inner, trailing), (slice(1, length - 1),), shape)
            + scatter_add(_weigh(upper, inner, trailing), (slice(2, length),), shape)
        )
    return np.moveaxis(cotangent, 0, axis)


gradient_op = Op(_gradient, _gradient_vjp, name="gradient", shape_only=(0,), complex_rule="holomorphic")


@implements(np.gradient)
def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """``np.gradient`` on tensors: central differences inside, one-sided (order 1 or 2) at the edges.

    Spacings follow numpy: none (1), one scalar for every axis, or one scalar or coordinate array per
    axis. The result is linear in ``f``; the spacings are not differentiated. Several axes give a tuple,
    one axis an array, as in numpy.

    Examples
    --------
    >>> import numpy as np, tape
    >>> f = tape.tensor([1.0, 2.0, 4.0, 7.0], requires_grad=True)
    >>> np.gradient(f).sum().backward()
    >>> f.grad
    array([-1.5,  0.5, -0.5,  1.5])
    """
    spacings = [_constant("gradient", "spacing", spacing) for spacing in varargs]
    if not isinstance(f, Tensor):
        return np.gradient(f, *spacings, axis=axis, edge_order=edge_order)
    axes = tuple(range(f.ndim)) if axis is None else normalize_axis_tuple(axis, f.ndim)
    if not spacings:
        spacings = [1.0] * len(axes)
    elif len(spacings) == 1 and np.ndim(spacings[0]) == 0:
        spacings = spacings * len(axes)
    elif len(spacings) != len(axes):
        raise TypeError(
            f"numpy.gradient: invalid number of arguments: expected no spacing, one scalar or one per axis "
            f"({len(axes)}), got {len(spacings)}"
        )
    results = tuple(
        gradient_op(f, spacing=spacing, axis=along, edge_order=edge_order)
        for along, spacing in zip(axes, spacings, strict=True)
    )
    return results[0] if len(results) == 1 else results

"""Elementwise ops: numpy's arithmetic and transcendental ufuncs, each beside its VJP.

Every VJP returns a cotangent of the broadcast output's shape; the engine sums it back to its input's shape
and dtype. VJPs use ``out`` (the forward's result) where that saves work: ``exp``'s VJP is ``g * out``.
Functions that are flat almost everywhere (``floor``, ``sign``, ...) have a zero gradient, as in PyTorch
and JAX. On large plain arrays a few VJPs (tanh, x**2, square, sqrt, sin, cos) and the forwards of sin and
cos run numba kernels from ``ops/elementwise_kernels.py``; below their size threshold, and on tensors
(``create_graph``), the numpy expression beside each op runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from tape.inplace import apply_in_place
from tape.op import Op
from tape.registry import SCALAR_FORMULAS, implements
from tape.tensor import Tensor, plain

from . import complex_kernels
from . import elementwise_kernels as fused

_LN2 = float(np.log(2.0))
_LN10 = float(np.log(10.0))


def _ufunc_op(
    ufunc: np.ufunc,
    *vjps: Callable[..., Any] | None,
    shape_only: tuple[int, ...] = (),
    keeps_output: bool = False,
    forward: Callable[..., Any] | None = None,
    complex_rule: str = "refused",
    forward_jvp: Callable[..., Any] | None = None,
) -> Op:
    """The op for ``ufunc``, run by ``np.<ufunc>(tensor)``; ``forward`` replaces the ufunc itself, and
    ``forward_jvp`` is the joint rule (``tape.Op``).

    ``complex_rule`` (see ``tape.Op``): the analytic ufuncs below are ``"holomorphic"``, their VJPs the
    derivative times ``g``, which the engine conjugates for complex values."""
    op = Op(
        forward or ufunc,
        *vjps,
        name=ufunc.__name__,
        shape_only=shape_only,
        batched=True,
        keeps_output=keeps_output,
        complex_rule=complex_rule,
        elementwise=True,
        forward_jvp=forward_jvp,
    )
    implements(ufunc)(op)
    return op


def _zero(g: Any, out: Any, *args: Any, **kwargs: Any) -> Any:
    return np.zeros_like(g)


def _quiet(vjp: Callable[..., Any]) -> Callable[..., Any]:
    """``vjp`` without numpy's divide and invalid warnings, for VJPs that divide by zero (or zero by zero)
    at inputs where the forward is quiet: their inf or nan there is the answer, not a surprise."""

    def quiet_vjp(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(divide="ignore", invalid="ignore"):
            return vjp(*args, **kwargs)

    return quiet_vjp


# -- arithmetic ----------------------------------------------------------------------------------------
add = _ufunc_op(
    np.add, lambda g, out, x, y: g, lambda g, out, x, y: g, shape_only=(0, 1), complex_rule="holomorphic"
)
subtract = _ufunc_op(
    np.subtract,
    lambda g, out, x, y: g,
    lambda g, out, x, y: -g,
    shape_only=(0, 1),
    complex_rule="holomorphic",
)
multiply = _ufunc_op(
    np.multiply, lambda g, out, x, y: g * y, lambda g, out, x, y: g * x, complex_rule="holomorphic"
)
divide = _ufunc_op(
    np.true_divide,
    lambda g, out, x, y: g / y,
    lambda g, out, x, y: -g * out / y,
    keeps_output=True,
    complex_rule="holomorphic",
)
negative = _ufunc_op(np.negative, lambda g, out, x: -g, shape_only=(0,), complex_rule="holomorphic")
positive = _ufunc_op(np.positive, lambda g, out, x: g, shape_only=(0,), complex_rule="holomorphic")
floor_divide = _ufunc_op(np.floor_divide, _zero, _zero)
remainder = _ufunc_op(np.remainder, lambda g, out, x, y: g, lambda g, out, x, y: -g * np.floor_divide(x, y))
fmod = _ufunc_op(np.fmod, lambda g, out, x, y: g, lambda g, out, x, y: -g * np.trunc(x / y))


def _power_vjp_base(g: Any, out: Any, x: Any, y: Any) -> Any:
    # d(x**y)/dx = y * x**(y-1), taken as 0 wherever y == 0 (x**0 is constant, whatever x, as in PyTorch).
    # There it is written y / x (x made safe): 0, yet its derivative in y, 1/x, survives for second order.
    if isinstance(y, int | float):
        if y == 2:  # x ** 2, the common case: no power, and one pass for large arrays
            if type(x) is np.ndarray and x.size >= fused.LARGE:
                return fused.square_vjp(g, x)
            return g * (x + x)
        if y == 0:
            return np.zeros_like(g)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -0.5 and inf * 0 ** inf: inf and nan, quietly
        if isinstance(y, int | float):
            return g * (y * x ** (y - 1))
        base, exponent = plain(x), plain(y)
        constant = exponent == 0
        safe = np.where(constant & (base != 0) & np.isfinite(base), x, 1.0)
        return g * np.where(constant, y / safe, y * x ** np.where(constant, 1.0, y - 1))


def _power_vjp_exponent(g: Any, out: Any, x: Any, y: Any) -> Any:
    # d(x**y)/dy = x**y * log(x); taken as 0 at x == 0 for y >= 0 (the limit for y > 0), as in PyTorch; for
    # y < 0 it is inf * log(0) = -inf, the limit from x > 0. NaN for real x < 0, as in JAX.
    base = np.where((plain(x) == 0) & (plain(y) >= 0), 1.0, x)
    if plain(base).dtype != plain(out).dtype:
        # The log at the precision numpy computed the power in: a float32 base under a float64 exponent
        # loses digits that a sum of the gradient can cancel down to; a real base under a complex
        # exponent needs the complex log of x < 0, as numpy took.
        base = base.astype(plain(out).dtype)
    return g * out * np.log(base)


def _power(x: Any, y: Any) -> Any:
    # np.power(x, 2) calls pow per element, twice the time of x * x, which is the same correctly rounded
    # value (ndarray's ** takes the same shortcut).
    if type(y) is int and y == 2 and type(x) is np.ndarray and x.dtype.kind == "f":
        return np.square(x)
    return np.power(x, y)


# Analytic in both arguments (the principal branch of x**y = exp(y log x) for complex values).
power = _ufunc_op(
    np.power,
    _power_vjp_base,
    _quiet(_power_vjp_exponent),
    keeps_output=True,
    forward=_power,
    complex_rule="holomorphic",
)


def _square_vjp(g: Any, out: Any, x: Any) -> Any:
    if type(x) is np.ndarray and x.size >= fused.LARGE:
        return fused.square_vjp(g, x)
    return g * (x + x)


def _sqrt_vjp(g: Any, out: Any, x: Any) -> Any:
    if type(out) is np.ndarray and out.size >= fused.LARGE:
        return fused.sqrt_vjp(g, out)
    return g / (2 * out)


square = _ufunc_op(np.square, _square_vjp, complex_rule="holomorphic")
sqrt = _ufunc_op(np.sqrt, _sqrt_vjp, shape_only=(0,), keeps_output=True, complex_rule="holomorphic")
cbrt = _ufunc_op(np.cbrt, _quiet(lambda g, out, x: g / (3 * out * out)), shape_only=(0,), keeps_output=True)
reciprocal = _ufunc_op(
    np.reciprocal,
    lambda g, out, x: -g * out * out,
    shape_only=(0,),
    keeps_output=True,
    complex_rule="holomorphic",
)


def _absolute_vjp(g: Any, out: Any, x: Any) -> Any:
    if np.iscomplexobj(x):
        # g x / |x| (0 at 0), the cotangent in PyTorch's convention.
        if type(x) is np.ndarray and type(g) is np.ndarray:
            return complex_kernels.abs_vjp(g, x)
        return g * x / np.where(plain(x) == 0, 1.0, np.abs(x))  # in ops that differentiate again
    return g * np.sign(x)


absolute = _ufunc_op(np.absolute, _absolute_vjp, complex_rule="own")
fabs = _ufunc_op(np.fabs, lambda g, out, x: g * np.sign(x))

# -- exponentials and logarithms ---------------------------------------------------------------------
exp = _ufunc_op(
    np.exp, lambda g, out, x: g * out, shape_only=(0,), keeps_output=True, complex_rule="holomorphic"
)
exp2 = _ufunc_op(
    np.exp2, lambda g, out, x: g * out * _LN2, shape_only=(0,), keeps_output=True, complex_rule="holomorphic"
)
expm1 = _ufunc_op(
    np.expm1, lambda g, out, x: g * (out + 1), shape_only=(0,), keeps_output=True, complex_rule="holomorphic"
)
log = _ufunc_op(np.log, lambda g, out, x: g / x, complex_rule="holomorphic")
log2 = _ufunc_op(np.log2, lambda g, out, x: g / (x * _LN2), complex_rule="holomorphic")
log10 = _ufunc_op(np.log10, lambda g, out, x: g / (x * _LN10), complex_rule="holomorphic")
log1p = _ufunc_op(np.log1p, lambda g, out, x: g / (1 + x), complex_rule="holomorphic")


def _log_share(x: Any, y: Any, out: Any) -> Any:
    """``x - out``, the log of x's share ``exp(x - out)`` of ``logaddexp(x, y)`` (base 2 for logaddexp2);
    0 where x alone is ``+inf`` (the limit: x takes it all), not ``inf - inf``."""
    return np.where(np.isposinf(plain(x)) & (plain(y) < np.inf), 0.0, x - out)


logaddexp = _ufunc_op(
    np.logaddexp,
    _quiet(lambda g, out, x, y: g * np.exp(_log_share(x, y, out))),
    _quiet(lambda g, out, x, y: g * np.exp(_log_share(y, x, out))),
    keeps_output=True,
)
logaddexp2 = _ufunc_op(
    np.logaddexp2,
    _quiet(lambda g, out, x, y: g * np.exp2(_log_share(x, y, out))),
    _quiet(lambda g, out, x, y: g * np.exp2(_log_share(y, x, out))),
    keeps_output=True,
)


# -- trigonometric and hyperbolic --------------------------------------------------------------------
# Large float64 arrays take the vectorized sine kernel (elementwise_kernels) for sin and cos, both ways.
def _sin(x: Any) -> Any:
    if type(x) is np.ndarray and x.size >= fused.LARGE_TRANSCENDENTAL:
        return fused.sin(x)
    return np.sin(x)


def _cos(x: Any) -> Any:
    if type(x) is np.ndarray and x.size >= fused.LARGE_TRANSCENDENTAL:
        return fused.cos(x)
    return np.cos(x)


def _sin_vjp(g: Any, out: Any, x: Any) -> Any:
    if type(x) is np.ndarray and x.size >= fused.LARGE_TRANSCENDENTAL:
        return fused.sin_vjp(g, x)
    return g * np.cos(x)


def _cos_vjp(g: Any, out: Any, x: Any) -> Any:
    if type(x) is np.ndarray and x.size >= fused.LARGE_TRANSCENDENTAL:
        return fused.cos_vjp(g, x)
    return -g * np.sin(x)


def _tanh_vjp(g: Any, out: Any, x: Any) -> Any:
    if type(out) is np.ndarray and out.size >= fused.LARGE:
        return fused.tanh_vjp(g, out)
    return g * (1 - out * out)


def _sine_with_tangent(quarter_turns: int) -> Callable[..., Any]:
    # Forward mode's joint rule of sin (0) and cos (1): the kernel's polynomials give the value and the
    # derivative at once, so the tangent costs a multiply where the forward and a VJP cost two passes.
    def joint(tangents: tuple[Any, ...], x: Any, **kwargs: Any) -> Any:
        if kwargs or type(x) is not np.ndarray or x.size < fused.LARGE_TRANSCENDENTAL:
            return None
        return fused.sine_with_tangent(x, tangents[0], quarter_turns)

    return joint


sin = _ufunc_op(np.sin, _sin_vjp, forward=_sin, complex_rule="holomorphic", forward_jvp=_sine_with_tangent(0))
cos = _ufunc_op(np.cos, _cos_vjp, forward=_cos, complex_rule="holomorphic", forward_jvp=_sine_with_tangent(1))
tan = _ufunc_op(
    np.tan,
    lambda g, out, x: g * (1 + out * out),
    shape_only=(0,),
    keeps_output=True,
    complex_rule="holomorphic",
)
arcsin = _ufunc_op(np.arcsin, _quiet(lambda g, out, x: g / np.sqrt(1 - x * x)), complex_rule="holomorphic")
arccos = _ufunc_op(np.arccos, _quiet(lambda g, out, x: -g / np.sqrt(1 - x * x)), complex_rule="holomorphic")
arctan = _ufunc_op(np.arctan, lambda g, out, x: g / (1 + x * x), complex_rule="holomorphic")
sinh = _ufunc_op(np.sinh, lambda g, out, x: g * np.cosh(x), complex_rule="holomorphic")
cosh = _ufunc_op(np.cosh, lambda g, out, x: g * np.sinh(x), complex_rule="holomorphic")
tanh = _ufunc_op(np.tanh, _tanh_vjp, shape_only=(0,), keeps_output=True, complex_rule="holomorphic")


def _arccosh_vjp(g: Any, out: Any, x: Any) -> Any:
    if plain(x).dtype.kind == "c":
        # numpy's principal arccosh is log(z + sqrt(z - 1) sqrt(z + 1)); its derivative takes the two roots
        # apart, as sqrt(z * z - 1) has the opposite sign wherever Re z < 0.
        return g / (np.sqrt(x - 1) * np.sqrt(x + 1))
    return g / np.sqrt(x * x - 1)


arcsinh = _ufunc_op(np.arcsinh, lambda g, out, x: g / np.sqrt(x * x + 1), complex_rule="holomorphic")
arccosh = _ufunc_op(np.arccosh, _quiet(_arccosh_vjp), complex_rule="holomorphic")
arctanh = _ufunc_op(np.arctanh, lambda g, out, x: g / (1 - x * x), complex_rule="holomorphic")


def _squared_radius(y: Any, x: Any) -> Any:
    """``x*x + y*y``, the denominator of arctan2's derivatives, read as ``inf`` where it is 0: the gradient
    at the origin is then 0 (signed as ``x`` and ``-y``), as in PyTorch, not 0 / 0."""
    squares = x * x + y * y
    return np.where(plain(squares) == 0, np.inf, squares)


arctan2 = _ufunc_op(
    np.arctan2,
    _quiet(lambda g, out, y, x: g * x / _squared_radius(y, x)),
    _quiet(lambda g, out, y, x: -g * y / _squared_radius(y, x)),
)
# At the origin both are 0 / 0 = nan, as in PyTorch.
hypot = _ufunc_op(
    np.hypot,
    _quiet(lambda g, out, x, y: g * x / out),
    _quiet(lambda g, out, x, y: g * y / out),
    keeps_output=True,
)
deg2rad = _ufunc_op(np.deg2rad, lambda g, out, x: g * (np.pi / 180))
rad2deg = _ufunc_op(np.rad2deg, lambda g, out, x: g * (180 / np.pi))
implements(np.radians)(deg2rad)
implements(np.degrees)(rad2deg)


# sinc'(x) = (cos(pi x) - sinc(x)) / x loses digits to cancellation near 0, where its Taylor series
# -(pi^2/3) x + (pi^4/30) x^3 - (pi^6/840) x^5 + (pi^8/45360) x^7 is exact to the dtype's precision instead.
# Both branches are numpy code, so the slope differentiates again (to sinc''(0) = -pi^2/3 and beyond).
_SINC_SLOPE_SERIES = (-(np.pi**2) / 3, np.pi**4 / 30, -(np.pi**6) / 840, np.pi**8 / 45360)
_SINC_SERIES_BELOW = {np.dtype(np.float16): 0.5, np.dtype(np.float32): 0.25, np.dtype(np.complex64): 0.25}


def _sinc_slope(x: Any) -> Any:
    """The derivative of ``np.sinc`` at ``x``: 0 at 0, finite everywhere, differentiable again."""
    near_zero = np.abs(plain(x)) < _SINC_SERIES_BELOW.get(np.result_type(plain(x)), 0.02)
    away = np.where(near_zero, 1.0, x)  # the formula's branch never sees 0, nor its derivatives a 0 / 0
    formula = (np.cos(np.pi * away) - np.sinc(away)) / away
    near = np.where(near_zero, x, 0.0)
    square = near * near
    series = near * (
        _SINC_SLOPE_SERIES[0]
        + square * (_SINC_SLOPE_SERIES[1] + square * (_SINC_SLOPE_SERIES[2] + square * _SINC_SLOPE_SERIES[3]))
    )
    return np.where(near_zero, series, formula)


def _sinc(x: Any) -> Any:
    return np.sinc(x)


# sinc is entire, and the slope (formula and series alike) is its complex derivative too.
sinc_op = Op(
    _sinc, lambda g, out, x: g * _sinc_slope(x), name="sinc", batched=True, complex_rule="holomorphic"
)


@implements(np.sinc)
def sinc(x: Any) -> Any:
    """``np.sinc`` on tensors: ``sin(pi x) / (pi x)``, 1 at 0, with a gradient that is 0 at 0.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([0.0, 0.5], requires_grad=True)
    >>> np.sum(np.sinc(x)).backward()
    >>> np.round(x.grad, 5)
    array([-0.     , -1.27324])
    """
    return sinc_op(x)


def _nan_to_num(x: Any, nan: Any = 0.0, posinf: Any = None, neginf: Any = None) -> Any:
    return np.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


def _nan_to_num_vjp(g: Any, out: Any, x: Any, nan: Any = 0.0, posinf: Any = None, neginf: Any = None) -> Any:
    # The replaced values are constants: the gradient flows through the finite elements only. numpy replaces
    # the real and imaginary parts of a complex element apart, so each part keeps its own.
    values = plain(x)
    if values.dtype.kind == "c":
        return np.real(g) * np.isfinite(values.real) + 1j * (np.imag(g) * np.isfinite(values.imag))
    return g * np.isfinite(values)


nan_to_num_op = Op(_nan_to_num, _nan_to_num_vjp, name="nan_to_num", batched=True, complex_rule="own")


@implements(np.nan_to_num)
def nan_to_num(x: Any, copy: bool = True, nan: Any = 0.0, posinf: Any = None, neginf: Any = None) -> Any:
    """``np.nan_to_num`` on tensors: NaN and infinities replaced by ``nan``, ``posinf`` and ``neginf``.

    The gradient is 1 where ``x`` is finite and 0 where a value was replaced (for complex ``x``, part by
    part, as numpy replaces them). The replacements are
    constants (a tensor that requires grad there is refused). ``copy=False`` gives a new tensor too:
    numpy replaces in place only when no conversion is needed, and a tensor is never written in place
    here, so use the returned value, as numpy's documentation advises.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, np.nan, np.inf], requires_grad=True)
    >>> y = np.nan_to_num(x, posinf=9.0)
    >>> y.data
    array([1., 0., 9.])
    >>> np.sum(y).backward()
    >>> x.grad
    array([1., 0., 0.])
    """
    replacements = {"nan": nan, "posinf": posinf, "neginf": neginf}
    for keyword, value in replacements.items():
        if isinstance(value, Tensor):
            if value.requires_grad:
                raise TypeError(
                    f"nan_to_num: {keyword}= is a constant and is not differentiated, but a tensor that "
                    f"requires grad was given; pass {keyword}={keyword}.detach() or a number"
                )
            replacements[keyword] = value._data
    return nan_to_num_op(x, **replacements)


# -- selection between two arguments -------------------------------------------------------------------
def _share_of_first(x: Any, y: Any, wins: Callable[[Any, Any], Any]) -> Any:
    """1 where x wins, 0 where y wins, 1/2 on ties: tied extrema share the cotangent evenly."""
    x, y = plain(x), plain(y)
    return np.where(x == y, 0.5, wins(x, y).astype(np.result_type(x, y, np.float16)))


def _extremum_op(ufunc: np.ufunc, x_wins: Callable[[Any, Any], Any], lower: bool, nan_wins: bool) -> Op:
    def vjp_x(g: Any, out: Any, x: Any, y: Any) -> Any:
        # np.maximum(h, 0), a ReLU written in numpy, in one pass (see elementwise_kernels).
        if type(x) is np.ndarray and x.size >= fused.LARGE and isinstance(y, int | float) and y == y:
            return fused.extremum_vjp(g, x, y, lower, nan_wins)
        return g * _share_of_first(x, y, x_wins)

    return _ufunc_op(ufunc, vjp_x, lambda g, out, x, y: g * (1 - _share_of_first(x, y, x_wins)))


maximum = _extremum_op(np.maximum, lambda x, y: (x > y) | np.isnan(x), lower=False, nan_wins=True)
minimum = _extremum_op(np.minimum, lambda x, y: (x < y) | np.isnan(x), lower=True, nan_wins=True)
# fmax/fmin ignore a NaN: the other argument wins.
fmax = _extremum_op(np.fmax, lambda x, y: (x > y) | np.isnan(y), lower=False, nan_wins=False)
fmin = _extremum_op(np.fmin, lambda x, y: (x < y) | np.isnan(y), lower=True, nan_wins=False)

# -- piecewise constant: zero gradient -----------------------------------------------------------------
# The zero gradient is every convention's, so rint and round take complex values as they are ("own").
sign = _ufunc_op(np.sign, _zero)
floor = _ufunc_op(np.floor, _zero)
ceil = _ufunc_op(np.ceil, _zero)
trunc = _ufunc_op(np.trunc, _zero)
rint = _ufunc_op(np.rint, _zero, complex_rule="own")


def _complex_sign_vjp(g: Any, out: Any, z: Any) -> Any:
    # sign(z) = z / |z| = s is not analytic: its cotangent is (g - conj(g) s^2) / (2|z|), which is
    # i s Im(g conj(s)) / |z|; 0 at 0, as PyTorch's sgn.
    origin = plain(z) == 0
    magnitude = np.where(origin, 1.0, np.abs(z))
    direction = z / magnitude
    return np.where(origin, 0, 1j * direction * np.imag(g * np.conj(direction)) / magnitude)


complex_sign = Op(np.sign, _complex_sign_vjp, name="sign", batched=True, complex_rule="own")


@implements(np.sign)
def sign_of(x: Any) -> Any:
    """``np.sign`` on tensors: flat (a zero gradient) for real values; ``z / |z|`` for complex ones (numpy 2),
    whose gradient is PyTorch's ``sgn``'s.

    Examples
    --------
    >>> import numpy as np, tape
    >>> z = tape.tensor([3 + 4j], requires_grad=True)
    >>> np.real(np.sign(z)).backward(np.ones(1))
    >>> z.grad
    array([0.128-0.096j])
    """
    values = x._data if isinstance(x, Tensor) else np.asarray(x)
    return complex_sign(x) if values.dtype.kind == "c" else sign(x)


conjugate = _ufunc_op(
    np.conjugate, lambda g, out, x: np.conjugate(g) if np.iscomplexobj(g) else g, complex_rule="own"
)


def _round(x: Any, decimals: int = 0) -> Any:
    return np.round(x, decimals)


round_ = Op(_round, _zero, name="round", batched=True, complex_rule="own")
implements(np.round, np.around)(round_)


def _clip(x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    return np.clip(x, a_min, a_max)


def _inside(x: Any, a_min: Any, a_max: Any) -> Any:
    # Not in place: bounds of a larger shape broadcast x, so ``inside`` takes the output's shape.
    inside = np.ones(np.shape(x), dtype=bool)
    if a_min is not None:
        inside = inside & (plain(x) >= plain(a_min))
    if a_max is not None:
        inside = inside & (plain(x) <= plain(a_max))
    return inside


clip_op = Op(
    _clip,
    lambda g, out, x, a_min=None, a_max=None: g * _inside(x, a_min, a_max),
    lambda g, out, x, a_min=None, a_max=None: g * (plain(x) < plain(a_min)),
    lambda g, out, x, a_min=None, a_max=None: g * (plain(x) > plain(a_max)),
    name="clip",
    batched=True,
)


@implements(np.clip)
def clip(a: Any, a_min: Any = None, a_max: Any = None, **kwargs: Any) -> Any:
    """``np.clip`` on tensors; the bounds may be tensors too (they get the cotangent where they bind)."""
    a_min = kwargs.pop("min", a_min)
    a_max = kwargs.pop("max", a_max)
    if kwargs:
        raise TypeError(f"numpy.clip: keyword argument(s) {sorted(kwargs)} are not supported on tape tensors")
    return clip_op(a, a_min, a_max)


# -- dtype ----------------------------------------------------------------------------------------------
def _astype(x: Any, dtype: Any) -> Any:
    return x.astype(dtype)


# The cotangent fits the input's dtype in the engine: a real input of a complex cast takes its real part.
astype = Op(
    _astype, lambda g, out, x, dtype: g, name="astype", shape_only=(0,), batched=True, complex_rule="own"
)
implements(np.ndarray.astype)(astype)


def _copy(x: Any, order: str = "K", subok: bool = False) -> Any:
    return np.array(x, copy=True, order=order)


copy = Op(
    _copy,
    lambda g, out, x, order="K", subok=False: g,
    name="copy",
    shape_only=(0,),
    batched=True,
    complex_rule="holomorphic",
)
implements(np.copy)(copy)


# -- in place: ``t += v`` writes ``add(t, v)`` into t's buffer, recorded (tape.inplace) ----------------------
for _in_place, _op in (
    (operator.iadd, add),
    (operator.isub, subtract),
    (operator.imul, multiply),
    (operator.itruediv, divide),
    (operator.ifloordiv, floor_divide),
    (operator.imod, remainder),
    (operator.ipow, power),
):
    implements(_in_place)(partial(apply_in_place, _op))


# -- scalar formulas, for the fused kernels of tape.compile ---------------------------------------------
# forward(*args), then one VJP per argument, on scalars (numba's nopython subset); each mirrors the op's numpy
# VJP above, including its choices at ties (maximum and minimum share the cotangent evenly) and at 0.
for _op, _formulas in {
    add: (lambda x, y: x + y, lambda g, out, x, y: g, lambda g, out, x, y: g),
    subtract: (lambda x, y: x - y, lambda g, out, x, y: g, lambda g, out, x, y: -g),
    multiply: (lambda x, y: x * y, lambda g, out, x, y: g * y, lambda g, out, x, y: g * x),
    divide: (lambda x, y: x / y, lambda g, out, x, y: g / y, lambda g, out, x, y: -g * out / y),
    negative: (lambda x: -x, lambda g, out, x: -g),
    square: (lambda x: x * x, lambda g, out, x: g * (x + x)),
    sqrt: (lambda x: np.sqrt(x), lambda g, out, x: g / (2 * out)),
    power: (
        lambda x, y: x**y,
        lambda g, out, x, y: g * (y * x ** (y - 1)) if y != 0 else g * 0,
        lambda g, out, x, y: g * out * np.log(1.0 if x == 0 and y >= 0 else x),
    ),
    exp: (lambda x: np.exp(x), lambda g, out, x: g * out),
    log: (lambda x: np.log(x), lambda g, out, x: g / x),
    sin: (lambda x: np.sin(x), lambda g, out, x: g * np.cos(x)),
    cos: (lambda x: np.cos(x), lambda g, out, x: -g * np.sin(x)),
    tanh: (lambda x: np.tanh(x), lambda g, out, x: g * (1 - out * out)),
    # np.clip is minimum(maximum(x, a_min), a_max): NaN in x or in a bound gives NaN; a tie is inside.
    clip_op: (
        lambda x, lo, hi: (
            hi if (x if x >= lo or x != x else lo) > hi or hi != hi else (x if x >= lo or x != x else lo)
        ),
        lambda g, out, x, lo, hi: g * (1.0 if x >= lo and x <= hi else 0.0),
        lambda g, out, x, lo, hi: g * (1.0 if x < lo else 0.0),
        lambda g, out, x, lo, hi: g * (1.0 if x > hi else 0.0),
    ),
    maximum: (
        lambda x, y: x if x >= y or x != x else y,
        lambda g, out, x, y: g * (0.5 if x == y else (1.0 if x > y or x != x else 0.0)),
        lambda g, out, x, y: g * (0.5 if x == y else (0.0 if x > y or x != x else 1.0)),
    ),
    minimum: (
        lambda x, y: x if x <= y or x != x else y,
        lambda g, out, x, y: g * (0.5 if x == y else (1.0 if x < y or x != x else 0.0)),
        lambda g, out, x, y: g * (0.5 if x == y else (0.0 if x < y or x != x else 1.0)),
    ),
}.items():
    SCALAR_FORMULAS[_op] = (_formulas[0], _formulas[1:])

"""scipy.special's ufuncs on tensors: ``scipy.special.gammaln(t)`` runs the op registered here for it.

``import tape`` does not import this module, nor scipy: ``tape.dispatch`` imports it the first time a
scipy.special ufunc meets a tensor, and importing it registers every op below, keyed by the ufunc object.
Each forward is scipy's own ufunc, so values and dtypes are scipy's; each VJP is written with numpy and
scipy.special calls, so under ``create_graph`` it runs on tensors and records its own derivative.

``polygamma`` is a Python function in scipy, not a ufunc, so it does not dispatch: its op is ``polygamma``
here (``tape.scipy.special.polygamma``). Arguments that are integers or parameters (polygamma's ``n``,
gammainc's ``a``) have no gradient; one that requires grad is refused at the call. This module must not
hold ops that numpy alone can compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sc

from tape.grad_mode import state
from tape.op import Op
from tape.registry import implements
from tape.tensor import Tensor, plain

__all__ = ["REGISTERED", "polygamma"]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_HALF_SQRT_PI = math.sqrt(math.pi) / 2.0
_ONE_OVER_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _ufunc_op(ufunc: np.ufunc, *vjps: Callable[..., Any] | None) -> Op:
    """The op for the scipy.special ``ufunc``, run by ``ufunc(tensor)``."""
    op = Op(ufunc, *vjps, name=f"scipy.special.{ufunc.__name__}", batched=True)
    implements(ufunc)(op)
    return op


def _refuse_grad(name: str, argument: str, value: Any, differentiable: str) -> None:
    if isinstance(value, Tensor) and value.requires_grad and state.grad_enabled:
        raise TypeError(
            f"scipy.special.{name}: its argument {argument} requires grad, but {name} is differentiable in "
            f"{differentiable} only; pass {argument} detached ({argument}.detach()) or as an array"
        )


def _nonzero_or_one(x: Any) -> Any:
    """``x`` with its zeros replaced by 1, so that a quotient by it stays finite where another branch of
    ``np.where`` is taken: an inf there would turn that branch's zero cotangent into nan (0 * inf)."""
    return np.where(plain(x) == 0, 1.0, x)


def _polygamma(n: Any, x: Any) -> Any:
    return sc.polygamma(n, x)


_polygamma_op = Op(
    _polygamma, None, lambda g, out, n, x: g * polygamma(n + 1, x), name="scipy.special.polygamma"
)


def polygamma(n: Any, x: Any) -> Any:
    """The ``n``-th derivative of the digamma function at ``x``, differentiable in ``x``.

    Parameters
    ----------
    n : non-negative integer (or integer array), not differentiable.
    x : tensor or array.

    Returns
    -------
    ``scipy.special.polygamma(n, x)``: a tensor for tensor inputs, an array for arrays. Its derivative in
    ``x`` is ``polygamma(n + 1, x)``.

    Examples
    --------
    >>> import numpy as np
    >>> polygamma(1, np.array([1.0])).round(6)
    array([1.644934])
    """
    _refuse_grad("polygamma", "n", n, "x")
    return _polygamma_op(n, x)


def _incomplete_gamma_density(a: Any, x: Any) -> Any:
    """``x**(a-1) exp(-x) / gamma(a)``, the derivative of ``gammainc(a, x)`` in ``x``, in logs."""
    return np.exp(sc.xlogy(a - 1, x) - x - sc.gammaln(a))


def _gammainc_op(ufunc: np.ufunc, sign: float) -> Callable[..., Any]:
    op = Op(
        ufunc,
        None,
        lambda g, out, a, x: g * (sign * _incomplete_gamma_density(a, x)),
        name=f"scipy.special.{ufunc.__name__}",
        batched=True,
    )

    def regularized_incomplete_gamma(a: Any, x: Any) -> Any:
        _refuse_grad(ufunc.__name__, "a", a, "its second argument x")
        return op(a, x)

    implements(ufunc)(regularized_incomplete_gamma)
    return regularized_incomplete_gamma


def _i1_vjp(g: Any, out: Any, x: Any) -> Any:
    # i1'(x) = i0(x) - i1(x)/x, whose limit at 0 is 1/2.
    return g * np.where(plain(x) == 0, 0.5, sc.i0(x) - out / _nonzero_or_one(x))


def _i1e_vjp(g: Any, out: Any, x: Any) -> Any:
    # i1e = exp(-|x|) i1(x): i1e'(x) = i0e(x) - i1e(x) (sign(x) + 1/x), whose limit at 0 is 1/2.
    return g * np.where(plain(x) == 0, 0.5, sc.i0e(x) - out * (np.sign(x) + 1 / _nonzero_or_one(x)))


def _xlogy_vjp_x(g: Any, out: Any, x: Any, y: Any) -> Any:
    # log(y), taken as 0 where x == 0 (xlogy is 0 there whatever y is), as in PyTorch.
    return g * sc.xlogy(plain(x) != 0, y)


def _xlog1py_vjp_x(g: Any, out: Any, x: Any, y: Any) -> Any:
    return g * sc.xlog1py(plain(x) != 0, y)


# -- gamma and its logarithmic derivatives ---------------------------------------------------------------
gammaln = _ufunc_op(sc.gammaln, lambda g, out, x: g * sc.digamma(x))
digamma = _ufunc_op(sc.digamma, lambda g, out, x: g * polygamma(1, x))
betaln = _ufunc_op(
    sc.betaln,
    lambda g, out, a, b: g * (sc.digamma(a) - sc.digamma(a + b)),
    lambda g, out, a, b: g * (sc.digamma(b) - sc.digamma(a + b)),
)
gammainc = _gammainc_op(sc.gammainc, 1.0)
gammaincc = _gammainc_op(sc.gammaincc, -1.0)

# -- logistic --------------------------------------------------------------------------------------------
expit = _ufunc_op(sc.expit, lambda g, out, x: g * (out * (1 - out)))
logit = _ufunc_op(sc.logit, lambda g, out, x: g / (x * (1 - x)))
log_expit = _ufunc_op(sc.log_expit, lambda g, out, x: g * sc.expit(-x))

# -- x log y and entropies -------------------------------------------------------------------------------
xlogy = _ufunc_op(sc.xlogy, _xlogy_vjp_x, lambda g, out, x, y: g * x / y)
xlog1py = _ufunc_op(sc.xlog1py, _xlog1py_vjp_x, lambda g, out, x, y: g * x / (1 + y))
entr = _ufunc_op(sc.entr, lambda g, out, x: -g * (np.log(x) + 1))
rel_entr = _ufunc_op(
    sc.rel_entr, lambda g, out, x, y: g * (np.log(x / y) + 1), lambda g, out, x, y: -g * x / y
)
kl_div = _ufunc_op(sc.kl_div, lambda g, out, x, y: g * np.log(x / y), lambda g, out, x, y: g * (1 - x / y))

# -- error functions and the normal distribution ---------------------------------------------------------
erf = _ufunc_op(sc.erf, lambda g, out, x: g * (_TWO_OVER_SQRT_PI * np.exp(-(x * x))))
erfc = _ufunc_op(sc.erfc, lambda g, out, x: g * (-_TWO_OVER_SQRT_PI * np.exp(-(x * x))))
erfinv = _ufunc_op(sc.erfinv, lambda g, out, x: g * (_HALF_SQRT_PI * np.exp(out * out)))
erfcinv = _ufunc_op(sc.erfcinv, lambda g, out, x: g * (-_HALF_SQRT_PI * np.exp(out * out)))
erfcx = _ufunc_op(sc.erfcx, lambda g, out, x: g * (2 * x * out - _TWO_OVER_SQRT_PI))
ndtr = _ufunc_op(sc.ndtr, lambda g, out, x: g * (_ONE_OVER_SQRT_2PI * np.exp(-(x * x) / 2)))
# The density over ndtr(x) as exp(-x^2/2 - log_ndtr(x)): finite where ndtr(x) and the density underflow.
log_ndtr = _ufunc_op(sc.log_ndtr, lambda g, out, x: g * (_ONE_OVER_SQRT_2PI * np.exp(-(x * x) / 2 - out)))
ndtri = _ufunc_op(sc.ndtri, lambda g, out, x: g * (_SQRT_2PI * np.exp(out * out / 2)))

# -- modified Bessel functions ---------------------------------------------------------------------------
i0 = _ufunc_op(sc.i0, lambda g, out, x: g * sc.i1(x))
i0e = _ufunc_op(sc.i0e, lambda g, out, x: g * (sc.i1e(x) - np.sign(x) * out))
i1 = _ufunc_op(sc.i1, _i1_vjp)
i1e = _ufunc_op(sc.i1e, _i1e_vjp)

#: The scipy.special ufuncs this module registers, in the order above.
REGISTERED = (
    *(sc.gammaln, sc.digamma, sc.betaln, sc.gammainc, sc.gammaincc, sc.expit, sc.logit, sc.log_expit),
    *(sc.xlogy, sc.xlog1py, sc.entr, sc.rel_entr, sc.kl_div, sc.erf, sc.erfc, sc.erfinv, sc.erfcinv),
    *(sc.erfcx, sc.ndtr, sc.log_ndtr, sc.ndtri, sc.i0, sc.i0e, sc.i1, sc.i1e),
)

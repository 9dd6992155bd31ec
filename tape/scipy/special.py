"""``scipy.special`` on tensors: differentiable twins of its functions that are not ufuncs, and its ufuncs.

``logsumexp``, ``softmax``, ``log_softmax`` and ``polygamma`` take scipy's signatures and run tape's ops,
so they record on tensors and give arrays for arrays. The ufuncs (``gammaln``, ``erf``, ``xlogy``, ...)
are scipy's own objects, re-exported: called on tensors they dispatch to ``tape.ops.scipy_special``'s ops.
Importing this module imports scipy; ``import tape`` does not import this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import (  # type: ignore[import-untyped]
    betaln,
    digamma,
    entr,
    erf,
    erfc,
    erfcinv,
    erfcx,
    erfinv,
    expit,
    gammainc,
    gammaincc,
    gammaln,
    i0,
    i0e,
    i1,
    i1e,
    kl_div,
    log_expit,
    log_ndtr,
    logit,
    ndtr,
    ndtri,
    psi,
    rel_entr,
    xlog1py,
    xlogy,
)

from tape.ops import special as _special
from tape.ops.scipy_special import polygamma
from tape.tensor import plain

__all__ = [
    "betaln",
    "digamma",
    "entr",
    "erf",
    "erfc",
    "erfcinv",
    "erfcx",
    "erfinv",
    "expit",
    "gammainc",
    "gammaincc",
    "gammaln",
    "i0",
    "i0e",
    "i1",
    "i1e",
    "kl_div",
    "log_expit",
    "log_ndtr",
    "log_softmax",
    "logit",
    "logsumexp",
    "ndtr",
    "ndtri",
    "polygamma",
    "psi",
    "rel_entr",
    "softmax",
    "xlog1py",
    "xlogy",
]

Axis = int | tuple[int, ...] | None


def logsumexp(
    a: Any, axis: Axis = None, b: Any = None, keepdims: bool = False, return_sign: bool = False
) -> Any:
    """``log(sum(b * exp(a)))`` over ``axis``, as ``scipy.special.logsumexp``, differentiable in a and b.

    Parameters
    ----------
    a : tensor or array.
    axis : None (all axes, as in scipy), an int or a tuple of ints.
    b : optional non-negative weights broadcasting against ``a``.
    keepdims : keep the reduced axes with length one.
    return_sign : as scipy's: return ``(log|sum|, sign of the sum)``, for weights ``b`` of either sign; the
        logarithm is differentiable (the sign, a constant, is a plain array).

    Returns
    -------
    ``tape.logsumexp(a, axis, keepdims, b)``: a tensor for tensor inputs, an array for arrays.

    Examples
    --------
    >>> import numpy as np, tape, tape.scipy.special
    >>> x = tape.tensor([0.0, np.log(3.0)], requires_grad=True)
    >>> tape.scipy.special.logsumexp(x).backward()
    >>> x.grad
    array([0.25, 0.75])
    """
    if return_sign:
        return _logsumexp_with_sign(a, axis, b, keepdims)
    return _special.logsumexp(a, axis=axis, keepdims=keepdims, b=b)


def _logsumexp_with_sign(a: Any, axis: Axis, b: Any, keepdims: bool) -> tuple[Any, Any]:
    """``(log|sum(b exp(a))|, sign of the sum)``, as scipy's ``return_sign=True``: the sum is taken shifted
    by the (constant) largest ``a``, so it neither overflows nor loses the sign of negative weights."""
    shift = np.max(plain(a), axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    terms = np.exp(a - shift) if b is None else b * np.exp(a - shift)
    total = np.sum(terms, axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):  # a zero sum: log 0 = -inf, sign 0, as scipy gives
        log_magnitude = np.log(np.abs(total)) + shift
    sign = np.sign(plain(total))
    if not keepdims:
        log_magnitude, sign = np.squeeze(log_magnitude, axis=axis), np.squeeze(sign, axis=axis)
    return log_magnitude, sign


def softmax(x: Any, axis: Axis = None) -> Any:
    """``exp(x) / sum(exp(x))`` over ``axis``, as ``scipy.special.softmax``: all axes when ``axis`` is None.

    Parameters
    ----------
    x : tensor or array.
    axis : None (all axes, as in scipy; ``tape.softmax`` defaults to the last), an int or a tuple of ints.

    Returns
    -------
    A tensor for tensor inputs, an array for arrays, of ``x``'s shape.

    Examples
    --------
    >>> import numpy as np, tape.scipy.special
    >>> tape.scipy.special.softmax(np.array([[0.0], [np.log(3.0)]]))
    array([[0.25],
           [0.75]])
    """
    return _special.softmax(x, axis=axis)


def log_softmax(x: Any, axis: Axis = None) -> Any:
    """``x - logsumexp(x)`` over ``axis``, as ``scipy.special.log_softmax``: all axes when ``axis`` is None.

    Parameters
    ----------
    x : tensor or array.
    axis : None (all axes, as in scipy; ``tape.log_softmax`` defaults to the last), an int or a tuple.

    Returns
    -------
    A tensor for tensor inputs, an array for arrays, of ``x``'s shape.

    Examples
    --------
    >>> import numpy as np, tape.scipy.special
    >>> np.exp(tape.scipy.special.log_softmax(np.array([[0.0], [np.log(3.0)]])))
    array([[0.25],
           [0.75]])
    """
    return _special.log_softmax(x, axis=axis)

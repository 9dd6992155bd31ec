"""``scipy.special`` on tensors: differentiable twins of its functions that are not ufuncs, and its ufuncs.

``logsumexp``, ``softmax``, ``log_softmax`` and ``polygamma`` take scipy's signatures and run tape's ops,
so they record on tensors and give arrays for arrays. The ufuncs (``gammaln``, ``erf``, ``xlogy``, ...)
are scipy's own objects, re-exported: called on tensors they dispatch to ``tape.ops.scipy_special``'s ops.
Importing this module imports scipy; ``import tape`` does not import this module.
"""

from __future__ import annotations

from typing import Any

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
    return_sign : must be False: the sign of a sum with negative weights is not supported on tensors.

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
        raise NotImplementedError(
            "tape.scipy.special.logsumexp: return_sign=True is not supported (the sign of a sum with "
            "negative weights b has no gradient here); use return_sign=False with non-negative b"
        )
    return _special.logsumexp(a, axis=axis, keepdims=keepdims, b=b)


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

"""numpy calls on tensors whose results carry no gradient: comparisons, predicates, queries, constants.

They run on the data. Comparisons and predicates return boolean tensors; queries of shape and closeness
return what numpy returns; ``zeros_like`` and friends, and the integer queries ``searchsorted``,
``digitize``, ``bincount`` and ``histogram``'s counts, return constant tensors. None of them is recorded,
except the one part that is linear in data: the weights of ``bincount`` and ``histogram``, summed into
bins, whose cotangent is the bin's cotangent picked back out (``g[x]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape.op import Op
from tape.registry import implements
from tape.tensor import Tensor


def _data(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value._data
    if type(value) in (list, tuple):
        return type(value)(_data(item) for item in value)
    return value


def _on_data(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` on the data of its arguments and return its result as numpy gives it."""

    def handler(*args: Any, **kwargs: Any) -> Any:
        return func(*_data(args), **{key: _data(value) for key, value in kwargs.items()})

    handler.__name__ = func.__name__
    return handler


def _as_constant_tensor(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` on the data and wrap an array result in a tensor that does not require grad."""

    def handler(*args: Any, **kwargs: Any) -> Any:
        result = func(*_data(args), **{key: _data(value) for key, value in kwargs.items()})
        if type(result) is tuple:
            return tuple(Tensor(item) for item in result)
        return Tensor(result)

    handler.__name__ = func.__name__
    return handler


for _ufunc in (
    np.less,
    np.less_equal,
    np.greater,
    np.greater_equal,
    np.equal,
    np.not_equal,
    np.logical_and,
    np.logical_or,
    np.logical_xor,
    np.logical_not,
    np.bitwise_and,
    np.bitwise_or,
    np.bitwise_xor,
    np.invert,
    np.isnan,
    np.isinf,
    np.isfinite,
    np.signbit,
):
    # No VJP: the results are boolean, so they are never recorded.
    implements(_ufunc)(Op(_ufunc, name=_ufunc.__name__))

for _func in (np.shape, np.ndim, np.size, np.allclose, np.array_equal, np.iscomplexobj, np.isrealobj):
    implements(_func)(_on_data(_func))


def _query_op(func: Callable[..., Any]) -> Op:
    """An op without VJPs for a query of the data whose result (integers, booleans) carries no gradient:
    nothing records it, but ``tape.compile``'s tracer sees it as a step, so a replay asks again of the new
    values rather than reusing the first answer (an index from ``argmax``, a mask from ``isclose``)."""

    def forward(*args: Any, **kwargs: Any) -> Any:
        return func(*_data(args), **{key: _data(value) for key, value in kwargs.items()})

    forward.__name__ = func.__name__
    return Op(forward, name=func.__name__)


for _func in (
    np.isclose,
    np.all,
    np.any,
    np.argmax,
    np.argmin,
    np.argsort,
    np.nonzero,
    np.count_nonzero,
    np.searchsorted,
    np.digitize,
):
    implements(_func)(_query_op(_func))

# Their values do not depend on the data: a replay's constants are right.
for _func in (np.zeros_like, np.ones_like, np.empty_like, np.full_like):
    implements(_func)(_as_constant_tensor(_func))


# -- weighted counts: differentiable in the weights ------------------------------------------------------
def _bincount(x: Any, weights: Any, minlength: int = 0) -> Any:
    return np.bincount(x, weights, minlength)


# out[b] = sum of weights[i] over x[i] == b, so weights[i] gets g[x[i]].
bincount_op = Op(_bincount, None, lambda g, out, x, weights, minlength=0: g[x], name="bincount")


@implements(np.bincount)
def bincount(x: Any, weights: Any = None, minlength: int = 0) -> Any:
    """``np.bincount`` on tensors: counts are constant integers; with ``weights`` the sums are float64, as
    numpy gives them, and differentiable in the weights.

    Examples
    --------
    >>> import numpy as np, tape
    >>> w = tape.tensor([0.5, 1.0, 2.0], requires_grad=True)
    >>> np.sum(np.bincount(np.array([0, 2, 2]), w) ** 2).backward()
    >>> w.grad
    array([1., 6., 6.])
    """
    if weights is None:
        return Tensor(np.bincount(_data(x), minlength=_data(minlength)))
    return bincount_op(_data(x), weights, minlength=_data(minlength))


def _weighted_histogram(weights: Any, a: Any, bins: Any, range_: Any) -> Any:
    return np.histogram(a, bins, range_, weights=weights)[0]


def _weighted_histogram_vjp(g: Any, out: Any, weights: Any, a: Any, bins: Any, range_: Any) -> Any:
    # numpy's bins are [edge_k, edge_k+1), the last one closed; values outside the edges count nowhere.
    edges = np.histogram_bin_edges(a, bins, range_)
    bin_of = np.searchsorted(edges, a, side="right") - 1
    bin_of = np.where(a == edges[-1], len(edges) - 2, bin_of)
    counted = (bin_of >= 0) & (bin_of < len(edges) - 1)
    return np.where(counted, g[np.where(counted, bin_of, 0)], 0)


weighted_histogram = Op(
    _weighted_histogram, _weighted_histogram_vjp, None, None, None, name="histogram", shape_only=(0,)
)


@implements(np.histogram)
def histogram(a: Any, bins: Any = 10, range: Any = None, density: Any = None, weights: Any = None) -> Any:
    """``np.histogram`` on tensors: the counts and edges are constant tensors (``a`` is not differentiated);
    with ``weights`` the weighted counts (and densities) are differentiable in the weights.

    Examples
    --------
    >>> import numpy as np, tape
    >>> w = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> counts, edges = np.histogram(np.array([0.1, 0.2, 0.9]), bins=2, range=(0, 1), weights=w)
    >>> counts.data
    array([3., 3.])
    """
    a, bins, range = _data(a), _data(bins), _data(range)
    if not isinstance(weights, Tensor):
        counts, edges = np.histogram(a, bins, range, density, weights)
        return Tensor(counts), Tensor(edges)
    edges = np.histogram_bin_edges(a, bins, range)
    counts = weighted_histogram(weights, a, bins, range)
    if density:
        widths = np.array(np.diff(edges), float)  # numpy divides in float64
        return counts / widths / np.sum(counts), Tensor(edges)
    return counts, Tensor(edges)

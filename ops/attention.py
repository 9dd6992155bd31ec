"""Scaled dot-product attention, ``softmax(q @ k.T * scale + mask) @ v``, as one op with its own VJP.

The forward subtracts each row's maximum before exponentiating (huge scores do not overflow, ``-inf``
scores are exact zeros of probability) and keeps the attention weights, which is all the VJPs need besides
the inputs. The op has two outputs, the result and the weights, so that a VJP that reads the weights is
itself recorded under ``create_graph`` and differentiates again (``tape.gradgradcheck``).

A row whose every score is masked out attends to nothing: its weights are 0, its output row is 0 and its
gradients are 0, as in PyTorch's ``scaled_dot_product_attention`` (2.13; older versions, and torch's
``MultiheadAttention`` when it returns weights, give nan there, which then spreads through any loss).

No numba kernel: three batched matrix products dominate the time, and numpy hands them to the BLAS; the
softmax between them runs in place on the scores. This module must not hold layers (``tape.nn.attention``
does) nor import ``tape.nn``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tape.op import Op
from tape.tensor import Tensor
from tape.tracing import random_values

from .nn import refuse_grad

__all__ = ["scaled_dot_product_attention"]

_NAME = "scaled_dot_product_attention"


def _data(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _weights_of(scores: np.ndarray) -> np.ndarray:
    """Softmax along the last axis of a fresh array of scores, in place; an all ``-inf`` row becomes 0."""
    largest = np.max(scores, axis=-1, keepdims=True, initial=-np.inf)
    scores -= np.where(np.isfinite(largest), largest, 0).astype(scores.dtype)
    np.exp(scores, out=scores)
    total = np.sum(scores, axis=-1, keepdims=True)
    total[total == 0] = 1  # a fully masked row: 0 / 1 = 0 rather than 0 / 0
    scores /= total
    return scores


def _attention(query: Any, key: Any, value: Any, bias: Any, keep: Any, scale: float) -> tuple[Any, Any]:
    with np.errstate(invalid="ignore"):  # -inf - finite is -inf, whose exp is the right 0
        scores = np.matmul(query * query.dtype.type(scale), np.swapaxes(key, -1, -2))
        if bias is not None:
            scores = scores + bias
        weights = _weights_of(scores)
    attended = weights if keep is None else weights * keep
    return np.matmul(attended, value), weights


def _attention_backward(
    g: Any, out: Any, query: Any, key: Any, value: Any, bias: Any, keep: Any, scale: float
) -> tuple[Any, ...]:
    g_out, g_weights = g
    weights = out[1]
    attended = weights if keep is None else weights * keep
    g_attended = np.matmul(g_out, np.swapaxes(value, -1, -2))
    g_probabilities = (g_attended if keep is None else g_attended * keep) + g_weights
    g_scores = weights * (g_probabilities - np.sum(g_probabilities * weights, axis=-1, keepdims=True))
    return (
        np.matmul(g_scores, key) * scale,
        np.matmul(np.swapaxes(g_scores, -1, -2), query) * scale,
        np.matmul(np.swapaxes(attended, -1, -2), g_out),
        None if bias is None else g_scores,
        None,
    )


#: ``(query, key, value, bias, keep, scale=...) -> (output, weights)``: ``bias`` is an additive float mask
#: (or None), ``keep`` the dropout's constant factors (0 or ``1 / (1 - p)``, or None), ``weights`` the
#: softmax before dropout. Every check and every mask conversion is ``scaled_dot_product_attention``'s.
attention_op = Op(_attention, backward=_attention_backward, name=_NAME, shape_only=(3,))


def _describe(name: str, shape: tuple[int, ...]) -> str:
    return f"{name} of shape {shape}"


def _check_inputs(query: Any, key: Any, value: Any) -> tuple[np.dtype, tuple[int, ...], int, int, int]:
    """The dtype, the broadcast batch shape, L, S and E of valid inputs; a ValueError or TypeError else."""
    shapes = {name: np.shape(_data(x)) for name, x in (("query", query), ("key", key), ("value", value))}
    for name, shape in shapes.items():
        if len(shape) < 2:
            raise ValueError(
                f"{_NAME}: {name} must have at least 2 axes (..., length, features), got shape {shape}"
            )
    dtypes = {
        name: np.asarray(_data(x)).dtype for name, x in (("query", query), ("key", key), ("value", value))
    }
    for name, dtype in dtypes.items():
        if dtype.kind != "f":
            raise TypeError(f"{_NAME}: {name} must be floating point, got dtype {dtype.name}")
    if len(set(dtypes.values())) > 1:
        given = ", ".join(f"{name} {dtype.name}" for name, dtype in dtypes.items())
        raise TypeError(f"{_NAME}: query, key and value must share one dtype, got {given}")
    q, k, v = shapes["query"], shapes["key"], shapes["value"]
    if q[-1] != k[-1]:
        raise ValueError(
            f"{_NAME}: {_describe('query', q)} and {_describe('key', k)} do not align "
            f"(their last axes, the embedding sizes, {q[-1]} != {k[-1]})"
        )
    if k[-2] != v[-2]:
        raise ValueError(
            f"{_NAME}: {_describe('key', k)} and {_describe('value', v)} do not align "
            f"(their source lengths, axis -2, {k[-2]} != {v[-2]})"
        )
    try:
        batch = np.broadcast_shapes(q[:-2], k[:-2], v[:-2])
    except ValueError:
        raise ValueError(
            f"{_NAME}: the batch axes of {_describe('query', q)}, {_describe('key', k)} and "
            f"{_describe('value', v)} (all but the last two) do not broadcast"
        ) from None
    return dtypes["query"], batch, q[-2], k[-2], q[-1]


def _additive_mask(attn_mask: Any, dtype: np.dtype, batch: tuple[int, ...], length: int, source: int) -> Any:
    """``attn_mask`` as an additive float mask of ``dtype``: a boolean one (True takes part) as 0 and
    ``-inf``, a float one as given (a tensor stays differentiable)."""
    mask = _data(attn_mask)
    shape = np.shape(mask)
    try:
        np.broadcast_shapes(shape, (*batch, length, source))
    except ValueError:
        raise ValueError(
            f"{_NAME}: attn_mask of shape {shape} does not broadcast to the attention scores' shape "
            f"{(*batch, length, source)} (batch axes, target length, source length)"
        ) from None
    mask_dtype = np.asarray(mask).dtype
    if mask_dtype == np.bool_:
        refuse_grad(_NAME, "attn_mask", attn_mask, "it is a boolean mask")
        return np.where(mask, dtype.type(0), dtype.type(-np.inf))
    if mask_dtype.kind != "f":
        raise TypeError(f"{_NAME}: attn_mask must be boolean or floating point, got dtype {mask_dtype.name}")
    if isinstance(attn_mask, Tensor):
        if mask_dtype != dtype:
            raise TypeError(
                f"{_NAME}: a float attn_mask must have the query's dtype {dtype.name}, got {mask_dtype.name}"
            )
        return attn_mask
    return np.asarray(mask, dtype=dtype)


def _causal_mask(dtype: np.dtype, length: int, source: int) -> np.ndarray:
    """0 on and below the diagonal (aligned to the top-left corner, as torch's), ``-inf`` above."""
    allowed = np.tril(np.ones((length, source), dtype=bool))
    return np.where(allowed, dtype.type(0), dtype.type(-np.inf))


def scaled_dot_product_attention(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    rng: np.random.Generator | None = None,
    need_weights: bool = False,
) -> Any:
    """``softmax(query @ key.T * scale + mask) @ value``, as ``torch.nn.functional``'s, recorded as one op.

    Parameters
    ----------
    query : tensor or array of shape ``(..., L, E)``.
    key : shape ``(..., S, E)``.
    value : shape ``(..., S, Ev)``. The batch axes ``...`` of the three broadcast against each other.
    attn_mask : optional, broadcasting to ``(..., L, S)``: boolean (True where a query may attend to a key,
        as torch) or float, added to the scores (a tensor that requires grad gets a gradient).
    dropout_p : probability of zeroing each attention weight (the others are scaled by
        ``1 / (1 - dropout_p)``); applied whenever it is above 0, as in torch, from a constant mask drawn
        from ``rng`` (a fresh default generator when None).
    is_causal : query ``i`` attends to keys ``0..i`` only (the mask's top-left corner is aligned, as in
        torch); cannot be combined with ``attn_mask``.
    scale : the factor of the scores, ``1 / sqrt(E)`` by default.
    need_weights : also return the attention weights (after dropout), of shape ``(..., L, S)``.

    Returns
    -------
    The output, of shape ``(..., L, Ev)`` (a tensor for tensor inputs, an array for arrays), or
    ``(output, weights)`` with ``need_weights``. A query row whose keys are all masked out gets weights 0
    and output 0, and passes no gradient, as in torch's ``scaled_dot_product_attention``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> q = np.array([[1.0, 0.0]])
    >>> k = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> v = np.array([[10.0], [20.0]])
    >>> out, weights = scaled_dot_product_attention(q, k, v, scale=np.log(3.0), need_weights=True)
    >>> out, weights
    (array([[12.5]]), array([[0.75, 0.25]]))
    >>> scaled_dot_product_attention(q, k, v, attn_mask=np.array([[False, True]]))
    array([[20.]])
    """
    if isinstance(dropout_p, Tensor) or isinstance(scale, Tensor):
        for name, number in (("dropout_p", dropout_p), ("scale", scale)):
            refuse_grad(_NAME, name, number, "it is a number", ".item()")
        dropout_p = float(_data(dropout_p))
        scale = None if scale is None else float(_data(scale))
    dtype, batch, length, source, features = _check_inputs(query, key, value)
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{_NAME}: dropout_p must be in [0, 1], got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{_NAME}: give attn_mask or is_causal=True, not both (is_causal makes the mask)")
    scale = 1.0 / math.sqrt(features) if scale is None else float(scale)
    bias = None
    if attn_mask is not None:
        bias = _additive_mask(attn_mask, dtype, batch, length, source)
    elif is_causal:
        bias = _causal_mask(dtype, length, source)
    keep = None
    if dropout_p > 0.0:
        shape = (*np.broadcast_shapes(batch, np.shape(_data(bias))[:-2]), length, source)
        if dropout_p == 1.0:
            keep = np.zeros(shape, dtype=dtype)
        else:
            rng = np.random.default_rng() if rng is None else rng
            keep = random_values(
                lambda: (rng.random(shape) >= dropout_p).astype(dtype) * dtype.type(1.0 / (1.0 - dropout_p))
            )
    output, weights = attention_op(query, key, value, bias, keep, scale=scale)
    if not need_weights:
        return output
    return output, (weights if keep is None else weights * keep)

"""Neural-network functions: activations, ``linear``, ``dropout``, ``embedding`` and the normalizations.

Each function takes tensors or arrays (tensors in give recorded tensors out, arrays in give arrays out) and
mirrors the torch.nn.functional function of the same name. Activations, ``linear``, ``embedding``,
``layer_norm`` and ``batch_norm`` are ops with fused VJPs written in numpy, so they are recorded once per
call and differentiate again under ``create_graph``; ``dropout`` and ``selu`` are compositions of ops.
On large plain arrays the activations' VJPs run one-pass numba kernels (``ops/elementwise_kernels.py``).
float32 in gives float32 out. This module is imported by ``tape.nn``; it compiles nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.grad_mode import no_grad
from tape.op import Op
from tape.registry import SCALAR_FORMULAS
from tape.tensor import Tensor
from tape.tracing import random_values, refuse_while_tracing

from . import elementwise, mkl
from . import elementwise_kernels as fused
from .erf import erf_op
from .indexing import scatter_add

__all__ = [
    "batch_norm",
    "dropout",
    "elu",
    "embedding",
    "gelu",
    "hardtanh",
    "layer_norm",
    "leaky_relu",
    "linear",
    "relu",
    "selu",
    "sigmoid",
    "softplus",
    "tanh",
]


def _data(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(_data(x))


def refuse_grad(function: str, argument: str, value: Any, why: str, instead: str = ".detach()") -> None:
    """A tensor that requires grad where ``function`` reads ``argument`` as plain data is refused, not ignored
    (the gradient would be dropped); ``instead`` is what to pass."""
    if isinstance(value, Tensor) and value.requires_grad:
        raise TypeError(
            f"{function}: {argument} is not differentiated ({why}), but a tensor that requires grad was "
            f"given; pass {argument}{instead}"
        )


def _refuse_grad_of_numbers(function: str, **numbers: Any) -> None:
    for argument, value in numbers.items():
        refuse_grad(function, argument, value, "it is a number", ".item()")


# -- activations ---------------------------------------------------------------------------------------------
# Each activation's VJP takes a one-pass kernel (elementwise_kernels) on large plain arrays, and stays the
# numpy expression below it on small arrays and on tensors (create_graph), where it is recorded.
def _relu_vjp(g: Any, out: Any, x: Any) -> Any:
    if type(out) is np.ndarray and out.size >= fused.LARGE:
        return fused.relu_vjp(g, out)
    return g * (out > 0)


relu_op = Op(lambda x: np.maximum(x, 0), _relu_vjp, name="relu", shape_only=(0,), elementwise=True)
SCALAR_FORMULAS[relu_op] = (
    lambda x: x if x > 0 or x != x else 0.0,
    (lambda g, out, x: g * (1.0 if out > 0 else 0.0),),
)


def relu(x: Any) -> Any:
    """``max(x, 0)`` elementwise; the gradient at 0 is 0, as in torch.

    Examples
    --------
    >>> relu(np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    return relu_op(x)


def _leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    return np.where(x > 0, x, x * negative_slope)


def _leaky_relu_vjp(g: Any, out: Any, x: Any, negative_slope: float = 0.01) -> Any:
    if type(x) is np.ndarray and x.size >= fused.LARGE:
        return fused.leaky_relu_vjp(g, x, negative_slope)
    return np.where(x > 0, g, g * negative_slope)


leaky_relu_op = Op(_leaky_relu, _leaky_relu_vjp, name="leaky_relu")


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """``x`` where positive, ``negative_slope * x`` elsewhere.

    Examples
    --------
    >>> leaky_relu(np.array([-1.0, 2.0]), 0.1)
    array([-0.1,  2. ])
    """
    if isinstance(negative_slope, Tensor):
        _refuse_grad_of_numbers("leaky_relu", negative_slope=negative_slope)
    return leaky_relu_op(x, negative_slope=negative_slope)


def _elu(x: Any, alpha: float = 1.0) -> Any:
    # expm1 of the negative part only, so large positive x never overflows.
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)) * alpha)


def _elu_vjp(g: Any, out: Any, x: Any, alpha: float = 1.0) -> Any:
    if type(out) is np.ndarray and out.size >= fused.LARGE:
        return fused.elu_vjp(g, out, x, alpha)
    return np.where(x > 0, g, g * (out + alpha))


elu_op = Op(_elu, _elu_vjp, name="elu")


def elu(x: Any, alpha: float = 1.0) -> Any:
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere.

    Examples
    --------
    >>> elu(np.array([0.0, 2.0]))
    array([0., 2.])
    """
    if isinstance(alpha, Tensor):
        _refuse_grad_of_numbers("elu", alpha=alpha)
    return elu_op(x, alpha=alpha)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: Any) -> Any:
    """``SELU_SCALE * elu(x, SELU_ALPHA)``, the self-normalizing activation.

    Examples
    --------
    >>> float(selu(np.array(1.0)))
    1.0507009873554805
    """
    return elu_op(x, alpha=SELU_ALPHA) * SELU_SCALE


_GELU_C = float(np.sqrt(2.0 / np.pi))
_GELU_K = 0.044715
_SQRT_HALF = float(np.sqrt(0.5))
_INVERSE_SQRT_TAU = float(1 / np.sqrt(2 * np.pi))  # the standard normal density at 0


# gelu's VJPs at +-inf (inf * 0) give nan, as torch does, quietly. Its forward at -inf gives nan too, with
# numpy's warning: a guard there would cost a fifth of a small forward.
def _gelu(x: Any) -> Any:
    return x * (np.tanh((x + x * x * x * _GELU_K) * _GELU_C) + 1) * 0.5


def _gelu_vjp(g: Any, out: Any, x: Any) -> Any:
    if type(x) is np.ndarray and x.size >= fused.LARGE_TRANSCENDENTAL:
        return fused.gelu_vjp(g, x)
    with np.errstate(invalid="ignore"):
        t = np.tanh((x + x * x * x * _GELU_K) * _GELU_C)
        return g * ((t + 1) * 0.5 + x * (1 - t * t) * (x * x * (3 * _GELU_K) + 1) * (0.5 * _GELU_C))


gelu_op = Op(_gelu, _gelu_vjp, name="gelu")


def _gelu_exact(x: Any) -> Any:
    return x * (erf_op(x * _SQRT_HALF) + 1) * 0.5


def _gelu_exact_vjp(g: Any, out: Any, x: Any) -> Any:
    # d/dx x Phi(x) = Phi(x) + x phi(x), with Phi(x) = (1 + erf(x / sqrt 2)) / 2 and phi the normal density.
    with np.errstate(invalid="ignore"):
        return g * ((erf_op(x * _SQRT_HALF) + 1) * 0.5 + x * np.exp(x * x * -0.5) * _INVERSE_SQRT_TAU)


gelu_exact_op = Op(_gelu_exact, _gelu_exact_vjp, name="gelu")


def gelu(x: Any, approximate: str = "none") -> Any:
    """Gaussian error linear unit ``x Phi(x)``, exact (torch's default) or in torch's ``'tanh'`` form.

    ``approximate='none'``: ``0.5 x (1 + erf(x / sqrt 2))``; ``approximate='tanh'``:
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, within about 1e-3 of it and cheaper.

    Examples
    --------
    >>> round(float(gelu(np.array(1.0))), 6), round(float(gelu(np.array(1.0), approximate="tanh")), 6)
    (0.841345, 0.841192)
    """
    if approximate == "none":
        return gelu_exact_op(x)
    if approximate == "tanh":
        return gelu_op(x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _sigmoid(x: Any) -> Any:
    # exp of -|x| only, so neither branch overflows.
    small = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + small), small / (1 + small))


def _sigmoid_vjp(g: Any, out: Any, x: Any) -> Any:
    if type(out) is np.ndarray and out.size >= fused.LARGE:
        return fused.sigmoid_vjp(g, out)
    return g * out * (1 - out)


sigmoid_op = Op(_sigmoid, _sigmoid_vjp, name="sigmoid", shape_only=(0,))


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))``, without overflow for large ``|x|``.

    Examples
    --------
    >>> sigmoid(np.array([0.0, -1000.0]))
    array([0.5, 0. ])
    """
    return sigmoid_op(x)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent, as ``np.tanh``, with a VJP that reads only the output.

    Examples
    --------
    >>> tanh(np.array([0.0]))
    array([0.])
    """
    return elementwise.tanh(x)


def _softplus(x: Any, beta: float = 1.0, threshold: float | None = 20.0) -> Any:
    scaled = x * beta
    smooth = np.logaddexp(scaled, 0) / beta  # log(1 + exp(bx)) / b, stable for any sign
    if threshold is None:
        return smooth
    return np.where(scaled > threshold, x, smooth)


def _softplus_vjp(g: Any, out: Any, x: Any, beta: float = 1.0, threshold: float | None = 20.0) -> Any:
    if type(x) is np.ndarray and x.size >= fused.LARGE_TRANSCENDENTAL:
        return fused.softplus_vjp(g, x, beta, threshold)
    slope = sigmoid_op(x * beta)
    if threshold is None:
        return g * slope
    return np.where(x * beta > threshold, g, g * slope)


softplus_op = Op(_softplus, _softplus_vjp, name="softplus")


def softplus(x: Any, beta: float = 1.0, threshold: float | None = 20.0) -> Any:
    """``log(1 + exp(beta x)) / beta``, computed stably for any ``x``.

    Where ``beta * x > threshold`` it returns ``x`` itself (as torch does); ``threshold=None`` keeps the
    smooth formula everywhere (it is stable anyway, the switch only saves work and matches torch).

    Examples
    --------
    >>> round(float(softplus(np.array(0.0))), 6)
    0.693147
    """
    if isinstance(beta, Tensor) or isinstance(threshold, Tensor):
        _refuse_grad_of_numbers("softplus", beta=beta, threshold=threshold)
    if beta <= 0:
        raise ValueError(f"softplus: beta must be positive, got {beta}")
    return softplus_op(x, beta=beta, threshold=threshold)


def _hardtanh_vjp(g: Any, out: Any, x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    return g * np.logical_and(x > min_val, x < max_val)


hardtanh_op = Op(
    lambda x, min_val=-1.0, max_val=1.0: np.clip(x, min_val, max_val), _hardtanh_vjp, name="hardtanh"
)


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    """``x`` clipped to ``[min_val, max_val]``; the gradient is 1 strictly inside, 0 outside.

    Examples
    --------
    >>> hardtanh(np.array([-3.0, 0.5, 3.0]))
    array([-1. ,  0.5,  1. ])
    """
    if isinstance(min_val, Tensor) or isinstance(max_val, Tensor):
        _refuse_grad_of_numbers("hardtanh", min_val=min_val, max_val=max_val)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return hardtanh_op(x, min_val=min_val, max_val=max_val)


# -- linear ------------------------------------------------------------------------------------------------
def _linear(x: Any, weight: Any, bias: Any = None) -> Any:
    out = mkl.matmul(x, weight.T)
    if bias is None:
        return out
    if np.result_type(out, bias) != out.dtype:
        return out + bias  # a wider bias widens the result, as numpy's + does
    out += bias  # out is new: adding in place saves a pass and an array of out's size
    return out


def _linear_vjp_x(g: Any, out: Any, x: Any, weight: Any, bias: Any = None) -> Any:
    return mkl.matmul(g, weight)


def _linear_vjp_weight(g: Any, out: Any, x: Any, weight: Any, bias: Any = None) -> Any:
    # Every leading axis of x is a batch axis: flatten them and take one matrix product.
    rows_g = np.reshape(g, (-1, np.shape(weight)[0]))
    rows_x = np.reshape(x, (-1, np.shape(weight)[1]))
    return mkl.matmul(np.transpose(rows_g), rows_x)


def _linear_vjp_bias(g: Any, out: Any, x: Any, weight: Any, bias: Any = None) -> Any:
    return g  # the engine sums it over the batch axes


linear_op = Op(
    _linear,
    _linear_vjp_x,
    _linear_vjp_weight,
    _linear_vjp_bias,
    name="linear",
    shape_only=(2,),
    keeps_output=False,
)


def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """``x @ weight.T + bias``, with ``weight`` of shape ``(out_features, in_features)`` as in torch.

    Examples
    --------
    >>> linear(np.ones((2, 3)), np.ones((4, 3)), np.zeros(4)).shape
    (2, 4)
    """
    w_shape = _shape(weight)
    x_shape = _shape(x)
    if len(w_shape) != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {w_shape}")
    if len(x_shape) == 0 or x_shape[-1] != w_shape[1]:
        raise ValueError(
            f"linear: input of shape {x_shape} does not fit weight of shape {w_shape} "
            f"(the input's last axis must be {w_shape[1]})"
        )
    if bias is not None and _shape(bias) != (w_shape[0],):
        raise ValueError(f"linear: bias must have shape ({w_shape[0]},), got {_shape(bias)}")
    return linear_op(x, weight, bias)


# -- dropout -----------------------------------------------------------------------------------------------
def dropout(x: Any, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None) -> Any:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` (inverted dropout).

    Out of training (``training=False``) or with ``p=0`` it returns ``x`` unchanged. The mask is a
    constant drawn from ``rng`` (a fresh default generator when None).

    Examples
    --------
    >>> dropout(np.ones(4), p=0.5, training=False)
    array([1., 1., 1., 1.])
    """
    _refuse_grad_of_numbers("dropout", p=p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    data = _data(x)
    dtype = data.dtype if data.dtype.kind == "f" else np.float64
    if p == 1.0:
        return x * np.zeros(data.shape, dtype=dtype)
    mask = random_values(lambda: (rng.random(data.shape) >= p).astype(dtype) * dtype.type(1.0 / (1.0 - p)))
    return x * mask


# -- embedding ---------------------------------------------------------------------------------------------
def _embedding_vjp_weight(g: Any, out: Any, indices: Any, weight: Any, padding_idx: int | None = None) -> Any:
    if padding_idx is not None:  # the padding row's lookups send no cotangent
        g = g * (indices != padding_idx)[..., None]
    return scatter_add(g, indices, np.shape(weight))


embedding_op = Op(
    lambda indices, weight, padding_idx=None: weight[indices],
    None,
    _embedding_vjp_weight,
    name="embedding",
    shape_only=(1,),
)


def embedding(
    indices: Any,
    weight: Any,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
) -> Any:
    """Rows of ``weight`` picked by the integer array ``indices``: shape ``indices.shape + (dim,)``.

    The gradient adds each output row's cotangent into its row of ``weight`` (repeated indices add up),
    except into row ``padding_idx`` (negative counts from the end, as in torch), which gets none.

    With ``max_norm``, first, as torch does, each row that ``indices`` picks and whose ``norm_type``-norm
    exceeds ``max_norm`` is scaled in place in ``weight`` to norm ``max_norm`` (``max_norm / (norm + 1e-7)``),
    without a record: the lookup then reads the scaled rows. The write counts as an in-place change of
    ``weight``, so a record made earlier that reads ``weight`` (a tied output layer, say) refuses its backward
    instead of giving a wrong gradient; pass a copy of ``weight`` where that is not wanted.

    Examples
    --------
    >>> embedding(np.array([2, 0]), np.arange(6.0).reshape(3, 2))
    array([[4., 5.],
           [0., 1.]])
    >>> table = np.array([[3.0, 4.0], [0.3, 0.4]])
    >>> embedding(np.array([0, 1]), table, max_norm=1.0).round(6), table.round(6)
    (array([[0.6, 0.8],
           [0.3, 0.4]]), array([[0.6, 0.8],
           [0.3, 0.4]]))
    """
    index_array = np.asarray(_data(indices))
    w_shape = _shape(weight)
    if index_array.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {index_array.dtype.name}")
    if len(w_shape) != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got shape {w_shape}")
    if index_array.size and (index_array.min() < 0 or index_array.max() >= w_shape[0]):
        raise IndexError(
            f"embedding: indices must lie in [0, {w_shape[0]}), got values from {index_array.min()} "
            f"to {index_array.max()}"
        )
    if max_norm is not None:
        _renormalize_rows(index_array, weight, max_norm, norm_type)
    if padding_idx is None:
        return embedding_op(index_array, weight)
    return embedding_op(index_array, weight, padding_idx=_padding_row("embedding", padding_idx, w_shape[0]))


def _renormalize_rows(index_array: np.ndarray, weight: Any, max_norm: float, norm_type: float) -> None:
    """Scale in place the rows of ``weight`` that ``index_array`` picks and whose norm exceeds ``max_norm``
    (torch's ``embedding_renorm_``), unrecorded; a tensor's write bumps its version like any other."""
    _refuse_grad_of_numbers("embedding", max_norm=max_norm, norm_type=norm_type)
    if not max_norm >= 0:
        raise ValueError(f"embedding: max_norm must be a non-negative number, got {max_norm!r}")
    refuse_while_tracing(
        "embedding renormalized rows of its weight (max_norm)",
        "the rows are scaled in place outside the tape, so a replay would not scale them: call the model "
        "without tape.compile, or leave max_norm out",
    )
    data = _data(weight)
    rows = np.unique(index_array)
    norms = np.linalg.norm(data[rows], ord=norm_type, axis=-1)
    too_long = norms > max_norm
    if not np.any(too_long):
        return
    rows = rows[too_long]
    scaled = data[rows] * (max_norm / (norms[too_long] + 1e-7)).astype(data.dtype)[:, None]
    if isinstance(weight, Tensor):
        with no_grad():
            weight[rows] = scaled
    else:
        data[rows] = scaled


def _padding_row(owner: str, padding_idx: Any, rows: int) -> int:
    """``padding_idx`` as a row number in ``[0, rows)``; a negative one counts from the end, as in torch."""
    if (
        not isinstance(padding_idx, int | np.integer)
        or isinstance(padding_idx, bool)
        or not -rows <= padding_idx < rows
    ):
        raise ValueError(f"{owner}: padding_idx must be an int in [-{rows}, {rows}), got {padding_idx!r}")
    return int(padding_idx) % rows


# -- normalization -----------------------------------------------------------------------------------------
def _normalized(x: Any, axes: tuple[int, ...], eps: float) -> tuple[Any, Any]:
    """``(x - mean) * rstd`` over ``axes`` and ``rstd = 1 / sqrt(var + eps)`` (biased variance)."""
    mean = np.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    variance = np.mean(centered * centered, axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(variance + eps)
    return centered * rstd, rstd


def _normalize_backward(g_hat: Any, x_hat: Any, rstd: Any, axes: tuple[int, ...]) -> Any:
    """The cotangent of ``x`` given that of ``x_hat``, for normalization over ``axes``."""
    mean_g = np.mean(g_hat, axis=axes, keepdims=True)
    mean_gx = np.mean(g_hat * x_hat, axis=axes, keepdims=True)
    return (g_hat - mean_g - x_hat * mean_gx) * rstd


def _layer_norm(x: Any, weight: Any, bias: Any, axes: tuple[int, ...], eps: float) -> Any:
    x_hat, _ = _normalized(x, axes, eps)
    if weight is not None:
        x_hat = x_hat * weight
    return x_hat if bias is None else x_hat + bias


def _layer_norm_backward(g: Any, out: Any, x: Any, weight: Any, bias: Any, axes: tuple[int, ...], eps: float):
    x_hat, rstd = _normalized(x, axes, eps)
    g_hat = g if weight is None else g * weight
    # weight and bias broadcast along the leading axes: the engine sums their cotangents over them.
    return (
        _normalize_backward(g_hat, x_hat, rstd, axes),
        None if weight is None else g * x_hat,
        None if bias is None else g,
    )


layer_norm_op = Op(_layer_norm, backward=_layer_norm_backward, name="layer_norm", shape_only=(2,))


def layer_norm(
    x: Any, normalized_shape: int | tuple[int, ...], weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Any:
    """Normalize over the trailing ``normalized_shape`` axes to mean 0, variance 1, then ``* weight + bias``.

    Examples
    --------
    >>> np.round(layer_norm(np.array([1.0, 3.0]), 2), 4)
    array([-1.,  1.])
    """
    _refuse_grad_of_numbers("layer_norm", eps=eps)
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    x_shape = _shape(x)
    k = len(normalized_shape)
    if k == 0 or x_shape[len(x_shape) - k :] != normalized_shape or len(x_shape) < k:
        raise ValueError(
            f"layer_norm: expected input whose trailing axes are {normalized_shape}, got shape {x_shape}"
        )
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and _shape(param) != normalized_shape:
            raise ValueError(f"layer_norm: {name} must have shape {normalized_shape}, got {_shape(param)}")
    axes = tuple(range(len(x_shape) - k, len(x_shape)))
    return layer_norm_op(x, weight, bias, axes=axes, eps=eps)


def _channel_shape(ndim: int, channels: int) -> tuple[int, ...]:
    return (1, channels) + (1,) * (ndim - 2)


def _batch_norm(x: Any, mean: Any, var: Any, weight: Any, bias: Any, axes: tuple[int, ...], eps: float):
    shape = _channel_shape(np.ndim(x), np.shape(x)[1])
    if mean is None:  # training: the batch's own statistics
        y, _ = _normalized(x, axes, eps)
    else:
        y = (x - np.reshape(mean, shape)) / np.sqrt(np.reshape(var, shape) + eps)
    if weight is not None:
        y = y * np.reshape(weight, shape)
    return y if bias is None else y + np.reshape(bias, shape)


def _batch_norm_backward(
    g: Any, out: Any, x: Any, mean: Any, var: Any, weight: Any, bias: Any, axes: tuple[int, ...], eps: float
):
    shape = _channel_shape(np.ndim(x), np.shape(x)[1])
    g_hat = g if weight is None else g * np.reshape(weight, shape)
    if mean is None:
        x_hat, rstd = _normalized(x, axes, eps)
        g_x = _normalize_backward(g_hat, x_hat, rstd, axes)
    else:
        rstd = 1 / np.sqrt(np.reshape(var, shape) + eps)
        x_hat = (x - np.reshape(mean, shape)) * rstd
        g_x = g_hat * rstd
    return (
        g_x,
        None,
        None,
        None if weight is None else np.sum(g * x_hat, axis=axes),
        None if bias is None else np.sum(g, axis=axes),
    )


batch_norm_op = Op(_batch_norm, backward=_batch_norm_backward, name="batch_norm", shape_only=(4,))


def batch_norm(
    x: Any,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Any:
    """Normalize each channel (axis 1) of ``x`` of shape ``(N, C, ...)``, then ``* weight + bias``.

    In training the batch's statistics are used and the running ones (plain arrays of shape ``(C,)``) are
    updated in place, unrecorded: ``running = (1 - momentum) * running + momentum * batch``, the variance
    being the unbiased one, as in torch. Out of training the running statistics are used.

    Examples
    --------
    >>> mean, var = np.zeros(2), np.ones(2)
    >>> y = batch_norm(np.array([[0.0, 1.0], [2.0, 3.0]]), mean, var, training=True)
    >>> np.round(y, 4), mean
    (array([[-1., -1.],
           [ 1.,  1.]]), array([0.1, 0.2]))
    """
    _refuse_grad_of_numbers("batch_norm", momentum=momentum, eps=eps)
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        refuse_grad("batch_norm", name, value, "it is a running statistic, updated in place without a record")
    x_shape = _shape(x)
    if len(x_shape) < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...), got shape {x_shape}")
    channels = x_shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                        ("bias", bias)):  # fmt: skip
        if value is not None and _shape(value) != (channels,):
            raise ValueError(f"batch_norm: {name} must have shape ({channels},), got {_shape(value)}")
    axes = (0, *range(2, len(x_shape)))
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: out of training the running mean and variance are required")
        return batch_norm_op(x, _data(running_mean), _data(running_var), weight, bias, axes=axes, eps=eps)
    count = int(np.prod([x_shape[a] for a in axes]))
    if count <= 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got shape {x_shape}"
        )
    if running_mean is not None and running_var is not None:
        refuse_while_tracing(
            "batch_norm updated its running statistics in training mode",
            "running statistics are updated outside the tape, so a replay would not update them: compile the "
            "model in eval mode (model.eval()), or train it without tape.compile",
        )
        data = _data(x)
        batch_mean = np.mean(data, axis=axes)
        batch_var = np.var(data, axis=axes) * (count / (count - 1))
        mean_buffer, var_buffer = _data(running_mean), _data(running_var)
        mean_buffer *= 1 - momentum
        mean_buffer += momentum * batch_mean
        var_buffer *= 1 - momentum
        var_buffer += momentum * batch_var
    return batch_norm_op(x, None, None, weight, bias, axes=axes, eps=eps)

"""Loss functions, as torch.nn.functional's: each takes tensors or arrays and a ``reduction``.

``reduction`` is ``'mean'`` (the default), ``'sum'`` or ``'none'`` (the per-element losses). Inputs whose
shapes do not fit raise a ``ValueError`` naming the loss and the shapes. ``cross_entropy`` is one fused op
(log-softmax, pick, weight and reduce) whose VJP is ``softmax - target``; ``smooth_l1_loss`` and
``huber_loss`` are one op each on ``input - target`` (their VJP is the clipped difference); the other losses
are compositions of recorded numpy ops, so they get their VJPs (and higher derivatives) from those ops.
Targets that are class indices or labels are constants; probability targets may be differentiated. An
argument read as plain data (class weights of ``cross_entropy``/``nll_loss``, ``label_smoothing``, labels)
refuses a tensor that requires grad instead of dropping its gradient.

``cross_entropy`` of a float32/float64 batch of logits ``(N, C)`` against class indices ``(N,)`` (the
classifier's case) is its own op, ``cross_entropy_rows_op``, with two numba kernels (``tape/jit.py``):
``cross_entropy_rows`` (each row's logsumexp minus its target's logit) and ``cross_entropy_vjp_rows``
(``(softmax - onehot) * g`` row by row). Neither builds a one-hot or any other ``(N, C)`` temporary. Its
VJP under ``create_graph`` is the recorded numpy expression of the general op. Other layouts (a class
axis that is not last, probability targets) use the general op. Strided logits, and float32 logits above
``FLOAT32_EXP_KERNEL_LIMIT`` elements (where numpy's vectorized float32 ``exp`` beats the kernels' scalar
one), run the kernels' numpy twins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape.jit import Kernel, kernel
from tape.op import Op
from tape.tensor import Tensor

from .nn import refuse_grad
from .reductions import KERNEL_DTYPES
from .special import log_softmax_op, softmax_op, softmax_rows

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cosine_embedding_loss",
    "cross_entropy",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "margin_ranking_loss",
    "mse_loss",
    "nll_loss",
    "smooth_l1_loss",
]

_REDUCTIONS = ("mean", "sum", "none")

#: float32 logits of more elements than this run the numpy twins of the cross-entropy kernels with JIT on
#: too (measured between 8192 and 16384 elements by ``python -m benchmarks.kernels``).
FLOAT32_EXP_KERNEL_LIMIT = 8192


def _data(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(_data(x))


def _check_reduction(loss: str, reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(
            f"{loss}: reduction must be one of {', '.join(map(repr, allowed))}, got {reduction!r}"
        )


def _reduce(loss: Any, reduction: str) -> Any:
    if reduction == "mean":
        return np.mean(loss)
    if reduction == "sum":
        return np.sum(loss)
    return loss


def _same_shape(loss: str, **named: Any) -> None:
    shapes = {name: _shape(value) for name, value in named.items()}
    if len(set(shapes.values())) > 1:
        described = " and ".join(f"{name} of shape {shape}" for name, shape in shapes.items())
        raise ValueError(f"{loss}: {described} must have the same shape")


def _weighted(loss: Any, weight: Any, name: str) -> Any:
    if weight is None:
        return loss
    try:
        np.broadcast_shapes(_shape(weight), _shape(loss))
    except ValueError:
        raise ValueError(
            f"{name}: weight of shape {_shape(weight)} does not broadcast to the input's shape {_shape(loss)}"
        ) from None
    return loss * weight


# -- regression ----------------------------------------------------------------------------------------------
def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """Squared error ``(input - target) ** 2``, reduced.

    Examples
    --------
    >>> float(mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
    2.5
    """
    _check_reduction("mse_loss", reduction)
    _same_shape("mse_loss", input=input, target=target)
    difference = input - target
    return _reduce(difference * difference, reduction)


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """Absolute error ``|input - target|``, reduced.

    Examples
    --------
    >>> float(l1_loss(np.array([1.0, -2.0]), np.array([0.0, 0.0])))
    1.5
    """
    _check_reduction("l1_loss", reduction)
    _same_shape("l1_loss", input=input, target=target)
    return _reduce(np.abs(input - target), reduction)


# smooth_l1 and huber are one op each on the difference: their VJPs are the clipped difference, which is
# the limit (+-1, +-delta) at an infinite difference, where the composition's np.where gave 0 * inf = nan.
def _smooth_l1(difference: Any, beta: Any) -> Any:
    distance = np.abs(difference)
    return np.where(distance < beta, difference * difference * (0.5 / beta), distance - 0.5 * beta)


def _smooth_l1_vjp_difference(g: Any, out: Any, difference: Any, beta: Any) -> Any:
    return g * np.clip(difference / beta, -1, 1)


def _smooth_l1_vjp_beta(g: Any, out: Any, difference: Any, beta: Any) -> Any:
    share = difference / beta
    return g * np.where(np.abs(difference) < beta, share * share * -0.5, -0.5)


smooth_l1_op = Op(_smooth_l1, _smooth_l1_vjp_difference, _smooth_l1_vjp_beta, name="smooth_l1_loss")


def _huber(difference: Any, delta: Any) -> Any:
    distance = np.abs(difference)
    return np.where(distance < delta, difference * difference * 0.5, (distance - 0.5 * delta) * delta)


def _huber_vjp_difference(g: Any, out: Any, difference: Any, delta: Any) -> Any:
    return g * np.clip(difference, -delta, delta)


def _huber_vjp_delta(g: Any, out: Any, difference: Any, delta: Any) -> Any:
    distance = np.abs(difference)
    return g * np.where(distance < delta, 0, distance - delta)


huber_op = Op(_huber, _huber_vjp_difference, _huber_vjp_delta, name="huber_loss")


def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Any:
    """``0.5 d^2 / beta`` where ``|d| < beta``, ``|d| - 0.5 beta`` elsewhere (``d = input - target``).

    ``beta=0`` is the L1 loss. The gradient is ``clip(d / beta, -1, 1)``: +-1 at an infinite ``d``.

    Examples
    --------
    >>> float(smooth_l1_loss(np.array([0.5, 3.0]), np.zeros(2), reduction="sum"))
    2.625
    """
    _check_reduction("smooth_l1_loss", reduction)
    _same_shape("smooth_l1_loss", input=input, target=target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    if beta == 0:
        return _reduce(np.abs(input - target), reduction)
    return _reduce(smooth_l1_op(input - target, beta), reduction)


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> Any:
    """``0.5 d^2`` where ``|d| < delta``, ``delta (|d| - 0.5 delta)`` elsewhere: ``delta * smooth_l1``.

    The gradient is ``clip(d, -delta, delta)``: +-delta at an infinite ``d``.

    Examples
    --------
    >>> float(huber_loss(np.array([0.5, 3.0]), np.zeros(2), reduction="sum", delta=2.0))
    4.125
    """
    _check_reduction("huber_loss", reduction)
    _same_shape("huber_loss", input=input, target=target)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    return _reduce(huber_op(input - target, delta), reduction)


# -- binary classification -----------------------------------------------------------------------------------
def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Any:
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities ``p = input``; each log is clamped at -100
    (as torch does) so that ``p`` of exactly 0 or 1 gives a finite loss.

    Examples
    --------
    >>> round(float(binary_cross_entropy(np.array([0.5]), np.array([1.0]))), 6)
    0.693147
    """
    _check_reduction("binary_cross_entropy", reduction)
    _same_shape("binary_cross_entropy", input=input, target=target)
    values = _data(input)
    if values.size and (np.min(values) < 0 or np.max(values) > 1):
        raise ValueError("binary_cross_entropy: input must hold probabilities in [0, 1]; for logits use "
                         "binary_cross_entropy_with_logits")  # fmt: skip
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(input), -100.0)
        log_q = np.maximum(np.log(1 - input), -100.0)
    loss = -(target * log_p + (1 - target) * log_q)
    return _reduce(_weighted(loss, weight, "binary_cross_entropy"), reduction)


def binary_cross_entropy_with_logits(
    input: Any, target: Any, weight: Any = None, reduction: str = "mean", pos_weight: Any = None
) -> Any:
    """``binary_cross_entropy(sigmoid(input), target)`` computed from logits without overflow.

    ``pos_weight`` (broadcasting along the last axis, one per class) multiplies the positive term.

    Examples
    --------
    >>> round(float(binary_cross_entropy_with_logits(np.array([0.0]), np.array([1.0]))), 6)
    0.693147
    """
    name = "binary_cross_entropy_with_logits"
    _check_reduction(name, reduction)
    _same_shape(name, input=input, target=target)
    if pos_weight is not None:
        try:
            np.broadcast_shapes(_shape(pos_weight), _shape(input))
        except ValueError:
            raise ValueError(
                f"{name}: pos_weight of shape {_shape(pos_weight)} does not broadcast to the input's shape "
                f"{_shape(input)}"
            ) from None
    # -log sigmoid(x) = log(1 + exp(-x)) = logaddexp(0, -x); -log(1 - sigmoid(x)) = x + logaddexp(0, -x).
    # A nan logit, or -inf (-inf + inf), gives nan, as torch does: quietly.
    with np.errstate(invalid="ignore"):
        softplus_of_minus = np.logaddexp(-input, 0)
        if pos_weight is None:
            loss = (1 - target) * input + softplus_of_minus
        else:
            loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus_of_minus
    return _reduce(_weighted(loss, weight, name), reduction)


# -- classification over classes -----------------------------------------------------------------------------
def _class_axis(name: str, shape: tuple[int, ...]) -> int:
    if len(shape) == 0:
        raise ValueError(f"{name}: input must have a class axis, got a 0-d input")
    return 0 if len(shape) == 1 else 1


def _index_coefficients(
    name: str,
    shape: tuple[int, ...],
    target: Any,
    weight: Any,
    ignore_index: int,
    label_smoothing: float,
) -> tuple[np.ndarray, float]:
    """For class-index targets: the coefficients ``a`` (input's shape) with ``loss_n = -sum_c a_nc logp_nc``
    and the denominator of the mean (the summed weight of the targets that are not ignored)."""
    axis = _class_axis(name, shape)
    classes = shape[axis]
    target = _data(target)
    expected = shape[:axis] + shape[axis + 1 :]
    if target.shape != expected:
        raise ValueError(
            f"{name}: input of shape {shape} needs a class-index target of shape {expected}, got "
            f"{target.shape}"
        )
    kept = target != ignore_index
    picked = np.where(kept, target, 0)
    if picked.size and (picked.min() < 0 or picked.max() >= classes):
        bad = picked[(picked < 0) | (picked >= classes)].flat[0]
        raise IndexError(f"{name}: target {bad} is out of range for {classes} classes")
    class_weight = np.ones(classes) if weight is None else _data(weight).astype(np.float64)
    if class_weight.shape != (classes,):
        raise ValueError(f"{name}: weight must have shape ({classes},), got {class_weight.shape}")
    broadcast_shape = [1] * len(shape)
    broadcast_shape[axis] = classes
    class_weight = class_weight.reshape(broadcast_shape)
    onehot = np.expand_dims(picked, axis) == np.arange(classes).reshape(broadcast_shape)
    target_weight = np.sum(onehot * class_weight, axis=axis, keepdims=True) * np.expand_dims(kept, axis)
    coefficients = onehot * target_weight * (1 - label_smoothing)
    if label_smoothing:
        coefficients = coefficients + np.expand_dims(kept, axis) * class_weight * (label_smoothing / classes)
    return coefficients, float(np.sum(target_weight))


def _cross_entropy(logits: Any, coefficients: Any, axis: int, scale: float, reduction: str) -> Any:
    per_sample = -np.sum(coefficients * log_softmax_op(logits, axis=axis), axis=axis)
    if reduction == "none":
        return per_sample
    return np.sum(per_sample) * scale


def _spread(g: Any, axis: int, scale: float, reduction: str) -> Any:
    return np.expand_dims(g, axis) if reduction == "none" else g * scale


def _cross_entropy_vjp_logits(g: Any, out: Any, logits: Any, coefficients: Any, axis: int, scale: float,
                              reduction: str) -> Any:  # fmt: skip
    # d/dlogits of -sum_c a_c log softmax_c = softmax * sum_c a_c - a
    total = np.sum(coefficients, axis=axis, keepdims=True)
    return _spread(g, axis, scale, reduction) * (softmax_op(logits, axis=axis) * total - coefficients)


def _cross_entropy_vjp_coefficients(g: Any, out: Any, logits: Any, coefficients: Any, axis: int,
                                    scale: float, reduction: str) -> Any:  # fmt: skip
    return -_spread(g, axis, scale, reduction) * log_softmax_op(logits, axis=axis)


cross_entropy_op = Op(
    _cross_entropy, _cross_entropy_vjp_logits, _cross_entropy_vjp_coefficients, name="cross_entropy"
)


# -- cross-entropy of rows of logits against class indices: kernels and their numpy twins ------------------
# Row i's loss, with t its target, w the class weights (ones without weights), W their sum, s the label
# smoothing, C the number of classes and lse the row's logsumexp:
#     (1 - s) w_t (lse - x_t) + (s / C) sum_c w_c (lse - x_c).
# Both terms are computed from the logits minus the row's maximum m, so that no large values cancel:
# lse - x_c = log(sum_c exp(x_c - m)) - (x_c - m). A row whose target is ignore_index has loss and gradient 0.
def _cross_entropy_rows_numpy(
    logits: np.ndarray, targets: np.ndarray, class_weight: np.ndarray, ignore_index: int, smoothing: float
) -> np.ndarray:
    """numpy twin of ``cross_entropy_rows``."""
    rows, classes = logits.shape
    kept = targets != ignore_index
    if classes == 0 or not np.any(kept):
        return np.zeros(rows, logits.dtype)
    picked = np.where(kept, targets, 0)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        largest = np.max(logits, axis=1, keepdims=True)
        shifted = logits - np.where(np.isfinite(largest), largest, 0)
        log_total = np.log(np.sum(np.exp(shifted), axis=1))
        target_term = log_total - np.take_along_axis(shifted, picked[:, None], axis=1)[:, 0]
        losses = (1.0 - smoothing) * class_weight[picked] * target_term
        if smoothing:
            spread = np.sum(class_weight) * log_total - shifted @ class_weight
            losses = losses + (smoothing / classes) * spread
    return np.where(kept, losses, 0).astype(logits.dtype)


@kernel(_cross_entropy_rows_numpy)
def cross_entropy_rows(
    logits: np.ndarray, targets: np.ndarray, class_weight: np.ndarray, ignore_index: int, smoothing: float
) -> np.ndarray:
    """The cross-entropy of each row of ``logits`` ``(N, C)`` against its class index in ``targets`` ``(N,)``.

    ``class_weight`` is float64 ``(C,)`` (ones for no weights); ``smoothing`` is the label smoothing in
    [0, 1]. Targets other than ``ignore_index`` must lie in [0, C) (``cross_entropy`` checks them): the
    kernel does not. Returns the ``N`` losses in ``logits``' dtype, 0 for ignored rows.

    Examples
    --------
    >>> logits = np.array([[0.0, np.log(3.0)]])
    >>> cross_entropy_rows(logits, np.array([1]), np.ones(2), -100, 0.0).round(6)
    array([0.287682])
    """
    rows, classes = logits.shape
    losses = np.zeros(rows, logits.dtype)
    uniform = smoothing / classes if classes else 0.0
    weight_sum = np.sum(class_weight)
    for i in range(rows):
        target = targets[i]
        if target == ignore_index:
            continue
        row = logits[i]
        largest = -np.inf
        for j in range(classes):
            largest = max(largest, row[j])
        shift = largest if np.isfinite(largest) else 0.0
        total = 0.0
        for j in range(classes):
            total += np.exp(row[j] - shift)
        log_total = np.log(total)
        loss = (1.0 - smoothing) * class_weight[target] * (log_total - (row[target] - shift))
        if uniform:
            weighted = 0.0  # sum_c w_c (x_c - m)
            for j in range(classes):
                weighted += class_weight[j] * (row[j] - shift)
            loss += uniform * (weight_sum * log_total - weighted)
        losses[i] = loss
    return losses


def _cross_entropy_vjp_rows_numpy(
    logits: np.ndarray,
    targets: np.ndarray,
    class_weight: np.ndarray,
    ignore_index: int,
    smoothing: float,
    row_cotangents: np.ndarray,
) -> np.ndarray:
    """numpy twin of ``cross_entropy_vjp_rows``."""
    rows, classes = logits.shape
    kept = targets != ignore_index
    if classes == 0 or not np.any(kept):
        return np.zeros_like(logits)
    dtype = logits.dtype
    picked = np.where(kept, targets, 0)
    row_cotangents = np.where(kept, row_cotangents, 0.0)
    target_share = row_cotangents * (1.0 - smoothing) * class_weight[picked]
    uniform_share = row_cotangents * (smoothing / classes)
    # Row i's coefficients sum to target_share_i + uniform_share_i * W: that much of its softmax.
    with np.errstate(invalid="ignore"):  # an all -inf row has no softmax: nan, as in the kernel
        grad = softmax_rows.twin(logits)
    grad *= (target_share + uniform_share * np.sum(class_weight)).astype(dtype)[:, None]
    if smoothing:
        grad -= (uniform_share[:, None] * class_weight).astype(dtype)
    grad[np.arange(rows), picked] -= target_share.astype(dtype)
    grad[~kept] = 0
    return grad


@kernel(_cross_entropy_vjp_rows_numpy)
def cross_entropy_vjp_rows(
    logits: np.ndarray,
    targets: np.ndarray,
    class_weight: np.ndarray,
    ignore_index: int,
    smoothing: float,
    row_cotangents: np.ndarray,
) -> np.ndarray:
    """The VJP of ``cross_entropy_rows`` for the cotangents ``row_cotangents`` (float64 ``(N,)``) of the
    losses: row i is ``g_i (A_i softmax(x_i) - a_i)``, where ``a_i`` are row i's coefficients (its target's
    weight, smoothed) and ``A_i`` their sum, written without building ``a_i``.

    Arguments as for ``cross_entropy_rows``. Returns an array of ``logits``' shape and dtype.

    Examples
    --------
    >>> logits = np.array([[0.0, np.log(3.0)]])
    >>> cross_entropy_vjp_rows(logits, np.array([1]), np.ones(2), -100, 0.0, np.array([1.0]))
    array([[ 0.25, -0.25]])
    """
    rows, classes = logits.shape
    grad = np.zeros_like(logits)
    uniform = smoothing / classes if classes else 0.0
    weight_sum = np.sum(class_weight)
    for i in range(rows):
        target = targets[i]
        if target == ignore_index:
            continue
        row, grad_row = logits[i], grad[i]
        largest = -np.inf
        for j in range(classes):
            largest = max(largest, row[j])
        shift = largest if np.isfinite(largest) else 0.0
        total = 0.0
        for j in range(classes):
            exponential = np.exp(row[j] - shift)
            grad_row[j] = exponential
            total += exponential
        target_share = row_cotangents[i] * (1.0 - smoothing) * class_weight[target]
        uniform_share = row_cotangents[i] * uniform
        scale = (target_share + uniform_share * weight_sum) / total  # an all -inf row: nan, as its softmax
        for j in range(classes):
            grad_row[j] *= scale
        if uniform:
            for j in range(classes):
                grad_row[j] -= uniform_share * class_weight[j]
        grad_row[target] -= target_share
    return grad


def _kernel_or_twin(rows_kernel: Kernel[np.ndarray], logits: np.ndarray) -> Callable[..., np.ndarray]:
    """``rows_kernel`` where the cross-entropy kernels pay for ``logits``, its numpy twin otherwise (strided
    logits, float32 logits above ``FLOAT32_EXP_KERNEL_LIMIT`` elements)."""
    small_enough = logits.size <= FLOAT32_EXP_KERNEL_LIMIT or logits.dtype == np.float64
    return rows_kernel if small_enough and logits.flags.c_contiguous else rows_kernel.twin


def _cross_entropy_rows(
    logits: np.ndarray,
    targets: np.ndarray,
    class_weight: np.ndarray,
    *,
    ignore_index: int,
    label_smoothing: float,
    scale: float,
    reduction: str,
) -> Any:
    rows_kernel = _kernel_or_twin(cross_entropy_rows, logits)
    losses = rows_kernel(logits, targets, class_weight, ignore_index, label_smoothing)
    if reduction == "none":
        return losses
    return np.sum(losses) * scale


def _cross_entropy_rows_vjp(
    g: Any,
    out: Any,
    logits: Any,
    targets: np.ndarray,
    class_weight: np.ndarray,
    *,
    ignore_index: int,
    label_smoothing: float,
    scale: float,
    reduction: str,
) -> Any:
    if type(g) is np.ndarray and type(logits) is np.ndarray:
        if reduction == "none":
            row_cotangents = g.astype(np.float64)
        else:
            row_cotangents = np.full(len(targets), float(g) * scale)
        vjp_kernel = _kernel_or_twin(cross_entropy_vjp_rows, logits)
        return vjp_kernel(logits, targets, class_weight, ignore_index, label_smoothing, row_cotangents)
    # Under create_graph: the general op's VJP, recorded, on the one-hot coefficients.
    coefficients, _ = _index_coefficients(
        "cross_entropy", np.shape(logits), targets, class_weight, ignore_index, label_smoothing
    )
    coefficients = coefficients.astype(logits.dtype)
    return _cross_entropy_vjp_logits(g, out, logits, coefficients, 1, scale, reduction)


cross_entropy_rows_op = Op(
    _cross_entropy_rows, _cross_entropy_rows_vjp, None, None, name="cross_entropy", keeps_output=False
)


def _row_targets(name: str, logits: np.ndarray, targets: np.ndarray, ignore_index: int) -> np.ndarray | None:
    """``targets`` as int64 class indices for ``cross_entropy_rows_op`` when logits ``(N, C)`` float32/float64
    and targets ``(N,)`` fit it, else None; an index out of range raises ``IndexError``."""
    if logits.ndim != 2 or logits.dtype not in KERNEL_DTYPES or targets.shape != logits.shape[:1]:
        return None
    classes = logits.shape[1]
    if targets.size and (targets.min() < 0 or targets.max() >= classes):
        outside = (targets < 0) | (targets >= classes)
        bad = targets[outside & (targets != ignore_index)]
        if bad.size:
            raise IndexError(f"{name}: target {bad[0]} is out of range for {classes} classes")
    return targets.astype(np.int64, copy=False)


def cross_entropy(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """Cross-entropy between ``softmax(input)`` along the class axis and ``target``.

    ``input`` holds logits of shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``. ``target`` is either an
    integer array of class indices (shape ``()``, ``(N,)`` or ``(N, d1, ...)``; entries equal to
    ``ignore_index`` take no part) or a float array of class probabilities of the input's shape.
    ``weight`` (shape ``(C,)``) rescales each class; with ``'mean'`` and index targets the sum is divided
    by the total weight of the targets, as torch does. ``label_smoothing`` mixes the target with the
    uniform distribution.

    Examples
    --------
    >>> logits = np.array([[0.0, np.log(3.0)]])
    >>> round(float(cross_entropy(logits, np.array([1]))), 6)
    0.287682
    """
    name = "cross_entropy"
    _check_reduction(name, reduction)
    refuse_grad(name, "weight", weight, "torch does not differentiate it either")
    refuse_grad(name, "label_smoothing", label_smoothing, "it is a number", instead=".item()")
    if isinstance(label_smoothing, Tensor):
        label_smoothing = label_smoothing.item()
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing}")
    shape = _shape(input)
    axis = _class_axis(name, shape)
    classes = shape[axis]
    target_data = _data(target)
    if target_data.dtype.kind in "iu":
        targets = _row_targets(name, _data(input), target_data, ignore_index)
        if targets is not None and (weight is None or _shape(weight) == (classes,)):
            return _cross_entropy_of_rows(input, targets, weight, ignore_index, reduction, label_smoothing)
        coefficients, total_weight = _index_coefficients(
            name, shape, target_data, weight, ignore_index, label_smoothing
        )
        coefficients = coefficients.astype(_data(input).dtype)
        scale = 1.0 / total_weight if total_weight else float("nan")
    elif target_data.dtype.kind == "f":
        if target_data.shape != shape:
            raise ValueError(
                f"{name}: probability targets must have the input's shape {shape}, got {target_data.shape}"
            )
        coefficients = target
        if label_smoothing:
            coefficients = coefficients * (1 - label_smoothing) + label_smoothing / classes
        if weight is not None:
            if _shape(weight) != (classes,):
                raise ValueError(f"{name}: weight must have shape ({classes},), got {_shape(weight)}")
            broadcast_shape = [1] * len(shape)
            broadcast_shape[axis] = classes
            class_weight = np.reshape(_data(weight), broadcast_shape).astype(_data(input).dtype)
            coefficients = coefficients * class_weight
        samples = int(np.prod(shape)) // classes if classes else 0
        scale = 1.0 / samples if samples else float("nan")
    else:
        raise TypeError(
            f"{name}: target must be integer class indices or float probabilities, got dtype "
            f"{target_data.dtype.name}"
        )
    if reduction == "sum":
        scale = 1.0
    return cross_entropy_op(input, coefficients, axis=axis, scale=scale, reduction=reduction)


def _cross_entropy_of_rows(
    input: Any, targets: np.ndarray, weight: Any, ignore_index: int, reduction: str, label_smoothing: float
) -> Any:
    """``cross_entropy`` of logits ``(N, C)`` against class indices ``(N,)`` (checked), as one row op."""
    classes = _shape(input)[1]
    class_weight = np.ones(classes) if weight is None else _data(weight).astype(np.float64)
    if reduction == "sum":
        scale = 1.0
    else:
        kept_targets = targets[targets != ignore_index]
        total_weight = float(kept_targets.size if weight is None else np.sum(class_weight[kept_targets]))
        scale = 1.0 / total_weight if total_weight else float("nan")
    return cross_entropy_rows_op(
        input if isinstance(input, Tensor) else _data(input),
        targets,
        class_weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        scale=scale,
        reduction=reduction,
    )


def nll_loss(
    input: Any, target: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
) -> Any:
    """Negative log-likelihood: ``-input[n, target[n]] * weight[target[n]]`` for log-probabilities ``input``.

    Shapes and the ``'mean'`` denominator are those of ``cross_entropy`` with index targets.

    Examples
    --------
    >>> float(nll_loss(np.log(np.array([[0.25, 0.75]])), np.array([0])))  # -log(0.25)
    1.3862943611198906
    """
    name = "nll_loss"
    _check_reduction(name, reduction)
    refuse_grad(name, "weight", weight, "torch does not differentiate it either")
    shape = _shape(input)
    target_data = _data(target)
    if target_data.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices, got dtype {target_data.dtype.name}")
    coefficients, total_weight = _index_coefficients(name, shape, target_data, weight, ignore_index, 0.0)
    per_sample = -np.sum(input * coefficients.astype(_data(input).dtype), axis=_class_axis(name, shape))
    if reduction == "mean":
        return np.sum(per_sample) * (1.0 / total_weight if total_weight else float("nan"))
    return _reduce(per_sample, reduction)


def kl_div(input: Any, target: Any, reduction: str = "mean", log_target: bool = False) -> Any:
    """Kullback-Leibler divergence ``target * (log target - input)`` for log-probabilities ``input``.

    With ``log_target`` the target is given as log-probabilities too. Where a target probability is 0 its
    term is 0. ``reduction='batchmean'`` divides the sum by the first axis' length (the true KL divergence
    per sample); ``'mean'`` divides by the number of elements, as torch does.

    Examples
    --------
    >>> p = np.array([0.5, 0.5])
    >>> float(kl_div(np.log(p), p, reduction="sum"))
    0.0
    """
    name = "kl_div"
    _check_reduction(name, reduction, (*_REDUCTIONS, "batchmean"))
    _same_shape(name, input=input, target=target)
    if log_target:
        pointwise = np.exp(target) * (target - input)
    else:
        positive = target > 0
        # The inner where keeps log away from 0, so no nan reaches the gradient of the outer one.
        safe_log = np.log(np.where(positive, target, 1))
        pointwise = np.where(positive, target * (safe_log - input), 0)
    if reduction == "batchmean":
        shape = _shape(input)
        return np.sum(pointwise) * (1.0 / shape[0] if shape and shape[0] else float("nan"))
    return _reduce(pointwise, reduction)


# -- embeddings and rankings ---------------------------------------------------------------------------------
def _labels(name: str, y: Any, expected: tuple[int, ...]) -> np.ndarray:
    refuse_grad(name, "target", y, "it holds labels, 1 or -1")
    labels = _data(y)
    if labels.shape != expected:
        raise ValueError(f"{name}: expected labels of shape {expected}, got {labels.shape}")
    if labels.size and not np.all((labels == 1) | (labels == -1)):
        raise ValueError(f"{name}: labels must be 1 or -1")
    return labels


def hinge_embedding_loss(input: Any, target: Any, margin: float = 1.0, reduction: str = "mean") -> Any:
    """``input`` where ``target == 1``, ``max(0, margin - input)`` where ``target == -1``.

    Examples
    --------
    >>> float(hinge_embedding_loss(np.array([0.3, 0.4]), np.array([1, -1]), reduction="sum"))
    0.8999999999999999
    """
    name = "hinge_embedding_loss"
    _check_reduction(name, reduction)
    labels = _labels(name, target, _shape(input))
    return _reduce(np.where(labels == 1, input, np.maximum(margin - input, 0)), reduction)


def cosine_embedding_loss(
    input1: Any, input2: Any, target: Any, margin: float = 0.0, reduction: str = "mean"
) -> Any:
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where ``target == -1``.

    The cosine is taken along the last axis; inputs are ``(N, D)`` (or ``(D,)``), targets ``(N,)``
    (or ``()``).

    Examples
    --------
    >>> round(float(cosine_embedding_loss(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([1]))), 6)
    0.0
    """
    name = "cosine_embedding_loss"
    _check_reduction(name, reduction)
    _same_shape(name, input1=input1, input2=input2)
    shape = _shape(input1)
    if len(shape) not in (1, 2):
        raise ValueError(f"{name}: expected inputs of shape (N, D) or (D,), got {shape}")
    labels = _labels(name, target, shape[:-1])
    eps = 1e-12  # keeps the norms of zero vectors from dividing by zero, as torch's EPSILON
    dot = np.sum(input1 * input2, axis=-1)
    norms = np.sqrt((np.sum(input1 * input1, axis=-1) + eps) * (np.sum(input2 * input2, axis=-1) + eps))
    cosine = dot / norms
    return _reduce(np.where(labels == 1, 1 - cosine, np.maximum(cosine - margin, 0)), reduction)


def margin_ranking_loss(
    input1: Any, input2: Any, target: Any, margin: float = 0.0, reduction: str = "mean"
) -> Any:
    """``max(0, -target * (input1 - input2) + margin)``: ``target == 1`` asks for ``input1`` ranked higher.

    Examples
    --------
    >>> float(margin_ranking_loss(np.array([1.0]), np.array([2.0]), np.array([1])))
    1.0
    """
    name = "margin_ranking_loss"
    _check_reduction(name, reduction)
    _same_shape(name, input1=input1, input2=input2)
    labels = _labels(name, target, _shape(input1))
    sign = -labels.astype(np.result_type(_data(input1), _data(input2)))  # int labels must not promote
    return _reduce(np.maximum((input1 - input2) * sign + margin, 0), reduction)

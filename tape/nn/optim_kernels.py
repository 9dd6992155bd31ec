"""Fused optimizer updates: each rule of ``tape.nn.optim`` as one pass over a parameter, its gradient and
its state, written in place, as a numba kernel beside the plain-numpy twin it must agree with.

Every rule comes in three pieces:

- ``_<rule>_numpy``, the twin: the update as numpy expressions, in the order of torch's documented rule
  (so that float64 trajectories match torch's); it writes the parameter and the state in place;
- ``<rule>_kernel``: one loop over the elements doing what the twin does, operation by operation (no
  fastmath, nothing reassociated), so that it gives the twin's numbers to the bit, in float64 and float32;
- ``<rule>``: what the optimizer calls; it runs the kernel when the kernel pays and the twin otherwise.

A kernel runs when the parameter is float32 or float64 and its gradient and state buffers have its dtype
and shape and are all C-contiguous and writeable: it walks the flat buffers once, where the twin makes 4
to 15 numpy passes with temporaries of the parameter's size. That pays at every size (the call costs a
few microseconds, each numpy call about one) except for SGD without momentum or weight decay, whose twin is
the single expression ``value -= lr * grad``: it takes the kernel from ``PLAIN_SGD_MIN_SIZE`` elements.
``python -m benchmarks.kernels`` times each kernel against its twin.
Anything else (a transposed parameter, a float64 gradient for a float32 parameter) takes the twin, which
handles every layout as numpy does. The kernels are serial: with numba's threads a step took milliseconds
on the shared two-core machine they were measured on, whatever the size.

The scalars (learning rate, betas, ...) reach both as Python floats computed the same way. numpy rounds a
Python float to a float32 array's dtype before using it; the kernels do the same explicitly
(``value.dtype.type(x)``), so a float32 kernel rounds every operation as numpy does. They divide with
``np.divide``: numba's ``/`` tests every divisor for zero (to raise ZeroDivisionError, where numpy gives
inf or nan), and that test keeps the loop from being vectorized (about 4x slower).

A buffer that a rule does not keep (the momentum buffer without momentum, amsgrad's running maximum, the
centered rule's running mean) is passed as None, to the kernel as to its twin, and each rule has one loop
that writes a buffer under ``if buffer is not None``. That test is settled when numba compiles the kernel,
not as it runs: an argument of type None prunes the branch, so every set of buffers gets a loop of its own
(compiled on its first use, once per dtype) without a store under a condition, which LLVM would not
vectorize (that cost 2-6x). Nothing here records on the tape: the arrays are plain ndarrays, and the
optimizer bumps the parameter's version itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tape.jit import Kernel, kernel

__all__ = [
    "PLAIN_SGD_MIN_SIZE",
    "adagrad",
    "adagrad_kernel",
    "adam",
    "adam_kernel",
    "rmsprop",
    "rmsprop_kernel",
    "sgd",
    "sgd_kernel",
]

#: SGD without momentum or weight decay takes its twin (one numpy expression) below this many elements,
#: where the kernel's call (numba typing nine arguments, the buffers flattened) costs more than the pass
#: it saves. Measured with ``python -m benchmarks.kernels`` (the optimizer cases).
PLAIN_SGD_MIN_SIZE = 2048

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _takes_kernel(value: np.ndarray, grad: np.ndarray, *buffers: np.ndarray | None) -> bool:
    """Whether ``value``, ``grad`` and the state ``buffers`` (None: not kept) fit the kernel: float32 or
    float64, one dtype and shape, C-contiguous and writeable (one compiled signature per dtype)."""
    if value.dtype not in _KERNEL_DTYPES:
        return False
    for array in (value, grad, *buffers):
        if array is not None:
            flags = array.flags
            if not (flags.c_contiguous and flags.writeable) or array.dtype != value.dtype:
                return False
            if array.shape != value.shape:
                return False
    return True


def _update(
    rule: Kernel[None], arrays: tuple[np.ndarray | None, ...], scalars: tuple[Any, ...], fused: bool = True
) -> None:
    """``rule(*arrays, *scalars)``: the kernel on 1-d views when ``fused`` and the arrays fit it (see
    ``_takes_kernel``), the numpy twin on the arrays as they are otherwise."""
    if fused and _takes_kernel(*arrays):
        rule(*(None if array is None else array.reshape(-1) for array in arrays), *scalars)
    else:
        rule.twin(*arrays, *scalars)


# -- SGD -----------------------------------------------------------------------------------------------------
def _sgd_numpy(
    value: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    lr: float,
    weight_decay: float,
    momentum: float,
    gradient_weight: float,
    nesterov: bool,
    first_step: bool,
) -> None:
    """numpy twin of ``sgd_kernel``."""
    if weight_decay:
        grad = grad + weight_decay * value
    if momentum_buffer is not None:
        if first_step:
            momentum_buffer[...] = grad
        else:
            momentum_buffer *= momentum
            momentum_buffer += gradient_weight * grad
        grad = grad + momentum * momentum_buffer if nesterov else momentum_buffer
    value -= lr * grad


@kernel(_sgd_numpy)
def sgd_kernel(
    value: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    lr: float,
    weight_decay: float,
    momentum: float,
    gradient_weight: float,
    nesterov: bool,
    first_step: bool,
) -> None:
    """One SGD step in place, over flat (1-d, C-contiguous) buffers of one dtype.

    ``g = grad + weight_decay * value``; with a ``momentum_buffer``, ``b = g`` on the first step and
    ``b = momentum * b + gradient_weight * g`` after (``gradient_weight = 1 - dampening``), then
    ``g = g + momentum * b`` (Nesterov) or ``g = b``; finally ``value -= lr * g``. ``momentum_buffer`` is
    None without momentum.

    Examples
    --------
    >>> value, buffer = np.ones(2), np.zeros(2)
    >>> sgd_kernel(value, np.full(2, 2.0), buffer, 0.1, 0.0, 0.9, 1.0, False, True)
    >>> value, buffer
    (array([0.8, 0.8]), array([2., 2.]))
    """
    scalar = value.dtype.type
    lr, weight_decay, momentum, gradient_weight = (
        scalar(lr),
        scalar(weight_decay),
        scalar(momentum),
        scalar(gradient_weight),
    )
    for i in range(value.shape[0]):
        x = value[i]
        g = grad[i] + weight_decay * x if weight_decay != 0 else grad[i]
        if momentum_buffer is not None:  # settled when compiled (see the module docstring)
            previous = momentum_buffer[i]
            b = g if first_step else previous * momentum + gradient_weight * g
            momentum_buffer[i] = b
            g = g + momentum * b if nesterov else b
        value[i] = x - lr * g


def sgd(
    value: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    first_step: bool = False,
) -> None:
    """One SGD step: ``value`` (and ``momentum_buffer``, with momentum) updated in place.

    Parameters
    ----------
    value, grad : ndarray
        The parameter (written) and its gradient, of one shape.
    momentum_buffer : ndarray or None
        The momentum buffer (written; with ``first_step`` its contents are ignored); None without momentum.
    lr, weight_decay, momentum, dampening, nesterov :
        The hyperparameters, as ``tape.nn.optim.SGD`` takes them.
    first_step : bool
        The momentum buffer starts as the gradient.

    Examples
    --------
    >>> value = np.array([1.0, 2.0])
    >>> sgd(value, np.array([1.0, -1.0]), None, lr=0.5)
    >>> value
    array([0.5, 2.5])
    """
    if momentum and momentum_buffer is None:
        raise ValueError("sgd: momentum needs a momentum_buffer of the parameter's shape")
    buffer = momentum_buffer if momentum else None
    fused = momentum or weight_decay or value.size >= PLAIN_SGD_MIN_SIZE
    scalars = (
        float(lr),
        float(weight_decay),
        float(momentum),
        float(1 - dampening),
        bool(nesterov),
        bool(first_step),
    )
    _update(sgd_kernel, (value, grad, buffer), scalars, fused=bool(fused))


# -- Adam and AdamW ------------------------------------------------------------------------------------------
def _adam_numpy(
    value: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray | None,
    beta1: float,
    beta1_complement: float,
    beta2: float,
    beta2_complement: float,
    eps: float,
    weight_decay: float,
    decoupled_decay: float,
    step_size: float,
    root_correction: float,
) -> None:
    """numpy twin of ``adam_kernel``."""
    if weight_decay:
        grad = grad + weight_decay * value
    exp_avg *= beta1
    exp_avg += beta1_complement * grad
    exp_avg_sq *= beta2
    exp_avg_sq += beta2_complement * grad * grad
    second = exp_avg_sq
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    denominator = np.sqrt(second) / root_correction + eps
    update = step_size * exp_avg / denominator
    if decoupled_decay:
        update = update + decoupled_decay * value
    value -= update


@kernel(_adam_numpy)
def adam_kernel(
    value: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray | None,
    beta1: float,
    beta1_complement: float,
    beta2: float,
    beta2_complement: float,
    eps: float,
    weight_decay: float,
    decoupled_decay: float,
    step_size: float,
    root_correction: float,
) -> None:
    """One Adam step in place, over flat (1-d, C-contiguous) buffers of one dtype.

    ``g = grad + weight_decay * value`` (L2 decay), ``m = beta1 m + (1 - beta1) g``,
    ``v = beta2 v + (1 - beta2) g g`` (with amsgrad ``v`` is then the running maximum kept in
    ``max_exp_avg_sq``), ``value -= step_size m / (sqrt(v) / root_correction + eps) + decoupled_decay value``
    where ``step_size = lr / (1 - beta1^t)`` and ``root_correction = sqrt(1 - beta2^t)``.
    ``max_exp_avg_sq`` is None without amsgrad.

    Examples
    --------
    >>> value, m, v = np.ones(2), np.zeros(2), np.zeros(2)
    >>> adam_kernel(value, np.ones(2), m, v, None, 0.9, 0.1, 0.999, 0.001, 1e-8, 0.0, 0.0, 1.0, 0.001**0.5)
    >>> np.round(value, 6)
    array([0., 0.])
    """
    scalar = value.dtype.type
    beta1, beta1_complement, beta2, beta2_complement = (
        scalar(beta1),
        scalar(beta1_complement),
        scalar(beta2),
        scalar(beta2_complement),
    )
    eps, weight_decay, decoupled_decay = scalar(eps), scalar(weight_decay), scalar(decoupled_decay)
    step_size, root_correction = scalar(step_size), scalar(root_correction)
    for i in range(value.shape[0]):
        x = value[i]
        g = grad[i] + weight_decay * x if weight_decay != 0 else grad[i]
        m = exp_avg[i] * beta1 + beta1_complement * g
        v = exp_avg_sq[i] * beta2 + beta2_complement * g * g
        exp_avg[i], exp_avg_sq[i] = m, v
        if max_exp_avg_sq is not None:  # amsgrad, settled when compiled (see the module docstring)
            largest = max_exp_avg_sq[i]
            v = v if v > largest or v != v else largest  # as np.maximum: a NaN wins
            max_exp_avg_sq[i] = v
        update = np.divide(step_size * m, np.divide(np.sqrt(v), root_correction) + eps)
        value[i] = x - (update + decoupled_decay * x if decoupled_decay != 0 else update)


def adam(
    value: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray | None,
    step: int,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> None:
    """Step ``step`` (from 1) of Adam, or of AdamW when ``decoupled``: ``value`` and the state in place.

    Parameters
    ----------
    value, grad : ndarray
        The parameter (written) and its gradient, of one shape.
    exp_avg, exp_avg_sq : ndarray
        The running means of the gradient and of its square (written).
    max_exp_avg_sq : ndarray or None
        The running maximum of ``exp_avg_sq`` for amsgrad (written); None without amsgrad.
    step : int
        The number of this step, counted from 1 (for the bias corrections).
    lr, betas, eps, weight_decay :
        The hyperparameters, as ``tape.nn.optim.Adam`` takes them.
    decoupled : bool
        Decay the weights apart from the gradient (AdamW) instead of adding ``weight_decay * value`` to it.

    Examples
    --------
    >>> value, m, v = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> adam(value, np.array([0.5]), m, v, None, step=1, lr=0.1)
    >>> np.round(value, 6)
    array([0.9])
    """
    beta1, beta2 = betas
    scalars = (
        float(beta1),
        float(1 - beta1),
        float(beta2),
        float(1 - beta2),
        float(eps),
        0.0 if decoupled else float(weight_decay),
        float(lr * weight_decay) if decoupled else 0.0,
        float(lr / (1 - beta1**step)),
        math.sqrt(1 - beta2**step),
    )
    _update(adam_kernel, (value, grad, exp_avg, exp_avg_sq, max_exp_avg_sq), scalars)


# -- RMSprop -------------------------------------------------------------------------------------------------
def _rmsprop_numpy(
    value: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray | None,
    momentum_buffer: np.ndarray | None,
    lr: float,
    alpha: float,
    alpha_complement: float,
    eps: float,
    weight_decay: float,
    momentum: float,
) -> None:
    """numpy twin of ``rmsprop_kernel``."""
    if weight_decay:
        grad = grad + weight_decay * value
    square_avg *= alpha
    square_avg += alpha_complement * grad * grad
    second_moment = square_avg
    if grad_avg is not None:
        grad_avg *= alpha
        grad_avg += alpha_complement * grad
        second_moment = square_avg - grad_avg * grad_avg
    average = np.sqrt(second_moment) + eps
    if momentum_buffer is not None:
        momentum_buffer *= momentum
        momentum_buffer += grad / average
        value -= lr * momentum_buffer
    else:
        value -= lr * grad / average


@kernel(_rmsprop_numpy)
def rmsprop_kernel(
    value: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray | None,
    momentum_buffer: np.ndarray | None,
    lr: float,
    alpha: float,
    alpha_complement: float,
    eps: float,
    weight_decay: float,
    momentum: float,
) -> None:
    """One RMSprop step in place, over flat (1-d, C-contiguous) buffers of one dtype.

    ``g = grad + weight_decay * value``, ``s = alpha s + (1 - alpha) g g``; centered (with a ``grad_avg``):
    ``a = alpha a + (1 - alpha) g`` and ``d = sqrt(s - a a) + eps``, else ``d = sqrt(s) + eps``; with a
    ``momentum_buffer`` ``b = momentum b + g / d`` and ``value -= lr b``, else ``value -= lr g / d``.
    ``grad_avg`` is None when not centered, ``momentum_buffer`` None without momentum.

    Examples
    --------
    >>> value, s = np.ones(2), np.zeros(2)
    >>> rmsprop_kernel(value, np.ones(2), s, None, None, 0.01, 0.99, 0.01, 0.0, 0.0, 0.0)
    >>> np.round(value, 6)
    array([0.9, 0.9])
    """
    scalar = value.dtype.type
    lr, alpha, alpha_complement = scalar(lr), scalar(alpha), scalar(alpha_complement)
    eps, weight_decay, momentum = scalar(eps), scalar(weight_decay), scalar(momentum)
    for i in range(value.shape[0]):
        x = value[i]
        g = grad[i] + weight_decay * x if weight_decay != 0 else grad[i]
        s = square_avg[i] * alpha + alpha_complement * g * g
        square_avg[i] = s
        second_moment = s
        if grad_avg is not None:  # centered, settled when compiled (see the module docstring)
            a = grad_avg[i] * alpha + alpha_complement * g
            grad_avg[i] = a
            second_moment = s - a * a
        d = np.sqrt(second_moment) + eps
        if momentum_buffer is not None:
            b = momentum_buffer[i] * momentum + np.divide(g, d)
            momentum_buffer[i] = b
            value[i] = x - lr * b
        else:
            value[i] = x - np.divide(lr * g, d)


def rmsprop(
    value: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray | None,
    momentum_buffer: np.ndarray | None,
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
) -> None:
    """One RMSprop step: ``value`` and the state updated in place.

    Parameters
    ----------
    value, grad : ndarray
        The parameter (written) and its gradient, of one shape.
    square_avg : ndarray
        The running mean of the squared gradient (written).
    grad_avg : ndarray or None
        The running mean of the gradient, kept when centered (written); None: not centered.
    momentum_buffer : ndarray or None
        The momentum buffer (written); None without momentum.
    lr, alpha, eps, weight_decay, momentum :
        The hyperparameters, as ``tape.nn.optim.RMSprop`` takes them.

    Examples
    --------
    >>> value, s = np.array([1.0]), np.zeros(1)
    >>> rmsprop(value, np.array([2.0]), s, None, None, lr=0.01)
    >>> np.round(value, 6)
    array([0.9])
    """
    if momentum and momentum_buffer is None:
        raise ValueError("rmsprop: momentum needs a momentum_buffer of the parameter's shape")
    buffer = momentum_buffer if momentum else None
    scalars = (float(lr), float(alpha), float(1 - alpha), float(eps), float(weight_decay), float(momentum))
    _update(rmsprop_kernel, (value, grad, square_avg, grad_avg, buffer), scalars)


# -- Adagrad -------------------------------------------------------------------------------------------------
def _adagrad_numpy(
    value: np.ndarray,
    grad: np.ndarray,
    sum_of_squares: np.ndarray,
    rate: float,
    weight_decay: float,
    eps: float,
) -> None:
    """numpy twin of ``adagrad_kernel``."""
    if weight_decay:
        grad = grad + weight_decay * value
    sum_of_squares += grad * grad
    value -= rate * grad / (np.sqrt(sum_of_squares) + eps)


@kernel(_adagrad_numpy)
def adagrad_kernel(
    value: np.ndarray,
    grad: np.ndarray,
    sum_of_squares: np.ndarray,
    rate: float,
    weight_decay: float,
    eps: float,
) -> None:
    """One Adagrad step in place, over flat (1-d, C-contiguous) buffers of one dtype.

    ``g = grad + weight_decay * value``, ``s += g g``, ``value -= rate g / (sqrt(s) + eps)``, where
    ``rate`` is the step's decayed learning rate.

    Examples
    --------
    >>> value, s = np.ones(2), np.zeros(2)
    >>> adagrad_kernel(value, np.full(2, 3.0), s, 0.1, 0.0, 0.0)
    >>> value, s
    (array([0.9, 0.9]), array([9., 9.]))
    """
    scalar = value.dtype.type
    rate, weight_decay, eps = scalar(rate), scalar(weight_decay), scalar(eps)
    for i in range(value.shape[0]):
        x = value[i]
        g = grad[i] + weight_decay * x if weight_decay != 0 else grad[i]
        s = sum_of_squares[i] + g * g
        sum_of_squares[i] = s
        value[i] = x - np.divide(rate * g, np.sqrt(s) + eps)


def adagrad(
    value: np.ndarray,
    grad: np.ndarray,
    sum_of_squares: np.ndarray,
    step: int,
    lr: float,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
) -> None:
    """Step ``step`` (from 1) of Adagrad: ``value`` and ``sum_of_squares`` updated in place.

    Parameters
    ----------
    value, grad : ndarray
        The parameter (written) and its gradient, of one shape.
    sum_of_squares : ndarray
        The sum of the squared gradients so far (written).
    step : int
        The number of this step, counted from 1 (for the learning-rate decay).
    lr, lr_decay, weight_decay, eps :
        The hyperparameters, as ``tape.nn.optim.Adagrad`` takes them.

    Examples
    --------
    >>> value, s = np.array([1.0]), np.zeros(1)
    >>> adagrad(value, np.array([4.0]), s, step=1, lr=0.1, eps=0.0)
    >>> value
    array([0.9])
    """
    rate = float(lr / (1 + (step - 1) * lr_decay))
    _update(adagrad_kernel, (value, grad, sum_of_squares), (rate, float(weight_decay), float(eps)))

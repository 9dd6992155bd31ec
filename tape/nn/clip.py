"""Gradient clipping, as torch's: ``clip_grad_norm_`` scales all gradients to a joint norm at most
``max_norm``; ``clip_grad_value_`` clamps every element into ``[-clip_value, clip_value]``.

Reached as ``tape.nn.optim.clip_grad_norm_`` and ``clip_grad_value_``. It rewrites ``.grad`` only;
parameters and optimizer state are left alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor
from .optim_common import gradient_of

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp each gradient element into ``[-clip_value, clip_value]``, in the gradient's dtype.

    Parameters without a gradient are skipped. Each ``.grad`` is replaced by its clamped copy (the array
    it held is left as it was), as ``clip_grad_norm_`` does.

    Examples
    --------
    >>> import tape
    >>> w = tape.tensor([0.0, 0.0, 0.0], requires_grad=True)
    >>> w.grad = np.array([-3.0, 0.5, 2.0])
    >>> clip_grad_value_([w], 1.0)
    >>> w.grad
    array([-1. ,  0.5,  1. ])
    """
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value should be a non-negative number, got {clip_value}")
    for parameter in [parameters] if isinstance(parameters, Tensor) else list(parameters):
        grad = parameter.grad
        if grad is None:
            continue
        values = grad._data if isinstance(grad, Tensor) else np.asarray(grad)
        parameter.grad = np.clip(values, -clip_value, clip_value).astype(values.dtype, copy=False)


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale the gradients in place so that their joint ``norm_type``-norm is at most ``max_norm``.

    Returns the norm before clipping. Parameters without a gradient are skipped.

    Examples
    --------
    >>> import tape
    >>> w = tape.tensor([0.0, 0.0], requires_grad=True)
    >>> w.grad = np.array([3.0, 4.0])
    >>> clip_grad_norm_([w], 1.0), np.round(w.grad, 4)
    (5.0, array([0.6, 0.8]))
    """
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [gradient_of(p) for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    else:
        total = float(sum(float(np.sum(np.abs(g) ** norm_type)) for g in grads) ** (1.0 / norm_type))
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1:
        for parameter in parameters:
            if parameter.grad is not None:
                parameter.grad = gradient_of(parameter) * parameter.dtype.type(coefficient)
    return total

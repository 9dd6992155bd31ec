"""Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), and the namespace ``tape.nn.optim`` that also reaches
the ``Optimizer`` base (``optimizer``), ``LBFGS`` (``lbfgs``), the learning-rate schedulers
(``lr_scheduler``) and gradient clipping (``clip``), as ``torch.optim`` does.

Each ``step`` reads ``p.grad`` and updates the parameter's array in place on plain arrays (the optimizer's
state is plain arrays too), then bumps the parameter's version counter so that a record still holding the
old value refuses to run backward. The built-in rules live in ``optim_kernels``: one pass of a numba kernel
over the parameter, its gradient and its state where that pays, numpy expressions otherwise. They are
torch's documented rules, so the same hyperparameters give the same trajectory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from . import optim_kernels
from .clip import clip_grad_norm_, clip_grad_value_
from .lbfgs import LBFGS
from .lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)
from .optimizer import Optimizer

__all__ = [
    "LBFGS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "OneCycleLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepLR",
    "clip_grad_norm_",
    "clip_grad_value_",
]


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (heavy-ball or Nesterov) and weight decay.

    ``g = grad + weight_decay * p``; with momentum ``b = momentum * b + (1 - dampening) * g`` (``b = g`` at
    the first step) and ``g = g + momentum * b`` (Nesterov) or ``g = b``; then ``p -= lr * g``.

    Examples
    --------
    >>> import tape
    >>> w = tape.tensor([1.0], requires_grad=True)
    >>> w.grad = np.array([2.0])
    >>> SGD([w], lr=0.1).step()
    >>> w.data
    array([0.8])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"SGD: lr, momentum and weight_decay must be non-negative, got {lr}, {momentum}, "
                f"{weight_decay}"
            )
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov
        )
        super().__init__(params, defaults)

    def _update(self, value, grad, state, group):
        momentum, buffer, first_step = group["momentum"], state.get("momentum_buffer"), False
        if momentum and buffer is None:
            buffer = state["momentum_buffer"] = np.empty_like(value)  # filled with the first gradient
            first_step = True
        optim_kernels.sgd(
            value,
            grad,
            buffer,
            group["lr"],
            group["weight_decay"],
            momentum,
            group["dampening"],
            group["nesterov"],
            first_step,
        )


class Adam(Optimizer):
    """Adam: running means of the gradient and its square, bias-corrected.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with
    ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``; ``amsgrad`` uses the running maximum of ``v``.
    ``weight_decay`` (0 when None) adds ``weight_decay * p`` to the gradient (L2); for decoupled decay use
    ``AdamW``.
    """

    _decoupled = False
    #: The ``weight_decay`` of ``weight_decay=None``: 0 here, 0.01 for AdamW, as torch's.
    _default_weight_decay = 0.0

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
        amsgrad: bool = False,
    ) -> None:
        if weight_decay is None:
            weight_decay = self._default_weight_decay
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: lr, eps and weight_decay must be non-negative")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _update(self, value, grad, state, group):
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(value)
            state["exp_avg_sq"] = np.zeros_like(value)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(value)
        state["step"] += 1
        optim_kernels.adam(
            value,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            state["max_exp_avg_sq"] if group["amsgrad"] else None,
            state["step"],
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
            self._decoupled,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p -= lr * weight_decay * p`` besides the Adam step.

    Takes Adam's arguments; ``weight_decay`` is 0.01 when None (the default), as torch's.

    Examples
    --------
    >>> import tape
    >>> w = tape.tensor([1.0], requires_grad=True)
    >>> w.grad = np.array([0.0])
    >>> optimizer = AdamW([w], lr=0.1)
    >>> optimizer.step()
    >>> optimizer.param_groups[0]["weight_decay"], w.data  # 1 - 0.1 * 0.01
    (0.01, array([0.999]))
    """

    _decoupled = True
    _default_weight_decay = 1e-2


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square of it.

    ``v = alpha v + (1 - alpha) g^2``; ``centered`` subtracts the square of the running mean gradient;
    ``p -= lr * g / (sqrt(v) + eps)``, or through a momentum buffer when ``momentum > 0``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or momentum < 0 or alpha < 0:
            raise ValueError("RMSprop: lr, alpha, eps, weight_decay and momentum must be non-negative")
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered
        )
        super().__init__(params, defaults)

    def _update(self, value, grad, state, group):
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(value)
        if group["momentum"] and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(value)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(value)
        state["step"] += 1
        optim_kernels.rmsprop(
            value,
            grad,
            state["square_avg"],
            state["grad_avg"] if group["centered"] else None,
            state.get("momentum_buffer"),
            group["lr"],
            group["alpha"],
            group["eps"],
            group["weight_decay"],
            group["momentum"],
        )


class Adagrad(Optimizer):
    """Adagrad: divide by the root of the summed squared gradients.

    ``lr_t = lr / (1 + (t - 1) lr_decay)``, ``s += g^2``, ``p -= lr_t * g / (sqrt(s) + eps)``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        if lr < 0 or lr_decay < 0 or weight_decay < 0 or initial_accumulator_value < 0 or eps < 0:
            raise ValueError(
                "Adagrad: lr, lr_decay, weight_decay, initial_accumulator_value and eps must be >= 0"
            )
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, defaults)

    def _update(self, value, grad, state, group):
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(value, group["initial_accumulator_value"])
        state["step"] += 1
        optim_kernels.adagrad(
            value,
            grad,
            state["sum"],
            state["step"],
            group["lr"],
            group["lr_decay"],
            group["weight_decay"],
            group["eps"],
        )

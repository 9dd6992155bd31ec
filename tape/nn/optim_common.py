"""What optimizers, learning-rate schedulers and gradient clipping share: reading a parameter's gradient as
an array, and the checks of hyperparameter values. Holds no optimizer, scheduler or clipping rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor


def gradient_of(parameter: Tensor) -> np.ndarray | None:
    """``parameter.grad`` as a numpy array (a tensor's data under ``create_graph``), or None."""
    grad = parameter.grad
    if grad is None:
        return None
    return grad._data if isinstance(grad, Tensor) else np.asarray(grad)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (Python's or numpy's), booleans excluded."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer (Python's or numpy's), booleans excluded."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)

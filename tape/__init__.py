"""tape: reverse-mode automatic differentiation for numpy code.

Write numpy code on ``tape.tensor`` objects (operators, methods, ``np.sin(t)``, ``np.sum(t, axis=0)``,
``t @ w``, ``t[idx]``), call ``.backward()``, read ``.grad``. Each operation on a tensor that requires grad
is recorded on the tape; backward replays the records in reverse, calling each op's vector-Jacobian
product. No Jacobian is ever built.

>>> import numpy as np, tape
>>> x = tape.tensor([0.5, -1.0], requires_grad=True)
>>> np.sum(np.tanh(x) ** 2).backward()
>>> x.grad.round(4)
array([0.7864, -0.6347])

Importing tape compiles nothing.
"""

from . import jit, registry
from .checkpoint import checkpoint
from .creation import arange, full, ones, rand, randn, tensor, zeros
from .functional import grad, gradients, hvp, jvp, value_and_grad, vjp
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .jacobian import hessian, jacobian
from .op import Op, apply_in_place, gate, op
from .record import Record
from .tensor import Tensor

registry.NAMED["in_place"] = apply_in_place

import ops as _ops  # noqa: E402, F401  (registers the built-in ops with the registry)
from ops.erf import erf  # noqa: E402
from ops.special import log_softmax, logsumexp, softmax  # noqa: E402

from . import nn  # noqa: E402  (layers, losses and optimizers, built on the ops above)

__version__ = "0.1.0"

__all__ = [
    "GradcheckError",
    "Op",
    "Record",
    "Tensor",
    "arange",
    "checkpoint",
    "enable_grad",
    "erf",
    "full",
    "gate",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "gradients",
    "hessian",
    "hvp",
    "is_grad_enabled",
    "jacobian",
    "jit",
    "jvp",
    "log_softmax",
    "logsumexp",
    "nn",
    "no_grad",
    "ones",
    "op",
    "rand",
    "randn",
    "set_grad_enabled",
    "softmax",
    "tensor",
    "value_and_grad",
    "vjp",
    "zeros",
]

"""tape: reverse-mode automatic differentiation for numpy code.

Write numpy code on ``tape.tensor`` objects (operators, methods, ``np.sin(t)``, ``np.sum(t, axis=0)``,
``t @ w``, ``t[idx]``), call ``.backward()``, read ``.grad``. Each operation on a tensor that requires grad
is recorded on the tape; backward replays the records in reverse, calling each op's vector-Jacobian
product. No Jacobian is ever built.

>>> import numpy as np, tape
>>> x = tape.tensor([0.5, -1.0], requires_grad=True)
>>> np.sum(np.tanh(x) ** 2).backward()
>>> x.grad.round(4)
array([ 0.7269, -0.6397])

Importing tape compiles nothing.
"""

import importlib.util
import sys
from pathlib import Path


def _load_ops_from_checkout() -> None:
    """Import ``ops/`` as ``tape.ops`` when running from a source checkout.

    The op modules sit beside this package in the repository, and a wheel installs them as ``tape/ops/``
    (pyproject's ``package-dir``), so that nothing but ``tape`` lands in site-packages.
    """
    if Path(__file__).with_name("ops").is_dir() or "tape.ops" in sys.modules:
        return
    source = Path(__file__).resolve().parent.parent / "ops"
    spec = importlib.util.spec_from_file_location(
        "tape.ops", source / "__init__.py", submodule_search_locations=[str(source)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"tape: the op modules are missing (looked in {source})")
    sys.modules["tape.ops"] = module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


# isort: off
# In the order of the layers: the engine, the ops (which register with it), the transforms, tape.nn.
from . import jit, memory, registry
from .creation import arange, full, ones, rand, randn, tensor, zeros
from .dtypes import get_default_dtype, set_default_dtype
from .anomaly import detect_anomaly, is_detecting_anomaly, set_detect_anomaly
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .inplace import apply_in_place
from .op import Op, gate, op
from .record import Record
from .tensor import Tensor

_load_ops_from_checkout()
from . import ops  # type: ignore[attr-defined]  # (mypy reads the checkout, where ops/ is beside tape/)
from .ops.erf import erf
from .ops.special import log_softmax, logsumexp, softmax

from .checkpoint import checkpoint
from .compiled import TraceError, compile
from .functional import grad, gradients, hvp, jvp, value_and_grad, vjp
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .graph import Graph, graph
from .jacfwd import jacfwd
from .jacobian import hessian, jacobian
from .jacobian_operator import jacobian_operator
from .profile import profile

from . import data, nn
# isort: on

memory._apply_environment()

__version__ = "0.1.0"

__all__ = [
    "GradcheckError",
    "Graph",
    "Op",
    "Record",
    "Tensor",
    "TraceError",
    "apply_in_place",
    "arange",
    "checkpoint",
    "compile",
    "data",
    "detect_anomaly",
    "enable_grad",
    "erf",
    "full",
    "gate",
    "get_default_dtype",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "gradients",
    "graph",
    "hessian",
    "hvp",
    "is_detecting_anomaly",
    "is_grad_enabled",
    "jacfwd",
    "jacobian",
    "jacobian_operator",
    "jit",
    "jvp",
    "log_softmax",
    "logsumexp",
    "nn",
    "no_grad",
    "ones",
    "op",
    "ops",
    "profile",
    "rand",
    "randn",
    "registry",
    "set_default_dtype",
    "set_detect_anomaly",
    "set_grad_enabled",
    "softmax",
    "tensor",
    "value_and_grad",
    "vjp",
    "zeros",
]

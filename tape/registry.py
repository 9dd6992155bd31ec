"""Tables from numpy callables to tape ops, filled by the ``ops`` package when it is imported.

The core (``Tensor``, backward) looks ops up here by the numpy function they implement, so it never imports
a particular op. Nothing in this module computes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: ``np.add`` -> the op that computes it on tensors.
UFUNCS: dict[Any, Callable[..., Any]] = {}
#: ``np.sum``, ``np.reshape``, ... -> a callable with numpy's signature that runs the op on tensors.
FUNCTIONS: dict[Any, Callable[..., Any]] = {}
#: Ops the core needs by role rather than by numpy name (``getitem``, ``astype``, ...).
NAMED: dict[str, Callable[..., Any]] = {}


def implements(*numpy_callables: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``handler`` as what ``np.<name>(tensor, ...)`` runs, for each numpy callable given."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        for numpy_callable in numpy_callables:
            table = UFUNCS if _is_ufunc(numpy_callable) else FUNCTIONS
            table[numpy_callable] = handler
        return handler

    return register


def _is_ufunc(candidate: Any) -> bool:
    import numpy as np

    return isinstance(candidate, np.ufunc)

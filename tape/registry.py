"""The tables through which ``Tensor`` reaches what is built above it: ops, in-place writes, the sweep.

``Tensor`` sits low in the engine, below the modules that create tensors (``op``, ``inplace``,
``backward``), so it cannot import them. Instead each of its operations looks up, by the callable it stands
for, the handler that a module above registered: ``np.sin`` finds the sine op, ``operator.getitem`` the
indexing op, ``operator.iadd`` the in-place add, ``Tensor.backward`` the reverse sweep. The ops in
``tape.ops`` fill these tables as they are imported; ``import tape`` imports them all. Nothing here
computes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: ``np.add`` -> the op that computes it on tensors.
UFUNCS: dict[Any, Callable[..., Any]] = {}
#: ``np.sum``, ``np.reshape``, ``operator.getitem``, ``Tensor.backward``, ... -> a callable with the same
#: signature that runs it on tensors.
FUNCTIONS: dict[Any, Callable[..., Any]] = {}


#: ``"scipy.special"`` -> the module that registers the ops for that package's ufuncs. Such a module imports
#: the package, which ``import tape`` must not do, so it is imported when one of the package's ufuncs first
#: meets a tensor (``tape.dispatch``); ``tape.ops`` fills this table.
LAZY_UFUNC_MODULES: dict[str, str] = {}


#: An elementwise op -> its scalar formulas: ``forward(*args)``, then per argument ``vjp(g, out, *args)``
#: (None where it has none), on scalars, in numba's nopython subset. ``tape.compile`` fuses runs of such ops
#: into one numba kernel each way from them; the op itself stays what eager code and the kernels' twins run.
SCALAR_FORMULAS: dict[Any, tuple[Callable[..., Any], tuple[Callable[..., Any] | None, ...]]] = {}
#: The summing reductions (``np.sum``'s op) that may end such a run: the kernel accumulates their output, so
#: the summed values are never written to memory.
FUSIBLE_SUMS: set[Any] = set()


def implements(*callables: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated handler as what each of ``callables`` runs on tensors.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.registry.FUNCTIONS[np.sum] is not None
    True
    """

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        for callable_ in callables:
            table = UFUNCS if isinstance(callable_, np.ufunc) else FUNCTIONS
            table[callable_] = handler
        return handler

    return register

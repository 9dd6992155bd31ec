"""The differentiable operations, one module per family, each op's forward and VJPs side by side.

Importing this package registers every op with ``tape.registry``, which is how numpy calls and ``Tensor``
methods find them. ``import tape`` does that; nothing here is compiled at import.
"""

import tape  # noqa: F401  (the engine first: importing an op module alone must work; tape imports us back)

from . import (
    conv,
    decompositions,
    elementwise,
    erf,
    indexing,
    joining,
    linalg,
    losses,
    nn,
    nondifferentiable,
    rearrange,
    reductions,
    selection,
    shape,
    special,
    statistics,
)

__all__ = [
    "conv",
    "decompositions",
    "elementwise",
    "erf",
    "indexing",
    "joining",
    "linalg",
    "losses",
    "nn",
    "nondifferentiable",
    "rearrange",
    "reductions",
    "selection",
    "shape",
    "special",
    "statistics",
]

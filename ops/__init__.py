"""``tape.ops``: the differentiable operations, one module per family, each op's forward and VJPs together.

The source lives in ``ops/`` at the top of the repository and is installed as ``tape.ops``. Importing it
registers every op with ``tape.registry``, which is how numpy calls and ``Tensor`` methods find them;
``import tape`` does that. Op modules import the engine (``tape.tensor``, ``tape.op``, ...), never the
transforms, ``tape.nn`` or the facade. Nothing here is compiled at import.
"""

from tape.registry import LAZY_UFUNC_MODULES

from . import (
    attention,
    complex_parts,
    conv,
    decompositions,
    elementwise,
    erf,
    fft,
    indexing,
    joining,
    linalg,
    losses,
    nn,
    nondifferentiable,
    normalization,
    ranges,
    rearrange,
    recurrent,
    reductions,
    selection,
    shape,
    signal,
    spatial,
    special,
    statistics,
)

# scipy.special's ufuncs: their ops import scipy, so they are registered when one first meets a tensor.
LAZY_UFUNC_MODULES["scipy.special"] = f"{__name__}.scipy_special"

__all__ = [
    "attention",
    "complex_parts",
    "conv",
    "decompositions",
    "elementwise",
    "erf",
    "fft",
    "indexing",
    "joining",
    "linalg",
    "losses",
    "nn",
    "nondifferentiable",
    "normalization",
    "ranges",
    "rearrange",
    "recurrent",
    "reductions",
    "selection",
    "shape",
    "signal",
    "spatial",
    "special",
    "statistics",
]

"""The default floating dtype: what new parameters and constructors use when no ``dtype`` is given.

numpy's default, float64, unless ``set_default_dtype`` says otherwise (PyTorch users often want float32).
Like PyTorch's, the setting is one for the whole process. Data with a dtype of its own keeps it:
``tape.tensor(np.zeros(3, np.float32))`` is float32 whatever the default.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_FLOATING = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_default = [np.dtype(np.float64)]


def get_default_dtype() -> np.dtype:
    """The floating dtype of new parameters and of ``tape.zeros``, ``tape.ones``, ``tape.randn``, ...

    Examples
    --------
    >>> import tape
    >>> tape.get_default_dtype()
    dtype('float64')
    """
    return _default[0]


def set_default_dtype(dtype: Any) -> None:
    """Make ``dtype`` (float16, float32 or float64) the default floating dtype, for the whole process.

    It applies to parameters created afterwards (``nn.Linear(3, 2)``), to ``tape.zeros``, ``ones``,
    ``full`` of a float, ``rand``, ``randn``, ``arange`` of floats, and ``tape.tensor`` of Python floats;
    arrays keep their own dtype.

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.set_default_dtype(np.float32)
    >>> tape.zeros(2).dtype, tape.tensor([1.0]).dtype, tape.tensor(np.ones(1)).dtype
    (dtype('float32'), dtype('float32'), dtype('float64'))
    >>> tape.set_default_dtype(np.float64)
    """
    resolved = np.dtype(dtype)
    if resolved not in _FLOATING:
        raise TypeError(
            f"set_default_dtype: expected a floating dtype (float16, float32 or float64), got {resolved.name}"
        )
    _default[0] = resolved


def floating(dtype: Any) -> np.dtype:
    """``dtype`` as a numpy dtype, or the default floating dtype for ``None``."""
    return _default[0] if dtype is None else np.dtype(dtype)

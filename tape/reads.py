"""Which saved values a VJP reads, told from its code, so a record keeps and version-checks only those.

PyTorch's saved-tensor rule: ``x * c`` needs ``c`` for the gradient of ``x`` and nothing of ``x`` itself,
so writing into ``x`` afterwards is harmless, and refusing it would refuse correct programs
(``M[:, 0] = M[:, 0] * 2``). A VJP ``vjp(g, out, *args)`` reads the parameters its code loads (or that a
function defined inside it captures); a parameter it never names is not read. When that cannot be told
from the code (a builtin, a callable object, ``*args``, ``locals()``) every value counts as read, which is
never wrong, only stricter. This module computes nothing at run time: ops ask it once, when defined.
"""

from __future__ import annotations

import dis
import inspect
import types
from typing import Any

#: Position of the op's output among the values a VJP may read (the arguments are 0, 1, ...).
OUTPUT = -1


class Everything:
    """A read set that contains every position: the VJP's reads could not be told from its code."""

    def __contains__(self, position: object) -> bool:
        return True

    def __or__(self, other: object) -> Everything:
        return self

    __ror__ = __or__

    def __repr__(self) -> str:
        return "Everything()"


EVERYTHING = Everything()

# Instructions that name a local without reading it. Every other instruction that names a parameter
# counts as reading it (loads, in whatever form the Python version spells them, and any look-alike such
# as an attribute of the same name: counting too much is only stricter).
_WRITES = frozenset({"STORE_FAST", "DELETE_FAST", "STORE_DEREF", "DELETE_DEREF"})
# Builtins that read a frame's locals without naming them.
_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec"})


def values_read(vjp: Any) -> frozenset[int] | Everything:
    """The positions (``OUTPUT``, then argument numbers) of the values ``vjp(g, out, *args)`` reads.

    Examples
    --------
    >>> sorted(values_read(lambda g, out, x, y: g * y))
    [1]
    >>> sorted(values_read(lambda g, out, x: g * out))
    [-1]
    """
    if not isinstance(vjp, types.FunctionType):
        return EVERYTHING
    code = vjp.__code__
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or _INTROSPECTION & set(code.co_names):
        return EVERYTHING
    names = set(code.co_cellvars)  # parameters captured by a function defined inside
    for instruction in dis.get_instructions(code):
        if instruction.opname not in _WRITES:
            named = instruction.argval
            if isinstance(named, str):
                names.add(named)
            elif isinstance(named, tuple):
                names.update(item for item in named if isinstance(item, str))
    parameters = code.co_varnames[: code.co_argcount]
    # Parameter 0 is the cotangent, 1 the output (position OUTPUT), 2 and on the arguments (0 and on).
    return frozenset(
        position - 2 for position, name in enumerate(parameters) if position >= 1 and name in names
    )

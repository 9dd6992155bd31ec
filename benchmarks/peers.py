"""The libraries the benchmarks compare tape with, and one line that names those not installed here.

A suite runs a peer only where its module can be imported. Those that cannot are named once per suite,
in one line, ``peers not installed (skipped): PyTorch, JAX``; the tables hold only what ran, and the JSON
results keep the list. Nothing here imports a peer.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

# Module -> the name a reader knows it by, in the order they are named.
NAMES = {"torch": "PyTorch", "jax": "JAX", "autograd": "HIPS autograd", "mygrad": "MyGrad"}

Case = TypeVar("Case")


def installed(module: str | None) -> bool:
    """Whether ``module`` can be imported here; None (tape, numpy: no peer needed) always can."""
    return module is None or importlib.util.find_spec(module) is not None


def not_installed(modules: Iterable[str | None]) -> list[str]:
    """The modules among ``modules`` that cannot be imported, once each, in the order of ``NAMES``.

    Examples
    --------
    >>> not_installed(["numpy", None, "numpy"])
    []
    """
    missing = {module for module in modules if not installed(module)}
    order = list(NAMES)
    return sorted(missing, key=lambda module: order.index(module) if module in order else len(order))


def note_not_installed(modules: Iterable[str | None]) -> list[str]:
    """Print the one line naming the peers among ``modules`` that are not installed (nothing if all are);
    return those modules, for the results."""
    missing = not_installed(modules)
    if missing:
        names = ", ".join(NAMES.get(module, module) for module in missing)
        print(f"\npeers not installed (skipped): {names}")
    return missing


def installed_cases(
    builders: Mapping[str, Callable[..., dict[str, Case]]], *arguments: Any
) -> tuple[dict[str, Case], list[str]]:
    """Call ``builders[module](*arguments)`` for each peer module that is installed; return the cases they
    build, in order, and the modules skipped.

    Examples
    --------
    >>> def doubling(x):
    ...     return {"numpy x2": lambda: 2 * x}
    >>> cases, skipped = installed_cases({"numpy": doubling}, 3)
    >>> cases["numpy x2"](), skipped
    (6, [])
    """
    cases: dict[str, Case] = {}
    for module, build in builders.items():
        if installed(module):
            cases.update(build(*arguments))
    return cases, not_installed(builders)


@dataclass(frozen=True)
class Method:
    """One way to compute a benchmark's quantity: its table name, its library, its kind, how to prepare a
    call with no arguments from the benchmark's problem, and the peer module it needs (None for tape and
    numpy)."""

    name: str
    library: str
    kind: str
    prepare: Callable[[Any], Callable[[], Any]]
    module: str | None = None

    @property
    def installed(self) -> bool:
        return installed(self.module)

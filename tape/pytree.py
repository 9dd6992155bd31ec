"""Nested tuples, lists and dicts of arrays ("trees"): flatten to a list of leaves and build back.

The functional transforms accept functions of such trees, as JAX and autograd do. Anything that is not a
tuple, list or dict is a leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TreeDef = Any


def flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """The leaves of ``tree`` in a fixed order, and a description to rebuild it with ``unflatten``.

    Examples
    --------
    >>> flatten({"b": [1, 2], "a": 3})
    ([3, 1, 2], ('dict', ('a', 'b'), (None, ('list', 2, (None, None)))))
    """
    leaves: list[Any] = []
    return leaves, _flatten_into(tree, leaves)


def _flatten_into(tree: Any, leaves: list[Any]) -> TreeDef:
    if isinstance(tree, dict):
        keys = tuple(sorted(tree))
        return ("dict", keys, tuple(_flatten_into(tree[key], leaves) for key in keys))
    if isinstance(tree, tuple | list):
        kind = "tuple" if isinstance(tree, tuple) else "list"
        return (kind, len(tree), tuple(_flatten_into(item, leaves) for item in tree))
    leaves.append(tree)
    return None


def unflatten(treedef: TreeDef, leaves: list[Any]) -> Any:
    """Rebuild the tree described by ``treedef`` with ``leaves`` in place of the original leaves."""
    iterator = iter(leaves)
    return _build(treedef, iterator)


def _build(treedef: TreeDef, leaves: Any) -> Any:
    if treedef is None:
        return next(leaves)
    kind, shape, children = treedef
    built = [_build(child, leaves) for child in children]
    if kind == "dict":
        return dict(zip(shape, built, strict=True))
    return tuple(built) if kind == "tuple" else built


def tree_map(function: Callable[[Any], Any], tree: Any) -> Any:
    """Apply ``function`` to every leaf of ``tree``."""
    leaves, treedef = flatten(tree)
    return unflatten(treedef, [function(leaf) for leaf in leaves])

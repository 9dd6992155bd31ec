"""``checkpoint``: trade compute for memory by running a function's forward again during backward.

A checkpointed call is one record on the tape. Its forward runs without recording, so none of the
function's intermediate values are kept; its VJP runs the function again, recorded, and sweeps back
through that short-lived tape. Peak memory then holds one segment's intermediates at a time instead of
every segment's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .functional import gradients
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .op import Op
from .record import next_position
from .tensor import Tensor
from .trace import enter, first_outside, made_inside, track
from .views import refresh_if_stale


def checkpoint(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, without keeping ``fn``'s intermediate values for backward; they are recomputed.

    Every tensor ``fn`` should differentiate with respect to must be passed in ``args`` (parameters
    included): a tensor that ``fn`` reads from elsewhere and that requires grad makes backward raise.
    ``fn`` must be deterministic (no fresh random numbers) for the recomputation to match.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([0.5, 1.0], requires_grad=True)
    >>> block = lambda x: np.tanh(np.tanh(x) * 2)
    >>> tape.checkpoint(block, x).sum().backward()
    >>> x.grad.round(4)
    array([0.7395, 0.1455])
    """
    name = f"checkpoint({getattr(fn, '__name__', 'fn')})"

    def forward(*values: Any) -> Any:
        with no_grad():
            result = fn(*(Tensor(v) if isinstance(v, np.ndarray) else v for v in values))
        if not isinstance(result, Tensor | np.ndarray):
            raise TypeError(f"{name}: the function must return one tensor, got {type(result).__name__}")
        return np.asarray(result)

    def backward(g: Any, out: Any, *values: Any) -> list[Any]:
        return _recompute_vjp(fn, name, g, values)

    if is_grad_enabled() and not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        # Nothing to differentiate among the arguments, so no backward would run to check what fn reads:
        # run it recorded, and refuse if its result depends on a tensor from elsewhere.
        first_position = next_position()
        out = fn(*args)
        if isinstance(out, Tensor) and out.requires_grad:
            _refuse_outside_tensors(out, set(), first_position, name)
        return out
    return Op(forward, name=name, backward=backward)(*args)


def _recompute_vjp(fn: Callable[..., Any], name: str, g: Any, values: tuple[Any, ...]) -> list[Any]:
    create_graph = isinstance(g, Tensor)
    first_position = next_position()
    with enable_grad():
        call_args = list(values)
        tracked: dict[int, Tensor] = {}
        for k, value in enumerate(values):
            if isinstance(value, Tensor) or (isinstance(value, np.ndarray) and value.dtype.kind == "f"):
                # Under create_graph an argument carries its history; _track keeps the link.
                call_args[k] = tracked[k] = track(value, name)
        made_inside(tracked.values())
        out = fn(*call_args)
        refresh_if_stale(out)  # (a view returned after its base was written: a fresh cut)
    if not isinstance(out, Tensor) or not out.requires_grad:
        return [None] * len(values)
    _refuse_outside_tensors(out, set(map(id, tracked.values())), first_position, name)
    found = gradients(
        out,
        list(tracked.values()),
        g,
        retain_graph=create_graph,
        create_graph=create_graph,
        allow_unused=True,
    )
    cotangents: list[Any] = [None] * len(values)
    for k, cotangent in zip(tracked, found, strict=True):
        cotangents[k] = cotangent
    return cotangents


def _refuse_outside_tensors(out: Tensor, inputs: set[int], first_position: int, name: str) -> None:
    """Raise if the recomputed graph reaches a tensor that requires grad and is not an argument."""
    node = first_outside([out._record or out], inputs, first_position, entry=enter)
    if node is not None:
        shape = node.shape if isinstance(node, Tensor) else np.shape(node.out)
        raise RuntimeError(
            f"{name}: the function uses a tensor of shape {shape} that requires grad but was not "
            "passed as an argument, so its gradient would be lost; pass it to checkpoint(fn, ...)"
        )

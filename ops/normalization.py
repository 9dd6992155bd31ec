"""Group normalization: one op whose statistics run over each group of channels and the spatial axes.

``group_norm_op`` normalizes ``x`` of shape ``(N, C, *spatial)`` over each of its ``num_groups`` groups of
``C / num_groups`` channels together with every spatial axis, then scales and shifts each channel. Its
forward and joint VJP sit side by side and are written in numpy, so the VJP is recorded under
``create_graph`` and differentiates again. Instance normalization is the case ``num_groups == C``.
The shape checks and the functional forms with torch's names live in ``tape.nn.normalization``; this module
holds only the maths, and compiles nothing.

Examples
--------
>>> x = np.array([[[1.0], [3.0], [5.0], [7.0]]])  # (N, C, L) = (1, 4, 1): two groups of two channels
>>> group_norm_op(x, None, None, num_groups=2, eps=0.0).ravel()
array([-1.,  1., -1.,  1.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.op import Op

from .nn import _channel_shape, _normalize_backward, _normalized

__all__ = ["group_norm_op"]

_GROUP_AXES = (2,)  # the statistics axis of x seen as (N, num_groups, C / num_groups * spatial size)


def _grouped(x: Any, num_groups: int) -> Any:
    return np.reshape(x, (np.shape(x)[0], num_groups, -1))


def _group_norm(x: Any, weight: Any, bias: Any, num_groups: int, eps: float) -> Any:
    shape = np.shape(x)
    x_hat, _ = _normalized(_grouped(x, num_groups), _GROUP_AXES, eps)
    y = np.reshape(x_hat, shape)
    channel = _channel_shape(len(shape), shape[1])
    if weight is not None:
        y = y * np.reshape(weight, channel)
    return y if bias is None else y + np.reshape(bias, channel)


def _group_norm_backward(g: Any, out: Any, x: Any, weight: Any, bias: Any, num_groups: int, eps: float):
    shape = np.shape(x)
    channel = _channel_shape(len(shape), shape[1])
    x_hat, rstd = _normalized(_grouped(x, num_groups), _GROUP_AXES, eps)
    g_hat = g if weight is None else g * np.reshape(weight, channel)
    g_x = _normalize_backward(_grouped(g_hat, num_groups), x_hat, rstd, _GROUP_AXES)
    per_channel = (0, *range(2, len(shape)))  # weight and bias are per channel: sum over the rest
    return (
        np.reshape(g_x, shape),
        None if weight is None else np.sum(g * np.reshape(x_hat, shape), axis=per_channel),
        None if bias is None else np.sum(g, axis=per_channel),
    )


# group_norm_op(x, weight, bias, num_groups=G, eps=eps): unchecked; tape.nn.normalization.group_norm checks.
group_norm_op = Op(_group_norm, backward=_group_norm_backward, name="group_norm", shape_only=(2,))

"""Convolution and pooling layers: ``Conv1d``, ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, as in torch.nn.

The maths lives in ``tape.ops.conv`` (through ``tape.nn.functional``); this file holds the parameters and
settings, checks the input's shape and names the layer in errors. Parameters take ``dtype``, or the default
floating dtype (``tape.get_default_dtype()``); the random initialization (torch's: kaiming-uniform weight,
uniform bias, both bounded by ``1/sqrt(fan_in)``) takes an optional ``rng`` (a ``numpy.random.Generator``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..dtypes import floating
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["AvgPool2d", "Conv1d", "Conv2d", "MaxPool2d"]


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(x._data if isinstance(x, Tensor) else x)


def _tuple(value: Any, length: int, name: str, owner: str) -> tuple[int, ...]:
    """An int or a sequence of ``length`` ints as a tuple (the settings torch shows in its repr)."""
    items = (value,) * length if isinstance(value, int | np.integer) else tuple(value)
    if len(items) != length or not all(isinstance(item, int | np.integer) for item in items):
        raise ValueError(f"{owner}: {name} must be an int or {length} ints, got {value!r}")
    return tuple(int(item) for item in items)


class _ConvNd(Module):
    """What ``Conv1d`` and ``Conv2d`` share: parameters, initialization, settings and repr."""

    spatial: int = 2
    axes: str = "H, W"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible "
                f"by groups ({groups})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _tuple(kernel_size, self.spatial, "kernel_size", name)
        self.stride = _tuple(stride, self.spatial, "stride", name)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, self.spatial, "padding", name)
        if self.padding not in ("valid", "same") and isinstance(self.padding, str):
            raise ValueError(f"{name}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
        if self.padding == "same" and any(s != 1 for s in self.stride):
            raise ValueError(f"{name}: padding='same' needs stride 1, got stride {self.stride}")
        self.dilation = _tuple(dilation, self.spatial, "dilation", name)
        self.groups = groups
        self.weight = Parameter(
            np.empty((out_channels, in_channels // groups, *self.kernel_size), dtype=floating(dtype))
        )
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=floating(dtype)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw new weights (and bias) as at construction."""
        init.layer_default_(self.weight, self.bias, rng)

    def _check_input(self, x: Any) -> None:
        shape = _shape(x)
        if len(shape) != self.spatial + 2 or shape[1] != self.in_channels:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.in_channels}, {self.axes}), got {shape}"
            )

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1,) * self.spatial:
            text += f", stride={self.stride}"
        if self.padding != (0,) * self.spatial:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.spatial:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """2-D convolution over ``(N, in_channels, H, W)`` with a ``(out, in / groups, kH, kW)`` weight.

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are ints or pairs; ``padding`` may also be
    ``'valid'`` or ``'same'``. See ``ops.conv.conv2d``.

    Examples
    --------
    >>> layer = Conv2d(1, 8, kernel_size=3, rng=np.random.default_rng(0))
    >>> layer(np.ones((2, 1, 28, 28))).shape
    (2, 8, 26, 26)
    >>> layer
    Conv2d(1, 8, kernel_size=(3, 3))
    """

    spatial = 2
    axes = "H, W"

    def forward(self, x: Any) -> Any:
        self._check_input(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over ``(N, in_channels, L)`` with a ``(out, in / groups, kL)`` weight.

    Examples
    --------
    >>> layer = Conv1d(2, 4, kernel_size=3, padding=1, rng=np.random.default_rng(0))
    >>> layer(np.ones((5, 2, 10))).shape
    (5, 4, 10)
    """

    spatial = 1
    axes = "L"

    def forward(self, x: Any) -> Any:
        self._check_input(x)
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class _Pool2d(Module):
    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        kernel_hw = _tuple(kernel_size, 2, "kernel_size", name)
        padding_hw = _tuple(padding, 2, "padding", name)
        _tuple(self.stride, 2, "stride", name)
        if any(2 * p > k for p, k in zip(padding_hw, kernel_hw, strict=True)):
            raise ValueError(
                f"{name}: padding must be at most half the kernel size, got padding={padding} for "
                f"kernel_size={kernel_size}"
            )

    def _check_input(self, x: Any) -> None:
        shape = _shape(x)
        if len(shape) != 4:
            raise ValueError(f"{self!r}: expected input of shape (N, C, H, W), got {shape}")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """The maximum over each window of ``(N, C, H, W)``; see ``ops.conv.max_pool2d``.

    Examples
    --------
    >>> MaxPool2d(2)(np.ones((1, 3, 8, 8))).shape
    (1, 3, 4, 4)
    >>> MaxPool2d(2)
    MaxPool2d(kernel_size=2, stride=2, padding=0)
    """

    def forward(self, x: Any) -> Any:
        self._check_input(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """The mean over each window of ``(N, C, H, W)``, zero padding counted; see ``ops.conv.avg_pool2d``.

    Examples
    --------
    >>> AvgPool2d(3, stride=1, padding=1)(np.ones((1, 3, 8, 8))).shape
    (1, 3, 8, 8)
    """

    def forward(self, x: Any) -> Any:
        self._check_input(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

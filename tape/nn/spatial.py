"""Image layers beside convolution: ``ConvTranspose2d``, ``Upsample``, ``AdaptiveAvgPool2d``, ``Dropout2d``.

The maths lives in ``tape.ops.conv`` (``conv_transpose2d``) and ``tape.ops.spatial``; this file holds the
parameters and settings, checks the input's shape and names the layer in errors. Parameters take ``dtype``,
or the default floating dtype (``tape.get_default_dtype()``); random initialization (torch's) and the
dropout mask take an optional ``rng`` (a ``numpy.random.Generator``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.ops.conv import conv_transpose2d
from tape.ops.spatial import adaptive_avg_pool2d, dropout2d, interpolate

from ..dtypes import floating
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["AdaptiveAvgPool2d", "ConvTranspose2d", "Dropout2d", "Upsample"]


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(x._data if isinstance(x, Tensor) else x)


def _pair(value: Any, name: str, owner: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair (the settings torch shows in its repr)."""
    items = (value, value) if isinstance(value, int | np.integer) else tuple(value)
    if len(items) != 2 or not all(isinstance(item, int | np.integer) for item in items):
        raise ValueError(f"{owner}: {name} must be an int or 2 ints, got {value!r}")
    return int(items[0]), int(items[1])


class ConvTranspose2d(Module):
    """2-D transposed convolution over ``(N, in_channels, H, W)``, weight ``(in, out / groups, kH, kW)``.

    The gradient of ``Conv2d`` with respect to its input, as torch's ``ConvTranspose2d`` (same arguments,
    weight layout and initialization); see ``ops.conv.conv_transpose2d``.

    Examples
    --------
    >>> layer = ConvTranspose2d(8, 4, kernel_size=2, stride=2, rng=np.random.default_rng(0))
    >>> layer(np.ones((1, 8, 5, 5))).shape
    (1, 4, 10, 10)
    >>> layer
    ConvTranspose2d(8, 4, kernel_size=(2, 2), stride=(2, 2))
    >>> ConvTranspose2d(2, 2, 3)
    ConvTranspose2d(2, 2, kernel_size=(3, 3), stride=(1, 1))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
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
        self.kernel_size = _pair(kernel_size, "kernel_size", name)
        self.stride = _pair(stride, "stride", name)
        self.padding = _pair(padding, "padding", name)
        self.output_padding = _pair(output_padding, "output_padding", name)
        self.dilation = _pair(dilation, "dilation", name)
        if any(extra >= step for extra, step in zip(self.output_padding, self.stride, strict=True)):
            raise ValueError(
                f"{name}: output_padding must be smaller than stride, got "
                f"output_padding={self.output_padding} for stride={self.stride}"
            )
        self.groups = groups
        self.weight = Parameter(
            np.empty((in_channels, out_channels // groups, *self.kernel_size), dtype=floating(dtype))
        )
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=floating(dtype)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw new weights (and bias) as at construction (torch's; ``fan_in = out / groups * kH * kW``)."""
        init.layer_default_(self.weight, self.bias, rng)

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), got {shape}")
        return conv_transpose2d(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        )
        for name, default in (("padding", 0), ("dilation", 1), ("output_padding", 0)):  # torch's order
            if getattr(self, name) != (default, default):
                text += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Upsample(Module):
    """Resize ``(N, C, H, W)`` images to ``size`` or by ``scale_factor``; see ``ops.spatial.interpolate``.

    Examples
    --------
    >>> Upsample(scale_factor=2, mode="bilinear")(np.ones((1, 3, 4, 5))).shape
    (1, 3, 8, 10)
    >>> Upsample(size=(6, 6))
    Upsample(size=(6, 6), mode='nearest')
    """

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        scale_factor: float | tuple[float, float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if (size is None) == (scale_factor is None):
            given = "both" if size is not None else "neither"
            raise ValueError(f"{name}: give exactly one of size and scale_factor, got {given}")
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"{name}: mode must be 'nearest' or 'bilinear', got {mode!r}")
        self.size = size
        if scale_factor is None or np.ndim(scale_factor) == 0:
            self.scale_factor = None if scale_factor is None else float(scale_factor)  # type: ignore[arg-type]
        else:
            self.scale_factor = tuple(float(factor) for factor in scale_factor)  # type: ignore[assignment, union-attr]
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        if len(shape) != 4:
            raise ValueError(f"{self!r}: expected input of shape (N, C, H, W), got {shape}")
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        text = f"size={self.size!r}" if self.scale_factor is None else f"scale_factor={self.scale_factor!r}"
        return f"{text}, mode={self.mode!r}"


class AdaptiveAvgPool2d(Module):
    """Average ``(N, C, H, W)`` or ``(C, H, W)`` into ``output_size`` cells, as torch's layer of that name.

    ``output_size`` is an int or a pair; a None entry keeps that axis's size. See
    ``ops.spatial.adaptive_avg_pool2d``.

    Examples
    --------
    >>> AdaptiveAvgPool2d((1, None))(np.ones((2, 3, 5, 7))).shape
    (2, 3, 1, 7)
    """

    def __init__(self, output_size: int | tuple[int | None, int | None] | None) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        if len(shape) not in (3, 4):
            raise ValueError(f"{self!r}: expected input of shape (N, C, H, W) or (C, H, W), got {shape}")
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size!r}"


class Dropout2d(Module):
    """In training, zero whole channels of ``(N, C, H, W)`` with probability ``p`` and scale the rest by
    ``1 / (1 - p)``; the identity in eval mode. See ``ops.spatial.dropout2d``.

    Examples
    --------
    >>> layer = Dropout2d(0.5, rng=np.random.default_rng(0)).eval()
    >>> layer(np.ones((1, 2, 1, 1)))[:, :, 0, 0]
    array([[1., 1.]])
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout2d: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = np.random.default_rng() if rng is None else rng

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        if len(shape) != 4:
            raise ValueError(f"{self!r}: expected input of shape (N, C, H, W), got {shape}")
        return dropout2d(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"

"""Normalization layers with running statistics or groups: ``BatchNorm1d``, ``BatchNorm2d``, ``GroupNorm``,
``InstanceNorm2d``, and the functional forms ``group_norm`` and ``instance_norm``, with PyTorch's names,
arguments and defaults (``LayerNorm`` is in ``layers``).

The maths lives in the ops: ``tape.ops.nn.batch_norm`` (whose statistics run over every axis but the
channel axis, so it serves ``(N, C, H, W)`` as it serves ``(N, C, L)``) and ``tape.ops.normalization``'s
``group_norm_op``, which instance normalization reuses with one group per channel. This file checks shapes,
names the layer or function in its errors and keeps the running statistics; it computes no gradient itself.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from tape.ops.nn import batch_norm, refuse_grad
from tape.ops.normalization import group_norm_op

from ..dtypes import floating
from ..op import add_note
from ..tensor import Tensor
from ..tracing import refuse_while_tracing
from .module import Module, Parameter

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNormalization",
    "GroupNorm",
    "InstanceNorm2d",
    "group_norm",
    "instance_norm",
]


def _data(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(_data(x))


def _refuse_grad_of_numbers(function: str, **numbers: Any) -> None:
    for argument, value in numbers.items():
        refuse_grad(function, argument, value, "it is a number", ".item()")


def _check_per_channel(function: str, channels: int, **values: Any) -> None:
    for name, value in values.items():
        if value is not None and _shape(value) != (channels,):
            raise ValueError(f"{function}: {name} must have shape ({channels},), got {_shape(value)}")


# -- functional forms ----------------------------------------------------------------------------------------
def group_norm(input: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Any:
    """Normalize ``input`` of shape ``(N, C, *)`` over each group of ``C / num_groups`` channels and every
    trailing axis, then ``* weight + bias`` per channel (as ``torch.nn.functional.group_norm``).

    Parameters
    ----------
    input : array or tensor of shape ``(N, C, *)``.
    num_groups : number of groups; it must divide ``C``.
    weight, bias : arrays or tensors of shape ``(C,)``, or None.
    eps : added to the (biased) variance.

    Returns
    -------
    An array or tensor of ``input``'s shape. As in torch, a batch of one whose groups hold one value each
    (``C / num_groups`` times the spatial size is 1) is refused.

    Examples
    --------
    >>> x = np.array([[1.0, 3.0, 5.0, 7.0]])  # (N, C) = (1, 4)
    >>> group_norm(x, 2, eps=0.0)
    array([[-1.,  1., -1.,  1.]])
    """
    _refuse_grad_of_numbers("group_norm", num_groups=num_groups, eps=eps)
    shape = _shape(input)
    if len(shape) < 2:
        raise ValueError(f"group_norm: expected input of shape (N, C, *), got shape {shape}")
    channels = shape[1]
    if not isinstance(num_groups, int | np.integer) or num_groups <= 0 or channels % num_groups:
        raise ValueError(
            f"group_norm: num_groups must be a positive divisor of the input's {channels} channels "
            f"(axis 1 of shape {shape}), got num_groups={num_groups}"
        )
    _check_per_channel("group_norm", channels, weight=weight, bias=bias)
    if shape[0] * (channels // num_groups) * math.prod(shape[2:]) == 1:
        raise ValueError(
            f"group_norm: expected more than 1 value to normalize, got shape {shape} with "
            f"num_groups={num_groups} (a batch of one whose groups hold one value each)"
        )
    return group_norm_op(input, weight, bias, num_groups=int(num_groups), eps=eps)


def instance_norm(
    input: Any,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: Any = None,
    bias: Any = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Any:
    """Normalize each channel of each sample of ``input`` (shape ``(N, C, *spatial)``) over its spatial
    axes, then ``* weight + bias`` per channel (as ``torch.nn.functional.instance_norm``).

    With ``use_input_stats`` (training) each sample's own statistics are used, and the running ones (plain
    arrays of shape ``(C,)``, when given) are updated in place, unrecorded, with the batch average of the
    samples' means and unbiased variances: ``running = (1 - momentum) * running + momentum * average``.
    Without it the running statistics are used.

    Examples
    --------
    >>> x = np.array([[[1.0, 3.0], [0.0, 4.0]]])  # (N, C, L) = (1, 2, 2)
    >>> instance_norm(x, eps=0.0)
    array([[[-1.,  1.],
            [-1.,  1.]]])
    """
    _refuse_grad_of_numbers("instance_norm", momentum=momentum, eps=eps)
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        refuse_grad(
            "instance_norm", name, value, "it is a running statistic, updated in place without a record"
        )
    shape = _shape(input)
    if len(shape) < 3:
        raise ValueError(
            f"instance_norm: expected input of shape (N, C, *spatial) with at least one spatial axis, "
            f"got shape {shape}"
        )
    channels = shape[1]
    _check_per_channel(
        "instance_norm",
        channels,
        running_mean=running_mean,
        running_var=running_var,
        weight=weight,
        bias=bias,
    )
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: use_input_stats=False needs running_mean and running_var")
        return batch_norm(input, running_mean, running_var, weight, bias, training=False, eps=eps)
    count = math.prod(shape[2:])
    if count <= 1:
        raise ValueError(
            f"instance_norm: expected more than 1 spatial element when training, got shape {shape}"
        )
    if running_mean is not None and running_var is not None:
        refuse_while_tracing(
            "instance_norm updated its running statistics in training mode",
            "running statistics are updated outside the tape, so a replay would not update them: compile the "
            "model in eval mode (model.eval()), or train it without tape.compile",
        )
        data = _data(input)
        spatial = tuple(range(2, len(shape)))
        mean_buffer, var_buffer = _data(running_mean), _data(running_var)
        mean_buffer *= 1 - momentum
        mean_buffer += momentum * np.mean(np.mean(data, axis=spatial), axis=0)
        var_buffer *= 1 - momentum
        var_buffer += momentum * np.mean(np.var(data, axis=spatial), axis=0) * (count / (count - 1))
    return group_norm_op(input, weight, bias, num_groups=channels, eps=eps)


# -- layers --------------------------------------------------------------------------------------------------
class _RunningNorm(Module):
    """Parameters (``weight``, ``bias``) and running statistics (``running_mean``, ``running_var``,
    ``num_batches_tracked``) of the per-channel normalizations, laid out as torch's; its defaults are batch
    normalization's."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=floating(dtype)))
            self.bias = Parameter(np.zeros(num_features, dtype=floating(dtype)))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=floating(dtype)))
            self.register_buffer("running_var", np.ones(num_features, dtype=floating(dtype)))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def _momentum(self) -> float:
        """Count this training batch and return the momentum of its running-statistics update: with
        ``momentum=None``, ``1 / batches seen``, so every batch weighs the same (a cumulative average)."""
        self._buffers["num_batches_tracked"] += 1
        if self.momentum is None:
            return 1.0 / float(self._buffers["num_batches_tracked"])
        return self.momentum

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_RunningNorm):
    """Normalize each feature (axis 1 of ``(N, C)`` or ``(N, C, L)``) over the batch; keep running statistics
    for evaluation mode (an exponential average with ``momentum``, or with ``momentum=None`` the plain
    average of every batch seen).

    Examples
    --------
    >>> norm = BatchNorm1d(3)
    >>> y = norm(np.random.default_rng(0).standard_normal((8, 3)))
    >>> norm.running_mean.shape, int(norm.num_batches_tracked)
    ((3,), 1)
    """

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        if len(shape) not in (2, 3) or shape[1] != self.num_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.num_features}) or (N, {self.num_features}, L), "
                f"got shape {shape}"
            )
        use_batch = self.training or not self.track_running_stats
        momentum = self._momentum() if self.training and self.track_running_stats else self.momentum
        return batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, use_batch, momentum, self.eps
        )


class BatchNorm2d(_RunningNorm):
    """Normalize each channel of ``(N, C, H, W)`` images over the batch and both spatial axes, then scale
    and shift it; keep running statistics for evaluation mode (an exponential average with ``momentum``,
    or with ``momentum=None`` the plain average of every batch seen; the variance is the unbiased one).

    Parameters
    ----------
    num_features : the number of channels ``C``.
    eps : added to the variance.
    momentum : weight of each new batch in the running statistics, or None for a cumulative average.
    affine : whether to learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
    track_running_stats : whether to keep running statistics; without them evaluation mode uses the
        batch's own statistics too.
    dtype : of the parameters and running statistics (default: ``tape.get_default_dtype()``).

    Examples
    --------
    >>> norm = BatchNorm2d(3)
    >>> y = norm(np.random.default_rng(0).standard_normal((4, 3, 5, 5)))
    >>> y.shape, norm.running_mean.shape, int(norm.num_batches_tracked)
    ((4, 3, 5, 5), (3,), 1)
    """

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        if len(shape) != 4 or shape[1] != self.num_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.num_features}, H, W), got shape {shape}"
            )
        use_batch = self.training or not self.track_running_stats
        if use_batch and shape[0] * shape[2] * shape[3] <= 1:  # checked before the batch is counted
            raise ValueError(
                f"{self!r}: expected more than 1 value per channel when training, got shape {shape}"
            )
        momentum = self._momentum() if self.training and self.track_running_stats else 0.0
        return batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, use_batch, momentum, self.eps
        )


class GroupNorm(Module):
    """Normalize each sample over groups of ``num_channels / num_groups`` channels and every trailing
    axis, then scale and shift each channel; no running statistics, so training and evaluation agree.

    Parameters
    ----------
    num_groups : the number of groups; it must divide ``num_channels``.
    num_channels : the number of channels ``C`` of inputs of shape ``(N, C, *)``.
    eps : added to the variance.
    affine : whether to learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
    dtype : of the parameters (default: ``tape.get_default_dtype()``).

    Examples
    --------
    >>> GroupNorm(2, 4)(np.random.default_rng(0).standard_normal((3, 4, 5, 5))).shape
    (3, 4, 5, 5)
    """

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, dtype: Any = None
    ) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=floating(dtype)))
            self.bias = Parameter(np.zeros(num_channels, dtype=floating(dtype)))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        if len(shape) < 2 or shape[1] != self.num_channels:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.num_channels}, *), got shape {shape}"
            )
        try:
            return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        except ValueError as error:
            add_note(error, f"in {self!r}")
            raise

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm2d(_RunningNorm):
    """Normalize each channel of each image of ``(N, C, H, W)`` (or one image ``(C, H, W)``) over its
    ``H * W`` values, then, with ``affine=True``, scale and shift it.

    Without running statistics (the default, ``track_running_stats=False``) training and evaluation both
    use each image's own statistics. With them, training updates the running mean and unbiased variance
    (averaged over the batch) and evaluation uses them. ``momentum=None`` keeps the plain average of every
    batch seen, as torch documents (torch 2.13 leaves the statistics unchanged instead); batches are
    counted in ``num_batches_tracked`` (torch keeps it at 0 for instance norms).

    Parameters
    ----------
    num_features : the number of channels ``C``.
    eps : added to the variance.
    momentum : weight of each new batch in the running statistics, or None for a cumulative average.
    affine : whether to learn a per-channel ``weight`` (ones) and ``bias`` (zeros); default False.
    track_running_stats : whether to keep running statistics for evaluation mode; default False.
    dtype : of the parameters and running statistics (default: ``tape.get_default_dtype()``).

    Examples
    --------
    >>> norm = InstanceNorm2d(3)
    >>> y = norm(np.random.default_rng(0).standard_normal((2, 3, 4, 4)))
    >>> y.shape, bool(abs(y[0, 1].mean()) < 1e-12)
    ((2, 3, 4, 4), True)
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        dtype: Any = None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        if len(shape) not in (3, 4):
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.num_features}, H, W) or "
                f"({self.num_features}, H, W), got shape {shape}"
            )
        if shape[-3] != self.num_features:
            if self.affine or self.track_running_stats:
                raise ValueError(
                    f"{self!r}: expected {self.num_features} channels (axis {len(shape) - 3}), "
                    f"got shape {shape}"
                )
            warnings.warn(  # as torch: without parameters or statistics, num_features is not used
                f"{self!r}: input of shape {shape} has {shape[-3]} channels, not num_features="
                f"{self.num_features}; it is unused because affine=False and track_running_stats=False",
                stacklevel=2,
            )
        use_input_stats = self.training or not self.track_running_stats
        if use_input_stats and shape[-1] * shape[-2] <= 1:  # checked before the batch is counted
            raise ValueError(
                f"{self!r}: expected more than 1 spatial element when training, got shape {shape}"
            )
        momentum = self._momentum() if self.training and self.track_running_stats else 0.0
        batched = np.reshape(x, (1, *shape)) if len(shape) == 3 else x
        y = instance_norm(
            batched,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            use_input_stats,
            momentum,
            self.eps,
        )
        return np.reshape(y, shape) if len(shape) == 3 else y


BatchNormalization = BatchNorm1d  # the lecture's name

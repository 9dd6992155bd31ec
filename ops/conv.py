"""Convolution and pooling ops: ``conv1d``, ``conv2d``, ``conv_transpose2d``, ``max_pool2d``, ``avg_pool2d``.

Convolution runs as im2col: ``sliding_window_view`` over the zero-padded input gives every window as a
view, one copy lays the windows out as columns ``(N, C*kH*kW, Ho*Wo)``, and one batched BLAS matmul with
the weight rows ``(C_out, C*kH*kW)`` gives the output. Groups split channels into a leading group axis.

A convolution is bilinear in input and weight, so each of its two VJPs is a bilinear op too, and the
VJPs of those are the three ops again; derivatives of any order (``create_graph``) stay convolutions:

====================  ========================  ========================
op                    VJP for the first arg     VJP for the second arg
====================  ========================  ========================
conv2d(x, w)          conv2d_input(g, w)        conv2d_weight(x, g)
conv2d_input(g, w)    conv2d(h, w)              conv2d_weight(h, g)
conv2d_weight(x, g)   conv2d_input(g, h)        conv2d(x, h)
====================  ========================  ========================

``conv2d_input`` (the transposed convolution) multiplies the cotangent by the transposed weight rows
and adds the column cotangents back into the input positions they were read from (col2im);
``conv2d_weight`` multiplies the cotangent by the input's columns and sums over the batch.
``conv_transpose2d`` is torch's name for ``conv2d_input`` with a bias and an ``output_padding``: one more
op (for the fused bias) whose VJPs are ``conv2d`` and ``conv2d_weight`` with the arguments swapped, so it
lives here, beside the table it extends, and shares its geometry checks and its col2im kernel.

Max pooling keeps no indices: its VJP (``max_pool2d_backward``) routes each cotangent to the first cell
of its window (row-major; ties as in torch) that equals the window's maximum, found again from ``x`` and
the output in the same pass that adds it in. That routing is linear in the cotangent, with ``h`` read at
the same cells (``max_pool2d_gather``) as its VJP and vice versa, so max pooling differentiates to any
order. Average pooling (zero padding counted, torch's default) spreads each cotangent evenly over its window
(``avg_pool2d_backward``), whose VJP is average pooling again.

Three loops are numba kernels with numpy twins (``tape/jit.py``), each kept because
``benchmarks/conv.py`` measured it faster than its twin at the small CNN's sizes: ``col2im``,
``max_pool_forward`` and ``max_pool_backward``. Average pooling and im2col stay numpy: kh*kw strided
whole-array adds and one strided copy were as fast as, or faster than, loops. Kernels are compiled
(lazily, cached) for float32 and float64 C-contiguous arrays only; other float dtypes run the twins, and
so does max pooling of input holding NaN. Nothing is compiled at import.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tape.jit import kernel
from tape.op import Op
from tape.tensor import Tensor

__all__ = ["avg_pool2d", "conv1d", "conv2d", "conv_transpose2d", "max_pool2d"]

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]  # ((top, bottom), (left, right))

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _data(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(_data(x))


def _for_kernel(array: np.ndarray) -> np.ndarray:
    # One compiled signature per dtype: C-contiguous and writeable (numba types read-only arrays apart).
    if array.flags.c_contiguous and array.flags.writeable:
        return array
    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()


def _run(compiled: Any, array: np.ndarray, *rest: Any) -> Any:
    """``compiled(array, *rest)`` for float32/float64 ``array``; its twin for other dtypes (float16)."""
    if array.dtype in _KERNEL_DTYPES:
        return compiled(_for_kernel(array), *rest)
    return compiled.twin(array, *rest)


def _padded(x: np.ndarray, padding: Padding, fill: float = 0.0) -> np.ndarray:
    """``x`` with ``padding`` rows and columns of ``fill`` around its last two axes."""
    (top, bottom), (left, right) = padding
    if not (top or bottom or left or right):
        return x
    n, c, height, width = x.shape
    shape = (n, c, height + top + bottom, width + left + right)
    result = np.zeros(shape, x.dtype) if fill == 0 else np.full(shape, fill, x.dtype)
    result[:, :, top : top + height, left : left + width] = x
    return result


def _output_length(size: int, kernel_size: int, stride: int, before: int, after: int, dilation: int) -> int:
    return (size + before + after - dilation * (kernel_size - 1) - 1) // stride + 1


# -- col2im: the kernel and its numpy twin -------------------------------------------------------------------
def _col2im_numpy(
    columns: np.ndarray,
    channels: int,
    height: int,
    width: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    pt: int,
    pl: int,
    dh: int,
    dw: int,
    ho: int,
    wo: int,
) -> np.ndarray:
    """numpy twin of ``col2im``: one strided in-place add per kernel offset (kh*kw numpy calls)."""
    n = columns.shape[0]
    # Tall and wide enough for every window (and for the top/left padding); cropped at the end.
    padded_height = max(pt + height, (kh - 1) * dh + sh * (ho - 1) + 1)
    padded_width = max(pl + width, (kw - 1) * dw + sw * (wo - 1) + 1)
    padded = np.zeros((n, channels, padded_height, padded_width), columns.dtype)
    blocks = columns.reshape(n, channels, kh, kw, ho, wo)
    for p in range(kh):
        for q in range(kw):
            rows = slice(p * dh, p * dh + sh * (ho - 1) + 1, sh)
            cols = slice(q * dw, q * dw + sw * (wo - 1) + 1, sw)
            padded[:, :, rows, cols] += blocks[:, :, p, q]
    return np.ascontiguousarray(padded[:, :, pt : pt + height, pl : pl + width])


@kernel(_col2im_numpy)
def col2im(
    columns: np.ndarray,
    channels: int,
    height: int,
    width: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    pt: int,
    pl: int,
    dh: int,
    dw: int,
    ho: int,
    wo: int,
) -> np.ndarray:
    """Add the columns ``(N, channels*kh*kw, ho*wo)`` back into the image positions they were read from.

    The inverse of im2col's layout, accumulating where windows overlap: element
    ``[n, (c*kh + p)*kw + q, i*wo + j]`` goes to ``[n, c, i*sh + p*dh - pt, j*sw + q*dw - pl]`` of the
    ``(N, channels, height, width)`` result, and is dropped where that lands in the padding.

    Examples
    --------
    >>> columns = np.ones((1, 4, 4))  # a 2x2 kernel slid over a 3x3 image
    >>> col2im(columns, 1, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2, 2)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    n_count = columns.shape[0]
    image = np.zeros((n_count, channels, height, width), columns.dtype)
    for n in range(n_count):
        for c in range(channels):
            for p in range(kh):
                for q in range(kw):
                    row = (c * kh + p) * kw + q
                    offset = q * dw - pl
                    # The j whose column j*sw + offset lies in [0, width): no test in the inner loop.
                    j_low = 0 if offset >= 0 else (sw - 1 - offset) // sw
                    j_high = min(wo, (width - 1 - offset) // sw + 1) if offset < width else 0
                    for i in range(ho):
                        r = i * sh + p * dh - pt
                        if r < 0 or r >= height:
                            continue
                        base = i * wo
                        for j in range(j_low, j_high):
                            image[n, c, r, j * sw + offset] += columns[n, row, base + j]
    return image


# -- convolution on arrays -----------------------------------------------------------------------------------
def _columns(
    x: np.ndarray, kernel_hw: Pair, stride: Pair, padding: Padding, dilation: Pair
) -> tuple[np.ndarray, Pair]:
    """im2col: the windows of ``x`` as columns ``(N, C*kh*kw, Ho*Wo)``, and ``(Ho, Wo)``."""
    kh, kw = kernel_hw
    (sh, sw), (dh, dw) = stride, dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    windows = sliding_window_view(_padded(x, padding), span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    n, c, ho, wo = windows.shape[:4]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, ho * wo), (ho, wo)


def _conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    c_out, c_group, kh, kw = weight.shape
    columns, (ho, wo) = _columns(x, (kh, kw), stride, padding, dilation)
    n = x.shape[0]
    weight_rows = weight.reshape(groups, c_out // groups, c_group * kh * kw)
    out = np.matmul(weight_rows, columns.reshape(n, groups, c_group * kh * kw, ho * wo))
    out = out.reshape(n, c_out, ho, wo)
    if bias is None:
        return out
    dtype = np.result_type(out, bias)
    if out.dtype != dtype:
        out = out.astype(dtype)
    out += bias.reshape(c_out, 1, 1)
    return out


def _conv2d_input_forward(
    g: np.ndarray,
    weight: np.ndarray,
    *,
    input_hw: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    n, c_out, ho, wo = g.shape
    _, c_group, kh, kw = weight.shape
    weight_rows = weight.reshape(groups, c_out // groups, c_group * kh * kw)
    column_grads = np.matmul(
        np.swapaxes(weight_rows, 1, 2), g.reshape(n, groups, c_out // groups, ho * wo)
    ).reshape(n, groups * c_group * kh * kw, ho * wo)
    (sh, sw), ((pt, _), (pl, _)), (dh, dw) = stride, padding, dilation
    return _run(col2im, column_grads, groups * c_group, *input_hw, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo)


def _conv2d_weight_forward(
    x: np.ndarray,
    g: np.ndarray,
    *,
    kernel_hw: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    n, c_out, ho, wo = g.shape
    c_group = x.shape[1] // groups
    columns, _ = _columns(x, kernel_hw, stride, padding, dilation)
    rows = c_group * kernel_hw[0] * kernel_hw[1]
    columns = columns.reshape(n, groups, rows, ho * wo)
    g_rows = g.reshape(n, groups, c_out // groups, ho * wo)
    # One (C_out/groups, Ho*Wo) @ (Ho*Wo, rows) product per sample and group, summed over the batch.
    grad = np.matmul(g_rows, np.swapaxes(columns, 2, 3)).sum(axis=0)
    return grad.reshape(c_out, c_group, *kernel_hw)


# -- convolution ops -----------------------------------------------------------------------------------------
def _conv2d_vjp_x(g: Any, out: Any, x: Any, weight: Any, bias: Any = None, **geometry: Any) -> Any:
    return conv2d_input_op(g, weight, input_hw=np.shape(x)[2:], **geometry)


def _conv2d_vjp_weight(g: Any, out: Any, x: Any, weight: Any, bias: Any = None, **geometry: Any) -> Any:
    return conv2d_weight_op(x, g, kernel_hw=np.shape(weight)[2:], **geometry)


def _conv2d_vjp_bias(g: Any, out: Any, x: Any, weight: Any, bias: Any = None, **geometry: Any) -> Any:
    return np.sum(g, axis=(0, 2, 3))


conv2d_op = Op(
    _conv2d_forward, _conv2d_vjp_x, _conv2d_vjp_weight, _conv2d_vjp_bias, name="conv2d", shape_only=(2,)
)

conv2d_input_op = Op(
    _conv2d_input_forward,
    lambda h, out, g, weight, input_hw, **geometry: conv2d_op(h, weight, None, **geometry),
    lambda h, out, g, weight, input_hw, **geometry: conv2d_weight_op(
        h, g, kernel_hw=np.shape(weight)[2:], **geometry
    ),
    name="conv2d_input",
)

conv2d_weight_op = Op(
    _conv2d_weight_forward,
    lambda h, out, x, g, kernel_hw, **geometry: conv2d_input_op(g, h, input_hw=np.shape(x)[2:], **geometry),
    lambda h, out, x, g, kernel_hw, **geometry: conv2d_op(x, h, None, **geometry),
    name="conv2d_weight",
)


# -- arguments -----------------------------------------------------------------------------------------------
def _pair(value: Any, name: str, op_name: str, minimum: int, length: int = 2) -> tuple[int, ...]:
    """``value`` (an int, or a sequence of ``length`` ints) as a tuple of ``length`` ints >= ``minimum``."""
    items = (value,) * length if isinstance(value, int | np.integer) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if (
        len(items) != length
        or not all(isinstance(item, int | np.integer) and not isinstance(item, bool) for item in items)
        or any(item < minimum for item in items)
    ):
        kind = "positive" if minimum > 0 else "non-negative"
        shape = "a pair of them" if length == 2 else "a 1-tuple"
        raise ValueError(f"{op_name}: {name} must be a {kind} int or {shape}, got {value!r}")
    return tuple(int(item) for item in items)


def _conv_padding(
    padding: Any, kernel_hw: tuple[int, ...], dilation: tuple[int, ...], stride: tuple[int, ...], op_name: str
) -> tuple[Pair, ...]:
    """Padding as (before, after) per spatial axis; 'same' puts the odd one after, as torch does."""
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in kernel_hw)
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op_name}: padding='same' needs stride 1, got stride {stride}")
            totals = [d * (k - 1) for k, d in zip(kernel_hw, dilation, strict=True)]
            return tuple((total // 2, total - total // 2) for total in totals)
        raise ValueError(f"{op_name}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    return tuple((p, p) for p in _pair(padding, "padding", op_name, 0, len(kernel_hw)))


def _check_float(op_name: str, **arrays: Any) -> None:
    for name, value in arrays.items():
        dtype = None if value is None else np.asarray(_data(value)).dtype
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"{op_name}: expected a floating-point {name}, got dtype {dtype.name}")


def _check_conv(
    op_name: str, x: Any, weight: Any, bias: Any, groups: Any, spatial: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    axes = "H, W" if spatial == 2 else "L"
    kernel_axes = "kH, kW" if spatial == 2 else "kL"
    x_shape, w_shape = _shape(x), _shape(weight)
    if len(x_shape) != spatial + 2:
        raise ValueError(f"{op_name}: expected input of shape (N, C_in, {axes}), got shape {x_shape}")
    if len(w_shape) != spatial + 2:
        raise ValueError(
            f"{op_name}: expected weight of shape (C_out, C_in / groups, {kernel_axes}), got shape {w_shape}"
        )
    if not isinstance(groups, int | np.integer) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op_name}: groups must be a positive int, got {groups!r}")
    if w_shape[0] % groups:
        raise ValueError(
            f"{op_name}: the weight's {w_shape[0]} output channels (shape {w_shape}) are not divisible by "
            f"groups={groups}"
        )
    if x_shape[1] != w_shape[1] * groups:
        raise ValueError(
            f"{op_name}: input of shape {x_shape} has {x_shape[1]} channels, but weight of shape {w_shape} "
            f"with groups={groups} expects {w_shape[1] * groups}"
        )
    if bias is not None and _shape(bias) != (w_shape[0],):
        raise ValueError(f"{op_name}: bias must have shape ({w_shape[0]},), got {_shape(bias)}")
    _check_float(op_name, input=x, weight=weight, bias=bias)
    return x_shape, w_shape


def _check_fits(
    op_name: str,
    x_shape: tuple[int, ...],
    kernel_hw: tuple[int, ...],
    padding: tuple[Pair, ...],
    dilation: tuple[int, ...],
) -> None:
    spatial = x_shape[2:]
    padded = tuple(size + before + after for size, (before, after) in zip(spatial, padding, strict=True))
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel_hw, dilation, strict=True))
    if any(span > size for span, size in zip(spans, padded, strict=True)):
        raise ValueError(
            f"{op_name}: the (dilated) kernel of size {spans} is larger than the padded input of size "
            f"{padded} (input of shape {x_shape})"
        )


# -- public convolutions -------------------------------------------------------------------------------------
def conv2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Any:
    """2-D convolution (cross-correlation, as in torch) of ``x`` ``(N, C_in, H, W)`` with ``weight``.

    Parameters
    ----------
    x : array or tensor of shape ``(N, C_in, H, W)``.
    weight : array or tensor of shape ``(C_out, C_in / groups, kH, kW)``.
    bias : ``(C_out,)`` or None.
    stride, dilation : an int or a pair ``(along H, along W)``.
    padding : an int or a pair (zeros on both sides), ``'valid'`` (none) or ``'same'`` (output as large as
        the input; stride 1 only; an odd total puts the extra row/column after, as torch does).
    groups : split the channels into this many independent convolutions.

    Returns
    -------
    ``(N, C_out, Ho, Wo)`` with ``Ho = (H + 2 pH - dH (kH - 1) - 1) // sH + 1`` (likewise ``Wo``), in the
    inputs' dtype; differentiable in ``x``, ``weight`` and ``bias``, to any order.

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> conv2d(x, np.ones((1, 1, 2, 2)), stride=2)
    array([[[[10., 18.],
             [42., 50.]]]])
    """
    x_shape, w_shape = _check_conv("conv2d", x, weight, bias, groups, spatial=2)
    kernel_hw = w_shape[2:]
    stride_hw = _pair(stride, "stride", "conv2d", 1)
    dilation_hw = _pair(dilation, "dilation", "conv2d", 1)
    padding_hw = _conv_padding(padding, kernel_hw, dilation_hw, stride_hw, "conv2d")
    _check_fits("conv2d", x_shape, kernel_hw, padding_hw, dilation_hw)
    return conv2d_op(
        x, weight, bias, stride=stride_hw, padding=padding_hw, dilation=dilation_hw, groups=int(groups)
    )


def conv1d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] | str = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
) -> Any:
    """1-D convolution of ``x`` ``(N, C_in, L)`` with ``weight`` ``(C_out, C_in / groups, kL)``.

    The same as ``conv2d`` on a height-1 image (which is how it runs): ``stride``, ``padding`` and
    ``dilation`` are ints or 1-tuples, ``padding`` may be ``'valid'`` or ``'same'``.

    Examples
    --------
    >>> conv1d(np.array([[[1.0, 2.0, 3.0, 4.0]]]), np.array([[[1.0, -1.0]]]))
    array([[[-1., -1., -1.]]])
    """
    x_shape, w_shape = _check_conv("conv1d", x, weight, bias, groups, spatial=1)
    kernel_length = w_shape[2:]
    (step,) = _pair(stride, "stride", "conv1d", 1, length=1)
    (spacing,) = _pair(dilation, "dilation", "conv1d", 1, length=1)
    (before_after,) = _conv_padding(padding, kernel_length, (spacing,), (step,), "conv1d")
    _check_fits("conv1d", x_shape, kernel_length, (before_after,), (spacing,))
    out = conv2d_op(
        np.expand_dims(x, 2),
        np.expand_dims(weight, 2),
        bias,
        stride=(1, step),
        padding=((0, 0), before_after),
        dilation=(1, spacing),
        groups=int(groups),
    )
    return np.squeeze(out, axis=2)


# -- transposed convolution ----------------------------------------------------------------------------------
def _conv_transpose2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    output_hw: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    out = _conv2d_input_forward(
        x, weight, input_hw=output_hw, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    if bias is None:
        return out
    dtype = np.result_type(out, bias)
    if out.dtype != dtype:
        out = out.astype(dtype)
    out += bias.reshape(-1, 1, 1)
    return out


conv_transpose2d_op = Op(
    _conv_transpose2d_forward,
    lambda g, out, x, weight, bias=None, output_hw=None, **geometry: conv2d_op(g, weight, None, **geometry),
    lambda g, out, x, weight, bias=None, output_hw=None, **geometry: conv2d_weight_op(
        g, x, kernel_hw=np.shape(weight)[2:], **geometry
    ),
    lambda g, out, x, weight, bias=None, output_hw=None, **geometry: np.sum(g, axis=(0, 2, 3)),
    name="conv_transpose2d",
    shape_only=(2,),
)


def _check_conv_transpose(op_name: str, x: Any, weight: Any, bias: Any, groups: Any) -> None:
    x_shape, w_shape = _shape(x), _shape(weight)
    if len(x_shape) != 4:
        raise ValueError(f"{op_name}: expected input of shape (N, C_in, H, W), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(
            f"{op_name}: expected weight of shape (C_in, C_out / groups, kH, kW), got shape {w_shape}"
        )
    if not isinstance(groups, int | np.integer) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op_name}: groups must be a positive int, got {groups!r}")
    if w_shape[0] % groups:
        raise ValueError(
            f"{op_name}: the weight's {w_shape[0]} input channels (shape {w_shape}) are not divisible by "
            f"groups={groups}"
        )
    if x_shape[1] != w_shape[0]:
        raise ValueError(
            f"{op_name}: input of shape {x_shape} has {x_shape[1]} channels, but weight of shape {w_shape} "
            f"expects {w_shape[0]}"
        )
    if bias is not None and _shape(bias) != (w_shape[1] * groups,):
        raise ValueError(f"{op_name}: bias must have shape ({w_shape[1] * groups},), got {_shape(bias)}")
    _check_float(op_name, input=x, weight=weight, bias=bias)


def conv_transpose2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> Any:
    """2-D transposed convolution of ``x`` ``(N, C_in, H, W)``, as torch's ``conv_transpose2d``.

    The gradient of ``conv2d`` with respect to its input: each input pixel adds ``weight``-scaled copies of
    the kernel into the output, ``stride`` apart.

    Parameters
    ----------
    x : array or tensor of shape ``(N, C_in, H, W)``.
    weight : array or tensor of shape ``(C_in, C_out / groups, kH, kW)`` (torch's layout).
    bias : ``(C_out,)`` or None.
    stride, dilation : an int or a pair ``(along H, along W)``.
    padding : an int or a pair: ``dilation * (k - 1) - padding`` zeros, in effect, around the input.
    output_padding : an int or a pair, smaller than ``stride``: rows and columns added at the bottom and
        right of the output (which of the sizes that map to ``H`` under ``conv2d`` to give).
    groups : split the channels into this many independent convolutions.

    Returns
    -------
    ``(N, C_out, Ho, Wo)`` with ``Ho = (H - 1) sH - 2 pH + dH (kH - 1) + opH + 1`` (likewise ``Wo``), in
    the inputs' dtype; differentiable in ``x``, ``weight`` and ``bias``, to any order.

    Examples
    --------
    >>> conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))
    array([[[[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]]]])
    """
    op_name = "conv_transpose2d"
    _check_conv_transpose(op_name, x, weight, bias, groups)
    x_shape, w_shape = _shape(x), _shape(weight)
    stride_hw = _pair(stride, "stride", op_name, 1)
    padding_hw = _pair(padding, "padding", op_name, 0)
    output_padding_hw = _pair(output_padding, "output_padding", op_name, 0)
    dilation_hw = _pair(dilation, "dilation", op_name, 1)
    if any(extra >= step for extra, step in zip(output_padding_hw, stride_hw, strict=True)):
        raise ValueError(
            f"{op_name}: output_padding must be smaller than stride, got output_padding={output_padding_hw} "
            f"for stride={stride_hw}"
        )
    output_hw = tuple(
        (size - 1) * step - 2 * pad + spacing * (k - 1) + extra + 1
        for size, step, pad, spacing, k, extra in zip(
            x_shape[2:], stride_hw, padding_hw, dilation_hw, w_shape[2:], output_padding_hw, strict=True
        )
    )
    if any(size < 1 for size in output_hw):
        raise ValueError(
            f"{op_name}: the output size {output_hw} is too small (input of shape {x_shape}, weight of shape "
            f"{w_shape}, padding={padding_hw}); use less padding"
        )
    return conv_transpose2d_op(
        x,
        weight,
        bias,
        output_hw=output_hw,
        stride=stride_hw,
        padding=tuple((p, p) for p in padding_hw),
        dilation=dilation_hw,
        groups=int(groups),
    )


# -- max pooling: kernels and twins --------------------------------------------------------------------------
def _pool_slices(kh: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> list[tuple[int, int, slice, slice]]:
    """(p, q, rows, cols): the strided slices of a padded image that hold offset (p, q) of every window."""
    return [
        (p, q, slice(p, p + sh * (ho - 1) + 1, sh), slice(q, q + sw * (wo - 1) + 1, sw))
        for p in range(kh)
        for q in range(kw)
    ]


def _max_pool_forward_numpy(
    x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int, ho: int, wo: int
) -> np.ndarray:
    """numpy twin of ``max_pool_forward``: ``np.maximum`` over the kh*kw strided slices of the -inf-padded
    input (whole-array calls; a max along a short last axis of copied windows is several times slower)."""
    height, width = x.shape[2:]
    bottom = max(0, (ho - 1) * sh + kh - pt - height)
    right = max(0, (wo - 1) * sw + kw - pl - width)
    padded = _padded(x, ((pt, bottom), (pl, right)), -np.inf)
    best = None
    for _, _, rows, cols in _pool_slices(kh, kw, sh, sw, ho, wo):
        block = padded[:, :, rows, cols]
        best = block.copy() if best is None else np.maximum(best, block, out=best)  # NaN propagates
    return best


@kernel(_max_pool_forward_numpy)
def max_pool_forward(
    x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int, ho: int, wo: int
) -> np.ndarray:
    """The maximum of each ``kh x kw`` window of ``x`` ``(N, C, H, W)``: ``(N, C, ho, wo)``.

    Windows start at ``(i*sh - pt, j*sw - pl)``; cells outside the image are padding and never count.
    ``x`` must hold no NaN (the compiled ``max`` may drop one): ``max_pool2d`` sends such input to the
    twin, where NaN propagates as in torch.

    Examples
    --------
    >>> max_pool_forward(np.array([[[[1.0, 3.0], [3.0, 2.0]]]]), 2, 2, 2, 2, 0, 0, 1, 1)
    array([[[[3.]]]])
    """
    n_count, channels, height, width = x.shape
    out = np.empty((n_count, channels, ho, wo), x.dtype)
    if kh == kw == sh == sw == 2 and pt == pl == 0:
        # The usual CNN pool, its four offsets written out: several times faster than the loops below.
        for n in range(n_count):
            for c in range(channels):
                plane, out_plane = x[n, c], out[n, c]
                for i in range(ho):
                    upper, lower = plane[2 * i], plane[2 * i + 1]
                    out_row = out_plane[i]
                    for j in range(wo):
                        out_row[j] = max(
                            max(upper[2 * j], upper[2 * j + 1]), max(lower[2 * j], lower[2 * j + 1])
                        )
        return out
    for n in range(n_count):
        for c in range(channels):
            plane, out_plane = x[n, c], out[n, c]
            for i in range(ho):
                top = i * sh - pt
                row_low, row_high = max(top, 0), min(top + kh, height)
                for j in range(wo):
                    left = j * sw - pl
                    col_low, col_high = max(left, 0), min(left + kw, width)
                    best = plane[row_low, col_low]
                    for r in range(row_low, row_high):
                        for col in range(col_low, col_high):
                            best = max(best, plane[r, col])
                    out_plane[i, j] = best
    return out


def _max_positions_numpy(
    x: np.ndarray, out: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int
) -> np.ndarray:
    """For each window, the flat position (``row * W + column``) in its plane of the first cell (row-major)
    equal to the window's maximum ``out`` (the first NaN where ``out`` is NaN); int64 of ``out``'s shape."""
    height, width = x.shape[2:]
    ho, wo = out.shape[2:]
    bottom = max(0, (ho - 1) * sh + kh - pt - height)
    right = max(0, (wo - 1) * sw + kw - pl - width)
    padded = _padded(x, ((pt, bottom), (pl, right)), np.nan)  # NaN never equals; masked below anyway
    top = (np.arange(ho) * sh - pt)[:, None]
    left = np.arange(wo) * sw - pl
    out_is_nan = np.isnan(out) if np.isnan(np.sum(out)) else None
    found = np.zeros(out.shape, bool)
    positions = np.zeros(out.shape, np.int64)
    for p, q, rows, cols in _pool_slices(kh, kw, sh, sw, ho, wo):
        block = padded[:, :, rows, cols]
        hit = block == out
        if out_is_nan is not None:
            hit |= np.isnan(block) & out_is_nan
        if padded is not x:
            hit &= (top + p >= 0) & (top + p < height) & (left + q >= 0) & (left + q < width)
        hit &= ~found
        np.copyto(positions, (top + p) * width + left + q, where=hit)
        found |= hit
    return positions


def _max_pool_backward_numpy(
    g: np.ndarray, x: np.ndarray, out: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int
) -> np.ndarray:
    """numpy twin of ``max_pool_backward``: the positions of the maxima, then one bincount over all planes."""
    n, c, height, width = x.shape
    planes, ho, wo = n * c, out.shape[2], out.shape[3]
    positions = _max_positions_numpy(x, out, kh, kw, sh, sw, pt, pl).reshape(planes, ho * wo)
    flat = positions + (np.arange(planes, dtype=np.int64) * (height * width))[:, None]
    total = np.bincount(flat.reshape(-1), weights=g.reshape(-1), minlength=planes * height * width)
    return total.astype(np.result_type(g, x), copy=False).reshape(n, c, height, width)


@kernel(_max_pool_backward_numpy)
def max_pool_backward(
    g: np.ndarray, x: np.ndarray, out: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int
) -> np.ndarray:
    """The VJP of max pooling: each ``g[n, c, i, j]`` added into a zero ``x``-shaped array at the first cell
    (row-major) of window ``(i, j)`` that equals its maximum ``out[n, c, i, j]``; overlaps accumulate.

    Ties go to the first maximum, as in torch. ``g``, ``x`` and ``out`` share one dtype, ``out`` holds no
    NaN and ``g`` only finite values (``max_pool2d`` sends other input to the twin).

    Examples
    --------
    >>> x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    >>> max_pool_backward(np.array([[[[5.0]]]]), x, np.array([[[[3.0]]]]), 2, 2, 2, 2, 0, 0)[0, 0]
    array([[0., 5.],
           [0., 0.]])
    """
    n_count, channels, height, width = x.shape
    ho, wo = out.shape[2], out.shape[3]
    if kh == kw == sh == sw == 2 and pt == pl == 0:
        # Disjoint 2x2 windows: each cell of a window gets what is left of the cotangent if it is the
        # first maximum, else zero. Written with subtractions (exact for finite cotangents; the caller
        # sends the others to the twin), this loop runs about 8x faster than with conditionals.
        zero = g.dtype.type(0)
        grad = np.empty((n_count, channels, height, width), g.dtype)
        grad[:, :, 2 * ho :, :] = zero  # an odd last row or column is in no window
        grad[:, :, :, 2 * wo :] = zero
        for n in range(n_count):
            for c in range(channels):
                plane, grad_plane, out_plane, g_plane = x[n, c], grad[n, c], out[n, c], g[n, c]
                for i in range(ho):
                    upper, lower = plane[2 * i], plane[2 * i + 1]
                    grad_upper, grad_lower = grad_plane[2 * i], grad_plane[2 * i + 1]
                    out_row, g_row = out_plane[i], g_plane[i]
                    for j in range(wo):
                        target, remaining = out_row[j], g_row[j]
                        share = remaining if upper[2 * j] == target else zero
                        grad_upper[2 * j] = share
                        remaining -= share
                        share = remaining if upper[2 * j + 1] == target else zero
                        grad_upper[2 * j + 1] = share
                        remaining -= share
                        share = remaining if lower[2 * j] == target else zero
                        grad_lower[2 * j] = share
                        grad_lower[2 * j + 1] = remaining - share
        return grad
    grad = np.zeros((n_count, channels, height, width), g.dtype)
    for n in range(n_count):
        for c in range(channels):
            plane, grad_plane, out_plane, g_plane = x[n, c], grad[n, c], out[n, c], g[n, c]
            for i in range(ho):
                top = i * sh - pt
                row_low, row_high = max(top, 0), min(top + kh, height)
                for j in range(wo):
                    left = j * sw - pl
                    col_low, col_high = max(left, 0), min(left + kw, width)
                    target = out_plane[i, j]
                    # Scanned backwards with selects, not searched forwards with an early exit: the last
                    # match seen in reverse is the first maximum, and no branch depends on the data.
                    row, col = row_high - 1, col_high - 1
                    for r in range(row_high - 1, row_low - 1, -1):
                        for q in range(col_high - 1, col_low - 1, -1):
                            hit = plane[r, q] == target
                            row = r if hit else row
                            col = q if hit else col
                    grad_plane[row, col] += g_plane[i, j]
    return grad


# -- max pooling ops -----------------------------------------------------------------------------------------
def _max_pool_forward(x: np.ndarray, *, kernel_hw: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    ho = _output_length(x.shape[2], kh, sh, ph, ph, 1)
    wo = _output_length(x.shape[3], kw, sw, pw, pw, 1)
    if np.isnan(np.sum(x)):  # a pairwise sum costs a few percent of the kernel; NaN is rare
        return max_pool_forward.twin(x, kh, kw, sh, sw, ph, pw, ho, wo)
    return _run(max_pool_forward, x, kh, kw, sh, sw, ph, pw, ho, wo)


def _max_pool_backward_forward(
    g: np.ndarray, x: np.ndarray, out: np.ndarray, *, kernel_hw: Pair, stride: Pair, padding: Pair
) -> np.ndarray:
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    dtype = np.result_type(g, x)
    if dtype not in _KERNEL_DTYPES or np.isnan(np.sum(out)) or not np.isfinite(np.sum(g)):
        return max_pool_backward.twin(g, x, out, kh, kw, sh, sw, ph, pw)
    g, x, out = (_for_kernel(array.astype(dtype, copy=False)) for array in (g, x, out))
    return max_pool_backward(g, x, out, kh, kw, sh, sw, ph, pw)


def _max_pool_gather_forward(
    h: np.ndarray, x: np.ndarray, out: np.ndarray, *, kernel_hw: Pair, stride: Pair, padding: Pair
) -> np.ndarray:
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    n, c, ho, wo = out.shape
    positions = _max_positions_numpy(x, out, kh, kw, sh, sw, ph, pw).reshape(n, c, ho * wo)
    planes = h.reshape(n, c, h.shape[2] * h.shape[3])
    return np.take_along_axis(planes, positions, axis=2).reshape(n, c, ho, wo)


def _piecewise_constant(g: Any, out: Any, *args: Any, **kwargs: Any) -> None:
    # Where each window's maximum sits does not change under small moves of x (away from ties): the
    # derivative through x and out of the routing is zero, so no cotangent flows.
    return None


max_pool2d_op = Op(
    _max_pool_forward,
    lambda g, out, x, **geometry: max_pool2d_backward_op(g, x, out, **geometry),
    name="max_pool2d",
)

# The VJP of max pooling, ``g`` routed to the maxima of ``x``; linear in ``g``, whose VJP is the gather.
max_pool2d_backward_op = Op(
    _max_pool_backward_forward,
    lambda h, out, g, x, pooled, **geometry: max_pool2d_gather_op(h, x, pooled, **geometry),
    _piecewise_constant,
    _piecewise_constant,
    name="max_pool2d_backward",
    shape_only=(0,),
)

# ``h`` read at the maxima of ``x``: the transpose of the routing above.
max_pool2d_gather_op = Op(
    _max_pool_gather_forward,
    lambda g, out, h, x, pooled, **geometry: max_pool2d_backward_op(g, x, pooled, **geometry),
    _piecewise_constant,
    _piecewise_constant,
    name="max_pool2d_gather",
    shape_only=(0,),
)


# -- average pooling -----------------------------------------------------------------------------------------
# numpy only: kh*kw strided whole-array adds beat a numba loop over windows at the CNN's sizes (measured:
# 2x2 windows were 1.5-2.5x faster in numpy, 3x3 overlapping ones within 20% either way), so no kernel.
def _avg_pool_forward(x: np.ndarray, *, kernel_hw: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    ho = _output_length(x.shape[2], kh, sh, ph, ph, 1)
    wo = _output_length(x.shape[3], kw, sw, pw, pw, 1)
    bottom = max(0, (ho - 1) * sh + kh - ph - x.shape[2])
    right = max(0, (wo - 1) * sw + kw - pw - x.shape[3])
    padded = _padded(x, ((ph, bottom), (pw, right)))
    total = padded[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw].copy()
    for p in range(kh):
        for q in range(kw):
            if p or q:
                total += padded[:, :, p : p + sh * (ho - 1) + 1 : sh, q : q + sw * (wo - 1) + 1 : sw]
    total *= x.dtype.type(1.0 / (kh * kw))
    return total


def _avg_pool_backward_forward(
    g: np.ndarray, *, input_hw: Pair, kernel_hw: Pair, stride: Pair, padding: Pair
) -> np.ndarray:
    """Spread each ``g / (kh*kw)`` over its window of a zero image; what falls in the padding is dropped."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    (height, width), (n, c, ho, wo) = input_hw, g.shape
    share = g * g.dtype.type(1.0 / (kh * kw))
    padded_height = max(ph + height, kh + sh * (ho - 1))
    padded_width = max(pw + width, kw + sw * (wo - 1))
    padded = np.zeros((n, c, padded_height, padded_width), g.dtype)
    for p in range(kh):
        for q in range(kw):
            padded[:, :, p : p + sh * (ho - 1) + 1 : sh, q : q + sw * (wo - 1) + 1 : sw] += share
    return np.ascontiguousarray(padded[:, :, ph : ph + height, pw : pw + width])


avg_pool2d_op = Op(
    _avg_pool_forward,
    lambda g, out, x, **geometry: avg_pool2d_backward_op(g, input_hw=np.shape(x)[2:], **geometry),
    name="avg_pool2d",
    shape_only=(0,),
)

avg_pool2d_backward_op = Op(
    _avg_pool_backward_forward,
    lambda h, out, g, input_hw, **geometry: avg_pool2d_op(h, **geometry),
    name="avg_pool2d_backward",
    shape_only=(0,),
)


# -- public pooling ------------------------------------------------------------------------------------------
def _pool_geometry(
    op_name: str, x: Any, kernel_size: Any, stride: Any, padding: Any
) -> tuple[Pair, Pair, Pair]:
    x_shape = _shape(x)
    if len(x_shape) != 4:
        raise ValueError(f"{op_name}: expected input of shape (N, C, H, W), got shape {x_shape}")
    _check_float(op_name, input=x)
    kernel_hw = _pair(kernel_size, "kernel_size", op_name, 1)
    stride_hw = kernel_hw if stride is None else _pair(stride, "stride", op_name, 1)
    padding_hw = _pair(padding, "padding", op_name, 0)
    if any(2 * p > k for p, k in zip(padding_hw, kernel_hw, strict=True)):
        raise ValueError(
            f"{op_name}: padding must be at most half the kernel size, got padding={padding_hw} for "
            f"kernel_size={kernel_hw}"
        )
    if any(size + 2 * p < k for size, p, k in zip(x_shape[2:], padding_hw, kernel_hw, strict=True)):
        raise ValueError(
            f"{op_name}: the kernel {kernel_hw} is larger than the padded input "
            f"{tuple(size + 2 * p for size, p in zip(x_shape[2:], padding_hw, strict=True))} "
            f"(input of shape {x_shape})"
        )
    return kernel_hw, stride_hw, padding_hw  # type: ignore[return-value]


def max_pool2d(
    x: Any,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Any:
    """The maximum over each ``kernel_size`` window of ``x`` ``(N, C, H, W)``, as torch's ``max_pool2d``.

    ``stride`` defaults to ``kernel_size``; ``padding`` (at most half the kernel) adds -inf borders. The
    gradient goes to the first maximum of each window (row-major), accumulating where windows overlap.

    Examples
    --------
    >>> max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """
    kernel_hw, stride_hw, padding_hw = _pool_geometry("max_pool2d", x, kernel_size, stride, padding)
    return max_pool2d_op(x, kernel_hw=kernel_hw, stride=stride_hw, padding=padding_hw)


def avg_pool2d(
    x: Any,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Any:
    """The mean over each ``kernel_size`` window of ``x`` ``(N, C, H, W)``, as torch's ``avg_pool2d``.

    ``stride`` defaults to ``kernel_size``; ``padding`` (at most half the kernel) adds zero borders that
    count in the mean (torch's default ``count_include_pad=True``).

    Examples
    --------
    >>> avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)
    array([[[[ 2.5,  4.5],
             [10.5, 12.5]]]])
    """
    kernel_hw, stride_hw, padding_hw = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding)
    return avg_pool2d_op(x, kernel_hw=kernel_hw, stride=stride_hw, padding=padding_hw)

"""ops/spatial.py and ``conv_transpose2d`` (ops/conv.py): outputs and gradients against torch over grids of
settings, float32 and float64; finite differences of each functional form (second derivatives too);
``dropout2d``'s channel masks; ``embedding``'s ``padding_idx``; and the error messages."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tape
from tape.ops.conv import conv_transpose2d
from tape.ops.nn import embedding
from tape.ops.spatial import adaptive_avg_pool2d, dropout2d, interpolate

DTYPES = [np.float64, np.float32]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def tolerance(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}


def compare_with_torch(torch, ours, theirs, arrays, dtype):
    """``ours`` on tensors and ``theirs`` on torch tensors agree: values, dtype, every input's gradient."""
    leaves = [tape.tensor(a, requires_grad=True) for a in arrays]
    torch_leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = ours(*leaves), theirs(*torch_leaves)
    assert out.shape == tuple(expected.shape)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **tolerance(dtype))
    cotangent = np.random.default_rng(7).standard_normal(out.shape).astype(dtype)
    out.backward(cotangent)
    expected.backward(torch.tensor(cotangent))
    for leaf, torch_leaf in zip(leaves, torch_leaves, strict=True):
        assert leaf.grad.dtype == dtype
        np.testing.assert_allclose(leaf.grad, torch_leaf.grad.numpy(), **tolerance(dtype))


# -- conv_transpose2d ----------------------------------------------------------------------------------------
def conv_transpose_grid():
    """(stride, padding, output_padding, groups, dilation, kernel, input size, bias), output non-empty."""
    settings = itertools.product(
        [1, 2, (3, 1)], [0, (2, 1)], [0, 1, (2, 0)], [1, 2], [1, (2, 1)], [(1, 1), (3, 2)], [(1, 1), (4, 3)]
    )
    for case, (stride, padding, output_padding, groups, dilation, kernel, size) in enumerate(settings):
        bias = case % 2 == 0
        strides = (stride, stride) if isinstance(stride, int) else stride
        extras = (output_padding, output_padding) if isinstance(output_padding, int) else output_padding
        pads = (padding, padding) if isinstance(padding, int) else padding
        dilations = (dilation, dilation) if isinstance(dilation, int) else dilation
        if any(e >= s for e, s in zip(extras, strides, strict=True)):
            continue
        out = [
            (n - 1) * s - 2 * p + d * (k - 1) + e + 1
            for n, s, p, d, k, e in zip(size, strides, pads, dilations, kernel, extras, strict=True)
        ]
        if min(out) >= 1:
            yield stride, padding, output_padding, groups, dilation, kernel, size, bias


GRID = list(conv_transpose_grid())


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d_matches_torch_over_a_grid(torch, dtype):
    assert len(GRID) > 100
    rng = np.random.default_rng(0)
    for stride, padding, output_padding, groups, dilation, kernel, size, bias in GRID:
        x = rng.standard_normal((2, 2 * groups, *size)).astype(dtype)
        weight = rng.standard_normal((2 * groups, 3, *kernel)).astype(dtype)
        arrays = [x, weight] + ([rng.standard_normal(3 * groups).astype(dtype)] if bias else [])
        settings = {
            "stride": stride,
            "padding": padding,
            "output_padding": output_padding,
            "groups": groups,
            "dilation": dilation,
        }
        compare_with_torch(
            torch,
            lambda *args, s=settings: conv_transpose2d(*args, **s),
            lambda *args, s=settings: torch.nn.functional.conv_transpose2d(*args, **s),
            arrays,
            dtype,
        )


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"stride": 2, "padding": 1, "output_padding": 1},
        {"stride": (2, 3), "output_padding": (1, 2), "dilation": (1, 2), "groups": 2},
    ],
)
def test_conv_transpose2d_gradcheck_and_gradgradcheck(settings):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3, 2))
    weight = rng.standard_normal((4, 3, 2, 3))
    bias = rng.standard_normal(3 * settings.get("groups", 1))
    f = lambda x, w, b: conv_transpose2d(x, w, b, **settings)
    assert tape.gradcheck(f, x, weight, bias)
    assert tape.gradgradcheck(f, x[:1], weight, bias)


def test_conv_transpose2d_is_the_input_gradient_of_conv2d():
    rng = np.random.default_rng(2)
    x = tape.tensor(rng.standard_normal((2, 4, 7, 6)), requires_grad=True)
    weight = rng.standard_normal((6, 2, 3, 3))
    out = tape.ops.conv.conv2d(x, weight, stride=2, padding=1, groups=2)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    transposed = conv_transpose2d(g, weight, stride=2, padding=1, output_padding=(0, 1), groups=2)
    np.testing.assert_allclose(transposed, x.grad, rtol=1e-12, atol=1e-12)


def test_conv_transpose2d_arrays_in_array_out_and_float32_kept():
    out = conv_transpose2d(np.ones((1, 2, 3, 3), np.float32), np.ones((2, 1, 2, 2), np.float32), stride=2)
    assert type(out) is np.ndarray and out.dtype == np.float32 and out.shape == (1, 1, 6, 6)


@pytest.mark.parametrize(
    ("args", "settings", "message"),
    [
        (
            ((1, 2, 3, 3), (2, 1, 2, 2)),
            {"stride": 2, "output_padding": 2},
            "output_padding must be smaller than",
        ),
        (((1, 2, 3, 3), (2, 1, 2, 2)), {"output_padding": 1}, r"output_padding=\(1, 1\) for stride=\(1, 1\)"),
        (
            ((1, 3, 3, 3), (3, 1, 2, 2)),
            {"groups": 2},
            r"3 input channels \(shape \(3, 1, 2, 2\)\) .* groups=2",
        ),
        (((2, 3, 3), (2, 1, 2, 2)), {}, r"expected input of shape \(N, C_in, H, W\), got shape \(2, 3, 3\)"),
        (((1, 2, 3, 3), (2, 1, 2)), {}, r"expected weight .* got shape \(2, 1, 2\)"),
        (((1, 3, 3, 3), (2, 1, 2, 2)), {}, r"input of shape \(1, 3, 3, 3\) has 3 channels, but weight .*"),
        (((1, 2, 1, 1), (2, 1, 1, 1)), {"padding": 1}, r"the output size \(-1, -1\) is too small"),
    ],
)
def test_conv_transpose2d_errors_name_the_op_and_the_shapes(args, settings, message):
    x, weight = (np.ones(shape) for shape in args)
    with pytest.raises(ValueError, match=f"^conv_transpose2d: .*{message}"):
        conv_transpose2d(x, weight, **settings)


def test_conv_transpose2d_bias_shape_is_checked():
    with pytest.raises(ValueError, match=r"conv_transpose2d: bias must have shape \(4,\), got \(2,\)"):
        conv_transpose2d(np.ones((1, 2, 3, 3)), np.ones((2, 2, 2, 2)), np.ones(2), groups=2)


# -- interpolate ---------------------------------------------------------------------------------------------
MODES = [("nearest", None), ("bilinear", False), ("bilinear", True)]
RESIZES = [
    {"size": (7, 3)},
    {"size": 1},
    {"size": (10, 8)},
    {"scale_factor": 2},
    {"scale_factor": 1.5},
    {"scale_factor": (0.7, 2.3)},
    {"scale_factor": (1 / 3, 3.7)},
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("mode", "align_corners"), MODES)
def test_interpolate_matches_torch(torch, dtype, mode, align_corners):
    rng = np.random.default_rng(3)
    for height, width in [(5, 4), (3, 3), (1, 2), (6, 1)]:
        x = rng.standard_normal((2, 3, height, width)).astype(dtype)
        for resize in RESIZES:
            if (
                "scale_factor" in resize
                and min(
                    int(n * s)
                    for n, s in zip((height, width), np.broadcast_to(resize["scale_factor"], 2), strict=True)
                )
                < 1
            ):
                continue
            settings = {"mode": mode, "align_corners": align_corners, **resize}
            compare_with_torch(
                torch,
                lambda x, s=settings: interpolate(x, **s),
                lambda x, s=settings: torch.nn.functional.interpolate(x, **s),
                [x],
                dtype,
            )


@pytest.mark.parametrize(("mode", "align_corners"), MODES)
def test_interpolate_gradcheck_and_gradgradcheck(mode, align_corners):
    x = np.random.default_rng(4).standard_normal((1, 2, 4, 3))
    for resize in [{"size": (7, 2)}, {"scale_factor": 1.7}]:
        f = lambda x, r=resize: interpolate(x, mode=mode, align_corners=align_corners, **r)
        assert tape.gradcheck(f, x)
        assert tape.gradgradcheck(f, x)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "give exactly one of size and scale_factor, got neither"),
        ({"size": 2, "scale_factor": 2}, "give exactly one of size and scale_factor, got both"),
        ({"size": 2, "mode": "bicubic"}, "mode must be 'nearest' or 'bilinear', got 'bicubic'"),
        ({"size": 2, "align_corners": True}, "align_corners is for mode='bilinear' only"),
        ({"size": (2, 0)}, r"size must be a positive int or a pair of them, got \(2, 0\)"),
        ({"scale_factor": 0.1}, r"scale_factor=0.1 makes an empty output \(0, 0\) from input of shape"),
    ],
)
def test_interpolate_errors(settings, message):
    with pytest.raises(ValueError, match=f"^interpolate: {message}"):
        interpolate(np.ones((1, 1, 3, 3)), **settings)


def test_interpolate_needs_four_dimensions():
    with pytest.raises(
        ValueError, match=r"^interpolate: expected input of shape \(N, C, H, W\), got shape \(3, 3\)"
    ):
        interpolate(np.ones((3, 3)), size=2)


# -- adaptive_avg_pool2d -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_avg_pool2d_matches_torch(torch, dtype):
    rng = np.random.default_rng(5)
    for shape in [(2, 3, 5, 7), (3, 4, 4), (1, 2, 1, 3), (2, 1, 9, 2)]:
        x = rng.standard_normal(shape).astype(dtype)
        for output_size in [1, (2, 3), (3, None), (None, 5), 4, (7, 9), (None, None)]:
            compare_with_torch(
                torch,
                lambda x, o=output_size: adaptive_avg_pool2d(x, o),
                lambda x, o=output_size: torch.nn.functional.adaptive_avg_pool2d(x, o),
                [x],
                dtype,
            )


def test_adaptive_avg_pool2d_gradcheck_and_gradgradcheck():
    x = np.random.default_rng(6).standard_normal((2, 2, 5, 4))
    for output_size in [(3, 2), (7, None), 1]:
        f = lambda x, o=output_size: adaptive_avg_pool2d(x, o)
        assert tape.gradcheck(f, x)
        assert tape.gradgradcheck(f, x)


def test_adaptive_avg_pool2d_errors():
    with pytest.raises(ValueError, match=r"^adaptive_avg_pool2d: expected input .* got shape \(3, 3\)"):
        adaptive_avg_pool2d(np.ones((3, 3)), 1)
    with pytest.raises(ValueError, match=r"^adaptive_avg_pool2d: output_size must be .* got \(0, 2\)"):
        adaptive_avg_pool2d(np.ones((1, 1, 3, 3)), (0, 2))
    with pytest.raises(
        TypeError, match=r"^adaptive_avg_pool2d: expected a floating-point input, got dtype int64"
    ):
        adaptive_avg_pool2d(np.ones((1, 1, 3, 3), np.int64), 1)


# -- dropout2d -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout2d_zeroes_whole_channels_and_scales_the_rest(dtype):
    x = tape.tensor(np.random.default_rng(8).uniform(1, 2, (40, 50, 3, 4)).astype(dtype), requires_grad=True)
    out = dropout2d(x, 0.3, rng=np.random.default_rng(9))
    assert out.dtype == dtype
    kept = out.data[:, :, 0, 0] != 0
    assert abs(1 - kept.mean() - 0.3) < 0.03
    scale = dtype(1 / 0.7)
    mask = np.where(kept, scale, dtype(0))[:, :, None, None]  # one decision per (sample, channel)
    np.testing.assert_array_equal(out.data, x.data * mask)
    out.backward(np.ones(out.shape, dtype))
    np.testing.assert_array_equal(x.grad, np.broadcast_to(mask, x.shape))  # the gradient is the mask
    again = dropout2d(x.data, 0.3, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(again, out.data)


def test_dropout2d_identity_out_of_training_and_edges():
    x = np.ones((2, 3, 2, 2))
    assert dropout2d(x, 0.5, training=False) is x
    assert dropout2d(x, 0.0) is x
    np.testing.assert_array_equal(dropout2d(x, 1.0), np.zeros_like(x))
    assert tape.gradcheck(lambda x: dropout2d(x, 0.5, rng=np.random.default_rng(0)), x)


def test_dropout2d_errors():
    with pytest.raises(ValueError, match=r"^dropout2d: p must be in \[0, 1\], got 1.5"):
        dropout2d(np.ones((1, 1, 2, 2)), 1.5)
    with pytest.raises(
        ValueError, match=r"^dropout2d: expected input of shape \(N, C, H, W\), got shape \(2, 2\)"
    ):
        dropout2d(np.ones((2, 2)), 0.5)


# -- embedding's padding_idx ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [0, 3, -1, -5])
def test_embedding_padding_idx_matches_torch(torch, dtype, padding_idx):
    weight = np.random.default_rng(10).standard_normal((5, 3)).astype(dtype)
    indices = np.array([[0, 3, 4, 3], [1, 4, 0, 2]])
    compare_with_torch(
        torch,
        lambda w: embedding(indices, w, padding_idx),
        lambda w: torch.nn.functional.embedding(torch.tensor(indices), w, padding_idx),
        [weight],
        dtype,
    )


def test_embedding_padding_idx_gets_no_gradient_to_any_order():
    weight = np.random.default_rng(11).standard_normal((4, 2))
    indices = np.array([0, 2, 2, 3])
    leaf = tape.tensor(weight, requires_grad=True)
    np.sum(embedding(indices, leaf, padding_idx=2)).backward()
    np.testing.assert_array_equal(leaf.grad, [[1, 1], [0, 0], [0, 0], [1, 1]])
    # Row 2's zero gradient is torch's rule, not the derivative; the other rows' are checked.
    assert tape.gradcheck(lambda w: embedding(indices, w, padding_idx=-3) ** 2, weight)
    assert tape.gradgradcheck(lambda w: embedding(indices, w, padding_idx=-3) ** 2, weight)
    first = tape.grad(lambda w: np.sum(embedding(indices, w, padding_idx=2) ** 3))
    second = tape.grad(lambda w: np.sum(first(w) * weight))(weight)
    np.testing.assert_array_equal(second[2], 0)
    assert np.all(second[[0, 3]] != 0)


def test_embedding_padding_idx_out_of_range():
    with pytest.raises(ValueError, match=r"^embedding: padding_idx must be an int in \[-4, 4\), got 4"):
        embedding(np.array([0]), np.ones((4, 2)), padding_idx=4)

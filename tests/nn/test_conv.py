"""tape/nn/conv.py: Conv1d, Conv2d, MaxPool2d and AvgPool2d against their functional forms (and torch.nn when
installed), initialization bounds, parameters, repr, shape errors naming the layer, and a short training run
of the small CNN."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tape
import tape.nn as nn
import tape.ops.conv as F
from tape.nn.conv import AvgPool2d, Conv1d, Conv2d, MaxPool2d
from tests.ops.test_conv import naive_avg_pool2d, naive_conv2d, naive_max_pool2d


@pytest.mark.parametrize("layer_class", [Conv1d, Conv2d])
def test_conv_initialization_bounds_and_parameters(layer_class):
    spatial = 1 if layer_class is Conv1d else 2
    layer = layer_class(6, 8, kernel_size=3, groups=2, rng=np.random.default_rng(0))
    assert layer.weight.shape == (8, 3, *(3,) * spatial)
    bound = 1 / math.sqrt(3 * 3**spatial)  # fan_in = in_channels / groups * kernel elements
    assert np.all(np.abs(layer.weight.data) <= bound) and np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.all(np.abs(layer.bias.data) <= bound)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert all(p.requires_grad for p in layer.parameters())
    no_bias = layer_class(2, 4, 3, bias=False)
    assert no_bias.bias is None and [name for name, _ in no_bias.named_parameters()] == ["weight"]
    same_seed = layer_class(6, 8, kernel_size=3, groups=2, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(same_seed.weight.data, layer.weight.data)


def test_conv2d_forward_is_the_functional_form_and_differentiates():
    layer = Conv2d(2, 4, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), rng=np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((3, 2, 9, 7))
    expected = F.conv2d(x, layer.weight.data, layer.bias.data, (2, 1), 1, (1, 2))
    np.testing.assert_array_equal(layer(x).data, expected)
    np.sum(layer(x) ** 2).backward()
    assert layer.weight.grad.shape == layer.weight.shape and layer.bias.grad.shape == (4,)
    assert tape.gradcheck(lambda w, b: np.sum(F.conv2d(x[:1, :, :5, :5], w, b, (2, 1), 1, (1, 2)) ** 2),
                          layer.weight.data, layer.bias.data)  # fmt: skip


def test_conv1d_forward_is_the_functional_form():
    layer = Conv1d(3, 2, 4, padding="same", dilation=2, rng=np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((2, 3, 10))
    out = layer(x)
    assert out.shape == (2, 2, 10)
    np.testing.assert_array_equal(out.data, F.conv1d(x, layer.weight.data, layer.bias.data, 1, "same", 2))


def test_float32_layers_keep_float32():
    model = nn.Sequential(Conv2d(1, 2, 3, dtype=np.float32), MaxPool2d(2), AvgPool2d(2, 1))
    x = np.ones((1, 1, 8, 8), np.float32)
    out = model(x)
    out.sum().backward()
    assert out.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_pool_layers_are_the_functional_forms():
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 8))
    np.testing.assert_array_equal(MaxPool2d(3, 2, 1)(x), F.max_pool2d(x, 3, 2, 1))
    np.testing.assert_array_equal(AvgPool2d((2, 3))(x), F.avg_pool2d(x, (2, 3)))
    assert MaxPool2d(2).stride == 2 and list(MaxPool2d(2).parameters()) == []


def test_reprs():
    assert repr(Conv2d(1, 8, kernel_size=3)) == "Conv2d(1, 8, kernel_size=(3, 3))"
    assert (
        repr(Conv2d(4, 8, (3, 5), stride=2, padding=(1, 2), dilation=(2, 1), groups=4, bias=False))
        == "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 2), dilation=(2, 1), groups=4, "
        "bias=False)"
    )
    assert repr(Conv2d(1, 1, 3, padding="same")) == "Conv2d(1, 1, kernel_size=(3, 3), padding='same')"
    assert repr(Conv1d(2, 4, 5, stride=2)) == "Conv1d(2, 4, kernel_size=(5,), stride=(2,))"
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(AvgPool2d(3, 1, 1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"
    model = nn.Sequential(Conv2d(1, 8, 3), nn.ReLU(), MaxPool2d(2))
    assert "(0): Conv2d(1, 8, kernel_size=(3, 3))" in repr(model) and "(2): MaxPool2d(" in repr(model)


SHAPE_ERRORS = [
    (Conv2d(1, 8, kernel_size=(3, 3)), (64, 3, 28, 28),
     r"Conv2d\(1, 8, kernel_size=\(3, 3\)\): expected input of shape \(N, 1, H, W\), got \(64, 3, 28, 28\)"),
    (Conv2d(1, 8, 3), (1, 28, 28),
     r"Conv2d\(1, 8, kernel_size=\(3, 3\)\): expected input of shape \(N, 1, H, W\), got \(1, 28, 28\)"),
    (Conv1d(2, 4, 3), (5, 3, 10),
     r"Conv1d\(2, 4, kernel_size=\(3,\)\): expected input of shape \(N, 2, L\), got \(5, 3, 10\)"),
    (MaxPool2d(2), (3, 8, 8),
     r"MaxPool2d\(kernel_size=2, stride=2, padding=0\): expected input of shape \(N, C, H, W\), "
     r"got \(3, 8, 8\)"),
    (AvgPool2d(2), (8, 8),
     r"AvgPool2d\(kernel_size=2, stride=2, padding=0\): expected input of shape \(N, C, H, W\), "
     r"got \(8, 8\)"),
]  # fmt: skip


@pytest.mark.parametrize(("layer", "shape", "match"), SHAPE_ERRORS, ids=range(len(SHAPE_ERRORS)))
def test_shape_errors_name_the_layer_and_the_shapes(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer(np.zeros(shape))


def test_construction_errors():
    with pytest.raises(
        ValueError, match=r"Conv2d: in_channels \(3\) and out_channels \(4\) must be divisible"
    ):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: padding='same' needs stride 1"):
        Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"Conv1d: kernel_size must be an int or 1 ints, got \(3, 3\)"):
        Conv1d(1, 1, (3, 3))
    with pytest.raises(ValueError, match=r"MaxPool2d: padding must be at most half the kernel size"):
        MaxPool2d(2, padding=2)


def test_layers_match_torch_nn():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    ours = Conv2d(3, 6, 3, stride=2, padding=1, groups=3, rng=rng)
    theirs = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    x = rng.standard_normal((2, 3, 10, 9))
    for our_layer, their_layer in (
        (ours, theirs),
        (MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
        (AvgPool2d(2, 1, 1), torch.nn.AvgPool2d(2, 1, 1)),
    ):
        np.testing.assert_allclose(
            our_layer(x).data, their_layer(torch.from_numpy(x)).detach().numpy(), 1e-12
        )


# public options; then stride, padding as (before, after) pairs, dilation and groups written out
CONV_GEOMETRIES = [
    (dict(stride=2, padding=1, groups=3), (2, 2), [(1, 1), (1, 1)], (1, 1), 3),
    (dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1)), (1, 2), [(2, 2), (0, 0)], (2, 1), 1),
    (dict(padding="same", dilation=2, groups=3), (1, 1), [(2, 2), (2, 2)], (2, 2), 3),
]


@pytest.mark.parametrize(("options", "stride", "pairs", "dilation", "groups"), CONV_GEOMETRIES)
def test_conv_layers_follow_naive_loops(options, stride, pairs, dilation, groups):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    layer = Conv2d(3, 6, 3, rng=rng, **options)
    expected = naive_conv2d(x, layer.weight.data, layer.bias.data, stride, pairs, dilation, groups)
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-12, atol=1e-12)
    line_options = {key: value[1] if isinstance(value, tuple) else value for key, value in options.items()}
    line = Conv1d(3, 6, 3, rng=rng, **line_options)
    expected = naive_conv2d(x[:, :, :1], line.weight.data[:, :, None], line.bias.data, (1, stride[1]),
                            [(0, 0), pairs[1]], (1, dilation[1]), groups)[:, :, 0]  # fmt: skip
    np.testing.assert_allclose(line(x[:, :, 0]).data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 2, 1), (2, 1, 1), ((2, 3), None, 0)])
def test_pool_layers_follow_naive_loops(kernel, stride, padding):
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    kernel_pair = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    stride_pair = kernel_pair if stride is None else (stride, stride)
    padding_pair = (padding, padding)
    np.testing.assert_array_equal(
        MaxPool2d(kernel, stride, padding)(x), naive_max_pool2d(x, kernel_pair, stride_pair, padding_pair)
    )
    np.testing.assert_allclose(
        AvgPool2d(kernel, stride, padding)(x),
        naive_avg_pool2d(x, kernel_pair, stride_pair, padding_pair),
        rtol=1e-12,
        atol=1e-15,
    )


def _cnn(dtype, rng):
    return nn.Sequential(
        Conv2d(1, 4, 3, dtype=dtype, rng=rng),
        nn.ReLU(),
        MaxPool2d(2),
        Conv2d(4, 8, 3, padding=1, dtype=dtype, rng=rng),
        nn.ReLU(),
        AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 3 * 3, 3, dtype=dtype, rng=rng),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_small_cnn_learns_to_tell_stripes_from_blobs(dtype):
    rng = np.random.default_rng(5)
    images = rng.normal(0, 0.3, (48, 1, 14, 14))
    labels = np.arange(48) % 3
    images[labels == 0, :, ::3, :] += 1.5  # horizontal stripes
    images[labels == 1, :, :, ::3] += 1.5  # vertical stripes
    images[labels == 2, :, 4:10, 4:10] += 1.5  # a blob
    images = images.astype(dtype)
    model = _cnn(dtype, rng)
    loss_function = nn.CrossEntropyLoss()
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = loss_function(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.25 * losses[0]
    assert np.mean(np.argmax(model(images).data, axis=1) == labels) > 0.9

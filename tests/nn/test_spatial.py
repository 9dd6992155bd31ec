"""tape/nn/spatial.py and ``Embedding``'s ``padding_idx`` and ``max_norm``: each layer with the parameters of
torch's module gives torch's outputs and gradients (float32 and float64); initialization, repr, eval mode,
and the errors naming the layer."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tape
import tape.nn as nn
from tape.nn.spatial import AdaptiveAvgPool2d, ConvTranspose2d, Dropout2d, Upsample

DTYPES = [np.float64, np.float32]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def tolerance(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}


def torch_dtype(torch, dtype):
    return torch.float32 if dtype == np.float32 else torch.float64


def compare_modules(torch, ours, theirs, x, dtype):
    """Same output, same input gradient, and the same gradient for each parameter of the same name."""
    leaf, torch_leaf = tape.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(leaf), theirs(torch_leaf)
    assert out.dtype == dtype and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **tolerance(dtype))
    cotangent = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    out.backward(cotangent)
    expected.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(leaf.grad, torch_leaf.grad.numpy(), **tolerance(dtype))
    torch_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        assert parameter.grad.dtype == dtype
        np.testing.assert_allclose(parameter.grad, torch_parameters[name].grad.numpy(), **tolerance(dtype))


def load_into_torch(torch, ours, theirs):
    with torch.no_grad():
        for name, parameter in theirs.named_parameters():
            parameter.copy_(torch.tensor(dict(ours.named_parameters())[name].data))


# -- ConvTranspose2d -----------------------------------------------------------------------------------------
CONV_SETTINGS = [
    {},
    {"stride": 2},
    {"stride": 2, "padding": 1, "output_padding": 1},
    {"stride": (3, 2), "padding": (1, 0), "output_padding": (2, 1), "dilation": (1, 2)},
    {"groups": 2, "bias": False},
    {"stride": 2, "groups": 2, "dilation": 2, "output_padding": 1},
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("settings", CONV_SETTINGS)
def test_conv_transpose2d_layer_matches_torch(torch, dtype, settings):
    for kernel_size in [1, (3, 2)]:
        ours = ConvTranspose2d(4, 6, kernel_size, dtype=dtype, rng=np.random.default_rng(0), **settings)
        theirs = torch.nn.ConvTranspose2d(4, 6, kernel_size, dtype=torch_dtype(torch, dtype), **settings)
        assert tuple(theirs.weight.shape) == ours.weight.shape
        load_into_torch(torch, ours, theirs)
        x = np.random.default_rng(1).standard_normal((2, 4, 5, 3)).astype(dtype)
        compare_modules(torch, ours, theirs, x, dtype)
        assert repr(ours) == repr(theirs)


def test_conv_transpose2d_initialization_is_torchs(torch):
    layer = ConvTranspose2d(6, 8, kernel_size=3, groups=2, rng=np.random.default_rng(0))
    assert layer.weight.shape == (6, 4, 3, 3)
    bound = 1 / math.sqrt(4 * 9)  # torch's fan_in: weight.shape[1] * kernel elements
    assert np.all(np.abs(layer.weight.data) <= bound) and np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.all(np.abs(layer.bias.data) <= bound)
    theirs = torch.nn.ConvTranspose2d(6, 8, kernel_size=3, groups=2)
    assert theirs.weight.abs().max().item() <= bound and theirs.bias.abs().max().item() <= bound
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    same_seed = ConvTranspose2d(6, 8, kernel_size=3, groups=2, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(same_seed.weight.data, layer.weight.data)
    assert ConvTranspose2d(2, 2, 2, bias=False).bias is None


def test_conv_transpose2d_layer_errors():
    with pytest.raises(
        ValueError, match=r"^ConvTranspose2d: in_channels \(3\) and out_channels \(4\) must be"
    ):
        ConvTranspose2d(3, 4, 2, groups=2)
    with pytest.raises(ValueError, match=r"^ConvTranspose2d: output_padding must be smaller than stride"):
        ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
    layer = ConvTranspose2d(2, 3, 2)
    with pytest.raises(ValueError, match=r"^ConvTranspose2d\(2, 3, .*expected input of shape \(N, 2, H, W\)"):
        layer(np.ones((1, 3, 4, 4)))


def test_conv_transpose2d_undoes_the_shape_of_conv2d():
    down = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    up = ConvTranspose2d(5, 3, 3, stride=2, padding=1, output_padding=1)
    x = np.ones((1, 3, 8, 6))
    assert up(down(x)).shape == x.shape


# -- Upsample ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "settings",
    [
        {"scale_factor": 2},
        {"scale_factor": (1.5, 0.5)},
        {"size": (7, 4)},
        {"size": 5, "mode": "bilinear"},
        {"scale_factor": 2, "mode": "bilinear", "align_corners": True},
        {"scale_factor": 1.7, "mode": "bilinear", "align_corners": False},
    ],
)
def test_upsample_matches_torch(torch, dtype, settings):
    ours, theirs = Upsample(**settings), torch.nn.Upsample(**settings)
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 6)).astype(dtype)
    compare_modules(torch, ours, theirs, x, dtype)
    assert repr(ours) == repr(theirs)


def test_upsample_errors():
    with pytest.raises(
        ValueError, match=r"^Upsample: give exactly one of size and scale_factor, got neither"
    ):
        Upsample()
    with pytest.raises(ValueError, match=r"^Upsample: mode must be 'nearest' or 'bilinear', got 'area'"):
        Upsample(size=2, mode="area")
    with pytest.raises(
        ValueError, match=r"^Upsample\(size=2, mode='nearest'\): expected input .* got \(1, 2, 3\)"
    ):
        Upsample(size=2)(np.ones((1, 2, 3)))


# -- AdaptiveAvgPool2d ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [1, (3, 2), (None, 4), (5, None), 7])
def test_adaptive_avg_pool2d_layer_matches_torch(torch, dtype, output_size):
    ours, theirs = AdaptiveAvgPool2d(output_size), torch.nn.AdaptiveAvgPool2d(output_size)
    for shape in [(2, 3, 7, 5), (3, 6, 9)]:
        x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
        compare_modules(torch, ours, theirs, x, dtype)
    assert repr(ours) == repr(theirs)


def test_adaptive_avg_pool2d_layer_errors():
    with pytest.raises(
        ValueError, match=r"^AdaptiveAvgPool2d\(output_size=1\): expected input .* got \(4, 4\)"
    ):
        AdaptiveAvgPool2d(1)(np.ones((4, 4)))


# -- Dropout2d -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout2d_layer_zeroes_channels_in_training_only(dtype):
    layer = Dropout2d(0.25, rng=np.random.default_rng(5))
    x = tape.tensor(np.ones((20, 30, 2, 3), dtype), requires_grad=True)
    out = layer(x)
    assert out.dtype == dtype
    channels = out.data[:, :, 0, 0]
    assert np.all(out.data == channels[:, :, None, None])
    assert set(np.unique(channels)) == {dtype(0), dtype(1 / 0.75)}
    out.backward(np.ones(out.shape, dtype))
    np.testing.assert_array_equal(x.grad, out.data)
    same_seed = Dropout2d(0.25, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(same_seed(x.data), out.data)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x.data)
    assert repr(layer) == "Dropout2d(p=0.25)"


def test_dropout2d_layer_errors():
    with pytest.raises(ValueError, match=r"^Dropout2d: p must be in \[0, 1\], got -0.1"):
        Dropout2d(-0.1)
    with pytest.raises(ValueError, match=r"^Dropout2d\(p=0.5\): expected input of shape \(N, C, H, W\)"):
        Dropout2d()(np.ones((2, 3)))


# -- Embedding's padding_idx ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [0, 4, -1, -3])
def test_embedding_padding_idx_matches_torch(torch, dtype, padding_idx):
    ours = nn.Embedding(6, 3, padding_idx=padding_idx, dtype=dtype, rng=np.random.default_rng(6))
    theirs = torch.nn.Embedding(6, 3, padding_idx=padding_idx, dtype=torch_dtype(torch, dtype))
    row = padding_idx % 6
    assert ours.padding_idx == theirs.padding_idx == row
    np.testing.assert_array_equal(ours.weight.data[row], 0)
    assert theirs.weight[row].abs().sum().item() == 0
    load_into_torch(torch, ours, theirs)
    indices = np.array([[0, 4, 5, 4], [3, 1, 0, row]])
    out, expected = ours(indices), theirs(torch.tensor(indices))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **tolerance(dtype))
    cotangent = np.random.default_rng(7).standard_normal(out.shape).astype(dtype)
    out.backward(cotangent)
    expected.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **tolerance(dtype))
    np.testing.assert_array_equal(ours.weight.grad[row], 0)
    assert repr(ours) == repr(theirs)


def test_embedding_padding_idx_errors_and_default():
    with pytest.raises(ValueError, match=r"^Embedding: padding_idx must lie in \[-4, 4\), got 4"):
        nn.Embedding(4, 2, padding_idx=4)
    table = nn.Embedding(4, 2, rng=np.random.default_rng(0))
    assert table.padding_idx is None and np.all(table.weight.data != 0)
    assert repr(table) == "Embedding(4, 2)"


# -- Embedding's max_norm ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (0.5, 1.0), (2.0, 3.0), (0.8, math.inf)])
def test_embedding_max_norm_matches_torch(torch, dtype, max_norm, norm_type):
    # Two lookups in a row: the rows read by the first are scaled in place, those read by the second after
    # it; rows never read keep their values. Outputs, weights and gradients as torch's.
    settings = {"padding_idx": 1, "max_norm": max_norm, "norm_type": norm_type}
    ours = nn.Embedding(7, 4, **settings, dtype=dtype, rng=np.random.default_rng(8))
    with tape.no_grad():
        ours.weight[5] = ours.weight.data[5] * 1e-3  # a row looked up but already short enough
    theirs = torch.nn.Embedding(7, 4, **settings, dtype=torch_dtype(torch, dtype))
    load_into_torch(torch, ours, theirs)
    untouched = ours.weight.data[6].copy()
    for indices in (np.array([[0, 2, 2], [5, 1, 0]]), np.array([3, 0, 4])):
        out, expected = ours(indices), theirs(torch.tensor(indices))
        np.testing.assert_allclose(out.data, expected.detach().numpy(), **tolerance(dtype))
        np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), **tolerance(dtype))
        cotangent = np.random.default_rng(9).standard_normal(out.shape).astype(dtype)
        out.backward(cotangent)
        expected.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **tolerance(dtype))
    norms = np.linalg.norm(ours.weight.data[[0, 2, 3, 4]], ord=norm_type, axis=1)
    assert np.all(norms <= max_norm * (1 + 1e-6)) and ours.weight.dtype == dtype
    np.testing.assert_array_equal(ours.weight.data[6], untouched)
    assert repr(ours) == repr(theirs)


def test_embedding_max_norm_write_is_an_in_place_change():
    # A record made before the lookup that reads the weight (a tied output layer) refuses its backward.
    table = nn.Embedding(4, 3, max_norm=0.1, rng=np.random.default_rng(10))
    tied = np.ones((2, 3)) @ table.weight.T
    table(np.array([1]))
    with pytest.raises(RuntimeError, match="changed in place"):
        np.sum(tied).backward()


def test_embedding_max_norm_on_arrays_and_errors():
    weight = np.array([[3.0, 4.0], [0.0, 0.5]])
    out = tape.nn.functional.embedding(np.array([0, 0, 1]), weight, max_norm=2.5)
    np.testing.assert_allclose(weight, [[1.5, 2.0], [0.0, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(out, [[1.5, 2.0], [1.5, 2.0], [0.0, 0.5]], rtol=1e-6)
    with pytest.raises(ValueError, match=r"^Embedding: max_norm must be a non-negative number, got -1"):
        nn.Embedding(3, 2, max_norm=-1)
    with pytest.raises(ValueError, match=r"^embedding: max_norm must be a non-negative number, got nan"):
        tape.nn.functional.embedding(np.array([0]), weight, max_norm=float("nan"))
    with pytest.raises(tape.TraceError, match="max_norm"):
        tape.compile(nn.Embedding(3, 2, max_norm=1.0))(np.array([0]))


def test_layers_together_keep_float32_and_train():
    model = nn.Sequential(
        ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, dtype=np.float32),
        Upsample(scale_factor=2, mode="bilinear"),
        Dropout2d(0.2, rng=np.random.default_rng(0)),
        AdaptiveAvgPool2d((2, None)),
    )
    out = model(np.ones((3, 2, 4, 5), np.float32))
    assert out.shape == (3, 4, 2, 20) and out.dtype == np.float32
    np.sum(out**2).backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())

"""ops/nn.py: activations, linear, dropout, embedding, layer_norm and batch_norm, checked against reference
formulas (and torch when installed), finite differences in float64 and float32, and second derivatives."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
import tape.ops.nn as F
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays, nonempty_shapes, shapes


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name: (function, reference formula in numpy, a point the inputs stay away from)
ACTIVATIONS = {
    "relu": (F.relu, lambda x: np.where(x > 0, x, 0), 0.0),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), 0.0),
    "elu": (lambda x: F.elu(x, 1.5), lambda x: np.where(x > 0, x, 1.5 * (np.exp(x) - 1)), 0.0),
    "selu": (F.selu, lambda x: F.SELU_SCALE * np.where(x > 0, x, F.SELU_ALPHA * (np.exp(x) - 1)), 0.0),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + np.vectorize(math.erf, otypes=[float])(x / np.sqrt(2))), None),
    "gelu tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
        None,
    ),
    "softplus": (F.softplus, lambda x: np.log1p(np.exp(x)), None),
    "softplus beta": (lambda x: F.softplus(x, beta=2.0), lambda x: np.log1p(np.exp(2 * x)) / 2, None),
    "sigmoid": (F.sigmoid, _sigmoid, None),
    "tanh": (F.tanh, np.tanh, None),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 1.0), lambda x: np.clip(x, -0.5, 1.0), None),
}


def _away_from_kinks(name, shape, dtype):
    if name == "hardtanh":  # keep away from both clipping points
        return arrays(shape, dtype, -2.0, 2.0, away_from=-0.5, margin=0.1).map(
            lambda x: np.where(np.abs(x - 1.0) < 0.1, 1.3, x).astype(dtype)
        )
    return arrays(shape, dtype, -3.0, 3.0, away_from=ACTIVATIONS[name][2], margin=0.1)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
@given(data=st.data())
def test_activation_values_and_gradients(name, dtype, data):
    function, reference, _ = ACTIVATIONS[name]
    x = data.draw(_away_from_kinks(name, data.draw(shapes), dtype))
    check_op(function, x)
    result = function(x)
    assert result.dtype == dtype
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(result, reference(x.astype(np.float64)), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize(
    "name", ["relu", "leaky_relu", "elu", "selu", "gelu", "gelu tanh", "softplus", "sigmoid", "tanh"]
)
def test_activations_match_torch(name):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    torch_functions = {
        "relu": tf.relu,
        "leaky_relu": lambda t: tf.leaky_relu(t, 0.2),
        "elu": lambda t: tf.elu(t, 1.5),
        "selu": tf.selu,
        "gelu": tf.gelu,
        "gelu tanh": lambda t: tf.gelu(t, approximate="tanh"),
        "softplus": tf.softplus,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
    }
    x_values = np.random.default_rng(0).uniform(-30, 30, size=50)
    x = tape.tensor(x_values, requires_grad=True)
    y = ACTIVATIONS[name][0](x)
    cotangent = np.random.default_rng(1).standard_normal(50)
    y.backward(cotangent)
    reference_x = torch.tensor(x_values, requires_grad=True)
    reference_y = torch_functions[name](reference_x)
    reference_y.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(y.data, reference_y.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(x.grad, reference_x.grad.numpy(), rtol=1e-10, atol=1e-14)


def _gelu_tanh_derivative(x):
    inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)
    slope = np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x**2)
    return 0.5 * (1 + np.tanh(inner)) + 0.5 * x * (1 - np.tanh(inner) ** 2) * slope


# name: the derivative written out by hand
DERIVATIVES = {
    "relu": lambda x: (x > 0).astype(float),
    "leaky_relu": lambda x: np.where(x > 0, 1.0, 0.2),
    "elu": lambda x: np.where(x > 0, 1.0, 1.5 * np.exp(x)),
    "selu": lambda x: F.SELU_SCALE * np.where(x > 0, 1.0, F.SELU_ALPHA * np.exp(x)),
    "gelu": lambda x: (
        0.5 * (1 + np.vectorize(math.erf, otypes=[float])(x / np.sqrt(2)))
        + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    ),
    "gelu tanh": _gelu_tanh_derivative,
    "softplus": lambda x: np.where(x > 20, 1.0, _sigmoid(x)),
    "sigmoid": lambda x: _sigmoid(x) * (1 - _sigmoid(x)),
    "tanh": lambda x: 1 - np.tanh(x) ** 2,
}


@pytest.mark.parametrize("name", DERIVATIVES)
def test_activations_over_a_wide_range_follow_their_formulas_and_derivatives(name):
    x_values = np.random.default_rng(0).uniform(-30, 30, size=50)
    x = tape.tensor(x_values, requires_grad=True)
    y = ACTIVATIONS[name][0](x)
    cotangent = np.random.default_rng(1).standard_normal(50)
    y.backward(cotangent)
    reference = ACTIVATIONS[name][1]
    if name == "softplus":  # linear above the threshold 20, as torch
        reference = lambda x: np.where(x > 20, x, np.log1p(np.exp(x)))
    np.testing.assert_allclose(y.data, reference(x_values), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(x.grad, cotangent * DERIVATIVES[name](x_values), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_sigmoid_and_softplus_are_stable_at_extremes(dtype):
    x = tape.tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning
        s = F.sigmoid(x)
        p = F.softplus(x)
        q = F.softplus(x, threshold=None)
        np.sum(s + p + q).backward()
    assert np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(s.data, [0.0, np.exp(-50.0), 0.5, 1.0, 1.0], rtol=1e-5, atol=0)
    np.testing.assert_allclose(q.data, [0.0, np.exp(-50.0), np.log(2.0), 50.0, 1000.0], rtol=1e-5, atol=0)
    np.testing.assert_array_equal(p.data[3:], x.data[3:])  # linear above the threshold, as torch


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "gelu", "gelu tanh", "softplus", "elu"])
def test_activation_second_derivatives(name):
    x = np.random.default_rng(2).uniform(-2, 2, size=5)
    assert tape.gradgradcheck(ACTIVATIONS[name][0], x)


def test_activation_argument_errors():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        F.gelu(np.zeros(2), approximate="fast")
    with pytest.raises(ValueError, match="softplus: beta must be positive"):
        F.softplus(np.zeros(2), beta=0)
    with pytest.raises(ValueError, match="hardtanh: min_val"):
        F.hardtanh(np.zeros(2), 1.0, -1.0)


# -- linear ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), with_bias=st.booleans())
def test_linear(dtype, data, with_bias):
    batch = data.draw(st.sampled_from([(), (0,), (3,), (2, 3)]))
    features_in, features_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    x = data.draw(arrays((*batch, features_in), dtype))
    weight = data.draw(arrays((features_out, features_in), dtype))
    bias = data.draw(arrays((features_out,), dtype)) if with_bias else None
    if with_bias:
        check_op(F.linear, x, weight, bias)
    else:
        check_op(lambda x, w: F.linear(x, w), x, weight)
    expected = x.astype(np.float64) @ weight.T.astype(np.float64) + (0 if bias is None else bias)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(F.linear(x, weight, bias), expected, rtol=tolerance, atol=tolerance)


def test_linear_second_derivative():
    rng = np.random.default_rng(3)
    assert tape.gradgradcheck(
        lambda x, w, b: np.tanh(F.linear(x, w, b)), *(rng.standard_normal(s) for s in [(2, 3), (4, 3), (4,)])
    )


def test_linear_errors_name_the_shapes():
    with pytest.raises(
        ValueError, match=r"linear: input of shape \(2, 5\) does not fit weight of shape \(3, 4\)"
    ):
        F.linear(np.zeros((2, 5)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(3,\), got \(4,\)"):
        F.linear(np.zeros((2, 4)), np.zeros((3, 4)), np.zeros(4))
    with pytest.raises(ValueError, match="linear: weight must be 2-D"):
        F.linear(np.zeros(4), np.zeros(4))


# -- dropout -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dropout_is_inverted_and_its_gradient_is_the_mask(dtype):
    x = tape.tensor(np.random.default_rng(4).uniform(1, 2, size=(200, 50)).astype(dtype), requires_grad=True)
    y = F.dropout(x, p=0.3, training=True, rng=np.random.default_rng(5))
    assert y.dtype == dtype
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.data[kept], x.data[kept] / 0.7, rtol=1e-6)
    y.backward(np.ones(y.shape, dtype=dtype))
    np.testing.assert_allclose(x.grad, kept / dtype(0.7), rtol=1e-6)


def test_dropout_off_and_edge_probabilities():
    x = tape.tensor(np.ones(5), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0, training=True).data, np.zeros(5))
    same = [F.dropout(x, 0.5, rng=np.random.default_rng(9)).data for _ in range(2)]
    np.testing.assert_array_equal(*same)
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\], got 1.5"):
        F.dropout(x, 1.5)


# -- embedding ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_embedding(dtype, data):
    rows = data.draw(st.integers(1, 5))
    weight = data.draw(arrays((rows, 3), dtype))
    index_shape = data.draw(st.sampled_from([(), (0,), (4,), (2, 3)]))
    indices = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, rows, size=index_shape)
    check_op(lambda w: F.embedding(indices, w), weight)
    np.testing.assert_array_equal(F.embedding(indices, weight), weight[indices])
    # Repeated indices add their cotangents into the same row.
    w = tape.tensor(weight, requires_grad=True)
    cotangent = np.random.default_rng(0).standard_normal((*index_shape, 3)).astype(dtype)
    F.embedding(indices, w).backward(cotangent)
    expected = np.zeros_like(weight)
    np.add.at(expected, indices, cotangent)
    np.testing.assert_allclose(w.grad, expected, rtol=1e-6)


def test_embedding_errors():
    with pytest.raises(TypeError, match="embedding: indices must be integers, got dtype float64"):
        F.embedding(np.array([0.0]), np.zeros((3, 2)))
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 3\), got values from 0 to 3"):
        F.embedding(np.array([0, 3]), np.zeros((3, 2)))


# -- layer_norm and batch_norm -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), affine=st.booleans())
def test_layer_norm(dtype, data, affine):
    shape = data.draw(nonempty_shapes.filter(lambda s: len(s) >= 1 and s[-1] >= 2))
    k = data.draw(st.integers(1, len(shape)))
    normalized = shape[len(shape) - k :]
    x = data.draw(arrays(shape, dtype))
    weight = data.draw(arrays(normalized, dtype)) if affine else None
    bias = data.draw(arrays(normalized, dtype)) if affine else None
    if affine:
        check_op(lambda x, w, b: F.layer_norm(x, normalized, w, b, eps=1e-3), x, weight, bias)
    else:
        check_op(lambda x: F.layer_norm(x, normalized, eps=1e-3), x)
    axes = tuple(range(len(shape) - k, len(shape)))
    x64 = x.astype(np.float64)
    expected = (x64 - x64.mean(axis=axes, keepdims=True)) / np.sqrt(x64.var(axis=axes, keepdims=True) + 1e-3)
    if affine:
        expected = expected * weight + bias
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(
        F.layer_norm(x, normalized, weight, bias, eps=1e-3), expected, rtol=tolerance, atol=tolerance
    )


def test_layer_norm_second_derivative_and_errors():
    rng = np.random.default_rng(6)
    assert tape.gradgradcheck(
        lambda x, w, b: F.layer_norm(x, 3, w, b),
        rng.standard_normal((2, 3)),
        rng.standard_normal(3),
        rng.standard_normal(3),
    )
    with pytest.raises(
        ValueError, match=r"layer_norm: expected input whose trailing axes are \(4,\), got shape"
    ):
        F.layer_norm(np.zeros((2, 3)), 4)
    with pytest.raises(ValueError, match=r"layer_norm: weight must have shape \(3,\), got \(2,\)"):
        F.layer_norm(np.zeros((2, 3)), 3, np.ones(2))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(dtype, shape, training):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype)
    weight, bias = rng.uniform(0.5, 2, shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    mean, var = rng.standard_normal(shape[1]).astype(dtype), rng.uniform(0.5, 2, shape[1]).astype(dtype)

    def normalize(x, w, b):
        return F.batch_norm(x, mean.copy(), var.copy(), w, b, training=training, eps=1e-3)

    # In training it updates the running statistics outside the tape, which tape.compile refuses.
    check_op(normalize, x, weight, bias, compiles=not training)
    axes = (0, *range(2, len(shape)))
    channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    x64 = x.astype(np.float64)
    if training:
        centre, spread = x64.mean(axis=axes, keepdims=True), x64.var(axis=axes, keepdims=True)
    else:
        centre, spread = mean.reshape(channel), var.reshape(channel)
    expected = (x64 - centre) / np.sqrt(spread + 1e-3) * weight.reshape(channel) + bias.reshape(channel)
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(normalize(x, weight, bias), expected, rtol=tolerance, atol=tolerance)


def test_batch_norm_updates_running_statistics_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 3, 4))
    mean, var = np.zeros(3), np.ones(3)
    torch_mean, torch_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(3):
        y = F.batch_norm(x, mean, var, training=True, momentum=0.2)
        expected = torch.nn.functional.batch_norm(
            torch.tensor(x), torch_mean, torch_var, training=True, momentum=0.2
        )
    np.testing.assert_allclose(y, expected.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mean, torch_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var, torch_var.numpy(), rtol=1e-12)


def channel_statistics(x):
    """Each channel's mean, biased and unbiased variance, by explicit sums over every other axis."""
    x = np.asarray(x, dtype=np.float64)
    means, biased, unbiased = [], [], []
    for channel in range(x.shape[1]):
        values = [float(v) for v in np.moveaxis(x, 1, 0)[channel].ravel()]
        count = len(values)
        mean = sum(values) / count
        squares = sum((v - mean) ** 2 for v in values)
        means.append(mean)
        biased.append(squares / count)
        unbiased.append(squares / (count - 1))
    return np.array(means), np.array(biased), np.array(unbiased)


@pytest.mark.parametrize("momentum", [0.1, 0.6])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4)])
def test_batch_norm_running_statistics_follow_explicit_sums(shape, momentum):
    rng = np.random.default_rng(8)
    mean, var = np.zeros(shape[1]), np.ones(shape[1])
    expected_mean, expected_var = np.zeros(shape[1]), np.ones(shape[1])
    channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    for step in range(3):
        x = rng.standard_normal(shape) * (step + 1) + step
        y = F.batch_norm(x, mean, var, training=True, momentum=momentum, eps=1e-3)
        batch_mean, batch_biased, batch_unbiased = channel_statistics(x)
        expected_mean = (1 - momentum) * expected_mean + momentum * batch_mean
        expected_var = (1 - momentum) * expected_var + momentum * batch_unbiased  # n / (n - 1), as torch
        np.testing.assert_allclose(mean, expected_mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(var, expected_var, rtol=1e-12, atol=1e-14)
        normalized = (x - batch_mean.reshape(channel)) / np.sqrt(batch_biased.reshape(channel) + 1e-3)
        np.testing.assert_allclose(y, normalized, rtol=1e-10, atol=1e-12)
    frozen_mean, frozen_var = mean.copy(), var.copy()
    x = rng.standard_normal(shape)
    y = F.batch_norm(x, mean, var, training=False, momentum=momentum, eps=1e-3)
    np.testing.assert_array_equal(mean, frozen_mean)
    np.testing.assert_array_equal(var, frozen_var)
    expected = (x - frozen_mean.reshape(channel)) / np.sqrt(frozen_var.reshape(channel) + 1e-3)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def test_batch_norm_second_derivative_and_errors():
    rng = np.random.default_rng(9)
    assert tape.gradgradcheck(
        lambda x, w: F.batch_norm(x, None, None, w, None, training=True),
        rng.standard_normal((4, 2)),
        rng.standard_normal(2),
    )
    with pytest.raises(ValueError, match=r"batch_norm: running_mean must have shape \(3,\), got \(2,\)"):
        F.batch_norm(np.zeros((4, 3)), np.zeros(2), np.ones(3), training=True)
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel"):
        F.batch_norm(np.zeros((1, 3)), np.zeros(3), np.ones(3), training=True)
    with pytest.raises(ValueError, match="batch_norm: out of training the running mean and variance"):
        F.batch_norm(np.zeros((2, 3)), None, None, training=False)


# -- arguments read as plain data refuse a tensor that requires grad ---------------------------------------
def _requires_grad(values):
    return tape.tensor(np.asarray(values, dtype=float), requires_grad=True)


X = np.array([[-0.5, 0.25, 1.5], [0.75, -1.25, 0.5]])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.leaky_relu(X, _requires_grad(0.1)), r"leaky_relu: negative_slope is not differentiated"),
        (lambda: F.elu(X, alpha=_requires_grad(1.0)), r"elu: alpha is not differentiated"),
        (lambda: F.softplus(X, beta=_requires_grad(2.0)), r"softplus: beta is not differentiated"),
        (
            lambda: F.softplus(_requires_grad(X), threshold=_requires_grad(1.0)),
            r"softplus: threshold is not differentiated .*; pass threshold\.item\(\)",
        ),
        (lambda: F.hardtanh(X, max_val=_requires_grad(1.0)), r"hardtanh: max_val is not differentiated"),
        (lambda: F.dropout(_requires_grad(X), p=_requires_grad(0.5)), r"dropout: p is not differentiated"),
        (lambda: F.layer_norm(X, 3, eps=_requires_grad(1e-5)), r"layer_norm: eps is not differentiated"),
        (
            lambda: F.batch_norm(_requires_grad(X), _requires_grad(np.zeros(3)), np.ones(3)),
            r"batch_norm: running_mean is not differentiated .*; pass running_mean\.detach\(\)",
        ),
        (
            lambda: F.batch_norm(X, np.zeros(3), _requires_grad(np.ones(3)), training=True),
            r"batch_norm: running_var is not differentiated",
        ),
        (
            lambda: F.batch_norm(X, np.zeros(3), np.ones(3), training=True, momentum=_requires_grad(0.1)),
            r"batch_norm: momentum is not differentiated",
        ),
        (
            lambda: F.batch_norm(X, np.zeros(3), np.ones(3), eps=_requires_grad(1e-5)),
            r"batch_norm: eps is not",
        ),
    ],
)
def test_arguments_read_as_plain_data_refuse_a_tensor_that_requires_grad(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_running_statistics_may_be_tensors_without_grad():
    mean, var = tape.tensor(np.zeros(3)), tape.tensor(np.ones(3))
    x = _requires_grad(X)
    y = F.batch_norm(x, mean, var, training=True)
    np.testing.assert_allclose(mean.data, 0.1 * X.mean(axis=0))
    np.sum(y * y).backward()
    assert x.grad is not None


# The forwards warn as numpy's own formula does (a guard would cost a fifth of a small forward); the
# backward passes are quiet.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_gelu_and_softplus_at_infinities_and_nan_give_torchs_values():
    # The values and gradients torch gives there.
    edges = np.array([np.inf, -np.inf, np.nan])
    for function, values, gradients in (
        (F.gelu, [np.inf, np.nan, np.nan], [np.nan, np.nan, np.nan]),
        (lambda x: F.gelu(x, approximate="tanh"), [np.inf, np.nan, np.nan], [np.nan, np.nan, np.nan]),
        (F.softplus, [np.inf, 0.0, np.nan], [1.0, 0.0, np.nan]),
    ):
        x = tape.tensor(edges, requires_grad=True)
        y = function(x)
        y.backward(np.ones(3))
        np.testing.assert_array_equal(y.data, values)
        np.testing.assert_array_equal(x.grad, gradients)

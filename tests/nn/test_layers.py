"""tape/nn/layers.py and tape/nn/losses.py: each layer against its functional form or torch, initialization
bounds, shape errors naming the layer, the lecture's simple components, and a tiny training run."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import tape
import tape.nn as nn
import tape.ops.losses as L
import tape.ops.nn as F
from tests.ops.test_nn import channel_statistics


def test_linear_initialization_and_forward():
    layer = nn.Linear(50, 40, rng=np.random.default_rng(0))
    bound = 1 / math.sqrt(50)
    assert np.all(np.abs(layer.weight.data) <= bound) and np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.all(np.abs(layer.bias.data) <= bound)
    x = np.random.default_rng(1).standard_normal((3, 7, 50))
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-12)
    assert nn.Linear(2, 3, dtype=np.float32)(np.ones((1, 2), dtype=np.float32)).dtype == np.float32
    assert tape.gradcheck(
        lambda w, b, x: F.linear(x, w, b), layer.weight.data[:3, :4], layer.bias.data[:3], x[0, :2, :4]
    )


# shape, fan_in, fan_out written out
FANS = [((40, 30), 30, 40), ((8, 6, 3, 5), 90, 120)]


@pytest.mark.parametrize(("shape", "fan_in", "fan_out"), FANS)
def test_initializers_follow_their_formulas(shape, fan_in, fan_out):
    rng = np.random.default_rng(0)
    uniform_bounds = {
        "xavier": (
            lambda t: nn.init.xavier_uniform_(t, gain=2.0, rng=rng),
            2.0 * math.sqrt(6 / (fan_in + fan_out)),
        ),
        "kaiming fan_in": (
            lambda t: nn.init.kaiming_uniform_(t, a=math.sqrt(5), rng=rng),
            1 / math.sqrt(fan_in),
        ),
        "kaiming relu fan_out": (
            lambda t: nn.init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu", rng=rng),
            math.sqrt(6 / fan_out),
        ),
    }
    for name, (fill, bound) in uniform_bounds.items():
        values = fill(tape.zeros(shape)).data
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound, name
        assert abs(values.std() - bound / math.sqrt(3)) < 0.1 * bound, name
    normal_spreads = {
        "xavier": (lambda t: nn.init.xavier_normal_(t, rng=rng), math.sqrt(2 / (fan_in + fan_out))),
        "kaiming": (lambda t: nn.init.kaiming_normal_(t, a=0.5, rng=rng), math.sqrt(2 / 1.25 / fan_in)),
    }
    for name, (fill, std) in normal_spreads.items():
        values = fill(tape.zeros(shape)).data
        assert abs(values.std() - std) < 0.1 * std and abs(values.mean()) < 0.1 * std, name


def test_linear_shape_error_names_the_layer():
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=4, out_features=3\): expected input with last axis 4, "
        r"got shape \(2, 5\)",
    ):
        nn.Linear(4, 3)(np.zeros((2, 5)))


ACTIVATION_LAYERS = [
    (nn.ReLU(), F.relu),
    (nn.LeakyReLU(0.1), lambda x: F.leaky_relu(x, 0.1)),
    (nn.ELU(0.5), lambda x: F.elu(x, 0.5)),
    (nn.GELU(), F.gelu),
    (nn.SELU(), F.selu),
    (nn.Softplus(2.0), lambda x: F.softplus(x, 2.0)),
    (nn.Sigmoid(), F.sigmoid),
    (nn.Tanh(), F.tanh),
    (nn.Hardtanh(-0.5, 0.5), lambda x: F.hardtanh(x, -0.5, 0.5)),
    (nn.Abs(), np.abs),
    (nn.AddConstant(2.5), lambda x: x + 2.5),
    (nn.Identity(), lambda x: x),
]


@pytest.mark.parametrize("layer, function", ACTIVATION_LAYERS, ids=lambda v: type(v).__name__)
def test_function_layers_apply_their_function(layer, function):
    x = tape.tensor(np.random.default_rng(2).uniform(-2, 2, (3, 4)), requires_grad=True)
    np.testing.assert_array_equal(layer(x).data, function(x.data))
    assert layer(x).requires_grad


def test_learnable_lecture_components():
    x = np.random.default_rng(3).standard_normal((5, 3))
    for layer, shape in [(nn.Add(3), (3,)), (nn.Add(scalar=True), ()), (nn.Mul(), ()), (nn.CMul(3), (3,))]:
        (parameter,) = layer.parameters()
        assert parameter.shape == shape
        assert tape.gradcheck(
            lambda p, layer=layer, parameter=parameter: _with(layer, parameter, p)(x), parameter.data + 0.3
        )
    a, b = x, x[::-1].copy()
    np.testing.assert_allclose(
        nn.DotProduct()(a, b).data
        if isinstance(nn.DotProduct()(a, b), tape.Tensor)
        else nn.DotProduct()(a, b),
        np.sum(a * b, -1),
    )
    cosine = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    np.testing.assert_allclose(nn.CosineDistance()([a, b]), cosine, rtol=1e-10)
    np.testing.assert_allclose(nn.PairwiseDistance()(a, b), np.linalg.norm(a - b + 1e-6, axis=-1), rtol=1e-10)
    with pytest.raises(ValueError, match=r"DotProduct\(\): inputs of shapes \(5, 3\) and \(3,\) must match"):
        nn.DotProduct()(a, b[0])


def _with(layer, parameter, value):
    """layer with its one parameter's value replaced by the tensor ``value`` (for gradcheck)."""
    name = next(name for name, p in layer.named_parameters() if p is parameter)

    def run(x):
        saved = layer._parameters[name]
        layer._parameters[name] = value
        try:
            return layer(x)
        finally:
            layer._parameters[name] = saved

    return run


def test_concat_and_join_table():
    x = tape.tensor(np.random.default_rng(4).standard_normal((2, 3)), requires_grad=True)
    both = nn.Concat(nn.Identity(), nn.Tanh(), axis=1)
    y = both(x)
    np.testing.assert_allclose(y.data, np.concatenate([x.data, np.tanh(x.data)], axis=1))
    np.sum(y).backward()
    np.testing.assert_allclose(x.grad, 1 + (1 - np.tanh(x.data) ** 2))
    assert "(1): Tanh()" in repr(both)
    with pytest.raises(
        ValueError, match=r"JoinTable\(axis=1\): cannot join inputs of shapes \[\(2, 3\), \(3, 3\)\]"
    ):
        nn.JoinTable(1)([np.zeros((2, 3)), np.zeros((3, 3))])


def test_dropout_layer_respects_the_mode():
    layer = nn.Dropout(0.5, rng=np.random.default_rng(5))
    x = np.ones((100, 10))
    assert np.any(np.asarray(layer(x)) == 0)
    layer.eval()
    np.testing.assert_array_equal(layer(x), x)


def test_embedding_layer():
    table = nn.Embedding(5, 3, rng=np.random.default_rng(6))
    indices = np.array([[0, 4], [4, 1]])
    out = table(indices)
    np.testing.assert_array_equal(out.data, table.weight.data[indices])
    np.sum(out).backward()
    np.testing.assert_array_equal(table.weight.grad[:, 0], [1, 1, 0, 0, 2])
    with pytest.raises(IndexError, match=r"^embedding: indices must lie in \[0, 5\)") as caught:
        table(np.array([5]))
    assert caught.value.__notes__ == ["in Embedding(5, 3)"]


def test_norm_layers_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 4, 3))
    ours, theirs = nn.BatchNorm1d(4, momentum=0.3), torch.nn.BatchNorm1d(4, momentum=0.3).double()
    for _ in range(2):
        np.testing.assert_allclose(
            ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12
        )
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 2
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    norm = nn.LayerNorm((4, 3))
    expected = torch.nn.functional.layer_norm(torch.tensor(x), (4, 3)).numpy()
    np.testing.assert_allclose(norm(x).data, expected, rtol=1e-10, atol=1e-12)


def test_batch_norm_without_momentum_keeps_the_plain_average_of_every_batch():
    rng = np.random.default_rng(11)
    norm = nn.BatchNorm1d(3, momentum=None)
    batches = [rng.standard_normal((5, 3)) * (k + 1) + k for k in range(4)]
    for batch in batches:
        norm(batch)
    statistics = [channel_statistics(batch) for batch in batches]
    np.testing.assert_allclose(norm.running_mean, np.mean([s[0] for s in statistics], axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.running_var, np.mean([s[2] for s in statistics], axis=0), rtol=1e-12)
    assert int(norm.num_batches_tracked) == 4
    torch = pytest.importorskip("torch")
    theirs = torch.nn.BatchNorm1d(3, momentum=None, dtype=torch.float64)
    for batch in batches:
        theirs(torch.tensor(batch))
    np.testing.assert_allclose(norm.running_var, theirs.running_var.numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape", [(8, 4), (5, 4, 3)])
def test_batch_norm_layer_follows_explicit_sums(shape):
    rng = np.random.default_rng(7)
    norm = nn.BatchNorm1d(4, momentum=0.3)
    with tape.no_grad():
        norm.weight[...] = rng.uniform(0.5, 2.0, 4)
        norm.bias[...] = rng.standard_normal(4)
    channel = (1, 4) + (1,) * (len(shape) - 2)
    weight, bias = norm.weight.data.reshape(channel), norm.bias.data.reshape(channel)
    expected_mean, expected_var = np.zeros(4), np.ones(4)
    for step in range(3):
        x = rng.standard_normal(shape) * (step + 1) - step
        mean, biased, unbiased = channel_statistics(x)
        expected_mean = 0.7 * expected_mean + 0.3 * mean
        expected_var = 0.7 * expected_var + 0.3 * unbiased
        normalized = (x - mean.reshape(channel)) / np.sqrt(biased.reshape(channel) + 1e-5)
        np.testing.assert_allclose(norm(x).data, normalized * weight + bias, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(norm.running_mean, expected_mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(norm.running_var, expected_var, rtol=1e-12, atol=1e-14)
        assert int(norm.num_batches_tracked) == step + 1
    norm.eval()
    x = rng.standard_normal(shape)
    expected = (x - expected_mean.reshape(channel)) / np.sqrt(expected_var.reshape(channel) + 1e-5)
    np.testing.assert_allclose(norm(x).data, expected * weight + bias, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(norm.running_mean, expected_mean, rtol=1e-12, atol=1e-14)
    assert int(norm.num_batches_tracked) == 3
    untracked = nn.BatchNorm1d(4, affine=False, track_running_stats=False).eval()
    mean, biased, _ = channel_statistics(x)
    normalized = (x - mean.reshape(channel)) / np.sqrt(biased.reshape(channel) + 1e-5)
    np.testing.assert_allclose(untracked(x).data, normalized, rtol=1e-10, atol=1e-12)
    assert untracked.running_mean is None and list(untracked.parameters()) == []
    with pytest.raises(
        ValueError, match=r"BatchNorm1d\(4, .*\): expected input of shape \(N, 4\) or \(N, 4, L\)"
    ):
        norm(np.zeros((2, 3)))


def test_layer_norm_layer_follows_explicit_sums():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 3))
    norm = nn.LayerNorm((4, 3))
    with tape.no_grad():
        norm.weight[...] = rng.uniform(0.5, 2.0, (4, 3))
        norm.bias[...] = rng.standard_normal((4, 3))
    expected = np.empty_like(x)
    for n in range(3):
        values = [float(v) for v in x[n].ravel()]
        mean = sum(values) / len(values)
        variance = sum((v - mean) ** 2 for v in values) / len(values)
        expected[n] = (x[n] - mean) / math.sqrt(variance + 1e-5) * norm.weight.data + norm.bias.data
    np.testing.assert_allclose(norm(x).data, expected, rtol=1e-10, atol=1e-12)
    bare = nn.LayerNorm(3, eps=1e-3, elementwise_affine=False)
    rows = x.reshape(-1, 3)
    spread = np.sqrt(((rows - rows.mean(1, keepdims=True)) ** 2).sum(1, keepdims=True) / 3 + 1e-3)
    np.testing.assert_allclose(bare(rows).data, (rows - rows.mean(1, keepdims=True)) / spread, rtol=1e-10)


def test_flatten():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert nn.Flatten()(tape.tensor(x)).shape == (2, 12)
    assert nn.Flatten(0, 1)(tape.tensor(x)).shape == (6, 4)


LOSS_MODULES = [
    (nn.MSELoss(reduction="sum"), lambda x, t: L.mse_loss(x, t, "sum")),
    (nn.L1Loss(), L.l1_loss),
    (nn.SmoothL1Loss(beta=0.5), lambda x, t: L.smooth_l1_loss(x, t, beta=0.5)),
    (nn.HuberLoss(delta=0.5), lambda x, t: L.huber_loss(x, t, delta=0.5)),
    (
        nn.BCEWithLogitsLoss(pos_weight=np.array(2.0)),
        lambda x, t: L.binary_cross_entropy_with_logits(x, t, pos_weight=np.array(2.0)),
    ),
    (nn.KLDivLoss(reduction="batchmean"), lambda x, t: L.kl_div(x, t, "batchmean")),
]


@pytest.mark.parametrize("module, function", LOSS_MODULES, ids=lambda v: type(v).__name__)
def test_loss_modules_call_their_function(module, function):
    rng = np.random.default_rng(8)
    x, t = rng.uniform(-1, 0, (3, 4)), rng.uniform(0.1, 0.9, (3, 4))
    np.testing.assert_array_equal(module(x, t), function(x, t))


def test_class_loss_modules_and_lecture_aliases():
    rng = np.random.default_rng(9)
    logits, target = rng.standard_normal((4, 3)), np.array([0, 2, 1, -1])
    loss = nn.CrossEntropyCriterion(ignore_index=-1, label_smoothing=0.1)
    assert nn.CrossEntropyCriterion is nn.CrossEntropyLoss and nn.BCECriterion is nn.BCELoss
    assert (
        nn.ClassNLLCriterion is nn.NLLLoss and nn.L1Criterion is nn.L1Loss and nn.MSECriterion is nn.MSELoss
    )
    np.testing.assert_array_equal(
        loss(logits, target), L.cross_entropy(logits, target, None, -1, "mean", 0.1)
    )
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(
        nn.NLLLoss(ignore_index=-1)(log_p, target), L.cross_entropy(logits, target, None, -1)
    )
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_array_equal(
        nn.BCELoss()(p, (logits > 0) * 1.0), L.binary_cross_entropy(p, (logits > 0) * 1.0)
    )
    labels = np.array([1, -1, 1, -1])
    assert float(nn.MarginRankingLoss(0.5)(logits[:, 0], logits[:, 1], labels)) == float(
        L.margin_ranking_loss(logits[:, 0], logits[:, 1], labels, 0.5)
    )
    assert float(nn.CosineEmbeddingLoss()(logits, logits[::-1], labels)) == float(
        L.cosine_embedding_loss(logits, logits[::-1], labels)
    )
    assert float(nn.HingeEmbeddingLoss(2.0)(np.abs(logits[:, 0]), labels)) == float(
        L.hinge_embedding_loss(np.abs(logits[:, 0]), labels, 2.0)
    )
    assert repr(nn.MSELoss()) == "MSELoss(reduction='mean')"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_learns_a_separable_problem(dtype):
    rng = np.random.default_rng(10)
    points = rng.standard_normal((200, 2)).astype(dtype)
    labels = (points[:, 0] * points[:, 1] > 0).astype(np.int64)  # XOR-like quadrants: needs the hidden layer
    model = nn.Sequential(
        nn.Linear(2, 32, dtype=dtype, rng=rng), nn.Tanh(), nn.Linear(32, 2, dtype=dtype, rng=rng)
    )
    optimizer = nn.optim.Adam(model.parameters(), lr=0.03)
    loss_function = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(300):
        optimizer.zero_grad()
        loss = loss_function(model(points), labels)
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    assert loss.dtype == dtype and all(p.dtype == dtype for p in model.parameters())
    with tape.no_grad():
        accuracy = np.mean(np.argmax(model(points).data, axis=1) == labels)
    assert accuracy == 1.0, f"training accuracy {accuracy}, final loss {float(loss.data)}"
    assert elapsed < 3.0


def test_softmax_and_log_softmax_layers():
    x = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])
    for layer, function in ((nn.Softmax(axis=0), tape.softmax), (nn.LogSoftmax(), tape.log_softmax)):
        axis = layer.axis
        np.testing.assert_allclose(layer(tape.tensor(x)).data, function(x, axis=axis))
        assert tape.gradcheck(lambda x, layer=layer: layer(x), x)
    assert repr(nn.Softmax(axis=0)) == "Softmax(axis=0)"
    np.testing.assert_allclose(nn.functional.log_softmax(tape.tensor(x)).data, tape.log_softmax(x))

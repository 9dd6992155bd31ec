"""ops/losses.py: every loss against a reference formula in numpy (and torch when installed), gradients
against finite differences in float64 and float32, every reduction, and the errors for mismatched inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
import tape.ops.losses as L
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, arrays

REDUCTIONS = ["mean", "sum", "none"]


def reduce(values, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](values)


def assert_close(actual, expected, dtype):
    tolerance = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=tolerance, atol=tolerance)


# -- elementwise losses: (loss, reference on float64 arrays, how inputs are drawn) ---------------------------
def _pair(shape, dtype, margin_from_target=0.0):
    """input, target drawn so that input - target stays ``margin_from_target`` away from 0 and ±1."""

    def build(seed):
        rng = np.random.default_rng(seed)
        target = rng.uniform(-2, 2, shape)
        gap = rng.choice([-1.0, 1.0], shape) * rng.choice([0.3, 0.6, 1.4, 2.0], shape)
        return (target + gap).astype(dtype), target.astype(dtype)

    return st.integers(0, 2**32 - 1).map(build)


def _smooth_reference(d, beta):
    a = np.abs(d)
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


ELEMENTWISE = {
    "mse": (L.mse_loss, lambda x, t: (x - t) ** 2),
    "l1": (L.l1_loss, lambda x, t: np.abs(x - t)),
    "smooth_l1": (L.smooth_l1_loss, lambda x, t: _smooth_reference(x - t, 1.0)),
    "smooth_l1 beta": (
        lambda x, t, reduction: L.smooth_l1_loss(x, t, reduction, beta=0.5),
        lambda x, t: _smooth_reference(x - t, 0.5),
    ),
    "huber delta": (
        lambda x, t, reduction: L.huber_loss(x, t, reduction, delta=0.8),
        lambda x, t: 0.8 * _smooth_reference(x - t, 0.8),
    ),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
@given(reduction=st.sampled_from(REDUCTIONS), data=st.data())
def test_elementwise_losses(name, reduction, dtype, data):
    loss, reference = ELEMENTWISE[name]
    shape = data.draw(st.sampled_from([(), (3,), (2, 3)]))
    x, t = data.draw(_pair(shape, dtype))
    check_op(lambda x, t: loss(x, t, reduction=reduction), x, t)
    assert_close(
        loss(x, t, reduction=reduction), reduce(reference(x.astype(float), t.astype(float)), reduction), dtype
    )


def _probabilities(shape, dtype):
    return st.integers(0, 2**32 - 1).map(
        lambda seed: np.random.default_rng(seed).uniform(0.05, 0.95, shape).astype(dtype)
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(reduction=st.sampled_from(REDUCTIONS), data=st.data(), weighted=st.booleans())
def test_binary_cross_entropy(dtype, reduction, data, weighted):
    shape = data.draw(st.sampled_from([(4,), (2, 3)]))
    p, t = data.draw(_probabilities(shape, dtype)), data.draw(_probabilities(shape, dtype))
    weight = data.draw(arrays(shape[-1:], dtype, 0.5, 2.0)) if weighted else None
    check_op(lambda p, t: L.binary_cross_entropy(p, t, weight, reduction), p, t)
    p64, t64 = p.astype(float), t.astype(float)
    expected = -(t64 * np.log(p64) + (1 - t64) * np.log(1 - p64)) * (1 if weight is None else weight)
    assert_close(L.binary_cross_entropy(p, t, weight, reduction), reduce(expected, reduction), dtype)


def test_binary_cross_entropy_clamps_logs_like_torch():
    torch = pytest.importorskip("torch")
    p, t = np.array([0.0, 1.0, 0.5, 1e-50]), np.array([1.0, 0.0, 1.0, 1.0])
    expected = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction="none")
    np.testing.assert_allclose(L.binary_cross_entropy(p, t, reduction="none"), expected.numpy())
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities in \[0, 1\]"):
        L.binary_cross_entropy(np.array([1.5]), np.array([1.0]))


def test_binary_cross_entropy_clamps_each_log_at_minus_100():
    p, t = np.array([0.0, 1.0, 0.5, 1e-50, 0.25]), np.array([1.0, 0.0, 1.0, 1.0, 0.5])
    expected = []
    for probability, target in zip(p, t, strict=True):
        log_p = max(math.log(probability), -100.0) if probability > 0 else -100.0
        log_not_p = max(math.log(1 - probability), -100.0) if probability < 1 else -100.0
        expected.append(-(target * log_p + (1 - target) * log_not_p))
    np.testing.assert_allclose(L.binary_cross_entropy(p, t, reduction="none"), expected, rtol=1e-12)
    np.testing.assert_allclose(expected[:4], [100.0, 100.0, math.log(2.0), 100.0], rtol=1e-12)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(
    reduction=st.sampled_from(REDUCTIONS),
    data=st.data(),
    weighted=st.booleans(),
    positive_weighted=st.booleans(),
)
def test_binary_cross_entropy_with_logits(dtype, reduction, data, weighted, positive_weighted):
    shape = data.draw(st.sampled_from([(), (4,), (2, 3)]))
    x = data.draw(arrays(shape, dtype, -4, 4))
    t = data.draw(_probabilities(shape, dtype))
    weight = data.draw(arrays(shape[-1:], dtype, 0.5, 2.0)) if weighted else None
    pos_weight = data.draw(arrays(shape[-1:], dtype, 0.5, 3.0)) if positive_weighted else None

    def loss(x, t):
        return L.binary_cross_entropy_with_logits(x, t, weight, reduction, pos_weight)

    check_op(loss, x, t)
    p, t64 = 1 / (1 + np.exp(-x.astype(float))), t.astype(float)
    positive = 1 if pos_weight is None else pos_weight
    expected = -(positive * t64 * np.log(p) + (1 - t64) * np.log(1 - p)) * (1 if weight is None else weight)
    assert_close(loss(x, t), reduce(expected, reduction), dtype)


def test_binary_cross_entropy_with_logits_is_stable():
    x = tape.tensor(np.array([-1000.0, 1000.0]), requires_grad=True)
    loss = L.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0]), reduction="sum")
    loss.backward()
    assert float(loss.data) == 2000.0
    np.testing.assert_allclose(x.grad, [-1.0, 1.0])


# -- cross entropy and nll ---------------------------------------------------------------------------------
def _class_problem(data, dtype):
    shape = data.draw(st.sampled_from([(4,), (3, 4), (2, 3, 2), (0, 3)]))
    logits = data.draw(arrays(shape, dtype, -3, 3))
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0], *shape[2:])
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    target = rng.integers(0, classes, target_shape)
    return logits, target, classes


def _reference_cross_entropy(logits, target, weight, ignore_index, reduction, smoothing):
    """Straight from the definition, one sample at a time, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1:
        logits, target = logits[None], np.asarray(target)[None]
    moved = np.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])
    flat_target = np.asarray(target).reshape(-1)
    classes = logits.shape[1]
    weight = np.ones(classes) if weight is None else weight
    losses, weights = [], []
    for row, k in zip(moved, flat_target, strict=True):
        log_p = row - np.log(np.sum(np.exp(row - row.max()))) - row.max()
        if k == ignore_index:
            losses.append(0.0)
            weights.append(0.0)
            continue
        nll = -weight[k] * log_p[k]
        smooth = -np.sum(weight * log_p) / classes
        losses.append((1 - smoothing) * nll + smoothing * smooth)
        weights.append(weight[k])
    losses = np.array(losses).reshape(np.shape(target))
    if reduction == "mean":
        return np.sum(losses) / np.sum(weights)
    return (
        losses.reshape(np.shape(target)[1:] if logits.ndim and np.shape(target) == (1,) else np.shape(target))
        if reduction == "none"
        else np.sum(losses)
    )


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(
    reduction=st.sampled_from(REDUCTIONS),
    data=st.data(),
    weighted=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.2]),
    ignore=st.booleans(),
)
def test_cross_entropy_with_class_indices(dtype, reduction, data, weighted, smoothing, ignore):
    logits, target, classes = _class_problem(data, dtype)
    weight = np.random.default_rng(1).uniform(0.5, 2.0, classes) if weighted else None
    if ignore and target.size:
        target = target.copy()
        target.flat[0] = -100

    def loss(x):
        return L.cross_entropy(x, target, weight, reduction=reduction, label_smoothing=smoothing)

    result = loss(logits)
    assert result.dtype == dtype
    expected = _reference_cross_entropy(logits, target, weight, -100, reduction, smoothing)
    if logits.ndim == 1 and reduction == "none":
        expected = np.reshape(expected, ())
    if np.all(np.isfinite(expected)):
        assert_close(result, expected, dtype)
        check_op(loss, logits)
    else:  # nothing left to average over, as in torch
        assert np.isnan(result)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(
    reduction=st.sampled_from(REDUCTIONS),
    data=st.data(),
    weighted=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.3]),
)
def test_cross_entropy_with_probabilities(dtype, reduction, data, weighted, smoothing):
    shape = data.draw(st.sampled_from([(4,), (3, 4), (2, 3, 2)]))
    logits = data.draw(arrays(shape, dtype, -3, 3))
    axis = 0 if len(shape) == 1 else 1
    raw = data.draw(arrays(shape, dtype, 0.1, 1.0))
    probabilities = (raw / raw.sum(axis=axis, keepdims=True)).astype(dtype)
    classes = shape[axis]
    weight = np.random.default_rng(2).uniform(0.5, 2.0, classes) if weighted else None

    def loss(x, p):
        return L.cross_entropy(x, p, weight, reduction=reduction, label_smoothing=smoothing)

    check_op(loss, logits, probabilities)  # the probabilities are differentiated too
    logits64 = logits.astype(float)
    log_p = logits64 - np.log(np.sum(np.exp(logits64), axis=axis, keepdims=True))
    smoothed = probabilities.astype(float) * (1 - smoothing) + smoothing / classes
    w = 1 if weight is None else weight.reshape([-1 if a == axis else 1 for a in range(len(shape))])
    per_sample = -np.sum(w * smoothed * log_p, axis=axis)
    expected = per_sample if reduction != "mean" or per_sample.ndim == 0 else np.mean(per_sample)
    assert_close(
        loss(logits, probabilities), reduce(expected, reduction) if reduction == "sum" else expected, dtype
    )


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_and_nll_match_torch(reduction, smoothing):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits, weight = rng.standard_normal((6, 5, 2)), rng.uniform(0.5, 2, 5)
    target = rng.integers(0, 5, (6, 2))
    target[0, 0] = 3
    target[2, 1] = -1
    x = tape.tensor(logits, requires_grad=True)
    loss = L.cross_entropy(x, target, weight, ignore_index=-1, reduction=reduction, label_smoothing=smoothing)
    reference_x = torch.tensor(logits, requires_grad=True)
    reference = torch.nn.functional.cross_entropy(
        reference_x,
        torch.tensor(target),
        torch.tensor(weight),
        ignore_index=-1,
        reduction=reduction,
        label_smoothing=smoothing,
    )
    cotangent = rng.standard_normal(loss.shape)
    loss.backward(cotangent)
    reference.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(loss.data, reference.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, reference_x.grad.numpy(), rtol=1e-10, atol=1e-14)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected_nll = torch.nn.functional.nll_loss(
        torch.tensor(log_p), torch.tensor(target), torch.tensor(weight), ignore_index=-1, reduction=reduction
    )
    np.testing.assert_allclose(
        L.nll_loss(log_p, target, weight, -1, reduction), expected_nll.numpy(), rtol=1e-12
    )


def _reference_nll(log_p, target, weight, ignore_index, reduction):
    """One sample (and position) at a time: ``-weight[k] * log_p[n, k, ...]``, skipping ``ignore_index``."""
    log_p = np.asarray(log_p, dtype=np.float64)
    classes = log_p.shape[1]
    weight = np.ones(classes) if weight is None else weight
    losses = np.zeros(target.shape)
    total, weights = 0.0, 0.0
    for position in np.ndindex(*target.shape):
        k = int(target[position])
        if k == ignore_index:
            continue
        row = log_p[(position[0], slice(None), *position[1:])]
        losses[position] = -weight[k] * row[k]
        total += losses[position]
        weights += weight[k]
    return {"none": losses, "sum": total, "mean": total / weights}[reduction]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-1, 3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_class_losses_with_a_chosen_ignore_index_follow_a_per_sample_loop(reduction, ignore_index, weighted):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 5, 2))
    weight = rng.uniform(0.5, 2, 5) if weighted else None
    target = rng.integers(0, 5, (6, 2))
    target[0, 0], target[1, 1] = 3, 2
    target[2, 1] = -1
    if ignore_index == 3:
        target[target < 0] = 4
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(
        L.nll_loss(log_p, target, weight, ignore_index, reduction),
        _reference_nll(log_p, target, weight, ignore_index, reduction),
        rtol=1e-12,
    )
    for smoothing in (0.0, 0.1):

        def loss(x, smoothing=smoothing):
            return L.cross_entropy(x, target, weight, ignore_index, reduction, smoothing)

        expected = _reference_cross_entropy(logits, target, weight, ignore_index, reduction, smoothing)
        np.testing.assert_allclose(loss(logits), expected, rtol=1e-12)
        check_op(loss, logits)


def test_cross_entropy_gradient_is_softmax_minus_onehot_and_twice_differentiable():
    logits = np.random.default_rng(4).standard_normal((3, 4))
    target = np.array([0, 3, 1])
    x = tape.tensor(logits, requires_grad=True)
    L.cross_entropy(x, target, reduction="sum").backward()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad, softmax - np.eye(4)[target], rtol=1e-12)
    assert tape.gradgradcheck(lambda x: L.cross_entropy(x, target, label_smoothing=0.1), logits)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_gradients(dtype, reduction):
    log_p = np.log(np.random.default_rng(5).dirichlet(np.ones(4), 3)).astype(dtype)
    target = np.array([2, 0, 2])
    check_op(
        lambda x: L.nll_loss(x, target, weight=np.array([1.0, 2.0, 0.5, 1.0]), reduction=reduction), log_p
    )


def test_class_loss_errors():
    with pytest.raises(
        ValueError,
        match=r"cross_entropy: input of shape \(3, 4\) needs a class-index target of "
        r"shape \(3,\), got \(2,\)",
    ):
        L.cross_entropy(np.zeros((3, 4)), np.array([0, 1]))
    with pytest.raises(IndexError, match="cross_entropy: target 4 is out of range for 4 classes"):
        L.cross_entropy(np.zeros((2, 4)), np.array([0, 4]))
    with pytest.raises(ValueError, match=r"cross_entropy: probability targets must have the input's shape"):
        L.cross_entropy(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \(4,\), got \(3,\)"):
        L.cross_entropy(np.zeros((2, 4)), np.array([0, 1]), weight=np.ones(3))
    with pytest.raises(TypeError, match="nll_loss: target must hold integer class indices"):
        L.nll_loss(np.zeros((2, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="cross_entropy: reduction must be one of 'mean', 'sum', 'none'"):
        L.cross_entropy(np.zeros((2, 4)), np.array([0, 1]), reduction="avg")


# -- kl_div and the embedding / ranking losses ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", [*REDUCTIONS, "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(dtype, reduction, log_target):
    rng = np.random.default_rng(6)
    log_q = np.log(rng.dirichlet(np.ones(4), 3)).astype(dtype)
    p = rng.dirichlet(np.ones(4), 3)
    p[0, 1] = 0.0  # a zero-probability target contributes nothing
    target = (np.log(np.where(p > 0, p, 1e-3)) if log_target else p).astype(dtype)

    def loss(x, t):
        return L.kl_div(x, t, reduction, log_target)

    check_op(lambda x: loss(x, target), log_q)
    # A target probability of 0 is a kink (t log t); the target's gradient is checked away from it.
    check_op(loss, log_q, np.where(p > 0, target, target[0, 0]).astype(dtype))
    probabilities = np.exp(target.astype(float)) if log_target else target.astype(float)
    pointwise = np.where(
        probabilities > 0, probabilities * (np.log(np.where(probabilities > 0, probabilities, 1)) - log_q), 0
    )
    expected = np.sum(pointwise) / 3 if reduction == "batchmean" else reduce(pointwise, reduction)
    assert_close(loss(log_q, target), expected, dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_embedding_and_ranking_losses(dtype, reduction):
    rng = np.random.default_rng(7)
    labels = np.array([1, -1, -1, 1, -1])
    distances = np.array([0.3, 0.4, 1.6, 2.0, 0.2], dtype=dtype)
    check_op(lambda x: L.hinge_embedding_loss(x, labels, margin=1.0, reduction=reduction), distances)
    expected = np.where(labels == 1, distances, np.maximum(1.0 - distances, 0))
    assert_close(
        L.hinge_embedding_loss(distances, labels, reduction=reduction), reduce(expected, reduction), dtype
    )

    a, b = rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal((5, 3)).astype(dtype)
    cosine = (
        np.sum(a * b, -1)
        / np.linalg.norm(a.astype(float), axis=-1)
        / np.linalg.norm(b.astype(float), axis=-1)
    )
    margin = float(np.median(cosine)) - 0.05  # keep every cosine away from the hinge
    check_op(lambda a, b: L.cosine_embedding_loss(a, b, labels, margin, reduction), a, b)
    expected = np.where(labels == 1, 1 - cosine, np.maximum(cosine - margin, 0))
    assert_close(L.cosine_embedding_loss(a, b, labels, margin, reduction), reduce(expected, reduction), dtype)

    x1, x2 = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    x2 = np.where(np.abs(x1 - x2 - 0.1) < 0.05, x2 + 0.2, x2).astype(dtype)
    check_op(lambda x1, x2: L.margin_ranking_loss(x1, x2, labels, 0.1, reduction), x1, x2)
    expected = np.maximum(-labels * (x1.astype(float) - x2) + 0.1, 0)
    assert_close(L.margin_ranking_loss(x1, x2, labels, 0.1, reduction), reduce(expected, reduction), dtype)


@pytest.mark.parametrize("margin", [0.1, 0.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_embedding_and_ranking_losses_with_a_margin_follow_per_pair_loops(reduction, margin):
    rng = np.random.default_rng(8)
    a, b, labels = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), np.array([1, -1, 1, -1])
    x = np.abs(a[:, 0])
    cosine, hinge, ranking = [], [], []
    for n, label in enumerate(labels):
        dot = sum(a[n, i] * b[n, i] for i in range(3))
        norm_a, norm_b = (math.sqrt(sum(v[n, i] ** 2 for i in range(3))) for v in (a, b))
        norms = norm_a * norm_b
        cosine.append(1 - dot / norms if label == 1 else max(0.0, dot / norms - margin))
        hinge.append(x[n] if label == 1 else max(0.0, margin - x[n]))
        ranking.append(max(0.0, -label * (a[n, 0] - b[n, 0]) + margin))
    for ours, expected in (
        (L.cosine_embedding_loss(a, b, labels, margin, reduction), cosine),
        (L.hinge_embedding_loss(x, labels, margin, reduction), hinge),
        (L.margin_ranking_loss(a[:, 0], b[:, 0], labels, margin, reduction), ranking),
    ):
        np.testing.assert_allclose(ours, reduce(np.array(expected), reduction), rtol=1e-12)
    log_q, p = np.log(rng.dirichlet(np.ones(3), 4)), rng.dirichlet(np.ones(3), 4)
    total = sum(p[n, k] * (math.log(p[n, k]) - log_q[n, k]) for n in range(4) for k in range(3))
    np.testing.assert_allclose(L.kl_div(log_q, p, "batchmean"), total / 4, rtol=1e-12)


def test_embedding_and_ranking_losses_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(8)
    a, b, labels = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), np.array([1, -1, 1, -1])
    np.testing.assert_allclose(
        L.cosine_embedding_loss(a, b, labels, 0.1),
        tf.cosine_embedding_loss(torch.tensor(a), torch.tensor(b), torch.tensor(labels), 0.1).numpy(),
        rtol=1e-10,
    )
    x = np.abs(a[:, 0])
    np.testing.assert_allclose(
        L.hinge_embedding_loss(x, labels, 0.5),
        tf.hinge_embedding_loss(torch.tensor(x), torch.tensor(labels), 0.5),
    )
    np.testing.assert_allclose(
        L.margin_ranking_loss(a[:, 0], b[:, 0], labels, 0.2),
        tf.margin_ranking_loss(torch.tensor(a[:, 0]), torch.tensor(b[:, 0]), torch.tensor(labels), 0.2),
    )
    log_q, p = np.log(rng.dirichlet(np.ones(3), 4)), rng.dirichlet(np.ones(3), 4)
    np.testing.assert_allclose(
        L.kl_div(log_q, p, "batchmean"),
        tf.kl_div(torch.tensor(log_q), torch.tensor(p), reduction="batchmean"),
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: L.mse_loss(np.zeros((2, 3)), np.zeros(3)),
            r"mse_loss: input of shape \(2, 3\) and target of shape \(3,\) must have the same shape",
        ),
        (
            lambda: L.l1_loss(np.zeros(2), np.zeros(3)),
            r"l1_loss: input of shape \(2,\) and target of shape \(3,\)",
        ),
        (
            lambda: L.binary_cross_entropy_with_logits(
                np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)
            ),
            r"binary_cross_entropy_with_logits: pos_weight of shape \(2,\) does not broadcast",
        ),
        (
            lambda: L.hinge_embedding_loss(np.zeros(3), np.array([1, 0, -1])),
            "hinge_embedding_loss: labels must be",
        ),
        (
            lambda: L.cosine_embedding_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.array([1])),
            r"cosine_embedding_loss: expected labels of shape \(2,\), got \(1,\)",
        ),
        (
            lambda: L.smooth_l1_loss(np.zeros(2), np.zeros(2), beta=-1.0),
            "smooth_l1_loss: beta must be non-negative",
        ),
        (lambda: L.kl_div(np.zeros(2), np.zeros(2), reduction="avg"), "kl_div: reduction must be one of"),
    ],
)
def test_loss_errors_name_the_loss_and_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- arguments read as plain data refuse a tensor that requires grad; the others are differentiated --------
def _requires_grad(values):
    return tape.tensor(np.asarray(values, dtype=float), requires_grad=True)


LOGITS, CLASSES = np.array([[0.2, -0.4, 1.0], [0.5, 0.1, -0.3]]), np.array([0, 2])
LABELS = np.array([1, -1, 1])


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: L.nll_loss(_requires_grad(LOGITS), CLASSES, weight=_requires_grad([1, 2, 3])),
            r"nll_loss: weight is not differentiated .*; pass weight\.detach\(\)",
        ),
        (
            lambda: L.cross_entropy(_requires_grad(LOGITS), CLASSES, weight=_requires_grad([1, 2, 3])),
            r"cross_entropy: weight is not differentiated .*; pass weight\.detach\(\)",
        ),
        (
            lambda: L.cross_entropy(
                LOGITS[None].transpose(1, 2, 0), CLASSES[:, None], _requires_grad([1, 2, 3])
            ),
            r"cross_entropy: weight is not differentiated",
        ),
        (
            lambda: L.cross_entropy(LOGITS, np.full((2, 3), 1 / 3), weight=_requires_grad([1, 2, 3])),
            r"cross_entropy: weight is not differentiated",
        ),
        (
            lambda: L.cross_entropy(LOGITS, CLASSES, label_smoothing=_requires_grad(0.1)),
            r"cross_entropy: label_smoothing is not differentiated .*; pass label_smoothing\.item\(\)",
        ),
        (
            lambda: L.hinge_embedding_loss(np.ones(3), _requires_grad(LABELS)),
            r"hinge_embedding_loss: target is not differentiated .*; pass target\.detach\(\)",
        ),
        (
            lambda: L.cosine_embedding_loss(np.ones((3, 2)), np.ones((3, 2)), _requires_grad(LABELS)),
            r"cosine_embedding_loss: target is not differentiated",
        ),
        (
            lambda: L.margin_ranking_loss(np.ones(3), np.zeros(3), _requires_grad(LABELS)),
            r"margin_ranking_loss: target is not differentiated",
        ),
    ],
)
def test_arguments_read_as_plain_data_refuse_a_tensor_that_requires_grad(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_arguments_read_as_plain_data_take_tensors_without_grad():
    weight = tape.tensor([1.0, 2.0, 3.0])
    for loss in (L.nll_loss, L.cross_entropy):
        np.testing.assert_allclose(
            loss(LOGITS, CLASSES, weight=weight), loss(LOGITS, CLASSES, weight=weight.data)
        )
    np.testing.assert_allclose(
        L.cross_entropy(LOGITS, CLASSES, label_smoothing=tape.tensor(0.1)),
        L.cross_entropy(LOGITS, CLASSES, label_smoothing=0.1),
    )
    np.testing.assert_allclose(
        L.margin_ranking_loss(np.ones(3), np.zeros(3), tape.tensor(LABELS)),
        L.margin_ranking_loss(np.ones(3), np.zeros(3), LABELS),
    )


def test_weights_margins_and_scales_given_as_tensors_are_differentiated():
    rng = np.random.default_rng(9)
    p, t = rng.uniform(0.1, 0.9, (2, 3)), rng.uniform(0.1, 0.9, (2, 3))
    weight, pos_weight, x = rng.uniform(0.5, 2.0, 3), rng.uniform(0.5, 3.0, 3), rng.uniform(-2, 2, (2, 3))
    check_op(lambda p, t, w: L.binary_cross_entropy(p, t, w), p, t, weight)
    check_op(
        lambda x, t, w, pw: L.binary_cross_entropy_with_logits(x, t, w, "sum", pw), x, t, weight, pos_weight
    )
    # input - target stays away from the kinks at +-beta and +-delta.
    d = np.array([0.2, -0.5, 1.7, -2.4, 0.9])
    target = rng.uniform(-1, 1, 5)
    for beta in (np.array(1.2), np.array(0.6)):
        # Both branch on the value of beta (0 is L1), so tape.compile refuses them with beta a tensor.
        check_op(
            lambda x, t, b: L.smooth_l1_loss(x, t, "sum", beta=b), target + d, target, beta, compiles=False
        )
        check_op(lambda x, t, b: L.huber_loss(x, t, "sum", delta=b), target + d, target, beta, compiles=False)
    distances, labels = np.array([0.3, 0.4, 1.6, 2.0, 0.2]), np.array([1, -1, -1, 1, -1])
    check_op(lambda x, m: L.hinge_embedding_loss(x, labels, margin=m), distances, np.array(1.0))
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    check_op(lambda a, b, m: L.cosine_embedding_loss(a, b, labels, m), a, b, np.array(-0.9))
    x1, x2 = rng.standard_normal(5), rng.standard_normal(5)
    check_op(lambda x1, x2, m: L.margin_ranking_loss(x1, x2, labels, m), x1, x2, np.array(0.1))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_smooth_l1_and_huber_gradients_at_infinite_inputs_are_the_limits(dtype):
    torch = pytest.importorskip("torch")
    values, target = np.array([np.inf, -np.inf, 3.0, 0.25], dtype), np.full(4, 0.5, dtype)
    for loss, options, limit in (
        (L.smooth_l1_loss, {"beta": 0.5}, [1.0, -1.0, 1.0, -0.5]),
        (L.huber_loss, {"delta": 2.0}, [2.0, -2.0, 2.0, -0.25]),
    ):
        for reduction, scale in (("none", 1.0), ("sum", 1.0), ("mean", 0.25)):
            x = tape.tensor(values, requires_grad=True)
            np.sum(loss(x, target, reduction, **options)).backward()
            np.testing.assert_array_equal(x.grad, np.array(limit, dtype) * dtype(scale))
            assert x.grad.dtype == dtype
            peer = torch.tensor(values, requires_grad=True)
            getattr(torch.nn.functional, loss.__name__)(
                peer, torch.tensor(target), reduction=reduction, **options
            ).sum().backward()
            np.testing.assert_allclose(x.grad, peer.grad.numpy(), rtol=1e-6)
    assert tape.gradgradcheck(
        lambda x: L.smooth_l1_loss(x, target[:2].astype(float), beta=0.5), np.array([0.3, -1.7])
    )
    assert tape.gradgradcheck(
        lambda x: L.huber_loss(x, target[:2].astype(float), delta=2.0), np.array([0.3, -3.1])
    )

"""tape/nn/normalization.py and ops/normalization.py: ``BatchNorm2d``, ``GroupNorm`` and ``InstanceNorm2d``
against torch's layers loaded with the same parameters (outputs, running statistics, eval outputs and every
gradient, float64 and float32), finite-difference checks of the functional forms, and the errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
import tape.nn as nn
from tape.nn.normalization import BatchNorm2d, GroupNorm, InstanceNorm2d, group_norm, instance_norm
from tape.ops.nn import batch_norm
from tape.ops.normalization import group_norm_op
from tests.ops.test_nn import channel_statistics

DTYPES = [np.float64, np.float32]
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _load_parameters(ours, theirs, torch, rng):
    """Draw a weight and a bias and give the same values to both layers."""
    if ours.weight is None:
        return
    size = ours.weight.shape[0]
    with tape.no_grad():
        ours.weight[...] = rng.uniform(0.5, 2.0, size)
        ours.bias[...] = rng.standard_normal(size)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))


def _step(ours, theirs, torch, x, rng):
    """One forward and backward through both layers with the same input and cotangent; compare the output
    and the gradients of the input, the weight and the bias."""
    tolerance = TOLERANCE[x.dtype.type]
    cotangent = rng.standard_normal(x.shape).astype(x.dtype)
    ours.zero_grad(), theirs.zero_grad()
    x_ours = tape.Tensor(x, requires_grad=True)
    x_theirs = torch.tensor(x, requires_grad=True)
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
    np.sum(y_ours * cotangent).backward()
    (y_theirs * torch.tensor(cotangent)).sum().backward()
    assert y_ours.dtype == x.dtype and x_ours.grad.dtype == x.dtype
    pairs = [("output", y_ours.data, y_theirs), ("input grad", x_ours.grad, x_theirs.grad)]
    if ours.weight is not None:
        pairs += [("weight grad", ours.weight.grad, theirs.weight.grad)]
        pairs += [("bias grad", ours.bias.grad, theirs.bias.grad)]
    for what, mine, reference in pairs:
        np.testing.assert_allclose(
            mine, reference.detach().numpy(), rtol=tolerance, atol=tolerance, err_msg=what
        )


def _compare_running_statistics(ours, theirs):
    tolerance = TOLERANCE[ours.running_mean.dtype.type]
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=tolerance, atol=tolerance)


def _batches(rng, shape, dtype, count=3):
    return [(rng.standard_normal(shape) * (k + 1) + k).astype(dtype) for k in range(count)]


# -- BatchNorm2d ---------------------------------------------------------------------------------------------
BATCH_SHAPES = [(4, 3, 5, 5), (2, 3, 1, 1), (1, 3, 2, 3), (1, 1, 2, 1), (6, 2, 3, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BATCH_SHAPES)
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batch_norm2d_matches_torch(torch, dtype, shape, momentum):
    rng = np.random.default_rng(0)
    channels = shape[1]
    ours = BatchNorm2d(channels, momentum=momentum, dtype=dtype)
    theirs = torch.nn.BatchNorm2d(channels, momentum=momentum, dtype=getattr(torch, np.dtype(dtype).name))
    _load_parameters(ours, theirs, torch, rng)
    for x in _batches(rng, shape, dtype):
        _step(ours, theirs, torch, x, rng)
        _compare_running_statistics(ours, theirs)
    assert ours.running_mean.dtype == dtype
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 3
    ours.eval(), theirs.eval()
    _step(ours, theirs, torch, rng.standard_normal(shape).astype(dtype), rng)
    _compare_running_statistics(ours, theirs)
    assert int(ours.num_batches_tracked) == 3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm2d_without_running_statistics_uses_the_batch_in_eval(torch, dtype, affine):
    rng = np.random.default_rng(1)
    ours = BatchNorm2d(3, affine=affine, track_running_stats=False, dtype=dtype)
    theirs = torch.nn.BatchNorm2d(
        3, affine=affine, track_running_stats=False, dtype=getattr(torch, np.dtype(dtype).name)
    )
    _load_parameters(ours, theirs, torch, rng)
    for mode in (True, False):
        ours.train(mode), theirs.train(mode)
        _step(ours, theirs, torch, rng.standard_normal((3, 3, 4, 2)).astype(dtype), rng)
    assert ours.running_mean is None and "num_batches_tracked" not in ours.state_dict()
    assert [name for name, _ in ours.named_parameters()] == (["weight", "bias"] if affine else [])


def test_batch_norm2d_keeps_the_plain_average_of_every_batch_without_momentum():
    rng = np.random.default_rng(2)
    norm = BatchNorm2d(3, momentum=None)
    batches = _batches(rng, (4, 3, 2, 2), np.float64, count=4)
    for x in batches:
        norm(x)
    statistics = [channel_statistics(x) for x in batches]
    np.testing.assert_allclose(norm.running_mean, np.mean([s[0] for s in statistics], axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.running_var, np.mean([s[2] for s in statistics], axis=0), rtol=1e-12)


def test_batch_norm2d_refuses_one_value_per_channel_in_training_as_torch(torch):
    x = np.random.default_rng(3).standard_normal((1, 3, 1, 1))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        torch.nn.BatchNorm2d(3, dtype=torch.float64)(torch.tensor(x))
    ours = BatchNorm2d(3)
    message = (
        r"BatchNorm2d\(3, .*\): expected more than 1 value per channel when training, "
        r"got shape \(1, 3, 1, 1\)"
    )
    with pytest.raises(ValueError, match=message):
        ours(x)
    assert int(ours.num_batches_tracked) == 0  # the refused batch is not counted
    with pytest.raises(ValueError, match=r"^batch_norm: expected more than 1 value per channel"):
        batch_norm(x, None, None, training=True)
    # in evaluation the running statistics are used, and one value is fine
    theirs = torch.nn.BatchNorm2d(3, dtype=torch.float64).eval()
    _step(ours.eval(), theirs, torch, x, np.random.default_rng(4))


def test_batch_norm2d_refuses_other_ranks_and_channel_counts():
    norm = BatchNorm2d(3)
    for shape in [(4, 3), (4, 3, 5), (2, 3, 4, 4, 4), (2, 4, 5, 5)]:
        message = (
            rf"^BatchNorm2d\(3, .*\): expected input of shape \(N, 3, H, W\), "
            rf"got shape {re.escape(str(shape))}$"
        )
        with pytest.raises(ValueError, match=message):
            norm(np.zeros(shape))
    with pytest.raises(
        ValueError, match=r"BatchNorm1d\(3, .*\): expected input of shape \(N, 3\) or \(N, 3, L\)"
    ):
        nn.BatchNorm1d(3)(np.zeros((2, 3, 4, 4)))


# -- GroupNorm -----------------------------------------------------------------------------------------------
GROUP_CASES = [
    ((4, 6, 5, 5), 3),
    ((2, 6, 1, 1), 2),
    ((2, 4, 1, 1), 4),
    ((1, 4, 3, 3), 4),
    ((1, 4, 3, 3), 1),
    ((3, 4), 2),
    ((2, 4, 7), 2),
    ((2, 6, 2, 3, 2), 3),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "num_groups"), GROUP_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(torch, dtype, shape, num_groups, affine):
    rng = np.random.default_rng(5)
    ours = GroupNorm(num_groups, shape[1], affine=affine, dtype=dtype)
    theirs = torch.nn.GroupNorm(
        num_groups, shape[1], affine=affine, dtype=getattr(torch, np.dtype(dtype).name)
    )
    _load_parameters(ours, theirs, torch, rng)
    for x in _batches(rng, shape, dtype, count=2):
        _step(ours, theirs, torch, x, rng)
    ours.eval(), theirs.eval()  # no running statistics: evaluation computes the same thing
    _step(ours, theirs, torch, rng.standard_normal(shape).astype(dtype), rng)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@given(
    batch=st.integers(1, 3),
    groups=st.integers(1, 3),
    per_group=st.integers(1, 3),
    spatial=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_group_norm_functional_matches_torch_over_shapes(batch, groups, per_group, spatial, seed):
    torch = pytest.importorskip("torch")
    shape = (batch, groups * per_group, *spatial)
    if batch * per_group * int(np.prod(spatial)) == 1:
        return  # refused by both (see test_group_norm_refuses_a_single_value)
    rng = np.random.default_rng(seed)
    x, weight, bias = rng.standard_normal(shape), rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    cotangent = rng.standard_normal(shape)
    ours = [tape.Tensor(a, requires_grad=True) for a in (x, weight, bias)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    np.sum(group_norm(ours[0], groups, ours[1], ours[2]) * cotangent).backward()
    expected = torch.nn.functional.group_norm(theirs[0], groups, theirs[1], theirs[2])
    (expected * torch.tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(
        group_norm(x, groups, weight, bias), expected.detach().numpy(), rtol=1e-10, atol=1e-10
    )
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_group_norm_refuses_a_single_value_as_torch(torch):
    x = np.ones((1, 2, 1, 1))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        torch.nn.functional.group_norm(torch.tensor(x), 2)
    with pytest.raises(
        ValueError, match=r"^group_norm: expected more than 1 value to normalize, got shape \(1, 2, 1, 1\)"
    ):
        group_norm(x, 2)


def test_group_norm_errors_name_the_function_or_layer():
    with pytest.raises(
        ValueError, match=r"^GroupNorm: num_channels \(6\) must be divisible by num_groups \(4\)$"
    ):
        GroupNorm(4, 6)
    with pytest.raises(
        ValueError, match=r"GroupNorm: num_channels \(6\) must be divisible by num_groups \(0\)"
    ):
        GroupNorm(0, 6)
    message = (
        r"^group_norm: num_groups must be a positive divisor of the input's 6 channels "
        r"\(axis 1 of shape \(2, 6, 4, 4\)\), got num_groups=4$"
    )
    with pytest.raises(ValueError, match=message):
        group_norm(np.zeros((2, 6, 4, 4)), 4)
    with pytest.raises(
        ValueError, match=r"^group_norm: expected input of shape \(N, C, \*\), got shape \(6,\)$"
    ):
        group_norm(np.zeros(6), 2)
    with pytest.raises(ValueError, match=r"^group_norm: weight must have shape \(6,\), got \(3,\)$"):
        group_norm(np.zeros((2, 6, 4, 4)), 3, weight=np.ones(3))
    with pytest.raises(
        ValueError,
        match=(
            r"^GroupNorm\(3, 6, eps=1e-05, affine=True\): expected input of shape \(N, 6, \*\), "
            r"got shape \(2, 5, 4\)$"
        ),
    ):
        GroupNorm(3, 6)(np.zeros((2, 5, 4)))
    with pytest.raises(
        ValueError, match=r"^GroupNorm\(3, 6, .*\): expected input of shape \(N, 6, \*\), got shape \(6,\)$"
    ):
        GroupNorm(3, 6)(np.zeros(6))
    with pytest.raises(TypeError, match="group_norm: eps is not differentiated"):
        group_norm(np.zeros((2, 6)), 3, eps=tape.Tensor(1e-5, requires_grad=True))


# -- InstanceNorm2d ------------------------------------------------------------------------------------------
INSTANCE_SHAPES = [(4, 3, 5, 5), (1, 3, 2, 2), (2, 3, 1, 2), (3, 4, 4), (5, 3, 3, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", INSTANCE_SHAPES)
@pytest.mark.parametrize(
    ("affine", "track_running_stats"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_instance_norm2d_matches_torch(torch, dtype, shape, affine, track_running_stats):
    rng = np.random.default_rng(6)
    channels = shape[-3]
    options = {"momentum": 0.3, "affine": affine, "track_running_stats": track_running_stats}
    ours = InstanceNorm2d(channels, dtype=dtype, **options)
    theirs = torch.nn.InstanceNorm2d(channels, dtype=getattr(torch, np.dtype(dtype).name), **options)
    _load_parameters(ours, theirs, torch, rng)
    for x in _batches(rng, shape, dtype):
        _step(ours, theirs, torch, x, rng)
        if track_running_stats:
            _compare_running_statistics(ours, theirs)
    ours.eval(), theirs.eval()
    _step(ours, theirs, torch, rng.standard_normal(shape).astype(dtype), rng)
    if track_running_stats:
        _compare_running_statistics(ours, theirs)
        assert int(ours.num_batches_tracked) == 3  # torch keeps it at 0 for instance norms
    else:
        assert ours.running_mean is None and "running_mean" not in ours.state_dict()


def test_instance_norm2d_defaults_follow_torch(torch):
    ours, theirs = InstanceNorm2d(3), torch.nn.InstanceNorm2d(3)
    for name in ("eps", "momentum", "affine", "track_running_stats"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert list(ours.parameters()) == [] and list(ours.state_dict()) == []
    ours, theirs = BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    for name in ("eps", "momentum", "affine", "track_running_stats"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours, theirs = GroupNorm(1, 3), torch.nn.GroupNorm(1, 3)
    assert (ours.eps, ours.affine) == (theirs.eps, theirs.affine)


def test_instance_norm2d_without_momentum_keeps_the_plain_average_of_every_batch():
    rng = np.random.default_rng(7)
    norm = InstanceNorm2d(3, momentum=None, track_running_stats=True)
    batches = _batches(rng, (2, 3, 4, 3), np.float64, count=4)
    for x in batches:
        norm(x)
    means = [x.mean(axis=(2, 3)).mean(axis=0) for x in batches]
    variances = [x.var(axis=(2, 3), ddof=1).mean(axis=0) for x in batches]
    np.testing.assert_allclose(norm.running_mean, np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.running_var, np.mean(variances, axis=0), rtol=1e-12)
    assert int(norm.num_batches_tracked) == 4


def test_instance_norm2d_refuses_one_spatial_element_in_training_as_torch(torch):
    x = np.random.default_rng(8).standard_normal((4, 3, 1, 1))
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        torch.nn.InstanceNorm2d(3)(torch.tensor(x))
    ours = InstanceNorm2d(3, track_running_stats=True)
    message = (
        r"InstanceNorm2d\(3, .*\): expected more than 1 spatial element when training, "
        r"got shape \(4, 3, 1, 1\)"
    )
    with pytest.raises(ValueError, match=message):
        ours(x)
    assert int(ours.num_batches_tracked) == 0
    with pytest.raises(
        ValueError, match=r"^instance_norm: expected more than 1 spatial element when training"
    ):
        instance_norm(x)
    theirs = torch.nn.InstanceNorm2d(3, track_running_stats=True, dtype=torch.float64).eval()
    _step(ours.eval(), theirs, torch, x, np.random.default_rng(9))  # evaluation uses the running statistics


def test_instance_norm2d_errors_name_the_layer():
    norm = InstanceNorm2d(3, affine=True)
    for shape in [(2, 3), (2, 3, 4, 4, 4)]:
        message = (
            rf"^InstanceNorm2d\(3, .*\): expected input of shape \(N, 3, H, W\) or \(3, H, W\), "
            rf"got shape {re.escape(str(shape))}$"
        )
        with pytest.raises(ValueError, match=message):
            norm(np.zeros(shape))
    with pytest.raises(
        ValueError,
        match=r"^InstanceNorm2d\(3, .*\): expected 3 channels \(axis 1\), got shape \(2, 4, 5, 5\)$",
    ):
        norm(np.zeros((2, 4, 5, 5)))
    with pytest.warns(UserWarning, match=r"has 4 channels, not num_features=3; it is unused"):
        y = InstanceNorm2d(3)(np.random.default_rng(0).standard_normal((2, 4, 5, 5)))
    assert y.shape == (2, 4, 5, 5)
    with pytest.raises(ValueError, match=r"^instance_norm: expected input of shape \(N, C, \*spatial\)"):
        instance_norm(np.zeros((2, 3)))
    with pytest.raises(
        ValueError, match=r"^instance_norm: use_input_stats=False needs running_mean and running_var$"
    ):
        instance_norm(np.zeros((2, 3, 4, 4)), use_input_stats=False)
    with pytest.raises(ValueError, match=r"^instance_norm: running_var must have shape \(3,\), got \(4,\)$"):
        instance_norm(np.zeros((2, 3, 4, 4)), np.zeros(3), np.ones(4))
    with pytest.raises(TypeError, match="instance_norm: running_mean is not differentiated"):
        instance_norm(np.zeros((2, 3, 4, 4)), tape.Tensor(np.zeros(3), requires_grad=True), np.ones(3))


# -- finite differences --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "num_groups"), [((2, 6, 3, 2), 3), ((3, 4), 2), ((2, 4, 1, 1), 2), ((1, 2, 3), 1)]
)
def test_group_norm_gradcheck(shape, num_groups):
    rng = np.random.default_rng(10)
    x, weight, bias = rng.standard_normal(shape), rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    assert tape.gradcheck(lambda x, w, b: group_norm(x, num_groups, w, b), x, weight, bias)
    assert tape.gradcheck(lambda x: group_norm(x, num_groups, eps=1e-3), x)


@pytest.mark.parametrize(("shape", "num_groups"), [((2, 4, 2, 2), 2), ((3, 4), 1), ((2, 3, 2), 3)])
def test_group_norm_gradgradcheck(shape, num_groups):
    rng = np.random.default_rng(11)
    x, weight, bias = rng.standard_normal(shape), rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    assert tape.gradgradcheck(
        lambda x, w, b: group_norm_op(x, w, b, num_groups=num_groups, eps=1e-5), x, weight, bias
    )
    assert tape.gradgradcheck(lambda x: group_norm(x, num_groups), x)


def test_instance_norm_gradcheck():
    rng = np.random.default_rng(12)
    x, weight, bias = rng.standard_normal((2, 3, 3, 2)), rng.standard_normal(3), rng.standard_normal(3)
    assert tape.gradcheck(lambda x, w, b: instance_norm(x, weight=w, bias=b), x, weight, bias)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    assert tape.gradcheck(
        lambda x, w, b: instance_norm(x, mean, var, w, b, use_input_stats=False), x, weight, bias
    )
    assert tape.gradgradcheck(lambda x, w: instance_norm(x, weight=w), x, weight)


def test_batch_norm_functional_gradcheck_on_images():
    rng = np.random.default_rng(13)
    x, weight, bias = rng.standard_normal((3, 2, 2, 3)), rng.standard_normal(2), rng.standard_normal(2)
    assert tape.gradcheck(lambda x, w, b: batch_norm(x, None, None, w, b, training=True), x, weight, bias)
    mean, var = rng.standard_normal(2), rng.uniform(0.5, 2.0, 2)
    assert tape.gradcheck(lambda x, w, b: batch_norm(x, mean, var, w, b), x, weight, bias)


def test_float32_stays_float32():
    x = tape.Tensor(
        np.random.default_rng(14).standard_normal((2, 4, 3, 3)).astype(np.float32), requires_grad=True
    )
    for layer in (
        BatchNorm2d(4, dtype=np.float32),
        GroupNorm(2, 4, dtype=np.float32),
        InstanceNorm2d(4, affine=True, dtype=np.float32),
    ):
        x.grad = None
        y = layer(x)
        np.sum(y * y).backward()
        assert y.dtype == np.float32 and x.grad.dtype == np.float32, layer
        assert layer.weight.grad.dtype == np.float32, layer

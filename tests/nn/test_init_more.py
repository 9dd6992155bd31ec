"""tape/nn/init.py: orthogonal_ (orthonormal rows or columns times gain, convolution shapes flattened as
torch's) and trunc_normal_ (bounds, moments of the truncated normal, far tails)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tape
from tape.nn import init


@pytest.mark.parametrize("shape", [(6, 3), (3, 6), (5, 5), (8, 2, 3, 3), (2, 3, 4), (4, 1, 2)])
@pytest.mark.parametrize("gain", [1.0, 0.5, math.sqrt(2)])
def test_orthogonal_gives_orthonormal_rows_or_columns_times_gain(shape, gain):
    tensor = tape.zeros(shape, requires_grad=True)
    version = tensor._vc
    assert init.orthogonal_(tensor, gain=gain, rng=np.random.default_rng(0)) is tensor
    matrix = tensor.data.reshape(shape[0], -1)  # torch flattens every axis after the first
    rows, columns = matrix.shape
    product = matrix.T @ matrix if rows >= columns else matrix @ matrix.T
    np.testing.assert_allclose(product, gain**2 * np.eye(min(rows, columns)), atol=1e-12)
    assert tensor._vc is version and tensor.requires_grad


def test_orthogonal_matches_torch_flattening_and_is_reproducible():
    torch = pytest.importorskip("torch")
    ours = init.orthogonal_(tape.zeros((4, 2, 3)), rng=np.random.default_rng(1)).data
    again = init.orthogonal_(tape.zeros((4, 2, 3)), rng=np.random.default_rng(1)).data
    np.testing.assert_array_equal(ours, again)
    theirs = torch.nn.init.orthogonal_(torch.empty(4, 2, 3, dtype=torch.float64)).numpy()
    for weight in (ours, theirs):  # both have orthonormal rows once flattened to (4, 6)
        flat = weight.reshape(4, 6)
        np.testing.assert_allclose(flat @ flat.T, np.eye(4), atol=1e-12)


def test_orthogonal_is_haar_distributed_in_sign():
    # The sign fix makes the diagonal of a square orthogonal draw symmetric about zero, not biased.
    rng = np.random.default_rng(2)
    diagonals = np.array([np.diag(init.orthogonal_(tape.zeros((3, 3)), rng=rng).data) for _ in range(2000)])
    assert abs(diagonals.mean()) < 0.05


def test_orthogonal_keeps_the_dtype_and_refuses_vectors():
    tensor = init.orthogonal_(tape.zeros((3, 4), dtype=np.float32), rng=np.random.default_rng(0))
    assert tensor.dtype == np.float32
    np.testing.assert_allclose(tensor.data @ tensor.data.T, np.eye(3), atol=1e-6)
    assert init.orthogonal_(tape.zeros((0, 3))).shape == (0, 3)
    with pytest.raises(ValueError, match=r"orthogonal_: needs a tensor of at least 2 axes, got shape \(5,\)"):
        init.orthogonal_(tape.zeros(5))


def _truncated_moments(mean, std, a, b):
    """Mean and standard deviation of N(mean, std^2) truncated to [a, b] (closed form)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))
    mass = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / mass
    variance = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - shift**2
    return mean + std * shift, std * math.sqrt(variance)


@pytest.mark.parametrize(
    "mean, std, a, b",
    [
        (0.0, 1.0, -2.0, 2.0),  # torch's defaults
        (0.0, 0.02, -0.04, 0.04),  # the usual transformer init
        (1.0, 2.0, 0.0, 5.0),  # asymmetric
        (0.0, 1.0, 1.5, 3.0),  # a window above the mean
        (0.0, 1.0, -4.0, -3.5),  # a narrow window in the lower tail
        (5.0, 1.0, -2.0, 2.0),  # mean three std above the window
    ],
)
def test_trunc_normal_stays_in_bounds_with_the_truncated_moments(mean, std, a, b):
    tensor = init.trunc_normal_(tape.zeros(200_000), mean, std, a, b, rng=np.random.default_rng(0))
    values = tensor.data
    assert values.min() >= a and values.max() <= b
    expected_mean, expected_std = _truncated_moments(mean, std, a, b)
    tolerance = 5 * expected_std / math.sqrt(values.size)
    assert abs(values.mean() - expected_mean) < tolerance
    assert abs(values.std() - expected_std) < 0.02 * expected_std


def test_trunc_normal_far_in_the_tail_and_its_distribution():
    # 12 std from the mean: the draw follows the exponential-like tail, not a clamp onto a bound.
    values = init.trunc_normal_(tape.zeros(100_000), a=12.0, b=13.0, rng=np.random.default_rng(1)).data
    assert values.min() >= 12.0 and values.max() <= 13.0
    assert np.mean(values < 12.1) > 0.6 and np.mean(values == 12.0) < 1e-3
    scipy_stats = pytest.importorskip("scipy.stats")
    draw = init.trunc_normal_(tape.zeros(20_000), 0.5, 1.5, -1.0, 2.5, rng=np.random.default_rng(2)).data
    distribution = scipy_stats.truncnorm((-1.0 - 0.5) / 1.5, (2.5 - 0.5) / 1.5, loc=0.5, scale=1.5)
    assert scipy_stats.kstest(draw, distribution.cdf).pvalue > 0.01


def test_normal_quantile_agrees_with_scipy():
    special = pytest.importorskip("scipy.special")
    p = np.concatenate(
        [np.logspace(-300, -1, 500), np.linspace(0.001, 0.999, 2001), 1 - np.logspace(-15, -2, 100)]
    )
    exact = special.ndtri(p)
    np.testing.assert_allclose(init._normal_quantile(p), exact, rtol=1.2e-9, atol=1e-12)


def test_trunc_normal_keeps_the_dtype_is_reproducible_and_says_what_is_wrong():
    first = init.trunc_normal_(tape.zeros((4, 5), dtype=np.float32), rng=np.random.default_rng(3))
    second = init.trunc_normal_(tape.zeros((4, 5), dtype=np.float32), rng=np.random.default_rng(3))
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first.data, second.data)
    with pytest.raises(ValueError, match=r"trunc_normal_: expected a < b, got a=2\.0, b=-2\.0"):
        init.trunc_normal_(tape.zeros(3), a=2.0, b=-2.0)
    with pytest.raises(ValueError, match=r"trunc_normal_: std should be positive, got 0\.0"):
        init.trunc_normal_(tape.zeros(3), std=0.0)

"""Whole programs written as a scientist writes numpy, run on tensors: the promise "write ordinary numpy
code on tensors and call .backward()" checked end to end, not op by op.

Each program is a plain function of arrays returning a scalar. The same function runs on plain numpy arrays
(numpy's answer) and on tensors (tape's answer), in float64 and float32. Its gradients are checked in float64
against central finite differences (``tape.gradcheck``) and, when PyTorch is installed, against a small
twin of the program written with torch ops; the float32 gradients must agree with the float64 ones.

Integer arrays among a program's inputs (segment ids, say) are passed through untouched; every
floating-point input is differentiated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tests.strategies import FLOAT_DTYPES, arrays

try:
    import torch
except ImportError:  # the torch twins only run when PyTorch is installed
    torch = None

LOG_2PI = math.log(2.0 * math.pi)  # a Python float, so it does not promote float32 to float64


# -- Lennard-Jones cluster with bonds: broadcasting over three axes, fancy indexing, np.where cutoff ------
LJ_CUTOFF = 2.5
BONDS = np.array([[0, 1], [1, 2], [2, 3], [3, 7], [7, 11]])  # atoms joined by harmonic springs


def cluster_energy(positions: Any, sigma: Any) -> Any:
    """Truncated and shifted Lennard-Jones energy of an atom cluster, plus harmonic bonds."""
    separation = positions[:, None, :] - positions[None, :, :]  # (atoms, atoms, 3)
    first, second = np.triu_indices(len(positions), k=1)
    distance = np.sqrt(np.sum(separation[first, second] ** 2, axis=-1))
    inverse6 = (sigma / distance) ** 6
    at_cutoff = (sigma / LJ_CUTOFF) ** 6  # shift so a pair's energy is continuous at the cutoff
    pair = 4.0 * (inverse6**2 - inverse6) - 4.0 * (at_cutoff**2 - at_cutoff)
    bond_vectors = positions[BONDS[:, 0]] - positions[BONDS[:, 1]]
    stretch = np.linalg.norm(bond_vectors, axis=1) - 1.1
    return np.sum(np.where(distance < LJ_CUTOFF, pair, 0.0)) + 5.0 * np.sum(stretch**2)


def cluster_energy_torch(positions: Any, sigma: Any) -> Any:
    separation = positions[:, None, :] - positions[None, :, :]
    first, second = torch.triu_indices(len(positions), len(positions), offset=1)
    distance = separation[first, second].pow(2).sum(-1).sqrt()
    inverse6 = (sigma / distance) ** 6
    at_cutoff = (sigma / LJ_CUTOFF) ** 6
    pair = 4.0 * (inverse6**2 - inverse6) - 4.0 * (at_cutoff**2 - at_cutoff)
    bonds = torch.as_tensor(BONDS)
    stretch = torch.linalg.vector_norm(positions[bonds[:, 0]] - positions[bonds[:, 1]], dim=1) - 1.1
    return torch.where(distance < LJ_CUTOFF, pair, 0.0).sum() + 5.0 * stretch.pow(2).sum()


def cluster_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    grid = np.stack(np.meshgrid(np.arange(3), np.arange(2), np.arange(2), indexing="ij"), -1).reshape(-1, 3)
    positions = 1.2 * grid + rng.uniform(-0.03, 0.03, grid.shape)
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)[np.triu_indices(12, 1)]
    assert np.abs(distances - LJ_CUTOFF).min() > 0.02  # no pair sits on the cutoff's jump
    return positions, np.array(1.05)


# -- Gaussian log-likelihood with a full covariance: cholesky, solve, slogdet, einsum with '...' ----------
def gaussian_log_likelihood(mean: Any, factor: Any, samples: Any) -> Any:
    """Log-density of ``samples`` (rows) under N(mean, factor factorᵀ + I/2)."""
    count, dim = samples.shape
    covariance = factor @ factor.T + 0.5 * np.eye(dim, dtype=factor.dtype)
    whitened = np.linalg.solve(np.linalg.cholesky(covariance), (samples - mean).T)  # (dim, count)
    mahalanobis = np.einsum("i...,i...->...", whitened, whitened)
    _, log_det = np.linalg.slogdet(covariance)
    return -0.5 * np.sum(mahalanobis) - 0.5 * count * log_det - 0.5 * count * dim * LOG_2PI


def gaussian_log_likelihood_torch(mean: Any, factor: Any, samples: Any) -> Any:
    count, dim = samples.shape
    covariance = factor @ factor.T + 0.5 * torch.eye(dim, dtype=factor.dtype)
    whitened = torch.linalg.solve(torch.linalg.cholesky(covariance), (samples - mean).T)
    _, log_det = torch.linalg.slogdet(covariance)
    return -0.5 * whitened.pow(2).sum() - 0.5 * count * log_det - 0.5 * count * dim * LOG_2PI


def gaussian_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.standard_normal(3), rng.standard_normal((3, 3)) * 0.8, rng.standard_normal((6, 3))


# -- Bayesian linear regression evidence: inv, slogdet, norm, 0-d hyperparameters --------------------------
def regression_evidence(log_alpha: Any, log_beta: Any, features: Any, targets: Any) -> Any:
    """Log marginal likelihood of a linear model with prior N(0, I/alpha) and noise precision beta."""
    alpha, beta = np.exp(log_alpha), np.exp(log_beta)
    count, width = features.shape
    precision = alpha * np.eye(width, dtype=features.dtype) + beta * features.T @ features
    posterior_mean = beta * np.linalg.inv(precision) @ features.T @ targets
    misfit = 0.5 * beta * np.linalg.norm(targets - features @ posterior_mean) ** 2
    misfit = misfit + 0.5 * alpha * posterior_mean @ posterior_mean
    _, log_det = np.linalg.slogdet(precision)
    return 0.5 * width * log_alpha + 0.5 * count * log_beta - misfit - 0.5 * log_det - 0.5 * count * LOG_2PI


def regression_evidence_torch(log_alpha: Any, log_beta: Any, features: Any, targets: Any) -> Any:
    alpha, beta = log_alpha.exp(), log_beta.exp()
    count, width = features.shape
    precision = alpha * torch.eye(width, dtype=features.dtype) + beta * features.T @ features
    posterior_mean = beta * torch.linalg.solve(precision, features.T @ targets)
    misfit = 0.5 * beta * (targets - features @ posterior_mean).pow(2).sum()
    misfit = misfit + 0.5 * alpha * posterior_mean.dot(posterior_mean)
    log_det = torch.logdet(precision)
    return 0.5 * width * log_alpha + 0.5 * count * log_beta - misfit - 0.5 * log_det - 0.5 * count * LOG_2PI


def regression_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    features = rng.standard_normal((8, 3))
    targets = features @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.standard_normal(8)
    return np.array(-0.3), np.array(1.2), features, targets


# -- Heat equation: np.pad boundaries, in-place row writes, a basic-index +=, cumsum ------------------------
HEAT_STEPS, HEAT_DT = 20, 0.2


def heat_equation_cost(initial: Any, diffusivity: Any, heating: Any) -> Any:
    """Explicit finite differences on an insulated rod heated on two cells; a cost on the whole history."""
    cells = initial.shape[0]
    history = np.zeros_like(initial, shape=(HEAT_STEPS + 1, cells))
    history[0] = initial
    temperature = initial
    for step in range(1, HEAT_STEPS + 1):
        padded = np.pad(temperature, 1, mode="edge")  # zero flux through both ends
        laplacian = padded[2:] - 2.0 * padded[1:-1] + padded[:-2]
        temperature = temperature + HEAT_DT * diffusivity * laplacian
        temperature[2:4] += HEAT_DT * heating
        history[step] = temperature
    left_half_heat = np.sum(history[:, : cells // 2], axis=1)
    return np.mean(history**2, axis=(0, 1)) + 0.01 * np.mean(np.cumsum(left_half_heat)) + np.var(temperature)


def heat_equation_cost_torch(initial: Any, diffusivity: Any, heating: Any) -> Any:
    temperature, history = initial, [initial]
    for _ in range(HEAT_STEPS):
        padded = torch.cat([temperature[:1], temperature, temperature[-1:]])
        temperature = temperature + HEAT_DT * diffusivity * (padded[2:] - 2.0 * padded[1:-1] + padded[:-2])
        temperature = temperature.clone()
        temperature[2:4] += HEAT_DT * heating
        history.append(temperature)
    history = torch.stack(history)
    left_half_heat = history[:, : initial.shape[0] // 2].sum(1)
    return history.pow(2).mean() + 0.01 * left_half_heat.cumsum(0).mean() + temperature.var(correction=0)


def heat_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.uniform(0.0, 1.0, 8), rng.uniform(0.3, 1.0, 8), rng.uniform(0.5, 1.5, 2)


# -- Causal self-attention with layer norm: einsum with '...', np.where mask, softmax, var --------------
def attention_block(tokens: Any, projections: Any, mixing: Any) -> Any:
    """One pre-norm causal attention block with a residual; returns the spread of its output features."""
    length = tokens.shape[1]
    centred = tokens - np.mean(tokens, axis=-1, keepdims=True)
    normed = centred / np.sqrt(np.var(tokens, axis=-1, keepdims=True) + 1e-5)
    queries, keys, values = np.einsum("btd,dchk->cbhtk", normed, projections)  # unpack over q/k/v
    scores = np.einsum("...tk,...sk->...ts", queries, keys) / math.sqrt(keys.shape[-1])
    causal = np.tril(np.ones((length, length), dtype=bool))
    weights = tape.softmax(np.where(causal, scores, -np.inf), axis=-1)
    attended = np.einsum("...ts,...sk->...tk", weights, values)
    output = np.einsum("bhtk,hkd->btd", attended, mixing) + tokens
    return np.sum(np.var(output, axis=(0, 1)))


def attention_block_torch(tokens: Any, projections: Any, mixing: Any) -> Any:
    length = tokens.shape[1]
    spread = (tokens.var(-1, keepdim=True, correction=0) + 1e-5).sqrt()
    normed = (tokens - tokens.mean(-1, keepdim=True)) / spread
    queries, keys, values = torch.einsum("btd,dchk->cbhtk", normed, projections)
    scores = queries @ keys.transpose(-1, -2) / math.sqrt(keys.shape[-1])
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
    weights = torch.softmax(scores.masked_fill(~causal, -math.inf), dim=-1)
    output = torch.einsum("bhtk,hkd->btd", weights @ values, mixing) + tokens
    return output.var(dim=(0, 1), correction=0).sum()


def attention_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    batch, length, dim, heads, head_dim = 2, 4, 4, 2, 3
    return (
        rng.standard_normal((batch, length, dim)),
        rng.standard_normal((dim, 3, heads, head_dim)) * 0.5,
        rng.standard_normal((heads, head_dim, dim)) * 0.5,
    )


# -- Mixture of Gaussians: broadcasting (N, K, D), logsumexp, log_softmax ---------------------------------
def mixture_log_likelihood(means: Any, log_scales: Any, logits: Any, samples: Any) -> Any:
    """Log-likelihood of ``samples`` (N, D) under a K-component diagonal Gaussian mixture."""
    standardised = (samples[:, None, :] - means[None, :, :]) * np.exp(-log_scales)  # (N, K, D)
    dim = samples.shape[-1]
    per_component = (
        -0.5 * np.sum(standardised**2, axis=-1) - np.sum(log_scales, axis=-1) - 0.5 * dim * LOG_2PI
    )
    return np.sum(tape.logsumexp(tape.log_softmax(logits) + per_component, axis=1))


def mixture_log_likelihood_torch(means: Any, log_scales: Any, logits: Any, samples: Any) -> Any:
    standardised = (samples[:, None, :] - means[None, :, :]) * (-log_scales).exp()
    dim = samples.shape[-1]
    per_component = -0.5 * standardised.pow(2).sum(-1) - log_scales.sum(-1) - 0.5 * dim * LOG_2PI
    return torch.logsumexp(torch.log_softmax(logits, dim=-1) + per_component, dim=1).sum()


def mixture_inputs(rng: np.random.Generator, samples: int = 7, components: int = 3, dim: int = 2) -> Any:
    return (
        rng.standard_normal((components, dim)),
        rng.uniform(-0.5, 0.5, (components, dim)),
        rng.standard_normal(components),
        rng.standard_normal((samples, dim)) * 1.5,
    )


# -- Damped pendulum, RK4 for 50 steps: a long loop of np.stack and elementwise ops -----------------------
PENDULUM_STEPS, PENDULUM_DT, OBSERVE_EVERY = 50, 0.05, 10


def pendulum_misfit(initial_state: Any, physics: Any, observed_angles: Any) -> Any:
    """Squared misfit of a damped pendulum's simulated angles to observations, plus its final energy."""
    stiffness, damping = physics[0], physics[1]

    def rates(state: Any) -> Any:
        angle, velocity = state[0], state[1]
        return np.stack([velocity, -stiffness * np.sin(angle) - damping * velocity])

    state, trajectory = initial_state, [initial_state]
    for _ in range(PENDULUM_STEPS):
        k1 = rates(state)
        k2 = rates(state + 0.5 * PENDULUM_DT * k1)
        k3 = rates(state + 0.5 * PENDULUM_DT * k2)
        k4 = rates(state + PENDULUM_DT * k3)
        state = state + PENDULUM_DT / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        trajectory.append(state)
    angles = np.stack(trajectory)[::OBSERVE_EVERY, 0]
    energy = 0.5 * state[1] ** 2 + stiffness * (1.0 - np.cos(state[0]))
    return np.sum((angles - observed_angles) ** 2) + energy


def pendulum_misfit_torch(initial_state: Any, physics: Any, observed_angles: Any) -> Any:
    stiffness, damping = physics[0], physics[1]

    def rates(state: Any) -> Any:
        return torch.stack([state[1], -stiffness * torch.sin(state[0]) - damping * state[1]])

    state, trajectory = initial_state, [initial_state]
    for _ in range(PENDULUM_STEPS):
        k1 = rates(state)
        k2 = rates(state + 0.5 * PENDULUM_DT * k1)
        k3 = rates(state + 0.5 * PENDULUM_DT * k2)
        k4 = rates(state + PENDULUM_DT * k3)
        state = state + PENDULUM_DT / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        trajectory.append(state)
    angles = torch.stack(trajectory)[::OBSERVE_EVERY, 0]
    energy = 0.5 * state[1] ** 2 + stiffness * (1.0 - torch.cos(state[0]))
    return (angles - observed_angles).pow(2).sum() + energy


def pendulum_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    times = np.arange(0, PENDULUM_STEPS + 1, OBSERVE_EVERY) * PENDULUM_DT
    observed = 0.8 * np.cos(2.0 * times) * np.exp(-0.2 * times) + 0.05 * rng.standard_normal(times.size)
    return np.array([0.8, 0.0]), np.array([4.0, 0.3]), observed


# -- Kernel ridge regression: RBF kernel by broadcasting, solve with several right-hand sides -------------
def kernel_ridge_error(log_lengthscale: Any, train_x: Any, train_y: Any, test_x: Any, test_y: Any) -> Any:
    """Test error of kernel ridge regression with an RBF kernel, plus the fit's RKHS norm."""

    def rbf(left: Any, right: Any) -> Any:
        squared = np.sum((left[:, None, :] - right[None, :, :]) ** 2, axis=-1)
        return np.exp(-0.5 * squared / np.exp(2.0 * log_lengthscale))

    gram = rbf(train_x, train_x) + 0.1 * np.eye(len(train_x), dtype=train_x.dtype)
    coefficients = np.linalg.solve(gram, train_y)  # (train, outputs)
    predictions = rbf(test_x, train_x) @ coefficients
    rkhs_norm = np.trace(coefficients.T @ gram @ coefficients)
    return np.mean((predictions - test_y) ** 2) + 0.01 * rkhs_norm


def kernel_ridge_error_torch(
    log_lengthscale: Any, train_x: Any, train_y: Any, test_x: Any, test_y: Any
) -> Any:
    def rbf(left: Any, right: Any) -> Any:
        return torch.exp(-0.5 * torch.cdist(left, right).pow(2) / torch.exp(2.0 * log_lengthscale))

    gram = rbf(train_x, train_x) + 0.1 * torch.eye(len(train_x), dtype=train_x.dtype)
    coefficients = torch.linalg.solve(gram, train_y)
    predictions = rbf(test_x, train_x) @ coefficients
    return (predictions - test_y).pow(2).mean() + 0.01 * torch.trace(coefficients.T @ gram @ coefficients)


def kernel_ridge_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    train_x, test_x = rng.uniform(-2, 2, (7, 2)), rng.uniform(-2, 2, (4, 2))

    def truth(x: np.ndarray) -> np.ndarray:
        return np.stack([np.sin(x[:, 0]) + x[:, 1], np.cos(x[:, 1])], axis=1)

    return np.array(0.2), train_x, truth(train_x), test_x, truth(test_x)


# -- Robust regression: median, MAD, percentile, clip, np.where, boolean-mask indexing ---------------------
def robust_regression_loss(coefficients: Any, features: Any, targets: Any) -> Any:
    """Huber loss on MAD-scaled residuals, a 90th-percentile term, and a trimmed mean of inliers."""
    residuals = features @ coefficients - targets
    centre = np.median(residuals)
    spread = 1.4826 * np.median(np.abs(residuals - centre))
    scaled = np.clip((residuals - centre) / spread, -3.0, 3.0)
    huber = np.where(np.abs(scaled) < 1.0, 0.5 * scaled**2, np.abs(scaled) - 0.5)
    inliers = residuals[np.abs(scaled) < 2.0]
    return np.mean(huber) + np.percentile(np.abs(residuals), 90.0) + np.mean(inliers**2)


def robust_regression_loss_torch(coefficients: Any, features: Any, targets: Any) -> Any:
    residuals = features @ coefficients - targets
    centre = torch.quantile(residuals, 0.5)  # torch.median takes the lower middle value, numpy the mean
    spread = 1.4826 * torch.quantile((residuals - centre).abs(), 0.5)
    scaled = torch.clamp((residuals - centre) / spread, -3.0, 3.0)
    huber = torch.where(scaled.abs() < 1.0, 0.5 * scaled**2, scaled.abs() - 0.5)
    inliers = residuals[scaled.abs() < 2.0]
    return huber.mean() + torch.quantile(residuals.abs(), 0.9) + inliers.pow(2).mean()


def robust_regression_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    features = rng.standard_normal((12, 3))
    coefficients = np.array([0.5, -1.0, 2.0])
    targets = features @ coefficients + 0.2 * rng.standard_normal(12)
    targets[[1, 7]] += [4.0, -5.0]  # outliers, clipped at three spreads
    start = coefficients + 0.1
    deviations = features @ start - targets
    deviations -= np.median(deviations)
    scaled = deviations / (1.4826 * np.median(np.abs(deviations)))
    # Away from the kinks: clip at 3, the inlier mask at 2, abs at 0, and no ties among the residuals.
    for kink in (3.0, 2.0, 0.0):
        assert np.abs(np.abs(scaled) - kink).min() > 0.02
    assert np.abs(scaled).max() > 3.0
    return start, features, targets


# -- Plackett-Luce ranking loss: argsort, take_along_axis, flip, cumsum, sort, negative-step slices -------
def ranking_loss(scores: Any, relevance: Any) -> Any:
    """Plackett-Luce negative log-likelihood of the relevance order, minus a discounted top-3 reward."""
    order = np.argsort(-relevance, axis=1)  # most relevant first
    ranked = np.take_along_axis(scores, order, axis=1)
    shift = np.max(ranked, axis=1, keepdims=True)
    # log-sum-exp over the items not yet placed: a reversed cumulative sum of exponentials
    remaining = np.flip(np.cumsum(np.flip(np.exp(ranked - shift), axis=1), axis=1), axis=1)
    negative_log_likelihood = np.sum(np.log(remaining) + shift - ranked, axis=1)
    discount = 1.0 / np.log2(np.arange(2, 5, dtype=scores.dtype))
    top_three = np.sort(scores, axis=1)[:, ::-1][:, :3]
    return np.mean(negative_log_likelihood) - 0.1 * np.sum(top_three * discount)


def ranking_loss_torch(scores: Any, relevance: Any) -> Any:
    order = torch.argsort(-relevance, dim=1)
    ranked = torch.gather(scores, 1, order)
    remaining = torch.logcumsumexp(ranked.flip(1), dim=1).flip(1)
    discount = 1.0 / torch.log2(torch.arange(2, 5, dtype=scores.dtype))
    top_three = torch.sort(scores, dim=1, descending=True).values[:, :3]
    return (remaining - ranked).sum(1).mean() - 0.1 * (top_three * discount).sum()


def ranking_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    queries, items = 3, 6
    relevance = np.stack([rng.permutation(items) for _ in range(queries)]) + rng.uniform(-0.2, 0.2, (3, 6))
    scores = np.stack([rng.permutation(items) * 0.3 for _ in range(queries)]) + rng.uniform(
        -0.05, 0.05, (3, 6)
    )
    return scores, relevance


# -- Portfolio risk: covariance by einsum, a 3-operand einsum, softmax weights, var and std with ddof -----
def portfolio_objective(logits: Any, returns: Any) -> Any:
    """Negative Sharpe ratio of a long-only portfolio, a risk-parity penalty and the variance."""
    weights = tape.softmax(logits)
    centred = returns - np.mean(returns, axis=0)
    covariance = np.einsum("ti,tj->ij", centred, centred) / (returns.shape[0] - 1)
    variance = np.einsum("i,ij,j->", weights, covariance, weights)
    risk_shares = weights * (covariance @ weights) / variance  # each asset's share of the risk
    portfolio = returns @ weights
    sharpe = np.mean(portfolio) / np.std(portfolio, ddof=1)
    return -sharpe + 10.0 * np.var(risk_shares) + 0.5 * variance


def portfolio_objective_torch(logits: Any, returns: Any) -> Any:
    weights = torch.softmax(logits, dim=0)
    covariance = torch.cov(returns.T)
    variance = weights @ covariance @ weights
    risk_shares = weights * (covariance @ weights) / variance
    portfolio = returns @ weights
    sharpe = portfolio.mean() / portfolio.std(correction=1)
    return -sharpe + 10.0 * risk_shares.var(correction=0) + 0.5 * variance


def portfolio_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    assets, days = 5, 20
    mixing = rng.standard_normal((assets, assets)) * 0.3 + np.eye(assets)
    return rng.standard_normal(assets) * 0.5, 0.05 + rng.standard_normal((days, assets)) @ mixing * 0.1


# -- Polynomial fit: np.stack of powers (x**0 at x = 0 included), ridge by np.concatenate, lstsq ----------
def polynomial_fit_error(x: Any, y: Any) -> Any:
    """Ridge-regularised cubic least-squares fit; the training error plus the coefficients' size."""
    design = np.stack([x**power for power in range(4)], axis=1)
    ridge = 0.1 * np.eye(4, dtype=x.dtype)
    augmented = np.concatenate([design, ridge], axis=0)  # ridge as extra rows of the system
    padded_y = np.concatenate([y, np.zeros(4, dtype=y.dtype)])
    coefficients, *_ = np.linalg.lstsq(augmented, padded_y, rcond=None)
    return np.mean((design @ coefficients - y) ** 2) + 0.01 * np.sum(coefficients**2)


def polynomial_fit_error_torch(x: Any, y: Any) -> Any:
    design = torch.stack([x**power for power in range(4)], dim=1)
    # The normal equations of the same ridge problem: an independent route to the coefficients.
    normal = design.T @ design + 0.01 * torch.eye(4, dtype=x.dtype)
    coefficients = torch.linalg.solve(normal, design.T @ y)
    return (design @ coefficients - y).pow(2).mean() + 0.01 * coefficients.pow(2).sum()


def polynomial_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    x = np.linspace(-1.0, 1.0, 11) + rng.uniform(-0.02, 0.02, 11)
    x[5] = 0.0  # an exact zero: d(x**0)/dx must be 0 there, not 0 * inf
    return x, np.sin(2.0 * x) + 0.1 * rng.standard_normal(11)


# -- Segment pooling: one-hot segment sums, gathers with repeats, y[idx] += v with repeats, masks ---------
def segment_pooling(values: Any, gate: Any, segment_ids: np.ndarray) -> Any:
    """Softmax-gated pooling of rows into segments, and numpy's last-write-wins ``board[ids] += rows``."""
    segments = int(segment_ids.max()) + 1
    membership = (segment_ids[None, :] == np.arange(segments)[:, None]).astype(values.dtype)  # (segments, n)
    gate_weights = np.exp(gate - np.max(gate))
    attention = gate_weights / (membership @ gate_weights)[segment_ids]  # a gather with repeated indices
    pooled = membership @ (attention[:, None] * values)
    # numpy does not accumulate a repeated index in `+=`: each board row gets only its segment's last row.
    board = np.ones_like(values, shape=(segments, values.shape[1]))
    board[segment_ids] += values * attention[:, None]
    positive = values[values > 0.0]
    return np.sum(np.tanh(pooled) ** 2) + np.sum(board**2) + 0.1 * np.sum(positive**3)


def segment_pooling_torch(values: Any, gate: Any, segment_ids: Any) -> Any:
    segments = int(segment_ids.max()) + 1
    gate_weights = torch.exp(gate - gate.max())
    totals = torch.zeros(segments, dtype=values.dtype).index_add(0, segment_ids, gate_weights)
    attention = gate_weights / totals[segment_ids]
    pooled = torch.zeros(segments, values.shape[1], dtype=values.dtype).index_add(
        0, segment_ids, attention[:, None] * values
    )
    # The rows numpy's last-write-wins `+=` keeps: each segment's last occurrence.
    reversed_ids = segment_ids.flip(0).numpy()
    _, first_from_end = np.unique(reversed_ids, return_index=True)
    last_rows = torch.as_tensor(len(reversed_ids) - 1 - first_from_end)
    board = torch.ones(segments, values.shape[1], dtype=values.dtype).index_put(
        (segment_ids[last_rows],), (values * attention[:, None])[last_rows], accumulate=True
    )
    positive = values[values > 0.0]
    return torch.tanh(pooled).pow(2).sum() + board.pow(2).sum() + 0.1 * positive.pow(3).sum()


def segment_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    segment_ids = np.array([0, 2, 1, 2, 0, 4, 4, 4, 1, 0])  # segment 3 is empty
    values = rng.uniform(0.2, 1.0, (10, 3)) * rng.choice([-1.0, 1.0], (10, 3))
    return values, rng.standard_normal(10), segment_ids


# -- Normal modes of a spring-mass chain: matrix built by advanced-index writes, eigh ----------------------
def chain_modes(log_stiffness: Any, log_masses: Any) -> Any:
    """The three lowest frequencies of a chain of masses between walls, plus the modes' participation."""
    stiffness, masses = np.exp(log_stiffness), np.exp(log_masses)  # springs: one more than masses
    count = masses.shape[0]
    rows = np.arange(count)
    matrix = np.zeros_like(masses, shape=(count, count))
    matrix[rows, rows] += stiffness[:-1] + stiffness[1:]
    matrix[rows[:-1], rows[1:]] = -stiffness[1:-1]
    matrix[rows[1:], rows[:-1]] = -stiffness[1:-1]
    scale = 1.0 / np.sqrt(masses)
    eigenvalues, modes = np.linalg.eigh(matrix * scale[:, None] * scale[None, :])
    participation = 1.0 / np.sum(modes**4, axis=0)  # unchanged by each mode's arbitrary sign
    return np.sum(np.sqrt(eigenvalues[:3])) + 0.1 * np.sum(participation * eigenvalues)


def chain_modes_torch(log_stiffness: Any, log_masses: Any) -> Any:
    stiffness, masses = log_stiffness.exp(), log_masses.exp()
    coupling = stiffness[1:-1]
    matrix = torch.diag(stiffness[:-1] + stiffness[1:]) - torch.diag(coupling, 1) - torch.diag(coupling, -1)
    scale = masses.rsqrt()
    eigenvalues, modes = torch.linalg.eigh(matrix * scale[:, None] * scale[None, :])
    participation = 1.0 / modes.pow(4).sum(0)
    return eigenvalues[:3].sqrt().sum() + 0.1 * (participation * eigenvalues).sum()


def chain_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    log_stiffness, log_masses = rng.uniform(-0.5, 0.5, 7), rng.uniform(-0.3, 0.3, 6)
    stiffness, masses = np.exp(log_stiffness), np.exp(log_masses)
    matrix = (
        np.diag(stiffness[:-1] + stiffness[1:]) - np.diag(stiffness[1:-1], 1) - np.diag(stiffness[1:-1], -1)
    )
    eigenvalues = np.linalg.eigvalsh(matrix / np.sqrt(np.outer(masses, masses)))
    assert np.diff(eigenvalues).min() > 0.1  # well separated: eigenvectors are differentiable
    return log_stiffness, log_masses


# -- the table of programs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Program:
    """A numpy program, its torch twin, and how to make its inputs (float64 and integer arrays)."""

    name: str
    function: Callable[..., Any]
    torch_twin: Callable[..., Any]
    make_inputs: Callable[[np.random.Generator], tuple[np.ndarray, ...]]

    def inputs(self, dtype: Any = np.float64) -> tuple[np.ndarray, ...]:
        """The program's inputs, floating-point ones cast to ``dtype``, from a seed fixed by its name."""
        rng = np.random.default_rng(sum(map(ord, self.name)))
        return tuple(x.astype(dtype) if x.dtype.kind == "f" else x for x in self.make_inputs(rng))


PROGRAMS = [
    Program("lennard_jones_cluster", cluster_energy, cluster_energy_torch, cluster_inputs),
    Program(
        "gaussian_full_covariance", gaussian_log_likelihood, gaussian_log_likelihood_torch, gaussian_inputs
    ),
    Program(
        "bayesian_regression_evidence", regression_evidence, regression_evidence_torch, regression_inputs
    ),
    Program("heat_equation", heat_equation_cost, heat_equation_cost_torch, heat_inputs),
    Program("causal_attention", attention_block, attention_block_torch, attention_inputs),
    Program("gaussian_mixture", mixture_log_likelihood, mixture_log_likelihood_torch, mixture_inputs),
    Program("pendulum_rk4", pendulum_misfit, pendulum_misfit_torch, pendulum_inputs),
    Program("kernel_ridge", kernel_ridge_error, kernel_ridge_error_torch, kernel_ridge_inputs),
    Program(
        "robust_regression", robust_regression_loss, robust_regression_loss_torch, robust_regression_inputs
    ),
    Program("plackett_luce_ranking", ranking_loss, ranking_loss_torch, ranking_inputs),
    Program("portfolio_risk", portfolio_objective, portfolio_objective_torch, portfolio_inputs),
    Program("polynomial_fit", polynomial_fit_error, polynomial_fit_error_torch, polynomial_inputs),
    Program("segment_pooling", segment_pooling, segment_pooling_torch, segment_inputs),
    Program("spring_chain_modes", chain_modes, chain_modes_torch, chain_inputs),
]
PROGRAM_PARAMS = [pytest.param(program, id=program.name) for program in PROGRAMS]


def is_float(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def tape_gradients(function: Callable[..., Any], inputs: tuple[np.ndarray, ...]) -> tuple[Any, list[Any]]:
    """Run ``function`` on tensors and backward: its result and the gradients of its float inputs."""
    leaves = [tape.tensor(x, requires_grad=True) if is_float(x) else x for x in inputs]
    result = function(*leaves)
    result.backward()
    # An input that only steers the program (through argsort, say) is never reached: its gradient is 0.
    return result, [
        np.zeros_like(leaf.data) if leaf.grad is None else leaf.grad
        for leaf in leaves
        if isinstance(leaf, tape.Tensor)
    ]


def torch_gradients(twin: Callable[..., Any], inputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """Run the torch twin in float64 and return the gradients of its float inputs (0 where unreached)."""
    leaves = [
        torch.tensor(x, dtype=torch.float64, requires_grad=True) if is_float(x) else torch.as_tensor(x)
        for x in inputs
    ]
    twin(*leaves).backward()
    return [
        np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy()
        for leaf in leaves
        if leaf.is_floating_point()
    ]


def check_forward(function: Callable[..., Any], inputs: tuple[np.ndarray, ...]) -> None:
    """tape's result on tensors is numpy's result on the arrays: a scalar of the inputs' dtype."""
    dtype = np.result_type(*(x for x in inputs if is_float(x)))
    expected = np.asarray(function(*(x.copy() for x in inputs)))
    assert expected.dtype == dtype, f"the program itself promotes {dtype} to {expected.dtype}"
    result = function(*(tape.tensor(x, requires_grad=True) if is_float(x) else x for x in inputs))
    assert isinstance(result, tape.Tensor) and result.requires_grad
    assert result.shape == () and result.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(result.data, expected, rtol=rtol, atol=0)


# -- tests -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("program", PROGRAM_PARAMS)
def test_forward_equals_numpy(program: Program, dtype: Any) -> None:
    check_forward(program.function, program.inputs(dtype))


@pytest.mark.parametrize("program", PROGRAM_PARAMS)
def test_gradients_match_finite_differences(program: Program) -> None:
    assert tape.gradcheck(program.function, *program.inputs())


@pytest.mark.parametrize("program", PROGRAM_PARAMS)
def test_gradients_match_torch(program: Program) -> None:
    pytest.importorskip("torch")
    inputs = program.inputs()
    _, ours = tape_gradients(program.function, inputs)
    theirs = torch_gradients(program.torch_twin, inputs)
    assert len(ours) == len(theirs)
    for position, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
        scale = max(1.0, float(np.abs(reference).max(initial=0.0)))
        np.testing.assert_allclose(mine, reference, rtol=1e-6, atol=1e-9 * scale, err_msg=f"input {position}")


@pytest.mark.parametrize("program", PROGRAM_PARAMS)
def test_float32_gradients_follow_float64(program: Program) -> None:
    single = program.inputs(np.float32)
    # float64 at the very same (rounded) point, so only the arithmetic's precision differs
    double = tuple(x.astype(np.float64) if is_float(x) else x for x in single)
    result, gradients32 = tape_gradients(program.function, single)
    _, gradients64 = tape_gradients(program.function, double)
    assert result.dtype == np.float32
    for position, (low, high) in enumerate(zip(gradients32, gradients64, strict=True)):
        assert low.dtype == np.float32, f"input {position}: gradient dtype {low.dtype}"
        scale = float(np.abs(high).max(initial=0.0))
        np.testing.assert_allclose(low, high, rtol=1e-3, atol=1e-3 * scale, err_msg=f"input {position}")


# -- the same programs over drawn shapes -------------------------------------------------------------------
@given(
    samples=st.integers(1, 5),
    components=st.integers(1, 4),
    dim=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(FLOAT_DTYPES),
)
def test_gaussian_mixture_over_shapes(samples: int, components: int, dim: int, seed: int, dtype: Any) -> None:
    inputs = mixture_inputs(np.random.default_rng(seed), samples, components, dim)
    inputs = tuple(x.astype(dtype) for x in inputs)
    check_forward(mixture_log_likelihood, inputs)
    assert tape.gradcheck(mixture_log_likelihood, *inputs)


@st.composite
def segment_problems(draw: Any) -> tuple[np.ndarray, ...]:
    """Rows in segments, with repeated ids, possibly empty segments, values away from the mask's 0."""
    rows = draw(st.integers(1, 8))
    segment_ids = np.array(draw(st.lists(st.integers(0, 3), min_size=rows, max_size=rows)))
    features = draw(st.integers(1, 3))
    values = draw(arrays((rows, features), low=-1.0, high=1.0, away_from=0.0, margin=0.1))
    gate = draw(arrays((rows,), low=-2.0, high=2.0))
    return values, gate, segment_ids


@given(problem=segment_problems(), dtype=st.sampled_from(FLOAT_DTYPES))
def test_segment_pooling_over_drawn_segments(problem: tuple[np.ndarray, ...], dtype: Any) -> None:
    values, gate, segment_ids = problem
    inputs = (values.astype(dtype), gate.astype(dtype), segment_ids)
    check_forward(segment_pooling, inputs)
    assert tape.gradcheck(segment_pooling, *inputs)


# -- a program that writes tensors into a plain numpy buffer -----------------------------------------------
def heat_equation_with_numpy_buffer(initial: Any, diffusivity: Any) -> Any:
    """The heat-equation stepper as most numpy code is written: the history is a plain ``np.zeros``."""
    history = np.zeros((HEAT_STEPS + 1, initial.shape[0]), dtype=initial.dtype)
    history[0] = initial
    temperature = initial
    for step in range(1, HEAT_STEPS + 1):
        padded = np.pad(temperature, 1, mode="edge")
        temperature = temperature + HEAT_DT * diffusivity * (padded[2:] - 2.0 * padded[1:-1] + padded[:-2])
        history[step] = temperature
    return np.mean(history**2) + np.var(temperature)


def test_tensor_written_into_numpy_array_is_not_silently_detached() -> None:
    inputs = heat_inputs(np.random.default_rng(3))[:2]
    try:
        tape.gradcheck(heat_equation_with_numpy_buffer, *inputs)
    except (TypeError, RuntimeError) as refusal:  # refusing loudly is as good as a right gradient
        assert "array" in str(refusal)


def test_write_through_np_asarray_does_not_give_a_wrong_gradient() -> None:
    x = tape.tensor(np.array([1.0, 2.0]), requires_grad=True)
    scaled = x * 1.0
    energy = np.sum(scaled**2)  # saves `scaled` for its VJP
    with pytest.raises(TypeError, match="converted to a plain numpy array while recording"):
        np.asarray(scaled)  # while recording, the conversion itself is refused
    with pytest.raises(ValueError, match="read-only"):
        scaled.numpy()[0] = 100.0  # the explicit exit is a read-only view
    energy.backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])

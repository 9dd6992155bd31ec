# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2 · Ordinary numpy code, differentiated
#
# Code written for numpy arrays does not need to be rewritten for tape: pass it tensors and every
# numpy call in it (`np.sin`, `np.linalg.solve`, `@`, indexing, ...) runs tape's op for that function
# and is recorded. Python control flow (loops, `if`, `while`) just runs; the tape records the path
# actually taken. Two examples, a physics simulation and a statistical fit, then the rules: dtypes,
# what is refused, and changing arrays in place.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import tape

# %% [markdown]
# ## Physics: aim a projectile through air drag
#
# A ball leaves the ground at 30 m/s; air drag is quadratic in speed, so there is no closed form for
# where it lands. `fly` integrates the motion with explicit Euler steps until the ball is below the
# ground, in plain numpy: it runs on floats as well as on tensors.

# %%
GRAVITY = np.array([0.0, -9.81])


def fly(angle, speed=30.0, drag=0.01, dt=0.02):
    """Positions of a ball launched at ``angle`` (radians) until it falls below y = 0."""
    position = np.zeros(2)
    # np.stack, not np.array: np.array([t1, t2]) would make plain data of the tensors (see below)
    velocity = speed * np.stack([np.cos(angle), np.sin(angle)])
    path = [position]
    while position[1] >= 0:
        acceleration = GRAVITY - drag * np.linalg.norm(velocity) * velocity
        velocity = velocity + dt * acceleration
        position = position + dt * velocity
        path.append(position)
    return path


def landing_distance(path):
    """Where the path crosses y = 0, interpolated between its last two points."""
    (x0, y0), (x1, y1) = path[-2], path[-1]
    return x0 + (x1 - x0) * y0 / (y0 - y1)


print(f"at 45°, plain numpy: the ball lands at {landing_distance(fly(np.pi / 4)):.2f} m")

# %% [markdown]
# To hit a target 40 m away, minimise $\frac12 (\text{distance}(\theta) - 40)^2$ over the launch angle
# by gradient descent. The angle is a tensor, so each call of `fly` records a few hundred steps on the
# tape and `backward()` differentiates through all of them. The angle itself is a leaf, so it is
# updated inside `tape.no_grad()`.

# %%
target = 40.0
angle = tape.tensor(0.15, requires_grad=True)
flights = []  # (angle, path, miss) for each step
for _ in range(12):
    path = fly(angle)
    miss = landing_distance(path) - target
    (miss**2 / 2).backward()
    flights.append((angle.item(), np.stack(path).numpy(), miss.item()))
    with tape.no_grad():
        angle -= 5e-5 * angle.grad
    angle.grad = None
for step in (0, 1, 2, 5, 11):
    theta, path, miss = flights[step]
    print(f"step {step:2}: angle {np.degrees(theta):5.2f}°, {len(path)} Euler steps, miss {miss:+.4f} m")

# %%
fig, (ax_path, ax_miss) = plt.subplots(1, 2, figsize=(11, 3.5), width_ratios=[2.2, 1])
colors = plt.cm.viridis(np.linspace(0, 1, len(flights)))
for (_, path, _), color in zip(flights, colors, strict=True):
    ax_path.plot(path[:, 0], path[:, 1], color=color, lw=1.2)
ax_path.plot(target, 0, "rx", ms=12, mew=3, label="target")
ax_path.axhline(0, color="k", lw=0.8)
ax_path.set(xlabel="x (m)", ylabel="height (m)", title="trajectories, first (purple) to last (yellow)")
ax_path.legend()
ax_miss.semilogy([abs(miss) for _, _, miss in flights], "o-")
ax_miss.set(xlabel="gradient-descent step", ylabel="|miss| (m)", title="distance to the target")
fig.tight_layout()

# %% [markdown]
# The gradient through the whole simulation agrees with finite differences:

# %%
tape.gradcheck(lambda angle: landing_distance(fly(angle)), np.array(0.3))

# %% [markdown]
# ## Statistics: maximum likelihood of a Gaussian
#
# The negative log-likelihood of data $x_1..x_n$ under $\mathcal N(\mu, \Sigma)$ is
# $\frac12 \log\det\Sigma + \frac1{2n}\sum_k (x_k-\mu)^\top\Sigma^{-1}(x_k-\mu) + \text{const}$.
# Written with `np.linalg.slogdet` and `np.linalg.solve`, as one would for numpy; $\Sigma = L L^\top$
# with $L$ lower-triangular and a positive diagonal, so every parameter value is a valid covariance.

# %%
rng = np.random.default_rng(0)
true_mean, true_cov = np.array([1.0, -0.5]), np.array([[1.0, 0.8], [0.8, 1.5]])
data = rng.multivariate_normal(true_mean, true_cov, size=300)


def covariance(raw):
    """L Lᵀ, with L the lower triangle of ``raw`` and exp of its diagonal on the diagonal."""
    lower = np.tril(raw, -1) + np.diag(np.exp(np.diagonal(raw)))
    return lower @ lower.T


def negative_log_likelihood(mean, raw, data):
    cov = covariance(raw)
    centered = data - mean
    _, log_det = np.linalg.slogdet(cov)
    squared_distances = np.sum(centered.T * np.linalg.solve(cov, centered.T), axis=0)
    return np.mean(squared_distances) / 2 + log_det / 2 + data.shape[1] * math.log(2 * math.pi) / 2


mean = tape.tensor(np.zeros(2), requires_grad=True)
raw = tape.tensor(np.zeros((2, 2)), requires_grad=True)
losses, snapshots = [], {}
for step in range(200):
    loss = negative_log_likelihood(mean, raw, data)
    loss.backward()
    losses.append(loss.item())
    if step in (0, 4, 12):
        snapshots[step] = (mean.numpy().copy(), covariance(raw.numpy()))
    with tape.no_grad():
        mean -= 0.1 * mean.grad
        raw -= 0.1 * raw.grad
    mean.grad = raw.grad = None
snapshots[step + 1] = (mean.numpy().copy(), covariance(raw.numpy()))

# The maximum-likelihood estimates have a closed form, to compare with.
print("mean       ", mean.numpy(), " closed form", data.mean(axis=0))
print("covariance ", covariance(raw.numpy()).ravel(), " closed form", np.cov(data.T, bias=True).ravel())
print("gradcheck:", tape.gradcheck(negative_log_likelihood, rng.standard_normal(2), np.eye(2) / 4, data))


# %%
def ellipse(mean, cov, radius=2.0):
    """Points of the ellipse at ``radius`` standard deviations."""
    circle = np.stack([np.cos(np.linspace(0, 2 * np.pi, 100)), np.sin(np.linspace(0, 2 * np.pi, 100))])
    return mean[:, None] + radius * np.linalg.cholesky(cov) @ circle


fig, (ax_fit, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
ax_fit.scatter(*data.T, s=6, color="grey", alpha=0.6)
for step, (fitted_mean, fitted_cov) in snapshots.items():
    ax_fit.plot(*ellipse(fitted_mean, fitted_cov), label=f"step {step}")
ax_fit.plot(*ellipse(true_mean, true_cov), "k--", label="true")
ax_fit.set(aspect="equal", title=r"$2\sigma$ ellipses of the fit")
ax_fit.legend(fontsize=8)
ax_loss.plot(losses)
ax_loss.set(xlabel="step", ylabel="negative log-likelihood per point", title="gradient descent")
fig.tight_layout()

# %% [markdown]
# ## Statistics: logistic regression with `tape.logsumexp`
#
# Three classes in the plane, a linear model, and the cross-entropy
# $\frac1n\sum_k \big(\log\sum_c e^{z_{kc}} - z_{k,y_k}\big)$ with the numerically stable
# `tape.logsumexp`. Integer labels index the logits as they would a numpy array.

# %%
centers = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
labels = rng.integers(0, 3, size=300)
points = centers[labels] + rng.standard_normal((300, 2))


def cross_entropy(weights, bias, points, labels):
    logits = points @ weights + bias
    return np.mean(tape.logsumexp(logits, axis=1) - logits[np.arange(len(labels)), labels])


weights = tape.tensor(np.zeros((2, 3)), requires_grad=True)
bias = tape.tensor(np.zeros(3), requires_grad=True)
for _ in range(200):
    loss = cross_entropy(weights, bias, points, labels)
    loss.backward()
    with tape.no_grad():
        weights -= 0.5 * weights.grad
        bias -= 0.5 * bias.grad
    weights.grad = bias.grad = None

predicted = np.argmax(points @ weights.numpy() + bias.numpy(), axis=1)
print(f"cross-entropy {loss.item():.3f}, training accuracy {np.mean(predicted == labels):.1%}")
print(tape.gradcheck(cross_entropy, rng.standard_normal((2, 3)), rng.standard_normal(3), points, labels))

# %%
grid = np.stack(np.meshgrid(np.linspace(-5, 5, 200), np.linspace(-5, 5, 200)), axis=-1)
regions = np.argmax(grid @ weights.numpy() + bias.numpy(), axis=-1)
light, dark = ["#fbb4ae", "#b3cde3", "#ccebc5"], np.array(["#e41a1c", "#377eb8", "#4daf4a"])
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.contourf(grid[..., 0], grid[..., 1], regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=light)
ax.scatter(*points.T, c=dark[labels], s=8)
ax.set(aspect="equal", title="decision regions after 200 steps")
fig.tight_layout()

# %% [markdown]
# ## float32 and float64
#
# dtype in, dtype out: float32 inputs give a float32 loss and float32 gradients, and Python scalars
# (the `/ 2`, `math.log(2π)` above) do not promote them. The float32 gradients agree with the float64
# ones to float32's precision, and `gradcheck` checks float32 with tolerances to match.

# %%
start = {"mean": rng.standard_normal(2), "raw": 0.3 * rng.standard_normal((2, 2))}
gradients = {}
for dtype in (np.float64, np.float32):
    mean = tape.tensor(start["mean"], dtype=dtype, requires_grad=True)
    raw = tape.tensor(start["raw"], dtype=dtype, requires_grad=True)
    loss = negative_log_likelihood(mean, raw, data.astype(dtype))
    loss.backward()
    gradients[dtype] = np.concatenate([mean.grad, raw.grad.ravel()])
    print(f"{dtype.__name__}: loss {loss.dtype}, mean.grad {mean.grad.dtype}, raw.grad {raw.grad.dtype}")
difference = np.abs(gradients[np.float32] - gradients[np.float64]).max()
print(f"largest difference between the two gradients: {difference:.1e}")
print(tape.gradcheck(negative_log_likelihood, *(a.astype(np.float32) for a in start.values()), data))

# %% [markdown]
# ## What is refused
#
# A numpy function tape has no VJP for fails **when it is called**, naming the function, rather than
# giving a gradient that is silently missing later. The FFT is one:

# %%
signal = tape.tensor(np.sin(np.linspace(0, 8 * np.pi, 64)), requires_grad=True)
try:
    np.fft.fft(signal)
except TypeError as error:
    print("TypeError:", error)
try:
    np.sin(signal, out=np.empty(64))
except TypeError as error:
    print("TypeError:", error)

# %% [markdown]
# A way round, here: the power spectrum written with supported functions (a DFT as two matrix
# products), which is differentiable. Code that would turn a tensor into plain data while recording is
# refused too: `np.array([t1, t2])` does not dispatch to tensors, so it would cut them from the tape;
# `np.stack([t1, t2])` keeps the history.

# %%
frequencies = np.outer(np.arange(64), np.arange(64)) * 2 * np.pi / 64
power = (np.cos(frequencies) @ signal) ** 2 + (np.sin(frequencies) @ signal) ** 2
print("same as |fft|²:", np.allclose(power.numpy(), np.abs(np.fft.fft(signal.numpy())) ** 2))
power[4].backward()
print("d power[4] / d signal is recorded:", signal.grad.shape)

a, b = tape.tensor(1.0, requires_grad=True), tape.tensor(2.0, requires_grad=True)
try:
    np.array([a, b])
except TypeError as error:
    print("TypeError:", str(error)[:100], "...")
print("np.stack([a, b]) ->", np.stack([a, b]))

# %% [markdown]
# ## Changing arrays in place
#
# numpy code often fills an array in place. tape records such writes: `y[i] += v` on a tensor that
# does not require grad itself (here one made by `tape.zeros`) gives gradients to every `v` written
# into it.

# %%
amounts = tape.tensor([0.5, 1.0, 2.0, 4.0], requires_grad=True)
bins = [0, 2, 2, 1]
totals = tape.zeros(3)
for i, amount in zip(bins, amounts, strict=True):
    totals[i] += amount
print("totals", totals)
np.sum(totals * np.array([1.0, 10.0, 100.0])).backward()
print("each amount's gradient is its bin's factor:", amounts.grad)

# %% [markdown]
# Two writes are refused, each with a message that says what to do instead:
#
# - changing a **leaf that requires grad** while recording (its gradient would refer to a value that
#   no longer exists): update parameters inside `with tape.no_grad():`, as the loops above do;
# - changing a value that a record **saved for its backward**: the record notices (a version counter)
#   and backward refuses, naming the op, rather than returning a wrong gradient.

# %%
try:
    amounts += 1.0
except RuntimeError as error:
    print("RuntimeError:", error)
with tape.no_grad():
    amounts += 1.0  # fine: not recorded
print(amounts)

hidden = amounts * 1.0
wave = np.sin(hidden)  # sin saves its input for the VJP, cos(hidden)
hidden[0] = 5.0
try:
    wave.sum().backward()
except RuntimeError as error:
    print("RuntimeError:", error)

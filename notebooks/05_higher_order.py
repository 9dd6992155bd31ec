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
# # 5 · Higher-order derivatives
#
# tape's VJPs are ordinary numpy code. When a gradient is computed with the graph kept
# (`create_graph=True`, which the transforms do when they are nested), the VJPs run on tensors and
# are recorded like any other code, so a gradient can be differentiated again. This notebook uses
# that for derivatives of any order, Hessians and Hessian-vector products, Newton's method and the
# Jacobian of a vector field, and ends with `tape.checkpoint`, which trades compute for memory.

# %%
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm

import tape

# %% [markdown]
# ## `grad` of `grad`
#
# `tape.grad(f)` is a function computing the gradient of a scalar function `f`; it can be
# transformed again. For an elementwise $f$ the gradient of $\sum_k f(x_k)$ is $f'(x_k)$ at every
# point, so one call gives the derivative on a whole grid. With $f = \tanh$ the results can be checked
# against the closed forms.

# %%
first = tape.grad(lambda x: np.sum(np.tanh(x)))
second = tape.grad(lambda x: np.sum(first(x)))
third = tape.grad(lambda x: np.sum(second(x)))

xs = np.linspace(-4, 4, 401)
t = np.tanh(xs)
closed_forms = [1 - t**2, -2 * t * (1 - t**2), -2 * (1 - t**2) * (1 - 3 * t**2)]
derivatives = {"first": first, "second": second, "third": third}
for (name, derivative), expected in zip(derivatives.items(), closed_forms, strict=True):
    print(f"{name:>6} derivative: largest error {np.abs(derivative(xs) - expected).max():.1e}")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(xs, t, "k", lw=2, label="tanh")
for name, derivative in derivatives.items():
    ax.plot(xs, derivative(xs), label=f"{name} derivative")
ax.axhline(0, color="grey", lw=0.5)
ax.set(xlabel="x", title="tanh and its derivatives, each computed by tape.grad of the previous one")
ax.legend()
fig.tight_layout()

# %% [markdown]
# `tape.gradgradcheck` checks second derivatives against finite differences the way `gradcheck`
# checks first ones:

# %%
tape.gradgradcheck(lambda x: np.tanh(x) * np.sin(x), np.linspace(-2, 2, 7))


# %% [markdown]
# ## Hessian and Hessian-vector products
#
# `tape.hessian(f)(x)` is the Jacobian of the gradient: a matrix with one row per entry of $x$.
# `tape.hvp(f, (x,), (v,))` computes $H v$ without building $H$ (a reverse sweep over the recorded
# gradient). With unit vectors $v = e_k$ it gives the Hessian's columns one by one, which must match.


# %%
def f(x):
    return np.sum(np.sin(x) * x[::-1]) + tape.logsumexp(x) + np.sum(x**4) / 4


x = np.array([0.3, -1.2, 0.8, 2.0])
H = tape.hessian(f)(x)
columns = [tape.hvp(f, (x,), (unit,))[0] for unit in np.eye(len(x))]
with np.printoptions(precision=4, suppress=True):
    print(H)
print("H e_k from hvp matches column k:", np.allclose(np.stack(columns, axis=1), H))
print("symmetric:", np.allclose(H, H.T))

# %% [markdown]
# The point of `hvp` is size: for $n = 100{,}000$ the Hessian would have $10^{10}$ entries (80 GB),
# while $Hv$ costs about as much as a couple of gradients. For $\sum_k x_k^4/4$ the Hessian is
# $\text{diag}(3x^2)$, so $Hv = 3x^2 v$:

# %%
rng = np.random.default_rng(0)
x_big, v_big = rng.standard_normal(100_000), rng.standard_normal(100_000)
start = time.perf_counter()
(Hv,) = tape.hvp(lambda x: np.sum(x**4) / 4, (x_big,), (v_big,))
print(f"hvp with n = 100,000 in {time.perf_counter() - start:.3f} s")
print("matches 3x²v:", np.allclose(Hv, 3 * x_big**2 * v_big))


# %% [markdown]
# ## Newton's method against gradient descent
#
# On Rosenbrock's banana-shaped valley, $f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2$, gradient descent
# must take small steps (the valley's walls are steep) and then crawls along its floor. Newton's
# method solves $H\,\Delta = -\nabla f$ at each step, with the Hessian from `tape.hessian`, and reaches
# the minimum at $(1, 1)$ in a handful of steps.


# %%
def rosenbrock(p):
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


gradient, hessian = tape.grad(rosenbrock), tape.hessian(rosenbrock)
start = np.array([-1.2, 1.0])

newton = [start]
while len(newton) < 8:
    p = newton[-1]
    newton.append(p - np.linalg.solve(hessian(p), gradient(p)))

descent = [start]
while len(descent) < 2001:
    descent.append(descent[-1] - 1.5e-3 * gradient(descent[-1]))

newton, descent = np.array(newton), np.array(descent)
for name, path in [("Newton", newton), ("gradient descent", descent)]:
    ending = f"ends at {np.round(path[-1], 5)}, f = {rosenbrock(path[-1]):.1e}"
    print(f"{name:>16}: {len(path) - 1:4} steps, {ending}")

# %%
grid_x, grid_y = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-3.5, 3.5, 300))
values = rosenbrock(np.stack([grid_x, grid_y]))

fig, (ax_paths, ax_values) = plt.subplots(1, 2, figsize=(11, 4.5), width_ratios=[1, 1.2])
ax_paths.contour(grid_x, grid_y, values, levels=np.logspace(-1, 3.5, 15), colors="0.7", linewidths=0.7)
ax_paths.plot(*descent.T, lw=1.5, label="gradient descent (2000 steps)")
ax_paths.plot(*newton.T, "o-", label="Newton (7 steps)")
ax_paths.plot(1, 1, "k*", ms=12)
ax_paths.set(xlabel="x", ylabel="y", title="paths from (-1.2, 1)")
ax_paths.legend(loc="lower right")
ax_values.semilogy([rosenbrock(p) for p in descent], label="gradient descent")
ax_values.semilogy([rosenbrock(p) for p in newton], "o-", label="Newton")
ax_values.set(xlabel="step", ylabel="f", xscale="symlog", title="value along the path")
ax_values.legend()
fig.tight_layout()


# %% [markdown]
# (Newton's second step climbs: far from the minimum, a pure Newton step goes to the minimum of the
# local quadratic model, which need not be lower. Practical variants damp the step; the Hessian they
# need is the same.)
#
# ## The Jacobian of a vector field
#
# The field $F(x, y) = (-y + x(1 - r^2),\; x + y(1 - r^2))$ with $r^2 = x^2 + y^2$ turns around the
# origin and is drawn towards the circle $r = 1$. Its Jacobian at a point tells what happens nearby:
# at the origin the eigenvalues $1 \pm i$ mean an unstable spiral, and its trace is the divergence of
# the field (how much it spreads out), here $2 - 4r^2$.


# %%
def field(points):
    """F at each point of an array of shape (..., 2)."""
    x, y = points[..., 0], points[..., 1]
    shrink = 1 - (x**2 + y**2)
    return np.stack([-y + x * shrink, x + y * shrink], axis=-1)


at_origin = tape.jacobian(field)(np.zeros(2))
print("J at the origin:", at_origin.tolist(), "eigenvalues:", np.linalg.eigvals(at_origin))

# %% [markdown]
# The Jacobian at every point of a grid comes from **one** call on all the points at once: it has
# shape (N, 2, N, 2) and, as for the minibatch in notebook 3, only the diagonal blocks are non-zero,
# since point $k$'s value depends only on point $k$. Their traces are the divergence:

# %%
axis = np.linspace(-1.6, 1.6, 21)
points = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
J = tape.jacobian(field)(points)
k = np.arange(len(points))
blocks = J[k, :, k, :]  # (N, 2, 2): the Jacobian at each point
outside = np.count_nonzero(J) - np.count_nonzero(blocks)
print(f"Jacobian of all points: shape {J.shape}, {outside} non-zero entries outside the diagonal blocks")
divergence = np.trace(blocks, axis1=1, axis2=2)
radius_squared = np.sum(points**2, axis=1)
print("trace matches 2 - 4r²:", np.allclose(divergence, 2 - 4 * radius_squared))

fig, ax = plt.subplots(figsize=(5.5, 4.5))
zero_in_white = TwoSlopeNorm(vcenter=0.0)
grid_values = divergence.reshape(21, 21)
image = ax.pcolormesh(axis, axis, grid_values, shading="gouraud", cmap="RdBu_r", norm=zero_in_white)
fine = np.linspace(-1.6, 1.6, 60)
mesh = np.stack(np.meshgrid(fine, fine), axis=-1)
flow = field(mesh)
ax.streamplot(fine, fine, flow[..., 0], flow[..., 1], color="k", density=0.9, linewidth=0.6)
ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="C2", lw=2))
fig.colorbar(image, label="divergence = trace of the Jacobian")
ax.set(title="flow lines, and the circle r = 1 they approach")
fig.tight_layout()

# %% [markdown]
# ## Checkpointing: memory for compute
#
# Backward needs what every record saved, so the memory of a deep chain grows with its depth.
# `tape.checkpoint(fn, *args)` runs `fn` without recording, keeps only its inputs and output, and
# runs `fn` again during backward. Cutting a chain of $n$ steps into segments of $s$ keeps $n/s$
# segment outputs plus one segment's intermediate values at a time: smallest near $s \approx \sqrt n$.
#
# The chain: 64 steps of $h \leftarrow h + 0.1\tanh(a_k h)$ on 16,384 numbers, one parameter $a_k$ per
# step. Every tensor the segment should differentiate (here the $a_k$) is passed to `checkpoint`.

# %%
depth = 64
scales = [tape.tensor(a, requires_grad=True) for a in rng.uniform(0.5, 1.5, depth)]
h0 = rng.standard_normal(16_384)


def steps(h, *scales):
    for scale in scales:
        h = h + 0.1 * np.tanh(scale * h)
    return h


def loss(segment=None):
    """The chain's loss, plain (segment None) or with each run of ``segment`` steps checkpointed."""
    h = tape.tensor(h0)
    if segment is None:
        return np.mean(steps(h, *scales) ** 2)
    for start in range(0, depth, segment):
        h = tape.checkpoint(steps, h, *scales[start : start + segment])
    return np.mean(h**2)


def gradients_and_peak(segment=None):
    """The gradients of the loss, the peak memory of forward + backward, and the time taken."""
    for scale in scales:
        scale.grad = None
    tracemalloc.start()
    started = time.perf_counter()
    try:
        loss(segment).backward()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return np.array([scale.grad for scale in scales]), peak, seconds


gradients_and_peak()  # once unmeasured: the first call compiles (or loads) the numba kernel of tanh's VJP
plain_gradients, plain_peak, plain_seconds = gradients_and_peak()
segments = [1, 2, 4, 8, 16, 32, 64]
peaks, seconds = [], []
for segment in segments:
    grads, peak, duration = gradients_and_peak(segment)
    assert np.allclose(grads, plain_gradients)  # the same gradients, whatever the segments
    peaks.append(peak)
    seconds.append(duration)
print(f"without checkpoint: peak {plain_peak / 2**20:.1f} MiB, {plain_seconds * 1e3:.0f} ms")
for segment, peak, duration in zip(segments, peaks, seconds, strict=True):
    print(f"segments of {segment:2} steps: peak {peak / 2**20:5.1f} MiB, {duration * 1e3:4.0f} ms")

# %%
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.plot(segments, np.array(peaks) / 2**20, "o-", label="checkpointed segments")
ax.axhline(plain_peak / 2**20, color="C3", ls="--", label="no checkpoint")
ax.axvline(np.sqrt(depth), color="grey", lw=0.8, ls=":", label="√64 = 8")
ax.set(xscale="log", xlabel="steps per segment", ylabel="peak memory (MiB)", title=f"{depth} steps")
ax.set_xticks(segments, [str(s) for s in segments])
ax.minorticks_off()
ax.legend()
fig.tight_layout()

# %% [markdown]
# The gradients are identical whatever the segments. The price is time: every segment's forward runs
# a second time during backward, about one more forward pass in all.

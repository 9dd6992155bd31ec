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
# # 3 · One VJP versus the whole Jacobian
#
# The lecture takes a layer with a 4096-dimensional input and a 2048-dimensional output, say
# $f(x) = \max(0, W x + b)$, and writes backpropagation through it as
# $\frac{\partial L}{\partial x} = \frac{\partial f}{\partial x}^\top \frac{\partial L}{\partial f}$.
# It asks:
#
# - **P1**: how big is the Jacobian $\partial f/\partial x$?
# - **P2**: what does it look like?
#
# and then notes that in practice a minibatch of 100 examples goes through at once. This notebook
# answers both with numbers and pictures, and measures what reverse mode saves by never building the
# matrix: it computes the vector-Jacobian product (VJP) $J^\top u$ directly.

# %%
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

import tape

# %% [markdown]
# ## P1: the size
#
# One row per output, one column per input.

# %%
n_in, n_out, batch = 4096, 2048, 100
GB, MiB = 1e9, 2**20

entries = n_out * n_in
print(f"one example: {n_out} x {n_in} = {entries:,} entries = {entries * 8 / MiB:.0f} MiB in float64")

rows, columns = batch * n_out, batch * n_in
batch_entries = rows * columns
print(f"minibatch of {batch}: {rows:,} x {columns:,} = {batch_entries:,} entries")
print(f"    ≈ {batch_entries / 1e9:.1f} billion: {batch_entries * 8 / GB:.0f} GB in float64, ", end="")
print(f"{batch_entries * 4 / GB:.0f} GB in float32")

nonzero = batch * entries  # example k's outputs depend only on example k's inputs
print(f"non-zero: only the {batch} diagonal blocks, {nonzero:,} entries = {nonzero / batch_entries:.0%}")

vjp_numbers = rows + columns  # the cotangent u in, Jᵀu out
print(f"a VJP handles {vjp_numbers:,} numbers = {vjp_numbers * 8 / MiB:.1f} MiB, and never the matrix")

# %% [markdown]
# ## P2: the shape, computed
#
# `tape.jacobian(f)(x)` builds the whole matrix (entry `[i, j]` is $\partial f_i/\partial x_j$), which
# is fine for small sizes. Three small cases, with zeros left white:
#
# - an **elementwise** function (`np.tanh`): output $i$ depends only on input $i$, so $J$ is diagonal;
# - the **layer** $\max(0, Wx + b)$: $J$ is $W$ with the rows of the units that relu switched off
#   set to zero: dense rows and zero rows;
# - the same layer on a **minibatch**: $J$ has shape (batch, out, batch, in); laid out as a matrix it
#   is block-diagonal, since example $k$'s output depends only on example $k$.

# %%
rng = np.random.default_rng(1)
x = rng.standard_normal(24)
W, b = rng.standard_normal((12, 24)) / 5, 0.3 * rng.standard_normal(12)
layer = lambda x: np.maximum(x @ W.T + b, 0.0)
X = rng.standard_normal((4, 8))
W_small, b_small = rng.standard_normal((4, 8)) / 3, 0.3 * rng.standard_normal(4)
batch_layer = lambda xs: np.maximum(xs @ W_small.T + b_small, 0.0)

J_elementwise = tape.jacobian(np.tanh)(x)
J_layer = tape.jacobian(layer)(x)
J_batch = tape.jacobian(batch_layer)(X)
print("shapes:", J_elementwise.shape, J_layer.shape, J_batch.shape)

on = x @ W.T + b > 0
print("the layer's Jacobian is W with switched-off rows zeroed:", np.allclose(J_layer, on[:, None] * W))

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), width_ratios=[1, 1.9, 1.9])
pictures = {
    "tanh(x): diagonal": J_elementwise,
    f"relu(Wx + b): {np.sum(~on)} of 12 rows zero": J_layer,
    "minibatch of 4: block-diagonal": J_batch.reshape(16, 32),
}
for ax, (title, J) in zip(axes, pictures.items(), strict=True):
    limit = np.abs(J).max()
    ax.imshow(np.ma.masked_equal(J, 0.0), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set(title=title, xlabel="input j", ylabel="output i")
fig.tight_layout()


# %% [markdown]
# So for the lecture's layer the answer to P2 is: **$W$ itself, masked by relu**, and for a minibatch
# 100 copies of it on the diagonal of a matrix that is 99% zeros. Backpropagation never needs it:
# $J^\top u = W^\top (\text{mask} \odot u)$ is one matrix-vector product, which is exactly what the
# VJPs of `maximum`, `add` and `matmul` compute in turn.
#
# ## Time and memory: one VJP against building the Jacobian
#
# For layers with $n$ inputs and $n/2$ outputs, three ways to run:
#
# - the **forward** pass alone (plain numpy), for scale;
# - **one VJP**: forward on the tape plus backward with a cotangent $u$ (`tape.vjp`);
# - **through the Jacobian**: build $J$ with `tape.jacobian`, then contract $u^\top J$.
#
# Both give $J^\top u$ (checked). Time is the fastest of a few runs; memory is the peak allocated
# during the call, from `tracemalloc` (numpy reports its buffers to it). `tape.jacobian` is already
# clever here — the batch of unit cotangents stays diagonal through relu, so building $J$ costs one
# scaled copy of $W$ — yet it still has to hold $m \times n$ numbers. (The stored outputs were made with
# numpy on one BLAS thread, `OPENBLAS_NUM_THREADS=1`, so that the timings do not depend on how busy the
# machine was; memory does not depend on it.)


# %%
def best_time(run, *args, repeats=5):
    """Seconds taken by the fastest of a few calls ``run(*args)``, the least disturbed by other work."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def peak_memory(run, *args):
    """Peak bytes allocated during ``run(*args)`` (numpy's buffers included)."""
    tracemalloc.start()
    try:
        run(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def make_layer(n_in, batch=None, seed=0):
    """relu(x Wᵀ + b) with n_in → n_in // 2 units, an input x (one example or a batch), a cotangent u."""
    rng = np.random.default_rng(seed)
    n_out = n_in // 2
    weight = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
    bias = 0.1 * rng.standard_normal(n_out)
    leading = () if batch is None else (batch,)
    x, u = rng.standard_normal((*leading, n_in)), rng.standard_normal((*leading, n_out))
    return (lambda x: np.maximum(x @ weight.T + bias, 0.0)), x, u


def one_vjp(f, x, u):
    _, pullback = tape.vjp(f, x)
    return pullback(u)[0]


def through_jacobian(f, x, u):
    jacobian = tape.jacobian(f)(x)
    return np.tensordot(u, jacobian, axes=u.ndim)  # uᵀJ, summing over the output axes


sizes = [64, 128, 256, 512, 1024, 2048]
methods = {"forward": lambda f, x, u: f(x), "one VJP": one_vjp, "Jacobian": through_jacobian}
results = {name: {"time": [], "memory": []} for name in methods}
for n in sizes:
    f, x, u = make_layer(n)
    assert np.allclose(one_vjp(f, x, u), through_jacobian(f, x, u))
    for name, method in methods.items():
        results[name]["time"].append(best_time(method, f, x, u))
        results[name]["memory"].append(peak_memory(method, f, x, u))

print(f"{'n':>5} {'m':>5} | {'forward':>9} {'one VJP':>9} {'Jacobian':>9} | {'VJP memory':>10} J memory")
for k, n in enumerate(sizes):
    times = " ".join(f"{results[name]['time'][k] * 1e3:7.3f}ms" for name in methods)
    vjp_memory, jacobian_memory = results["one VJP"]["memory"][k], results["Jacobian"]["memory"][k]
    print(f"{n:>5} {n // 2:>5} | {times} | {vjp_memory / 1e3:7.1f} kB {jacobian_memory / 1e6:6.2f} MB")

# %%
styles = {"forward": "k:", "one VJP": "C0o-", "Jacobian": "C1s-"}
fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(11, 4))
for name in results:
    ax_time.loglog(sizes, results[name]["time"], styles[name], label=name)
ax_time.set(xlabel="inputs n (outputs n/2)", ylabel="seconds", title="time")
for name in ("one VJP", "Jacobian"):
    ax_memory.loglog(sizes, results[name]["memory"], styles[name], label=name)
sizes_array = np.array(sizes)
ax_memory.loglog(sizes_array, 8 * sizes_array * sizes_array / 2, "k--", lw=0.8, label="8 bytes $m n$")
ax_memory.set(xlabel="inputs n (outputs n/2)", ylabel="peak bytes allocated", title="memory")
for ax in (ax_time, ax_memory):
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.legend()
fig.tight_layout()

# %% [markdown]
# The VJP's memory grows like $m + n$ (its cotangents), the Jacobian's like $m \times n$: a factor of
# about a thousand apart at $n = 2048$, and the gap grows with $n$. Time tells the same story less
# loudly for one layer, because the forward and the VJP also touch every entry of $W$ once; the VJP
# stays within a small factor of the forward pass, as the cheap-gradient principle says.
#
# ## The minibatch: the Jacobian grows with the square of the batch
#
# With $B$ examples the Jacobian has $B^2 m n$ entries, of which only $B\,m n$ can be non-zero; a VJP
# handles $B(m + n)$ numbers. Here $n = 16$ inputs and $m = 8$ outputs, up to the lecture's $B = 100$.

# %%
batches = [1, 3, 10, 30, 100]
batch_memory = {"one VJP": [], "Jacobian": []}
for size in batches:
    f, xs, us = make_layer(16, batch=size)
    assert np.allclose(one_vjp(f, xs, us), through_jacobian(f, xs, us))
    for name in batch_memory:
        batch_memory[name].append(peak_memory(methods[name], f, xs, us))

fig, ax = plt.subplots(figsize=(5.5, 4))
for name in batch_memory:
    ax.loglog(batches, batch_memory[name], styles[name], label=name)
batches_array = np.array(batches)
ax.loglog(batches_array, 8 * batches_array**2 * 8 * 16, "k--", lw=0.8, label="8 bytes $B^2 m n$")
ax.set(xlabel="batch size B", ylabel="peak bytes allocated", title="16 → 8 layer, B examples at once")
ax.set_xticks(batches, [str(size) for size in batches])
ax.minorticks_off()
ax.legend()
fig.tight_layout()

# %% [markdown]
# At the lecture's size the same curves would reach the 671 GB computed above for the Jacobian,
# against a few MiB for the VJP. `python -m benchmarks` measures this comparison up to the lecture's
# 4096 → 2048 layer and minibatch of 100, side by side with PyTorch, JAX, HIPS autograd and MyGrad when
# they are installed.

# %% [markdown]
# ## Three ways to hold the minibatch Jacobian
#
# Sometimes the Jacobian itself is wanted: its blocks, its diagonal, or products with many vectors
# (a linear solve, a few singular values). `tape.jacobian_operator(f, X)` records `f` once and returns
# $J$ as a matrix you multiply by: `J @ v` pushes $v$ forward through the records, `u @ J` sweeps back,
# and nothing of size $m \times n$ is built unless asked. It also reads the tape: from the ops between
# input and output it finds that relu's Jacobian is diagonal, that $X W^\top$ only mixes the feature
# axis, so the batch axis stays apart (block diagonal), and that the whole layer is a chain of
# elementwise ops and one product with a constant matrix:
# $J = \operatorname{diag}(\text{mask}) \cdot (I_B \otimes W)$. For the lecture's minibatch that gives
# three representations:
#
# | representation | size for $B = 100$, $4096 \to 2048$, float64 |
# |---|---|
# | dense $J$, $204{,}800 \times 409{,}600$ | 625 GiB: `to_dense()` refuses |
# | 100 diagonal blocks of $2048 \times 4096$ (`J.blocks()`) | 6.25 GiB, one 64 MiB block at a time |
# | the operator $\operatorname{diag}(\text{mask}) \cdot (I \otimes W)$ | one $W$ (64 MiB) and the mask |
#
# Here at the lecture's size (recording costs one forward pass):

# %%
n_in, n_out, batch = 4096, 2048, 100
rng = np.random.default_rng(0)
W_big = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
b_big = 0.1 * rng.standard_normal(n_out)
X_big = rng.standard_normal((batch, n_in))
lecture_layer = lambda xs: np.maximum(xs @ W_big.T + b_big, 0.0)

J = tape.jacobian_operator(lecture_layer, X_big)
print(J)
try:
    J.to_dense()
except MemoryError as refusal:
    print("\nto_dense():", str(refusal).split(": ", 1)[1])

# %% [markdown]
# Products cost about one forward pass each, and agree with the formula written by hand,
# $J v = \text{mask} \odot (v W^\top)$ and $u J = (\text{mask} \odot u) W$:

# %%
v = rng.standard_normal(X_big.shape)
u = rng.standard_normal((batch, n_out))
mask = X_big @ W_big.T + b_big > 0
for name, run in {
    "forward": lambda: lecture_layer(X_big),
    "J @ v": lambda: J @ v,
    "u @ J": lambda: u @ J,
}.items():
    print(f"{name:>8}: {best_time(run) * 1e3:6.1f} ms")
print("J @ v correct:", np.allclose(J @ v, mask * (v @ W_big.T)))
print("u @ J correct:", np.allclose(u @ J, (mask * u) @ W_big))
block = J.block(7)
print("block 7 is mask[7] · W:", block.shape, np.array_equal(block, mask[7][:, None] * W_big))

# %% [markdown]
# The memory of the three, against the batch size: the dense matrix grows with $B^2$, the blocks with
# $B$, the operator hardly at all (the mask adds $m$ numbers per sample to one $W$). The numbers come
# from the operator itself (`J.memory`), recorded on a small layer, $64 \to 32$, at each batch size.
# A batch-norm-like program, which mixes samples, gets no block structure: the tape shows it.

# %%
batch_sizes = [1, 4, 16, 100, 400]
memory = {"dense": [], "blocks": [], "structured": []}
W_small_layer = rng.standard_normal((32, 64))
for size in batch_sizes:
    operator = tape.jacobian_operator(
        lambda xs: np.maximum(xs @ W_small_layer.T, 0.0), rng.standard_normal((size, 64))
    )
    for key in memory:
        memory[key].append(getattr(operator.memory, key))

fig, ax = plt.subplots(figsize=(5.5, 4))
labels = {"dense": "dense $J$", "blocks": "diagonal blocks", "structured": "diag(mask)·(I⊗W)"}
for key, style in zip(memory, ("C1s-", "C2o-", "C0D-"), strict=True):
    ax.loglog(batch_sizes, memory[key], style, label=labels[key])
ax.set(xlabel="batch size B", ylabel="bytes", title="64 → 32 layer: memory of each representation")
ax.legend()
fig.tight_layout()

print(tape.jacobian_operator(lambda xs: xs - xs.mean(axis=0), rng.standard_normal((4, 3))))

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
# # 6 · The tape is a program
#
# Every op called on a tensor costs Python time twice: once in the forward pass, to check its arguments,
# wrap its result and write its record, and once in backward, when the sweep finds the record, calls its
# VJP and adds the gradient to the right place. On small arrays this bookkeeping costs more than the
# arithmetic, and it is the same on every call.
#
# The lecture's `ComputationalGraph` runs `forward()` on each gate in topological order and `backward()`
# in the reverse order. When the code takes no decision on the values it computes, that order never
# changes: once recorded, the tape is a **straight-line program**. `tape.compile(fn)` records `fn`'s tape
# on the first call with each signature, writes it out as plain Python over arrays (a forward and a
# backward) and runs that on later calls.

# %%
import time
import timeit

import numpy as np

import tape
import tape.nn as nn

rng = np.random.default_rng(0)
x = rng.standard_normal((16, 4))  # a minibatch of 16 points with 4 features
labels = rng.integers(0, 3, size=16)  # 3 classes

W1 = tape.tensor(rng.standard_normal((4, 8)) * 0.5, requires_grad=True)
b1 = tape.tensor(np.zeros(8), requires_grad=True)
W2 = tape.tensor(rng.standard_normal((8, 3)) * 0.5, requires_grad=True)
b2 = tape.tensor(np.zeros(3), requires_grad=True)
parameters = [W1, b1, W2, b2]


def softmax_loss(scores, labels):
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(log_probabilities[np.arange(len(labels)), labels])


def network_loss(x, labels):
    """The lecture's two-layer network with a softmax loss; its parameters come from the enclosing scope."""
    hidden = np.maximum(x @ W1 + b1, 0)  # ReLU
    return softmax_loss(hidden @ W2 + b2, labels)


# %% [markdown]
# ## 1 · The recorded program
#
# `tape.compile(network_loss)` is a function like `network_loss`. `compiled.program(x, labels)` returns the
# program that arguments of this signature run (recording it if needed), and `print` lists it: one line per
# op, its output's dtype and shape, and its arguments, with `v0, v1, ...` naming the values. The inputs are
# the two arguments, `x` and `labels` (`v0`, `v1`), followed by the four parameters the function read from
# outside (`v2, v4, v7, v9`: `W1, b1, W2, b2`).

# %%
compiled_loss = tape.compile(network_loss)
program = compiled_loss.program(x, labels)
print(program)

# %% [markdown]
# These are the lecture's gates in the order the forward pass met them. The generated forward calls each
# op's own numpy code on plain arrays: no tensor, no record. When the call will be differentiated, it keeps
# in `stash` the values the backward reads.

# %%
print(program.forward_source)

# %% [markdown]
# The backward is the lecture's backward pass written out: each gate's VJP, latest gate first, its
# incoming gradient `h` times the local gradient, with the contributions of a value used twice (`v10` and
# `v12` feed two gates each) summed. `FIT` gives each gradient its input's shape as the eager sweep does
# (summing over the rows a bias was broadcast to). It returns one gradient per input; `x` and `labels` get
# none.

# %%
print(program.backward_source)

# %% [markdown]
# ## 2 · The same numbers, to the bit
#
# With JIT off (`tape.jit.disabled()`, or `TAPE_JIT=0`) the program runs the same numpy code and the same
# VJPs in the same order as the eager tape, so the loss and all four gradients are identical, not merely
# close. With JIT on, the runs of elementwise steps (a bias added, broadcast over the rows, then the
# activation; the sum at the end of the loss) are fused kernels (section 4), which round in the last bits as
# numba's arithmetic does and sum a bias's gradient in their own order:


# %%
def loss_and_gradients(loss_fn):
    for parameter in parameters:
        parameter.grad = None
    loss = loss_fn(x, labels)
    loss.backward()
    return loss, [parameter.grad.copy() for parameter in parameters]


eager_value, eager_gradients = loss_and_gradients(network_loss)
with tape.jit.disabled():
    unfused_value, unfused_gradients = loss_and_gradients(compiled_loss)
np.testing.assert_array_equal(unfused_value.numpy(), eager_value.numpy())
for eager_gradient, unfused_gradient in zip(eager_gradients, unfused_gradients, strict=True):
    np.testing.assert_array_equal(unfused_gradient, eager_gradient)
fused_value, fused_gradients = loss_and_gradients(compiled_loss)
pairs = zip(fused_gradients, eager_gradients, strict=True)
largest = max(float(np.max(np.abs(f - e) / np.maximum(np.abs(e), 1e-30))) for f, e in pairs)
print("eager:                  ", eager_value)
print("compiled, JIT off:      ", unfused_value, "(all four gradients bit-for-bit equal)")
print("compiled, fused kernels:", fused_value, f"(largest relative difference in a gradient: {largest:.1e})")

# %% [markdown]
# The whole compiled call is one op on the tape (`op=compiled(network_loss)`), so `.backward()`,
# `tape.grad` and optimizers work on its result as on any other.
#
# ## 3 · Training with the compiled loss
#
# `W1, b1, W2, b2` are not arguments: `network_loss` reads them from the enclosing scope. The program keeps
# them as inputs and reads them afresh on every call, so an optimizer that updates them in place is seen at
# the next step. Each step draws a new minibatch; same shapes, so no new recording.

# %%
optimizer = nn.optim.SGD(parameters, lr=0.5)
centers = rng.standard_normal((3, 4)) * 2  # one center per class: a problem the network can learn
losses = []
for step in range(1, 61):
    batch_labels = rng.integers(0, 3, size=16)
    batch = centers[batch_labels] + rng.standard_normal((16, 4))
    optimizer.zero_grad()
    loss = compiled_loss(batch, batch_labels)
    loss.backward()
    optimizer.step()
    losses.append(float(loss.numpy()))
    if step % 15 == 0:
        print(f"steps {step - 14:2}-{step:2}: mean loss {np.mean(losses[-15:]):.4f}")
print("recordings:", compiled_loss.recordings)
np.testing.assert_array_equal(
    compiled_loss(batch, batch_labels).numpy(), network_loss(batch, batch_labels).numpy()
)
print("after training, compiled and eager still agree on the updated parameters")

# %% [markdown]
# ## 4 · Speed before and after
#
# The network, eager and compiled, each timed as the median of several repeats: the forward pass alone
# (recorded, as in training), then forward and backward.


# %%
def report(loss_fn, compiled_fn, *args, number, repeat=11):
    """Print the median times of ``loss_fn(*args)`` eager and compiled, and their ratios (eager / compiled).

    The four measurements take turns, so that a slower moment of a busy machine falls on all of them."""
    works = {}
    for name, fn in [("eager", loss_fn), ("compiled", compiled_fn)]:
        fn(*args).backward()  # once untimed: the first call loads the numba kernels, or records
        works[name, "forward"] = lambda fn=fn: fn(*args)
        works[name, "both"] = lambda fn=fn: fn(*args).backward()
    times = {key: [] for key in works}
    for _ in range(repeat):
        for key, work in works.items():
            times[key].append(timeit.timeit(work, number=number) / number)
    median = {key: np.median(seconds) for key, seconds in times.items()}
    for name in ["eager", "compiled"]:
        forward, both = median[name, "forward"], median[name, "both"]
        print(f"{name:>8}: forward {forward * 1e6:6.0f} µs, forward + backward {both * 1e6:6.0f} µs")
    forward_ratio = median["eager", "forward"] / median["compiled", "forward"]
    both_ratio = median["eager", "both"] / median["compiled", "both"]
    print(f"   ratio: forward {forward_ratio:6.1f}x,  forward + backward {both_ratio:6.1f}x")


report(network_loss, compiled_loss, x, labels, number=100)

# %% [markdown]
# Compiled, the forward pass loses most of its bookkeeping. The backward gains less: it calls the same
# VJPs as the eager sweep, and on this network the VJPs themselves (the scatter that undoes the label
# indexing, the sums that unbroadcast the biases' gradients) are much of its time.
#
# A chain of small elementwise ops, 200 of them on 64 numbers, is nearly all bookkeeping. The first call
# also pays for recording the tape and generating its code, once per signature.


# %%
def chain(h):
    for _ in range(100):
        h = np.sin(h) * 0.9  # 2 ops per turn
    return np.sum(h * h)


h0 = tape.tensor(rng.standard_normal(64), requires_grad=True)
compiled_chain = tape.compile(chain)
started = time.perf_counter()
compiled_chain(h0).backward()
first_call = time.perf_counter() - started
steps = len(compiled_chain.program(h0).steps)
print(f"first call, recording {steps} steps: {first_call * 1e3:.0f} ms")
report(chain, compiled_chain, h0, number=20)

# %% [markdown]
# The chain runs this fast because its 200 steps are not 200 calls: consecutive elementwise steps of one
# shape become **one numba kernel** for the forward and one for the backward, generated from the scalar
# formulas kept beside each op (`sin`: forward `np.sin(x)`, VJP `g * np.cos(x)`). The program's listing
# marks the fused steps; `kernel_sources` holds the generated code. The forward kernel reads `h` once and
# writes only the values used outside the run; the backward kernel recomputes them element by element and
# runs the VJPs in reverse, so no intermediate array is ever stored. Fused kernels round in the last bits
# as numba's arithmetic does; with JIT off (`TAPE_JIT=0`, or `tape.jit.use_jit(False)`) the program calls
# each op's own numpy code instead, and gives the eager numbers to the bit.

# %%
chain_program = compiled_chain.program(h0)
print("\n".join(str(chain_program).splitlines()[:5]), "\n  ...")
if chain_program.kernel_sources:
    print(chain_program.kernel_sources[0][:700], "...")
else:
    print("(JIT is off here: the program calls each op's own numpy code, and fuses nothing)")

# %% [markdown]
# ## 5 · What a trace cannot see
#
# A recording sees ops, not Python. An `if` on a tensor's value would be decided once, while recording, and
# replayed with that outcome whatever the new values. So while recording, everything a replay could not
# repeat raises `tape.TraceError`: an `if` or `float(t)` on a tensor, a write into an argument or into a
# tensor from outside the function, random numbers from numpy's global generator. (Writes into values the
# function made itself, `y = x * 2; y[0] = 0`, are replayed: `y` stands for its new value from then on.)


# %%
def square_or_absolute(x):
    if np.sum(x) > 0:
        return np.sum(x**2)
    return np.sum(np.abs(x))


try:
    tape.compile(square_or_absolute)(h0)
except tape.TraceError as error:
    print(f"TraceError: {error}")

# %% [markdown]
# The fix the message suggests: keep the decision on tensors. `np.where` computes both branches and picks
# one by value, so it is an op like any other, and the replay decides again on every call:


# %%
def square_or_absolute_where(x):
    return np.where(np.sum(x) > 0, np.sum(x**2), np.sum(np.abs(x)))


compiled_where = tape.compile(square_or_absolute_where)
for values in (h0, -h0):
    compiled_value = float(compiled_where(values).numpy())
    print(f"compiled {compiled_value:8.4f}   eager {float(square_or_absolute(values).numpy()):8.4f}")

# %% [markdown]
# A decision on something that is not a tensor (a mode, a size) can stay in Python: mark that argument
# static with `tape.compile(fn, static_argnums=...)`, and each new value records a program of its own.
# Python numbers passed as arguments are always treated so: they are part of the signature, with the
# arrays' shapes and dtypes. `compiled.recordings` counts the recordings; up to `cache_size` signatures
# (8 by default) are kept.


# %%
def penalty(x, norm):
    if norm == "l1":
        return np.sum(np.abs(x))
    return np.sum(x**2)


def power_sum(x, p):
    return np.sum(np.abs(x) ** p)


compiled_penalty = tape.compile(penalty, static_argnums=1)
for norm in ["l1", "l2", "l1"]:
    compiled_penalty(h0, norm)
print("penalty with norm l1, l2, l1: recordings =", compiled_penalty.recordings)

compiled_power = tape.compile(power_sum)
for p in [2, 2, 3, 2]:
    compiled_power(h0, p)
print("power_sum with p = 2, 2, 3, 2: recordings =", compiled_power.recordings)
compiled_power(h0[:10], 2)
print("and with 10 numbers instead of 64: recordings =", compiled_power.recordings)

# %% [markdown]
# A tensor's values, by contrast, are never part of the signature: that is what makes one recording serve
# every minibatch. Random numbers are the one kind of value a replay makes itself: `tape.nn`'s dropout
# masks are drawn afresh on every call. Numbers a function draws from its own `numpy.random.Generator` are
# drawn once, while recording; pass them as arguments instead.

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
# # 7 · Seeing inside the tape: hooks, anomaly mode, the graph, the profiler
#
# The lecture teaches backpropagation by looking at the graph and at the gradient each gate hands back.
# This notebook does the same on a real computation, the lecture's two-layer network with a softmax
# loss, with the tools a debugging session needs:
#
# 1. **hooks** that show (or change) the gradient arriving at each gate, on tensors and on `tape.nn` modules;
# 2. **anomaly mode**, which finds the op that turned a gradient into `nan`, and the line that called it;
# 3. **a drawing of the graph** that was recorded, with the size of the gradient that reached each node;
# 4. **a profile** of a training step: where the time goes, forward and backward.

# %%
import os
import tempfile

import matplotlib.pyplot as plt
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


def softmax_loss(scores, labels):
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(log_probabilities[np.arange(len(labels)), labels])


# %% [markdown]
# ## 1 · Hooks: the gradient at each gate
#
# `t.register_hook(fn)` calls `fn(gradient)` when backward computes `t`'s gradient: here, to print the norm
# of what flows back through each gate of the network. `retain_grad()` keeps a gate's gradient on its
# `.grad` after backward (by default only the leaves keep theirs).

# %%
hidden_in = x @ W1 + b1
hidden = np.maximum(hidden_in, 0)  # ReLU
scores = hidden @ W2 + b2
loss = softmax_loss(scores, labels)

arrivals = []
for name, gate in [("scores", scores), ("hidden", hidden), ("hidden_in", hidden_in)]:
    gate.register_hook(lambda g, name=name: arrivals.append((name, np.linalg.norm(g))))
hidden.retain_grad()
loss.backward()

for name, norm in arrivals:
    print(f"gradient reaching {name:9s} |g| = {norm:.4f}")
print("hidden.grad kept by retain_grad:", hidden.grad.shape)
print("dL/dW1 from the tape:", W1.grad.shape)

# %% [markdown]
# The gradients arrive in reverse order of the forward pass: the scores first, the first layer last, as in
# the lecture's backward pass. The ReLU gate passes the gradient only where its input was positive, which
# we can check against the retained gradient of `hidden`:

# %%
relu_passes = np.where(hidden_in.numpy() > 0, hidden.grad, 0.0)
np.testing.assert_allclose(np.linalg.norm(relu_passes), arrivals[2][1])
print("the ReLU gate's backward, checked: |g at hidden_in| =", round(float(arrivals[2][1]), 4))

# %% [markdown]
# A hook may also **change** the gradient: returning a value replaces it. Clipping the gradient at one gate
# changes what reaches every gate before it:

# %%
for tensor in (W1, b1, W2, b2):
    tensor.grad = None
scores = np.maximum(x @ W1 + b1, 0) @ W2 + b2
scores.register_hook(lambda g: np.clip(g, -0.01, 0.01))
softmax_loss(scores, labels).backward()
print("|dL/dW1| with the scores' gradient clipped:", round(float(np.linalg.norm(W1.grad)), 5))

# %% [markdown]
# Modules have hooks too, as in torch: a forward hook sees each layer's output, a full backward hook the
# gradients with respect to its inputs and outputs.

# %%
model = nn.Sequential(nn.Linear(4, 8, rng=rng), nn.ReLU(), nn.Linear(8, 3, rng=rng))
for index, layer in enumerate(model):
    layer.register_forward_hook(
        lambda module, args, output, index=index: print(
            f"forward  {index} {type(module).__name__:6s} output mean {float(np.mean(output.numpy())):+.3f}"
        )
    )
    layer.register_full_backward_hook(
        lambda module, grad_input, grad_output, index=index: print(
            f"backward {index} {type(module).__name__:6s} |grad_output| {np.linalg.norm(grad_output[0]):.4f}"
        )
    )
criterion = nn.CrossEntropyLoss()
criterion(model(x), labels).backward()

# %% [markdown]
# ## 2 · Anomaly mode: who made the `nan`?
#
# A `log` of a ReLU's output is a classic way to get an infinite gradient: wherever the ReLU gave 0. Outside
# anomaly mode the gradient just fills with `inf` and `nan`, and numpy's warning points inside tape. Inside
# `tape.detect_anomaly()`, backward stops at the first op whose gradient turned non-finite, and says where
# that op was called.

# %%
with np.errstate(all="ignore"):
    h = np.maximum(x @ W1 + b1, 0)
    bad_loss = np.sum(np.log(h) * 0.0 + h)
    bad_loss.backward()
print("outside anomaly mode, dL/dW1 has non-finite entries:", not np.all(np.isfinite(W1.grad)))

# %%
W1.grad = None
with tape.detect_anomaly(), np.errstate(all="ignore"):
    h = np.maximum(x @ W1 + b1, 0)
    bad_loss = np.sum(np.log(h) * 0.0 + h)
    try:
        bad_loss.backward()
    except FloatingPointError as error:
        message = str(error)
print(message.split("\nForward traceback")[0])

# %% [markdown]
# The message names the op (`log`), its argument's shape, and the line of this notebook that called it.

# %% [markdown]
# ## 3 · The graph that was recorded
#
# `tape.graph(loss)` collects the records behind a tensor: the lecture's computational graph, drawn from
# the code that ran. Names given for the leaves appear in the drawing; with `gradients=True`, the next
# backward writes the norm of the gradient that reached each node into the graph.

# %%
for tensor in (W1, b1, W2, b2):
    tensor.grad = None
scores = np.maximum(x @ W1 + b1, 0) @ W2 + b2
loss = softmax_loss(scores, labels)
graph = tape.graph(loss, names={"W1": W1, "b1": b1, "W2": W2, "b2": b2}, gradients=True)
loss.backward()
print(graph)

# %%
graph.draw()
plt.show()

# %% [markdown]
# `graph.to_dot()` gives the same graph as Graphviz text, and in Jupyter the graph shows itself as an SVG
# when the `graphviz` package and its `dot` program are installed (`pip install "tape[graph]"`).

# %%
print(graph.to_dot().splitlines()[0], "...", len(graph.to_dot().splitlines()), "lines of DOT")

# %% [markdown]
# ## 4 · Where the time goes: a profile of training steps
#
# `tape.profile()` counts every op's calls and times its forward and its backward. A few training steps of
# a wider network:

# %%
wide = nn.Sequential(
    nn.Linear(4, 256, rng=rng), nn.ReLU(), nn.Linear(256, 256, rng=rng), nn.ReLU(), nn.Linear(256, 3, rng=rng)
)
optimizer = nn.optim.SGD(wide.parameters(), lr=0.1)
batch = rng.standard_normal((512, 4))
batch_labels = rng.integers(0, 3, size=512)

with tape.profile() as prof:
    for _ in range(20):
        optimizer.zero_grad()
        criterion(wide(batch), batch_labels).backward()
        optimizer.step()
print(prof.table(sort_by="total"))

# %% [markdown]
# The matrix products of the linear layers take most of the time, forward and backward, as expected. The
# profile also writes a trace that Chrome's `chrome://tracing` and [Perfetto](https://ui.perfetto.dev) open,
# with every op call on a timeline:

# %%
trace_path = os.path.join(tempfile.mkdtemp(), "training_steps.json")
prof.export_chrome_trace(trace_path)
print("trace written:", os.path.getsize(trace_path) > 0)

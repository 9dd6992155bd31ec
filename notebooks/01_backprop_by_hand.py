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
# # 1 · Backpropagation by hand, then on the tape
#
# The lecture (*Redes Neurais — Propagação Retrógrada III*) builds backpropagation out of **gates**.
# A gate's `forward` computes its output and keeps what it will need later; its `backward` turns
# the gradient of the loss with respect to its output into gradients with respect to its inputs (one
# link of the chain rule). A graph runs the forward passes in topological order and the backward
# passes in the reverse order.
#
# This notebook does exactly that by hand for a tiny graph, then runs the same computation on tape,
# where the records on the tape play the part of the gates.

# %%
import matplotlib.pyplot as plt
import numpy as np

import tape

# %% [markdown]
# ## A scalar graph, by hand
#
# $f(x, y, z, w) = (x y + z)\, w$ at $x=-2,\ y=5,\ z=-4,\ w=3$. Two kinds of gate: the lecture's
# `MultiplyGate`, written exactly as on the slide, and an `AddGate`.


# %%
class MultiplyGate:
    def forward(self, x, y):
        z = x * y
        self.x = x  # must keep these around!
        self.y = y
        return z

    def backward(self, dz):
        dx = self.y * dz  # [dz/dx * dL/dz]
        dy = self.x * dz  # [dz/dy * dL/dz]
        return [dx, dy]


class AddGate:
    def forward(self, x, y):
        return x + y

    def backward(self, dz):
        return [dz, dz]  # an add gate hands its gradient to both inputs unchanged


# %% [markdown]
# The lecture's `ComputationalGraph`: nodes listed so that every value is made before it is used
# (that list *is* `nodes_topologically_sorted()`), forward in that order, backward in reverse.


# %%
class ComputationalGraph:
    """Gates wired by the names of their values: each node is (gate, input names, output name)."""

    def __init__(self, nodes):
        self.nodes = nodes

    def nodes_topologically_sorted(self):
        return self.nodes

    def forward(self, inputs):
        self.values = dict(inputs)
        for gate, names_in, name_out in self.nodes_topologically_sorted():
            self.values[name_out] = gate.forward(*(self.values[name] for name in names_in))
            print(f"forward  {name_out} = {type(gate).__name__}{names_in} = {self.values[name_out]}")
        return self.values[name_out]  # the final gate in the graph outputs the result

    def backward(self):
        self.grads = {self.nodes[-1][2]: 1.0}  # df/df = 1
        for gate, names_in, name_out in reversed(self.nodes_topologically_sorted()):
            for name, grad in zip(names_in, gate.backward(self.grads[name_out]), strict=True):
                # a value used by several gates collects the sum of their gradients
                self.grads[name] = self.grads.get(name, 0.0) + grad
            print(f"backward df/d{name_out} = {self.grads[name_out]} -> {names_in}")
        return self.grads


graph = ComputationalGraph(
    [
        (MultiplyGate(), ("x", "y"), "q"),
        (AddGate(), ("q", "z"), "s"),
        (MultiplyGate(), ("s", "w"), "f"),
    ]
)
inputs = {"x": -2.0, "y": 5.0, "z": -4.0, "w": 3.0}
f = graph.forward(inputs)
grads = graph.backward()
by_hand = {name: grads[name] for name in inputs}
by_hand


# %% [markdown]
# The chain rule written out agrees: $\partial f/\partial x = w y = 15$, $\partial f/\partial y = w x = -6$,
# $\partial f/\partial z = w = 3$, $\partial f/\partial w = x y + z = -14$. The usual picture: each
# value above its edge (green), its gradient below (red).


# %%
def draw(graph):
    """The graph with each value (green, above its edge) and the gradient of f with respect to it (red)"""
    place = {"x": (0, 3), "y": (0, 2), "z": (0, 1), "w": (0, 0), "q": (1.6, 2.5), "s": (3.2, 1.6)}
    place["f"], end = (4.8, 0.8), (6.2, 0.8)
    symbol = {MultiplyGate: "*", AddGate: "+"}
    _, ax = plt.subplots(figsize=(7.5, 3.2))
    edges = [(name, place[name], place[out]) for _, names_in, out in graph.nodes for name in names_in]
    for name, start, stop in [*edges, ("f", place["f"], end)]:
        ax.annotate("", stop, start, arrowprops={"arrowstyle": "->", "shrinkB": 14, "color": "grey"})
        middle = ((start[0] + stop[0]) / 2, (start[1] + stop[1]) / 2)
        ax.text(*middle, f"{graph.values[name]:g}", color="green", ha="center", va="bottom")
        ax.text(*middle, f"{graph.grads[name]:g}", color="red", ha="center", va="top")
    for gate, _, out in graph.nodes:
        ax.add_patch(plt.Circle(place[out], 0.25, color="lightsteelblue"))
        ax.text(*place[out], symbol[type(gate)], ha="center", va="center", fontsize=14)
    for name in "xyzw":
        ax.text(place[name][0] - 0.15, place[name][1], name, ha="right", va="center", fontsize=13)
    ax.text(end[0] + 0.1, end[1], "f", va="center", fontsize=13)
    ax.set(xlim=(-0.6, 6.6), ylim=(-0.5, 3.4), aspect="equal")
    ax.axis("off")


draw(graph)

# %% [markdown]
# ## The same computation on the tape
#
# A tensor created with `requires_grad=True` makes every operation on it append a **record** to the
# tape: the op, links to the records (or leaves) its inputs came from, and the values its VJP needs
# (the gate's `self.x`). Records are numbered as they are made, so the tape's order is already a
# topological order: `nodes_topologically_sorted()` comes for free.

# %%
x = tape.tensor(-2.0, requires_grad=True)
y = tape.tensor(5.0, requires_grad=True)
z = tape.tensor(-4.0, requires_grad=True)
w = tape.tensor(3.0, requires_grad=True)
f = (x * y + z) * w
f


# %% [markdown]
# There is no public function that lists a tape, but the links are there: `tensor.record` is the record
# that made a tensor and `record.parents` its inputs, each a record or a leaf tensor. Walking back from
# `f` and sorting by position lists the tape.


# %%
def records_of(result):
    """Every record that ``result`` depends on, in tape order (a topological order)."""
    found, stack = {}, [result.record]
    while stack:
        record = stack.pop()
        if id(record) not in found:
            found[id(record)] = record
            stack += [node for _, node, _ in record.parents if isinstance(node, tape.Record)]
    return sorted(found.values(), key=lambda record: record.position)


def show_tape(result, leaves):
    names = {id(tensor): name for name, tensor in leaves.items()}
    for record in records_of(result):
        parents = [
            f"#{node.position}" if isinstance(node, tape.Record) else names[id(node)]
            for _, node, _ in record.parents
        ]
        inputs = ", ".join(parents)
        print(f"#{record.position:<4} {record.op.name:<12} inputs {inputs:<9} out {record.out}")


show_tape(f, {"x": x, "y": y, "z": z, "w": w})

# %% [markdown]
# `backward()` replays these records from the last one to the first, handing each VJP the gradient of
# its output, and leaves the gradients of the leaves in `.grad`: the same numbers as by hand.

# %%
f.backward()
on_tape = {"x": x.grad, "y": y.grad, "z": z.grad, "w": w.grad}
print(on_tape)
assert all(on_tape[name] == by_hand[name] for name in inputs)
print(f.record)  # what the records saved is freed once backward used it (unless retain_graph=True)

# %% [markdown]
# ## The lecture's gate, plugged into tape
#
# `tape.gate` turns a class with `forward` and `backward` into an operation on tensors. Each call makes
# a new instance, so the `self.x` kept by one call belongs to that call's record. The gates above work
# unchanged.

# %%
multiply = tape.gate(MultiplyGate)
add = tape.gate(AddGate)

x, y, z, w = (tape.tensor(value, requires_grad=True) for value in inputs.values())
f = multiply(add(multiply(x, y), z), w)
show_tape(f, {"x": x, "y": y, "z": z, "w": w})
f.backward()
print({"x": x.grad, "y": y.grad, "z": z.grad, "w": w.grad})


# %% [markdown]
# ## Vectors and matrices: the Jacobian is never built
#
# For $z = W x$ with $W$ of shape $3 \times 4$ and a loss $L(z)$, the chain rule
# $\partial L/\partial W = (\partial z/\partial W)^\top \partial L/\partial z$ involves a Jacobian
# $\partial z/\partial W$ of shape $3 \times (3 \times 4)$, mostly zeros, since $z_i$ depends only on
# row $i$ of $W$. Contracting it with $\partial L/\partial z$ leaves an **outer product**,
# $\partial L/\partial W_{ij} = \partial L/\partial z_i \; x_j$, which a gate can write directly:


# %%
class MatVecGate:
    def forward(self, weights, x):
        self.weights = weights  # must keep these around!
        self.x = x
        return weights @ x

    def backward(self, dz):
        dweights = np.outer(dz, self.x)  # dL/dW[i, j] = dL/dz[i] * x[j]
        dx = self.weights.T @ dz  # dL/dx = Wᵀ dL/dz
        return [dweights, dx]


matvec = tape.gate(MatVecGate)
rng = np.random.default_rng(0)
W = tape.tensor(rng.standard_normal((3, 4)), requires_grad=True)
x = tape.tensor(rng.standard_normal(4), requires_grad=True)
z = matvec(W, x)
loss = np.sum(z**2) / 2  # so dL/dz = z
loss.backward()
print(np.allclose(W.grad, np.outer(z.numpy(), x.numpy())), np.allclose(x.grad, W.numpy().T @ z.numpy()))

# %% [markdown]
# tape's own `@` does the same, without the gate. To see what was avoided, `tape.jacobian` builds
# $\partial z/\partial W$ explicitly (shape `(3, 3, 4)`): 36 entries of which 12 are non-zero, and
# contracting it with $\partial L/\partial z$ gives the same outer product.

# %%
W2 = tape.tensor(W.numpy(), requires_grad=True)
x2 = tape.tensor(x.numpy(), requires_grad=True)
(np.sum((W2 @ x2) ** 2) / 2).backward()
print("same gradients with @:", np.allclose(W2.grad, W.grad), np.allclose(x2.grad, x.grad))

dz_dw = tape.jacobian(lambda weights: weights @ x.numpy())(W.numpy())
print("Jacobian shape", dz_dw.shape, "non-zero entries", np.count_nonzero(dz_dw), "of", dz_dw.size)
contracted = np.einsum("i,ijk->jk", z.numpy(), dz_dw)
print("contracted with dL/dz equals the outer product:", np.allclose(contracted, W.grad))

fig, axes = plt.subplots(1, 2, figsize=(9, 2.4), width_ratios=[3, 1.2])
for ax, matrix in zip(axes, [dz_dw.reshape(3, 12), W.grad], strict=True):
    limit = np.abs(matrix).max()
    ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)  # white is zero
axes[0].set(title=r"dz/dW as $3 \times (3 \cdot 4)$: block-diagonal", xlabel="entry of W", ylabel="z_i")
axes[1].set(title="dL/dW = outer(dL/dz, x)", xlabel="j", ylabel="i")
fig.tight_layout()

# %% [markdown]
# ## Checking gradients against finite differences
#
# `tape.gradcheck(f, *inputs)` compares every VJP with central finite differences (in float64) and
# checks the identity $\langle u, J v\rangle = \langle J^\top u, v\rangle$ for random $u, v$. It
# returns `True`, or raises `tape.GradcheckError` saying where the gradients disagree.

# %%
scalar_graph = lambda x, y, z, w: multiply(add(multiply(x, y), z), w)
print(tape.gradcheck(scalar_graph, *(np.array(value) for value in inputs.values())))
print(tape.gradcheck(matvec, rng.standard_normal((3, 4)), rng.standard_normal(4)))
layer = lambda weights, x: np.tanh(weights @ x)
print(tape.gradcheck(layer, rng.standard_normal((3, 4)), rng.standard_normal(4)))


# %% [markdown]
# A gate with a classic slip (the two gradients swapped) is caught at once. (The numbers in the message
# are both multiplied by the random output cotangent $u$ the check uses.)


# %%
class SwappedMultiplyGate(MultiplyGate):
    def backward(self, dz):
        return [self.x * dz, self.y * dz]  # wrong: dx should be y * dz


try:
    tape.gradcheck(tape.gate(SwappedMultiplyGate), np.array(3.0), np.array(-4.0))
except tape.GradcheckError as error:
    print(error)

# %% [markdown]
# ## What to take away
#
# - A gate keeps what its backward needs; a record on the tape is that gate after its forward ran.
# - The tape is append-only, so its order is a topological order: backward replays it in reverse.
# - Backward hands each op the gradient of its output (a vector) and gets back the gradients of its
#   inputs: a vector-Jacobian product. The Jacobian itself is never formed — notebook 3 shows what
#   that saves.

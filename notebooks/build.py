"""Write the teaching notebooks from the cells below and execute them in place, so their outputs are stored.

The cells of each notebook are written here as Python strings, so a notebook is regenerated (and reviewed)
as source rather than as JSON::

    python notebooks/build.py                # write and execute every notebook defined here
    python notebooks/build.py 03 05          # only the notebooks whose names start with 03 or 05
    python notebooks/build.py --no-execute   # write the cells without running them

Notebooks not defined here (such as one written by hand) are left alone. The kernel is ``python3`` run by
this interpreter, with this checkout first on ``PYTHONPATH`` so that it imports the ``tape`` beside it,
and with one BLAS thread (``OPENBLAS_NUM_THREADS=1`` unless set) so that stored timings are steady.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

NOTEBOOK_DIR = Path(__file__).resolve().parent
REPOSITORY = NOTEBOOK_DIR.parent
CELL_TIMEOUT = 120  # seconds, as in tests/test_notebooks.py


def md(text: str) -> tuple[str, str]:
    """A markdown cell."""
    return ("markdown", textwrap.dedent(text).strip())


def code(text: str) -> tuple[str, str]:
    """A code cell."""
    return ("code", textwrap.dedent(text).strip())


# ---------------------------------------------------------------------------------------------------------
# 01: the lecture's computational graph, by hand and on the tape

BACKPROP_BY_HAND = [
    md(r"""
    # 1 · Backpropagation by hand, then on the tape

    The lecture (*Redes Neurais — Propagação Retrógrada III*) builds backpropagation out of **gates**.
    A gate's `forward` computes its output and keeps what it will need later; its `backward` turns
    the gradient of the loss with respect to its output into gradients with respect to its inputs (one
    link of the chain rule). A graph runs the forward passes in topological order and the backward
    passes in the reverse order.

    This notebook does exactly that by hand for a tiny graph, then runs the same computation on tape,
    where the records on the tape play the part of the gates.
    """),
    code(r"""
    import matplotlib.pyplot as plt
    import numpy as np

    import tape
    """),
    md(r"""
    ## A scalar graph, by hand

    $f(x, y, z, w) = (x y + z)\, w$ at $x=-2,\ y=5,\ z=-4,\ w=3$. Two kinds of gate: the lecture's
    `MultiplyGate`, written exactly as on the slide, and an `AddGate`.
    """),
    code(r"""
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
    """),
    md(r"""
    The lecture's `ComputationalGraph`: nodes listed so that every value is made before it is used
    (that list *is* `nodes_topologically_sorted()`), forward in that order, backward in reverse.
    """),
    code(r'''
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
    '''),
    md(r"""
    The chain rule written out agrees: $\partial f/\partial x = w y = 15$, $\partial f/\partial y = w x = -6$,
    $\partial f/\partial z = w = 3$, $\partial f/\partial w = x y + z = -14$. The usual picture: each
    value above its edge (green), its gradient below (red).
    """),
    code(r'''
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
    '''),
    md(r"""
    ## The same computation on the tape

    A tensor created with `requires_grad=True` makes every operation on it append a **record** to the
    tape: the op, links to the records (or leaves) its inputs came from, and the values its VJP needs
    (the gate's `self.x`). Records are numbered as they are made, so the tape's order is already a
    topological order: `nodes_topologically_sorted()` comes for free.
    """),
    code(r"""
    x = tape.tensor(-2.0, requires_grad=True)
    y = tape.tensor(5.0, requires_grad=True)
    z = tape.tensor(-4.0, requires_grad=True)
    w = tape.tensor(3.0, requires_grad=True)
    f = (x * y + z) * w
    f
    """),
    md(r"""
    There is no public function that lists a tape, but the links are there: `tensor.record` is the record
    that made a tensor and `record.parents` its inputs, each a record or a leaf tensor. Walking back from
    `f` and sorting by position lists the tape.
    """),
    code(r'''
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
    '''),
    md(r"""
    `backward()` replays these records from the last one to the first, handing each VJP the gradient of
    its output, and leaves the gradients of the leaves in `.grad`: the same numbers as by hand.
    """),
    code(r"""
    f.backward()
    on_tape = {"x": x.grad, "y": y.grad, "z": z.grad, "w": w.grad}
    print(on_tape)
    assert all(on_tape[name] == by_hand[name] for name in inputs)
    print(f.record)  # what the records saved is freed once backward used it (unless retain_graph=True)
    """),
    md(r"""
    ## The lecture's gate, plugged into tape

    `tape.gate` turns a class with `forward` and `backward` into an operation on tensors. Each call makes
    a new instance, so the `self.x` kept by one call belongs to that call's record. The gates above work
    unchanged.
    """),
    code(r"""
    multiply = tape.gate(MultiplyGate)
    add = tape.gate(AddGate)

    x, y, z, w = (tape.tensor(value, requires_grad=True) for value in inputs.values())
    f = multiply(add(multiply(x, y), z), w)
    show_tape(f, {"x": x, "y": y, "z": z, "w": w})
    f.backward()
    print({"x": x.grad, "y": y.grad, "z": z.grad, "w": w.grad})
    """),
    md(r"""
    ## Vectors and matrices: the Jacobian is never built

    For $z = W x$ with $W$ of shape $3 \times 4$ and a loss $L(z)$, the chain rule
    $\partial L/\partial W = (\partial z/\partial W)^\top \partial L/\partial z$ involves a Jacobian
    $\partial z/\partial W$ of shape $3 \times (3 \times 4)$, mostly zeros, since $z_i$ depends only on
    row $i$ of $W$. Contracting it with $\partial L/\partial z$ leaves an **outer product**,
    $\partial L/\partial W_{ij} = \partial L/\partial z_i \; x_j$, which a gate can write directly:
    """),
    code(r"""
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
    """),
    md(r"""
    tape's own `@` does the same, without the gate. To see what was avoided, `tape.jacobian` builds
    $\partial z/\partial W$ explicitly (shape `(3, 3, 4)`): 36 entries of which 12 are non-zero, and
    contracting it with $\partial L/\partial z$ gives the same outer product.
    """),
    code(r"""
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
    """),
    md(r"""
    ## Checking gradients against finite differences

    `tape.gradcheck(f, *inputs)` compares every VJP with central finite differences (in float64) and
    checks the identity $\langle u, J v\rangle = \langle J^\top u, v\rangle$ for random $u, v$. It
    returns `True`, or raises `tape.GradcheckError` saying where the gradients disagree.
    """),
    code(r"""
    scalar_graph = lambda x, y, z, w: multiply(add(multiply(x, y), z), w)
    print(tape.gradcheck(scalar_graph, *(np.array(value) for value in inputs.values())))
    print(tape.gradcheck(matvec, rng.standard_normal((3, 4)), rng.standard_normal(4)))
    layer = lambda weights, x: np.tanh(weights @ x)
    print(tape.gradcheck(layer, rng.standard_normal((3, 4)), rng.standard_normal(4)))
    """),
    md(r"""
    A gate with a classic slip (the two gradients swapped) is caught at once. (The numbers in the message
    are both multiplied by the random output cotangent $u$ the check uses.)
    """),
    code(r"""
    class SwappedMultiplyGate(MultiplyGate):
        def backward(self, dz):
            return [self.x * dz, self.y * dz]  # wrong: dx should be y * dz


    try:
        tape.gradcheck(tape.gate(SwappedMultiplyGate), np.array(3.0), np.array(-4.0))
    except tape.GradcheckError as error:
        print(error)
    """),
    md(r"""
    ## What to take away

    - A gate keeps what its backward needs; a record on the tape is that gate after its forward ran.
    - The tape is append-only, so its order is a topological order: backward replays it in reverse.
    - Backward hands each op the gradient of its output (a vector) and gets back the gradients of its
      inputs: a vector-Jacobian product. The Jacobian itself is never formed — notebook 3 shows what
      that saves.
    """),
]


# ---------------------------------------------------------------------------------------------------------
# 02: ordinary numpy code made differentiable by passing tensors

NUMPY_CODE_BACKWARD = [
    md(r"""
    # 2 · Ordinary numpy code, differentiated

    Code written for numpy arrays does not need to be rewritten for tape: pass it tensors and every
    numpy call in it (`np.sin`, `np.linalg.solve`, `@`, indexing, ...) runs tape's op for that function
    and is recorded. Python control flow (loops, `if`, `while`) just runs; the tape records the path
    actually taken. Two examples, a physics simulation and a statistical fit, then the rules: dtypes,
    what is refused, and changing arrays in place.
    """),
    code(r"""
    import math

    import matplotlib.pyplot as plt
    import numpy as np

    import tape
    """),
    md(r"""
    ## Physics: aim a projectile through air drag

    A ball leaves the ground at 30 m/s; air drag is quadratic in speed, so there is no closed form for
    where it lands. `fly` integrates the motion with explicit Euler steps until the ball is below the
    ground, in plain numpy: it runs on floats as well as on tensors.
    """),
    code(r'''
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
    '''),
    md(r"""
    To hit a target 40 m away, minimise $\frac12 (\text{distance}(\theta) - 40)^2$ over the launch angle
    by gradient descent. The angle is a tensor, so each call of `fly` records a few hundred steps on the
    tape and `backward()` differentiates through all of them. The angle itself is a leaf, so it is
    updated inside `tape.no_grad()`.
    """),
    code(r"""
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
    """),
    code(r"""
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
    """),
    md(r"""
    The gradient through the whole simulation agrees with finite differences:
    """),
    code(r"""
    tape.gradcheck(lambda angle: landing_distance(fly(angle)), np.array(0.3))
    """),
    md(r"""
    ## Statistics: maximum likelihood of a Gaussian

    The negative log-likelihood of data $x_1..x_n$ under $\mathcal N(\mu, \Sigma)$ is
    $\frac12 \log\det\Sigma + \frac1{2n}\sum_k (x_k-\mu)^\top\Sigma^{-1}(x_k-\mu) + \text{const}$.
    Written with `np.linalg.slogdet` and `np.linalg.solve`, as one would for numpy; $\Sigma = L L^\top$
    with $L$ lower-triangular and a positive diagonal, so every parameter value is a valid covariance.
    """),
    code(r'''
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
    '''),
    code(r'''
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
    '''),
    md(r"""
    ## Statistics: logistic regression with `tape.logsumexp`

    Three classes in the plane, a linear model, and the cross-entropy
    $\frac1n\sum_k \big(\log\sum_c e^{z_{kc}} - z_{k,y_k}\big)$ with the numerically stable
    `tape.logsumexp`. Integer labels index the logits as they would a numpy array.
    """),
    code(r"""
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
    """),
    code(r"""
    grid = np.stack(np.meshgrid(np.linspace(-5, 5, 200), np.linspace(-5, 5, 200)), axis=-1)
    regions = np.argmax(grid @ weights.numpy() + bias.numpy(), axis=-1)
    light, dark = ["#fbb4ae", "#b3cde3", "#ccebc5"], np.array(["#e41a1c", "#377eb8", "#4daf4a"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.contourf(grid[..., 0], grid[..., 1], regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=light)
    ax.scatter(*points.T, c=dark[labels], s=8)
    ax.set(aspect="equal", title="decision regions after 200 steps")
    fig.tight_layout()
    """),
    md(r"""
    ## float32 and float64

    dtype in, dtype out: float32 inputs give a float32 loss and float32 gradients, and Python scalars
    (the `/ 2`, `math.log(2π)` above) do not promote them. The float32 gradients agree with the float64
    ones to float32's precision, and `gradcheck` checks float32 with tolerances to match.
    """),
    code(r"""
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
    """),
    md(r"""
    ## What is refused

    A numpy function tape has no VJP for fails **when it is called**, naming the function, rather than
    giving a gradient that is silently missing later. The FFT is one:
    """),
    code(r"""
    signal = tape.tensor(np.sin(np.linspace(0, 8 * np.pi, 64)), requires_grad=True)
    try:
        np.fft.fft(signal)
    except TypeError as error:
        print("TypeError:", error)
    try:
        np.sin(signal, out=np.empty(64))
    except TypeError as error:
        print("TypeError:", error)
    """),
    md(r"""
    A way round, here: the power spectrum written with supported functions (a DFT as two matrix
    products), which is differentiable. Beware one silent case: `np.array([t1, t2])` does not dispatch
    to tensors, so it makes plain data (cut from the tape); `np.stack([t1, t2])` keeps the history.
    """),
    code(r"""
    frequencies = np.outer(np.arange(64), np.arange(64)) * 2 * np.pi / 64
    power = (np.cos(frequencies) @ signal) ** 2 + (np.sin(frequencies) @ signal) ** 2
    print("same as |fft|²:", np.allclose(power.numpy(), np.abs(np.fft.fft(signal.numpy())) ** 2))
    power[4].backward()
    print("d power[4] / d signal is recorded:", signal.grad.shape)

    a, b = tape.tensor(1.0, requires_grad=True), tape.tensor(2.0, requires_grad=True)
    print("np.array([a, b]) ->", type(np.array([a, b])).__name__, "   np.stack([a, b]) ->", np.stack([a, b]))
    """),
    md(r"""
    ## Changing arrays in place

    numpy code often fills an array in place. tape records such writes: `y[i] += v` on a tensor that
    does not require grad itself (here one made by `tape.zeros`) gives gradients to every `v` written
    into it.
    """),
    code(r"""
    amounts = tape.tensor([0.5, 1.0, 2.0, 4.0], requires_grad=True)
    bins = [0, 2, 2, 1]
    totals = tape.zeros(3)
    for i, amount in zip(bins, amounts, strict=True):
        totals[i] += amount
    print("totals", totals)
    np.sum(totals * np.array([1.0, 10.0, 100.0])).backward()
    print("each amount's gradient is its bin's factor:", amounts.grad)
    """),
    md(r"""
    Two writes are refused, each with a message that says what to do instead:

    - changing a **leaf that requires grad** while recording (its gradient would refer to a value that
      no longer exists): update parameters inside `with tape.no_grad():`, as the loops above do;
    - changing a value that a record **saved for its backward**: the record notices (a version counter)
      and backward refuses, naming the op, rather than returning a wrong gradient.
    """),
    code(r"""
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
    """),
]

# ---------------------------------------------------------------------------------------------------------
# 03: the lecture's questions P1 and P2, and one VJP against the whole Jacobian

VJP_VS_JACOBIAN = [
    md(r"""
    # 3 · One VJP versus the whole Jacobian

    The lecture takes a layer with a 4096-dimensional input and a 2048-dimensional output, say
    $f(x) = \max(0, W x + b)$, and writes backpropagation through it as
    $\frac{\partial L}{\partial x} = \frac{\partial f}{\partial x}^\top \frac{\partial L}{\partial f}$.
    It asks:

    - **P1**: how big is the Jacobian $\partial f/\partial x$?
    - **P2**: what does it look like?

    and then notes that in practice a minibatch of 100 examples goes through at once. This notebook
    answers both with numbers and pictures, and measures what reverse mode saves by never building the
    matrix: it computes the vector-Jacobian product (VJP) $J^\top u$ directly.
    """),
    code(r"""
    import time
    import tracemalloc

    import matplotlib.pyplot as plt
    import numpy as np

    import tape
    """),
    md(r"""
    ## P1: the size

    One row per output, one column per input.
    """),
    code(r"""
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
    """),
    md(r"""
    ## P2: the shape, computed

    `tape.jacobian(f)(x)` builds the whole matrix (entry `[i, j]` is $\partial f_i/\partial x_j$), which
    is fine for small sizes. Three small cases, with zeros left white:

    - an **elementwise** function (`np.tanh`): output $i$ depends only on input $i$, so $J$ is diagonal;
    - the **layer** $\max(0, Wx + b)$: $J$ is $W$ with the rows of the units that relu switched off
      set to zero: dense rows and zero rows;
    - the same layer on a **minibatch**: $J$ has shape (batch, out, batch, in); laid out as a matrix it
      is block-diagonal, since example $k$'s output depends only on example $k$.
    """),
    code(r"""
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
    """),
    md(r"""
    So for the lecture's layer the answer to P2 is: **$W$ itself, masked by relu**, and for a minibatch
    100 copies of it on the diagonal of a matrix that is 99% zeros. Backpropagation never needs it:
    $J^\top u = W^\top (\text{mask} \odot u)$ is one matrix-vector product, which is exactly what the
    VJPs of `maximum`, `add` and `matmul` compute in turn.

    ## Time and memory: one VJP against building the Jacobian

    For layers with $n$ inputs and $n/2$ outputs, three ways to run:

    - the **forward** pass alone (plain numpy), for scale;
    - **one VJP**: forward on the tape plus backward with a cotangent $u$ (`tape.vjp`);
    - **through the Jacobian**: build $J$ with `tape.jacobian`, then contract $u^\top J$.

    Both give $J^\top u$ (checked). Time is the fastest of a few runs; memory is the peak allocated
    during the call, from `tracemalloc` (numpy reports its buffers to it). `tape.jacobian` is already
    clever here — the batch of unit cotangents stays diagonal through relu, so building $J$ costs one
    scaled copy of $W$ — yet it still has to hold $m \times n$ numbers. (The stored outputs were made by
    `notebooks/build.py`, which gives numpy one BLAS thread so that the timings do not depend on how busy
    the machine was; memory does not depend on it.)
    """),
    code(r'''
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
    '''),
    code(r"""
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
    """),
    md(r"""
    The VJP's memory grows like $m + n$ (its cotangents), the Jacobian's like $m \times n$: a factor of
    about a thousand apart at $n = 2048$, and the gap grows with $n$. Time tells the same story less
    loudly for one layer, because the forward and the VJP also touch every entry of $W$ once; the VJP
    stays within a small factor of the forward pass, as the cheap-gradient principle says.

    ## The minibatch: the Jacobian grows with the square of the batch

    With $B$ examples the Jacobian has $B^2 m n$ entries, of which only $B\,m n$ can be non-zero; a VJP
    handles $B(m + n)$ numbers. Here $n = 16$ inputs and $m = 8$ outputs, up to the lecture's $B = 100$.
    """),
    code(r"""
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
    """),
    md(r"""
    At the lecture's size the same curves would reach the 671 GB computed above for the Jacobian,
    against a few MiB for the VJP. `python -m benchmarks` measures this comparison up to the lecture's
    4096 → 2048 layer and minibatch of 100, side by side with PyTorch, JAX, HIPS autograd and MyGrad when
    they are installed.
    """),
]

# ---------------------------------------------------------------------------------------------------------
# 04: an MLP and a small CNN trained with tape.nn on scikit-learn's digits

TRAINING = [
    md(r"""
    # 4 · Training networks with `tape.nn`

    The first notebooks built gradients out of records on the tape. `tape.nn` packages the usual pieces
    of a neural network on top of them, in the style of `torch.nn`: a **module** holds its weights as
    `Parameter`s (tensors that require grad), its forward pass is ordinary numpy code that records onto
    the tape, `loss.backward()` leaves a `.grad` on every parameter, and an **optimizer** from
    `tape.nn.optim` updates the parameters in place, outside the tape.

    This notebook trains two classifiers on scikit-learn's handwritten digits, a multilayer perceptron
    and a small convolutional network, in float32; it draws their loss curves, looks at the digits they
    get wrong, and saves a trained model to a file and loads it back.
    """),
    code(r"""
    import sys
    import tempfile
    import time
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numpy as np

    import tape
    import tape.nn as nn
    from tape.nn.conv import Conv2d, MaxPool2d

    sys.path.insert(0, str(Path.cwd().parent))  # the checkout's root, for examples/ (this runs in notebooks/)
    """),
    md(r"""
    ## The data

    scikit-learn ships 1,797 grey-level images of digits, $8 \times 8$ pixels with values 0 to 16, so
    nothing is downloaded. `load_digits_split` from `examples/train_digits.py` splits them once, 80% for
    training and 20% for testing, stratified by class and with a fixed seed, so every run is scored on
    the same 360 test images. The pixels are standardised with the training set's mean and standard
    deviation (one of each for all pixels, so an image stays an image) and kept in float32.
    """),
    code(r"""
    from examples.train_digits import load_digits_split

    digits = load_digits_split()
    x_train, y_train, x_test, y_test = digits.x_train, digits.y_train, digits.x_test, digits.y_test
    print(f"train {x_train.shape} {x_train.dtype}, test {x_test.shape}, labels {y_train.dtype}")
    print("test images per class:", np.bincount(y_test))

    fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
    for digit, ax in enumerate(axes):
        ax.imshow(x_train[np.flatnonzero(y_train == digit)[0]].reshape(8, 8), cmap="gray_r")
        ax.set_title(str(digit))
        ax.axis("off")
    """),
    md(r"""
    ## A multilayer perceptron, and one training step unpacked

    `nn.Sequential` applies its modules in order: each flat image of 64 pixels goes through two hidden
    layers of 128 and 64 units with ReLU, and comes out as 10 **logits**, one score per digit. `dtype`
    and `rng` make the weights float32 and their random start reproducible.
    """),
    code(r"""
    def make_mlp(rng):
        return nn.Sequential(
            nn.Linear(64, 128, dtype=np.float32, rng=rng),
            nn.ReLU(),
            nn.Linear(128, 64, dtype=np.float32, rng=rng),
            nn.ReLU(),
            nn.Linear(64, 10, dtype=np.float32, rng=rng),
        )


    def count_parameters(model):
        return sum(parameter.size for parameter in model.parameters())


    mlp = make_mlp(np.random.default_rng(0))
    print(mlp)
    print(f"{count_parameters(mlp):,} parameters")
    """),
    md(r"""
    A training step is the loop of the earlier notebooks with the bookkeeping done by `tape.nn`. The
    cross-entropy loss turns the logits of a minibatch and its integer labels into one number;
    `backward()` fills the `.grad` of every parameter (float32, like the parameter); `optimizer.step()`
    moves each parameter against its gradient, under `no_grad` so that the update is not recorded; and
    `optimizer.zero_grad()` clears the gradients before the next minibatch, since backward *adds* to them.
    """),
    code(r"""
    first_layer = mlp[0]
    optimizer = nn.optim.SGD(mlp.parameters(), lr=0.1)
    loss = nn.CrossEntropyLoss()(mlp(x_train[:32]), y_train[:32])
    print(f"loss {loss.item():.4f} ({loss.dtype}); grad before backward: {first_layer.weight.grad}")
    loss.backward()
    gradient = first_layer.weight.grad
    print(f"after backward: weight {first_layer.weight.shape}, grad {gradient.shape} {gradient.dtype}")

    before = first_layer.weight.numpy().copy()
    optimizer.step()
    moved = before - first_layer.weight.numpy()
    print("the step moved the weights by lr * grad:", np.allclose(moved, 0.1 * gradient, atol=1e-6))
    optimizer.zero_grad()
    print("after zero_grad:", first_layer.weight.grad)
    """),
    md(r"""
    ## The training loop

    `fit` repeats that step over shuffled minibatches of 32 for a few **epochs** (passes over the training
    set), with the recipe of `examples/train_digits.py`:

    - **AdamW**, Adam with weight decay, which adapts the step size of each weight;
    - a **cosine schedule** that lowers the learning rate smoothly to zero over the run;
    - **label smoothing** 0.1: the loss aims at 0.91 for the true digit and 0.01 for each other one
      instead of 1 and 0, so the network is not pushed towards ever larger logits (worth about a point
      of test accuracy here).

    After each epoch `evaluate` scores the model on the training and test sets with the plain
    cross-entropy and the accuracy. It runs under `tape.no_grad()`, so nothing is recorded, and in
    `eval()` mode (which matters for layers such as dropout or batch norm, not used here).
    """),
    code(r'''
    def evaluate(model, images, labels):
        """Mean cross-entropy and accuracy of ``model`` on a whole data set, without recording."""
        model.eval()
        with tape.no_grad():
            logits = model(images)
            loss = nn.functional.cross_entropy(logits, labels)
        model.train()
        predicted = np.argmax(logits.numpy(), axis=1)
        return loss.item(), float(np.mean(predicted == labels))


    def fit(model, train_images, test_images, epochs, lr, batch_size=32, seed=0, score_train=True):
        """Train ``model`` on the digits' images (laid out for the model) and labels ``y_train``.

        Returns the optimizer and the history: the loss of every step, and after each epoch the test loss and
        accuracy, and the loss on the whole training set (unless ``score_train`` is false, which saves time).
        """
        rng = np.random.default_rng(seed)
        optimizer = nn.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
        schedule = nn.optim.CosineAnnealingLR(optimizer, T_max=epochs)
        criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
        history = {name: [] for name in ("step_loss", "train_loss", "test_loss", "test_accuracy")}
        started = time.perf_counter()
        for _ in range(epochs):
            order = rng.permutation(len(train_images))
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                optimizer.zero_grad()
                loss = criterion(model(train_images[batch]), y_train[batch])
                loss.backward()
                optimizer.step()
                history["step_loss"].append(loss.item())
            schedule.step()
            if score_train:
                history["train_loss"].append(evaluate(model, train_images, y_train)[0])
            test_loss, test_accuracy = evaluate(model, test_images, y_test)
            history["test_loss"].append(test_loss)
            history["test_accuracy"].append(test_accuracy)
        history["seconds"] = time.perf_counter() - started
        return optimizer, history


    mlp = make_mlp(np.random.default_rng(0))
    mlp_optimizer, mlp_history = fit(mlp, x_train, x_test, epochs=20, lr=2e-3)
    print(f"MLP: {len(mlp_history['step_loss'])} steps in {mlp_history['seconds']:.1f} s, ", end="")
    print(f"test accuracy {mlp_history['test_accuracy'][-1]:.2%}")
    '''),
    md(r"""
    ## A small convolutional network

    The MLP sees 64 unrelated numbers: it would learn as well with the pixels shuffled (the same way in
    every image). A convolution looks at the image as an image: each of its filters is a $3 \times 3$
    patch of weights slid over every position, so the same stroke detector works anywhere in the digit.
    The layers take images as `(N, channels, height, width)` (NCHW). Padding 1 keeps the $8 \times 8$
    size, and each $2 \times 2$ max-pooling keeps the strongest response of every $2 \times 2$ block,
    halving the size: 8 → 4 → 2. `Flatten` then turns 32 channels of $2 \times 2$ into the 128 inputs
    of the last linear layer.
    """),
    code(r"""
    def make_cnn(rng):
        return nn.Sequential(
            Conv2d(1, 16, kernel_size=3, padding=1, dtype=np.float32, rng=rng),
            nn.ReLU(),
            MaxPool2d(2),
            Conv2d(16, 32, kernel_size=3, padding=1, dtype=np.float32, rng=rng),
            nn.ReLU(),
            MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 2 * 2, 10, dtype=np.float32, rng=rng),
        )


    train_images, test_images = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    cnn = make_cnn(np.random.default_rng(0))
    print(f"{count_parameters(cnn):,} parameters (the MLP has {count_parameters(mlp):,})")
    with tape.no_grad():
        activation = train_images[:2]
        print(f"{activation.shape!s:<15} input")
        for layer in cnn:
            activation = layer(activation)
            print(f"{activation.shape!s:<15} after {layer!r}")
    """),
    md(r"""
    The same `fit` trains it: the loop does not care what the model is made of.
    """),
    code(r"""
    cnn_optimizer, cnn_history = fit(cnn, train_images, test_images, epochs=20, lr=3e-3)
    print(f"CNN: {len(cnn_history['step_loss'])} steps in {cnn_history['seconds']:.1f} s, ", end="")
    print(f"test accuracy {cnn_history['test_accuracy'][-1]:.2%}")
    """),
    md(r"""
    ## Loss curves

    The light line is the loss of each minibatch, the quantity the optimizer lowers. Because of label
    smoothing it cannot go below the entropy of the smoothed target, about 0.50 (dotted). The plain
    cross-entropy on the whole training and test sets, measured after each epoch, has no such floor.
    The gap between training and test is what the model learned about these particular 1,437 images
    rather than about digits.
    """),
    code(r"""
    smoothed_target = np.array([0.91] + [0.01] * 9)
    floor = -np.sum(smoothed_target * np.log(smoothed_target))
    histories = {"MLP": mlp_history, "CNN": cnn_history}

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, (name, history) in zip(axes[:2], histories.items(), strict=True):
        epochs = len(history["test_loss"])
        steps_per_epoch = len(history["step_loss"]) / epochs
        step_epochs = np.arange(1, len(history["step_loss"]) + 1) / steps_per_epoch
        ax.plot(step_epochs, history["step_loss"], color="0.75", lw=0.7, label="minibatch (smoothed labels)")
        ax.plot(np.arange(1, epochs + 1), history["train_loss"], "o-", ms=3, label="train")
        ax.plot(np.arange(1, epochs + 1), history["test_loss"], "s-", ms=3, label="test")
        ax.axhline(floor, color="k", ls=":", lw=1)
        ax.set(yscale="log", xlabel="epoch", ylabel="cross-entropy", title=f"{name} loss")
        ax.legend()
    for name, history in histories.items():
        epochs = np.arange(1, len(history["test_accuracy"]) + 1)
        axes[2].plot(epochs, 100 * np.array(history["test_accuracy"]), "o-", ms=3, label=name)
    axes[2].set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(90, 100), title="test accuracy")
    axes[2].legend()
    fig.tight_layout()
    """),
    md(r"""
    ## Final test accuracy

    Measured on the 360 test images, which the training never saw. The cell fails if either model falls
    short of its mark, so a change in tape that spoils training shows up here.
    """),
    code(r"""
    mlp_accuracy = evaluate(mlp, x_test, y_test)[1]
    cnn_accuracy = evaluate(cnn, test_images, y_test)[1]
    for name, accuracy in [("MLP", mlp_accuracy), ("CNN", cnn_accuracy)]:
        mistakes = round((1 - accuracy) * len(y_test))
        print(f"{name}: test accuracy {accuracy:.2%} ({mistakes} of {len(y_test)} wrong)")
    assert mlp_accuracy >= 0.97, f"the MLP should reach 97% test accuracy, got {mlp_accuracy:.2%}"
    assert cnn_accuracy >= 0.98, f"the CNN should reach 98% test accuracy, got {cnn_accuracy:.2%}"
    """),
    md(r"""
    How much of the difference between the two is luck? With 360 test images every mistake is worth
    0.28 points, and the seed, which draws the starting weights and the order of the minibatches,
    changes which images end up wrong. Three more runs of each model, with other seeds:
    """),
    code(r"""
    accuracies = {"MLP": [mlp_accuracy], "CNN": [cnn_accuracy]}
    setups = {"MLP": (make_mlp, x_train, x_test, 2e-3), "CNN": (make_cnn, train_images, test_images, 3e-3)}
    for seed in (1, 2, 3):
        for name, (make, train_set, test_set, lr) in setups.items():
            model = make(np.random.default_rng(seed))
            _, history = fit(model, train_set, test_set, epochs=20, lr=lr, seed=seed, score_train=False)
            accuracies[name].append(history["test_accuracy"][-1])
    for name, runs in accuracies.items():
        listed = ", ".join(f"{accuracy:.2%}" for accuracy in runs)
        print(f"{name}, seeds 0 to 3: {listed}; mean {np.mean(runs):.2%}")
    """),
    md(r"""
    The runs of one model differ by about as much as the two models do, so a single run on 360 images
    cannot say which is better; the mean over several seeds (or cross-validation) can. On average the
    CNN is at least as accurate, with a third of the MLP's weights.
    """),
    md(r"""
    ## What the models get wrong

    A confusion matrix counts, for each true digit (row), how often each digit was predicted (column):
    everything off the diagonal is a mistake.
    """),
    code(r"""
    def predict(model, images):
        with tape.no_grad():
            return np.argmax(model(images).numpy(), axis=1)


    predictions = {"MLP": predict(mlp, x_test), "CNN": predict(cnn, test_images)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, (name, predicted) in zip(axes, predictions.items(), strict=True):
        confusion = np.zeros((10, 10), dtype=int)
        np.add.at(confusion, (y_test, predicted), 1)
        ax.imshow(np.log1p(confusion), cmap="Blues")
        for true, guess in zip(*np.nonzero(confusion), strict=True):
            color = "white" if true == guess else "C3"
            ax.text(guess, true, confusion[true, guess], ha="center", va="center", color=color, fontsize=8)
        title = f"{name}: {np.sum(predicted != y_test)} mistakes"
        ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    """),
    md(r"""
    The test images that either model got wrong, with the true label and both predictions (red where
    wrong). Some are hard even for a person at $8 \times 8$ pixels.
    """),
    code(r"""
    wrong = np.flatnonzero((predictions["MLP"] != y_test) | (predictions["CNN"] != y_test))[:16]
    columns = 8
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(12, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, wrong, strict=False):
        ax.imshow(x_test[index].reshape(8, 8), cmap="gray_r")
        ax.set_title(f"true {y_test[index]}", fontsize=10)
        for line, name in enumerate(predictions):
            guess = predictions[name][index]
            color = "C3" if guess != y_test[index] else "C2"
            below = (0.5, -0.12 - 0.16 * line)
            ax.text(*below, f"{name} {guess}", transform=ax.transAxes, ha="center", va="top", color=color)
    fig.tight_layout()
    """),
    md(r"""
    ## Saving and loading

    `nn.save(path, model, optimizer)` writes every parameter (and buffer) of the model, named by its
    place in the model (`3.weight` is the weight of layer 3), and the optimizer's state, into one `.npz`
    file; nothing is pickled. `nn.load` copies them into a model of the same architecture, in place. A
    fresh CNN with other random weights is no better than chance; loaded, it makes exactly the same
    predictions as the trained one.
    """),
    code(r"""
    path = Path(tempfile.mkdtemp()) / "digits_cnn.npz"
    nn.save(path, cnn, cnn_optimizer)
    with np.load(path) as archive:
        names = archive.files
    print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB, {len(names)} arrays, such as {names[:3]}")

    restored = make_cnn(np.random.default_rng(1))
    restored_optimizer = nn.optim.AdamW(restored.parameters(), lr=3e-3, weight_decay=1e-2)
    print(f"fresh CNN: test accuracy {evaluate(restored, test_images, y_test)[1]:.2%}")
    nn.load(path, restored, restored_optimizer)
    print(f"loaded:    test accuracy {evaluate(restored, test_images, y_test)[1]:.2%}")
    with tape.no_grad():
        same_logits = np.array_equal(restored(test_images).numpy(), cnn(test_images).numpy())
    print("same logits as the trained CNN:", same_logits)
    assert same_logits
    """),
    md(r"""
    The optimizer's state came back too: AdamW's running averages of each gradient and its square, and
    the learning rate the schedule had reached. So training can resume where it stopped: one more step
    on the same minibatch moves the original and the restored model to identical weights.
    """),
    code(r"""
    batch = np.arange(32)
    for model, model_optimizer in [(cnn, cnn_optimizer), (restored, restored_optimizer)]:
        model_optimizer.zero_grad()
        nn.CrossEntropyLoss(label_smoothing=0.1)(model(train_images[batch]), y_train[batch]).backward()
        model_optimizer.step()
    pairs = zip(cnn.parameters(), restored.parameters(), strict=True)
    identical = all(np.array_equal(original.numpy(), loaded.numpy()) for original, loaded in pairs)
    print("identical weights after one more step each:", identical)
    assert identical
    """),
    md(r"""
    ## What to take away

    - A `tape.nn` model is numpy code on tensors: its forward records onto the tape like any other, and
      `loss.backward()` is the same reverse sweep as in notebook 1, ending at the parameters.
    - The training loop is four lines: `zero_grad`, forward and loss, `backward`, `step`; evaluation runs
      under `no_grad` and records nothing.
    - In a few seconds on a CPU, in float32, both reach 98 to 99% on the held-out digits; the CNN, whose
      layout knows about images, needs a third of the weights. On a test set this small, compare models
      over several seeds, not one run.
    - `nn.save`/`nn.load` round-trip a model and its optimizer through one `.npz` file.
    """),
]

# ---------------------------------------------------------------------------------------------------------
# 05: derivatives of derivatives, Hessians, Newton's method, Jacobians of vector fields, checkpointing

HIGHER_ORDER = [
    md(r"""
    # 5 · Higher-order derivatives

    tape's VJPs are ordinary numpy code. When a gradient is computed with the graph kept
    (`create_graph=True`, which the transforms do when they are nested), the VJPs run on tensors and
    are recorded like any other code, so a gradient can be differentiated again. This notebook uses
    that for derivatives of any order, Hessians and Hessian-vector products, Newton's method and the
    Jacobian of a vector field, and ends with `tape.checkpoint`, which trades compute for memory.
    """),
    code(r"""
    import time
    import tracemalloc

    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    import tape
    """),
    md(r"""
    ## `grad` of `grad`

    `tape.grad(f)` is a function computing the gradient of a scalar function `f`; it can be
    transformed again. For an elementwise $f$ the gradient of $\sum_k f(x_k)$ is $f'(x_k)$ at every
    point, so one call gives the derivative on a whole grid. With $f = \tanh$ the results can be checked
    against the closed forms.
    """),
    code(r"""
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
    """),
    md(r"""
    `tape.gradgradcheck` checks second derivatives against finite differences the way `gradcheck`
    checks first ones:
    """),
    code(r"""
    tape.gradgradcheck(lambda x: np.tanh(x) * np.sin(x), np.linspace(-2, 2, 7))
    """),
    md(r"""
    ## Hessian and Hessian-vector products

    `tape.hessian(f)(x)` is the Jacobian of the gradient: a matrix with one row per entry of $x$.
    `tape.hvp(f, (x,), (v,))` computes $H v$ without building $H$ (a reverse sweep over the recorded
    gradient). With unit vectors $v = e_k$ it gives the Hessian's columns one by one, which must match.
    """),
    code(r"""
    def f(x):
        return np.sum(np.sin(x) * x[::-1]) + tape.logsumexp(x) + np.sum(x**4) / 4


    x = np.array([0.3, -1.2, 0.8, 2.0])
    H = tape.hessian(f)(x)
    columns = [tape.hvp(f, (x,), (unit,))[0] for unit in np.eye(len(x))]
    with np.printoptions(precision=4, suppress=True):
        print(H)
    print("H e_k from hvp matches column k:", np.allclose(np.stack(columns, axis=1), H))
    print("symmetric:", np.allclose(H, H.T))
    """),
    md(r"""
    The point of `hvp` is size: for $n = 100{,}000$ the Hessian would have $10^{10}$ entries (80 GB),
    while $Hv$ costs about as much as a couple of gradients. For $\sum_k x_k^4/4$ the Hessian is
    $\text{diag}(3x^2)$, so $Hv = 3x^2 v$:
    """),
    code(r"""
    rng = np.random.default_rng(0)
    x_big, v_big = rng.standard_normal(100_000), rng.standard_normal(100_000)
    start = time.perf_counter()
    (Hv,) = tape.hvp(lambda x: np.sum(x**4) / 4, (x_big,), (v_big,))
    print(f"hvp with n = 100,000 in {time.perf_counter() - start:.3f} s")
    print("matches 3x²v:", np.allclose(Hv, 3 * x_big**2 * v_big))
    """),
    md(r"""
    ## Newton's method against gradient descent

    On Rosenbrock's banana-shaped valley, $f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2$, gradient descent
    must take small steps (the valley's walls are steep) and then crawls along its floor. Newton's
    method solves $H\,\Delta = -\nabla f$ at each step, with the Hessian from `tape.hessian`, and reaches
    the minimum at $(1, 1)$ in a handful of steps.
    """),
    code(r"""
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
    """),
    code(r"""
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
    """),
    md(r"""
    (Newton's second step climbs: far from the minimum, a pure Newton step goes to the minimum of the
    local quadratic model, which need not be lower. Practical variants damp the step; the Hessian they
    need is the same.)

    ## The Jacobian of a vector field

    The field $F(x, y) = (-y + x(1 - r^2),\; x + y(1 - r^2))$ with $r^2 = x^2 + y^2$ turns around the
    origin and is drawn towards the circle $r = 1$. Its Jacobian at a point tells what happens nearby:
    at the origin the eigenvalues $1 \pm i$ mean an unstable spiral, and its trace is the divergence of
    the field (how much it spreads out), here $2 - 4r^2$.
    """),
    code(r'''
    def field(points):
        """F at each point of an array of shape (..., 2)."""
        x, y = points[..., 0], points[..., 1]
        shrink = 1 - (x**2 + y**2)
        return np.stack([-y + x * shrink, x + y * shrink], axis=-1)


    at_origin = tape.jacobian(field)(np.zeros(2))
    print("J at the origin:", at_origin.tolist(), "eigenvalues:", np.linalg.eigvals(at_origin))
    '''),
    md(r"""
    The Jacobian at every point of a grid comes from **one** call on all the points at once: it has
    shape (N, 2, N, 2) and, as for the minibatch in notebook 3, only the diagonal blocks are non-zero,
    since point $k$'s value depends only on point $k$. Their traces are the divergence:
    """),
    code(r"""
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
    """),
    md(r"""
    ## Checkpointing: memory for compute

    Backward needs what every record saved, so the memory of a deep chain grows with its depth.
    `tape.checkpoint(fn, *args)` runs `fn` without recording, keeps only its inputs and output, and
    runs `fn` again during backward. Cutting a chain of $n$ steps into segments of $s$ keeps $n/s$
    segment outputs plus one segment's intermediate values at a time: smallest near $s \approx \sqrt n$.

    The chain: 64 steps of $h \leftarrow h + 0.1\tanh(a_k h)$ on 16,384 numbers, one parameter $a_k$ per
    step. Every tensor the segment should differentiate (here the $a_k$) is passed to `checkpoint`.
    """),
    code(r'''
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
    '''),
    code(r"""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(segments, np.array(peaks) / 2**20, "o-", label="checkpointed segments")
    ax.axhline(plain_peak / 2**20, color="C3", ls="--", label="no checkpoint")
    ax.axvline(np.sqrt(depth), color="grey", lw=0.8, ls=":", label="√64 = 8")
    ax.set(xscale="log", xlabel="steps per segment", ylabel="peak memory (MiB)", title=f"{depth} steps")
    ax.set_xticks(segments, [str(s) for s in segments])
    ax.minorticks_off()
    ax.legend()
    fig.tight_layout()
    """),
    md(r"""
    The gradients are identical whatever the segments. The price is time: every segment's forward runs
    a second time during backward, about one more forward pass in all.
    """),
]

# ---------------------------------------------------------------------------------------------------------

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_backprop_by_hand": BACKPROP_BY_HAND,
    "02_numpy_code_backward": NUMPY_CODE_BACKWARD,
    "03_vjp_vs_jacobian": VJP_VS_JACOBIAN,
    "04_training": TRAINING,
    "05_higher_order": HIGHER_ORDER,
}


def make_notebook(cells: list[tuple[str, str]]) -> Any:
    """A notebook of ``cells`` with stable cell ids, so that rebuilding it changes only what changed."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for number, (kind, source) in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(make(source, id=f"cell-{number:02d}"))
    return notebook


def kernel_environment() -> dict[str, str]:
    """This process's environment with the checkout first on PYTHONPATH, so the kernel imports its tape."""
    environment = dict(os.environ)
    paths = [str(REPOSITORY), *filter(None, [environment.get("PYTHONPATH")])]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    # One BLAS thread: on a busy machine, threads waiting for a core make the stored timings meaningless.
    environment.setdefault("OPENBLAS_NUM_THREADS", "1")
    return environment


def execute(notebook: Any) -> None:
    """Run every cell of ``notebook`` in a fresh kernel, in the notebooks directory; raise on an error."""
    from nbclient import NotebookClient

    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        record_timing=False,
    )
    client.execute(env=kernel_environment())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="build only notebooks whose names start with these")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    arguments = parser.parse_args(argv)
    import nbformat

    for name, cells in NOTEBOOKS.items():
        if arguments.prefixes and not name.startswith(tuple(arguments.prefixes)):
            continue
        notebook = make_notebook(cells)
        path = NOTEBOOK_DIR / f"{name}.ipynb"
        if not arguments.no_execute:
            print(f"executing {path.name} ...", flush=True)
            execute(notebook)
        nbformat.write(notebook, path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One training step (forward, backward, SGD update) of an MLP and of a small CNN, tape against its peers.

- MLP 784-512-256-10, ReLU, cross-entropy, minibatch of 128;
- CNN on 64 x 1 x 28 x 28: conv 3x3 to 8 channels, ReLU, max-pool 2, conv 3x3 to 16 channels, ReLU,
  max-pool 2, linear 400 -> 10, cross-entropy (needs ``tape.nn.conv``; skipped with a note without it).

Both in float32 and float64. Every library starts from the same weights and data, and its first loss is
checked against numpy's before anything is timed. The peers are PyTorch (eager, torch.nn and torch.optim),
MyGrad, HIPS autograd (MLP only: it has no convolution) and JAX (the whole step under ``jax.jit``), each
when installed; numpy's forward pass alone (no gradient, no update) is the floor. The project's targets:
tape's MLP step at most PyTorch's time, its CNN step at most 1.5 times PyTorch's.

Every library runs at its own default thread count; tape and PyTorch also run at one thread (numpy's BLAS
limited through threadpoolctl, ``torch.set_num_threads(1)``), the fairer comparison on a shared machine,
where a thread that loses its core stalls the others of a multi-threaded matrix product. The cases are
measured in turns, several rounds over (``measure_side_by_side``), so that a change of load hits them all.

python -m benchmarks.training_step            # full repeats (about a minute)
python -m benchmarks.training_step --quick    # fewer repeats
python -m benchmarks.training_step --profile  # also cProfile tape's MLP step (top entries by own time)
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import tape
import tape.nn as nn
from benchmarks import peers
from benchmarks.console import progress_bar, run_and_report, suite_command_line
from benchmarks.results import blas_info
from benchmarks.timing import Timing, measure_side_by_side, print_table, profile_calls, timing_rows

DTYPES = (np.float32, np.float64)
MLP_LAYERS = (784, 512, 256, 10)
MLP_BATCH = 128
CNN_BATCH = 64
CNN_IMAGE = (1, 28, 28)
CNN_FLAT = 16 * 5 * 5  # 28 -conv-> 26 -pool-> 13 -conv-> 11 -pool-> 5
CLASSES = 10
LEARNING_RATE = 0.01
TARGETS = {"mlp": 1.0, "cnn": 1.5}  # tape's step time over PyTorch's, at most
NUMPY_FLOOR = "numpy forward only"
TAPE = "tape"
TAPE_ONE_THREAD = "tape, 1 thread"
TORCH = "PyTorch"
TORCH_ONE_THREAD = "PyTorch, 1 thread"
ROUNDS = 3  # interleaved rounds of measurement (see measure_side_by_side)
ROUNDS_QUICK = 2

Step = Callable[[], Any]


@dataclass(frozen=True)
class Problem:
    """Inputs, integer targets and the initial weights (torch's layouts, in layer order) of one network."""

    kind: str
    x: np.ndarray
    y: np.ndarray
    weights: tuple[np.ndarray, ...]


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, dtype: Any) -> np.ndarray:
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


def make_problem(kind: str, dtype: Any, seed: int = 0) -> Problem:
    """Random data and weights (torch's default init bounds) for the ``"mlp"`` or ``"cnn"`` step.

    Examples
    --------
    >>> problem = make_problem("mlp", np.float32)
    >>> problem.x.shape, [w.shape for w in problem.weights][:2]
    ((128, 784), [(512, 784), (512,)])
    """
    rng = np.random.default_rng(seed)
    weights: list[np.ndarray] = []
    if kind == "mlp":
        x = rng.standard_normal((MLP_BATCH, MLP_LAYERS[0])).astype(dtype)
        y = rng.integers(0, CLASSES, MLP_BATCH)
        for fan_in, fan_out in itertools.pairwise(MLP_LAYERS):
            weights += [
                _uniform(rng, (fan_out, fan_in), fan_in, dtype),
                _uniform(rng, (fan_out,), fan_in, dtype),
            ]
    elif kind == "cnn":
        x = rng.standard_normal((CNN_BATCH, *CNN_IMAGE)).astype(dtype)
        y = rng.integers(0, CLASSES, CNN_BATCH)
        for shape in ((8, 1, 3, 3), (16, 8, 3, 3), (CLASSES, CNN_FLAT)):
            fan_in = int(np.prod(shape[1:]))
            weights += [_uniform(rng, shape, fan_in, dtype), _uniform(rng, shape[:1], fan_in, dtype)]
    else:
        raise ValueError(f"make_problem: kind must be 'mlp' or 'cnn', got {kind!r}")
    return Problem(kind, x, y, tuple(weights))


def _copies(problem: Problem) -> list[np.ndarray]:
    # Each case updates its weights in place, so each gets its own copy.
    return [w.copy() for w in problem.weights]


def _numpy_cross_entropy(logits: np.ndarray, y: np.ndarray) -> Any:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probabilities[np.arange(len(y)), y].mean()


# -- numpy forward (the floor) -------------------------------------------------------------------------------
def numpy_forward(problem: Problem) -> Step:
    """numpy's forward pass and loss only: no gradient and no update."""
    x, y, weights = problem.x, problem.y, problem.weights
    if problem.kind == "mlp":

        def forward() -> Any:
            h = x
            for layer in range(0, len(weights) - 2, 2):
                h = np.maximum(h @ weights[layer].T + weights[layer + 1], 0)
            return _numpy_cross_entropy(h @ weights[-2].T + weights[-1], y)

        return forward

    def cnn_forward() -> Any:
        # Convolution is not numpy: tape's own im2col forward, run on plain arrays.
        h = x
        for layer in (0, 2):
            h = tape.ops.conv.max_pool2d(
                np.maximum(tape.ops.conv.conv2d(h, weights[layer], weights[layer + 1]), 0), 2
            )
        return _numpy_cross_entropy(h.reshape(len(h), -1) @ weights[4].T + weights[5], y)

    return cnn_forward


# -- tape ----------------------------------------------------------------------------------------------------
def tape_model(kind: str, dtype: Any) -> nn.Module:
    """The network as ``tape.nn`` layers (random weights; ``tape_step`` loads the problem's)."""
    if kind == "mlp":
        layers: list[nn.Module] = []
        for fan_in, fan_out in itertools.pairwise(MLP_LAYERS):
            layers += [nn.Linear(fan_in, fan_out, dtype=dtype), nn.ReLU()]
        return nn.Sequential(*layers[:-1])
    from tape.nn.conv import Conv2d, MaxPool2d

    return nn.Sequential(
        Conv2d(1, 8, 3, dtype=dtype),
        nn.ReLU(),
        MaxPool2d(2),
        Conv2d(8, 16, 3, dtype=dtype),
        nn.ReLU(),
        MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(CNN_FLAT, CLASSES, dtype=dtype),
    )


def tape_step(problem: Problem) -> Step:
    """``zero_grad``, forward, ``backward`` and ``SGD.step`` with ``tape.nn``, as a user writes it."""
    model = tape_model(problem.kind, problem.x.dtype)
    model.load_state_dict(dict(zip(model.state_dict(), _copies(problem), strict=True)))
    optimizer = nn.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    criterion = nn.CrossEntropyLoss()
    x, y = problem.x, problem.y

    def step() -> Any:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


# -- peers ---------------------------------------------------------------------------------------------------
def torch_step(problem: Problem) -> Step:
    """The same step with torch.nn, torch.nn.CrossEntropyLoss and torch.optim.SGD (eager)."""
    import torch

    dtype = torch.float32 if problem.x.dtype == np.float32 else torch.float64
    if problem.kind == "mlp":
        layers: list[torch.nn.Module] = []
        for fan_in, fan_out in itertools.pairwise(MLP_LAYERS):
            layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1])
    else:
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(CNN_FLAT, CLASSES),
        )
    model = model.to(dtype)
    with torch.no_grad():
        for parameter, value in zip(model.parameters(), _copies(problem), strict=True):
            parameter.copy_(torch.from_numpy(value))
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    criterion = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(problem.x), torch.from_numpy(problem.y)

    def step() -> Any:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def mygrad_step(problem: Problem) -> Step:
    """MyGrad tensors, its relu, conv_nd, max_pool and softmax_crossentropy; SGD on the arrays."""
    import mygrad
    from mygrad.nnet.activations import relu
    from mygrad.nnet.layers import conv_nd, max_pool
    from mygrad.nnet.losses import softmax_crossentropy

    parameters = [mygrad.tensor(w) for w in _copies(problem)]
    x, y = problem.x, problem.y

    def forward() -> Any:
        if problem.kind == "mlp":
            h = x
            for layer in range(0, len(parameters) - 2, 2):
                h = relu(mygrad.matmul(h, parameters[layer].T) + parameters[layer + 1])
        else:
            h = x
            for layer in (0, 2):
                bias = mygrad.reshape(parameters[layer + 1], (1, -1, 1, 1))
                h = relu(conv_nd(h, parameters[layer], stride=1) + bias)
                even = (h.shape[-1] // 2) * 2  # MyGrad's pool wants whole windows; torch drops the rest
                h = max_pool(h[..., :even, :even], (2, 2), 2)
            h = mygrad.reshape(h, (len(x), -1))
        return softmax_crossentropy(mygrad.matmul(h, parameters[-2].T) + parameters[-1], y)

    def step() -> Any:
        loss = forward()
        loss.backward()
        for parameter in parameters:
            parameter.data -= LEARNING_RATE * parameter.grad
        return loss

    return step


def autograd_step(problem: Problem) -> Step:
    """HIPS autograd's ``value_and_grad`` of the loss in the weights; SGD on the arrays (MLP only)."""
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    if problem.kind != "mlp":
        raise NotImplementedError("autograd has no conv2d or max-pool")
    x, y = problem.x, problem.y
    rows = np.arange(len(y))

    def loss(weights: list[Any]) -> Any:
        h = x
        for layer in range(0, len(weights) - 2, 2):
            h = anp.maximum(anp.dot(h, weights[layer].T) + weights[layer + 1], 0)
        logits = anp.dot(h, weights[-2].T) + weights[-1]
        log_probabilities = logits - logsumexp(logits, axis=1, keepdims=True)
        return -anp.mean(log_probabilities[rows, y])

    value_and_grad = autograd.value_and_grad(loss)
    weights = _copies(problem)

    def step() -> Any:
        value, gradients = value_and_grad(weights)
        for weight, gradient in zip(weights, gradients, strict=True):
            weight -= LEARNING_RATE * gradient
        return value

    return step


def jax_step(problem: Problem) -> Step:
    """The whole step (loss, gradient and update) as one ``jax.jit`` function; each call waits for it."""
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 must stay float64; float32 arrays stay float32
    import jax.numpy as jnp

    def forward(weights: list[Any], x: Any) -> Any:
        if problem.kind == "mlp":
            h = x
            for layer in range(0, len(weights) - 2, 2):
                h = jax.nn.relu(h @ weights[layer].T + weights[layer + 1])
            return h @ weights[-2].T + weights[-1]
        h = x
        for layer in (0, 2):
            h = jax.lax.conv_general_dilated(
                h, weights[layer], (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
            )
            h = jax.nn.relu(h + weights[layer + 1][None, :, None, None])
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        return h.reshape(h.shape[0], -1) @ weights[-2].T + weights[-1]

    def loss(weights: list[Any], x: Any, y: Any) -> Any:
        log_probabilities = jax.nn.log_softmax(forward(weights, x), axis=1)
        return -jnp.mean(jnp.take_along_axis(log_probabilities, y[:, None], axis=1))

    @jax.jit
    def update(weights: list[Any], x: Any, y: Any) -> tuple[list[Any], Any]:
        value, gradients = jax.value_and_grad(loss)(weights, x, y)
        return [w - LEARNING_RATE * g for w, g in zip(weights, gradients, strict=True)], value

    state = [[jnp.asarray(w) for w in problem.weights]]
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)

    def step() -> Any:
        state[0], value = update(state[0], x, y)
        jax.block_until_ready(state[0])
        return value

    return step


PEERS: dict[str, tuple[str, Callable[[Problem], Step]]] = {
    TORCH: ("torch", torch_step),
    "MyGrad": ("mygrad", mygrad_step),
    "autograd": ("autograd", autograd_step),
    "JAX (jit)": ("jax", jax_step),
}


# -- threads -------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``count`` for the block, then restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def blas_threads(count: int) -> contextlib.AbstractContextManager[Any]:
    """numpy's BLAS (and MKL, when tape's products use it) limited to ``count`` threads from this call
    (threadpoolctl applies the limit at once) until the returned context exits; use it as
    ``with blas_threads(1): ...``."""
    import threadpoolctl

    tape.ops.mkl.gemms()  # loaded now, so that the limit reaches it

    return threadpoolctl.threadpool_limits(limits=count, user_api="blas")


# -- measuring -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """How to build one timed step, and the thread setting it runs under (None: the library's default)."""

    build: Callable[[Problem], Step]
    threads: Callable[[], contextlib.AbstractContextManager[Any]] | None = None


def cases(kind: str) -> tuple[dict[str, Case], list[str]]:
    """The cases for ``kind`` that can run here, and notes on those skipped for another reason than a peer
    that is not installed (``peers.note_not_installed`` names those once)."""
    found: dict[str, Case] = {NUMPY_FLOOR: Case(numpy_forward), TAPE: Case(tape_step)}
    skipped = []
    if importlib.util.find_spec("threadpoolctl") is None:
        skipped.append(f"{TAPE_ONE_THREAD} (threadpoolctl is not installed)")
    else:
        found[TAPE_ONE_THREAD] = Case(tape_step, lambda: blas_threads(1))
    for name, (module, builder) in PEERS.items():
        if not peers.installed(module):
            continue
        if kind == "cnn" and name == "autograd":
            skipped.append("autograd (no convolution)")
        else:
            found[name] = Case(builder)
            if name == TORCH:
                found[TORCH_ONE_THREAD] = Case(builder, lambda: torch_threads(1))
    return found, skipped


def _loss_value(loss: Any) -> float:
    return float(np.asarray(loss.data if isinstance(loss, tape.Tensor) else loss))


def measure_kind(kind: str, dtype: Any, quick: bool, progress: Any = None) -> dict[str, Any]:
    """Build every case of one network in one dtype, check its first loss against numpy's, time them all."""
    problem = make_problem(kind, dtype)
    found, skipped = cases(kind)
    reference = _loss_value(numpy_forward(problem)())
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    functions = {}
    first_losses = {}
    for name, case in found.items():
        step = case.build(problem)
        first_losses[name] = _loss_value(step())  # from the initial weights, before any update
        if abs(first_losses[name] - reference) > tolerance * max(1.0, abs(reference)):
            raise AssertionError(
                f"{name}: first {kind} loss {first_losses[name]} differs from numpy's {reference}"
            )
        functions[name] = (step, case.threads)
    timings = measure_side_by_side(
        functions,
        rounds=ROUNDS_QUICK if quick else ROUNDS,
        repeats=3 if quick else 5,
        min_time=0.05 if quick else 0.2,
        progress=progress,
    )
    return {"timings": timings, "first_losses": first_losses, "skipped": skipped}


def verdicts(timings: dict[str, Timing]) -> dict[str, float | None]:
    """tape's time over PyTorch's at default threads and at one thread (None where not measured)."""
    ratios: dict[str, float | None] = {}
    for label, ours, theirs in (
        ("default_threads", TAPE, TORCH),
        ("one_thread", TAPE_ONE_THREAD, TORCH_ONE_THREAD),
    ):
        ratios[label] = (
            timings[ours].median / timings[theirs].median if ours in timings and theirs in timings else None
        )
    return ratios


def _verdict_text(kind: str, timings: dict[str, Timing]) -> str | None:
    parts = [
        f"{label.replace('_', ' ')} {'met' if ratio <= TARGETS[kind] else 'MISSED'} ({ratio:.2f}x)"
        for label, ratio in verdicts(timings).items()
        if ratio is not None
    ]
    return f"target tape <= {TARGETS[kind]:g}x PyTorch: " + "; ".join(parts) if parts else None


def _threads_note() -> str:
    parts = [f"default threads: numpy BLAS {blas_info().get('threads')}"]
    if peers.installed("torch"):
        import torch

        parts.append(f"PyTorch {torch.get_num_threads()}")
    if hasattr(os, "getloadavg"):
        parts.append(f"load average at the start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return ", ".join(parts)


def run(quick: bool = False) -> dict[str, Any]:
    """Measure the MLP step (and the CNN step when tape.nn.conv exists); print tables, return the figures.

    Examples
    --------
    >>> figures = run(quick=True)  # doctest: +SKIP
    >>> sorted(figures["mlp"])  # doctest: +SKIP
    ['float32', 'float64']
    """
    kinds = ["mlp"]
    notes = {}
    if importlib.util.find_spec("tape.nn.conv") is None:
        notes["cnn"] = "skipped: tape.nn.conv (Conv2d, MaxPool2d) is not in this checkout"
        print(f"\nCNN training step {notes['cnn']}")
    else:
        kinds.append("cnn")
    threads_note = _threads_note()
    results: dict[str, Any] = {"targets_vs_pytorch": TARGETS, "threads": threads_note, **notes}
    missing = peers.note_not_installed(module for module, _ in PEERS.values())
    rounds = ROUNDS_QUICK if quick else ROUNDS
    total = sum(len(cases(kind)[0]) for kind in kinds) * len(DTYPES) * rounds
    with progress_bar(total, "training_step") as progress:
        measured = {
            (kind, dtype): measure_kind(kind, dtype, quick, progress) for kind in kinds for dtype in DTYPES
        }
    titles = {
        "mlp": f"Training step, MLP {'-'.join(map(str, MLP_LAYERS))}, ReLU, cross-entropy, batch {MLP_BATCH}",
        "cnn": f"Training step, CNN on {CNN_BATCH}x{'x'.join(map(str, CNN_IMAGE))} "
        "(conv 8, pool, conv 16, pool, linear 10)",
    }
    for (kind, dtype), outcome in measured.items():
        timings = outcome["timings"]
        references = [timings[NUMPY_FLOOR].median]
        header = ["case", "step (median)", "spread", "vs numpy forward"]
        if TORCH in timings:
            references.append(timings[TORCH].median)
            header.append("vs PyTorch")
        notes_below = [_verdict_text(kind, timings), threads_note]
        if outcome["skipped"]:
            notes_below.append("skipped: " + ", ".join(outcome["skipped"]))
        print_table(
            f"{titles[kind]}, {np.dtype(dtype).name}",
            header,
            timing_rows(timings, *references),
            "\n  ".join(note for note in notes_below if note),
        )
        results.setdefault(kind, {})[np.dtype(dtype).name] = {
            "cases": {
                name: {
                    "median_s": timing.median,
                    "low_s": timing.low,
                    "high_s": timing.high,
                    "first_loss": outcome["first_losses"][name],
                }
                for name, timing in timings.items()
            },
            "skipped": outcome["skipped"] + [f"{peers.NAMES[module]} (not installed)" for module in missing],
            "tape_over_pytorch": verdicts(timings),
        }
    return results


def profile_tape_step(kind: str = "mlp", dtype: Any = np.float32, steps: int = 50, top: int = 20) -> str:
    """cProfile ``steps`` tape training steps; return the ``top`` entries by own time (tottime) as text.

    Examples
    --------
    >>> "tottime" in profile_tape_step(steps=1, top=3)
    True
    """
    step = tape_step(make_problem(kind, dtype))
    return profile_calls(step, steps, top)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.training_step [--quick] [--profile] [--out DIR]``."""
    options = suite_command_line("training_step", __doc__, profile="tape's steps").parse_args(argv)
    results = run_and_report("training_step", run, options.quick, options.out)
    if options.profile:
        for kind in ("mlp", "cnn") if "cnn" in results else ("mlp",):
            for dtype in DTYPES:
                print(f"\ncProfile of 50 tape {kind} steps, {np.dtype(dtype).name}, by own time:")
                print(profile_tape_step(kind, dtype))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

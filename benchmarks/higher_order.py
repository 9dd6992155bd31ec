"""Second-order derivatives and checkpointing: a Hessian-vector product and what ``tape.checkpoint`` saves.

1. Hessian-vector product. The softmax cross-entropy loss of a 784-512-256-10 tanh MLP on a batch of 128
   (float64) is differentiated twice with respect to its first weight matrix W1 (784 x 512), along a random
   direction V of W1's shape: H V, with no Hessian built. ``tape.hvp`` runs side by side with PyTorch
   (double backward, and ``torch.func`` forward-over-reverse), JAX (``jvp`` of ``grad``, eager and
   jitted) and HIPS autograd when they are installed. Every result is compared with tape's, and tape's
   with a central difference of ``tape.grad`` along V. One gradient per library is timed too, as the
   unit an HVP is measured in (reverse-over-reverse costs a few gradients).
2. Checkpoint memory. One forward+backward of a deep tanh MLP, plain and with ``tape.checkpoint`` around
   every layer or around every four layers (the parameters passed as arguments): the time, and the
   tracemalloc peak of a separate untimed run. The net is activation-heavy (batch larger than width),
   the case checkpointing is for.

``python -m benchmarks.higher_order [--quick] [--out DIR] [--profile] [--net DEPTH WIDTH BATCH]``;
``--quick`` also leaves out the peers whose first call takes seconds, ``--profile`` adds cProfile's top
entries for a few ``tape.hvp`` calls. Thread settings are left as they are and
printed. The methods are measured in interleaved rounds (median of the rounds' medians, min..max over all
repeats) so that they share a machine's ups and downs; multi-threaded BLAS and OpenMP slow down several
fold when another process takes a core, so the load average is printed with the figures.
"""

from __future__ import annotations

import cProfile
import io
import itertools
import os
import pstats
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import tape
from benchmarks import peers
from benchmarks.console import suite_command_line
from benchmarks.results import blas_info, report_results
from benchmarks.timing import format_bytes, format_spread, format_time, measure_side_by_side, print_table
from benchmarks.vjp_vs_jacobian import peak_memory

HVP_LAYERS = (784, 512, 256, 10)
HVP_BATCH = 128
QUICK_HVP_LAYERS = (24, 16, 12, 10)
QUICK_HVP_BATCH = 8
# Depth, width, batch of the checkpoint benchmark. The batch exceeds the width so activations, not the
# weights and their gradients, fill memory: the regime where trading recomputation for memory pays. A
# record keeps about one activation per layer, so the saving grows with depth over the segment length.
CHECKPOINT_NET = (32, 128, 1024)
QUICK_CHECKPOINT_NET = (32, 64, 256)
SEGMENT_LAYERS = 4
# Step of the central difference that checks tape's HVP (relative to W1's entries, which are ~1/sqrt(784)).
DIFFERENCE_STEP = 1e-5
REFERENCE_METHOD = "PyTorch double backward"


def torch_threads() -> int | None:
    """PyTorch's intra-op thread count as it stands (never changed here), or None without PyTorch."""
    if not peers.installed("torch"):
        return None
    import torch

    return torch.get_num_threads()


def _load_average() -> str:
    try:
        return "/".join(f"{load:.1f}" for load in os.getloadavg())
    except OSError:
        return "unknown"


# ---------------------------------------------------------------------------------------------------
# 1. Hessian-vector product of an MLP loss with respect to its first weight matrix.


@dataclass(frozen=True)
class MLPProblem:
    """A tanh MLP with fixed data: ``inputs`` (batch, n0), one-hot ``targets``, ``weights[k]`` (n_k, n_k+1),
    ``biases[k]`` (n_k+1,) and a random ``direction`` shaped like ``weights[0]``, all float64."""

    inputs: np.ndarray
    targets: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    direction: np.ndarray

    @property
    def batch(self) -> int:
        return self.inputs.shape[0]

    @property
    def layers(self) -> tuple[int, ...]:
        return (self.weights[0].shape[0], *(weight.shape[1] for weight in self.weights))


def make_mlp_problem(layers: Sequence[int] = HVP_LAYERS, batch: int = HVP_BATCH, seed: int = 0) -> MLPProblem:
    """Random data, scaled weights (so tanh is neither saturated nor linear) and a direction.

    Examples
    --------
    >>> problem = make_mlp_problem((6, 5, 3), batch=4)
    >>> problem.inputs.shape, problem.direction.shape, problem.layers
    ((4, 6), (6, 5), (6, 5, 3))
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, layers[-1], size=batch)
    return MLPProblem(
        inputs=rng.standard_normal((batch, layers[0])),
        targets=np.eye(layers[-1])[labels],
        weights=tuple(
            rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
            for fan_in, fan_out in itertools.pairwise(layers)
        ),
        biases=tuple(0.1 * rng.standard_normal(fan_out) for fan_out in layers[1:]),
        direction=rng.standard_normal((layers[0], layers[1])),
    )


def default_problem(quick: bool = False) -> MLPProblem:
    """The benchmark's problem: 784-512-256-10 with batch 128, or a tiny one for quick runs."""
    return make_mlp_problem(QUICK_HVP_LAYERS, QUICK_HVP_BATCH) if quick else make_mlp_problem()


def cross_entropy(
    first_weight: Any,
    inputs: Any,
    targets: Any,
    weights: Sequence[Any],
    biases: Sequence[Any],
    tanh: Callable[[Any], Any],
    log_softmax: Callable[[Any], Any],
) -> Any:
    """Mean softmax cross-entropy of the MLP whose first weight is ``first_weight`` (``weights[0]`` unused).

    Written once for every library: ``tanh`` and ``log_softmax`` (over the last axis) are the library's.
    """
    hidden = inputs
    last = len(biases) - 1
    for k, (weight, bias) in enumerate(zip((first_weight, *weights[1:]), biases, strict=True)):
        hidden = hidden @ weight + bias
        if k < last:
            hidden = tanh(hidden)
    return -(targets * log_softmax(hidden)).sum() / inputs.shape[0]


def loss_of_first_weight(
    problem: MLPProblem, tanh: Callable[[Any], Any], log_softmax: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """``cross_entropy`` as a function of W1 alone, on ``problem``'s numpy data, with a library's ``tanh``
    and ``log_softmax`` (for libraries that take numpy arrays as they are)."""
    return lambda first_weight: cross_entropy(
        first_weight,
        problem.inputs,
        problem.targets,
        problem.weights,
        problem.biases,
        tanh,
        log_softmax,
    )


def tape_loss(problem: MLPProblem) -> Callable[[Any], Any]:
    """The loss as a function of W1 on tape tensors (and plain arrays)."""
    return loss_of_first_weight(problem, np.tanh, lambda logits: tape.log_softmax(logits, axis=-1))


def tape_hvp(problem: MLPProblem) -> Callable[[], np.ndarray]:
    """``tape.hvp``: one forward, a recorded reverse sweep, and a reverse sweep through that."""
    loss = tape_loss(problem)
    return lambda: tape.hvp(loss, (problem.weights[0],), (problem.direction,))[0]


def _tape_nested_grad(problem: MLPProblem) -> Callable[[], np.ndarray]:
    gradient = tape.grad(tape_loss(problem))
    directional = tape.grad(lambda first_weight: np.sum(gradient(first_weight) * problem.direction))
    return lambda: directional(problem.weights[0])


def _tape_gradient(problem: MLPProblem) -> Callable[[], np.ndarray]:
    gradient = tape.grad(tape_loss(problem))
    return lambda: gradient(problem.weights[0])


def _torch_loss(problem: MLPProblem) -> tuple[Callable[[Any], Any], Any, Any]:
    import torch

    inputs, targets = torch.from_numpy(problem.inputs), torch.from_numpy(problem.targets)
    weights = [torch.from_numpy(weight) for weight in problem.weights]
    biases = [torch.from_numpy(bias) for bias in problem.biases]

    def loss(first_weight: Any) -> Any:
        return cross_entropy(
            first_weight,
            inputs,
            targets,
            weights,
            biases,
            torch.tanh,
            lambda logits: torch.log_softmax(logits, dim=-1),
        )

    return loss, weights[0], torch.from_numpy(problem.direction)


def _torch_double_backward(problem: MLPProblem) -> Callable[[], np.ndarray]:
    import torch

    loss, first_weight, direction = _torch_loss(problem)

    def run() -> np.ndarray:
        leaf = first_weight.detach().requires_grad_()
        (gradient,) = torch.autograd.grad(loss(leaf), leaf, create_graph=True)
        (product,) = torch.autograd.grad((gradient * direction).sum(), leaf)
        return product.numpy()

    return run


def _torch_forward_over_reverse(problem: MLPProblem) -> Callable[[], np.ndarray]:
    import torch.func

    loss, first_weight, direction = _torch_loss(problem)
    gradient = torch.func.grad(loss)
    return lambda: torch.func.jvp(gradient, (first_weight,), (direction,))[1].numpy()


def _torch_gradient(problem: MLPProblem) -> Callable[[], np.ndarray]:
    import torch

    loss, first_weight, _ = _torch_loss(problem)

    def run() -> np.ndarray:
        leaf = first_weight.detach().requires_grad_()
        return torch.autograd.grad(loss(leaf), leaf)[0].numpy()

    return run


def _jax_pieces(problem: MLPProblem) -> tuple[Any, Callable[..., Any], tuple[Any, ...]]:
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 like every other method here
    import jax.numpy as jnp

    def loss(first_weight: Any, inputs: Any, targets: Any, weights: Any, biases: Any) -> Any:
        return cross_entropy(
            first_weight, inputs, targets, weights, biases, jnp.tanh, lambda z: jax.nn.log_softmax(z, axis=-1)
        )

    # Data go in as arguments, not closed over: under jit, closed-over arrays become baked-in constants.
    data = (
        jnp.asarray(problem.inputs),
        jnp.asarray(problem.targets),
        tuple(jnp.asarray(weight) for weight in problem.weights),
        tuple(jnp.asarray(bias) for bias in problem.biases),
    )
    return jax, loss, data


def _jax_hvp(jit: bool) -> Callable[[MLPProblem], Callable[[], np.ndarray]]:
    def prepare(problem: MLPProblem) -> Callable[[], np.ndarray]:
        jax, loss, data = _jax_pieces(problem)
        direction = jax.numpy.asarray(problem.direction)

        def product(first_weight: Any, direction: Any, *data: Any) -> Any:
            gradient = jax.grad(lambda weight: loss(weight, *data))
            return jax.jvp(gradient, (first_weight,), (direction,))[1]

        function = jax.jit(product) if jit else product
        return lambda: np.asarray(function(data[2][0], direction, *data).block_until_ready())

    return prepare


def _jax_gradient(problem: MLPProblem) -> Callable[[], np.ndarray]:
    jax, loss, data = _jax_pieces(problem)
    gradient = jax.jit(jax.grad(loss))
    return lambda: np.asarray(gradient(data[2][0], *data).block_until_ready())


def _autograd_loss(problem: MLPProblem) -> Callable[[Any], Any]:
    import autograd.numpy as anp

    def log_softmax(logits: Any) -> Any:
        # autograd.scipy's logsumexp would import scipy (seconds) for one line of numpy.
        shifted = logits - anp.max(logits, axis=-1, keepdims=True)
        return shifted - anp.log(anp.sum(anp.exp(shifted), axis=-1, keepdims=True))

    return loss_of_first_weight(problem, anp.tanh, log_softmax)


def _autograd_hvp(problem: MLPProblem) -> Callable[[], np.ndarray]:
    import autograd

    product = autograd.hessian_vector_product(_autograd_loss(problem))
    return lambda: product(problem.weights[0], problem.direction)


def _autograd_gradient(problem: MLPProblem) -> Callable[[], np.ndarray]:
    import autograd

    gradient = autograd.grad(_autograd_loss(problem))
    return lambda: gradient(problem.weights[0])


@dataclass(frozen=True)
class HVPMethod(peers.Method):
    """One way to get H V from an ``MLPProblem`` (or, for ``kind == "gradient"``, the gradient it is
    measured against)."""

    # False when the first call costs seconds (torch.func imports torch._dynamo; JAX compiles): such a
    # method is left out of quick runs.
    quick: bool = True

    @property
    def is_gradient(self) -> bool:
        return self.kind == "gradient"


REVERSE = "reverse-over-reverse"
FORWARD = "forward-over-reverse"
HVP_METHODS = (
    HVPMethod("tape.hvp", "tape", REVERSE, tape_hvp),
    HVPMethod("tape.grad of <tape.grad, V>", "tape", REVERSE, _tape_nested_grad),
    HVPMethod(REFERENCE_METHOD, "torch", REVERSE, _torch_double_backward, "torch"),
    HVPMethod("PyTorch func.jvp(func.grad)", "torch", FORWARD, _torch_forward_over_reverse, "torch", False),
    HVPMethod("JAX jvp(grad)", "jax", FORWARD, _jax_hvp(jit=False), "jax", False),
    HVPMethod("JAX jit(jvp(grad))", "jax", FORWARD, _jax_hvp(jit=True), "jax", False),
    HVPMethod("autograd hessian_vector_product", "autograd", REVERSE, _autograd_hvp, "autograd"),
    HVPMethod("tape.grad", "tape", "gradient", _tape_gradient),
    HVPMethod("PyTorch autograd.grad", "torch", "gradient", _torch_gradient, "torch"),
    HVPMethod("JAX jit(grad)", "jax", "gradient", _jax_gradient, "jax", False),
    HVPMethod("autograd grad", "autograd", "gradient", _autograd_gradient, "autograd"),
)


def finite_difference_hvp(problem: MLPProblem, step: float = DIFFERENCE_STEP) -> np.ndarray:
    """H V by a central difference of ``tape.grad`` along V: (g(W1 + hV) - g(W1 - hV)) / 2h.

    Examples
    --------
    >>> problem = make_mlp_problem((6, 5, 3), batch=4)
    >>> bool(np.allclose(finite_difference_hvp(problem), tape_hvp(problem)(), atol=1e-8))
    True
    """
    gradient = tape.grad(tape_loss(problem))
    first_weight, direction = problem.weights[0], problem.direction
    ahead = gradient(first_weight + step * direction)
    behind = gradient(first_weight - step * direction)
    return (ahead - behind) / (2 * step)


def relative_difference(result: np.ndarray, reference: np.ndarray) -> float:
    """max |result - reference| / max |reference| (inf when the shapes differ)."""
    if np.shape(result) != np.shape(reference):
        return float("inf")
    scale = float(np.max(np.abs(reference))) or 1.0
    return float(np.max(np.abs(result - reference))) / scale


def _failure(error: Exception) -> dict[str, Any]:
    return {"status": "failed", "note": f"{type(error).__name__}: {error}"[:200]}


def run_hvp(
    quick: bool = False, libraries: Sequence[str] | None = None, problem: MLPProblem | None = None
) -> list[dict[str, Any]]:
    """Time every Hessian-vector product (and one gradient per library); print the table; return rows.

    Each row has ``section="hvp"``, the method, library, kind and ``status`` ("ok", "skipped" or
    "failed"); timed rows add median/low/high seconds, the ratio to PyTorch's double backward and the
    relative difference to tape's result. tape.hvp's row adds its relative error to a central difference.
    """
    if problem is None:
        problem = default_problem(quick)
    rounds, repeats, min_time = (1, 3, 0.005) if quick else (3, 3, 0.2)
    references = {"hvp": tape_hvp(problem)(), "gradient": _tape_gradient(problem)()}
    difference_error = relative_difference(references["hvp"], finite_difference_hvp(problem))
    rows: dict[str, dict[str, Any]] = {}
    functions: dict[str, Callable[[], Any]] = {}
    chosen = [method for method in HVP_METHODS if libraries is None or method.library in libraries]
    for method in chosen:
        row = rows[method.name] = {
            "section": "hvp",
            "method": method.name,
            "library": method.library,
            "kind": method.kind,
        }
        if not method.installed:
            row.update(status="skipped", note=f"{method.module} not installed")
            continue
        if quick and not method.quick:
            row.update(status="skipped", note="not in quick runs (its first call takes seconds)")
            continue
        try:
            function = method.prepare(problem)
            result = np.asarray(function())  # imports lazily and compiles (JAX) outside the clock
        except Exception as error:
            row.update(_failure(error))
            continue
        reference = references["gradient" if method.is_gradient else "hvp"]
        row.update(status="ok", relative_difference_to_tape=relative_difference(result, reference))
        functions[method.name] = function
    load_before = _load_average()
    timings = measure_side_by_side(
        {name: (function, None) for name, function in functions.items()},
        rounds,
        repeats,
        min_time,
        on_error=lambda name, error: rows[name].update(_failure(error)),  # one failing must not stop all
    )
    for name, timing in timings.items():
        rows[name].update(median_s=timing.median, low_s=timing.low, high_s=timing.high)
    threads, blas_threads = torch_threads(), blas_info().get("threads")
    reference_row = rows.get(REFERENCE_METHOD, {})
    for row in rows.values():
        row.update(torch_threads=threads, blas_threads=blas_threads, load_average=load_before)
        row.update(layers=list(problem.layers), batch=problem.batch)
        if row["status"] == "ok" and reference_row.get("status") == "ok":
            row["ratio_to_torch"] = row["median_s"] / reference_row["median_s"]
        if row["method"] == "tape.hvp":
            row["finite_difference_relative_error"] = difference_error
    peers.note_not_installed(method.module for method in chosen)
    shown = [rows[method.name] for method in chosen if method.installed]
    _print_hvp_table(shown, problem, threads, blas_threads, difference_error, load_before, rounds)
    return list(rows.values())


def _print_hvp_table(
    rows: list[dict[str, Any]],
    problem: MLPProblem,
    threads: int | None,
    blas_threads: Any,
    difference_error: float,
    load: str,
    rounds: int,
) -> None:
    timed = [row for row in rows if row["status"] == "ok"]
    notes = [f"{row['method']}: {row['status']}, {row['note']}" for row in rows if row["status"] != "ok"]
    against_torch = any("ratio_to_torch" in row for row in timed)  # PyTorch's double backward was timed
    header = ["method", "kind", "median", "spread", *(["vs PyTorch"] if against_torch else [])]
    table = [
        [
            row["method"],
            row["kind"],
            format_time(row["median_s"]),
            format_spread(row["low_s"], row["high_s"]),
            *([f"{row['ratio_to_torch']:.2f}x"] if against_torch else []),
            f"{row['relative_difference_to_tape']:.1e}",
        ]
        for row in timed
    ]
    tape_row = next((row for row in timed if row["method"] == "tape.hvp"), None)
    if tape_row is not None and "ratio_to_torch" in tape_row:
        verdict = "met" if tape_row["ratio_to_torch"] <= 1.0 else "not met"
        notes.append(
            f"target tape.hvp <= PyTorch double backward: {verdict} ({tape_row['ratio_to_torch']:.2f}x)"
        )
    notes.append(
        f"tape.hvp vs central difference of tape.grad along V: relative error {difference_error:.1e}"
    )
    torch_threads_note = "" if threads is None else f"PyTorch {threads}, "
    notes.append(
        f"{rounds} interleaved round(s) of measure per method; threads: {torch_threads_note}numpy's BLAS "
        f"{blas_threads}; load average {load} (1/5/15 min) before timing"
    )
    layers = "-".join(map(str, problem.layers))
    print_table(
        f"Hessian-vector product of a {layers} tanh MLP's cross-entropy wrt W1 "
        f"{problem.weights[0].shape}, batch {problem.batch}, float64",
        [*header, "rel. diff to tape"],
        table,
        "\n  ".join(notes),
    )


def profile_hvp(problem: MLPProblem | None = None, calls: int = 5, top: int = 10) -> str:
    """cProfile of ``calls`` tape.hvp calls: the ``top`` entries by cumulative and by own (total) time.

    Examples
    --------
    >>> "cumulative" in profile_hvp(make_mlp_problem((6, 5, 3), batch=4), calls=1, top=3)
    True
    """
    function = tape_hvp(make_mlp_problem() if problem is None else problem)
    function()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        function()
    profiler.disable()
    report = io.StringIO()
    for order in ("cumulative", "tottime"):
        stats = pstats.Stats(profiler, stream=report)
        stats.sort_stats(order).print_stats(top)
    return report.getvalue()


# ---------------------------------------------------------------------------------------------------
# 2. Checkpoint: peak memory and time of forward+backward through a deep MLP.


@dataclass(frozen=True)
class DeepNet:
    """A deep tanh MLP ``h <- tanh(h @ W + b)``: input (batch, width), ``depth`` square layers."""

    inputs: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    @property
    def activation_bytes(self) -> int:
        """Bytes of one (batch, width) activation: the unit the peak memory is counted in."""
        return self.inputs.nbytes


def make_deep_net(depth: int, width: int, batch: int, seed: int = 0) -> DeepNet:
    """Random float64 net whose activations neither vanish nor saturate over ``depth`` layers.

    Examples
    --------
    >>> net = make_deep_net(3, 4, 5)
    >>> net.inputs.shape, len(net.weights), net.activation_bytes
    ((5, 4), 3, 160)
    """
    rng = np.random.default_rng(seed)
    return DeepNet(
        inputs=rng.standard_normal((batch, width)),
        weights=tuple(rng.standard_normal((width, width)) / np.sqrt(width) for _ in range(depth)),
        biases=tuple(0.1 * rng.standard_normal(width) for _ in range(depth)),
    )


def layer(hidden: Any, weight: Any, bias: Any) -> Any:
    """One layer: tanh(hidden @ weight + bias)."""
    return np.tanh(hidden @ weight + bias)


def segment(hidden: Any, *parameters: Any) -> Any:
    """Consecutive layers; ``parameters`` alternate weight, bias."""
    for weight, bias in zip(parameters[::2], parameters[1::2], strict=True):
        hidden = layer(hidden, weight, bias)
    return hidden


def forward_plain(hidden: Any, weights: Sequence[Any], biases: Sequence[Any]) -> Any:
    """Every layer recorded: the tape keeps each layer's saved values until backward."""
    for weight, bias in zip(weights, biases, strict=True):
        hidden = layer(hidden, weight, bias)
    return hidden


def forward_checkpoint_layers(hidden: Any, weights: Sequence[Any], biases: Sequence[Any]) -> Any:
    """``tape.checkpoint`` around each layer, its weight and bias passed as arguments."""
    for weight, bias in zip(weights, biases, strict=True):
        hidden = tape.checkpoint(layer, hidden, weight, bias)
    return hidden


def forward_checkpoint_segments(
    hidden: Any, weights: Sequence[Any], biases: Sequence[Any], layers_per_segment: int = SEGMENT_LAYERS
) -> Any:
    """``tape.checkpoint`` around each run of ``layers_per_segment`` layers."""
    for start in range(0, len(weights), layers_per_segment):
        stop = start + layers_per_segment
        parameters = []
        for weight, bias in zip(weights[start:stop], biases[start:stop], strict=True):
            parameters += [weight, bias]
        hidden = tape.checkpoint(segment, hidden, *parameters)
    return hidden


CHECKPOINT_CASES: tuple[tuple[str, Callable[[Any, Sequence[Any], Sequence[Any]], Any]], ...] = (
    ("plain", forward_plain),
    ("checkpoint every layer", forward_checkpoint_layers),
    (f"checkpoint every {SEGMENT_LAYERS} layers", forward_checkpoint_segments),
)


def training_step(
    net: DeepNet, forward: Callable[[Any, Sequence[Any], Sequence[Any]], Any]
) -> Callable[[], tuple[np.ndarray, ...]]:
    """A call running forward + backward of ``sum(net(x))``; it returns the gradients of the input,
    then of every weight, then of every bias."""

    def step() -> tuple[np.ndarray, ...]:
        hidden = tape.tensor(net.inputs, requires_grad=True)
        weights = [tape.tensor(weight, requires_grad=True) for weight in net.weights]
        biases = [tape.tensor(bias, requires_grad=True) for bias in net.biases]
        loss = np.sum(forward(hidden, weights, biases))
        return tape.gradients(loss, [hidden, *weights, *biases])

    return step


def run_checkpoint(
    quick: bool = False, net_shape: tuple[int, int, int] | None = None
) -> list[dict[str, Any]]:
    """Time and peak memory of one forward+backward, plain and checkpointed; print the table; return rows.

    Each row has ``section="checkpoint"``, the method, ``median_s``/``low_s``/``high_s``, ``peak_bytes``,
    ``memory_ratio`` and ``time_overhead`` (both relative to plain) and the largest difference of its
    gradients from plain's.
    """
    depth, width, batch = net_shape or (QUICK_CHECKPOINT_NET if quick else CHECKPOINT_NET)
    net = make_deep_net(depth, width, batch)
    rounds, repeats, min_time = (1, 3, 0.005) if quick else (3, 3, 0.05)
    steps = {name: training_step(net, forward) for name, forward in CHECKPOINT_CASES}
    plain_gradients = steps["plain"]()
    rows = []
    for name, step in steps.items():
        gradients = step()
        difference = max(
            float(np.max(np.abs(ours - theirs)))
            for ours, theirs in zip(gradients, plain_gradients, strict=True)
        )
        del gradients
        peak = peak_memory(step, "tracemalloc")
        rows.append(
            {
                "section": "checkpoint",
                "method": name,
                "status": "ok",
                "depth": depth,
                "width": width,
                "batch": batch,
                "peak_bytes": peak,
                "peak_activations": peak / net.activation_bytes,
                "max_gradient_difference": difference,
            }
        )
    load_before = _load_average()
    # tape's own code, so no on_error: a failure is a bug to see, not to skip.
    timings = measure_side_by_side(
        {name: (step, None) for name, step in steps.items()}, rounds, repeats, min_time
    )
    for row in rows:
        timing = timings[row["method"]]
        row.update(median_s=timing.median, low_s=timing.low, high_s=timing.high)
    plain = rows[0]
    for row in rows:
        row["memory_ratio"] = row["peak_bytes"] / plain["peak_bytes"]
        row["time_overhead"] = row["median_s"] / plain["median_s"]
    parameter_bytes = sum(weight.nbytes for weight in net.weights) + sum(bias.nbytes for bias in net.biases)
    print_table(
        f"Checkpoint: forward+backward of a {depth}-layer tanh MLP, width {width}, batch {batch}, float64",
        ["method", "median", "spread", "time vs plain", "peak memory", "in activations", "memory vs plain"],
        [
            [
                row["method"],
                format_time(row["median_s"]),
                format_spread(row["low_s"], row["high_s"]),
                f"{row['time_overhead']:.2f}x",
                format_bytes(row["peak_bytes"]),
                f"{row['peak_activations']:.1f}",
                f"{row['memory_ratio']:.2f}",
            ]
            for row in rows
        ],
        f"peak: tracemalloc, separate untimed run; one activation ({batch}x{width}) is "
        f"{format_bytes(net.activation_bytes)}; parameters (and so their gradients) "
        f"{format_bytes(parameter_bytes)}; gradients agree with plain to "
        f"{max(row['max_gradient_difference'] for row in rows):.1e}\n"
        f"  {rounds} interleaved round(s) of measure per method; load average {load_before} before timing",
    )
    return rows


# ---------------------------------------------------------------------------------------------------


def run(
    quick: bool = False,
    libraries: Sequence[str] | None = None,
    net_shape: tuple[int, int, int] | None = None,
) -> list[dict[str, Any]]:
    """Both benchmarks, printed as tables; the rows of both (``section`` "hvp" or "checkpoint").

    ``libraries`` limits the HVP peers (e.g. ``("tape", "torch")``); by default every installed one runs.
    ``net_shape`` is the checkpoint benchmark's (depth, width, batch).

    Examples
    --------
    >>> rows = run(quick=True, libraries=("tape",))  # doctest: +SKIP
    >>> sorted({row["section"] for row in rows})  # doctest: +SKIP
    ['checkpoint', 'hvp']
    """
    return run_hvp(quick, libraries) + run_checkpoint(quick, net_shape)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.higher_order [--quick] [--out DIR] [--profile] [--net ...]``."""
    parser = suite_command_line("higher_order", __doc__, profile="a few tape.hvp calls")
    parser.add_argument(
        "--net",
        nargs=3,
        type=int,
        metavar=("DEPTH", "WIDTH", "BATCH"),
        help=f"checkpoint benchmark's net (default {' '.join(map(str, CHECKPOINT_NET))})",
    )
    options = parser.parse_args(argv)
    rows = run(quick=options.quick, net_shape=None if options.net is None else tuple(options.net))
    report_results("higher_order", rows, options.out)
    if options.profile:
        problem = default_problem(options.quick)
        print(f"\ncProfile of 5 tape.hvp calls ({'-'.join(map(str, problem.layers))}, batch {problem.batch})")
        print(profile_hvp(problem))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""tape's eager speed against PyTorch and the other peers: the project's summary table, in one run.

Eight workloads, each in float64 and float32, every library side by side (``measure_side_by_side``:
several interleaved rounds, the median of their medians, the fastest and slowest repeat as the spread):

1-3. MLP 784-512-256-10 (ReLU), batch 128, softmax cross-entropy: the forward pass (recorded, as a
     training forward is), forward + backward, and a training step (plus the SGD update and zeroing the
     gradients, as each library does);
4.   a small CNN's training step (64 x 1 x 28 x 28, conv 8, pool, conv 16, pool, linear 10);
5.   a Hessian-vector product of a 784-512-256-10 tanh MLP's loss with respect to W1 (higher_order's);
6.   ``sum(tanh(x) * sin(x) + x**2)`` on 10^6 elements, forward + backward (large_elementwise's);
7.   the batch VJP of relu(X W^T + b), X 100 x 4096, W 2048 x 4096 (batch_vjp's);
8.   a chain of 200 elementwise ops on 8 elements, forward + backward, per op (per_op's).

tape runs in two spellings where they differ: ``tape``, ordinary numpy on tensors (``np.maximum``, ``@``, a
logsumexp cross-entropy written in numpy, ``p -= lr * p.grad`` under ``tape.no_grad()``), and ``tape.nn``
(``nn.Linear``, ``nn.ReLU``, ``nn.CrossEntropyLoss``, ``nn.optim.SGD``). PyTorch runs with ``torch.nn``
and ``torch.optim`` where there are layers, at its default thread count and at one thread; JAX runs under
``jax.jit`` and eagerly, op by op (the same code without ``jax.jit``); HIPS autograd and MyGrad run where
they can. Each library's first loss or gradient is checked against tape's before anything is timed.
numpy's forward pass alone is the floor. Peers that are not installed are named in one line; ``--quick``
also leaves out JAX, whose first calls compile for seconds, and shrinks the large problems.

Most workloads reuse the other suites' cases (training_step, higher_order, large_elementwise, batch_vjp,
per_op); this module only adds what they lack and lays the figures out as one table. It must not change
what those suites measure.

python -m benchmarks --suite peers            # full (a few minutes on 2 cores)
python -m benchmarks.peer_table --quick       # small sizes, one round, no JAX (seconds)
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import numpy as np

import tape
import tape.nn as nn
from benchmarks import batch_vjp, peers, per_op
from benchmarks import higher_order as hvp
from benchmarks import large_elementwise as elementwise
from benchmarks import training_step as steps
from benchmarks import vjp_vs_jacobian as layer_vjp
from benchmarks.console import progress_bar, suite_main
from benchmarks.results import blas_info, machine_info
from benchmarks.timing import Timing, format_time, measure_side_by_side, print_table

DTYPES = (np.float64, np.float32)
TAPE = "tape"
TAPE_NN = "tape.nn"
TORCH = "PyTorch"
TORCH_ONE_THREAD = "PyTorch, 1 thread"
TAPE_ONE_THREAD = "tape, 1 thread"
TAPE_NUMPY_PRODUCTS = "tape, 1 thread, numpy's BLAS"
JAX_JIT = "JAX (jit)"
JAX_EAGER = "JAX (eager)"
AUTOGRAD = "HIPS autograd"
MYGRAD = "MyGrad"
NUMPY_FLOOR = "numpy forward alone"
# Column -> the module it needs (None: tape and numpy), in the order the tables show them.
COLUMNS: dict[str, str | None] = {
    TAPE: None,
    TAPE_NN: None,
    TORCH: "torch",
    TAPE_ONE_THREAD: "threadpoolctl",  # limits numpy's BLAS
    TAPE_NUMPY_PRODUCTS: "tape.ops.mkl",  # only where tape's products are MKL's: what MKL brings
    TORCH_ONE_THREAD: "torch",
    JAX_JIT: "jax",
    JAX_EAGER: "jax",
    AUTOGRAD: "autograd",
    MYGRAD: "mygrad",
    NUMPY_FLOOR: None,
}
OTHER_PEERS = (TAPE_ONE_THREAD, TAPE_NUMPY_PRODUCTS, TORCH_ONE_THREAD, JAX_JIT, JAX_EAGER, AUTOGRAD, MYGRAD)
NOT_IN_QUICK_RUNS = (JAX_JIT, JAX_EAGER)  # the first call of each compiles for seconds
# A peer's first loss or gradient must agree with tape's to this (largest difference / largest value).
TOLERANCE = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 2e-3}
NOT_APPLICABLE = "n/a"
LEARNING_RATE = steps.LEARNING_RATE
QUICK_ELEMENTS = 10**5


@dataclass(frozen=True)
class Settings:
    """How long to measure: interleaved rounds, repeats per round, seconds per repeat at least, and the
    pause before each case (``measure_side_by_side``'s ``settle``)."""

    rounds: int
    repeats: int
    min_time: float
    settle: float = 0.0


FULL = Settings(rounds=3, repeats=3, min_time=0.05, settle=0.25)
QUICK = Settings(rounds=1, repeats=2, min_time=0.002)

Call = Callable[[], Any]
Build = Callable[[Any], Call]


@dataclass(frozen=True)
class Workload:
    """One row of the table (in each dtype): how to make its problem, and how each column builds a call
    from it. Every call returns what is checked against tape's: a loss, or a list of gradients."""

    key: str
    label: str
    problem: Callable[[Any, bool], Any]
    cases: Mapping[str, Build]
    ops: int = 1  # times are shown per op, over this many ops
    quick_label: str | None = None  # where --quick shrinks the problem

    def title(self, quick: bool) -> str:
        """The row's name in the tables: what runs, at the size it runs."""
        return self.quick_label if quick and self.quick_label is not None else self.label


# -- the MLP: forward, forward + backward, training step ----------------------------------------------------
def mlp_loss(weights: Sequence[Any], x: Any, y: np.ndarray, xp: Any = np) -> Any:
    """Mean softmax cross-entropy of the ReLU MLP ``weights`` (torch's layout), written once in numpy's
    spelling for numpy, tape, JAX (``xp=jax.numpy``), autograd and MyGrad.

    Examples
    --------
    >>> problem = steps.make_problem("mlp", np.float64)
    >>> bool(np.isclose(mlp_loss(problem.weights, problem.x, problem.y), steps.numpy_forward(problem)()))
    True
    """
    h = x
    for layer in range(0, len(weights) - 2, 2):
        h = xp.maximum(h @ weights[layer].T + weights[layer + 1], 0)
    logits = h @ weights[-2].T + weights[-1]
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    log_probabilities = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    return -xp.mean(log_probabilities[np.arange(len(y)), y])


def forward_backward(loss: Call, parameters: Sequence[Any], zero_grad: Call) -> Call:
    """A call that zeroes the gradients, runs ``loss().backward()`` and returns the parameters' gradients
    (tape and PyTorch spell it the same)."""

    def run() -> list[Any]:
        zero_grad()
        loss().backward()
        return [parameter.grad for parameter in parameters]

    return run


def _set_grads_to_none(parameters: Sequence[Any]) -> Call:
    def zero_grad() -> None:
        for parameter in parameters:
            parameter.grad = None

    return zero_grad


def _tape_parameters(problem: steps.Problem) -> list[tape.Tensor]:
    return [tape.tensor(weight, requires_grad=True) for weight in steps._copies(problem)]


def _tape_numpy_loss(problem: steps.Problem) -> tuple[Call, list[tape.Tensor]]:
    parameters = _tape_parameters(problem)
    x, y = problem.x, problem.y
    if problem.kind == "mlp":
        return lambda: mlp_loss(parameters, x, y), parameters

    def cnn_loss() -> Any:
        # No layers: tape's convolution and pooling ops, then the same numpy cross-entropy.
        h = x
        for layer in (0, 2):
            convolved = tape.ops.conv.conv2d(h, parameters[layer], parameters[layer + 1])
            h = tape.ops.conv.max_pool2d(np.maximum(convolved, 0), 2)
        return steps._numpy_cross_entropy(h.reshape(len(h), -1) @ parameters[4].T + parameters[5], y)

    return cnn_loss, parameters


def tape_forward(problem: steps.Problem) -> Call:
    """tape's recorded forward pass and loss in numpy's spelling."""
    return _tape_numpy_loss(problem)[0]


def tape_forward_backward(problem: steps.Problem) -> Call:
    """tape's forward and backward in numpy's spelling, from gradients set to None."""
    loss, parameters = _tape_numpy_loss(problem)
    return forward_backward(loss, parameters, _set_grads_to_none(parameters))


def tape_step(problem: steps.Problem) -> Call:
    """tape's training step in numpy's spelling: ``p -= lr * p.grad`` under ``tape.no_grad()``, then each
    gradient set to None (as ``nn.optim.SGD.zero_grad`` does)."""
    loss, parameters = _tape_numpy_loss(problem)

    def step() -> Any:
        value = loss()
        value.backward()
        with tape.no_grad():
            for parameter in parameters:
                parameter -= LEARNING_RATE * parameter.grad
        for parameter in parameters:
            parameter.grad = None
        return value

    return step


def _tape_nn_loss(problem: steps.Problem) -> tuple[Call, nn.Module]:
    # As training_step.tape_step builds it, stopping before the optimizer.
    model = steps.tape_model(problem.kind, problem.x.dtype)
    model.load_state_dict(dict(zip(model.state_dict(), steps._copies(problem), strict=True)))
    criterion = nn.CrossEntropyLoss()
    x, y = problem.x, problem.y
    return lambda: criterion(model(x), y), model


def tape_nn_forward(problem: steps.Problem) -> Call:
    """tape.nn's forward and ``nn.CrossEntropyLoss``."""
    return _tape_nn_loss(problem)[0]


def tape_nn_forward_backward(problem: steps.Problem) -> Call:
    """tape.nn's forward and backward, after ``model.zero_grad()``."""
    loss, model = _tape_nn_loss(problem)
    return forward_backward(loss, list(model.parameters()), model.zero_grad)


def _torch_mlp_loss(problem: steps.Problem) -> tuple[Call, Any]:
    # torch.nn layers as training_step.torch_step builds them (which keeps its model to itself).
    import torch

    layers: list[torch.nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(steps.MLP_LAYERS):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(torch.from_numpy(problem.x).dtype)
    with torch.no_grad():
        for parameter, value in zip(model.parameters(), steps._copies(problem), strict=True):
            parameter.copy_(torch.from_numpy(value))
    criterion = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(problem.x), torch.from_numpy(problem.y)
    return lambda: criterion(model(x), y), model


def torch_forward(problem: steps.Problem) -> Call:
    """torch.nn's forward and ``CrossEntropyLoss``, recording the graph (gradients enabled)."""
    return _torch_mlp_loss(problem)[0]


def torch_forward_backward(problem: steps.Problem) -> Call:
    """torch.nn's forward and backward, after ``model.zero_grad()``."""
    loss, model = _torch_mlp_loss(problem)
    return forward_backward(loss, list(model.parameters()), model.zero_grad)


def _jax_mlp(problem: steps.Problem) -> tuple[Any, Callable[..., Any], tuple[Any, ...]]:
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 stays float64; float32 arrays stay float32
    import jax.numpy as jnp

    def loss(weights: list[Any], x: Any, y: Any) -> Any:
        return mlp_loss(weights, x, y, jnp)

    arguments = ([jnp.asarray(weight) for weight in problem.weights], jnp.asarray(problem.x), problem.y)
    return jax, loss, arguments


def jax_forward(problem: steps.Problem) -> Call:
    """The loss under ``jax.jit`` (the data passed in, not baked into the program)."""
    jax, loss, arguments = _jax_mlp(problem)
    forward = jax.jit(loss)
    return lambda: forward(*arguments).block_until_ready()


def jax_forward_backward(problem: steps.Problem) -> Call:
    """``jax.value_and_grad`` of the loss in the weights, under ``jax.jit``; returns the gradients."""
    jax, loss, arguments = _jax_mlp(problem)
    value_and_grad = jax.jit(jax.value_and_grad(loss))

    def run() -> list[Any]:
        _, gradients = jax.block_until_ready(value_and_grad(*arguments))
        return gradients

    return run


def autograd_forward_backward(problem: steps.Problem) -> Call:
    """HIPS autograd's ``grad`` of the loss in the weights (it records only inside ``grad``)."""
    import autograd
    import autograd.numpy as anp

    x, y, weights = problem.x, problem.y, steps._copies(problem)
    gradient = autograd.grad(lambda weights: mlp_loss(weights, x, y, anp))
    return lambda: gradient(weights)


def _mygrad_mlp_loss(problem: steps.Problem) -> tuple[Call, list[Any]]:
    import mygrad

    parameters = [mygrad.tensor(weight) for weight in steps._copies(problem)]
    return lambda: mlp_loss(parameters, problem.x, problem.y, mygrad), parameters


def mygrad_forward(problem: steps.Problem) -> Call:
    """MyGrad's recorded forward pass, in numpy's spelling with mygrad's functions."""
    return _mygrad_mlp_loss(problem)[0]


def mygrad_forward_backward(problem: steps.Problem) -> Call:
    """MyGrad's forward and backward (each call builds fresh graph nodes; gradients are not accumulated)."""
    loss, parameters = _mygrad_mlp_loss(problem)
    return forward_backward(loss, parameters, lambda: None)


# -- the other workloads, from the suites that measure them --------------------------------------------------
def _cast(problem: Any, dtype: Any) -> Any:
    # A frozen dataclass of arrays with every floating array in ``dtype``.
    changes = {}
    for field in dataclasses.fields(problem):
        value = getattr(problem, field.name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            changes[field.name] = value.astype(dtype)
        elif isinstance(value, tuple):
            changes[field.name] = tuple(np.asarray(item, dtype=dtype) for item in value)
    return dataclasses.replace(problem, **changes)


def _numpy_log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def hvp_numpy_forward(problem: hvp.MLPProblem) -> Call:
    """numpy's forward pass of the tanh MLP's loss: the unit an HVP costs a few of."""
    loss = hvp.loss_of_first_weight(problem, np.tanh, _numpy_log_softmax)
    return lambda: loss(problem.weights[0])


def _elementwise_problem(dtype: Any, quick: bool) -> np.ndarray:
    size = QUICK_ELEMENTS if quick else elementwise.SIZE
    return np.random.default_rng(0).uniform(-3, 3, size).astype(dtype)


def _pick(cases: Callable[[Any], Mapping[str, Call]], name: str) -> Build:
    """The case ``name`` of a suite's ``cases(problem)`` builder."""
    return lambda problem: cases(problem)[name]


def _layer_method(name: str) -> Build:
    return next(method.prepare for method in layer_vjp.METHODS if method.name == name)


def _per_op_problem(dtype: Any, quick: bool) -> np.ndarray:
    return np.random.default_rng(0).random(per_op.SIZE).astype(dtype)


def jax_per_op(x0: np.ndarray) -> Call:
    """``jax.grad`` of the sum of per_op's chain, under ``jax.jit`` (so one fused program, not 200 ops)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    gradient = jax.jit(jax.grad(lambda x: per_op.chain(x, jax.numpy.sin, jax.numpy.tanh).sum()))
    x = jax.numpy.asarray(x0)
    return lambda: gradient(x).block_until_ready()


@contextlib.contextmanager
def jit_as_identity() -> Iterator[None]:
    """``jax.jit`` replaced by the identity while a JAX case is built, then restored: the other suites'
    JAX cases, written for ``jax.jit``, come out as the same code run eagerly, op by op, as un-jitted JAX
    runs (jax.numpy's own functions stay compiled). ``jax.disable_jit`` would also uncompile those and
    measure something slower than JAX's eager mode."""
    import jax

    jit = jax.jit
    jax.jit = lambda function, *options, **named_options: function
    try:
        yield
    finally:
        jax.jit = jit


def eager(build: Build) -> Build:
    """A JAX case written for ``jax.jit``, built without it (see ``jit_as_identity``)."""

    def prepare(problem: Any) -> Call:
        with jit_as_identity():
            return build(problem)

    return prepare


MLP_LABEL = f"MLP {'-'.join(map(str, steps.MLP_LAYERS))}"
HVP_LABEL = "HVP, tanh MLP {}"
VJP_LABEL = f"batch VJP, {batch_vjp.BATCH} x {{}} -> {{}}"
WORKLOADS = (
    Workload(
        "mlp_forward",
        f"{MLP_LABEL} forward",
        lambda dtype, quick: steps.make_problem("mlp", dtype),
        {
            TAPE: tape_forward,
            TAPE_NN: tape_nn_forward,
            TORCH: torch_forward,
            JAX_JIT: jax_forward,
            JAX_EAGER: eager(jax_forward),
            MYGRAD: mygrad_forward,
            NUMPY_FLOOR: steps.numpy_forward,
        },
    ),
    Workload(
        "mlp_forward_backward",
        f"{MLP_LABEL} fwd+bwd",
        lambda dtype, quick: steps.make_problem("mlp", dtype),
        {
            TAPE: tape_forward_backward,
            TAPE_NN: tape_nn_forward_backward,
            TORCH: torch_forward_backward,
            JAX_JIT: jax_forward_backward,
            JAX_EAGER: eager(jax_forward_backward),
            AUTOGRAD: autograd_forward_backward,
            MYGRAD: mygrad_forward_backward,
            NUMPY_FLOOR: steps.numpy_forward,
        },
    ),
    Workload(
        "mlp_step",
        f"{MLP_LABEL} step",
        lambda dtype, quick: steps.make_problem("mlp", dtype),
        {
            TAPE: tape_step,
            TAPE_NN: steps.tape_step,
            TORCH: steps.torch_step,
            JAX_JIT: steps.jax_step,
            JAX_EAGER: eager(steps.jax_step),
            AUTOGRAD: steps.autograd_step,
            MYGRAD: steps.mygrad_step,
            NUMPY_FLOOR: steps.numpy_forward,
        },
    ),
    Workload(
        "cnn_step",
        "CNN step",
        lambda dtype, quick: steps.make_problem("cnn", dtype),
        {
            TAPE: tape_step,
            TAPE_NN: steps.tape_step,
            TORCH: steps.torch_step,
            JAX_JIT: steps.jax_step,
            JAX_EAGER: eager(steps.jax_step),
            MYGRAD: steps.mygrad_step,
            NUMPY_FLOOR: steps.numpy_forward,
        },
    ),
    Workload(
        "hvp",
        HVP_LABEL.format("-".join(map(str, hvp.HVP_LAYERS))),
        lambda dtype, quick: _cast(hvp.default_problem(quick), dtype),
        {
            TAPE: hvp.tape_hvp,
            TORCH: hvp._torch_double_backward,
            JAX_JIT: hvp._jax_hvp(jit=True),
            JAX_EAGER: hvp._jax_hvp(jit=False),
            AUTOGRAD: hvp._autograd_hvp,
            NUMPY_FLOOR: hvp_numpy_forward,
        },
        quick_label=HVP_LABEL.format("-".join(map(str, hvp.QUICK_HVP_LAYERS))),
    ),
    Workload(
        "large_elementwise",
        f"elementwise fwd+bwd, {elementwise.SIZE:.0e}",
        _elementwise_problem,
        {
            TAPE: _pick(elementwise._tape_cases, elementwise.TAPE),
            TORCH: _pick(elementwise._torch_cases, "PyTorch forward+backward"),
            JAX_JIT: _pick(elementwise._jax_cases, "JAX jit(grad)"),
            JAX_EAGER: eager(_pick(elementwise._jax_cases, "JAX jit(grad)")),
            AUTOGRAD: _pick(elementwise._autograd_cases, "autograd forward+backward"),
            MYGRAD: _pick(elementwise._mygrad_cases, "MyGrad forward+backward"),
            NUMPY_FLOOR: lambda x0: lambda: elementwise.function(x0),
        },
        quick_label=f"elementwise fwd+bwd, {QUICK_ELEMENTS:.0e}",
    ),
    Workload(
        "batch_vjp",
        VJP_LABEL.format(batch_vjp.INPUTS, batch_vjp.INPUTS // 2),
        lambda dtype, quick: _cast(
            layer_vjp.make_layer(batch_vjp.INPUTS // 8 if quick else batch_vjp.INPUTS, batch=batch_vjp.BATCH),
            dtype,
        ),
        {
            TAPE: _layer_method("tape VJP"),
            TORCH: _layer_method("PyTorch VJP"),
            JAX_JIT: _layer_method("JAX vjp (jit)"),
            JAX_EAGER: eager(_layer_method("JAX vjp (jit)")),
            AUTOGRAD: _layer_method("autograd VJP"),
            MYGRAD: _layer_method("MyGrad VJP"),
            NUMPY_FLOOR: batch_vjp._numpy_forward,
        },
        quick_label=VJP_LABEL.format(batch_vjp.INPUTS // 8, batch_vjp.INPUTS // 16),
    ),
    Workload(
        "per_op",
        f"{per_op.CHAIN_LENGTH}-op chain on ({per_op.SIZE},), per op",
        _per_op_problem,
        {
            TAPE: _pick(per_op._tape_cases, "tape forward+backward"),
            TORCH: _pick(per_op._torch_cases, "PyTorch forward+backward"),
            JAX_JIT: jax_per_op,
            JAX_EAGER: eager(jax_per_op),
            AUTOGRAD: _pick(per_op._autograd_cases, "autograd forward+backward"),
            MYGRAD: _pick(per_op._mygrad_cases, "MyGrad forward+backward"),
            NUMPY_FLOOR: lambda x0: lambda: per_op.chain(x0),
        },
        ops=per_op.CHAIN_LENGTH,
    ),
)


# -- checking and measuring ----------------------------------------------------------------------------------
def as_arrays(value: Any) -> list[np.ndarray]:
    """A loss or gradients from any library as a flat list of float64 numpy arrays.

    Examples
    --------
    >>> as_arrays([tape.tensor([1.0, 2.0]), (np.float32(3.0),)])
    [array([1., 2.]), array(3.)]
    """
    if isinstance(value, list | tuple):
        return [array for item in value for array in as_arrays(item)]
    if isinstance(value, tape.Tensor):
        value = value.detach()
    elif type(value).__module__.startswith("torch"):
        value = value.detach().numpy()
    return [np.asarray(value, dtype=np.float64)]


def relative_difference(result: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """The largest of max |result - reference| / max |reference| over the arrays (inf if they differ in
    number or shape)."""
    if len(result) != len(reference):
        return float("inf")
    return max(hvp.relative_difference(ours, theirs) for ours, theirs in zip(result, reference, strict=True))


# Column -> the column whose call it times again, and the thread limit it times it under (training_step's).
@contextlib.contextmanager
def _numpy_products_at_one_thread() -> Iterator[None]:
    # tape's products on numpy's BLAS for a while, as without the mkl extra (ops/mkl.py falls back to numpy
    # when it has no gemm), to measure what MKL brings side by side.
    gemms = tape.ops.mkl._gemms
    tape.ops.mkl._gemms = None
    try:
        with steps.blas_threads(1):
            yield
    finally:
        tape.ops.mkl._gemms = gemms


ONE_THREAD: dict[str, tuple[str, Callable[[], contextlib.AbstractContextManager[Any]]]] = {
    TAPE_ONE_THREAD: (TAPE, lambda: steps.blas_threads(1)),
    TAPE_NUMPY_PRODUCTS: (TAPE, _numpy_products_at_one_thread),
    TORCH_ONE_THREAD: (TORCH, lambda: steps.torch_threads(1)),
}


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0][:160]


def measure_row(
    workload: Workload, dtype: Any, columns: Sequence[str], quick: bool, settings: Settings
) -> dict[str, Any]:
    """Build the row's cases for the ``columns`` that run here, check each first result against tape's,
    time them side by side; the timings (per op where the workload counts ops), the differences to tape
    and the failures (a peer that raised or disagreed: left out, with why)."""
    problem = workload.problem(dtype, quick)
    functions: dict[str, tuple[Call, Any]] = {}
    differences: dict[str, float] = {}
    failures: dict[str, str] = {}
    reference = None
    for column in columns:
        if column in ONE_THREAD:
            same, threads = ONE_THREAD[column]
            if same in functions:
                functions[column] = (functions[same][0], threads)
            continue
        build = workload.cases.get(column)
        if build is None:
            continue
        try:
            call = build(problem)
            result = as_arrays(call())  # a step's first loss is from the initial weights
        except Exception as error:
            if column == TAPE:
                raise
            failures[column] = _failure(error)
            continue
        if column == TAPE:
            reference = result
        elif column != NUMPY_FLOOR and reference is not None:
            differences[column] = relative_difference(result, reference)
            if not differences[column] <= TOLERANCE[np.dtype(dtype)]:
                failures[column] = f"differs from tape's result by {differences[column]:.1e}"
                continue
        functions[column] = (call, None)
    timings = measure_side_by_side(
        functions,
        settings.rounds,
        settings.repeats,
        settings.min_time,
        on_error=lambda column, error: failures.__setitem__(column, _failure(error)),
        settle=settings.settle,
    )
    return {
        "timings": {column: timing.scaled(workload.ops) for column, timing in timings.items()},
        "differences": differences,
        "failures": failures,
    }


# -- the tables ----------------------------------------------------------------------------------------------
def _cell(timings: Mapping[str, Timing], column: str) -> str:
    return format_time(timings[column].median) if column in timings else NOT_APPLICABLE


def _ratio(timings: Mapping[str, Timing], ours: str, theirs: str) -> str:
    if ours in timings and theirs in timings:
        return f"{timings[ours].median / timings[theirs].median:.2f}x"
    return NOT_APPLICABLE


def spread_text(timing: Timing) -> str:
    """The fastest and slowest repeat relative to the median: ``-3/+12%``.

    Examples
    --------
    >>> spread_text(Timing(1.0, 0.97, 1.12))
    '-3/+12%'
    """
    return f"-{100 * (1 - timing.low / timing.median):.0f}/+{100 * (timing.high / timing.median - 1):.0f}%"


def print_tables(rows: list[dict[str, Any]], columns: Sequence[str], note: str) -> None:
    """The headline table (tape's two spellings against PyTorch, numpy's forward alone) with ``note``
    under it, the other peers measured in the same rounds, and every case's spread."""
    leading = ["workload", "dtype"]
    headline = [column for column in (TAPE, TAPE_NN, TORCH) if column in columns]
    ratios = [(TAPE, TORCH), (TAPE_NN, TORCH)] if TORCH in columns else []
    print_table(
        "Eager speed: time per call (per op for the chain), median of interleaved rounds",
        [*leading, *headline, *(f"{ours} / {theirs}" for ours, theirs in ratios), NUMPY_FLOOR],
        [
            [
                row["label"],
                row["dtype"],
                *(_cell(row["timings"], column) for column in headline),
                *(_ratio(row["timings"], ours, theirs) for ours, theirs in ratios),
                _cell(row["timings"], NUMPY_FLOOR),
            ]
            for row in rows
        ],
        note,
    )
    others = [column for column in OTHER_PEERS if column in columns]
    if others:
        print_table(
            "Same rounds, at one thread and the other peers: time per call (per op for the chain)",
            [*leading, *others],
            [
                [row["label"], row["dtype"], *(_cell(row["timings"], column) for column in others)]
                for row in rows
            ],
        )
    shown = [column for column in columns if any(column in row["timings"] for row in rows)]
    print_table(
        "Spread: fastest and slowest repeat of all rounds, against the median",
        [*leading, *shown],
        [
            [
                row["label"],
                row["dtype"],
                *(
                    spread_text(row["timings"][column]) if column in row["timings"] else NOT_APPLICABLE
                    for column in shown
                ),
            ]
            for row in rows
        ],
    )


def _available(module: str | None) -> bool:
    # A peer when installed; threadpoolctl (not a peer: it lets tape run at one thread) when importable;
    # tape.ops.mkl when tape's products are MKL's.
    if module == "tape.ops.mkl":
        return find_spec("threadpoolctl") is not None and tape.ops.mkl.gemms() is not None
    return peers.installed(module) if module in peers.NAMES or module is None else bool(find_spec(module))


def _header(machine: Mapping[str, Any]) -> str:
    parts = [
        f"{machine['cpu_model']}, {machine['cores_available']} cores",
        f"BLAS threads {blas_info().get('threads')}",
        f"tape's matrix products: {blas_info()['tape_products']}",
    ]
    if peers.installed("torch"):
        import torch

        parts.append(f"PyTorch threads {torch.get_num_threads()}")
    if hasattr(os, "getloadavg"):
        parts.append(f"load average {os.getloadavg()[0]:.1f}")
    return ", ".join(parts)


def run(quick: bool = False, workloads: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure every workload (or those named in ``workloads``) in both dtypes; print the tables; return
    the figures, which ``python -m benchmarks`` writes to ``peers.json``.

    Examples
    --------
    >>> figures = run(quick=True, workloads=["per_op"])  # doctest: +SKIP
    >>> [row["dtype"] for row in figures["rows"]]  # doctest: +SKIP
    ['float64', 'float32']
    """
    chosen = [workload for workload in WORKLOADS if workloads is None or workload.key in workloads]
    settings = QUICK if quick else FULL
    header = _header(machine_info())
    print(f"\nEager speed against the peers: {header}")
    missing = peers.note_not_installed(module for module in COLUMNS.values() if module in peers.NAMES)
    columns = [column for column, module in COLUMNS.items() if _available(module)]
    left_out = [column for column in NOT_IN_QUICK_RUNS if quick and column in columns]
    if left_out:
        print(f"left out of quick runs (their first calls compile for seconds): {', '.join(left_out)}")
    columns = [column for column in columns if column not in left_out]
    rows = []
    with progress_bar(len(chosen) * len(DTYPES), "peers") as progress:
        for workload in chosen:
            for dtype in DTYPES:
                progress.set_postfix_str(f"{workload.key}, {np.dtype(dtype).name}")
                row = {"key": workload.key, "label": workload.title(quick), "dtype": np.dtype(dtype).name}
                row.update(measure_row(workload, dtype, columns, quick, settings))
                rows.append(row)
                progress.update()
    failures = [
        f"{column} on {row['label']}, {row['dtype']}: {why}"
        for row in rows
        for column, why in row["failures"].items()
    ]
    largest_difference: dict[str, float] = {}
    for row in rows:
        largest = max(row["differences"].values(), default=0.0)
        largest_difference[row["dtype"]] = max(largest, largest_difference.get(row["dtype"], 0.0))
    agreement = [f"{dtype}: {difference:.0e}" for dtype, difference in largest_difference.items()]
    notes = [
        f"{settings.rounds} interleaved round(s) of {settings.repeats} repeats; first results agree with "
        f"tape's to {', '.join(agreement)} (largest difference / largest value)",
        *(f"not timed: {failure}" for failure in failures),
    ]
    print_tables(rows, columns, "\n  ".join(notes))
    return {
        "header": header,
        "settings": dataclasses.asdict(settings),
        "skipped": missing,
        "left_out_of_quick_run": left_out,
        "failures": failures,
        "rows": [
            {
                "workload": row["key"],
                "label": row["label"],
                "dtype": row["dtype"],
                "unit": "per op" if row["key"] == "per_op" else "per call",
                "cases": {
                    column: {
                        "median_s": timing.median,
                        "low_s": timing.low,
                        "high_s": timing.high,
                        "relative_difference_to_tape": row["differences"].get(column),
                    }
                    for column, timing in row["timings"].items()
                },
                "tape_over_pytorch": _ratio_value(row["timings"], TAPE),
                "tape_nn_over_pytorch": _ratio_value(row["timings"], TAPE_NN),
            }
            for row in rows
        ],
    }


def _ratio_value(timings: Mapping[str, Timing], ours: str) -> float | None:
    if ours in timings and TORCH in timings:
        return timings[ours].median / timings[TORCH].median
    return None


if __name__ == "__main__":
    raise SystemExit(suite_main("peers", __doc__, run))

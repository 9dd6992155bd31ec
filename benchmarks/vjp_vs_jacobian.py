"""One vector-Jacobian product against the explicit Jacobian, for the lecture's 4096 → 2048 layer.

The lecture asks of a layer f(x) = relu(x Wᵀ + b) with 4096 inputs and 2048 outputs: how big is its
Jacobian (P1), and what does it look like (P2)? This benchmark answers with numbers from one run:

* One example, n inputs → m = n/2 outputs, n up to the lecture's 4096: the time and peak memory of one
  VJP (forward + backward with a cotangent u) against building the m x n Jacobian with ``tape.jacobian``
  and then contracting u with it. Every method returns Jᵀu, checked against the analytic value.
* The minibatch of 100: the batch Jacobian of X (100, n) has shape (100, m, 100, n); at the lecture's
  size that is 204,800 x 409,600 entries, of which only the 100 diagonal blocks are non-zero. It is built
  only where it fits a memory budget; the batch VJP runs at every size.
* The minibatch Jacobian three ways (``benchmarks.jacobian_representations``): dense (refused by
  ``tape.jacobian_operator``'s ``to_dense`` with its size), its diagonal blocks (timed per block at a batch
  that fits) and the operator diag(mask) · (I ⊗ W) that holds one W (``J @ v`` and ``u @ J`` timed against
  the forward pass), with their memory against batch size.
* Peers in the same run when installed (PyTorch, JAX, HIPS autograd, MyGrad) and a hand-written numpy
  Jacobian (``mask[:, None] * W``) as the floor; a slow peer is timed once and skipped at larger sizes.

Peak memory is the tracemalloc peak for numpy-based methods (numpy reports its buffers to tracemalloc);
PyTorch and JAX allocate outside it, so for them it is the growth of the process's peak resident memory.
Results go to ``vjp_vs_jacobian.json``, ``vjp_vs_jacobian.png``, ``jacobian_structure.png`` and
``jacobian_representations.png``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import signal
import threading
import time
import timeit
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tape
from benchmarks import jacobian_representations, peers
from benchmarks.console import progress_bar, suite_main
from benchmarks.results import pyplot, results_directory, write_json
from benchmarks.timing import Timing, format_bytes, format_spread, format_time, measure, print_table

LECTURE_INPUTS = 4096
LECTURE_BATCH = 100
SIZES = (256, 512, 1024, 2048, 4096)
QUICK_SIZES = (64, 128, 256)
# The batch Jacobian grows as batch² · m · n: with 100 examples only small layers fit in memory, so the
# minibatch section starts smaller and keeps the lecture's size for the VJP (and the skip note).
BATCH_SIZES = (16, 32, 64, 128, LECTURE_INPUTS)
QUICK_BATCH_SIZES = (8, LECTURE_INPUTS)
# The three representations of the batch Jacobian: at the lecture's layer, or a small one when quick; the
# memory plot's batch sizes.
QUICK_OPERATOR_INPUTS = 256
OPERATOR_BATCHES = (1, 4, 16, 100, 400)
QUICK_OPERATOR_BATCHES = (1, 4, 16)
MEMORY_BUDGET = 2 * 2**30
# A Jacobian built by one sweep holds the cotangent block, the masked cotangents, the rows and J itself:
# up to about four times J's own size at the peak (measured), which is what the budget is compared with.
JACOBIAN_WORKSPACE = 4
# A method whose time, extrapolated to the next size, exceeds this many slow-call budgets is not run.
PREDICTION_MARGIN = 4
# A first call still running after this many slow-call budgets is interrupted and the method skipped.
DEADLINE_FACTOR = 5


@dataclass(frozen=True)
class Settings:
    """How long to measure: repeats per timing, and when a method counts as too slow to repeat."""

    repeats: int = 7
    min_time: float = 0.05
    slow_call: float = 3.0
    seconds_per_measurement: float = 5.0
    memory_budget: int = MEMORY_BUDGET

    @classmethod
    def quick(cls) -> Settings:
        """Few repeats and a tight time budget, for a run of well under a minute."""
        return cls(repeats=3, min_time=0.01, slow_call=1.0, seconds_per_measurement=1.5)


@dataclass(frozen=True)
class Layer:
    """f(x) = relu(x @ weight.T + bias) at ``x``, one example (n,) or a batch (batch, n); cotangent u."""

    weight: np.ndarray
    bias: np.ndarray
    x: np.ndarray
    cotangent: np.ndarray

    @property
    def inputs(self) -> int:
        return self.weight.shape[1]

    @property
    def outputs(self) -> int:
        return self.weight.shape[0]

    @property
    def batch(self) -> int | None:
        return self.x.shape[0] if self.x.ndim == 2 else None

    @property
    def jacobian_shape(self) -> tuple[int, ...]:
        return self.cotangent.shape + self.x.shape

    @property
    def jacobian_bytes(self) -> int:
        return math.prod(self.jacobian_shape) * self.x.itemsize

    def mask(self) -> np.ndarray:
        """Which outputs relu lets through (the rows of the Jacobian that are not zero)."""
        return self.x @ self.weight.T + self.bias > 0


def make_layer(inputs: int, batch: int | None = None, seed: int = 0) -> Layer:
    """A random float64 layer with ``inputs`` → ``inputs // 2`` units, about half of them active.

    Examples
    --------
    >>> layer = make_layer(8, batch=3)
    >>> layer.x.shape, layer.weight.shape, layer.jacobian_shape
    ((3, 8), (4, 8), (3, 4, 3, 8))
    """
    rng = np.random.default_rng(seed)
    outputs = max(inputs // 2, 1)
    leading = () if batch is None else (batch,)
    return Layer(
        weight=rng.standard_normal((outputs, inputs)) / np.sqrt(inputs),
        bias=0.1 * rng.standard_normal(outputs),
        x=rng.standard_normal((*leading, inputs)),
        cotangent=rng.standard_normal((*leading, outputs)),
    )


def contract(cotangent: Any, jacobian: Any) -> Any:
    """uᵀJ: sum the cotangent against the Jacobian's output axes (works for numpy, torch and jax)."""
    rows = math.prod(cotangent.shape)
    return (cotangent.reshape(1, rows) @ jacobian.reshape(rows, -1)).reshape(jacobian.shape[cotangent.ndim :])


def analytic_vjp(layer: Layer) -> np.ndarray:
    """Jᵀu written out by hand: (u masked by relu) @ W."""
    return (layer.cotangent * layer.mask()) @ layer.weight


def analytic_jacobian(layer: Layer) -> np.ndarray:
    """The Jacobian written out by hand: mask[:, None] * W, on the diagonal blocks for a batch."""
    mask = layer.mask()
    if layer.batch is None:
        return mask[:, None] * layer.weight
    jacobian = np.zeros(layer.jacobian_shape)
    examples = np.arange(layer.batch)
    jacobian[examples, :, examples, :] = mask[:, :, None] * layer.weight
    return jacobian


def nonzero_entries(layer: Layer) -> int:
    """How many entries of the (batch) Jacobian are non-zero, counted without building it."""
    per_row = np.count_nonzero(layer.weight, axis=1)
    return int(np.sum(layer.mask().reshape(-1, layer.outputs) @ per_row))


# ---------------------------------------------------------------------------------------------------
# The methods. Each ``prepare(layer)`` returns a call with no arguments that computes Jᵀu as a numpy
# array: a VJP directly, a Jacobian method by building J and contracting u with it.


def _tape_function(layer: Layer) -> Callable[[Any], Any]:
    # Constants as tensors: a record versions a tensor's buffer, where it would copy a plain array it reads.
    weight, bias = tape.tensor(layer.weight), tape.tensor(layer.bias)
    return lambda x: np.maximum(x @ weight.T + bias, 0.0)


def _tape_vjp(layer: Layer) -> Callable[[], np.ndarray]:
    f = _tape_function(layer)

    def run() -> np.ndarray:
        _, pullback = tape.vjp(f, layer.x)
        return pullback(layer.cotangent)[0]

    return run


def _tape_jacobian(layer: Layer) -> Callable[[], np.ndarray]:
    jacobian = tape.jacobian(_tape_function(layer))
    return lambda: contract(layer.cotangent, jacobian(layer.x))


def _numpy_vjp(layer: Layer) -> Callable[[], np.ndarray]:
    return lambda: analytic_vjp(layer)


def _numpy_jacobian(layer: Layer) -> Callable[[], np.ndarray]:
    return lambda: contract(layer.cotangent, analytic_jacobian(layer))


def _torch_layer(layer: Layer) -> tuple[Callable[[Any], Any], Any, Any]:
    import torch

    weight, bias = torch.from_numpy(layer.weight), torch.from_numpy(layer.bias)
    return (
        lambda x: torch.relu(x @ weight.T + bias),
        torch.from_numpy(layer.x),
        torch.from_numpy(layer.cotangent),
    )


def _torch_vjp(layer: Layer) -> Callable[[], np.ndarray]:
    import torch

    f, x, cotangent = _torch_layer(layer)

    def run() -> np.ndarray:
        leaf = x.detach().requires_grad_()
        (gradient,) = torch.autograd.grad(f(leaf), leaf, cotangent)
        return gradient.numpy()

    return run


def _torch_jacobian(vectorize: bool) -> Callable[[Layer], Callable[[], np.ndarray]]:
    def prepare(layer: Layer) -> Callable[[], np.ndarray]:
        import torch

        f, x, cotangent = _torch_layer(layer)

        def run() -> np.ndarray:
            jacobian = torch.autograd.functional.jacobian(f, x, vectorize=vectorize)
            return contract(cotangent, jacobian).numpy()

        return run

    return prepare


def _jax_layer(layer: Layer) -> tuple[Any, Callable[..., Any], tuple[Any, ...], Any]:
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 like every other method here
    import jax.numpy as jnp

    def f(x: Any, weight: Any, bias: Any) -> Any:
        return jnp.maximum(x @ weight.T + bias, 0.0)

    # W and b are passed as arguments, not closed over: under jit a closed-over array becomes a constant
    # baked into the compiled program, which makes compiling a 64 MiB layer slow.
    arguments = (jnp.asarray(layer.x), jnp.asarray(layer.weight), jnp.asarray(layer.bias))
    return jax, f, arguments, jnp.asarray(layer.cotangent)


def _jax_vjp(layer: Layer) -> Callable[[], np.ndarray]:
    jax, f, arguments, cotangent = _jax_layer(layer)

    @jax.jit
    def vjp(x: Any, weight: Any, bias: Any, cotangent: Any) -> Any:
        _, pullback = jax.vjp(lambda x: f(x, weight, bias), x)
        return pullback(cotangent)[0]

    return lambda: np.asarray(vjp(*arguments, cotangent).block_until_ready())


def _jax_jacobian(jit: bool) -> Callable[[Layer], Callable[[], np.ndarray]]:
    def prepare(layer: Layer) -> Callable[[], np.ndarray]:
        jax, f, arguments, cotangent = _jax_layer(layer)
        jacobian = jax.jit(jax.jacrev(f)) if jit else jax.jacrev(f)
        return lambda: np.asarray(contract(cotangent, jacobian(*arguments)).block_until_ready())

    return prepare


def _autograd_function(layer: Layer) -> Callable[[Any], Any]:
    import autograd.numpy as anp

    weight, bias = layer.weight, layer.bias
    return lambda x: anp.maximum(anp.dot(x, weight.T) + bias, 0.0)


def _autograd_vjp(layer: Layer) -> Callable[[], np.ndarray]:
    import autograd

    make_vjp = autograd.make_vjp(_autograd_function(layer))

    def run() -> np.ndarray:
        pullback, _ = make_vjp(layer.x)
        return pullback(layer.cotangent)

    return run


def _autograd_jacobian(layer: Layer) -> Callable[[], np.ndarray]:
    import autograd

    jacobian = autograd.jacobian(_autograd_function(layer))
    return lambda: contract(layer.cotangent, jacobian(layer.x))


def _mygrad_vjp(layer: Layer) -> Callable[[], np.ndarray]:
    import mygrad

    weight_t = layer.weight.T

    def run() -> np.ndarray:
        x = mygrad.tensor(layer.x)
        mygrad.maximum(mygrad.matmul(x, weight_t) + layer.bias, 0.0).backward(layer.cotangent)
        return x.grad

    return run


@dataclass(frozen=True)
class Method(peers.Method):
    """One way to get Jᵀu from a ``Layer``: kind "VJP", or "Jacobian" (build J, then contract u with it)."""

    memory: str = "tracemalloc"  # or "rss" for libraries that allocate outside tracemalloc's view
    compiles: bool = False  # the first call compiles: warm it up before measuring memory

    @property
    def is_jacobian(self) -> bool:
        return self.kind == "Jacobian"


METHODS = (
    Method("tape VJP", "tape", "VJP", _tape_vjp),
    Method("tape jacobian, u@J", "tape", "Jacobian", _tape_jacobian),
    Method("numpy by hand VJP", "numpy", "VJP", _numpy_vjp),
    Method("numpy by hand J, u@J", "numpy", "Jacobian", _numpy_jacobian),
    Method("PyTorch VJP", "torch", "VJP", _torch_vjp, "torch", "rss"),
    Method("PyTorch jacobian(vectorize=False)", "torch", "Jacobian", _torch_jacobian(False), "torch", "rss"),
    Method("PyTorch jacobian(vectorize=True)", "torch", "Jacobian", _torch_jacobian(True), "torch", "rss"),
    Method("JAX vjp (jit)", "jax", "VJP", _jax_vjp, "jax", "rss", compiles=True),
    Method("JAX jacrev", "jax", "Jacobian", _jax_jacobian(False), "jax", "rss", compiles=True),
    Method("JAX jacrev (jit)", "jax", "Jacobian", _jax_jacobian(True), "jax", "rss", compiles=True),
    Method("autograd VJP", "autograd", "VJP", _autograd_vjp, "autograd"),
    Method("autograd jacobian", "autograd", "Jacobian", _autograd_jacobian, "autograd"),
    Method("MyGrad VJP", "mygrad", "VJP", _mygrad_vjp, "mygrad"),
)


# ---------------------------------------------------------------------------------------------------
# Measuring one method at one size.


def _status_kilobytes(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field_name}")


def _reset_resident_peak() -> bool:
    # Writing 5 to clear_refs resets the kernel's high-water mark of resident memory (Linux >= 4.0).
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _release_free_heap() -> None:
    # glibc keeps freed memory for reuse; handing it back first makes the next allocations show in RSS.
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to release
        ctypes.CDLL(None).malloc_trim(0)


def peak_memory(function: Callable[[], Any], how: str) -> int | None:
    """Peak bytes allocated while ``function`` runs, by ``tracemalloc`` or by resident memory (``rss``).

    Resident memory is coarse (pages, allocator caches): trust it for large arrays, not for kilobytes.
    """
    # Young generations only: with PyTorch and JAX imported, a full collection costs most of a second,
    # and the oldest generation holds modules, not the garbage of the previous calls.
    gc.collect(1)
    if how == "tracemalloc":
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            baseline = tracemalloc.get_traced_memory()[0]
            function()
            return tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
    _release_free_heap()
    try:
        before = _status_kilobytes("VmRSS")
    except OSError:
        return None
    if not _reset_resident_peak():
        return None
    function()
    return (_status_kilobytes("VmHWM") - before) * 1024


class _OvertimeError(BaseException):
    """A call ran past its deadline (raised from a timer signal between Python bytecodes).

    A BaseException, like KeyboardInterrupt, so that a library's ``except Exception`` cannot swallow it.
    """


def _call_with_deadline(function: Callable[[], Any], seconds: float) -> Any:
    """Call ``function``, interrupting it after ``seconds`` where a POSIX timer can (main thread only).

    A peer whose time explodes (an oversubscribed machine can slow OpenMP's spinning threads 30-fold)
    then costs the run a bounded time. Work inside one long C call is only stopped when it returns.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return function()

    def interrupt(signum: int, frame: Any) -> None:
        raise _OvertimeError

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return function()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _time_calls(
    function: Callable[[], Any], first: float, settings: Settings, deadline: float
) -> tuple[Timing, int]:
    """Time ``function`` after a first call that took ``first`` seconds; slow calls are repeated less.

    A repeat interrupted at ``deadline`` seconds ends the repeats; the samples taken so far are kept.
    """
    if first < settings.min_time:
        return measure(function, repeats=settings.repeats, min_time=settings.min_time), settings.repeats
    # Each call is far above the clock's resolution: time single calls, as many as the budget allows.
    repeats = max(3, min(settings.repeats, int(settings.seconds_per_measurement / first)))
    timer = timeit.Timer(lambda: _call_with_deadline(function, deadline))
    samples: list[float] = []
    with contextlib.suppress(_OvertimeError):  # keep the repeats that finished
        for _ in range(repeats):
            samples.append(timer.timeit(number=1))
    samples = samples or [first]  # every repeat was interrupted: the first call is all there is
    return Timing.of(samples), len(samples)


@dataclass
class Budget:
    """What each method cost at its largest size so far in one section, to skip sizes it cannot afford."""

    settings: Settings
    last: dict[str, tuple[int, float]] = field(default_factory=dict)
    exhausted: dict[str, str] = field(default_factory=dict)

    def reason_to_skip(self, method: Method, layer: Layer) -> str | None:
        if method.is_jacobian and JACOBIAN_WORKSPACE * layer.jacobian_bytes > self.settings.memory_budget:
            return (
                f"J is {format_bytes(layer.jacobian_bytes)} (~{JACOBIAN_WORKSPACE}x that at the peak), "
                f"over the {format_bytes(self.settings.memory_budget)} memory budget"
            )
        if method.name in self.exhausted:
            return self.exhausted[method.name]
        if method.name in self.last:
            size, seconds = self.last[method.name]
            if seconds < self.settings.slow_call / 10:  # small calls are mostly overhead: no extrapolation
                return None
            # Building J costs m VJPs of m·n work each (n³ here), a VJP costs m·n (n²).
            predicted = seconds * (layer.inputs / size) ** (3 if method.is_jacobian else 2)
            if predicted > PREDICTION_MARGIN * self.settings.slow_call:
                return f"predicted ~{format_time(predicted)} from {format_time(seconds)} at n={size}"
        return None

    def first_use(self, method: Method) -> bool:
        return method.name not in self.last

    def record(self, method: Method, layer: Layer, seconds: float) -> None:
        self.last[method.name] = (layer.inputs, seconds)
        if seconds > self.settings.slow_call:
            limit = format_time(self.settings.slow_call)
            self.exhausted[method.name] = f"took {format_time(seconds)} at n={layer.inputs} (budget {limit})"


def run_method(method: Method, layer: Layer, reference: np.ndarray, budget: Budget) -> dict[str, Any]:
    """Time one method on one layer, measure its peak memory, check its Jᵀu; a row of the results."""
    row: dict[str, Any] = {"method": method.name, "library": method.library, "kind": method.kind}
    reason = budget.reason_to_skip(method, layer)
    if reason is not None:
        return {**row, "status": "skipped", "note": reason}
    started = time.perf_counter()
    deadline = DEADLINE_FACTOR * budget.settings.slow_call
    try:
        function = method.prepare(layer)
        if method.compiles or budget.first_use(method):
            # Compiling, lazy imports and first-call set-up stay outside the clock.
            _call_with_deadline(function, deadline)
        start = time.perf_counter()
        result = np.asarray(_call_with_deadline(function, deadline))
        first = time.perf_counter() - start
        if first > budget.settings.slow_call:
            timing, repeats = Timing(first, first, first), 1
        else:
            timing, repeats = _time_calls(function, first, budget.settings, deadline)
        peak = peak_memory(function, method.memory)
    except _OvertimeError:
        budget.record(method, layer, deadline)
        return {**row, "status": "skipped", "note": f"stopped after {format_time(deadline)} (too slow)"}
    except Exception as error:  # a peer failing at one size must not stop the others
        return {**row, "status": "failed", "note": f"{type(error).__name__}: {error}"[:200]}
    budget.record(method, layer, timing.median)
    error = float(np.max(np.abs(result - reference))) if result.shape == reference.shape else math.inf
    scale = max(1.0, float(np.max(np.abs(reference))))
    return {
        **row,
        "status": "ok",
        "median_s": timing.median,
        "low_s": timing.low,
        "high_s": timing.high,
        "repeats": repeats,
        "over_time_budget": timing.median > budget.settings.slow_call,
        "peak_bytes": peak,
        "memory_measure": method.memory,
        "max_abs_error": error,
        "agrees": error <= 1e-8 * scale,
        "wall_s": time.perf_counter() - started,  # everything spent on this row: warm-up, repeats, memory
    }


# ---------------------------------------------------------------------------------------------------
# Sections, tables and the lecture's sizes.


def lecture_sizes(inputs: int = LECTURE_INPUTS, batch: int = LECTURE_BATCH) -> dict[str, Any]:
    """P1 in numbers: the Jacobian of an ``inputs`` → ``inputs // 2`` layer, alone and for a batch.

    Examples
    --------
    >>> sizes = lecture_sizes()
    >>> sizes["batch_shape"], sizes["batch_entries"]
    ([204800, 409600], 83886080000)
    """
    outputs = inputs // 2
    single = outputs * inputs
    entries = single * batch**2
    return {
        "inputs": inputs,
        "outputs": outputs,
        "batch": batch,
        "single_shape": [outputs, inputs],
        "single_entries": single,
        "single_bytes_float64": 8 * single,
        "single_bytes_float32": 4 * single,
        "batch_shape": [batch * outputs, batch * inputs],
        "batch_entries": entries,
        "batch_bytes_float64": 8 * entries,
        "batch_bytes_float32": 4 * entries,
        "diagonal_block_fraction": 1 / batch,
    }


def print_lecture_sizes(sizes: dict[str, Any], nonzero_fraction: float) -> None:
    """Print P1's answer for one example and for the minibatch, and how much of it is non-zero."""
    rows, columns = sizes["batch_shape"]
    print(f"\nP1: how big is the Jacobian of a {sizes['inputs']} → {sizes['outputs']} layer?")
    print(
        f"  one example:        {sizes['outputs']:,} x {sizes['inputs']:,} = {sizes['single_entries']:,} "
        f"entries = {format_bytes(sizes['single_bytes_float64'])} float64, "
        f"{format_bytes(sizes['single_bytes_float32'])} float32"
    )
    print(
        f"  minibatch of {sizes['batch']}:  {rows:,} x {columns:,} = {sizes['batch_entries']:,} entries "
        f"≈ {sizes['batch_entries'] / 1e9:.1f} billion = "
        f"{sizes['batch_bytes_float64'] / 1e9:.0f} GB float64, "
        f"{sizes['batch_bytes_float32'] / 1e9:.0f} GB float32"
    )
    print(
        f"  non-zero: only the {sizes['batch']} diagonal blocks ({sizes['outputs']:,} x {sizes['inputs']:,} "
        f"each), {sizes['diagonal_block_fraction']:.2%} of the entries; relu also zeroes the rows of "
        f"inactive units, leaving {nonzero_fraction:.2%} non-zero in this layer"
    )
    print("  A VJP never builds it: Jᵀu costs one backward pass, about the price of the forward.")


def _row_cells(row: dict[str, Any], reference_seconds: float | None) -> list[str]:
    memory = format_bytes(row["peak_bytes"])
    if row["memory_measure"] == "rss" and row["peak_bytes"] is not None:
        # Resident memory moves in pages and allocator chunks: below a MiB it says nothing.
        memory = ("< 1 MiB" if row["peak_bytes"] < 2**20 else memory) + " (RSS)"
    ratio = "-"
    if reference_seconds:
        ratio = row["median_s"] / reference_seconds
        ratio = f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.2g}x"
    note = "" if row["agrees"] else f"WRONG Jᵀu: max error {row['max_abs_error']:.3g}"
    if row["over_time_budget"]:
        note = (note + "; " if note else "") + f"timed {row['repeats']}x (slow)"
    return [
        row["method"],
        format_time(row["median_s"]),
        format_spread(row["low_s"], row["high_s"]),
        memory,
        ratio,
        note,
    ]


def print_size_table(title: str, rows: Sequence[dict[str, Any]], note: str = "") -> None:
    """One table of the methods that ran: median time, spread, peak memory and ratio to tape's VJP (and a
    note column when a row needs one). Methods that did not run are named below it, once per reason."""
    measured = [row for row in rows if row["status"] == "ok"]
    tape_vjp = next((row for row in measured if row["method"] == "tape VJP"), None)
    cells = [_row_cells(row, tape_vjp["median_s"] if tape_vjp else None) for row in measured]
    header = ["method", "time (median)", "low .. high", "peak memory", "vs tape VJP", "note"]
    if not any(row[-1] for row in cells):
        header, cells = header[:-1], [row[:-1] for row in cells]
    not_run: dict[str, list[str]] = {}
    for row in rows:
        if row["status"] != "ok":
            reason = "not run" if row["status"] == "skipped" else row["status"]
            not_run.setdefault(f"{reason}: {row['note']}", []).append(row["method"])
    notes = [f"{' and '.join(methods)} {reason}" for reason, methods in not_run.items()]
    print_table(title, header, cells, "\n  ".join([*notes, *([note] if note else [])]))


def _section_title(layer: Layer) -> str:
    m, n = layer.outputs, layer.inputs
    if layer.batch is None:
        return f"One example, n = {n} → m = {m}: J is {m:,} x {n:,} = {format_bytes(layer.jacobian_bytes)}"
    b = layer.batch
    nonzero = nonzero_entries(layer) / math.prod(layer.jacobian_shape)
    return (
        f"Minibatch of {b}, n = {n} → m = {m}: J is {b * m:,} x {b * n:,} = "
        f"{format_bytes(layer.jacobian_bytes)}, {nonzero:.2%} non-zero"
    )


def run_section(
    sizes: Sequence[int],
    batch: int | None,
    methods: Sequence[Method],
    settings: Settings,
    progress: Any,
) -> list[dict[str, Any]]:
    """Every method at every size for one example (``batch`` None) or a batch; prints a table per size.

    ``progress`` (a bar from ``benchmarks.console.progress_bar``) advances by one per method and size.
    """
    budget = Budget(settings)
    section = []
    for inputs in sizes:
        layer = make_layer(inputs, batch)
        reference = analytic_vjp(layer)
        rows = []
        for method in methods:
            progress.set_postfix_str(f"{'batch ' if batch else ''}n={inputs}: {method.name}")
            rows.append(run_method(method, layer, reference, budget))
            progress.update()
        progress.clear()
        print_size_table(_section_title(layer), rows)
        section.append(
            {
                "inputs": inputs,
                "outputs": layer.outputs,
                "batch": batch,
                "jacobian_shape": list(layer.jacobian_shape),
                "jacobian_bytes": layer.jacobian_bytes,
                "nonzero_fraction": nonzero_entries(layer) / math.prod(layer.jacobian_shape),
                "methods": rows,
            }
        )
        del layer, reference
        gc.collect()
    return section


# ---------------------------------------------------------------------------------------------------
# Plots.

_COLORS = {"tape": "C3", "numpy": "C7", "torch": "C0", "jax": "C2", "autograd": "C1", "mygrad": "C4"}


_MARKERS = "osD^vP*Xh<>p8"


def _method_points(section: Sequence[dict[str, Any]], name: str) -> list[tuple[int, dict[str, Any]]]:
    return [
        (entry["inputs"], row)
        for entry in section
        for row in entry["methods"]
        if row["method"] == name and row["status"] == "ok"
    ]


def plot_results(single: Sequence[dict[str, Any]], batched: Sequence[dict[str, Any]], path: Path) -> bool:
    """Log-log time and peak memory against n per method and section; False without matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    figure, axes = plt.subplots(2, 2, figsize=(14, 12), squeeze=False)
    names = list(dict.fromkeys(row["method"] for entry in [*single, *batched] for row in entry["methods"]))
    handles: dict[str, Any] = {}
    for row_axes, section in ((axes[0], single), (axes[1], batched)):
        for name in names:
            points = _method_points(section, name)
            if not points:
                continue
            first = points[0][1]
            style = {
                "color": _COLORS.get(first["library"]),
                "linestyle": "-" if first["kind"] == "VJP" else "--",
                "marker": _MARKERS[names.index(name) % len(_MARKERS)],
                "markersize": 5,
            }
            sizes = np.array([n for n, _ in points])
            median = np.array([row["median_s"] for _, row in points])
            low = np.array([row["low_s"] for _, row in points])
            high = np.array([row["high_s"] for _, row in points])
            spread = np.stack([median - low, high - median])
            handles[name] = row_axes[0].errorbar(sizes, median, yerr=spread, label=name, **style)
            # Resident-memory growth below a MiB is page and allocator noise: leave it out of the plot.
            floor = 2**20 if first["memory_measure"] == "rss" else 1
            memory = [(n, row["peak_bytes"]) for n, row in points if (row["peak_bytes"] or 0) >= floor]
            if memory:
                row_axes[1].plot(*zip(*memory, strict=True), label=name, **style)
        batch = section[0]["batch"] if section else None
        title = "one example" if batch is None else f"minibatch of {batch}"
        for axis, quantity in zip(row_axes, ("time per call (s)", "peak memory (bytes)"), strict=True):
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xlabel("n inputs (m = n/2 outputs)")
            axis.set_ylabel(quantity)
            axis.set_title(f"{quantity.split(' (')[0]}, {title}: relu(x Wᵀ + b)")
            axis.grid(True, which="both", alpha=0.3)
    figure.suptitle(
        "One VJP (solid) against building the Jacobian and then uᵀJ (dashed); bars: low..high\n"
        "peak memory: tracemalloc, except PyTorch and JAX: growth of resident memory (shown from 1 MiB)"
    )
    figure.legend(list(handles.values()), list(handles), loc="lower center", ncol=4, fontsize=8)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def structure_jacobians(seed: int = 0) -> dict[str, np.ndarray]:
    """P2 with ``tape.jacobian``: an elementwise op, a linear+relu layer and a small batch of it.

    Examples
    --------
    >>> jacobians = structure_jacobians()
    >>> [j.shape for j in jacobians.values()]
    [(16, 16), (8, 16), (16, 32)]
    """
    rng = np.random.default_rng(seed)
    elementwise = tape.jacobian(np.tanh)(rng.standard_normal(16))
    layer = make_layer(16, seed=seed)
    single = tape.jacobian(_tape_function(layer))(layer.x)
    small = make_layer(8, batch=4, seed=seed + 1)
    batch_jacobian = tape.jacobian(_tape_function(small))(small.x)
    return {
        "tanh on 16 elements:\ndiagonal": elementwise,
        "relu(x Wᵀ + b), 16 → 8:\ndense, rows of inactive units zero": single,
        "relu layer 8 → 4 on a batch of 4 (4·4 x 4·8):\nonly the diagonal blocks are non-zero": (
            batch_jacobian.reshape(4 * 4, 4 * 8)
        ),
    }


def plot_structure(path: Path) -> bool:
    """Draw the three Jacobians of ``structure_jacobians`` (zero is white); False if no matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    jacobians = structure_jacobians()
    figure, axes = plt.subplots(1, 3, figsize=(15, 5), gridspec_kw={"width_ratios": [16, 16, 32]})
    for axis, (title, jacobian) in zip(axes, jacobians.items(), strict=True):
        limit = float(np.max(np.abs(jacobian))) or 1.0
        image = axis.imshow(jacobian, cmap="bwr", vmin=-limit, vmax=limit, interpolation="nearest")
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("input index")
        axis.set_ylabel("output index")
        figure.colorbar(image, ax=axis, shrink=0.6)
    blocks = axes[2]
    for k in range(1, 4):  # the block boundaries of the batch Jacobian
        blocks.axhline(4 * k - 0.5, color="0.6", linewidth=0.6)
        blocks.axvline(8 * k - 0.5, color="0.6", linewidth=0.6)
    figure.suptitle("P2: what does the Jacobian look like? (computed with tape.jacobian; white = 0)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# ---------------------------------------------------------------------------------------------------


def run(
    quick: bool = False,
    out: str | Path | None = None,
    sizes: Sequence[int] | None = None,
    batch: int = LECTURE_BATCH,
    batch_sizes: Sequence[int] | None = None,
    libraries: Sequence[str] | None = None,
    settings: Settings | None = None,
    operator_inputs: int | None = None,
) -> dict[str, Any]:
    """Run the sections, print their tables, write the JSON and the plots; return every number.

    ``operator_inputs`` is the layer's n for the three representations of the batch Jacobian (the
    lecture's 4096 by default, 256 when quick).

    ``libraries`` limits the methods to those libraries (e.g. ``("tape", "numpy")``); None runs all that
    are installed, and one line names the peers that are not.

    Examples
    --------
    >>> run(quick=True, sizes=(8,), batch=2, batch_sizes=(8,), libraries=("tape",))  # doctest: +SKIP
    """
    settings = settings or (Settings.quick() if quick else Settings())
    sizes = tuple(sizes or (QUICK_SIZES if quick else SIZES))
    batch_sizes = tuple(batch_sizes or (QUICK_BATCH_SIZES if quick else BATCH_SIZES))
    chosen = [m for m in METHODS if libraries is None or m.library in libraries]
    methods = [m for m in chosen if m.installed]
    directory = results_directory(out)

    lecture = lecture_sizes(LECTURE_INPUTS, batch)
    lecture_layer = make_layer(LECTURE_INPUTS, batch)
    lecture["nonzero_fraction"] = nonzero_entries(lecture_layer) / lecture["batch_entries"]
    del lecture_layer
    print_lecture_sizes(lecture, lecture["nonzero_fraction"])
    missing = peers.note_not_installed(m.module for m in chosen)

    steps = len(methods) * (len(sizes) + len(batch_sizes))
    with progress_bar(steps, "vjp_vs_jacobian") as progress:
        single = run_section(sizes, None, methods, settings, progress)
        batched = run_section(batch_sizes, batch, methods, settings, progress)
    print(
        "\n  Peak memory: tracemalloc peak for numpy-based methods; (RSS) = growth of peak resident memory,"
        " for libraries that allocate outside tracemalloc."
    )
    operator_inputs = operator_inputs or (QUICK_OPERATOR_INPUTS if quick else LECTURE_INPUTS)
    representations = jacobian_representations.measure_representations(
        make_layer, operator_inputs, batch, settings.memory_budget, settings.repeats, settings.min_time
    )
    jacobian_representations.print_representations(representations, settings.memory_budget)
    memory_rows = jacobian_representations.memory_by_batch(
        make_layer, operator_inputs, QUICK_OPERATOR_BATCHES if quick else OPERATOR_BATCHES
    )

    results: dict[str, Any] = {
        "case": "f(x) = relu(x @ W.T + b), W of shape (n/2, n), float64; every method computes J^T u",
        "settings": {
            "quick": quick,
            "sizes": list(sizes),
            "batch": batch,
            "batch_sizes": list(batch_sizes),
            "repeats": settings.repeats,
            "slow_call_s": settings.slow_call,
            "memory_budget_bytes": settings.memory_budget,
            "jacobian_workspace_factor": JACOBIAN_WORKSPACE,
        },
        "lecture": lecture,
        "one_example": single,
        "minibatch": batched,
        "representations": {**representations, "memory_by_batch": memory_rows},
        "missing_peers": missing,
    }
    files = [write_json("vjp_vs_jacobian", results, directory)]
    notes = []
    for draw, name in (
        (lambda p: plot_results(single, batched, p), "vjp_vs_jacobian.png"),
        (plot_structure, "jacobian_structure.png"),
        (
            lambda p: jacobian_representations.plot_memory(
                memory_rows, settings.memory_budget, operator_inputs, p
            ),
            "jacobian_representations.png",
        ),
    ):
        if draw(directory / name):
            files.append(directory / name)
        else:
            notes.append(f"{name} not drawn: matplotlib is not installed (pip install 'tape[bench]')")
    _print_summary(single)
    for note in notes:
        print(f"  {note}")
    print("\nResults written:")
    for path in files:
        print(f"  {path}")
    results["files"] = [str(path) for path in files]
    return results


def _print_summary(single: Sequence[dict[str, Any]]) -> None:
    if not single:
        return
    largest = single[-1]
    rows = {r["method"]: r for r in largest["methods"] if r["status"] == "ok"}
    vjp, jacobian = rows.get("tape VJP"), rows.get("tape jacobian, u@J")
    if vjp and jacobian:
        print(
            f"\nAt n = {largest['inputs']} → m = {largest['outputs']}: the explicit Jacobian then uᵀJ takes "
            f"{jacobian['median_s'] / vjp['median_s']:.2g}x the time of one VJP"
            + (
                f" and {jacobian['peak_bytes'] / vjp['peak_bytes']:,.0f}x its peak memory."
                if jacobian["peak_bytes"] and vjp["peak_bytes"]
                else "."
            )
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.vjp_vs_jacobian [--quick] [--out DIR]``."""
    return suite_main("vjp_vs_jacobian", __doc__, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""numba kernels against their numpy twins: is each kernel worth keeping, and what does compiling cost?

For every registered kernel (``tape.jit.kernels()``) that has a case here, the public function that uses
it is timed with JIT on (the kernel), with JIT off (the numpy twin) and, for scatter-add, as plain
``np.add.at``, at a small and a large size. A second table gives the one-time costs, each measured in a
fresh interpreter with an empty numba cache and then again with the cache that run filled:
importing numba, the first call (compile, or load from the cache) and a second signature.

python -m benchmarks.kernels           # full sizes (about a minute)
python -m benchmarks.kernels --quick   # smaller sizes, fewer repeats
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import tape
import tape.ops.elementwise_kernels as fused
import tape.ops.scatter
from benchmarks.console import suite_command_line
from benchmarks.results import report_results
from benchmarks.timing import format_time, measure, print_table
from tape import jit
from tape.nn import optim, optim_kernels
from tape.ops import erf, losses, product_kernels, recurrent, reductions, special, statistics

REPOSITORY = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    """One workload: a name, and a callable per implementation (``kernel``, ``twin``, maybe others)."""

    label: str
    implementations: dict[str, Callable[[], Any]]


def with_jit(mode: bool, function: Callable[[], Any]) -> Callable[[], Any]:
    """``function`` called with numba kernels on (``mode`` True) or with their numpy twins (False)."""

    def run() -> Any:
        with jit.use_jit(mode):
            return function()

    return run


def scatter_cases(quick: bool) -> list[Case]:
    """``scatter_add_into`` as the VJP of ``x[rows]`` uses it: rows of an embedding table, and elements."""
    sizes = [(1_000, 100, 16), (10**5, 10**3, 64) if quick else (10**6, 10**4, 64)]
    sizes.append((10**5, 10**5, 1) if quick else (10**6, 10**6, 1))
    cases = []
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        for count, n_rows, row_length in sizes:
            rows = rng.integers(0, n_rows, count)  # repeats are certain: count >= n_rows
            values = rng.standard_normal((count, row_length)).astype(dtype)
            total = np.zeros((n_rows, row_length), dtype)
            if row_length == 1:  # element positions: a 1-d table
                values, total = values.reshape(count), total.reshape(n_rows)

            def scatter(total: Any = total, rows: Any = rows, values: Any = values) -> Any:
                return tape.ops.scatter.scatter_add_into(total, rows, values)

            def add_at(total: Any = total, rows: Any = rows, values: Any = values) -> Any:
                return np.add.at(total, rows, values)

            shape = f"({n_rows:.0e}, {row_length})" if row_length > 1 else f"({n_rows:.0e},)"
            cases.append(
                Case(
                    f"{count:.0e} indices into {shape} {np.dtype(dtype).name}".replace("e+0", "e"),
                    {
                        "kernel": with_jit(True, scatter),
                        "twin": with_jit(False, scatter),
                        "np.add.at": add_at,
                    },
                )
            )
    return cases


def _scatter_example(dtype: Any) -> tuple[Any, ...]:
    return (np.zeros((10, 4), dtype), np.array([1, 1, 3], dtype=np.int64), np.ones((3, 4), dtype))


_OPTIMIZER_KERNEL = "tape.nn.optim_kernels.{}_kernel"
#: The optimizer configurations timed for each kernel: label, class, options.
_OPTIMIZER_RULES: dict[str, list[tuple[str, type[optim.Optimizer], dict[str, Any]]]] = {
    _OPTIMIZER_KERNEL.format("sgd"): [
        ("SGD", optim.SGD, {"lr": 0.01}),
        (
            "SGD momentum Nesterov decay",
            optim.SGD,
            {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
        ),
    ],
    _OPTIMIZER_KERNEL.format("adam"): [
        ("Adam", optim.Adam, {"lr": 1e-3}),
        ("AdamW amsgrad", optim.AdamW, {"lr": 1e-3, "amsgrad": True}),
    ],
    _OPTIMIZER_KERNEL.format("rmsprop"): [
        # not centered: with the same gradient at every step, sqrt(s - a^2) of the centered rule turns
        # to nan after a few thousand steps (s - a^2 decays below its rounding error)
        ("RMSprop momentum", optim.RMSprop, {"lr": 1e-3, "momentum": 0.9}),
    ],
    _OPTIMIZER_KERNEL.format("adagrad"): [("Adagrad", optim.Adagrad, {"lr": 0.01})],
}
#: Parameter shapes of one step: a parameter of 10^3, one of 784 x 512, the MLP 784-512-256-10's six.
_OPTIMIZER_SHAPES = {
    "1e3": [(1000,)],
    "784x512": [(784, 512)],
    "MLP 784-512-256-10": [(512, 784), (512,), (256, 512), (256,), (10, 256), (10,)],
}


def optimizer_cases(quick: bool, kernel: str = _OPTIMIZER_KERNEL.format("sgd")) -> list[Case]:
    """``optimizer.step()`` for the configurations of one optimizer kernel (``_OPTIMIZER_RULES``), over a
    parameter of 10^3, one of 784 x 512 and the MLP's parameters; JIT on (kernel) and off (twin).

    Plain SGD below ``PLAIN_SGD_MIN_SIZE`` takes the twin with JIT on too; there a third implementation
    runs the kernel at any size, to show why.
    """
    del quick  # the sizes are those of the training-step benchmark either way
    cases = []
    rng = np.random.default_rng(0)
    for label, optimizer_class, options in _OPTIMIZER_RULES[kernel]:
        for dtype in (np.float64, np.float32):
            for size_label, shapes in _OPTIMIZER_SHAPES.items():
                parameters = []
                for shape in shapes:
                    parameter = tape.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
                    parameter.grad = (1e-3 * rng.standard_normal(shape)).astype(dtype)
                    parameters.append(parameter)
                optimizer = optimizer_class(parameters, **options)
                implementations = {
                    "kernel": with_jit(True, optimizer.step),
                    "twin": with_jit(False, optimizer.step),
                }
                plain = (
                    optimizer_class is optim.SGD
                    and not options.get("momentum")
                    and not options.get("weight_decay")
                )
                if plain and max(np.prod(shape) for shape in shapes) < optim_kernels.PLAIN_SGD_MIN_SIZE:
                    implementations["kernel at any size"] = with_jit(
                        True, partial(_step_at_any_size, optimizer)
                    )
                cases.append(Case(f"{label}, {size_label} {np.dtype(dtype).name}", implementations))
    return cases


def _step_at_any_size(optimizer: optim.Optimizer) -> None:
    threshold = optim_kernels.PLAIN_SGD_MIN_SIZE
    optim_kernels.PLAIN_SGD_MIN_SIZE = 0
    try:
        optimizer.step()
    finally:
        optim_kernels.PLAIN_SGD_MIN_SIZE = threshold


def _optimizer_example(kernel: str, dtype: Any) -> tuple[Any, ...]:
    """Arguments of one call of the optimizer kernel ``kernel``: flat buffers of ten elements, scalars."""
    value, grad = np.ones(10, dtype), np.full(10, 0.5, dtype)
    buffers, scalars = {
        _OPTIMIZER_KERNEL.format("sgd"): (1, (0.1, 1e-4, 0.9, 1.0, True, False)),
        _OPTIMIZER_KERNEL.format("adam"): (3, (0.9, 0.1, 0.999, 1e-3, 1e-8, 0.0, 1e-5, 1e-3, 0.03)),
        _OPTIMIZER_KERNEL.format("rmsprop"): (3, (0.01, 0.99, 0.01, 1e-8, 0.0, 0.9)),
        _OPTIMIZER_KERNEL.format("adagrad"): (1, (0.01, 0.0, 1e-10)),
    }[kernel]
    return (value, grad, *(np.zeros(10, dtype) for _ in range(buffers)), *scalars)


_ELEMENTWISE_KERNEL = "tape.ops.elementwise_kernels.{}_kernel"
#: For each elementwise kernel, the public functions that run it: label, function, and its arguments from a
#: cotangent g and x uniform in [-3, 3] (for 1-d arrays they are the kernel's own, except sine_kernel's).
_ELEMENTWISE_CALLS: dict[str, list[tuple[str, Callable[..., Any], Callable[[Any, Any], tuple[Any, ...]]]]] = {
    _ELEMENTWISE_KERNEL.format(name): calls
    for name, calls in {
        "tanh_vjp": [("tanh VJP", fused.tanh_vjp, lambda g, x: (g, np.tanh(x)))],
        "sigmoid_vjp": [("sigmoid VJP", fused.sigmoid_vjp, lambda g, x: (g, 1 / (1 + np.exp(-x))))],
        "relu_vjp": [("relu VJP", fused.relu_vjp, lambda g, x: (g, np.maximum(x, 0)))],
        "square_vjp": [("x**2 VJP", fused.square_vjp, lambda g, x: (g, x))],
        "sqrt_vjp": [("sqrt VJP", fused.sqrt_vjp, lambda g, x: (g, np.sqrt(np.abs(x))))],
        "leaky_relu_vjp": [("leaky_relu VJP", fused.leaky_relu_vjp, lambda g, x: (g, x, 0.01))],
        "elu_vjp": [("elu VJP", fused.elu_vjp, lambda g, x: (g, np.where(x > 0, x, np.expm1(x)), x, 1.0))],
        "gelu_vjp": [("gelu VJP", fused.gelu_vjp, lambda g, x: (g, x))],
        "softplus_vjp": [("softplus VJP", fused.softplus_vjp, lambda g, x: (g, x, 1.0, 20.0))],
        "extremum_vjp": [("maximum(x, 0) VJP", fused.extremum_vjp, lambda g, x: (g, x, 0.0, False, True))],
        "sine": [
            ("sin", fused.sin, lambda g, x: (x,)),
            ("sin VJP", fused.sin_vjp, lambda g, x: (g, x)),
            ("cos VJP", fused.cos_vjp, lambda g, x: (g, x)),
        ],
    }.items()
}


def elementwise_cases(quick: bool, kernel: str = _ELEMENTWISE_KERNEL.format("tanh_vjp")) -> list[Case]:
    """The public functions that run one elementwise kernel (a fused VJP, or sine and cosine) on 10^3 and
    10^6 elements (float64, and float32 unless quick), JIT on (kernel) and off (twin: the numpy expression
    the op runs below ``fused.LARGE``). Sine and cosine run numpy's own loop for float32 either way.
    """
    rng = np.random.default_rng(0)
    sizes = [(10**3, np.float64), (10**6, np.float64)] + ([] if quick else [(10**6, np.float32)])
    cases = []
    for label, function, arguments in _ELEMENTWISE_CALLS[kernel]:
        for size, dtype in sizes:
            x = rng.uniform(-3, 3, size).astype(dtype)
            g = rng.standard_normal(size).astype(dtype)
            call = partial(function, *arguments(g, x))
            shape = f"{size:.0e} {np.dtype(dtype).name}".replace("e+0", "e")
            implementations = {"kernel": with_jit(True, call), "twin": with_jit(False, call)}
            cases.append(Case(f"{label}, {shape}", implementations))
    return cases


def _elementwise_example(kernel: str, dtype: Any) -> tuple[Any, ...]:
    g, x = np.ones(10, dtype), np.linspace(-3, 3, 10, dtype=dtype)
    if kernel == _ELEMENTWISE_KERNEL.format("sine"):
        return (g, x, 1, True)
    return _ELEMENTWISE_CALLS[kernel][0][2](g, x)


def erf_cases(quick: bool) -> list[Case]:
    """``tape.erf`` on 10^3 and 10^5 elements, JIT on (the C library's erf in a loop) and off (``math.erf``
    mapped over the array)."""
    rng = np.random.default_rng(0)
    cases = []
    for size, dtype in [(10**3, np.float64), (10**5, np.float64)] + ([] if quick else [(10**5, np.float32)]):
        x = rng.uniform(-3, 3, size).astype(dtype)
        call = partial(erf.erf, x)
        label = f"erf, {size:.0e} {np.dtype(dtype).name}".replace("e+0", "e")
        cases.append(Case(label, {"kernel": with_jit(True, call), "twin": with_jit(False, call)}))
    return cases


_ROW_KERNEL = "tape.ops.{}"


_RECURRENT_KERNEL = "tape.ops.recurrent.{}"


def recurrent_cases(quick: bool, kernel: str = _RECURRENT_KERNEL.format("finish_gates_kernel")) -> list[Case]:
    """The LSTM cell's forward (``finish_gates_kernel``) or VJP (``lstm_cell_vjp_kernel``) on the op, at
    batch 8 x hidden 32 and at ``benchmarks.nn``'s batch 32 x hidden 128, JIT on (kernel) and off (twin)."""
    rng = np.random.default_rng(0)
    cases = []
    for batch, hidden in [(8, 32)] if quick else [(8, 32), (32, 128)]:
        for dtype in (np.float64, np.float32):
            gates = rng.standard_normal((batch, 4 * hidden)).astype(dtype)
            c = rng.standard_normal((batch, hidden)).astype(dtype)
            if kernel.endswith("finish_gates_kernel"):
                label, function = "lstm_cell", partial(recurrent.lstm_cell_op, gates, c)
            else:
                outputs = recurrent.lstm_cell_op(gates, c)
                g = tuple(rng.standard_normal(np.shape(item)).astype(dtype) for item in outputs)
                label = "lstm_cell VJP"
                function = partial(recurrent.lstm_cell_op.backward, g, outputs, gates, c)
            name = f"{label}, {batch}x{hidden} {np.dtype(dtype).name}"
            cases.append(Case(name, {"kernel": with_jit(True, function), "twin": with_jit(False, function)}))
    return cases


def _recurrent_example(kernel: str, dtype: Any) -> tuple[Any, ...]:
    """Arguments of one call of ``kernel``: a batch of 2, hidden size 3."""
    activated = np.linspace(0.1, 0.9, 24, dtype=dtype).reshape(2, 12)
    state = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
    if kernel.endswith("finish_gates_kernel"):
        return activated, state, np.empty_like(state)
    return state, state, activated, state, activated, state, state


def product_cases(quick: bool) -> list[Case]:
    """A matrix times a vector and its tangent (forward mode's joint product without MKL): the kernel, its
    rows split between the cores, against numpy's two products (float64: float32 is numpy's)."""
    rng = np.random.default_rng(0)
    cases = []
    for rows, columns in [(2048, 2048)] if quick else [(2048, 2048), (2048, 4096)]:
        for dtype in (np.float64,):
            matrix = rng.standard_normal((rows, columns)).astype(dtype)
            x, v = rng.standard_normal(columns).astype(dtype), rng.standard_normal(columns).astype(dtype)
            joint = partial(product_kernels.matrix_times_two_vectors, matrix, x, v)

            def two_products(matrix: Any = matrix, x: Any = x, v: Any = v) -> Any:
                return matrix @ x, matrix @ v

            name = f"W @ x and W @ v, W {rows}x{columns} {np.dtype(dtype).name}"
            cases.append(Case(name, {"kernel": with_jit(True, joint), "twin": two_products}))
    return cases


def _product_example(dtype: Any) -> tuple[Any, ...]:
    matrix, vector = np.ones((5, 3), dtype), np.ones(3, dtype)
    return matrix, vector, vector, np.empty(5, dtype), np.empty(5, dtype), 0, 5


def _class_targets(logits: np.ndarray) -> np.ndarray:
    return np.random.default_rng(1).integers(0, logits.shape[1], logits.shape[0])


def _cross_entropy_vjp(x: np.ndarray, g: np.ndarray, row_g: np.ndarray) -> Callable[[], Any]:
    """The VJP of ``cross_entropy(x, targets)`` (mean over the rows), as backward calls it."""
    vjp = losses.cross_entropy_rows_op.vjps[0]
    options = {"ignore_index": -100, "label_smoothing": 0.0, "scale": 1 / len(x), "reduction": "mean"}
    return partial(vjp, np.ones((), x.dtype), None, x, _class_targets(x), np.ones(x.shape[1]), **options)


def _reduction_vjp(op: Any, reduce: Callable[..., Any], axis: int | None) -> Callable[..., Callable[[], Any]]:
    """The VJP of ``reduce(x, axis)`` (an op of ops.reductions or ops.statistics), as backward calls it."""

    def call(x: np.ndarray, g: np.ndarray, row_g: np.ndarray) -> Callable[[], Any]:
        out = np.asarray(reduce(x, axis=axis))
        return partial(op.vjps[0], np.asarray(row_g[0]) if axis is None else row_g, out, x, axis)

    return call


#: For each row kernel: per workload, a label, the module whose ``FLOAT32_EXP_KERNEL_LIMIT`` it obeys (or
#: None) and ``call(x, g, row_g)``, which makes the timed call on rows ``x`` (N, C) from a cotangent ``g`` of
#: their shape and one ``row_g`` (N,) of a reduction along them, all of x's dtype.
_ROW_CALLS: dict[str, list[tuple[str, Any, Callable[..., Callable[[], Any]]]]] = {
    _ROW_KERNEL.format("special.softmax_rows"): [
        ("softmax", special, lambda x, g, row_g: partial(special.softmax, x)),
    ],
    _ROW_KERNEL.format("special.log_softmax_rows"): [
        ("log_softmax", special, lambda x, g, row_g: partial(special.log_softmax, x)),
    ],
    _ROW_KERNEL.format("special.softmax_vjp_rows"): [
        (
            "softmax VJP",
            None,
            lambda x, g, row_g: partial(special.softmax_op.vjps[0], g, special.softmax(x), x),
        ),
    ],
    _ROW_KERNEL.format("special.log_softmax_vjp_rows"): [
        (
            "log_softmax VJP",
            special,
            lambda x, g, row_g: partial(special.log_softmax_op.vjps[0], g, special.log_softmax(x), x),
        ),
    ],
    _ROW_KERNEL.format("losses.cross_entropy_rows"): [
        ("cross_entropy", losses, lambda x, g, row_g: partial(losses.cross_entropy, x, _class_targets(x))),
    ],
    _ROW_KERNEL.format("losses.cross_entropy_vjp_rows"): [("cross_entropy VJP", losses, _cross_entropy_vjp)],
    _ROW_KERNEL.format("reductions.extremum_vjp_rows"): [
        ("max VJP, rows", None, _reduction_vjp(reductions.max_, np.max, -1)),
        ("max VJP, all", None, _reduction_vjp(reductions.max_, np.max, None)),
    ],
    _ROW_KERNEL.format("statistics.centred_rows"): [
        ("var VJP, rows", None, _reduction_vjp(statistics.var, np.var, -1)),
        ("std VJP, rows", None, _reduction_vjp(statistics.std, np.std, -1)),
    ],
}


def row_cases(quick: bool, kernel: str = _ROW_KERNEL.format("special.softmax_rows")) -> list[Case]:
    """The public function (or op VJP) that runs one row kernel, on rows of 128 x 10 and 4096 x 1000
    (512 x 100 when quick) in float64 and float32, JIT on (kernel) and off (twin).

    float32 arrays above a module's ``FLOAT32_EXP_KERNEL_LIMIT`` run numpy with JIT on too (the kernels'
    scalar exp loses to numpy's vectorized one); there a third implementation runs the kernel anyway.
    """
    rng = np.random.default_rng(0)
    cases = []
    for label, limited, call in _ROW_CALLS[kernel]:
        for shape in [(128, 10), (512, 100) if quick else (4096, 1000)]:
            for dtype in (np.float64, np.float32):
                x, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
                function = call(x, g, rng.standard_normal(shape[0]).astype(dtype))
                implementations = {"kernel": with_jit(True, function), "twin": with_jit(False, function)}
                if limited is not None and dtype == np.float32 and x.size > limited.FLOAT32_EXP_KERNEL_LIMIT:
                    unlimited = partial(_without_float32_limit, limited, function)
                    implementations["kernel at any size"] = with_jit(True, unlimited)
                name = f"{label}, {shape[0]}x{shape[1]} {np.dtype(dtype).name}"
                cases.append(Case(name, implementations))
    return cases


def _without_float32_limit(module: Any, function: Callable[[], Any]) -> Any:
    limit = module.FLOAT32_EXP_KERNEL_LIMIT
    module.FLOAT32_EXP_KERNEL_LIMIT = np.inf
    try:
        return function()
    finally:
        module.FLOAT32_EXP_KERNEL_LIMIT = limit


def _row_example(kernel: str, dtype: Any) -> tuple[Any, ...]:
    """Arguments of one call of row kernel ``kernel``: four rows of five."""
    x = np.linspace(-2, 2, 20, dtype=dtype).reshape(4, 5)
    rows = np.linspace(0.5, 1, 4)
    name = kernel.rsplit(".", 1)[-1]
    return {
        "softmax_rows": (x,),
        "log_softmax_rows": (x,),
        "softmax_vjp_rows": (x, x),
        "log_softmax_vjp_rows": (x, x),
        "cross_entropy_rows": (x, np.arange(4), np.ones(5), -100, 0.0),
        "cross_entropy_vjp_rows": (x, np.arange(4), np.ones(5), -100, 0.0, rows),
        "extremum_vjp_rows": (rows.astype(dtype), x, np.max(x, axis=1)),
        "centred_rows": (x, rows),
    }[name]


#: For each kernel: its timed workloads, and example arguments (float64, float32) for the compile timing.
CASES: dict[str, tuple[Callable[[bool], list[Case]], Callable[[Any], tuple[Any, ...]]]] = {
    "tape.ops.scatter.scatter_rows": (scatter_cases, _scatter_example),
    "ops.erf.erf_kernel": (erf_cases, lambda dtype: (np.linspace(-3, 3, 10, dtype=dtype),)),
    **{
        name: (partial(optimizer_cases, kernel=name), partial(_optimizer_example, name))
        for name in _OPTIMIZER_RULES
    },
    **{
        name: (partial(elementwise_cases, kernel=name), partial(_elementwise_example, name))
        for name in _ELEMENTWISE_CALLS
    },
    **{name: (partial(row_cases, kernel=name), partial(_row_example, name)) for name in _ROW_CALLS},
    **{
        name: (partial(recurrent_cases, kernel=name), partial(_recurrent_example, name))
        for name in map(_RECURRENT_KERNEL.format, ("finish_gates_kernel", "lstm_cell_vjp_kernel"))
    },
    "tape.ops.product_kernels.two_products_kernel": (product_cases, _product_example),
}
#: Kernels timed against their twins by another suite, in the workloads that use them.
TIMED_ELSEWHERE = {
    "ops.conv": "python -m benchmarks.conv",
    "tape.ops.conv": "python -m benchmarks.conv",
    "ops.complex_kernels": "python -m benchmarks.fft",
    "tape.ops.complex_kernels": "python -m benchmarks.fft",
}


def _speed_rows(quick: bool) -> tuple[list[dict[str, Any]], list[str]]:
    results = []
    missing = []
    for name in jit.kernels():
        if name not in CASES:
            if not any(name.startswith(prefix) for prefix in TIMED_ELSEWHERE):
                missing.append(name)
            continue
        build, _ = CASES[name]
        for case in build(quick):
            timings = {
                implementation: measure(function, repeats=3 if quick else 5, min_time=0.02 if quick else 0.1)
                for implementation, function in case.implementations.items()
            }
            kernel = timings["kernel"].median
            results.append(
                {
                    "kernel": name,
                    "case": case.label,
                    **{f"{implementation}_s": timing.median for implementation, timing in timings.items()},
                    **{f"{implementation}_low_s": timing.low for implementation, timing in timings.items()},
                    **{
                        f"{implementation}_over_kernel": timing.median / kernel
                        for implementation, timing in timings.items()
                        if implementation != "kernel"
                    },
                }
            )
    return results, missing


def _probe(name: str) -> dict[str, float]:
    """In this (fresh) interpreter: seconds to import numba, then the first and a second signature."""
    import time

    _, example = CASES[name]
    kernel = jit.kernels()[name]
    start = time.perf_counter()
    import numba  # noqa: F401

    imported = time.perf_counter()
    with jit.use_jit(True):
        kernel(*example(np.float64))
        first = time.perf_counter()
        kernel(*example(np.float32))
        second = time.perf_counter()
    if kernel.failed:
        raise RuntimeError(f"{name} did not compile")
    return {
        "import_numba_s": imported - start,
        "first_call_s": first - imported,
        "second_call_s": second - first,
    }


def _probe_in_fresh_interpreter(name: str, cache_dir: str) -> dict[str, float]:
    environment = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    environment.pop(jit.ENVIRONMENT_VARIABLE, None)
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.kernels", "--probe", name],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _compile_rows() -> list[dict[str, Any]]:
    results = []
    for name in jit.kernels():
        if name not in CASES:
            continue
        with tempfile.TemporaryDirectory() as cache_dir:
            compiled = _probe_in_fresh_interpreter(name, cache_dir)
            cached = _probe_in_fresh_interpreter(name, cache_dir)
        results.append({"kernel": name, "compile": compiled, "cached": cached})
    return results


def run(quick: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Time every kernel against its twin, and its compile and cached-load cost; print both tables.

    Returns ``{"speed": [...], "one_time": [...]}``: one row per workload (seconds per call of each
    implementation, and each one's ratio to the kernel), and one row per kernel with its one-time costs
    (``{"kernel", "compile": {...}, "cached": {...}}``, seconds).
    """
    speed, missing = _speed_rows(quick)
    # Every implementation that some case has, in order of appearance (cases may have different ones).
    others = (key[: -len("_over_kernel")] for row in speed for key in row if key.endswith("_over_kernel"))
    implementations = ["kernel", *dict.fromkeys(others)]
    header = [
        "kernel",
        "case",
        *implementations,
        *(f"{name} / kernel" for name in implementations[1:]),
        "kernel fastest",
    ]
    table = [
        [
            row["kernel"].rsplit(".", 1)[-1],
            row["case"],
            *(format_time(row[f"{name}_s"]) if f"{name}_s" in row else "-" for name in implementations),
            *(
                f"{row[f'{name}_over_kernel']:.1f}x" if f"{name}_s" in row else "-"
                for name in implementations[1:]
            ),
            "yes"
            if all(row[f"{name}_over_kernel"] > 1 for name in implementations[1:] if f"{name}_s" in row)
            else "NO",
        ]
        for row in speed
    ]
    note = f"registered kernels with no case here: {', '.join(missing)}" if missing else ""
    print_table(
        "numba kernels vs their numpy twins (median seconds per call; kernel = JIT on, twin = JIT off)",
        header,
        table,
        note,
    )

    one_time = _compile_rows()
    print_table(
        "One-time cost per process (fresh interpreter; empty numba cache, then the cache it filled)",
        ["kernel", "cache", "import numba", "first call (float64)", "second signature (float32)"],
        [
            [
                row["kernel"].rsplit(".", 1)[-1],
                label,
                format_time(row[key]["import_numba_s"]),
                format_time(row[key]["first_call_s"]),
                format_time(row[key]["second_call_s"]),
            ]
            for row in one_time
            for label, key in (("empty (compile)", "compile"), ("filled (load)", "cached"))
        ],
        "the first call also pays numba's one-time start-up in the process (it imports scipy, if present)",
    )
    return {"speed": speed, "one_time": one_time}


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.kernels [--quick] [--out DIR]``."""
    parser = suite_command_line("kernels", __doc__)
    parser.add_argument("--probe", metavar="KERNEL", help=argparse.SUPPRESS)  # used by the compile timing
    options = parser.parse_args(argv)
    if options.probe:
        print(json.dumps(_probe(options.probe)))
        return 0
    report_results("kernels", run(quick=options.quick), options.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

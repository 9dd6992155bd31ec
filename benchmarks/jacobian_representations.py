"""The lecture's minibatch Jacobian held three ways: dense, as diagonal blocks, and as an operator.

For f(X) = relu(X Wᵀ + b) with X of shape (batch, n) and W of shape (m, n), ``tape.jacobian_operator``
reads off the tape that J is block diagonal and equals diag(mask) · (I ⊗ W). Three representations:

* **dense**: ``to_dense()`` is refused with the size it would take (at the lecture's size 204,800 x
  409,600 float64 = 625 GiB);
* **diagonal blocks**: one m x n block per sample (100 blocks = 6.25 GiB at the lecture's size), built at
  a batch that fits and timed per block, from the factors (mask[:, None] * W) and by reverse sweeps that
  carry one output feature of every sample at once (m sweeps in one batched sweep);
* **the operator**: one W and the mask; ``J @ v`` and ``u @ J`` timed against the forward pass alone, both
  from the factors and through the records (forward and reverse mode on the tape).

Memory against batch size for the three goes to ``jacobian_representations.png``. Used by
``benchmarks.vjp_vs_jacobian``.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import tape
from benchmarks.results import pyplot
from benchmarks.timing import (
    Timing,
    format_bytes,
    format_spread,
    format_time,
    measure,
    measure_side_by_side,
    print_table,
)

#: The batch at which the diagonal blocks are built and timed (4 blocks of the lecture's 64 MiB).
BLOCK_BATCH = 4
#: Rounds of the products and the forward pass, taken in turns.
ROUNDS = 3


def _layer_function(layer: Any) -> Callable[[Any], Any]:
    # Constants as tensors: a record versions a tensor's buffer, where it would copy a plain array it reads.
    weight, bias = tape.tensor(layer.weight), tape.tensor(layer.bias)
    return lambda x: np.maximum(x @ weight.T + bias, 0.0)


def _forward(layer: Any) -> np.ndarray:
    return np.maximum(layer.x @ layer.weight.T + layer.bias, 0.0)


def _peak_bytes(function: Callable[[], Any]) -> int:
    """Peak bytes numpy allocated while ``function`` ran (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        function()
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


def _once(function: Callable[[], Any]) -> Timing:
    """One timed call, for work too slow to repeat."""
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    return Timing(seconds, seconds, seconds)


def measure_representations(
    make_layer: Callable[[int, int | None], Any],
    inputs: int,
    batch: int,
    memory_limit: int,
    repeats: int = 5,
    min_time: float = 0.05,
    block_batch: int = BLOCK_BATCH,
) -> dict[str, Any]:
    """Time and size the three representations of the batch Jacobian of an ``inputs`` → ``inputs // 2``
    layer (``make_layer(inputs, batch)``, as ``benchmarks.vjp_vs_jacobian.make_layer``); each product is
    checked against its value written by hand."""
    memory, refusal, times, peaks = _time_products(make_layer(inputs, batch), memory_limit, repeats, min_time)
    times.update(_time_blocks(make_layer(inputs, block_batch), memory_limit, repeats, min_time))
    return {
        "inputs": inputs,
        "outputs": inputs // 2,
        "batch": batch,
        "block_batch": block_batch,
        "shape": [batch * (inputs // 2), batch * inputs],
        "dense_bytes": memory.dense,
        "blocks_bytes": memory.blocks,
        "structured_bytes": memory.structured,
        "dense_refused": refusal,
        "times": {name: timing.__dict__ for name, timing in times.items()},
        "peak_bytes": peaks,
    }


def _time_products(
    layer: Any, memory_limit: int, repeats: int, min_time: float
) -> tuple[Any, str | None, dict[str, Timing], dict[str, int]]:
    """The operator's memory, to_dense's refusal, and J @ v and u @ J timed beside the forward pass."""
    factored = tape.jacobian_operator(_layer_function(layer), layer.x)
    through_records = tape.jacobian_operator(_layer_function(layer), layer.x, structured=False)
    mask = layer.mask()
    tangent = np.random.default_rng(1).standard_normal(layer.x.shape)
    expected_push = mask * (tangent @ layer.weight.T)
    expected_pull = (layer.cotangent * mask) @ layer.weight
    for operator in (factored, through_records):
        assert np.allclose(operator @ tangent, expected_push)
        assert np.allclose(layer.cotangent @ operator, expected_pull)
    try:
        factored.to_dense(memory_limit=memory_limit)
        refusal = None
    except MemoryError as error:
        refusal = str(error)
    products: dict[str, Callable[[], Any]] = {
        "J @ v, factored": lambda: factored @ tangent,
        "u @ J, factored": lambda: layer.cotangent @ factored,
        "J @ v, through the records": lambda: through_records @ tangent,
        "u @ J, through the records": lambda: layer.cotangent @ through_records,
    }
    # Taken in turns, so that a change in the machine's load falls on every case alike.
    recorded = tape.tensor(layer.x, requires_grad=True)
    cases = {
        "forward pass (numpy)": (lambda: _forward(layer), None),
        "forward pass (tape, recorded)": (lambda: _layer_function(layer)(recorded), None),
    }
    cases.update({name: (product, None) for name, product in products.items()})
    times = measure_side_by_side(cases, rounds=ROUNDS, repeats=repeats, min_time=min_time)
    peaks = {name: _peak_bytes(product) for name, product in products.items()}
    return factored.memory, refusal, times, peaks


def _time_blocks(layer: Any, memory_limit: int, repeats: int, min_time: float) -> dict[str, Timing]:
    """Seconds per diagonal block, from the factors and by reverse sweeps through the records."""
    operator = tape.jacobian_operator(_layer_function(layer), layer.x)
    count = len(layer.x)
    first = next(iter(operator.blocks()))
    assert np.array_equal(first, layer.mask()[0][:, None] * layer.weight)
    from_factors = measure(lambda: list(operator.blocks()), max(1, repeats // 2), min_time)
    by_sweeps = _once(lambda: list(operator.blocks(by_sweeps=True, memory_limit=memory_limit)))
    return {
        f"one block from the factors (batch {count})": from_factors.scaled(count),
        f"one block by reverse sweeps (batch {count})": by_sweeps.scaled(count),
    }


def memory_by_batch(
    make_layer: Callable[[int, int | None], Any], inputs: int, batches: Sequence[int]
) -> list[dict[str, Any]]:
    """Bytes of the three representations at each batch size, as ``JacobianOperator.memory`` reports them."""
    rows = []
    for batch in batches:
        layer = make_layer(inputs, batch)
        memory = tape.jacobian_operator(_layer_function(layer), layer.x).memory
        rows.append(
            {"batch": batch, "dense": memory.dense, "blocks": memory.blocks, "structured": memory.structured}
        )
    return rows


def print_representations(results: dict[str, Any], memory_limit: int) -> None:
    """Two tables: the memory of each representation, and the time of what each one offers."""
    batch, outputs, inputs = results["batch"], results["outputs"], results["inputs"]
    rows, columns = batch * outputs, batch * inputs
    memory_rows = [
        [
            f"dense J, {rows:,} x {columns:,}",
            format_bytes(results["dense_bytes"]),
            f"refused by to_dense() (over the {format_bytes(memory_limit)} limit)"
            if results["dense_refused"]
            else "built",
        ],
        [
            f"diagonal blocks, {batch} of {outputs:,} x {inputs:,}",
            format_bytes(results["blocks_bytes"]),
            "blocks(): one block at a time",
        ],
        [
            "operator diag(mask) · (I ⊗ W)",
            format_bytes(results["structured_bytes"]),
            "one W and the mask, whatever the batch",
        ],
    ]
    print_table(
        f"The minibatch Jacobian three ways: batch {batch}, n = {inputs} → m = {outputs}",
        ["representation", "memory", "note"],
        memory_rows,
    )
    forward = results["times"]["forward pass (numpy)"]["median"]
    time_rows = []
    for name, timing in results["times"].items():
        peak = results["peak_bytes"].get(name)
        time_rows.append(
            [
                name,
                format_time(timing["median"]),
                format_spread(timing["low"], timing["high"]),
                f"{timing['median'] / forward:.2g}x",
                format_bytes(peak) if peak is not None else "",
            ]
        )
    print_table(
        "What each representation costs (per call; blocks per block)",
        ["operation", "time (median)", "low .. high", "vs numpy forward", "peak memory"],
        time_rows,
    )


def plot_memory(rows: Sequence[dict[str, Any]], memory_limit: int, inputs: int, path: Path) -> bool:
    """Memory of the three representations against batch size (log-log); False without matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    batches = [row["batch"] for row in rows]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for key, label, style in (
        ("dense", "dense J (batch² m n)", "C3s--"),
        ("blocks", "diagonal blocks (batch m n)", "C1o-"),
        ("structured", "operator: diag(mask) · (I ⊗ W) (m n + batch m)", "C0D-"),
    ):
        axis.loglog(batches, [row[key] for row in rows], style, label=label)
    axis.axhline(memory_limit, color="0.5", linewidth=0.8, linestyle=":", label="to_dense() memory limit")
    axis.set(
        xlabel="batch size",
        ylabel="bytes (float64)",
        title=f"relu(X Wᵀ + b), n = {inputs} → m = {inputs // 2}: memory of the batch Jacobian",
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True

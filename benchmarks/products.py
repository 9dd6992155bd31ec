"""Matrix products: numpy's BLAS, tape's (MKL's with the ``mkl`` extra) and PyTorch's, side by side.

The training workloads spend most of their time in a few products: the MLP's first layer (``x @ W1.T``)
and its two gradients (``g.T @ x``, ``g @ W1``), and the same three for the batch VJP of the lecture's
layer (X 100 x 4096, W 2048 x 4096). Each is timed in float64 and float32, at one thread and at each
library's default thread count, with ``tape.ops.mkl.matmul`` (what tape's ``@`` runs) beside ``np.matmul``
and ``torch.matmul`` on the same memory. Without MKL, tape's column is numpy's and is left out (a note says
so); without PyTorch, its columns are. Results are checked against numpy's before anything is timed.

python -m benchmarks --suite products       # full repeats
python -m benchmarks.products --quick       # smaller matrices, fewer repeats
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import tape
from benchmarks import peers
from benchmarks import training_step as steps
from benchmarks.console import progress_bar, suite_main
from benchmarks.timing import Timing, format_time, measure_side_by_side, print_table

DTYPES = (np.float64, np.float32)
NUMPY, TAPE, TORCH = "numpy", "tape", "PyTorch"
ONE_THREAD = ", 1 thread"
ROUNDS, REPEATS, MIN_TIME = 3, 3, 0.05
QUICK_ROUNDS, QUICK_REPEATS, QUICK_MIN_TIME = 1, 2, 0.005
QUICK_SHRINK = 8  # each dimension divided by this in quick runs (the batch of 100 and 128 kept)


@dataclass(frozen=True)
class Product:
    """``left @ right`` where ``right`` is a matrix of ``right_shape`` read transposed when ``transposed``."""

    label: str
    left_shape: tuple[int, int]
    right_shape: tuple[int, int]
    left_transposed: bool = False
    right_transposed: bool = False

    def operands(self, dtype: Any, shrink: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The two operands, as views (``.T``) where the product reads them transposed."""
        rng = np.random.default_rng(seed)

        def matrix(shape: tuple[int, int], transposed: bool) -> np.ndarray:
            rows, columns = (max(1, size // shrink) if size > 128 else size for size in shape)
            stored = rng.standard_normal((rows, columns)).astype(dtype)
            return stored.T if transposed else stored

        return (
            matrix(self.left_shape, self.left_transposed),
            matrix(self.right_shape, self.right_transposed),
        )


PRODUCTS = (
    Product("MLP forward: x @ W1.T", (128, 784), (512, 784), right_transposed=True),
    Product("MLP weight grad: g.T @ x", (128, 512), (128, 784), left_transposed=True),
    Product("MLP input grad: g @ W1", (128, 512), (512, 784)),
    Product("batch forward: X @ W.T", (100, 4096), (2048, 4096), right_transposed=True),
    Product("batch weight grad: g.T @ X", (100, 2048), (100, 4096), left_transposed=True),
    Product("batch input grad: g @ W", (100, 2048), (2048, 4096)),
)


def _one_thread() -> contextlib.AbstractContextManager[Any]:
    stack = contextlib.ExitStack()
    stack.enter_context(steps.blas_threads(1))
    if peers.installed("torch"):
        stack.enter_context(steps.torch_threads(1))
    return stack


def _cases(a: np.ndarray, b: np.ndarray) -> dict[str, Callable[[], Any]]:
    cases: dict[str, Callable[[], Any]] = {NUMPY: lambda: np.matmul(a, b)}
    if tape.ops.mkl.gemms() is not None:
        cases[TAPE] = lambda: tape.ops.mkl.matmul(a, b)
    if peers.installed("torch"):
        import torch

        left, right = torch.from_numpy(a), torch.from_numpy(b)  # shares the memory and its layout
        cases[TORCH] = lambda: torch.matmul(left, right)
    return cases


def measure_product(product: Product, dtype: Any, quick: bool) -> dict[str, Timing]:
    """Every available case of ``product`` in ``dtype``, at default threads and at one, side by side."""
    a, b = product.operands(dtype, QUICK_SHRINK if quick else 1)
    expected = np.matmul(a, b)
    functions: dict[str, tuple[Callable[[], Any], Any]] = {}
    for name, call in _cases(a, b).items():
        result = np.asarray(call())
        scale = float(np.abs(expected).max()) or 1.0
        if not float(np.abs(result - expected).max()) / scale <= 100 * a.shape[1] * np.finfo(dtype).eps:
            raise AssertionError(f"products: {name}'s {product.label} differs from numpy's")
        functions[name] = (call, None)
        functions[name + ONE_THREAD] = (call, _one_thread)
    rounds, repeats, min_time = (
        (QUICK_ROUNDS, QUICK_REPEATS, QUICK_MIN_TIME) if quick else (ROUNDS, REPEATS, MIN_TIME)
    )
    return measure_side_by_side(functions, rounds, repeats, min_time, settle=0.0 if quick else 0.25)


def run(quick: bool = False) -> dict[str, Any]:
    """Time every product in both dtypes; print the table; return the figures (``products.json``)."""
    products_by = tape.ops.mkl.version() or "numpy's (MKL is not in use here)"
    print(f"\nMatrix products: tape's are {products_by}")
    missing = peers.note_not_installed(["torch"])
    rows = []
    with progress_bar(len(PRODUCTS) * len(DTYPES), "products") as progress:
        for product in PRODUCTS:
            for dtype in DTYPES:
                progress.set_postfix_str(f"{product.label}, {np.dtype(dtype).name}")
                timings = measure_product(product, dtype, quick)
                rows.append((product, np.dtype(dtype).name, timings))
                progress.update()
    names = [name for library in (NUMPY, TAPE, TORCH) for name in (library, library + ONE_THREAD)]
    columns = [name for name in names if name in rows[0][2]]
    table = []
    for product, dtype, timings in rows:
        ratios = [
            f"{timings[TAPE + suffix].median / timings[NUMPY + suffix].median:.2f}x"
            for suffix in ("", ONE_THREAD)
            if TAPE + suffix in timings
        ]
        times = [format_time(timings[column].median) for column in columns if column in timings]
        table.append([product.label, dtype, *times, *ratios])
    ratio_header = ["tape / numpy", "tape / numpy, 1 thread"] if TAPE in columns else []
    print_table(
        "Matrix products: median of interleaved rounds",
        ["product", "dtype", *columns, *ratio_header],
        table,
        "shapes shrunk by 8 (--quick)" if quick else "",
    )
    return {
        "tape_products": products_by,
        "skipped": missing,
        "rows": [
            {
                "product": product.label,
                "dtype": dtype,
                "cases": {
                    name: {"median_s": t.median, "low_s": t.low, "high_s": t.high}
                    for name, t in timings.items()
                },
            }
            for product, dtype, timings in rows
        ],
    }


def main(argv: list[str] | None = None) -> int:
    return suite_main("products", __doc__ or "", run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

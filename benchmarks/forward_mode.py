"""Forward mode: a JVP (J v) against the forward pass it differentiates, and the Hessian-vector product
forward over reverse against reverse over reverse.

Two cases from the lecture and the elementwise world, each timed side by side in one run:

1. the lecture's layer ``relu(W x + b)``, 4096 → 2048, float64 (W and b tensors, as a module keeps
   them; and plain arrays, which recording copies): the forward alone, ``tape.jvp``
   (the function recorded once, the tangent pushed through its records by each op's JVP rule) and the
   JVP in reverse mode (differentiating the linear VJP: two reverse sweeps), PyTorch's ``torch.func.jvp``
   when installed;
2. a chain of 20 elementwise ops on 10^5 float64 values, the same cases.

The goal: ``tape.jvp`` at most 2x the forward pass (the same function on tensors that require no grad: the
same ops, nothing recorded). ``tape.jvp`` pushes the tangents as the function runs, and a product (the
layer's ``W x``: MKL's product with x and v stacked, or without MKL ``ops/product_kernels.py``) or a
sine computes its output and tangent together (``Op(forward_jvp=...)``), so W is read once. Then
``J @ V`` for 32 columns by ``tape.jacobian_operator`` (one sweep carrying the stacked tangents) against
one sweep per column, and ``tape.hvp`` (forward over reverse: the gradient recorded, the direction pushed
through its records) against the Hessian-vector product by double backward, on the tanh MLP of
``benchmarks.higher_order``. Every result is checked against the other ways first.

python -m benchmarks.forward_mode            # full repeats
python -m benchmarks.forward_mode --quick    # fewer repeats, smaller sizes
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tape
from benchmarks import peers
from benchmarks.console import progress_bar, suite_main
from benchmarks.timing import measure_side_by_side, print_table, timing_rows
from tape.functional import _pairing, gradients
from tape.ops import mkl
from tape.tensor import leaf

TARGET = 2.0  # tape.jvp over the forward pass, at most
FORWARD = "forward pass (tape's ops, unrecorded)"
TAPE_JVP = "tape.jvp (forward mode)"
REVERSE_JVP = "J v by reverse mode (two sweeps)"
TORCH_JVP = "PyTorch torch.func.jvp"

Case = Callable[[], Any]


def layer(x: Any, weight: Any, bias: Any) -> Any:
    """The lecture's layer: ``relu(W x + b)``."""
    return tape.nn.functional.relu(weight @ x + bias)


def chain(x: Any) -> Any:
    """20 elementwise ops: five rounds of sin, multiply, tanh, add."""
    for _ in range(5):
        x = np.tanh(np.sin(x) * 1.5) + 0.25
    return x


def reverse_mode_jvp(f: Callable[[Any], Any], x0: np.ndarray, v: np.ndarray) -> np.ndarray:
    """J v as the derivative in u of <VJP(u), v>: the reverse-mode way (what tape.jvp did before it had
    forward mode, and still does inside other transforms)."""
    x = leaf(x0, requires_grad=True)
    out = f(x)
    u = leaf(np.zeros_like(out.data), requires_grad=True)
    (pulled,) = gradients(out, x, u, retain_graph=True, create_graph=True)
    pairing = _pairing([pulled], [v])
    (found,) = gradients(pairing, u)
    return np.asarray(found)


def _cases(f: Callable[[Any], Any], x0: np.ndarray, v: np.ndarray) -> dict[str, Case]:
    x_tensor = tape.tensor(x0)  # the forward pass on tensors: the same ops as the JVP records, unrecorded
    return {
        FORWARD: lambda: f(x_tensor),
        TAPE_JVP: lambda: tape.jvp(f, (x0,), (v,))[1],
        REVERSE_JVP: lambda: reverse_mode_jvp(f, x0, v),
    }


def _torch_case(f_torch: Callable[[Any], Any], x0: np.ndarray, v: np.ndarray) -> dict[str, Case]:
    import torch

    x, direction = torch.from_numpy(x0), torch.from_numpy(v)
    return {TORCH_JVP: lambda: torch.func.jvp(f_torch, (x,), (direction,))[1].numpy()}


def measure_case(
    title: str,
    f: Callable[[Any], Any],
    f_torch_maker: Any,
    x0: np.ndarray,
    quick: bool,
    more: dict[str, Callable[[Any], Any]] | None = None,
) -> dict:
    """Check, time and print one JVP case (``more``: other spellings of ``f``, by tape.jvp); its figures."""
    v = np.random.default_rng(1).standard_normal(x0.shape)
    cases = _cases(f, x0, v)
    for name, spelling in (more or {}).items():
        cases[name] = lambda spelling=spelling: tape.jvp(spelling, (x0,), (v,))[1]
    peer_cases, missing = peers.installed_cases({"torch": lambda x: _torch_case(f_torch_maker(), x, v)}, x0)
    cases.update(peer_cases)
    expected = reverse_mode_jvp(f, x0, v)
    for name, case in cases.items():
        if name != FORWARD:
            np.testing.assert_allclose(np.asarray(case()), expected, rtol=1e-9, atol=1e-10, err_msg=name)
    rounds = 2 if quick else 3
    with progress_bar(rounds * len(cases), f"forward_mode: {title}") as progress:
        timings = measure_side_by_side(
            {name: (case, None) for name, case in cases.items()},
            rounds,
            3 if quick else 5,
            0.05 if quick else 0.2,
            progress,
        )
    floor = timings[FORWARD].median
    ratio = timings[TAPE_JVP].median / floor
    note = (
        f"target tape.jvp <= {TARGET:g}x the forward pass: {'met' if ratio <= TARGET else 'MISSED'} "
        f"({ratio:.2f}x); reverse mode's two sweeps: {timings[REVERSE_JVP].median / floor:.2f}x; "
        + (
            "products by MKL (a product and its tangent stacked in one, the matrix read once)"
            if mkl.gemms() is not None
            else "products by numpy's BLAS (W x and W v by tape's two-vector kernel, W read once)"
        )
    )
    print_table(title, ["case", "time (median)", "spread", "vs forward"], timing_rows(timings, floor), note)
    figures = {
        name: {"median_s": t.median, "ratio_to_forward": t.median / floor} for name, t in timings.items()
    }
    products = "mkl" if mkl.gemms() is not None else "numpy"
    return {"skipped": missing, "tape_jvp_vs_forward": ratio, "products": products, "cases": figures}


def measure_hvp(quick: bool) -> dict:
    """tape.hvp (forward over reverse) against double backward, on a tanh MLP's loss in its first weight."""
    rng = np.random.default_rng(2)
    sizes = (64, 128, 10) if quick else (256, 512, 10)
    x = rng.standard_normal((32, sizes[0]))
    w1 = rng.standard_normal((sizes[0], sizes[1])) / np.sqrt(sizes[0])
    w2 = rng.standard_normal((sizes[1], sizes[2])) / np.sqrt(sizes[1])
    direction = rng.standard_normal(w1.shape)

    def loss(w: Any) -> Any:
        return np.sum(np.tanh(np.tanh(x @ w) @ w2) ** 2)

    def double_backward() -> Any:
        w = leaf(w1, requires_grad=True)
        (g,) = gradients(loss(w), w, create_graph=True)
        (found,) = gradients(_pairing([g], [direction]), w)
        return found

    cases = {
        "tape.hvp (forward over reverse)": lambda: tape.hvp(loss, (w1,), (direction,))[0],
        "double backward (reverse over reverse)": double_backward,
    }
    expected = double_backward()
    for name, case in cases.items():
        np.testing.assert_allclose(np.asarray(case()), expected, rtol=1e-9, atol=1e-10, err_msg=name)
    return _compared(
        cases,
        "double backward (reverse over reverse)",
        quick,
        "hvp",
        f"Hessian-vector product, tanh MLP {sizes[0]}-{sizes[1]}-{sizes[2]}, batch 32, float64, in W1",
        "double backward",
    )


def measure_columns(quick: bool) -> dict:
    """``J @ V`` through the records: the columns stacked in one sweep against a sweep per column."""
    rng = np.random.default_rng(3)
    inputs, outputs, columns = (64, 128, 8) if quick else (256, 1024, 32)
    weight = tape.tensor(rng.standard_normal((outputs, inputs)) / np.sqrt(inputs))

    def f(x: Any) -> Any:
        return np.tanh(np.sin(weight @ x) * 1.5) * np.sum(x**2)

    jacobian = tape.jacobian_operator(f, rng.standard_normal(inputs), structured=False)
    block = rng.standard_normal((inputs, columns))
    cases = {
        f"J @ V, {columns} columns in one sweep": lambda: jacobian @ block,
        "one sweep per column": lambda: np.stack([jacobian @ column for column in block.T], axis=1),
    }
    expected = cases["one sweep per column"]()
    np.testing.assert_allclose(cases[next(iter(cases))](), expected, rtol=1e-12, atol=1e-12)
    return _compared(
        cases,
        "one sweep per column",
        quick,
        "J @ V",
        f"J @ V through the records, {inputs} -> {outputs}, float64",
        "a sweep per column",
    )


def _compared(
    cases: dict[str, Case], reference: str, quick: bool, label: str, title: str, against: str
) -> dict[str, Any]:
    """Time ``cases`` side by side, print them against ``reference``; each one's median and ratio."""
    rounds = 2 if quick else 3
    with progress_bar(rounds * len(cases), f"forward_mode: {label}") as progress:
        timings = measure_side_by_side(
            {name: (case, None) for name, case in cases.items()}, rounds, 3, 0.05 if quick else 0.2, progress
        )
    floor = timings[reference].median
    print_table(title, ["case", "time (median)", "spread", f"vs {against}"], timing_rows(timings, floor))
    return {name: {"median_s": t.median, "ratio": t.median / floor} for name, t in timings.items()}


def run(quick: bool = False) -> dict[str, Any]:
    """Both JVP cases and the HVP; the figures (seconds per call and ratios)."""
    rng = np.random.default_rng(0)
    inputs, outputs = (1024, 512) if quick else (4096, 2048)
    weight = rng.standard_normal((outputs, inputs)) / np.sqrt(inputs)
    bias = rng.standard_normal(outputs)
    # The weights as a module holds them: tensors (a rule reads them in place, version-checked). As plain
    # arrays they are copied when recorded, as any record copies a plain array its VJP reads.
    weight_tensor, bias_tensor = tape.tensor(weight), tape.tensor(bias)

    def torch_layer() -> Any:
        import torch

        w, b = torch.from_numpy(weight), torch.from_numpy(bias)
        return lambda x: torch.relu(w @ x + b)

    def torch_chain() -> Any:
        import torch

        def f(x: Any) -> Any:
            for _ in range(5):
                x = torch.tanh(torch.sin(x) * 1.5) + 0.25
            return x

        return f

    size = 10**4 if quick else 10**5
    missing = peers.note_not_installed(["torch"])
    return {
        "skipped": missing,
        "layer": measure_case(
            f"J v of relu(W x + b), {inputs} -> {outputs}, float64",
            lambda x: layer(x, weight_tensor, bias_tensor),
            torch_layer,
            rng.standard_normal(inputs),
            quick,
            {"tape.jvp, W and b plain arrays (copied)": lambda x: layer(x, weight, bias)},
        ),
        "chain": measure_case(
            f"J v of a chain of 20 elementwise ops, {size:,} float64 values",
            chain,
            torch_chain,
            rng.uniform(-2, 2, size),
            quick,
        ),
        "columns": measure_columns(quick),
        "hvp": measure_hvp(quick),
    }


def main(argv: Sequence[str] | None = None) -> int:
    return suite_main("forward_mode", __doc__ or "", run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

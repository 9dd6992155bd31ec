"""``python -m benchmarks``: run tape's benchmarks, print their tables and write their results.

python -m benchmarks                    # the flagship: one VJP against the explicit Jacobian
python -m benchmarks --quick            # small sizes and few repeats (under a minute)
python -m benchmarks --suite per_op     # one benchmark by name
python -m benchmarks --suite peers      # the summary table: tape against PyTorch, JAX, autograd, MyGrad
python -m benchmarks --suite ddp        # data-parallel steps on 1 and 2 MPI ranks, and a scaling model
python -m benchmarks --suite forward_mode  # a JVP against the forward pass; HVP forward over reverse
python -m benchmarks --suite all        # every benchmark
python -m benchmarks --out DIR          # results folder (default: ./benchmark-results)
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.console import command_line, run_and_report
from benchmarks.results import machine_info, results_directory

DEFAULT_SUITE = "vjp_vs_jacobian"
# Suite name -> module in this package with ``run(quick=...)``; modules are imported only when run, so
# one suite's missing dependency or unfinished module never stops the others.
SUITES = {
    "vjp_vs_jacobian": "benchmarks.vjp_vs_jacobian",
    "per_op": "benchmarks.per_op",
    "batch_vjp": "benchmarks.batch_vjp",
    "kernels": "benchmarks.kernels",
    "higher_order": "benchmarks.higher_order",
    "training_step": "benchmarks.training_step",
    "large_elementwise": "benchmarks.large_elementwise",
    "conv": "benchmarks.conv",
    "fft": "benchmarks.fft",
    "threads": "benchmarks.threads",
    "products": "benchmarks.products",
    "nn": "benchmarks.nn",
    "peers": "benchmarks.peer_table",
    "compile": "benchmarks.compile",
    "ddp": "benchmarks.ddp",
    "forward_mode": "benchmarks.forward_mode",
}


def _load(name: str) -> Callable[..., Any] | None:
    module_name = SUITES[name]
    if importlib.util.find_spec(module_name) is None:
        return None
    return importlib.import_module(module_name).run


def run_suite(name: str, quick: bool, out: str | None) -> bool:
    """Run one suite; write its returned figures to ``<name>.json`` if it does not write its own files."""
    run = _load(name)
    if run is None:
        print(f"\n[{name}] skipped: {SUITES[name]} is not available in this checkout")
        return False
    run_and_report(name, run, quick, out)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen suites in order."""
    parser = command_line("python -m benchmarks", __doc__)
    parser.add_argument(
        "--suite",
        choices=[*SUITES, "all"],
        default=DEFAULT_SUITE,
        help=f"which benchmark (default {DEFAULT_SUITE}; all runs every one)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats, for a fast check")
    parser.add_argument("--out", default=None, help="results folder (default: ./benchmark-results)")
    options = parser.parse_args(argv)
    results_directory(options.out)
    machine = machine_info()
    versions = machine["versions"]
    print(
        f"tape benchmarks: {machine['cpu_model']}, {machine['cores_available']} cores, "
        f"BLAS threads {machine['blas'].get('threads')}, Python {versions['python']}, "
        f"numpy {versions['numpy']}, numba {versions['numba']}, tape {versions['tape']}"
    )
    load = machine["load_average_1_5_15_min"]
    if load and load[0] > 0.5 * (machine["cores_available"] or 1):
        print(f"  note: the machine is busy (load average {load[0]:.1f}): times will be noisy")
    names = list(SUITES) if options.suite == "all" else [options.suite]
    for name in names:
        run_suite(name, options.quick, options.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

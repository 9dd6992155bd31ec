"""Where benchmark results go, and what machine produced them.

Every benchmark writes into one folder: ``benchmark-results/`` in the current directory unless the user
passes ``--out DIR``. Each JSON file carries the machine it was measured on (date, CPU, cores, thread
counts of numpy's BLAS, numba and PyTorch, library versions), because a time means nothing without it.
Nothing here imports a peer library that is not already imported: versions come from package metadata.
"""

from __future__ import annotations

import ctypes
import datetime
import glob
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

import tape

DEFAULT_DIRECTORY = "benchmark-results"
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "XLA_FLAGS",
)
VERSIONED_PACKAGES = ("tape", "numpy", "numba", "matplotlib", "torch", "jax", "jaxlib", "autograd", "mygrad")


def results_directory(out: str | os.PathLike[str] | None = None) -> Path:
    """The results folder (``out``, or ``benchmark-results/`` in the current directory), created.

    Examples
    --------
    >>> results_directory("/tmp/tape-bench-doc").name
    'tape-bench-doc'
    """
    directory = Path(DEFAULT_DIRECTORY if out is None else out).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, or what ``platform`` knows elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _openblas_threads() -> int | None:
    # numpy's wheels bundle OpenBLAS under numpy.libs; asking it directly avoids needing threadpoolctl.
    libraries = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
    for path in glob.glob(libraries):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in (
            "scipy_openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_",
            "openblas_get_num_threads",
        ):
            getter = getattr(library, symbol, None)
            if getter is not None:
                return int(getter())
    return None


def blas_info() -> dict[str, Any]:
    """numpy's BLAS: name, version and thread count (threadpoolctl when installed, else OpenBLAS), and the
    library tape's large matrix products use (MKL with the ``mkl`` extra, else numpy's)."""
    info: dict[str, Any] = {}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info = {"name": blas.get("name"), "version": blas.get("version")}
    except Exception:  # numpy's config layout is not a stable API
        pass
    threads = None
    try:
        import threadpoolctl

        pools = threadpoolctl.threadpool_info()
        threads = {pool.get("internal_api", "?"): pool.get("num_threads") for pool in pools}
    except ImportError:
        threads = _openblas_threads()
    info["threads"] = threads
    info["tape_products"] = tape.ops.mkl.version() or "numpy's"
    return info


def versions() -> dict[str, str | None]:
    """Installed versions of tape, numpy, numba and the peers (None when not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    if found["tape"] is None:  # run from a checkout that is not installed
        import tape

        found["tape"] = getattr(tape, "__version__", None)
    return found


def machine_info() -> dict[str, Any]:
    """Date, CPU, cores, thread settings and library versions of this run.

    Examples
    --------
    >>> sorted(machine_info())[:3]
    ['blas', 'cores_available', 'cores_logical']
    """
    threads: dict[str, Any] = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    try:
        import numba

        threads["numba"] = numba.get_num_threads()
    except Exception:  # numba missing or its threading layer unavailable
        threads["numba"] = None
    if "torch" in sys.modules:  # only report a peer's threads if the benchmark already imported it
        threads["torch"] = sys.modules["torch"].get_num_threads()
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_available": available,
        # Other work on the machine skews every time here: keep the load beside the figures.
        "load_average_1_5_15_min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "blas": blas_info(),
        "threads": threads,
        "versions": versions(),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"write_json: cannot store a {type(value).__name__}")


def write_json(name: str, results: Any, out: str | os.PathLike[str] | None = None) -> Path:
    """Write ``{"benchmark": name, "machine": ..., "results": results}`` to ``<folder>/<name>.json``.

    Examples
    --------
    >>> write_json("demo", {"median_s": 1e-3}, "/tmp/tape-bench-doc").name
    'demo.json'
    """
    path = results_directory(out) / f"{name}.json"
    document = {"benchmark": name, "machine": machine_info(), "results": results}
    path.write_text(json.dumps(document, indent=2, default=_plain) + "\n", encoding="utf-8")
    return path


def report_results(name: str, results: Any, out: str | os.PathLike[str] | None = None) -> Path:
    """``write_json`` a suite's returned figures and print where they went."""
    path = write_json(name, results, out)
    print(f"  -> {path}")
    return path


def pyplot() -> Any:
    """matplotlib's pyplot on a file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt

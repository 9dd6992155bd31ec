"""The benchmarks run and report sane numbers: the VJP-against-Jacobian benchmark at tiny sizes, its
results folder and JSON, the Jacobians it times, the ``python -m benchmarks`` suite selection, the timing
helpers, the progress bar with and without tqdm, and what every suite prints when the peers are missing.

Tiny sizes and tape/numpy only for the full run (seconds, not minutes): it runs as on a bare install, with
the peers and tqdm taken away; the peers are checked once each at a tiny size when installed.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import sys
import timeit
from collections.abc import Callable

import numpy as np
import pytest

import tape
from benchmarks import __main__ as cli
from benchmarks import peers
from benchmarks import vjp_vs_jacobian as bench
from benchmarks.console import SilentBar, progress_bar
from benchmarks.results import machine_info, results_directory, write_json
from benchmarks.timing import Timing, calls_per_repeat, measure_side_by_side

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZES = (8, 16)
BATCH = 3
BATCH_SIZES = (4, 8)
PEER_NAMES = ("PyTorch", "JAX", "autograd", "MyGrad")


def only_tape_and_numpy(module: str | None) -> bool:
    """Stands in for ``peers.installed`` on a machine without any peer."""
    return module is None


def without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import tqdm`` fail, as where it is not installed."""
    monkeypatch.setitem(sys.modules, "tqdm", None)


def assert_peers_named_once(printed: str, names: str) -> None:
    """The one line names the missing peers, and no other line (no table row, no note) mentions any."""
    mentions = [line for line in printed.splitlines() if any(peer in line for peer in PEER_NAMES)]
    assert mentions == [f"peers not installed (skipped): {names}"], mentions
    assert "not installed" not in printed.replace(mentions[0], "")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("benchmark-results")
    printed = io.StringIO()
    errors = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(peers, "installed", only_tape_and_numpy)
        without_tqdm(monkeypatch)
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
            results = bench.run(
                quick=True,
                out=out,
                sizes=SIZES,
                batch=BATCH,
                batch_sizes=BATCH_SIZES,
                settings=bench.Settings(
                    repeats=3, min_time=0.002, slow_call=1.0, seconds_per_measurement=0.5
                ),
            )
    return out, results, printed.getvalue(), errors.getvalue()


def test_run_writes_json_and_plots(quick_run: tuple) -> None:
    out, results, _, _ = quick_run
    assert (out / "vjp_vs_jacobian.json").is_file()
    if bench.pyplot() is None:
        pytest.skip("matplotlib is not installed: the plots are skipped with a note")
    for name in ("vjp_vs_jacobian.png", "jacobian_structure.png"):
        path = out / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert str(path) in results["files"]


def test_json_holds_machine_and_every_measurement(quick_run: tuple) -> None:
    out, *_ = quick_run
    document = json.loads((out / "vjp_vs_jacobian.json").read_text())
    machine = document["machine"]
    assert machine["cores_logical"] >= 1 and machine["cpu_model"]
    assert machine["versions"]["numpy"] == np.__version__
    assert "numba" in machine["threads"] and "OMP_NUM_THREADS" in machine["threads"]
    results = document["results"]
    assert [entry["inputs"] for entry in results["one_example"]] == list(SIZES)
    assert [entry["inputs"] for entry in results["minibatch"]] == list(BATCH_SIZES)
    for entry in results["one_example"] + results["minibatch"]:
        assert {row["method"] for row in entry["methods"]} == {
            "tape VJP",
            "tape jacobian, u@J",
            "numpy by hand VJP",
            "numpy by hand J, u@J",
        }
        for row in entry["methods"]:
            assert row["status"] == "ok", row
            assert row["agrees"], row
            assert 0 < row["low_s"] <= row["median_s"] <= row["high_s"]
            assert row["peak_bytes"] > 0
        jacobian_rows = [row for row in entry["methods"] if row["kind"] == "Jacobian"]
        for row in jacobian_rows:  # J itself must have been allocated
            assert row["peak_bytes"] >= entry["jacobian_bytes"], row
        assert entry["jacobian_bytes"] == 8 * math.prod(entry["jacobian_shape"])
    assert results["missing_peers"] == ["torch", "jax", "autograd", "mygrad"]


def test_tables_hold_measured_rows_and_one_line_names_the_missing_peers(quick_run: tuple) -> None:
    _, _, printed, errors = quick_run
    assert_peers_named_once(printed, "PyTorch, JAX, HIPS autograd, MyGrad")
    assert "skipped" not in printed.replace("peers not installed (skipped)", "")
    rows = [line.split()[0] for line in printed.splitlines() if line.startswith(("  tape", "  numpy"))]
    assert len(rows) == 4 * (len(SIZES) + len(BATCH_SIZES))
    assert errors == ""  # no tqdm, no bar


def test_vjp_equals_transposed_jacobian_times_cotangent() -> None:
    for layer in (bench.make_layer(12, seed=3), bench.make_layer(6, batch=BATCH, seed=4)):
        f = bench._tape_function(layer)
        jacobian = tape.jacobian(f)(layer.x)
        assert jacobian.shape == layer.jacobian_shape
        np.testing.assert_allclose(jacobian, bench.analytic_jacobian(layer), rtol=1e-12, atol=1e-12)
        _, pullback = tape.vjp(f, layer.x)
        vjp = pullback(layer.cotangent)[0]
        np.testing.assert_allclose(vjp, bench.contract(layer.cotangent, jacobian), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bench._tape_vjp(layer)(), vjp, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bench._tape_jacobian(layer)(), vjp, rtol=1e-12, atol=1e-12)


def test_batch_jacobian_is_block_diagonal_with_counted_nonzeros() -> None:
    layer = bench.make_layer(6, batch=4, seed=5)
    jacobian = tape.jacobian(bench._tape_function(layer))(layer.x)
    off_diagonal = ~np.eye(4, dtype=bool)[:, None, :, None]
    assert not np.any(jacobian * off_diagonal)
    assert bench.nonzero_entries(layer) == np.count_nonzero(jacobian)
    rows_alive = np.any(jacobian.reshape(4 * layer.outputs, -1) != 0, axis=1)
    np.testing.assert_array_equal(rows_alive, layer.mask().ravel())


def test_lecture_sizes_match_the_lecture() -> None:
    sizes = bench.lecture_sizes(4096, 100)
    assert sizes["single_shape"] == [2048, 4096]
    assert sizes["single_bytes_float64"] == 64 * 2**20
    assert sizes["batch_shape"] == [204_800, 409_600]
    assert round(sizes["batch_entries"] / 1e9, 1) == 83.9
    assert round(sizes["batch_bytes_float64"] / 1e9) == 671
    assert round(sizes["batch_bytes_float32"] / 1e9) == 336
    assert sizes["diagonal_block_fraction"] == pytest.approx(0.01)


@pytest.mark.parametrize("method", bench.METHODS, ids=lambda method: method.name)
def test_every_installed_method_computes_the_same_vjp(method: bench.Method) -> None:
    if not method.installed:
        pytest.skip(f"{method.module} is not installed")
    for layer in (bench.make_layer(6, seed=1), bench.make_layer(4, batch=2, seed=2)):
        result = np.asarray(method.prepare(layer)())
        np.testing.assert_allclose(result, bench.analytic_vjp(layer), rtol=1e-10, atol=1e-12)


def test_budgets_skip_what_does_not_fit() -> None:
    tape_methods = [m for m in bench.METHODS if m.library == "tape"]
    # The second size's Jacobian is over this memory budget; every call is over the time budget.
    budget = bench.JACOBIAN_WORKSPACE * bench.make_layer(8).jacobian_bytes - 1
    tiny = bench.Settings(repeats=1, min_time=0.0, slow_call=0.0, memory_budget=budget)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        section = bench.run_section((4, 8), None, tape_methods, tiny, SilentBar())
    first, second = ({row["method"]: row for row in entry["methods"]} for entry in section)
    assert first["tape VJP"]["status"] == "ok" and first["tape VJP"]["over_time_budget"]
    assert second["tape VJP"]["status"] == "skipped" and "took" in second["tape VJP"]["note"]
    assert "memory budget" in second["tape jacobian, u@J"]["note"]
    # The second table has no row to show: what did not run is named under it, with why.
    header, _, *below = printed.getvalue().split("One example, n = 8")[1].splitlines()[1:]
    assert header.split()[0] == "method" and "note" not in header  # no row needs the note column
    assert below[0].startswith("  tape VJP not run: took")
    assert below[1].startswith("  tape jacobian, u@J not run: J is") and "memory budget" in below[1]


def test_progress_bar_is_tqdms_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    tqdm = pytest.importorskip("tqdm")
    with progress_bar(2, "demo") as bar:
        assert isinstance(bar, tqdm.tqdm)
        measure_side_by_side({"noop": (lambda: None, None)}, rounds=2, repeats=2, min_time=1e-4, progress=bar)
        assert bar.n == 2
    printed = capsys.readouterr()
    assert printed.out == "" and "demo" in printed.err


def test_progress_bar_without_tqdm_is_silent_and_takes_the_same_calls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without_tqdm(monkeypatch)
    with progress_bar(2, "demo") as bar:
        assert isinstance(bar, SilentBar)
        timings = measure_side_by_side(
            {"noop": (lambda: None, None)}, rounds=2, repeats=2, min_time=1e-4, progress=bar
        )
        bar.clear()
    assert timings["noop"].low <= timings["noop"].median <= timings["noop"].high
    assert capsys.readouterr() == ("", "")


def test_calls_per_repeat_stops_autorange_at_min_time_or_scales_it_up() -> None:
    clock = [0.0]
    tick = 2.0**-10  # about a millisecond per call, exact in binary so that the sums are too

    def work() -> None:
        clock[0] += tick

    timer = timeit.Timer(work, timer=lambda: clock[0])
    # autorange tries 1, 2, 5, ... calls: 5 calls are the first trial to last 4.5 ms.
    assert calls_per_repeat(timer, min_time=0.0045) == 5
    # autorange stops at 500 calls (0.49 s >= its 0.2 s); a repeat of 0.5 s needs 512.
    assert calls_per_repeat(timer, min_time=0.5) == 512
    assert calls_per_repeat(timer, min_time=0.0) == 1


def test_side_by_side_reports_a_failing_case_and_times_the_others() -> None:
    def broken() -> None:
        raise ValueError("no")

    cases = {"noop": (lambda: None, None), "broken": (broken, None)}
    with pytest.raises(ValueError):
        measure_side_by_side(cases, rounds=2, repeats=2, min_time=1e-4)
    failures: dict[str, Exception] = {}
    timings = measure_side_by_side(cases, rounds=2, repeats=2, min_time=1e-4, on_error=failures.__setitem__)
    assert list(timings) == ["noop"] and isinstance(failures["broken"], ValueError)


def test_results_folder_and_json(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert results_directory().resolve() == (tmp_path / "benchmark-results").resolve()
    assert (tmp_path / "benchmark-results").is_dir()
    path = write_json("demo", {"value": np.float64(1.5), "array": np.arange(2)}, tmp_path / "elsewhere")
    document = json.loads(path.read_text())
    assert document["results"] == {"value": 1.5, "array": [0, 1]}
    assert document["machine"].keys() == machine_info().keys()


def test_main_runs_the_chosen_suite_and_notes_missing_ones(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []

    def fake_suite(quick: bool = False) -> dict:
        calls.append(quick)
        return {"median_s": 1e-3}

    monkeypatch.setattr(cli, "_load", lambda name: fake_suite if name == "per_op" else None)
    assert cli.main(["--suite", "per_op", "--quick", "--out", str(tmp_path)]) == 0
    assert calls == [True]
    assert json.loads((tmp_path / "per_op.json").read_text())["results"] == {"median_s": 1e-3}
    assert cli.main(["--suite", "kernels", "--out", str(tmp_path)]) == 0
    assert "[kernels] skipped" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["--suite", "no_such_suite"])


def test_batch_vjp_times_every_installed_vjp_against_numpys_forward(capsys: pytest.CaptureFixture) -> None:
    from benchmarks import batch_vjp

    results = batch_vjp.run(quick=True)
    ratios = results["over_numpy_forward"]
    assert ratios[batch_vjp.NUMPY_FORWARD] == 1.0
    assert batch_vjp.TAPE in ratios and batch_vjp.NUMPY_BY_HAND in ratios
    assert all(ratio > 0 for ratio in ratios.values())
    assert "goal: at most 2x" in capsys.readouterr().out


def test_peer_table_quick_run_checks_every_peer_and_writes_peers_json(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import peer_table

    assert cli.main(["--suite", "peers", "--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "Eager speed" in printed and machine_info()["cpu_model"] in printed
    results = json.loads((tmp_path / "peers.json").read_text())["results"]
    assert results["failures"] == []  # every peer that ran agreed with tape and did not raise
    rows = results["rows"]
    dtypes = [np.dtype(dtype).name for dtype in peer_table.DTYPES]
    expected = [(workload.key, dtype) for workload in peer_table.WORKLOADS for dtype in dtypes]
    assert [(row["workload"], row["dtype"]) for row in rows] == expected
    for row in rows:
        cases = row["cases"]
        assert {peer_table.TAPE, peer_table.NUMPY_FLOOR} <= cases.keys()
        for timing in cases.values():
            assert 0 < timing["low_s"] <= timing["median_s"] <= timing["high_s"]
        if peers.installed("torch"):
            assert row["tape_over_pytorch"] > 0
            difference = cases[peer_table.TORCH]["relative_difference_to_tape"]
            assert difference <= peer_table.TOLERANCE[np.dtype(row["dtype"])]
    with_layers = {row["workload"] for row in rows if peer_table.TAPE_NN in row["cases"]}
    assert with_layers == {"mlp_forward", "mlp_forward_backward", "mlp_step", "cnn_step"}


def run_once_each(
    functions: dict[str, tuple[Callable[[], object], Callable[[], object] | None]],
    *settings: object,
    **options: object,
) -> dict[str, Timing]:
    """Stands in for ``measure_side_by_side`` where only the printing is tested: each case runs once,
    under its thread setting, and is reported at 1 ms."""
    for function, threads in functions.values():
        with threads() if threads is not None else contextlib.nullcontext():
            function()
    return {name: Timing(1e-3, 1e-3, 1e-3) for name in functions}


def run_once(function: Callable[[], object], *settings: object, **options: object) -> Timing:
    """Stands in for ``measure``, as ``run_once_each`` does for ``measure_side_by_side``."""
    function()
    return Timing(1e-3, 1e-3, 1e-3)


# Suite -> the peers it names when none is installed, and how to run it small.
SUITES_WITH_PEERS: dict[str, tuple[str, dict[str, object]]] = {
    "per_op": ("PyTorch, HIPS autograd, MyGrad", {}),
    "batch_vjp": ("PyTorch, JAX, HIPS autograd, MyGrad", {}),
    "large_elementwise": ("PyTorch, JAX, HIPS autograd, MyGrad", {"size": 1000}),
    "training_step": ("PyTorch, JAX, HIPS autograd, MyGrad", {}),
    "conv": ("PyTorch", {}),
    "fft": ("PyTorch", {"samples": 1024}),
    "peer_table": ("PyTorch, JAX, HIPS autograd, MyGrad", {}),
    "products": ("PyTorch", {}),
    "nn": ("PyTorch", {}),
    "compile": ("PyTorch, JAX", {"size": 1000, "fresh_processes": 0}),
    "forward_mode": ("PyTorch", {}),
}


@pytest.mark.parametrize("name", SUITES_WITH_PEERS)
def test_every_suite_names_missing_peers_once_and_tables_only_what_ran(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    names, options = SUITES_WITH_PEERS[name]
    suite = importlib.import_module(f"benchmarks.{name}")
    monkeypatch.setattr(peers, "installed", only_tape_and_numpy)
    monkeypatch.setattr(suite, "measure_side_by_side", run_once_each)
    if hasattr(suite, "measure"):
        monkeypatch.setattr(suite, "measure", run_once)
    results = suite.run(quick=True, **options)
    printed = capsys.readouterr().out
    assert_peers_named_once(printed, names)
    assert "skipped" not in printed.replace("peers not installed (skipped)", "")
    assert " - " not in printed and not printed.rstrip().endswith("-")  # no column of dashes
    if "skipped" in results:  # the results keep the list
        assert results["skipped"] == [m for m in peers.NAMES if peers.NAMES[m] in names.split(", ")]


def test_threads_suite_measures_each_layer_quiet_and_loaded_or_names_it(
    capsys: pytest.CaptureFixture,
) -> None:
    from benchmarks import threads

    results = threads.run(quick=True)
    output = capsys.readouterr().out
    assert set(results["layers"]) <= {
        f"{layer}, {condition}"
        for layer in threads.LAYERS
        for condition in ("quiet", "one busy process beside")
    }
    for name, measured in results["layers"].items():
        if "error" in measured:
            assert name.split(",")[0] in output.split("not available here:")[1]
            continue
        for figures in measured["figures"].values():
            for median, slowest in figures.values():
                assert 0 < median <= slowest
        assert name.split(",")[0] in output


def test_compile_suite_times_a_first_call_in_a_fresh_process() -> None:
    from benchmarks import compile as compile_suite

    seconds = compile_suite.fresh_process_first_call(timeout=120.0)
    assert 0 < seconds < 120

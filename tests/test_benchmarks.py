"""The benchmarks run and report sane numbers: the VJP-against-Jacobian benchmark at tiny sizes, its
results folder and JSON, the Jacobians it times, and the ``python -m benchmarks`` suite selection.

Tiny sizes and tape/numpy only for the full run (seconds, not minutes); the peers are checked once each
at a tiny size when installed.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math

import numpy as np
import pytest

import tape
from benchmarks import __main__ as cli
from benchmarks import vjp_vs_jacobian as bench
from benchmarks.progress import Progress
from benchmarks.results import machine_info, results_directory, write_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZES = (8, 16)
BATCH = 3
BATCH_SIZES = (4, 8)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("benchmark-results")
    results = bench.run(
        quick=True,
        out=out,
        sizes=SIZES,
        batch=BATCH,
        batch_sizes=BATCH_SIZES,
        libraries=("tape", "numpy"),
        settings=bench.Settings(repeats=3, min_time=0.002, slow_call=1.0, seconds_per_measurement=0.5),
    )
    return out, results


def test_run_writes_json_and_plots(quick_run: tuple) -> None:
    out, results = quick_run
    assert (out / "vjp_vs_jacobian.json").is_file()
    if bench.pyplot() is None:
        pytest.skip("matplotlib is not installed: the plots are skipped with a note")
    for name in ("vjp_vs_jacobian.png", "jacobian_structure.png"):
        path = out / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert str(path) in results["files"]


def test_json_holds_machine_and_every_measurement(quick_run: tuple) -> None:
    out, _ = quick_run
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
    if method.module is not None and importlib.util.find_spec(method.module) is None:
        pytest.skip(f"{method.module} is not installed")
    for layer in (bench.make_layer(6, seed=1), bench.make_layer(4, batch=2, seed=2)):
        result = np.asarray(method.prepare(layer)())
        np.testing.assert_allclose(result, bench.analytic_vjp(layer), rtol=1e-10, atol=1e-12)


def test_budgets_skip_what_does_not_fit() -> None:
    tape_methods = [m for m in bench.METHODS if m.library == "tape"]
    # The second size's Jacobian is over this memory budget; every call is over the time budget.
    budget = bench.JACOBIAN_WORKSPACE * bench.make_layer(8).jacobian_bytes - 1
    tiny = bench.Settings(repeats=1, min_time=0.0, slow_call=0.0, memory_budget=budget)
    with Progress(4, stream=io.StringIO()) as progress:
        section = bench.run_section((4, 8), None, tape_methods, tiny, progress)
    first, second = ({row["method"]: row for row in entry["methods"]} for entry in section)
    assert first["tape VJP"]["status"] == "ok" and first["tape VJP"]["over_time_budget"]
    assert second["tape VJP"]["status"] == "skipped" and "took" in second["tape VJP"]["note"]
    assert "memory budget" in second["tape jacobian, u@J"]["note"]


def test_progress_writes_lines_to_a_log() -> None:
    stream = io.StringIO()
    with Progress(3, "demo", stream=stream, line_interval=0.0) as progress:
        for step in ("a", "b", "c"):
            progress.advance(step)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "3/3" in lines[-1] and lines[-1].endswith("c")


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

"""The higher-order benchmark runs at tiny sizes and reports sane numbers: every HVP agrees with tape's,
tape's agrees with finite differences of tape.grad and with the explicit Hessian, and checkpointing
lowers the peak memory of a forward+backward without changing its gradients."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json

import numpy as np
import pytest

import tape
from benchmarks import higher_order as bench
from benchmarks import peers

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def quick_run() -> tuple[list[dict], str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rows = bench.run(quick=True)
    return rows, printed.getvalue()


def _rows(quick_run: tuple[list[dict], str], section: str) -> dict[str, dict]:
    return {row["method"]: row for row in quick_run[0] if row["section"] == section}


def test_every_method_appears_once_and_none_failed(quick_run):
    hvp = _rows(quick_run, "hvp")
    assert list(hvp) == [method.name for method in bench.HVP_METHODS]
    assert list(_rows(quick_run, "checkpoint")) == [name for name, _ in bench.CHECKPOINT_CASES]
    for row in quick_run[0]:
        assert row["status"] in ("ok", "skipped"), row
    for method in bench.HVP_METHODS:
        row = hvp[method.name]
        if method.module is not None and importlib.util.find_spec(method.module) is None:
            assert row["status"] == "skipped" and "not installed" in row["note"]
        elif not method.quick:
            assert row["status"] == "skipped" and "quick" in row["note"]
        else:
            assert row["status"] == "ok"


def test_timings_are_medians_within_their_spread(quick_run):
    for row in quick_run[0]:
        if row["status"] == "ok":
            assert 0 < row["low_s"] <= row["median_s"] <= row["high_s"]


def test_every_hvp_agrees_with_tape(quick_run):
    timed = [row for row in _rows(quick_run, "hvp").values() if row["status"] == "ok"]
    assert len(timed) >= 3  # tape.hvp, tape's nested grads and tape.grad at least
    for row in timed:
        assert row["relative_difference_to_tape"] < 1e-10, row


def test_tape_hvp_matches_a_central_difference_of_tape_grad(quick_run):
    problem = bench.default_problem(quick=True)
    loss = bench.tape_loss(problem)
    gradient = tape.grad(loss)
    step = 1e-6
    weight, direction = problem.weights[0], problem.direction
    difference = (gradient(weight + step * direction) - gradient(weight - step * direction)) / (2 * step)
    product = tape.hvp(loss, (weight,), (direction,))[0]
    assert product.shape == weight.shape and product.dtype == np.float64
    np.testing.assert_allclose(product, difference, rtol=1e-5, atol=1e-8 * np.max(np.abs(difference)))
    assert np.max(np.abs(product)) > 0
    assert _rows(quick_run, "hvp")["tape.hvp"]["finite_difference_relative_error"] < 1e-5


def test_tape_hvp_equals_the_explicit_hessian_times_the_direction():
    problem = bench.make_mlp_problem((5, 4, 3), batch=6, seed=3)
    weight, direction = problem.weights[0], problem.direction
    hessian = tape.hessian(bench.tape_loss(problem))(weight)
    assert hessian.shape == weight.shape * 2
    expected = np.tensordot(hessian, direction, axes=2)
    np.testing.assert_allclose(bench.tape_hvp(problem)(), expected, rtol=1e-10, atol=1e-14)


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
def test_ratios_are_to_pytorch_double_backward_and_threads_are_recorded(quick_run):
    import torch

    hvp = _rows(quick_run, "hvp")
    reference = hvp[bench.REFERENCE_METHOD]["median_s"]
    for row in hvp.values():
        assert row["torch_threads"] == torch.get_num_threads() and "blas_threads" in row
        if row["status"] == "ok":
            assert row["ratio_to_torch"] == pytest.approx(row["median_s"] / reference)
    assert hvp[bench.REFERENCE_METHOD]["ratio_to_torch"] == pytest.approx(1.0)


def test_checkpoint_lowers_the_peak_and_keeps_the_gradients(quick_run):
    checkpoint = _rows(quick_run, "checkpoint")
    plain = checkpoint["plain"]
    assert plain["memory_ratio"] == 1.0 and plain["time_overhead"] == 1.0
    for row in checkpoint.values():
        assert row["max_gradient_difference"] < 1e-12
        assert row["memory_ratio"] == pytest.approx(row["peak_bytes"] / plain["peak_bytes"])
    # A record keeps about one activation per layer, so a checkpoint per layer saves little; one per
    # four layers keeps a quarter of them.
    segments = checkpoint["checkpoint every 4 layers"]
    assert segments["peak_bytes"] < plain["peak_bytes"], (segments["peak_bytes"], plain["peak_bytes"])


def test_segments_need_not_divide_the_depth():
    with contextlib.redirect_stdout(io.StringIO()):
        rows = bench.run_checkpoint(quick=True, net_shape=(6, 5, 7))
    assert [row["depth"] for row in rows] == [6, 6, 6]
    assert all(row["max_gradient_difference"] < 1e-12 for row in rows)


def test_tables_are_printed(quick_run):
    printed = quick_run[1]
    assert "Hessian-vector product" in printed and "Checkpoint: forward+backward" in printed
    assert "tape.hvp" in printed and "checkpoint every 4 layers" in printed
    assert "central difference" in printed and "load average" in printed


def test_peers_not_installed_are_named_once_and_kept_out_of_the_table(monkeypatch):
    monkeypatch.setattr(peers, "installed", lambda module: module is None)  # a machine without peers
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rows = bench.run_hvp(quick=True)
    lines = printed.getvalue().splitlines()
    assert [line for line in lines if "PyTorch" in line or "JAX" in line or "autograd" in line] == [
        "peers not installed (skipped): PyTorch, JAX, HIPS autograd"
    ]
    others = [line for line in lines if not line.startswith("peers not installed")]
    assert not any("skipped" in line or "not installed" in line for line in others)
    header = next(line for line in lines if line.strip().startswith("method"))
    assert header.split() == ["method", "kind", "median", "spread", "rel.", "diff", "to", "tape"]
    # The results still say which methods were skipped, and why.
    skipped = {row["method"] for row in rows if row["status"] == "skipped"}
    assert skipped == {method.name for method in bench.HVP_METHODS if method.module is not None}
    assert all("not installed" in row["note"] for row in rows if row["status"] == "skipped")


def test_profile_names_where_tape_hvp_spends_its_time():
    report = bench.profile_hvp(bench.make_mlp_problem((6, 5, 3), batch=4), calls=2, top=5)
    assert "cumulative" in report and "internal time" in report
    assert "functional.py" in report  # tape.hvp itself is among the entries


def test_command_line_passes_its_options_and_writes_the_rows(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(bench, "run", lambda **options: calls.append(options) or [{"method": "demo"}])
    assert bench.main(["--quick", "--net", "3", "4", "5", "--out", str(tmp_path)]) == 0
    assert calls == [{"quick": True, "net_shape": (3, 4, 5)}]
    document = json.loads((tmp_path / "higher_order.json").read_text())
    assert document["results"] == [{"method": "demo"}]
    assert str(tmp_path / "higher_order.json") in capsys.readouterr().out

"""benchmarks.jacobian_representations at a tiny size: the dense Jacobian is refused with its size, the
three representations' memory follows batch², batch and (almost) nothing, every product it times is
checked, and the memory plot is drawn."""

from __future__ import annotations

import contextlib
import io

import pytest

from benchmarks import jacobian_representations as representations
from benchmarks.vjp_vs_jacobian import make_layer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_three_representations_at_a_tiny_size() -> None:
    results = representations.measure_representations(
        make_layer, 16, 5, memory_limit=4096, repeats=1, min_time=0.0, block_batch=2
    )
    assert results["shape"] == [40, 80]
    assert results["dense_bytes"] == 40 * 80 * 8
    assert "over memory_limit=4 KiB" in results["dense_refused"] and ".blocks()" in results["dense_refused"]
    assert results["blocks_bytes"] == 5 * 8 * 16 * 8
    assert results["structured_bytes"] == 8 * 16 * 8 + 5 * 8 * 8  # one W and the mask
    assert set(results["times"]) >= {"forward pass (numpy)", "J @ v, factored", "u @ J, through the records"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        representations.print_representations(results, 4096)
    assert "refused by to_dense()" in printed.getvalue()
    assert "diagonal blocks, 5 of 8 x 16" in printed.getvalue()


def test_memory_grows_as_batch_squared_batch_and_mask(tmp_path) -> None:
    rows = representations.memory_by_batch(make_layer, 8, (1, 2, 4))
    dense, blocks, structured = ([row[key] for row in rows] for key in ("dense", "blocks", "structured"))
    assert dense == [8 * 4 * 8 * n * n for n in (1, 2, 4)]
    assert blocks == [8 * 4 * 8 * n for n in (1, 2, 4)]
    assert structured == [8 * 4 * 8 + 8 * 4 * n for n in (1, 2, 4)]
    path = tmp_path / "jacobian_representations.png"
    if not representations.plot_memory(rows, 2**30, 8, path):
        pytest.skip("matplotlib is not installed")
    assert path.read_bytes()[:8] == PNG_SIGNATURE

"""tape/nn/checkpoint_files.py: ``save`` and ``load`` against real files.

A save killed midway or stopped by a full disk leaves the previous checkpoint whole; a truncated, corrupt,
forged or incomplete checkpoint raises an error naming the entry and changes nothing in the model or the
optimizer; ``save`` and ``load`` agree on the ``.npz`` suffix."""

from __future__ import annotations

import copy
import errno
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tape.nn as nn
from tape.nn import optim

ROOT = Path(__file__).resolve().parents[2]
BIG_SHAPE = (2048, 4096)  # 64 MiB of float64: writing it takes long enough to be caught midway


class Net(nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        self.hidden = nn.Linear(3, 4, rng=np.random.default_rng(seed))
        self.norm = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 2, rng=np.random.default_rng(seed + 1))

    def forward(self, x):
        return self.out(nn.functional.relu(self.norm(self.hidden(x))))


class Big(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.weight = nn.Parameter(np.full(BIG_SHAPE, value))


def trained(seed: int, steps: int = 2) -> tuple[Net, optim.Optimizer]:
    """A model whose buffers moved and an Adam (amsgrad) with state for every parameter."""
    model = Net(seed)
    optimizer = optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    rng = np.random.default_rng(seed + 2)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.MSELoss()(model(rng.standard_normal((5, 3))), np.zeros((5, 2))).backward()
        optimizer.step()
    return model, optimizer


def snapshot(model: nn.Module, optimizer: optim.Optimizer | None = None) -> dict:
    """Copies of every parameter, buffer, optimizer state entry and hyperparameter."""
    taken = {"model": model.state_dict()}
    if optimizer is not None:
        taken["optimizer"] = copy.deepcopy(optimizer.state_dict())
    return taken


def assert_same(actual: dict, expected: dict) -> None:
    assert list(actual["model"]) == list(expected["model"])
    for key, value in expected["model"].items():
        np.testing.assert_array_equal(actual["model"][key], value, err_msg=key)
        assert actual["model"][key].dtype == value.dtype, key
    if "optimizer" in expected:
        got, want = actual["optimizer"], expected["optimizer"]
        assert got["param_groups"] == want["param_groups"]
        assert sorted(got["state"]) == sorted(want["state"])
        for index, entries in want["state"].items():
            assert sorted(got["state"][index]) == sorted(entries), index
            for name, value in entries.items():
                np.testing.assert_array_equal(got["state"][index][name], value, err_msg=f"{index}/{name}")


def leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


# -- rewriting an archive member by member -------------------------------------------------------------------
def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def rewrite(path: Path, replace: dict[str, bytes | None], compress: bool = False) -> None:
    """Copy the archive with the members named in ``replace`` given new bytes, or dropped (None)."""
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in members:
            data = replace.get(name, data)
            if data is not None:
                archive.writestr(name, data)


def flip_data_byte(path: Path, member: str) -> None:
    """Flip one byte of ``member``'s array data in place, so that its CRC no longer matches."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    raw = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    data_start = info.header_offset + 30 + name_length + extra_length
    raw[data_start + info.file_size - 1] ^= 0xFF  # the last byte of the array's data, past its header
    path.write_bytes(bytes(raw))


def forged_header(shape: tuple[int, ...], padding: int) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + bytes(padding)


# -- the suffix ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("given", ["checkpoint", "checkpoint.npz"])
def test_save_and_load_agree_on_the_npz_suffix(tmp_path, given):
    model, optimizer = trained(0)
    written = nn.save(tmp_path / given, model, optimizer)
    assert written == str((tmp_path / "checkpoint.npz").resolve())
    assert os.listdir(tmp_path) == ["checkpoint.npz"]  # no temporary file left beside it
    for path in (tmp_path / given, str(tmp_path / given), tmp_path / "checkpoint.npz"):
        restored, restored_optimizer = trained(5)
        nn.load(path, restored, restored_optimizer)
        assert_same(snapshot(restored, restored_optimizer), snapshot(model, optimizer))
    with pytest.raises(FileNotFoundError):
        nn.load(tmp_path / "other", model)


def test_overwriting_keeps_the_file_mode_and_a_file_object_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    nn.save(path, Net(0))
    path.chmod(0o640)
    nn.save(path, Net(1))
    assert path.stat().st_mode & 0o777 == 0o640
    with pytest.raises(TypeError, match="expected a file path"):
        nn.save(io.BytesIO(), Net(0))


# -- saves that do not finish ------------------------------------------------------------------------------
def save_big(path: str, value: float, file_size_limit: int = 0) -> None:
    """Run in a child process: save a ``Big(value)`` to ``path`` (with a file-size limit when given)."""
    model = Big(value)
    if file_size_limit:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
        try:
            nn.save(path, model)
        except OSError as error:
            print("OSError", error.errno, flush=True)
            return
        print("saved", flush=True)
        return
    print("ready", flush=True)
    nn.save(path, model)


def child(path: Path, value: float, file_size_limit: int = 0) -> subprocess.Popen:
    code = (
        "from tests.nn.test_checkpoint_files import save_big; "
        f"save_big({str(path)!r}, {value!r}, {file_size_limit!r})"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_save_killed_midway_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "big.npz"
    nn.save(path, Big(0.0))
    before = path.read_bytes()
    caught_midway = False
    deadline = time.monotonic() + 10  # one attempt takes about a second
    while not caught_midway and time.monotonic() < deadline:
        process = child(path, 1.0)
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
        # Kill as soon as the temporary file holds some data: the child is then writing it.
        while process.poll() is None and time.monotonic() < deadline:
            if any((tmp_path / name).stat().st_size > 0 for name in leftovers(tmp_path)):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        process.wait()
        process.stdout.close()
        process.stderr.close()
        caught_midway = process.returncode == -signal.SIGKILL and bool(leftovers(tmp_path))
        if not caught_midway:  # the save finished first: start again from the old checkpoint
            nn.save(path, Big(0.0))
    assert caught_midway, "the save always finished before it could be killed"
    assert path.read_bytes() == before  # the checkpoint was never written to
    restored = Big(5.0)
    nn.load(path, restored)
    np.testing.assert_array_equal(restored.weight.data, np.zeros(BIG_SHAPE))


@pytest.mark.skipif(sys.platform == "win32", reason="needs resource.RLIMIT_FSIZE")
def test_a_save_stopped_by_a_full_disk_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "big.npz"
    nn.save(path, Net(0))
    before = path.read_bytes()
    process = child(path, 1.0, file_size_limit=1 << 20)  # the new checkpoint needs 64 MiB
    output, errors = process.communicate(timeout=60)
    assert output.split()[:2] == ["OSError", str(errno.EFBIG)], errors
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    restored = Net(3)
    nn.load(path, restored)
    assert_same(snapshot(restored), snapshot(Net(0)))


def test_an_interrupted_save_removes_its_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    nn.save(path, Net(0))
    before = path.read_bytes()

    def no_room(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_room)
    with pytest.raises(OSError, match="No space left"):
        nn.save(path, Net(1))
    assert path.read_bytes() == before and leftovers(tmp_path) == []


# -- checkpoints that must not load ----------------------------------------------------------------------
def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path) -> None:
    path.write_bytes(b"not a zip file at all")


def flip_last_entry(path: Path) -> None:
    flip_data_byte(path, "module/out.bias.npy")


def drop_entry(path: Path) -> None:
    rewrite(path, {"module/out.bias.npy": None})


def complex_entry(path: Path) -> None:
    rewrite(path, {"module/out.bias.npy": npy_bytes(np.zeros(2, dtype=np.complex128))})


def reshaped_entry(path: Path) -> None:
    rewrite(path, {"module/out.weight.npy": npy_bytes(np.zeros((4, 2)))})


def string_entry(path: Path) -> None:
    rewrite(path, {"module/out.bias.npy": npy_bytes(np.array(["a", "b"]))})


def object_entry(path: Path) -> None:
    rewrite(path, {"module/out.bias.npy": npy_bytes(np.array([1.0, None], dtype=object))})


def float_into_int_buffer(path: Path) -> None:
    rewrite(path, {"module/norm.num_batches_tracked.npy": npy_bytes(np.array(2.5))})


def huge_header(path: Path) -> None:
    # 100000 x 100000 float64 is 80 GB; a megabyte of zeros behind it compresses to about a kilobyte.
    rewrite(path, {"module/out.weight.npy": forged_header((100_000, 100_000), 1 << 20)}, compress=True)


def entry_cut_short(path: Path) -> None:
    rewrite(path, {"module/out.weight.npy": npy_bytes(np.zeros((2, 4)))[:-8]})


def entry_too_long(path: Path) -> None:
    rewrite(path, {"module/out.bias.npy": npy_bytes(np.zeros(2)) + bytes(8)})


def optimizer_entry_missing(path: Path) -> None:
    rewrite(path, {"optimizer/state/1/exp_avg.npy": None})


def optimizer_groups_missing(path: Path) -> None:
    rewrite(path, {"optimizer/param_groups.npy": None})


def optimizer_entry_complex(path: Path) -> None:
    rewrite(path, {"optimizer/state/2/exp_avg_sq.npy": npy_bytes(np.zeros(4, dtype=np.complex64))})


def optimizer_entry_reshaped(path: Path) -> None:
    rewrite(path, {"optimizer/state/0/exp_avg.npy": npy_bytes(np.zeros((3, 4)))})


def optimizer_step_not_integer(path: Path) -> None:
    rewrite(path, {"optimizer/state/0/step.npy": npy_bytes(np.array(2.5))})


def optimizer_groups_not_json(path: Path) -> None:
    rewrite(path, {"optimizer/param_groups.npy": npy_bytes(np.array("[{'lr': 0.1"))})


def optimizer_groups_resized(path: Path) -> None:
    with zipfile.ZipFile(path) as archive, archive.open("optimizer/param_groups.npy") as stream:
        groups = json.loads(str(np.lib.format.read_array(stream)))
    groups[0]["params"] = groups[0]["params"][:-1]
    rewrite(path, {"optimizer/param_groups.npy": npy_bytes(np.array(json.dumps(groups)))})


def optimizer_lr_not_a_number(path: Path) -> None:
    with zipfile.ZipFile(path) as archive, archive.open("optimizer/param_groups.npy") as stream:
        groups = json.loads(str(np.lib.format.read_array(stream)))
    groups[0]["lr"] = "fast"
    rewrite(path, {"optimizer/param_groups.npy": npy_bytes(np.array(json.dumps(groups)))})


def optimizer_state_for_no_parameter(path: Path) -> None:
    rewrite(path, {}, compress=False)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("optimizer/state/9/exp_avg.npy", npy_bytes(np.zeros(4)))


CORRUPTIONS = [
    (truncate, ValueError, "not a readable .npz archive"),
    (garbage, ValueError, "not a readable .npz archive"),
    (flip_last_entry, ValueError, r"out\.bias: Bad CRC-32"),
    (drop_entry, KeyError, r"missing keys \['out\.bias'\]"),
    (complex_entry, ValueError, r"out\.bias: complex values \(complex128\) do not fit a real float64"),
    (reshaped_entry, ValueError, r"out\.weight: expected shape \(2, 4\), got \(4, 2\)"),
    (string_entry, ValueError, r"out\.bias: dtype <U1 does not cast to float64"),
    (object_entry, ValueError, r"out\.bias: object arrays are refused"),
    (float_into_int_buffer, ValueError, r"num_batches_tracked: dtype float64 does not cast to int64"),
    (huge_header, ValueError, r"out\.weight: expected shape \(2, 4\), got \(100000, 100000\)"),
    (entry_cut_short, ValueError, r"out\.weight: data cut short: 56 of 64 bytes"),
    (entry_too_long, ValueError, r"out\.bias: bytes after the array's data"),
    (optimizer_entry_missing, ValueError, r"state of parameter 1 lacks 'exp_avg'"),
    (optimizer_groups_missing, KeyError, "holds no optimizer state"),
    (optimizer_entry_complex, ValueError, r"state/2/exp_avg_sq: expected real numbers, got dtype complex64"),
    (optimizer_entry_reshaped, ValueError, r"state/0/exp_avg: expected a scalar or the parameter's shape"),
    (optimizer_step_not_integer, ValueError, r"state 'step' of parameter 0: expected an integer, got 2\.5"),
    (optimizer_groups_not_json, ValueError, r"param_groups: not valid JSON"),
    (optimizer_groups_resized, ValueError, r"the saved groups have sizes \[5\], this optimizer's \[6\]"),
    (optimizer_lr_not_a_number, ValueError, r"group 0: lr should be a number, got 'fast'"),
    (optimizer_state_for_no_parameter, ValueError, r"state/9/exp_avg: no parameter of the saved groups"),
]


@pytest.mark.parametrize(
    ("corrupt", "error", "message"), CORRUPTIONS, ids=[c[0].__name__ for c in CORRUPTIONS]
)
def test_a_bad_checkpoint_raises_and_changes_nothing(tmp_path, corrupt, error, message):
    path = tmp_path / "checkpoint.npz"
    nn.save(path, *trained(0))
    corrupt(path)
    model, optimizer = trained(7, steps=3)  # other values, other state, other step count
    before = snapshot(model, optimizer)
    tracemalloc.start()
    try:
        with pytest.raises(error, match=message):
            nn.load(path, model, optimizer)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak} bytes allocated to refuse a checkpoint of a few kilobytes"
    assert_same(snapshot(model, optimizer), before)


def test_the_model_alone_loads_from_a_checkpoint_whose_optimizer_part_is_bad(tmp_path):
    path = tmp_path / "checkpoint.npz"
    source, source_optimizer = trained(0)
    nn.save(path, source, source_optimizer)
    optimizer_entry_complex(path)
    model = Net(4)
    nn.load(path, model)  # the optimizer's entries are not read
    assert_same(snapshot(model), snapshot(source))


# -- the same checks when the state dicts are given directly -----------------------------------------------
def test_module_load_state_dict_checks_everything_before_writing():
    model, _ = trained(7)
    before = snapshot(model)
    state = trained(0)[0].state_dict()
    state["out.bias"] = np.zeros(2, dtype=np.complex128)  # the last key: every other one was fine
    state["hidden.weight"] = [[1.0, 2.0], [3.0]]  # ragged: not an array
    with pytest.raises(ValueError) as raised:
        model.load_state_dict(state)
    assert "hidden.weight: not an array" in str(raised.value)
    assert "out.bias: complex values (complex128) do not fit a real float64 array" in str(raised.value)
    assert_same(snapshot(model), before)
    state = trained(0)[0].state_dict()
    state["norm.running_mean"] = state["norm.running_mean"].astype(np.float32)  # float32 into float64: fine
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.norm.running_mean, state["norm.running_mean"])


def test_optimizer_load_state_dict_checks_everything_before_writing():
    model, optimizer = trained(7)
    before = snapshot(model, optimizer)
    good = trained(0)[1].state_dict()
    for what, spoil in [
        ("a missing entry", lambda s: s["state"][5].pop("exp_avg")),
        ("a wrong shape", lambda s: s["state"][0].update(exp_avg=np.zeros(3))),
        ("complex state", lambda s: s["state"][3].update(exp_avg=s["state"][3]["exp_avg"] + 0j)),
        ("a missing hyperparameter", lambda s: s["param_groups"][0].pop("betas")),
        ("betas of the wrong length", lambda s: s["param_groups"][0].update(betas=[0.9])),
        ("an unknown position", lambda s: s["state"].update({17: {}})),
        ("no groups", lambda s: s.pop("param_groups")),
    ]:
        spoiled = copy.deepcopy(good)
        spoil(spoiled)
        with pytest.raises(ValueError, match=r"Adam\.load_state_dict"):
            optimizer.load_state_dict(spoiled)
            pytest.fail(f"{what} was loaded")
        assert_same(snapshot(model, optimizer), before)
    optimizer.load_state_dict(good)
    assert_same({"model": {}, "optimizer": optimizer.state_dict()}, {"model": {}, "optimizer": good})
    assert optimizer.state_dict()["state"][0]["step"] == 2
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)


def test_an_entry_the_rule_adds_itself_may_be_absent(tmp_path):
    model, optimizer = trained(0)
    optimizer.param_groups[0]["amsgrad"] = False
    for state in optimizer.state.values():
        del state["max_exp_avg_sq"]
    optimizer.param_groups[0]["amsgrad"] = True  # switched on after the last step: Adam adds the maximum
    nn.save(tmp_path / "checkpoint", model, optimizer)
    restored, restored_optimizer = trained(3)
    nn.load(tmp_path / "checkpoint", restored, restored_optimizer)
    assert_same(snapshot(restored, restored_optimizer), snapshot(model, optimizer))
    restored_optimizer.step()  # and the rule steps from it

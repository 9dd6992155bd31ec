"""Saving a module (and its optimizer) to one ``.npz`` file and loading it back, so that no checkpoint is
lost or half-loaded.

``save`` writes beside the target under a temporary name, flushes it to disk and renames it over the
target in one step: a save that is killed or fills the disk leaves the previous checkpoint as it was.
``load`` reads each entry's header (shape and dtype) before its data, checks everything against the model
and the optimizer, and assigns only when all of it fits: on any error nothing changes. Nothing is
pickled.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import stat
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .module import Module, value_problem

_MODULE_PREFIX = "module/"
_OPTIMIZER_PREFIX = "optimizer/"
_GROUPS_KEY = _OPTIMIZER_PREFIX + "param_groups"


def _checkpoint_path(path: str | os.PathLike[str]) -> str:
    """``path`` with the ``.npz`` suffix added when it lacks it, as ``np.savez`` does."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"expected a file path (str or os.PathLike), got {type(path).__name__}")
    text = os.fsdecode(os.fspath(path))
    return text if text.endswith(".npz") else text + ".npz"


def save(path: str | os.PathLike[str], module: Module, optimizer: Any = None) -> str:
    """Write ``module``'s state (and ``optimizer``'s, when given) to one ``.npz`` file; return its full path.

    ``.npz`` is added to ``path`` when it lacks it, as ``np.savez`` does, and ``load`` reads the same
    file from the same ``path``. Nothing is pickled. The file is first written beside the target under a
    hidden temporary name, flushed to disk, then renamed over the target in one step: a save that fails
    (a full disk, an error, an interrupt) removes its temporary file and leaves the previous checkpoint as
    it was; a process killed while writing leaves at most a stray ``.<name>.*.tmp`` file.

    Examples
    --------
    >>> import tempfile, os
    >>> from tape.nn import Linear
    >>> folder = tempfile.mkdtemp()
    >>> os.path.basename(save(os.path.join(folder, "model"), Linear(2, 1)))
    'model.npz'
    >>> os.listdir(folder)
    ['model.npz']
    """
    target = os.path.realpath(_checkpoint_path(path))  # through a symlink: replace the file, not the link
    arrays = {_MODULE_PREFIX + key: value for key, value in module.state_dict().items()}
    if optimizer is not None:
        state = optimizer.state_dict()
        for index, parameter_state in state["state"].items():
            for key, value in parameter_state.items():
                arrays[f"{_OPTIMIZER_PREFIX}state/{index}/{key}"] = np.asarray(value)
        arrays[_GROUPS_KEY] = np.array(json.dumps(state["param_groups"]))
    folder, name = os.path.split(target)
    descriptor, temporary = _create_temporary(folder, name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            np.savez(stream, allow_pickle=False, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))  # an overwritten file keeps its mode
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(folder)
    return target


def _create_temporary(folder: str, name: str) -> tuple[int, str]:
    # Created as open() creates files (mode 0o666 less the umask), in the target's folder so that the
    # final os.replace stays on one filesystem, where it is atomic.
    for _ in range(100):
        temporary = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"save: could not create a temporary file in {folder}")


def _sync_folder(folder: str) -> None:
    # Makes the rename itself durable. Windows cannot open a folder to fsync it; some filesystems refuse.
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


def load(path: str | os.PathLike[str], module: Module, optimizer: Any = None, strict: bool = True) -> None:
    """Read a file written by ``save`` into ``module`` (and ``optimizer``), in place, all or nothing.

    ``path`` follows ``save``'s rule: ``.npz`` is added when it lacks it. Everything is read and checked
    before anything is written; on any error the module's parameters and buffers and the optimizer's
    state are as they were. Each entry's ``.npy`` header (shape and dtype) is checked against its target
    before its data is read, so a forged header claiming a huge array allocates nothing; object arrays are
    refused. Raises ``KeyError`` listing missing and unexpected keys (with ``strict``) or when an
    optimizer is asked for but the file holds none, and ``ValueError`` naming the entry for anything else
    (a truncated or corrupt file, a CRC error, a shape or dtype that does not fit, malformed optimizer
    state).

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from tape.nn import Linear
    >>> path = os.path.join(tempfile.mkdtemp(), "model")
    >>> source, target = Linear(2, 1), Linear(2, 1)
    >>> _ = save(path, source)
    >>> load(path, target)  # reads model.npz
    >>> np.array_equal(source.weight.data, target.weight.data)
    True
    """
    source = _checkpoint_path(path)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise ValueError(f"load: {source} is not a readable .npz archive ({error})") from error
    with archive:
        entries = _archive_entries(archive, source)
        targets = module._state_targets()
        stored = [key[len(_MODULE_PREFIX) :] for key in entries if key.startswith(_MODULE_PREFIX)]
        missing = [key for key in targets if key not in stored]
        unexpected = [key for key in stored if key not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"load: {source}: missing keys {missing}, unexpected keys {unexpected}")
        module_state = {}
        for key, (owner, name, is_parameter) in targets.items():
            if key in stored:
                current = owner._parameters[name]._data if is_parameter else owner._buffers[name]
                module_state[key] = _read_entry(
                    archive,
                    entries[_MODULE_PREFIX + key],
                    f"load: {source}: {key}",
                    lambda shape, dtype, current=current: value_problem(
                        shape, dtype, current.shape, current.dtype
                    ),
                )
        plan, _, _ = module._check_state_dict(module_state, strict)
        if optimizer is not None:
            optimizer.load_state_dict(_read_optimizer_state(archive, entries, source, optimizer))
        module._assign_state(plan)


def _archive_entries(archive: zipfile.ZipFile, source: str) -> dict[str, zipfile.ZipInfo]:
    """The ``.npy`` members by name without the suffix; a name stored twice is ambiguous, so refused."""
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        key = info.filename[: -len(".npy")]
        if key in entries:
            raise ValueError(f"load: {source}: entry {key!r} is stored twice")
        entries[key] = info
    return entries


def _read_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    where: str,
    check: Callable[[tuple[int, ...], np.dtype], str | None],
) -> np.ndarray:
    """The array in one ``.npy`` member, after ``check`` accepted the shape and dtype of its header (read
    alone, before any data is decompressed); the member's CRC is verified."""
    try:
        with archive.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            problem = check(shape, dtype)
            if problem is not None:
                raise ValueError(problem)
            size = math.prod(shape) * dtype.itemsize
            data = stream.read(size)
            if len(data) != size:
                raise ValueError(f"data cut short: {len(data)} of {size} bytes")
            if stream.read(1):  # also reaches the end of the member, where its CRC is checked
                raise ValueError("bytes after the array's data")
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from error
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def _read_optimizer_state(
    archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo], source: str, optimizer: Any
) -> dict[str, Any]:
    """The ``state_dict`` the optimizer saved, its arrays' headers checked against the parameters first."""
    if _GROUPS_KEY not in entries:
        raise KeyError(f"load: {source} holds no optimizer state")
    # The hyperparameters are JSON text, a few hundred characters a group: refuse a header claiming more.
    limit = 65536 + 4096 * len(optimizer.param_groups) + 32 * len(optimizer._indexed())

    def text_problem(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
        if shape != () or dtype.kind != "U":
            return f"expected a 0-d string array, got {dtype} of shape {shape}"
        if dtype.itemsize // 4 > limit:
            return f"{dtype.itemsize // 4} characters, more than the {limit} this optimizer's groups need"
        return None

    where = f"load: {source}: {_GROUPS_KEY}"
    text = str(_read_entry(archive, entries[_GROUPS_KEY], where, text_problem)[()])
    try:
        groups = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{where}: not valid JSON ({error})") from error
    owners = optimizer._saved_owners(groups)
    state: dict[int, dict[str, Any]] = {}
    prefix = _OPTIMIZER_PREFIX + "state/"
    for key, info in entries.items():
        if not key.startswith(prefix):
            continue
        index, _, name = key[len(prefix) :].partition("/")
        if not index.isdigit() or int(index) not in owners or not name:
            raise ValueError(f"load: {source}: {key}: no parameter of the saved groups has this state")
        parameter = owners[int(index)]

        def state_problem(shape: tuple[int, ...], dtype: np.dtype, parameter: Any = parameter) -> str | None:
            if shape not in ((), parameter.shape):
                return f"expected a scalar or the parameter's shape {parameter.shape}, got shape {shape}"
            if dtype.kind not in "biuf":
                return f"expected real numbers, got dtype {dtype}"
            return None

        state.setdefault(int(index), {})[name] = _read_entry(
            archive, info, f"load: {source}: {key}", state_problem
        )
    return {"state": state, "param_groups": groups}

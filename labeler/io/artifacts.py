"""Atomic writes: every artifact is written to a temporary file and renamed into place.

A crash mid-write therefore leaves the old file or no file, never a half-written one read later as valid.
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


class ArtifactWriteError(OSError):
    """An artifact could not be written (disk full, read-only workspace); the previous version is kept."""


_TEMP_SUFFIX = ".tmp"
# Errors that mean "this workspace cannot take the write", said in words instead of an errno.
_WHY = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the workspace is on a read-only file system",
    errno.EACCES: "the workspace folder is not writable",
    errno.EPERM: "the workspace folder is not writable",
}


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (the one place artifact bytes reach the disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a power cut after it keeps the new name)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not possible on every platform; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and ``os.replace``.

    A reader sees the old file or the new one, never a part. When the write fails (disk full, read-only
    workspace) the temporary file is removed, the old file stays as it was, and :class:`ArtifactWriteError`
    says why in words. The temporary name carries this process's id so a later run can remove what a killed
    process left (:func:`remove_orphan_temp_files`).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=_TEMP_SUFFIX)
    except OSError as error:
        raise _clear(error, path) from error
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException as error:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, ArtifactWriteError):
            raise _clear(error, path) from error
        raise
    _fsync_folder(path.parent)


def _clear(error: OSError, path: Path) -> OSError:
    why = _WHY.get(error.errno or 0)
    if why is None:
        return error
    return ArtifactWriteError(
        error.errno, f"cannot write {path}: {why} ({error.strerror}); the previous version is kept, and no label "
        "is affected. Free some space or choose a writable workspace (--workspace)."
    )


def remove_orphan_temp_files(folder: Path) -> int:
    """Remove temporary files under ``folder`` left by writers that were killed (their process is gone).

    Files of live processes (a write in progress) are kept. Returns how many were removed.
    """
    removed = 0
    for path in Path(folder).rglob(f".*{_TEMP_SUFFIX}"):
        if orphan_temp_file(path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def temp_file_writer(path: Path) -> int | None:
    """The process id in a temporary file's name (``.{name}.{pid}.{anything}.tmp``, as every writer here names
    them), None when the name holds none."""
    name = Path(path).name
    if not (name.startswith(".") and name.endswith(_TEMP_SUFFIX)):
        return None
    parts = name[: -len(_TEMP_SUFFIX)].rsplit(".", 2)
    try:
        return int(parts[-2]) if len(parts) == 3 else None
    except ValueError:
        return None


def orphan_temp_file(path: Path) -> bool:
    """True when ``path`` is a temporary file whose writer (the process named in it, on this host) is gone."""
    pid = temp_file_writer(path)
    return pid is not None and pid != os.getpid() and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def save_npy_atomic(path: Path, array: NDArray[Any]) -> None:
    """Save one array as ``.npy``, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    write_bytes_atomic(path, buffer.getvalue())


def save_npz_atomic(path: Path, arrays: Mapping[str, NDArray[Any]]) -> None:
    """Save several named arrays as ``.npz``, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(value) for name, value in arrays.items()})  # type: ignore[arg-type]
    write_bytes_atomic(path, buffer.getvalue())


def save_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=2, sort_keys=True).encode("utf-8"))


def load_npy(path: Path, mmap: bool = False) -> NDArray[Any]:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def load_npz(path: Path) -> dict[str, NDArray[Any]]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))

"""Atomic writes: every artifact is written to a temporary file and renamed into place.

A crash mid-write therefore leaves the old file or no file, never a half-written one read later as valid.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


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

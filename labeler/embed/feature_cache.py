"""An append-only on-disk store of float32 feature rows keyed by strings, read through a memory map.

Layout of the folder: ``rows.f32`` (raw little-endian float32, ``dim`` per row), ``keys.txt`` (one key per line, in
row order) and ``meta.json`` (``dim``, the number of committed rows and the byte length of their keys). Appending
writes rows and keys past the committed end, flushes them, then replaces ``meta.json`` atomically (temp file +
``os.replace``): that rename is the commit. A crash before it leaves bytes past the committed end, which readers
ignore and the next append overwrites. Rewriting the whole store per chunk would cost O(N^2) bytes over a large
folder; appending costs O(chunk). Writers take an exclusive ``flock`` where the OS has one.

Rows of keys no longer asked for (a changed file's old digest) stay until the folder is deleted; they cost 4 * dim
bytes each.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer at a time is then the caller's business
    fcntl = None  # type: ignore[assignment]


class FeatureCache:
    """Rows of ``dim`` float32 values, one per string key, in folder ``path`` (created on first append).

    Parameters
    ----------
    path : Path
        The cache folder.
    dim : int
        Values per row; a folder written with another ``dim`` raises ``ValueError``.
    """

    def __init__(self, path: Path, dim: int) -> None:
        self.path = Path(path)
        self.dim = dim

    # -- reading -------------------------------------------------------------------------------------------------
    def _meta(self) -> dict[str, int]:
        try:
            meta: dict[str, int] = json.loads((self.path / "meta.json").read_text())
        except FileNotFoundError:
            return {"dim": self.dim, "rows": 0, "key_bytes": 0}
        if meta["dim"] != self.dim:
            raise ValueError(f"{self.path} holds rows of {meta['dim']} values, not {self.dim}")
        return meta

    def keys(self) -> list[str]:
        """The committed keys, in row order."""
        meta = self._meta()
        if meta["rows"] == 0:
            return []
        with (self.path / "keys.txt").open("rb") as file:
            return file.read(meta["key_bytes"]).decode().splitlines()

    def rows(self) -> NDArray[np.float32]:
        """All committed rows, (n_rows, dim), as a read-only memory map (an empty array when there are none)."""
        n = self._meta()["rows"]
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        return np.memmap(self.path / "rows.f32", dtype="<f4", mode="r", shape=(n, self.dim))

    def lookup(self, keys: Sequence[str]) -> NDArray[np.int64]:
        """Row of each key, shape (len(keys),), -1 where absent (the latest row where a key was stored twice)."""
        where = {key: row for row, key in enumerate(self.keys())}
        return np.array([where.get(key, -1) for key in keys], dtype=np.int64)

    def gather(self, rows: NDArray[np.int64]) -> NDArray[np.float32]:
        """The given rows, shape (len(rows), dim); zeros where ``rows`` is -1.

        A read-only memory map when ``rows`` is one ascending run (no copy, so memory does not grow with the
        folder), else an in-memory copy.
        """
        stored = self.rows()
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and rows[0] >= 0 and np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
            return stored[rows[0] : rows[0] + len(rows)]
        out = np.zeros((len(rows), self.dim), np.float32)
        present = rows >= 0
        out[present] = stored[rows[present]]
        out.flags.writeable = False
        return out

    # -- writing -------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / "lock").open("a") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield  # the lock goes with the file's closing

    def append(self, keys: Sequence[str], values: NDArray[np.floating]) -> None:
        """Store ``values`` (len(keys), dim) under ``keys`` and commit.

        Keys must be non-empty and hold no line breaks.
        """
        values = np.ascontiguousarray(values, dtype="<f4")
        if values.shape != (len(keys), self.dim):
            raise ValueError(f"values must be ({len(keys)}, {self.dim}), got {values.shape}")
        if any(not key or "\n" in key or "\r" in key for key in keys):
            raise ValueError("cache keys must be non-empty and hold no line breaks")
        if not keys:
            return
        encoded = "".join(f"{key}\n" for key in keys).encode()
        with self._locked():
            meta = self._meta()  # again, under the lock: another writer may have committed since
            for name, offset, data in (
                ("rows.f32", meta["rows"] * self.dim * 4, values.tobytes()),
                ("keys.txt", meta["key_bytes"], encoded),
            ):
                with (self.path / name).open("r+b" if (self.path / name).exists() else "wb") as file:
                    file.seek(offset)
                    file.write(data)
                    file.truncate()  # drop what an interrupted writer left past the committed end
                    file.flush()
                    os.fsync(file.fileno())
            new = {"dim": self.dim, "rows": meta["rows"] + len(keys), "key_bytes": meta["key_bytes"] + len(encoded)}
            fd, temp = tempfile.mkstemp(dir=self.path, prefix=".meta-", suffix=".tmp")
            with os.fdopen(fd, "w") as file:
                json.dump(new, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path / "meta.json")

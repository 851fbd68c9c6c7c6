"""Arrays too big for memory, written and read chunk by chunk as ``.npy`` files.

A cache of N thumbnails is written row range by row range into a temporary ``.npy`` (its header and size laid out
by ``numpy.lib.format.open_memmap``) and renamed into place when complete, so a crash leaves the old file or none.
Rows are written and read with plain file I/O rather than through a memory map: pages a process touched through a
map count in its resident memory until unmapped, so sweeping a 3 GB cache through one would make the process look
3 GB big; file reads go through the page cache instead, and the process holds only the current chunk.

:class:`ChunkedRun` adds resumption: each chunk of a long computation (embedding a million photos) is saved as its
own small file as soon as it is done, named by what it was computed from, and the parts are joined at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from labeler.io.artifacts import load_npy, save_npy_atomic


class _RowFile:
    """Row-range writes into an open ``.npy`` file: plain writes, or kernel copies from another ``.npy``."""

    path: Path
    temp_path: Path
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    _offset: int
    _row_bytes: int
    _file: Any

    def write(self, lo: int, rows: NDArray[Any]) -> None:
        """Store ``rows`` (shape (m, *shape[1:])) as rows ``lo .. lo + m - 1``."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:] or lo < 0 or lo + len(rows) > self.shape[0]:
            raise ValueError(f"rows of shape {rows.shape} at {lo} do not fit an array of shape {self.shape}")
        self._file.seek(self._offset + lo * self._row_bytes)
        self._file.write(rows.tobytes())

    def copy_rows(self, reader: NpyReader, src_lo: int, dst_lo: int, count: int) -> None:
        """Copy ``count`` rows of ``reader`` from ``src_lo`` to rows ``dst_lo ..`` here, inside the kernel.

        ``os.copy_file_range`` moves the bytes without passing them through this process (and shares blocks on
        file systems that can); where it is missing, the rows are read and written in pieces.
        """
        if reader.shape[1:] != self.shape[1:] or reader.dtype != self.dtype:  # the same row layout
            raise ValueError(f"cannot copy rows of {reader.dtype} {reader.shape} into {self.dtype} {self.shape}")
        if src_lo < 0 or src_lo + count > reader.shape[0] or dst_lo < 0 or dst_lo + count > self.shape[0]:
            raise ValueError(f"rows {src_lo}+{count} -> {dst_lo} out of range")
        left = count * self._row_bytes
        src_at = reader.offset + src_lo * self._row_bytes
        dst_at = self._offset + dst_lo * self._row_bytes
        self._file.flush()
        with open(reader.path, "rb") as source:
            while left > 0:
                if hasattr(os, "copy_file_range"):
                    done = os.copy_file_range(source.fileno(), self._file.fileno(), left, src_at, dst_at)
                else:  # pragma: no cover - platforms without copy_file_range
                    source.seek(src_at)
                    piece = source.read(min(left, 1 << 24))
                    self._file.seek(dst_at)
                    done = self._file.write(piece)
                if done <= 0:
                    raise OSError(f"could not copy rows from {reader.path}")
                left, src_at, dst_at = left - done, src_at + done, dst_at + done

    def _rename_into_place(self) -> Path:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.temp_path, self.path)
        return self.path

    def abort(self) -> None:
        self._file.close()
        self.temp_path.unlink(missing_ok=True)


class NpyWriter(_RowFile):
    """Write an array of ``shape`` and ``dtype`` to ``path`` by row ranges, atomically.

    Use as a context manager: on a clean exit the file is renamed into place (``commit``), on an exception the
    temporary file is removed (``abort``). Rows never written read as zeros.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: DTypeLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        # The writer's pid in the name (as every artifact writer does): a crash's leftover is told from a live write.
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.{os.getpid()}.", suffix=".tmp")
        os.close(fd)
        self.temp_path = Path(name)
        # open_memmap writes a valid header and sizes the (sparse) file; the map itself is dropped at once.
        mapped = np.lib.format.open_memmap(self.temp_path, mode="w+", dtype=self.dtype, shape=self.shape)
        self._offset = int(mapped.offset)
        del mapped
        self._row_bytes = int(self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64)))
        self._file = open(self.temp_path, "r+b")  # noqa: SIM115 (closed by commit or abort)

    def commit(self, rows: int | None = None) -> Path:
        """Rename the file into place; ``rows`` keeps only the first rows (fewer than were reserved)."""
        if rows is not None and rows != self.shape[0]:
            self._shrink(rows)
        return self._rename_into_place()

    def _shrink(self, rows: int) -> None:
        if not 0 <= rows < self.shape[0]:
            raise ValueError(f"cannot shrink {self.shape[0]} rows to {rows}")
        # Rewrite the version 1.0 header in the same number of bytes (padding absorbs the shorter shape).
        self._file.seek(0)
        if self._file.read(8) != b"\x93NUMPY\x01\x00":
            raise ValueError(f"{self.temp_path}: only version 1.0 headers can be shrunk")
        shape = (rows, *self.shape[1:])
        header = _header(self.dtype, shape, self._offset)
        assert header is not None  # a shorter shape always fits where the longer one did
        self._file.seek(0)
        self._file.write(header)
        self._file.truncate(self._offset + rows * self._row_bytes)
        self.shape = shape

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def _header(dtype: np.dtype[Any], shape: tuple[int, ...], offset: int) -> bytes | None:
    """A version 1.0 ``.npy`` header of exactly ``offset`` bytes (magic included) for ``shape``; None if it does not
    fit (numpy leaves room for a longer first dimension, so a grown row count normally does)."""
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
    room = offset - 10
    encoded = text.encode("latin1")
    if len(encoded) + 1 > room:
        return None
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", room) + encoded + b" " * (room - len(encoded) - 1) + b"\n"


def can_grow(path: Path, rows: int) -> bool:
    """Whether :class:`NpyPatch` can grow the ``.npy`` at ``path`` to ``rows`` rows in place."""
    try:
        reader = NpyReader(path)
        with open(path, "rb") as handle:
            version = handle.read(8)
    except (OSError, ValueError):
        return False
    shape = (int(rows), *reader.shape[1:])
    return (version == b"\x93NUMPY\x01\x00" and rows >= reader.shape[0]
            and _header(reader.dtype, shape, reader.offset) is not None)


class NpyPatch(_RowFile):
    """The ``.npy`` file ``source`` becomes ``path`` with some rows rewritten, without copying the rows that stay.

    ``source`` is first renamed to a temporary name (``.{path name}.{pid}.patch.tmp``, which no reader takes for
    an artifact and :func:`labeler.io.artifacts.remove_orphan_temp_files` removes after a crash), its rows are
    rewritten in place, and :meth:`commit` renames it to ``path``: a reader opening either name sees a complete
    file or none. ``source`` is consumed: after :meth:`abort` (or a crash) neither name exists. A process that
    mapped ``source`` before sees the rewritten rows change under it. With ``rows`` larger than ``source``'s, the
    file grows to that many rows (new rows zero until written); the rows it had stay where they are.
    """

    def __init__(self, source: Path, path: Path, rows: int | None = None) -> None:
        reader = NpyReader(source)
        self.path = Path(path)
        self.shape, self.dtype, self._offset = reader.shape, reader.dtype, reader.offset
        self._row_bytes = int(self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64)))
        self.temp_path = self.path.with_name(f".{self.path.name}.{os.getpid()}.patch.tmp")
        grown = None
        if rows is not None and rows != self.shape[0]:
            # Growing only: rows beyond the old end are appended, the old ones stay where they are, so a process
            # that mapped ``source`` keeps seeing its rows (shrinking would cut the file under its map).
            grown = (int(rows), *self.shape[1:])
            header = _header(self.dtype, grown, self._offset) if rows > self.shape[0] else None
            if header is None:
                raise ValueError(f"{source}: cannot grow {self.shape} to {grown} in place")
        os.replace(source, self.temp_path)
        try:
            self._file = open(self.temp_path, "r+b")  # noqa: SIM115 (closed by commit or abort)
        except OSError:
            self.temp_path.unlink(missing_ok=True)
            raise
        if grown is not None:
            try:
                self._file.seek(0)
                self._file.write(header)
                self._file.truncate(self._offset + grown[0] * self._row_bytes)  # new rows are zeros until written
            except BaseException:
                self.abort()
                raise
            self.shape = grown

    def commit(self) -> Path:
        """Make the patched rows durable, then rename the file to ``path``."""
        return self._rename_into_place()


class NpyReader:
    """Rows of a ``.npy`` file read with file I/O (see the module docstring for why not a memory map)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # Mapping the file reads its header and touches no row: the map gives the layout and is dropped at once.
        mapped = load_npy(self.path, mmap=True)
        if not mapped.flags.c_contiguous:
            raise ValueError(f"{self.path}: Fortran-ordered arrays are not supported")
        self.shape: tuple[int, ...] = tuple(mapped.shape)
        self.dtype = np.dtype(mapped.dtype)
        self.offset = int(mapped.offset)  # type: ignore[attr-defined]
        del mapped
        self._row_bytes = int(self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64)))

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, lo: int, hi: int) -> NDArray[Any]:
        """Rows ``lo .. hi - 1`` as a new array."""
        out = np.empty((hi - lo, *self.shape[1:]), dtype=self.dtype)
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + lo * self._row_bytes)
            handle.readinto(memoryview(out).cast("B"))  # type: ignore[arg-type]
        return out

    def take(self, indices: Sequence[int] | NDArray[np.integer[Any]]) -> NDArray[Any]:
        """Rows at ``indices`` (any order), one read per run of consecutive indices."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), *self.shape[1:]), dtype=self.dtype)
        if len(indices) == 0:
            return out
        breaks = np.flatnonzero(np.diff(indices) != 1) + 1
        with open(self.path, "rb") as handle:
            for run in np.split(np.arange(len(indices)), breaks):
                first = int(indices[run[0]])
                handle.seek(self.offset + first * self._row_bytes)
                handle.readinto(memoryview(out[run[0] : run[-1] + 1]).cast("B"))  # type: ignore[arg-type]
        return out


def chunk_key(items: Sequence[str]) -> str:
    """A short name for what a chunk is computed from (e.g. the content digests of its images)."""
    return hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()[:16]


class ChunkedRun:
    """A computation of ``n`` rows done ``chunk_rows`` at a time, each finished chunk saved, resumable.

    Chunk ``i`` covers rows ``i * chunk_rows`` up to the next chunk; ``keys[i]`` says what it was computed from,
    and a saved part is reused only under the same key, so a run interrupted and restarted on changed inputs
    recomputes exactly the chunks whose inputs changed. Parts live in ``{path}.parts/`` until :meth:`assemble`
    streams them into ``path`` and removes the folder.
    """

    def __init__(self, path: Path, n: int, chunk_rows: int, keys: Sequence[str]) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self.path = Path(path)
        self.n = n
        self.chunk_rows = chunk_rows
        self.n_chunks = (n + chunk_rows - 1) // chunk_rows
        if len(keys) != self.n_chunks:
            raise ValueError(f"need one key per chunk ({self.n_chunks}), got {len(keys)}")
        self.keys = list(keys)
        self.parts_dir = self.path.with_name(self.path.name + ".parts")

    def bounds(self, i: int) -> tuple[int, int]:
        return i * self.chunk_rows, min(self.n, (i + 1) * self.chunk_rows)

    def part_path(self, i: int) -> Path:
        return self.parts_dir / f"{i:06d}-{self.keys[i]}.npy"

    def missing(self) -> list[int]:
        """Chunks with no saved part under their current key."""
        return [i for i in range(self.n_chunks) if not self.part_path(i).exists()]

    def save(self, i: int, rows: NDArray[Any]) -> None:
        lo, hi = self.bounds(i)
        if len(rows) != hi - lo:
            raise ValueError(f"chunk {i} needs {hi - lo} rows, got {len(rows)}")
        save_npy_atomic(self.part_path(i), rows)

    def assemble(self, row_shape: tuple[int, ...], dtype: DTypeLike) -> Path:
        """Join the parts into ``path`` (every chunk must be saved), then drop the parts."""
        missing = self.missing()
        if missing:
            raise RuntimeError(f"{len(missing)} of {self.n_chunks} chunks are not computed yet")
        with NpyWriter(self.path, (self.n, *row_shape), dtype) as writer:
            for i in range(self.n_chunks):
                writer.write(self.bounds(i)[0], load_npy(self.part_path(i)))
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return self.path

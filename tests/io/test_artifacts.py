"""Atomic artifacts: a failed or killed write leaves the old file whole, partial files are rejected by the
loaders, and the pieces a killed writer left are cleaned up (only theirs)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from labeler.io import artifacts


def test_a_write_that_fails_keeps_the_old_file_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.npy"
    artifacts.save_npy_atomic(path, np.arange(10))

    def disk_full(fd: int, data: bytes) -> None:
        os.write(fd, data[:7])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(artifacts, "_write_all", disk_full)
    with pytest.raises(artifacts.ArtifactWriteError, match="the disk is full.*previous version is kept") as error:
        artifacts.save_npy_atomic(path, np.arange(1000))
    assert error.value.errno == errno.ENOSPC
    np.testing.assert_array_equal(artifacts.load_npy(path), np.arange(10))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]  # no temporary piece left


def test_a_read_only_folder_is_said_in_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(artifacts.tempfile, "mkstemp", read_only)
    with pytest.raises(artifacts.ArtifactWriteError, match="read-only file system"):
        artifacts.write_bytes_atomic(tmp_path / "x.bin", b"data")


def test_other_errors_pass_through_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fd: int, data: bytes) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(artifacts, "_write_all", broken)
    with pytest.raises(OSError, match="I/O error") as error:
        artifacts.write_bytes_atomic(tmp_path / "x.bin", b"data")
    assert not isinstance(error.value, artifacts.ArtifactWriteError)


def test_partial_files_are_rejected_by_the_loaders(tmp_path: Path) -> None:
    npy, npz = tmp_path / "a.npy", tmp_path / "b.npz"
    artifacts.save_npy_atomic(npy, np.arange(1000, dtype=np.float32))
    artifacts.save_npz_atomic(npz, {"x": np.arange(1000), "y": np.ones((50, 3))})
    for path, loader, errors in ((npy, artifacts.load_npy, (ValueError, EOFError, OSError)),
                                 (npz, artifacts.load_npz, (ValueError, EOFError, OSError, zipfile.BadZipFile))):
        data = path.read_bytes()
        for cut in (0, 20, len(data) // 2, len(data) - 1):
            path.write_bytes(data[:cut])
            with pytest.raises(errors):
                loader(path)


def test_leftovers_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead, live = child.pid, os.getpid()
    (tmp_path / "cache").mkdir()
    kept = tmp_path / "cache" / "map.npy"
    kept.write_bytes(b"real")
    dead_piece = tmp_path / "cache" / f".map.npy.{dead}.ab12cd_3.tmp"
    live_piece = tmp_path / "cache" / f".map.npy.{live}.zz99xx.tmp"
    other = tmp_path / "cache" / ".notes.tmp"  # not ours: no pid in the name
    for piece in (dead_piece, live_piece, other):
        piece.write_bytes(b"half")
    assert artifacts.remove_orphan_temp_files(tmp_path) == 1
    assert not dead_piece.exists()
    assert live_piece.exists()
    assert other.exists()
    assert kept.exists()


def test_temporary_names_carry_the_writers_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = artifacts._write_all

    def spy(fd: int, data: bytes) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())
        real(fd, data)

    monkeypatch.setattr(artifacts, "_write_all", spy)
    artifacts.write_bytes_atomic(tmp_path / "state.npz", b"x")
    assert len(seen) == 1
    assert seen[0].startswith(f".state.npz.{os.getpid()}.")
    assert seen[0].endswith(".tmp")
    assert (tmp_path / "state.npz").read_bytes() == b"x"

"""Arrays written and read by row ranges: exact contents, atomic commit, resumable chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labeler.io.chunked import ChunkedRun, NpyReader, NpyWriter, chunk_key


def test_writer_streams_rows_and_commits_atomically(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    expected = np.arange(10 * 6, dtype=np.int16).reshape(10, 2, 3)
    with NpyWriter(path, (10, 2, 3), np.int16) as writer:
        writer.write(4, expected[4:])
        assert not path.exists()  # nothing is visible until the commit
        writer.write(0, expected[:4])
    np.testing.assert_array_equal(np.load(path), expected)
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_writer_aborts_on_error_and_refuses_rows_that_do_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    with pytest.raises(ValueError, match="do not fit"), NpyWriter(path, (3, 2), np.float32) as writer:
        writer.write(2, np.zeros((2, 2)))
    assert list(tmp_path.iterdir()) == []


def test_writer_shrinks_to_the_rows_written(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    writer = NpyWriter(path, (1000, 4), np.uint8)
    writer.write(0, np.full((7, 4), 9))
    writer.commit(rows=7)
    loaded = np.load(path)
    assert loaded.shape == (7, 4)
    assert np.all(loaded == 9)
    assert path.stat().st_size == 128 + 28  # header and seven rows: the reserved space is given back


def test_reader_takes_rows_in_any_order(tmp_path: Path) -> None:
    array = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", array)
    reader = NpyReader(tmp_path / "a.npy")
    assert (len(reader), reader.dtype) == (50, np.float32)
    np.testing.assert_array_equal(reader.rows(10, 20), array[10:20])
    order = np.array([3, 4, 5, 0, 49, 48, 7])
    np.testing.assert_array_equal(reader.take(order), array[order])
    assert reader.take([]).shape == (0, 3)


def test_chunked_run_resumes_only_missing_or_changed_chunks(tmp_path: Path) -> None:
    digests = [f"d{i}" for i in range(10)]
    keys = [chunk_key(digests[lo : lo + 4]) for lo in range(0, 10, 4)]
    run = ChunkedRun(tmp_path / "x.npy", 10, 4, keys)
    assert run.missing() == [0, 1, 2]
    assert [run.bounds(i) for i in range(3)] == [(0, 4), (4, 8), (8, 10)]
    run.save(0, np.zeros((4, 2), np.float32))
    run.save(2, np.full((2, 2), 2, np.float32))
    assert run.missing() == [1]
    with pytest.raises(RuntimeError, match="1 of 3 chunks"):
        run.assemble((2,), np.float32)
    changed = digests[:5] + ["new"] + digests[6:]  # one image of chunk 1 changed: only chunk 1 is recomputed
    again = ChunkedRun(tmp_path / "x.npy", 10, 4, [chunk_key(changed[lo : lo + 4]) for lo in range(0, 10, 4)])
    assert again.missing() == [1]
    again.save(1, np.ones((4, 2), np.float32))
    again.assemble((2,), np.float32)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy")[:, 0], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]  # parts removed once joined


def test_writer_copies_rows_file_to_file(tmp_path: Path) -> None:
    source = np.arange(40, dtype=np.uint8).reshape(10, 2, 2)
    np.save(tmp_path / "src.npy", source)
    reader = NpyReader(tmp_path / "src.npy")
    with NpyWriter(tmp_path / "dst.npy", (6, 2, 2), np.uint8) as writer:
        writer.write(0, np.full((1, 2, 2), 99))
        writer.copy_rows(reader, 7, 1, 3)  # rows 7, 8, 9 -> 1, 2, 3
        writer.copy_rows(reader, 0, 4, 2)
        with pytest.raises(ValueError, match="out of range"):
            writer.copy_rows(reader, 9, 0, 2)
    out = np.load(tmp_path / "dst.npy")
    np.testing.assert_array_equal(out[0], np.full((2, 2), 99))
    np.testing.assert_array_equal(out[1:4], source[7:10])
    np.testing.assert_array_equal(out[4:], source[:2])


def test_patch_grows_a_file_in_place_keeping_its_rows(tmp_path: Path) -> None:
    from labeler.io.chunked import NpyPatch, can_grow

    source = tmp_path / "old.npy"
    np.save(source, np.arange(5 * 3, dtype=np.float32).reshape(5, 3))
    assert can_grow(source, 99_999)  # numpy leaves room in the header for a longer first dimension
    assert not can_grow(source, 4)  # shrinking would cut the file under a reader's map
    patch = NpyPatch(source, tmp_path / "new.npy", rows=7)
    patch.write(5, np.full((2, 3), -1, dtype=np.float32))
    patch.write(1, np.full((1, 3), 9, dtype=np.float32))
    patch.commit()
    assert not source.exists()
    grown = np.load(tmp_path / "new.npy")
    expected = np.arange(15, dtype=np.float32).reshape(5, 3)
    expected[1] = 9
    np.testing.assert_array_equal(grown, np.vstack([expected, np.full((2, 3), -1, dtype=np.float32)]))
    with pytest.raises(ValueError, match="cannot grow"):
        NpyPatch(tmp_path / "new.npy", tmp_path / "newer.npy", rows=3)
    assert (tmp_path / "new.npy").exists()  # refused before anything was renamed

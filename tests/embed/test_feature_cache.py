"""The append-only feature cache: lookups, memory maps, commits that survive an interrupted writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labeler.embed.feature_cache import FeatureCache


def _rows(n: int, dim: int = 4, start: int = 0) -> np.ndarray:
    return np.arange(start * dim, (start + n) * dim, dtype=np.float32).reshape(n, dim)


def test_append_lookup_gather(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "c", 4)
    assert cache.lookup(["a"]).tolist() == [-1]
    cache.append(["a", "b"], _rows(2))
    cache.append(["c"], _rows(1, start=2))
    rows = cache.lookup(["a", "b", "c", "zz"])
    assert rows.tolist() == [0, 1, 2, -1]
    in_order = cache.gather(rows[:3])
    assert isinstance(in_order, np.memmap)  # one ascending run: no copy
    np.testing.assert_array_equal(in_order, _rows(3))
    shuffled = cache.gather(np.array([2, -1, 0]))
    assert not isinstance(shuffled, np.memmap)
    np.testing.assert_array_equal(shuffled, np.stack([_rows(1, start=2)[0], np.zeros(4), _rows(1)[0]]))
    assert not shuffled.flags.writeable
    assert not in_order.flags.writeable


def test_a_key_stored_again_resolves_to_its_latest_row(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, 4)
    cache.append(["a"], _rows(1))
    cache.append(["a"], _rows(1, start=5))
    np.testing.assert_array_equal(cache.gather(cache.lookup(["a"])), _rows(1, start=5))


def test_bytes_past_the_commit_are_ignored_then_overwritten(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, 4)
    cache.append(["a"], _rows(1))
    # A writer that died after appending but before committing meta.json.
    with (tmp_path / "rows.f32").open("ab") as file:
        file.write(b"\xff" * 4 * 4 * 3)
    with (tmp_path / "keys.txt").open("ab") as file:
        file.write(b"ghost\nghost2\n")
    assert cache.lookup(["ghost"]).tolist() == [-1]
    assert cache.rows().shape == (1, 4)
    cache.append(["b"], _rows(1, start=1))
    assert cache.keys() == ["a", "b"]
    np.testing.assert_array_equal(cache.rows(), _rows(2))
    assert (tmp_path / "rows.f32").stat().st_size == 2 * 4 * 4


def test_validation(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, 4)
    with pytest.raises(ValueError, match="line breaks"):
        cache.append(["a\nb"], _rows(1))
    with pytest.raises(ValueError, match=r"\(1, 4\)"):
        cache.append(["a"], _rows(2))
    cache.append(["a"], _rows(1))
    with pytest.raises(ValueError, match="not 8"):
        FeatureCache(tmp_path, 8).lookup(["a"])

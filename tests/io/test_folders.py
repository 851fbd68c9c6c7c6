"""Folders typed into the app: only readable folders under an allowed root open, and a refusal says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labeler.io import folders


def test_a_folder_under_a_root_opens_and_others_are_refused_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "photos").mkdir(parents=True)
    (root / "note.txt").write_text("x")
    (tmp_path / "elsewhere").mkdir()
    roots = [root.resolve()]
    assert folders.check_folder(f"  {root / 'photos'} ", roots) == ((root / "photos").resolve(), None)
    assert folders.check_folder(str(root), roots) == (root.resolve(), None)
    assert folders.check_folder(str(root / "photos" / ".." / ".." / "elsewhere"), roots)[1] == (
        f"{(tmp_path / 'elsewhere').resolve()} is outside the folders this app may open ({root.resolve()})."
    )
    assert folders.check_folder(str(root / "nope"), roots)[1] == f"{(root / 'nope').resolve()} does not exist."
    assert folders.check_folder(str(root / "note.txt"), roots)[1] == f"{(root / 'note.txt').resolve()} is a file, " \
        "not a folder."
    assert folders.check_folder("   ", roots) == (None, "Type the path of a folder.")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        assert folders.check_folder(str(locked), [tmp_path.resolve()])[1] == f"{locked.resolve()} is not readable " \
            "by this user."
    finally:
        locked.chmod(0o700)


def test_roots_are_home_the_sample_the_start_folders_parent_and_the_extra_list(tmp_path: Path) -> None:
    extra = os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")])
    roots = folders.allowed_roots(tmp_path / "data" / "set", tmp_path / "sample", extra)
    assert roots == [Path.home().resolve(), (tmp_path / "sample").resolve(), (tmp_path / "data").resolve(),
                     (tmp_path / "a").resolve(), (tmp_path / "b").resolve()]

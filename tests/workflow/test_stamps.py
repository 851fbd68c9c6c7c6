"""Version stamps: unchanged while nothing changes, changed by a re-scan or a new state, cheap to read."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from labeler.workflow import stamps
from labeler.workflow.refresh import refresh
from labeler.workflow.workspace import Workspace


def test_images_stamp_follows_the_images_table(ws: Workspace, colour_folder: tuple[Path, dict[str, str]]) -> None:
    root, _ = colour_folder
    first = stamps.images_stamp(ws)
    assert (first.total, first.readable) == (90, 90)
    assert stamps.has_images(ws)
    ws.store.set_labels([ws.records()[0].id], ws.classes()[0].id, "t")
    assert stamps.images_stamp(ws) == first  # labels are not images
    Image.new("RGB", (20, 20), (1, 2, 3)).save(root / "aaa.png")  # a new file: every row renumbered
    ws.import_folder()
    second = stamps.images_stamp(ws)
    assert second.total == 91
    assert second != first
    replaced = ws.records()[5].path  # the same name, other content
    Image.new("RGB", (20, 20), (200, 100, 0)).save(root / replaced)
    ws.import_folder()
    assert stamps.images_stamp(ws).checksum != second.checksum
    assert stamps.images_stamp(ws).total == 91


def test_no_database_no_images(tmp_path: Path) -> None:
    assert stamps.images_stamp_at(tmp_path / "missing.db") == stamps.ImagesStamp(0, 0, 0)


def test_state_stamp_changes_with_each_saved_state(ws: Workspace) -> None:
    assert stamps.state_stamp(ws) == (0, 0, 0, 0)
    refresh(ws, compute_map=False)
    first = stamps.state_stamp(ws)
    assert all(first)
    assert stamps.state_stamp(ws) == first
    path = ws.workspace_dir / "state" / "propagation.json"
    os.utime(path, ns=(first[2] + 1_000_000, first[2] + 1_000_000))  # as a new save would
    assert stamps.state_stamp(ws) != first

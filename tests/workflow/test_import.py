"""Import at scale: each file decoded once and only when changed, caches on disk and memory-mapped, cheap reads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import make_colour_folder
from PIL import Image

from labeler.config import Settings
from labeler.io import caches
from labeler.io.caches import DecodedImage
from labeler.workflow.garbage import collect_garbage
from labeler.workflow.workspace import ImportReport, Workspace, import_folder


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the one function that decodes an image's bytes into its cached pictures."""
    calls: list[int] = []
    real = caches.decode_for_caches

    def counting(content: bytes, *args: object, **kwargs: object) -> DecodedImage:
        calls.append(len(content))
        return real(content, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(caches, "decode_for_caches", counting)
    return calls


def fresh_caches(root: Path, tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Caches built by a first import into another workspace: what an incremental import must reproduce."""
    other = Workspace.open(Settings(root, workspace_dir=tmp_path / "fresh"))
    other.import_folder()
    thumbs, train = other.images()
    return np.array(thumbs), np.array(train)


def test_reimport_decodes_only_new_and_changed_files(tmp_path: Path, decodes: list[int]) -> None:
    root = tmp_path / "data"
    make_colour_folder(root, per_class=4)  # 12 files
    ws = Workspace.open(Settings(root))
    report = ws.import_folder()
    assert len(decodes) == 12
    assert report.decoded == 12

    decodes.clear()
    assert ws.import_folder().decoded == 0  # nothing changed: not a file is decoded (nor even read)
    assert decodes == []

    # One file's content changes, one file is only touched, one is added, one is removed.
    Image.new("RGB", (20, 20), (250, 250, 0)).save(root / "img_003.png")
    os.utime(root / "img_005.png", ns=(1, 1))
    Image.new("RGB", (20, 20), (0, 250, 250)).save(root / "new.png")
    (root / "img_007.png").unlink()
    report = ws.import_folder()
    assert len(decodes) == 2  # img_003 and new.png; the touched file is hashed, found unchanged, not decoded
    assert report.counts["added"] == 1
    assert report.counts["updated"] == 1
    assert report.counts["missing"] == 1
    thumbs, train = ws.images()
    expected_thumbs, expected_train = fresh_caches(root, tmp_path)
    np.testing.assert_array_equal(thumbs, expected_thumbs)
    np.testing.assert_array_equal(train, expected_train)
    paths = [r.path for r in ws.records()]
    assert len(paths) == 12
    assert tuple(train[paths.index("img_003.png")][0, 0]) == (250, 250, 0)


def test_the_import_report_says_how_many_new_files_were_readable() -> None:
    """The walkthrough read "1506 readable (1509 new, ...)": new files count the unreadable ones too."""
    report = ImportReport(counts={"ok": 1506, "added": 1509, "added_unreadable": 3},
                          unreadable=[(f"bad{i}.png", "truncated") for i in range(3)])
    assert report.summary_lines() == [
        "1,509 new files: 1,506 readable, 3 unreadable (listed below); 0 changed and 0 missing since the last import",
        "in all: 1,506 readable images, 3 unreadable, 0 exact duplicates",
    ]
    assert report.summary_lines(listed="")[0].startswith("1,509 new files: 1,506 readable, 3 unreadable;")


def test_a_rescan_reports_its_new_files_and_the_totals(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_colour_folder(root, per_class=2)  # 6 files
    (root / "old_broken.png").write_bytes(b"not a picture")
    ws = Workspace.open(Settings(root))
    assert ws.import_folder().summary_lines()[:2] == [
        "7 new files: 6 readable, 1 unreadable (listed below); 0 changed and 0 missing since the last import",
        "in all: 6 readable images, 1 unreadable, 0 exact duplicates",
    ]
    Image.new("RGB", (20, 20), (0, 250, 250)).save(root / "new.png")
    (root / "new_broken.png").write_bytes(b"")
    (root / "img_000.png").unlink()
    lines = ws.import_folder().summary_lines()
    assert lines[:2] == [
        "2 new files: 1 readable, 1 unreadable (listed below); 0 changed and 1 missing since the last import",
        "in all: 6 readable images, 2 unreadable, 0 exact duplicates",
    ]
    assert ws.import_folder().summary_lines()[:2] == [  # nothing new: the old unreadable files are still listed
        "no new files; 0 changed and 0 missing since the last import",
        "in all: 6 readable images, 2 unreadable (listed below), 0 exact duplicates",
    ]


def test_reimport_of_changed_files_rewrites_only_their_rows_in_place(tmp_path: Path, decodes: list[int]) -> None:
    root = tmp_path / "data"
    make_colour_folder(root, per_class=4)
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    inodes = {path.stat().st_ino for path in ws.cache_paths()}
    Image.new("RGB", (20, 20), (250, 250, 0)).save(root / "img_003.png")
    Image.new("RGB", (30, 20), (0, 0, 250)).save(root / "img_009.png")
    decodes.clear()
    ws.import_folder()
    assert len(decodes) == 2
    new_paths = ws.cache_paths()
    assert {path.stat().st_ino for path in new_paths} == inodes  # the old files, renamed: no row was copied
    thumbs, train = ws.images()
    expected_thumbs, expected_train = fresh_caches(root, tmp_path)
    np.testing.assert_array_equal(thumbs, expected_thumbs)
    np.testing.assert_array_equal(train, expected_train)
    assert not list(ws.settings.cache_dir.glob(".*tmp"))
    assert sorted(p.name for p in ws.settings.cache_dir.glob("t*-*.npy")) == sorted(p.name for p in new_paths)


def test_reimport_of_files_added_after_every_other_appends_their_rows_in_place(
    tmp_path: Path, decodes: list[int]
) -> None:
    """New names that sort last (a camera's next numbers) grow the old caches: no row is copied, and a reader that
    mapped the old caches still reads the same pictures; a file added in the middle still gives the right caches."""
    root = tmp_path / "data"
    make_colour_folder(root, per_class=4)  # img_000 .. img_011
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    inodes = {path.stat().st_ino for path in ws.cache_paths()}
    old_thumbs, _ = ws.images()
    before = np.array(old_thumbs)
    Image.new("RGB", (20, 20), (250, 250, 0)).save(root / "img_003.png")  # changed
    Image.new("RGB", (20, 20), (0, 250, 250)).save(root / "img_012.png")  # added after every other name
    Image.new("RGB", (24, 20), (250, 0, 250)).save(root / "img_013.png")
    decodes.clear()
    report = ws.import_folder()
    assert len(decodes) == 3
    assert report.counts["added"] == 2
    new_paths = ws.cache_paths()
    assert {path.stat().st_ino for path in new_paths} == inodes  # the old files, renamed and grown
    thumbs, train = ws.images()
    assert len(thumbs) == 14
    expected_thumbs, expected_train = fresh_caches(root, tmp_path)
    np.testing.assert_array_equal(thumbs, expected_thumbs)
    np.testing.assert_array_equal(train, expected_train)
    unchanged = [i for i in range(12) if i != 3]
    np.testing.assert_array_equal(old_thumbs[unchanged], before[unchanged])  # the old map: same rows, same place
    assert not list(ws.settings.cache_dir.glob(".*tmp"))
    assert sorted(p.name for p in ws.settings.cache_dir.glob("t*-*.npy")) == sorted(p.name for p in new_paths)

    Image.new("RGB", (20, 20), (9, 9, 9)).save(root / "img_0055.png")  # sorts between img_005 and img_006
    ws.import_folder()
    assert not {path.stat().st_ino for path in ws.cache_paths()} & inodes  # rows shift: a new pair, copied
    thumbs, train = ws.images()
    expected_thumbs, expected_train = fresh_caches(root, tmp_path / "again")
    np.testing.assert_array_equal(thumbs, expected_thumbs)
    np.testing.assert_array_equal(train, expected_train)


def test_a_failed_patch_leaves_no_cache_to_misread_and_the_next_read_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeler.io import chunked

    root = tmp_path / "data"
    make_colour_folder(root, per_class=4)
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    Image.new("RGB", (20, 20), (250, 250, 0)).save(root / "img_003.png")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(chunked.NpyPatch, "copy_rows", broken)
    with pytest.raises(OSError, match="No space"):
        ws.import_folder()
    monkeypatch.undo()
    assert not list(ws.settings.cache_dir.glob(".*tmp"))  # the half-patched pair is gone, under either name
    assert not [p for p in ws.cache_paths() if p.exists()]
    thumbs, train = Workspace.open(Settings(root)).images()  # built again from the files, as after a crash
    expected_thumbs, expected_train = fresh_caches(root, tmp_path)
    np.testing.assert_array_equal(thumbs, expected_thumbs)
    np.testing.assert_array_equal(train, expected_train)


def test_caches_are_memory_mapped_and_superseded_ones_removed(ws: Workspace, colour_folder: tuple[Path, dict]) -> None:
    root, _ = colour_folder
    thumbs, train = ws.images()
    assert isinstance(thumbs, np.memmap)
    assert isinstance(train, np.memmap)
    assert not thumbs.flags.writeable  # the thumbnails file can never be changed through the map
    first = {p.name for p in ws.settings.cache_dir.glob("t*-*.npy")}
    assert len(first) == 2
    Image.new("RGB", (20, 20), (1, 2, 3)).save(root / "zz.png")
    ws.import_folder()
    second = {p.name for p in ws.settings.cache_dir.glob("t*-*.npy")}
    assert len(second) == 2
    assert not first & second  # the old pair was copied from, then deleted
    assert not list(ws.settings.cache_dir.glob(".*.tmp"))
    assert not list(ws.settings.cache_dir.glob("*pending*"))


def test_caches_an_older_decoding_wrote_are_not_read_but_made_again_then_removed(
    tmp_path: Path, decodes: list[int]
) -> None:
    root = tmp_path / "data"
    make_colour_folder(root, per_class=2)
    icon = Image.new("RGB", (8, 8), (0, 0, 0))  # a PNG colour key: the black around the square is transparent
    icon.paste((200, 40, 10), (2, 2, 6, 6))
    icon.save(root / "icon.png", transparency=(0, 0, 0))
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    s, fingerprint = ws.settings, ws.fingerprint()
    row = [r.path for r in ws.records()].index("icon.png")
    # What decoding version 1 left: the same caches under its names, with the hidden black on show.
    legacy = [s.cache_dir / f"thumbs-{s.thumb_size}-{fingerprint}.npy",
              s.cache_dir / f"train-{s.train_size}-{fingerprint}.npy"]
    pictures = [np.array(picture) for picture in ws.images()]
    for path in ws.cache_paths():
        path.unlink()
    for picture, path in zip(pictures, legacy, strict=True):
        picture[row] = 0
        np.save(path, picture)
    decodes.clear()

    again = Workspace.open(Settings(root))
    thumbs, train = again.images()
    assert decodes  # decoded anew, not read from the older caches
    assert tuple(train[row][0, 0]) == (255, 255, 255)
    assert tuple(thumbs[row][s.thumb_size // 2, s.thumb_size // 2]) != (0, 0, 0)
    assert set(collect_garbage(again)) >= set(legacy)
    assert not any(path.exists() for path in legacy)


def test_decode_failure_while_building_caches_marks_the_image_unreadable(
    ws: Workspace, colour_folder: tuple[Path, dict]
) -> None:
    root, _ = colour_folder
    n = ws.image_count()
    label_target = ws.records()[3]
    ws.store.label(label_target.id, ws.classes()[0].id, "ann")
    for path in ws.cache_paths():
        path.unlink()  # caches lost (or the thumbnail size changed): the next read rebuilds them from the files
    (root / label_target.path).write_bytes(b"not a picture any more")
    survivor = ws.records()[4].path
    fresh = Workspace.open(ws.settings)
    thumbs, train = fresh.images()
    record = fresh.store.image_by_path(label_target.path)
    assert record is not None
    assert (record.status, record.reason) == ("unreadable", "not an image")
    assert fresh.store.human_labels()[label_target.id] == ws.classes()[0].id  # the label is kept
    assert len(thumbs) == len(train) == n - 1 == fresh.image_count()
    rows = [r.path for r in fresh.records()]
    assert label_target.path not in rows
    assert np.all(train.reshape(len(train), -1).any(axis=1))  # no blank row stands in for the failed image
    expected = np.asarray(Image.open(root / survivor).convert("RGB").resize((32, 32)))
    assert np.abs(train[rows.index(survivor)].astype(int) - expected).mean() < 30


def test_cancelled_import_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_colour_folder(root, per_class=4)
    ws = Workspace.open(Settings(root))
    report = import_folder(ws, should_stop=lambda: True)
    assert report.cancelled
    assert report.lines() == ["import cancelled: nothing was changed"]
    assert not ws.has_images()
    assert not [p for p in ws.settings.cache_dir.iterdir() if p.name != ".lock"]


def test_import_job_reports_progress(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_colour_folder(root, per_class=2)
    ws = Workspace.open(Settings(root))
    fractions: list[float] = []
    report = import_folder(ws, lambda f, m: fractions.append(f))
    assert report.counts["ok"] == 6
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)


def test_cheap_reads(ws: Workspace, colour_folder: tuple[Path, dict]) -> None:
    root, truth = colour_folder
    assert ws.has_images()
    assert ws.image_count() == len(truth)
    records = ws.records()
    assert ws.records() is records  # read once per images version, not once per call
    assert records == ws.store.readable_images()  # the quicker query gives the same records
    assert ws.records_page(10, 13) == records[10:13]
    fresh = Workspace.open(ws.settings)  # nothing cached yet: the page comes from the store by row
    assert fresh.records_page(10, 13) == records[10:13]
    assert fresh.records_page(len(truth) - 1, len(truth) + 5) == records[-1:]
    Image.new("RGB", (20, 20), (9, 9, 9)).save(root / "aaa.png")
    ws.import_folder()
    again = ws.records()
    assert again is not records
    assert again[0].path == "aaa.png"
    assert ws.image_count() == len(truth) + 1
    assert fresh.records()[0].path == "aaa.png"  # another Workspace (another process) sees the new version


def test_folder_names_label_only_unlabeled_images_on_a_rescan(tmp_path: Path) -> None:
    """A user trial: a re-scan with labels from folder names overwrote a label corrected by hand, and brought a
    renamed class back under its folder's name. Folder names now label only images without a label."""
    root = tmp_path / "data"
    for folder, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
        (root / folder).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 12), (colour[0], colour[1] + 10 * i, colour[2])).save(root / folder / f"{i}.png")
    ws = Workspace.open(Settings(root))
    first = ws.import_folder(labels_from_folders=True)
    assert first.folder_labels == 6
    assert first.folder_labels_kept == 0
    classes = {c.name: c.id for c in ws.store.classes()}
    pug = next(r.id for r in ws.records() if r.path == "dog/0.png")
    ws.store.set_labels([pug], classes["cat"], "alice")  # a person's correction
    ws.store.update_class(classes["cat"], name="feline")  # and a rename
    Image.new("RGB", (12, 12), (30, 200, 30)).save(root / "dog" / "new.png")
    again = ws.import_folder(labels_from_folders=True)
    assert again.folder_labels == 1  # the new file only
    assert again.folder_labels_kept == 6
    assert "1 label taken from folder names; 6 images kept the label they had" in again.summary_lines()[-1]
    labels = ws.store.human_labels()
    assert labels[pug] == classes["cat"]  # the correction stands
    assert [c.name for c in ws.store.classes()] == ["feline", "dog"]  # no class "cat" made again
    new = next(r.id for r in ws.records() if r.path == "dog/new.png")
    assert labels[new] == classes["dog"]

"""The label store: labels are committed, undoable, never lost to a concurrent writer, names are validated."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from labeler.store import SCHEMA_VERSION, ImportedImage, InvalidClassName, LabelStore, validate_class_name


def _store_with_images(tmp_path: Path, n: int = 6) -> LabelStore:
    store = LabelStore(tmp_path / "ws" / "labeler.db")
    store.sync_images([ImportedImage(f"img{i}.png", f"sha{i}", 8, 8, None) for i in range(n)], {})
    return store


def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    assert store.schema_version == SCHEMA_VERSION
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Opening again is a no-op migration that keeps the data.
    again = LabelStore(store.db_path)
    assert len(again.images()) == 6


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(RuntimeError, match="newer"):
        LabelStore(store.db_path)


def test_rows_follow_path_order_and_skip_unreadable(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labeler.db")
    store.sync_images(
        [ImportedImage("b.png", "x", 1, 1, None), ImportedImage("a.png", "y", 1, 1, None),
         ImportedImage("bad.png", None, None, None, "empty file")],
        {},
    )
    assert [(r.path, r.row) for r in store.readable_images()] == [("a.png", 0), ("b.png", 1)]
    unreadable = store.images(status="unreadable")
    assert [(r.path, r.reason, r.row) for r in unreadable] == [("bad.png", "empty file", None)]


def test_missing_images_keep_their_labels(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, 3)
    cat = store.add_class("cat")
    first = store.readable_images()[0]
    store.label(first.id, cat.id, "ann")
    counts = store.sync_images([ImportedImage("img1.png", "sha1", 8, 8, None)], {})
    assert counts["missing"] == 2
    assert store.human_labels() == {first.id: cat.id}
    # The image comes back: same id, label still there.
    store.sync_images([ImportedImage("img0.png", "sha0", 8, 8, None)], {})
    assert store.image_by_path("img0.png").status == "ok"  # type: ignore[union-attr]
    assert store.human_labels() == {first.id: cat.id}


def test_label_undo_and_history(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    cat, dog = store.add_class("cat"), store.add_class("dog")
    ids = [r.id for r in store.readable_images()]
    assert store.label(ids[0], cat.id, "ann")
    assert not store.label(ids[0], cat.id, "ann")  # idempotent
    store.label(ids[0], dog.id, "ann")
    store.set_labels(ids[1:4], cat.id, "ann")  # one bulk action
    assert store.human_labels() == {ids[0]: dog.id, ids[1]: cat.id, ids[2]: cat.id, ids[3]: cat.id}
    assert store.undo("ann") == 3  # the whole bulk action at once
    assert store.human_labels() == {ids[0]: dog.id}
    assert store.undo("ann") == 1  # dog -> cat
    assert store.human_labels() == {ids[0]: cat.id}
    assert store.undo("ann") == 1  # cat -> unlabeled
    assert store.human_labels() == {}
    assert store.undo("ann") == 0  # nothing left to undo
    kinds = [event["kind"] for event in store.history(ids[0])]
    assert kinds == ["undo", "undo", "label", "label"]  # newest first; nothing deleted


def test_undo_is_per_annotator(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    cat = store.add_class("cat")
    ids = [r.id for r in store.readable_images()]
    store.label(ids[0], cat.id, "alice")
    store.label(ids[1], cat.id, "bob")
    assert store.undo("alice") == 1
    assert store.human_labels() == {ids[1]: cat.id}


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "empty"), ("   ", "empty"), ("a\tb", "control"), ("x\x00", "control"), ("=SUM(A1)", "formula"),
     ("+1", "formula"), ("@cmd", "formula"), ("x" * 65, "at most")],
)
def test_bad_class_names_are_refused_with_a_reason(tmp_path: Path, name: str, message: str) -> None:
    store = _store_with_images(tmp_path)
    with pytest.raises(InvalidClassName, match=message):
        store.add_class(name)
    assert store.classes() == []


def test_good_class_names_are_cleaned() -> None:
    assert validate_class_name("  T-shirt/top ") == "T-shirt/top"
    assert validate_class_name("café 猫") == "café 猫"
    assert validate_class_name("-1") == "-1"


def test_label_paths_skips_bad_rows_and_keeps_good_ones(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, 3)
    changed, problems = store.label_paths(
        [("img0.png", "cat"), ("nope.png", "cat"), ("img1.png", "=evil"), ("img2.png", "dog")], "ann"
    )
    assert changed == 2
    assert [p for p, _ in problems] == ["nope.png", "img1.png"]
    assert "unknown path" in problems[0][1]
    assert "formula" in problems[1][1]
    assert [c.name for c in store.classes()] == ["cat", "dog"]
    # Idempotent: applying the same rows again changes nothing.
    assert store.label_paths([("img0.png", "cat"), ("img2.png", "dog")], "ann") == (0, [])


def _label_many(db_path: str, worker: int, n: int) -> None:
    store = LabelStore(Path(db_path))
    classes = {c.name: c.id for c in store.classes()}
    images = store.readable_images()
    for i in range(n):
        image = images[(worker * n + i) % len(images)]
        store.label(image.id, classes["a" if i % 2 else "b"], f"worker{worker}")


def test_two_processes_labeling_at_once_lose_nothing(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, 200)
    store.add_class("a")
    store.add_class("b")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_label_many, args=(str(store.db_path), w, 100)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert len(store.human_labels()) == 200  # two disjoint halves of 100, all committed
    events = store.history(limit=10_000)
    assert len(events) == 200
    assert {e["annotator"] for e in events} == {"worker0", "worker1"}


def test_audits_are_kept_apart_from_human_labels(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    cat = store.add_class("cat")
    image = store.readable_images()[0]
    before = store.labels_version()
    store.record_audit(image.id, cat.id, predicted_class_id=cat.id, confidence=0.9, annotator="ann")
    assert store.human_labels() == {}
    assert store.audits()[0]["class_id"] == cat.id
    assert store.labels_version() != before


def test_jobs_lifecycle_and_stale_jobs(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    job_id = store.create_job("train")
    store.update_job(job_id, status="running", progress=0.5, message="half")
    job = store.job(job_id)
    assert job is not None
    assert job.active
    assert job.progress == 0.5
    assert job.started_at is not None
    store.request_cancel(job_id)
    assert store.job(job_id).cancel_requested  # type: ignore[union-attr]
    assert store.fail_stale_jobs() == 1
    job = store.job(job_id)
    assert job is not None
    assert job.status == "failed"
    assert "interrupted" in (job.error or "")

"""The label store: labels are committed, undoable, never lost to a concurrent writer, names are validated."""

from __future__ import annotations

import multiprocessing
import os
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from labeler.store import (
    RESCAN_ANNOTATOR,
    SCHEMA_VERSION,
    ClassInUse,
    ClassNameTaken,
    ImportedImage,
    InvalidClassName,
    LabelStore,
    UndoConflict,
    UndoNeedsDeletedClass,
    WorkspaceNotWritable,
    validate_class_name,
)
from labeler.store.jobs import succeeded_since


def _store_with_images(tmp_path: Path, n: int = 6) -> LabelStore:
    store = LabelStore(tmp_path / "ws" / "labeler.db")
    store.sync_images([ImportedImage(f"img{i}.png", f"sha{i}", 8, 8, None) for i in range(n)], {})
    return store


def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    assert store.schema_version == SCHEMA_VERSION
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with store._connect() as conn:  # what README promises: every commit fsynced before it returns
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
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


def test_labels_follow_content_across_renames_swaps_and_replacements(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, 4)  # img0..img3 hold sha0..sha3
    cat, dog, owl = store.add_class("cat"), store.add_class("dog"), store.add_class("owl")
    ids = {r.path: r.id for r in store.images()}
    store.label(ids["img0.png"], cat.id, "alice#tab")
    store.label(ids["img1.png"], dog.id, "bob#tab")
    store.label(ids["img2.png"], owl.id, "carol#tab")
    given = store.label_details()
    counts = store.sync_images([
        ImportedImage("img1.png", "sha2", 8, 8, None),  # img1 and img2 swapped names
        ImportedImage("img2.png", "sha1", 8, 8, None),
        ImportedImage("img3.png", "sha9", 8, 8, None),  # img3 (unlabeled) replaced by another picture
        ImportedImage("renamed.png", "sha0", 8, 8, None),  # img0 renamed
    ], {})
    assert (counts["labels_moved"], counts["labels_cleared"]) == (3, 0)
    ids["renamed.png"] = store.image_by_path("renamed.png").id  # type: ignore[union-attr]
    assert store.human_labels() == {ids["renamed.png"]: cat.id, ids["img1.png"]: owl.id, ids["img2.png"]: dog.id}
    details = store.label_details()
    assert details[ids["renamed.png"]][1:] == given[ids["img0.png"]][1:]  # still alice's, from when she gave it
    assert store.image_by_path("img0.png").status == "missing"  # type: ignore[union-attr]

    counts = store.sync_images([  # img1's picture replaced by one never seen: its label described the old one
        ImportedImage("img1.png", "sha7", 8, 8, None),
        ImportedImage("img2.png", "sha1", 8, 8, None),
        ImportedImage("renamed.png", "sha0", 8, 8, None),
    ], {})
    assert (counts["labels_moved"], counts["labels_cleared"]) == (0, 1)
    assert ids["img1.png"] not in store.human_labels()
    assert store.history(image_id=ids["img1.png"], limit=1)[0]["annotator"] == RESCAN_ANNOTATOR
    assert store.undo(RESCAN_ANNOTATOR) == 1  # the old label is in the history and can be given back
    assert store.human_labels()[ids["img1.png"]] == owl.id


def test_audit_answers_follow_content_across_renames_swaps_and_replacements(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, 4)  # img0..img3 hold sha0..sha3
    cat, dog, owl = store.add_class("cat"), store.add_class("dog"), store.add_class("owl")
    ids = {r.path: r.id for r in store.images()}
    store.record_audit(ids["img0.png"], cat.id, dog.id, 0.4, "alice#tab")
    store.record_audit(ids["img1.png"], dog.id, dog.id, 0.9, "bob#tab")
    store.record_audit(ids["img2.png"], owl.id, None, None, "carol#tab")
    given = {a["image_id"]: a for a in store.audits()}
    counts = store.sync_images([
        ImportedImage("img1.png", "sha2", 8, 8, None),  # img1 and img2 swapped names
        ImportedImage("img2.png", "sha1", 8, 8, None),
        ImportedImage("img3.png", "sha9", 8, 8, None),  # img3 (not audited) replaced by another picture
        ImportedImage("renamed.png", "sha0", 8, 8, None),  # img0 renamed
    ], {})
    assert (counts["audits_moved"], counts["audits_dropped"]) == (3, 0)
    ids["renamed.png"] = store.image_by_path("renamed.png").id  # type: ignore[union-attr]
    audits = {a["image_id"]: a for a in store.audits()}
    assert {image_id: a["class_id"] for image_id, a in audits.items()} == {
        ids["renamed.png"]: cat.id, ids["img1.png"]: owl.id, ids["img2.png"]: dog.id}
    # Each answer as given: who, when, what was proposed then.
    assert {k: v for k, v in audits[ids["renamed.png"]].items() if k != "image_id"} == \
        {k: v for k, v in given[ids["img0.png"]].items() if k != "image_id"}

    counts = store.sync_images([  # img1's picture replaced by one never seen: its answer described the old one
        ImportedImage("img1.png", "sha7", 8, 8, None),
        ImportedImage("img2.png", "sha1", 8, 8, None),
    ], {})  # and renamed.png is gone: missing, its answer kept in case it comes back
    assert (counts["audits_moved"], counts["audits_dropped"]) == (0, 1)
    assert {a["image_id"]: a["class_id"] for a in store.audits()} == {
        ids["renamed.png"]: cat.id, ids["img2.png"]: dog.id}


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


def test_digit_classes_created_in_any_order_get_their_own_digit_as_key(tmp_path: Path) -> None:
    # MNIST seeds in CSV order (first appearance 7, 2, 1, 0, 4, 9, 5, 6, 3, 8): keys used to follow that order, so
    # pressing 7 on a seven stored "3" and class "8" had no key at all.
    order = ["7", "2", "1", "0", "4", "9", "5", "6", "3", "8"]
    store = _store_with_images(tmp_path, len(order))
    report = store.label_paths_report([(f"img{i}.png", name) for i, name in enumerate(order)], "ann")
    assert report.changed == 10
    assert [c.name for c in report.created] == order
    assert {c.name: c.hotkey for c in store.classes()} == {name: name for name in order}


def test_every_way_of_creating_a_class_gives_the_same_keys(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, 3)
    assert store.add_class("cat").hotkey == "1"  # not a key itself: the first free key
    assert store.add_class("1").hotkey == "2"  # its own key is taken: the next free one
    assert store.add_class("b").hotkey == "b"  # a one-letter name is its own key
    assert store.add_class("silent", hotkey="").hotkey is None  # "": no key, asked for
    assert store.add_class("dog", hotkey="x").hotkey == "x"  # a key asked for is kept
    for i in range(7):
        store.add_class(f"class {i}")  # 3-9
    assert store.add_class("tenth").hotkey == "0"  # after 1-9, then 0, then letters: as the Home form offers
    assert store.add_class("next").hotkey == "a"
    assert store.add_class("cat").hotkey == "1"  # an existing class is returned as it is
    assert store.label_paths_report([("img0.png", "cat")], "ann").created == []


def _label_many(db_path: str, worker: int, n: int) -> None:
    store = LabelStore(Path(db_path))
    classes = {c.name: c.id for c in store.classes()}
    images = store.readable_images()
    for i in range(n):
        image = images[(worker * n + i) % len(images)]
        store.label(image.id, classes["a" if i % 2 else "b"], f"worker{worker}")


@pytest.mark.usefixtures("clean_main_module")
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


def test_jobs_lifecycle(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    job_id = store.create_job("train")
    store.update_job(job_id, status="running", progress=0.5, message="half")
    job = store.job(job_id)
    assert job is not None
    assert job.active
    assert job.progress == 0.5
    assert job.started_at is not None
    assert job.owner_pid == os.getpid()
    store.request_cancel(job_id)
    assert store.job(job_id).cancel_requested  # type: ignore[union-attr]
    assert store.mark_interrupted_jobs() == 0  # this process is alive: its job is left alone
    store.update_job(job_id, status="cancelled")
    job = store.job(job_id)
    assert job is not None
    assert job.status == "cancelled"
    assert job.finished_at is not None


def test_a_failure_is_history_once_a_later_job_of_its_kind_succeeds(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    failed = store.create_job("refresh")
    store.update_job(failed, status="failed", error="NameError")
    other = store.create_job("train")
    store.update_job(other, status="done")
    recent = store.jobs(limit=5)
    failure = next(job for job in recent if job.id == failed)
    assert not succeeded_since(recent, failure)  # a later job, but of another kind
    later = store.create_job("refresh")
    store.update_job(later, status="done")
    recent = store.jobs(limit=5)
    assert succeeded_since(recent, next(job for job in recent if job.id == failed))


# ----------------------------------------------------------------------------------------------- undo, per author


def test_undo_is_refused_when_someone_relabeled_since(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    cat, dog = store.add_class("cat"), store.add_class("dog")
    ids = [r.id for r in store.readable_images()]
    store.set_labels(ids[:3], cat.id, "alice#tab1")
    store.label(ids[1], dog.id, "bob#tab7")  # bob corrects one of alice's images
    with pytest.raises(UndoConflict, match=r"1 image of that action was relabeled since by bob#tab7") as refused:
        store.undo("alice#tab1")
    assert refused.value.changed == [(ids[1], "bob#tab7", None)]
    assert store.human_labels() == {ids[0]: cat.id, ids[1]: dog.id, ids[2]: cat.id}  # nothing reverted
    # Bob takes his label back; alice's action is undoable again, and reverts only her own labels.
    assert store.undo("bob#tab7") == 1
    assert store.label_details()[ids[1]][1] == "alice#tab1"  # her label given back to her, not to bob
    assert store.undo("alice#tab1") == 3
    assert store.human_labels() == {}


def test_undo_in_one_tab_never_touches_another_tabs_labels(tmp_path: Path) -> None:
    """Random interleavings of three annotators labeling and undoing: whatever happens, an annotator's undo only
    ever changes images whose current label that annotator set, and the event log replays to the labels."""
    store = _store_with_images(tmp_path, 12)
    classes = [store.add_class(name).id for name in ("a", "b", "c")]
    ids = [r.id for r in store.readable_images()]
    rng = np.random.default_rng(0)
    annotators = ["ann#tab1", "ann#tab2", "ann#cli"]
    refused = 0
    for _ in range(300):
        who = annotators[int(rng.integers(3))]
        if rng.random() < 0.35:
            before = store.label_details()
            try:
                store.undo(who)
            except UndoConflict:
                refused += 1
                assert store.label_details() == before
                continue
            after = store.label_details()
            for image_id in set(before) | set(after):
                if before.get(image_id) != after.get(image_id) and image_id in before:
                    assert before[image_id][1] == who  # only labels this annotator had set were changed
        else:
            chosen = rng.choice(ids, size=int(rng.integers(1, 4)), replace=False)
            store.set_labels([int(i) for i in chosen], classes[int(rng.integers(3))], who)
    assert refused > 0  # the interleavings did produce conflicts
    replayed: dict[int, int] = {}
    for event in reversed(store.history(limit=100_000)):
        if event["kind"] == "undo" and event["class_id"] is None and event["prev_class_id"] is None:
            continue  # an undo marker of an action that changed nothing
        if event["class_id"] is None:
            replayed.pop(event["image_id"], None)
        else:
            replayed[event["image_id"]] = event["class_id"]
    assert replayed == store.human_labels()


def test_each_origin_undoes_its_own_actions(tmp_path: Path) -> None:
    """One tab labels on two pages: each page's undo takes back its own latest action, whatever the other page did
    since, and says what it took back; the CLI's undo (no origin) takes the latest of any."""
    store = _store_with_images(tmp_path)
    cat, dog = store.add_class("cat"), store.add_class("dog")
    ids = [r.id for r in store.readable_images()]
    tab = "alice#tab1"
    store.set_labels(ids[:3], cat.id, tab, origin="map")  # a bulk label on the map
    store.label(ids[3], dog.id, tab, origin="label")  # then a key on the Label page
    store.label(ids[4], dog.id, tab, origin="label")
    action = store.undo_action(tab, origin="map")
    assert action is not None
    assert (action.annotator, action.origin, set(action.image_ids), set(action.class_ids)) == (
        tab, "map", set(ids[:3]), {cat.id})
    assert store.human_labels() == {ids[3]: dog.id, ids[4]: dog.id}  # the Label page's labels stay
    assert store.undo_action(tab, origin="map") is None  # nothing more of the map's
    # One image's own label, not the page's latest action (the keyboard widget's undo of that image).
    action = store.undo_action(tab, origin="label", image_id=ids[3])
    assert action is not None
    assert (action.image_ids, action.class_ids) == ((ids[3],), (dog.id,))
    assert store.human_labels() == {ids[4]: dog.id}
    assert store.undo_action(tab, origin="label", image_id=ids[3]) is None  # already undone
    assert store.undo_action(tab, origin="review") is None
    assert store.undo(tab) == 1  # no origin: the latest of any
    assert store.human_labels() == {}
    assert [event["origin"] for event in store.history(ids[0])] == ["map", "map"]  # the undo keeps its origin
    with pytest.raises(ValueError, match="origin"):
        store.set_labels(ids[:1], cat.id, tab, origin="map\n")


def test_an_origins_undo_is_refused_when_the_same_tab_relabeled_elsewhere(tmp_path: Path) -> None:
    """The map's bulk label, one of its images corrected since on the Review page of the same tab: undoing the bulk
    label would overwrite the correction, so it is refused, and the message says by whom and where."""
    store = _store_with_images(tmp_path)
    cat, dog = store.add_class("cat"), store.add_class("dog")
    ids = [r.id for r in store.readable_images()]
    store.label(ids[1], dog.id, "bob#tab7")  # long ago, by someone else: not who changed it since
    store.set_labels(ids[:3], cat.id, "alice#tab1", origin="map")
    store.label(ids[1], dog.id, "alice#tab1", origin="review")
    with pytest.raises(UndoConflict, match=r"^cannot undo: 1 image of that action was relabeled since by you "
                       r"\(review\); undo would overwrite that work$") as refused:
        store.undo_action("alice#tab1", origin="map")
    assert refused.value.changed == [(ids[1], "alice#tab1", "review")]
    assert store.human_labels() == {ids[0]: cat.id, ids[1]: dog.id, ids[2]: cat.id}  # nothing reverted
    assert store.undo_action("alice#tab1", origin="review") is not None  # the correction taken back first
    assert store.undo_action("alice#tab1", origin="map") is not None
    assert store.human_labels() == {ids[1]: dog.id}  # bob's label, given back as it was


def test_annotators_are_validated(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    cat = store.add_class("cat")
    image = store.readable_images()[0].id
    for bad in ("", "   ", "a\nb"):
        with pytest.raises(ValueError, match="annotator"):
            store.label(image, cat.id, bad)
    assert store.label(image, cat.id, "alice#3f2a9c")
    assert store.label_details()[image][1] == "alice#3f2a9c"


def test_renaming_a_class_to_a_taken_name_is_a_clear_error(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    cat, dog = store.add_class("cat"), store.add_class("dog")
    with pytest.raises(ClassNameTaken, match="already called 'cat'"):
        store.update_class(dog.id, name=" cat ")
    assert [c.name for c in store.classes()] == ["cat", "dog"]
    store.update_class(cat.id, name="cat")  # its own name: fine
    store.update_class(dog.id, name="puppy")
    assert [c.name for c in store.classes()] == ["cat", "puppy"]


def test_a_class_nothing_needs_is_deleted_and_its_id_never_comes_back(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    cat, typo, dog = store.add_class("cat"), store.add_class("dgo"), store.add_class("dog")
    assert store.delete_class(typo.id).name == "dgo"
    assert [c.name for c in store.classes()] == ["cat", "dog"]
    with pytest.raises(KeyError):
        store.delete_class(typo.id)
    assert store.add_class("bird").colour not in {cat.colour, dog.colour}  # the freed colour, not dog's again
    store.delete_class(store.classes()[-1].id)
    again = store.add_class("dgo")  # the same name may come back, under a new id
    assert again.id > dog.id > typo.id
    store.delete_class(again.id)  # the largest id, deleted: still not given out again
    assert store.add_class("bird").id > again.id
    assert cat.id in {c.id for c in store.classes()}


def test_a_class_is_not_deleted_while_labeled_or_audited_and_no_undo_brings_it_back(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    image = [r.id for r in store.readable_images()]
    cat, dog = store.add_class("cat"), store.add_class("dog")
    store.set_labels(image[:2], dog.id, "alice")
    with pytest.raises(ClassInUse, match="2 images have the label dog: relabel them first"):
        store.delete_class(dog.id)
    # Relabeled, dog has no label and can go, though bob's relabel could be undone: that undo is then refused,
    # whole, and changes nothing (it would give both images a class that no longer exists).
    store.set_labels(image[:2], cat.id, "bob")
    store.delete_class(dog.id)
    assert [c.name for c in store.classes()] == ["cat"]
    with pytest.raises(UndoNeedsDeletedClass, match="cannot undo: it would give 2 images back a class deleted since"):
        store.undo_action("bob")
    assert store.human_labels() == {image[0]: cat.id, image[1]: cat.id}
    with pytest.raises(UndoConflict):  # the pages and the CLI catch it as any refused undo
        store.undo_action("bob")
    # alice's action gave dog: her images were relabeled since, so her undo is refused as ever.
    with pytest.raises(UndoConflict, match="relabeled since"):
        store.undo_action("alice")
    # An audit answer is kept as given: its class stays.
    bird = store.add_class("bird")
    store.record_audit(image[3], bird.id, None, None, "carol")
    with pytest.raises(ClassInUse, match="1 blind audit answer names bird"):
        store.delete_class(bird.id)
    assert [c.name for c in store.classes()] == ["cat", "bird"]


# ----------------------------------------------------------------------------------------------- schema and disk


def test_a_schema_1_workspace_is_migrated_and_keeps_its_labels(tmp_path: Path) -> None:
    from labeler.store import database

    db = tmp_path / "labeler.db"
    with sqlite3.connect(db) as conn:  # what the first release wrote: no owner columns on jobs
        jobs_1 = (
            "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
            "status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', error TEXT, "
            "cancel_requested INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, started_at REAL, "
            "finished_at REAL);"
        )
        schema_1 = re.sub(r"CREATE TABLE IF NOT EXISTS jobs \(.*?\n\);", jobs_1, database._SCHEMA, flags=re.S)
        schema_1 = re.sub(r"\n\s*prev_(annotator|labeled_at) [^\n]*", "", schema_1)
        schema_1 = re.sub(r",\n\s*origin TEXT [^\n]*", "", schema_1)
        conn.executescript(schema_1)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO images(path, status, row) VALUES ('a.png', 'ok', 0)")
        conn.execute("INSERT INTO classes(name, created_at) VALUES ('cat', 0)")
        conn.execute("INSERT INTO labels VALUES (1, 1, 'ann', 0)")
        conn.execute("INSERT INTO jobs(kind, status, created_at) VALUES ('train', 'running', 0)")
        columns = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
        assert "owner_pid" not in columns
    store = LabelStore(db)
    assert store.schema_version == SCHEMA_VERSION
    assert store.human_labels() == {1: 1}
    assert [job.status for job in store.jobs()] == ["interrupted"]  # no owner: left by the old version


def test_a_schema_2_workspace_is_migrated_and_its_labels_stay_undoable(tmp_path: Path) -> None:
    """Events written before actions had an origin stay undoable by their annotator (the CLI's way), not by a page."""
    from labeler.store import database

    db = tmp_path / "labeler.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(re.sub(r",\n\s*origin TEXT [^\n]*", "", database._SCHEMA))
        conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        conn.execute("INSERT INTO images(path, status, row) VALUES ('a.png', 'ok', 0)")
        conn.execute("INSERT INTO classes(name, created_at) VALUES ('cat', 0)")
        conn.execute("INSERT INTO labels VALUES (1, 1, 'ann', 0)")
        conn.execute("INSERT INTO events(batch, kind, image_id, class_id, annotator, at) VALUES (1, 'label', 1, 1, "
                     "'ann', 0)")
    store = LabelStore(db)
    assert store.schema_version == SCHEMA_VERSION
    assert store.undo_action("ann", origin="label") is None
    assert store.undo("ann") == 1
    assert store.human_labels() == {}


def test_a_read_only_database_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path)
    cat = store.add_class("cat")
    ids = [r.id for r in store.readable_images()]
    store.label(ids[0], cat.id, "ann")
    read_only = LabelStore(store.db_path)
    read_only.db_path = Path(f"file:{store.db_path}?mode=ro")  # the same file, opened read-only by SQLite

    def connect_read_only(*args: object, **kwargs: object) -> sqlite3.Connection:
        return _connect(str(read_only.db_path), timeout=1, isolation_level=None, uri=True)

    _connect = sqlite3.connect
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", connect_read_only)
        with pytest.raises(WorkspaceNotWritable, match="read-only or the disk is full"):
            read_only.label(ids[1], cat.id, "ann")
    assert store.human_labels() == {ids[0]: cat.id}


def test_a_workspace_that_cannot_be_created_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(WorkspaceNotWritable, match=r"--workspace OTHER_DIR"):
        LabelStore(tmp_path / "data" / ".labeler" / "labeler.db")


def _as_if_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sqlite3 open databases as in a read-only folder: a plain open of a WAL database fails (it cannot make
    the -shm file), one read-only by URI works."""
    connect = sqlite3.connect

    def read_only_folder(database: str | Path, *args: object, **kwargs: object) -> sqlite3.Connection:
        if not kwargs.get("uri"):
            raise sqlite3.OperationalError("unable to open database file")
        return connect(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", read_only_folder)


def test_a_read_only_workspace_can_still_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`labeler status` and an export elsewhere only read: a workspace that cannot be written opens read-only
    (it was refused with "cannot write the label database"), and every write still says why it cannot be made."""
    store = _store_with_images(tmp_path)
    cat = store.add_class("cat")
    ids = [r.id for r in store.readable_images()]
    store.label(ids[0], cat.id, "ann")
    _as_if_read_only(monkeypatch)
    reader = LabelStore(store.db_path)
    assert reader.read_only is not None
    assert reader.human_labels() == {ids[0]: cat.id}
    assert [c.name for c in reader.classes()] == ["cat"]
    with pytest.raises(WorkspaceNotWritable, match="read-only or the disk is full"):
        reader.label(ids[1], cat.id, "ann")
    monkeypatch.undo()
    assert LabelStore(store.db_path).read_only is None
    assert store.human_labels() == {ids[0]: cat.id}


def test_a_read_only_workspace_of_an_older_schema_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store_with_images(tmp_path)
    store.set_meta("schema_version", str(SCHEMA_VERSION - 1))  # would need a migration: a write
    _as_if_read_only(monkeypatch)
    with pytest.raises(WorkspaceNotWritable, match="cannot write the label database"):
        LabelStore(store.db_path)

"""Images, classes, human labels and audits: the label store (SQLite, WAL), source of truth of a workspace.

Every label is committed when it is made, inside a ``BEGIN IMMEDIATE`` transaction, so two processes labeling at
once serialise on the database lock instead of overwriting each other. Human labels live in an append-only event
log; the ``labels`` table is the current state derived from it in the same transaction, and undo appends events
rather than deleting any.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labeler.store.classes import (
    ClassInUse,
    ClassNameTaken,
    InvalidClassName,
    auto_hotkey,
    next_free_colour,
    validate_class_name,
)
from labeler.store.jobs import JobTable

MAX_ANNOTATOR_LENGTH = 200
# The largest id a deleted class had (meta): no new class is given it or a smaller one.
DELETED_CLASS_ID_KEY = "deleted_class_id_high"
# Who moves labels when a re-scan finds their content under another name (``labeler undo --annotator`` takes it).
RESCAN_ANNOTATOR = "labeler#rescan"
# Meta key of the human labels a person kept although their neighbourhood contradicts them: {image id: class id}.
KEPT_LABELS_KEY = "kept_suspect_labels"
# labels_version = last event id * this + number of audits.
_AUDITS_PER_VERSION = 1_000_003


class UndoConflict(Exception):
    """Undo refused: images of the action were changed since (``changed``: (image id, by whom, where), the latest
    change of each). ``undoer`` is who asked: a change of theirs reads "by you", with the page it came from."""

    def __init__(self, batch: int, changed: Sequence[tuple[int, str | None, str | None]],
                 undoer: str | None = None) -> None:
        self.batch = batch
        self.changed = list(changed)
        self.undoer = undoer
        who = sorted({
            (f"you ({where})" if where else "you") if by == undoer else by
            for _, by, where in self.changed if by
        })
        by = f" by {', '.join(who)}" if who else ""
        count = len(self.changed)
        theirs = "that" if not who or all(name.startswith("you") for name in who) else "their"
        super().__init__(
            f"cannot undo: {count} image{'s' if count != 1 else ''} of that action "
            f"{'were' if count != 1 else 'was'} relabeled since{by}; undo would overwrite {theirs} work"
        )


class UndoNeedsDeletedClass(UndoConflict):
    """Undo refused: it would give images back a label of a class deleted since (:meth:`LabelStore.delete_class`).
    Nothing is changed, so no label is lost; ``changed`` holds the images (id, None, None)."""

    def __init__(self, batch: int, image_ids: Sequence[int], undoer: str | None = None) -> None:
        Exception.__init__(self, (
            f"cannot undo: it would give {len(image_ids)} image{'s' if len(image_ids) != 1 else ''} back a class "
            "deleted since"
        ))
        self.batch, self.changed, self.undoer = batch, [(int(i), None, None) for i in image_ids], undoer


def validate_annotator(annotator: str) -> str:
    """An annotator is any non-empty text without control characters, e.g. ``"alice#tab-3f2a"`` for one browser
    tab of alice, or ``"alice#cli"``; undo is scoped to the exact string."""
    if not isinstance(annotator, str) or not annotator.strip():
        raise ValueError("an annotator must be non-empty text")
    if len(annotator) > MAX_ANNOTATOR_LENGTH or any(ord(char) < 32 or ord(char) == 127 for char in annotator):
        raise ValueError(f"annotator {annotator[:40]!r} is too long or contains control characters")
    return annotator


def validate_origin(origin: str | None) -> str | None:
    """Where an action was made: None (the CLI, a re-scan) or a short name without control characters, e.g. the
    app's page ``"map"``; undo can be scoped to it, so that each page undoes its own actions."""
    if origin is None:
        return None
    if not isinstance(origin, str) or not origin.strip() or len(origin) > 40 or not origin.isprintable():
        raise ValueError(f"an origin is a short name, like 'map', not {str(origin)[:40]!r}")
    return origin


@dataclass(frozen=True)
class LabelAction:
    """One label action of the event log (one event batch): who made it, where, and the labels it left.

    ``image_ids``: the images whose label it changed, the last one changed first; ``class_ids``: the class it left
    on each (None: it took the label off).
    """

    batch: int
    annotator: str
    origin: str | None
    image_ids: tuple[int, ...]
    class_ids: tuple[int | None, ...]


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str
    sha256: str | None
    width: int | None
    height: int | None
    status: str
    reason: str | None
    duplicate_of: str | None
    row: int | None


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    colour: str
    hotkey: str | None


@dataclass(frozen=True)
class PathLabels:
    """What :meth:`LabelStore.label_paths_report` did: labels changed, rows skipped (path, why), classes created."""

    changed: int
    problems: list[tuple[str, str]]
    created: list[ClassInfo]
    kept: int = 0  # with keep_labeled: images that had a label and kept it


@dataclass(frozen=True)
class ImportedImage:
    """What ingestion found for one file (the store's input; decoupled from the decoder)."""

    path: str
    sha256: str | None
    width: int | None
    height: int | None
    error: str | None


class LabelStore(JobTable):
    """Images, classes, human labels (an event log with undo) and audits of one workspace.

    Cheap to create; opens a connection per operation, which keeps the store safe to use from Streamlit's script
    threads, background job threads and other processes at once.
    """

    # ------------------------------------------------------------------ images
    def sync_images(self, found: Sequence[ImportedImage], duplicates: Mapping[str, str]) -> dict[str, int]:
        """Record the result of a scan. Images no longer found are marked missing; their labels are kept.

        Labels and blind audit answers follow content (see :meth:`_labels_follow_content`): one whose picture is
        now under another name moves there, and a file replaced by another picture under the same name loses it.
        Readable images get ``row`` numbers 0..n-1 in path order: the row order of every cache and embedding.
        Returns counts: ``added`` (of which ``added_unreadable``), ``updated``, ``missing`` (newly),
        ``unreadable``, ``ok``, ``labels_moved``, ``labels_cleared``, ``audits_moved`` and ``audits_dropped``.
        """
        now_paths = {item.path for item in found}
        counts = {"added": 0, "added_unreadable": 0, "updated": 0, "missing": 0, "unreadable": 0, "ok": 0}
        with self._write() as conn:
            known = {row["path"]: row for row in conn.execute("SELECT * FROM images")}
            for item in found:
                status = "unreadable" if item.error else "ok"
                counts[status] += 1
                values = (item.sha256, item.width, item.height, status, item.error, duplicates.get(item.path))
                if item.path in known:
                    counts["updated"] += int(known[item.path]["sha256"] != item.sha256)
                    conn.execute(
                        "UPDATE images SET sha256=?, width=?, height=?, status=?, reason=?, duplicate_of=? "
                        "WHERE path=?",
                        (*values, item.path),
                    )
                else:
                    counts["added"] += 1
                    counts["added_unreadable"] += int(status == "unreadable")
                    conn.execute(
                        "INSERT INTO images(path, sha256, width, height, status, reason, duplicate_of) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (item.path, *values),
                    )
            for path in known:
                if path not in now_paths:
                    counts["missing"] += int(known[path]["status"] != "missing")  # newly missing only
                    conn.execute("UPDATE images SET status='missing', row=NULL WHERE path=?", (path,))
            counts["labels_moved"], counts["labels_cleared"] = self._labels_follow_content(conn, known)
            counts["audits_moved"], counts["audits_dropped"] = self._audits_follow_content(conn, known)
            _renumber_rows(conn)
            _bump_images_version(conn)  # the set and order of readable images may have changed
        return counts

    def _labels_follow_content(self, conn: sqlite3.Connection, before: Mapping[str, sqlite3.Row]) -> tuple[int, int]:
        """After a scan, keep each human label on the picture it was given to; returns (moved, cleared).

        A label is displaced when its image's file is gone (missing) or holds another picture now (replaced under
        the same name). It moves to a readable image that now holds its picture (same content hash) and has no
        label of its own (a renamed or moved file; renames that swap names too). A replaced file whose old picture
        is nowhere loses its label: it described another picture. A missing file whose picture is nowhere keeps
        its label, in case it comes back. Every change is one event batch by :data:`RESCAN_ANNOTATOR`, so the
        history keeps the old labels and ``labeler undo --annotator labeler#rescan`` gives them back.
        """
        labels = {row["image_id"]: row for row in conn.execute("SELECT * FROM labels")}
        moves, cleared = _content_moves(conn, before, "labels", set(labels))
        if not moves and not cleared:
            return 0, 0
        batch, when = self._next_batch(conn), time.time()
        for image_id in [*moves, *cleared]:  # first take every displaced label off, so that swapped names work
            self._apply(conn, batch, "unlabel", image_id, None, RESCAN_ANNOTATOR, when)
        for image_id, target in moves.items():
            label = labels[image_id]  # given back with who set it and when
            self._apply(conn, batch, "label", target, label["class_id"], RESCAN_ANNOTATOR, when,
                        restore=(label["annotator"], label["labeled_at"]))
        return len(moves), len(cleared)

    @staticmethod
    def _audits_follow_content(conn: sqlite3.Connection, before: Mapping[str, sqlite3.Row]) -> tuple[int, int]:
        """After a scan, keep each blind audit answer on the picture it was given for; returns (moved, dropped).

        The same rule as for labels (:meth:`_labels_follow_content`): an answer moves with its picture to a
        renamed or moved file, and is dropped from a file that now holds another picture (it said what the old
        picture showed, and would count for or against the new one's label); a missing file keeps its answer.
        """
        audits = {row["image_id"]: dict(row) for row in conn.execute("SELECT * FROM audits")}
        moves, dropped = _content_moves(conn, before, "audits", set(audits))
        for image_id in [*moves, *dropped]:  # all off first, so that swapped names work
            conn.execute("DELETE FROM audits WHERE image_id = ?", (image_id,))
        for image_id, target in moves.items():
            answer = {**audits[image_id], "image_id": target}  # as given: who, when, what was proposed then
            conn.execute(
                "INSERT INTO audits(image_id, class_id, predicted_class_id, confidence, annotator, audited_at) "
                "VALUES (:image_id, :class_id, :predicted_class_id, :confidence, :annotator, :audited_at)", answer,
            )
        return len(moves), len(dropped)

    def images(self, status: str | None = None) -> list[ImageRecord]:
        """All images (or those with one status), readable ones in row order, then the rest by path.

        Built from plain tuples: twice as fast at 100,000 images as ``sqlite3.Row`` to dict to keyword arguments.
        """
        columns = ", ".join(field.name for field in dataclasses.fields(ImageRecord))
        query = f"SELECT {columns} FROM images"
        params: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            params = (status,)
        query += " ORDER BY row IS NULL, row, path"
        with self._connect() as conn:
            conn.row_factory = None
            return [ImageRecord(*row) for row in conn.execute(query, params)]

    def readable_images(self) -> list[ImageRecord]:
        """Images with a cache row, in row order (index i is row i)."""
        return self.images(status="ok")

    def image_by_path(self, path: str) -> ImageRecord | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM images WHERE path = ?", (path,)).fetchone()
        return ImageRecord(**dict(row)) if row else None

    # ------------------------------------------------------------------ classes
    def add_class(self, name: str, colour: str | None = None, hotkey: str | None = None) -> ClassInfo:
        """Create a class (or return the existing one of that name). Raises InvalidClassName.

        ``hotkey`` None: the key :func:`~labeler.store.classes.auto_hotkey` gives (its own name when that is a
        free key, else the next free one); "": no key.
        """
        name = validate_class_name(name)
        with self._write() as conn:
            return self._ensure_class(conn, name, colour, hotkey)[0]

    def _ensure_class(
        self, conn: sqlite3.Connection, name: str, colour: str | None = None, hotkey: str | None = None
    ) -> tuple[ClassInfo, bool]:
        """(the class named ``name``, whether it was created now); see :meth:`add_class`."""
        row = conn.execute("SELECT * FROM classes WHERE name = ?", (name,)).fetchone()
        if row is None:
            existing = conn.execute("SELECT hotkey, colour FROM classes").fetchall()
            colour = colour or next_free_colour([r["colour"] for r in existing])
            if hotkey is None:  # inside the write transaction: two classes created at once never share a key
                hotkey = auto_hotkey([r["hotkey"] for r in existing], name)
            # A new id, never one of a deleted class: the label history and saved propagations still name those
            # ids, and must not come to name the new class.
            new_id = 1 + int(conn.execute(
                "SELECT MAX(COALESCE((SELECT MAX(id) FROM classes), 0), "
                "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0))", (DELETED_CLASS_ID_KEY,)
            ).fetchone()[0])
            conn.execute(
                "INSERT INTO classes(id, name, colour, hotkey, created_at) VALUES (?, ?, ?, ?, ?)",
                (new_id, name, colour, hotkey or None, time.time()),
            )
            return ClassInfo(new_id, name, colour, hotkey or None), True
        return ClassInfo(row["id"], row["name"], row["colour"], row["hotkey"]), False

    def update_class(self, class_id: int, *, name: str | None = None, colour: str | None = None,
                     hotkey: str | None = None) -> None:
        """Rename or recolour a class, or change its key. Raises :class:`ClassNameTaken` when another class
        already has the new name, :class:`InvalidClassName` when the name is refused."""
        with self._write() as conn:
            if name is not None:
                name = validate_class_name(name)
                other = conn.execute("SELECT id FROM classes WHERE name=? AND id<>?", (name, class_id)).fetchone()
                if other is not None:
                    raise ClassNameTaken(f"another class is already called {name!r}; choose another name")
                conn.execute("UPDATE classes SET name=? WHERE id=?", (name, class_id))
            if colour is not None:
                conn.execute("UPDATE classes SET colour=? WHERE id=?", (colour, class_id))
            if hotkey is not None:
                conn.execute("UPDATE classes SET hotkey=? WHERE id=?", (hotkey or None, class_id))

    def delete_class(self, class_id: int) -> ClassInfo:
        """Delete a class no image has as its label and no blind audit answer names, e.g. one added by a typo;
        returns it. Raises :class:`ClassInUse`, saying why, otherwise, and KeyError when there is no such class.

        The label history keeps naming it: an undo that would give an image its label back is refused
        (:class:`UndoNeedsDeletedClass`) and changes nothing. Its id is never given to another class, so that
        history never names another.
        """
        with self._write() as conn:
            row = conn.execute("SELECT * FROM classes WHERE id = ?", (int(class_id),)).fetchone()
            if row is None:
                raise KeyError(f"no class with id {class_id}")
            name = row["name"]
            labeled = int(conn.execute("SELECT COUNT(*) FROM labels WHERE class_id = ?", (class_id,)).fetchone()[0])
            if labeled:
                raise ClassInUse(f"{labeled:,} image{'' if labeled == 1 else 's'} {'has' if labeled == 1 else 'have'} "
                                 f"the label {name}: relabel {'it' if labeled == 1 else 'them'} first, then delete "
                                 "the class")
            audited = int(conn.execute("SELECT COUNT(*) FROM audits WHERE class_id = ?", (class_id,)).fetchone()[0])
            if audited:
                one = audited == 1
                raise ClassInUse(f"{audited:,} blind audit answer{'' if one else 's'} name{'s' if one else ''} {name}: "
                                 "answers are kept as given, so the class stays")
            conn.execute("DELETE FROM classes WHERE id = ?", (class_id,))
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (DELETED_CLASS_ID_KEY, str(int(class_id))),
            )
            return ClassInfo(row["id"], name, row["colour"], row["hotkey"])

    def empty_classes_first_used_in(self, batch: int) -> list[ClassInfo]:
        """Classes with no human label and no blind audit answer now whose first label event is in ``batch``: e.g.
        a class a CSV's typo made, once that batch is undone (the label history still names them)."""
        with self._connect() as conn:
            return [
                ClassInfo(r["id"], r["name"], r["colour"], r["hotkey"])
                for r in conn.execute(
                    "SELECT * FROM classes c WHERE NOT EXISTS (SELECT 1 FROM labels WHERE class_id = c.id) "
                    "AND NOT EXISTS (SELECT 1 FROM audits WHERE class_id = c.id) "
                    "AND (SELECT batch FROM events WHERE class_id = c.id ORDER BY id LIMIT 1) = ? ORDER BY c.id",
                    (int(batch),),
                )
            ]

    def classes(self) -> list[ClassInfo]:
        """Classes in creation order; a class's position in this list is its column in propagation output."""
        with self._connect() as conn:
            return [
                ClassInfo(r["id"], r["name"], r["colour"], r["hotkey"])
                for r in conn.execute("SELECT * FROM classes ORDER BY id")
            ]

    # ------------------------------------------------------------------ human labels
    def _next_batch(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM events").fetchone()[0])

    def _apply(self, conn: sqlite3.Connection, batch: int, kind: str, image_id: int, class_id: int | None,
               annotator: str, now: float, undoes: int | None = None,
               restore: tuple[str | None, float | None] | None = None, origin: str | None = None) -> bool:
        """Set one image's label and log the event; ``restore`` (undo): the (annotator, time) the label is given
        back with; ``origin``: where the action was made. Returns whether anything changed."""
        row = conn.execute("SELECT class_id, annotator, labeled_at FROM labels WHERE image_id = ?",
                           (image_id,)).fetchone()
        previous = row["class_id"] if row else None
        if previous == class_id:
            return False  # idempotent: labeling an image with the label it has records nothing
        if class_id is None:
            conn.execute("DELETE FROM labels WHERE image_id = ?", (image_id,))
        else:
            by, at = restore if restore is not None else (annotator, now)
            conn.execute(
                "INSERT OR REPLACE INTO labels(image_id, class_id, annotator, labeled_at) VALUES (?, ?, ?, ?)",
                (image_id, class_id, by or annotator, at if at is not None else now),
            )
        conn.execute(
            "INSERT INTO events(batch, kind, image_id, class_id, prev_class_id, prev_annotator, prev_labeled_at, "
            "undoes_batch, annotator, at, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (batch, kind, image_id, class_id, previous, row["annotator"] if row else None,
             row["labeled_at"] if row else None, undoes, annotator, now, origin),
        )
        return True

    def set_labels(self, image_ids: Iterable[int], class_id: int | None, annotator: str,
                   origin: str | None = None) -> int:
        """Label (or, with ``class_id=None``, unlabel) images as one undoable action made at ``origin`` (a page of
        the app, see :meth:`undo_action`). Returns how many changed."""
        image_ids = list(dict.fromkeys(int(i) for i in image_ids))
        annotator = validate_annotator(annotator)
        origin = validate_origin(origin)
        now = time.time()
        with self._write() as conn:
            exists = conn.execute("SELECT 1 FROM classes WHERE id=?", (class_id,)).fetchone()
            if class_id is not None and exists is None:
                raise KeyError(f"no class with id {class_id}")
            batch = self._next_batch(conn)
            kind = "label" if class_id is not None else "unlabel"
            return sum(self._apply(conn, batch, kind, i, class_id, annotator, now, origin=origin) for i in image_ids)

    def label(self, image_id: int, class_id: int, annotator: str, origin: str | None = None) -> bool:
        return self.set_labels([image_id], class_id, annotator, origin) == 1

    def label_paths(self, rows: Iterable[tuple[str, str]], annotator: str) -> tuple[int, list[tuple[str, str]]]:
        """Apply (path, class name) rows as one action; creates missing classes.

        Rows whose path is unknown or whose class name is refused are skipped and returned with the reason;
        the good rows still land. Returns (number of labels changed, [(path, reason), ...]); see
        :meth:`label_paths_report` for the classes it created too.
        """
        report = self.label_paths_report(rows, annotator)
        return report.changed, report.problems

    def label_paths_report(self, rows: Iterable[tuple[str, str]], annotator: str, *,
                           keep_labeled: bool = False) -> PathLabels:
        """:meth:`label_paths`, also saying which classes it created (a typo in a CSV makes a new class: the
        caller says so). ``keep_labeled``: images that already have a label keep it (labels read from folder names
        on a re-scan never overwrite a person's correction), counted as ``kept``."""
        problems: list[tuple[str, str]] = []
        created: list[ClassInfo] = []
        annotator = validate_annotator(annotator)
        now = time.time()
        changed = kept = 0
        with self._write() as conn:
            batch = self._next_batch(conn)
            ids = {r["path"]: (r["id"], r["status"]) for r in conn.execute("SELECT id, path, status FROM images")}
            labeled = {r["image_id"] for r in conn.execute("SELECT image_id FROM labels")} if keep_labeled else set()
            for path, name in rows:
                if path not in ids:
                    problems.append((path, "unknown path (not imported)"))
                    continue
                if ids[path][1] != "ok":
                    problems.append((path, f"image is {ids[path][1]}"))
                    continue
                if ids[path][0] in labeled:
                    kept += 1
                    continue
                try:
                    info, new = self._ensure_class(conn, validate_class_name(name))
                except InvalidClassName as error:
                    problems.append((path, str(error)))
                    continue
                if new:
                    created.append(info)
                changed += self._apply(conn, batch, "label", ids[path][0], info.id, annotator, now)
        return PathLabels(changed, problems, created, kept)

    def undo(self, annotator: str) -> int:
        """Revert ``annotator``'s most recent label action not yet undone; returns how many images it reverted.

        See :meth:`undo_action`.
        """
        action = self.undo_action(annotator)
        return len(action.image_ids) if action is not None else 0

    def undo_action(self, annotator: str, *, origin: str | None = None,
                    image_id: int | None = None) -> LabelAction | None:
        """Revert ``annotator``'s most recent label action not yet undone; returns that action (None: none left).

        ``origin`` narrows it to the actions made there (a page of the app undoes only its own: the Map's Undo
        never reverts a label made on the Label page of the same tab); ``image_id`` to the actions that changed
        that image (the keyboard widget's undo of one image). None: any.

        Undo only ever touches the annotator's own action (each browser tab and each CLI batch has its own
        annotator string). When any of its images has been relabeled since (by someone else, or by the annotator
        elsewhere), nothing is reverted and :class:`UndoConflict` says which, by whom and where; the action stays
        undoable once those labels are back.
        """
        annotator = validate_annotator(annotator)
        origin = validate_origin(origin)
        now = time.time()
        narrow = ""
        params: list[object] = [annotator]
        if origin is not None:
            narrow += " AND origin = ?"
            params.append(origin)
        if image_id is not None:
            narrow += " AND image_id = ?"
            params.append(int(image_id))
        with self._write() as conn:
            target = conn.execute(
                "SELECT MAX(batch) FROM events WHERE kind IN ('label', 'unlabel') AND annotator = ?" + narrow
                + " AND batch NOT IN (SELECT undoes_batch FROM events WHERE kind = 'undo' AND undoes_batch IS NOT "
                "NULL)",
                params,
            ).fetchone()[0]
            if target is None:
                return None
            # Newest first: applying each event's previous label in turn leaves every image as it was before the
            # action, and the first event seen per image is the label the action left it with.
            events = conn.execute(
                "SELECT e.id, e.image_id, e.class_id, e.prev_class_id, e.prev_annotator, e.prev_labeled_at, "
                "e.origin, l.class_id AS now, l.annotator AS now_by "
                "FROM events e LEFT JOIN labels l ON l.image_id = e.image_id WHERE e.batch = ? ORDER BY e.id DESC",
                (target,),
            ).fetchall()
            left: dict[int, Any] = {}
            for event in events:
                left.setdefault(event["image_id"], event)
            # Changed since: another label now, or the same label set again by someone else (theirs to keep).
            changed = [
                image_id for image_id, e in left.items()
                if e["now"] != e["class_id"] or (e["now"] is not None and e["now_by"] != annotator)
            ]
            if changed:
                raise UndoConflict(target, [(i, *_changed_by(conn, i, events[0]["id"])) for i in changed], annotator)
            classes = {int(r["id"]) for r in conn.execute("SELECT id FROM classes")}
            gone = sorted({e["image_id"] for e in events
                           if e["prev_class_id"] is not None and int(e["prev_class_id"]) not in classes})
            if gone:
                raise UndoNeedsDeletedClass(target, gone, annotator)
            where = events[0]["origin"]
            batch = self._next_batch(conn)
            for event in events:
                self._apply(conn, batch, "undo", event["image_id"], event["prev_class_id"], annotator, now,
                            undoes=target, restore=(event["prev_annotator"], event["prev_labeled_at"]), origin=where)
            if not conn.execute("SELECT 1 FROM events WHERE batch=?", (batch,)).fetchone():
                # Nothing to change: still record the undo, so the same action is not undone twice.
                conn.execute(
                    "INSERT INTO events(batch, kind, image_id, class_id, prev_class_id, undoes_batch, annotator, at, "
                    "origin) VALUES (?, 'undo', ?, NULL, NULL, ?, ?, ?, ?)",
                    (batch, events[0]["image_id"], target, annotator, now, where),
                )
            return LabelAction(target, annotator, where, tuple(left), tuple(e["class_id"] for e in left.values()))

    def human_labels(self) -> dict[int, int]:
        """{image id: class id} for every human label."""
        with self._connect() as conn:
            return {r["image_id"]: r["class_id"] for r in conn.execute("SELECT image_id, class_id FROM labels")}

    def label_details(self) -> dict[int, tuple[int, str, float]]:
        """{image id: (class id, annotator, labeled_at)}."""
        with self._connect() as conn:
            return {
                r["image_id"]: (r["class_id"], r["annotator"], r["labeled_at"])
                for r in conn.execute("SELECT * FROM labels")
            }

    def history(self, image_id: int | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Events, newest first (of one image if given)."""
        query = "SELECT * FROM events"
        params: tuple[Any, ...] = ()
        if image_id is not None:
            query += " WHERE image_id = ?"
            params = (image_id,)
        query += " ORDER BY id DESC LIMIT ?"
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(query, (*params, limit))]

    def labels_version(self) -> int:
        """A number that changes whenever human labels or audits change (for cache keys and polling)."""
        with self._connect() as conn:
            events = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            audits = conn.execute("SELECT COUNT(*), COALESCE(MAX(audited_at), 0) FROM audits").fetchone()
        return int(events) * _AUDITS_PER_VERSION + int(audits[0])

    @staticmethod
    def audits_in_version(version: int) -> int:
        """How many blind audits the store held at :meth:`labels_version` ``version``."""
        return int(version) % _AUDITS_PER_VERSION

    # ------------------------------------------------------------------ suspect labels a person kept
    def keep_label(self, image_id: int, class_id: int) -> None:
        """Record that a person checked a human label its neighbourhood contradicts and kept it: it is not flagged
        again (in the app or the export) while the image keeps that class."""
        with self._write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (KEPT_LABELS_KEY,)).fetchone()
            kept = json.loads(row["value"]) if row else {}
            kept[str(int(image_id))] = int(class_id)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (KEPT_LABELS_KEY, json.dumps(kept)))

    def kept_labels(self) -> dict[int, int]:
        """{image id: class id} of the human labels kept by :meth:`keep_label`."""
        value = self.get_meta(KEPT_LABELS_KEY)
        return {int(image_id): int(class_id) for image_id, class_id in json.loads(value).items()} if value else {}

    # ------------------------------------------------------------------ audits
    def record_audit(self, image_id: int, class_id: int, predicted_class_id: int | None,
                     confidence: float | None, annotator: str) -> None:
        """A blind audit answer. Kept apart from human labels: audits are never propagation seeds."""
        annotator = validate_annotator(annotator)
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO audits(image_id, class_id, predicted_class_id, confidence, annotator, "
                "audited_at) VALUES (?, ?, ?, ?, ?, ?)",
                (image_id, class_id, predicted_class_id, confidence, annotator, time.time()),
            )

    def audits(self) -> list[dict[str, Any]]:
        with self._connect() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM audits ORDER BY audited_at")]
    # ------------------------------------------------------------------ cheap reads at scale; cache failures
    def images_version(self) -> int:
        """A number that changes whenever the set or order of readable images may have changed (one indexed read).

        Bumped in the same transaction by :meth:`sync_images` (every import) and by :meth:`mark_unreadable`.
        """
        return int(self.get_meta("images_version") or 0)

    def count_images(self, status: str | None = "ok") -> int:
        """How many images have ``status`` (all images when None), without loading them."""
        with self._connect() as conn:
            if status is None:
                return int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
            return int(conn.execute("SELECT COUNT(*) FROM images WHERE status = ?", (status,)).fetchone()[0])

    def images_in_rows(self, lo: int, hi: int) -> list[ImageRecord]:
        """Readable images with ``lo <= row < hi``, in row order (one page of a grid)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM images WHERE row >= ? AND row < ? AND status = 'ok' ORDER BY row", (lo, hi)
            )
            return [ImageRecord(**dict(row)) for row in rows]

    def mark_unreadable(self, reasons: Mapping[str, str]) -> int:
        """Mark readable images (``{path: reason}``) unreadable, e.g. when decoding fails while caches are built.

        Their labels are kept; rows are renumbered. Returns how many images changed.
        """
        with self._write() as conn:
            changed = 0
            for path, reason in reasons.items():
                cursor = conn.execute(
                    "UPDATE images SET status='unreadable', reason=?, row=NULL WHERE path=? AND status='ok'",
                    (reason, path),
                )
                changed += cursor.rowcount
            if changed:
                _renumber_rows(conn)
                _bump_images_version(conn)
            return changed


def _bump_images_version(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('images_version', '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
    )


def _changed_by(conn: sqlite3.Connection, image_id: int, after: int) -> tuple[str | None, str | None]:
    """(who, where) made the latest change of the image's label after event ``after`` (undo markers, which change
    nothing, left out)."""
    row = conn.execute(
        "SELECT annotator, origin FROM events WHERE image_id=? AND id>? "
        "AND (class_id IS NOT NULL OR prev_class_id IS NOT NULL) ORDER BY id DESC LIMIT 1", (image_id, after)
    ).fetchone()
    return (row["annotator"], row["origin"]) if row else (None, None)


def _renumber_rows(conn: sqlite3.Connection) -> None:
    """Readable images get rows 0..n-1 in path order: the row order of every cache and embedding."""
    ok_ids = [r["id"] for r in conn.execute("SELECT id FROM images WHERE status='ok' ORDER BY path")]
    conn.execute("UPDATE images SET row = NULL")
    conn.executemany("UPDATE images SET row=? WHERE id=?", [(i, image_id) for i, image_id in enumerate(ok_ids)])


def _content_moves(conn: sqlite3.Connection, before: Mapping[str, sqlite3.Row], table: str,
                   owned: set[int]) -> tuple[dict[int, int], list[int]]:
    """Where the records of ``table`` (keyed by ``image_id``; ``owned`` holds those ids) go after a scan, given
    the images table ``before`` it (by path): {displaced image id: image id now holding its picture} and the
    displaced ids whose picture is nowhere while their file holds another one (the record no longer applies).

    A record is displaced when its image is missing now or holds another picture. It moves to a readable image
    with the same content hash that has no record of its own (or whose record is displaced too: swapped names).
    """
    if not owned:
        return {}, []
    now = {row["id"]: row for row in conn.execute(  # the owning images only: a re-scan of 100,000 stays quick
        f"SELECT id, sha256, status FROM images WHERE id IN (SELECT image_id FROM {table})")}
    displaced = {
        old["id"]: old["sha256"] for old in before.values()
        if old["id"] in owned and old["sha256"] and old["status"] in {"ok", "missing"}
        and (now[old["id"]]["status"] == "missing" or now[old["id"]]["sha256"] != old["sha256"])
    }
    if not displaced:
        return {}, []
    holders: dict[str, list[int]] = {}
    shas = sorted(set(displaced.values()))
    for start in range(0, len(shas), 500):  # SQLite's limit on bound parameters
        part = shas[start:start + 500]
        for image in conn.execute(
            f"SELECT id, sha256 FROM images WHERE status='ok' AND sha256 IN ({','.join('?' * len(part))}) "
            "ORDER BY path", part,
        ):
            if image["id"] not in owned or image["id"] in displaced:
                holders.setdefault(image["sha256"], []).append(image["id"])
    moves: dict[int, int] = {}
    for image_id, sha in sorted(displaced.items()):
        target = next((t for t in holders.get(sha, []) if t != image_id and t not in moves.values()), None)
        if target is not None:
            moves[image_id] = target
    cleared = [i for i in displaced if i not in moves and now[i]["status"] != "missing"]
    return moves, cleared

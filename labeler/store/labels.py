"""Images, classes, human labels and audits: the label store (SQLite, WAL), source of truth of a workspace.

Every label is committed when it is made, inside a ``BEGIN IMMEDIATE`` transaction, so two processes labeling at
once serialise on the database lock instead of overwriting each other. Human labels live in an append-only event
log; the ``labels`` table is the current state derived from it in the same transaction, and undo appends events
rather than deleting any.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labeler.store.classes import DEFAULT_COLOURS, InvalidClassName, validate_class_name
from labeler.store.jobs import JobTable


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

        Readable images get ``row`` numbers 0..n-1 in path order: the row order of every cache and embedding.
        Returns counts: ``added``, ``updated``, ``missing``, ``unreadable``, ``ok``.
        """
        now_paths = {item.path for item in found}
        counts = {"added": 0, "updated": 0, "missing": 0, "unreadable": 0, "ok": 0}
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
                    conn.execute(
                        "INSERT INTO images(path, sha256, width, height, status, reason, duplicate_of) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (item.path, *values),
                    )
            for path in known:
                if path not in now_paths:
                    counts["missing"] += 1
                    conn.execute("UPDATE images SET status='missing', row=NULL WHERE path=?", (path,))
            _renumber_rows(conn)
        return counts

    def images(self, status: str | None = None) -> list[ImageRecord]:
        """All images (or those with one status), readable ones in row order, then the rest by path."""
        query = "SELECT * FROM images"
        params: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            params = (status,)
        query += " ORDER BY row IS NULL, row, path"
        with self._connect() as conn:
            return [ImageRecord(**dict(row)) for row in conn.execute(query, params)]

    def readable_images(self) -> list[ImageRecord]:
        """Images with a cache row, in row order (index i is row i)."""
        return self.images(status="ok")

    def image_by_path(self, path: str) -> ImageRecord | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM images WHERE path = ?", (path,)).fetchone()
        return ImageRecord(**dict(row)) if row else None

    # ------------------------------------------------------------------ classes
    def add_class(self, name: str, colour: str | None = None, hotkey: str | None = None) -> ClassInfo:
        """Create a class (or return the existing one of that name). Raises InvalidClassName."""
        name = validate_class_name(name)
        with self._write() as conn:
            return self._ensure_class(conn, name, colour, hotkey)

    def _ensure_class(
        self, conn: sqlite3.Connection, name: str, colour: str | None = None, hotkey: str | None = None
    ) -> ClassInfo:
        row = conn.execute("SELECT * FROM classes WHERE name = ?", (name,)).fetchone()
        if row is None:
            count = conn.execute("SELECT COUNT(*) FROM classes").fetchone()[0]
            colour = colour or DEFAULT_COLOURS[count % len(DEFAULT_COLOURS)]
            if hotkey is None and count < 9:
                hotkey = str(count + 1)
            cursor = conn.execute(
                "INSERT INTO classes(name, colour, hotkey, created_at) VALUES (?, ?, ?, ?)",
                (name, colour, hotkey, time.time()),
            )
            return ClassInfo(int(cursor.lastrowid or 0), name, colour, hotkey)
        return ClassInfo(row["id"], row["name"], row["colour"], row["hotkey"])

    def update_class(self, class_id: int, *, name: str | None = None, colour: str | None = None,
                     hotkey: str | None = None) -> None:
        with self._write() as conn:
            if name is not None:
                conn.execute("UPDATE classes SET name=? WHERE id=?", (validate_class_name(name), class_id))
            if colour is not None:
                conn.execute("UPDATE classes SET colour=? WHERE id=?", (colour, class_id))
            if hotkey is not None:
                conn.execute("UPDATE classes SET hotkey=? WHERE id=?", (hotkey or None, class_id))

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
               annotator: str, now: float, undoes: int | None = None) -> bool:
        row = conn.execute("SELECT class_id FROM labels WHERE image_id = ?", (image_id,)).fetchone()
        previous = row["class_id"] if row else None
        if previous == class_id:
            return False  # idempotent: labeling an image with the label it has records nothing
        if class_id is None:
            conn.execute("DELETE FROM labels WHERE image_id = ?", (image_id,))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO labels(image_id, class_id, annotator, labeled_at) VALUES (?, ?, ?, ?)",
                (image_id, class_id, annotator, now),
            )
        conn.execute(
            "INSERT INTO events(batch, kind, image_id, class_id, prev_class_id, undoes_batch, annotator, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (batch, kind, image_id, class_id, previous, undoes, annotator, now),
        )
        return True

    def set_labels(self, image_ids: Iterable[int], class_id: int | None, annotator: str) -> int:
        """Label (or, with ``class_id=None``, unlabel) images as one undoable action. Returns how many changed."""
        image_ids = list(dict.fromkeys(int(i) for i in image_ids))
        now = time.time()
        with self._write() as conn:
            exists = conn.execute("SELECT 1 FROM classes WHERE id=?", (class_id,)).fetchone()
            if class_id is not None and exists is None:
                raise KeyError(f"no class with id {class_id}")
            batch = self._next_batch(conn)
            kind = "label" if class_id is not None else "unlabel"
            return sum(self._apply(conn, batch, kind, i, class_id, annotator, now) for i in image_ids)

    def label(self, image_id: int, class_id: int, annotator: str) -> bool:
        return self.set_labels([image_id], class_id, annotator) == 1

    def label_paths(self, rows: Iterable[tuple[str, str]], annotator: str) -> tuple[int, list[tuple[str, str]]]:
        """Apply (path, class name) rows as one action; creates missing classes.

        Rows whose path is unknown or whose class name is refused are skipped and returned with the reason;
        the good rows still land. Returns (number of labels changed, [(path, reason), ...]).
        """
        problems: list[tuple[str, str]] = []
        now = time.time()
        changed = 0
        with self._write() as conn:
            batch = self._next_batch(conn)
            ids = {r["path"]: (r["id"], r["status"]) for r in conn.execute("SELECT id, path, status FROM images")}
            for path, name in rows:
                if path not in ids:
                    problems.append((path, "unknown path (not imported)"))
                    continue
                if ids[path][1] != "ok":
                    problems.append((path, f"image is {ids[path][1]}"))
                    continue
                try:
                    info = self._ensure_class(conn, validate_class_name(name))
                except InvalidClassName as error:
                    problems.append((path, str(error)))
                    continue
                changed += self._apply(conn, batch, "label", ids[path][0], info.id, annotator, now)
        return changed, problems

    def undo(self, annotator: str | None = None) -> int:
        """Revert the most recent label action not yet undone (of ``annotator`` if given). Returns images reverted."""
        now = time.time()
        with self._write() as conn:
            query = (
                "SELECT MAX(batch) FROM events WHERE kind IN ('label', 'unlabel') "
                "AND batch NOT IN (SELECT undoes_batch FROM events WHERE kind = 'undo')"
            )
            params: tuple[Any, ...] = ()
            if annotator is not None:
                query += " AND annotator = ?"
                params = (annotator,)
            target = conn.execute(query, params).fetchone()[0]
            if target is None:
                return 0
            events = conn.execute(
                "SELECT image_id, prev_class_id FROM events WHERE batch = ? ORDER BY id DESC", (target,)
            ).fetchall()
            batch = self._next_batch(conn)
            who = annotator or "undo"
            for event in events:
                self._apply(conn, batch, "undo", event["image_id"], event["prev_class_id"], who, now, undoes=target)
            # Record the undo even when nothing changed, so the same batch is not undone twice.
            if not conn.execute("SELECT 1 FROM events WHERE batch=?", (batch,)).fetchone():
                conn.execute(
                    "INSERT INTO events(batch, kind, image_id, class_id, prev_class_id, undoes_batch, annotator, at) "
                    "VALUES (?, 'undo', ?, NULL, NULL, ?, ?, ?)",
                    (batch, events[0]["image_id"], target, who, now),
                )
            return len(events)

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
        return int(events) * 1_000_003 + int(audits[0])

    # ------------------------------------------------------------------ audits
    def record_audit(self, image_id: int, class_id: int, predicted_class_id: int | None,
                     confidence: float | None, annotator: str) -> None:
        """A blind audit answer. Kept apart from human labels: audits are never propagation seeds."""
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

        Bumped by :meth:`bump_images_version` (after every import) and by :meth:`mark_unreadable`.
        """
        return int(self.get_meta("images_version") or 0)

    def bump_images_version(self) -> None:
        with self._write() as conn:
            _bump_images_version(conn)

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


def _renumber_rows(conn: sqlite3.Connection) -> None:
    """Readable images get rows 0..n-1 in path order: the row order of every cache and embedding."""
    ok_ids = [r["id"] for r in conn.execute("SELECT id FROM images WHERE status='ok' ORDER BY path")]
    conn.execute("UPDATE images SET row = NULL")
    conn.executemany("UPDATE images SET row=? WHERE id=?", [(i, image_id) for i, image_id in enumerate(ok_ids)])

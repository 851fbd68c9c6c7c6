"""The label store: SQLite (WAL) is the source of truth for images, classes, human labels, audits and jobs.

Every label is committed when it is made, inside a ``BEGIN IMMEDIATE`` transaction, so two processes labeling at
once serialise on the database lock instead of overwriting each other. Human labels live in an append-only event
log; the ``labels`` table is the current state derived from it in the same transaction, and undo appends events
rather than deleting any.
"""

from __future__ import annotations

import sqlite3
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- relative POSIX path inside the data folder
    sha256 TEXT,
    width INTEGER,
    height INTEGER,
    status TEXT NOT NULL,               -- ok / unreadable / missing
    reason TEXT,                        -- why unreadable
    duplicate_of TEXT,                  -- path of the first image with identical content
    row INTEGER                         -- index into the image caches and embeddings (ok images only)
);
CREATE TABLE IF NOT EXISTS classes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    colour TEXT,
    hotkey TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    image_id INTEGER PRIMARY KEY REFERENCES images(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    annotator TEXT NOT NULL,
    labeled_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch INTEGER NOT NULL,             -- events made by one action share a batch, and undo reverts a whole batch
    kind TEXT NOT NULL,                 -- label / unlabel / undo
    image_id INTEGER NOT NULL,
    class_id INTEGER,                   -- the label after the event (NULL: no label)
    prev_class_id INTEGER,              -- the label before the event
    undoes_batch INTEGER,               -- for undo events
    annotator TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_batch ON events(batch);
CREATE TABLE IF NOT EXISTS audits (
    image_id INTEGER PRIMARY KEY REFERENCES images(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    predicted_class_id INTEGER,
    confidence REAL,
    annotator TEXT NOT NULL,
    audited_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,               -- queued / running / done / failed / cancelled
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
"""

_FORMULA_PREFIXES = ("=", "+", "@")
MAX_CLASS_NAME_LENGTH = 64
DEFAULT_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)


class InvalidClassName(ValueError):
    """A class name the store refuses, with a message saying why."""


def validate_class_name(name: str) -> str:
    """Return the cleaned class name, or raise :class:`InvalidClassName` saying why it is refused.

    Refused: empty names, control characters, and a leading ``=``, ``+`` or ``@`` (a spreadsheet opening the
    exported CSV would run such a cell as a formula).
    """
    if not isinstance(name, str):
        raise InvalidClassName("a class name must be text")
    cleaned = unicodedata.normalize("NFC", name.strip())
    if not cleaned:
        raise InvalidClassName("a class name cannot be empty")
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in cleaned):
        raise InvalidClassName(f"class name {cleaned!r} contains control characters")
    if cleaned.startswith(_FORMULA_PREFIXES):
        raise InvalidClassName(
            f"class name {cleaned!r} starts with {cleaned[0]!r}, which a spreadsheet would run as a formula"
        )
    if len(cleaned) > MAX_CLASS_NAME_LENGTH:
        raise InvalidClassName(f"a class name has at most {MAX_CLASS_NAME_LENGTH} characters")
    return cleaned


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
class Job:
    id: int
    kind: str
    status: str
    progress: float
    message: str
    error: str | None
    cancel_requested: bool
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def active(self) -> bool:
        return self.status in {"queued", "running"}


@dataclass(frozen=True)
class ImportedImage:
    """What ingestion found for one file (the store's input; decoupled from the decoder)."""

    path: str
    sha256: str | None
    width: int | None
    height: int | None
    error: str | None


class LabelStore:
    """Access to one workspace's SQLite database. Cheap to create; opens a connection per operation.

    A connection per operation keeps the store safe to use from Streamlit's script threads, background job
    threads and other processes at once.
    """

    def __init__(self, db_path: Path, busy_timeout_s: float = 30.0) -> None:
        self.db_path = Path(db_path)
        self.busy_timeout_s = busy_timeout_s
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the database lock up front so concurrent writers queue."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
        with self._write() as conn:
            version = 0
            if self._has_meta(conn):
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = int(row["value"]) if row else 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"workspace {self.db_path} has schema version {version}, newer than this labeler "
                    f"({SCHEMA_VERSION}); upgrade labeler"
                )
            if version < SCHEMA_VERSION:
                # Version 0 -> 1 creates everything; later versions add their steps here, in order.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )

    @staticmethod
    def _has_meta(conn: sqlite3.Connection) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is not None

    @property
    def schema_version(self) -> int:
        return int(self.get_meta("schema_version") or 0)

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

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

    def mark_unreadable(self, reasons: Mapping[str, str]) -> None:
        """Mark images that failed to decode while caching (after a scan said they were fine), renumbering rows."""
        if not reasons:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE images SET status='unreadable', reason=?, row=NULL WHERE path=?",
                [(reason, path) for path, reason in reasons.items()],
            )
            _renumber_rows(conn)

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

    def image_ids_for_rows(self, rows: Iterable[int]) -> list[int]:
        rows = list(rows)
        with self._connect() as conn:
            mapping = {r["row"]: r["id"] for r in conn.execute("SELECT id, row FROM images WHERE row IS NOT NULL")}
        return [mapping[int(r)] for r in rows]

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

    def clear_audits(self) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM audits")

    # ------------------------------------------------------------------ jobs
    def create_job(self, kind: str) -> int:
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO jobs(kind, status, created_at) VALUES (?, 'queued', ?)", (kind, time.time())
            )
            return int(cursor.lastrowid or 0)

    def update_job(self, job_id: int, *, status: str | None = None, progress: float | None = None,
                   message: str | None = None, error: str | None = None) -> None:
        sets: list[str] = []
        values: list[Any] = []
        now = time.time()
        if status is not None:
            sets.append("status = ?")
            values.append(status)
            if status == "running":
                sets.append("started_at = COALESCE(started_at, ?)")
                values.append(now)
            if status in {"done", "failed", "cancelled"}:
                sets.append("finished_at = ?")
                values.append(now)
        for column, value in (("progress", progress), ("message", message), ("error", error)):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(value)
        if sets:
            with self._write() as conn:
                conn.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*values, job_id))

    def request_cancel(self, job_id: int) -> None:
        with self._write() as conn:
            conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))

    def job(self, job_id: int) -> Job | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self, kind: str | None = None, limit: int = 50) -> list[Job]:
        """Jobs, newest first."""
        query = "SELECT * FROM jobs"
        params: tuple[Any, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        with self._connect() as conn:
            return [_job(r) for r in conn.execute(query + " ORDER BY id DESC LIMIT ?", (*params, limit))]

    def fail_stale_jobs(self, message: str = "interrupted (the process running it stopped)") -> int:
        """Jobs left queued/running by a process that died are marked failed so they can be retried."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status='failed', error=?, finished_at=? WHERE status IN ('queued', 'running')",
                (message, time.time()),
            )
            return cursor.rowcount


def _renumber_rows(conn: sqlite3.Connection) -> None:
    """Readable images get rows 0..n-1 in path order: the row order of every cache and embedding."""
    ok_ids = [r["id"] for r in conn.execute("SELECT id FROM images WHERE status='ok' ORDER BY path")]
    conn.execute("UPDATE images SET row = NULL")
    conn.executemany("UPDATE images SET row=? WHERE id=?", [(i, image_id) for i, image_id in enumerate(ok_ids)])


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    values["cancel_requested"] = bool(values["cancel_requested"])
    return Job(**values)

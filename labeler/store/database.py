"""The workspace database: SQLite in WAL mode, one connection per operation, the schema and its version.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``: every committed label is fsynced to the write-ahead
log before the call returns, so it survives a killed process *and* a power cut. (``NORMAL`` would never corrupt
the database either, but a power cut could lose the last commits; benchmarks/results/label_writes.md measures
what FULL costs per label.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 3
SYNCHRONOUS_MODES = ("FULL", "NORMAL")
DEFAULT_SYNCHRONOUS = "FULL"

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
    prev_annotator TEXT,                -- who had set that label, and when: undo gives it back to them
    prev_labeled_at REAL,
    undoes_batch INTEGER,               -- for undo events
    annotator TEXT NOT NULL,
    at REAL NOT NULL,
    origin TEXT                         -- the app page that made it, which undoes it (NULL: CLI, re-scan)
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
    finished_at REAL,
    owner_host TEXT,                    -- the machine and process running it: a job whose process is gone is
    owner_pid INTEGER,                  -- shown as interrupted, never as running
    heartbeat_at REAL                   -- refreshed while it runs, stale once its process stopped
);
"""

# Steps from one schema version to the next, in order: _MIGRATIONS[v] takes version v to v + 1 (v >= 1; version 0,
# an empty file, gets _SCHEMA at once).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE jobs ADD COLUMN owner_host TEXT",
        "ALTER TABLE jobs ADD COLUMN owner_pid INTEGER",
        "ALTER TABLE jobs ADD COLUMN heartbeat_at REAL",
        "ALTER TABLE events ADD COLUMN prev_annotator TEXT",
        "ALTER TABLE events ADD COLUMN prev_labeled_at REAL",
    ),
    2: ("ALTER TABLE events ADD COLUMN origin TEXT",),
}


class WorkspaceNotWritable(PermissionError):
    """The workspace folder or its database cannot be written (read-only folder or disk, disk full)."""


class Database:
    """One workspace's SQLite database: connections, schema migration and the meta table.

    Cheap to create; opens a connection per operation, which keeps the store safe to use from Streamlit's script
    threads, background job threads and other processes at once.
    """

    def __init__(self, db_path: Path, busy_timeout_s: float = 30.0, synchronous: str = DEFAULT_SYNCHRONOUS) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, got {synchronous!r}")
        self.db_path = Path(db_path)
        self.busy_timeout_s = busy_timeout_s
        self.synchronous = synchronous
        # Set when the database can be read but not written (a read-only workspace): reads work, and every write
        # raises this error, which says why.
        self.read_only: WorkspaceNotWritable | None = None
        self._read_only_uri = ""
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WorkspaceNotWritable(
                f"cannot create the workspace folder {self.db_path.parent}: {error.strerror or error}. "
                "If the data folder is read-only, put the workspace elsewhere (--workspace OTHER_DIR)."
            ) from error
        try:
            self._migrate()
        except WorkspaceNotWritable as error:
            if not self._open_read_only(error):
                raise

    def _open_read_only(self, why: WorkspaceNotWritable) -> bool:
        """Fall back to reading a database that cannot be written, when it exists and has the current schema (an
        older one would need a migration, a write); returns whether it can be read.

        SQLite reads a WAL database read-only only through its ``-shm`` file, which a read-only folder cannot
        create: without a ``-wal`` file (no connection has it open; the last one to close removes it) the file is
        opened ``immutable``, else ``mode=ro`` (which reads the writer's ``-shm``).
        """
        if not self.db_path.is_file():
            return False
        wal = self.db_path.with_name(self.db_path.name + "-wal")
        self._read_only_uri = self.db_path.resolve().as_uri() + ("?mode=ro" if wal.exists() else "?mode=ro&immutable=1")
        self.read_only = why
        try:
            readable = self.schema_version == SCHEMA_VERSION
        except sqlite3.Error:
            readable = False
        if not readable:
            self.read_only, self._read_only_uri = None, ""
        return readable

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.read_only is not None:
            conn = sqlite3.connect(self._read_only_uri, timeout=self.busy_timeout_s, isolation_level=None, uri=True)
        else:
            conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the database lock up front so concurrent writers queue.

        A database that cannot be written (read-only folder or file, disk full) raises
        :class:`WorkspaceNotWritable` with a message saying so; the transaction is rolled back, and everything
        committed before stays.
        """
        if self.read_only is not None:
            raise WorkspaceNotWritable(str(self.read_only))
        try:
            with self._connect() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.OperationalError as error:
            clear = _not_writable(self.db_path, error)
            if clear is None:
                raise
            raise clear from error

    def _migrate(self) -> None:
        try:
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:
            clear = _not_writable(self.db_path, error)
            if clear is None:
                raise
            raise clear from error
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
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            else:
                for step in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step]:
                        conn.execute(statement)
            if version < SCHEMA_VERSION:
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


_NOT_WRITABLE_MESSAGES = ("readonly", "read-only", "unable to open", "disk is full", "disk i/o error")


def _not_writable(db_path: Path, error: sqlite3.OperationalError) -> WorkspaceNotWritable | None:
    """A clear error for SQLite's ways of saying the workspace cannot be written; None for other errors."""
    text = str(error).lower()
    if not any(message in text for message in _NOT_WRITABLE_MESSAGES):
        return None
    return WorkspaceNotWritable(
        f"cannot write the label database {db_path} ({error}): the workspace folder is read-only or the disk is "
        "full. Every label stored before is kept; free space, or put the workspace elsewhere (--workspace)."
    )

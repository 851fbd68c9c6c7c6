"""The jobs table: background work (training, refresh) recorded so every session and process sees it.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from labeler.store.database import Database


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



class JobTable(Database):
    """Rows of the ``jobs`` table: created, updated and read by the job runner and the pages."""

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


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    values["cancel_requested"] = bool(values["cancel_requested"])
    return Job(**values)

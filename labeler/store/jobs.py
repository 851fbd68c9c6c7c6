"""The jobs table: background work (training, refresh) recorded so every session and process sees it.

Each job records the process that runs it (host and pid) and a heartbeat that process refreshes while the job
runs. A job whose process is gone (dead pid on this host, or a heartbeat older than ``STALE_AFTER_S``) is shown as
``interrupted`` the next time anyone reads the table: never as running, and never a live job of another process.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeler.store.database import Database

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled", "interrupted")
# A running job's process refreshes its heartbeat every few seconds (labeler.workflow.runner.HEARTBEAT_S); one
# silent this long belongs to a process that stopped, whatever its pid says (pids are reused).
STALE_AFTER_S = 120.0
INTERRUPTED_MESSAGE = "interrupted: the process running it stopped (killed, crashed or closed)"


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
    owner_host: str | None = None
    owner_pid: int | None = None
    heartbeat_at: float | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def succeeded_since(recent: list[Job], failed: Job) -> bool:
    """Whether a job of ``failed``'s kind newer than it finished well (``recent``: newest first, as
    :meth:`JobTable.jobs` gives them): then the failure is history, not something to act on."""
    newer = recent[: recent.index(failed)] if failed in recent else []
    return any(job.kind == failed.kind and job.status == "done" for job in newer)


def this_host() -> str:
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists and is not a zombie (a killed child not yet reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): the signal check is all there is
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class JobTable(Database):
    """Rows of the ``jobs`` table: created, updated and read by the job runner and the pages."""

    def create_job(self, kind: str) -> int:
        """A queued job owned by this process."""
        now = time.time()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO jobs(kind, status, created_at, owner_host, owner_pid, heartbeat_at) "
                "VALUES (?, 'queued', ?, ?, ?, ?)",
                (kind, now, this_host(), os.getpid(), now),
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
            if status in FINISHED:
                sets.append("finished_at = ?")
                values.append(now)
        for column, value in (("progress", progress), ("message", message), ("error", error)):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(value)
        if sets:
            sets.append("heartbeat_at = ?")
            values.append(now)
            with self._write() as conn:
                conn.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*values, job_id))

    def heartbeat(self, job_ids: Iterable[int]) -> None:
        """Say that this process is still running these jobs."""
        ids = [int(i) for i in job_ids]
        if ids:
            with self._write() as conn:
                conn.executemany("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", [(time.time(), i) for i in ids])

    def request_cancel(self, job_id: int) -> None:
        with self._write() as conn:
            conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))

    def job(self, job_id: int) -> Job | None:
        self.mark_interrupted_jobs()
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self, kind: str | None = None, limit: int = 50) -> list[Job]:
        """Jobs, newest first; jobs whose process is gone are shown (and recorded) as interrupted."""
        self.mark_interrupted_jobs()
        query = "SELECT * FROM jobs"
        params: tuple[Any, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        with self._connect() as conn:
            return [_job(r) for r in conn.execute(query + " ORDER BY id DESC LIMIT ?", (*params, limit))]

    def mark_interrupted_jobs(self, stale_after_s: float = STALE_AFTER_S) -> int:
        """Mark ``interrupted`` the queued/running jobs whose process stopped; returns how many.

        A job's process stopped when it ran on this host and its pid is gone, or when its heartbeat is older than
        ``stale_after_s`` (another host, or a reused pid). Jobs of live processes, this one's or another's, are
        left alone. Costs one read when nothing is active.
        """
        with self._connect() as conn:
            active = conn.execute(
                "SELECT id, owner_host, owner_pid, heartbeat_at, created_at FROM jobs "
                "WHERE status IN ('queued', 'running')"
            ).fetchall()
        if not active:
            return 0
        host, now = this_host(), time.time()
        dead = [row["id"] for row in active if _stopped(row, host, now, stale_after_s)]
        if not dead:
            return 0
        with self._write() as conn:
            placeholders = ",".join("?" * len(dead))
            cursor = conn.execute(
                f"UPDATE jobs SET status='interrupted', error=?, finished_at=? "
                f"WHERE id IN ({placeholders}) AND status IN ('queued', 'running')",
                (INTERRUPTED_MESSAGE, now, *dead),
            )
            return cursor.rowcount

    # The name the first JobRunner used; kept so callers of the old API still work (only dead jobs are marked).
    fail_stale_jobs = mark_interrupted_jobs


def _stopped(row: sqlite3.Row, host: str, now: float, stale_after_s: float) -> bool:
    if row["owner_pid"] is None:
        return True  # written before jobs had owners (schema 1): no process of this version runs it
    if row["owner_host"] == host and not process_alive(int(row["owner_pid"])):
        return True
    beat = row["heartbeat_at"] if row["heartbeat_at"] is not None else row["created_at"]
    return bool(now - float(beat) > stale_after_s)


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    values["cancel_requested"] = bool(values["cancel_requested"])
    return Job(**values)

"""Background jobs: training, import and refresh (embed, graph, propagate, map) off the UI thread.

Jobs are ordinary functions taking a ``progress(fraction, message)`` callback; the runner only adds a thread, a
row in the store's jobs table (so status survives a browser reload and shows in every session) and cancellation.
A job that raises is recorded as failed with its error; labels live in SQLite and are never touched by a failure.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from labeler.config import Settings
from labeler.progress import Progress, StopCheck
from labeler.store import Job
from labeler.workflow.garbage import collect_garbage
from labeler.workflow.refresh import refresh
from labeler.workflow.training import train
from labeler.workflow.workspace import ImportReport, Workspace, import_folder

JobFunction = Callable[[Progress, StopCheck], object]


class JobCancelled(Exception):
    """Raised inside a job whose cancellation was requested."""


class JobRunner:
    """One per workspace and process (the app holds it with ``st.cache_resource``).

    Two lanes run at once: ``train`` (long) and ``refresh`` (short, coalesced: many requests while one runs
    produce one more run, not many).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace = Workspace.open(settings)
        self.store = self.workspace.store
        self.store.fail_stale_jobs()
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._refresh_wanted = threading.Event()
        self._map_wanted = False
        self.last_import: ImportReport | None = None

    # ------------------------------------------------------------------ generic
    def _run(self, job_id: int, function: JobFunction) -> None:
        last_write = 0.0

        def progress(fraction: float, message: str) -> None:
            nonlocal last_write
            now = time.monotonic()
            if now - last_write > 0.3 or fraction >= 1.0:  # throttle writes to the database
                last_write = now
                self.store.update_job(job_id, progress=max(0.0, min(1.0, float(fraction))), message=message)

        last_check = 0.0
        cancelled = False

        def should_stop() -> bool:
            nonlocal last_check, cancelled
            now = time.monotonic()
            if not cancelled and now - last_check > 0.5:
                last_check = now
                job = self.store.job(job_id)
                cancelled = bool(job and job.cancel_requested)
            return cancelled

        self.store.update_job(job_id, status="running")
        try:
            result = function(progress, should_stop)
        except JobCancelled:
            self.store.update_job(job_id, status="cancelled", message="cancelled")
        except Exception as error:  # a failed job is shown and retried, never allowed to take labels down
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            self.store.update_job(job_id, status="failed", error=detail)
        else:
            status = "cancelled" if should_stop() else "done"
            self.store.update_job(job_id, status=status, progress=1.0, message=str(result or "done"))

    def _start(self, kind: str, function: JobFunction) -> int:
        with self._lock:
            thread = self._threads.get(kind)
            if thread is not None and thread.is_alive():
                active = [job for job in self.store.jobs(kind=kind, limit=1) if job.active]
                if active:
                    return active[0].id
            job_id = self.store.create_job(kind)
            thread = threading.Thread(target=self._run, args=(job_id, function), name=f"labeler-{kind}", daemon=True)
            self._threads[kind] = thread
            thread.start()
            return job_id

    def is_running(self, kind: str) -> bool:
        thread = self._threads.get(kind)
        return thread is not None and thread.is_alive()

    def wait(self, kind: str, timeout: float | None = None) -> None:
        """Block until the job of ``kind`` finishes (tests and the CLI)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            thread = self._threads.get(kind)
            if thread is None or not thread.is_alive():
                if kind == "refresh" and self._refresh_wanted.is_set():
                    time.sleep(0.05)
                    continue
                return
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(timeout=remaining if remaining is None else min(remaining, 0.2))
            if deadline is not None and time.monotonic() >= deadline:
                return

    def status(self, limit: int = 20) -> list[Job]:
        return self.store.jobs(limit=limit)

    def cancel(self, kind: str) -> None:
        for job in self.store.jobs(kind=kind, limit=5):
            if job.active:
                self.store.request_cancel(job.id)

    # ------------------------------------------------------------------ the jobs
    def request_refresh(self, compute_map: bool = True) -> None:
        """Ask for propagation (and the map) to catch up with the labels; returns at once."""
        with self._lock:
            self._map_wanted = self._map_wanted or compute_map
            self._refresh_wanted.set()
        if not self.is_running("refresh"):
            self._start("refresh", self._refresh_loop)

    def _refresh_loop(self, progress: Progress, should_stop: StopCheck) -> str:
        runs = 0
        while self._refresh_wanted.is_set() and not should_stop():
            with self._lock:
                self._refresh_wanted.clear()
                compute_map, self._map_wanted = self._map_wanted, False
            # Propagate first without the map so counts refresh at once, then add the map if it is missing.
            state = refresh(self.workspace, progress, compute_map=False)
            if compute_map and state.umap is None and not self._refresh_wanted.is_set():
                refresh(self.workspace, progress, compute_map=True)
            runs += 1
        return f"propagated ({runs} run{'s' if runs != 1 else ''})"

    def start_import(self, labels_from_folders: bool = False) -> int:
        """Import the data folder in the job lane (progress, cancel); the report lands in ``last_import``."""

        def job(progress: Progress, should_stop: StopCheck) -> str:
            report = import_folder(self.workspace, progress, should_stop, labels_from_folders=labels_from_folders)
            self.last_import = report
            if report.cancelled:
                return "import cancelled"
            collect_garbage(self.workspace)
            self.request_refresh(compute_map=True)
            return report.lines()[0]

        return self._start("import", job)

    def start_training(self, minutes: float | None = None, epochs: int | None = None) -> int:
        minutes = self.settings.ssl_minutes if minutes is None and epochs is None else minutes

        def job(progress: Progress, should_stop: StopCheck) -> str:
            message = train(self.workspace, minutes=minutes, epochs=epochs, progress=progress,
                                     should_stop=should_stop)
            self.request_refresh(compute_map=True)  # a new encoder: embed, graph, map and propagate follow
            return message

        return self._start("train", job)


"""Background jobs: training, import and refresh (embed, graph, propagate, map) off the UI thread.

Jobs are ordinary functions taking a ``progress(fraction, message)`` callback; the runner adds a worker thread per
lane, a row in the store's jobs table (so status survives a browser reload and shows in every session and
process), a heartbeat while it runs, and cancellation. A job that raises is recorded as failed with its error;
labels live in SQLite and are never touched by a failure. A job whose process dies is shown as interrupted (see
:mod:`labeler.store.jobs`).
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from labeler.config import Settings
from labeler.io.artifacts import remove_orphan_temp_files
from labeler.progress import Progress, StopCheck
from labeler.store import Job
from labeler.wording import counted
from labeler.workflow.garbage import collect_garbage
from labeler.workflow.refresh import refresh
from labeler.workflow.representations import embed_as_configured, map_for_state, models_to_embed
from labeler.workflow.training import train
from labeler.workflow.workspace import ImportReport, Workspace, import_folder

JobFunction = Callable[[Progress, StopCheck], object]
LANES = ("import", "train", "refresh", "map")
HEARTBEAT_S = 5.0  # well inside labeler.store.jobs.STALE_AFTER_S


class JobCancelled(Exception):
    """Raised inside a job whose cancellation was requested."""


@dataclass
class _Lane:
    """One worker thread and what it has to do. Every field is read and written under the runner's condition."""

    name: str
    queue: list[tuple[int, JobFunction]] = field(default_factory=list)  # train: jobs created, waiting to run
    refresh_wanted: bool = False  # refresh: labels changed since the running pass started; map: a map is wanted
    map_wanted: bool = False  # refresh: a map is wanted after the pass
    busy: bool = False  # a job is running on the worker now
    thread: threading.Thread | None = None


class JobRunner:
    """One per workspace and process (the app holds it with ``st.cache_resource``).

    Lanes run at once, each with one worker thread: ``import`` and ``train`` (long jobs, in order), ``refresh``
    (short, coalesced: any number of requests while a pass runs produce one more pass, and a request arriving at any
    moment, even as the worker is about to go idle, is never lost) and ``map`` (the UMAP layout, coalesced the same
    way, so that minutes of layout at 100,000 images never hold back the next label's refresh). One condition
    variable guards all lane state.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace = Workspace.open(settings)
        self.store = self.workspace.store
        # Jobs whose process died show as interrupted; jobs of live processes (another app, a CLI run) are left.
        self.store.mark_interrupted_jobs()
        remove_orphan_temp_files(self.workspace.workspace_dir)  # pieces of artifacts a killed writer left
        self._cond = threading.Condition()
        self._lanes = {name: _Lane(name) for name in LANES}
        self._running: set[int] = set()  # job ids of this runner, queued or running: the heartbeat keeps them alive
        self._closed = False
        self._heartbeat: threading.Thread | None = None
        # Test hook: called on the refresh worker after its last look at the request flag and before it goes
        # idle, the moment a request used to be lost.
        self._before_idle: Callable[[], None] | None = None
        self.last_import: ImportReport | None = None
        self._caught_up_to: int | None = None  # the labels version catch_up last asked a refresh for

    # ------------------------------------------------------------------ workers
    def _ensure_worker(self, lane: _Lane) -> None:
        """Start the lane's worker and the heartbeat (under ``self._cond``)."""
        if lane.thread is None or not lane.thread.is_alive():
            lane.thread = threading.Thread(target=self._work, args=(lane,), name=f"labeler-{lane.name}", daemon=True)
            lane.thread.start()
        self._ensure_heartbeat()

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or not self._heartbeat.is_alive():
            self._heartbeat = threading.Thread(target=self._beat, name="labeler-heartbeat", daemon=True)
            self._heartbeat.start()

    def _has_work(self, lane: _Lane) -> bool:
        return bool(lane.queue) or lane.refresh_wanted

    def _work(self, lane: _Lane) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._has_work(lane))
                if self._closed:
                    return
                lane.busy = True
                if lane.queue:
                    job_id, function = lane.queue.pop(0)
                else:  # a refresh or map pass: its job row is made now, so one row covers the requests it coalesces
                    job_id, function = -1, self._refresh_loop if lane.name == "refresh" else self._map_loop
            try:
                if job_id < 0:
                    job_id = self.store.create_job(lane.name)
                    with self._cond:
                        self._running.add(job_id)
                self._run(job_id, function)
            except Exception:  # the store itself failed (disk full, ...): the worker must survive to run the next
                traceback.print_exc()
            finally:
                if lane.name == "refresh" and self._before_idle is not None:
                    self._before_idle()
                with self._cond:
                    self._running.discard(job_id)
                    lane.busy = False
                    self._cond.notify_all()

    def _beat(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(timeout=HEARTBEAT_S)
                if self._closed:
                    return
                ids = sorted(self._running)
            with contextlib.suppress(Exception):  # a locked or full disk: try again next beat
                self.store.heartbeat(ids)

    def close(self) -> None:
        """Stop the workers once their current job ends (tests; the app keeps its runner for the process)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ one job
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

    def run_here(self, kind: str, function: JobFunction) -> Job:
        """Run a job in this thread, recorded like a background one (the CLI: the app shows it, and a killed
        CLI shows as interrupted). Returns the finished job."""
        job_id = self.store.create_job(kind)
        with self._cond:
            self._running.add(job_id)
            self._ensure_heartbeat()
        try:
            self._run(job_id, function)
        finally:
            with self._cond:
                self._running.discard(job_id)
        job = self.store.job(job_id)
        assert job is not None
        return job

    # ------------------------------------------------------------------ waiting and status
    def is_running(self, kind: str) -> bool:
        """Whether a job of ``kind`` is running or waiting to run in this process."""
        lane = self._lanes[kind]
        with self._cond:
            return lane.busy or self._has_work(lane)

    def wait(self, kind: str, timeout: float | None = None) -> bool:
        """Block until the lane of ``kind`` is idle with nothing asked of it, or ``timeout`` seconds pass.

        Returns True when idle, False on timeout (tests and the CLI).
        """
        lane = self._lanes[kind]
        with self._cond:
            return self._cond.wait_for(lambda: not lane.busy and not self._has_work(lane), timeout=timeout)

    def status(self, limit: int = 20) -> list[Job]:
        return self.store.jobs(limit=limit)

    def cancel(self, kind: str) -> None:
        for job in self.store.jobs(kind=kind, limit=5):
            if job.active:
                self.store.request_cancel(job.id)

    # ------------------------------------------------------------------ the jobs
    def request_refresh(self, compute_map: bool = True) -> None:
        """Ask for propagation (and the map) to catch up with the labels; returns at once."""
        lane = self._lanes["refresh"]
        with self._cond:
            lane.refresh_wanted = True
            lane.map_wanted = lane.map_wanted or compute_map
            self._ensure_worker(lane)
            self._cond.notify_all()

    def catch_up(self, labels_version: int) -> bool:
        """Ask for a refresh when the labels changed outside this process (``labeler label`` or ``labeler audit``
        on the same folder, another app): once per ``labels_version``, and only while no refresh of this process
        runs or waits. Returns whether one was asked for.

        Why once per version: the pages call this every second while the saved propagation lags the store; a
        refresh that fails would otherwise be retried every second (the next label change retries it).
        """
        lane = self._lanes["refresh"]
        with self._cond:
            if lane.busy or self._has_work(lane) or self._caught_up_to == labels_version:
                return False
            self._caught_up_to = labels_version
        self.request_refresh()
        return True

    def _refresh_wanted(self) -> bool:
        """Whether another refresh pass has been asked for since this one started."""
        with self._cond:
            return self._lanes["refresh"].refresh_wanted

    def _take_refresh_request(self) -> tuple[bool, bool]:
        """(a pass is wanted, with the map), clearing the request: a request after this asks for another pass."""
        lane = self._lanes["refresh"]
        with self._cond:
            wanted, compute_map = lane.refresh_wanted, lane.map_wanted
            lane.refresh_wanted = lane.map_wanted = False
            return wanted, compute_map

    def _refresh_loop(self, progress: Progress, should_stop: StopCheck) -> str:
        runs = 0
        while not should_stop():
            wanted, compute_map = self._take_refresh_request()
            if not wanted:
                break
            # Propagate without the map so counts refresh at once; the follow-up work (stability, calibration) is
            # left to the next pass when labels arrived meanwhile. A missing map is the map lane's job: the pass is
            # done without it, and the next labels do not wait minutes for a layout.
            state = refresh(self.workspace, progress, compute_map=False, newer_labels=self._refresh_wanted)
            if compute_map and state.umap is None:
                self.request_map()
            runs += 1
        return f"propagated ({counted(runs, 'run')})"

    def request_map(self) -> None:
        """Ask for the UMAP map of the latest propagation's representation, if it has none (returns at once)."""
        lane = self._lanes["map"]
        with self._cond:
            lane.refresh_wanted = True
            self._ensure_worker(lane)
            self._cond.notify_all()

    def _map_loop(self, progress: Progress, should_stop: StopCheck) -> str:
        computed = 0
        while not should_stop():
            lane = self._lanes["map"]
            with self._cond:
                wanted, lane.refresh_wanted = lane.refresh_wanted, False
            if not wanted:
                break
            computed += int(map_for_state(self.workspace, progress))
        return "map computed" if computed else "map up to date"

    def start_import(self, labels_from_folders: bool = False) -> int:
        """Queue an import of the data folder (progress, cancel); the report lands in ``last_import``."""

        def job(progress: Progress, should_stop: StopCheck) -> str:
            report = import_folder(self.workspace, progress, should_stop, labels_from_folders=labels_from_folders)
            self.last_import = report
            if report.cancelled:
                return "import cancelled"
            collect_garbage(self.workspace)
            return f"{report.summary_lines(listed='')[0]}{self._embed_after_import()}"

        return self._queue("import", job)

    def _embed_after_import(self) -> str:
        """Ask for the refresh after an import; with a Ray address (``settings.ray_address``) and model embeddings
        still to compute, queue them on the cluster first (the train lane): the refresh follows that job, and embeds
        on this machine if the cluster fails. Returns what the import job adds to its message."""
        training = any(job.active for job in self.store.jobs(kind="train", limit=5))  # it embeds when it ends
        if self.settings.ray_address and not training and models_to_embed(self.workspace):
            self.start_embedding()
            return f"; embedding on Ray ({self.settings.ray_address})"
        self.request_refresh(compute_map=True)
        return ""

    def start_training(
        self, minutes: float | None = None, epochs: int | None = None, finetune: str | None = None,
        ray_address: str | None = None,
    ) -> int:
        """Queue a training run; returns its job id (the running or queued one if there is one already).

        ``finetune`` ("auto", "always", "never") overrides ``settings.finetune`` for this run (colour photos).
        ``ray_address`` (default ``settings.ray_address``; "" = this machine) is where the new encoder's
        embeddings are computed before the refresh that follows.
        """
        minutes = self.settings.ssl_minutes if minutes is None and epochs is None else minutes
        settings = self.settings if ray_address is None else self.settings.with_(ray_address=ray_address)

        def job(progress: Progress, should_stop: StopCheck) -> str:
            message = train(self.workspace, minutes=minutes, epochs=epochs, progress=progress,
                            should_stop=should_stop, finetune=finetune)
            if should_stop():
                self.request_refresh(compute_map=True)
                return message
            return f"{message}; {self._embed_then_refresh(settings, progress)}"

        # One training at a time per workspace, in any process: they would write the same checkpoint.
        return self._queue("train", job)

    def start_embedding(self, ray_address: str | None = None) -> int:
        """Queue the models' embeddings on the Ray cluster ``ray_address`` (default ``settings.ray_address``) in the
        train lane, then a refresh; returns the job id. With no address the refresh embeds on this machine."""
        settings = self.settings if ray_address is None else self.settings.with_(ray_address=ray_address)
        return self._queue("train", lambda progress, should_stop: self._embed_then_refresh(settings, progress))

    def _embed_then_refresh(self, settings: Settings, progress: Progress) -> str:
        """Embed where ``settings`` says, then ask for the refresh (embed, graph, map, propagate) in any case: a
        failed cluster run still leaves this machine to embed, and the job shows why the cluster failed."""
        try:
            written = embed_as_configured(self.workspace, settings, progress)
        finally:
            self.request_refresh(compute_map=True)  # a new encoder: embed, graph, map and propagate follow
        if not written:
            return "embedding on this machine"
        return f"embedded {counted(len(written), 'representation')} on Ray"

    def _queue(self, kind: str, job: JobFunction) -> int:
        """Queue ``job`` on its lane unless one of ``kind`` is already active (in any process); returns its id."""
        lane = self._lanes[kind]
        with self._cond:
            for active in self.store.jobs(kind=kind, limit=5):
                if active.active:
                    return active.id
            job_id = self.store.create_job(kind)
            lane.queue.append((job_id, job))
            self._running.add(job_id)
            self._ensure_worker(lane)
            self._cond.notify_all()
            return job_id

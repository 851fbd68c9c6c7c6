"""Background jobs and label counts as every page shows them, polled while a job is active.

Polling is cheap: a fragment reads the jobs table (a few rows), the labels version and the state's version stamp;
the big arrays come from the session caches and are reloaded only when a stamp changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from labeler.store import Job
from labeler.store.jobs import succeeded_since
from labeler.workflow import counts as label_counts_rules
from labeler.workflow.workspace import Workspace
from pages.shared import session
from pages.shared.text import plain

# Polling period of the job panel while a job is active (seconds) and when idle.
POLL_ACTIVE_S = 1.0


POLL_IDLE_S = 5.0


def jobs(ws: Workspace, limit: int = 10) -> list[Job]:
    """Recent jobs of the open workspace, newest first (from the store, so every session sees them)."""
    return ws.store.jobs(limit=limit)


@dataclass(frozen=True)
class JobGroup:
    """Consecutive jobs that ended the same way, shown as one line."""

    latest: Job
    count: int
    earliest_at: float

    @property
    def at(self) -> float:
        return job_time(self.latest)


def job_time(job: Job) -> float:
    return float(job.finished_at or job.started_at or job.created_at)


def collapse(found: list[Job]) -> list[JobGroup]:
    """Finished jobs (newest first) of the same kind, status, message and error, as one group each: consecutive
    ones, and successful ones (status done) wherever they are, so that refreshes and maps taking turns after each
    label do not fill the list with the same two lines. An active job is always its own line, and a failure stays
    where it happened."""
    groups: list[JobGroup] = []
    done_group: dict[tuple[object, ...], int] = {}  # a successful group's key -> its index in groups
    for job in found:
        key = (job.kind, job.status, job.message, job.error)
        last = groups[-1] if groups else None
        consecutive = (last is not None and not job.active and not last.latest.active
                       and key == (last.latest.kind, last.latest.status, last.latest.message, last.latest.error))
        index = len(groups) - 1 if consecutive else done_group.get(key) if job.status == "done" else None
        if index is not None and not job.active:
            group = groups[index]
            groups[index] = JobGroup(group.latest, group.count + 1, job_time(job))
        else:
            groups.append(JobGroup(job, 1, job_time(job)))
            if job.status == "done":
                done_group[key] = len(groups) - 1
    return groups


def clock(timestamp: float) -> str:
    """Local time of day, with the date when it is not today."""
    moment = time.localtime(timestamp)
    if time.strftime("%Y-%m-%d", moment) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


def describe(group: JobGroup) -> str:
    """E.g. ``refresh · done · labels propagated · 14:02:11 (6 runs since 13:58:02)``."""
    job = group.latest
    line = f"{job.kind} · {job.status}"
    if job.message:
        line += f" · {job.message}"
    line += f" · {clock(group.at)}"
    if group.count > 1:
        line += f" ({group.count} runs since {clock(group.earliest_at)})"
    return line


# How a failed job of each kind runs again, said beside the failure ("it can be retried" did not say how).
RETRY = {
    "refresh": "the next label, or any other change, propagates again",
    "map": "Compute now on the Map page draws it again",
    "train": "start training again on the Model page",
    "import": "Re-scan folder on Home reads the folder again",
}


def render_jobs(ws: Workspace, limit: int = 6) -> bool:
    """Progress bars of active jobs and one line per group of finished ones; returns whether any is active."""
    recent = jobs(ws, limit=30)
    if not recent:
        st.caption("No background jobs yet.")
        return False
    for group in collapse(recent)[:limit]:
        job = group.latest
        label = plain(describe(group))
        if job.active:
            st.progress(min(max(float(job.progress), 0.0), 1.0), text=label)
        elif job.status == "failed" and succeeded_since(recent, job):
            st.caption(f"{label} · a later {plain(job.kind)} succeeded")
        elif job.status == "failed":
            st.error(f"{plain(job.kind)} failed at {clock(group.at)}: {plain(job.error or 'unknown error')}. "
                     f"Every label is kept; {RETRY.get(job.kind, 'it can be run again')}.")
        else:
            st.caption(label)
    return any(job.active for job in recent)


def live_counts(ws: Workspace) -> label_counts_rules.LabelCounts:
    """Readable images, human labels (live from the store), propagated and unreached (from the last propagation),
    whether propagation has caught up, and the classes without a label."""
    return label_counts_rules.label_counts(
        session.image_ids(ws), ws.store.human_labels(), ws.store.classes(), session.state(ws),
        ws.store.labels_version(), [audit["image_id"] for audit in ws.store.audits()],
    )


def unlabeled_classes_banner(counts: label_counts_rules.LabelCounts) -> None:
    """Name the classes nobody has labeled yet: propagation cannot reach them, whatever the counts say."""
    message = label_counts_rules.unlabeled_classes_message([plain(n) for n in counts.unlabeled_classes],
                                                            counts.n_classes)
    if message:
        st.warning(message, icon=":material/label_off:")


@st.fragment(run_every=POLL_ACTIVE_S)
def sidebar_status() -> None:
    """Dataset name, label counts and active jobs, refreshed every second without rerunning the page."""
    current = session.settings()
    st.caption(f"Dataset: {plain(current.data_dir.name)}")
    if not current.data_dir.is_dir():
        st.warning("The data folder is missing.")
        return
    try:
        ws = session.workspace()
    except OSError:
        return
    if not session.has_images(ws):
        return
    counts = live_counts(ws)
    st.caption(plain(counts.summary()))
    if counts.lagging and active_job(ws, "refresh") is None:
        # Labels or audits changed outside this app (the CLI, another app on the folder): catch up with them.
        session.runner().catch_up(ws.store.labels_version())
    for job in jobs(ws, limit=3):
        if job.active:
            st.progress(min(max(float(job.progress), 0.0), 1.0),
                        text=plain(f"{job.kind}: {job.message or 'starting…'}"))  # no message before its first step


@st.fragment(run_every=POLL_ACTIVE_S)
def rerun_when_saved(ws: Workspace, shown: tuple[int, ...] | None) -> None:
    """Rerun the page when a new state has been saved since ``shown`` (the version the page drew); a stat a second."""
    if session.state_version(ws) != shown:
        st.rerun(scope="app")


def import_shown(ws: Workspace) -> tuple[int, bool]:
    """What a page drew of the images: the images version, and whether an import (a re-scan) was running."""
    return session.images_version(ws), active_job(ws, "import") is not None


@st.fragment(run_every=POLL_ACTIVE_S)
def rerun_when_imported(ws: Workspace, shown: tuple[int, bool]) -> None:
    """Rerun the page when an import has started, ended or changed the images since it drew ``shown``
    (:func:`import_shown`): between reruns the browser runs only fragments, and the page's counts and import report
    would stay those of the folder before the re-scan. A cached read and one small query a second."""
    if import_shown(ws) != shown:
        st.rerun(scope="app")


def latest_job(ws: Workspace, kind: str) -> Any:
    found = ws.store.jobs(kind=kind, limit=1)
    return found[0] if found else None


def active_job(ws: Workspace, kind: str) -> Any:
    job = latest_job(ws, kind)
    return job if job is not None and job.active else None

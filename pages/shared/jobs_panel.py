"""Background jobs and label counts as every page shows them, polled while a job is active.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from labeler.store import Job
from labeler.workflow import report
from labeler.workflow.workspace import Workspace
from pages.shared.session import has_images, settings, state, workspace
from pages.shared.text import plain

# Polling period of the job panel while a job is active (seconds) and when idle.
POLL_ACTIVE_S = 1.0


POLL_IDLE_S = 5.0


def jobs(ws: Workspace) -> list[Job]:
    """Recent jobs of the open workspace, newest first (from the store, so every session sees them)."""
    return ws.store.jobs(limit=10)


def render_jobs(ws: Workspace, limit: int = 6) -> bool:
    """Progress bars of recent jobs; returns whether any is still active."""
    recent = jobs(ws)[:limit]
    if not recent:
        st.caption("No background jobs yet.")
        return False
    for job in recent:
        label = f"{job.kind} · {job.status}"
        if job.message:
            label += f" · {job.message}"
        if job.active:
            st.progress(min(max(float(job.progress), 0.0), 1.0), text=plain(label))
        elif job.status == "failed":
            st.error(f"{job.kind} failed: {job.error or 'unknown error'}. Every label is kept; it can be retried.")
        else:
            st.caption(plain(label))
    return any(job.active for job in recent)


def live_counts(ws: Workspace) -> dict[str, int]:
    """Readable images, human labels (live from the store), propagated and unreached (from the last propagation)."""
    return report.label_counts(ws, state(ws))


@st.fragment(run_every=POLL_ACTIVE_S)
def sidebar_status() -> None:
    """Dataset name, label counts and active jobs, refreshed every second without rerunning the page."""
    current = settings()
    st.caption(f"Dataset: {plain(current.data_dir.name)}")
    if not current.data_dir.is_dir():
        st.warning("The data folder is missing.")
        return
    ws = workspace()
    if not has_images(ws):
        return
    counts = live_counts(ws)
    st.caption(
        f"{counts['human']} human · {counts['propagated']} propagated · {counts['none']} unreached "
        f"of {counts['images']}"
    )
    for job in jobs(ws)[:3]:
        if job.active:
            st.progress(min(max(float(job.progress), 0.0), 1.0), text=plain(f"{job.kind}: {job.message}"))


def latest_job(ws: Workspace, kind: str) -> Any:
    found = ws.store.jobs(kind=kind, limit=1)
    return found[0] if found else None


def active_job(ws: Workspace, kind: str) -> Any:
    job = latest_job(ws, kind)
    return job if job is not None and job.active else None

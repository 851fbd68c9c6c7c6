"""The queues of the Label and Review pages, kept stable across reruns in ``st.session_state``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from labeler.workflow import label_queue as label_queue_rules
from labeler.workflow.refresh import suspect_labels
from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace
from pages.shared.session import request_refresh
from pages.shared.text import plain

STRATEGIES = list(label_queue_rules.STRATEGIES)


@st.cache_data(show_spinner="Choosing typical, diverse images to label first…", max_entries=8)
def _cold_start(_ws: Workspace, key: str, n: int) -> list[int]:
    return label_queue_rules.cold_start_rows(_ws, n)


def cold_start(ws: Workspace, n: int) -> list[int]:
    """The cold-start rows, cached per workspace and image set (k-means takes a moment on large folders)."""
    return _cold_start(ws, f"{ws.workspace_dir}:{ws.fingerprint()}", n)


def label_queue(ws: Workspace, current: PipelineState | None, strategy: str, n: int) -> list[int]:
    """The rows the Label page shows, kept stable across reruns (UI state), refilled when half are labeled."""
    key = (str(ws.workspace_dir), strategy)
    saved = st.session_state.get("label_queue")
    if saved is None or saved["key"] != key:
        saved = {"key": key, "rows": [], "reasons": {}}
    skipped: set[int] = set(st.session_state.get("skipped_rows", set()))
    rows, reasons, skips_reset = label_queue_rules.refill(
        ws, current, strategy, n, saved["rows"], skipped, cold_start=cold_start
    )
    if skips_reset:
        st.session_state["skipped_rows"] = set()
    saved["reasons"].update(reasons)
    saved["rows"] = rows
    st.session_state["label_queue"] = saved
    return rows


def forget_row(row: int) -> None:
    saved = st.session_state.get("label_queue")
    if saved is not None and row in saved["rows"]:
        saved["rows"].remove(row)


def skip_row(row: int) -> None:
    skipped = set(st.session_state.get("skipped_rows", set()))
    skipped.add(row)
    st.session_state["skipped_rows"] = skipped
    forget_row(row)


def undo_last(ws: Workspace) -> int | None:
    """Undo this annotator's last label action; the image it touched goes back to the front of the queue."""
    row = label_queue_rules.undo_last(ws)
    saved = st.session_state.get("label_queue")
    if row is not None and saved is not None:
        saved["rows"] = [row, *[r for r in saved["rows"] if r != row]]
    return row


def reason_caption(row: int) -> str:
    saved = st.session_state.get("label_queue") or {}
    why = saved.get("reasons", {}).get(row, "")
    return f" · {plain(why)}" if why else ""


def full_image(ws: Workspace, row: int) -> Any:
    """The original image of ``row``, decoded (EXIF orientation applied), for the larger view."""
    from labeler.io.decode import UnreadableImage, decode_image

    try:
        return decode_image(ws.data_dir / ws.records()[row].path, ws.settings.max_image_pixels)
    except (UnreadableImage, OSError):  # changed or removed since import: the thumbnail still shows it
        return ws.thumbnails()[row]


def send_to_review(rows: list[int]) -> None:
    """Put rows at the top of this session's review queue (UI state)."""
    queued = [r for r in st.session_state.get("review_first", []) if r not in rows]
    st.session_state["review_first"] = [*rows, *queued]


def review_rows(ws: Workspace, current: PipelineState, n: int) -> list[tuple[int, str]]:
    """(row, why) for the review queue: rows sent from the map first, then ``core.review``'s queue."""
    return label_queue_rules.review_rows(ws, current, n, st.session_state.get("review_first", []),
                                         cold_start=cold_start)


def suspects(ws: Workspace, current: PipelineState) -> list[Any]:
    """Suspect human labels not dismissed in this session."""
    dismissed = set(st.session_state.get("dismissed_suspects", set()))
    try:
        found = suspect_labels(ws, current)
    except LookupError:  # the representation changed since: the next propagation brings new suspects
        return []
    return [s for s in found if s.index not in dismissed]


def dismiss_suspect(row: int) -> None:
    dismissed = set(st.session_state.get("dismissed_suspects", set()))
    dismissed.add(row)
    st.session_state["dismissed_suspects"] = dismissed


def audit_row(ws: Workspace, current: PipelineState) -> int | None:
    """The image being audited now, kept in UI state until answered (see ``label_queue.next_audit_row``)."""
    row = label_queue_rules.next_audit_row(ws, current, st.session_state.get("audit_row"))
    if row is None:
        st.session_state.pop("audit_row", None)
    else:
        st.session_state["audit_row"] = row
    return row


def submit_audit(ws: Workspace, current: PipelineState, row: int, class_id: int) -> None:
    """Store a blind audit answer (never a seed) and draw the next image."""
    label_queue_rules.answer_audit(ws, current, row, class_id)
    st.session_state.pop("audit_row", None)
    request_refresh()  # the answer is calibration evidence: recalibrate the confidences with it

"""The queues of the Label and Review pages, kept stable across reruns in ``st.session_state``.

UI state names images by :func:`labeler.workflow.label_queue.image_key` (id and content hash), never by row: a
re-scan renumbers rows, and a skipped or dismissed row number would then point at another image. Rows are looked up
from the keys on every run.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import streamlit as st
from numpy.typing import NDArray

from labeler.core import review
from labeler.workflow import label_queue as label_queue_rules
from labeler.workflow.refresh import suspect_labels
from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace
from pages.shared import session
from pages.shared.text import plain

STRATEGIES = list(label_queue_rules.STRATEGIES)
SKIPPED = "skipped_images"
REVIEW_FIRST = "review_first"
AUDIT = "audit_image"
LABEL_QUEUE = "label_queue"
REVIEW_QUEUE = "review_queue"
REVIEW_SKIPPED = "review_skipped"
AUDIT_SKIPPED = "audit_skipped"
AUDIT_AGAIN = "audit_again"
SENT_FROM_MAP = "sent from the map"


@st.cache_data(show_spinner="Choosing typical, diverse images to label first…", max_entries=8)
def _cold_start(_ws: Workspace, key: str, n: int) -> list[int]:
    return label_queue_rules.cold_start_rows(_ws, n)


def cold_start(ws: Workspace, n: int) -> list[int]:
    """The cold-start rows, cached per workspace and image set (k-means takes a moment on large folders)."""
    return _cold_start(ws, f"{ws.workspace_dir}:{session.images_version(ws)}", n)


@st.cache_resource(show_spinner="Grouping the images to find parts nobody has labeled…", max_entries=4)
def _clusters(_ws: Workspace, _state: PipelineState, key: str, n_clusters: int) -> review.Clusters:
    return label_queue_rules.cluster_rows(_ws, _state, n_clusters)


def clusters(ws: Workspace, state: PipelineState) -> review.Clusters:
    """The Label page's clusters (:func:`labeler.workflow.label_queue.cluster_rows`), cached per workspace, image
    set, representation and number of clusters: k-means takes a moment on large folders, and the number changes
    only when the labels double."""
    return _clusters(ws, state, f"{ws.workspace_dir}:{session.images_version(ws)}:{state.embedding_key}",
                     label_queue_rules.coverage_clusters(state))


def _key_set(name: str) -> set[str]:
    """A set of image keys in session state, the same object on every run (mutated in place, so that code which
    must not touch ``st.session_state``, like a keyboard widget's event handler, can still add to it)."""
    found = st.session_state.get(name)
    if not isinstance(found, set):
        found = set()
        st.session_state[name] = found
    return found


def _graph_of(ws: Workspace, current: PipelineState | None) -> Any:
    return session.graph(ws, current) if current is not None else None


def skipped_keys(name: str = SKIPPED) -> set[str]:
    return _key_set(name)


def key_list(name: str) -> list[str]:
    """A list of image keys in session state, the same object on every run (see :func:`_key_set`)."""
    found = st.session_state.get(name)
    if not isinstance(found, list):
        found = []
        st.session_state[name] = found
    return found


def label_queue(ws: Workspace, current: PipelineState | None, strategy: str, n: int,
                allowed: NDArray[np.bool_] | None = None, filter_key: Hashable = None) -> list[int]:
    """The rows the Label page shows, kept stable across reruns (UI state), refilled when half are labeled.

    ``allowed`` (bool (N,)) restricts the queue to a filter's rows; ``filter_key`` identifies that filter, and a
    new filter starts a new queue.
    """
    records = session.records(ws)
    key = (str(ws.workspace_dir), strategy, filter_key)
    saved = st.session_state.get(LABEL_QUEUE)
    if saved is None or saved.get("key") != key:
        saved = {"key": key, "keys": [], "reasons": {}}
    skipped = skipped_keys()
    rows, reasons, skips_reset = label_queue_rules.refill(
        ws, current, strategy, n, session.rows_of(ws, saved["keys"]), set(session.rows_of(ws, skipped)),
        cold_start=cold_start, records=records, allowed=allowed, W=_graph_of(ws, current), clusters=clusters,
    )
    if skips_reset:
        skipped.clear()
    saved["reasons"].update({label_queue_rules.image_key(records[row]): why for row, why in reasons.items()})
    saved["keys"][:] = session.keys_of(ws, rows)  # in place: a keyboard event handler holds this list
    st.session_state[LABEL_QUEUE] = saved
    return rows


def grid_rows(ws: Workspace, current: PipelineState | None, strategy: str, n: int,
              allowed: NDArray[np.bool_] | None = None, extra: int = 0) -> list[int]:
    """``n`` fresh rows for the Label page's grid of cards: the queue's next candidates (``allowed`` leaves out
    the keyboard widget's rows; ``extra`` more are drawn so the cold start does not run dry), not skipped."""
    skipped = set(session.rows_of(ws, skipped_keys()))
    found = label_queue_rules.candidate_rows(ws, current, strategy, n + extra, skipped, cold_start=cold_start,
                                             records=session.records(ws), allowed=allowed,
                                             W=_graph_of(ws, current), clusters=clusters)
    return [row for row, _ in found][:n]


def forget_row(ws: Workspace, row: int) -> None:
    saved = st.session_state.get(LABEL_QUEUE)
    key = session.keys_of(ws, [row])[0]
    if saved is not None and key in saved["keys"]:
        saved["keys"].remove(key)


def skip_row(ws: Workspace, row: int) -> None:
    skipped_keys().add(session.keys_of(ws, [row])[0])
    forget_row(ws, row)


def reasons(ws: Workspace) -> dict[str, str]:
    """{image key: why the label queue picked it}."""
    saved = st.session_state.get(LABEL_QUEUE) or {}
    return dict(saved.get("reasons", {}))


def reason_caption(ws: Workspace, row: int) -> str:
    saved = st.session_state.get(LABEL_QUEUE) or {}
    why = saved.get("reasons", {}).get(session.keys_of(ws, [row])[0], "")
    return f" · {plain(reason_text(why))}" if why else ""


def full_image(ws: Workspace, row: int) -> Any:
    """The original image of ``row``, decoded (EXIF orientation applied), for the larger view."""
    from labeler.io.decode import UnreadableImage, decode_image

    try:
        return decode_image(ws.data_dir / session.records(ws)[row].path, ws.settings.max_image_pixels)
    except (UnreadableImage, OSError):  # changed or removed since import: the thumbnail still shows it
        return session.thumbnails(ws)[row]


def send_to_review(ws: Workspace, rows: list[int]) -> None:
    """Put rows at the top of this tab's review queue (UI state, kept across a reload: :func:`session.tab_memory`)."""
    keys = session.keys_of(ws, rows)
    memory = session.tab_memory()
    queued = [k for k in memory.get(REVIEW_FIRST, []) if k not in keys]
    memory[REVIEW_FIRST] = [*keys, *queued]


@st.cache_data(show_spinner=False, max_entries=8)
def _review_rows(_ws: Workspace, _state: PipelineState, key: tuple[object, ...], first: tuple[int, ...],
                 n: int) -> list[tuple[int, str]]:
    return label_queue_rules.review_rows(_ws, _state, n, first, cold_start=cold_start,
                                         records=session.records(_ws), W=_graph_of(_ws, _state))


def review_rows(ws: Workspace, current: PipelineState, n: int) -> list[tuple[int, str]]:
    """(row, why) for the review queue: rows sent from the map first, then ``core.review``'s queue; cached per
    state and labels version (the queue ranks the whole collection)."""
    first = tuple(session.rows_of(ws, session.tab_memory().get(REVIEW_FIRST, [])))
    key = (str(ws.workspace_dir), session.images_version(ws), session.state_version(ws),
           ws.store.labels_version())
    return _review_rows(ws, current, key, first, n)


def review_queue(ws: Workspace, current: PipelineState, n: int, allowed: NDArray[np.bool_] | None = None,
                 filter_key: Hashable = None) -> list[tuple[int, str]]:
    """(row, why) of the review queue, kept stable across reruns like the label queue: images sent from the map
    first, then the least certain ones (the "Suggested" queue), refilled when half are done."""
    records = session.records(ws)
    key = (str(ws.workspace_dir), filter_key)
    saved = st.session_state.get(REVIEW_QUEUE)
    if not isinstance(saved, dict) or saved.get("key") != key:
        saved = {"key": key, "keys": [], "reasons": {}}
    sent = session.rows_of(ws, session.tab_memory().get(REVIEW_FIRST, []))
    if allowed is not None:
        sent = [row for row in sent if allowed[row]]
    shown = list(dict.fromkeys([*sent, *session.rows_of(ws, saved["keys"])]))
    skipped = skipped_keys(REVIEW_SKIPPED)
    rows, reasons, skips_reset = label_queue_rules.refill(
        ws, current, "Suggested", max(n, len(sent)), shown, set(session.rows_of(ws, skipped)),
        cold_start=cold_start, records=records, allowed=allowed, W=_graph_of(ws, current),
    )
    if skips_reset:
        skipped.clear()
    saved["reasons"].update({label_queue_rules.image_key(records[row]): why for row, why in reasons.items()})
    saved["reasons"].update({label_queue_rules.image_key(records[row]): SENT_FROM_MAP for row in sent})
    saved["keys"][:] = session.keys_of(ws, rows)  # in place: a keyboard event handler holds this list
    st.session_state[REVIEW_QUEUE] = saved
    return [(row, saved["reasons"].get(key, "")) for row, key in zip(rows, saved["keys"], strict=True)]


# Why an image was picked, in a person's words (the queue rules' names are the statistics behind them).
REASON_WORDS = {
    "low margin": "two classes nearly tied",
    "high entropy": "no class stands out",
    "unstable": "its label changes when the labels are resampled",
    "no seed reached": "no label reaches it",
    "random": "picked at random",
    "typical of a cluster": "typical of a group of similar images",
    "typical of an unlabeled cluster": "typical of a group nobody has labeled",
}


def reason_text(why: str) -> str:
    """The caption for a queue rule (:data:`REASON_WORDS`; other rules are already words)."""
    return REASON_WORDS.get(why, why)


def suspects(ws: Workspace, current: PipelineState) -> list[Any]:
    """Suspect human labels, those a person kept left out."""
    try:
        return suspect_labels(ws, current)
    except LookupError:  # the representation changed since: the next propagation brings new suspects
        return []


def keep_suspect(ws: Workspace, current: PipelineState, suspect: Any) -> None:
    """The person checked the label and keeps it: stored, so neither this page nor the export flags it again."""
    ws.store.keep_label(int(current.image_ids[suspect.index]), current.class_ids[suspect.human_label])


def audit_rows(ws: Workspace, current: PipelineState, n: int) -> list[int]:
    """The next ``n`` images to audit blind (uniform, in an order that stays put while answering): images whose
    answer was undone come first (to be answered again), images skipped in this session are left out."""
    again = [row for row in session.rows_of(ws, key_list(AUDIT_AGAIN)) if current.source[row] == "propagated"]
    skipped = set(session.rows_of(ws, skipped_keys(AUDIT_SKIPPED)))
    rows = label_queue_rules.audit_rows(ws, current, n + len(skipped))
    return [*again, *[row for row in rows if row not in skipped and row not in again]][:n]


def audit_row(ws: Workspace, current: PipelineState) -> int | None:
    """The image being audited now, kept in UI state until answered (see ``label_queue.next_audit_row``)."""
    kept = session.rows_of(ws, [st.session_state[AUDIT]] if AUDIT in st.session_state else [])
    row = label_queue_rules.next_audit_row(ws, current, kept[0] if kept else None)
    if row is None:
        st.session_state.pop(AUDIT, None)
    else:
        st.session_state[AUDIT] = session.keys_of(ws, [row])[0]
    return row


def submit_audit(ws: Workspace, current: PipelineState, row: int, class_id: int) -> None:
    """Store a blind audit answer (never a seed) and draw the next image."""
    label_queue_rules.answer_audit(ws, current, row, class_id, session.annotator(ws))
    st.session_state.pop(AUDIT, None)
    session.request_refresh()  # the answer is calibration evidence: recalibrate the confidences with it

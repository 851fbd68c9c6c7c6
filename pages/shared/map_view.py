"""The map page's glue: the figure built once per state, selections of points, and reruns when a newer map is
saved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from numpy.typing import NDArray

from labeler.store import ClassInfo, ImageRecord, UndoConflict
from labeler.wording import counted
from labeler.workflow import map_selection
from labeler.workflow.filters import ImageFilter
from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace
from pages.shared import figures, label_events, queues, session, text
from pages.shared.jobs_panel import POLL_ACTIVE_S

# How many of the review queue's next picks the "needs review" colouring marks.
REVIEW_MARKED = 100
MAX_SHOWN = 60  # thumbnails of a selection shown one by one, each with its own "keep" box
PER_ROW = 10
NOTHING_SELECTED = "Nothing selected: draw a lasso or a box around points on the map first."
# The images left out of a bulk label (a set of image ids): UI state that outlives reruns, redraws and pages.
LEFT_OUT = "map_left_out"
# The selection on the map (map_selection.KeptSelection): UI state that outlives a redraw of the chart.
SELECTION = "map_selection"
NONE_PASS_FILTER = "None of the selected points pass the filter: change the filter or select others."
ORIGIN = "map"  # the labels this page stores, which its Undo takes back (and no other page's)


def _state_key(ws: Workspace, current: PipelineState | None) -> tuple[int, ...] | None:
    return session.state_version(ws) if current is not None and current.umap is not None else None


def shown_key(ws: Workspace, current: PipelineState | None) -> tuple[int, ...] | None:
    """What identifies the map on screen (None while there is no map)."""
    return _state_key(ws, current)


@st.fragment(run_every=POLL_ACTIVE_S)
def rerun_when_state_changes(ws: Workspace, shown: tuple[int, ...] | None) -> None:
    """Rerun the page when a newer propagation (with its map) has been saved by the background job.

    Each poll costs a stat of the state files; the state itself is loaded (once, cached) only when they change.
    """
    if session.state_version(ws) == shown:
        return
    if _state_key(ws, session.state(ws)) != shown:
        st.rerun(scope="app")


@st.cache_resource(show_spinner="Drawing the map…", max_entries=6)
def _figure(_state: PipelineState, key: tuple[object, ...], colour_by: str, review_rows: tuple[int, ...],
            _mask: NDArray[np.bool_] | None, carried: tuple[int, ...],
            _truth_check: NDArray[np.int8] | None = None) -> go.Figure:
    needs_review = np.zeros(len(_state.label), dtype=bool)
    needs_review[list(review_rows)] = True
    assert _state.umap is not None
    return figures.map_figure(
        _state.umap, _state.label, _state.source, _state.confidence, _state.paths, _state.class_names,
        _state.class_colours, colour_by=colour_by, needs_review=needs_review, shown=_mask,
        review_label=f"next {len(review_rows)} in the review queue", carried=carried, truth_check=_truth_check,
    )


def truth_file_key(ws: Workspace) -> tuple[object, ...] | None:
    """What identifies the ground truth the map compares with (teaching mode), None without one."""
    truth = ws.settings.ground_truth_path
    if truth is None or not truth.is_file():
        return None
    stat = truth.stat()
    return str(truth), stat.st_mtime_ns, stat.st_size


def drawing(ws: Workspace, colour_by: str, review_rows: Sequence[int], image_filter: ImageFilter,
            mask: NDArray[np.bool_] | None) -> tuple[object, ...]:
    """What the map is drawn from, a carried selection aside: the same drawing is the same chart (it keeps its
    selection)."""
    return (str(ws.workspace_dir), session.images_version(ws), session.state_version(ws), colour_by,
            tuple(review_rows), image_filter if mask is not None else None,
            truth_file_key(ws) if colour_by == figures.TRUTH_MODE else None)


def map_figure(ws: Workspace, current: PipelineState, colour_by: str, review_rows: Sequence[int],
               image_filter: ImageFilter, mask: NDArray[np.bool_] | None, carried: Sequence[int] = (),
               truth_check: NDArray[np.int8] | None = None) -> go.Figure:
    """The map, built once per state, colouring, review picks, filter and carried rows, and shared (never mutate
    it). ``truth_check`` (:func:`labeler.workflow.learning_curve.truth_check`) colours it in ``figures.TRUTH_MODE``."""
    key = drawing(ws, colour_by, review_rows, image_filter, mask)  # holds the filter that ``mask`` comes from
    return _figure(current, key, colour_by, tuple(review_rows), mask, tuple(carried), truth_check)


def kept_selection() -> map_selection.KeptSelection | None:
    """The selection on the map in this browser tab, kept across redraws (None: nothing selected)."""
    kept = st.session_state.get(SELECTION)
    return kept if isinstance(kept, map_selection.KeptSelection) else None


def _chart(plain_drawing: Hashable, carried: Sequence[int]) -> tuple[Hashable, tuple[int, ...]]:
    """What identifies the chart on screen: its drawing and the rows it draws as a carried selection."""
    return plain_drawing, tuple(carried)


def carried_rows(records: Sequence[ImageRecord], plain_drawing: Hashable) -> list[int]:
    """Rows to draw as selected on the map about to be drawn: the kept selection, when the chart it was picked on is
    gone."""
    ids = set(map_selection.carried_ids(kept_selection(), _chart(plain_drawing, ())))
    return [row for row, record in enumerate(records) if record.id in ids] if ids else []


def follow_selection(records: Sequence[ImageRecord], plain_drawing: Hashable, carried: Sequence[int],
                     picked_rows: Sequence[int]) -> tuple[list[int], bool]:
    """The rows selected now, and whether they were kept from an earlier drawing of the map: the points picked on
    the chart drawn from ``plain_drawing`` with ``carried`` rows drawn as selected, or the selection kept from before
    a redraw.

    Points picked on a chart that carries an older selection replace it: the page is run again at once, so that the
    chart draws them as the selection it carries.
    """
    drawn_on = _chart(plain_drawing, carried)
    picked = [records[row].id for row in picked_rows if 0 <= row < len(records)]
    kept = map_selection.after_drawing(kept_selection(), drawn_on, picked)
    st.session_state[SELECTION] = kept
    if kept is None:
        return [], False
    row_of = {record.id: row for row, record in enumerate(records)}
    rows = [row_of[i] for i in kept.image_ids if i in row_of]
    if carried and picked and sorted(rows) != sorted(carried):
        st.rerun()
    return rows, kept.drawn_on != drawn_on


def _clear_selection() -> None:
    st.session_state[SELECTION] = None


def clear_button() -> None:
    """The way to drop a selection kept from before a redraw (the new chart has no selection to clear)."""
    st.button("Clear selection", key="map_clear_selection", on_click=_clear_selection,
              help="The map was redrawn (new labels, colouring or filter) after you picked these images; they stay "
                   "selected until you clear them or pick others.")


def selected_rows(event: Any) -> list[int]:
    """Rows of the points picked by a click, lasso or box selection on the map (from each point's customdata)."""
    try:
        points = event.selection.points
    except AttributeError:
        return []
    rows: list[int] = []
    for point in points:
        value = point.get("customdata")
        if isinstance(value, dict):  # a row of a 2-D typed array arrives as {"0": row, "1": confidence}
            value = value.get("0", next(iter(value.values()), None))
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if value is not None:
            rows.append(int(value))
    return list(dict.fromkeys(rows))


def majority_label(labels: Iterable[int] | NDArray[np.integer[Any]]) -> int | None:
    """The most common class index among ``labels`` (-1, none, left out); ties go to the smaller index."""
    counted = Counter(int(label) for label in labels if label >= 0)
    if not counted:
        return None
    return min(counted, key=lambda label: (-counted[label], label))


def odd_ones_first(rows: Sequence[int], labels: NDArray[np.integer[Any]], confidence: NDArray[np.floating[Any]],
                   majority: int | None) -> list[int]:
    """``rows`` with those whose label is not ``majority`` first, then the least confident: the images most
    likely to be taken out of a bulk label come first."""
    return sorted(rows, key=lambda row: (int(labels[row]) == majority, float(confidence[row])))


def _keep_key(image_id: int) -> str:
    return f"map_keep_{image_id}"


def left_out_ids() -> set[int]:
    """The images the person left out of a bulk label, by image id: they stay left out across reruns, a redraw of
    the map and a new selection, until ticked again."""
    return set(st.session_state.get(LEFT_OUT, ()))


def _keep_changed(image_id: int) -> None:
    left_out = left_out_ids()
    if st.session_state.get(_keep_key(image_id), True):
        left_out.discard(image_id)
    else:
        left_out.add(image_id)
    st.session_state[LEFT_OUT] = left_out


def _put_back(image_ids: Sequence[int]) -> None:
    st.session_state[LEFT_OUT] = left_out_ids() - set(image_ids)


def selection_panel(ws: Workspace, current: PipelineState, selected: Sequence[int],
                    human: Mapping[int, int]) -> None:
    """The selected images, each with a "keep" box, and the bulk actions: label all kept images as one class
    (defaulting to the class most of them were given) or send them to review. Human labels in the selection stay
    unless "Also relabel the N human labels" is ticked. ``human``: {image id: class id} of the store now."""
    records = session.records(ws)
    thumbs = session.thumbnails(ws)
    classes = ws.store.classes()
    ids = [records[row].id for row in selected]
    row_of = dict(zip(ids, selected, strict=True))
    left_out = left_out_ids()
    st.subheader(f"{len(selected)} selected")
    signature = abs(hash(tuple(sorted(ids)))) % 10**10  # a new selection starts unticked, at its majority class
    humans = map_selection.human_ids(ids, left_out, human)
    in_selection = [i for i in ids if i in human]
    relabel_humans = False
    if in_selection:
        n = len(humans)
        relabel_humans = st.checkbox(
            f"Also relabel the {n} human label{'' if n == 1 else 's'}", key=f"map_relabel_humans_{signature}",
            help="Off: a bulk label leaves the human labels in the selection as they are. On: they get the chosen "
            "class too, in the same action (Undo reverts it), to correct a wrongly labeled cluster.")
        if not relabel_humans:
            kept = len(in_selection)
            st.caption(f"{kept} of them already {'has' if kept == 1 else 'have'} a human label and "
                       f"{'keeps' if kept == 1 else 'keep'} it unless the box above is ticked.")
    candidates = [row_of[i] for i in map_selection.candidate_ids(ids, human, relabel_humans)]
    majority = majority_label(current.label[candidates]) if candidates else None
    ordered = [records[row].id for row in odd_ones_first(candidates, current.label, current.confidence, majority)]
    shown = map_selection.keep_boxes(ordered, left_out, MAX_SHOWN)
    if shown:
        st.caption("Untick the images to leave out. Those labeled differently from most of the selection, and the "
                   "least confident, come first.")
    for start in range(0, len(shown), PER_ROW):
        cols = st.columns(PER_ROW)
        for col, image_id in zip(cols, shown[start : start + PER_ROW], strict=False):
            row = row_of[image_id]
            with col:
                st.image(thumbs[row], width="stretch")
                guess = current.class_names[current.label[row]] if current.label[row] >= 0 else "none"
                st.session_state[_keep_key(image_id)] = image_id not in left_out
                st.checkbox(text.plain(guess + (" (human)" if image_id in human else "")), key=_keep_key(image_id),
                            on_change=_keep_changed, args=(image_id,),
                            help=text.plain(f"{records[row].path}: {guess}, {current.confidence[row]:.0%}"))
    if len(candidates) > len(shown):
        st.caption(f"The other {len(candidates) - len(shown)} selected images are not shown and are included.")
    gone = [i for i in ids if i in left_out]
    if gone:
        col_said, col_back = st.columns([3, 1], vertical_alignment="center")
        col_said.caption(f"{len(gone)} left out (kept by image, also when the map is redrawn).")
        col_back.button("Put them back", key="map_put_back", on_click=_put_back, args=(gone,))

    class_index = {c.id: i for i, c in enumerate(classes)}
    default = 0
    if majority is not None and majority < len(current.class_ids) and current.class_ids[majority] in class_index:
        default = class_index[current.class_ids[majority]]
    col_class, col_actions = st.columns([2, 3], vertical_alignment="bottom")
    chosen = col_class.selectbox(
        "Label all selected as", classes, index=default if classes else None, format_func=lambda c: c.name,
        key=f"map_class_{signature}", help="Starts at the label most of the selected images were given.",
    )
    plan = map_selection.plan_bulk_label(ids, left_out, human, chosen.id, relabel_humans) if chosen else None
    review = [row_of[i] for i in ids if i not in human and i not in left_out]
    if chosen is None:
        why = "No class to label them with: add classes on the Home page first."
    elif not candidates:
        n = len(selected)
        why = (f"All {n} selected images already have a human label, and a bulk label keeps them unless you tick "
               f"Also relabel the {len(humans)} human label{'' if len(humans) == 1 else 's'}; or correct them one "
               "by one (click a point, or Review & audit, Suspect human labels).")
    else:
        why = "Every selected image is left out: tick the ones to act on."
    with col_actions:
        actions(ws, records, plan, review, len(humans), chosen, why)


def actions(ws: Workspace, records: Sequence[ImageRecord], plan: map_selection.BulkLabel | None,
            review: Sequence[int], humans: int, chosen: ClassInfo | None, why_none: str) -> None:
    """The bulk actions and their keys: l labels as ``chosen`` what ``plan`` says, v sends the rows ``review`` to
    review (not the selection's ``humans`` human labels, which it says), u undoes.

    The buttons stay enabled when there is nothing to act on (``why_none`` says why), because a disabled button's
    key does nothing, silently: a pressed key always answers.
    """
    col_apply, col_review, col_undo = st.columns(3, vertical_alignment="bottom")
    annotator = session.annotator(ws)
    targets = plan.relabel if plan is not None else ()
    label_text = f"Label {counted(len(targets), 'image')}" if targets else "Label selected"
    if col_apply.button(label_text, key="map_label", type="primary" if targets else "secondary", shortcut="l"):
        if plan is None or not targets:
            st.toast(why_none, icon=":material/info:")
        else:
            changed = ws.store.set_labels(targets, plan.class_id, annotator, origin=ORIGIN)
            session.request_refresh()
            st.session_state[SELECTION] = map_selection.labeled(kept_selection())
            # A toast outlives the rerun that redraws the map once the new labels have propagated.
            name = chosen.name if chosen is not None else ""
            st.toast(text.plain(map_selection.bulk_label_message(plan, name, changed)))
    if col_review.button("Send to review", key="map_review", shortcut="v"):
        if not review and not humans:
            st.toast(why_none, icon=":material/info:")
        elif not review:
            st.toast(text.plain(map_selection.review_message(0, humans)), icon=":material/info:")
        else:
            queues.send_to_review(ws, list(review))
            st.toast(text.plain(map_selection.review_message(len(review), humans)))
            st.page_link("pages/review.py", label="Open the review queue", icon=":material/fact_check:")
    if col_undo.button("Undo", key="map_undo", help="Revert your last bulk label on the map (in this tab); labels "
                       "made on other pages are theirs to undo.", shortcut="u"):
        undo(ws, annotator, records)


def inspector(ws: Workspace, current: PipelineState, row: int, human: Mapping[int, int]) -> None:
    """One clicked image: its thumbnail, file, label and confidence; a human label can be changed here, as one
    action that Undo reverts. ``human``: {image id: class id} of the store now."""
    record = session.records(ws)[row]
    st.image(session.thumbnails(ws)[row], width="stretch")
    name = current.class_names[current.label[row]] if current.label[row] >= 0 else "no label"
    st.caption(f"{text.plain(record.path)}  \n{text.plain(name)} · {text.plain(current.source[row])} · "
               f"confidence {current.confidence[row]:.0%}")
    labeled = human.get(record.id)
    classes = ws.store.classes()
    index = next((i for i, c in enumerate(classes) if c.id == labeled), None)
    if labeled is None or index is None:
        return
    chosen = st.selectbox("Human label", classes, index=index, format_func=lambda c: c.name,
                          key=f"map_human_{record.id}", help="Choose the right class, then Change label.")
    if st.button("Change label", key="map_change"):
        if chosen is None or chosen.id == labeled:
            st.toast(text.plain(f"{record.path} is already {classes[index].name}: choose another class first."),
                     icon=":material/info:")
        else:
            ws.store.set_labels([record.id], chosen.id, session.annotator(ws), origin=ORIGIN)
            session.request_refresh()
            st.toast(text.plain(f"{record.path}: {classes[index].name} → {chosen.name} (Undo reverts it)."))


def undo(ws: Workspace, annotator: str, records: Sequence[ImageRecord]) -> None:
    """Undo this tab's last label action on the map and say what it took back, or say why not: nothing to undo,
    or its images were relabeled since (the store refuses rather than overwrite that work)."""
    try:
        action = ws.store.undo_action(annotator, origin=ORIGIN)
    except UndoConflict as conflict:
        st.toast(text.plain(label_events.conflict_text(conflict)), icon=":material/warning:")
        return
    if action is None:
        st.toast("Nothing of yours to undo on the map.")
    else:
        session.request_refresh()
        st.toast(label_events.undone_text(action, ws.store.classes(), records))

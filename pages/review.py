"""Review and audit: the tools against confirmation bias, and the honest estimate of how good the labels are."""

from __future__ import annotations

from typing import Any

import streamlit as st

from labeler.workflow import label_queue as queue
from labeler.workflow import report
from labeler.workflow.state import PipelineState
from pages.shared import (
    class_keys,
    figures,
    filter_bar,
    label_events,
    map_view,
    model_view,
    queues,
    remembered,
    session,
    text,
)
from pages.shared.key_help import no_keys_here
from pages.shared.keyboard_labeler import keyboard_labeler

PREFETCH = 8
ORIGIN = "review"  # the labels this page stores, which its undo takes back (and no other page's)
VIEWS = ["Least certain", "Blind audit", "Suspect human labels", "Possible new classes"]
NO_KEYS = "this view has no keys, its buttons do the work; class keys work in Least certain and Blind audit."

ws = session.require_images("Review & audit")
state = session.state(ws)
classes = ws.store.classes()
if state is None or not classes:
    st.info("Review starts once there are classes, a few human labels and a first propagation.")
    no_keys_here("Keys on Review & audit", "review starts once there are classes, a few human labels and a first "
                 "propagation.")
    map_view.rerun_when_state_changes(ws, None)
    st.stop()

records = session.records(ws)
thumbs = session.thumbnails(ws)
specs = label_events.class_specs(classes)
# One view at a time (not tabs): the keyboard goes to the one labeling widget on the page.
view = st.segmented_control(
    "View", VIEWS, required=True, label_visibility="collapsed",
    **remembered.bind("review:view", VIEWS[0], valid=lambda v: v if v in VIEWS else VIEWS[0]),
) or VIEWS[0]

if view in VIEWS[2:]:  # no labeling widget in these views: the page's key help answers a key instead
    no_keys_here(f"Keys in {view}", NO_KEYS)


def accuracy_estimate(current: PipelineState) -> dict[str, Any] | None:
    """The blind audit's estimate, kept in view above the audit; returns the estimate (None before any audit)."""
    headline = report.headline(ws, current)
    estimate = headline["estimate"]
    col_estimate, col_interval, col_truth = st.columns(3)
    col_estimate.metric("Estimated accuracy of propagated labels", headline["value"], help=headline["detail"])
    if estimate is not None and not estimate["enough"]:  # no headline yet: the answers' wide interval in view
        col_interval.metric("95% interval", f"{estimate['low']:.0%} – {estimate['high']:.0%}",
                            help=f"from {estimate['n']} blind audits")
    elif estimate is not None:
        # The headline is already the interval; beside it, what it rests on (as counts, not a share that would
        # read as more certain than the answers allow).
        col_interval.metric("Blind audits answered right", f"{round(estimate['accuracy'] * estimate['n'])} of "
                            f"{estimate['n']}", help="Compared with each image's label now, not when it was audited.")
    truth = model_view.teaching(ws, current)
    if truth is not None and truth["accuracy"] is not None:
        col_truth.metric("True accuracy (teaching mode)", f"{truth['accuracy']:.1%}",
                         help="From the ground truth, never shown as labels.")
    st.caption(headline["detail"])  # numbers only, no user text
    return estimate


if view == "Least certain":
    st.caption("Propagated labels the model is least sure of, spread over the map, with a share of random ones to "
               "keep the queue honest. Accept the proposal with one key, or press another class's key: either "
               "makes it a human label.")
    image_filter = filter_bar.filter_bar("review", state.class_names, sources=("propagated", "none"))
    allowed = filter_bar.rows_matching(image_filter, state.paths, state,
                                       (session.images_version(ws), session.state_version(ws)))
    filter_bar.caption(image_filter, allowed)
    rows = queues.review_queue(ws, state, PREFETCH, allowed, filter_key=image_filter)
    proposals = {row: state.class_ids[state.label[row]] for row, _ in rows if state.label[row] >= 0}
    names = state.label_names()
    captions = {row: (f"{queues.reason_text(why)} · " if why else "")
                + (f"proposal: {names[row]} ({state.confidence[row]:.0%})" if row in proposals
                   else "no proposal (no seed reaches it)")
                for row, why in rows}
    handler = label_events.Handler(ws, session.annotator(ws), session.runner(), mode=ORIGIN,
                                   skipped=queues.skipped_keys(queues.REVIEW_SKIPPED),
                                   queue=label_events.handler_queue(st.session_state.get(queues.REVIEW_QUEUE)))
    keyboard_labeler(
        label_events.items_for(ws, [row for row, _ in rows], captions=captions, proposals=proposals),
        [label_events.accept_spec(specs), *specs], key="review_keys", on_event=handler.on_event, undo_earlier=True,
        accept=label_events.ACCEPT,
    )
    label_events.show_problems(handler)

elif view == "Blind audit":
    st.caption("A uniform random sample of propagated images, shown WITHOUT their propagated label. Press the key of "
               "the class you see; your answers are kept apart from the seeds and estimate how accurate the "
               "propagated labels are. Skipping leaves an image out of the estimate: skip only what nobody could "
               "tell. An image of a class that is not on the list is a wrong label: add that class below and "
               "answer with its key (this image waits); skipping it would leave a wrong label out of the estimate.")
    estimate = accuracy_estimate(state)
    audit_list = queues.audit_rows(ws, state, PREFETCH)
    handler = label_events.Handler(ws, session.annotator(ws), session.runner(), mode="audit",
                                   skipped=queues.skipped_keys(queues.AUDIT_SKIPPED), state=state,
                                   again=queues.key_list(queues.AUDIT_AGAIN))
    keyboard_labeler(label_events.items_for(ws, audit_list, blind=True), specs, key="audit_keys",
                     on_event=handler.on_event)
    label_events.show_problems(handler)
    with st.form("audit_new_class", clear_on_submit=True, border=False):
        col_name, col_add = st.columns([3, 1], vertical_alignment="bottom")
        new_name = col_name.text_input("A class not on the list", placeholder="its name", key="audit_new_class_name")
        if col_add.form_submit_button("Add the class"):
            error = class_keys.create_class_and_label(ws, new_name, [], session.annotator(ws), ORIGIN)
            if error:
                st.error(text.plain(error))
            else:
                st.rerun()  # its key joins the audit's keys
    if not audit_list:
        st.caption("No propagated image left to audit.")
    if estimate is not None:
        if estimate["per_class"]:
            st.dataframe(estimate["per_class"], hide_index=True)
        if estimate["per_class_note"]:
            st.caption(text.plain(estimate["per_class_note"]))
        table = report.reliability(ws, state)
        if table:
            st.plotly_chart(figures.reliability_figure(table["confidence"], table["accuracy"], table["count"],
                                                       table.get("low"), table.get("high")), key="reliability")
            st.caption(table["note"])
    target = st.slider("Target precision (share of kept labels that are right)", 0.5, 0.999, step=0.005,
                       help="The suggested threshold keeps the most propagated labels whose 95% interval of the share "
                       "right stays at or above this.",
                       **remembered.bind("review:target_precision", float(ws.settings.target_precision)))
    choice = report.threshold_choice(ws, target, state)
    if choice is not None:
        (st.success if choice["threshold"] is not None else st.caption)(choice["text"])

elif view == "Suspect human labels":
    suspects = queues.suspects(ws, state)
    if not suspects:
        st.caption("No human label is contradicted by its neighbourhood.")
    else:
        st.caption("Your labels whose neighbours' labels point to another class far more than they do for your other "
                   "labels, the strongest first: keep the label if it is right, or change it.")
    for suspect in suspects[:12]:
        col_image, col_text, col_keep, col_change = st.columns([1, 3, 1, 1], vertical_alignment="center")
        col_image.image(thumbs[suspect.index], width=72)
        human, other = state.class_names[suspect.human_label], state.class_names[suspect.neighbourhood_label]
        col_text.markdown(
            f"{text.plain(records[suspect.index].path)}: labeled **{text.plain(human)}**; its neighbours' labels "
            f"point to **{text.plain(other)}** far more than to its own label"
        )
        image_id = records[suspect.index].id
        col_keep.button("Keep", key=f"keep_{image_id}", on_click=queues.keep_suspect, args=(ws, state, suspect))
        if col_change.button(f"→ {text.plain(other)}", key=f"change_{image_id}"):
            ws.store.set_labels([image_id], state.class_ids[suspect.neighbourhood_label], session.annotator(ws),
                                origin=ORIGIN)
            session.request_refresh()
            st.toast(f"{text.plain(records[suspect.index].path)}: now labeled {text.plain(other)}.")
            st.rerun()

else:
    st.caption("Images far from every labeled example in the graph, then typical images of groups (k-means "
               "clusters) without a label: they may belong to a class you have not defined. They are shown rather "
               "than forced into a class.")
    flagged = queue.new_class_rows(state, 24, queues.clusters(ws, state))
    n_isolated = int(state.isolated_rows().sum())
    if n_isolated:
        st.warning(report.isolated_summary(n_isolated))
    if not flagged:
        st.caption("None flagged.")
    else:
        # Each picture captioned with the name the picker below lists it by.
        st.image([thumbs[row] for row in flagged], width=96, caption=[records[row].path for row in flagged])
        with st.form("new_class_form", clear_on_submit=True):
            new_name = st.text_input("Name a new class for some of these", key="new_class_from_review")
            chosen = st.multiselect("Images", flagged, format_func=lambda r: records[r].path, key="new_class_rows")
            if st.form_submit_button("Create class and label them"):
                error = class_keys.create_class_and_label(ws, new_name, [records[r].id for r in chosen],
                                                          session.annotator(ws), ORIGIN)
                if error:
                    st.error(text.plain(error))
                else:
                    session.request_refresh()

if st.session_state.get(queues.AUDIT_SKIPPED):
    st.caption(f"{report.counted(len(st.session_state[queues.AUDIT_SKIPPED]), 'audit image')} skipped in this "
               "session.")

"""Review and audit: the tools against confirmation bias, and the honest estimate of how good the labels are."""

from __future__ import annotations

import streamlit as st

from labeler.workflow import label_queue as queue
from labeler.workflow import report
from pages.shared import class_keys, figures, map_view, model_view, queues, session, text

ws = session.require_images()
st.title("Review & audit")
state = session.state(ws)
classes = ws.store.classes()
if state is None or not classes:
    st.info("Review starts once there are classes, a few human labels and a first propagation.")
    map_view.rerun_when_state_changes(ws, None)
    st.stop()

records = ws.records()
thumbs = ws.thumbnails()
names = {c.id: c.name for c in classes}
class_ids = [c.id for c in classes]


def confirm(row: int, key: str) -> None:
    """A reviewed image becomes a human label (a seed), as one undoable action."""
    class_id = st.session_state.get(key)
    if class_id is not None:
        ws.store.set_labels([records[row].id], class_id, session.annotator(ws))
        session.request_refresh()


def image_grid(rows: list[tuple[int, str]], prefix: str, columns: int = 4) -> None:
    """Thumbnails with why each was picked and one-click class pills that store a human label."""
    for start in range(0, len(rows), columns):
        cols = st.columns(columns, border=True)
        for col, (row, why) in zip(cols, rows[start : start + columns], strict=False):
            with col:
                st.image(thumbs[row], width=96)
                st.caption(text.plain(records[row].path) + (f" · {text.plain(why)}" if why else ""))
                key = f"{prefix}_{records[row].id}"
                st.pills("Class", class_ids, format_func=lambda c: text.plain(names[c]), key=key,
                         on_change=confirm, args=(row, key), label_visibility="collapsed", wrap=True)


tab_queue, tab_suspects, tab_new, tab_audit = st.tabs(
    ["Least certain", "Suspect human labels", "Possible new classes", "Blind audit"]
)

with tab_queue:
    st.caption("Propagated labels the model is least sure of, spread over the map, with a share of random ones "
               "to keep the queue honest. Picking a class makes it a human label.")
    proposals = state.label_names()
    image_grid([(row, f"{why} · now {proposals[row] or 'none'} {state.confidence[row]:.0%}")
                for row, why in queues.review_rows(ws, state, 12)], "review")

with tab_suspects:
    suspects = queues.suspects(ws, state)
    if not suspects:
        st.caption("No human label is contradicted by its neighbourhood.")
    for suspect in suspects[:12]:
        col_image, col_text, col_keep, col_change = st.columns([1, 3, 1, 1], vertical_alignment="center")
        col_image.image(thumbs[suspect.index], width=72)
        human, other = state.class_names[suspect.human_label], state.class_names[suspect.neighbourhood_label]
        col_text.markdown(
            f"{text.plain(records[suspect.index].path)}: labeled **{text.plain(human)}**, its neighbours say "
            f"**{text.plain(other)}** ({suspect.support:.0%})"
        )
        col_keep.button("Keep", key=f"keep_{suspect.index}", on_click=queues.dismiss_suspect, args=(suspect.index,))
        if col_change.button(f"→ {text.plain(other)}", key=f"change_{suspect.index}"):
            ws.store.set_labels([records[suspect.index].id], state.class_ids[suspect.neighbourhood_label],
                                session.annotator(ws))
            session.request_refresh()
            st.rerun()

with tab_new:
    st.caption("Images far from every labeled example in the graph: they may belong to a class you have not "
               "defined. They are flagged rather than forced into a class.")
    flagged = queue.new_class_rows(state, 24)
    if not flagged:
        st.caption("None flagged.")
    else:
        st.image([thumbs[row] for row in flagged], width=72)
        with st.form("new_class_form", clear_on_submit=True):
            new_name = st.text_input("Name a new class for some of these", key="new_class_from_review")
            chosen = st.multiselect("Images", flagged, format_func=lambda r: records[r].path, key="new_class_rows")
            if st.form_submit_button("Create class and label them"):
                error = class_keys.create_class_and_label(ws, new_name, [records[r].id for r in chosen])
                if error:
                    st.error(error)
                else:
                    session.request_refresh()

with tab_audit:
    st.caption("A uniform random sample of propagated images, shown WITHOUT their propagated label. Your answers "
               "are kept apart from the seeds and estimate how accurate the propagated labels are.")
    row = queues.audit_row(ws, state)
    col_image, col_answer = st.columns([1, 2])
    if row is None:
        col_image.caption("No propagated image left to audit.")
    else:
        col_image.image(thumbs[row], width=200)
        with col_answer:
            st.markdown("**What is this?**")
            for info in classes:
                st.button(text.plain(info.name), key=f"audit_{info.id}", on_click=queues.submit_audit,
                          args=(ws, state, row, info.id))
    headline = report.headline(ws, state)
    estimate = headline["estimate"]
    st.metric("Estimated accuracy of propagated labels", headline["value"], help=headline["detail"])
    st.caption(headline["detail"])
    if estimate is not None:
        truth = model_view.teaching(ws, state)
        if truth is not None and truth["accuracy"] is not None:
            st.caption(f"Teaching mode: true accuracy {truth['accuracy']:.1%} (from the ground truth, never shown "
                       "as labels)")
        if estimate["per_class"]:
            st.dataframe(estimate["per_class"], hide_index=True)
        if estimate["per_class_note"]:
            st.caption(text.plain(estimate["per_class_note"]))
        table = report.reliability(ws, state)
        if table:
            st.plotly_chart(figures.reliability_figure(table["confidence"], table["accuracy"], table["count"],
                                                       table.get("low"), table.get("high")), key="reliability")
            st.caption(table["note"])
    target = st.slider("Target precision", 0.5, 0.999, value=float(ws.settings.target_precision), step=0.005,
                       key="target_precision")
    choice = report.threshold_choice(ws, target, state)
    if choice is not None:
        (st.success if choice["threshold"] is not None else st.caption)(choice["text"])

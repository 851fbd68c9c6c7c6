"""Map: the UMAP scatter of every image; lasso or box a region to see, label or review what is in it."""

from __future__ import annotations

import streamlit as st

from labeler.workflow import label_queue as queue
from pages.shared import figures, map_view, queues, session, text

ws = session.require_images()
st.title("Map")
state = session.state(ws)
if state is None or state.umap is None:
    st.info("The map appears once the images have been embedded and laid out (a background job, seconds to a "
            "minute). It refreshes on its own.")
    if st.button("Compute now", key="compute_map"):
        session.request_refresh()
    map_view.rerun_when_state_changes(ws, None)
    st.stop()

records = ws.records()
classes = ws.store.classes()
col_colour, col_live = st.columns([3, 1], vertical_alignment="bottom")
colour_by = col_colour.segmented_control(
    "Colour by", list(figures.COLOUR_MODES), default="label", key="map_colour", required=True
)
live = col_live.toggle("Follow updates", value=True, key="map_live",
                       help="Redraw when new labels have propagated (may reset a selection).")
fig = figures.map_figure(
    state.umap, state.label, state.source, state.confidence, state.paths, state.class_names,
    state.class_colours, colour_by=colour_by or "label", needs_review=state.new_class,
)
counts = state.counts
st.caption(
    f"{counts['human']} human (diamonds) · {counts['propagated']} propagated (fainter = less confident) · "
    f"{counts['none']} unreached · representation: {text.plain(state.representation)}"
)
event = st.plotly_chart(fig, key="map_chart", on_select="rerun", selection_mode=("lasso", "box"))
if live:
    map_view.rerun_when_state_changes(ws, state.computed_at)

selected = map_view.selected_rows(event)
if not selected:
    st.caption("Draw a lasso or a box around points to see those images here.")
    st.stop()

st.subheader(f"{len(selected)} selected")
thumbs = ws.thumbnails()
shown = selected[:48]
st.image([thumbs[row] for row in shown], width=72)
if len(selected) > len(shown):
    st.caption(f"showing the first {len(shown)}")
# A bulk label never overwrites a human label: correct those one by one (Review page, suspects).
free = set(queue.unlabeled_rows(ws))
targets = [row for row in selected if row in free]
if len(targets) < len(selected):
    st.caption(f"{len(selected) - len(targets)} of them already have a human label and keep it.")
col_class, col_apply, col_review = st.columns([2, 1, 1], vertical_alignment="bottom")
chosen = col_class.selectbox("Label all selected as", classes, format_func=lambda c: c.name, key="map_class")
if col_apply.button(f"Label {len(targets)} images", key="map_label", type="primary",
                    disabled=not targets or chosen is None) and chosen is not None:
    changed = ws.store.set_labels([records[r].id for r in targets], chosen.id, session.annotator(ws))
    session.request_refresh()
    # A toast outlives the rerun that redraws the map once the new labels have propagated.
    st.toast(f"{changed} images labeled {text.plain(chosen.name)} (one undo on the Label page reverts them).")
if col_review.button("Send to review", key="map_review", disabled=not targets):
    queues.send_to_review(targets)
    st.toast(f"{len(targets)} images put at the top of the review queue.")
    st.page_link("pages/review.py", label="Open the review queue", icon=":material/fact_check:")

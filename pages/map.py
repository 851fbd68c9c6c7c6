"""Map: the UMAP scatter of every image; click a point to see it, lasso or box a region to label or review it."""

from __future__ import annotations

import numpy as np
import streamlit as st

from labeler.workflow import learning_curve
from pages.shared import figures, filter_bar, jobs_panel, map_hover, map_view, queues, remembered, session, text

ws = session.require_images("Map")
state = session.state(ws)
if state is None or state.umap is None:
    st.info("The map appears once the images have been embedded and laid out (a background job, seconds to a "
            "minute). It refreshes on its own.")
    if st.button("Compute now", key="compute_map"):
        session.request_refresh()
    map_view.rerun_when_state_changes(ws, None)
    st.stop()

records = session.records(ws)
col_colour, col_live = st.columns([3, 1], vertical_alignment="bottom")
# Teaching mode (a ground truth): where propagation is right and wrong, to show live where the method fails.
modes = [*figures.COLOUR_MODES, *([figures.TRUTH_MODE] if map_view.truth_file_key(ws) else [])]
colour_by = col_colour.segmented_control(
    "Colour by", modes, required=True,
    help="needs review: the images the review queue would show next (least certain first, spread over the map, "
    "with a share of random ones)." + (" vs ground truth (teaching mode): red where the propagated label is wrong."
                                       if figures.TRUTH_MODE in modes else ""),
    **remembered.bind("map:colour", "label", valid=lambda v: v if v in modes else "label"),
) or "label"
live = col_live.toggle("Follow updates",
                       help="Redraw when new labels have propagated. Your selection stays selected on the redrawn "
                       "map, and the images left out of it stay left out.", **remembered.bind("map:live", True))
image_filter = filter_bar.filter_bar("map", state.class_names)
mask = filter_bar.rows_matching(image_filter, state.paths, state,
                                (session.images_version(ws), session.state_version(ws)))
filter_bar.caption(image_filter, mask)
review_rows = [row for row, _ in queues.review_rows(ws, state, map_view.REVIEW_MARKED)] \
    if colour_by == "needs review" else []
plain_drawing = map_view.drawing(ws, colour_by, review_rows, image_filter, mask)
carried = map_view.carried_rows(records, plain_drawing)
check = learning_curve.truth_check(ws, state) if colour_by == figures.TRUTH_MODE else None  # read once, for both
fig = map_view.map_figure(ws, state, colour_by, review_rows, image_filter, mask, carried, check)
now = jobs_panel.live_counts(ws)
if now.up_to_date and now.images == len(state.image_ids):  # the same numbers as the sidebar's
    audited = f" · {now.audited} audited (drawn as propagated)" if now.audited else ""
    drawn = (f"{now.human} human (diamonds) · {now.propagated} propagated (fainter = less confident){audited} · "
             f"{now.none} unreached")
else:
    counts = state.counts
    drawn = (f"{counts['human']} human (diamonds) · {counts['propagated']} propagated (fainter = less confident) · "
             f"{counts['none']} unreached, as of the last propagation (it is catching up with the latest labels)")
st.caption(f"{drawn} · representation: {text.plain(state.representation)}")
if check is not None:
    wrong, checked = int(np.sum(check == learning_curve.WRONG)), int(np.sum(check >= 0))
    st.caption(f"Teaching mode: {wrong:,} of the {checked:,} propagated labels the ground truth names are wrong "
               "(red). The ground truth is only compared with, never used as labels; where red points gather, the "
               "graph links images of different classes, or a class has no label.")
col_map, col_point = st.columns([4, 1])
with col_map:
    event = st.plotly_chart(fig, key=map_hover.CHART_KEY, on_select="rerun", selection_mode=("points", "box", "lasso"))
if live:
    map_view.rerun_when_state_changes(ws, map_view.shown_key(ws, state))

selected, kept_from_before = map_view.follow_selection(records, plain_drawing, carried,
                                                      map_view.selected_rows(event))
picked = bool(selected)
if kept_from_before and selected:
    col_kept, col_clear = st.columns([3, 1], vertical_alignment="center")
    col_kept.caption(f"Your selection of {len(selected):,} images is kept from before the map was redrawn: pick "
                     "others on the map, or clear it.")
    with col_clear:
        map_view.clear_button()
if mask is not None:
    selected = [row for row in selected if mask[row]]
human = ws.store.human_labels()  # the store's labels now (the map's may be a propagation behind)
with col_point:
    map_hover.hover_thumbnail(ws, state)  # hover shows the thumbnail at the pointer
    if len(selected) == 1:
        map_view.inspector(ws, state, selected[0], human)
    else:
        st.caption("Hover a point to see its thumbnail; click it (or near it) to see it here with its name, label "
                   "and confidence, and to change a human label.")
if not selected:
    st.caption("Draw a lasso or a box around points to see those images here.")
    map_view.actions(ws, records, None, [], 0, None,
                     map_view.NONE_PASS_FILTER if picked else map_view.NOTHING_SELECTED)
    st.stop()

map_view.selection_panel(ws, state, selected, human)

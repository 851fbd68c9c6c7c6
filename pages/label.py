"""Label: one key or one click labels the image on screen; the label is stored at once and propagation catches up
behind. Keys typed ahead while the page catches up go, in order, to the following images (the keyboard widget)."""

from __future__ import annotations

import streamlit as st

from labeler.workflow import label_queue as label_queue_rules
from pages.shared import class_keys, filter_bar, jobs_panel, label_events, queues, remembered, session, text
from pages.shared.key_help import no_keys_here
from pages.shared.keyboard_labeler import keyboard_labeler

GRID_COLUMNS = 4
GRID_ROWS = 3
# Images sent ahead to the keyboard widget: it shows the next one at once, without waiting for Python.
PREFETCH = 8
GRID_SLOTS = "label_grid"
ORIGIN = "label"  # the labels this page stores, which its undo takes back (and no other page's)

ws = session.require_images("Label")
classes = ws.store.classes()
if not classes:
    st.info("Define your classes on the Home page first.")
    no_keys_here("Keys on Label", "define your classes on the Home page first; each gets a key.")
    st.page_link("pages/home.py", label="Go to Home", icon=":material/home:")
    st.stop()

names = {c.id: c.name for c in classes}
records = session.records(ws)
state = session.state(ws)
jobs_panel.unlabeled_classes_banner(jobs_panel.live_counts(ws))

col_strategy, col_size = st.columns([3, 1], vertical_alignment="bottom")
strategy = col_strategy.segmented_control(
    "Show", queues.STRATEGIES, required=True,
    help="Suggested: the typical image of each group of similar images that nobody has labeled yet (the groups get "
    "smaller as your labels grow: this finds the classes still missing and covers the variety of each), then, once "
    "every group has a label, the least certain images. "
    "Random: a uniform sample of unlabeled images. In order: by file name.",
    **remembered.bind("label:strategy", queues.STRATEGIES[0], valid=lambda v: v if v in queues.STRATEGIES
                      else queues.STRATEGIES[0]),
) or queues.STRATEGIES[0]
large = col_size.toggle("Large view", help="Show the original image, bigger.", **remembered.bind("label:large", False))
image_filter = filter_bar.filter_bar("label", [c.name for c in classes], sources=("propagated", "none"))
allowed = filter_bar.rows_matching(image_filter, session.paths(ws), state,
                                   (session.images_version(ws), session.state_version(ws)))
filter_bar.caption(image_filter, allowed)

# ----------------------------------------------------------------------------------------------- the two queues
# The keyboard widget works through its own queue; the grid below holds other images and keeps them in place until
# every one of them is labeled (or "New images" is pressed), so a click never moves a card under the pointer.
grid_state = st.session_state.get(GRID_SLOTS)
same_grid = isinstance(grid_state, dict) and grid_state["filter"] == image_filter \
    and grid_state.get("strategy") == strategy
slot_rows = session.rows_of(ws, grid_state["keys"]) if isinstance(grid_state, dict) and same_grid else []
unlabeled = set(label_queue_rules.unlabeled_rows(ws, records))
if not any(row in unlabeled for row in slot_rows):
    slot_rows = []
widget_allowed = filter_bar.without(allowed, slot_rows, len(records))
queue = queues.label_queue(ws, state, strategy, 2 * PREFETCH, widget_allowed, filter_key=image_filter)
if not slot_rows:
    slot_rows = queues.grid_rows(ws, state, strategy, GRID_COLUMNS * GRID_ROWS, filter_bar.without(
        allowed, queue, len(records)), extra=2 * PREFETCH)
    st.session_state[GRID_SLOTS] = {"keys": session.keys_of(ws, slot_rows), "filter": image_filter,
                                     "strategy": strategy}
if not queue and not any(row in unlabeled for row in slot_rows):
    if image_filter.active:
        st.success("Every image this filter shows has a human label. Change the filter to see others.")
        no_keys_here("Keys on Label", "every image this filter shows has a human label.")
    else:
        st.success("Every image has a human label.")
        no_keys_here("Keys on Label", "every image has a human label.")
    st.stop()

# ----------------------------------------------------------------------------------------------- keyboard widget
handler = label_events.Handler(ws, session.annotator(ws), session.runner(), mode=ORIGIN,
                               skipped=queues.skipped_keys(),
                               queue=label_events.handler_queue(st.session_state.get(queues.LABEL_QUEUE)))
widget_rows = queue[:PREFETCH]
reasons = queues.reasons(ws)
captions = {row: queues.reason_text(reasons.get(label_queue_rules.image_key(records[row]), ""))
            for row in widget_rows}
keyboard_labeler(label_events.items_for(ws, widget_rows, large=large, captions=captions),
                 label_events.class_specs(classes), key="label_keys", on_event=handler.on_event,
                 image_px=480 if large else 240, undo_earlier=True)
label_events.show_problems(handler)
if len(classes) > len(class_keys.CLASS_KEYS):
    st.caption(f"Only the first {len(class_keys.CLASS_KEYS)} classes have keys; label the others by click.")

# ----------------------------------------------------------------------------------------------- grid
st.divider()
st.caption("More images: one click on a class labels that image. The cards stay in place until all are labeled.")
col_more, _ = st.columns([1, 4])
if col_more.button("New images", key="grid_new", help="Replace these cards with the next images of the queue."):
    st.session_state.pop(GRID_SLOTS, None)
    st.rerun()
thumbs = session.thumbnails(ws)
class_ids = [c.id for c in classes]
human = ws.store.human_labels()
undone = handler.undone  # image keys whose label this page's undo took back (u in the widget)


def label_from_pills(row: int) -> None:
    """Store the label now (one undoable action) and ask for propagation in the background."""
    class_id = st.session_state.get(f"pick_{records[row].id}")
    if class_id is None:
        return
    ws.store.set_labels([records[row].id], class_id, session.annotator(ws), origin=ORIGIN)
    undone.discard(label_queue_rules.image_key(records[row]))
    session.request_refresh()


for start in range(0, len(slot_rows), GRID_COLUMNS):
    cols = st.columns(GRID_COLUMNS, border=True)
    for col, row in zip(cols, slot_rows[start : start + GRID_COLUMNS], strict=False):
        with col:
            done = human.get(records[row].id)
            was_undone = done is None and label_queue_rules.image_key(records[row]) in undone
            if was_undone:  # the class picked before must not look chosen still
                st.session_state[f"pick_{records[row].id}"] = None
            st.image(thumbs[row], width=96)
            st.caption(text.plain(records[row].path) + queues.reason_caption(ws, row))
            st.pills(
                "Class",
                class_ids,
                format_func=lambda class_id: text.plain(names.get(class_id, "?")),
                key=f"pick_{records[row].id}",
                on_change=label_from_pills,
                args=(row,),
                label_visibility="collapsed",
                width="stretch",
                wrap=True,
                disabled=done is not None,
            )
            if done is not None:
                st.caption(f"✓ labeled {text.plain(names.get(done, '?'))}")
            elif was_undone:
                st.caption("↩ label undone")

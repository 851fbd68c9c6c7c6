"""Label: one click or one key labels an image; the label is stored at once and propagation catches up behind."""

from __future__ import annotations

import streamlit as st

from pages.shared import queues, session, text

GRID_COLUMNS = 4
GRID_ROWS = 3

ws = session.require_images()
classes = ws.store.classes()
st.title("Label")
if not classes:
    st.info("Define your classes on the Home page first.")
    st.page_link("pages/home.py", label="Go to Home", icon=":material/home:")
    st.stop()

names = {c.id: c.name for c in classes}
records = ws.records()
state = session.state(ws)

col_strategy, col_size = st.columns([3, 1], vertical_alignment="bottom")
strategy = col_strategy.segmented_control(
    "Show", queues.STRATEGIES, default=queues.STRATEGIES[0], key="strategy", required=True,
    help="Suggested: typical, diverse images before the first labels, then the least certain ones. "
    "Random: a uniform sample of unlabeled images.",
)
large = col_size.toggle("Large view", key="large_view")
queue = queues.label_queue(ws, state, strategy or queues.STRATEGIES[0], GRID_COLUMNS * GRID_ROWS + 1)
if not queue:
    st.success("Every image has a human label.")
    st.stop()


def label(row: int, class_id: int | None) -> None:
    """Store the label now (one undoable action), move on, and ask for propagation in the background."""
    if class_id is None:
        return
    ws.store.set_labels([records[row].id], class_id, session.annotator(ws))
    queues.forget_row(row)
    st.session_state["last_action"] = f"{records[row].path} → {names[class_id]}"
    session.request_refresh()


def label_from_pills(row: int) -> None:
    label(row, st.session_state.get(f"pick_{records[row].id}"))


def undo() -> None:
    row = queues.undo_last(ws)
    st.session_state["last_action"] = "undone" if row is not None else "nothing to undo"
    session.request_refresh()


# ----------------------------------------------------------------------------------------------- focused image
focus = queue[0]
col_image, col_buttons = st.columns([2, 3])
with col_image:
    if large:
        st.image(queues.full_image(ws, focus), width=480)
    else:
        st.image(ws.thumbnails()[focus], width=240)
    st.caption(text.plain(records[focus].path) + queues.reason_caption(focus))
with col_buttons:
    st.markdown("**Which class is this?** Click, or press its key.")
    per_row = 3
    for start in range(0, len(classes), per_row):
        cols = st.columns(per_row)
        for col, info in zip(cols, classes[start : start + per_row], strict=False):
            col.button(
                text.plain(info.name),
                key=f"label_{info.id}",
                shortcut=info.hotkey or None,
                on_click=label,
                args=(focus, info.id),
                width="stretch",
            )
    col_skip, col_undo = st.columns(2)
    col_skip.button("Skip", key="skip", shortcut="S", on_click=queues.skip_row, args=(focus,), width="stretch")
    col_undo.button("Undo", key="undo", shortcut="U", on_click=undo, width="stretch")
    if "last_action" in st.session_state:
        st.caption(f"Last: {text.plain(st.session_state['last_action'])}")

# ----------------------------------------------------------------------------------------------- grid
st.divider()
st.caption("Next images: one click on a class labels that image.")
grid = queue[1:]
thumbs = ws.thumbnails()
class_ids = [c.id for c in classes]
for start in range(0, len(grid), GRID_COLUMNS):
    cols = st.columns(GRID_COLUMNS, border=True)
    for col, row in zip(cols, grid[start : start + GRID_COLUMNS], strict=False):
        with col:
            st.image(thumbs[row], width=96)
            st.caption(text.plain(records[row].path) + queues.reason_caption(row))
            st.pills(
                "Class",
                class_ids,
                format_func=lambda class_id: text.plain(names[class_id]),
                key=f"pick_{records[row].id}",
                on_change=label_from_pills,
                args=(row,),
                label_visibility="collapsed",
                width="stretch",
                wrap=True,
            )

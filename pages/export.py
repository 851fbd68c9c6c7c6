"""Export: preview the fully labeled CSV, choose a confidence threshold, download it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from labeler.workflow import export, report
from labeler.workflow.workspace import Workspace
from pages.shared import remembered, session

PREVIEW_ROWS = 200
# Up to this many images the CSV is built as the page opens; beyond, on request (about a second per 2,000 rows on
# the 2-core machine).
AUTO_ROWS = 5_000
PREPARED = "export_prepared"

ws = session.require_images("Export")
st.caption(
    "One row per image: path, label, source (human / propagated / audited / none / unreadable), confidence and "
    "the diagnostics behind it — the same columns as `labeler export`."
)


@st.cache_data(show_spinner="Bringing propagation up to date…", max_entries=4)
def export_frame(_ws: Workspace, key: tuple[object, ...], threshold: float | None) -> pd.DataFrame:
    """The CSV's rows, once per labels version, state and threshold (it brings propagation up to date first)."""
    return export.export_frame(_ws, min_confidence=threshold)


suggested = report.suggested_threshold(ws, session.state(ws))
use_threshold = st.toggle("Flag propagated labels below a confidence threshold",
                          **remembered.bind("export:use_threshold", suggested is not None))
threshold = None
if use_threshold:
    threshold = st.slider("Minimum confidence", 0.0, 1.0, step=0.01,
                          help="Rows below it keep their label and are flagged below-threshold. The Review page "
                          "suggests the lowest threshold whose 95% interval of the share right stays above your "
                          "target precision.",
                          **remembered.bind("export:threshold", float(suggested or 0.5)))
key = (str(ws.workspace_dir), session.images_version(ws), session.state_version(ws), ws.store.labels_version())
n_rows = ws.image_count()
if n_rows > AUTO_ROWS and st.session_state.get(PREPARED) != key:
    st.button(f"Prepare the CSV ({n_rows:,} rows)", key="prepare_csv", type="primary",
              on_click=lambda: st.session_state.__setitem__(PREPARED, key),
              help="Builds every row (and brings propagation up to date first); a large collection takes a while.")
    st.stop()
frame = export_frame(ws, key, threshold)
counts = frame["source"].value_counts()
cols = st.columns(5)
for col, source in zip(cols, ["human", "audited", "propagated", "none", "unreadable"], strict=False):
    col.metric(source, int(counts.get(source, 0)))
if threshold is not None:
    kept = report.precision_above(ws, threshold, session.state(ws))
    st.caption(f"{int(frame['flagged'].str.contains('below-threshold').sum())} propagated rows flagged below "
               f"{threshold:.2f}." + (f" {kept['text']} {report.PROMISE_NOTE}" if kept else ""))
n_isolated = int(frame["flagged"].str.split(";").map(lambda flags: "isolated" in flags).sum())
if n_isolated:
    st.warning(report.isolated_summary(n_isolated))
shown = min(PREVIEW_ROWS, len(frame))
if shown < len(frame):
    st.caption(f"Preview: the first {shown:,} of {len(frame):,} rows. The download holds all {len(frame):,}.")
else:
    st.caption(f"Preview: all {len(frame):,} rows.")
st.dataframe(export.typed_frame(frame.head(PREVIEW_ROWS)), hide_index=True, height=360)
removed = export.removed_files(ws)
if removed:
    labeled = sum(1 for _, label in removed if label)
    one = len(removed) == 1
    with st.expander(f"{len(removed):,} file{'' if one else 's'} removed from the folder since the import "
                     f"{'is' if one else 'are'} not in the CSV ({labeled:,} with a human label)"):
        st.caption("Their labels stay in the workspace and count again if the files come back (Re-scan on Home).")
        st.dataframe(pd.DataFrame(removed, columns=["path", "human label"]), hide_index=True)
st.download_button(
    "Download CSV",
    data=lambda: export.to_csv_bytes(frame),
    file_name=f"{ws.data_dir.name or 'labels'}-labels.csv",
    mime="text/csv",
    key="download_csv",
    type="primary",
    on_click="ignore",
)

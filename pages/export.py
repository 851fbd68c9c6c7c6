"""Export: preview the fully labeled CSV, choose a confidence threshold, download it."""

from __future__ import annotations

import streamlit as st

from labeler.workflow import export, report
from pages.shared import session

ws = session.require_images()
st.title("Export")
st.caption(
    "One row per image: path, label, source (human / propagated / audited / none / unreadable), confidence and "
    "the diagnostics behind it — the same columns as `labeler export`."
)
suggested = report.suggested_threshold(ws)
use_threshold = st.toggle("Flag propagated labels below a confidence threshold", value=suggested is not None,
                          key="export_use_threshold")
threshold = None
if use_threshold:
    threshold = st.slider("Minimum confidence", 0.0, 1.0, value=float(suggested or 0.5), step=0.01,
                          key="export_threshold",
                          help="Rows below it keep their label and are flagged below-threshold. The Review page "
                          "suggests the threshold that reaches your target precision.")
with st.spinner("Bringing propagation up to date…"):
    frame = export.export_frame(ws, min_confidence=threshold)
counts = frame["source"].value_counts()
cols = st.columns(5)
for col, source in zip(cols, ["human", "audited", "propagated", "none", "unreadable"], strict=False):
    col.metric(source, int(counts.get(source, 0)))
if threshold is not None:
    st.caption(f"{int(frame['flagged'].str.contains('below-threshold').sum())} propagated rows flagged below "
               f"{threshold:.2f}")
st.dataframe(frame.head(200), hide_index=True, height=360)
st.download_button(
    "Download CSV",
    data=export.to_csv_bytes(frame),
    file_name=f"{ws.data_dir.name or 'labels'}-labels.csv",
    mime="text/csv",
    key="download_csv",
    type="primary",
    on_click="ignore",
)

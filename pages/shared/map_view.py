"""The map page's glue: selections of points on the plotly map, and reruns when a newer map is saved.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace
from pages.shared.jobs_panel import POLL_ACTIVE_S
from pages.shared.session import state


def _state_key(current: PipelineState | None) -> float | None:
    return current.computed_at if current is not None and current.umap is not None else None


@st.fragment(run_every=POLL_ACTIVE_S)
def rerun_when_state_changes(ws: Workspace, shown_at: float | None) -> None:
    """Rerun the page when a newer propagation (with its map) has been saved by the background job."""
    if _state_key(state(ws)) != shown_at:
        st.rerun(scope="app")


def selected_rows(event: Any) -> list[int]:
    """Rows of the points picked by a lasso or box selection on the map (from each point's customdata)."""
    try:
        points = event.selection.points
    except AttributeError:
        return []
    rows: list[int] = []
    for point in points:
        value = point.get("customdata")
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            rows.append(int(value))
    return list(dict.fromkeys(rows))

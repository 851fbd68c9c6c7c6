"""Map hover shows the thumbnail: a small ``st.components.v2`` component beside the map's Plotly chart.

Plotly's hover label holds only text, and Streamlit sends no hover events to Python. So this component's script
(``map_hover.js``, in the page like every v2 component) listens to the chart's own ``plotly_hover`` and
``plotly_unhover`` events (plotly.js's public event API on the chart's graph div), sends the hovered point's row
(its ``customdata[0]``) as the state value ``hover``, and shows the thumbnail Python sends back in a small panel at
the pointer; thumbnails already seen show at once. The component lives in a fragment, so a hover reruns only the
fragment (one thumbnail encoded), never the chart or the page: selections, lasso and box work as before, and the
cost does not grow with the number of points.

The script also hides the thumbnail while a lasso, box or pan is drawn and once the pointer leaves the chart (a
hover plotly throttled may land after either), and makes a click select the point nearest the pointer, which it finds
itself: Streamlit turns plotly's click-to-select off while the lasso or box tool is on, a drawn lasso's outline
caught the clicks inside it, and plotly's click took the point of a hover it throttles, under an earlier position of
the pointer. It hooks only the map's chart (``CHART_KEY``): the script stays in the page on the other pages too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace
from pages.shared import session
from pages.shared.keyboard_labeler import thumbnail_data_url

_ASSETS = Path(__file__).resolve().parent
KEY = "map_hover"
CHART_KEY = "map_chart"  # the map's st.plotly_chart: the only chart the script hooks (Streamlit marks it st-key-...)
THUMB_PX = 128

_render = st.components.v2.component(
    "labeler.map_hover",
    html='<div class="mh" data-mh="box" hidden><img data-mh="image" alt=""><p data-mh="caption"></p></div>',
    css=(_ASSETS / "map_hover.css").read_text(encoding="utf-8"),
    js=(_ASSETS / "map_hover.js").read_text(encoding="utf-8"),
)


def hovered_row(n_rows: int) -> int | None:
    """The row the browser last reported under the pointer, if it is a row of the map."""
    found = st.session_state.get(KEY)
    value = found.get("hover") if isinstance(found, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n_rows:
        return value
    return None


def hover_data(ws: Workspace, state: PipelineState, row: int | None) -> dict[str, Any]:
    """What the component is sent: the hovered row's thumbnail (a data URL) and a plain-text caption."""
    # Rows are renumbered by a re-scan: the browser forgets the thumbnails it holds when this changes.
    always = {"version": f"{session.images_version(ws)}:{session.state_version(ws)}", "chart": CHART_KEY}
    if row is None:
        return {"row": None, **always}
    name = state.class_names[state.label[row]] if state.label[row] >= 0 else "no label"
    caption = f"{state.paths[row]} · {name} · {state.source[row]} · {state.confidence[row]:.0%}"
    return {"row": row, "thumb": thumbnail_data_url(session.thumbnails(ws)[row], max_px=THUMB_PX),
            "caption": caption, **always}


@st.fragment
def hover_thumbnail(ws: Workspace, state: PipelineState) -> None:
    """Mount the component (inside a fragment: a hover reruns only this)."""
    _render(key=KEY, data=hover_data(ws, state, hovered_row(len(state.label))), on_hover_change=_ignore)


def _ignore() -> None:
    """The hover needs no callback; registering one makes Streamlit keep the component's ``hover`` state."""

"""labeler's browser app: ``streamlit run app.py -- --data-dir DATA_DIR`` (or ``labeler app DATA_DIR``).

The entry script only sets up the page and the navigation; each page in ``pages/`` is a thin script over
``labeler``. Options after ``--``: ``--data-dir`` (default: the bundled ``sample_data/``), ``--workspace`` and
``--ground-truth`` (teaching mode), ``--ray`` (the Ray cluster the models embed on); the environment variables
``LABELER_DATA_DIR``, ``LABELER_WORKSPACE``, ``LABELER_GROUND_TRUTH`` and ``LABELER_RAY_ADDRESS`` do the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# Streamlit runs this file as a script; make `labeler` and `pages` importable from a plain checkout too.
_APP_DIR = str(Path(__file__).resolve().parent)
if _APP_DIR not in sys.path:
    sys.path.insert(0, _APP_DIR)


from pages.shared import auth, jobs_panel, remembered, session  # noqa: E402
from pages.shared.favicon import tag_icon  # noqa: E402
from pages.shared.key_help import key_help  # noqa: E402

st.set_page_config(page_title="labeler", page_icon=tag_icon(), layout="wide")
auth.require_token(entry=True)  # before any page renders or writes: beyond loopback `labeler app` requires its token
session.tab_id()  # in the address bar on every page, so that a reload keeps this tab's annotator (undo)
remembered.sync_url()  # and the choices a reload keeps (the Label page's queue, ...)

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/label.py", title="Label", icon=":material/touch_app:"),
    st.Page("pages/map.py", title="Map", icon=":material/scatter_plot:"),
    st.Page("pages/review.py", title="Review & audit", icon=":material/fact_check:"),
    st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
    st.Page("pages/teaching.py", title="Teaching", icon=":material/school:"),
]

# The keys of the pages without a labeling widget (Label and Review have their own, with its own ? panel).
PAGE_KEYS = {
    "Map": [("l", "label the selected images as the chosen class"), ("v", "send the selected images to review"),
            ("u", "undo your last label action (this tab)")],
}
LABELING_NOTE = ("Label and Review: 1-9, then 0 and letters, pick a class; a accepts a review proposal; s skips; "
                 "u undoes; ? lists them. Keys typed ahead go, in order, to the following images.")

page = st.navigation(PAGES)
with st.sidebar:
    jobs_panel.sidebar_status()
    if page.title not in {"Label", "Review & audit"}:
        key_help(f"Keys on {page.title}", PAGE_KEYS.get(page.title, []), LABELING_NOTE)
page.run()

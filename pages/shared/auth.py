"""The access gate: with a token set (``labeler app --host 0.0.0.0`` sets one), nothing renders and nothing is
written until the browser brings it (``?token=...`` in the URL, once per browser session).

Called first thing in ``app.py``, and again whenever a page asks for the open dataset (``session.settings``): a
page script Streamlit runs by itself (see :func:`require_token`) never reaches the labels without the token.
"""

from __future__ import annotations

import os

import streamlit as st

from labeler.auth import TOKEN_ENV, TOKEN_PARAM, token_ok

_ACCEPTED = "_labeler_token_accepted"


def _locked() -> None:
    """The only page a browser without the token can reach (it shows nothing)."""


def require_token(entry: bool = False) -> None:
    """Return when this browser session may use the app; otherwise say how to get in and stop the script.

    ``entry``: called from ``app.py`` before ``st.navigation``. Until some run of a server process has called
    ``st.navigation``, Streamlit treats ``pages/`` as an old-style pages folder and runs a page asked for by URL
    (``/label``) directly, without ``app.py``; refusing from the entry script therefore registers a one-page
    navigation, which ends that mode for the process.
    """
    expected = os.environ.get(TOKEN_ENV) or None
    if expected is None:
        return
    given = st.query_params.get(TOKEN_PARAM)
    if st.session_state.get(_ACCEPTED) == expected or token_ok(given, expected):
        st.session_state[_ACCEPTED] = expected
        if entry and given != expected:
            # Keep the token in the address bar across page switches, so a reload or a bookmark still gets in.
            st.query_params[TOKEN_PARAM] = expected
        return
    if entry:
        st.navigation([st.Page(_locked, title="labeler", url_path="locked", default=True)], position="hidden")
    st.error(
        "Wrong access token. Open the link `labeler app` printed when it started."
        if given else
        "This labeler needs its access token. Open the link `labeler app` printed when it started "
        "(it ends in `?token=...`)."
    )
    st.stop()

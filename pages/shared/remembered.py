"""Widget values that outlive a page change.

Streamlit forgets a widget's key when a page without that widget runs, so a setting made on one page (teaching
mode, a filter) would switch itself off on the next. Each such widget gets its own key and copies its value to a
session key no widget owns; the widget is restored from that copy whenever it is drawn again.

A reload of the browser tab starts a new session with an empty session state: the choices in :data:`IN_URL` are
kept in the address bar too (as the tab's id is), and a new session starts from them (:func:`sync_url`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import streamlit as st

WIDGET_PREFIX = "widget:"

# Settings a reload keeps: {setting name: (query parameter, type)}. Only small str and bool choices: the address
# bar is visible and shared with a copied link. Each page still checks the value with ``bind(valid=...)``.
IN_URL: Mapping[str, tuple[str, type]] = MappingProxyType({
    "label:strategy": ("show", str),
    "label:large": ("large", bool),
    "review:view": ("view", str),
    "teaching_mode": ("teach", bool),  # session.TEACHING_KEY: turned on by hand, it must survive a reload too
})


def _encode(given: Any, kind: type) -> str:
    return ("1" if given else "0") if kind is bool else str(given)


def _decode(text: str, kind: type) -> Any:
    return text == "1" if kind is bool else text


def restore(name: str) -> None:
    """In a new session (a reload), take setting ``name`` of :data:`IN_URL` from the address bar, if it is there."""
    if name in IN_URL and name not in st.session_state:
        param, kind = IN_URL[name]
        given = st.query_params.get(param)
        if given is not None:
            st.session_state[name] = _decode(given, kind)


def _to_url(name: str) -> None:
    """Write setting ``name`` of :data:`IN_URL` into the address bar, once it has a value."""
    if name in IN_URL and name in st.session_state:
        param, kind = IN_URL[name]
        wanted = _encode(st.session_state[name], kind)
        if st.query_params.get(param) != wanted:
            st.query_params[param] = wanted


def sync_url() -> None:
    """Keep the settings of :data:`IN_URL` in the address bar on every page. Called by ``app.py`` on every run,
    before the page: a reload on any page starts from them, and Streamlit, which drops query parameters on a page
    switch, gets them back. :func:`bind` calls it too, for a page that Streamlit runs without ``app.py`` (see
    :func:`pages.shared.auth.require_token`)."""
    for name in IN_URL:
        restore(name)
        _to_url(name)


def widget_key(name: str) -> str:
    return WIDGET_PREFIX + name


def value(name: str, default: Any = None) -> Any:
    """The remembered value of setting ``name`` (``default`` before it is first set)."""
    return st.session_state.get(name, default)


def remember(name: str, new_value: Any) -> None:
    """Set setting ``name`` (and its widget, if drawn later in this run it shows the new value)."""
    st.session_state[name] = new_value
    st.session_state[widget_key(name)] = new_value


def _copy(name: str) -> None:
    st.session_state[name] = st.session_state[widget_key(name)]


def bind(name: str, default: Any, *, valid: Callable[[Any], Any] | None = None,
         on_change: Callable[[], None] | None = None) -> dict[str, Any]:
    """``key`` and ``on_change`` for a widget showing setting ``name``; pass them instead of a ``value``.

    ``valid`` maps a remembered value to one the widget accepts now (e.g. drops a class that no longer exists).
    ``on_change`` runs after the value is copied.
    """
    key = widget_key(name)
    sync_url()  # here too: a page that Streamlit runs without app.py still takes them from a reload's address
    current = st.session_state.get(name, default)
    if valid is not None:
        current = valid(current)
    st.session_state[name] = current
    _to_url(name)
    if key not in st.session_state or st.session_state[key] != current:
        st.session_state[key] = current

    def changed() -> None:
        _copy(name)
        if on_change is not None:
            on_change()

    return {"key": key, "on_change": changed}


def among(options: Sequence[Any]) -> Callable[[Any], list[Any]]:
    """A ``valid`` for multiselects: keep only the remembered entries still among ``options``."""
    allowed = list(options)
    return lambda chosen: [item for item in (chosen or []) if item in allowed]

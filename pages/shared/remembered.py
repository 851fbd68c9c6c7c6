"""Widget values that outlive a page change.

Streamlit forgets a widget's key when a page without that widget runs, so a setting made on one page (teaching
mode, a filter) would switch itself off on the next. Each such widget gets its own key and copies its value to a
session key no widget owns; the widget is restored from that copy whenever it is drawn again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

WIDGET_PREFIX = "widget:"


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
    current = st.session_state.get(name, default)
    if valid is not None:
        current = valid(current)
    st.session_state[name] = current
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

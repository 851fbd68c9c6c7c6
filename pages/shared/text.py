"""Text for Markdown: user strings escaped so they render as themselves, and numbers formatted for people.
"""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """``text`` with Markdown and HTML specials escaped, so a user string renders as itself inside st.markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"

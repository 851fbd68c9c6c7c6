"""Class keys and colours as the Home page offers them, and creating a class from the pages.
"""

from __future__ import annotations

from collections.abc import Sequence

from labeler.store import DEFAULT_COLOURS, ClassInfo
from labeler.workflow.workspace import Workspace

# Keys a class can be given, in the order they are offered: 1-9, then 0 for the tenth class, then letters. Not "s"
# (skip), "u" (undo) or "?" (the key list) of the labeling widget, nor Streamlit's own "c" and "r".
CLASS_KEYS = "1234567890abdefghijklmnopqtvwxyz"
HOTKEYS = ["", *CLASS_KEYS]
NO_KEY_LABEL = "none"


def next_colour(n_classes: int) -> str:
    return DEFAULT_COLOURS[n_classes % len(DEFAULT_COLOURS)]


def key_label(hotkey: str) -> str:
    """How a key is shown in the key chooser (the empty choice says "none" rather than a placeholder)."""
    if hotkey == AUTO_KEY:
        return "auto: the name if one key, else the next free"
    return hotkey or NO_KEY_LABEL


def default_hotkey_index(classes: Sequence[ClassInfo]) -> int:
    """Index in HOTKEYS of the first key no class uses yet: 1-9, then 0, then letters (0, no key, when all are
    taken)."""
    used = {c.hotkey for c in classes}
    for key in CLASS_KEYS:
        if key not in used:
            return HOTKEYS.index(key)
    return 0


# The new-class form's default key: the class's own name when it is one free key ("0" for a class named 0), else
# the first free key (1-9, then 0, then letters).
AUTO_KEY = "auto"


def auto_hotkey(classes: Sequence[ClassInfo], name: str) -> str | None:
    """The key a new class named ``name`` gets by default: its name when that is a single class key nobody uses
    (digit classes named 0-9 get their own digit, not 1 for "0"), else :func:`default_hotkey_index`'s key; None
    when every key is taken. Resolved once, at creation, so that keys never move when classes are added later."""
    used = {c.hotkey for c in classes}
    own = name.strip().lower()
    if len(own) == 1 and own in CLASS_KEYS and own not in used:
        return own
    return HOTKEYS[default_hotkey_index(classes)] or None


def hotkey_owner(classes: Sequence[ClassInfo], hotkey: str | None) -> str | None:
    """Name of the class that already uses ``hotkey`` (None when the key is free or empty)."""
    return next((c.name for c in classes if hotkey and c.hotkey == hotkey), None)


def keys_for(classes: Sequence[ClassInfo]) -> list[str]:
    """One key per class, in order: the class's own key when it is a valid, unique class key, else the first
    key nobody has (so the tenth class gets 0 and every class up to 32 gets one). "" when none is left."""
    own: list[str | None] = []
    seen: set[str] = set()
    for info in classes:
        key = (info.hotkey or "").lower()
        good = len(key) == 1 and key in CLASS_KEYS and key not in seen
        own.append(key if good else None)
        if good:
            seen.add(key)
    free = iter(k for k in CLASS_KEYS if k not in seen)
    return [key if key is not None else next(free, "") for key in own]


def create_class_and_label(ws: Workspace, name: str, image_ids: list[int], annotator: str,
                           origin: str) -> str | None:
    """Create a class and label images with it, as one action of the page ``origin``; returns an error message or
    None."""
    from labeler.store import InvalidClassName

    try:
        info = ws.store.add_class(name, hotkey=auto_hotkey(ws.store.classes(), name))
    except InvalidClassName as error:
        return str(error)
    if image_ids:
        ws.store.set_labels(image_ids, info.id, annotator, origin=origin)
    return None

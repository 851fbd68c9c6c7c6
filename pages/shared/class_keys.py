"""Class keys and colours as the Home page offers them, and creating a class from the pages.
"""

from __future__ import annotations

from labeler.store import DEFAULT_COLOURS, ClassInfo
from labeler.workflow.workspace import Workspace

# Keys a class can be given: "u" is undo and "s" skip on the Label page; Streamlit reserves "c" and "r".
HOTKEYS = ["", *"123456789", *"abdefghijklmnopqtvwxyz"]


def next_colour(n_classes: int) -> str:
    return DEFAULT_COLOURS[n_classes % len(DEFAULT_COLOURS)]


def default_hotkey_index(classes: list[ClassInfo]) -> int:
    """Index in HOTKEYS of the first digit no class uses yet (0, no key, when all nine are taken)."""
    used = {c.hotkey for c in classes}
    for digit in "123456789":
        if digit not in used:
            return HOTKEYS.index(digit)
    return 0


def hotkey_owner(classes: list[ClassInfo], hotkey: str | None) -> str | None:
    """Name of the class that already uses ``hotkey`` (None when the key is free or empty)."""
    return next((c.name for c in classes if hotkey and c.hotkey == hotkey), None)


def create_class_and_label(ws: Workspace, name: str, image_ids: list[int]) -> str | None:
    """Create a class and label images with it; returns an error message or None."""
    from labeler.store import InvalidClassName

    try:
        info = ws.store.add_class(name)
    except InvalidClassName as error:
        return str(error)
    if image_ids:
        ws.store.set_labels(image_ids, info.id, ws.settings.annotator)
    return None

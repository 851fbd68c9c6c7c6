"""Class keys and colours as the Home page offers them, and creating a class from the pages.

The key rules themselves live in :mod:`labeler.store.classes`, so that a class created anywhere (the Home form, the
CLI, audit answers, folder names) gets its key by the same rule; this module shows them.
"""

from __future__ import annotations

from collections.abc import Sequence

from labeler.store import CLASS_KEYS, ClassInfo
from labeler.store import auto_hotkey as store_auto_hotkey
from labeler.store import keys_for as store_keys_for
from labeler.store.classes import next_free_colour, next_free_key
from labeler.workflow.workspace import Workspace

HOTKEYS = ["", *CLASS_KEYS]
NO_KEY_LABEL = "none"


def next_colour(classes: Sequence[ClassInfo]) -> str:
    """The new-class form's default colour: the one the store gives a class created without a colour."""
    return next_free_colour([c.colour for c in classes])


def key_label(hotkey: str) -> str:
    """How a key is shown in the key chooser (the empty choice says "none" rather than a placeholder)."""
    if hotkey == AUTO_KEY:
        return "auto"  # the rule is in the chooser's help: a longer label is cut off in the narrow column
    return hotkey or NO_KEY_LABEL


def default_hotkey_index(classes: Sequence[ClassInfo]) -> int:
    """Index in HOTKEYS of the first key no class uses yet: 1-9, then 0, then letters (0, no key, when all are
    taken)."""
    key = next_free_key(c.hotkey for c in classes)
    return HOTKEYS.index(key) if key is not None else 0


# The new-class form's default key: the class's own name when it is one free key ("0" for a class named 0), else
# the first free key (1-9, then 0, then letters).
AUTO_KEY = "auto"


def auto_hotkey(classes: Sequence[ClassInfo], name: str) -> str | None:
    """The key a new class named ``name`` gets by default (:func:`labeler.store.auto_hotkey`): its name when that
    is a single free class key ("0" for a class named 0), else the first free key; None when every key is taken."""
    return store_auto_hotkey([c.hotkey for c in classes], name)


def hotkey_owner(classes: Sequence[ClassInfo], hotkey: str | None) -> str | None:
    """Name of the class that already uses ``hotkey`` (None when the key is free or empty)."""
    return next((c.name for c in classes if hotkey and c.hotkey == hotkey), None)


def keys_for(classes: Sequence[ClassInfo]) -> list[str]:
    """One key per class, in order (:func:`labeler.store.keys_for`): the class's own key when it is a valid,
    unique class key, else the first key nobody has; "" when none is left."""
    return store_keys_for([c.hotkey for c in classes])


def create_class_and_label(ws: Workspace, name: str, image_ids: list[int], annotator: str,
                           origin: str) -> str | None:
    """Create a class and label images with it, as one action of the page ``origin``; returns an error message or
    None."""
    from labeler.store import InvalidClassName

    try:
        info = ws.store.add_class(name)  # its key by auto_hotkey, chosen inside the store's write transaction
    except InvalidClassName as error:
        return str(error)
    if image_ids:
        ws.store.set_labels(image_ids, info.id, annotator, origin=origin)
    return None

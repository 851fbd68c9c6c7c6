"""Class names: what the store accepts, the default colours and keys of new classes, and their display order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

_FORMULA_PREFIXES = ("=", "+", "@")
MAX_CLASS_NAME_LENGTH = 64
DEFAULT_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)

# Keys a class can be given, in the order they are offered: 1-9, then 0 for the tenth class, then letters. Not "s"
# (skip), "u" (undo) or "?" (the key list) of the labeling widget, nor Streamlit's own "c" and "r".
CLASS_KEYS = "1234567890abdefghijklmnopqtvwxyz"


class InvalidClassName(ValueError):
    """A class name the store refuses, with a message saying why."""


class ClassNameTaken(InvalidClassName):
    """Renaming a class to the name another class already has."""


class ClassInUse(ValueError):
    """Deleting a class that human labels or blind audit answers still name, with a message saying which."""


def validate_class_name(name: str) -> str:
    """Return the cleaned class name, or raise :class:`InvalidClassName` saying why it is refused.

    Refused: empty names, control characters, and a leading ``=``, ``+`` or ``@`` (a spreadsheet opening the
    exported CSV would run such a cell as a formula).
    """
    if not isinstance(name, str):
        raise InvalidClassName("a class name must be text")
    cleaned = unicodedata.normalize("NFC", name.strip())
    if not cleaned:
        raise InvalidClassName("a class name cannot be empty")
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in cleaned):
        raise InvalidClassName(f"class name {cleaned!r} contains control characters")
    if cleaned.startswith(_FORMULA_PREFIXES):
        raise InvalidClassName(
            f"class name {cleaned!r} starts with {cleaned[0]!r}, which a spreadsheet would run as a formula"
        )
    if len(cleaned) > MAX_CLASS_NAME_LENGTH:
        raise InvalidClassName(f"a class name has at most {MAX_CLASS_NAME_LENGTH} characters")
    return cleaned


def _key(hotkey: str | None) -> str:
    return (hotkey or "").strip().lower()


def next_free_key(used: Iterable[str | None]) -> str | None:
    """The first of :data:`CLASS_KEYS` not in ``used`` (1-9, then 0, then letters); None when all are taken."""
    taken = {_key(key) for key in used}
    return next((key for key in CLASS_KEYS if key not in taken), None)


def next_free_colour(used: Sequence[str | None]) -> str:
    """The colour a new class gets when none is chosen, given the colours ``used`` by the other classes: the first
    of :data:`DEFAULT_COLOURS` none of them has (after a deletion, counting the classes would give a second class
    the same colour), else the next in turn."""
    taken = {str(colour).lower() for colour in used if colour}
    free = [colour for colour in DEFAULT_COLOURS if colour.lower() not in taken]
    return free[0] if free else DEFAULT_COLOURS[len(used) % len(DEFAULT_COLOURS)]


def auto_hotkey(used: Iterable[str | None], name: str) -> str | None:
    """The key a new class named ``name`` gets when none is chosen, given the keys ``used`` by the other classes:
    its name when that is a single class key nobody uses (digit classes named 0-9 get their own digit, whatever
    order they are created in), else :func:`next_free_key`; None when every key is taken.

    Every path that creates a class without a key uses it (the Home form's "auto", ``labeler label``, audit
    answers, labels from folder names), and it is resolved once, at creation, so keys never move later.
    """
    taken = {_key(key) for key in used}
    own = name.strip().lower()
    if len(own) == 1 and own in CLASS_KEYS and own not in taken:
        return own
    return next_free_key(taken)


def keys_for(hotkeys: Sequence[str | None]) -> list[str]:
    """The key that picks each class, given the classes' stored keys in order: its own key when it is a valid,
    unique class key, else the first key nobody has (so every class up to 32 gets one); "" when none is left."""
    own: list[str | None] = []
    seen: set[str] = set()
    for hotkey in hotkeys:
        key = _key(hotkey)
        good = len(key) == 1 and key in CLASS_KEYS and key not in seen
        own.append(key if good else None)
        if good:
            seen.add(key)
    free = iter(k for k in CLASS_KEYS if k not in seen)
    return [key if key is not None else next(free, "") for key in own]


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a class name in natural order: case-insensitive, numbers by value ("2" before "10", "class 9"
    before "class 10"), so digit classes list as 0, 1, ..., 9 and not in the order they were created."""
    parts = re.split(r"(\d+)", unicodedata.normalize("NFC", name).casefold())
    return tuple((0, int(part)) if part.isdecimal() else (1, part) for part in parts if part)


def names_with_keys(classes: Iterable[tuple[str, str | None]]) -> str:
    """(name, key) pairs as one line in natural name order, e.g. ``0 (key 0), 1 (key 1), seven (key a)``; a class
    without a key says so."""
    ordered = sorted(classes, key=lambda item: natural_key(item[0]))
    return ", ".join(f"{name} ({f'key {key}' if key else 'no key'})" for name, key in ordered)

"""Class names: what the store accepts, and the default colours of new classes.
"""

from __future__ import annotations

import unicodedata

_FORMULA_PREFIXES = ("=", "+", "@")
MAX_CLASS_NAME_LENGTH = 64
DEFAULT_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)


class InvalidClassName(ValueError):
    """A class name the store refuses, with a message saying why."""


class ClassNameTaken(InvalidClassName):
    """Renaming a class to the name another class already has."""


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

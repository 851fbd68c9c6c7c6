"""Counts in words, the same on every page and in every command: "1 blind audit", "12,345 labels", "2 classes"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` (thousands separated) and ``noun``, plural unless one: ``plural``, or the noun with an "s".

    counted(1, "blind audit") == "1 blind audit"; counted(2, "class", "classes") == "2 classes".
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"

"""Counts in words: singular for one, the regular or the given plural otherwise, thousands separated."""

from __future__ import annotations

from labeler.wording import counted


def test_counts_are_said_in_the_singular_for_one() -> None:
    assert counted(1, "blind audit") == "1 blind audit"
    assert counted(0, "blind audit") == "0 blind audits"
    assert counted(12345, "label") == "12,345 labels"
    assert counted(1, "class", "classes") == "1 class"
    assert counted(2, "class", "classes") == "2 classes"
    assert counted(-3, "blind audit") == "-3 blind audits"

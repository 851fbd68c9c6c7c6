"""CSV cells a spreadsheet would run as formulas: neutralised when written, restored when read back.

Apart from :mod:`labeler.workflow.export` (which imports pandas and the pipeline) so that ``labeler label --csv``
and ``labeler audit`` read and write their CSVs without importing them.
"""

from __future__ import annotations

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: object) -> object:
    """A text cell a spreadsheet would run as a formula gets a leading ``'`` (shown, not run); others unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def restore_formula(value: str) -> str:
    """Undo :func:`neutralise_formula` (reading an exported CSV back: ``labeler label --csv``)."""
    if value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
    return value

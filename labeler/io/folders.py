"""Which folders the browser app may open: a folder typed into a web page is untrusted input.

Only folders under an allowed root (home, the bundled sample, the folder the app started on, and any listed in
``LABELER_ALLOWED_ROOTS``) are opened, and every refusal says why in words a person can act on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

ALLOWED_ROOTS_ENV = "LABELER_ALLOWED_ROOTS"


def allowed_roots(start_dir: Path, sample_dir: Path, extra: str | None = None) -> list[Path]:
    """Home, ``sample_dir``, the parent of ``start_dir`` and the folders in ``extra`` (separated by the OS path
    separator; default: the ``LABELER_ALLOWED_ROOTS`` environment variable), resolved."""
    extra = os.environ.get(ALLOWED_ROOTS_ENV, "") if extra is None else extra
    roots = [Path.home(), sample_dir, Path(start_dir).parent]
    roots += [Path(p) for p in extra.split(os.pathsep) if p.strip()]
    return [root.expanduser().resolve() for root in roots]


def check_folder(text: str, roots: Sequence[Path]) -> tuple[Path | None, str | None]:
    """(resolved folder, None) when ``text`` names a readable folder under one of ``roots``, else (None, why)."""
    if not text.strip():
        return None, "Type the path of a folder."
    folder = Path(text.strip()).expanduser().resolve()
    if not any(folder == root or root in folder.parents for root in roots):
        listed = ", ".join(str(root) for root in roots)
        return None, f"{folder} is outside the folders this app may open ({listed})."
    if not folder.exists():
        return None, f"{folder} does not exist."
    if not folder.is_dir():
        return None, f"{folder} is a file, not a folder."
    if not os.access(folder, os.R_OK | os.X_OK):
        return None, f"{folder} is not readable by this user."
    return folder, None

"""Save files uploaded in the browser (images, or zips of images) into a dataset folder, safely.

A zip is untrusted input: members with absolute paths or ``..`` parts (zip slip), links, non-images, and archives
that expand past a size or file-count bound are refused rather than extracted.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from labeler.io.artifacts import write_bytes_atomic
from labeler.io.scan import IMAGE_EXTENSIONS

UPLOADS_DIRNAME = "uploads"
MAX_EXTRACTED_BYTES = 2_000_000_000
MAX_FILE_BYTES = 200_000_000
MAX_FILES = 100_000


def is_upload_dataset(folder: Path) -> bool:
    """True for ``<something>/.labeler/uploads``: a dataset made of uploads, to which new uploads are added."""
    return folder.name == UPLOADS_DIRNAME and folder.parent.name == ".labeler"


def _safe_relative(name: str) -> PurePosixPath | None:
    """The member name as a relative path inside the target, or None when it would escape it or is hidden."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or not path.parts or any(part in {"", ".", ".."} for part in path.parts):
        return None
    if any(part.startswith(".") or ":" in part for part in path.parts):
        return None  # hidden files, macOS resource forks, Windows drive letters
    return path


def _is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def save_files(folder: Path, files: Sequence[tuple[str, bytes]]) -> tuple[int, list[tuple[str, str]]]:
    """Write uploaded ``(name, bytes)`` pairs into ``folder``; zips are expanded into a sub-folder of their name.

    Returns
    -------
    saved : int, the number of image files written.
    problems : list of (name, reason) for every file or zip member refused.
    """
    folder = Path(folder)
    saved = 0
    problems: list[tuple[str, str]] = []
    for name, content in files:
        base = PurePosixPath(name.replace("\\", "/")).name
        if base.lower().endswith(".zip"):
            count, refused = _save_zip(folder / _stem(base), content)
            saved += count
            problems += [(f"{base}: {member}", reason) for member, reason in refused]
        elif not _is_image_name(base) or _safe_relative(base) is None:
            problems.append((name, "not an image file name"))
        elif len(content) > MAX_FILE_BYTES:
            problems.append((name, "larger than the upload bound"))
        else:
            write_bytes_atomic(folder / base, content)
            saved += 1
    return saved, problems


def _stem(name: str) -> str:
    stem = PurePosixPath(name).stem.strip() or "upload"
    return stem if _safe_relative(stem) is not None else "upload"


def _save_zip(target: Path, content: bytes) -> tuple[int, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        return 0, [("(archive)", "not a readable zip file")]
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_FILES:
            return 0, [("(archive)", f"more than {MAX_FILES} files")]
        # Declared sizes can lie; the running total below is checked against what is actually read.
        total = 0
        saved = 0
        for member in members:
            relative = _safe_relative(member.filename)
            is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
            if relative is None or is_link:
                problems.append((member.filename, "unsafe path in archive, skipped"))
                continue
            if not _is_image_name(member.filename):
                continue  # readme files, metadata: silently ignored
            if member.file_size > MAX_FILE_BYTES or total + member.file_size > MAX_EXTRACTED_BYTES:
                problems.append((member.filename, "too large once extracted"))
                continue
            with archive.open(member) as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                problems.append((member.filename, "too large once extracted"))
                continue
            total += len(data)
            write_bytes_atomic(target.joinpath(*relative.parts), data)
            saved += 1
    return saved, problems

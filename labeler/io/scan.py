"""Find image files, hash them, check they decode, and spot exact duplicates.

Every image, whatever its file format or pixel mode, becomes an 8-bit RGB ``PIL.Image`` through
:func:`labeler.io.decode.decode_image`; anything that cannot be decoded raises ``UnreadableImage`` with a short
reason, so a folder of a user's own files (empty, truncated, mislabeled, enormous) never stops a scan.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from labeler.io.artifacts import write_bytes_atomic
from labeler.io.decode import UnreadableImage, decode_source
from labeler.progress import Progress

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)
T = TypeVar("T")


def _is_under(path: Path, parents: Collection[Path]) -> bool:
    return any(path == parent or parent in path.parents for parent in parents)


def _excluded_file(entry: os.DirEntry[str], real_folder: Path, excluded: Collection[Path], names: set[str]) -> bool:
    """Whether a file lies under ``excluded``. Its folder is known not to, so only a link can lead there: resolving
    every file instead would cost two system calls per image (20 s of a 100,000-image scan)."""
    if entry.is_symlink():
        return _is_under(Path(entry.path).resolve(), excluded)
    return os.path.join(real_folder, entry.name) in names


def find_images(root: Path, exclude: Collection[Path] = ()) -> list[Path]:
    """All image files under ``root``, recursively.

    Extensions are matched in any case. Symlinked folders are followed, but each real folder is walked once, so
    a link back to an ancestor cannot loop. Hidden folders and files (names starting with ``.``: the
    ``.labeler`` workspace, ``.git``, macOS ``._photo.jpg`` resource forks) and anything under ``exclude`` are
    skipped, as are names that are not valid Unicode (they could not be stored or shown).

    Returns
    -------
    list of Path, absolute, sorted by their posix path relative to ``root``.
    """
    root = Path(root).absolute()
    excluded = [Path(p).resolve() for p in exclude]
    excluded_names = {str(p) for p in excluded}
    visited: set[Path] = set()
    found: list[tuple[str, Path]] = []
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        real = folder.resolve()
        if real in visited or _is_under(real, excluded):
            continue
        visited.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError:  # unreadable folder: skip it rather than fail the scan
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                continue
            child_rel = f"{rel}{name}"
            try:
                if entry.is_dir(follow_symlinks=True):
                    stack.append((folder / name, child_rel + "/"))
                elif (
                    entry.is_file(follow_symlinks=True)
                    and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
                    and not (excluded and _excluded_file(entry, real, excluded, excluded_names))
                ):
                    found.append((child_rel, folder / name))
            except OSError:
                continue
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


def labels_from_folders(relative_paths: Sequence[str]) -> dict[str, str]:
    """``{relative path: name of its immediate parent folder}`` for images inside a sub-folder."""
    labels = {}
    for rel in relative_paths:
        parts = rel.split("/")
        if len(parts) > 1:
            labels[rel] = parts[-2]
    return labels


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ScannedImage:
    """One found file: ``path`` relative to the root (posix), content hash, upright size, or why it failed."""

    path: str
    sha256: str | None  # None when the file could not even be read
    width: int | None
    height: int | None
    error: str | None  # reason when unreadable, else None


# Above this mean file size, decoding (which releases the GIL) dominates and two threads pay; below it, the
# Python overhead of tiny files does, and a thread pool is slower than a loop (benchmarks/data_decode.py).
_THREADS_ABOVE_BYTES = 64 * 1024


def _n_workers(paths: Sequence[Path]) -> int:
    sample = paths[:: max(1, len(paths) // 20)][:20]
    sizes = []
    for path in sample:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            continue
    return 2 if sizes and sum(sizes) / len(sizes) > _THREADS_ABOVE_BYTES else 1


def for_each_file(work: Callable[[int], None], paths: Sequence[Path], progress: Progress | None, verb: str) -> None:
    """Call ``work(i)`` for every index (in a loop or two threads), reporting progress at most 5 times a second."""
    n = len(paths)
    last = 0.0

    def report(done: int) -> None:
        nonlocal last
        if progress is not None and time.monotonic() - last > 0.2:
            last = time.monotonic()
            progress(done / n, f"{verb} {done}/{n} images")

    if _n_workers(paths) == 1:
        for i in range(n):
            report(i)
            work(i)
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for done, _ in enumerate(pool.map(work, range(n))):
                report(done)
    if progress is not None:
        progress(1.0, f"{verb} {n} images")


def map_files(work: Callable[[Path], T], paths: Sequence[Path]) -> list[T]:
    """``[work(path) for path in paths]``, in a loop or two threads (by file size, as :func:`for_each_file`)."""
    if _n_workers(paths) == 1:
        return [work(path) for path in paths]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(work, paths))


def scan_images(
    root: Path,
    exclude: Collection[Path] = (),
    max_pixels: int = 64_000_000,
    progress: Progress | None = None,
) -> list[ScannedImage]:
    """Find, hash and fully decode every image under ``root``; a bad file is reported, never raised."""
    root = Path(root).absolute()
    paths = find_images(root, exclude)
    scanned: list[ScannedImage | None] = [None] * len(paths)

    def check(i: int) -> None:
        rel = paths[i].relative_to(root).as_posix()
        try:
            content = paths[i].read_bytes()  # read once: the same bytes are hashed and decoded
        except OSError as error:
            scanned[i] = ScannedImage(rel, None, None, None, f"cannot read file: {error.strerror}")
            return
        sha = hashlib.sha256(content).hexdigest()
        try:
            if not content:
                raise UnreadableImage("empty file")
            # Draft mode still decodes the whole JPEG stream, so it proves the file whole at a fraction of the cost.
            _, (width, height) = decode_source(io.BytesIO(content), max_pixels, draft_size=64)
        except UnreadableImage as error:
            scanned[i] = ScannedImage(rel, sha, None, None, error.reason)
            return
        scanned[i] = ScannedImage(rel, sha, width, height, None)

    for_each_file(check, paths, progress, "checked")
    return [item for item in scanned if item is not None]


def find_duplicates(scanned: Sequence[ScannedImage]) -> dict[str, str]:
    """``{duplicate path: original path}`` among readable images with the same content hash.

    The original is the first path in sorted order.
    """
    first: dict[str, str] = {}
    duplicates = {}
    for item in sorted(scanned, key=lambda s: s.path):
        if item.sha256 is None or item.error is not None:
            continue
        if item.sha256 in first:
            duplicates[item.path] = first[item.sha256]
        else:
            first[item.sha256] = item.path
    return duplicates


def dataset_fingerprint(sha256s: Sequence[str]) -> str:
    """First 16 hex characters of the SHA-256 of the ordered list (content hashes, or any strings)."""
    return hashlib.sha256("\n".join(sha256s).encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- re-scans
def file_stamp(path: Path) -> tuple[int, int] | None:
    """(size in bytes, modification time in ns) of a file, or None when it cannot be stat'ed."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return int(stat.st_size), int(stat.st_mtime_ns)


def load_stamps(path: Path) -> dict[str, tuple[int, int, str]]:
    """``{relative path: (size, mtime_ns, sha256)}`` of the last import, empty when there is none (or it is bad).

    A file whose size and modification time match its stamp is taken as unchanged without being read.
    """
    try:
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
        return {rel: (int(size), int(mtime), str(sha)) for rel, (size, mtime, sha) in stored["files"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def save_stamps(path: Path, stamps: dict[str, tuple[int, int, str]]) -> None:
    write_bytes_atomic(path, json.dumps({"version": 1, "files": stamps}, separators=(",", ":")).encode("utf-8"))

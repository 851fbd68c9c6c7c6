"""Find and decode images, make thumbnails, and cache the training-resolution pixels.

Every image, whatever its file format or pixel mode, becomes an 8-bit RGB ``PIL.Image`` through
:func:`decode_image`; anything that cannot be decoded raises :class:`UnreadableImage` with a short reason, so a
folder of a user's own files (empty, truncated, mislabeled, enormous) never stops a scan.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from labeler.artifacts import load_npy, save_npy_atomic
from labeler.decode import UnreadableImage, decode_image, decode_source, to_rgb

__all__ = [
    "IMAGE_EXTENSIONS", "ScannedImage", "UnreadableImage", "build_image_caches", "dataset_fingerprint",
    "decode_image", "file_sha256", "find_duplicates", "find_images", "labels_from_folders", "load_or_build_caches",
    "make_thumbnail", "make_training_image", "scan_images", "to_rgb",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)
# Letterbox colour of thumbnails: mid grey reads as "no picture here" on light and dark themes alike.
THUMB_BACKGROUND = (128, 128, 128)
# Training images wider (or taller) than this are centre-cropped to it before being squashed to a square.
MAX_TRAIN_ASPECT = 1.5

Progress = Callable[[float, str], None]


# ----------------------------------------------------------------------------------------------- finding


def _is_under(path: Path, parents: Collection[Path]) -> bool:
    return any(path == parent or parent in path.parents for parent in parents)


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
                    and not (excluded and _is_under(Path(entry.path).resolve(), excluded))
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


# ----------------------------------------------------------------------------------------------- scanning


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


def _for_each(work: Callable[[int], None], paths: Sequence[Path], progress: Progress | None, verb: str) -> None:
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

    _for_each(check, paths, progress, "checked")
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


# ----------------------------------------------------------------------------------------------- arrays


def make_thumbnail(image: Image.Image, size: int) -> NDArray[np.uint8]:
    """Fit ``image`` inside a ``size`` x ``size`` square, aspect kept, centred on a grey background.

    Returns
    -------
    ndarray of shape (size, size, 3), dtype uint8.
    """
    scale = size / max(image.width, image.height)
    width = min(size, max(1, round(image.width * scale)))
    height = min(size, max(1, round(image.height * scale)))
    resized = image.convert("RGB").resize((width, height), Image.Resampling.BICUBIC, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), THUMB_BACKGROUND)
    canvas.paste(resized, ((size - width) // 2, (size - height) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def make_training_image(image: Image.Image, size: int) -> NDArray[np.uint8]:
    """Squash ``image`` to a ``size`` x ``size`` square for self-supervised training.

    The whole picture is kept (no padding, whose width would tell the network each image's aspect ratio) when
    its aspect ratio is at most ``MAX_TRAIN_ASPECT`` (1.5, i.e. 3:2 photos); longer images are first
    centre-cropped to that ratio so panoramas are not squeezed beyond recognition.

    Returns
    -------
    ndarray of shape (size, size, 3), dtype uint8.
    """
    width, height = image.size
    box = (0, 0, width, height)
    if width > MAX_TRAIN_ASPECT * height:
        keep = round(MAX_TRAIN_ASPECT * height)
        left = (width - keep) // 2
        box = (left, 0, left + keep, height)
    elif height > MAX_TRAIN_ASPECT * width:
        keep = round(MAX_TRAIN_ASPECT * width)
        top = (height - keep) // 2
        box = (0, top, width, top + keep)
    resized = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    return np.asarray(resized, dtype=np.uint8)


def build_image_caches(
    root: Path,
    relative_paths: Sequence[str],
    thumb_size: int,
    train_size: int,
    max_pixels: int = 64_000_000,
    progress: Progress | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], list[str | None]]:
    """Decode each image once into a thumbnail and a training image.

    Returns
    -------
    thumbs : ndarray of shape (n, thumb_size, thumb_size, 3), uint8
    train : ndarray of shape (n, train_size, train_size, 3), uint8
    errors : list of n reasons, None where the image decoded; failed rows are all zeros.
    """
    n = len(relative_paths)
    thumbs = np.zeros((n, thumb_size, thumb_size, 3), dtype=np.uint8)
    train = np.zeros((n, train_size, train_size, 3), dtype=np.uint8)
    errors: list[str | None] = [None] * n
    root = Path(root)
    paths = [root / rel for rel in relative_paths]
    draft = max(thumb_size, train_size)

    def build(i: int) -> None:
        try:
            if paths[i].stat().st_size == 0:
                raise UnreadableImage("empty file")
            image, _ = decode_source(paths[i], max_pixels, draft_size=draft)
        except OSError as error:
            errors[i] = f"cannot read file: {error.strerror}"
            return
        except UnreadableImage as error:
            errors[i] = error.reason
            return
        thumbs[i] = make_thumbnail(image, thumb_size)
        train[i] = make_training_image(image, train_size)

    _for_each(build, paths, progress, "decoded")
    return thumbs, train, errors


def load_or_build_caches(
    cache_dir: Path,
    root: Path,
    relative_paths: Sequence[str],
    fingerprint: str,
    thumb_size: int,
    train_size: int,
    max_pixels: int = 64_000_000,
    progress: Progress | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Thumbnails and training images, read from ``cache_dir`` or built once and saved there atomically.

    Files are ``thumbs-{thumb_size}-{fingerprint}.npy`` and ``train-{train_size}-{fingerprint}.npy``; a file
    whose shape does not match ``relative_paths`` is rebuilt.
    """
    cache_dir = Path(cache_dir)
    thumbs_path = cache_dir / f"thumbs-{thumb_size}-{fingerprint}.npy"
    train_path = cache_dir / f"train-{train_size}-{fingerprint}.npy"
    n = len(relative_paths)
    if thumbs_path.exists() and train_path.exists():
        try:
            # Thumbnails are memory-mapped: pages read a screenful, not the whole (N, 96, 96, 3) array.
            thumbs, train = load_npy(thumbs_path, mmap=True), load_npy(train_path)
        except (OSError, ValueError):  # a foreign or damaged file: build it again
            pass
        else:
            if thumbs.shape == (n, thumb_size, thumb_size, 3) and train.shape == (n, train_size, train_size, 3):
                return thumbs.astype(np.uint8, copy=False), train.astype(np.uint8, copy=False)
    thumbs, train, _ = build_image_caches(root, relative_paths, thumb_size, train_size, max_pixels, progress)
    save_npy_atomic(thumbs_path, thumbs)
    save_npy_atomic(train_path, train)
    return thumbs, train

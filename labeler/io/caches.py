"""Thumbnails and training-resolution pixels of every readable image, cached on disk and memory-mapped.

Each file is read once, hashed and decoded once (:func:`decode_changed`), and its thumbnail and training image
are streamed to disk chunk by chunk; caches are assembled row range by row range (:mod:`labeler.io.chunked`), so
memory does not grow with the folder. A re-import decodes only new or changed files and copies every other row
from the previous cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from labeler.io import decode
from labeler.io.artifacts import load_npy
from labeler.io.chunked import NpyPatch, NpyReader, NpyWriter
from labeler.io.decode import UnreadableImage, decode_source
from labeler.io.scan import map_files
from labeler.progress import Progress, StopCheck, quiet

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

# Letterbox colour of thumbnails: mid grey reads as "no picture here" on light and dark themes alike.
THUMB_BACKGROUND = (128, 128, 128)


# Training images wider (or taller) than this are centre-cropped to it before being squashed to a square.
MAX_TRAIN_ASPECT = 1.5

# Images decoded, or rows copied, per step: bounds working memory (512 x (96^2 + 32^2) x 3 bytes = 15 MB).
CHUNK_ROWS = 512


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


@dataclass(frozen=True)
class DecodedImage:
    """One file's content digest and, if it decoded, its upright size and the two cached pictures."""

    sha256: str | None  # None when the file could not even be read
    width: int | None = None
    height: int | None = None
    thumb: NDArray[np.uint8] | None = None
    train: NDArray[np.uint8] | None = None
    error: str | None = None  # why the file is unreadable, else None


def decode_for_caches(
    content: bytes, thumb_size: int, train_size: int, max_pixels: int = 64_000_000
) -> DecodedImage:
    """Hash and fully decode one file's bytes into its thumbnail and training image (never raises)."""
    sha = hashlib.sha256(content).hexdigest()
    try:
        if not content:
            raise UnreadableImage("empty file")
        # Draft mode still decodes the whole JPEG stream, so it proves the file whole at a fraction of the cost.
        image, (width, height) = decode_source(io.BytesIO(content), max_pixels, draft_size=max(thumb_size, train_size))
    except UnreadableImage as error:
        return DecodedImage(sha, error=error.reason)
    return DecodedImage(
        sha, width, height, make_thumbnail(image, thumb_size), make_training_image(image, train_size)
    )


def read_training_image(
    path: Path, thumb_size: int, train_size: int, max_pixels: int = 64_000_000
) -> NDArray[np.uint8]:
    """The training image of one file, pixel for pixel as the cache holds it (for workers that decode themselves).

    Raises
    ------
    UnreadableImage
    """
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        raise UnreadableImage(f"cannot read file: {error.strerror}") from error
    decoded = decode_for_caches(content, thumb_size, train_size, max_pixels)
    if decoded.train is None:
        raise UnreadableImage(decoded.error or "unreadable")
    return decoded.train


# ------------------------------------------------------------------------------------------ files of a cache
def cache_paths(cache_dir: Path, fingerprint: str, thumb_size: int, train_size: int) -> tuple[Path, Path]:
    """``thumbs-{thumb_size}-d{version}-{fingerprint}.npy`` and ``train-{train_size}-d{version}-{fingerprint}.npy`` in
    ``cache_dir``, where ``version`` is the decoding's (``decode.DECODE_VERSION``): pixels decoded otherwise are
    another cache."""
    cache_dir, version = Path(cache_dir), decode.DECODE_VERSION
    return (cache_dir / f"thumbs-{thumb_size}-d{version}-{fingerprint}.npy",
            cache_dir / f"train-{train_size}-d{version}-{fingerprint}.npy")


# Names of pixel caches, finished or not; version 1 had no "d{version}-".
_CACHE_NAME = re.compile(r"(thumbs|train)-\d+-(?:d(\d+)-)?(?:building-)?(?:[0-9a-f]{16}|pending)\.npy")


def superseded_caches(cache_dir: Path) -> list[Path]:
    """Pixel caches in ``cache_dir`` that an older decoding wrote: nothing reads them again."""
    found = []
    for path in sorted(Path(cache_dir).glob("*.npy")):
        match = _CACHE_NAME.fullmatch(path.name)
        if match and int(match.group(2) or 1) < decode.DECODE_VERSION:
            found.append(path)
    return found


def open_caches(
    cache_dir: Path, fingerprint: str, thumb_size: int, train_size: int, n: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]] | None:
    """The cached thumbnails (N, T, T, 3) and training images (N, S, S, 3) as ``np.memmap``; None if absent or wrong.

    Thumbnails are read-only; training images are copy-on-write, so a consumer that wants a writable array (torch)
    gets one without a copy and without ever changing the file.
    """
    thumbs_path, train_path = cache_paths(cache_dir, fingerprint, thumb_size, train_size)
    try:
        thumbs = load_npy(thumbs_path, mmap=True)
        train = np.load(train_path, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError):  # absent, foreign or damaged: the caller builds it again
        return None
    if (
        thumbs.shape != (n, thumb_size, thumb_size, 3) or train.shape != (n, train_size, train_size, 3)
        or thumbs.dtype != np.uint8 or train.dtype != np.uint8
    ):
        return None
    return thumbs, train


class CacheWriter:
    """Thumbnail and training-image rows streamed into two ``.npy`` files, committed together."""

    def __init__(self, thumbs_path: Path, train_path: Path, n: int, thumb_size: int, train_size: int) -> None:
        self.thumbs = NpyWriter(thumbs_path, (n, thumb_size, thumb_size, 3), np.uint8)
        try:
            self.train = NpyWriter(train_path, (n, train_size, train_size, 3), np.uint8)
        except BaseException:
            self.thumbs.abort()
            raise

    def write(self, lo: int, thumbs: NDArray[np.uint8], train: NDArray[np.uint8]) -> None:
        self.thumbs.write(lo, thumbs)
        self.train.write(lo, train)

    def commit(self) -> None:
        self.thumbs.commit()
        self.train.commit()

    def abort(self) -> None:
        self.thumbs.abort()
        self.train.abort()


# ------------------------------------------------------------------------------------------ decoding
@dataclass(frozen=True)
class DecodeOutcome:
    """What :func:`decode_changed` learned: one entry per file asked about, and how many it decoded."""

    files: list[DecodedImage]  # thumb and train are not kept here (they went to disk); see ``pending_row``
    pending_row: list[int]  # row of each file in the pending caches, -1 where not decoded (unreadable or reused)
    n_decoded: int
    cancelled: bool


def decode_changed(
    paths: Sequence[Path],
    reusable: Mapping[str, tuple[int, int]],
    pending: CacheWriter | None,
    *,
    thumb_size: int,
    train_size: int,
    max_pixels: int = 64_000_000,
    dense: bool = True,
    progress: Progress = quiet,
    should_stop: StopCheck | None = None,
) -> DecodeOutcome:
    """Read and hash each file once; decode it only if its content is not in ``reusable`` ({sha256: (w, h)}).

    Decoded thumbnails and training images go to ``pending``, :data:`CHUNK_ROWS` files at a time: one after the
    other in the order decoded (``dense``), or each at its own position in ``paths`` with zeros elsewhere.
    ``pending`` needs room for ``len(paths)`` rows; it may be None when nothing can need decoding. Stops between
    chunks when ``should_stop()`` says so.
    """
    files: list[DecodedImage] = []
    pending_row: list[int] = []
    n_decoded = 0
    n = len(paths)
    last = 0.0

    def work(path: Path) -> DecodedImage:
        try:
            content = path.read_bytes()  # read once: the same bytes are hashed and decoded
        except OSError as error:
            return DecodedImage(None, error=f"cannot read file: {error.strerror}")
        sha = hashlib.sha256(content).hexdigest()
        if sha in reusable:
            width, height = reusable[sha]
            return DecodedImage(sha, width, height)
        return decode_for_caches(content, thumb_size, train_size, max_pixels)

    for lo in range(0, n, CHUNK_ROWS):
        if should_stop is not None and should_stop():
            return DecodeOutcome(files, pending_row, n_decoded, cancelled=True)
        if time.monotonic() - last > 0.2:
            last = time.monotonic()
            progress(lo / max(n, 1), f"read {lo}/{n} new or changed images")
        results = map_files(work, paths[lo : lo + CHUNK_ROWS])
        decoded = [(i, r.thumb, r.train) for i, r in enumerate(results) if r.thumb is not None and r.train is not None]
        if decoded:
            if pending is None:
                raise ValueError("files need decoding but no pending cache was given")
            if dense:
                pending.write(n_decoded, np.stack([d[1] for d in decoded]), np.stack([d[2] for d in decoded]))
            else:
                thumbs = np.zeros((len(results), thumb_size, thumb_size, 3), dtype=np.uint8)
                train = np.zeros((len(results), train_size, train_size, 3), dtype=np.uint8)
                for i, thumb, picture in decoded:
                    thumbs[i], train[i] = thumb, picture
                pending.write(lo, thumbs, train)
        for i, r in enumerate(results):
            if r.thumb is not None:
                pending_row.append(n_decoded if dense else lo + i)
                n_decoded += 1
            else:
                pending_row.append(-1)
            files.append(DecodedImage(r.sha256, r.width, r.height, error=r.error))
    progress(1.0, f"read {n} new or changed images")
    return DecodeOutcome(files, pending_row, n_decoded, cancelled=False)


def write_gathered(
    writer: CacheWriter,
    sources: Sequence[tuple[NpyReader, NpyReader] | None],
    which: NDArray[np.int64],
    rows: NDArray[np.int64],
    progress: Progress = quiet,
) -> None:
    """Fill ``writer``: row i is row ``rows[i]`` of the cache pair ``sources[which[i]]``.

    Runs of consecutive rows from one source are copied file to file by the kernel, so a re-import that changed
    one image moves the other 100,000 rows in a few large copies, none of them through this process's memory.
    """
    n = len(which)
    if n == 0:
        return
    # A run starts wherever the source changes or the source row does not follow the previous one.
    starts = np.flatnonzero(np.r_[True, (np.diff(which) != 0) | (np.diff(rows) != 1)])
    ends = np.r_[starts[1:], n]
    last = 0.0
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        pair = sources[int(which[lo])]
        if pair is None:
            raise ValueError(f"rows ask for source {int(which[lo])}, which is missing")
        writer.thumbs.copy_rows(pair[0], int(rows[lo]), lo, hi - lo)
        writer.train.copy_rows(pair[1], int(rows[lo]), lo, hi - lo)
        if time.monotonic() - last > 0.2 or hi == n:
            last = time.monotonic()
            progress(hi / n, f"cached {hi}/{n} images")


def patch_caches(
    old: tuple[Path, Path],
    new: tuple[Path, Path],
    pending: tuple[Path, Path],
    targets: NDArray[np.int64],
    rows: NDArray[np.int64],
    n: int | None = None,
) -> None:
    """Turn the cache pair ``old`` into ``new`` in place: rows ``targets`` become rows ``rows`` of ``pending``.

    For a re-import that changed some files and kept the row layout, or added files after every old row (``n``
    rows in all; the rows from the old end on must all be in ``targets``): the other rows are not copied (3 GB at
    100,000 images), yet no reader sees a half-written cache (:class:`labeler.io.chunked.NpyPatch`). ``old`` is
    consumed; after a failure neither pair exists and the caches are built again when next needed.
    """
    patches: list[NpyPatch] = []
    try:
        for old_path, new_path, pending_path in zip(old, new, pending, strict=True):
            patch = NpyPatch(old_path, new_path, n)
            patches.append(patch)
            if len(targets):
                reader = NpyReader(pending_path)
                starts = np.flatnonzero(np.r_[True, (np.diff(targets) != 1) | (np.diff(rows) != 1)])
                for lo, hi in zip(starts.tolist(), np.r_[starts[1:], len(targets)].tolist(), strict=True):
                    patch.copy_rows(reader, int(rows[lo]), int(targets[lo]), hi - lo)
        for patch in patches:
            patch.commit()
    except BaseException:
        for patch in patches:
            patch.abort()
        raise


def build_image_caches(
    root: Path,
    relative_paths: Sequence[str],
    thumbs_path: Path,
    train_path: Path,
    thumb_size: int,
    train_size: int,
    max_pixels: int = 64_000_000,
    progress: Progress | None = None,
) -> list[str | None]:
    """Decode each image once into ``thumbs_path`` (N, T, T, 3) and ``train_path`` (N, S, S, 3), streamed.

    Returns the reason each image failed (None where it decoded); failed rows hold zeros, so a caller marks
    those images unreadable and compacts the cache (see ``Workspace.images``).
    """
    n = len(relative_paths)
    writer = CacheWriter(thumbs_path, train_path, n, thumb_size, train_size)
    try:
        outcome = decode_changed(
            [Path(root) / rel for rel in relative_paths], {}, writer, thumb_size=thumb_size, train_size=train_size,
            max_pixels=max_pixels, dense=False, progress=progress or quiet,
        )
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    return [f.error for f in outcome.files]


@contextlib.contextmanager
def cache_lock(cache_dir: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold the cache folder's lock (an exclusive ``flock``, across threads and processes); yields whether held.

    Imports and cache builds hold it while they write; garbage collection takes it with ``blocking=False`` and
    skips its work when busy, so it never deletes a file an import is about to use. Locks do not nest.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "a") as handle:
        if fcntl is None:  # no advisory locks (Windows): one writer at a time is the user's business
            yield True
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

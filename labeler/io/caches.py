"""Thumbnails and training-resolution pixels of every readable image, built once and cached on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from labeler.io.artifacts import load_npy, save_npy_atomic
from labeler.io.decode import UnreadableImage, decode_source
from labeler.io.scan import for_each_file
from labeler.progress import Progress

# Letterbox colour of thumbnails: mid grey reads as "no picture here" on light and dark themes alike.
THUMB_BACKGROUND = (128, 128, 128)


# Training images wider (or taller) than this are centre-cropped to it before being squashed to a square.
MAX_TRAIN_ASPECT = 1.5


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

    for_each_file(build, paths, progress, "decoded")
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

"""Representation ``pretrained``: pooled features of a shipped ImageNet backbone, computed once per image.

Images are decoded in a thread pool (PIL releases the GIL while decoding and resizing; big JPEGs are decoded at 1/2,
1/4 or 1/8 scale by libjpeg's draft mode) while the previous batch runs through the model, so decoding hides behind
the forward pass. Features go to an append-only on-disk cache (:class:`FeatureCache`) in chunks, keyed by a content
digest that the caller passes per image: an unchanged file is never recomputed, a changed one gets a new key. Working
memory is bounded by ``batch_size`` and ``chunk_size``, whatever the number of images.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image, ImageOps
from torch import nn

from labeler.embed.backbones import BackboneSpec, backbone_spec, load_backbone
from labeler.embed.feature_cache import FeatureCache
from labeler.embed.ssl.device import ThreadChooser, autocast_dtype, thread_candidates
from labeler.io import decode
from labeler.io.decode import to_rgb  # one conversion for caches, display and features

Progress = Callable[[float, str], None]
T = TypeVar("T")

# Bump when resizing or cropping here changes the features (decoding has decode.DECODE_VERSION): old caches are then
# not reused.
PREPROCESS_VERSION = 1


def load_photo(path: Path, input_size: int, resize_size: int) -> NDArray[np.uint8]:
    """One image file, upright, its shorter side resized to ``resize_size`` and centre-cropped to ``input_size``.

    Parameters
    ----------
    path : Path
        Any format PIL reads; EXIF orientation is applied; the first frame of an animation.
    input_size, resize_size : int
        ``resize_size >= input_size``; equal sizes keep the whole shorter side.

    Returns
    -------
    NDArray[np.uint8], shape (input_size, input_size, 3)

    Raises
    ------
    Exception
        Whatever PIL raises for an unreadable file (``OSError``, ``ValueError``, ...).
    """
    with Image.open(path) as image:
        if image.format == "JPEG":
            # Decoding at reduced scale keeps both sides >= the request, hence the shorter side >= resize_size.
            image.draft("RGB", (resize_size, resize_size))
        image.load()
        rgb = to_rgb(ImageOps.exif_transpose(image))
    width, height = rgb.size
    # Resize and crop in one step: the centre square of the source that maps onto the crop.
    side = min(width, height) * input_size / resize_size
    box = ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)
    out = rgb.resize((input_size, input_size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    return np.asarray(out, dtype=np.uint8)


def cache_tag(spec: BackboneSpec, kind: str = "pretrained", extra: object = None) -> str:
    """Directory name for features of ``spec``: changes whenever weights, preprocessing or ``extra`` do."""
    fields = (kind, PREPROCESS_VERSION, decode.DECODE_VERSION, spec.sha256, spec.input_size, spec.resize_size,
              spec.mean, spec.std, extra)
    return f"{kind}-{spec.name}-{hashlib.sha256(repr(fields).encode()).hexdigest()[:12]}"


def usable_cores() -> int:
    """CPU cores this process may run on (fewer than ``os.cpu_count()`` under cgroups or taskset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def normalise(batch: NDArray[np.uint8], spec: BackboneSpec, device: torch.device) -> torch.Tensor:
    """uint8 images (B, S, S, 3) to the model's float input (B, 3, S, S), channels-last, on ``device``.

    Converting after the transfer moves a quarter of the bytes to a GPU; permuting an NHWC array gives channels-last
    strides for free.
    """
    x = torch.from_numpy(batch).to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1) * 255
    return (x - mean) / std


def embed_batch(
    model: nn.Module, spec: BackboneSpec, device: torch.device, batch: NDArray[np.uint8]
) -> NDArray[np.float32]:
    """Pooled features (B, D) float32 of uint8 images (B, S, S, 3), under bf16/fp16 autocast where native.

    bf16 autocast + channels-last measured 2x float32 on the 2-core AVX-512 bf16 CPU (144 vs 73 images/s per
    forward, BatchNorm folded); CPUs without native bf16 get float32 (``autocast_dtype`` returns None).
    """
    dtype = autocast_dtype(device)
    with torch.inference_mode():
        x = normalise(batch, spec, device)
        if dtype is None:
            y = model(x)
        else:
            with torch.autocast(device.type, dtype=dtype):
                y = model(x)
        features: NDArray[np.float32] = y.float().cpu().numpy()
    return features


def decode_batches(
    items: Sequence[T],
    load: Callable[[T], NDArray[np.uint8]],
    item_shape: tuple[int, ...],
    batch_size: int,
    workers: int,
) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.bool_]]]:
    """``load(item)`` for every item, in a thread pool, batched, one batch decoded ahead of the one yielded.

    Yields ``(images (b, *item_shape) uint8, ok (b,) bool)`` with ``b <= batch_size``; the row of an item whose
    ``load`` raised is zero and False (any unreadable file is marked, never fatal to the whole folder). A yielded
    array is valid only until the next is requested: two buffers alternate, so memory stays at two batches.
    """
    buffers = [np.zeros((batch_size, *item_shape), np.uint8) for _ in range(2)]

    def load_into(buffer: NDArray[np.uint8], row: int, item: T) -> bool:
        try:
            buffer[row] = load(item)
        except Exception:
            buffer[row] = 0
            return False
        return True

    starts = range(0, len(items), batch_size)
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit(index: int) -> list[Future[bool]]:
            start, buffer = starts[index], buffers[index % 2]
            batch = items[start : start + batch_size]
            return [pool.submit(load_into, buffer, row, item) for row, item in enumerate(batch)]

        pending = submit(0) if starts else []
        for index in range(len(starts)):
            ok = np.array([future.result() for future in pending], dtype=bool)
            if index + 1 < len(starts):
                pending = submit(index + 1)
            yield buffers[index % 2][: len(ok)], ok


def embed_into_cache(
    cache: FeatureCache,
    items: Sequence[T],
    keys: Sequence[Sequence[str]],
    load: Callable[[T], NDArray[np.uint8]],
    model: nn.Module,
    spec: BackboneSpec,
    device: torch.device,
    batch_size: int = 32,
    chunk_size: int = 512,
    workers: int | None = None,
    progress: Progress | None = None,
    label: str = "features",
) -> int:
    """Run ``load(item)`` (K images, (K, S, S, 3) uint8) through ``model`` for every item and store the K feature
    rows of item i under ``keys[i]``, committing every ``chunk_size`` items.

    Decoding runs in a pool of ``workers`` threads, one batch ahead of the forward pass. On the CPU the number of
    torch threads is chosen by timing (:class:`~labeler.embed.ssl.device.ThreadChooser`): when other processes keep
    the cores busy, one thread ran this forward faster than two (20 vs 9-18 images/s at load average 6 on 2 cores).
    Items whose ``load`` raised are not stored. Returns the number of such items.
    """
    if not items:
        return 0
    views = len(keys[0])
    size = spec.input_size
    per_batch = max(1, batch_size // views)  # items per forward pass, so that it sees about batch_size images
    workers = workers or usable_cores()
    failed = done = 0
    chooser = ThreadChooser(thread_candidates(device))
    threads_before = torch.get_num_threads()
    try:
        for start in range(0, len(items), chunk_size):
            chunk = range(start, min(start + chunk_size, len(items)))
            features, masks = [], []
            batches = decode_batches([items[i] for i in chunk], load, (views, size, size, 3), per_batch, workers)
            for batch, ok in batches:  # the next batch decodes in the pool while this one runs through the model
                torch.set_num_threads(chooser.threads())
                tic = time.perf_counter()
                features.append(embed_batch(model, spec, device, batch.reshape(-1, size, size, 3)))
                chooser.record((time.perf_counter() - tic) / len(batch), time.monotonic())  # per item: last batch
                masks.append(ok)
            good = np.concatenate(masks)
            stored = [key for i, g in zip(chunk, good, strict=True) if g for key in keys[i]]
            cache.append(stored, np.concatenate(features).reshape(len(chunk), views, -1)[good].reshape(len(stored), -1))
            failed += int((~good).sum())
            done += len(chunk)
            if progress is not None:
                progress(done / len(items), f"{label}: {done}/{len(items)} images")
    finally:
        torch.set_num_threads(threads_before)
    return failed


def pretrained_features(
    paths: Sequence[Path],
    digests: Sequence[str],
    cache_dir: Path,
    backbone: str = "efficientnet_lite0",
    device: torch.device | str | None = None,
    batch_size: int = 32,
    chunk_size: int = 512,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Pooled pretrained features of image files, from the cache where their digest is already there.

    Parameters
    ----------
    paths : sequence of Path, length N
    digests : sequence of str, length N
        A content hash per file (e.g. the scan's SHA-256); the cache key. Identical files share one row.
    cache_dir : Path
        Parent of the cache; the features live in a subfolder named after backbone, weights and preprocessing.
    backbone : str
        A key of :data:`labeler.embed.backbones.BACKBONES`.
    device : torch.device or str, optional
        CUDA when available, else the CPU.
    batch_size : int
        Images per forward pass.
    chunk_size : int
        Images computed between two commits to the cache (a stopped run keeps every committed chunk).
    workers : int, optional
        Decoding threads; the number of usable cores by default.
    progress : callable(fraction, message), optional

    Returns
    -------
    X : NDArray[np.float32], shape (N, D)
        Read-only. A memory map of the cache when the requested rows are stored in order (a folder embedded in one
        go), else an in-memory copy. Rows of files that failed to decode are zero.
    ok : NDArray[np.bool_], shape (N,)
        False where the file could not be decoded (not cached: it is tried again next time).

    Raises
    ------
    labeler.embed.backbones.BackboneUnavailable
        Only when some features are missing and the weights cannot be loaded.
    """
    spec = backbone_spec(backbone)
    cache = FeatureCache(Path(cache_dir) / cache_tag(spec), spec.feature_dim)
    return cached_photo_features(paths, digests, cache, spec, lambda target: load_backbone(backbone, target)[0],
                                 device, batch_size, chunk_size, workers, progress)


def cached_photo_features(
    paths: Sequence[Path],
    digests: Sequence[str],
    cache: FeatureCache,
    spec: BackboneSpec,
    load_model: Callable[[torch.device], nn.Module],
    device: torch.device | str | None = None,
    batch_size: int = 32,
    chunk_size: int = 512,
    workers: int | None = None,
    progress: Progress | None = None,
    label: str = "features",
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Features of image files from ``cache``, computing (with ``load_model(device)``, loaded only then) and storing
    those whose digest is missing: one file per missing digest. Returns (X, ok) as :func:`pretrained_features`."""
    if len(paths) != len(digests):
        raise ValueError(f"got {len(paths)} paths but {len(digests)} digests")
    if batch_size < 1 or chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be positive")
    rows = cache.lookup(digests)
    todo = list({digest: i for i, digest in enumerate(digests) if rows[i] < 0}.values())
    if todo:
        target = torch.device(device) if device is not None else default_device()
        model = load_model(target)

        def load(i: int) -> NDArray[np.uint8]:
            return load_photo(Path(paths[i]), spec.input_size, spec.resize_size)[None]

        embed_into_cache(cache, todo, [[digests[i]] for i in todo], load, model, spec, target, batch_size,
                         chunk_size, workers, progress, label=label)
        rows = cache.lookup(digests)
    return cache.gather(rows), rows >= 0

"""Augmented views of photos, through a frozen backbone, cached: the data that SimCLR-on-features trains on.

Each view is fixed by (image digest, view index, ``random_state``), so it is computed once, cached on disk like the
plain features, and the same on every run. Views are made two per image per round (one decode, two crops), so a
time budget that ends early leaves every image with the same number of views, and a later run adds more.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image, ImageOps
from torch import nn

from labeler.embed.backbones import BackboneSpec, backbone_spec, load_backbone
from labeler.embed.feature_cache import FeatureCache
from labeler.embed.pretrained import Progress, cache_tag, default_device, embed_into_cache
from labeler.io.decode import to_rgb

StopCheck = Callable[[], bool]
_VIEWS_PER_ROUND = 2  # views cut from one decode of an image


@dataclass(frozen=True)
class ViewAugment:
    """SimCLR's photo augmentations (Chen et al. 2020, appendix A) without blur, which a pretrained CNN mostly
    ignores. Colour ops are applied in a fixed order (brightness, contrast, saturation, hue) with probability
    ``jitter_p``."""

    crop_scale: tuple[float, float] = (0.2, 1.0)  # area fraction of the random resized crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1  # turns
    grayscale_p: float = 0.2


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)


def view_rng(random_state: int, digest: str, view: int) -> np.random.Generator:
    """The generator of one view: the same image, view and seed always give the same augmentation."""
    image_seed = int.from_bytes(hashlib.sha256(digest.encode()).digest()[:8], "little")
    return np.random.default_rng([random_state, view, image_seed])


def _crop_box(width: int, height: int, aug: ViewAugment, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """torchvision's RandomResizedCrop box: random area and log-uniform aspect, the centre square as fallback."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*aug.crop_scale)
        ratio = math.exp(rng.uniform(math.log(aug.crop_ratio[0]), math.log(aug.crop_ratio[1])))
        w, h = math.sqrt(target * ratio), math.sqrt(target / ratio)
        if w <= width and h <= height:
            left, top = rng.uniform(0, width - w), rng.uniform(0, height - h)
            return left, top, left + w, top + h
    side = min(width, height)
    return (width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2


def _jitter(x: NDArray[np.float32], aug: ViewAugment, rng: np.random.Generator) -> NDArray[np.float32]:
    """Colour jitter and random grey of one image (S, S, 3) in [0, 1]."""
    if rng.random() < aug.jitter_p:
        x = np.clip(x * rng.uniform(1 - aug.brightness, 1 + aug.brightness), 0, 1)
        grey_mean = float((x @ _LUMA).mean())
        x = np.clip((x - grey_mean) * rng.uniform(1 - aug.contrast, 1 + aug.contrast) + grey_mean, 0, 1)
        grey = (x @ _LUMA)[..., None]
        x = np.clip(grey + (x - grey) * rng.uniform(1 - aug.saturation, 1 + aug.saturation), 0, 1)
        angle = rng.uniform(-aug.hue, aug.hue) * 2 * math.pi
        rotate = np.array(
            [[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]], np.float32
        )
        x = np.clip(x @ (np.linalg.inv(_RGB_TO_YIQ) @ rotate @ _RGB_TO_YIQ).T, 0, 1)
    if rng.random() < aug.grayscale_p:
        x = np.repeat((x @ _LUMA)[..., None], 3, axis=2)
    return x.astype(np.float32)


def load_views(
    path: Path, digest: str, views: Sequence[int], spec: BackboneSpec, aug: ViewAugment, random_state: int
) -> NDArray[np.uint8]:
    """Augmented views of one image, decoded once: (len(views), S, S, 3) uint8 with S = ``spec.input_size``."""
    size = spec.input_size
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("RGB", (2 * size, 2 * size))  # crops of a fifth of the area still come from >= S pixels
        image.load()
        rgb = to_rgb(ImageOps.exif_transpose(image))
    out = np.empty((len(views), size, size, 3), np.uint8)
    for k, view in enumerate(views):
        rng = view_rng(random_state, digest, view)
        crop = rgb.resize((size, size), Image.Resampling.BICUBIC, box=_crop_box(*rgb.size, aug, rng), reducing_gap=3.0)
        x = np.asarray(crop, dtype=np.float32) * np.float32(1 / 255)
        if rng.random() < aug.flip_p:
            x = x[:, ::-1]
        out[k] = np.rint(_jitter(x, aug, rng) * 255)
    return out


def views_tag(spec: BackboneSpec, aug: ViewAugment | None = None) -> str:
    """The feature cache folder of the views of ``spec`` made with ``aug`` (default: the app's): starts
    ``views-<backbone>-`` (garbage collection reads it)."""
    return cache_tag(spec, "views", astuple(aug or ViewAugment()))


def view_features(
    paths: Sequence[Path],
    digests: Sequence[str],
    cache_dir: Path,
    n_views: int = 8,
    random_state: int = 0,
    backbone: str = "efficientnet_lite0",
    device: torch.device | str | None = None,
    aug: ViewAugment | None = None,
    deadline: float = math.inf,
    batch_size: int = 32,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> tuple[FeatureCache, NDArray[np.int64]]:
    """Compute (or find in the cache) backbone features of up to ``n_views`` augmented views per image.

    Views are made in rounds of two per image; after a round, if ``time.monotonic()`` is past ``deadline`` or
    ``should_stop()`` says so, no further round starts (at least one round always runs).

    Returns
    -------
    cache : FeatureCache
    rows : NDArray[np.int64], shape (N, V)
        Cache row of view v of image i, V <= ``n_views`` the number of complete views; -1 where an image failed.
    """
    if n_views < 2:
        raise ValueError(f"n_views must be at least 2, got {n_views}")
    spec = backbone_spec(backbone)
    aug = aug or ViewAugment()
    cache = FeatureCache(Path(cache_dir) / views_tag(spec, aug), spec.feature_dim)
    model: nn.Module | None = None
    target = torch.device(device) if device is not None else default_device()
    rounds = math.ceil(n_views / _VIEWS_PER_ROUND)
    done_views = 0
    for r in range(rounds):
        views = list(range(r * _VIEWS_PER_ROUND, min((r + 1) * _VIEWS_PER_ROUND, n_views)))
        keys = [[f"{digest}/{random_state}/{v}" for v in views] for digest in digests]
        missing = [i for i, row in enumerate(cache.lookup([k[-1] for k in keys])) if row < 0]
        if missing:
            if model is None:  # loaded only when some view is missing
                model = load_backbone(backbone, target)[0]

            def load(i: int, views: list[int] = views) -> NDArray[np.uint8]:
                return load_views(Path(paths[i]), digests[i], views, spec, aug, random_state)

            def report(fraction: float, message: str, r: int = r, views: list[int] = views) -> None:
                if progress is not None:
                    progress((r + fraction) / rounds, f"views {r * _VIEWS_PER_ROUND + 1}-{views[-1] + 1}: {message}")

            embed_into_cache(
                cache,
                missing,
                [keys[i] for i in missing],
                load,
                model,
                spec,
                target,
                batch_size,
                progress=report,
                label="augmented views",
            )
        done_views = views[-1] + 1
        if time.monotonic() > deadline or (should_stop is not None and should_stop()):
            break
    all_keys = [f"{digest}/{random_state}/{v}" for digest in digests for v in range(done_views)]
    rows = cache.lookup(all_keys).reshape(len(digests), done_views)
    rows[(rows < 0).any(axis=1)] = -1
    return cache, rows

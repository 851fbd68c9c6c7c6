"""Is a folder one of colour photographs? Decides the instant representation before any label or training.

An ImageNet backbone sees colour photographs at 224 px; on small grey images (digits, glyphs, 28 px scans) its
features lose to pixels and to the small encoder trained from scratch (``benchmarks/results/quality.md``), and
computing them costs far more than a PCA of the pixels. So the pretrained representation is the instant one only
for folders of colour images whose typical shorter side is at least ``min_side`` pixels (32: colour thumbnails are
photographs too; pets37 reduced to 32 px keeps 0.30 of its breeds right at one label each on the backbone's features
against 0.04 on edges and pixels, ``benchmarks/results/thumbnails.md``).

Small images (typical shorter side below ``SMALL_SIDE``) also get edge histograms and pixels, in colour too: colour
digits on photo backgrounds (MNIST-M-like, 32 px) are 0.57 right at ten labels per class on edges and pixels against
0.32 on the backbone, so for small colour images the labels decide by leave-one-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

PHOTO_MIN_SIDE = 32  # typical shorter side, in source pixels, from which colour images count as photos
SMALL_SIDE = 64  # typical shorter side below which images also get edge histograms and pixels
_COLOUR_SPREAD = 16  # max - min over R, G, B above which a pixel is coloured (JPEG noise on grey stays below)
_COLOUR_PIXELS = 0.05  # share of coloured pixels from which an image counts as a colour image
# (width, height) of each image in source pixels, None where unknown
Sizes = NDArray[Any] | Sequence[tuple[int | None, int | None]]


def colour_share(images: NDArray[np.uint8], *, max_images: int = 512) -> float:
    """Share of images (an evenly spaced sample of at most ``max_images``) that are in colour.

    Parameters
    ----------
    images : uint8 (N, S, S, 3)
        The training-image cache (any size works; 32 px is plenty to see colour).

    Returns
    -------
    float in [0, 1]; 0.0 for no images.
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, S, S, 3), got {images.shape}")
    if len(images) == 0:
        return 0.0
    sample = np.asarray(images[np.linspace(0, len(images) - 1, min(max_images, len(images))).astype(int)])
    spread = sample.max(axis=-1).astype(np.int16) - sample.min(axis=-1)
    coloured = np.mean(spread > _COLOUR_SPREAD, axis=(1, 2))
    return float(np.mean(coloured >= _COLOUR_PIXELS))


def typical_side(sizes: Sizes) -> float | None:
    """Median shorter side of the images, in source pixels; unknown sizes (None) are left out; None if none known."""
    known = [(w, h) for w, h in np.asarray(sizes, dtype=object).reshape(-1, 2) if w and h]
    return float(np.median([min(int(w), int(h)) for w, h in known])) if known else None


def is_small_folder(sizes: Sizes, *, max_side: int = SMALL_SIDE) -> bool:
    """True when the typical shorter side is below ``max_side`` (or no size is known): edges and pixels are a
    candidate representation there, whatever the colour."""
    side = typical_side(sizes)
    return side is None or side < max_side


def is_photo_folder(
    sizes: Sizes,
    images: NDArray[np.uint8],
    *,
    min_side: int = PHOTO_MIN_SIDE,
    max_images: int = 512,
) -> bool:
    """True for colour photographs: at least half the images in colour and a median shorter side >= ``min_side``.

    Parameters
    ----------
    sizes : (N, 2) of (width, height) in source pixels, as the import recorded them; unknown sizes (None) are
        left out.
    images : uint8 (N, S, S, 3), the same images at any cached resolution (only their colour is looked at).
    min_side : int
        Typical shorter side from which an ImageNet backbone, which sees 224 px, is worth its cost.

    Examples
    --------
    Grey 28 px digits: False (edges and pixels are instant and the from-scratch encoder wins). Colour 200 px photos:
    True. Colour 32 px thumbnails (CIFAR-like): True. Colour 28 px icons: False.
    """
    side = typical_side(sizes)
    return side is not None and side >= min_side and colour_share(images, max_images=max_images) >= 0.5

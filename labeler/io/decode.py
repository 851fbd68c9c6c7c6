"""Decode any image file into an upright 8-bit RGB picture, or say in a few words why it cannot be.

Every file format and pixel mode PIL reads (L, LA, P with transparency, RGBA, CMYK, 16-bit, 32-bit integer, float)
becomes ``RGB``; transparency is composited over white; 16-bit values are scaled, not clipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

_ORIENTATION = 0x0112  # EXIF tag

# Bump whenever to_rgb gives other pixels for some file: caches of pixels (labeler.io.caches) and features
# (labeler.embed.pretrained.cache_tag) made by an older decoding are then made again, not reused. 2: a PNG's colour
# key (tRNS) is transparency, composited over white.
DECODE_VERSION = 2


class UnreadableImage(Exception):
    """An image file that cannot be decoded; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _grey_to_uint8(values: NDArray[np.generic], mode: str) -> NDArray[np.uint8]:
    """Map one channel of a high-bit-depth mode to 0..255.

    ``I;16*``: 16-bit, divided by 257 (65535 -> 255, 32768 -> 128). ``I``: the same when all values lie in
    0..65535, otherwise min..max stretched to 0..255. ``F``: times 255 when all values lie in [0, 1], otherwise
    min..max stretched; NaN becomes 0; a constant image outside [0, 1] is clipped to 0..255.
    """
    x = values.astype(np.float64)
    finite = np.isfinite(x)
    x = np.where(finite, x, 0.0)
    lo = float(x.min()) if x.size else 0.0
    hi = float(x.max()) if x.size else 0.0
    if mode.startswith("I;16") or (mode == "I" and lo >= 0 and hi <= 65535):
        x = x / 257.0
    elif mode == "F" and lo >= 0 and hi <= 1:
        x = x * 255.0
    elif hi > lo:
        x = (x - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _over_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit ``RGB``; transparency is composited over white.

    Transparency is an alpha channel (RGBA, LA, PA), a palette's transparent entries (P) or a colour key (PNG's
    tRNS on L, RGB, 1 or 16-bit grey): all of them come out white, whatever colour the hidden pixels hold.
    """
    mode = image.mode
    key = image.info.get("transparency")
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image)
        grey = _grey_to_uint8(values, mode)
        if isinstance(key, int | float):  # a 16-bit grey PNG's colour key, in the file's own values
            grey = np.where(values == key, np.uint8(255), grey)
        return Image.fromarray(grey).convert("RGB")
    if mode in {"RGBA", "RGBa", "LA", "La", "PA"} or (key is not None and mode in {"P", "L", "RGB", "1"}):
        return _over_white(image)
    if mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as error:
        raise UnreadableImage(f"unsupported pixel mode {mode}") from error


def decode_source(
    source: Path | BinaryIO, max_pixels: int, draft_size: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """Decoded RGB image (possibly reduced by JPEG draft mode) and the full upright (width, height)."""
    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise UnreadableImage(f"decompression bomb ({width * height} pixels > {max_pixels})")
            if width == 0 or height == 0:
                raise UnreadableImage("zero-sized image")
            if draft_size is not None and image.format == "JPEG":
                # libjpeg decodes at 1/2, 1/4 or 1/8 scale (still reading the whole stream, so truncation is
                # still caught): several times faster for photos that are shrunk anyway.
                image.draft("RGB", (draft_size, draft_size))
            image.load()  # decode all pixels now, so a truncated file fails here
            oriented: Image.Image = image
            try:
                orientation = image.getexif().get(_ORIENTATION, 1)
                if orientation != 1:
                    oriented = ImageOps.exif_transpose(image)
                if orientation in (5, 6, 7, 8):  # the transposing ones
                    width, height = height, width
            except Exception:  # a corrupt EXIF block should not cost the picture
                oriented = image
            rgb = to_rgb(oriented)
            # Closing the file also releases the pixels of ``image``: keep a copy if nothing else made one.
            return (rgb.copy() if rgb is image else rgb), (width, height)
    except UnreadableImage:
        raise
    except Image.DecompressionBombError as error:
        raise UnreadableImage(f"decompression bomb ({error})") from error
    except Image.DecompressionBombWarning as error:  # only raised when warnings are set to errors
        raise UnreadableImage(f"decompression bomb ({error})") from error
    except UnidentifiedImageError as error:
        raise UnreadableImage("not an image") from error
    except (OSError, SyntaxError) as error:
        text = str(error).lower()
        if "truncated" in text or "broken data stream" in text or "end of file" in text:
            raise UnreadableImage("truncated") from error
        raise UnreadableImage(f"cannot decode: {error}") from error
    except Exception as error:  # any decoder bug on hostile input is still just an unreadable file
        raise UnreadableImage(f"cannot decode: {type(error).__name__}: {error}") from error


def decode_image(path: Path, max_pixels: int = 64_000_000) -> Image.Image:
    """Decode one image file to an upright, fully loaded 8-bit ``RGB`` image.

    EXIF orientation is applied; multi-frame files (GIF, TIFF) give their first frame; any pixel mode is
    converted by :func:`to_rgb`. An image with more than ``max_pixels`` pixels is refused from its header,
    before its pixels are decoded.

    Raises
    ------
    UnreadableImage
        With a short ``reason``: "empty file", "not an image", "truncated", "decompression bomb (...)", ...
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UnreadableImage("empty file")
    except OSError as error:
        raise UnreadableImage(f"cannot read file: {error.strerror or error}") from error
    return decode_source(path, max_pixels)[0]



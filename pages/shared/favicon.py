"""The app's favicon, drawn here: a material-symbol page icon makes the browser fetch its SVG from Google's font
servers at run time, and nothing the app shows may come from the network."""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw


@lru_cache(maxsize=1)
def tag_icon(size: int = 64) -> Image.Image:
    """A label tag (a rounded card with a punched hole), RGBA, ``size`` pixels square."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    s = size / 64
    draw.polygon([(6 * s, 18 * s), (40 * s, 18 * s), (58 * s, 32 * s), (40 * s, 46 * s), (6 * s, 46 * s)],
                 fill=(37, 99, 235, 255))
    draw.ellipse([(36 * s, 28 * s), (44 * s, 36 * s)], fill=(255, 255, 255, 255))
    return image

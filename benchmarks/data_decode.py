"""Decoding speed: scan and cache building for 1,000 small PNGs and for 12-megapixel JPEG photos.

Compares a plain loop with two threads (the choice ``labeler.data`` makes by mean file size).
Run ``python -m benchmarks.data_decode``; writes ``benchmarks/results/data_decode.md``.
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from labeler.io import scan as scan_module
from labeler.io.caches import build_image_caches
from labeler.io.scan import scan_images

FASHION = Path("/work/shared/datasets/fashion_1000.npz")
RESULTS = Path(__file__).parent / "results" / "data_decode.md"


def make_small(folder: Path, n: int = 1000) -> None:
    if FASHION.exists():
        images = np.load(FASHION)["images"][:n]
    else:  # the reference set is a development convenience; noise works as well for timing
        images = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:04d}.png")


def make_photos(folder: Path, n: int = 20) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:3000, 0:4000]
    for i in range(n):
        channels = [(xx * (i + 1) // 40) % 256, (yy // 15 + i * 10) % 256, ((xx + yy) // 30) % 256]
        array = np.stack(channels, -1) + rng.integers(-20, 20, (3000, 4000, 3))
        Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(folder / f"{i:02d}.jpg", quality=90)


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, maker in [("1,000 PNG 28x28", make_small), ("20 JPEG 4000x3000", make_photos)]:
            folder = Path(tmp) / name.replace(" ", "_")
            folder.mkdir()
            maker(folder)
            rels = [s.path for s in scan_images(folder)]
            for workers_label, threshold in [("loop", 1 << 62), ("2 threads", -1)]:
                scan_module._THREADS_ABOVE_BYTES = threshold  # benchmark only: force one strategy
                scan = best_of(partial(scan_images, folder))
                caches = (Path(tmp) / "thumbs.npy", Path(tmp) / "train.npy")
                build = best_of(partial(build_image_caches, folder, rels, *caches, 96, 32))
                rows.append(f"| {name} | {workers_label} | {scan:.2f} | {build:.2f} |")
    text = "\n".join(
        [
            "# Decoding speed (labeler.io.scan, labeler.io.caches)",
            "",
            f"{date.today()}, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
            "best of 3; thumbnails 96 px, training images 32 px. The machine had 2 cores, shared with other work.",
            "",
            "| images | strategy | scan_images (s) | build_image_caches (s) |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
            "Default: a loop when the mean file size is under 64 KiB, two threads above it.",
        ]
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

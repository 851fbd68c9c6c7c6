"""The CUDA paths at speed: pretrained features (decode + forward) and from-scratch SimCLR training on a GPU.

    python -m benchmarks.gpu [--photos 600] [--out benchmarks/results/gpu.md]

Photos are generated from scikit-image's cat and coffee pictures (random crops, resized to 0.3-12 MP, JPEG), so the
benchmark needs nothing but the installed packages. Run it where a GPU is (the CPU numbers are in
``benchmarks/results/pretrained.md``); without one it says so and stops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

RESULTS = Path(__file__).parent / "results" / "gpu.md"


def write_photos(root: Path, n: int, seed: int = 0) -> list[Path]:
    from skimage import data

    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())]
    paths = []
    for i in range(n):
        image = sources[i % 2]
        w, h = image.size
        cw, ch = int(w * rng.uniform(0.5, 1)), int(h * rng.uniform(0.5, 1))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        megapixels = float(np.exp(rng.uniform(np.log(0.3), np.log(12))))
        scale = np.sqrt(megapixels * 1e6 / (cw * ch))
        crop = image.crop((left, top, left + cw, top + ch)).resize((int(cw * scale), int(ch * scale)))
        path = root / f"photo_{i:04d}.jpg"
        crop.save(path, quality=88)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: nothing to measure")
    from labeler.embed.backbones import load_backbone
    from labeler.embed.pretrained import pretrained_features
    from labeler.embed.ssl.train import embed, train_simclr

    lines = [
        "# CUDA paths",
        "",
        f"`python -m benchmarks.gpu --photos {args.photos}`, {dt.date.today()}, {torch.cuda.get_device_name()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, Python {platform.python_version()}.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        paths = write_photos(root / "photos", args.photos)
        sizes = [Image.open(p).size for p in paths]
        mp = np.array([w * h / 1e6 for w, h in sizes])
        start = time.perf_counter()
        load_backbone("efficientnet_lite0", torch.device("cuda"))
        torch.cuda.synchronize()
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        X, ok = pretrained_features(paths, [p.name for p in paths], root / "cache", device="cuda")
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        lines += [
            "## Pretrained features (EfficientNet-Lite0, decode in the thread pool + forward + cache writes)",
            "",
            f"{len(paths)} JPEGs of {mp.min():.1f}-{mp.max():.1f} MP (median {np.median(mp):.1f}): "
            f"**{len(paths) / seconds:.0f} photos/s** ({seconds:.1f} s; model load and first use {load_s:.1f} s "
            f"apart), {int(ok.sum())} decoded, features {X.shape}.",
            "",
        ]
        rng = np.random.default_rng(0)
        images = rng.integers(0, 255, size=(20_000, 28, 28, 3), dtype=np.uint8)
        start = time.perf_counter()
        checkpoint = train_simclr(images, root / "ckpt", minutes=0.5, batch_size=256, device="cuda")
        train_s = time.perf_counter() - start
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        steps = int(state.get("step", 0))
        start = time.perf_counter()
        embed(images, checkpoint, device="cuda")
        embed_s = time.perf_counter() - start
        lines += [
            "## From-scratch SimCLR (small-image encoder, 20,000 images of 28 px, batch 256)",
            "",
            f"30 s budget: {steps} steps, {steps * 256 * 2 / train_s:.0f} views/s over {train_s:.1f} s wall "
            f"(start-up included); embedding 20,000 images {embed_s:.2f} s.",
            "",
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

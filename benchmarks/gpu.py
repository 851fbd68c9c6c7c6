"""The CUDA paths at speed: pretrained features (decode + forward), from-scratch SimCLR training, and SimCLR
fine-tuning of the backbone's last stages, on a GPU; with ``--pets``, what fine-tuning buys on pets37.

    python -m benchmarks.gpu [--photos 600] [--pets /work/shared/datasets/pets37] [--minutes 3] [--seeds 5]
                             [--out benchmarks/results/gpu.md]

Photos are generated from scikit-image's cat and coffee pictures (random crops, resized to 0.3-12 MP, JPEG), so the
speed sections need nothing but the installed packages. ``--pets DIR`` (a folder with ``ground_truth.csv`` and
``images/``) adds label-spreading accuracy (the helpers of :mod:`benchmarks.pretrained`: 10-NN cosine graph, alpha
0.99, mean over ``--seeds`` draws of k labels per class) of the pretrained features, pretrained + SimCLR (the head
adapted on cached views) and the fine-tuned last stages, each trained for ``--minutes``. Run it where a GPU is (the
CPU numbers are in ``benchmarks/results/pretrained.md``); without one it says so and stops, unless ``--device cpu``
(a dry run of the same code: small ``--photos`` and ``--minutes``, and an ``--out`` outside the checkout).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def features_section(paths: list[Path], root: Path, device: torch.device) -> list[str]:
    from labeler.embed.backbones import load_backbone
    from labeler.embed.pretrained import pretrained_features

    sizes = [Image.open(p).size for p in paths]
    mp = np.array([w * h / 1e6 for w, h in sizes])
    start = time.perf_counter()
    load_backbone("efficientnet_lite0", device)
    sync(device)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    X, ok = pretrained_features(paths, [p.name for p in paths], root / "cache", device=device)
    sync(device)
    seconds = time.perf_counter() - start
    return [
        "## Pretrained features (EfficientNet-Lite0, decode in the thread pool + forward + cache writes)",
        "",
        f"{len(paths)} JPEGs of {mp.min():.1f}-{mp.max():.1f} MP (median {np.median(mp):.1f}): "
        f"**{len(paths) / seconds:.0f} photos/s** ({seconds:.1f} s; model load and first use {load_s:.1f} s "
        f"apart), {int(ok.sum())} decoded, features {X.shape}.",
        "",
    ]


def simclr_section(root: Path, device: torch.device, n_images: int = 20_000) -> list[str]:
    from labeler.embed.ssl.train import embed, train_simclr

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(n_images, 28, 28, 3), dtype=np.uint8)
    start = time.perf_counter()
    checkpoint = train_simclr(images, root / "ckpt", minutes=0.5, batch_size=256, device=str(device))
    train_s = time.perf_counter() - start
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    steps = int(state.get("step", 0))
    start = time.perf_counter()
    embed(images, checkpoint, device=str(device))
    embed_s = time.perf_counter() - start
    return [
        f"## From-scratch SimCLR (small-image encoder, {n_images:,} images of 28 px, batch 256)",
        "",
        f"30 s budget: {steps} steps, {steps * 256 * 2 / train_s:.0f} views/s over {train_s:.1f} s wall "
        f"(start-up included); embedding {n_images:,} images {embed_s:.2f} s.",
        "",
    ]


def finetune_speed_section(paths: list[Path], root: Path, device: torch.device, minutes: float,
                           batch_size: int) -> list[str]:
    from labeler.embed.finetune import finetune_backbone, finetuned_features

    start = time.perf_counter()
    result = finetune_backbone(paths, root / "cache", minutes=minutes, batch_size=batch_size, device=device)
    wall = time.perf_counter() - start
    gib = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    memory = f"; peak GPU memory {gib:.1f} GiB" if device.type == "cuda" else ""
    start = time.perf_counter()
    _, ok = finetuned_features(paths, [p.name for p in paths], root / "cache", result.checkpoint, device=device)
    sync(device)
    embed_s = time.perf_counter() - start
    return [
        f"## SimCLR fine-tuning of the last 2 stages + conv_head (labeler.embed.finetune, batch {batch_size}, "
        "2 views each, 224 px, views made on the device)",
        "",
        f"{minutes:g} min budget on {len(paths)} photos: decoding them once {result.decode_seconds:.1f} s, then "
        f"**{result.steps / result.seconds:.1f} steps/s, {result.views / result.seconds:.0f} views/s** "
        f"({result.steps} steps, {result.epochs:.1f} epochs over {result.seconds:.1f} s of training, "
        f"{wall:.1f} s wall with model load{memory}); final NT-Xent "
        f"{result.losses[-1]:.3f}; checkpoint {len(result.checkpoint) / 1e6:.1f} MB; features of the fine-tuned "
        f"network for {int(ok.sum())} photos {embed_s:.1f} s.",
        "",
    ]


def pets_section(data: Path, root: Path, device: torch.device, minutes: float, seeds: int,
                 batch_size: int, lrs: list[float]) -> list[str]:
    """Label spreading on pets37: pretrained vs pretrained + SimCLR (head) vs fine-tuned last stages."""
    import pandas as pd

    from benchmarks.pretrained import spreading_accuracy
    from labeler.embed.adapted import adapted_features
    from labeler.embed.finetune import finetune_backbone, finetuned_features
    from labeler.embed.pretrained import pretrained_features

    truth = pd.read_csv(data / "ground_truth.csv")
    paths = [data / "images" / p for p in truth["path"]]
    digests = list(truth["path"])
    cache = root / "pets-cache"
    reps: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    X, ok = pretrained_features(paths, digests, cache, device=device)
    reps["pretrained (EfficientNet-Lite0 pooled)"] = np.array(X)
    notes = [f"pretrained features {time.perf_counter() - start:.0f} s"]
    start = time.perf_counter()
    adapted = adapted_features(paths, digests, cache, minutes=minutes, random_state=0, device=device)
    reps["pretrained + SimCLR (head on cached views, concat)"] = adapted.embedding
    notes.append(f"head {time.perf_counter() - start:.0f} s ({adapted.n_views} views per image, {adapted.epochs} "
                 f"epochs)")
    print(notes[-1], flush=True)
    tuned_ok = ok
    for lr in lrs:
        start = time.perf_counter()
        tuned = finetune_backbone(paths, cache, minutes=minutes, batch_size=batch_size, lr=lr, random_state=0,
                                  device=device)
        T, tuned_ok = finetuned_features(paths, digests, cache, tuned.checkpoint, device=device)
        reps[f"pretrained, last 2 stages fine-tuned by SimCLR (lr {lr:g})"] = np.array(T)
        notes.append(f"fine-tuning at lr {lr:g} {time.perf_counter() - start:.0f} s ({tuned.steps} steps of "
                     f"{batch_size}, {tuned.epochs:.0f} epochs, NT-Xent {tuned.losses[0]:.2f} -> "
                     f"{tuned.losses[-1]:.2f})")
        print(notes[-1], flush=True)
    cells = {"breed": (1, 3), "species": (1, 5)}
    header = " | ".join(f"{column}@{k}" for column, ks in cells.items() for k in ks)
    lines = [
        f"## Quality on pets37 ({len(paths)} photos; {int((ok & tuned_ok).sum())} decoded), budget {minutes:g} min "
        "each",
        "",
        "; ".join(notes) + ".",
        "",
        f"Label spreading (benchmarks.pretrained: 10-NN cosine graph, alpha 0.99) with k labels per class, accuracy "
        f"on the hidden images, mean ± std over {seeds} draws.",
        "",
        f"| representation | {header} |",
        "|---|" + "---|" * sum(len(ks) for ks in cells.values()),
    ]
    for name, Z in reps.items():
        row = []
        for column, ks in cells.items():
            y = truth[column].to_numpy(str)
            for k in ks:
                mean, std = spreading_accuracy(Z, y, k, seeds)
                row.append(f"{mean:.3f} ± {std:.3f}")
        lines.append(f"| {name} | " + " | ".join(row) + " |")
        print(lines[-1], flush=True)
    return [*lines, ""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=600)
    parser.add_argument("--pets", type=Path, default=None, help="a pets37 folder (ground_truth.csv, images/)")
    parser.add_argument("--minutes", type=float, default=3.0, help="pets37: training budget of the head and of "
                        "the fine-tuning, each")
    parser.add_argument("--speed-minutes", type=float, default=0.5, help="budget of the fine-tuning speed run")
    parser.add_argument("--batch-size", type=int, default=64, help="fine-tuning: images per step")
    parser.add_argument("--lrs", default="1e-4", help="pets37: the fine-tuning's learning rates, comma-separated")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--skip-speed", action="store_true", help="only the pets37 section")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: nothing to measure (--device cpu runs the same code on the CPU)")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU only ({platform.processor() or 'cpu'})"
    command = " ".join(["python -m benchmarks.gpu", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        "# CUDA paths",
        "",
        f"`{command}`, {dt.date.today()}, {name}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"Python {platform.python_version()}.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.skip_speed:
            (root / "photos").mkdir()
            paths = write_photos(root / "photos", args.photos)
            lines += features_section(paths, root, device)
            lines += simclr_section(root, device, 20_000 if device.type == "cuda" else 2_000)
            lines += finetune_speed_section(paths, root, device, args.speed_minutes, args.batch_size)
            print("\n".join(lines), flush=True)
        if args.pets is not None:
            lrs = [float(lr) for lr in args.lrs.split(",")]
            lines += pets_section(args.pets, root, device, args.minutes, args.seeds, args.batch_size, lrs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

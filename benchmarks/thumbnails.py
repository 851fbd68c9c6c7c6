"""Small colour images: natural thumbnails (CIFAR-like) and colour digits, on the backbone and on edges and pixels.

    python -m benchmarks.thumbnails [--data-dir /work/shared/datasets] [--seeds 10] [--side 32]

Two folders of ``--side`` px colour images are written to a temporary folder, as a user's would be:

- *pets37 thumbnails*: the pets37 photos, centre-cropped to a square and reduced to ``side`` px (CIFAR-10's size at
  32), tasks species and breed;
- *colour digits*: the first 2,000 MNIST digits of ``mnist_a`` drawn on random crops of pets37 photos, the recipe of
  MNIST-M (Ganin & Lempitsky 2015: each pixel ``|photo - digit|``), then ``side`` px.

Each gets the representations a refresh computes for such a folder (``labeler.embed.folder_kind``: colour and at
least 32 px makes it a photo folder, below 64 px also a small one): the pretrained EfficientNet-Lite0 features, edge
histograms beside pixels (``hog-pixels``) and pixels -> PCA; then label spreading on each, the app's choice
(leave-one-out, the photo preference) and its honest numbers (30 audits). Writes
``benchmarks/results/thumbnails.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from PIL import Image

from benchmarks.quality import (
    SHARED_DATASETS,
    app_choice,
    draw_seeds,
    honest_run,
    instant_representations,
    labeler_spreading,
    machine,
    mean_sd,
    share_of,
    training_cache,
)

RESULTS = Path(__file__).parent / "results" / "thumbnails.md"
N_DIGITS = 2000


def pet_thumbnails(folder: Path, side: int) -> list[Image.Image]:
    """The pets37 photos, centre-cropped square and reduced to ``side`` px."""
    table = pd.read_csv(folder / "ground_truth.csv")
    out = []
    for name in table["path"]:
        with Image.open(folder / "images" / name) as photo:
            image = photo.convert("RGB")
        w, h = image.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        out.append(image.crop(box).resize((side, side), Image.Resampling.LANCZOS))
    return out


def colour_digits(digits: NDArray[np.uint8], folder: Path, side: int, seed: int = 0) -> list[Image.Image]:
    """MNIST-M-like: each digit as ``|photo crop - digit|`` on a random 28 px crop of a random pets37 photo."""
    table = pd.read_csv(folder / "ground_truth.csv")
    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.open(folder / "images" / name).convert("RGB")) for name in table["path"]]
    out = []
    for digit in digits:
        photo = photos[rng.integers(len(photos))]
        top, left = rng.integers(photo.shape[0] - 28), rng.integers(photo.shape[1] - 28)
        patch = photo[top:top + 28, left:left + 28].astype(np.int16)
        blended = np.abs(patch - digit[:, :, None].astype(np.int16)).astype(np.uint8)
        out.append(Image.fromarray(blended).resize((side, side), Image.Resampling.BICUBIC))
    return out


def representations(images: list[Image.Image], tmp: Path) -> tuple[dict[str, NDArray[np.float32]], float, bool]:
    """The app's representations of a folder of these images (as PNG files), the backbone's seconds, and whether the
    app takes the folder for photos."""
    from labeler.embed.centred import centred_features
    from labeler.embed.folder_kind import is_photo_folder, is_small_folder
    from labeler.embed.pretrained import pretrained_features

    paths = []
    for i, image in enumerate(images):
        paths.append(tmp / f"{i:05d}.png")
        image.save(paths[-1])
    cache = training_cache([np.asarray(image) for image in images], 32)
    started = time.perf_counter()
    X, _ = pretrained_features(paths, [p.name for p in paths], tmp / "cache")
    seconds = time.perf_counter() - started
    reps = {"pretrained": centred_features(X), **instant_representations(cache)}
    sizes = [image.size for image in images]
    return reps, seconds, is_photo_folder(sizes, cache) and is_small_folder(sizes)


def rows(title: str, reps: dict[str, NDArray[np.float32]], y: NDArray[np.int64], ks: tuple[int, ...], seeds: int
         ) -> list[str]:
    """One markdown row per k: accuracy on each representation, the app's choice and its honest numbers."""
    from labeler.core import graph

    graphs = {name: graph.knn_graph(X, 15) for name, X in reps.items()}
    out = []
    for k in ks:
        acc: dict[str, list[float]] = {name: [] for name in [*reps, "choice"]}
        chosen: list[str] = []
        honest = []
        for seed in range(seeds):
            y_seen = draw_seeds(y, k, seed)
            hidden = y_seen < 0
            for name, X in reps.items():
                acc[name].append(float(np.mean(labeler_spreading(X, y_seen)[hidden] == y[hidden])))
            chosen.append(app_choice(reps, y_seen, photos=True).name)
            acc["choice"].append(acc[chosen[-1]][-1])
            honest.append(honest_run(reps, graphs, y, k, seed, 30, photos=True))
        cells = [f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in acc.values()]
        names, counts = np.unique(chosen, return_counts=True)
        out.append(f"| {title} | {k} | {' | '.join(cells)} | "
                   f"{', '.join(f'{n} {c}' for n, c in zip(names, counts, strict=True))} | "
                   f"{mean_sd(honest, 'ece')} | {share_of(honest, 'covers')} |")
        print(out[-1], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(SHARED_DATASETS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    data = Path(args.data_dir)
    pets = data / "pets37"
    started = dt.datetime.now().astimezone()
    truth = pd.read_csv(pets / "ground_truth.csv")
    with np.load(data / "mnist_a.npz") as mnist:
        digits, digit_labels = mnist["images"][:N_DIGITS], mnist["labels"][:N_DIGITS].astype(np.int64)
    table: list[str] = []
    notes: list[str] = []
    for title, images, tasks in (
        ("pets37 thumbnails", pet_thumbnails(pets, args.side),
         {task: np.unique(truth[task].to_numpy(str), return_inverse=True)[1].astype(np.int64)
          for task in ("species", "breed")}),
        ("colour digits", colour_digits(digits, pets, args.side), {"digit": digit_labels}),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            reps, seconds, small_photos = representations(images, Path(tmp))
        notes.append(f"- {title}: {len(images)} images; the app takes the folder for small photos: {small_photos}; "
                     f"backbone features in {seconds:.1f} s ({len(images) / seconds:.0f} images/s)")
        print(notes[-1], flush=True)
        for task, y in tasks.items():
            ks = (1, 3, 10) if task == "digit" else ((1, 5) if task == "species" else (1, 3, 5))
            table += rows(f"{title}, {task}", reps, y, ks, args.seeds)
    lines = [
        "# Small colour images (benchmarks/thumbnails.py)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}",
        f"- command: `python -m benchmarks.thumbnails --seeds {args.seeds} --side {args.side}`",
        f"- {args.side} px colour images written as PNG files; accuracy of label spreading (15-NN graph) on the images "
        "whose labels were hidden, mean ± std over the draws of k labels per class; 'app's choice' is leave-one-out "
        "with the photo preference (the backbone kept unless beaten by more than a standard error, outright at one "
        "label per class); ECE and 'truth in interval' are the app's honest numbers on its choice (30 audits, "
        "`benchmarks.quality.honest_run`)",
        *notes,
        "",
        "| set, task | k | pretrained | hog-pixels | pixels-pca | app's choice | chosen | ECE | truth in interval |",
        "|---|---|---|---|---|---|---|---|---|",
        *table,
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()

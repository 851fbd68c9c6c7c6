"""Speed and quality of the shipped pretrained backbone (EfficientNet-Lite0) and of SimCLR adapted on top of it.

    python -m benchmarks.pretrained [--data-dir /work/shared/datasets] [--seeds 5] [--minutes 3] [--skip-speed]

Speed: photos/s end to end (decode in the thread pool + forward + cache writes, into an empty cache; model loading
and warm-up timed apart), CPU seconds and peak RSS, each in a fresh process: pets37 (370 JPEGs of 0.03-2.8 MP),
pets37 twice over (740 images under new digests: memory must not grow with the folder), pets37 at batch 16 (less
memory), a set of 1-12 MP JPEGs generated from pets37 (the sizes phones write), pets37 with autocast off (float32).

Quality on pets37 (breed: 37 classes of 10; species: cat/dog): leave-one-out accuracy of a 10-nearest-neighbour vote
using all labels, and label-spreading accuracy (Zhou et al. 2004: symmetric cosine 10-NN graph, alpha 0.99, solved
exactly) on the images whose labels are hidden, with 1 / 5 labels per species and 1 / 3 / 5 per breed (10 would
leave no breed image unlabelled), mean ± std over ``--seeds`` draws. Representations: pixels (32 px RGB -> PCA-50),
pretrained, pretrained + SimCLR (``--minutes`` budget; its "concat" output and, for comparison, the hidden layer and
the projection). Writes ``benchmarks/results/pretrained.md``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from PIL import Image

from benchmarks.machine import cpu_name

RESULTS = Path(__file__).parent / "results" / "pretrained.md"
BREED_KS = (1, 3, 5)
SPECIES_KS = (1, 5)


# -- speed (each run in its own process, so that peak RSS is its own) -----------------------------------------------
def speed_worker(folder: Path, repeat: int, batch_size: int, autocast: bool) -> dict[str, Any]:
    import labeler.embed.pretrained as pretrained
    from labeler.embed.backbones import load_backbone

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    if not autocast:
        pretrained.autocast_dtype = lambda device: None
    start = time.perf_counter()
    # Paid once per process, timed apart: importing timm, reading the weights, and oneDNN building its kernels on a
    # first batch (seconds of CPU, which would dominate a short run).
    model, spec = load_backbone()
    device = torch.device("cpu")
    for size in {batch_size, len(paths) * repeat % batch_size} - {0}:
        pretrained.embed_batch(model, spec, device, np.zeros((size, spec.input_size, spec.input_size, 3), np.uint8))
    load_s = time.perf_counter() - start
    all_paths = [p for _ in range(repeat) for p in paths]
    digests = [f"{r}/{p.name}" for r in range(repeat) for p in paths]  # new digests: every image is computed
    with tempfile.TemporaryDirectory() as cache:
        start, cpu_start = time.perf_counter(), time.process_time()
        X, ok = pretrained.pretrained_features(all_paths, digests, Path(cache), batch_size=batch_size)
        seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "cpu_s": cpu_s,
        "n": len(all_paths),
        "ok": int(ok.sum()),
        "seconds": seconds,
        "photos_per_s": len(all_paths) / seconds,
        "load_s": load_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def cost_worker(folders: list[Path], batch_size: int = 32) -> dict[str, float]:
    """CPU milliseconds per photo of each stage, one thread, so that nothing spins: decode + resize + crop for each
    folder, and the forward pass (bf16 autocast where native, as the app runs it)."""
    import labeler.embed.pretrained as pretrained
    from labeler.embed.backbones import load_backbone

    torch.set_num_threads(1)
    model, spec = load_backbone()
    costs: dict[str, float] = {}
    images = np.zeros((batch_size, spec.input_size, spec.input_size, 3), np.uint8)
    for folder in folders:
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
        start = time.process_time()
        for i, path in enumerate(paths):
            images[i % batch_size] = pretrained.load_photo(path, spec.input_size, spec.resize_size)
        costs[f"decode {folder.name}"] = 1000 * (time.process_time() - start) / len(paths)
    device = torch.device("cpu")
    pretrained.embed_batch(model, spec, device, images)  # builds the kernels
    start = time.process_time()
    for _ in range(3):
        pretrained.embed_batch(model, spec, device, images)
    costs["forward"] = 1000 * (time.process_time() - start) / (3 * batch_size)
    return costs


def run_speed(folder: Path, repeat: int = 1, batch_size: int = 32, autocast: bool = True) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    command = [sys.executable, "-m", "benchmarks.pretrained", "--speed-worker", str(folder), "--repeat", str(repeat)]
    command += ["--batch-size", str(batch_size)] + ([] if autocast else ["--no-autocast"])
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["load_before"] = load_before
    return result


def make_big_jpegs(source: Path, target: Path, per_size: int = 12) -> None:
    """JPEGs of 1, 3 and 12 MP, upscaled from pets37 photos (content is irrelevant to the speed)."""
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted(source.glob("*.jpg"))
    for i, size in enumerate([(1152, 864)] * per_size + [(2000, 1500)] * per_size + [(4000, 3000)] * per_size):
        with Image.open(sources[i * 7 % len(sources)]) as image:
            image.convert("RGB").resize(size, Image.Resampling.BILINEAR).save(target / f"big_{i:03d}.jpg", quality=90)


# -- quality -------------------------------------------------------------------------------------------------------
def unit(X: NDArray[np.floating]) -> NDArray[np.float64]:
    Z = np.asarray(X, np.float64)
    return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)


def knn_loo(X: NDArray[np.floating], y: NDArray[np.str_], k: int = 10) -> float:
    Z = unit(X)
    similarity = Z @ Z.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    votes = np.array([Counter(y[row].tolist()).most_common(1)[0][0] for row in neighbours])
    return float(np.mean(votes == y))


def spreading_operator(X: NDArray[np.floating], k: int = 10, alpha: float = 0.99) -> NDArray[np.float64]:
    """``I - alpha S`` with S the symmetrically normalised, symmetrised cosine kNN graph (dense: N is small)."""
    Z = unit(X)
    similarity = Z @ Z.T
    np.fill_diagonal(similarity, -np.inf)
    n = len(Z)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    W = np.zeros((n, n))
    W[np.repeat(np.arange(n), k), neighbours.ravel()] = 1.0
    W = np.maximum(W, W.T)
    degree = W.sum(axis=1)
    return np.eye(n) - alpha * W / np.sqrt(np.outer(degree, degree))


def spreading_accuracy(X: NDArray[np.floating], y: NDArray[np.str_], per_class: int, seeds: int) -> tuple[float, float]:
    A = spreading_operator(X)
    classes, yi = np.unique(y, return_inverse=True)
    accuracies = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        Y = np.zeros((len(y), len(classes)))
        for c in range(len(classes)):
            Y[rng.choice(np.flatnonzero(yi == c), per_class, replace=False), c] = 1.0
        hidden = Y.sum(axis=1) == 0
        scores = np.linalg.solve(A, Y)
        accuracies.append(float(np.mean(scores.argmax(axis=1)[hidden] == yi[hidden])))
    return float(np.mean(accuracies)), float(np.std(accuracies))


def pixels_pca(paths: list[Path], n_components: int = 50) -> NDArray[np.float32]:
    from sklearn.decomposition import PCA

    pixels = np.stack(
        [np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)).ravel() for p in paths]
    ).astype(np.float32)
    return np.asarray(PCA(n_components, random_state=0).fit_transform(pixels / 255.0), np.float32)


def run_quality(data: Path, args: argparse.Namespace) -> tuple[dict[str, NDArray[np.float32]], dict[str, Any]]:
    from labeler.embed.adapted import adapted_features, embed_with_head
    from labeler.embed.pretrained import pretrained_features

    truth = pd.read_csv(data / "ground_truth.csv")
    paths = [data / "images" / p for p in truth["path"]]
    digests = list(truth["path"])
    info: dict[str, Any] = {}
    reps: dict[str, NDArray[np.float32]] = {"pixels -> PCA-50": pixels_pca(paths)}
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        X, ok = pretrained_features(paths, digests, Path(cache))
        info["pretrained_s"] = time.perf_counter() - start
        reps["pretrained (EfficientNet-Lite0 pooled)"] = np.array(X)
        start = time.perf_counter()
        result = adapted_features(paths, digests, Path(cache), minutes=args.minutes, random_state=0)
        info["adapted_s"] = time.perf_counter() - start
        info["adapted"] = {"views": result.n_views, "epochs": result.epochs, "loss": result.losses[-1]}
        info["ok"] = int(ok.sum())
    reps["pretrained + SimCLR (concat: features, hidden)"] = result.embedding
    for output in ("hidden", "projection"):
        reps[f"pretrained + SimCLR ({output} only)"] = embed_with_head(
            result.head, X, result.mean, result.scale, output
        )
    info["breed"], info["species"] = truth["breed"].to_numpy(str), truth["species"].to_numpy(str)
    return reps, info


# -- report --------------------------------------------------------------------------------------------------------
def machine() -> str:
    cpu = cpu_name()
    bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores shared with other work, native bf16 {'yes' if bf16 else 'no'}, {gpu}; "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="/work/shared/datasets")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=3.0, help="budget of pretrained + SimCLR")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--speed-worker", help=argparse.SUPPRESS)
    parser.add_argument("--cost-worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--no-autocast", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cost_worker:
        print(json.dumps(cost_worker([Path(f) for f in args.cost_worker])))
        return
    if args.speed_worker:
        print(json.dumps(speed_worker(Path(args.speed_worker), args.repeat, args.batch_size, not args.no_autocast)))
        return

    data = Path(args.data_dir) / "pets37"
    command = "python -m benchmarks.pretrained " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Pretrained backbone: speed and quality (benchmarks/pretrained.py)",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- command: `{command.strip()}` (a section skipped with --skip-speed/--skip-quality keeps its earlier run)",
        "",
    ]
    previous = RESULTS.read_text() if RESULTS.exists() else ""
    # A skipped section keeps what the last run measured (each section carries its own date and command).
    lines += old_section(previous, "## Speed") if args.skip_speed else speed_section(data, command)
    lines += old_section(previous, "## Quality") if args.skip_quality else quality_section(data, args, command)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def old_section(text: str, heading: str) -> list[str]:
    """The lines of the section of ``text`` that starts with ``heading``, up to the next ``## `` heading."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("## "):
            if out:
                break
            if not line.startswith(heading):
                continue
        if out or line.startswith(heading):
            out.append(line)
    return out


def measured(command: str) -> str:
    return f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `{command.strip()}`."


def speed_section(data: Path, command: str) -> list[str]:
    runs: list[tuple[str, dict[str, Any]]] = []
    runs.append(("pets37, 370 JPEGs (0.03-2.8 MP, median 0.17)", run_speed(data / "images")))
    runs.append(("pets37 x2, 740 images", run_speed(data / "images", repeat=2)))
    runs.append(("pets37, batch 16", run_speed(data / "images", batch_size=16)))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        make_big_jpegs(data / "images", Path(tmp))
        print(f"generated big JPEGs in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        runs.append(("36 JPEGs of 1, 3 and 12 MP (12 each)", run_speed(Path(tmp), repeat=4)))
        cost_command = [sys.executable, "-m", "benchmarks.pretrained", "--cost-worker", str(data / "images"), tmp]
        out = subprocess.run(cost_command, check=True, capture_output=True, text=True).stdout
        costs: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    runs.append(("pets37, float32 (autocast off)", run_speed(data / "images", autocast=False)))
    lines = [
        "## Speed: decode + forward + cache, end to end",
        "",
        measured(command),
        "",
        "Each row in a fresh process, into an empty cache, batch 32 unless said, torch threads = cores; model load "
        "(timm import, weights, a first batch of each size to build oneDNN kernels) timed apart. The 1-12 MP set "
        "is embedded four times under new digests (144 images). "
        "'load avg before' is the 1-minute load average when the row started: above 2, other processes shared the "
        "two cores and the photos/s understate what the code does on a free machine; photos per CPU-second (this "
        "process, all threads) is then the steadier figure, though spinning OpenMP threads inflate it too.",
        "",
        "| images | photos/s | seconds | photos per CPU-s | model load s | peak RSS MB | load avg before |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in runs:
        lines.append(
            f"| {name} | **{r['photos_per_s']:.0f}** | {r['seconds']:.1f} | {r['n'] / r['cpu_s']:.0f} | "
            f"{r['load_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['load_before']:.1f} |"
        )
    decode_pets, decode_big = costs["decode images"], costs[f"decode {Path(tmp).name}"]
    lines += [
        "",
        "CPU cost per photo, one thread (nothing spins, so this holds on a busy machine too): "
        f"decode + resize + crop {decode_pets:.1f} ms (pets37), {decode_big:.1f} ms (1-12 MP); "
        f"forward {costs['forward']:.1f} ms. On two free cores that bounds end-to-end throughput at about "
        f"{2000 / (decode_pets + costs['forward']):.0f} photos/s (pets37) and "
        f"{2000 / (decode_big + costs['forward']):.0f} photos/s (1-12 MP).",
    ]
    return [*lines, ""]


def quality_section(data: Path, args: argparse.Namespace, command: str) -> list[str]:
    reps, info = run_quality(data, args)
    breed, species = info["breed"], info["species"]
    header = " | ".join([f"breed@{k}" for k in BREED_KS] + [f"species@{k}" for k in SPECIES_KS])
    lines = [
        "## Quality on pets37 (370 photos, 37 breeds x 10, 2 species)",
        "",
        measured(command),
        "",
        f"pretrained features: {info['pretrained_s']:.0f} s; pretrained + SimCLR: {info['adapted_s']:.0f} s "
        f"(budget {args.minutes:g} min; {info['adapted']['views']} views per image, "
        f"{info['adapted']['epochs']} epochs, "
        f"final NT-Xent {info['adapted']['loss']:.2f}); {info['ok']} of 370 images decoded.",
        "",
        f"Label spreading (10-NN cosine graph, alpha 0.99) at k labels per class, accuracy on the hidden images, "
        f"mean ± std over {args.seeds} draws; kNN LOO: 10-NN vote with every other label known.",
        "",
        f"| representation | kNN LOO breed | kNN LOO species | {header} |",
        "|---|---|---|" + "---|" * (len(BREED_KS) + len(SPECIES_KS)),
    ]
    for name, X in reps.items():
        cells = [f"{knn_loo(X, breed):.3f}", f"{knn_loo(X, species):.3f}"]
        for y, ks in ((breed, BREED_KS), (species, SPECIES_KS)):
            for k in ks:
                mean, std = spreading_accuracy(X, y, k, args.seeds)
                cells.append(f"{mean:.3f} ± {std:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], file=sys.stderr, flush=True)
    return [*lines, ""]


if __name__ == "__main__":
    main()

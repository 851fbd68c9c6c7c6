"""Propagated-label accuracy: textbook baselines vs labeler's SimCLR embeddings; and the app's honest numbers.

    python -m benchmarks.quality [--minutes 5] [--datasets mnist_a,fashion_1000] [--seeds 3] [--honest-seeds 10]
    python -m benchmarks.quality --quick      # honest numbers only, on the instant representation (a few minutes)

For k = 1, 3, 10 human labels per class (several random draws), the accuracy of the propagated labels on the other
images with
  (a) scikit-learn LabelPropagation(kernel="knn") on raw pixels (the textbook recipe),
  (b) the same on UMAP-10 of the raw pixels,
  (c) labeler: SimCLR trained for ``--minutes`` on the images, L2-normalised encoder features, kNN label spreading,
plus labeler's instant representations (pixels -> PCA-50; edge histograms, HOG -> PCA-50, beside it) and training
throughput.

Honest numbers (issue 10), per set and k over ``--honest-seeds`` draws, on the representation the app would choose:
the accuracy of the propagated labels, the expected calibration error (10 equal bins) of the raw spreading score and
of the calibrated ``confidence`` (fitted as the app does, on the leave-one-out predictions of the human labels and
``--audits`` blind audits answered with the truth), the accuracy of the most confident half, the app's headline
estimate (share of the audits right, Wilson 95 % interval) and whether the interval holds the true accuracy of the
propagated labels (coverage over draws; near 95 % is right), and with several representations the
selection-corrected estimate next to the winner's own leave-one-out score. Beside the ECE, its chance floor: what
perfectly calibrated confidences would score on as many images. Then the threshold picker at the app's default
target (0.95): what it keeps, the precision it promises with its 95 % interval, and what is realised.
``--audits stop`` audits each draw as far as the app's stopping rule asks instead of a fixed number.
``--embeddings-dir DIR`` keeps the trained embeddings and reuses them on a later run (re-scoring after a change to
the calibration without training again).

Real photos (a folder with ``images/`` and ``ground_truth.csv`` with columns path,breed,species, e.g. ``pets37``):
pixels -> PCA-50, the pretrained EfficientNet-Lite0 features, pretrained + SimCLR (a head adapted for
``--photo-minutes``) and the from-scratch SimCLR encoder (trained as long), and the app's leave-one-out choice among
them, at 1 / 3 / 5 labels per breed (10 per breed would label every image of pets37) and 1 / 5 per species. Such a
run replaces only the file's photos section; ``--quick`` runs it with a 0.5-minute budget. ``--small-pretrained N``
adds the same comparison (no adaptation) on the first N images of the .npz sets, as the app offers the pretrained
features to small grey images.

Writes ``benchmarks/results/quality.md``; ``--quick`` (no training, no textbook baselines) replaces only the file's
quick honest-numbers section, and a full run keeps it (and the photos section). Needs ``/work/shared/datasets`` (or
``--data-dir``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from sklearn.semi_supervised import LabelPropagation, LabelSpreading

from benchmarks.machine import cpu_name
from labeler.config import Settings
from labeler.core.stopping import MAX_WIDTH, MIN_AUDITS
from labeler.embed.instant import (
    hog_representation,
    joint_representation,
    pca_representation,
    pixel_features,
    umap_representation,
)
from labeler.embed.ssl.train import TrainProgress, embed, train_simclr

KS = (1, 3, 10)
# The shared reference datasets beside the checkout (../shared/datasets), every benchmark's default --data-dir.
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = Path(__file__).parent / "results" / "quality.md"
TARGET = Settings.target_precision  # the threshold picker's default target, as Review and Export use it
QUICK_MARKER = "<!-- honest numbers: written by python -m benchmarks.quality --quick -->"
PHOTO_MARKER = "<!-- photos: written by python -m benchmarks.quality when --datasets holds a photo folder -->"
PHOTO_END = "<!-- end of photos -->"
PHOTO_TASKS = {"breed": (1, 3, 5), "species": (1, 5)}  # labels per class; pets37 has 10 images per breed


def training_cache(images: Iterable[NDArray[np.uint8]], size: int) -> NDArray[np.uint8]:
    """The (N, size, size, 3) training-image cache the app builds from grey (H, W) or colour (H, W, 3) images."""
    from labeler.io.caches import make_training_image

    return np.stack([make_training_image(Image.fromarray(image).convert("RGB"), size) for image in images])


def instant_representations(cache: NDArray[np.uint8]) -> dict[str, NDArray[np.float32]]:
    """The instant representations the app gives small images, from their training cache: edge histograms beside
    pixels (``hog-pixels``) and pixels alone (``pixels-pca``), each through PCA-50."""
    pixels = pca_representation(cache, 50)
    return {"hog-pixels": joint_representation(hog_representation(cache, 50), pixels), "pixels-pca": pixels}


def load_dataset(path: Path, size: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.int64]]:
    """Raw (N, 28, 28) images, the (N, size, size, 3) training cache as the app builds it, and labels."""
    with np.load(path, allow_pickle=False) as data:
        raw, labels = data["images"], data["labels"].astype(np.int64)
    return raw, training_cache(raw, size), labels


def draw_seeds(y: NDArray[np.int64], k: int, seed: int) -> NDArray[np.int64]:
    """``y`` with all but ``k`` random labels per class hidden (-1)."""
    rng = np.random.default_rng(seed)
    y_seen = np.full_like(y, -1)
    for c in np.unique(y):
        chosen = rng.choice(np.flatnonzero(y == c), size=k, replace=False)
        y_seen[chosen] = c
    return y_seen


def sklearn_propagation(X: NDArray[np.floating], y_seen: NDArray[np.int64]) -> NDArray[np.int64]:
    model = LabelPropagation(kernel="knn", max_iter=1000).fit(X, y_seen)
    return np.asarray(model.transduction_)


def labeler_spreading(X: NDArray[np.floating], y_seen: NDArray[np.int64], n_neighbors: int = 15,
                      alpha: float = 0.99) -> NDArray[np.int64]:
    """labeler's kNN graph + label spreading (Zhou et al. 2004); scikit-learn's LabelSpreading if those are absent."""
    try:
        from labeler.core import graph, propagate
    except ImportError:
        model = LabelSpreading(kernel="knn", n_neighbors=n_neighbors, alpha=alpha, max_iter=1000).fit(X, y_seen)
        return np.asarray(model.transduction_)
    W = graph.knn_graph(X, n_neighbors)
    scores = propagate.label_spreading(W, y_seen, int(y_seen.max()) + 1, alpha=alpha)
    return np.asarray(np.argmax(scores, axis=1))


def app_choice(reps: dict[str, NDArray[np.float32]], y_seen: NDArray[np.int64], photos: bool = False) -> Any:
    """What the app does (``core.diagnostics.choose_representation``): leave-one-out accuracy on the human labels
    picks the representation, the app's preferred one (``labeler.workflow.backbone.PREFERENCE``: for small images
    the trained encoder beside the edges and pixels) kept unless beaten by more than a standard error, and kept
    outright where nothing can be measured (one label per class)."""
    from labeler.core.diagnostics import choose_representation
    from labeler.workflow.backbone import preferred_representation

    return choose_representation(reps, y_seen, int(y_seen.max()) + 1,
                                 preferred=preferred_representation(reps, photos), n_neighbors=15, alpha=0.99)


def chosen_spreading(reps: dict[str, NDArray[np.float32]], y_seen: NDArray[np.int64], info: dict) -> NDArray[np.int64]:
    """Spreading on the representation the app would choose (:func:`app_choice`)."""
    name = app_choice(reps, y_seen).name
    info.setdefault("chosen", []).append(name)
    return labeler_spreading(reps[name], y_seen)


def score(method: Callable[[NDArray[np.floating], NDArray[np.int64]], NDArray[np.int64]],
          X: NDArray[np.floating], y: NDArray[np.int64], seeds: int) -> dict[int, tuple[float, float]]:
    """Mean and std over ``seeds`` draws of the accuracy on the unlabelled images, per k."""
    out = {}
    for k in KS:
        accs = []
        for seed in range(seeds):
            y_seen = draw_seeds(y, k, seed)
            pred = method(X, y_seen)
            hidden = y_seen < 0
            accs.append(float(np.mean(pred[hidden] == y[hidden])))
        out[k] = (float(np.mean(accs)), float(np.std(accs)))
    return out


def honest_run(reps: dict[str, NDArray[np.float32]], graphs: dict[str, Any], y: NDArray[np.int64], k: int,
               seed: int, audits: int | None, photos: bool = False) -> dict[str, float]:
    """The app's own numbers after ``k`` random labels per class and ``audits`` blind audits, against the truth.

    ``audits=None``: as many as the app's stopping rule asks for (:func:`labeler.core.stopping.audits_for_width`
    with its default width 0.10, estimated from the first 30 answers and corrected for the finite folder), i.e. what
    a person who audits until Home says the estimate is precise enough would have given.

    As a refresh does: the representation chosen by leave-one-out (:func:`app_choice`; ``photos`` says which
    preference a photo folder has), label spreading,
    confidence calibrated by :func:`labeler.workflow.calibration.calibrate` on the seeds' leave-one-out predictions
    and the audits; the headline estimate is the audits' share right with its Wilson interval. Accuracy, ECE and the
    most confident half are measured on the propagated images that were not audited.
    """
    from labeler.core import diagnostics, propagate
    from labeler.core.calibration_evidence import calibration_features
    from labeler.core.intervals import wilson_interval
    from labeler.core.reliability import calibration_error_floor, expected_calibration_error
    from labeler.core.simulated_prior import simulated_prior
    from labeler.core.threshold import pick_threshold
    from labeler.workflow import calibration

    n_classes = int(y.max()) + 1
    y_seen = draw_seeds(y, k, seed)
    out: dict[str, float] = {}
    name = next(iter(reps))
    if len(reps) > 1:
        choice = app_choice(reps, y_seen, photos)
        name = choice.name
        if choice.selection is not None:
            out["selection"] = choice.selection.accuracy
            out["winner loo"] = choice.selection.naive_accuracy
    W = graphs[name]
    result = propagate.propagate(W, y_seen, n_classes, n_bootstrap=0, random_state=seed)
    propagated = result.source == propagate.Source.PROPAGATED
    rows = np.flatnonzero(propagated)
    if audits is None:
        from labeler.core.stopping import audits_for_width

        order = np.random.default_rng(1000 + seed).permutation(rows)
        first = order[:MIN_AUDITS]  # the fewest answers the stopping rule trusts an interval on
        needed = audits_for_width(float(np.mean(result.label[first] == y[first])), MAX_WIDTH, population=rows.size)
        audited = order[: max(needed, first.size)]
    else:
        audited = np.random.default_rng(1000 + seed).choice(rows, size=min(audits, rows.size), replace=False)
    loo = diagnostics.loo_scores(W, y_seen, n_classes)
    # The prior mean simulated on the graph, as a refresh does (labeler.workflow.calibration.prior_for).
    prior = simulated_prior(W, y_seen, result.label, n_classes, random_state=seed)
    confidence, evidence = calibration.calibrate(result.confidence, result.proba, result.label, propagated, y_seen,
                                                 loo, audited, y[audited], prior)
    right = result.label == y
    scored = np.setdiff1d(rows, audited)
    half = scored[np.argsort(-confidence[scored], kind="stable")[: scored.size // 2]]
    # The threshold picker as Review/Export run it (target TARGET), with the calibration's posterior draws.
    draws = calibration.fit_calibrator(evidence, prior).sample_confidence(
        calibration_features(result.proba[scored]), n_draws=200, random_state=seed)
    picked = pick_threshold(confidence[scored], TARGET, correct=right[scored], confidence_draws=draws)
    if picked.threshold is not None:
        lo_p, hi_p = picked.expected_interval
        out.update({
            "kept": picked.n_kept / scored.size, "expected": picked.expected_precision,
            "realised": picked.realised_precision, "target met": float(picked.realised_precision >= TARGET),
            "realised in promised": float(lo_p <= picked.realised_precision <= hi_p),
            "promised in realised": float(picked.interval[0] <= picked.expected_precision <= picked.interval[1]),
        })
    hits = int(right[audited].sum())
    low, high = wilson_interval(hits, audited.size)
    truth = float(right[rows].mean())  # what the audits sample: every propagated label
    out.update({
        "accuracy": float(right[scored].mean()),
        "ece raw": expected_calibration_error(result.confidence[scored], right[scored]),
        "ece": expected_calibration_error(confidence[scored], right[scored]),
        "ece floor": calibration_error_floor(confidence[scored]),
        "mean confidence": float(confidence[scored].mean()),
        "acc top half": float(right[half].mean()),
        "headline": hits / audited.size, "width": high - low, "covers": float(low <= truth <= high),
        "audits": float(audited.size),
        "loo evidence": float(evidence.proxy.sum()),
    })
    return out


def honest_numbers(reps: dict[str, NDArray[np.float32]], y: NDArray[np.int64], args: argparse.Namespace
                   ) -> list[str]:
    """The honest-numbers table of one dataset (markdown lines)."""
    from labeler.core import graph

    graphs = {name: graph.knn_graph(X, 15) for name, X in reps.items()}
    audits = None if args.audits == "stop" else int(args.audits)
    runs = {k: [honest_run(reps, graphs, y, k, seed, audits) for seed in range(args.honest_seeds)] for k in KS}

    def cell(k: int, key: str, digits: int = 3) -> str:
        return mean_sd(runs[k], key, digits)

    def count(k: int, key: str) -> str:
        return share_of(runs[k], key)

    selection = any("selection" in run for k in KS for run in runs[k])
    head = ("| k | accuracy | ECE raw score | ECE confidence | ECE floor | mean confidence "
            "| accuracy, most confident half | audits | headline estimate | interval width "
            "| truth in interval |")
    lines = [head + (" winner's LOO | selection-corrected |" if selection else ""),
             "|---|" + "---|" * (10 + 2 * selection)]
    for k in KS:
        row = (f"| {k} | {cell(k, 'accuracy')} | {cell(k, 'ece raw')} | {cell(k, 'ece')} | {cell(k, 'ece floor')} | "
               f"{cell(k, 'mean confidence')} | {cell(k, 'acc top half')} | {cell(k, 'audits', 0)} | "
               f"{cell(k, 'headline')} | "
               f"{cell(k, 'width', 2)} | {count(k, 'covers')} |")
        lines.append(row + (f" {cell(k, 'winner loo')} | {cell(k, 'selection')} |" if selection else ""))
    lines += ["", f"Threshold picker at target precision {TARGET} (as Review and Export run it: the most labels whose "
              "95 % predictive interval of the share right, from the calibration's posterior draws and the chance "
              "spread of a finite number kept, has its lower end at or above the target), against the truth of the "
              "scored images; counts over the draws where some threshold qualified:", "",
              "| k | chosen | kept share | promised (expected) | realised | target met | realised in promised interval "
              "| promised in realised 95 % interval | promised inside the realised's 95 % range over draws |",
              "|---|---|---|---|---|---|---|---|---|"]

    for k in KS:
        chosen = sum("kept" in run for run in runs[k])
        lines.append(f"| {k} | {chosen}/{len(runs[k])} | {cell(k, 'kept', 2)} | {cell(k, 'expected')} | "
                     f"{cell(k, 'realised')} | {count(k, 'target met')} | {count(k, 'realised in promised')} | "
                     f"{count(k, 'promised in realised')} | {over_draws(runs[k])} |")
    return lines


def mean_sd(runs: list[dict[str, float]], key: str, digits: int = 3) -> str:
    """``key``'s mean ± standard deviation over the draws that have it, as a table cell ("–" when none has)."""
    values = np.array([run.get(key, np.nan) for run in runs], dtype=np.float64)
    if np.all(np.isnan(values)):
        return "–"
    return f"{np.nanmean(values):.{digits}f} ± {np.nanstd(values):.{digits}f}"


def share_of(runs: list[dict[str, float]], key: str) -> str:
    """How many of the draws that have the 0/1 value ``key`` have it 1, as "hits/draws"."""
    values = [run[key] for run in runs if key in run]
    return f"{int(sum(values))}/{len(values)}"


def over_draws(runs: list[dict[str, float]]) -> str:
    """Whether the mean promised precision lies inside the realised precision's 95 % range over the draws (mean
    +- 1.96 standard deviations), with that range: the target read across draws, where the per-draw reading asks a
    promise from 30-130 answers to match thousands of kept labels to within their own chance spread."""
    chosen = [run for run in runs if "realised" in run]
    if len(chosen) < 2:
        return "–"
    realised = np.array([run["realised"] for run in chosen])
    promised = float(np.mean([run["expected"] for run in chosen]))
    low, high = realised.mean() - 1.96 * realised.std(), min(realised.mean() + 1.96 * realised.std(), 1.0)
    return f"{'yes' if low <= promised <= high else 'no'} ({low:.3f}-{high:.3f})"


def machine() -> str:
    cpu = cpu_name(platform.processor() or platform.machine())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {torch.get_num_threads()} torch threads, {gpu}; torch {torch.__version__}"


def run_dataset(name: str, args: argparse.Namespace) -> tuple[dict[str, dict[int, tuple[float, float]]], dict]:
    raw, cache, y = load_dataset(Path(args.data_dir) / f"{name}.npz", args.size)
    rows: dict[str, dict[int, tuple[float, float]]] = {}
    info: dict = {"n": len(y)}
    pixels = raw.reshape(len(raw), -1).astype(np.float32) / 255.0
    P = pca_representation(cache, 50)
    edges = hog_representation(cache, 50)
    H = joint_representation(edges, P)
    instant = {"hog-pixels": H, "pixels-pca": P}  # as the app has them for small images before any training
    if args.quick:
        t = time.perf_counter()
        info["honest"] = honest_numbers(instant, y, args)
        info["honest_s"] = time.perf_counter() - t
        return rows, info
    t = time.perf_counter()
    rows["(a) sklearn LabelPropagation knn, raw pixels"] = score(sklearn_propagation, pixels, y, args.seeds)
    t_umap = time.perf_counter()
    import umap

    U = np.asarray(umap.UMAP(n_components=10, random_state=0).fit_transform(pixels), dtype=np.float32)
    info["umap_s"] = time.perf_counter() - t_umap
    rows["(b) sklearn LabelPropagation knn, UMAP-10 of pixels"] = score(sklearn_propagation, U, y, args.seeds)
    rows["labeler instant: pixels -> PCA-50 (L2), spreading"] = score(labeler_spreading, P, y, args.seeds)
    rows["edge histograms (HOG) -> PCA-50 (L2) alone, spreading"] = score(labeler_spreading, edges, y, args.seeds)
    rows["labeler instant: HOG -> PCA-50 beside pixels -> PCA-50, spreading"] = score(labeler_spreading, H, y,
                                                                                       args.seeds)
    if args.variants:
        rows["pixels (32px cache), spreading"] = score(labeler_spreading, pixel_features(cache), y, args.seeds)
        Pw = pca_representation(cache, 50, whiten=True)
        rows["pixels -> PCA-50 whitened (L2), spreading"] = score(labeler_spreading, Pw, y, args.seeds)
        rows["pixels -> PCA-50 -> UMAP-10, spreading"] = score(labeler_spreading, umap_representation(P), y,
                                                               args.seeds)
    info["baselines_s"] = time.perf_counter() - t
    saved = Path(args.embeddings_dir) / f"{name}-{args.minutes:g}min.npz" if args.embeddings_dir else None
    if args.minutes > 0 and saved is not None and saved.exists():
        with np.load(saved, allow_pickle=False) as stored:  # an earlier run's encoder: re-score without training
            E, Z = stored["E"], stored["Z"]
            info.update({key: stored[key].item() for key in ("train_s", "embed_s", "epochs", "steps", "final_loss",
                                                               "views_per_s")})
            info["preset"] = str(stored["preset"])
    elif args.minutes > 0:
        reports: list[TrainProgress] = []
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            ckpt = train_simclr(
                cache, Path(tmp), minutes=args.minutes, width=args.width, blocks=tuple(args.blocks),
                batch_size=args.batch_size, temperature=args.temperature, preset=args.preset, lr=args.lr,
                view_size=args.view_size, random_state=0, progress=reports.append,
            )
            info["train_s"] = time.perf_counter() - t
            t = time.perf_counter()
            E = embed(cache, ckpt)
            info["embed_s"] = time.perf_counter() - t
            Z = embed(cache, ckpt, projection=True)
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
        info["epochs"] = state["epoch"]
        info["steps"] = state["step"]
        info["final_loss"] = float(np.mean(state["loss_history"][-20:]))
        info["preset"] = state["config"]["preset"]
        info["views_per_s"] = 2 * reports[-1].images_per_s if reports else float("nan")
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            np.savez(saved, E=E, Z=Z, preset=info["preset"], **{key: info[key] for key in (
                "train_s", "embed_s", "epochs", "steps", "final_loss", "views_per_s")})
    if args.minutes > 0:
        rows[f"(c) labeler: SimCLR {args.minutes:g} min, encoder features, spreading"] = score(
            labeler_spreading, E, y, args.seeds
        )
        rows["(c') SimCLR projection-head output, spreading"] = score(labeler_spreading, Z, y, args.seeds)
        EH = joint_representation(E, H)
        rows["labeler: SimCLR encoder beside HOG and pixels, spreading"] = score(labeler_spreading, EH, y, args.seeds)
        reps = {"pixels-pca": P, "hog-pixels": H, "simclr": E, "simclr-hog": EH, "simclr-projection": Z}
        rows["labeler's choice (leave-one-out; encoder beside HOG and pixels kept unless beaten by > 1 s.e.)"] = score(
            lambda X, y_seen: chosen_spreading(reps, y_seen, info), P, y, args.seeds
        )
        if args.variants:
            rows["SimCLR projection -> UMAP-10, spreading"] = score(
                labeler_spreading, umap_representation(Z), y, args.seeds
            )
    t = time.perf_counter()
    info["honest"] = honest_numbers(reps if args.minutes > 0 else instant, y, args)
    info["honest_s"] = time.perf_counter() - t
    return rows, info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--datasets", default="mnist_a,fashion_1000,pets37")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", default=str(SHARED_DATASETS))
    parser.add_argument("--size", type=int, default=32, help="training cache size (Settings.train_size)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 1, 1, 1])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--preset", default="auto")
    parser.add_argument("--view-size", type=int, default=None)
    parser.add_argument("--variants", action="store_true", help="also score PCA/UMAP variants")
    parser.add_argument("--honest-seeds", type=int, default=10, help="draws per k for the honest numbers")
    parser.add_argument("--audits", default="30", help="blind audits behind the honest numbers: a number, or 'stop' "
                        f"for as many as the app's stopping rule asks for (audit interval {MAX_WIDTH:.2f} wide)")
    parser.add_argument("--quick", action="store_true",
                        help="honest numbers only, on the instant representations (no training, no textbook "
                        "baselines); replaces only the quick honest-numbers section of --out")
    parser.add_argument("--photo-minutes", type=float, default=3.0,
                        help="training budget of pretrained + SimCLR and of the from-scratch encoder on photo folders")
    parser.add_argument("--small-pretrained", type=int, default=0, metavar="N",
                        help="instead of the full runs of the .npz sets, compare pixels, pretrained and from-scratch "
                        "on their first N images (in the photos section)")
    parser.add_argument("--embeddings-dir", default=None, metavar="DIR",
                        help="keep each set's trained embeddings in DIR and reuse them when there (re-score the "
                        "honest numbers after a calibration change without training again)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    photos, kept_photos = photo_run(args), photo_block(Path(args.out))  # takes the photo folders off --datasets
    if not args.datasets:
        write_photo_block(Path(args.out), photos)
        return
    if args.quick:
        args.minutes = 0.0
    started = dt.datetime.now().astimezone()
    command = f"- command: `python -m benchmarks.quality {' '.join(sys.argv[1:] if argv is None else argv)}`"
    audit_words = (f"as many as the stopping rule asks for (interval {MAX_WIDTH:.2f} wide, from the first {MIN_AUDITS} "
                   "answers)"
                   if args.audits == "stop" else args.audits)
    honest_reading = (
        f"- honest numbers: mean ± std over {args.honest_seeds} random draws of k labels per class; confidence "
        f"calibrated as a refresh does (leave-one-out predictions of the human labels + {audit_words} blind audits "
        "drawn uniformly from the propagated images and answered with the truth; the calibrator's prior "
        "mean simulated on the graph); accuracy, ECE (10 equal "
        "bins) and the most confident half on the propagated images not audited; headline = share of the audits right, "
        "'truth in interval' counts the draws whose Wilson 95 % interval holds the true accuracy of all propagated "
        "labels (about 95 % of draws should)"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.quick:
        section = [QUICK_MARKER, "", "## Honest numbers (`--quick`: the instant representations, no encoder trained)",
                   "",
                   f"- date: {started:%Y-%m-%d %H:%M %Z}", f"- machine: {machine()}", command.rstrip(),
                   honest_reading, ""]
        for name in args.datasets.split(","):
            _, info = run_dataset(name, args)
            section += [f"### {name} (N = {info['n']})", "", *info["honest"], "",
                        f"{info['honest_s']:.0f} s for {len(KS) * args.honest_seeds} draws.", ""]
            print("\n".join(section[-len(KS) - 5 :]), flush=True)
        earlier = out.read_text(encoding="utf-8").split(QUICK_MARKER)[0].rstrip() if out.exists() else ""
        out.write_text((earlier + "\n\n" if earlier else "") + "\n".join(section).rstrip() + "\n", encoding="utf-8")
        write_photo_block(out, photos or kept_photos)
        print(f"wrote {out}")
        return
    lines = [
        "# Propagated-label accuracy (benchmarks/quality.py)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}",
        command.rstrip(),
        f"- SimCLR: width {args.width}, blocks {args.blocks}, batch {args.batch_size}, temperature "
        f"{args.temperature}, lr {args.lr}, preset {args.preset}, view size {args.view_size or args.size}",
        f"- accuracy on the images whose labels were hidden; mean ± std over {args.seeds} draws of the labelled set",
        honest_reading,
        "",
    ]
    for name in args.datasets.split(","):
        rows, info = run_dataset(name, args)
        lines += [f"## {name} (N = {info['n']})", "", "| method | " + " | ".join(f"k={k}" for k in KS) + " |",
                  "|---|" + "---|" * len(KS)]
        for method, res in rows.items():
            lines.append(f"| {method} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in res.values()) + " |")
        lines.append("")
        if "train_s" in info:
            lines.append(
                f"Training: {info['train_s']:.0f} s, {info['epochs']} epochs, {info['steps']} steps, preset "
                f"{info['preset']}, final loss {info['final_loss']:.3f}, **{info['views_per_s']:.0f} views/s**; "
                f"embedding {info['embed_s']:.1f} s; UMAP of pixels {info['umap_s']:.0f} s. Leave-one-out choices "
                f"(k=1, 3, 10 x seeds): {', '.join(info['chosen'])}."
            )
            lines.append("")
        lines += ["Honest numbers (the app's choice of representation):", "", *info["honest"], ""]
        print("\n".join(lines[-len(rows) - len(KS) - 10 :]), flush=True)
    # A `--quick` section written earlier is kept, as the photos section is.
    parts = out.read_text(encoding="utf-8").split(QUICK_MARKER, 1) if out.exists() else []
    quick = [QUICK_MARKER + parts[1].rstrip()] if len(parts) == 2 else []
    out.write_text("\n".join([*lines, *quick]) + "\n", encoding="utf-8")
    write_photo_block(out, photos or kept_photos)
    print(f"wrote {out}")


# ---------------------------------------------------------------------------------------------- real photos
def is_photo_set(data_dir: Path, name: str) -> bool:
    return (Path(data_dir) / name / "ground_truth.csv").is_file()


def photo_representations(paths: list[Path], args: argparse.Namespace, adapt: bool
                          ) -> tuple[dict[str, NDArray[np.float32]], dict]:
    """The representations the app compares on these files, each computed as the app does, and timings.

    pixels -> PCA-50 and the from-scratch encoder on the 32 px training cache, the pretrained features, and with
    ``adapt`` (colour photos) pretrained + SimCLR, without it (small images) edge histograms beside pixels, alone and
    beside the encoder; the two trainings get ``--photo-minutes`` each.
    """
    from labeler.embed.adapted import adapted_features
    from labeler.embed.centred import centred_features
    from labeler.embed.pretrained import pretrained_features
    from labeler.io.caches import read_training_image

    digests = [p.name for p in paths]
    info: dict[str, Any] = {"n": len(paths), "load_before": os.getloadavg()[0]}
    cache = np.stack([read_training_image(p, 96, args.size) for p in paths])  # the app's 32 px training cache
    reps = {"pixels-pca": pca_representation(cache, 50)}
    if not adapt:  # small images: the app's instant representation is edge histograms beside pixels
        reps["hog-pixels"] = joint_representation(hog_representation(cache, 50), reps["pixels-pca"])
    costs = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        X, ok = pretrained_features(paths, digests, Path(tmp))
        seconds = time.perf_counter() - t
        costs.append(f"pretrained features {seconds:.0f} s ({len(paths) / seconds:.0f} images/s end to end, model load "
                     f"included, {int(ok.sum())} of {len(paths)} decoded)")
        reps["pretrained"] = centred_features(X)  # compared from the folder's mean, as the app does
        if adapt:
            t = time.perf_counter()
            adapted = adapted_features(paths, digests, Path(tmp), minutes=args.photo_minutes, random_state=0)
            costs.append(f"pretrained + SimCLR {time.perf_counter() - t:.0f} s ({adapted.n_views} views per image, "
                         f"{adapted.epochs} epochs, NT-Xent {adapted.losses[-1]:.2f})")
            reps["pretrained-simclr"] = adapted.embedding
        t = time.perf_counter()
        checkpoint = train_simclr(cache, Path(tmp), minutes=args.photo_minutes, width=args.width,
                                  blocks=tuple(args.blocks), batch_size=args.batch_size,
                                  temperature=args.temperature, preset=args.preset, lr=args.lr, random_state=0)
        costs.append(f"from scratch {time.perf_counter() - t:.0f} s")
        reps["simclr"] = embed(cache, checkpoint)
        if "hog-pixels" in reps:  # as the app has it after training: the encoder beside the edges and pixels
            reps["simclr-hog"] = joint_representation(reps["simclr"], reps["hog-pixels"])
    info["costs"] = "; ".join(costs)
    info["load_after"] = os.getloadavg()[0]
    return reps, info


def photo_scores(reps: dict[str, NDArray[np.float32]], y: NDArray[np.int64], ks: tuple[int, ...], seeds: int,
                 photos: bool, chosen: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Spreading accuracy on the hidden images, mean and std over ``seeds`` draws per k, for each representation
    and for the app's leave-one-out choice among them (its picks appended to ``chosen``)."""
    accuracies: dict[str, list[list[float]]] = {name: [] for name in [*reps, "choice"]}
    for k in ks:
        for values in accuracies.values():
            values.append([])
        for seed in range(seeds):
            y_seen = draw_seeds(y, k, seed)
            hidden = y_seen < 0
            picked = app_choice(reps, y_seen, photos).name
            chosen.append(picked)
            for name, X in reps.items():
                accuracy = float(np.mean(labeler_spreading(X, y_seen)[hidden] == y[hidden]))
                accuracies[name][-1].append(accuracy)
                if name == picked:
                    accuracies["choice"][-1].append(accuracy)
    return {name: [(float(np.mean(a)), float(np.std(a))) for a in values] for name, values in accuracies.items()}


def photo_section(title: str, paths: list[Path], truth: dict[str, NDArray[np.int64]],
                  tasks: dict[str, tuple[int, ...]], args: argparse.Namespace, photos: bool) -> list[str]:
    """The markdown of one set: accuracy per representation and task (``truth[task]``: class per path), and cost."""
    reps, info = photo_representations(paths, args, adapt=photos)
    columns: list[str] = []
    table: dict[str, list[str]] = {}
    chosen: dict[str, list[str]] = {}
    for task, ks in tasks.items():
        chosen[task] = []
        scores = photo_scores(reps, truth[task], ks, args.seeds, photos, chosen[task])
        columns += [f"{task}@{k}" for k in ks]
        for rep, cells in scores.items():
            table.setdefault(rep, []).extend(f"{m:.3f} ± {s:.3f}" for m, s in cells)
    kept = "pretrained + SimCLR" if photos else "the encoder beside edges and pixels"
    labels = {
        "pixels-pca": "pixels -> PCA-50",
        "hog-pixels": "edge histograms (HOG) -> PCA-50 beside pixels -> PCA-50 (the instant representation here)",
        "pretrained": ("pretrained: EfficientNet-Lite0 pooled features, centred"
                       + (" (the instant one)" if photos else "")),
        "pretrained-simclr": f"pretrained + SimCLR: head adapted for {args.photo_minutes:g} min (concat)",
        "simclr": f"SimCLR from scratch, {args.photo_minutes:g} min, 32 px",
        "simclr-hog": "the from-scratch encoder beside edge histograms and pixels",
        "choice": f"labeler's choice (leave-one-out; {kept} kept unless beaten by > 1 s.e.)",
    }
    classes = ", ".join(f"{task}: {len(np.unique(y))} classes" for task, y in truth.items())
    lines = [f"### {title} (N = {info['n']}; {classes})", "",
             "| representation | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {labels[rep]} | " + " | ".join(cells) + " |" for rep, cells in table.items()]
    picks = "; ".join(f"{task}: " + ", ".join(f"{rep} {got.count(rep)}" for rep in reps if got.count(rep))
                      for task, got in chosen.items())
    lines += ["", f"Cost: {info['costs']}. Load average (1 min) {info['load_before']:.1f} before, "
              f"{info['load_after']:.1f} after: above 2 the two cores were shared with other work. Leave-one-out "
              f"picks over all draws: {picks}.", ""]
    return lines


def photo_run(args: argparse.Namespace) -> list[str] | None:
    """Run the photo folders among ``--datasets`` (removing them from it), and with ``--small-pretrained N`` the
    first N images of the other sets (removing those too); the photos block's lines, or None when nothing ran."""
    import pandas as pd

    names = [name for name in args.datasets.split(",") if name]
    folders = [name for name in names if is_photo_set(args.data_dir, name)]
    small = [name for name in names if name not in folders] if args.small_pretrained else []
    args.datasets = ",".join(name for name in names if name not in folders and name not in small)
    if not folders and not small:
        return None
    if args.quick:
        args.photo_minutes = min(args.photo_minutes, 0.5)
    started = dt.datetime.now().astimezone()
    lines = [PHOTO_MARKER, "", "## Real photos: pretrained, pretrained + SimCLR, from scratch", "",
             f"- date: {started:%Y-%m-%d %H:%M %Z}", f"- machine: {machine()}",
             f"- command: `python -m benchmarks.quality {' '.join(sys.argv[1:])}`",
             f"- label spreading (labeler's 15-NN graph, alpha 0.99) from k random labels per class; accuracy on the "
             f"images whose labels were hidden, mean ± std over {args.seeds} draws", ""]
    for name in folders:
        table = pd.read_csv(Path(args.data_dir) / name / "ground_truth.csv")
        paths = [Path(args.data_dir) / name / "images" / p for p in table["path"]]
        truth = {task: np.unique(table[task].to_numpy(str), return_inverse=True)[1].astype(np.int64)
                 for task in PHOTO_TASKS}
        lines += photo_section(name, paths, truth, PHOTO_TASKS, args, photos=True)
        print("\n".join(lines[-12:]), flush=True)
    for name in small:
        raw, _, y = load_dataset(Path(args.data_dir) / f"{name}.npz", args.size)
        with tempfile.TemporaryDirectory() as tmp:
            paths = [Path(tmp) / f"{i:05d}.png" for i in range(min(args.small_pretrained, len(raw)))]
            for path, image in zip(paths, raw, strict=False):
                Image.fromarray(image).save(path)
            lines += photo_section(f"{name}, first {len(paths)} (small grey images: no adaptation)", paths,
                                   {"class": y[: len(paths)]}, {"class": KS}, args, photos=False)
        print("\n".join(lines[-10:]), flush=True)
    return [*lines, PHOTO_END]


def photo_block(out: Path) -> list[str] | None:
    """The photo block of an existing results file, to keep when this run does not redo it."""
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    if PHOTO_MARKER not in text:
        return None
    block = text.split(PHOTO_MARKER, 1)[1].split(PHOTO_END, 1)[0]
    return [PHOTO_MARKER, *block.strip("\n").splitlines(), PHOTO_END]


def write_photo_block(out: Path, block: list[str] | None) -> None:
    """Put ``block`` in ``out`` in place of its photo block (before the honest numbers when there is none)."""
    if block is None:
        return
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    if PHOTO_MARKER in text:
        before, rest = text.split(PHOTO_MARKER, 1)
        after = rest.split(PHOTO_END, 1)[1] if PHOTO_END in rest else ""
    elif QUICK_MARKER in text:
        before, after = text.split(QUICK_MARKER, 1)
        after = QUICK_MARKER + after
    else:
        before, after = text, ""
    parts = [before.rstrip(), "\n".join(block), after.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(part for part in parts if part) + "\n", encoding="utf-8")
    print(f"wrote the photos section of {out}")


if __name__ == "__main__":
    main()

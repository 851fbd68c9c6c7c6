"""Do the suspect human labels find planted wrong labels, at every label budget, without false alarms?

    python -m benchmarks.suspects [--data-dir /work/shared/datasets] [--draws 5]

Per set and k labels per class (3 and 10; pets37's breeds 3 and 5, since it has 10 photos per breed), ``--draws``
draws: k random labels per class (``benchmarks.quality.draw_seeds``), then 10 % of them (at least one) flipped to a
random other class. On the 15-NN graph of the representation the app starts with (as ``benchmarks/prior_width.py``:
edge histograms beside pixels for the digits and clothing, pets37's pretrained features, centred), both rules:

- old: exact leave-one-out spreading gives the seed another class with normalised mass >= 0.5 (the rule until
  2026-12, ``min_support=0.5``);
- new: ``labeler.core.review.suspect_human_labels``, the Tukey fence on the leave-one-out log-ratios, or a
  log-ratio of at least ``log(m / 2)`` (half the mass to another class, less than one seed's share to its own);
- fence alone: the new rule without that bound (and, on the blobs, with a fixed floor of 1e-3 instead of ``1 / m``).

Recall = planted labels flagged / planted; false alarms = right labels flagged / right labels; both pooled over the
draws. Then the log-ratio's floor on separated synthetic blobs (where leave-one-out mass is exactly zero across
blobs), and the isolated-image flag of ``possible_new_class`` on a few clothing images planted among digits.
Results: ``benchmarks/results/suspects.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks.prior_width import digit_and_clothing_sets, pets37_sets
from benchmarks.quality import (
    SHARED_DATASETS,
    draw_seeds,
    instant_representations,
    load_dataset,
    machine,
    training_cache,
)

RESULTS = Path(__file__).parent / "results" / "suspects.md"
FLIPPED = 0.10
N_NEIGHBORS = 15


def representations(data_dir: Path) -> dict[str, tuple[NDArray[np.float32], NDArray[np.int64]]]:
    """{set name: (representation the app starts with, truth)}: MNIST's first 3,000, Fashion-MNIST, scikit-learn's
    digits, pets37's breeds and species."""
    from sklearn.datasets import load_digits

    sets = digit_and_clothing_sets(data_dir)
    digits = load_digits()
    cache = training_cache((digits.images * 16).clip(0, 255).astype(np.uint8), 32)
    sets["scikit-learn digits"] = (instant_representations(cache)["hog-pixels"], digits.target.astype(np.int64))
    sets.update(pets37_sets(data_dir))
    return sets


def plant_errors(y_seen: NDArray[np.int64], n_classes: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``y_seen`` with ``FLIPPED`` of its labels (at least one) changed to a random other class, and their rows."""
    rng = np.random.default_rng(10_000 + seed)
    seeds = np.flatnonzero(y_seen >= 0)
    planted = rng.choice(seeds, max(1, round(FLIPPED * seeds.size)), replace=False)
    y_bad = y_seen.copy()
    y_bad[planted] = (y_seen[planted] + rng.integers(1, n_classes, planted.size)) % n_classes
    return y_bad, np.sort(planted)


def old_rule(W: Any, y: NDArray[np.int64], n_classes: int, min_support: float = 0.5) -> set[int]:
    """The rule until 2026-12: leave-one-out gives another class with normalised mass >= ``min_support``."""
    from labeler.core.diagnostics import loo_scores

    seeds, loo_label, loo_proba = loo_scores(W, y, n_classes)
    rows = np.arange(seeds.size)
    other = (loo_label >= 0) & (loo_label != y[seeds])
    return set(seeds[other & (loo_proba[rows, np.maximum(loo_label, 0)] >= min_support)].tolist())


def new_rule(W: Any, y: NDArray[np.int64], n_classes: int) -> set[int]:
    from labeler.core.review import suspect_human_labels

    return {s.index for s in suspect_human_labels(W, y, n_classes)}


def fence_alone(W: Any, y: NDArray[np.int64], n_classes: int, floor: float | None = None) -> set[int]:
    """The new rule without its bound at ``log(m / 2)``: positive log-ratios above Tukey's fence only."""
    from labeler.core.review import SUSPECT_FENCE, suspect_log_ratios

    seeds, _, _, log_ratio = suspect_log_ratios(W, y, n_classes, floor=floor)
    scored = ~np.isnan(log_ratio)
    if not np.any(scored):
        return set()
    q1, q3 = np.percentile(log_ratio[scored], [25, 75])
    return set(seeds[scored & (log_ratio > max(q3 + SUSPECT_FENCE * (q3 - q1), 0.0))].tolist())


def score(flagged: set[int], planted: NDArray[np.int64], seeds: NDArray[np.int64]) -> tuple[int, int, int, int]:
    """(planted flagged, planted, right labels flagged, right labels)."""
    bad = set(planted.tolist())
    return len(flagged & bad), len(bad), len(flagged - bad), seeds.size - len(bad)


def pooled(counts: list[tuple[int, int, int, int]]) -> tuple[str, str]:
    caught, planted, alarms, right = np.sum(np.array(counts), axis=0)
    return f"{caught / planted:.2f} ({caught}/{planted})", f"{alarms / right:.3f} ({alarms}/{right})"


def image_sets_table(data_dir: Path, draws: int) -> tuple[list[str], list[str]]:
    """The suspects' table, and how many images of each set the isolated-image flag marks."""
    from labeler.core import graph
    from labeler.core.review import isolated

    table = ["| set | k | seeds | planted per draw | recall: old | fence alone | new | false alarms: old | fence alone "
             "| new |", "|---|---|---|---|---|---|---|---|---|---|"]
    alone = ["| set | images | isolated (fence 1.5) | isolated (fence 3) |", "|---|---|---|---|"]
    for name, (X, y) in representations(data_dir).items():
        indices, distances = graph.knn_indices(X, N_NEIGHBORS)
        W = graph.affinity_from_knn(indices, distances)
        if name != "pets37 species":  # the same images as the breeds
            alone.append(f"| {name.removesuffix(' breed')} | {len(X)} | {isolated(distances).sum()} "
                         f"| {isolated(distances, fence=3).sum()} |")
        n_classes = int(y.max()) + 1
        for k in (3, 5) if name == "pets37 breed" else (3, 10):
            counts: dict[str, list[tuple[int, int, int, int]]] = {"old": [], "fence": [], "new": []}
            for seed in range(draws):
                y_bad, planted = plant_errors(draw_seeds(y, k, seed), n_classes, seed)
                seeds = np.flatnonzero(y_bad >= 0)
                counts["old"].append(score(old_rule(W, y_bad, n_classes), planted, seeds))
                counts["fence"].append(score(fence_alone(W, y_bad, n_classes), planted, seeds))
                counts["new"].append(score(new_rule(W, y_bad, n_classes), planted, seeds))
            cells = [pooled(c) for c in counts.values()]
            table.append(f"| {name} | {k} | {k * n_classes} | {counts['old'][0][1]} | "
                         + " | ".join(recall for recall, _ in cells) + " | "
                         + " | ".join(alarms for _, alarms in cells) + " |")
        print(name, flush=True)
    return table, alone


def blobs_table(draws: int) -> list[str]:
    """Separated blobs in 5 dimensions (2, 3 or 5 classes, centres drawn with spread 6 or 10, 150 points each),
    k = 3, 6, 10, 30 labels per class, 1 to 3 planted errors (to the nearest other blob in even draws)."""
    from sklearn.datasets import make_blobs

    from labeler.core import graph

    table = ["| k | recall: old | fence alone, floor 1e-3 | fence alone, floor 1/m | new | false alarms: old "
             "| fence alone, floor 1e-3 | fence alone, floor 1/m | new |", "|---|---|---|---|---|---|---|---|---|"]
    for k in (3, 6, 10, 30):
        counts: dict[str, list[tuple[int, int, int, int]]] = {"old": [], "1e-3": [], "1/m": [], "new": []}
        for n_classes in (2, 3, 5):
            for spread in (6.0, 10.0):
                for n_planted in (1, 2, 3):
                    for seed in range(draws):
                        rng = np.random.default_rng(seed)
                        centres = rng.normal(0, spread, (n_classes, 5))
                        X, truth = make_blobs(150 * n_classes, centers=centres, random_state=seed)
                        W = graph.knn_graph(X, 10, metric="euclidean")
                        y = draw_seeds(truth.astype(np.int64), k, seed)
                        seeds = np.flatnonzero(y >= 0)
                        planted = np.sort(rng.choice(seeds, n_planted, replace=False))
                        for i in planted:
                            distance = np.linalg.norm(centres - centres[y[i]], axis=1)
                            distance[y[i]] = np.inf
                            nearest = int(np.argmin(distance))
                            y[i] = nearest if seed % 2 == 0 else (y[i] + rng.integers(1, n_classes)) % n_classes
                        counts["old"].append(score(old_rule(W, y, n_classes), planted, seeds))
                        counts["1e-3"].append(score(fence_alone(W, y, n_classes, floor=1e-3), planted, seeds))
                        counts["1/m"].append(score(fence_alone(W, y, n_classes), planted, seeds))
                        counts["new"].append(score(new_rule(W, y, n_classes), planted, seeds))
        cells = [pooled(c) for c in counts.values()]
        table.append(f"| {k} | " + " | ".join(recall for recall, _ in cells) + " | "
                     + " | ".join(alarms for _, alarms in cells) + " |")
    return table


def new_class_table(data_dir: Path, draws: int) -> list[str]:
    """A few Fashion-MNIST images among 2,000 MNIST digits (10 labels per digit, none for clothing): which do the
    graph rule and the isolated-image flag find, and how many digits do they flag."""
    from labeler.core import graph
    from labeler.core.review import isolated, possible_new_class

    _, digits, digit_labels = load_dataset(data_dir / "mnist_a.npz", 32)
    _, clothes, _ = load_dataset(data_dir / "fashion_1000.npz", 32)
    table = ["| clothing images | graph rule: clothing found | graph rule: digits flagged "
             "| isolated (fence 1.5): clothing found | digits flagged | isolated (fence 3): clothing found "
             "| digits flagged |", "|---|---|---|---|---|---|---|"]
    n_digits = 2000
    for n_planted in (3, 10, 30):
        found = np.zeros((3, 2), dtype=np.int64)
        for seed in range(draws):
            rows = np.random.default_rng(seed).choice(len(clothes), n_planted, replace=False)
            X = instant_representations(np.concatenate([digits[:n_digits], clothes[rows]]))["hog-pixels"]
            indices, distances = graph.knn_indices(X, N_NEIGHBORS)
            W = graph.affinity_from_knn(indices, distances)
            y = np.concatenate([draw_seeds(digit_labels[:n_digits], 10, seed), np.full(n_planted, -1)])
            for j, flagged in enumerate((possible_new_class(W, y), isolated(distances), isolated(distances, fence=3))):
                found[j] += flagged[n_digits:].sum(), flagged[:n_digits].sum()
        total = draws * n_planted
        table.append(f"| {n_planted} | " + " | ".join(f"{f}/{total} | {d}/{draws * n_digits}" for f, d in found) + " |")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(SHARED_DATASETS))
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    started = dt.datetime.now().astimezone()
    t = time.perf_counter()
    data_dir = Path(args.data_dir)
    images, alone = image_sets_table(data_dir, args.draws)
    blobs = blobs_table(2)
    new_class = new_class_table(data_dir, 2)
    lines = [
        "# Suspect human labels: planted wrong labels found, right labels flagged (benchmarks/suspects.py)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}",
        f"- command: `python -m benchmarks.suspects --draws {args.draws}`",
        f"- per draw: k random labels per class, {FLIPPED:.0%} of them (at least one) flipped to a random other class; "
        f"the {N_NEIGHBORS}-NN graph of the representation the app starts with; old = leave-one-out gives another "
        "class >= 0.5 of the mass; new = Tukey fence on the leave-one-out log-ratios, or a log-ratio of at least "
        "log(m / 2) with m seeds (labeler.core.review); fence alone = without that bound; recall = planted errors "
        f"flagged, false alarms = right labels flagged, pooled over {args.draws} draws (counts in brackets)",
        "",
        "## Image sets",
        "",
        *images,
        "",
        "## The log-ratio's floor: separated blobs",
        "",
        "Leave-one-out mass is exactly zero across blobs the graph does not join, so the floor decides where the seeds "
        "of clean blobs sit; 3 x 2 x 3 settings x 2 draws per row (module docstring).",
        "",
        *blobs,
        "",
        "## Possible new classes: clothing planted among 2,000 digits",
        "",
        "Found = planted clothing flagged, pooled over 2 draws; the isolated flag is Tukey's fence on the distance to "
        f"the {N_NEIGHBORS}th neighbour (labeler.core.review.isolated).",
        "",
        *new_class,
        "",
        "And on the image sets above, nothing planted:",
        "",
        *alone,
        "",
        f"{time.perf_counter() - t:.0f} s.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()

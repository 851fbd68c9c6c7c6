"""Do the honest numbers hold when the person labels what the app shows them, not k random images per class?

Every other calibration benchmark draws k labels per class at random (``benchmarks.quality.draw_seeds``): every
class seeded, seeds typical of nothing. A person in the app labels the Label page's queue instead, and its strategy
decides which images those are (``labeler.workflow.label_queue.candidate_rows``):

- balanced: k random images per class (the other benchmarks' reading, for comparison);
- random: the "Random" strategy, the same number of labels drawn uniformly from all images (a class may get none);
- suggested: the default "Suggested" strategy: first the k-means centres of the cold start (a grid of
  ``MIN_COLD_START``), then, after each refresh, ``labeler.core.review.suggested_queue`` as the Label page runs it
  (the typical image of each k-means cluster without a label, as many clusters as
  ``labeler.core.review.coverage_clusters`` says for the labels so far; once every cluster holds a label, the review
  queue: least certain first, spread over the graph, a fifth at random), ``BATCH`` images at a time, until as many
  labels as k per class;
- suggested until 2026-11-28: 48 clusters, their typical images one in six of the queue, the review queue the rest;
- suggested, review queue only: the same without the clusters (the Label page before 2026-11-27).

The person answers with the truth. Then, as in the other benchmarks, label spreading, the simulated prior, the exact
leave-one-out rows, 30 blind audits answered with the truth, and the app's calibration; ECE (10 equal bins) on the
propagated images not audited. A class no label names cannot be predicted: its images count as wrong.

Sets: those of ``benchmarks/prior_width.py`` (the representation the app starts with on each). Results:
``benchmarks/results/labeling_flow.md``.

    python -m benchmarks.labeling_flow --seeds 6
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks.prior_width import representations
from benchmarks.quality import SHARED_DATASETS, draw_seeds, machine, mean_sd

RESULTS = Path(__file__).parent / "results" / "labeling_flow.md"
N_AUDITS = 30
FLOWS = ("balanced", "random", "suggested", "suggested until 2026-11-28", "suggested, review queue only")
# The Label page's suggestions until 2026-11-28: typical images of this many clusters, one in this many of the queue.
EARLIER_CLUSTERS, EARLIER_EVERY = 48, 6
# Images labeled between two refreshes of the suggestions: the Label page's grid refills when half of its 12 are done.
BATCH = 6


def labels_from_flow(flow: str, X: NDArray[Any], W: Any, y: NDArray[np.int64], k: int, seed: int) -> NDArray[np.int64]:
    """The truth at the images a person labels under ``flow`` (-1 elsewhere): ``k`` per class in number."""
    from labeler.core import propagate, review
    from labeler.workflow.label_queue import COVERAGE_BATCH, MIN_COLD_START

    n_classes = int(y.max()) + 1
    budget = k * n_classes
    if flow == "balanced":
        return draw_seeds(y, k, seed)
    seen = np.full_like(y, -1)
    if flow == "random":
        rows = np.random.default_rng(seed).choice(y.size, size=budget, replace=False)
        seen[rows] = y[rows]
        return seen
    found: dict[int, review.Clusters] = {}  # by number of clusters: k-means reruns when that changes

    def clusters(k: int) -> review.Clusters:
        if k not in found:
            found[k] = review.clusters(X, k, random_state=seed)
        return found[k]

    first = review.cold_start(X, MIN_COLD_START, random_state=seed)[:budget]
    seen[first] = y[first]
    version = 1
    while (n_seen := int(np.sum(seen >= 0))) < budget:
        y_local, n_local, _ = _local_classes(seen, y)
        result = propagate.propagate(W, y_local, n_local, n_bootstrap=0, random_state=seed)
        labeled = np.flatnonzero(seen >= 0)
        if flow == "suggested":
            k_now = review.coverage_clusters(n_seen, y.size, COVERAGE_BATCH)
            items = review.suggested_queue(result, clusters(k_now), n_items=BATCH, exclude=labeled, W=W,
                                           random_state=version)
        elif flow == "suggested until 2026-11-28":
            typical = review.uncovered_typicals(clusters(EARLIER_CLUSTERS), seen >= 0, -(-BATCH // EARLIER_EVERY),
                                                labeled)
            items = [review.ReviewItem(int(i), "typical of an unlabeled cluster", 0.0) for i in typical]
            items += review.review_queue(None, result, n_items=BATCH - len(items), W=W, random_state=version,
                                         exclude=np.union1d(labeled, typical))
        else:
            items = review.review_queue(None, result, n_items=BATCH, exclude=labeled, W=W, random_state=version)
        rows = np.array([item.index for item in items[: budget - n_seen]], dtype=np.int64)
        if rows.size == 0:
            break
        seen[rows] = y[rows]
        version += 1
    return seen


def _local_classes(seen: NDArray[np.int64], y: NDArray[np.int64]) -> tuple[NDArray[np.int64], int, NDArray[np.int64]]:
    """The classes a label names, renumbered 0..m-1 as the app's class list would hold them: (labels, m, truth in
    that numbering, -1 for a class nobody has named yet)."""
    named = np.unique(seen[seen >= 0])
    index = np.full(int(y.max()) + 1, -1, dtype=np.int64)
    index[named] = np.arange(named.size)
    return np.where(seen >= 0, index[np.maximum(seen, 0)], -1), int(named.size), index[y]


def draw(flow: str, X: NDArray[Any], W: Any, y: NDArray[np.int64], k: int, seed: int) -> dict[str, float]:
    """One person, one flow: how many classes got a label, accuracy, leave-one-out accuracy, mean confidence and
    ECE before and after ``N_AUDITS`` audits."""
    from labeler.core import diagnostics, propagate
    from labeler.core.reliability import expected_calibration_error
    from labeler.core.simulated_prior import simulated_prior
    from labeler.workflow import calibration

    y_seen, n_named, truth = _local_classes(labels_from_flow(flow, X, W, y, k, seed), y)
    result = propagate.propagate(W, y_seen, n_named, n_bootstrap=0, random_state=seed)
    propagated = result.source == propagate.Source.PROPAGATED
    rows = np.flatnonzero(propagated)
    right = result.label == truth
    audited = np.random.default_rng(1000 + seed).choice(rows, size=N_AUDITS, replace=False)
    scored = np.setdiff1d(rows, audited)
    loo = diagnostics.loo_scores(W, y_seen, n_named)
    prior = simulated_prior(W, y_seen, result.label, n_named, random_state=seed)
    confidence, _ = calibration.calibrate(result.confidence, result.proba, result.label, propagated, y_seen, loo,
                                          audited, truth[audited], prior)
    before, _ = calibration.calibrate(result.confidence, result.proba, result.label, propagated, y_seen, loo,
                                      prior=prior)
    seeds, loo_label, _ = loo
    return {
        "named": n_named / (int(y.max()) + 1),
        "accuracy": float(right[scored].mean()),
        "loo": float(np.mean(loo_label == y_seen[seeds])) if k > 1 else np.nan,
        "confidence": float(confidence[scored].mean()),
        "ece before": expected_calibration_error(before[scored], right[scored]),
        "ece": expected_calibration_error(confidence[scored], right[scored]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(SHARED_DATASETS))
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--sets", default="", help="comma-free set names joined by ';' (default: all)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    from labeler.core import graph

    started = dt.datetime.now().astimezone()
    t = time.perf_counter()
    wanted = [name for name in args.sets.split(";") if name]
    table = [
        "| set | k | flow | classes with a label | accuracy | leave-one-out accuracy | mean confidence "
        "| ECE before audits | ECE after 30 audits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (X, y) in representations(Path(args.data_dir)).items():
        if wanted and name not in wanted:
            continue
        W = graph.knn_graph(X, 15)
        for k in (1, 3, 5) if y.max() + 1 > 30 else (1, 3, 10):  # pets37 has 10 photos per breed
            for flow in FLOWS:
                runs = [draw(flow, X, W, y, k, seed) for seed in range(args.seeds)]
                table.append(f"| {name} | {k} | {flow} | {mean_sd(runs, 'named', 2)} | {mean_sd(runs, 'accuracy')} "
                             f"| {mean_sd(runs, 'loo')} | {mean_sd(runs, 'confidence')} "
                             f"| {mean_sd(runs, 'ece before')} | {mean_sd(runs, 'ece')} |")
        print(name, flush=True)
    lines = [
        "# The honest numbers when the person labels what the app shows them (benchmarks/labeling_flow.py)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}",
        f"- command: `python -m benchmarks.labeling_flow --seeds {args.seeds}`",
        "- per draw: as many labels as k per class, placed by the flow (module docstring: balanced = k random per "
        "class, random = the Random strategy, suggested = cold start then the Label page's suggested queue, "
        f"{BATCH} at a time; until 2026-11-28 = one in {EARLIER_EVERY} typical of {EARLIER_CLUSTERS} clusters, the "
        "review queue the rest; review queue only = the same without the clusters), answered with the truth; label "
        "spreading on the 15-NN graph of the representation the app starts with; the app's calibration before any "
        f"audit and after {N_AUDITS} blind audits answered with "
        "the truth; ECE (10 equal bins) and accuracy on the propagated images not audited (images of a class no "
        f"label names count as wrong); leave-one-out accuracy of the labels (k > 1); mean ± std over {args.seeds} "
        "draws",
        "",
        *table,
        "",
        f"{time.perf_counter() - t:.0f} s.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()

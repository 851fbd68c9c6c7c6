"""What to show the person next: the review queue, suspect human labels, possible new classes, cold start.

All of these work against confirmation bias: they point the person at the images where the propagated labels are
least trustworthy (or where their own labels disagree with the data), never only at the comfortable ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.preprocessing import normalize

from labeler.core.diagnostics import loo_scores
from labeler.core.propagate import PropagationResult, Source, normalized_affinity, seeded_components, spread


@dataclass(frozen=True)
class ReviewItem:
    """One image in the review queue and why it is there."""

    index: int
    rule: str  # "no seed reached", "low margin", "high entropy", "unstable", "random" or
    # "typical of an unlabeled cluster" (suggested_queue)
    score: float  # uncertainty in [0, 1] (higher = less certain); 0 for random picks


@dataclass(frozen=True)
class Suspect:
    """A human label that its neighbourhood contradicts in leave-one-out propagation."""

    index: int
    human_label: int
    neighbourhood_label: int  # the class the other seeds send the image most mass of, other than its own
    support: float  # normalised leave-one-out mass of ``neighbourhood_label`` at the image, in (0, 1]
    log_ratio: float  # log(mass of neighbourhood_label / mass of human_label), both floored (suspect_log_ratios)


_RULES = ("low margin", "high entropy", "unstable")


def _uncertainty(result: PropagationResult) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Score in [0, 1] = mean of (1 - margin, entropy, 1 - stability), and which of the three is largest."""
    stability = np.nan_to_num(result.stability, nan=1.0)  # not measured: no evidence of instability
    parts = np.stack([1.0 - result.margin, result.entropy, 1.0 - stability], axis=1)
    return parts.mean(axis=1), np.argmax(parts, axis=1)


def review_queue(
    X: NDArray[Any] | None,
    result: PropagationResult,
    *,
    n_items: int = 24,
    random_share: float = 0.2,
    random_state: int = 0,
    exclude: NDArray[Any] | None = None,
    W: sp.spmatrix | None = None,
    max_similarity: float = 0.95,
) -> list[ReviewItem]:
    """The images a person should look at next, least certain first, with a share of random ones.

    Candidates are the non-human images not in ``exclude``. Images no seed reaches come first (rule
    "no seed reached"), then propagated ones by uncertainty ``mean(1 - margin, entropy, 1 - stability)``; the rule
    names the largest of the three terms. Diversity: a candidate is skipped when it is a graph neighbour of an image
    already picked (``W`` given) or, without ``W``, when its cosine similarity in ``X`` to a picked image exceeds
    ``max_similarity``. ``round(random_share * n_items)`` items are drawn uniformly from all candidates (rule
    "random") and spread evenly through the queue, so the queue also shows what "certain" images look like.

    Parameters
    ----------
    X : array of shape (n, d) or None, embeddings (used for diversity when ``W`` is None)
    result : PropagationResult of the current labels
    exclude : int indices already audited or labeled in this round
    W : (n, n) affinity matrix of the shared kNN graph, optional

    Returns
    -------
    list of ReviewItem, at most ``n_items`` long
    """
    n = result.label.shape[0]
    candidate = result.source != Source.HUMAN
    if exclude is not None:
        candidate[np.asarray(exclude, dtype=np.int64)] = False
    pool = np.flatnonzero(candidate)
    if n_items <= 0 or pool.size == 0:
        return []
    rng = np.random.default_rng(random_state)
    n_random = min(int(round(random_share * n_items)), pool.size)
    n_uncertain = n_items - n_random

    score, rule_index = _uncertainty(result)
    unreached = result.source == Source.NONE
    score = np.where(unreached, 1.0, score)
    # Unreached first, then by score; ties broken randomly so equal scores do not favour low indices.
    order = pool[np.lexsort((rng.random(pool.size), -score[pool], ~unreached[pool]))]

    Z = None
    if W is None and X is not None:
        Z = normalize(np.asarray(X, dtype=np.float64))
    W_csr = sp.csr_matrix(W) if W is not None else None
    blocked = np.zeros(n, dtype=bool)
    picked: list[int] = []
    for i in order:
        if len(picked) >= n_uncertain:
            break
        if blocked[i]:
            continue
        if Z is not None and picked and float(np.max(Z[picked] @ Z[i])) > max_similarity:
            continue
        picked.append(int(i))
        blocked[i] = True
        if W_csr is not None:
            blocked[W_csr.indices[W_csr.indptr[i] : W_csr.indptr[i + 1]]] = True
    items = [
        ReviewItem(i, "no seed reached" if unreached[i] else _RULES[rule_index[i]], float(score[i])) for i in picked
    ]

    rest = np.setdiff1d(pool, picked)
    n_random = min(n_random + (n_uncertain - len(picked)), rest.size)  # fill up if diversity left gaps
    randoms = [ReviewItem(int(i), "random", 0.0) for i in rng.choice(rest, n_random, replace=False)]
    if not randoms:
        return items
    # Spread random items evenly through the queue so they are visible on every screen. Positions
    # floor((j + 0.5) * total / n_random) are distinct because total >= n_random.
    total = len(items) + len(randoms)
    positions = set(np.floor((np.arange(len(randoms)) + 0.5) * total / len(randoms)).astype(int).tolist())
    it_items, it_random = iter(items), iter(randoms)
    return [next(it_random) if position in positions else next(it_items) for position in range(total)]


# Tukey's fence: a seed is a suspect when its log-ratio lies this many interquartile ranges above the upper quartile.
SUSPECT_FENCE = 1.5
# The same fence on the distance to the k-th neighbour marks isolated images (possible_new_class). Tukey's "far out"
# fence (3) flagged none of a few clothing images planted among digits; 1.5 found 6 of 86 and no digit, and marks
# 0-5 images per thousand of the shared sets (benchmarks/results/suspects.md).
ISOLATION_FENCE = 1.5


def suspect_log_ratios(
    W: sp.spmatrix | NDArray[Any],
    y: NDArray[Any],
    n_classes: int,
    *,
    alpha: float = 0.99,
    floor: float | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """How strongly the other seeds contradict each seed: ``log(rival / own)`` of its leave-one-out masses.

    ``own`` is the normalised leave-one-out mass (:func:`labeler.core.diagnostics.loo_scores`) of the seed's own
    class, ``rival`` the largest of the other classes'; both are floored at ``floor``, by default ``1 / m`` with
    ``m`` seeds, one seed's even share. Why that floor: where the graph does not join two clusters, mass across them
    is exactly zero; with a tiny fixed floor the seeds of clean clusters pile up far below the others and widen the
    fence of :func:`suspect_human_labels` until planted errors go unflagged (separated blobs, 6 labels per class:
    67% found with 1e-3, 94% with ``1 / m``; on the shared image sets, whose graphs are joined, the floor changes
    nothing: ``benchmarks/results/suspects.md``). Positive: the rival wins. NaN where nothing can contradict the
    seed: no other seed reaches it, or no other seed has its class (a class's only label gets no mass of its own
    class whatever it is).

    Returns
    -------
    seeds : int64 (m,), the human-labeled rows; rival : int64 (m,), the best other class (-1 with one class)
    support : float64 (m,), the rival's normalised mass; log_ratio : float64 (m,)
    """
    y = np.asarray(y)
    seeds, loo_label, loo_proba = loo_scores(W, y, n_classes, alpha=alpha)
    rows = np.arange(seeds.size)
    own_class = y[seeds].astype(np.int64)
    others = loo_proba.copy()
    others[rows, own_class] = -np.inf
    rival = np.argmax(others, axis=1) if n_classes > 1 else np.full(seeds.size, -1, dtype=np.int64)
    support = loo_proba[rows, rival] if n_classes > 1 else np.zeros(seeds.size)
    own = loo_proba[rows, own_class]
    floor = 1.0 / max(seeds.size, 1) if floor is None else floor
    log_ratio = np.log(np.maximum(support, floor)) - np.log(np.maximum(own, floor))
    per_class = np.bincount(own_class, minlength=n_classes)
    measurable = (loo_label >= 0) & (per_class[own_class] >= 2) & (rival >= 0)
    return seeds, rival.astype(np.int64), support.astype(np.float64), np.where(measurable, log_ratio, np.nan)


def suspect_human_labels(
    W: sp.spmatrix | NDArray[Any],
    y: NDArray[Any],
    n_classes: int,
    *,
    alpha: float = 0.99,
    fence: float = SUSPECT_FENCE,
    floor: float | None = None,
) -> list[Suspect]:
    """Human labels that leave-one-out propagation from the other seeds contradicts far more than the others.

    Each seed is left out in turn (exactly) and scored by :func:`suspect_log_ratios` (``floor`` as there); it is a
    suspect when its log-ratio is positive (another class gets more mass than its own) and either an outlier among
    the seeds' log-ratios, above ``Q3 + fence * IQR`` (Tukey 1977), or at least ``log(m / 2)`` with ``m`` seeds:
    another class sends it half the mass or more while its own sends less than one seed's share.

    Why a fence, not a fixed share of mass: how loud leave-one-out's disagreement is depends on the budget and the
    classes. With ten classes a wrong label seldom gets half the mass (the fixed rule found 0-7% of planted errors
    in MNIST, Fashion-MNIST and pets37's breeds, the fence 33-70%, with under 1% of right labels flagged); with a
    few labels per class many right ones lose to another class. Why the bound: with three labels per class in
    clusters the graph does not join, a quartile of seeds sits at the floor and the fence cannot single one out of
    three (separated blobs: 47% found by the fence alone, 83% with the bound; ``benchmarks/results/suspects.md``).
    Sorted strongest contradiction first.
    """
    seeds, rival, support, log_ratio = suspect_log_ratios(W, y, n_classes, alpha=alpha, floor=floor)
    scored = ~np.isnan(log_ratio)
    if not np.any(scored):
        return []
    q1, q3 = np.percentile(log_ratio[scored], [25, 75])
    outlier = log_ratio > q3 + fence * (q3 - q1)
    unanimous = log_ratio >= np.log(seeds.size / 2)
    flagged = scored & (log_ratio > 0) & (outlier | unanimous)  # NaN compares False
    y = np.asarray(y)
    out = [
        Suspect(int(i), int(y[i]), int(rival[j]), float(support[j]), float(log_ratio[j]))
        for j, i in enumerate(seeds)
        if flagged[j]
    ]
    return sorted(out, key=lambda s: (-s.log_ratio, s.index))


def possible_new_class(
    W: sp.spmatrix | NDArray[Any],
    y: NDArray[Any],
    *,
    alpha: float = 0.9,
    ratio: float = 0.1,
    knn_distances: NDArray[Any] | None = None,
    fence: float = ISOLATION_FENCE,
) -> NDArray[np.bool_]:
    """Images far from every seed in the graph, or far from every image: candidates for a class nobody has labeled.

    Rule: spread all seeds as one class with a short-range ``alpha`` (0.9: mass decays ~10x per few hops, so it
    measures graph closeness to the nearest seeds; the long-range 0.99 used for labels equalises mass across touching
    clusters). The mass reaching image ``i``, divided by ``sqrt(degree_i)`` (the stationary scale of
    ``D^-1/2 W D^-1/2``, so hubs are not favoured), is compared with the median over the unlabeled images a seed
    reaches; below ``ratio`` times that median the image is flagged. Images in a component without seeds are always
    flagged; human-labeled images never are.

    With ``knn_distances`` (the graph's kNN lists' distances), isolated images are flagged too: those whose distance
    to their k-th neighbour is above ``Q3 + fence * IQR`` of all images' (Tukey's fence). Why: a class with only a
    few images in the folder has no cluster of its own; its images hang on to the nearest cluster in the graph and
    get a seed's mass like any other, but their neighbours are far (``benchmarks/results/suspects.md``: of 3 or 10
    clothing images among 2,000 digits the graph rule found none, this fence 6 of 26; 30 of them are a group of
    their own, found by neither).

    Parameters
    ----------
    W : (n, n) affinity; y : (n,) int with -1 unlabeled
    knn_distances : (n, k) float, nearest first (:func:`labeler.core.graph.knn_indices`), optional

    Returns
    -------
    bool array of shape (n,)
    """
    y = np.asarray(y)
    S = normalized_affinity(W, dtype=np.float64)
    unlabeled = y < 0
    seeds_as_one = (~unlabeled).astype(np.float64)[:, None]
    F, _ = spread(S, seeds_as_one, alpha=alpha, tol=1e-6)
    degree = np.asarray(sp.csr_matrix(W).sum(axis=1)).ravel()
    mass = F[:, 0] / np.sqrt(np.maximum(degree, 1e-12))
    reached = seeded_components(W, y) & (mass > 0)
    reference = mass[reached & unlabeled]
    flagged = unlabeled & ~reached
    if reference.size:
        flagged |= unlabeled & (mass < ratio * float(np.median(reference)))
    if knn_distances is not None:
        flagged |= unlabeled & isolated(knn_distances, fence=fence)
    return flagged


def isolated(knn_distances: NDArray[Any], *, fence: float = ISOLATION_FENCE) -> NDArray[np.bool_]:
    """Rows whose distance to their k-th (last) neighbour lies above ``Q3 + fence * IQR`` of all rows' (Tukey 1977).

    Parameters
    ----------
    knn_distances : (n, k) float, nearest first

    Returns
    -------
    bool array of shape (n,); all False without neighbours
    """
    distances = np.asarray(knn_distances, dtype=np.float64)
    if distances.ndim != 2 or distances.shape[1] == 0 or distances.shape[0] == 0:
        return np.zeros(distances.shape[0] if distances.ndim else 0, dtype=bool)
    last = distances[:, -1]
    q1, q3 = np.percentile(last, [25, 75])
    return np.asarray(last > q3 + fence * (q3 - q1), dtype=bool)


@dataclass(frozen=True)
class Clusters:
    """k-means clusters of the embeddings, numbered from the largest.

    Attributes
    ----------
    typical : int64 (k,), the real image nearest each cluster's centre (distinct images), largest cluster first
    assignment : int64 (n,), every image's cluster, numbered as ``typical``
    """

    typical: NDArray[np.int64]
    assignment: NDArray[np.int64]


# k-means runs on at most this many principal components of the unit-normalised embeddings: on 10,000 photos' 1,280
# features 48 clusters took 10-20 s on two cores, on their first 64 components under 2 s with 256 clusters.
CLUSTER_DIMS = 64


def clusters(X: NDArray[Any], n_clusters: int, *, random_state: int = 0) -> Clusters:
    """k-means with ``n_clusters`` clusters on the unit-normalised embeddings (cosine geometry, like the graph;
    their first ``CLUSTER_DIMS`` principal components when wider), renumbered from the largest, with the real image
    nearest each centre. MiniBatchKMeans above 20,000 images."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float32)  # float32: 100,000 photos' 1,280 features take 0.5 GB, not 1
    n = X.shape[0]
    k = min(n_clusters, n)
    if k <= 0:
        return Clusters(np.empty(0, dtype=np.int64), np.zeros(n, dtype=np.int64))
    Z = normalize(X)
    if Z.shape[1] > CLUSTER_DIMS and n > CLUSTER_DIMS:
        pca = PCA(CLUSTER_DIMS, svd_solver="randomized", random_state=random_state)
        Z = np.asarray(pca.fit_transform(Z), dtype=np.float32)
    if n > 20_000:
        model: Any = MiniBatchKMeans(n_clusters=k, random_state=random_state, n_init=3, batch_size=2048)
    else:
        model = KMeans(n_clusters=k, random_state=random_state, n_init=3)
    assignment = model.fit_predict(Z)
    by_size = np.argsort(-np.bincount(assignment, minlength=k), kind="stable")
    centres = np.asarray(model.cluster_centers_, dtype=np.float32)
    # Squared distance to each centre up to the rows' own |z|^2: one product instead of k passes over Z.
    distance = np.sum(centres**2, axis=1)[None, :] - 2.0 * (Z @ centres.T)
    chosen: list[int] = []
    taken = np.zeros(n, dtype=bool)
    for c in by_size:
        d = np.where(taken, np.inf, distance[:, c])  # two centres never map to the same image
        i = int(np.argmin(d))
        chosen.append(i)
        taken[i] = True
    rank = np.empty(k, dtype=np.int64)
    rank[by_size] = np.arange(k)
    return Clusters(np.array(chosen, dtype=np.int64), rank[assignment].astype(np.int64))


def cold_start(X: NDArray[Any], n_items: int, *, random_state: int = 0) -> NDArray[np.int64]:
    """Images to label first, before any label exists: typical and diverse.

    :func:`clusters` with ``n_items`` clusters; for each centre the nearest real image, largest cluster first.

    Returns
    -------
    int64 array of at most ``n_items`` distinct indices
    """
    return clusters(X, n_items, random_state=random_state).typical


def uncovered_typicals(
    found: Clusters, labeled: NDArray[Any], n_items: int, exclude: NDArray[Any] | None = None
) -> NDArray[np.int64]:
    """The typical image of each cluster that holds no labeled image, largest cluster first: at most ``n_items``,
    none in ``exclude``; none at all when ``found`` clusters another set of images than ``labeled`` describes.

    Why: with a few labels per class, typical images of the parts nobody has labeled yet teach spreading more than
    the least certain ones (Hacohen et al. 2022, "Active learning on a budget": typicality wins at low budgets,
    uncertainty at high ones), and they find classes nobody has named: uncertainty sampling alone keeps showing the
    borders between classes already named (``benchmarks/results/labeling_flow.md``).
    """
    labeled = np.asarray(labeled, dtype=bool)
    if found.assignment.size != labeled.size:
        return np.empty(0, dtype=np.int64)
    covered = np.zeros(found.typical.size, dtype=bool)
    covered[found.assignment[labeled]] = True
    candidate = found.typical[~covered]
    if exclude is not None:
        candidate = candidate[~np.isin(candidate, np.asarray(exclude, dtype=np.int64))]
    candidate = candidate[~labeled[candidate]]
    return candidate[: max(n_items, 0)].astype(np.int64)


# The suggested queue's clusters: from this many ...
MIN_COVERAGE_CLUSTERS = 48
# ... up to this many (and at most half the images); see coverage_clusters.
MAX_COVERAGE_CLUSTERS = 256


def coverage_clusters(n_labeled: int, n_images: int, batch: int) -> int:
    """How many k-means clusters the suggested queue covers with ``n_labeled`` labels: twice the labels and a
    ``batch`` more, rounded up to a power of two (so that k-means reruns only when the labels double), at least
    ``MIN_COVERAGE_CLUSTERS``, at most ``MAX_COVERAGE_CLUSTERS`` and half the images.

    Why: while clusters without a label are left, the queue offers their typical images, one per cluster (as
    TypiClust does: Hacohen et al. 2022, "Active learning on a budget", whose cluster count grows with the labels).
    Growing with the labels keeps that going at low budgets, where typical images teach spreading most; at the cap
    uncovered clusters run out and the least certain images take over, as they should at higher budgets
    (``benchmarks/results/labeling_flow.md``).
    """
    wanted = 2 * (max(n_labeled, 0) + max(batch, 1))
    k = max(MIN_COVERAGE_CLUSTERS, 1 << (wanted - 1).bit_length())
    return max(1, min(k, MAX_COVERAGE_CLUSTERS, n_images // 2))


def suggested_queue(
    result: PropagationResult,
    found: Clusters | None,
    *,
    n_items: int,
    exclude: NDArray[Any] | None = None,
    W: sp.spmatrix | None = None,
    random_state: int = 0,
) -> list[ReviewItem]:
    """What the Label page suggests once labels exist: the typical image of each cluster without a label, largest
    cluster first (:func:`uncovered_typicals`, rule "typical of an unlabeled cluster"; ``found`` as many clusters
    as :func:`coverage_clusters` says), then, once every cluster holds a label, the :func:`review_queue`. Without
    ``found`` (or with clusters of another set of images), the review queue alone."""
    items: list[ReviewItem] = []
    if found is not None and n_items > 0:
        labeled = result.source == Source.HUMAN
        rows = uncovered_typicals(found, labeled, n_items, exclude)
        items = [ReviewItem(int(i), "typical of an unlabeled cluster", 0.0) for i in rows]
    taken = np.asarray([item.index for item in items], dtype=np.int64)
    if exclude is not None:
        taken = np.union1d(taken, np.asarray(exclude, dtype=np.int64))
    return items + review_queue(None, result, n_items=n_items - len(items), exclude=taken, W=W,
                                random_state=random_state)

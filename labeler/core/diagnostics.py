"""Diagnostics that make the pitfalls of semi-supervised learning visible.

Label spreading only helps when the manifold assumption holds (images of one class are connected in the graph).
Leave-one-out accuracy on the human labels measures that directly, and a supervised-only baseline on the same
embeddings shows whether the graph earns its complexity. The same score ranks candidate representations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from labeler.core.graph import affinity_from_knn, knn_graph, unit_rows
from labeler.core.propagate import check_labels, make_solver, normalized_affinity, one_hot
from labeler.core.selection import SelectionEstimate, nested_selection_accuracy

# Up to this many labels the supervised baseline is exact leave-one-out; above, stratified 10-fold.
LOO_MAX_LABELS = 100


def loo_scores(
    W: sp.spmatrix | NDArray[Any],
    y: NDArray[Any],
    n_classes: int,
    *,
    alpha: float = 0.99,
    tol: float = 1e-8,
    max_iter: int = 2000,
    batch_size: int = 64,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Leave-one-out label spreading at every seed, exactly and without one run per seed.

    With ``G = (I - alpha S)^-1`` the scores are ``F = (1 - alpha) G Y``, so what the other seeds send to seed ``i``
    is the ``i``-th row of ``(1 - alpha) G`` over them: solves with unit right-hand sides (``batch_size`` seeds at a
    time) give those columns, and ``G`` is symmetric. See :func:`seed_influence`, which also updates them after a
    few labels changed instead of starting again.

    Returns
    -------
    seeds : int64 (n_seeds,), indices of the human-labeled images
    loo_label : int64 (n_seeds,), label propagated to each seed from the others, -1 if no other seed reaches it
    loo_proba : float64 (n_seeds, n_classes), normalised leave-one-out mass (zero rows where -1)
    """
    S = normalized_affinity(W, dtype=np.float64)
    influence = seed_influence(S, y, n_classes, alpha=alpha, tol=tol, max_iter=max_iter, batch_size=batch_size)
    _, component = connected_components(S, directed=False)
    return loo_from_influence(influence, component)


@dataclass(frozen=True)
class SeedInfluence:
    """What the seeds send each other on one graph: enough for every leave-one-out prediction, and small to keep.

    Attributes
    ----------
    seeds : int64 (m,), rows of the seeds, ascending; labels : int64 (m,), their classes
    own : float64 (m,), ``(1 - alpha) G_ii``, the mass a seed sends itself (depends on the graph only)
    others : float64 (m, n_classes), ``(1 - alpha) sum_{j != i, y_j = c} G_ij``: what the other seeds of class
        ``c`` send seed ``i``
    """

    seeds: NDArray[np.int64]
    labels: NDArray[np.int64]
    own: NDArray[np.float64]
    others: NDArray[np.float64]


def seed_influence(
    S: sp.csr_matrix,
    y: NDArray[Any],
    n_classes: int,
    *,
    alpha: float = 0.99,
    tol: float = 1e-8,
    max_iter: int = 2000,
    batch_size: int = 64,
    previous: SeedInfluence | None = None,
) -> SeedInfluence:
    """:class:`SeedInfluence` of the seeds of ``y`` on ``S`` (:func:`normalized_affinity`, float64).

    With ``previous`` (computed on the same ``S``, its labels in the class indices of ``y``, -1 for a class
    deleted since) only the seeds added, removed or relabeled since are solved for, one column each, and the
    others' sums are corrected by those columns: a new label costs one solve instead of one per seed.
    """
    y = check_labels(y, S.shape[0], n_classes)
    seeds = np.flatnonzero(y >= 0)
    labels = y[seeds]
    if previous is not None and previous.others.shape[1:] != (n_classes,):
        previous = None
    if previous is None:
        before = np.zeros(0, dtype=np.int64)
        old_label = np.zeros(0, dtype=np.int64)
    else:
        before, old_label = previous.seeds, previous.labels
    # Seeds whose column changes the sums: added, removed, or given another class.
    label_then = np.full(S.shape[0], -1, dtype=np.int64)
    label_then[before] = old_label
    was_seed = np.zeros(S.shape[0], dtype=bool)
    was_seed[before] = True
    is_seed = y >= 0
    changed = np.flatnonzero((was_seed != is_seed) | (is_seed & was_seed & (label_then != y)))
    if previous is None or changed.size >= seeds.size:  # starting again is no dearer
        previous, changed = None, seeds
        was_seed[:] = False
    own = np.zeros(seeds.size)
    others = np.zeros((seeds.size, n_classes))
    kept = was_seed[seeds]  # seeds whose sums are carried over and corrected
    if previous is not None:
        at = np.searchsorted(previous.seeds, seeds[kept])
        own[kept] = previous.own[at]
        others[kept] = previous.others[at]
    position = np.full(S.shape[0], -1, dtype=np.int64)
    position[seeds] = np.arange(seeds.size)
    solve = make_solver(S, alpha=alpha, max_iter=max_iter, tol=tol) if changed.size else None
    for start in range(0, changed.size, batch_size):
        assert solve is not None
        batch = changed[start : start + batch_size]
        E = np.zeros((S.shape[0], batch.size))
        E[batch, np.arange(batch.size)] = 1.0
        # spread solves (I - aS) Z = (1 - a) E, so column j of Z is (1 - a) G e_j; by symmetry also its row.
        Z, _ = solve(E)
        received = Z[seeds]  # (m, batch): what each current seed receives from each changed one
        received[position[batch[is_seed[batch]]], np.flatnonzero(is_seed[batch])] = 0.0  # never from itself
        new_fresh = (position[batch] >= 0) & ~was_seed[batch]
        fresh_rows = position[batch[new_fresh]]
        own[fresh_rows] = Z[batch[new_fresh], np.flatnonzero(new_fresh)]
        others[fresh_rows] = received[:, new_fresh].T @ one_hot(labels, n_classes)
        # Sums carried over: remove what a changed seed sent under its old class, add what it sends under its new.
        rows = np.flatnonzero(kept)
        sent_then = np.where(was_seed[batch], label_then[batch], -1)
        sent_now = np.where(is_seed[batch], y[batch], -1)
        others[rows] -= received[rows] @ _one_hot_or_none(sent_then, n_classes)
        others[rows] += received[rows] @ _one_hot_or_none(sent_now, n_classes)
    return SeedInfluence(seeds.astype(np.int64), labels.astype(np.int64), own, others)


def _one_hot_or_none(labels: NDArray[np.int64], n_classes: int) -> NDArray[np.float64]:
    """One-hot rows, all zero where the label is -1."""
    out = np.zeros((labels.size, n_classes))
    hit = labels >= 0
    out[np.flatnonzero(hit), labels[hit]] = 1.0
    return out


def loo_from_influence(
    influence: SeedInfluence, component: NDArray[Any]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """``(seeds, loo_label, loo_proba)`` as :func:`loo_scores` returns them, from :func:`seed_influence` and the
    connected component of every node (``scipy.sparse.csgraph.connected_components``)."""
    seeds, labels = influence.seeds, influence.labels
    n_classes = influence.others.shape[1]
    F_loo = np.maximum(influence.others, 0.0)
    # Class-balanced seeds, as in propagate(): divide each column by its seed count, which for the left-out
    # seed's own class is one fewer (a class left with no seed gets no mass).
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    denominators = np.tile(counts, (seeds.size, 1))
    denominators[np.arange(seeds.size), labels] -= 1.0
    F_loo = np.divide(F_loo, denominators, out=np.zeros_like(F_loo), where=denominators > 0)
    # Rounding leaves ~tol-sized mass when no other seed is connected; treat that as unreached.
    component = np.asarray(component)
    others = np.bincount(component[seeds], minlength=component.size)[component[seeds]] > 1
    totals = F_loo.sum(axis=1)
    reached = others & (totals > 0)
    loo_label = np.full(seeds.size, -1, dtype=np.int64)
    loo_label[reached] = np.argmax(F_loo[reached], axis=1)
    loo_proba = np.zeros_like(F_loo)
    loo_proba[reached] = F_loo[reached] / totals[reached, None]
    return seeds, loo_label, loo_proba


def loo_correct(W: sp.spmatrix | NDArray[Any], y: NDArray[Any], n_classes: int, *, alpha: float = 0.99
                ) -> NDArray[np.bool_]:
    """Whether label spreading from the other human labels reproduces each human label.

    Returns a bool array of shape (n_seeds,), in the order of ``np.flatnonzero(y >= 0)``; a seed no other seed
    reaches counts as wrong.
    """
    seeds, loo_label, _ = loo_scores(W, y, n_classes, alpha=alpha)
    return np.asarray(loo_label == np.asarray(y)[seeds])


def loo_accuracy(W: sp.spmatrix | NDArray[Any], y: NDArray[Any], n_classes: int, *, alpha: float = 0.99) -> float:
    """Share of human labels that label spreading from the other human labels reproduces (:func:`loo_correct`).

    NaN when there are no labels.
    """
    correct = loo_correct(W, y, n_classes, alpha=alpha)
    return float(np.mean(correct)) if correct.size else float("nan")


def supervised_baseline_loo(X: NDArray[Any], y: NDArray[Any], *, random_state: int = 0) -> float:
    """Accuracy of logistic regression (classes weighted equally) on the labeled rows of ``X`` (unit-normalised),
    held out.

    Leave-one-out up to ``LOO_MAX_LABELS`` labels, else stratified 10-fold. A fold whose training part holds one
    class predicts that class. NaN when there are no labels.

    Parameters
    ----------
    X : (n, d) embeddings; y : (n,) int, -1 unlabeled
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, LeaveOneOut, StratifiedKFold

    y = np.asarray(y)
    mask = y >= 0
    Xl = unit_rows(np.asarray(X, dtype=np.float64)[mask])
    yl = y[mask]
    if yl.size == 0:
        return float("nan")
    if yl.size == 1:
        return 0.0  # nothing left to train on
    splitter: Any
    if yl.size <= LOO_MAX_LABELS:
        splitter = LeaveOneOut()
    elif np.all(np.bincount(yl)[np.unique(yl)] >= 10):  # stratifying needs every class in every fold
        splitter = StratifiedKFold(n_splits=10, shuffle=True, random_state=random_state)
    else:
        splitter = KFold(n_splits=10, shuffle=True, random_state=random_state)
    correct = 0
    for train, test in splitter.split(Xl, yl):
        classes = np.unique(yl[train])
        if classes.size == 1:
            pred = np.full(test.size, classes[0])
        else:
            # Balanced weights: leaving one out leaves its class one example short, and with a handful per class
            # the unweighted model's intercepts then vote for the other classes (3 labels of each of 10 digit
            # classes scored 0.27-0.33 held out, against 0.55-0.62 right on the rest of the folder).
            model = LogisticRegression(max_iter=1000, class_weight="balanced")
            pred = model.fit(Xl[train], yl[train]).predict(Xl[test])
        correct += int(np.sum(pred == yl[test]))
    return correct / yl.size


def compare_representations(
    reps: dict[str, NDArray[Any]],
    y: NDArray[Any],
    n_classes: int,
    *,
    n_neighbors: int = 15,
    alpha: float = 0.99,
    graphs: Mapping[str, Any] | None = None,
) -> dict[str, NDArray[np.bool_]]:
    """Leave-one-out propagation of the same human labels on each representation's own kNN graph.

    Returns, per representation, :func:`loo_correct` (bool array of shape (n_seeds,), the same labels in the same
    order for every representation); its mean is the leave-one-out accuracy. The representation with the highest
    accuracy is the one whose graph best agrees with the person's labels.

    Parameters
    ----------
    graphs : optional ``{name: W or (indices, distances)}``
        Graphs already built for some representations (an affinity matrix, or the kNN lists of
        :func:`labeler.core.graph.knn_indices`); reused instead of searching the neighbours again, which at
        100,000 images is most of the cost. Representations not in it get a new kNN graph.
    """
    graphs = graphs or {}
    correct = {}
    for name, X in reps.items():
        W = graphs.get(name)
        if W is None:
            W = knn_graph(X, n_neighbors)
        elif isinstance(W, tuple):
            W = affinity_from_knn(*W)
        correct[name] = loo_correct(W, y, n_classes, alpha=alpha)
    return correct


def accuracy_against_truth(
    pred: NDArray[Any], truth: NDArray[Any], mask: NDArray[Any] | None = None
) -> tuple[float, int]:
    """Teaching mode: true accuracy of ``pred`` where ground truth is known (``truth >= 0``) and ``mask`` holds.

    Returns (accuracy, number of images compared); accuracy is NaN when none are compared. Images with
    ``pred == -1`` count as wrong.
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    keep = truth >= 0
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool)
    n = int(keep.sum())
    if n == 0:
        return float("nan"), 0
    return float(np.mean(pred[keep] == truth[keep])), n


def learning_curve_point(
    y: NDArray[Any], pred: NDArray[Any], truth: NDArray[Any], mask: NDArray[Any] | None = None
) -> dict[str, float]:
    """One point of the teaching-mode learning curve: number of human labels and true accuracy of the rest.

    Accuracy is measured on the unlabeled images (``y == -1``, intersected with ``mask``), so the human labels do
    not inflate it.
    """
    y = np.asarray(y)
    unlabeled = y < 0 if mask is None else (y < 0) & np.asarray(mask, dtype=bool)
    accuracy, n = accuracy_against_truth(pred, truth, unlabeled)
    return {"n_labels": float(np.sum(y >= 0)), "accuracy": accuracy, "n_evaluated": float(n)}


def loo_measurable(y: NDArray[Any], n_classes: int) -> bool:
    """Leave-one-out says something only when at least two classes have two or more human labels each."""
    y = np.asarray(y)
    per_class = np.bincount(y[y >= 0], minlength=max(n_classes, 1))
    return int(np.sum(per_class >= 2)) >= 2


@dataclass(frozen=True)
class RepresentationChoice:
    """The representation to propagate on, and what the choice rests on.

    Attributes
    ----------
    name : the chosen representation
    scores : leave-one-out propagation accuracy of every candidate (empty when nothing was measured)
    reason : why, in words
    loo_correct : per candidate, whether leave-one-out reproduces each human label (empty when nothing was measured)
    selection : the accuracy to expect from choosing this way, corrected for the choice (nested leave-one-out, see
        :func:`labeler.core.selection.nested_selection_accuracy`); None when there was no choice to make
    """

    name: str
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    loo_correct: dict[str, NDArray[np.bool_]] = field(default_factory=dict)
    selection: SelectionEstimate | None = None


def choose_representation(
    reps: dict[str, NDArray[Any]],
    y: NDArray[Any],
    n_classes: int,
    *,
    preferred: str,
    n_neighbors: int = 15,
    alpha: float = 0.99,
    graphs: Mapping[str, Any] | None = None,
) -> RepresentationChoice:
    """The representation to propagate on, chosen by leave-one-out propagation accuracy on the human labels.

    ``preferred`` (the trained encoder once there is one, else the instant baseline) is kept where that cannot be
    measured yet (fewer than two classes with two labels each), and unless another representation beats it by more
    than one standard error of its score: with a few dozen labels, smaller differences are noise
    (``benchmarks/results/quality.md``). The winner's own score is optimistic (it is the best of several noisy
    estimates); ``selection`` is the estimate corrected for the choice, by the same rule. ``graphs`` passes prebuilt
    graphs on to :func:`compare_representations`.
    """
    if preferred not in reps:
        raise ValueError(f"preferred representation {preferred!r} is not among {sorted(reps)}")
    if len(reps) == 1:
        return RepresentationChoice(preferred, reason="the only representation available (no trained encoder yet)")
    if not loo_measurable(y, n_classes):
        return RepresentationChoice(preferred, reason=(
            f"{preferred}: too few labels to compare representations yet (needs two classes with two labels each)"
        ))
    correct = compare_representations(reps, y, n_classes, n_neighbors=n_neighbors, alpha=alpha, graphs=graphs)
    scores = {name: float(np.mean(v)) for name, v in correct.items()}
    selection = nested_selection_accuracy(correct, preferred=preferred, min_gain_se=1.0)
    n_labels = int(np.sum(np.asarray(y) >= 0))
    p = scores[preferred]
    standard_error = float(np.sqrt(max(p * (1 - p), 0.25 / n_labels) / n_labels))
    best = max(scores, key=lambda name: (scores[name], name == preferred))
    listed = ", ".join(f"{name} {score:.3f}" for name, score in sorted(scores.items()))
    corrected = (f"; leave-one-out accuracy after this choice {selection.accuracy:.3f} (95% interval "
                 f"{selection.interval[0]:.3f}-{selection.interval[1]:.3f}, selection-corrected by nested "
                 "leave-one-out)")
    if best != preferred and scores[best] - p <= standard_error:
        # Said so that it can be followed without statistics: the gap, and how much such a score moves by chance.
        return RepresentationChoice(preferred, scores, (
            f"{preferred} kept: {best} scored {scores[best] - p:.3f} higher, less than the ±{standard_error:.3f} a "
            f"leave-one-out score on {n_labels} human labels moves by chance (one standard error), so the "
            f"difference may be noise: {listed}{corrected}"
        ), correct, selection)
    return RepresentationChoice(
        best, scores, f"highest leave-one-out propagation accuracy on {n_labels} human labels: {listed}{corrected}",
        correct, selection,
    )

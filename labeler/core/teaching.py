"""Live demonstrations for teachers: why label propagation works, and when it fails.

Each demo is a pure function over small synthetic 2-D data (fast enough to re-run on every slider move) that
returns the points, the labels each method gives and the accuracies, so a page only has to draw them.

- :func:`manifold_demo`: the manifold (cluster) assumption. On two moons one seed per class propagates along each
  moon; a supervised classifier on the same two seeds cuts straight across. With overlapping blobs the assumption
  fails and propagation loses its edge.
- :func:`confirmation_bias_demo`: self-training promotes confident propagated labels to seeds; its promoted mistakes
  become certain and leave the review queue. labeler's rule (only human labels are seeds) keeps them in view.
- :func:`mismatch_demo`: distribution mismatch. When the seeds come from part of a class only, or a class has no
  seed at all, propagation confidently labels what it has never seen; the new-class flag catches part of it.
- :func:`complexity_demo`: the cost of complexity. Accuracy against the number of neighbours fails at both ends:
  too few leave the graph in pieces, too many link the classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import make_blobs, make_moons
from sklearn.linear_model import LogisticRegression

from labeler.core.graph import knn_graph
from labeler.core.propagate import propagate
from labeler.core.review import possible_new_class


@dataclass
class Demo:
    """What a demo shows: points, true classes, seeds and each method's labels with its accuracy."""

    X: NDArray[np.float64]  # (n, 2)
    truth: NDArray[np.int64]  # (n,)
    seeds: NDArray[np.int64]  # indices of the labeled points
    labels: dict[str, NDArray[np.int64]] = field(default_factory=dict)  # method -> (n,) labels, -1 none
    accuracy: dict[str, float] = field(default_factory=dict)  # method -> accuracy on the unlabeled points
    curve: dict[str, list[float]] = field(default_factory=dict)  # optional series (x values under "x")
    note: str = ""
    flags: dict[str, NDArray[np.bool_]] = field(default_factory=dict)  # rule -> (n,) True where a point is flagged
    class_names: list[str] = field(default_factory=list)  # name of each true class, for legends
    measures: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> measure name -> value


def _accuracy(pred: NDArray[np.int64], truth: NDArray[np.int64], seeds: NDArray[np.int64]) -> float:
    unlabeled = np.ones(len(truth), dtype=bool)
    unlabeled[seeds] = False
    return float(np.mean(pred[unlabeled] == truth[unlabeled]))


def _mean(values: NDArray[np.float64] | NDArray[np.bool_]) -> float:
    """Mean of ``values``, 0 for none (e.g. the confidence of no wrong labels)."""
    return float(np.mean(values)) if values.size else 0.0


def _one_seed_per_class(truth: NDArray[np.int64], rng: np.random.Generator, per_class: int = 1) -> NDArray[np.int64]:
    return np.concatenate(
        [rng.choice(np.flatnonzero(truth == c), per_class, replace=False) for c in np.unique(truth)]
    ).astype(np.int64)


def _spread(X: NDArray[np.float64], truth: NDArray[np.int64], seeds: NDArray[np.int64], n_classes: int,
            n_neighbors: int = 10) -> NDArray[np.int64]:
    y = np.full(len(X), -1, dtype=np.int64)
    y[seeds] = truth[seeds]
    W = knn_graph(X, n_neighbors, metric="euclidean")
    return propagate(W, y, n_classes, alpha=0.99, n_bootstrap=0).label


def _supervised(X: NDArray[np.float64], truth: NDArray[np.int64], seeds: NDArray[np.int64]) -> NDArray[np.int64]:
    model = LogisticRegression(C=100.0).fit(X[seeds], truth[seeds])
    return model.predict(X).astype(np.int64)


def manifold_demo(noise: float = 0.08, n_samples: int = 400, shape: str = "moons", random_state: int = 0) -> Demo:
    """One seed per class on two moons (the assumption holds) or two overlapping blobs (it does not)."""
    rng = np.random.default_rng(random_state)
    if shape == "moons":
        X, truth = make_moons(n_samples, noise=noise, random_state=random_state)
    elif shape == "blobs":
        X, truth = make_blobs(n_samples, centers=[[0.0, 0.0], [1.5, 0.0]], cluster_std=1.0 + 4 * noise,
                              random_state=random_state)
    else:
        raise ValueError(f"shape must be 'moons' or 'blobs', got {shape!r}")
    truth = truth.astype(np.int64)
    seeds = _one_seed_per_class(truth, rng)
    demo = Demo(X, truth, seeds)
    demo.labels["label spreading"] = _spread(X, truth, seeds, 2)
    demo.labels["supervised (logistic regression)"] = _supervised(X, truth, seeds)
    demo.accuracy = {name: _accuracy(pred, truth, seeds) for name, pred in demo.labels.items()}
    demo.note = (
        "Points of one class form a connected, dense region: labels flow along it."
        if shape == "moons" else
        "The classes overlap: no low-density gap separates them, so the graph carries labels across."
    )
    return demo


def confirmation_bias_demo(rounds: int = 6, promote: int = 60, noise: float = 0.2, per_class: int = 2,
                           n_samples: int = 400, random_state: int = 0) -> Demo:
    """Self-training (promote the ``promote`` most confident propagated labels to seeds each round) vs honest
    spreading from the human seeds only, on two moons with ``per_class`` human labels per class.

    A promoted label is a seed from then on: confidence 1 and, like every seed, never in the review queue
    (:func:`labeler.core.review.review_queue` only offers propagated images). So each promoted mistake becomes
    certain and can no longer be found by review. Whether self-training ends more or less accurate depends on the
    draw; that its mistakes grow confident and leave review does not. With the defaults, over draws 0-99:
    self-training is less accurate by more than 0.05 in 43 draws and more accurate by as much in 12, but in every
    draw its wrong labels are more confident (mean 0.84-0.99 against honest's 0.53-0.76) and 21 or more of them are
    seeds, hidden from review.

    ``curve`` holds, per round (0 = before any promotion, the honest result), the accuracy of both, the mean
    confidence of their wrong labels and the share of self-training's wrong labels that are promoted seeds.
    ``measures`` holds, per method, the number of wrong labels, their mean confidence and how many of them are
    seeds (hidden from review).
    """
    rng = np.random.default_rng(random_state)
    X, truth = make_moons(n_samples, noise=noise, random_state=random_state)
    truth = truth.astype(np.int64)
    seeds = _one_seed_per_class(truth, rng, per_class)
    W = knn_graph(X, 10, metric="euclidean")
    y_human = np.full(len(X), -1, dtype=np.int64)
    y_human[seeds] = truth[seeds]
    unlabeled = y_human < 0
    honest = propagate(W, y_human, 2, alpha=0.99, n_bootstrap=0)
    y_self = y_human.copy()
    curve: dict[str, list[float]] = {
        "x": [], "accuracy (honest)": [], "accuracy (self-training)": [],
        "confidence of wrong labels (honest)": [], "confidence of wrong labels (self-training)": [],
        "share of wrong labels hidden from review (self-training)": [],
    }
    result = honest
    for r in range(rounds + 1):
        if r:
            candidates = np.flatnonzero((y_self < 0) & (result.label >= 0))
            best = candidates[np.argsort(-result.confidence[candidates], kind="stable")[:promote]]
            y_self[best] = result.label[best]  # the step labeler refuses to take
            result = propagate(W, y_self, 2, alpha=0.99, n_bootstrap=0)
        curve["x"].append(float(r))
        for name, res in (("honest", honest), ("self-training", result)):
            wrong = unlabeled & (res.label != truth)
            curve[f"accuracy ({name})"].append(_accuracy(res.label, truth, seeds))
            curve[f"confidence of wrong labels ({name})"].append(_mean(res.confidence[wrong]))
        wrong = unlabeled & (result.label != truth)
        curve["share of wrong labels hidden from review (self-training)"].append(_mean(y_self[wrong] >= 0))
    demo = Demo(X, truth, seeds, curve=curve)
    demo.labels = {"honest (human seeds only)": honest.label, "self-training": result.label}
    demo.accuracy = {name: _accuracy(pred, truth, seeds) for name, pred in demo.labels.items()}
    for name, res, y in (("honest (human seeds only)", honest, y_human), ("self-training", result, y_self)):
        wrong = unlabeled & (res.label != truth)
        demo.measures[name] = {
            "wrong labels": float(wrong.sum()),
            "mean confidence of the wrong labels": _mean(res.confidence[wrong]),
            "wrong labels hidden from review (now seeds)": float(np.sum(wrong & (y >= 0))),
        }
    demo.note = ("A promoted label is a seed from then on: confidence 1, and never offered for review again, so a "
                 "promoted mistake recruits its neighbours and nobody is shown it.")
    return demo


def mismatch_demo(hidden_class: bool = True, n_samples: int = 450, random_state: int = 0) -> Demo:
    """Three blobs; seeds for only two of them (``hidden_class``) or seeds drawn from one side of each class.

    ``flags["new-class flag"]`` is True where :func:`labeler.core.review.possible_new_class` flags a point.
    ``accuracy["share of known classes flagged"]`` is the false-alarm rate (with ``hidden_class`` False every class
    is known, so every flag is a false alarm); ``accuracy["share of unseen class flagged"]`` the hit rate.
    """
    rng = np.random.default_rng(random_state)
    # The third blob touches the other two, as classes do in real embeddings: the 10-NN graph is connected (in each
    # of draws 0-99), so spreading reaches every point of the unseen class and gives it A or B. Further apart the
    # graph falls into pieces in most draws and the unseen class stays unreached (grey), which is not the failure
    # this demo is about.
    X, truth = make_blobs(n_samples, centers=[[0.0, 0.0], [4.0, 0.0], [2.0, 3.5]], cluster_std=0.8,
                          random_state=random_state)
    truth = truth.astype(np.int64)
    if hidden_class:
        seeds = np.concatenate([rng.choice(np.flatnonzero(truth == c), 3, replace=False) for c in (0, 1)])
        note = "Nobody labeled class C: spreading gives its points A or B, the only classes it was shown."
    else:
        # Seeds only from the left-most edge of each class: the labeled sample is not representative.
        seeds = np.concatenate(
            [np.flatnonzero(truth == c)[np.argsort(X[truth == c, 0])[:3]] for c in range(3)]
        )
        note = ("Every class has labels, but only from its left edge: the rest is reached through unrepresentative "
                "examples. No class is new here, so every flagged point is a false alarm.")
    seeds = seeds.astype(np.int64)
    y = np.full(len(X), -1, dtype=np.int64)
    y[seeds] = truth[seeds]
    W = knn_graph(X, 10, metric="euclidean")
    result = propagate(W, y, 3, alpha=0.99, n_bootstrap=0)
    flags = possible_new_class(W, y)
    names = ["class A", "class B", "class C (never labeled)" if hidden_class else "class C"]
    demo = Demo(X, truth, seeds, labels={"label spreading": result.label}, note=note,
                flags={"new-class flag": np.asarray(flags, dtype=bool)}, class_names=names)
    demo.accuracy = {"label spreading": _accuracy(result.label, truth, seeds)}
    known = truth != 2 if hidden_class else np.ones(len(X), dtype=bool)
    if hidden_class:
        demo.accuracy["share of unseen class flagged"] = float(np.mean(flags[~known]))
    # Flags on classes that have labels are false alarms (with the toggle off, that is every flag).
    demo.accuracy["share of known classes flagged"] = float(np.mean(flags[known]))
    return demo


COMPLEXITY_KS = (3, 5, 10, 20, 40, 80, 160)


def complexity_demo(n_neighbors: tuple[int, ...] = COMPLEXITY_KS, noise: float = 0.05,
                    per_class: int = 1, n_samples: int = 400, random_state: int = 0, middle: int | None = None) -> Demo:
    """Accuracy of label spreading on two moons (``per_class`` seeds per class) against the number of neighbours.

    ``curve`` holds the accuracy and the share of unlabeled points no seed reaches, per ``n_neighbors``.
    ``labels`` holds the smallest, the best (or ``middle``, one of ``n_neighbors``) and the largest k. With the
    defaults both ends fail in each of draws 0-99 (accuracy at least 0.15 below the best k's): k = 3 leaves the
    graph in pieces that no seed reaches (17-100% of the points grey), k = 160 links each point to 40% of the data,
    across the gap between the moons, so labels leak into the other moon (15% or more of the points wrong).
    """
    rng = np.random.default_rng(random_state)
    X, truth = make_moons(n_samples, noise=noise, random_state=random_state)
    truth = truth.astype(np.int64)
    seeds = _one_seed_per_class(truth, rng, per_class)
    unlabeled = np.ones(len(X), dtype=bool)
    unlabeled[seeds] = False
    curve: dict[str, list[float]] = {"x": [], "accuracy": [], "share unreached (grey)": []}
    labels: dict[int, NDArray[np.int64]] = {}
    for k in n_neighbors:
        labels[k] = _spread(X, truth, seeds, 2, n_neighbors=k)
        curve["x"].append(float(k))
        curve["accuracy"].append(_accuracy(labels[k], truth, seeds))
        curve["share unreached (grey)"].append(float(np.mean(labels[k][unlabeled] < 0)))
    best = int(n_neighbors[int(np.argmax(curve["accuracy"]))])
    demo = Demo(X, truth, seeds, curve=curve)
    if middle is not None and middle not in labels:
        raise ValueError(f"middle must be one of {n_neighbors}, got {middle}")
    shown = dict.fromkeys([n_neighbors[0], best if middle is None else middle, n_neighbors[-1]])  # no repeats
    demo.labels = {f"k = {k}": labels[k] for k in shown}
    demo.accuracy = {name: _accuracy(pred, truth, seeds) for name, pred in demo.labels.items()}
    small, large = labels[n_neighbors[0]][unlabeled], labels[n_neighbors[-1]][unlabeled]
    truth_unlabeled = truth[unlabeled]
    unreached = float(np.mean(small < 0))
    leaked = float(np.mean((large >= 0) & (large != truth_unlabeled)))
    demo.note = " ".join([
        f"k = {n_neighbors[0]}: " + (
            f"the graph falls into pieces; {unreached:.0%} of the points sit in pieces with no seed (grey)."
            if unreached >= 0.1 else
            f"only {unreached:.0%} of the points sit in small pieces with no seed (grey)." if unreached
            else "every point is reached."),
        f"k = {best} does best.",
        f"k = {n_neighbors[-1]}: every point is linked to {n_neighbors[-1] / n_samples:.0%} of the data" + (
            f", across the gap between the moons; {leaked:.0%} of the points take the other moon's label (ringed)."
            if leaked else "; no label leaks across."),
    ])
    return demo

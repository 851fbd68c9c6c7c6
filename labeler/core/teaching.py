"""Live demonstrations for teachers: why label propagation works, and when it fails.

Each demo is a pure function over small synthetic 2-D data (fast enough to re-run on every slider move) that
returns the points, the labels each method gives and the accuracies, so a page only has to draw them.

- :func:`manifold_demo`: the manifold (cluster) assumption. On two moons one seed per class propagates along each
  moon; a supervised classifier on the same two seeds cuts straight across. With overlapping blobs the assumption
  fails and propagation loses its edge.
- :func:`confirmation_bias_demo`: self-training that promotes confident propagated labels to seeds locks in early
  mistakes; labeler's rule (only human labels are seeds) does not compound them.
- :func:`mismatch_demo`: distribution mismatch. When the seeds come from part of a class only, or a class has no
  seed at all, propagation confidently labels what it has never seen; the new-class flag catches part of it.
- :func:`complexity_demo`: the cost of complexity. Accuracy against the number of neighbours: more is not better.
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


def _accuracy(pred: NDArray[np.int64], truth: NDArray[np.int64], seeds: NDArray[np.int64]) -> float:
    unlabeled = np.ones(len(truth), dtype=bool)
    unlabeled[seeds] = False
    return float(np.mean(pred[unlabeled] == truth[unlabeled]))


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


def confirmation_bias_demo(rounds: int = 8, promote: int = 50, noise: float = 0.3, n_samples: int = 400,
                           random_state: int = 2) -> Demo:
    """Self-training (promote the ``promote`` most confident propagated labels to seeds each round) vs honest.

    ``curve`` holds, per round, the accuracy and mean confidence of both and the share of promoted seeds that were
    wrong. Self-training's confidence climbs whether or not its accuracy does: it cannot see its own mistakes.
    Depending on the draw (``random_state``) it helps or hurts; the default draw shows it hurting.
    """
    rng = np.random.default_rng(random_state)
    X, truth = make_moons(n_samples, noise=noise, random_state=random_state)
    truth = truth.astype(np.int64)
    seeds = _one_seed_per_class(truth, rng)
    W = knn_graph(X, 10, metric="euclidean")
    y_honest = np.full(len(X), -1, dtype=np.int64)
    y_honest[seeds] = truth[seeds]
    honest = propagate(W, y_honest, 2, alpha=0.99, n_bootstrap=0)
    y_self = y_honest.copy()
    curve: dict[str, list[float]] = {"x": [], "honest": [], "self-training": [], "wrong promoted seeds": [],
                                     "confidence (honest)": [], "confidence (self-training)": []}
    unlabeled = np.ones(len(X), dtype=bool)
    unlabeled[seeds] = False
    result = honest
    for r in range(rounds + 1):
        result = propagate(W, y_self, 2, alpha=0.99, n_bootstrap=0)
        curve["x"].append(float(r))
        curve["honest"].append(_accuracy(honest.label, truth, seeds))
        curve["self-training"].append(_accuracy(result.label, truth, seeds))
        promoted = np.flatnonzero((y_self >= 0) & ~np.isin(np.arange(len(X)), seeds))
        wrong = float(np.mean(y_self[promoted] != truth[promoted])) if promoted.size else 0.0
        curve["wrong promoted seeds"].append(wrong)
        curve["confidence (honest)"].append(float(np.mean(honest.confidence[unlabeled])))
        curve["confidence (self-training)"].append(float(np.mean(result.confidence[unlabeled])))
        candidates = np.flatnonzero((y_self < 0) & (result.label >= 0))
        best = candidates[np.argsort(-result.confidence[candidates])[:promote]]
        y_self[best] = result.label[best]  # the mistake labeler refuses to make
    demo = Demo(X, truth, seeds, curve=curve)
    demo.labels = {"honest (human seeds only)": honest.label, "self-training": result.label}
    demo.accuracy = {name: _accuracy(pred, truth, seeds) for name, pred in demo.labels.items()}
    demo.note = "Each promoted label is treated as truth in the next round, so an early error recruits neighbours."
    return demo


def mismatch_demo(hidden_class: bool = True, n_samples: int = 450, random_state: int = 0) -> Demo:
    """Three blobs; seeds for only two of them (``hidden_class``) or seeds drawn from one side of each class.

    ``flags["new-class flag"]`` is True where :func:`labeler.core.review.possible_new_class` flags a point.
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
        note = "Nobody labeled the third cluster: propagation must still give it one of the two known classes."
    else:
        # Seeds only from the left-most tenth of each class: the labeled sample is not representative.
        seeds = np.concatenate(
            [np.flatnonzero(truth == c)[np.argsort(X[truth == c, 0])[:3]] for c in range(3)]
        )
        note = "Seeds come from one edge of each class only; the rest is reached through unrepresentative examples."
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
    if hidden_class:
        in_hidden = truth == 2
        demo.accuracy["share of unseen class flagged"] = float(np.mean(flags[in_hidden]))
        demo.accuracy["share of known classes flagged"] = float(np.mean(flags[~in_hidden]))
    return demo


def complexity_demo(n_neighbors: tuple[int, ...] = (3, 5, 10, 20, 40, 80), noise: float = 0.1,
                    n_samples: int = 400, random_state: int = 0) -> Demo:
    """Accuracy of label spreading on two moons (one seed per class) against the number of neighbours."""
    rng = np.random.default_rng(random_state)
    X, truth = make_moons(n_samples, noise=noise, random_state=random_state)
    truth = truth.astype(np.int64)
    seeds = _one_seed_per_class(truth, rng)
    curve: dict[str, list[float]] = {"x": [], "accuracy": []}
    for k in n_neighbors:
        curve["x"].append(float(k))
        curve["accuracy"].append(_accuracy(_spread(X, truth, seeds, 2, n_neighbors=k), truth, seeds))
    best = int(n_neighbors[int(np.argmax(curve["accuracy"]))])
    demo = Demo(X, truth, seeds, curve=curve)
    demo.labels = {f"k = {best}": _spread(X, truth, seeds, 2, n_neighbors=best),
                   f"k = {n_neighbors[-1]}": _spread(X, truth, seeds, 2, n_neighbors=n_neighbors[-1])}
    demo.accuracy = {name: _accuracy(pred, truth, seeds) for name, pred in demo.labels.items()}
    demo.note = (
        "Too few neighbours break the graph into pieces that no seed reaches; too many add shortcuts between the "
        "moons and labels leak across."
    )
    return demo

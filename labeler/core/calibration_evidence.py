"""The evidence a calibration rests on without the truth: features of the spreading output, and answers.

Features (:func:`calibration_features`). The main one is the log-ratio of the top two normalised masses,
``log(p1 / p2)``: it ignores the background shared by all classes, is 0 at a tie between the top two, and on the
development sets (digits, MNIST, Fashion-MNIST; k = 1..10 labels per class) ``P(correct)`` is close to
``sigmoid(4 log(p1 / p2))``: logistic fits on the truth gave slopes of mostly 2.6-5 (0.6-7 in all) and intercepts
of -2 to 0.4. Optional extra columns: bootstrap stability and the number of graph hops to the nearest seed
(:func:`seed_hops`); neither improved calibration on those sets, so both are off by default. ``log C`` is constant
within a collection, so it would only duplicate the intercept.

Evidence (:func:`calibration_evidence`), without the truth:

- exact leave-one-out predictions of the human labels: features of the leave-one-out ``proba`` row, correct when its
  arg-max is the human label. A seed whose class has no other seed, or that no other seed reaches, is dropped: its
  leave-one-out prediction cannot be right for reasons no propagated image shares (with one label per class there is
  no usable leave-one-out evidence at all, and the prior alone speaks until audits arrive).
- blind audit answers: features of the audited image's current ``proba``, correct when its *current* label equals
  the answer.

Caveat: leave-one-out evidence is biased, in a direction that depends on the person. Seeds are chosen, not drawn:
diverse picks (cold start takes k-means centres) sit farther from each other than a typical image sits from its
nearest seed, and labeling the review queue's hard cases makes seeds harder than the rest (both pessimistic);
picking clear, typical examples makes them easier (optimistic; see "Seeds chosen, not drawn" in the benchmark). A
left-out seed also competes with one seed fewer of its own class (pessimistic, noticeable at 2-3 labels per class).
Audits are a random sample of the propagated images, so they are the unbiased evidence: :class:`Evidence` marks the
leave-one-out rows ``proxy`` so that :class:`~labeler.core.calibrate.ConfidenceCalibrator` can let the two disagree.
``seed_hops`` is an optional feature that lets the fit tell near-seed from far-from-seed predictions apart.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

# Default mapping P(correct) = sigmoid(DEFAULT_INTERCEPT + DEFAULT_SLOPE * log(p1 / p2)): 0 because a tie between
# the top two is a coin flip at best; 4 is the typical fitted slope at alpha = 0.99. Here, beside the features, not in
# labeler.core.calibrate: the simulated prior starts from it without importing scikit-learn.
DEFAULT_INTERCEPT = 0.0
DEFAULT_SLOPE = 4.0

# log(p1 / p2) is capped: a zero runner-up (two classes, one unreached) would otherwise give an infinite feature.
MAX_LOG_RATIO = 10.0


def calibration_features(
    proba: NDArray[Any],
    *,
    stability: NDArray[Any] | None = None,
    seed_hops: NDArray[Any] | None = None,
) -> NDArray[np.float64]:
    """Features of each image's spreading output that predict whether its label is right.

    Parameters
    ----------
    proba : float array of shape (n, n_classes)
        Normalised spreading scores (rows sum to one; an all-zero row, no seed reached, gives a tie).
    stability : float array of shape (n,), optional
        Bootstrap agreement in [0, 1]; added as ``stability - 1`` (0 for fully stable). Leave-one-out evidence has
        no stability, so use it only when every evidence row has one (audits only).
    seed_hops : array of shape (n,), optional
        Graph hops to the nearest seed (:func:`seed_hops`); added as ``log(hops)``, unreachable capped at 2 ** 10.

    Returns
    -------
    X : float64 array of shape (n, n_features)
        Column 0 is ``min(log(p1 / p2), MAX_LOG_RATIO)``, then the optional columns in the order above.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 1:
        raise ValueError(f"proba must have shape (n, n_classes), got {proba.shape}")
    n = proba.shape[0]
    if proba.shape[1] == 1:
        log_ratio = np.full(n, MAX_LOG_RATIO)  # one class: the label cannot be wrong for lack of a rival
    else:
        top2 = -np.partition(-proba, 1, axis=1)[:, :2]
        p1, p2 = top2[:, 0], top2[:, 1]
        ratio = np.divide(p1, p2, out=np.full(n, np.inf), where=p2 > 0)
        ratio[p1 <= 0] = 1.0
        log_ratio = np.minimum(np.log(ratio), MAX_LOG_RATIO)
    columns = [log_ratio]
    for name, extra in (("stability", stability), ("seed_hops", seed_hops)):
        if extra is None:
            continue
        extra = np.asarray(extra, dtype=np.float64)
        if extra.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {extra.shape}")
        if name == "stability":
            columns.append(np.clip(np.nan_to_num(extra, nan=1.0), 0.0, 1.0) - 1.0)
        else:
            columns.append(np.log(np.clip(extra, 1.0, 2.0**10)))
    return np.stack(columns, axis=1)


def seed_hops(W: sp.spmatrix | NDArray[Any], y: NDArray[Any]) -> NDArray[np.float64]:
    """Hops from every image to the nearest seed; for a seed, to the nearest *other* seed.

    The seed case is what leave-one-out sees: with the seed left out, the closest label is the next seed. One
    multi-source breadth-first search gives both: the nearest other seed of seed ``s`` is the shortest walk
    ``s -> u -> v -> source(v)`` over an edge ``(u, v)`` whose ends have different nearest seeds.

    Parameters
    ----------
    W : (n, n) symmetric affinity (only its sparsity pattern is used)
    y : int array of shape (n,), -1 for unlabeled

    Returns
    -------
    hops : float64 array of shape (n,), ``inf`` where no (other) seed is reachable
    """
    W = sp.csr_matrix(W)
    y = np.asarray(y)
    seeds = np.flatnonzero(y >= 0)
    n = W.shape[0]
    if seeds.size == 0:
        return np.full(n, np.inf)
    dist, _, source = dijkstra(W, directed=False, indices=seeds, unweighted=True, min_only=True,
                               return_predecessors=True)
    hops = np.asarray(dist, dtype=np.float64)
    coo = W.tocoo()
    u, v = coo.row, coo.col
    border = (source[u] >= 0) & (source[v] >= 0) & (source[u] != source[v])
    to_other = np.full(n, np.inf)
    np.minimum.at(to_other, source[u[border]], hops[u[border]] + 1.0 + hops[v[border]])
    hops[seeds] = to_other[seeds]
    return hops


class Evidence(NamedTuple):
    """Evidence rows for :meth:`ConfidenceCalibrator.fit`: ``model.fit(ev.X, ev.correct, ev.sample_weight,
    proxy=ev.proxy)``.

    Attributes
    ----------
    X : float64 (m, n_features); correct : bool (m,); sample_weight : float64 (m,)
    proxy : bool (m,), True for leave-one-out rows (they stand in for propagated images), False for audits
    """

    X: NDArray[np.float64]
    correct: NDArray[np.bool_]
    sample_weight: NDArray[np.float64]
    proxy: NDArray[np.bool_]


def calibration_evidence(
    y_seed: NDArray[Any],
    loo_label: NDArray[Any],
    loo_proba: NDArray[Any],
    *,
    audit_proba: NDArray[Any] | None = None,
    audit_label: NDArray[Any] | None = None,
    audit_answer: NDArray[Any] | None = None,
    loo_hops: NDArray[Any] | None = None,
    audit_hops: NDArray[Any] | None = None,
    loo_weight: float = 1.0,
    audit_weight: float = 1.0,
) -> Evidence:
    """Evidence rows for :meth:`ConfidenceCalibrator.fit` from leave-one-out predictions and blind audits.

    Parameters
    ----------
    y_seed : int array of shape (n_seeds,), the human label of each seed
    loo_label : int array of shape (n_seeds,), leave-one-out label (-1 where no other seed reaches the seed)
    loo_proba : float array of shape (n_seeds, n_classes), normalised leave-one-out mass
    audit_proba : float array of shape (n_audits, n_classes), the audited images' *current* ``proba``
    audit_label : int array of shape (n_audits,), their *current* labels (not the ones they had when audited)
    audit_answer : int array of shape (n_audits,), the labels the person gave blind
    loo_hops, audit_hops : arrays of shape (n_seeds,) and (n_audits,), optional :func:`seed_hops` feature; give both
        or neither
    loo_weight, audit_weight : weight of each row of either kind

    Returns
    -------
    Evidence
        Usable leave-one-out rows first (see the module docstring for which are dropped, marked ``proxy``), then the
        audits.
    """
    y_seed = np.asarray(y_seed, dtype=np.int64)
    loo_label = np.asarray(loo_label, dtype=np.int64)
    loo_proba = np.asarray(loo_proba, dtype=np.float64)
    if (audit_hops is None) != (loo_hops is None) and audit_proba is not None and y_seed.size:
        raise ValueError("give seed hops for both the leave-one-out and the audit rows, or for neither")
    n_classes = loo_proba.shape[1] if loo_proba.ndim == 2 else 0
    counts = np.bincount(y_seed, minlength=max(n_classes, 1)) if y_seed.size else np.zeros(1, dtype=np.int64)
    usable = (loo_label >= 0) & (counts[y_seed] >= 2) if y_seed.size else np.zeros(0, dtype=bool)
    parts_X: list[NDArray[np.float64]] = []
    parts_y: list[NDArray[np.bool_]] = []
    parts_w: list[NDArray[np.float64]] = []
    if usable.any():
        hops = None if loo_hops is None else np.asarray(loo_hops)[usable]
        parts_X.append(calibration_features(loo_proba[usable], seed_hops=hops))
        parts_y.append(loo_label[usable] == y_seed[usable])
        parts_w.append(np.full(int(usable.sum()), float(loo_weight)))
    if audit_proba is not None:
        if audit_label is None or audit_answer is None:
            raise ValueError("audit evidence needs audit_proba, audit_label and audit_answer together")
        audit_label = np.asarray(audit_label)
        audit_answer = np.asarray(audit_answer)
        if audit_label.shape != audit_answer.shape:
            raise ValueError(f"audit_label and audit_answer differ in shape: {audit_label.shape}, {audit_answer.shape}")
        if audit_label.size:
            parts_X.append(calibration_features(audit_proba, seed_hops=audit_hops))
            parts_y.append(audit_label == audit_answer)
            parts_w.append(np.full(audit_label.size, float(audit_weight)))
    n_loo = int(usable.sum())
    if not parts_X:
        width = 1 + (loo_hops is not None or audit_hops is not None)
        return Evidence(np.empty((0, width)), np.empty(0, dtype=bool), np.empty(0), np.empty(0, dtype=bool))
    weight = np.concatenate(parts_w)
    return Evidence(np.concatenate(parts_X), np.concatenate(parts_y), weight, np.arange(weight.size) < n_loo)

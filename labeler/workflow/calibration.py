"""Confidence as the probability that a propagated label is right: the calibration step of a refresh.

Label spreading's normalised top mass ranks images well but is not a probability (issue 10: labels 97 % right with a
mean "confidence" of 0.6). :mod:`labeler.core.calibrate` fits the scale; this module gives it the evidence a
workspace has without the truth: the exact leave-one-out predictions of the human labels on the graph in use (cached
per graph and labels, so a refresh after an audit costs no solve) and the stored blind audits, each scored against the
label its image has *now*, not the one it had when audited. Audits calibrate and estimate; they are never seeds.

The calibrator's prior mean is the mapping simulated on the graph itself (:mod:`labeler.core.simulated_prior`:
re-seed at random, with the current labels standing in for the truth), at every number of labels. Why not a fixed
default mapping: the scale of the feature ``log(p1 / p2)`` depends on the graph and on the number of classes (on
pets37's 37 breeds it averages 0.16, on ten digit classes about 1), so the slope that maps it to P(right) does too
(fits on the truth: about 4 on ten classes, 8-14 on 37 breeds, 15-18 on 2 species), and a prior held at the
default slope kept it near 4 against a hundred leave-one-out rows, whose features span too little to move it
(pets37, pretrained features, 20 draws: ECE 0.082/0.081 at 3/5 labels per breed with the default prior, 0.063/0.066
with the simulated one; species at 5 labels 0.037 -> 0.016, benchmarks/results/photo_calibration.md; on digits and
clothing within 0.004 either way). Where the simulation is wrong (errors the graph agrees with are invisible to it)
the leave-one-out rows and audits pull the fit away from it; how hard they must pull is the prior's width on the level,
which follows how far such simulations were off on nine sets and how much this one varies between re-seedings
(``SimulatedPrior.intercept_sd``).

The fitted model is not stored: the state keeps its evidence rows and prior, and :func:`calibrator_for` refits it
(the fit is deterministic and takes milliseconds), e.g. to draw the uncertainty of a promised precision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from labeler.core import diagnostics
from labeler.core.calibration_evidence import Evidence, calibration_evidence, calibration_features
from labeler.core.propagate import normalized_affinity
from labeler.core.simulated_prior import SimulatedPrior, simulated_prior
from labeler.io.artifacts import load_npz, save_npz_atomic
from labeler.workflow.state import PipelineState, state_dir
from labeler.workflow.workspace import Workspace

if TYPE_CHECKING:  # fitted in the functions that need it: `labeler status` never fits, and skips scikit-learn
    from labeler.core.calibrate import ConfidenceCalibrator

LooPredictions = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]


def human_labels(state: PipelineState) -> NDArray[np.int64]:
    """The seeds of ``state``: class index where the label is human, -1 elsewhere, shape (n,)."""
    return np.where(state.source == "human", state.label, -1).astype(np.int64)


def audited_rows(ws: Workspace, state: PipelineState) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rows and answers (class indices) of the stored blind audits of images that ``state`` propagates, oldest first.

    Left out: audits of images no longer on record, labeled by a person since (no longer a propagated label) or
    unreached now, and answers naming a class deleted since.
    """
    row_of = {int(image_id): row for row, image_id in enumerate(state.image_ids)}
    index_of = {int(class_id): k for k, class_id in enumerate(state.class_ids)}
    rows: list[int] = []
    answers: list[int] = []
    for audit in ws.store.audits():
        row = row_of.get(int(audit["image_id"]))
        answer = index_of.get(int(audit["class_id"]))
        if row is None or answer is None or state.source[row] != "propagated":
            continue
        rows.append(row)
        answers.append(answer)
    return np.array(rows, dtype=np.int64), np.array(answers, dtype=np.int64)


def loo_predictions(
    ws: Workspace, embedding_key: str, W: sp.spmatrix | NDArray[Any], y: NDArray[Any], class_ids: Sequence[int]
) -> LooPredictions:
    """:func:`labeler.core.diagnostics.loo_scores` on the graph of ``embedding_key``, updated label by label.

    What the seeds send each other (:class:`~labeler.core.diagnostics.SeedInfluence`, a few numbers per seed) is
    kept per graph in ``state/loo.npz``: after a label only the seeds added, removed or relabeled since are solved
    for (one sparse solve, not one per 64 seeds); a class added since keeps the others' sums.
    ``class_ids`` are the classes of ``y``'s indices. Returns ``(seeds, loo_label, loo_proba)``; empty with fewer
    than two human labels (nothing to leave out).
    """
    y = np.asarray(y, dtype=np.int64)
    n_classes = len(class_ids)
    n_seeds = int(np.sum(y >= 0))
    if n_seeds < 2 or n_classes < 1:
        return (np.flatnonzero(y >= 0).astype(np.int64), np.full(n_seeds, -1, dtype=np.int64),
                np.zeros((n_seeds, max(n_classes, 1))))
    s = ws.settings
    graph_key = f"{embedding_key}:k{s.n_neighbors}:a{s.alpha}:n{y.size}"
    path = state_dir(ws) / "loo.npz"
    previous = _stored_influence(path, graph_key, list(class_ids))
    S, component = _loo_graph(ws, graph_key, W)
    influence = diagnostics.seed_influence(S, y, n_classes, alpha=s.alpha, previous=previous)
    if previous is None or not _same_influence(previous, influence):
        save_npz_atomic(path, {"key": np.array(graph_key), "class_ids": np.asarray(class_ids, dtype=np.int64),
                               "seeds": influence.seeds, "labels": influence.labels, "own": influence.own,
                               "others": influence.others})
    return diagnostics.loo_from_influence(influence, component)


def _stored_influence(path: Path, graph_key: str, class_ids: list[int]) -> diagnostics.SeedInfluence | None:
    """The kept seed influence of ``graph_key`` in the column order of ``class_ids``; None when there is none.

    A class added since starts with an empty column; a class no longer listed loses its column and its seeds are
    dropped from what is kept (solved for again if they are seeds of another class now).
    """
    try:
        stored = load_npz(path)
        if str(stored["key"]) != graph_key:
            return None
        old_ids = [int(c) for c in stored["class_ids"]]
        seeds, labels, own, others = stored["seeds"], stored["labels"], stored["own"], stored["others"]
    except (OSError, ValueError, KeyError):
        return None  # no cache yet, or an unreadable or older one: computed from the start
    column = {class_id: k for k, class_id in enumerate(class_ids)}
    moved = np.array([column.get(class_id, -1) for class_id in old_ids], dtype=np.int64)
    if others.shape != (seeds.size, len(old_ids)) or labels.shape != seeds.shape or own.shape != seeds.shape:
        return None
    keep = moved[labels] >= 0
    remapped = np.zeros((int(keep.sum()), len(class_ids)))
    alive = moved >= 0
    remapped[:, moved[alive]] = others[keep][:, alive]
    return diagnostics.SeedInfluence(seeds[keep].astype(np.int64), moved[labels[keep]], own[keep].astype(np.float64),
                                     remapped)


def _same_influence(a: diagnostics.SeedInfluence, b: diagnostics.SeedInfluence) -> bool:
    return bool(np.array_equal(a.seeds, b.seeds) and np.array_equal(a.labels, b.labels))


def _loo_graph(ws: Workspace, graph_key: str, W: sp.spmatrix | NDArray[Any]) -> tuple[sp.csr_matrix, NDArray[Any]]:
    """The float64 normalised affinity and the connected components of the graph, kept in this process."""
    kept = ws.memo.get("loo-graph")
    if kept is None or kept[0] != graph_key:
        S = normalized_affinity(W, dtype=np.float64)  # the sums below want float64
        _, component = connected_components(S, directed=False)
        kept = (graph_key, (S, component))
        ws.memo["loo-graph"] = kept
    graph: tuple[sp.csr_matrix, NDArray[Any]] = kept[1]
    return graph


# The simulated prior is recomputed once the number of human labels has grown by this factor (or shrunk, or the
# labeled classes changed): a prior one label out of date is still a prior, and a simulation costs ~8 spreading solves
# (about 9 s at 100,000 images).
PRIOR_REFRESH_GROWTH = 1.25


def prior_for(
    ws: Workspace, embedding_key: str, W: sp.spmatrix | NDArray[Any], y: NDArray[Any], label: NDArray[Any],
    n_classes: int,
) -> SimulatedPrior:
    """The calibrator's prior mean: simulated on the graph (module docstring) once two classes have human labels,
    else the default mapping (``SimulatedPrior()``).

    Kept in ``state/simulated_prior.npz`` per graph and set of labeled classes, and reused until the number of human
    labels has grown by ``PRIOR_REFRESH_GROWTH`` since it was simulated.
    """
    y = np.asarray(y, dtype=np.int64)
    labeled = np.unique(y[y >= 0])
    if labeled.size < 2:
        return SimulatedPrior()
    n_labels = int(np.sum(y >= 0))
    classes = hashlib.sha1(labeled.tobytes()).hexdigest()[:12]
    key = f"{embedding_key}:k{ws.settings.n_neighbors}:a{ws.settings.alpha}:c{n_classes}:{classes}:n{y.size}"
    path = state_dir(ws) / "simulated_prior.npz"
    try:
        cached = load_npz(path)
        since = int(cached["n_labels"])
        if str(cached["key"]) == key and since <= n_labels <= PRIOR_REFRESH_GROWTH * since:
            coef, intercept, n_rows, agreement, spread = (float(v) for v in cached["values"])
            return SimulatedPrior(coef, intercept, int(n_rows), agreement, spread)
    except (OSError, ValueError, KeyError):
        pass  # no cache yet, or an unreadable or older one: compute
    prior = simulated_prior(W, y, label, n_classes, alpha=ws.settings.alpha, random_state=ws.settings.random_state)
    values = np.array([prior.coef, prior.intercept, prior.n_rows, prior.agreement, prior.spread])
    save_npz_atomic(path, {"key": np.array(key), "n_labels": np.array(n_labels), "values": values})
    return prior


def fit_calibrator(evidence: Evidence, prior: SimulatedPrior | None = None) -> ConfidenceCalibrator:
    """The app's calibrator, fitted on ``evidence`` (its prior mean alone when it is empty), centred on ``prior``
    (default: the default mapping)."""
    model = (prior or SimulatedPrior()).calibrator()
    return model.fit(evidence.X, evidence.correct, evidence.sample_weight, proxy=evidence.proxy)


def calibrate(
    score: NDArray[Any],
    proba: NDArray[Any],
    label: NDArray[Any],
    propagated: NDArray[Any],
    y: NDArray[Any],
    loo: LooPredictions,
    audit_rows: NDArray[Any] | None = None,
    audit_answers: NDArray[Any] | None = None,
    prior: SimulatedPrior | None = None,
) -> tuple[NDArray[np.float64], Evidence]:
    """Calibrated confidence of every image, and the evidence it was fitted on.

    Parameters
    ----------
    score : float array of shape (n,), the raw spreading confidence (1 for human labels, 0 where unreached)
    proba : float array of shape (n, n_classes), normalised spreading scores
    label : int array of shape (n,), current labels; propagated : bool array of shape (n,)
    y : int array of shape (n,), human labels (-1 elsewhere); loo : :func:`loo_predictions` for ``y``
    audit_rows, audit_answers : int arrays of shape (m,), audited rows (propagated ones) and the answers given
    prior : the calibrator's prior mean (:func:`prior_for`; default: the default mapping)

    Returns
    -------
    confidence : float64 array of shape (n,); ``score`` except at propagated rows, which get P(label is right)
        (``1 / n_classes`` while fewer than two classes have a human label)
    evidence : the leave-one-out rows (``proxy``) then the audits
    """
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    label = np.asarray(label, dtype=np.int64)
    seeds, loo_label, loo_proba = loo
    rows = np.zeros(0, dtype=np.int64) if audit_rows is None else np.asarray(audit_rows, dtype=np.int64)
    answers = np.zeros(0, dtype=np.int64) if audit_answers is None else np.asarray(audit_answers, dtype=np.int64)
    evidence = calibration_evidence(
        y[seeds], loo_label, loo_proba, audit_proba=proba[rows], audit_label=label[rows], audit_answer=answers,
    )
    return confidence_from(evidence, score, proba, propagated, y, prior), evidence


def confidence_from(
    evidence: Evidence, score: NDArray[Any], proba: NDArray[Any], propagated: NDArray[Any], y: NDArray[Any],
    prior: SimulatedPrior | None = None,
) -> NDArray[np.float64]:
    """``score`` with the propagated rows replaced by the confidence the calibrator fitted on ``evidence`` gives
    (chance, ``1 / n_classes``, while fewer than two classes have a human label); see :func:`calibrate`."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    confidence = np.array(score, dtype=np.float64)
    mask = np.asarray(propagated, dtype=bool)
    if proba.shape[1] >= 2 and np.unique(y[y >= 0]).size < 2:
        # One labeled class among several: every image gets that class with no rival mass, and every leave-one-out
        # prediction is "right", so neither says anything. Chance is the honest value until a second class has a label.
        confidence[mask] = 1.0 / proba.shape[1]
    elif mask.any():
        confidence[mask] = fit_calibrator(evidence, prior).predict_confidence(calibration_features(proba[mask]))
    return confidence


def calibrate_state(
    ws: Workspace, state: PipelineState, W: sp.spmatrix | NDArray[Any], previous: PipelineState | None = None
) -> None:
    """Replace ``state.confidence`` of propagated rows by P(label is right) and record the evidence (in place).

    ``state.score`` keeps the raw spreading confidence; isolated rows (``state.isolated``) get chance,
    ``1 / n_classes``. With ``previous`` (a state on the same graph, images and
    classes) the calibrator is refitted on its evidence instead: no solve, a provisional value to save at once, which
    the caller replaces by a call without ``previous`` once there is time for the new labels' leave-one-out
    predictions.
    """
    y = human_labels(state)
    n_classes = len(state.class_ids)
    propagated = state.source == "propagated"
    if n_classes == 0 or not propagated.any():
        return
    if previous is not None:
        evidence, prior = state_evidence(previous), state_prior(previous)
        state.confidence = confidence_from(evidence, state.score, state.proba, propagated, y, prior)
    else:
        loo = loo_predictions(ws, state.embedding_key, W, y, state.class_ids)
        prior = prior_for(ws, state.embedding_key, W, y, state.label, n_classes)
        rows, answers = audited_rows(ws, state)
        state.confidence, evidence = calibrate(state.score, state.proba, state.label, propagated, y, loo, rows,
                                               answers, prior)
    rows = np.flatnonzero(propagated)
    state.confidence[rows] = isolated_at_chance(state, rows, state.confidence[rows])
    state.evidence_X, state.evidence_correct, state.evidence_proxy = evidence.X, evidence.correct, evidence.proxy
    state.calibration_prior = asdict(prior) if prior.n_rows else {}


def isolated_at_chance(state: PipelineState, rows: NDArray[Any], confidence: NDArray[Any]) -> NDArray[np.float64]:
    """``confidence`` of ``rows`` (last axis; draws may come first) with the isolated rows among them at chance.

    An image unlike every other (``state.isolated``: no photo, or a kind no other image shows) is outside what the
    evidence covers: the labels' leave-one-out rows and the audits are images of the folder's kinds, and its own
    spreading scores only say which cluster it hangs on to (nine non-photos among pets37 got "dog" at 0.85-0.97).
    Nothing measures how often such labels are right, so it gets chance, ``1 / n_classes``, as with one labeled
    class. The one rule for the saved confidence, its posterior draws and the reliability plot's held-out values.
    """
    out = np.array(confidence, dtype=np.float64)
    isolated = state.isolated_rows()[np.asarray(rows, dtype=np.int64)]
    if isolated.any() and state.class_ids:
        out[..., isolated] = 1.0 / len(state.class_ids)
    return out


def state_evidence(state: PipelineState) -> Evidence:
    """The evidence ``state.confidence`` was calibrated on."""
    return Evidence(state.evidence_X, state.evidence_correct, np.ones(state.evidence_correct.size),
                    state.evidence_proxy)


def state_prior(state: PipelineState) -> SimulatedPrior:
    """The prior mean ``state.confidence`` was calibrated with (the default mapping unless one was simulated)."""
    stored = state.calibration_prior
    if not stored:
        return SimulatedPrior()
    return SimulatedPrior(float(stored["coef"]), float(stored["intercept"]), int(stored["n_rows"]),
                          float(stored["agreement"]), float(stored.get("spread", 0.0)))  # no spread before 2026-11-27


def calibrator_for(state: PipelineState) -> ConfidenceCalibrator:
    """The calibrator behind ``state.confidence``, refitted on the state's evidence and prior (the same fit,
    deterministic)."""
    return fit_calibrator(state_evidence(state), state_prior(state))


def one_labeled_class(state: PipelineState) -> bool:
    """True when several classes exist but fewer than two have a human label (confidence is then chance)."""
    return len(state.class_ids) >= 2 and np.unique(state.label[state.source == "human"]).size < 2


def evidence_counts(state: PipelineState) -> dict[str, int]:
    """{"loo": leave-one-out predictions of human labels, "audits": blind audits, "total"} behind the calibration."""
    proxy = np.asarray(state.evidence_proxy, dtype=bool)
    return {"loo": int(proxy.sum()), "audits": int((~proxy).sum()), "total": int(proxy.size)}


def held_out_audit_confidence(
    state: PipelineState, rows: NDArray[Any], answers: NDArray[Any], max_folds: int = 20
) -> NDArray[np.float64]:
    """Each audited image's calibrated confidence from a fit *without its own answer*, shape (m,).

    The audits are also calibration evidence, so their in-sample confidences would agree with them by construction;
    refitting without them (on the state's leave-one-out rows and the other audits) gives the reliability plot an
    honest, out-of-sample reading. Up to ``max_folds`` audits this is leave-one-audit-out; beyond, audit ``i`` is left
    out with the others of fold ``i % max_folds`` (a fit takes a few milliseconds: at most ``max_folds`` of them).
    ``rows`` must be propagated rows of ``state``; isolated ones get chance, as the app shows them
    (:func:`isolated_at_chance`).
    """
    rows = np.asarray(rows, dtype=np.int64)
    proxy = np.asarray(state.evidence_proxy, dtype=bool)
    X_proxy, right_proxy = state.evidence_X[proxy], state.evidence_correct[proxy]
    X_audit = calibration_features(state.proba[rows])
    right_audit = state.label[rows] == np.asarray(answers)
    fold = np.arange(rows.size) % max(int(max_folds), 1)
    out = np.empty(rows.size)
    for f in np.unique(fold):
        keep = fold != f
        X = np.concatenate([X_proxy, X_audit[keep]])
        right = np.concatenate([right_proxy, right_audit[keep]])
        is_proxy = np.arange(right.size) < right_proxy.size
        model = fit_calibrator(Evidence(X, right, np.ones(right.size), is_proxy), state_prior(state))
        out[~keep] = model.predict_confidence(X_audit[~keep])
    return isolated_at_chance(state, rows, out)

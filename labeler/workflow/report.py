"""How good the labels are, in numbers, each with its uncertainty: counts, the blind audit's estimate of the
propagated labels' accuracy (compared with their labels now), the reliability of the calibrated confidence, the
threshold for a target precision, the stopping verdict, and the leave-one-out diagnostics of propagation against a
supervised-only baseline and of the representation choice.

Everything is read from the workspace (the store is the source of truth) and returned as plain values and ready-made
sentences for the pages and the CLI to show.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.core import audit
from labeler.core.calibration_evidence import calibration_features
from labeler.core.intervals import wilson_interval
from labeler.core.reliability import calibration_error_floor, expected_calibration_error, reliability_curve
from labeler.core.stopping import BATCH_LABELS, stopping_verdict
from labeler.core.stopping import MIN_AUDITS as STOP_MIN_AUDITS
from labeler.core.threshold import kept_precision, pick_threshold
from labeler.store import ImageRecord
from labeler.store.classes import keys_for, names_with_keys
from labeler.store.jobs import succeeded_since
from labeler.wording import counted
from labeler.workflow import backbone, calibration, finetuning
from labeler.workflow.state import PipelineState, current_state, load_state, propagation_lag, refresh_due
from labeler.workflow.training import trained_checkpoint
from labeler.workflow.workspace import Workspace


def label_counts(ws: Workspace, state: PipelineState | None) -> dict[str, int]:
    """{"images", "human", "propagated", "none"}: readable images, human labels (live from the store), images
    propagated by ``state`` that have no human label since, and the rest (unreached)."""
    records = ws.records()
    labeled = set(ws.store.human_labels())
    human = sum(r.id in labeled for r in records)
    propagated = 0
    if state is not None:
        propagated = sum(
            1 for source, image_id in zip(state.source, state.image_ids, strict=True)
            if source == "propagated" and int(image_id) not in labeled
        )
    return {"images": len(records), "human": human, "propagated": propagated,
            "none": max(len(records) - human - propagated, 0)}


def dataset_summary(ws: Workspace) -> dict[str, Any]:
    """{"images": readable count, "unreadable": [(path, reason)], "duplicates": [(path, original)]}."""
    records = ws.store.images()
    return {
        "images": sum(r.status == "ok" for r in records),
        "unreadable": [(r.path, r.reason or "unreadable") for r in records if r.status == "unreadable"],
        "duplicates": [(r.path, r.duplicate_of) for r in records if r.duplicate_of and r.status == "ok"],
    }


# Fewest blind audits behind a headline accuracy, overall or for one class: fewer say too little (with 10, a 95 %
# Wilson interval is still about +-0.15 wide around 80 %).
MIN_AUDITS = 10


def audit_pairs(ws: Workspace, state: PipelineState | None = None) -> tuple[list[int], list[int], list[float]]:
    """(answers, current labels, calibrated confidences) of the stored blind audits, as class ids, oldest first.

    Each answer is compared with the label its image has in ``state`` (default: the current propagation) now, not
    with the label it had when audited. Audits of images not propagated now (labeled by a person since, or unreached)
    say nothing about propagated labels and are left out.
    """
    state = current_state(ws) if state is None else state
    if state is None:
        return [], [], []
    rows, answers = calibration.audited_rows(ws, state)
    return ([state.class_ids[int(a)] for a in answers], [state.class_ids[int(state.label[r])] for r in rows],
            [float(state.confidence[r]) for r in rows])


def _interval_text(low: float, high: float, n: int, what: str) -> str:
    """``what``: the singular noun of what the interval rests on ("blind audit")."""
    return f"95% interval {low:.0%}–{high:.0%}, {counted(n, what)}"


def accuracy_estimate(ws: Workspace, state: PipelineState | None = None) -> dict[str, Any] | None:
    """The blind-audit estimate of the propagated labels' accuracy now; None before any usable audit.

    Returns
    -------
    {"accuracy", "low", "high" (95% Wilson interval), "n" (audits), "enough" (at least ``MIN_AUDITS``),
     "per_class": [{"class", "audited", "precision", "95% low", "95% high"}] for classes (by current label) with at
     least ``MIN_AUDITS`` audits, "per_class_note": which classes have too few for their own estimate}
    """
    state = current_state(ws) if state is None else state
    if state is None:
        return None
    rows, answers = calibration.audited_rows(ws, state)
    if rows.size == 0:
        return None
    estimate = audit.audit_estimate(answers, state.label[rows], range(len(state.class_names)))
    per_class = []
    few = []
    for k, name in enumerate(state.class_names):
        precision, c_low, c_high, m = estimate.per_class[k]
        if m >= MIN_AUDITS:
            per_class.append({"class": name, "audited": m, "precision": precision, "95% low": c_low,
                              "95% high": c_high})
        elif m > 0:
            few.append(f"{name} ({m})")
    note = (f"Too few audits for a per-class estimate (fewer than {MIN_AUDITS}): {', '.join(few)}." if few else "")
    low, high = estimate.interval
    return {"accuracy": estimate.accuracy, "low": low, "high": high, "n": estimate.n,
            "enough": bool(estimate.n >= MIN_AUDITS), "per_class": per_class, "per_class_note": note}


def headline(ws: Workspace, state: PipelineState | None = None) -> dict[str, Any]:
    """How good are my labels, ready to show: {"value": the 95% interval, "88%–97%", or "—", "detail": one
    sentence, "estimate": :func:`accuracy_estimate`}. The value stays "—" ("not enough audits yet") below
    ``MIN_AUDITS`` audits."""
    state = current_state(ws) if state is None else state
    estimate = accuracy_estimate(ws, state)
    n = 0 if estimate is None else estimate["n"]
    if estimate is None or not estimate["enough"]:
        # Two counts meet here, and the stopping verdict shows the second: say both, each with what it is for.
        to_stop = min(STOP_MIN_AUDITS, state.counts["propagated"]) if state is not None else STOP_MIN_AUDITS
        stop = f" nor to decide when to stop ({n} of at least {to_stop})" if to_stop > MIN_AUDITS else ""
        return {"value": "—", "estimate": estimate,
                "detail": f"Not enough audits yet for an estimate ({n} of {MIN_AUDITS}){stop}: answer blind audits "
                          "of random propagated images (Review & audit, Blind audit; or `labeler audit`) to "
                          "estimate how many labels are right."}
    # The interval is the headline, not the point: "100%" after 15 right answers reads as a certainty that 15
    # answers cannot give (the walkthrough of 2026-11-28: 93.5% were right).
    low, high = estimate["low"], estimate["high"]
    right = int(round(estimate["accuracy"] * n))
    return {"value": f"{low:.0%}–{high:.0%}", "estimate": estimate,
            # The interval once, as the value beside it shows it, with what it rests on.
            "detail": f"Between {low:.0%} and {high:.0%} of propagated labels are right (95% interval from "
                      f"{counted(n, 'blind audit')}, {right} of them right)."}


def reliability(ws: Workspace, state: PipelineState | None = None) -> dict[str, Any] | None:
    """The reliability plot's data, out of sample; None before any usable audit.

    Each audited image's calibrated confidence comes from a calibration fitted without its own answer, then is
    binned (10 equal bins) against whether its current label matches the answer.

    Returns
    -------
    {"confidence", "accuracy", "count", "low", "high": one entry per non-empty bin (Wilson 95% interval),
     "ece": expected calibration error of those confidences, "ece_floor": what perfectly calibrated confidences would
     show on as many answers by chance, "n": audits, "note": what the plot shows}
    """
    state = current_state(ws) if state is None else state
    if state is None:
        return None
    rows, answers = calibration.audited_rows(ws, state)
    if rows.size == 0:
        return None
    confidence = calibration.held_out_audit_confidence(state, rows, answers)
    correct = state.label[rows] == answers
    curve = reliability_curve(confidence, correct)
    used = curve.count > 0
    ece = expected_calibration_error(confidence, correct)
    floor = calibration_error_floor(confidence)
    return {
        "confidence": curve.mean_confidence[used].tolist(), "accuracy": curve.accuracy[used].tolist(),
        "count": curve.count[used].tolist(), "low": curve.lower[used].tolist(), "high": curve.upper[used].tolist(),
        "ece": ece, "ece_floor": floor, "n": int(rows.size),
        "note": f"Calibrated confidence against the share right among {counted(rows.size, 'blind audit')}. Each "
                "audited image's confidence comes from a calibration fitted without its own answer, so the plot is "
                "not in-sample. "
                f"Calibration error {ece:.3f} (the average gap between confidence and the share right, weighted by "
                f"how many answers each bin holds); perfectly calibrated confidences would show about {floor:.3f} "
                f"on {rows.size} answers by chance alone, so only the excess over that is miscalibration.",
    }


def calibration_note(state: PipelineState, ws: Workspace | None = None) -> str:
    """Where ``confidence`` comes from, in one sentence; with ``ws``, also the blind audits answered (or dropped)
    since ``state`` was calibrated, which the next propagation takes into account."""
    if calibration.one_labeled_class(state):
        return (f"confidence: chance (1/{len(state.class_ids)}) until a second class has a human label: with one "
                "labeled class, label spreading cannot tell the classes apart")
    return _calibration_source(state) + ("" if ws is None else _audits_since(ws, state))


def _audits_since(ws: Workspace, state: PipelineState) -> str:
    """E.g. "; 2 more blind audits answered since are not in it yet: ..." (right after an answer the pages show the
    old state while the refresh runs); "" when the store holds as many blind audits of the images ``state``
    propagates as it was calibrated on."""
    change = len(calibration.audited_rows(ws, state)[0]) - calibration.evidence_counts(state)["audits"]
    them = "it" if abs(change) == 1 else "them"
    if change > 0:
        return (f"; {counted(change, 'more blind audit')} answered since "
                f"{'is' if change == 1 else 'are'} not in it yet: the next propagation takes {them} into account")
    if change < 0:
        return (f"; {-change} of those blind audits no longer count{'s' if change == -1 else ''} (a picture "
                f"replaced or a class deleted since): the next propagation leaves {them} out")
    return ""


def _calibration_source(state: PipelineState) -> str:
    counts = calibration.evidence_counts(state)
    simulated = bool(state.calibration_prior)
    prior = calibration.state_prior(state)
    # How far the simulation is trusted (SimulatedPrior.level_sd): what the answers have to outweigh.
    trust = (f"re-seeded at random, spreading agreed with your current labels on {prior.agreement:.0%} of images; "
             f"taken as good to about ±{100 * prior.level_sd:.0f} percentage points")
    if counts["total"] == 0:
        if simulated:
            return (f"confidence: mapping of the spreading score simulated on this graph ({trust}; no answers yet): "
                    "give a class a second label or audit some images to calibrate it")
        return ("confidence: default mapping of the spreading score (no evidence yet): give a class a second label "
                "or audit some images to calibrate it")
    start = f", starting from a mapping simulated on this graph ({trust})" if simulated else ""
    return (f"confidence calibrated from {counts['total']} answers ({counts['loo']} leave-one-out predictions of "
            f"human labels, {counted(counts['audits'], 'blind audit')}){start}")


def isolated_summary(n_isolated: int) -> str:
    """What the isolated images are and what the app does with them: one wording for status, Review and Export."""
    # "Sometimes an unusual photo": held out, the rule flagged 0.2-1.2 % of the photos of one-species folders (a
    # hairless cat among cats; benchmarks/results/isolation.md), so it must not claim they are no photos.
    return (f"{counted(n_isolated, 'image')} unlike every other image in the folder: often no photo at all (a blank, "
            "a flat colour, a screenshot), sometimes an unusual photo. Nothing like them was labeled, so their label "
            "is a guess: their confidence is chance, the export flags them `isolated`, and Review lists them first.")


def _confidence_draws(state: PipelineState, rows: NDArray[np.int64]) -> NDArray[np.float64]:
    """Posterior draws of the calibrated confidence of ``rows`` (bounded memory on large folders)."""
    n_draws = int(np.clip(4_000_000 // max(rows.size, 1), 20, 200))
    X = calibration_features(state.proba[rows])
    draws = calibration.calibrator_for(state).sample_confidence(X, n_draws=n_draws, random_state=0)
    return calibration.isolated_at_chance(state, rows, draws)


# Below this many kept labels the promise is said in labels, not shares: a share's interval over a handful is a few
# whole counts, and "97.9%-100%" for a single label reads as a precision no one label can have.
FEW_KEPT = 20


def _promise_text(expected: float, low: float, high: float, n_kept: int) -> str:
    if n_kept < FEW_KEPT:
        # The interval in whole labels, widened outward to hold the shares' interval.
        right_low, right_high = math.floor(low * n_kept + 1e-9), math.ceil(high * n_kept - 1e-9)
        span = f"{right_high}" if right_low == right_high else f"{right_low}–{right_high}"
        digits = 2 if n_kept < 10 else 1
        return f"expected {expected * n_kept:.{digits}f} of them right (95% interval {span} of {n_kept})"
    return f"expected {expected:.1%} right (95% interval {low:.1%}–{high:.1%})"


PROMISE_NOTE = ("The interval holds the share right you would find on checking every kept label, allowing for the "
                "calibration's own uncertainty and for chance among a finite number of labels.")


# Results kept per state and labels version (see _remembered), for how many arguments (targets, thresholds) each.
REMEMBERED_ARGS = 16


def _remembered(ws: Workspace, name: str, state: PipelineState, arg: float,
                compute: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
    """``compute()``, kept in ``ws.memo`` for this very state object, the store's labels version (human labels and
    blind audits) and ``arg``: the pages rerun on every widget change, and a threshold costs seconds at 100,000
    images. The pages load one shared object per saved state, so identity is the state's version; the memo holds
    the state, so its id cannot be reused by another while it is kept."""
    version = f"{id(state)}:{ws.store.labels_version()}"
    kept = ws.memo.get(name)
    if kept is None or kept[0] != version or kept[1][0] is not state:
        kept = (version, (state, {}))
        ws.memo[name] = kept
    results: dict[float, dict[str, Any] | None] = kept[1][1]
    if arg not in results:
        if len(results) >= REMEMBERED_ARGS:
            results.pop(next(iter(results)))
        results[arg] = compute()
    found = results[arg]
    return None if found is None else dict(found)


def threshold_choice(ws: Workspace, target: float, state: PipelineState | None = None) -> dict[str, Any] | None:
    """The lowest calibrated-confidence threshold whose kept propagated labels reach ``target`` precision with 95%
    confidence; None without a propagation.

    The promise (:func:`labeler.core.threshold.pick_threshold`): the kept labels' share right is expected to be
    ``expected`` with a 95% predictive interval ``[expected_low, expected_high]`` (the calibration's posterior draws
    plus the chance variation of a finite number of labels), and ``expected_low >= target``. This is what
    ``benchmarks/calibration.py`` checks. Audits above the threshold, compared with the current labels, show what was
    realised on them.

    Returns
    -------
    {"threshold" (None when no threshold reaches the target), "expected", "expected_low", "expected_high",
     "n_kept", "share_kept", "realised", "realised_low", "realised_high", "n_audited", "text"}
    """
    state = current_state(ws) if state is None else state
    if state is None:
        return None
    return _remembered(ws, "threshold-choice", state, float(target), lambda: _threshold_choice(ws, target, state))


def _threshold_choice(ws: Workspace, target: float, state: PipelineState) -> dict[str, Any] | None:
    propagated = np.flatnonzero(state.source == "propagated")
    if propagated.size == 0:
        return None
    known, correct = _audit_answers(ws, state, propagated)
    choice = pick_threshold(state.confidence[propagated], target, correct=correct, known=known,
                            confidence_draws=_confidence_draws(state, propagated))
    low, high = choice.expected_interval
    out: dict[str, Any] = {
        "threshold": choice.threshold, "expected": choice.expected_precision, "expected_low": low,
        "expected_high": high, "n_kept": choice.n_kept, "share_kept": choice.n_kept / propagated.size,
        "realised": choice.realised_precision, "realised_low": choice.interval[0],
        "realised_high": choice.interval[1], "n_audited": choice.n_evaluated,
    }
    if choice.threshold is None:
        out["text"] = (f"No threshold reaches {target:.1%} with 95% confidence: even the most confident propagated "
                       f"labels could plausibly be right less often than that ({calibration_note(state, ws)}). "
                       "Audit more images to narrow the calibration's uncertainty, or lower the target.")
        return out
    text = (f"Keep propagated labels with confidence ≥ {choice.threshold:.2f}: {choice.n_kept} of {propagated.size} "
            f"({out['share_kept']:.0%}), {_promise_text(choice.expected_precision, low, high, choice.n_kept)}, "
            f"so at least "
            f"{target:.1%} with 95% confidence. {PROMISE_NOTE} ({calibration_note(state, ws)}.)")
    out["text"] = text + _audits_above_text(choice.threshold, state.confidence[propagated], known, correct)
    return out


def _audit_answers(ws: Workspace, state: PipelineState, propagated: NDArray[np.int64]
                   ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """For each propagated row: whether a blind audit answered it, and whether its current label is the answer."""
    rows, answers = calibration.audited_rows(ws, state)
    position = {int(r): j for j, r in enumerate(propagated)}
    known = np.zeros(propagated.size, dtype=bool)
    correct = np.zeros(propagated.size, dtype=bool)
    for row, answer in zip(rows, answers, strict=True):
        known[position[int(row)]] = True
        correct[position[int(row)]] = state.label[row] == answer
    return known, correct


def _audits_above_text(threshold: float, confidence: NDArray[np.float64], known: NDArray[np.bool_],
                       correct: NDArray[np.bool_]) -> str:
    """The blind audits at or above ``threshold``, compared with the current labels: a check of the promise that
    does not rest on the calibration model (empty without such audits)."""
    above = known & (confidence >= threshold)
    n = int(above.sum())
    if n == 0:
        return ""
    hits = int(correct[above].sum())
    low, high = wilson_interval(hits, n)
    return f" Blind audits above it: {hits} of {n} right ({_interval_text(low, high, n, 'audit')})."


def precision_above(ws: Workspace, threshold: float, state: PipelineState | None = None) -> dict[str, Any] | None:
    """What keeping the propagated labels with calibrated confidence ≥ ``threshold`` gives, in the same terms as
    :func:`threshold_choice` (for a threshold the person picked: Export, ``labeler export --min-confidence``); None
    without a propagation.

    Returns
    -------
    {"threshold", "n_kept", "n_propagated", "expected", "expected_low", "expected_high" (NaN when none is kept),
     "text"}
    """
    state = current_state(ws) if state is None else state
    if state is None:
        return None
    return _remembered(ws, "precision-above", state, float(threshold),
                       lambda: _precision_above(ws, threshold, state))


def _precision_above(ws: Workspace, threshold: float, state: PipelineState) -> dict[str, Any] | None:
    propagated = np.flatnonzero(state.source == "propagated")
    if propagated.size == 0:
        return None
    estimate = kept_precision(state.confidence[propagated], threshold,
                              confidence_draws=_confidence_draws(state, propagated))
    low, high = estimate.interval
    out: dict[str, Any] = {"threshold": threshold, "n_kept": estimate.n_kept, "n_propagated": int(propagated.size),
                           "expected": estimate.expected, "expected_low": low, "expected_high": high}
    if estimate.n_kept == 0:
        out["text"] = f"No propagated label has confidence ≥ {threshold:.2f}."
    else:
        known, correct = _audit_answers(ws, state, propagated)
        # Audited images count among the propagated labels here (their propagated label is what is judged).
        among = f" (the {int(known.sum())} audited included)" if known.any() else ""
        out["text"] = (f"Propagated labels with confidence ≥ {threshold:.2f}: {estimate.n_kept} of {propagated.size}"
                       f"{among}, "
                       f"{_promise_text(estimate.expected, low, high, estimate.n_kept)}."
                       + _audits_above_text(threshold, state.confidence[propagated], known, correct))
    return out


def threshold_for(ws: Workspace, target: float, state: PipelineState | None = None) -> float | None:
    """The calibrated-confidence threshold of :func:`threshold_choice`, None when none reaches ``target``."""
    choice = threshold_choice(ws, target, state)
    return None if choice is None else choice["threshold"]


def suggested_threshold(ws: Workspace, state: PipelineState | None = None) -> float | None:
    """:func:`threshold_for` at the configured target precision, once a propagation exists and its calibration
    rests on some evidence (leave-one-out predictions or audits; the default mapping alone promises too little)."""
    state = current_state(ws) if state is None else state
    if state is None or calibration.evidence_counts(state)["total"] == 0 or calibration.one_labeled_class(state):
        return None
    return threshold_for(ws, ws.settings.target_precision, state)


def stopping(ws: Workspace, state: PipelineState | None = None) -> dict[str, Any]:
    """Whether to stop labeling: {"stop": bool, "text": the verdict and why, "audits_needed": int}.

    :func:`labeler.core.stopping.stopping_verdict` on the blind audit's interval and the share of propagated labels
    each of the last batches of human labels changed.
    """
    state = current_state(ws) if state is None else state
    if state is None:
        return {"stop": False, "audits_needed": 0,
                "text": "Keep going. Label a few images of each class first: nothing is propagated yet."}
    estimate = accuracy_estimate(ws, state)
    interval = (0.0, 1.0) if estimate is None else (estimate["low"], estimate["high"])
    n_audits = 0 if estimate is None else estimate["n"]
    verdict = stopping_verdict(interval, n_audits, [float(c) for c in state.recent_changes],
                               n_recent_labels=int(np.sum(state.recent_batch_sizes)) or None,
                               batch_labels=BATCH_LABELS,
                               population=state.counts["propagated"])
    return {"stop": verdict.stop, "text": verdict.reason, "audits_needed": verdict.audits_needed}


def can_diagnose(state: PipelineState) -> bool:
    """Leave-one-out needs at least two human labels and two classes."""
    return state.counts["human"] >= 2 and len(state.class_ids) >= 2


def loo_diagnostics(ws: Workspace, state: PipelineState) -> dict[str, Any] | None:
    """Leave-one-out accuracy on the human labels of propagation and of the supervised-only baseline (logistic
    regression on the same embeddings), each with its 95% Wilson interval; None when not measurable or the state's
    representation is gone.

    Returns
    -------
    {"propagation", "supervised": accuracies, "propagation_low", "propagation_high", "supervised_low",
     "supervised_high", "n": human labels, "propagation_detail", "supervised_detail": the interval in words}

    Costs one sparse solve per 64 seeds (cached with the calibration) plus a logistic regression per fold: cache it
    per labels version.
    """
    if not can_diagnose(state):
        return None
    # Imported here: scikit-learn and the representations cost seconds to import, which `labeler status` and the
    # other commands that never call this should not pay.
    from labeler.core import diagnostics as diag
    from labeler.workflow.representations import graph_for_state, representations

    try:
        W = graph_for_state(ws, state)
        X = representations(ws)[state.representation].X
    except (LookupError, KeyError):
        return None
    y = calibration.human_labels(state)
    seeds, loo_label, _ = calibration.loo_predictions(ws, state.embedding_key, W, y, state.class_ids)
    n = int(seeds.size)
    out: dict[str, Any] = {"n": n}
    # Both are held-out predictions of each human label once (leave-one-out, or 10 folds above 100 labels).
    for name, accuracy in (("propagation", float(np.mean(loo_label == y[seeds]))),
                           ("supervised", diag.supervised_baseline_loo(X, y, random_state=ws.settings.random_state))):
        low, high = wilson_interval(round(accuracy * n), n)
        out.update({name: accuracy, f"{name}_low": low, f"{name}_high": high,
                    f"{name}_detail": _interval_text(low, high, n, "human label")})
    return out


def representation_rows(state: PipelineState) -> list[dict[str, Any]]:
    """The candidates' leave-one-out propagation accuracy, each with its 95% Wilson interval and the number of
    human labels it rests on (best first); empty when nothing was compared."""
    n = int(state.representation_selection.get("n", 0)) or int(np.sum(state.source == "human"))
    rows = []
    for name, accuracy in sorted(state.representation_scores.items(), key=lambda item: -item[1]):
        low, high = wilson_interval(round(accuracy * n), n)
        rows.append({"representation": name, "leave-one-out accuracy": accuracy, "95% low": low, "95% high": high,
                     "labels": n, "in use": name == state.representation})
    return rows


def selection_estimate(state: PipelineState) -> dict[str, Any] | None:
    """What choosing the representation by leave-one-out is expected to give, corrected for the choice, ready to
    show: {"value", "detail"} plus the recorded numbers; None when there was no choice to make."""
    record = state.representation_selection
    if not record:
        return None
    detail = (f"Selection-corrected (nested leave-one-out): the share of human labels that the representation chosen "
              f"without them reproduces ({_interval_text(record['low'], record['high'], record['n'], 'label')}). "
              f"The winner's own leave-one-out score, {record['naive_accuracy']:.0%}, is the best of "
              f"{len(state.representation_scores)} noisy estimates and optimistic. It measures your labels, which "
              "you chose (bulk labels from the map's cluster cores are the easiest of all), not a random image: "
              "the propagated labels can be right less often. The blind audit on Home measures those.")
    return {**record, "value": f"{record['accuracy']:.0%}", "detail": detail}


def describe(state: PipelineState, audited_ids: Collection[int] = (), ws: Workspace | None = None) -> list[str]:
    """What a propagation gave, in lines; ``audited_ids`` (the images audited blind) are counted apart from the
    propagated ones, as the export and the app count them; with ``ws`` the calibration line says which audits
    answered since it does not include yet (:func:`calibration_note`)."""
    counts = state.counts
    audited = int(np.sum((state.source == "propagated")
                         & np.isin(state.image_ids, np.fromiter(audited_ids, dtype=np.int64, count=len(audited_ids)))))
    split = f", {audited} audited" if audited else ""
    lines = [
        f"representation: {state.representation} ({state.representation_reason})",
        f"{counts['human']} human, {counts['propagated'] - audited} propagated{split}, {counts['none']} unreached",
        calibration_note(state, ws),
    ]
    propagated = state.source == "propagated"
    if propagated.any():
        lines.append(f"mean confidence of propagated labels: {state.confidence[propagated].mean():.3f} "
                     "(expected share right)")
    return lines


def human_labels_line(ws: Workspace, images: list[ImageRecord]) -> str:
    """The count of human labels, saying how many sit on missing files: those are kept (they count again if the
    file comes back) but propagation leaves them out, so its count of human labels is smaller (a user trial saw 72
    here and 71 on the next line, unexplained)."""
    labels = ws.store.human_labels()
    missing = sum(1 for r in images if r.status == "missing" and r.id in labels)
    return f"{len(labels)}" + (f" ({missing} on missing files: kept, left out of propagation until the files come "
                               "back)" if missing else "")


def status_lines(ws: Workspace) -> list[str]:
    """``labeler status``: what is on record, how far propagation has caught up with the labels, how good the labels
    are and what runs. Only reads, so it works on a read-only workspace too."""
    images = ws.store.images()
    by_status = {s: sum(1 for r in images if r.status == s) for s in ("ok", "unreadable", "missing")}
    classes = ws.classes()
    keys = keys_for([c.hotkey for c in classes])
    read_only = " (read-only: nothing can be changed here)" if ws.store.read_only is not None else ""
    lines = [
        f"data: {ws.data_dir}",
        f"workspace: {ws.workspace_dir}{read_only}",
        f"images: {by_status['ok']} readable, {by_status['unreadable']} unreadable, {by_status['missing']} missing",
        # In natural name order (0, 1, ..., 9, not the order they were created in), each with the key that picks it.
        f"classes: {names_with_keys(zip([c.name for c in classes], keys, strict=True)) or '(none yet)'}",
        f"human labels: {human_labels_line(ws, images)}",
    ]
    records = ws.records()
    state = load_state(ws, records)
    lag = None if state is None else propagation_lag(ws, state, records)
    then = ""
    if state is None:
        if refresh_due(ws, state, records):
            lines.append(f"propagation: none yet: run `labeler propagate {ws.data_dir}`")
    elif lag is None:
        lines.append("propagation: up to date with the labels")
    elif lag.labels_behind:
        # Said first and plainly: the counts, accuracy and verdict below are the last propagation's, not the labels'.
        lines.append(f"propagation: OUT OF DATE: {lag.text()}; the counts, accuracy and verdict below are from then: "
                     "run `labeler propagate` (`labeler export` propagates first by itself)")
        then = " (out of date)"
    else:  # only blind audits since: the labels are current, the confidence's calibration is not
        lines.append(f"propagation: the labels are up to date, the calibration of their confidence is not "
                     f"({lag.text()}): run `labeler propagate` (`labeler export` propagates first by itself)")
    if state is not None:
        described = describe(state, [audit["image_id"] for audit in ws.store.audits()], ws)
        described[1] = f"last propagation{then}: {described[1]}"
        lines += described
        lines.append(f"accuracy{then}: {headline(ws, state)['detail']}")
        lines.append(f"stopping{then}: {stopping(ws, state)['text']}")
        n_isolated = int(state.isolated_rows().sum())
        if n_isolated:  # said, not only flagged in the CSV: often no photo at all, and their label is a guess
            lines.append(f"isolated{then}: {isolated_summary(n_isolated)}")
        lines.append(f"audits: {len(ws.store.audits())} answered; `labeler audit {ws.data_dir}` lists the next "
                     "images to answer blind (or the app's Review & audit page)")
    checkpoint = trained_checkpoint(ws)
    lines.append(f"encoder: {checkpoint if checkpoint else 'not trained'}")
    lines += backbone.status_lines(ws)
    if not backbone.backbone_problem(ws):
        lines += finetuning.status_lines(ws)
    recent = ws.store.jobs(limit=5)
    for job in recent:
        said = [f"{job.progress:.0%}", job.message, job.error or ""]
        if job.status == "failed" and succeeded_since(recent, job):
            said.append(f"(a later {job.kind} succeeded)")
        lines.append(f"job {job.id} {job.kind}: {job.status} " + " ".join(part for part in said if part))
    return lines

"""How good the labels are, in numbers: counts, the blind-audit accuracy estimate and the threshold it suggests,
and the leave-one-out diagnostics of propagation against a supervised-only baseline.

Everything is read from the workspace (the store is the source of truth) and returned as plain values for the
pages and the CLI to show.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labeler.core import audit
from labeler.core import diagnostics as diag
from labeler.workflow.representations import graph_for_state, representations
from labeler.workflow.state import PipelineState, current_state, is_stale, load_state
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


def audit_pairs(ws: Workspace) -> tuple[list[int], list[int], list[float]]:
    """(answers, propagated labels, confidences) of the stored blind audits, as class ids, oldest first.

    Audits of images that had no propagated label (``predicted_class_id`` NULL) say nothing about propagated
    accuracy and are left out.
    """
    rows = [a for a in ws.store.audits() if a["predicted_class_id"] is not None]
    return ([int(a["class_id"]) for a in rows], [int(a["predicted_class_id"]) for a in rows],
            [float(a["confidence"] or 0.0) for a in rows])


def accuracy_estimate(ws: Workspace) -> dict[str, Any] | None:
    """The blind-audit estimate of the propagated labels' accuracy; None before any audit.

    Returns
    -------
    {"accuracy", "low", "high" (95% Wilson interval), "n" (audits),
     "per_class": [{"class", "audited", "precision", "95% low", "95% high"}] for classes with audits,
     "reliability": {"confidence", "accuracy", "count", "low", "high"}: one entry per non-empty confidence bin}
    """
    true, predicted, confidence = audit_pairs(ws)
    if not true:
        return None
    classes = ws.store.classes()
    estimate = audit.audit_estimate(true, predicted, [c.id for c in classes])
    correct = np.equal(true, predicted)
    table = audit.reliability_table(np.asarray(confidence), correct)
    per_class = [
        {"class": c.name, "audited": estimate.per_class[c.id][3], "precision": estimate.per_class[c.id][0],
         "95% low": estimate.per_class[c.id][1], "95% high": estimate.per_class[c.id][2]}
        for c in classes if estimate.per_class[c.id][3] > 0
    ]
    return {
        "accuracy": estimate.accuracy, "low": estimate.interval[0], "high": estimate.interval[1], "n": estimate.n,
        "per_class": per_class,
        "reliability": {"confidence": [r.mean_confidence for r in table], "accuracy": [r.accuracy for r in table],
                        "count": [r.n for r in table], "low": [r.lo for r in table], "high": [r.hi for r in table]},
    }


def threshold_for(ws: Workspace, target: float) -> float | None:
    """The smallest confidence threshold whose audited precision reaches ``target`` with 95% confidence (lower
    Wilson bound), or None when the audits cannot promise it."""
    true, predicted, confidence = audit_pairs(ws)
    if not true:
        return None
    return audit.threshold_for_precision(np.asarray(confidence), np.equal(true, predicted), target)


def suggested_threshold(ws: Workspace) -> float | None:
    """:func:`threshold_for` at the configured target precision, once a propagation exists."""
    if current_state(ws) is None:
        return None
    return threshold_for(ws, ws.settings.target_precision)


def can_diagnose(state: PipelineState) -> bool:
    """Leave-one-out needs at least two human labels and two classes."""
    return state.counts["human"] >= 2 and len(state.class_ids) >= 2


def loo_diagnostics(ws: Workspace, state: PipelineState) -> dict[str, float] | None:
    """Leave-one-out accuracy on the human labels of propagation and of the supervised-only baseline (logistic
    regression on the same embeddings); None when not measurable or the state's representation is gone.

    Costs one sparse solve per 64 seeds plus a logistic regression per fold: cache it per labels version.
    """
    if not can_diagnose(state):
        return None
    try:
        W = graph_for_state(ws, state)
        X = representations(ws)[state.representation].X
    except (LookupError, KeyError):
        return None
    y = np.where(state.source == "human", state.label, -1)
    return {
        "propagation": diag.loo_accuracy(W, y, len(state.class_ids), alpha=ws.settings.alpha),
        "supervised": diag.supervised_baseline_loo(X, y, random_state=ws.settings.random_state),
    }


def describe(state: PipelineState) -> list[str]:
    counts = state.counts
    lines = [
        f"representation: {state.representation} ({state.representation_reason})",
        f"{counts['human']} human, {counts['propagated']} propagated, {counts['none']} unreached",
    ]
    propagated = state.source == "propagated"
    if propagated.any():
        lines.append(f"mean confidence of propagated labels: {state.confidence[propagated].mean():.3f}")
    return lines


def status_lines(ws: Workspace) -> list[str]:
    images = ws.store.images()
    by_status = {s: sum(1 for r in images if r.status == s) for s in ("ok", "unreadable", "missing")}
    lines = [
        f"data: {ws.data_dir}",
        f"workspace: {ws.workspace_dir}",
        f"images: {by_status['ok']} readable, {by_status['unreadable']} unreadable, {by_status['missing']} missing",
        f"classes: {', '.join(c.name for c in ws.classes()) or '(none yet)'}",
        f"human labels: {len(ws.store.human_labels())}",
    ]
    state = load_state(ws)
    if state is not None:
        lines += describe(state)
        if is_stale(ws, state):
            lines.append("labels changed since the last propagation: run `labeler propagate`")
    checkpoint = trained_checkpoint(ws)
    lines.append(f"encoder: {checkpoint if checkpoint else 'not trained (instant pixel representation in use)'}")
    for job in ws.store.jobs(limit=5):
        line = f"job {job.id} {job.kind}: {job.status} {job.progress:.0%} {job.message} {job.error or ''}"
        lines.append(line.rstrip())
    return lines

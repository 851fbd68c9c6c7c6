"""Teaching mode on real images: with a ground-truth CSV, the true accuracy of the propagated labels next to the
blind-audit estimate, and a learning curve (true accuracy against the number of human labels) recorded at every
propagation.

The ground truth is only ever compared with; it never becomes a label or a seed. Points are appended to
``<workspace>/state/learning_curve.json`` by :func:`labeler.pipeline.refresh` when a ground truth is configured.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.core.diagnostics import accuracy_against_truth
from labeler.io.artifacts import load_json, save_json_atomic
from labeler.workflow import report
from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace

FILE_NAME = "learning_curve.json"
# A long session appends one point per propagation; keep the file small.
MAX_POINTS = 2000


def curve_path(ws: Workspace) -> Path:
    return ws.workspace_dir / "state" / FILE_NAME


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def true_accuracy(state: PipelineState, truth: NDArray[np.integer[Any]]) -> dict[str, Any]:
    """True accuracy of the propagated labels of ``state`` against ``truth``.

    Parameters
    ----------
    state : a propagation (``label`` (N,) class index, ``source`` (N,) human / propagated / none)
    truth : (N,) true class index per row, -1 where unknown

    Returns
    -------
    {"n_labels": human labels, "accuracy": share of propagated images with a known truth that are labeled right
    (None when there are none), "n_evaluated": how many were compared, "coverage": share of the non-human images
    with a known truth that propagation reached (None when there are none)}
    """
    human = np.asarray(state.source == "human")
    propagated = np.asarray(state.source == "propagated")
    accuracy, n = accuracy_against_truth(state.label, truth, propagated)
    known_rest = (np.asarray(truth) >= 0) & ~human
    coverage = float(np.mean(propagated[known_rest])) if known_rest.any() else None
    return {"n_labels": int(human.sum()), "accuracy": _finite(accuracy), "n_evaluated": int(n),
            "coverage": coverage}


# truth_check values: what the map's "vs ground truth" colouring draws per image.
RIGHT, WRONG, NOT_CHECKED = 1, 0, -1


def truth_check(ws: Workspace, state: PipelineState) -> NDArray[np.int8] | None:
    """Teaching mode: per row of ``state``, ``RIGHT`` or ``WRONG`` for a propagated label the ground truth confirms
    or contradicts, ``NOT_CHECKED`` for human labels, unreached images and images the ground truth does not name (or
    names a class that does not exist). Classes are matched by id, so it holds while ``state`` lags a change of the
    classes. None without a ground truth."""
    names = ws.ground_truth_names()
    if not names:
        return None
    id_of = {c.name: c.id for c in ws.classes()}
    column_of = {class_id: k for k, class_id in enumerate(state.class_ids)}
    true_column = np.array([column_of.get(id_of.get(names.get(path, ""), -1), -1) for path in state.paths],
                           dtype=np.int64)
    out = np.full(len(state.paths), NOT_CHECKED, dtype=np.int8)
    checked = (state.source == "propagated") & (true_column >= 0)
    out[checked] = np.where(state.label[checked] == true_column[checked], RIGHT, WRONG)
    return out


def curve_point(ws: Workspace, state: PipelineState) -> dict[str, Any] | None:
    """The learning-curve point of ``state``: :func:`true_accuracy` plus the blind-audit estimate at this time
    ("audit": {"accuracy", "low", "high", "n"} or None). None without a ground truth or when ``state`` does not
    match the images on record."""
    records = ws.records()
    if len(records) != len(state.image_ids):
        return None
    truth = ws.ground_truth(records)
    if truth is None:
        return None
    point = true_accuracy(state, truth)
    estimate = report.accuracy_estimate(ws, state)
    point["audit"] = None if estimate is None else {k: estimate[k] for k in ("accuracy", "low", "high", "n")}
    point.update(labels_version=int(state.labels_version), embedding_key=state.embedding_key,
                 representation=state.representation, at=float(state.computed_at or time.time()))
    return point


def load_curve(ws: Workspace) -> list[dict[str, Any]]:
    """Every recorded point, oldest first (empty before the first)."""
    try:
        points = load_json(curve_path(ws))
    except (OSError, ValueError):
        return []
    return [p for p in points if isinstance(p, dict)] if isinstance(points, list) else []


def record_point(ws: Workspace, state: PipelineState) -> dict[str, Any] | None:
    """Append the point of ``state`` to the workspace's learning curve (atomic write) and return it.

    A second propagation of the same labels on the same embedding (e.g. to add the map) replaces its point
    rather than adding one. Does nothing (returns None) without a ground truth.
    """
    point = curve_point(ws, state)
    if point is None:
        return None
    points = load_curve(ws)
    if points and (points[-1].get("labels_version"), points[-1].get("embedding_key")) == (
        point["labels_version"], point["embedding_key"]
    ):
        points[-1] = point
    else:
        points.append(point)
    save_json_atomic(curve_path(ws), points[-MAX_POINTS:])
    return point


def curve_series(points: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The curve to draw: one point per number of human labels (the latest recorded wins, since labels can be
    undone and the encoder retrained), sorted by that number; points without a measurable accuracy are left out.

    Returns {"n_labels": [...], "accuracy": [...], "audit": [audit estimate or None, ...]}.
    """
    latest: dict[int, dict[str, Any]] = {}
    for point in points:
        if point.get("accuracy") is not None:
            latest[int(point["n_labels"])] = point
    ordered = [latest[n] for n in sorted(latest)]
    return {
        "n_labels": [int(p["n_labels"]) for p in ordered],
        "accuracy": [float(p["accuracy"]) for p in ordered],
        "audit": [(p.get("audit") or {}).get("accuracy") for p in ordered],
    }


def teaching_report(ws: Workspace, state: PipelineState) -> dict[str, Any] | None:
    """What the Model page shows in teaching mode; None without a ground truth.

    {"accuracy": true accuracy of the propagated labels of ``state`` (None when none is propagated), "n": images
    compared, "coverage", "estimate": :func:`labeler.workflow.report.accuracy_estimate` or None, "curve":
    :func:`curve_series` of the recorded points}.
    """
    records = ws.records()
    truth = ws.ground_truth(records)
    if truth is None or len(records) != len(state.image_ids):
        return None
    now = true_accuracy(state, truth)
    return {"accuracy": now["accuracy"], "n": now["n_evaluated"], "coverage": now["coverage"],
            "estimate": report.accuracy_estimate(ws, state), "curve": curve_series(load_curve(ws))}

"""Teaching mode: true accuracy against a ground truth, and the learning curve recorded at each propagation."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from labeler.config import Settings
from labeler.workflow import learning_curve
from labeler.workflow.refresh import refresh
from labeler.workflow.workspace import Workspace

CLASSES = ["red", "green", "blue"]


def write_truth(path: Path, truth: dict[str, str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(sorted(truth.items()))
    return path


def open_ws(root: Path, truth_path: Path | None) -> Workspace:
    ws = Workspace.open(Settings(root, n_bootstrap=3, ground_truth_path=truth_path))
    ws.import_folder()
    for name in CLASSES:
        ws.store.add_class(name)
    return ws


def label_true(ws: Workspace, truth: dict[str, str], per_class: int) -> None:
    ids = {c.name: c.id for c in ws.store.classes()}
    for name in CLASSES:
        rows = [r for r in ws.records() if truth[r.path] == name][:per_class]
        ws.store.set_labels([r.id for r in rows], ids[name], "tester")


def test_true_accuracy_counts_only_propagated_rows_with_a_known_truth() -> None:
    state = SimpleNamespace(label=np.array([0, 1, 1, -1, 0]),
                            source=np.array(["human", "propagated", "propagated", "none", "propagated"]))
    truth = np.array([0, 1, 0, 1, -1])
    result = learning_curve.true_accuracy(state, truth)  # type: ignore[arg-type]
    # Rows 1 and 2 are propagated with a known truth: one right. Of rows 1-3 (not human, truth known) two reached.
    assert result == {"n_labels": 1, "accuracy": 0.5, "n_evaluated": 2, "coverage": pytest.approx(2 / 3)}
    nothing = SimpleNamespace(label=np.array([0, -1]), source=np.array(["human", "none"]))
    assert learning_curve.true_accuracy(nothing, np.array([0, -1]))["accuracy"] is None  # type: ignore[arg-type]


def test_curve_series_keeps_the_latest_point_per_label_count() -> None:
    points: list[dict[str, Any]] = [
        {"n_labels": 3, "accuracy": 0.5, "audit": None},
        {"n_labels": 6, "accuracy": 0.8, "audit": {"accuracy": 0.75}},
        {"n_labels": 3, "accuracy": 0.6, "audit": None},  # after an undo: replaces the first
        {"n_labels": 1, "accuracy": None, "audit": None},  # nothing propagated: not drawn
    ]
    assert learning_curve.curve_series(points) == {"n_labels": [3, 6], "accuracy": [0.6, 0.8], "audit": [None, 0.75]}


def test_refresh_records_the_curve_in_teaching_mode(colour_folder: tuple[Path, dict[str, str]]) -> None:
    root, truth = colour_folder
    ws = open_ws(root, write_truth(root.parent / "truth.csv", truth))
    label_true(ws, truth, 1)
    state = refresh(ws, compute_map=False)
    refresh(ws, compute_map=False)  # same labels, same embedding: the point is replaced, not added
    points = learning_curve.load_curve(ws)
    assert len(points) == 1
    assert points[0]["n_labels"] == 3
    assert points[0]["accuracy"] == 1.0  # three separated colours
    assert points[0]["n_evaluated"] == len(truth) - 3
    assert points[0]["coverage"] == 1.0
    assert points[0]["audit"] is None
    # A blind audit, then more labels: a second point carrying the audit estimate. (Of an image the next labels
    # leave propagated: an audit of an image labeled by a person since is left out.)
    row = int(np.flatnonzero(state.source == "propagated")[-1])
    answer = state.class_ids[int(state.label[row])]
    ws.store.record_audit(ws.records()[row].id, answer, answer, float(state.confidence[row]), "tester")
    label_true(ws, truth, 2)
    state = refresh(ws, compute_map=False)
    points = learning_curve.load_curve(ws)
    assert [p["n_labels"] for p in points] == [3, 6]
    assert points[1]["audit"]["accuracy"] == 1.0
    assert points[1]["audit"]["n"] == 1
    shown = learning_curve.teaching_report(ws, state)
    assert shown is not None
    assert shown["accuracy"] == 1.0
    assert shown["estimate"]["n"] == 1
    assert shown["curve"]["n_labels"] == [3, 6]


def test_nothing_is_recorded_without_a_ground_truth(colour_folder: tuple[Path, dict[str, str]]) -> None:
    root, truth = colour_folder
    ws = open_ws(root, None)
    label_true(ws, truth, 1)
    state = refresh(ws, compute_map=False)
    assert not learning_curve.curve_path(ws).exists()
    assert learning_curve.record_point(ws, state) is None
    assert learning_curve.teaching_report(ws, state) is None
    assert learning_curve.load_curve(ws) == []


def test_truth_check_marks_each_propagated_label_right_or_wrong_by_class_id(
    colour_folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, truth = colour_folder
    lied = dict(truth)
    records = sorted(truth)
    # img_005 and img_006 are red, beyond the two labeled per class: propagated, and surely red.
    lied[records[5]] = "green"  # the ground truth disagrees here
    lied[records[6]] = "no such class"  # names no class: not checked
    ws = open_ws(root, write_truth(tmp_path / "truth.csv", lied))
    label_true(ws, truth, 2)
    state = refresh(ws, compute_map=False)
    check = learning_curve.truth_check(ws, state)
    assert check is not None
    rows = {path: i for i, path in enumerate(state.paths)}
    assert check[rows[records[5]]] == learning_curve.WRONG
    assert check[rows[records[6]]] == learning_curve.NOT_CHECKED
    human = state.source == "human"
    assert (check[human] == learning_curve.NOT_CHECKED).all()
    propagated = state.source == "propagated"
    assert int(np.sum(propagated & (check == learning_curve.NOT_CHECKED))) == 1  # img_006 alone
    assert int(np.sum(check == learning_curve.WRONG)) == 1  # colours propagate right: only the lie is wrong
    # Classes are matched by id, not by column: a state with its columns in another order gives the same answer.
    order = [2, 0, 1]
    shuffled = dataclasses.replace(state, class_ids=[state.class_ids[k] for k in order],
                                   label=np.where(state.label >= 0, np.argsort(order)[state.label], -1))
    np.testing.assert_array_equal(learning_curve.truth_check(ws, shuffled), check)
    assert learning_curve.truth_check(Workspace.open(Settings(root)), state) is None  # no ground truth: None

"""Numbers the app reports: counts, the dataset summary, the blind-audit estimate, its threshold, diagnostics."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labeler.config import Settings
from labeler.core import audit
from labeler.workflow import report
from labeler.workflow.refresh import refresh
from labeler.workflow.workspace import Workspace

CLASSES = ["red", "green", "blue"]


def class_id(ws: Workspace, name: str) -> int:
    return next(c.id for c in ws.store.classes() if c.name == name)


def label_true(ws: Workspace, truth: dict[str, str], per_class: int) -> None:
    for name in CLASSES:
        rows = [r for r in ws.records() if truth[r.path] == name][:per_class]
        ws.store.set_labels([r.id for r in rows], class_id(ws, name), "tester")


def test_counts_follow_new_human_labels_before_the_next_propagation(
    ws: Workspace, colour_folder: tuple[Path, dict[str, str]]
) -> None:
    n = len(colour_folder[1])
    assert report.label_counts(ws, None) == {"images": n, "human": 0, "propagated": 0, "none": n}
    label_true(ws, colour_folder[1], 2)
    state = refresh(ws, compute_map=False)
    assert report.label_counts(ws, state) == {"images": n, "human": 6, "propagated": n - 6, "none": 0}
    propagated_row = int((state.source == "propagated").argmax())
    ws.store.set_labels([ws.records()[propagated_row].id], class_id(ws, "red"), "tester")
    assert report.label_counts(ws, state) == {"images": n, "human": 7, "propagated": n - 7, "none": 0}


def test_dataset_summary_lists_unreadable_files_and_duplicates(colour_folder: tuple[Path, dict[str, str]]) -> None:
    root, truth = colour_folder
    (root / "broken.png").write_bytes(b"not an image")
    shutil.copy(root / "img_000.png", root / "zz_copy.png")
    ws = Workspace.open(Settings(root))
    ws.import_folder()
    summary = report.dataset_summary(ws)
    assert summary["images"] == len(truth) + 1
    assert [path for path, _ in summary["unreadable"]] == ["broken.png"]
    assert summary["duplicates"] == [("zz_copy.png", "img_000.png")]


def test_accuracy_estimate_is_the_share_of_audits_that_agree(ws: Workspace) -> None:
    assert report.accuracy_estimate(ws) is None
    red, green = class_id(ws, "red"), class_id(ws, "green")
    ids = [r.id for r in ws.records()]
    # (answer, propagated, confidence): 3 of 4 right; an audit of an image without a propagated label is ignored.
    for image_id, (answer, predicted, confidence) in zip(
        ids, [(red, red, 0.95), (red, red, 0.9), (green, green, 0.85), (green, red, 0.4), (red, None, 0.0)],
        strict=False,
    ):
        ws.store.record_audit(image_id, answer, predicted, confidence, "tester")
    assert report.audit_pairs(ws) == ([red, red, green, green], [red, red, green, red], [0.95, 0.9, 0.85, 0.4])
    estimate = report.accuracy_estimate(ws)
    assert estimate is not None
    assert estimate["accuracy"] == 0.75
    assert estimate["n"] == 4
    assert (estimate["low"], estimate["high"]) == pytest.approx(audit.wilson_interval(3, 4))
    per_class = {row["class"]: row for row in estimate["per_class"]}
    assert per_class["red"]["precision"] == pytest.approx(2 / 3)  # of three propagated red, two are red
    assert per_class["green"]["audited"] == 1
    assert "blue" not in per_class
    assert sum(estimate["reliability"]["count"]) == 4


def test_threshold_reaches_the_target_only_above_the_wrong_audits(ws: Workspace) -> None:
    assert report.threshold_for(ws, 0.9) is None
    red, green = class_id(ws, "red"), class_id(ws, "green")
    ids = [r.id for r in ws.records()]
    for image_id in ids[:40]:  # confident and right
        ws.store.record_audit(image_id, red, red, 0.9, "tester")
    for image_id in ids[40:50]:  # unsure and wrong
        ws.store.record_audit(image_id, green, red, 0.3, "tester")
    # Above 0.9: 40/40 right, Wilson lower bound 40 / (40 + 1.96^2) = 0.912 >= 0.9; with all 50 only 0.80 right.
    assert report.threshold_for(ws, 0.9) == 0.9
    assert report.threshold_for(ws, 0.95) is None
    assert report.suggested_threshold(ws) is None  # no propagation yet


def test_diagnostics_on_separated_colours_are_perfect(
    ws: Workspace, colour_folder: tuple[Path, dict[str, str]]
) -> None:
    label_true(ws, colour_folder[1], 3)
    state = refresh(ws, compute_map=False)
    assert report.can_diagnose(state)
    assert report.loo_diagnostics(ws, state) == {"propagation": 1.0, "supervised": 1.0}


def test_no_diagnostics_with_a_single_label(ws: Workspace, colour_folder: tuple[Path, dict[str, str]]) -> None:
    row = next(r for r in ws.records() if colour_folder[1][r.path] == "red")
    ws.store.set_labels([row.id], class_id(ws, "red"), "tester")
    state = refresh(ws, compute_map=False)
    assert not report.can_diagnose(state)
    assert report.loo_diagnostics(ws, state) is None

"""Numbers the app reports: counts, the dataset summary, the blind-audit estimate of the labels now, the threshold,
the leave-one-out diagnostics with their intervals."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from labeler.config import Settings
from labeler.core.intervals import wilson_interval
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


def test_accuracy_estimate_is_the_share_of_audits_that_agree_with_the_labels_now(
    ws: Workspace, colour_folder: tuple[Path, dict[str, str]]
) -> None:
    assert report.accuracy_estimate(ws) is None
    assert report.headline(ws)["value"] == "—"
    label_true(ws, colour_folder[1], 1)
    state = refresh(ws, compute_map=False)
    red, green, blue = (class_id(ws, name) for name in CLASSES)
    propagated = state.source == "propagated"
    rows = {name: [int(r) for r in np.flatnonzero(propagated & (state.label == k))] for k, name in enumerate(CLASSES)}
    ids = [r.id for r in ws.records()]
    # (row, answer): of three images propagated red, two are red; one green one is right. A fifth audit's image is
    # then labeled by a person: no longer a propagated label, it is left out.
    audits = [(rows["red"][0], red), (rows["red"][1], red), (rows["red"][2], green), (rows["green"][0], green),
              (rows["green"][1], green)]
    for row, answer in audits:
        ws.store.record_audit(ids[row], answer, None, None, "tester")
    ws.store.set_labels([ids[rows["green"][1]]], green, "tester")
    state = refresh(ws, compute_map=False)
    assert report.audit_pairs(ws)[:2] == ([red, red, green, green], [red, red, red, green])
    estimate = report.accuracy_estimate(ws)
    assert estimate is not None
    assert (estimate["accuracy"], estimate["n"], estimate["enough"]) == (0.75, 4, False)
    assert (estimate["low"], estimate["high"]) == pytest.approx(wilson_interval(3, 4))
    assert estimate["per_class"] == []  # no class has MIN_AUDITS audits yet
    assert "red (3), green (1)" in estimate["per_class_note"]
    shown = report.headline(ws)
    assert shown["value"] == "—"
    assert "Not enough audits yet for an estimate (4 of 10)" in shown["detail"]
    # Ten right answers about blue images: enough for a headline, and for blue's own estimate.
    for row in rows["blue"][:10]:
        ws.store.record_audit(ids[row], blue, None, None, "tester")
    shown = report.headline(ws)
    low, high = wilson_interval(13, 14)
    assert shown["value"] == f"{low:.0%}–{high:.0%}"  # the interval, not the point (93%), is the headline
    assert shown["detail"] == (f"Between {low:.0%} and {high:.0%} of propagated labels are right (95% interval from "
                               "14 blind audits, 13 of them right).")  # the interval said once
    per_class = {row["class"]: row for row in shown["estimate"]["per_class"]}
    assert list(per_class) == ["blue"]
    assert (per_class["blue"]["precision"], per_class["blue"]["audited"]) == (1.0, 10)
    assert per_class["blue"]["95% low"] == pytest.approx(wilson_interval(10, 10)[0])


def test_an_audit_answered_with_a_class_added_since_counts_as_a_wrong_label(
    ws: Workspace, colour_folder: tuple[Path, dict[str, str]]
) -> None:
    """The Review page's advice for an image of a class not on the list: add the class and answer with it."""
    label_true(ws, colour_folder[1], 1)
    state = refresh(ws, compute_map=False)
    ids = [r.id for r in ws.records()]
    propagated = [int(r) for r in np.flatnonzero(state.source == "propagated")]
    for row in propagated[:3]:  # three answers that agree with the labels
        ws.store.record_audit(ids[row], state.class_ids[state.label[row]], None, None, "tester")
    purple = ws.store.add_class("purple").id  # no label has it: nothing can be propagated purple
    ws.store.record_audit(ids[propagated[3]], purple, None, None, "tester")
    refresh(ws, compute_map=False)  # what the answer asks for (the Review page requests it)
    estimate = report.accuracy_estimate(ws)
    assert estimate is not None
    assert (estimate["accuracy"], estimate["n"]) == (0.75, 4)


def test_threshold_keeps_the_labels_whose_calibrated_confidence_reaches_the_target(
    ws: Workspace, colour_folder: tuple[Path, dict[str, str]]
) -> None:
    assert report.threshold_for(ws, 0.9) is None  # no propagation yet
    assert report.suggested_threshold(ws) is None
    label_true(ws, colour_folder[1], 1)
    state = refresh(ws, compute_map=False)
    assert report.suggested_threshold(ws) is None  # one label per class: no calibration evidence yet
    label_true(ws, colour_folder[1], 2)
    state = refresh(ws, compute_map=False)
    propagated = state.source == "propagated"
    # Three separated colours: every propagated label is certain, so every one is kept at any target.
    choice = report.threshold_choice(ws, 0.95)
    assert choice is not None
    assert choice["n_kept"] == int(propagated.sum())
    assert choice["threshold"] == report.suggested_threshold(ws) == float(state.confidence[propagated].min())
    # (The mean can sit below the interval's lower end: a few posterior draws with a low slope pull the mean, not the
    # 2.5th percentile.)
    assert 0.95 <= choice["expected_low"] <= choice["expected_high"]
    assert choice["expected"] >= 0.95
    assert choice["text"].startswith("Keep propagated labels with confidence ≥")
    assert "at least 95.0% with 95% confidence" in choice["text"]
    # A threshold picked by hand is described in the same terms.
    kept = report.precision_above(ws, choice["threshold"], state)
    assert kept is not None
    assert kept["n_kept"] == choice["n_kept"]
    assert kept["expected"] == pytest.approx(choice["expected"])
    assert kept["expected_low"] == pytest.approx(choice["expected_low"], abs=1e-6)
    assert f"{choice['n_kept']} of {int(propagated.sum())}, expected" in kept["text"]
    assert report.precision_above(ws, 1.01, state)["n_kept"] == 0


def test_a_threshold_shows_the_blind_audits_above_it(ws: Workspace, colour_folder: tuple[Path, dict[str, str]]) -> None:
    label_true(ws, colour_folder[1], 2)
    state = refresh(ws, compute_map=False)
    propagated = np.flatnonzero(state.source == "propagated")
    truth = colour_folder[1]
    paths = {int(r.id): r.path for r in ws.records()}
    # Four audits answered with the truth and one answered wrongly, all above any threshold (every label is certain).
    for j, row in enumerate(propagated[:5]):
        image_id = int(state.image_ids[row])
        right = truth[paths[image_id]]
        answer = right if j < 4 else next(name for name in CLASSES if name != right)
        ws.store.record_audit(image_id, class_id(ws, answer), None, None, "tester")
    state = refresh(ws, compute_map=False)
    threshold = float(state.confidence[state.source == "propagated"].min())
    low, high = wilson_interval(4, 5)
    check = f"Blind audits above it: 4 of 5 right (95% interval {low:.0%}–{high:.0%}, 5 audits)."
    # The same model-free check beside the promise, for a threshold picked by hand (Export, --min-confidence) and for
    # the suggested one.
    kept = report.precision_above(ws, threshold, state)
    assert kept is not None
    assert kept["text"].endswith(check)
    assert "Blind audits above it" not in report.precision_above(ws, 1.0, state)["text"]
    choice = report.threshold_choice(ws, 0.5, state)
    assert choice is not None
    assert choice["text"].endswith(check)


def test_threshold_is_computed_once_per_state_labels_and_target(
    ws: Workspace, colour_folder: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page rerun that changes nothing does not pick the threshold again; a new audit, target or state does."""
    label_true(ws, colour_folder[1], 2)
    state = refresh(ws, compute_map=False)
    calls: list[float] = []
    real = report.pick_threshold

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(float(args[1]))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(report, "pick_threshold", counted)
    first = report.threshold_choice(ws, 0.95, state)
    assert report.threshold_choice(ws, 0.95, state) == first
    assert report.suggested_threshold(ws, state) == first["threshold"]  # the configured target is 0.95 too
    assert calls == [0.95]
    first["text"] = "changed by a caller"  # a copy: the kept result stays as computed
    assert report.threshold_choice(ws, 0.95, state)["text"].startswith("Keep propagated labels")
    report.threshold_choice(ws, 0.9, state)
    report.threshold_choice(ws, 0.95, state)
    assert calls == [0.95, 0.9]  # each target once
    row = int(np.flatnonzero(state.source == "propagated")[0])
    ws.store.record_audit(int(state.image_ids[row]), state.class_ids[int(state.label[row])], None, None, "tester")
    report.threshold_choice(ws, 0.95, state)
    assert calls == [0.95, 0.9, 0.95]  # an audit is new evidence
    report.threshold_choice(ws, 0.95, refresh(ws, compute_map=False))
    assert calls == [0.95, 0.9, 0.95, 0.95]  # so is a new state


def test_diagnostics_on_separated_colours_are_perfect(
    ws: Workspace, colour_folder: tuple[Path, dict[str, str]]
) -> None:
    label_true(ws, colour_folder[1], 3)
    state = refresh(ws, compute_map=False)
    assert report.can_diagnose(state)
    diagnostics = report.loo_diagnostics(ws, state)
    assert diagnostics is not None
    assert (diagnostics["propagation"], diagnostics["supervised"], diagnostics["n"]) == (1.0, 1.0, 9)
    assert (diagnostics["propagation_low"], diagnostics["propagation_high"]) == pytest.approx(wilson_interval(9, 9))
    assert diagnostics["propagation_detail"] == "95% interval 70%–100%, 9 human labels"


def test_no_diagnostics_with_a_single_label(ws: Workspace, colour_folder: tuple[Path, dict[str, str]]) -> None:
    row = next(r for r in ws.records() if colour_folder[1][r.path] == "red")
    ws.store.set_labels([row.id], class_id(ws, "red"), "tester")
    state = refresh(ws, compute_map=False)
    assert not report.can_diagnose(state)
    assert report.loo_diagnostics(ws, state) is None


def test_a_promise_over_a_handful_of_labels_is_said_in_labels():
    # One label kept at 0.979: no share between 97.9 % and 100 % exists for one label; it is right or it is not.
    assert report._promise_text(0.979, 0.979, 1.0, 1) == "expected 0.98 of them right (95% interval 0–1 of 1)"
    assert report._promise_text(0.95, 0.8, 1.0, 10) == "expected 9.5 of them right (95% interval 8–10 of 10)"
    assert report._promise_text(0.95, 0.9, 1.0, 12) == "expected 11.4 of them right (95% interval 10–12 of 12)"
    assert report._promise_text(0.95, 0.93, 0.97, 200) == "expected 95.0% right (95% interval 93.0%–97.0%)"


def test_counts_are_said_in_the_singular_for_one():
    assert report._interval_text(0.2, 1.0, 1, "audit") == "95% interval 20%–100%, 1 audit"

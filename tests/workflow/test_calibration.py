"""Confidence as P(label is right) in a workspace: calibrated at refresh, exported next to the raw score, audits
scored against the labels images have now, and the label batches the stopping rule looks at."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeler.cli import main
from labeler.config import Settings
from labeler.core.calibration_evidence import calibration_features
from labeler.core.stopping import BATCH_LABELS
from labeler.workflow import calibration, export, report
from labeler.workflow.refresh import refresh
from labeler.workflow.workspace import Workspace

RED, BLUE = np.array([220, 30, 30]), np.array([30, 40, 220])


def make_gradient_folder(root: Path, n: int = 80, seed: int = 0) -> np.ndarray:
    """Two blobs that touch: image i is red mixed with blue in proportion t_i = i / (n - 1), plus noise, so the
    kNN graph is connected and only the images near t = 0.5 are ambiguous. Returns t (class blue where t > 0.5)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    t = np.linspace(0.0, 1.0, n)
    for i, mix in enumerate(t):
        pixels = np.clip((1 - mix) * RED + mix * BLUE + rng.normal(0, 18, size=(20, 20, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(root / f"img_{i:03d}.png")
    return t


@pytest.fixture
def blobs(tmp_path: Path) -> tuple[Workspace, np.ndarray]:
    """The two-blob workspace with three human labels at each end."""
    root = tmp_path / "data"
    t = make_gradient_folder(root)
    ws = Workspace.open(Settings(root, n_bootstrap=3))
    ws.import_folder()
    ws.store.label_paths([(f"img_{i:03d}.png", "red") for i in (0, 8, 17)]
                         + [(f"img_{i:03d}.png", "blue") for i in (79, 71, 62)], "tester")
    return ws, t


def class_index(ws: Workspace, name: str) -> int:
    return [c.name for c in ws.classes()].index(name)


def test_leave_one_out_kept_between_refreshes_equals_the_exact_one(blobs: tuple[Workspace, np.ndarray]) -> None:
    """Labels added, removed and changed, and a class added, update the kept seed influence; the predictions stay
    the exact ones."""
    from labeler.core import diagnostics
    from labeler.workflow.representations import graph_for_state

    ws, _ = blobs
    refresh(ws, compute_map=False)
    ws.store.add_class("green")
    ws.store.label_paths([("img_040.png", "green"), ("img_041.png", "green"), ("img_030.png", "red")], "tester")
    for _ in range(2):
        state = refresh(ws, compute_map=False)
        W = graph_for_state(ws, state)
        y = calibration.human_labels(state)
        kept = calibration.loo_predictions(ws, state.embedding_key, W, y, state.class_ids)
        exact = diagnostics.loo_scores(W, y, len(state.class_ids), alpha=ws.settings.alpha)
        for a, b in zip(kept, exact, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)
        assert len(kept[0]) == int(np.sum(y >= 0))
        ws.store.add_class("yellow")  # the kept sums get an empty column
        ws.store.set_labels([ws.records()[41].id], None, "tester")
        ws.store.label_paths([("img_008.png", "blue")], "tester")


def test_calibrated_confidence_is_high_for_clear_points_and_exported_next_to_the_score(
    blobs: tuple[Workspace, np.ndarray],
) -> None:
    ws, t = blobs
    state = refresh(ws, compute_map=False)
    propagated = state.source == "propagated"
    clear = propagated & (np.abs(t - 0.5) > 0.2)
    # The raw top mass of a two-class spread stays below 1 everywhere; the calibrated value says how likely the label
    # is right, which far from the boundary is nearly certain.
    assert np.all(state.confidence[clear] > 0.95)
    assert np.all(state.score[propagated] < 1.0)
    assert np.mean(state.confidence[clear]) > np.mean(state.score[clear])
    # Calibration keeps the ranking: the least certain image by score is the least certain by confidence.
    rows = np.flatnonzero(propagated)
    assert rows[np.argmin(state.confidence[rows])] == rows[np.argmin(state.score[rows])]
    # Human labels stay certain; the calibration rests on the leave-one-out predictions of the six human labels.
    np.testing.assert_array_equal(state.confidence[state.source == "human"], 1.0)
    assert calibration.evidence_counts(state) == {"loo": 6, "audits": 0, "total": 6}
    assert "6 leave-one-out predictions" in report.calibration_note(state)
    frame = export.export_frame(ws, state=state)
    assert list(frame.columns[3:5]) == ["confidence", "score"]
    by_path = frame.set_index("path")
    for row in rows:
        exported = by_path.loc[state.paths[row]]
        assert exported["confidence"] == pytest.approx(state.confidence[row], abs=1e-6)
        assert exported["score"] == pytest.approx(state.score[row], abs=1e-6)


def test_min_confidence_filters_on_the_calibrated_value(
    blobs: tuple[Workspace, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, _ = blobs
    state = refresh(ws, compute_map=False)
    propagated = np.flatnonzero(state.source == "propagated")
    threshold = 0.985  # above every raw score of a clear image (about 0.98), below their calibrated confidence
    assert np.sum(state.score[propagated] < threshold) > np.sum(state.confidence[propagated] < threshold)
    out_path = tmp_path / "labels.csv"
    assert main(["export", str(ws.data_dir), "-o", str(out_path), "--min-confidence", str(threshold)]) == 0
    with out_path.open(newline="", encoding="utf-8") as handle:
        exported = {row["path"]: row for row in csv.DictReader(handle)}
    flagged = {path for path, row in exported.items() if "below-threshold" in row["flagged"]}
    assert flagged == {state.paths[r] for r in propagated if state.confidence[r] < threshold}
    assert all(exported[state.paths[r]]["label"] for r in propagated)  # flagged rows keep their label
    # The command says what the threshold keeps in the same terms as the Review page's picker.
    printed = capsys.readouterr().out
    n_kept = int(np.sum(state.confidence[propagated] >= threshold))
    assert f"Propagated labels with confidence ≥ {threshold:.2f}: {n_kept} of {propagated.size}, expected" in printed
    assert "95% interval" in printed


def gradient_workspace(tmp_path: Path) -> Workspace:
    """The two-blob folder imported, without labels and without bootstrap stability (faster refreshes)."""
    root = tmp_path / "data"
    make_gradient_folder(root)
    ws = Workspace.open(Settings(root, n_bootstrap=0))
    ws.import_folder()
    return ws


def test_an_audit_taken_before_a_relabel_is_scored_against_the_new_label(tmp_path: Path) -> None:
    ws = gradient_workspace(tmp_path)
    ws.store.add_class("red")
    ws.store.add_class("blue")
    ws.store.label_paths([("img_000.png", "red")], "tester")
    state = refresh(ws, compute_map=False)
    # Blue has no label yet: a clearly blue image is propagated as red, and the blind answer "blue" disagrees.
    row = 75
    assert (state.source[row], state.class_names[state.label[row]]) == ("propagated", "red")
    # With one labeled class of two, nothing tells the classes apart: confidence is chance, not the certainty that a
    # spread without a rival would suggest.
    np.testing.assert_array_equal(state.confidence[state.source == "propagated"], 0.5)
    assert "chance (1/2)" in report.calibration_note(state)
    red_id, blue_id = (c.id for c in ws.classes())
    ws.store.record_audit(ws.records()[row].id, blue_id, red_id, float(state.confidence[row]), "tester")
    estimate = report.accuracy_estimate(ws, state)
    assert estimate is not None
    assert (estimate["accuracy"], estimate["n"]) == (0.0, 1)
    # One blue label later, the same image is propagated as blue: the stored answer now confirms its label.
    ws.store.label_paths([("img_079.png", "blue")], "tester")
    state = refresh(ws, compute_map=False)
    assert state.class_names[state.label[row]] == "blue"
    estimate = report.accuracy_estimate(ws)
    assert estimate is not None
    assert (estimate["accuracy"], estimate["n"]) == (1.0, 1)
    assert report.audit_pairs(ws) == ([blue_id], [blue_id], [pytest.approx(float(state.confidence[row]))])
    # The answer is calibration evidence, never a seed.
    assert calibration.evidence_counts(state)["audits"] == 1
    assert state.source[row] == "propagated"


def test_one_label_per_class_calibrates_from_a_prior_simulated_on_the_graph(tmp_path: Path) -> None:
    ws = gradient_workspace(tmp_path)
    ws.store.label_paths([("img_000.png", "red"), ("img_079.png", "blue")], "tester")
    state = refresh(ws, compute_map=False)
    # No leave-one-out evidence at one label per class: the prior mean is simulated on this graph, recorded with the
    # state, and the calibrator refitted from the state reproduces the confidences.
    assert calibration.evidence_counts(state)["total"] == 0
    prior = calibration.state_prior(state)
    assert prior.n_rows > 0
    assert "simulated on this graph" in report.calibration_note(state)
    assert f"agreed with your current labels on {prior.agreement:.0%}" in report.calibration_note(state)
    assert f"good to about ±{100 * prior.level_sd:.0f} percentage points" in report.calibration_note(state)
    propagated = state.source == "propagated"
    X = calibration_features(state.proba[propagated])
    np.testing.assert_allclose(calibration.calibrator_for(state).predict_confidence(X), state.confidence[propagated])
    assert calibration.calibrator_for(state).prior_coef == (prior.coef,)
    # A second label per class brings leave-one-out evidence, fitted around the simulated mapping; the labels doubled,
    # so the simulation ran again for the new seeds.
    ws.store.label_paths([("img_005.png", "red"), ("img_074.png", "blue")], "tester")
    state = refresh(ws, compute_map=False)
    assert calibration.evidence_counts(state)["loo"] == 4
    again = calibration.state_prior(state)
    assert again.n_rows > 0
    assert again != prior
    assert "calibrated from 4 answers" in report.calibration_note(state)
    assert "starting from a mapping simulated on this graph" in report.calibration_note(state)
    # One more label is within PRIOR_REFRESH_GROWTH of the 4 the prior was simulated with: it is kept, not re-run.
    ws.store.label_paths([("img_010.png", "red")], "tester")
    state = refresh(ws, compute_map=False)
    assert calibration.state_prior(state) == again


def test_no_simulated_prior_until_two_classes_have_labels(tmp_path: Path) -> None:
    ws = gradient_workspace(tmp_path)
    ws.store.label_paths([("img_000.png", "red"), ("img_003.png", "red")], "tester")
    state = refresh(ws, compute_map=False)
    assert state.calibration_prior == {}


def test_label_batches_record_how_much_new_labels_changed(blobs: tuple[Workspace, np.ndarray]) -> None:
    ws, t = blobs
    state = refresh(ws, compute_map=False)
    assert state.recent_changes.size == 0  # the first batch starts here
    before = state.label.copy()
    # A batch of correct labels in the middle of the red half: they change nothing else.
    red = class_index(ws, "red")
    middle = [i for i in range(20, 40) if state.source[i] == "propagated" and state.label[i] == red][:BATCH_LABELS]
    assert len(middle) == BATCH_LABELS
    ws.store.label_paths([(f"img_{i:03d}.png", "red") for i in middle[:-1]], "tester")
    state = refresh(ws, compute_map=False)
    assert state.recent_changes.size == 0  # one label short of a batch
    ws.store.label_paths([(f"img_{middle[-1]:03d}.png", "red")], "tester")
    state = refresh(ws, compute_map=False)
    still = state.source == "propagated"
    np.testing.assert_array_equal(state.recent_batch_sizes, [BATCH_LABELS])
    assert state.recent_changes[0] == pytest.approx(np.mean(before[still] != state.label[still]))
    verdict = report.stopping(ws, state)
    assert not verdict["stop"]
    assert "Not enough audits yet" in verdict["text"]
    assert "Too few label batches" in verdict["text"]


def test_reliability_is_out_of_sample_and_counts_every_audit(blobs: tuple[Workspace, np.ndarray]) -> None:
    ws, t = blobs
    state = refresh(ws, compute_map=False)
    rows = np.flatnonzero(state.source == "propagated")[::4]
    for row in rows:
        answer = ws.classes()[int(t[row] > 0.5)].id  # the truth
        ws.store.record_audit(ws.records()[row].id, answer, None, None, "tester")
    state = refresh(ws, compute_map=False)
    table = report.reliability(ws, state)
    assert table is not None
    assert sum(table["count"]) == rows.size == table["n"]
    assert "not in-sample" in table["note"]
    # The error is read against what chance alone gives on as many answers.
    assert 0.0 <= table["ece_floor"] <= 0.5
    assert f"about {table['ece_floor']:.3f} on {rows.size} answers by chance" in table["note"]
    held_out = calibration.held_out_audit_confidence(state, *calibration.audited_rows(ws, state))
    # Without its own answer each audit's confidence differs from the in-sample one, but not by much here.
    assert not np.allclose(held_out, state.confidence[rows], atol=0, rtol=0)
    np.testing.assert_allclose(held_out, state.confidence[rows], atol=0.05)
    # An isolated image is plotted at chance, as the app shows it, not at the fitted mapping.
    state.isolated = np.zeros(state.label.shape, dtype=bool)
    state.isolated[rows[0]] = True
    held_out = calibration.held_out_audit_confidence(state, *calibration.audited_rows(ws, state))
    assert held_out[0] == 0.5
    np.testing.assert_allclose(held_out[1:], state.confidence[rows[1:]], atol=0.05)


def test_isolated_rows_get_chance_in_a_confidence_vector_and_in_its_draws(
    blobs: tuple[Workspace, np.ndarray],
) -> None:
    ws, _ = blobs
    state = refresh(ws, compute_map=False)
    rows = np.flatnonzero(state.source == "propagated")[:5]
    state.isolated = np.zeros(state.label.shape, dtype=bool)
    state.isolated[rows[[1, 3]]] = True
    values = np.full(5, 0.9)
    np.testing.assert_array_equal(calibration.isolated_at_chance(state, rows, values), [0.9, 0.5, 0.9, 0.5, 0.9])
    draws = np.full((4, 5), 0.9)
    np.testing.assert_array_equal(calibration.isolated_at_chance(state, rows, draws)[:, [1, 3]], 0.5)
    assert values[1] == draws[0, 1] == 0.9  # the inputs are left as they were


def test_the_calibration_note_says_which_audits_it_does_not_include_yet(blobs: tuple[Workspace, np.ndarray]) -> None:
    """Right after an answer the pages still show the state calibrated without it: the note says so."""
    ws, t = blobs
    state = refresh(ws, compute_map=False)
    rows = np.flatnonzero(state.source == "propagated")[::8][:3]

    def answer(row: int) -> None:
        ws.store.record_audit(ws.records()[row].id, ws.classes()[int(t[row] > 0.5)].id, None, None, "tester")

    answer(rows[0])
    answer(rows[1])
    state = refresh(ws, compute_map=False)
    note = report.calibration_note(state, ws)
    assert "2 blind audits)" in note
    assert "since" not in note

    answer(rows[2])  # not propagated yet
    note = report.calibration_note(state, ws)
    assert "2 blind audits)" in note
    assert note.endswith("; 1 more blind audit answered since is not in it yet: the next propagation takes it into "
                         "account")
    choice = report.threshold_choice(ws, 0.9, state)
    assert choice is not None
    assert "1 more blind audit answered since" in choice["text"]
    assert "1 more blind audit answered since" in "\n".join(report.describe(state, (), ws))
    assert "since" not in report.calibration_note(state)  # without the store: the state's own sentence

    state = refresh(ws, compute_map=False)
    note = report.calibration_note(state, ws)
    assert "3 blind audits)" in note
    assert "since" not in note


def test_a_prior_kept_before_it_had_a_spread_is_simulated_again(tmp_path: Path) -> None:
    # Priors kept before 2026-11-27 18:00 hold four values (no spread): read as missing, not as a wrong width.
    ws = gradient_workspace(tmp_path)
    ws.store.label_paths([("img_000.png", "red"), ("img_079.png", "blue")], "tester")
    state = refresh(ws, compute_map=False)
    kept = calibration.state_dir(ws) / "simulated_prior.npz"
    with np.load(kept) as stored:
        key, n_labels, values = stored["key"], stored["n_labels"], stored["values"]
    assert values.size == 5
    np.savez(kept, key=key, n_labels=n_labels, values=values[:4] + 1.0)  # an older, different prior
    W = np.ones((state.label.size, state.label.size)) - np.eye(state.label.size)
    again = calibration.prior_for(ws, state.embedding_key, W, calibration.human_labels(state), state.label,
                                  len(state.class_ids))
    assert again.n_rows > 0
    assert again.coef != values[0] + 1.0  # simulated again, not read from the old file
    with np.load(kept) as stored:
        assert stored["values"].size == 5

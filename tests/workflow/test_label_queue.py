"""What to show next: file order, uniform random, cold start, the review queue, the blind audit draw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labeler.core import review
from labeler.core.propagate import Source
from labeler.workflow import label_queue as queue
from labeler.workflow.refresh import refresh
from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace

CLASSES = ["red", "green", "blue"]


def label_rows(ws: Workspace, rows: list[int], name: str) -> None:
    class_id = next(c.id for c in ws.store.classes() if c.name == name)
    ws.store.set_labels([ws.records()[r].id for r in rows], class_id, ws.settings.annotator)


def true_rows(ws: Workspace, truth: dict[str, str], name: str, n: int) -> list[int]:
    return [i for i, r in enumerate(ws.records()) if truth[r.path] == name][:n]


@pytest.fixture
def propagated(ws: Workspace, colour_folder: tuple[Path, dict[str, str]]) -> PipelineState:
    """Two true human labels per class and a propagation (no map)."""
    for name in CLASSES:
        label_rows(ws, true_rows(ws, colour_folder[1], name, 2), name)
    return refresh(ws, compute_map=False)


def test_in_order_skips_labeled_and_excluded_rows(ws: Workspace) -> None:
    label_rows(ws, [0, 2], "red")
    assert queue.candidate_rows(ws, None, "In order", 4, exclude={3}) == [(1, ""), (4, ""), (5, ""), (6, "")]
    assert queue.candidate_rows(ws, None, "In order", 0) == []


def test_random_is_uniform_over_unlabeled_and_reproducible(ws: Workspace) -> None:
    label_rows(ws, list(range(10)), "red")
    first = queue.candidate_rows(ws, None, "Random", 20)
    assert first == queue.candidate_rows(ws, None, "Random", 20)  # same labels, same draw
    rows = [row for row, why in first]
    assert len(set(rows)) == 20
    assert min(rows) >= 10
    assert {why for _, why in first} == {"random"}


def test_unknown_strategy_is_refused(ws: Workspace) -> None:
    with pytest.raises(ValueError, match="strategy"):
        queue.candidate_rows(ws, None, "Best", 3)


def test_suggested_starts_with_the_cold_start_minus_labeled_rows(ws: Workspace) -> None:
    label_rows(ws, [2], "red")
    asked: list[int] = []

    def cold_start(_: Workspace, n: int) -> list[int]:
        asked.append(n)
        return [5, 2, 7]

    picked = queue.candidate_rows(ws, None, "Suggested", 4, cold_start=cold_start)
    assert picked == [(5, "typical of a cluster"), (7, "typical of a cluster")]
    assert asked == [queue.MIN_COLD_START]


def test_cold_start_rows_cover_the_three_colours(
    ws: Workspace, colour_folder: tuple[Path, dict[str, str]]
) -> None:
    rows = queue.cold_start_rows(ws, 3)
    assert {colour_folder[1][ws.records()[r].path] for r in rows} == set(CLASSES)


def test_suggested_after_propagation_is_the_review_queue(ws: Workspace, propagated: PipelineState) -> None:
    picked = queue.candidate_rows(ws, propagated, "Suggested", 10)
    rows = [row for row, _ in picked]
    assert len(rows) == len(set(rows)) == 10
    assert all(propagated.source[r] != "human" for r in rows)
    assert {why for _, why in picked} <= {"no seed reached", "low margin", "high entropy", "unstable", "random"}


def test_suggested_with_clusters_leads_with_a_cluster_nobody_labeled(
    ws: Workspace, colour_folder: tuple[Path, dict[str, str]]
) -> None:
    truth = colour_folder[1]
    for name in ("red", "green"):  # blue has no label yet
        label_rows(ws, true_rows(ws, truth, name, 2), name)
    state = refresh(ws, compute_map=False)
    found = queue.cluster_rows(ws, state)
    assert found.typical.size == queue.coverage_clusters(state) == min(48, len(ws.records()) // 2)
    asked: list[PipelineState] = []

    def clusters(_: Workspace, given: PipelineState) -> review.Clusters:
        asked.append(given)
        return found

    picked = queue.candidate_rows(ws, state, "Suggested", 12, clusters=clusters)
    assert asked == [state]
    rows = [row for row, _ in picked]
    assert len(rows) == len(set(rows)) == 12
    assert all(state.source[r] != "human" for r in rows)
    leading = [row for row, why in picked if why == "typical of an unlabeled cluster"]
    assert rows == leading  # dozens of clusters without a label: their typical images fill the twelve
    human = state.source == "human"
    for row in leading:
        assert not human[found.assignment == found.assignment[row]].any()
    assert any(truth[ws.records()[r].path] == "blue" for r in rows)


def test_as_result_keeps_every_array(propagated: PipelineState) -> None:
    result = queue.as_result(propagated)
    assert (result.source == Source.HUMAN).sum() == 6
    assert (result.source == Source.PROPAGATED).sum() == len(propagated.label) - 6
    np.testing.assert_array_equal(result.label, propagated.label)
    np.testing.assert_array_equal(result.scores, propagated.scores)


def test_refill_keeps_order_until_half_are_labeled(ws: Workspace) -> None:
    rows, reasons, reset = queue.refill(ws, None, "In order", 4, [])
    assert (rows, reset) == ([0, 1, 2, 3], False)
    assert reasons == {0: "", 1: "", 2: "", 3: ""}
    label_rows(ws, [0], "red")
    assert queue.refill(ws, None, "In order", 4, rows)[0] == [1, 2, 3]  # three left of four: no refill yet
    label_rows(ws, [1], "red")
    assert queue.refill(ws, None, "In order", 4, [1, 2, 3])[0] == [2, 3, 4, 5]
    assert queue.refill(ws, None, "In order", 4, [2, 3, 4, 5], skipped={2})[0] == [3, 4, 5]


def test_refill_offers_skipped_images_again_when_nothing_else_is_left(ws: Workspace) -> None:
    n = len(ws.records())
    label_rows(ws, list(range(n - 2)), "red")
    rows, _, reset = queue.refill(ws, None, "In order", 4, [], skipped={n - 2, n - 1})
    assert (rows, reset) == ([n - 2, n - 1], True)


def test_review_rows_put_map_rows_first_once(ws: Workspace, propagated: PipelineState) -> None:
    human = int(np.flatnonzero(propagated.source == "human")[0])
    rows = queue.review_rows(ws, propagated, 5, first=[40, human, 40, 41])
    assert rows[:2] == [(40, "sent from the map"), (41, "sent from the map")]
    assert len(rows) == 5
    assert len({r for r, _ in rows}) == 5
    assert human not in {r for r, _ in rows}


def test_new_class_rows_leave_human_labels_out() -> None:
    state = _flagged_state(new_class=[True, True, False, True], isolated=[False] * 4)
    assert queue.new_class_rows(state, 5) == [1, 3]
    assert queue.new_class_rows(state, 1) == [1]
    # Clusters {0, 1}, {2}, {3}, largest first: the first holds a human label; the others' typical images follow the
    # flagged rows, none twice.
    found = review.Clusters(np.array([0, 2, 3]), np.array([0, 0, 1, 2]))
    assert queue.new_class_rows(state, 5, found) == [1, 3, 2]
    assert queue.new_class_rows(state, 2, found) == [1, 3]
    stale = review.Clusters(np.array([0]), np.array([0, 0]))  # of another set of images: not used
    assert queue.new_class_rows(state, 5, stale) == [1, 3]


def test_audit_draw_is_stable_blind_and_never_repeats(ws: Workspace, propagated: PipelineState) -> None:
    row = queue.next_audit_row(ws, propagated)
    assert row is not None
    assert propagated.source[row] == "propagated"
    assert queue.next_audit_row(ws, propagated) == row  # same draw on a rerun
    assert queue.next_audit_row(ws, propagated, current=row) == row
    green = next(c.id for c in ws.store.classes() if c.name == "green")
    queue.answer_audit(ws, propagated, row, green)
    (stored,) = ws.store.audits()
    assert stored["image_id"] == ws.records()[row].id
    assert stored["class_id"] == green
    assert stored["predicted_class_id"] == propagated.class_ids[int(propagated.label[row])]
    assert stored["confidence"] == pytest.approx(float(propagated.confidence[row]))
    assert ws.store.human_labels().get(ws.records()[row].id) is None  # an audit is never a seed
    following = queue.next_audit_row(ws, propagated, current=row)
    assert following is not None
    assert following != row


def test_no_audit_row_when_nothing_is_propagated(ws: Workspace) -> None:
    state = refresh(ws, compute_map=False)  # classes but no label: nothing propagated
    assert queue.next_audit_row(ws, state) is None


def test_audit_order_is_uniform_stable_and_skips_answered_images(ws: Workspace, propagated: PipelineState) -> None:
    first = queue.audit_rows(ws, propagated, 5)
    assert len(set(first)) == 5
    assert all(propagated.source[r] == "propagated" for r in first)
    green = next(c.id for c in ws.store.classes() if c.name == "green")
    queue.answer_audit(ws, propagated, first[0], green, "tab")
    assert queue.audit_rows(ws, propagated, 4) == first[1:]  # answering one leaves the others' order alone
    priority = queue.audit_priority(np.arange(10_000), random_state=0)
    order = np.argsort(priority)
    assert abs(float(np.mean(order[:5_000] < 5_000)) - 0.5) < 0.03  # no drift towards low or high ids
    assert not np.array_equal(priority, queue.audit_priority(np.arange(10_000), random_state=1))


def test_candidates_respect_a_filter(ws: Workspace) -> None:
    allowed = np.zeros(len(ws.records()), dtype=bool)
    allowed[[4, 7, 9]] = True
    assert queue.candidate_rows(ws, None, "In order", 5, allowed=allowed) == [(4, ""), (7, ""), (9, "")]
    rows, _, _ = queue.refill(ws, None, "In order", 4, [], allowed=allowed)
    assert rows == [4, 7, 9]


def test_image_key_is_id_and_content() -> None:
    from labeler.store import ImageRecord

    record = ImageRecord(7, "a.png", "ab" * 32, 1, 1, "ok", None, None, 3)
    assert queue.image_key(record) == "7:abababababababab"


def test_audit_answers_by_path_take_only_the_random_order(ws: Workspace, propagated: PipelineState,
                                                          colour_folder: tuple[Path, dict[str, str]]) -> None:
    truth = colour_folder[1]
    order = [propagated.paths[row] for row in queue.audit_rows(ws, propagated, 40)]
    human_path = next(r.path for r in ws.records() if r.id in ws.store.human_labels())
    answers = [(order[0], truth[order[0]]), (order[1], ""), (order[2], "purple"),  # a class nobody had named
               (order[15], truth[order[15]]), (order[16], truth[order[16]]), (human_path, "red"), ("nope.png", "red")]
    stored, problems = queue.answer_audits_by_path(ws, propagated, answers, "tester")
    # Six answers (one more left blank): the first 6 + MAX_PASSED_OVER = 16 of the order are open, the 17th is not.
    assert queue.MAX_PASSED_OVER == 10
    assert stored == 3
    assert [path for path, _ in problems] == [order[16], human_path, "nope.png"]
    assert "random audit order" in problems[0][1]
    assert "human label" in problems[1][1]
    audits = {a["image_id"]: a["class_id"] for a in ws.store.audits()}
    by_path = {r.path: r.id for r in ws.records()}
    names = {c.id: c.name for c in ws.classes()}
    assert {names[audits[by_path[p]]] for p in (order[0], order[2])} == {truth[order[0]], "purple"}
    assert len(ws.store.human_labels()) == 6  # audits are never seeds
    again, problems = queue.answer_audits_by_path(ws, propagated, [(order[0], "red")], "tester")
    assert again == 0
    assert problems == [(order[0], "already audited")]


def test_the_refresh_groups_the_images_so_the_page_does_not_wait(
    ws: Workspace, propagated: PipelineState, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeler.workflow.state import state_dir

    assert (state_dir(ws) / "coverage_clusters.npz").exists()  # the refresh computed them in the background

    def no_kmeans(*args: object, **kwargs: object) -> review.Clusters:
        raise AssertionError("k-means ran again")

    monkeypatch.setattr(review, "clusters", no_kmeans)
    found = queue.cluster_rows(ws, propagated)  # read back, not recomputed
    assert found.typical.size == queue.coverage_clusters(propagated)
    assert found.assignment.shape == (len(propagated.image_ids),)
    with pytest.raises(AssertionError, match="k-means ran again"):  # another number of clusters: computed anew
        queue.cluster_rows(ws, propagated, n_clusters=5)


def _flagged_state(new_class: list[bool], isolated: list[bool]) -> Any:
    """A stand-in state for new_class_rows: row 0 human, row 1 unlabeled, the rest propagated."""
    source = np.array(["human", "none"] + ["propagated"] * (len(new_class) - 2))
    flags = {"new_class": np.array(new_class), "source": source}
    return type("S", (), {**flags, "isolated_rows": lambda self: np.array(isolated)})()


def test_new_class_rows_put_images_unlike_every_other_first() -> None:
    # Rows 4 and 5 are isolated (on photos, often no photo at all); they lead, the other flagged rows keep their order.
    state = _flagged_state(new_class=[True, True, False, True, True, True], isolated=[False] * 4 + [True, True])
    assert queue.new_class_rows(state, 5) == [4, 5, 1, 3]
    assert queue.new_class_rows(state, 1) == [4]

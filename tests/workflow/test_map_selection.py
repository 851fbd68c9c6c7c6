"""A bulk label on the map changes the selection less what was left out, and human labels only when asked."""

from __future__ import annotations

from labeler.workflow.map_selection import (
    BulkLabel,
    KeptSelection,
    after_drawing,
    bulk_label_message,
    candidate_ids,
    carried_ids,
    human_ids,
    keep_boxes,
    labeled,
    plan_bulk_label,
    review_message,
)

# Images 1-6 selected: 1, 2, 3 propagated; 4 human "cat" (class 7), 5 human "dog" (class 8), 6 human "dog".
SELECTED = [1, 2, 3, 4, 5, 6]
HUMAN = {4: 7, 5: 8, 6: 8, 99: 8}  # 99: a human label outside the selection
CAT, DOG = 7, 8


def test_human_labels_are_kept_unless_asked() -> None:
    plan = plan_bulk_label(SELECTED, left_out=set(), human_labels=HUMAN, class_id=CAT)
    assert plan == BulkLabel(CAT, relabel=(1, 2, 3), humans_relabeled=(), humans_kept=(5, 6), humans_already=(4,),
                             left_out=())


def test_asked_the_human_labels_of_other_classes_are_relabeled_too() -> None:
    plan = plan_bulk_label(SELECTED, left_out=set(), human_labels=HUMAN, class_id=CAT, relabel_humans=True)
    assert plan.relabel == (1, 2, 3, 5, 6)
    assert plan.humans_relabeled == (5, 6)
    assert plan.humans_kept == ()
    assert plan.humans_already == (4,)  # already a cat: nothing to change


def test_left_out_images_are_never_labeled_whatever_their_source() -> None:
    plan = plan_bulk_label(SELECTED + [2], left_out={2, 5, 42}, human_labels=HUMAN, class_id=CAT, relabel_humans=True)
    assert plan.relabel == (1, 3, 6)
    assert plan.humans_relabeled == (6,)
    assert plan.left_out == (2, 5)  # 42 was left out of another selection: it is not in this one


def test_the_checkbox_counts_the_human_labels_not_left_out() -> None:
    assert human_ids(SELECTED, left_out={6}, human_labels=HUMAN) == [4, 5]
    assert candidate_ids(SELECTED, HUMAN, relabel_humans=False) == [1, 2, 3]
    assert candidate_ids(SELECTED, HUMAN, relabel_humans=True) == SELECTED


def test_images_left_out_beyond_those_shown_are_shown_too() -> None:
    ordered = list(range(10, 20))
    assert keep_boxes(ordered, left_out={11, 17, 30}, limit=4) == [10, 11, 12, 13, 17]
    assert keep_boxes(ordered, left_out=set(), limit=20) == ordered


def test_the_message_says_what_was_relabeled_and_what_was_left() -> None:
    plan = plan_bulk_label(SELECTED, left_out={2}, human_labels=HUMAN, class_id=CAT)
    assert bulk_label_message(plan, "cat", changed=2) == (
        "2 images labeled cat (Undo reverts them). Left as they were: 1 left out, 2 human labels of other classes "
        "(tick Also relabel to change them), 1 human label already cat.")
    plan = plan_bulk_label(SELECTED, left_out=set(), human_labels=HUMAN, class_id=DOG, relabel_humans=True)
    assert bulk_label_message(plan, "dog", changed=4) == (
        "4 images labeled dog, 1 human label among them (Undo reverts them). Left as they were: "
        "2 human labels already dog.")
    plan = plan_bulk_label([1, 2], left_out=set(), human_labels={}, class_id=CAT)
    assert bulk_label_message(plan, "cat", changed=1) == (
        "1 image labeled cat (Undo reverts it). Left as they were: 1 already labeled cat.")
    assert bulk_label_message(plan_bulk_label([4], set(), HUMAN, CAT), "cat", changed=0) == (
        "Nothing labeled cat. Left as they were: 1 human label already cat.")


def test_a_selection_outlives_a_redraw_and_ends_when_cleared_where_it_was_made() -> None:
    first, second = ("map", 1), ("map", 2)
    kept = after_drawing(None, first, [5, 3, 5])
    assert kept == KeptSelection(first, (5, 3))
    assert carried_ids(kept, first) == ()  # the chart it was picked on still shows it as selected
    # Redrawn (a propagation landed): the new chart has no selection, and the kept one is ringed on it.
    assert carried_ids(kept, second) == (5, 3)
    ringed = (second, (5, 3))
    assert after_drawing(kept, ringed, []) == kept
    # Cleared on the chart it was picked on: gone.
    assert after_drawing(kept, first, []) is None
    # New points picked on the ringed chart replace it.
    assert after_drawing(kept, ringed, [9]) == KeptSelection(ringed, (9,))


def test_a_bulk_labeled_selection_ends_with_the_redraw_that_shows_its_labels() -> None:
    first, second = ("map", 1), ("map", 2)
    done = labeled(after_drawing(None, first, [5, 3]))
    assert done is not None
    assert after_drawing(done, first, [5, 3]) == done  # still picked on the same chart: still labeled
    assert carried_ids(done, second) == ()
    assert after_drawing(done, second, []) is None
    assert after_drawing(done, second, [4]) == KeptSelection(second, (4,))
    assert labeled(None) is None


def test_send_to_review_says_which_human_labels_it_left_out() -> None:
    assert review_message(3, 0) == "3 images put at the top of the review queue."
    assert review_message(1, 2) == (
        "1 image put at the top of the review queue. Not the 2 human labels in the selection: the queue reviews "
        "propagated labels; Review & audit's Suspect human labels checks yours against their neighbours.")
    assert review_message(0, 1).startswith("Nothing sent to review. Not the 1 human label in the selection:")

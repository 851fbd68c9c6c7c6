"""Label counts that never look finished while they are not."""

from __future__ import annotations

import numpy as np

from labeler.store import ClassInfo
from labeler.workflow.counts import label_counts, unlabeled_classes_message
from labeler.workflow.state import PipelineState

CLASSES = [ClassInfo(1, "cat", "#f00", "1"), ClassInfo(2, "dog", "#0f0", "2"), ClassInfo(3, "bird", "#00f", "3")]


def state_for(source: list[str], labels_version: int, class_ids: list[int]) -> PipelineState:
    n = len(source)
    return PipelineState(
        image_ids=np.arange(100, 100 + n, dtype=np.int64), paths=[f"{i}.png" for i in range(n)],
        class_ids=class_ids, class_names=["cat", "dog", "bird"][: len(class_ids)], class_colours=["#f00"] * 3,
        label=np.zeros(n, dtype=np.int64), source=np.array(source), confidence=np.ones(n), margin=np.ones(n),
        entropy=np.zeros(n), stability=np.ones(n), proba=np.zeros((n, 3)), scores=np.zeros((n, 3)),
        new_class=np.zeros(n, dtype=bool), representation="pixels-pca", embedding_key="k",
        labels_version=labels_version,
    )


def test_counts_name_unlabeled_classes_and_say_when_behind() -> None:
    ids = np.arange(100, 106)
    state = state_for(["human", "propagated", "propagated", "propagated", "propagated", "none"], 7, [1, 2, 3])
    # One more human label since the state (on a then-propagated image), two classes without any label.
    counts = label_counts(ids, {100: 1, 101: 1}, CLASSES, state, labels_version=8)
    assert (counts.images, counts.human, counts.propagated, counts.none) == (6, 2, 3, 1)
    assert counts.unlabeled_classes == ("dog", "bird")
    assert not counts.up_to_date
    assert not counts.finished
    assert counts.summary() == ("2 human · 3 propagated · 1 unreached of 6 · 2 of 3 classes without a label · "
                                "propagation catching up…")
    done = label_counts(ids, {100: 1, 101: 2, 102: 3}, CLASSES,
                        state_for(["human"] * 3 + ["propagated"] * 3, 9, [1, 2, 3]), labels_version=9)
    assert done.finished
    assert done.summary() == "3 human · 3 propagated · 0 unreached of 6"


def test_audited_images_are_counted_apart_from_the_propagated_ones() -> None:
    ids = np.arange(100, 106)
    state = state_for(["human", "propagated", "propagated", "propagated", "propagated", "none"], 7, [1, 2, 3])
    # Audits of two propagated images, of a human-labeled one (not counted twice) and of an image no longer on record.
    counts = label_counts(ids, {100: 1}, CLASSES, state, labels_version=7, audited_ids=[101, 102, 100, 999])
    assert (counts.human, counts.propagated, counts.audited, counts.none) == (1, 2, 2, 1)
    assert counts.summary().startswith("1 human · 2 propagated · 2 audited · 1 unreached of 6")


def test_a_state_of_other_classes_is_not_up_to_date() -> None:
    state = state_for(["propagated"] * 3, 5, [1, 2])  # computed before "bird" was added
    counts = label_counts(np.arange(100, 103), {100: 1}, CLASSES, state, labels_version=5)
    assert not counts.up_to_date


def test_no_state_counts_everything_unreached() -> None:
    counts = label_counts(np.arange(4), {}, CLASSES, None, labels_version=0)
    assert (counts.human, counts.propagated, counts.none) == (0, 0, 4)


def test_unlabeled_classes_message() -> None:
    assert unlabeled_classes_message([], 3) is None
    assert unlabeled_classes_message(["0"], 3) == "1 class has no label yet, so nothing can be propagated to it: 0."
    assert unlabeled_classes_message(["a", "b"], 3) == ("2 classes have no label yet, so nothing can be propagated "
                                                        "to them: a, b.")
    many = unlabeled_classes_message([str(i) for i in range(14)], 20)
    assert many is not None
    assert many.endswith("them: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, …")
    assert unlabeled_classes_message(["a", "b"], 2).startswith("None of the 2 classes has a label yet")


def test_counts_lag_when_every_seed_was_taken_back() -> None:
    # The propagation still shows labels spread from seeds since undone: it must catch up (to none propagated),
    # though no human label is left; with nothing propagated and nothing labeled there is nothing to catch up with.
    state = state_for(["human", "propagated", "propagated"], 7, [1, 2, 3])
    counts = label_counts(np.arange(100, 103), {}, CLASSES, state, labels_version=8)
    assert counts.human == 0
    assert counts.lagging
    assert counts.summary().endswith("propagation catching up…")
    assert not label_counts(np.arange(3), {}, CLASSES, None, labels_version=0).lagging

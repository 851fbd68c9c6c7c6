"""Filtering images by class, source, confidence band and file name, on a hand-made state."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.workflow.filters import NO_LABEL, ImageFilter, matching_rows
from labeler.workflow.state import PipelineState


def small_state() -> PipelineState:
    n = 5
    return PipelineState(
        image_ids=np.arange(n, dtype=np.int64), paths=["a/cat1.png", "a/Cat2.png", "b/dog1.png", "b/x.png", "c.png"],
        class_ids=[10, 20], class_names=["cat", "dog"], class_colours=["#ff0000", "#00ff00"],
        label=np.array([0, 0, 1, -1, 1]), source=np.array(["human", "propagated", "propagated", "none", "propagated"]),
        confidence=np.array([1.0, 0.3, 0.9, 0.0, 0.55]), margin=np.zeros(n), entropy=np.zeros(n),
        stability=np.ones(n), proba=np.zeros((n, 2)), scores=np.zeros((n, 2)), new_class=np.zeros(n, dtype=bool),
        representation="pixels-pca", embedding_key="k",
    )


def test_an_empty_filter_keeps_everything() -> None:
    state = small_state()
    assert not ImageFilter().active
    assert matching_rows(ImageFilter(), state.paths, state).all()
    assert ImageFilter().describe() == "everything"


def test_each_criterion_and_their_combination() -> None:
    state = small_state()

    def rows(f: ImageFilter) -> list[int]:
        return np.flatnonzero(matching_rows(f, state.paths, state)).tolist()

    assert rows(ImageFilter(classes=("cat",))) == [0, 1]
    assert rows(ImageFilter(classes=("dog", NO_LABEL))) == [2, 3, 4]
    assert rows(ImageFilter(sources=("propagated",))) == [1, 2, 4]
    assert rows(ImageFilter(confidence=(0.0, 0.5))) == [1, 3]  # a band: inclusive at both ends
    assert rows(ImageFilter(confidence=(0.55, 0.9))) == [2, 4]
    assert rows(ImageFilter(name="CAT")) == [0, 1]  # part of the path, any case
    combined = ImageFilter(classes=("dog",), sources=("propagated",), confidence=(0.5, 1.0), name="b/")
    assert rows(combined) == [2]
    assert combined.describe() == 'class dog · propagated · confidence 0.50–1.00 · name contains "b/"'


def test_without_a_state_everything_is_unlabeled() -> None:
    paths = ["x1.png", "y.png"]
    assert matching_rows(ImageFilter(sources=("none",)), paths, None).tolist() == [True, True]
    assert matching_rows(ImageFilter(classes=("cat",)), paths, None).tolist() == [False, False]
    assert matching_rows(ImageFilter(name="x"), paths, None).tolist() == [True, False]


def test_bad_filters_are_refused() -> None:
    with pytest.raises(ValueError, match="sources"):
        ImageFilter(sources=("machine",))
    with pytest.raises(ValueError, match="band"):
        ImageFilter(confidence=(0.8, 0.2))

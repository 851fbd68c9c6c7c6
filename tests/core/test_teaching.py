"""Teaching demos show what they claim, with fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.core import teaching


def test_manifold_assumption_holds_on_moons_and_fails_on_overlapping_blobs() -> None:
    moons = teaching.manifold_demo(shape="moons", noise=0.05)
    assert moons.accuracy["label spreading"] > 0.95
    assert moons.accuracy["label spreading"] > moons.accuracy["supervised (logistic regression)"] + 0.05
    blobs = teaching.manifold_demo(shape="blobs")
    assert blobs.accuracy["label spreading"] < 0.75  # no gap between the classes: propagation cannot shine
    assert len(moons.seeds) == 2
    assert set(moons.truth[moons.seeds].tolist()) == {0, 1}


def test_self_training_grows_confident_while_getting_worse() -> None:
    demo = teaching.confirmation_bias_demo()
    curve = demo.curve
    assert curve["self-training"][-1] < curve["honest"][-1] - 0.1
    assert curve["confidence (self-training)"][-1] > curve["confidence (self-training)"][0]
    assert curve["wrong promoted seeds"][-1] > 0.3
    assert len(curve["x"]) == 9


def test_unseen_class_is_flagged_not_silently_absorbed() -> None:
    demo = teaching.mismatch_demo(hidden_class=True)
    assert demo.accuracy["share of unseen class flagged"] > 0.8
    assert demo.accuracy["share of known classes flagged"] < 0.1
    # Absorbed, not left unreached: every image of the unseen class gets one of the two classes it was shown.
    assert set(np.unique(demo.labels["label spreading"][demo.truth == 2])) <= {0, 1}
    flagged = demo.flags["new-class flag"]
    assert flagged.dtype == bool
    assert flagged[demo.truth == 2].mean() > 0.8  # the picture's red crosses sit on the unseen class
    assert flagged[demo.truth != 2].mean() < 0.1
    assert set(demo.labels) == {"label spreading"}  # a flag is not a labeling
    assert demo.class_names[2] == "class C (never labeled)"


def test_complexity_curve_has_a_sweet_spot() -> None:
    demo = teaching.complexity_demo()
    accuracy = demo.curve["accuracy"]
    assert len(accuracy) == len(demo.curve["x"]) == 6
    assert max(accuracy) > accuracy[0] + 0.2  # k = 3 leaves the graph in pieces


def test_unknown_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="moons"):
        teaching.manifold_demo(shape="spiral")

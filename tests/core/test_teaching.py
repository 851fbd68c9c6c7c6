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


@pytest.mark.parametrize("random_state", [0, 1, 2, 3])
def test_self_training_makes_its_mistakes_certain_and_hides_them_from_review(random_state: int) -> None:
    # Not "self-training is less accurate": over draws 0-99 that goes either way. What holds in every draw: its
    # wrong labels end more confident than honest spreading's, and some are promoted seeds no review will show.
    demo = teaching.confirmation_bias_demo(random_state=random_state)
    honest, self_training = demo.measures["honest (human seeds only)"], demo.measures["self-training"]
    assert honest["wrong labels hidden from review (now seeds)"] == 0  # labeler's rule: only human labels are seeds
    assert self_training["wrong labels hidden from review (now seeds)"] >= 10
    assert (self_training["mean confidence of the wrong labels"]
            > honest["mean confidence of the wrong labels"] + 0.05)
    curve = demo.curve
    assert len(curve["x"]) == 7  # rounds 0 (no promotion yet: the honest result) to 6
    assert curve["accuracy (self-training)"][0] == curve["accuracy (honest)"][0]
    assert curve["share of wrong labels hidden from review (self-training)"][0] == 0.0
    assert curve["share of wrong labels hidden from review (self-training)"][-1] > 0.1


def test_the_bias_tab_text_about_draws_0_4_and_7_holds() -> None:
    """pages/teaching.py names these draws at the default sliders: self-training ends better in draw 0 and
    collapses in draws 4 and 7."""
    accuracy = {seed: teaching.confirmation_bias_demo(random_state=seed).accuracy for seed in (0, 4, 7)}
    assert accuracy[0]["self-training"] > accuracy[0]["honest (human seeds only)"] + 0.02
    for seed in (4, 7):
        assert accuracy[seed]["self-training"] < accuracy[seed]["honest (human seeds only)"] - 0.15


def test_complexity_middle_picture_can_be_any_k() -> None:
    demo = teaching.complexity_demo(random_state=0, middle=40)
    assert list(demo.labels) == ["k = 3", "k = 40", "k = 160"]
    with pytest.raises(ValueError, match="middle must be one of"):
        teaching.complexity_demo(middle=7)
    few = teaching.complexity_demo(noise=0.2, random_state=1)
    assert 0 < few.curve["share unreached (grey)"][0] < 0.1  # a few points in small pieces ...
    assert "falls into pieces" not in few.note  # ... is not "the graph falls into pieces"
    assert few.note.startswith("k = 3: only 4% of the points sit in small pieces with no seed (grey).")


def test_hidden_mistakes_are_among_the_promoted_seeds() -> None:
    # 2 rounds of 30 promotions: 60 promoted seeds; the hidden mistakes are among them, the honest run has none.
    demo = teaching.confirmation_bias_demo(rounds=2, promote=30, random_state=5)
    curve = demo.curve
    hidden = demo.measures["self-training"]["wrong labels hidden from review (now seeds)"]
    assert 0 <= hidden <= 60
    wrong = demo.measures["self-training"]["wrong labels"]
    assert curve["share of wrong labels hidden from review (self-training)"][-1] == pytest.approx(hidden / wrong)


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


@pytest.mark.parametrize("random_state", [0, 1, 2])
def test_complexity_fails_at_both_ends(random_state: int) -> None:
    demo = teaching.complexity_demo(random_state=random_state)
    accuracy, unreached = demo.curve["accuracy"], demo.curve["share unreached (grey)"]
    assert demo.curve["x"] == [3, 5, 10, 20, 40, 80, 160]
    assert accuracy[0] < max(accuracy) - 0.15  # too few neighbours ...
    assert unreached[0] > 0.15  # ... leave pieces of the graph that no seed reaches
    assert accuracy[-1] < max(accuracy) - 0.15  # too many ...
    assert unreached[-1] == 0.0  # ... reach everything, but carry labels across the moons
    best = int(demo.curve["x"][accuracy.index(max(accuracy))])
    assert list(demo.labels) == ["k = 3", f"k = {best}", "k = 160"]  # the pictures: both failures and the best
    assert demo.accuracy["k = 160"] == accuracy[-1]
    assert "pieces" in demo.note
    assert "other moon's label" in demo.note


def test_complexity_note_says_what_the_pictures_show() -> None:
    demo = teaching.complexity_demo(noise=0.0, n_neighbors=(10, 20), random_state=0)
    assert demo.curve["share unreached (grey)"][0] == 0.0
    assert "every point is reached" in demo.note  # no claim of pieces the picture does not show


def test_mismatch_without_an_unseen_class_reports_its_false_alarms() -> None:
    demo = teaching.mismatch_demo(hidden_class=False)
    flagged = demo.flags["new-class flag"]
    assert demo.accuracy["share of known classes flagged"] == pytest.approx(flagged.mean())  # all false alarms
    assert flagged.sum() > 0
    assert "share of unseen class flagged" not in demo.accuracy
    assert demo.class_names == ["class A", "class B", "class C"]
    assert "false alarm" in demo.note
    assert "Nobody labeled" not in demo.note


def test_unknown_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="moons"):
        teaching.manifold_demo(shape="spiral")

"""Selection-corrected accuracy: no selection bias on noise, a real winner found."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.core.selection import nested_selection_accuracy


def test_nested_selection_removes_selection_bias_on_noise() -> None:
    rng = np.random.default_rng(0)
    naive, nested = [], []
    for _ in range(300):
        candidates = {f"rep{j}": rng.random(20) < 0.5 for j in range(4)}  # no candidate is better than chance
        estimate = nested_selection_accuracy(candidates)
        naive.append(estimate.naive_accuracy)
        nested.append(estimate.accuracy)
    assert np.mean(naive) > 0.58  # the best of four noisy scores looks good
    assert np.mean(nested) < np.mean(naive) - 0.05
    assert abs(np.mean(nested) - 0.5) < 0.04  # chance, as it should be


def test_nested_selection_finds_a_real_winner() -> None:
    rng = np.random.default_rng(1)
    candidates = {"good": rng.random(200) < 0.9, "bad": rng.random(200) < 0.6}
    estimate = nested_selection_accuracy(candidates)
    assert estimate.chosen == "good"
    assert estimate.accuracy == pytest.approx(candidates["good"].mean())
    assert estimate.times_chosen == {"good": 200}
    assert estimate.interval[0] < estimate.accuracy < estimate.interval[1]


def test_nested_selection_keeps_the_preferred_unless_clearly_beaten() -> None:
    a = np.array([True] * 16 + [False] * 4)  # 0.80
    b = np.array([True] * 17 + [False] * 3)  # 0.85: less than one standard error (0.09) better
    assert nested_selection_accuracy({"a": a, "b": b}, preferred="a", min_gain_se=1.0).chosen == "a"
    assert nested_selection_accuracy({"a": a, "b": b}).chosen == "b"
    with pytest.raises(ValueError, match="preferred"):
        nested_selection_accuracy({"a": a}, preferred="c")


def test_nested_selection_degenerate_sizes() -> None:
    assert np.isnan(nested_selection_accuracy({"a": np.zeros(0, dtype=bool)}).accuracy)
    one = nested_selection_accuracy({"a": np.array([False]), "b": np.array([True])}, preferred="a")
    assert (one.accuracy, one.chosen, one.naive_accuracy) == (0.0, "b", 1.0)  # nothing left to select on: a
    with pytest.raises(ValueError, match="same length"):
        nested_selection_accuracy({"a": np.ones(3, dtype=bool), "b": np.ones(4, dtype=bool)})

"""Reliability curve and expected calibration error, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.core.reliability import calibration_error_floor, expected_calibration_error, reliability_curve


def test_ece_by_hand() -> None:
    confidence = np.array([0.05, 0.15, 0.35, 0.95, 0.95])
    correct = np.array([False, False, True, True, False])
    # Bins: 0.05 -> [0, .1] gap .05; 0.15 -> (.1, .2] gap .15; 0.35 -> (.3, .4] gap .65; two at .95 -> gap .45
    assert expected_calibration_error(confidence, correct) == pytest.approx((0.05 + 0.15 + 0.65 + 2 * 0.45) / 5)
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([False, True])) == pytest.approx(0.0)
    assert np.isnan(expected_calibration_error(np.empty(0), np.empty(0, dtype=bool)))


def test_reliability_curve_bins() -> None:
    curve = reliability_curve(np.array([0.1, 0.1, 0.9, 1.0]), np.array([True, False, True, True]), n_bins=5)
    np.testing.assert_array_equal(curve.count, [2, 0, 0, 0, 2])  # 0.1 is in (0, .2]; edges belong to the lower bin
    np.testing.assert_allclose(curve.accuracy[[0, 4]], [0.5, 1.0])
    np.testing.assert_allclose(curve.mean_confidence[[0, 4]], [0.1, 0.95])
    assert np.all(np.isnan(curve.accuracy[1:4]))
    assert curve.lower[0] < 0.5 < curve.upper[0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_curve(np.array([1.2]), np.array([True]))


def test_calibration_error_floor_matches_the_binomial_closed_form() -> None:
    # All n confidences 0.5 fall in one bin whose ECE is |share right - 0.5|, share ~ Binomial(n, 0.5) / n:
    # E|share - 0.5| -> sqrt(0.25 / n) * sqrt(2 / pi) (the mean absolute deviation of a normal).
    n = 400
    floor = calibration_error_floor(np.full(n, 0.5), n_draws=2000)
    assert floor == pytest.approx(np.sqrt(0.25 / n) * np.sqrt(2 / np.pi), rel=0.06)
    # Certain confidences have no chance spread; more points lower the floor.
    assert calibration_error_floor(np.r_[np.zeros(50), np.ones(50)]) == 0.0
    assert calibration_error_floor(np.full(4000, 0.7)) < calibration_error_floor(np.full(400, 0.7))
    assert np.isnan(calibration_error_floor(np.empty(0)))

"""The calibrator against known answers: two Gaussians' Bayes posterior, the prior with little evidence."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.base import clone
from two_gaussians import GRID, Distortion, sigmoid, tempered, two_class_proba, two_gaussians

from labeler.core.calibrate import DEFAULT_SLOPE, ConfidenceCalibrator
from labeler.core.calibration_evidence import MAX_LOG_RATIO, calibration_features


def errors(model: ConfidenceCalibrator, distort: Distortion = tempered) -> NDArray[np.float64]:
    """Calibrated minus Bayes P(correct) on GRID (|x| from 0 to 3)."""
    return model.predict_confidence(calibration_features(two_class_proba(distort(GRID)))) - sigmoid(2.0 * GRID)



def test_audits_measure_how_far_the_proxies_are_off() -> None:
    # Leave-one-out rows 95 % right, audits 60 % right at the same features: the audited level wins for prediction,
    # and the proxies' offset says they were optimistic.
    rng = np.random.default_rng(0)
    X = rng.uniform(0.2, 1.0, (400, 1))
    proxy = np.arange(400) < 200
    correct = np.where(proxy, rng.random(400) < 0.95, rng.random(400) < 0.6)
    model = ConfidenceCalibrator(min_isotonic=np.inf).fit(X, correct, proxy=proxy)
    assert model.proxy_offset_ > 1.0
    assert np.mean(model.predict_confidence(X[~proxy])) == pytest.approx(0.6, abs=0.05)
    pooled = ConfidenceCalibrator(min_isotonic=np.inf).fit(X, correct)
    assert np.mean(pooled.predict_confidence(X[~proxy])) > 0.7  # what ignoring the difference would promise


def test_without_evidence_the_default_mapping() -> None:
    model = ConfidenceCalibrator().fit(np.empty((0, 1)), np.empty(0, dtype=bool))
    feature = np.linspace(0.0, 2.0, 5)[:, None]
    np.testing.assert_allclose(model.predict_confidence(feature), sigmoid(DEFAULT_SLOPE * feature[:, 0]))
    assert model.n_evidence_ == 0.0


def test_approaches_the_bayes_posterior_with_2000_points() -> None:
    worst, mean_abs = [], []
    for seed in range(3):
        X, correct = two_gaussians(2000, seed)
        model = ConfidenceCalibrator().fit(X, correct)
        assert model.isotonic_weight_ == pytest.approx(0.9)
        e = errors(model)
        worst.append(np.max(np.abs(e)))
        # Weighted by where the images are (density of |x|), as the ECE weighs them.
        x = np.abs(np.random.default_rng(100 + seed).normal(1.0, 1.0, 20_000))
        mean_abs.append(np.mean(np.abs(np.interp(x, GRID, e))))
    assert max(worst) < 0.1
    assert max(mean_abs) < 0.02


def test_sane_with_ten_points_thanks_to_the_prior() -> None:
    worst = np.array([np.max(np.abs(errors(ConfidenceCalibrator().fit(*two_gaussians(10, seed)))))
                      for seed in range(40)])
    assert np.median(worst) < 0.15
    assert worst.max() < 0.3  # never collapses to 0/1 or flattens to a constant
    many = np.array([np.max(np.abs(errors(ConfidenceCalibrator().fit(*two_gaussians(2000, seed)))))
                     for seed in range(5)])
    assert np.median(many) < np.median(worst)  # and more evidence helps


def test_all_correct_evidence_stays_finite() -> None:
    X = np.linspace(0.2, 1.5, 10)[:, None]
    model = ConfidenceCalibrator().fit(X, np.ones(10, dtype=bool))
    p = model.predict_confidence(np.array([[0.0], [0.5], [1.0]]))
    assert np.all(p < 0.999)
    assert np.all(p > sigmoid(DEFAULT_SLOPE * np.array([0.0, 0.5, 1.0])))  # ten right answers raise it
    assert np.all(np.isfinite(model.coef_))


def test_isotonic_stage_fixes_a_wrong_shape() -> None:
    # Scores distorted by a cubic: no logistic curve in the feature matches the posterior, an isotonic fit can.
    def cubic(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return 0.3 * x**3 + 0.2 * x

    X, correct = two_gaussians(3000, 0, cubic)
    blended = ConfidenceCalibrator().fit(X, correct)
    platt = ConfidenceCalibrator(min_isotonic=np.inf).fit(X, correct)
    assert platt.isotonic_weight_ == 0.0
    assert np.max(np.abs(errors(blended, cubic))) < 0.1 < np.max(np.abs(errors(platt, cubic)))


def test_calibration_never_reorders() -> None:
    X, correct = two_gaussians(1000, 3)
    model = ConfidenceCalibrator().fit(X, correct)
    grid = np.linspace(0.0, 3.0, 200)[:, None]
    assert np.all(np.diff(model.predict_confidence(grid)) > 0)


def test_scikit_learn_conventions() -> None:
    model = ConfidenceCalibrator(coef_sd=2.0)
    assert clone(model).get_params()["coef_sd"] == 2.0
    X, correct = two_gaussians(50, 0)
    assert model.fit(X, correct) is model
    proba = model.predict_proba(X)
    assert proba.shape == (50, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.classes_, [False, True])
    with pytest.raises(ValueError, match="shape"):
        model.predict_confidence(np.ones((3, 2)))
    with pytest.raises(ValueError, match="y must have shape"):
        ConfidenceCalibrator().fit(X, correct[:-1])



def test_isotonic_stage_handles_tied_scores() -> None:
    # Many identical features (e.g. one-hot rows at MAX_LOG_RATIO) must pool into one knot, not several.
    X = np.r_[np.zeros(150), np.full(150, MAX_LOG_RATIO), np.linspace(0.1, 2.0, 100)][:, None]
    correct = np.r_[np.arange(150) % 2 == 0, np.ones(150, dtype=bool), np.arange(100) % 4 != 0]
    model = ConfidenceCalibrator().fit(X, correct)
    assert model.isotonic_score_ is not None
    assert np.all(np.diff(model.isotonic_score_) > 0)
    p = model.predict_confidence(np.array([[0.0], [MAX_LOG_RATIO]]))
    assert p[0] == pytest.approx(0.5, abs=0.05)
    assert p[1] > 0.99

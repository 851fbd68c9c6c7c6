"""The threshold picker on synthetic scores with a known precision curve."""

from __future__ import annotations

import numpy as np
import pytest
from two_gaussians import sigmoid, tempered, two_class_proba, two_gaussians

from labeler.core.calibrate import ConfidenceCalibrator
from labeler.core.calibration_evidence import calibration_features
from labeler.core.threshold import pick_threshold


def test_threshold_picker_on_a_known_precision_curve() -> None:
    # Calibrated confidences uniform on [0.5, 1]: precision above t is (1 + t) / 2, so 0.9 needs t = 0.8,
    # which keeps 40 % of the labels.
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, 20_000)
    correct = rng.random(20_000) < confidence
    choice = pick_threshold(confidence, 0.9, correct=correct)
    assert choice.threshold == pytest.approx(0.8, abs=0.01)
    assert choice.promised_precision == pytest.approx(0.9, abs=1e-3)
    assert choice.promised_precision >= 0.9
    assert choice.n_kept == pytest.approx(8000, rel=0.03)
    assert choice.n_evaluated == choice.n_kept
    assert choice.interval[0] <= 0.9 <= choice.interval[1]
    assert choice.interval[0] <= choice.realised_precision <= choice.interval[1]


def test_threshold_picker_edge_cases() -> None:
    none = pick_threshold(np.array([0.5, 0.6]), 0.9)
    assert none.threshold is None
    assert none.n_kept == 0
    # A run of equal confidences is kept or dropped as a whole: (1 + .85 + .85) / 3 = .9
    tied = pick_threshold(np.array([1.0, 0.85, 0.85, 0.5]), 0.9)
    assert tied.threshold == 0.85
    assert tied.n_kept == 3
    # Only audited images count towards the realised precision.
    audited = pick_threshold(np.array([1.0, 0.85, 0.85, 0.5]), 0.9, correct=np.array([True, False, True, True]),
                             known=np.array([True, True, False, True]))
    assert audited.n_evaluated == 2
    assert audited.realised_precision == 0.5



def test_promised_precision_interval_covers_the_truth() -> None:
    # The promise rests on a calibration fitted to 30 answers; its interval (Laplace draws) should hold the true
    # precision of the kept labels, computed from the Bayes posterior, in most draws, and shrink with more answers.
    rng = np.random.default_rng(123)
    positive = rng.random(5000) < 0.5
    x = rng.normal(np.where(positive, 1.0, -1.0), 1.0)
    population = calibration_features(two_class_proba(tempered(x)))
    bayes = sigmoid(2.0 * np.abs(x))
    width: dict[int, list[float]] = {30: [], 150: []}
    covered = 0
    for seed in range(30):
        for n in width:
            model = ConfidenceCalibrator().fit(*two_gaussians(n, seed))
            confidence = model.predict_confidence(population)
            draws = model.sample_confidence(population, n_draws=100, random_state=seed)
            assert draws.shape == (100, 5000)
            choice = pick_threshold(confidence, 0.9, confidence_draws=draws)
            assert choice.threshold is not None
            lo, hi = choice.promised_interval
            width[n].append(hi - lo)
            if n == 30:
                covered += lo <= bayes[confidence >= choice.threshold].mean() <= hi
    assert covered >= 26
    assert np.mean(width[150]) < 0.7 * np.mean(width[30])

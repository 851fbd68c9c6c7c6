"""The threshold picker on synthetic scores with a known precision curve."""

from __future__ import annotations

import numpy as np
import pytest
from two_gaussians import tempered, two_class_proba, two_gaussians

from labeler.core.calibrate import ConfidenceCalibrator
from labeler.core.calibration_evidence import calibration_features
from labeler.core.threshold import kept_precision, pick_threshold

Z_95 = 1.959963984540054


def test_threshold_picker_on_a_known_precision_curve() -> None:
    # Calibrated confidences uniform on [0.5, 1], taken as exact (no draws). Above t the expected precision is
    # (1 + t) / 2 and the m = n (1 - t) / 0.5 kept labels' share right has variance E[p (1 - p)] / m, with
    # E[p (1 - p)] = (1 + t) / 2 - (1 + t + t^2) / 3. The picker keeps the most labels whose 95 % interval's lower
    # end, (1 + t) / 2 - 1.96 sd, reaches 0.9: slightly above t = 0.8, where the mean alone would stop.
    n = 20_000
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, n)
    correct = rng.random(n) < confidence
    t = np.linspace(0.7, 0.9, 20_001)
    lower = (1 + t) / 2 - Z_95 * np.sqrt(((1 + t) / 2 - (1 + t + t**2) / 3) / (n * (1 - t) / 0.5))
    expected_t = t[np.argmax(lower >= 0.9)]
    assert 0.81 < expected_t < 0.82
    choice = pick_threshold(confidence, 0.9, correct=correct)
    assert choice.threshold == pytest.approx(expected_t, abs=0.005)
    assert choice.expected_interval[0] == pytest.approx(0.9, abs=1e-3)
    assert choice.expected_interval[0] >= 0.9
    assert choice.expected_precision == pytest.approx((1 + expected_t) / 2, abs=2e-3)
    assert choice.n_kept == pytest.approx(n * (1 - expected_t) / 0.5, rel=0.03)
    assert choice.n_evaluated == choice.n_kept
    assert choice.expected_interval[0] <= choice.realised_precision <= choice.expected_interval[1]
    assert choice.interval[0] <= choice.realised_precision <= choice.interval[1]


def test_the_interval_without_draws_holds_the_realised_share_as_often_as_stated() -> None:
    # Exact probabilities, labels right or wrong at random: the interval is the Poisson-binomial spread alone and
    # should hold the realised share right about 95 % of the time (normal approximation, 200 labels).
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0.6, 1.0, 200)
    estimate = kept_precision(confidence, 0.0)
    assert estimate.n_kept == 200
    assert estimate.expected == pytest.approx(confidence.mean())
    lo, hi = estimate.interval
    realised = (rng.random((4000, 200)) < confidence).mean(axis=1)
    assert 0.93 <= np.mean((lo <= realised) & (realised <= hi)) <= 0.97
    assert kept_precision(confidence, 1.1).n_kept == 0


def test_a_few_labels_are_a_count_not_a_normal_spread() -> None:
    # Ten labels at 0.995: one of them is wrong with probability 1 - 0.995 ** 10 = 0.049, and one wrong of ten is
    # 90 %, under a 95 % target; so no promise at 97.5 % (the normal approximation, mean 0.995 - 1.96 * 0.0223 =
    # 0.951, would have made one). At 0.998 one is wrong with probability 0.020 <= 0.025: the ten qualify.
    assert pick_threshold(np.full(10, 0.995), 0.95).threshold is None
    ten = pick_threshold(np.full(10, 0.998), 0.95)
    assert ten.n_kept == 10
    assert ten.expected_interval == pytest.approx((0.998, 1.0))
    estimate = kept_precision(np.full(10, 0.995), 0.5)
    assert estimate.interval == pytest.approx((0.9, 1.0))  # 0 or 1 wrong: P(2 or more) = 0.001
    # Many labels: the count is nearly normal, and the interval is the normal one to within a label or two.
    many = kept_precision(np.full(4000, 0.9), 0.5)
    sd = np.sqrt(0.09 / 4000)
    assert many.interval[0] == pytest.approx(0.9 - Z_95 * sd, abs=1e-3)
    assert many.interval[1] == pytest.approx(0.9 + Z_95 * sd, abs=1e-3)


def test_threshold_picker_edge_cases() -> None:
    none = pick_threshold(np.array([0.5, 0.6]), 0.9)
    assert none.threshold is None
    assert none.n_kept == 0
    # Four labels averaging 0.9 do not make a 0.9 promise: their share right could well be 3 of 4. The 0.99 one alone
    # does: it is right with probability 0.99 >= 0.975, and then the share is 1.
    single = pick_threshold(np.array([0.99, 0.85, 0.85, 0.9]), 0.9)
    assert single.n_kept == 1
    assert single.expected_interval == pytest.approx((0.99, 1.0))  # widened to hold the expected 0.99
    assert pick_threshold(np.array([0.97, 0.85, 0.85, 0.9]), 0.9).threshold is None
    # A run of equal confidences is kept or dropped as a whole: 1000 at 1.0 and 1000 at 0.85 average 0.925, lower
    # end about 0.925 - 1.96 sqrt(1000 * 0.1275) / 2000 = 0.914 (150 wrong expected: the count is nearly normal);
    # the 0.5 run would drag it far below.
    confidence = np.repeat([1.0, 0.85, 0.5], 1000)
    tied = pick_threshold(confidence, 0.9)
    assert tied.threshold == 0.85
    assert tied.n_kept == 2000
    assert tied.expected_interval[0] == pytest.approx(0.925 - Z_95 * np.sqrt(127.5) / 2000, abs=1e-3)
    # Only audited images count towards the realised precision.
    known = np.zeros(3000, dtype=bool)
    known[[0, 1000, 1001, 2000]] = True
    correct = np.zeros(3000, dtype=bool)
    correct[[0, 1000, 2000]] = True
    audited = pick_threshold(confidence, 0.9, correct=correct, known=known)
    assert audited.n_evaluated == 3
    assert audited.realised_precision == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="level"):
        pick_threshold(confidence, 0.9, level=1.0)


def test_the_promise_holds_with_a_calibration_fitted_on_few_answers() -> None:
    # The promise rests on a calibration fitted to 30 (or 150) answers; its 95 % interval (posterior draws plus the
    # finite number kept) should hold the share actually right among the kept labels (known here: every draw's class
    # is) in most fits, and the target should be met. With 30 answers the posterior is wide, so the picker keeps few
    # labels or, when even the most confident ones could plausibly fall short, none; more answers keep more.
    rng = np.random.default_rng(123)
    positive = rng.random(5000) < 0.5
    x = rng.normal(np.where(positive, 1.0, -1.0), 1.0)
    population = calibration_features(two_class_proba(tempered(x)))
    right = (x > 0) == positive
    width: dict[int, list[float]] = {30: [], 150: []}
    kept: dict[int, list[int]] = {30: [], 150: []}
    covered = met = chosen = 0
    for seed in range(30):
        for n in width:
            model = ConfidenceCalibrator().fit(*two_gaussians(n, seed))
            confidence = model.predict_confidence(population)
            draws = model.sample_confidence(population, n_draws=100, random_state=seed)
            assert draws.shape == (100, 5000)
            choice = pick_threshold(confidence, 0.9, correct=right, confidence_draws=draws)
            kept[n].append(choice.n_kept)
            if choice.threshold is None:
                continue
            lo, hi = choice.expected_interval
            assert lo >= 0.9
            width[n].append(hi - lo)
            chosen += 1
            covered += lo <= choice.realised_precision <= hi
            met += choice.realised_precision >= 0.9
    assert min(kept[150]) > 0
    assert sum(k == 0 for k in kept[30]) <= 8
    assert np.mean(kept[150]) > 1.5 * np.mean(kept[30])
    assert covered >= 0.9 * chosen
    assert met >= 0.95 * chosen
    assert np.mean(width[150]) < np.mean(width[30])

"""Calibration against known answers: two Gaussians' Bayes posterior, ECE by hand, Wilson coverage, threshold picker."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.base import clone

from labeler.core.calibrate import (
    DEFAULT_SLOPE,
    MAX_LOG_RATIO,
    ConfidenceCalibrator,
    calibration_evidence,
    calibration_features,
    expected_calibration_error,
    nested_selection_accuracy,
    pick_threshold,
    reliability_curve,
    seed_hops,
    wilson_interval,
)

# Two classes, x ~ N(+-1, 1), equal priors; the classifier says sign(x). Its Bayes probability of being right is
# sigmoid(2 |x|). The scores handed to the calibrator are a tempered posterior, p = sigmoid(TEMPER x), like label
# spreading's underconfident mass: log(p1 / p2) = TEMPER |x|, so the right mapping is sigmoid(2 / TEMPER * feature),
# a slope of 2.9 where the default prior says 4.
TEMPER = 0.7
GRID = np.linspace(0.0, 3.0, 61)
Distortion = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def tempered(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return TEMPER * x


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-z))


def _proba(score: NDArray[np.float64]) -> NDArray[np.float64]:
    p = _sigmoid(score)
    return np.stack([1.0 - p, p], axis=1)


def two_gaussians(n: int, seed: int, distort: Distortion = tempered) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Features of ``n`` draws and whether sign(x) is the true class."""
    rng = np.random.default_rng(seed)
    positive = rng.random(n) < 0.5
    x = rng.normal(np.where(positive, 1.0, -1.0), 1.0)
    return calibration_features(_proba(distort(x))), (x > 0) == positive


def errors(model: ConfidenceCalibrator, distort: Distortion = tempered) -> NDArray[np.float64]:
    """Calibrated minus Bayes P(correct) on GRID (|x| from 0 to 3)."""
    return model.predict_confidence(calibration_features(_proba(distort(GRID)))) - _sigmoid(2.0 * GRID)


# ---------------------------------------------------------------------------- features
def test_features_are_the_log_ratio_of_the_top_two() -> None:
    proba = np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    X = calibration_features(proba)
    assert X.shape == (4, 1)
    np.testing.assert_allclose(X[:, 0], [np.log(2.0), np.log(3.0), 0.0, MAX_LOG_RATIO])


def test_optional_feature_columns() -> None:
    proba = np.array([[0.6, 0.4], [0.5, 0.5]])
    X = calibration_features(proba, stability=np.array([1.0, np.nan]), seed_hops=np.array([1.0, np.inf]))
    np.testing.assert_allclose(X, [[np.log(1.5), 0.0, 0.0], [0.0, 0.0, 10 * np.log(2.0)]])
    with pytest.raises(ValueError, match="stability"):
        calibration_features(proba, stability=np.ones(3))


def test_seed_hops_on_a_path() -> None:
    # 0 - 1 - 2 - 3 - 4 - 5, seeds at 0 and 4; 6 - 7 is a component without seeds.
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (6, 7)]
    rows, cols = zip(*edges, strict=True)
    A = sp.coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(8, 8))
    W = (A + A.T).tocsr()
    y = np.array([0, -1, -1, -1, 1, -1, -1, -1])
    np.testing.assert_array_equal(seed_hops(W, y), [4, 1, 2, 1, 4, 1, np.inf, np.inf])
    lonely = np.array([0, -1, -1, -1, -1, -1, -1, -1])
    assert seed_hops(W, lonely)[0] == np.inf  # no other seed to reach
    assert np.all(np.isinf(seed_hops(W, np.full(8, -1))))


def test_evidence_drops_unusable_seeds_and_scores_audits_against_current_labels() -> None:
    y_seed = np.array([0, 0, 1, 2, 2])
    loo_label = np.array([0, 1, 0, 2, -1])  # class 1 has one seed; the last seed is reached by no other
    loo_proba = np.array([[0.6, 0.2, 0.2], [0.3, 0.5, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.0, 0.0, 0.0]])
    evidence = calibration_evidence(
        y_seed, loo_label, loo_proba,
        audit_proba=np.array([[0.7, 0.2, 0.1]]), audit_label=np.array([1]), audit_answer=np.array([1]),
        audit_weight=2.0,
    )
    np.testing.assert_array_equal(evidence.correct, [True, False, True, True])
    np.testing.assert_allclose(evidence.sample_weight, [1, 1, 1, 2])
    np.testing.assert_array_equal(evidence.proxy, [True, True, True, False])
    np.testing.assert_allclose(evidence.X[:, 0], np.log([3.0, 0.5 / 0.3, 3.0, 3.5]))
    # An audit answered before a relabel is scored against the label the image has now.
    after_relabel = calibration_evidence(
        y_seed[:0], loo_label[:0], loo_proba[:0],
        audit_proba=np.array([[0.7, 0.2, 0.1]]), audit_label=np.array([0]), audit_answer=np.array([1]),
    )
    np.testing.assert_array_equal(after_relabel.correct, [False])


def test_no_usable_leave_one_out_with_one_label_per_class() -> None:
    X, correct, weight, proxy = calibration_evidence(np.array([0, 1, 2]), np.array([1, 0, 0]), np.full((3, 3), 1 / 3))
    assert X.shape == (0, 1)
    assert correct.size == weight.size == proxy.size == 0


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


# ---------------------------------------------------------------------------- the calibrator
def test_without_evidence_the_default_mapping() -> None:
    model = ConfidenceCalibrator().fit(np.empty((0, 1)), np.empty(0, dtype=bool))
    feature = np.linspace(0.0, 2.0, 5)[:, None]
    np.testing.assert_allclose(model.predict_confidence(feature), _sigmoid(DEFAULT_SLOPE * feature[:, 0]))
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
    assert np.all(p > _sigmoid(DEFAULT_SLOPE * np.array([0.0, 0.5, 1.0])))  # ten right answers raise it
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


# ---------------------------------------------------------------------------- ECE and reliability
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


# ---------------------------------------------------------------------------- Wilson interval
def test_wilson_known_values() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4)
    assert hi == pytest.approx(1.0)
    lo, hi = wilson_interval(40, 50)
    assert lo == pytest.approx(0.6696, abs=1e-4)
    assert hi == pytest.approx(0.8876, abs=1e-4)
    assert wilson_interval(12.5, 20.0)[0] < 12.5 / 20 < wilson_interval(12.5, 20.0)[1]  # effective counts
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (8, 10, 0.4902, 0.9433),  # Newcombe 1998 / standard tables
        (81, 263, 0.2553, 0.3662),  # Newcombe 1998, table I example
    ],
)
def test_wilson_published_values(k: int, n: int, lo: float, hi: float) -> None:
    assert wilson_interval(k, n) == (pytest.approx(lo, abs=1e-4), pytest.approx(hi, abs=1e-4))


def test_wilson_coverage_by_simulation() -> None:
    rng = np.random.default_rng(0)
    n, p = 50, 0.8
    hits = rng.binomial(n, p, size=4000)
    bounds = np.array([wilson_interval(k, n) for k in hits])
    coverage = np.mean((bounds[:, 0] <= p) & (p <= bounds[:, 1]))
    assert 0.935 <= coverage <= 0.965  # exact coverage at n=50, p=0.8 is 0.951


# ---------------------------------------------------------------------------- threshold picker
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


# ---------------------------------------------------------------------------- selection-corrected accuracy
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


def test_promised_precision_interval_covers_the_truth() -> None:
    # The promise rests on a calibration fitted to 30 answers; its interval (Laplace draws) should hold the true
    # precision of the kept labels, computed from the Bayes posterior, in most draws, and shrink with more answers.
    rng = np.random.default_rng(123)
    positive = rng.random(5000) < 0.5
    x = rng.normal(np.where(positive, 1.0, -1.0), 1.0)
    population = calibration_features(_proba(tempered(x)))
    bayes = _sigmoid(2.0 * np.abs(x))
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

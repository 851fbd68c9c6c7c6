import numpy as np
import pytest

from labeler.core.audit import (
    audit_estimate,
    audit_sample,
    reliability_table,
    threshold_for_precision,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (8, 10, 0.4902, 0.9433),  # Newcombe 1998 / standard tables
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),  # Newcombe 1998, table I example
    ],
)
def test_wilson_interval_published_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4)
    assert got[1] == pytest.approx(hi, abs=1e-4)


def test_wilson_edge_cases():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_audit_sample_uniform_and_stratified():
    candidates = np.arange(100, 1100)
    picked = audit_sample(candidates, 50, random_state=0)
    assert len(set(picked.tolist())) == 50
    assert np.isin(picked, candidates).all()
    confidence = np.linspace(0.3, 1.0, 1000)
    strat = audit_sample(candidates, 50, confidence=confidence, stratified=True, random_state=0)
    assert len(set(strat.tolist())) == 50
    # Proportional allocation: 10 per confidence quintile.
    bands = np.searchsorted(np.quantile(confidence, [0.2, 0.4, 0.6, 0.8]), confidence[strat - 100], side="right")
    np.testing.assert_array_equal(np.bincount(bands, minlength=5), [10] * 5)
    assert audit_sample(candidates[:3], 10).size == 3


@pytest.mark.parametrize("stratified", [False, True])
def test_audit_estimate_unbiased_with_calibrated_interval(stratified):
    rng = np.random.default_rng(0)
    n_pop = 5000
    confidence = rng.uniform(0.4, 1.0, n_pop)
    # Errors concentrate at low confidence; true accuracy of the population is known exactly.
    correct = rng.random(n_pop) < confidence
    true_accuracy = correct.mean()
    pred = np.zeros(n_pop, dtype=int)
    truth = np.where(correct, 0, 1)
    estimates, covered = [], 0
    for draw in range(400):
        idx = audit_sample(np.arange(n_pop), 100, confidence=confidence, stratified=stratified, random_state=draw)
        est = audit_estimate(truth[idx], pred[idx], [0, 1])
        estimates.append(est.accuracy)
        covered += est.interval[0] <= true_accuracy <= est.interval[1]
    assert np.mean(estimates) == pytest.approx(true_accuracy, abs=0.005)
    assert 0.90 <= covered / 400 <= 0.99


def test_audit_estimate_per_class_is_precision_of_predicted_label():
    true = ["cat", "cat", "dog", "dog", "dog", "cat"]
    pred = ["cat", "cat", "dog", "cat", "dog", "cat"]
    est = audit_estimate(true, pred, ["cat", "dog", "bird"])
    assert est.accuracy == pytest.approx(5 / 6)
    assert est.n == 6
    assert est.per_class["cat"][0] == pytest.approx(3 / 4)
    assert est.per_class["cat"][3] == 4
    assert est.per_class["dog"][:2] == (1.0, pytest.approx(wilson_interval(2, 2)[0]))
    assert est.per_class["bird"][3] == 0
    assert est.interval == pytest.approx(wilson_interval(5, 6))


def test_reliability_table_known_counts():
    confidence = np.array([0.15, 0.55, 0.58, 0.95, 0.97, 0.99])
    correct = np.array([0, 1, 0, 1, 1, 1], dtype=bool)
    rows = reliability_table(confidence, correct, n_bins=10)
    assert [(r.bin_lo, r.n, r.accuracy) for r in rows] == [
        (pytest.approx(0.1), 1, 0.0),
        (pytest.approx(0.5), 2, 0.5),
        (pytest.approx(0.9), 3, 1.0),
    ]
    assert rows[2].mean_confidence == pytest.approx(0.97)


def test_threshold_for_precision():
    confidence = np.linspace(0.5, 1.0, 200)
    correct = confidence > 0.7  # everything above 0.7 is right, nothing below
    t_point = threshold_for_precision(confidence, correct, 0.95, conservative=False)
    assert t_point is not None
    # Point estimate: precision of {conf >= t} reaches 0.95 once at most ~5% of the kept images are wrong.
    kept = confidence >= t_point
    assert correct[kept].mean() >= 0.95
    assert correct[confidence >= confidence[confidence < t_point].max()].mean() < 0.95
    t_safe = threshold_for_precision(confidence, correct, 0.95)
    assert t_safe is not None
    assert t_safe > t_point  # the Wilson lower bound asks for more margin
    assert threshold_for_precision(confidence[:5], np.ones(5, bool), 0.95) is None  # 5/5 is not proof of 95%

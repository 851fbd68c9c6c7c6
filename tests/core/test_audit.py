import numpy as np
import pytest

from labeler.core import audit, intervals
from labeler.core.audit import audit_estimate, audit_sample
from labeler.core.intervals import wilson_interval


def test_one_wilson_interval_and_no_twins() -> None:
    # The interval, the reliability curve and the threshold picker have one implementation each (labeler.core.intervals,
    # .reliability, .threshold).
    assert audit.wilson_interval is intervals.wilson_interval
    for twin in ("reliability_table", "ReliabilityRow", "threshold_for_precision"):
        assert not hasattr(audit, twin)


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

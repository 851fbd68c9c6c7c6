"""Features and evidence for calibration: known log-ratios, hops on a path, which rows count and how."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from labeler.core.calibration_evidence import MAX_LOG_RATIO, calibration_evidence, calibration_features, seed_hops


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

"""The simulated prior against a known answer: Gaussian classes whose Bayes posterior gives every image's true
probability of carrying the right label, spread from one label per class."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.typing import NDArray

from labeler.core import graph, propagate
from labeler.core.calibrate import DEFAULT_INTERCEPT, DEFAULT_SLOPE, ConfidenceCalibrator
from labeler.core.calibration_evidence import calibration_features
from labeler.core.simulated_prior import BIAS_SD, MAX_INTERCEPT_SD, SimulatedPrior, simulated_prior

N_CLASSES, DIM, SEPARATION, N = 3, 8, 3.0, 1500


def gaussian_world(seed: int) -> tuple[sp.csr_matrix, NDArray[np.int64], NDArray[np.float64]]:
    """Three classes x ~ N(3 e_c, I) in 8 dimensions, equal priors; a Euclidean kNN graph; one random label per
    class. Returns the graph, the seeds (-1 elsewhere) and the Bayes posterior P(class | x), shape (N, 3)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, N)
    means = np.zeros((N_CLASSES, DIM))
    means[np.arange(N_CLASSES), np.arange(N_CLASSES)] = SEPARATION
    X = means[y] + rng.normal(size=(N, DIM))
    logits = SEPARATION * X[:, :N_CLASSES]  # x . mu_c - |mu_c|^2 / 2, the last term equal for every class
    posterior = np.exp(logits - logits.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    seeds = np.full(N, -1)
    for c in range(N_CLASSES):
        seeds[rng.choice(np.flatnonzero(y == c))] = c
    return graph.knn_graph(X, 15, metric="euclidean"), seeds, posterior


def ece_against(confidence: NDArray[np.float64], truth: NDArray[np.float64], n_bins: int = 10) -> float:
    """Expected calibration error against the true probabilities of being right (no sampling noise in the truth)."""
    which = np.clip(np.digitize(confidence, np.linspace(0, 1, n_bins + 1)[1:-1], right=True), 0, n_bins - 1)
    gaps = [np.sum(which == b) * abs(confidence[which == b].mean() - truth[which == b].mean())
            for b in range(n_bins) if np.any(which == b)]
    return float(np.sum(gaps) / confidence.size)


def test_at_one_label_per_class_the_simulated_prior_is_closer_to_the_bayes_posterior() -> None:
    # Known answer: an image labeled c is right with probability P(c | x). With no leave-one-out evidence the
    # calibrator's prior mean is all there is (and with 30 audits it still weighs): the mapping simulated on the graph
    # should match those probabilities better than the default sigmoid(4 log(p1 / p2)).
    default_ece, simulated_ece, default_30, simulated_30 = [], [], [], []
    for seed in range(10):
        W, seeds, posterior = gaussian_world(seed)
        result = propagate.propagate(W, seeds, N_CLASSES, n_bootstrap=0)
        rows = np.flatnonzero(result.source == propagate.Source.PROPAGATED)
        X = calibration_features(result.proba[rows])
        truth = posterior[rows, result.label[rows]]
        prior = simulated_prior(W, seeds, result.label, N_CLASSES, random_state=seed)
        assert prior.n_rows > 0
        empty = (np.empty((0, 1)), np.empty(0, dtype=bool))
        default_ece.append(ece_against(ConfidenceCalibrator().fit(*empty).predict_confidence(X), truth))
        simulated_ece.append(ece_against(prior.calibrator().fit(*empty).predict_confidence(X), truth))
        rng = np.random.default_rng(500 + seed)
        audited = rng.choice(rows.size, 30, replace=False)
        answers = rng.random(30) < truth[audited]  # a blind audit: right with the true probability
        default_30.append(ece_against(ConfidenceCalibrator().fit(X[audited], answers).predict_confidence(X), truth))
        simulated_30.append(ece_against(prior.calibrator().fit(X[audited], answers).predict_confidence(X), truth))
    assert np.mean(simulated_ece) < 0.6 * np.mean(default_ece)
    assert sum(s < d for s, d in zip(simulated_ece, default_ece, strict=True)) >= 8
    assert np.mean(simulated_30) < np.mean(default_30)


def test_on_a_path_only_images_near_the_boundary_disagree() -> None:
    # A path of 60 images, the first half labeled 0 and the second 1. Re-seeded at random within each half, spreading
    # puts the boundary between the two seeds, so the images that disagree lie between the true boundary and the new
    # one, where the two classes' masses are close: agreement is high but below 1, and rises with log(p1 / p2).
    n = 60
    A = sp.diags(np.ones(n - 1), 1, shape=(n, n))
    W = (A + A.T).tocsr()
    label = np.repeat([0, 1], n // 2)
    seeds = np.full(n, -1)
    seeds[[10, 45]] = [0, 1]
    prior = simulated_prior(W, seeds, label, 2, n_repeats=20)
    assert prior.n_rows == 20 * (n - 2)
    assert 0.7 < prior.agreement < 1.0
    assert prior.coef > 0


def test_nothing_to_simulate_gives_the_default_mapping() -> None:
    W = sp.identity(4, format="csr")
    one_class = simulated_prior(W, np.array([0, -1, -1, -1]), np.array([0, 0, 0, 0]), 2)
    assert one_class == SimulatedPrior()
    assert (one_class.coef, one_class.intercept, one_class.n_rows) == (DEFAULT_SLOPE, DEFAULT_INTERCEPT, 0)
    calibrator = SimulatedPrior(2.5, -0.5).calibrator(coef_sd=2.0)
    assert (calibrator.prior_coef, calibrator.prior_intercept, calibrator.coef_sd) == ((2.5,), -0.5, 2.0)
    with pytest.raises(ValueError, match="shape"):
        simulated_prior(W, np.array([0, 1, -1, -1]), np.array([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="n_repeats"):
        simulated_prior(W, np.array([0, 1, -1, -1]), np.array([0, 1, 1, 1]), 2, n_repeats=0)


def test_the_width_on_the_level_joins_the_unseen_bias_and_the_simulated_spread_at_the_simulated_level() -> None:
    # sqrt(BIAS_SD^2 + spread^2) in probability is that over a (1 - a) logits at level a (the logistic's slope there).
    assert SimulatedPrior(3.0, 0.0, 100, 0.5).intercept_sd == pytest.approx(BIAS_SD / 0.25)
    assert SimulatedPrior(3.0, 0.0, 100, 0.8, 0.05).level_sd == pytest.approx(np.sqrt(BIAS_SD**2 + 0.05**2))
    assert SimulatedPrior(3.0, 0.0, 100, 0.8, 0.05).intercept_sd == pytest.approx(np.hypot(BIAS_SD, 0.05) / 0.16)
    assert SimulatedPrior(3.0, 0.0, 100, 0.98).intercept_sd == MAX_INTERCEPT_SD  # 3.3 logits, capped
    assert SimulatedPrior(3.0, 0.0, 100, 0.6, 0.3).intercept_sd == MAX_INTERCEPT_SD  # re-seedings disagree widely
    assert SimulatedPrior(3.0, 0.0, 100, 1.0).intercept_sd == MAX_INTERCEPT_SD  # every simulated row agreed
    assert SimulatedPrior().intercept_sd == MAX_INTERCEPT_SD  # the default mapping was not simulated
    assert SimulatedPrior(3.0, 0.0, 100, 0.5).calibrator().intercept_sd == pytest.approx(BIAS_SD / 0.25)
    assert SimulatedPrior(3.0, 0.0, 100, 0.5).calibrator(intercept_sd=2.0).intercept_sd == 2.0


@pytest.mark.parametrize("spread", [0.0, 0.05])
def test_thirty_audits_and_the_prior_weigh_by_their_precisions(spread: float) -> None:
    # Known answer (normal approximation): a prior level of 0.6 with sd s = level_sd and 30 answers 80 % right
    # (chance sd sqrt(0.6 * 0.4 / 30) = 0.089 about the prior's level) combine to 0.6 + 0.2 s^2 / (s^2 + 0.089^2):
    # 0.67 for s = 0.065, 0.69 for s = 0.082. A width of 1 logit (0.24 in probability here) let the answers all
    # but decide: 0.77.
    prior = SimulatedPrior(0.0, float(np.log(0.6 / 0.4)), 1000, 0.6, spread)
    s2, chance2 = prior.level_sd**2, 0.6 * 0.4 / 30
    X, right = np.zeros((30, 1)), np.arange(30) < 24
    level = prior.calibrator().fit(X, right).predict_confidence(np.zeros((1, 1)))[0]
    assert level == pytest.approx(0.6 + 0.2 * s2 / (s2 + chance2), abs=0.01)
    before = prior.calibrator(intercept_sd=MAX_INTERCEPT_SD).fit(X, right).predict_confidence(np.zeros((1, 1)))[0]
    assert before > 0.76


def test_the_spread_is_how_much_the_agreement_differs_between_re_seedings() -> None:
    # On the path of test_on_a_path_only_images_near_the_boundary_disagree, where the boundary lands depends on where
    # the two seeds fall: the agreement differs from one re-seeding to the next. One re-seeding has no spread.
    n = 60
    A = sp.diags(np.ones(n - 1), 1, shape=(n, n))
    W = (A + A.T).tocsr()
    label, seeds = np.repeat([0, 1], n // 2), np.full(n, -1)
    seeds[[10, 45]] = [0, 1]
    assert 0.01 < simulated_prior(W, seeds, label, 2, n_repeats=20).spread < 0.3
    assert simulated_prior(W, seeds, label, 2, n_repeats=1).spread == 0.0
    # Two well-separated cliques: every re-seeding recovers the labels, no spread.
    cliques = sp.block_diag([np.ones((5, 5)) - np.eye(5)] * 2, format="csr")
    two = simulated_prior(cliques, np.array([0] + [-1] * 4 + [1] + [-1] * 4), np.repeat([0, 1], 5), 2)
    assert two.agreement == 1.0
    assert two.spread == 0.0

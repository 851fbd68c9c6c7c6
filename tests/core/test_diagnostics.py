import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from sklearn.datasets import make_blobs, make_moons

from labeler.core.diagnostics import (
    accuracy_against_truth,
    choose_representation,
    compare_representations,
    learning_curve_point,
    loo_accuracy,
    loo_from_influence,
    loo_scores,
    seed_influence,
    supervised_baseline_loo,
)
from labeler.core.graph import knn_graph
from labeler.core.propagate import balanced_seeds, normalized_affinity, one_hot


@pytest.fixture(scope="module")
def blobs():
    X, truth = make_blobs(300, centers=[[0, 0, 5], [5, 0, 0], [0, 5, 0]], cluster_std=0.5, random_state=0)
    y = np.full(300, -1)
    rng = np.random.default_rng(0)
    for c in range(3):
        y[rng.choice(np.flatnonzero(truth == c), 6, replace=False)] = c
    return X, truth, y


def test_loo_accuracy_clean_and_with_one_wrong_label(blobs):
    X, _, y = blobs
    W = knn_graph(X, 10)
    assert loo_accuracy(W, y, 3) == 1.0
    y_bad = y.copy()
    y_bad[np.flatnonzero(y == 0)[0]] = 1
    # The wrong label is contradicted by its neighbours: exactly one of 18 is not reproduced.
    assert loo_accuracy(W, y_bad, 3) == pytest.approx(17 / 18)
    assert np.isnan(loo_accuracy(W, np.full(300, -1), 3))


def test_supervised_baseline(blobs):
    X, truth, y = blobs
    assert supervised_baseline_loo(X, y) == 1.0
    # Many labels: 10-fold instead of leave-one-out, still perfect on separable data.
    assert supervised_baseline_loo(X, truth) == 1.0
    assert supervised_baseline_loo(X, np.r_[0, np.full(299, -1)]) == 0.0


def test_supervised_baseline_is_not_biased_by_the_held_out_class_being_short():
    # Three labels for each of ten classes: leaving one out leaves its class with two against three of every other.
    # Without balancing, a regularised model then rarely predicts the held-out class (0.73 here, against 0.98 of
    # the rest of the points right from the same labels); the held-out estimate must be close to that.
    X, truth = make_blobs(1000, n_features=20, centers=10, cluster_std=4.0, random_state=0)
    rng = np.random.default_rng(0)
    seeds = np.concatenate([rng.choice(np.flatnonzero(truth == c), 3, replace=False) for c in range(10)])
    y = np.full(len(truth), -1)
    y[seeds] = truth[seeds]
    assert supervised_baseline_loo(X, y) >= 0.9


def test_propagation_beats_linear_baseline_on_moons():
    # The manifold assumption holds on two moons: the graph wins with few labels, a linear model cannot.
    X, truth = make_moons(300, noise=0.05, random_state=0)
    y = np.full(300, -1)
    rng = np.random.default_rng(2)
    for c in (0, 1):
        y[rng.choice(np.flatnonzero(truth == c), 8, replace=False)] = c
    W = knn_graph(X, 10, metric="euclidean")
    assert loo_accuracy(W, y, 2) == 1.0
    assert supervised_baseline_loo(X, y) < 1.0


def test_compare_representations_prefers_informative_one(blobs):
    X, _, y = blobs
    noise = np.random.default_rng(0).normal(size=X.shape)
    correct = compare_representations({"good": X, "noise": noise}, y, 3, n_neighbors=10)
    # One entry per human label, in the order of the labeled rows, for every representation.
    n_labels = int(np.sum(y >= 0))
    assert {name: v.shape for name, v in correct.items()} == {"good": (n_labels,), "noise": (n_labels,)}
    assert correct["good"].all()
    assert correct["noise"].mean() < 0.7


def test_compare_representations_reuses_given_graphs(blobs, monkeypatch):
    from labeler.core import diagnostics
    from labeler.core.graph import knn_indices

    X, _, y = blobs
    noise = np.random.default_rng(0).normal(size=X.shape)
    built = compare_representations({"good": X, "noise": noise}, y, 3, n_neighbors=10)
    given = {"good": knn_indices(X, 10), "noise": knn_graph(noise, 10)}  # kNN lists, or an affinity matrix

    def no_search(*args, **kwargs):
        raise AssertionError("a kNN graph was searched again although it was given")

    monkeypatch.setattr(diagnostics, "knn_graph", no_search)
    reused = compare_representations({"good": X, "noise": noise}, y, 3, n_neighbors=10, graphs=given)
    assert reused.keys() == built.keys()
    for name, correct in built.items():
        np.testing.assert_array_equal(reused[name], correct)


def test_accuracy_against_truth_and_learning_curve():
    pred = np.array([0, 1, 1, -1, 2])
    truth = np.array([0, 1, 0, 1, -1])
    assert accuracy_against_truth(pred, truth) == (0.5, 4)
    assert accuracy_against_truth(pred, truth, np.array([1, 1, 0, 0, 0], bool)) == (1.0, 2)
    assert np.isnan(accuracy_against_truth(pred, np.full(5, -1))[0])
    y = np.array([0, -1, -1, -1, -1])
    point = learning_curve_point(y, pred, truth)
    assert point == {"n_labels": 1.0, "accuracy": pytest.approx(1 / 3), "n_evaluated": 3.0}


def _closed_form(W, y, n_classes, alpha, seed_matrix=one_hot):
    """Zhou et al. 2004: F* = (1 - alpha) (I - alpha S)^-1 Y."""
    W = W.toarray()
    d = W.sum(axis=1)
    S = W / np.sqrt(np.outer(d, d))
    return (1 - alpha) * np.linalg.solve(np.eye(len(d)) - alpha * S, seed_matrix(y, n_classes))


def test_loo_scores_equal_brute_force():
    W = knn_graph(np.random.default_rng(4).normal(size=(25, 4)), 5)
    y = np.full(25, -1)
    y[[0, 3, 7, 11, 15, 19]] = [0, 0, 1, 1, 2, 2]
    seeds, loo_label, loo_proba = loo_scores(W, y, 3, alpha=0.9)
    np.testing.assert_array_equal(seeds, [0, 3, 7, 11, 15, 19])
    for j, i in enumerate(seeds):
        y_drop = y.copy()
        y_drop[i] = -1
        F = _closed_form(W, y_drop, 3, 0.9, balanced_seeds)  # propagate() balances class mass
        np.testing.assert_allclose(loo_proba[j], F[i] / F[i].sum(), atol=1e-6)
        assert loo_label[j] == np.argmax(F[i])


def test_seed_influence_updated_label_by_label_equals_computing_it_again():
    rng = np.random.default_rng(0)
    S = normalized_affinity(knn_graph(rng.normal(size=(300, 5)), 8), dtype=np.float64)
    _, component = connected_components(S, directed=False)
    y = np.full(300, -1)
    y[rng.choice(300, 20, replace=False)] = rng.integers(0, 3, 20)
    kept = seed_influence(S, y, 3)
    for step in range(12):  # a label added, removed, or changed to another class, in turn
        i = rng.choice(np.flatnonzero(y < 0) if step % 3 == 0 else np.flatnonzero(y >= 0))
        y[i] = {0: rng.integers(0, 3), 1: -1, 2: (y[i] + 1) % 3}[step % 3]
        kept = seed_influence(S, y, 3, previous=kept)
        again = seed_influence(S, y, 3)
        np.testing.assert_array_equal(kept.seeds, np.flatnonzero(y >= 0))
        np.testing.assert_allclose(kept.others, again.others, atol=1e-8)
        np.testing.assert_allclose(kept.own, again.own, atol=1e-12)
        for a, b in zip(loo_from_influence(kept, component), loo_from_influence(again, component), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_choose_representation_keeps_the_preferred_one_until_it_can_measure():
    rng = np.random.default_rng(0)
    X, truth = make_blobs(120, centers=3, cluster_std=0.5, random_state=0)
    reps = {"baseline": X, "noise": rng.normal(size=(120, 5))}
    y = np.full(120, -1)
    for c in range(3):
        y[np.flatnonzero(truth == c)[0]] = c
    choice = choose_representation(reps, y, 3, preferred="baseline", n_neighbors=10)
    assert (choice.name, choice.scores, choice.loo_correct, choice.selection) == ("baseline", {}, {}, None)
    assert "too few labels" in choice.reason
    for c in range(3):
        y[np.flatnonzero(truth == c)[1:4]] = c
    choice = choose_representation(reps, y, 3, preferred="baseline", n_neighbors=10)
    assert choice.name == "baseline"
    assert choice.scores["baseline"] == 1.0
    assert choice.scores["noise"] < 0.8
    assert choice.scores["noise"] == pytest.approx(choice.loo_correct["noise"].mean())
    assert "leave-one-out" in choice.reason
    # Every held-out label is right on the kept representation: the corrected estimate is 12/12 too.
    assert choice.selection is not None
    assert (choice.selection.accuracy, choice.selection.n, choice.selection.chosen) == (1.0, 12, "baseline")
    assert "selection-corrected" in choice.reason
    # A better representation wins once measured.
    reps = {"baseline": rng.normal(size=(120, 5)), "good": X}
    assert choose_representation(reps, y, 3, preferred="baseline", n_neighbors=10).name == "good"


def test_choose_representation_needs_more_than_noise_to_switch():
    X, truth = make_blobs(120, centers=3, cluster_std=0.5, random_state=0)
    y = np.full(120, -1)
    for c in range(3):
        y[np.flatnonzero(truth == c)[:3]] = c
    # Two equally good representations: the preferred one is kept.
    shifted = X + 100.0
    choice = choose_representation({"a": X, "b": shifted}, y, 3, preferred="b", n_neighbors=10)
    assert choice.name == "b"
    assert choice.scores["a"] == choice.scores["b"]

    # One more label right of 12 (0.833 against 0.750) is less than one standard error, sqrt(0.75 * 0.25 / 12) =
    # 0.125: kept, and the reason gives the gap and the noise in plain numbers.
    X, truth = make_blobs(150, centers=3, cluster_std=1.5, random_state=0)
    y = np.full(150, -1)
    for c in range(3):
        y[np.flatnonzero(truth == c)[:4]] = c
    noisy = X + np.random.default_rng(3).normal(0.0, 1.0, X.shape)
    close = choose_representation({"a": X, "b": noisy}, y, 3, preferred="b", n_neighbors=10)
    assert close.scores == {"a": 10 / 12, "b": 9 / 12}
    assert close.name == "b"
    assert close.reason.startswith("b kept: a scored 0.083 higher, less than the ±0.125 a leave-one-out score on 12 "
                                   "human labels moves by chance (one standard error), so the difference may be noise")

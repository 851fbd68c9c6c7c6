import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_moons
from sklearn.semi_supervised import LabelSpreading

from labeler.core.graph import knn_graph
from labeler.core.propagate import (
    Source,
    label_spreading,
    normalized_affinity,
    one_hot,
    propagate,
    spread,
)


def _random_graph(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return knn_graph(rng.normal(size=(n, 4)), 5)


def _closed_form(W, y, n_classes, alpha):
    """Zhou et al. 2004: F* = (1 - alpha) (I - alpha S)^-1 Y."""
    W = W.toarray()
    d = W.sum(axis=1)
    S = W / np.sqrt(np.outer(d, d))
    return (1 - alpha) * np.linalg.solve(np.eye(len(d)) - alpha * S, one_hot(y, n_classes))


@pytest.mark.parametrize("method", ["cg", "iterate"])
def test_matches_closed_form(method):
    W = _random_graph()
    y = np.full(30, -1)
    y[[0, 1, 2]] = [0, 1, 2]
    F = label_spreading(W, y, 3, alpha=0.9, tol=1e-10, method=method, dtype=np.float64, max_iter=5000)
    np.testing.assert_allclose(F, _closed_form(W, y, 3, 0.9), rtol=1e-6, atol=1e-10)


def test_float32_close_to_float64():
    W = _random_graph()
    y = np.full(30, -1)
    y[[0, 1]] = [0, 1]
    F32 = label_spreading(W, y, 2, alpha=0.99, tol=1e-6)
    exact = _closed_form(W, y, 2, 0.99)
    np.testing.assert_allclose(F32, exact, rtol=1e-3, atol=1e-5)


def test_matches_sklearn_label_spreading_on_the_same_graph():
    W = _random_graph(40, seed=3)
    dense = W.toarray().astype(np.float64)
    y = np.full(40, -1)
    y[[0, 5, 9, 20]] = [0, 1, 1, 2]
    model = LabelSpreading(kernel=lambda a, b: dense, alpha=0.8, max_iter=10_000, tol=1e-12)
    model.fit(np.zeros((40, 1)), y)
    F = label_spreading(W, y, 3, alpha=0.8, tol=1e-12, dtype=np.float64)
    proba = F / F.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, model.label_distributions_, atol=1e-8)
    np.testing.assert_array_equal(np.argmax(F, axis=1), model.transduction_)


def test_two_moons_one_seed_per_moon():
    X, truth = make_moons(200, noise=0.05, random_state=0)
    W = knn_graph(X, 10, metric="euclidean")
    y = np.full(200, -1)
    y[np.flatnonzero(truth == 0)[0]] = 0
    y[np.flatnonzero(truth == 1)[0]] = 1
    result = propagate(W, y, 2)
    np.testing.assert_array_equal(result.label, truth)
    assert np.sum(result.source == Source.HUMAN) == 2
    assert np.all(result.source[y < 0] == Source.PROPAGATED)


def test_disconnected_component_gets_source_none():
    # Two triangles, no edge between them; only the first holds a seed.
    W = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3)) - np.eye(3)))
    y = np.array([0, -1, -1, -1, -1, -1])
    result = propagate(W, y, 2)
    np.testing.assert_array_equal(result.label, [0, 0, 0, -1, -1, -1])
    np.testing.assert_array_equal(result.source_names(), ["human"] + ["propagated"] * 2 + ["none"] * 3)
    np.testing.assert_array_equal(result.proba[3:], 0.0)
    np.testing.assert_array_equal(result.confidence[3:], 0.0)
    np.testing.assert_array_equal(result.entropy[3:], 1.0)
    np.testing.assert_allclose(result.proba[:3].sum(axis=1), 1.0)
    # Class 1 has no seed: it simply gets no mass.
    np.testing.assert_array_equal(result.proba[:, 1], 0.0)


def test_isolated_node_no_division_by_zero():
    W = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=float))
    with np.errstate(all="raise"):
        result = propagate(W, np.array([1, -1, -1]), 2)
    np.testing.assert_array_equal(result.label, [1, 1, -1])


def test_human_labels_stay_fixed_and_proba_rows_sum_to_one():
    X, truth = make_moons(100, noise=0.05, random_state=1)
    W = knn_graph(X, 8, metric="euclidean")
    y = truth.copy()
    y[10:] = -1
    y[3] = 1 - truth[3]  # a wrong human label inside the other class
    result = propagate(W, y, 2)
    assert result.label[3] == y[3]
    np.testing.assert_array_equal(result.label[:10], y[:10])
    assert np.all(result.confidence[:10] == 1.0)
    assert np.all(result.stability[:10] == 1.0)
    reached = result.source != Source.NONE
    np.testing.assert_allclose(result.proba[reached].sum(axis=1), 1.0)
    assert np.all((result.entropy >= 0) & (result.entropy <= 1))
    assert np.all(result.margin <= result.confidence + 1e-12)


def test_warm_start_same_answer_fewer_iterations():
    X, truth = make_moons(300, noise=0.08, random_state=2)
    S = normalized_affinity(knn_graph(X, 10, metric="euclidean"), dtype=np.float64)
    y = np.full(300, -1)
    rng = np.random.default_rng(0)
    seeds = rng.choice(300, 12, replace=False)
    y[seeds] = truth[seeds]
    F_old, _ = spread(S, one_hot(y, 2), alpha=0.99, tol=1e-9)
    y[np.flatnonzero(y < 0)[0]] = 0  # one new human label
    F_cold, n_cold = spread(S, one_hot(y, 2), alpha=0.99, tol=1e-9)
    F_warm, n_warm = spread(S, one_hot(y, 2), alpha=0.99, tol=1e-9, F0=F_old)
    np.testing.assert_allclose(F_warm, F_cold, atol=1e-8)
    assert n_warm < n_cold


def test_edge_cases_one_class_single_image_all_labeled():
    W = _random_graph(20)
    y = np.full(20, -1)
    y[0] = 0
    one = propagate(W, y, 1)
    assert np.all(one.label == 0)
    np.testing.assert_allclose(one.confidence, 1.0)
    np.testing.assert_allclose(one.entropy, 0.0)

    single = propagate(sp.csr_matrix((1, 1)), np.array([-1]), 3)
    assert single.label.tolist() == [-1]
    assert single.source.tolist() == [Source.NONE]
    single = propagate(sp.csr_matrix((1, 1)), np.array([2]), 3)
    assert single.label.tolist() == [2]

    y_all = np.arange(20) % 3
    full = propagate(W, y_all, 3)
    np.testing.assert_array_equal(full.label, y_all)
    assert np.all(full.source == Source.HUMAN)

    none = propagate(W, np.full(20, -1), 2)
    assert np.all(none.label == -1)
    assert np.all(none.source == Source.NONE)


def test_stability_low_between_clusters_high_inside():
    # A chain of 21 nodes: the seeds of class 0 sit at the left end, class 1 at the right.
    n = 21
    W = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1]).tocsr()
    y = np.full(n, -1)
    y[[0, 1, 2, 3]] = 0
    y[[20, 19, 18, 17]] = 1
    result = propagate(W, y, 2, n_bootstrap=30, drop=0.5, random_state=0)
    assert result.stability[10] < 0.8  # the middle flips when seeds are dropped
    assert np.all(result.stability[[4, 16]] >= 0.95)  # next to the seeds it hardly ever does
    np.testing.assert_array_equal(result.stability, propagate(W, y, 2, n_bootstrap=30, drop=0.5).stability)


def test_rejects_bad_labels():
    W = _random_graph(10)
    with pytest.raises(ValueError, match="labels must be"):
        propagate(W, np.full(10, 5), 2)


def test_renumbered_solve_gives_the_same_result(monkeypatch):
    from labeler.core import propagate as module

    W = _random_graph(50, seed=5)
    y = np.full(50, -1)
    y[[0, 10, 20]] = [0, 1, 1]
    plain = propagate(W, y, 2, n_bootstrap=3)
    monkeypatch.setattr(module, "REORDER_MIN_SAMPLES", 10)
    renumbered = propagate(W, y, 2, n_bootstrap=3)
    np.testing.assert_allclose(renumbered.proba, plain.proba, atol=1e-5)
    np.testing.assert_array_equal(renumbered.stability, plain.stability)


def test_a_class_with_more_seeds_does_not_swallow_the_others() -> None:
    """Three touching blobs; class 0 gets six seeds, classes 1 and 2 one each (a user who labels unevenly).

    With plain one-hot seeds at alpha=0.99 the six-seed class wins far outside its blob; with equal class mass each
    blob keeps its own label.
    """
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [6.0, 0.0]])
    X = np.concatenate([c + rng.normal(scale=0.8, size=(60, 2)) for c in centres])
    truth = np.repeat([0, 1, 2], 60)
    W = knn_graph(X, 10, metric="euclidean")
    y = np.full(180, -1)
    y[[0, 1, 2, 3, 4, 5]] = 0
    y[60] = 1
    y[120] = 2
    result = propagate(W, y, 3, alpha=0.99, n_bootstrap=0)
    unbalanced = np.argmax(label_spreading(W, y, 3, alpha=0.99), axis=1)
    accuracy = np.mean(result.label == truth)
    assert accuracy > 0.9
    assert accuracy > np.mean(unbalanced == truth) + 0.1


def test_bootstrap_re_runs_stop_when_asked_and_leave_stability_unmeasured():
    W = _random_graph(60)
    y = np.full(60, -1)
    y[[0, 1, 30, 31]] = [0, 0, 1, 1]
    asked: list[int] = []
    stopped = propagate(W, y, 2, n_bootstrap=5, should_stop=lambda: len(asked) > 1 or asked.append(1) is not None)
    full = propagate(W, y, 2, n_bootstrap=5)
    assert len(asked) == 2  # two re-runs went ahead, the third was stopped
    np.testing.assert_array_equal(stopped.label, full.label)
    propagated = stopped.source == Source.PROPAGATED
    assert np.isnan(stopped.stability[propagated]).all()
    assert (stopped.stability[y >= 0] == 1.0).all()
    assert not np.isnan(full.stability).any()

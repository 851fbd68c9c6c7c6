import numpy as np
import pytest

from labeler.core import graph
from labeler.core.graph import MIN_WEIGHT, affinity_from_knn, knn_graph, knn_indices

LINE = np.array([[0.0], [1.0], [3.0], [7.0], [12.0]])  # no distance ties


def test_knn_on_a_line_euclidean():
    idx, dist = knn_indices(LINE, 2, metric="euclidean")
    np.testing.assert_array_equal(idx, [[1, 2], [0, 2], [1, 0], [2, 4], [3, 2]])
    np.testing.assert_allclose(dist, [[1, 3], [1, 2], [2, 3], [4, 5], [5, 9]], atol=1e-5)


def test_knn_on_an_arc_cosine():
    # Unit vectors at these angles: cosine distance grows with the angle difference, so same neighbours as a line.
    angles = LINE[:, 0] / 10.0
    X = np.column_stack([np.cos(angles), np.sin(angles)]) * np.array([[1.0], [2.0], [0.5], [3.0], [1.0]])
    idx, dist = knn_indices(X, 2)
    np.testing.assert_array_equal(idx, [[1, 2], [0, 2], [1, 0], [2, 4], [3, 2]])
    np.testing.assert_allclose(dist[0], 1 - np.cos([0.1, 0.3]), atol=1e-6)


def test_knn_excludes_self_with_duplicates():
    X = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]])
    idx, dist = knn_indices(X, 3)
    assert not np.any(idx == np.arange(5)[:, None])
    np.testing.assert_allclose(dist[:4], 0.0, atol=1e-6)


def test_small_inputs_clip_k():
    idx, dist = knn_indices(np.eye(3), 15)
    assert idx.shape == (3, 2)
    idx, dist = knn_indices(np.ones((1, 4)), 15)
    assert idx.shape == (1, 0)
    W = knn_graph(np.ones((1, 4)))
    assert W.shape == (1, 1)
    assert W.nnz == 0


def test_graph_symmetric_zero_diagonal_union_of_knn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    idx, dist = knn_indices(X, 4)
    W = affinity_from_knn(idx, dist)
    assert abs(W - W.T).max() == 0
    assert np.all(W.diagonal() == 0)
    expected = np.zeros((60, 60), dtype=bool)
    expected[np.repeat(np.arange(60), 4), idx.ravel()] = True
    expected |= expected.T
    np.testing.assert_array_equal(W.toarray() > 0, expected)
    assert W.data.min() >= MIN_WEIGHT - 1e-9
    assert W.data.max() <= 1.0


def test_self_tuning_weights_on_a_line():
    idx, dist = knn_indices(LINE, 1, metric="euclidean")
    W = affinity_from_knn(idx, dist).toarray()
    # sigma = distance to the 1st neighbour: [1, 1, 2, 4, 5]; w_ij = exp(-d^2 / (sigma_i sigma_j)).
    assert W[0, 1] == pytest.approx(np.exp(-1.0), rel=1e-5)
    assert W[2, 1] == pytest.approx(np.exp(-4.0 / 2.0), rel=1e-5)
    assert W[4, 3] == pytest.approx(np.exp(-25.0 / 20.0), rel=1e-5)
    assert W[0, 2] == 0


@pytest.mark.slow
def test_approximate_search_matches_exact(monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 8))
    exact, _ = knn_indices(X, 5)
    monkeypatch.setattr(graph, "EXACT_MAX_SAMPLES", 100)
    approx, dist = knn_indices(X, 5)
    assert approx.shape == (600, 5)
    assert not np.any(approx == np.arange(600)[:, None])
    recall = np.mean([len(set(a) & set(e)) / 5 for a, e in zip(approx, exact, strict=True)])
    assert recall > 0.95

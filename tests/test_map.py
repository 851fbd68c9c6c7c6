import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness

from labeler.graph import knn_indices
from labeler.map import load_or_compute_map, umap_coordinates


def test_tiny_inputs_use_pca_fallback():
    X = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    idx, dist = knn_indices(X, 15)
    coords = umap_coordinates(idx, dist, X)
    assert coords.shape == (3, 2)
    # PCA keeps pairwise distances of points that already lie in a plane.
    d_in = np.linalg.norm(X[:, None] - X[None], axis=-1)
    d_out = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.testing.assert_allclose(d_out, d_in, atol=1e-5)
    single = umap_coordinates(np.empty((1, 0), int), np.empty((1, 0)), np.ones((1, 3)))
    np.testing.assert_array_equal(single, [[0.0, 0.0]])


def test_cache_reuses_coordinates_for_the_same_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(3, 2)

    path = tmp_path / "map.npz"
    first = load_or_compute_map(path, "emb-v1", compute)
    second = load_or_compute_map(path, "emb-v1", compute)
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 1
    load_or_compute_map(path, "emb-v2", compute)
    assert len(calls) == 2


@pytest.mark.slow
def test_umap_from_shared_graph_is_trustworthy():
    X, _ = make_blobs(400, n_features=10, centers=4, cluster_std=1.0, random_state=0)
    idx, dist = knn_indices(X, 15)
    coords = umap_coordinates(idx, dist, X, random_state=0)
    assert coords.shape == (400, 2)
    assert np.isfinite(coords).all()
    assert trustworthiness(X, coords, n_neighbors=10, metric="cosine") > 0.9

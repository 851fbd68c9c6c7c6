import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness

from labeler.core.graph import knn_indices
from labeler.core.umap_map import umap_coordinates


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


@pytest.mark.slow
def test_umap_from_shared_graph_is_trustworthy():
    X, _ = make_blobs(400, n_features=10, centers=4, cluster_std=1.0, random_state=0)
    idx, dist = knn_indices(X, 15)
    coords = umap_coordinates(idx, dist, X, random_state=0)
    assert coords.shape == (400, 2)
    assert np.isfinite(coords).all()
    assert trustworthiness(X, coords, n_neighbors=10, metric="cosine") > 0.9

"""2-D map coordinates (UMAP) computed from the shared kNN graph and cached per embedding.

McInnes, Healy & Melville 2018, "UMAP: Uniform Manifold Approximation and Projection". The neighbours come from
:func:`labeler.core.graph.knn_indices` through umap-learn's ``precomputed_knn``, so the map and label propagation see
the same graph and the neighbour search runs once.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Below this many images UMAP's spectral layout is ill-posed; a PCA projection is shown instead.
MIN_UMAP_SAMPLES = 5


def _pca_2d(X: NDArray[Any]) -> NDArray[np.float32]:
    X = np.asarray(X, dtype=np.float64)
    coords = np.zeros((X.shape[0], 2), dtype=np.float32)
    if X.shape[0] < 2:
        return coords
    centred = X - X.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    m = min(2, s.size)
    coords[:, :m] = (u[:, :m] * s[:m]).astype(np.float32)
    return coords


def umap_coordinates(
    knn_indices: NDArray[Any],
    knn_distances: NDArray[Any],
    X: NDArray[Any],
    *,
    random_state: int = 0,
    min_dist: float = 0.1,
) -> NDArray[np.float32]:
    """UMAP coordinates of shape (n, 2) from a precomputed kNN graph (indices without self, as from the graph).

    Fewer than ``MIN_UMAP_SAMPLES`` images (or no neighbours) fall back to PCA. ``random_state`` makes the layout
    reproducible (umap-learn then runs single-threaded).

    Parameters
    ----------
    knn_indices : int (n, k); knn_distances : float (n, k); X : (n, d) the embeddings the graph was built on
    """
    X = np.asarray(X, dtype=np.float32)
    indices = np.asarray(knn_indices, dtype=np.int64)
    distances = np.asarray(knn_distances, dtype=np.float32)
    n, k = indices.shape
    if n != X.shape[0]:
        raise ValueError(f"the graph has {n} rows but X has {X.shape[0]}")
    if n < MIN_UMAP_SAMPLES or k == 0:
        return _pca_2d(X)
    import umap  # imported lazily: numba start-up takes seconds

    # umap-learn expects each point as its own first neighbour at distance 0.
    self_index = np.arange(n, dtype=np.int64)[:, None]
    full_indices = np.hstack([self_index, indices])
    full_distances = np.hstack([np.zeros((n, 1), dtype=np.float32), distances])
    reducer = umap.UMAP(
        n_neighbors=k + 1,
        n_components=2,
        metric="cosine",
        min_dist=min_dist,
        random_state=random_state,
        precomputed_knn=(full_indices, full_distances),
        # Without this umap-learn recomputes exact distances itself for n < 4096, ignoring the shared graph.
        force_approximation_algorithm=True,
        # Tiny graphs: spectral init can fail; umap then falls back to random init with a warning.
        init="spectral" if n > k + 2 else "random",
    )
    with warnings.catch_warnings():
        # "n_jobs overridden by setting random_state" and tiny-graph notes are expected, not actionable.
        warnings.simplefilter("ignore", UserWarning)
        coords = reducer.fit_transform(X)
    return np.asarray(coords, dtype=np.float32)



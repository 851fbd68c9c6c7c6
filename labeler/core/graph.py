"""One k-nearest-neighbour graph per embedding, shared by label propagation and the UMAP map.

The neighbour search runs once (:func:`knn_indices`); :func:`affinity_from_knn` turns its output into the
symmetric affinity matrix that propagation uses, and :mod:`labeler.core.umap_map` feeds the same arrays to UMAP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

# Exact search costs O(n^2 d); up to this many rows it is fast and has no approximation error.
EXACT_MAX_SAMPLES = 20_000
# Rows of the similarity matrix computed at once by the exact search (bounds memory to ~chunk * n floats).
_CHUNK_ROWS = 1024
# Weight floor: every kNN edge keeps at least this weight, so the graph's connectivity is exactly the kNN
# topology even where the Gaussian weight underflows (e.g. a point whose k neighbours are exact duplicates).
MIN_WEIGHT = 1e-4


def unit_rows(X: NDArray[Any]) -> NDArray[Any]:
    """``X`` with each row scaled to unit L2 norm (all-zero rows stay zero), in ``X``'s float dtype: scikit-learn's
    ``normalize`` without importing scikit-learn (the CLI's status starts a second sooner)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1).astype(X.dtype)


def _exact_knn(X: NDArray[Any], k: int, metric: str) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Brute-force neighbours in row chunks (cosine via a matmul on unit rows)."""
    n = X.shape[0]
    if metric == "cosine":
        # A zero vector stays zero: its cosine distance to everything is then 1, not NaN.
        Z = unit_rows(np.asarray(X, dtype=np.float32))
        sq = None
    else:
        Z = np.asarray(X, dtype=np.float32)
        sq = np.einsum("ij,ij->i", Z, Z)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n)
        block = Z[start:stop] @ Z.T
        # Cosine distance of unit rows is 1 - dot; Euclidean from the expanded square.
        sq_dist = sq[start:stop, None] + sq[None, :] - 2.0 * block if sq is not None else None
        dist = 1.0 - block if sq_dist is None else np.sqrt(np.maximum(sq_dist, 0.0))
        rows = np.arange(stop - start)
        dist[rows, rows + start] = np.inf  # never your own neighbour
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        part_dist = np.take_along_axis(dist, part, axis=1)
        order = np.argsort(part_dist, axis=1, kind="stable")
        indices[start:stop] = np.take_along_axis(part, order, axis=1)
        distances[start:stop] = np.take_along_axis(part_dist, order, axis=1)
    np.maximum(distances, 0.0, out=distances)  # rounding can give -1e-7 for identical rows
    return indices, distances


def _approximate_knn(
    X: NDArray[Any], k: int, metric: str, random_state: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """NN-descent (pynndescent) neighbours with the query point itself removed."""
    from pynndescent import NNDescent  # imported lazily: numba start-up is slow

    data = unit_rows(np.asarray(X, dtype=np.float32)) if metric == "cosine" else np.asarray(X, dtype=np.float32)
    index = NNDescent(data, metric=metric, n_neighbors=k + 1, random_state=random_state, low_memory=True)
    raw_idx, raw_dist = index.neighbor_graph
    n = data.shape[0]
    is_self = raw_idx == np.arange(n)[:, None]
    # Rows where the point is not among its own k+1 neighbours (duplicates): drop the farthest instead.
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    # Keep exactly one dropped column per row (a row could list itself twice only in a corrupt graph).
    first = np.argmax(is_self, axis=1)
    keep = np.ones_like(is_self)
    keep[np.arange(n), first] = False
    indices = raw_idx[keep].reshape(n, k).astype(np.int64)
    distances = np.maximum(raw_dist[keep].reshape(n, k), 0.0).astype(np.float32)
    return indices, distances


def knn_indices(
    X: NDArray[Any], n_neighbors: int, *, metric: str = "cosine", random_state: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The ``n_neighbors`` nearest other rows of every row of ``X``.

    Exact (chunked brute force) for up to ``EXACT_MAX_SAMPLES`` rows, NN-descent (pynndescent) above.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    n_neighbors : int
        Neighbours per row, excluding the row itself; clipped to ``n_samples - 1``.
    metric : {"cosine", "euclidean"}
    random_state : int
        Seed of the approximate search.

    Returns
    -------
    indices : int64 array of shape (n_samples, k), nearest first, never the row itself
    distances : float32 array of shape (n_samples, k); cosine distance is ``1 - cos``
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    if metric not in {"cosine", "euclidean"}:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    n = X.shape[0]
    k = min(n_neighbors, n - 1)
    if k <= 0:
        return np.empty((n, 0), dtype=np.int64), np.empty((n, 0), dtype=np.float32)
    if n <= EXACT_MAX_SAMPLES:
        return _exact_knn(X, k, metric)
    return _approximate_knn(X, k, metric, random_state)


def affinity_from_knn(indices: NDArray[np.integer[Any]], distances: NDArray[np.floating[Any]]) -> sp.csr_matrix:
    """Symmetric affinity matrix from a kNN graph, with a self-tuning Gaussian kernel.

    ``w_ij = exp(-d_ij^2 / (sigma_i sigma_j))`` with ``sigma_i`` the distance to the k-th neighbour of ``i``
    (Zelnik-Manor & Perona 2004, "Self-tuning spectral clustering"): the kernel adapts to local density, so a
    sparse cluster is not cut off from its seeds. Weights are floored at ``MIN_WEIGHT`` and the matrix is
    symmetrised with the maximum (an edge exists if either end lists the other).

    Parameters
    ----------
    indices : int array of shape (n_samples, k), without self
    distances : float array of shape (n_samples, k)

    Returns
    -------
    W : float32 csr_matrix of shape (n_samples, n_samples), symmetric, zero diagonal
    """
    indices = np.asarray(indices)
    distances = np.asarray(distances, dtype=np.float64)
    n, k = indices.shape
    if k == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    sigma = distances[:, -1].copy()
    positive = sigma[sigma > 0]
    floor = 1e-3 * float(np.median(positive)) if positive.size else 1.0
    sigma = np.maximum(sigma, max(floor, 1e-12))
    rows = np.repeat(np.arange(n), k)
    cols = indices.ravel()
    weights = np.exp(-(distances.ravel() ** 2) / (sigma[rows] * sigma[cols]))
    weights = np.maximum(weights, MIN_WEIGHT).astype(np.float32)
    keep = rows != cols  # defensive: a self edge would break the zero-diagonal contract
    A = sp.csr_matrix((weights[keep], (rows[keep], cols[keep])), shape=(n, n))
    W = A.maximum(A.T).tocsr()
    W.sort_indices()
    return W


def knn_graph(
    X: NDArray[Any], n_neighbors: int = 15, *, metric: str = "cosine", random_state: int = 0
) -> sp.csr_matrix:
    """Symmetric kNN affinity matrix of ``X`` (shape (n_samples, n_samples), zero diagonal).

    Convenience for ``affinity_from_knn(*knn_indices(X, n_neighbors, ...))``; keep the two steps separate when
    the same neighbours should also feed the UMAP map.
    """
    indices, distances = knn_indices(X, n_neighbors, metric=metric, random_state=random_state)
    return affinity_from_knn(indices, distances)

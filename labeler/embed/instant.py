"""The instant representation: needs no training, so the app is useful in its first seconds.

pixels -> PCA (-> optionally UMAP). Measured in ``benchmarks/results/quality.md`` (label spreading, 1/3/10 labels
per class): 50 un-whitened components with L2-normalised rows (cosine geometry) match or beat raw pixels on MNIST
and Fashion-MNIST at k = 3 and 10 at a fraction of the cost; whitening is worse on MNIST (it weighs noisy trailing
components like the leading ones) and mixed on Fashion-MNIST, so it is off by default. UMAP-10 of the PCA helps
on MNIST (0.77 vs 0.69 at k = 1) and hurts on Fashion-MNIST (0.36 vs 0.47), so it is an option to choose by
measurement, not a default.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize


def _check_images(images: NDArray[np.uint8]) -> None:
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, S, S, 3), got {images.shape}")


def pixel_features(images: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Flattened pixels scaled to [0, 1].

    Parameters
    ----------
    images : ndarray of uint8, shape (N, S, S, 3)

    Returns
    -------
    ndarray of float32, shape (N, S*S) when every image is grayscale (channels equal: one channel is kept, the
    copies carry nothing), else (N, S*S*3).
    """
    _check_images(images)
    gray = bool(np.array_equal(images[..., 0], images[..., 1]) and np.array_equal(images[..., 0], images[..., 2]))
    pixels = images[..., 0] if gray else images
    return pixels.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


def pca_representation(
    images: NDArray[np.uint8],
    n_components: int = 50,
    random_state: int = 0,
    *,
    whiten: bool = False,
    normalise: bool = True,
) -> NDArray[np.float32]:
    """Pixels projected on their leading principal components.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, S, S, 3)
    n_components : int
        Capped at ``min(N, n_pixels)``.
    random_state : int
        For the randomised SVD used on large inputs.
    whiten : bool
        Scale components to unit variance.
    normalise : bool
        L2-normalise rows (cosine geometry for the kNN graph).

    Returns
    -------
    ndarray of float32, shape (N, d), ``d = min(n_components, N, n_pixels)``
    """
    X = pixel_features(images)
    d = max(1, min(n_components, X.shape[0], X.shape[1]))
    Z = PCA(n_components=d, whiten=whiten, random_state=random_state).fit_transform(X)
    return normalize(Z).astype(np.float32) if normalise else Z.astype(np.float32)


def umap_representation(
    X: NDArray[np.floating], n_components: int = 10, random_state: int = 0, *, n_neighbors: int = 15
) -> NDArray[np.float32]:
    """UMAP of a representation (e.g. :func:`pca_representation`'s output), for clustering rather than display.

    ``min_dist=0`` packs clusters tightly, which is what a kNN graph for propagation wants (McInnes et al. 2018).

    Parameters
    ----------
    X : ndarray, shape (N, d)
    n_components : int
    random_state : int
    n_neighbors : int

    Returns
    -------
    ndarray of float32, shape (N, n_components)
    """
    import umap  # slow to import (numba); only pay for it when used

    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"X must be (N, d), got {X.shape}")
    if len(X) <= n_components + 1:
        raise ValueError(f"UMAP needs more than n_components + 1 = {n_components + 1} rows, got {len(X)}")
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=min(n_neighbors, len(X) - 1),
        min_dist=0.0,
        random_state=random_state,
        init="spectral" if len(X) > n_components + 2 else "random",
    )
    return np.asarray(reducer.fit_transform(X), dtype=np.float32)

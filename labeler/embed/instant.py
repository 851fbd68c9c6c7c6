"""The instant representations: need no training, so the app is useful in its first seconds.

pixels -> PCA (-> optionally UMAP). Measured in ``benchmarks/results/quality.md`` (label spreading, 1/3/10 labels
per class): 50 un-whitened components with L2-normalised rows (cosine geometry) match or beat raw pixels on MNIST
and Fashion-MNIST at k = 3 and 10 at a fraction of the cost; whitening is worse on MNIST (it weighs noisy trailing
components like the leading ones) and mixed on Fashion-MNIST, so it is off by default. UMAP-10 of the PCA helps
on MNIST (0.77 vs 0.69 at k = 1) and hurts on Fashion-MNIST (0.36 vs 0.47), so it is an option to choose by
measurement, not a default.

Edge-orientation histograms and pixels (:func:`hog_representation`, :func:`joint_representation`; HOG: Dalal &
Triggs 2005). Pixels compare strokes by where they lie, so a digit drawn a pixel to the left is far from itself;
histograms of gradient orientation over small cells tolerate such shifts and ignore contrast, but also ignore
brightness and colour, and on their own they put Fashion-MNIST's sandals among its sneakers with high confidence
(2 of 6 draws at 3 labels per class: a threshold promised 0.99 right and kept 0.61-0.75). Joined with pixels -> PCA
(the mean of the two cosine similarities) two images are near only when both agree. From 1 / 3 / 10 labels per class
(``benchmarks/results/quality.md``): MNIST 0.83 / 0.91 / 0.93 (edges alone 0.87 / 0.93 / 0.94, pixels alone
0.70 / 0.81 / 0.86), Fashion-MNIST 0.58 / 0.68 / 0.71 (0.58 / 0.65 / 0.70; 0.52 / 0.63 / 0.68), scikit-learn's
digits 0.89 / 0.95 / 0.97 (0.91 / 0.97 / 0.98; 0.83 / 0.90 / 0.95), and the threshold picker met its target on
clothing in 29 of the 31 draws where it chose a threshold. The histograms cost under 0.1 ms per image (8 s for
100,000 images on two cores, ``benchmarks/results/scale.md``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize


def _check_images(images: NDArray[np.uint8]) -> None:
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, S, S, 3), got {images.shape}")


def _all_grey(images: NDArray[np.uint8]) -> bool:
    """True when every image has one channel, or three equal ones (the copies carry nothing)."""
    return images.shape[-1] == 1 or bool(
        np.array_equal(images[..., 0], images[..., 1]) and np.array_equal(images[..., 0], images[..., 2]))


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
    pixels = images[..., 0] if _all_grey(images) else images
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


# HOG as Dalal & Triggs (2005) describe it: 9 unsigned orientation bins, cells of an eighth of the image side,
# blocks of 2 x 2 cells, L2-normalised; then the square root (the Hellinger kernel, which kept 0.86 of MNIST labels
# right at k = 1 against 0.81 without it).
HOG_BINS = 9
HOG_CELLS = 8


def edge_histograms(
    images: NDArray[np.uint8], *, n_cells: int = HOG_CELLS, n_bins: int = HOG_BINS
) -> NDArray[np.float32]:
    """Histograms of gradient orientation (HOG) of each image.

    Gradients are central differences; where channels differ, each pixel takes the gradient of the channel in
    which it is strongest (Dalal & Triggs). Each pixel adds its gradient magnitude to the bin of its orientation
    (unsigned, ``[0, pi)``) in its cell; the ``n_cells x n_cells`` grid covers the image (a remainder of fewer than
    ``n_cells`` pixels at the bottom and right is left out). Each block of 2 x 2 neighbouring cells is
    L2-normalised, which makes the features blind to contrast, and square-rooted.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, S, S, C) with S >= 2 * n_cells
    n_cells, n_bins : int

    Returns
    -------
    ndarray of float32, shape (N, (n_cells - 1) ** 2 * 4 * n_bins), every block of 4 * n_bins values of unit length
    (or zero where the block is flat)
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, S, S, C), got {images.shape}")
    cell = images.shape[1] // n_cells
    if cell < 2 or images.shape[2] // n_cells < 2 or n_cells < 2:
        raise ValueError(f"images of {images.shape[1]} x {images.shape[2]} px are too small for {n_cells} cells")
    side = cell * n_cells
    n = images.shape[0]
    pixels = images[:, :side, :side, :1] if _all_grey(images) else images[:, :side, :side]
    x = pixels.astype(np.float32) / np.float32(255.0)
    gy, gx = np.gradient(x, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    if x.shape[-1] > 1:  # the strongest channel's gradient, per pixel
        strongest = np.argmax(magnitude, axis=-1)[..., None]
        gx, gy = (np.take_along_axis(g, strongest, axis=-1) for g in (gx, gy))
        magnitude = np.take_along_axis(magnitude, strongest, axis=-1)
    gx, gy, magnitude = gx[..., 0], gy[..., 0], magnitude[..., 0]
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    orientation = np.minimum((angle * (n_bins / np.pi)).astype(np.int64), n_bins - 1)
    cell_of = (np.arange(side) // cell)[:, None] * n_cells + (np.arange(side) // cell)[None, :]  # (side, side)
    slot = (np.arange(n)[:, None, None] * (n_cells * n_cells) + cell_of) * n_bins + orientation
    hist = np.bincount(slot.ravel(), weights=magnitude.ravel(), minlength=n * n_cells * n_cells * n_bins)
    hist = hist.reshape(n, n_cells, n_cells, n_bins)
    blocks = np.stack([hist[:, i:i + 2, j:j + 2].reshape(n, 4 * n_bins)
                       for i in range(n_cells - 1) for j in range(n_cells - 1)], axis=1)
    norms = np.linalg.norm(blocks, axis=2, keepdims=True)
    blocks = np.divide(blocks, norms, out=np.zeros_like(blocks), where=norms > 1e-6)
    return np.sqrt(blocks).reshape(n, -1).astype(np.float32)


def hog_representation(
    images: NDArray[np.uint8],
    n_components: int = 50,
    random_state: int = 0,
    *,
    chunk_rows: int = 4096,
    fit_rows: int = 20000,
) -> NDArray[np.float32]:
    """Edge-orientation histograms (:func:`edge_histograms`) projected on their leading principal components, rows
    L2-normalised (cosine geometry for the kNN graph).

    Computed ``chunk_rows`` images at a time, with the PCA fitted on at most ``fit_rows`` of them drawn at random,
    so memory stays bounded however many images there are (``images`` may be a memory map). Images smaller than
    ``2 * HOG_CELLS`` pixels get fewer cells, of 2 pixels each.

    Returns
    -------
    ndarray of float32, shape (N, d), ``d = min(n_components, N, n_features)``
    """
    _check_images(images)
    n = len(images)
    n_cells = min(HOG_CELLS, images.shape[1] // 2)
    rng = np.random.default_rng(random_state)
    fit_index = np.sort(rng.choice(n, size=fit_rows, replace=False)) if n > fit_rows else np.arange(n)
    sample = np.concatenate([edge_histograms(np.asarray(images[fit_index[i:i + chunk_rows]]), n_cells=n_cells)
                             for i in range(0, fit_index.size, chunk_rows)])
    d = max(1, min(n_components, sample.shape[0], sample.shape[1]))
    pca = PCA(n_components=d, random_state=random_state).fit(sample)
    if n <= fit_rows:
        return normalize(pca.transform(sample)).astype(np.float32)
    del sample
    out = np.empty((n, d), dtype=np.float32)
    for i in range(0, n, chunk_rows):
        histograms = edge_histograms(np.asarray(images[i:i + chunk_rows]), n_cells=n_cells)
        out[i:i + chunk_rows] = normalize(pca.transform(histograms))
    return out


def joint_representation(*parts: NDArray[np.floating]) -> NDArray[np.float32]:
    """Rows of several L2-normalised representations side by side, L2-normalised again.

    The cosine similarity of two joined rows is the mean of their cosine similarities in the parts, so two images are
    near only where every part puts them near.

    Parameters
    ----------
    *parts : float arrays of shape (N, d_j), rows of unit length

    Returns
    -------
    ndarray of float32, shape (N, sum of d_j)
    """
    if not parts or len({len(part) for part in parts}) != 1:
        raise ValueError("give one or more representations of the same images")
    return normalize(np.hstack([np.asarray(part, dtype=np.float32) for part in parts])).astype(np.float32)

"""The instant representations: pixels -> PCA (-> UMAP), edge-orientation histograms (HOG) -> PCA."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from labeler.embed.instant import (
    HOG_BINS,
    edge_histograms,
    hog_representation,
    joint_representation,
    pca_representation,
    pixel_features,
    umap_representation,
)


def test_pixel_features_keep_one_channel_of_grey_images():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(5, 4, 4, 1), dtype=np.uint8).repeat(3, axis=-1)
    X = pixel_features(grey)
    assert X.shape == (5, 16)
    assert X.dtype == np.float32
    np.testing.assert_allclose(X, grey[..., 0].reshape(5, -1) / 255.0, rtol=1e-6)
    colour = rng.integers(0, 256, size=(5, 4, 4, 3), dtype=np.uint8)
    assert pixel_features(colour).shape == (5, 48)
    with pytest.raises(ValueError, match="images"):
        pixel_features(np.zeros((5, 4, 4), dtype=np.uint8))


def test_pca_is_a_rotation_when_it_keeps_every_direction():
    # Images on a 3-dimensional affine subspace: 3 components keep all pairwise distances exactly.
    rng = np.random.default_rng(1)
    basis = rng.random((3, 8 * 8))
    grey = (rng.random((30, 3)) @ basis) * (255 / 3)
    images = np.round(grey).astype(np.uint8).reshape(30, 8, 8, 1).repeat(3, axis=-1)
    Z = pca_representation(images, n_components=3, normalise=False)
    X = pixel_features(images)
    dist_x = np.linalg.norm(X[:, None] - X[None], axis=-1)
    dist_z = np.linalg.norm(Z[:, None] - Z[None], axis=-1)
    np.testing.assert_allclose(dist_z, dist_x, atol=0.02)  # uint8 rounding leaves a little off the subspace


def test_pca_rows_are_unit_length_and_components_capped():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(12, 6, 6, 3), dtype=np.uint8)
    Z = pca_representation(images, n_components=50)
    assert Z.shape == (12, 12)  # capped at N
    assert Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)


def test_pca_separates_two_kinds_of_image():
    # Dark-left vs dark-right images: each image's nearest neighbour (cosine) is of its own kind.
    rng = np.random.default_rng(3)
    images = rng.integers(0, 60, size=(40, 8, 8), dtype=np.uint8)
    images[:20, :, :4] += 150
    images[20:, :, 4:] += 150
    Z = pca_representation(images[..., None].repeat(3, axis=-1), n_components=5)
    sims = Z @ Z.T
    np.fill_diagonal(sims, -np.inf)
    kind = np.arange(40) >= 20
    assert np.array_equal(kind[np.argmax(sims, axis=1)], kind)


@pytest.mark.slow
def test_umap_keeps_blobs_trustworthy():
    rng = np.random.default_rng(4)
    centres = rng.normal(scale=6.0, size=(3, 20))
    X = np.concatenate([c + rng.normal(size=(40, 20)) for c in centres])
    U = umap_representation(X, n_components=10, random_state=0)
    assert U.shape == (120, 10)
    assert U.dtype == np.float32
    assert trustworthiness(X, U, n_neighbors=5) > 0.9
    with pytest.raises(ValueError, match="rows"):
        umap_representation(X[:5], n_components=10)


def _grey(images: np.ndarray) -> np.ndarray:
    return images[..., None].repeat(3, axis=-1).astype(np.uint8)


def _vertical_edge(value: int = 200, size: int = 32) -> np.ndarray:
    image = np.zeros((size, size), dtype=np.uint8)
    image[:, size // 2:] = value
    return image


def _blocks(features: np.ndarray, n_cells: int = 8) -> np.ndarray:
    """(N, blocks, 4 cells, bins) view of edge_histograms' output."""
    return features.reshape(len(features), (n_cells - 1) ** 2, 4, HOG_BINS)


def test_a_vertical_edge_puts_all_its_mass_in_the_horizontal_gradient_bin():
    blocks = _blocks(edge_histograms(_grey(_vertical_edge()[None])))
    per_bin = blocks.sum(axis=(0, 1, 2))
    assert per_bin[0] > 0
    np.testing.assert_allclose(per_bin[1:], 0.0)
    # Blocks on the edge are unit length before the square root (their fourth powers sum to one); flat ones are zero.
    energy = (blocks**4).sum(axis=(2, 3))[0]
    assert set(np.round(energy, 6)) == {0.0, 1.0}
    # Turned a quarter, the gradient is vertical: orientation pi / 2, bin int(4.5) = 4 of 9.
    turned = _blocks(edge_histograms(_grey(np.rot90(_vertical_edge())[None]))).sum(axis=(0, 1, 2))
    assert turned[4] > 0
    np.testing.assert_allclose(np.delete(turned, 4), 0.0)


def test_edge_histograms_ignore_contrast_and_see_an_edge_in_one_colour_channel():
    strong, weak = edge_histograms(_grey(np.stack([_vertical_edge(200), _vertical_edge(50)])))
    np.testing.assert_allclose(strong, weak, atol=1e-6)
    red_only = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    red_only[..., 0] = _vertical_edge(200)
    red_only[..., 1:] = 30  # flat channels: the red edge is the strongest gradient at every pixel on it
    np.testing.assert_allclose(edge_histograms(red_only)[0], strong, atol=1e-6)
    with pytest.raises(ValueError, match="too small"):
        edge_histograms(np.zeros((1, 12, 12, 3), dtype=np.uint8))


def test_edge_histograms_tolerate_a_shift_that_pixels_do_not():
    # Thin vertical strokes at columns 8..23: to pixels, a stroke one column over is as far as one ten columns over
    # (no overlap either way); to edge histograms, the near one is nearer.
    strokes = np.zeros((16, 32, 32), dtype=np.uint8)
    for i, column in enumerate(range(8, 24)):
        strokes[i, 4:28, column] = 255
    images = _grey(strokes)
    pixels = pixel_features(images)
    hog = edge_histograms(images)
    def distance(X: np.ndarray, a: int, b: int) -> float:
        return float(np.linalg.norm(X[a] - X[b]))
    assert distance(pixels, 0, 1) == pytest.approx(distance(pixels, 0, 10))
    assert distance(hog, 0, 1) < 0.6 * distance(hog, 0, 10)


def test_hog_representation_separates_stripe_directions():
    # Horizontal vs vertical stripes at random phases and periods: every image's nearest neighbour runs its way.
    rng = np.random.default_rng(5)
    grid = np.arange(32)
    images = []
    for i in range(40):
        period = rng.integers(4, 9)
        stripes = ((grid + rng.integers(0, period)) // (period // 2)) % 2 * 200
        image = np.tile(stripes, (32, 1)) if i < 20 else np.tile(stripes[:, None], (1, 32))
        images.append(image)
    images = _grey(np.stack(images))
    kind = np.arange(40) >= 20

    def nearest_kind_agrees(Z: np.ndarray) -> float:
        sims = Z @ Z.T
        np.fill_diagonal(sims, -np.inf)
        return float(np.mean(kind[np.argmax(sims, axis=1)] == kind))

    H = hog_representation(images, n_components=5)
    assert H.shape == (40, 5)
    np.testing.assert_allclose(np.linalg.norm(H, axis=1), 1.0, rtol=1e-5)
    assert nearest_kind_agrees(H) == 1.0


def test_hog_representation_in_chunks_equals_all_at_once():
    # Above fit_rows the PCA is fitted on a random sample and applied chunk by chunk: the chunk size changes nothing.
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, size=(50, 16, 16, 3), dtype=np.uint8)
    whole = hog_representation(images, n_components=8, fit_rows=30, chunk_rows=4096)
    chunked = hog_representation(images, n_components=8, fit_rows=30, chunk_rows=7)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    assert whole.shape == (50, 8)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, rtol=1e-5)
    # The smallest training size the settings allow (8 px) gets 4 x 4 cells of 2 px instead of failing.
    small = hog_representation(images[:, :8, :8], n_components=8)
    assert small.shape == (50, 8)


def test_joint_representation_averages_the_cosine_similarities():
    rng = np.random.default_rng(7)
    a = pca_representation(rng.integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8), n_components=4)
    b = pca_representation(rng.integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8), n_components=6)
    J = joint_representation(a, b)
    assert J.shape == (10, 10)
    np.testing.assert_allclose(J @ J.T, (a @ a.T + b @ b.T) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="same images"):
        joint_representation(a, b[:5])

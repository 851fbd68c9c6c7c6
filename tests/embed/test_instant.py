"""The instant representation: pixels -> PCA (-> UMAP)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from labeler.embed.instant import pca_representation, pixel_features, umap_representation


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

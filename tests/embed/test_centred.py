"""Backbone features compared from the folder's mean: known answers, and blocks that change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labeler.embed.centred import centre_rows, centred_features, feature_mean, write_centred


def test_two_photos_either_side_of_the_mean_are_opposite_once_centred() -> None:
    # Non-negative features with a large shared part: raw, every pair is nearly parallel.
    shared = np.full(8, 10.0)
    step = np.array([1.0, -1.0, 0, 0, 0, 0, 0, 0])
    X = np.stack([shared + step, shared - step, shared]).astype(np.float32)
    raw = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert raw[0] @ raw[1] > 0.97
    Z = centred_features(X)
    np.testing.assert_allclose(Z[0] @ Z[1], -1.0, atol=1e-6)
    np.testing.assert_allclose(Z[0], step / np.sqrt(2), atol=1e-6)
    np.testing.assert_array_equal(Z[2], 0.0)  # the mean itself: no direction, not NaN


def test_nearest_neighbour_follows_the_difference_not_the_shared_part() -> None:
    # Shared part (10, 4); the query differs from it by +1, a photo of its class by +3, photos of the other class by
    # -0.5 and -3.5. By raw angle the query is nearest the small -0.5 (7.3 degrees against 8.4); from the mean, the +3.
    X = np.array([[10.0, 5.0], [10.0, 7.0], [10.0, 3.5], [10.0, 0.5]])

    def nearest(V: np.ndarray) -> int:
        V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
        return int(np.argmax(V[1:] @ V[0])) + 1

    assert nearest(X) == 2  # the other class
    assert nearest(centred_features(X)) == 1


def test_blocks_and_the_file_give_the_in_memory_answer(tmp_path: Path) -> None:
    X = np.random.default_rng(0).gamma(1.0, size=(10, 5)).astype(np.float32)
    np.testing.assert_allclose(feature_mean(X, block_rows=3), X.astype(np.float64).mean(axis=0), rtol=1e-12)
    path = write_centred(X, tmp_path / "c.npy", block_rows=3)
    np.testing.assert_allclose(np.load(path), centred_features(X), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.load(path), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(centre_rows(X[:0], feature_mean(X)).shape, (0, 5))
    assert feature_mean(X[:0]).shape == (5,)

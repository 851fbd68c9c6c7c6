"""SimCLR on cached pretrained views: the loss falls, shapes hold, the same seed gives the same embedding."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from labeler.embed.adapted import adapted_features, train_projection
from labeler.embed.backbones import backbone_spec
from labeler.embed.centred import centred_features
from labeler.embed.views import ViewAugment, load_views, view_features

skimage_data = pytest.importorskip("skimage.data")


def synthetic_views(
    n_images: int = 64, n_views: int = 4, dim: int = 32, seed: int = 0
) -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], np.ndarray]:
    """Features of views: each image a random point, each view that point plus noise; returns (lookup, X)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_images, dim)).astype(np.float32)
    views = centres[:, None, :] + 0.5 * rng.normal(size=(n_images, n_views, dim)).astype(np.float32)

    def lookup(images: np.ndarray, view: np.ndarray) -> np.ndarray:
        return views[images, view]

    return lookup, centres


def test_a_short_run_lowers_the_nt_xent_loss() -> None:
    lookup, X = synthetic_views()
    result = train_projection(lookup, 64, 4, X, max_epochs=30, hidden_dim=64, out_dim=16, batch_size=32)
    assert result.epochs == 30
    assert len(result.losses) == 30
    # At temperature 0.5 and batch 32 the loss cannot go much below log(1 + 62 / e^2) = 2.24 (positives at cosine 1,
    # negatives at 0); it starts near 3.0.
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:3]) - 0.3, result.losses
    assert result.embedding.shape == (64, 32 + 64)  # concat: the 32 centred inputs and the 64 hidden units
    assert result.embedding.dtype == np.float32


def test_output_layer_and_determinism() -> None:
    lookup, X = synthetic_views()
    kwargs = {"max_epochs": 5, "hidden_dim": 32, "out_dim": 8, "batch_size": 16}
    a = train_projection(lookup, 64, 4, X, random_state=3, **kwargs)  # type: ignore[arg-type]
    b = train_projection(lookup, 64, 4, X, random_state=3, **kwargs)  # type: ignore[arg-type]
    c = train_projection(lookup, 64, 4, X, random_state=4, **kwargs)  # type: ignore[arg-type]
    np.testing.assert_array_equal(a.embedding, b.embedding)
    assert a.losses == b.losses
    assert not np.allclose(a.embedding, c.embedding)
    projection = train_projection(lookup, 64, 4, X, output="projection", random_state=3, **kwargs)  # type: ignore[arg-type]
    assert projection.embedding.shape == (64, 8)
    hidden = train_projection(lookup, 64, 4, X, output="hidden", random_state=3, **kwargs)  # type: ignore[arg-type]
    assert hidden.embedding.shape == (64, 32)
    np.testing.assert_allclose(np.linalg.norm(a.embedding[:, :32], axis=1), 1, rtol=1e-5)  # each half unit length
    np.testing.assert_allclose(
        a.embedding[:, 32:], hidden.embedding / np.linalg.norm(hidden.embedding, axis=1)[:, None], rtol=1e-4, atol=1e-6
    )
    # The features' half is the inputs centred on their mean, not divided by each one's spread.
    np.testing.assert_allclose(a.embedding[:, :32], centred_features(X), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.0, -0.1])
def test_temperature_is_validated(temperature: float) -> None:
    lookup, X = synthetic_views()
    with pytest.raises(ValueError, match="temperature"):
        train_projection(lookup, 64, 4, X, max_epochs=1, temperature=temperature)


def test_views_are_fixed_by_digest_view_and_seed(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "cat.jpg"
    Image.fromarray(skimage_data.chelsea()).save(path)
    spec, aug = backbone_spec("efficientnet_lite0"), ViewAugment()
    a = load_views(path, "d1", [0, 1], spec, aug, random_state=0)
    assert a.shape == (2, 224, 224, 3)
    assert a.dtype == np.uint8
    np.testing.assert_array_equal(a, load_views(path, "d1", [0, 1], spec, aug, random_state=0))
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], load_views(path, "d1", [0], spec, aug, random_state=1)[0])
    assert not np.array_equal(a[0], load_views(path, "d2", [0], spec, aug, random_state=0)[0])


def test_adapted_features_on_a_folder(tmp_path: Path) -> None:
    from PIL import Image

    paths = []
    for i, source in enumerate([skimage_data.chelsea(), skimage_data.coffee(), skimage_data.astronaut()] * 2):
        paths.append(tmp_path / f"img{i}.jpg")
        Image.fromarray(source[i * 10 :]).save(paths[-1])
    digests = [p.name for p in paths]
    kwargs = {"n_views": 2, "max_epochs": 5, "random_state": 1}
    first = adapted_features(paths, digests, tmp_path / "cache", **kwargs)  # type: ignore[arg-type]
    assert first.embedding.shape == (6, 1280 + 512)
    assert first.ok is not None
    assert first.ok.all()
    assert first.n_views == 2
    assert first.epochs == 5
    _, rows = view_features(paths, digests, tmp_path / "cache", n_views=2, random_state=1)
    assert rows.shape == (6, 2)
    assert (rows >= 0).all()
    again = adapted_features(paths, digests, tmp_path / "cache", **kwargs)  # type: ignore[arg-type]
    np.testing.assert_array_equal(first.embedding, again.embedding)


def test_the_deadline_stops_only_after_min_epochs_and_a_stop_request_at_once() -> None:
    lookup, X = synthetic_views()
    kwargs = {"hidden_dim": 16, "out_dim": 4, "batch_size": 32}
    late = train_projection(lookup, 64, 4, X, max_epochs=10, deadline=0.0, min_epochs=3, **kwargs)  # type: ignore[arg-type]
    assert late.epochs == 3
    stopped = train_projection(lookup, 64, 4, X, max_epochs=10, should_stop=lambda: True, **kwargs)  # type: ignore[arg-type]
    assert stopped.epochs == 1

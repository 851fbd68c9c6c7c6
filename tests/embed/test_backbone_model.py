"""The backbone (with or without the adapted head) as a batch function: pickles small, embeds as the local path."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labeler.embed.adapted import AdaptedResult, ProjectionHead, embed_with_head
from labeler.embed.backbone_model import BackboneBatches, decode_photo, head_to_bytes, read_head
from labeler.embed.backbones import backbone_spec, load_backbone
from labeler.embed.pretrained import embed_batch
from labeler.io.decode import UnreadableImage

skimage_data = pytest.importorskip("skimage.data")


def _head(seed: int = 0) -> AdaptedResult:
    torch.manual_seed(seed)
    head = ProjectionHead(1280, 16, 4)
    rng = np.random.default_rng(seed)
    mean, scale = rng.normal(size=1280).astype(np.float32), rng.uniform(0.5, 2, 1280).astype(np.float32)
    return AdaptedResult(np.zeros((0, 1296), np.float32), head.eval(), mean, scale, [3.0, 2.5], 2, 4)


def test_head_round_trip() -> None:
    result = _head()
    loaded = read_head(head_to_bytes(result, backbone="efficientnet_lite0", output="concat", info={"minutes": 1.5}))
    X = np.random.default_rng(1).normal(size=(5, 1280)).astype(np.float32)
    np.testing.assert_array_equal(loaded.embed(X), embed_with_head(result.head, X, result.mean, result.scale))
    assert loaded.embed(X).shape == (5, 1280 + 16)
    assert loaded.info == {"epochs": 2, "n_views": 4, "losses": [3.0, 2.5], "minutes": 1.5}
    with pytest.raises(ValueError, match="not a labeler adapted-head checkpoint"):
        read_head(b"something else")


def test_batch_function_pickles_and_matches_the_local_path(tmp_path: Path) -> None:
    spec = backbone_spec("efficientnet_lite0")
    paths = [tmp_path / "cat.jpg", tmp_path / "coffee.jpg"]
    Image.fromarray(skimage_data.chelsea()).save(paths[0])
    Image.fromarray(skimage_data.coffee()).save(paths[1])
    images = np.stack([decode_photo(p) for p in paths])
    assert images.shape == (2, spec.input_size, spec.input_size, 3)

    result = _head()
    data = head_to_bytes(result, backbone="efficientnet_lite0", output="concat", info={})
    plain, adapted = BackboneBatches(device="cpu"), BackboneBatches(head=data, device="cpu")
    plain(images[:1])  # builds the network; a pickled copy must not carry it
    assert len(pickle.dumps(plain)) < 1000
    assert len(pickle.dumps(adapted)) < len(data) + 1000
    plain, adapted = pickle.loads(pickle.dumps(plain)), pickle.loads(pickle.dumps(adapted))

    model, _ = load_backbone("efficientnet_lite0", "cpu")
    expected = embed_batch(model, spec, torch.device("cpu"), images)
    np.testing.assert_allclose(plain(images), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adapted(images), embed_with_head(result.head, expected, result.mean, result.scale),
                               rtol=1e-4, atol=1e-4)


def test_decode_photo_says_why_a_file_is_unreadable(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(UnreadableImage, match="cannot decode"):
        decode_photo(broken)

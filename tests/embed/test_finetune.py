"""SimCLR fine-tuning of the backbone's last stages: what trains and what stays, the checkpoint, the feature cache."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import labeler.embed.finetune as finetune
from labeler.embed.backbone_model import BackboneBatches
from labeler.embed.backbones import backbone_spec, load_backbone, load_classifier
from labeler.embed.pretrained import load_photo, normalise

skimage_data = pytest.importorskip("skimage.data")
TRAINED = ("blocks.5.", "blocks.6.", "conv_head.", "bn2.")


def write_photos(root: Path, per_class: int = 4, seed: int = 0) -> list[Path]:
    """JPEG crops of scikit-image's cat and coffee photos."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, source in enumerate([skimage_data.chelsea(), skimage_data.coffee()]):
        height, width = source.shape[:2]
        for j in range(per_class):
            h, w = int(height * rng.uniform(0.5, 0.9)), int(width * rng.uniform(0.5, 0.9))
            top, left = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
            path = root / f"photo_{label}_{j}.jpg"
            Image.fromarray(source[top : top + h, left : left + w]).save(path, quality=90)
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], finetune.FinetuneResult, Path]:
    """One short fine-tuning run (one epoch of two steps of 4 images), shared by the tests of this module."""
    root = tmp_path_factory.mktemp("finetune")
    paths = write_photos(root / "photos")
    messages: list[str] = []
    result = finetune.finetune_backbone(paths, root / "cache", minutes=5, max_epochs=1, batch_size=4, device="cpu",
                                        progress=lambda fraction, message: messages.append(message))
    assert any(message.startswith("fine-tuning step 2") for message in messages)
    return paths, result, root / "cache"


def pretrained_net() -> finetune.FinetuneNet:
    classifier, _ = load_classifier("efficientnet_lite0")
    classifier.reset_classifier(0)  # type: ignore[operator]
    return finetune.FinetuneNet(classifier, trainable_stages=2)


def test_frozen_stages_stay_bit_identical_and_the_trained_ones_change(
    trained: tuple[list[Path], finetune.FinetuneResult, Path],
) -> None:
    _, result, _ = trained
    assert result.steps == 2  # one epoch of 8 images at 4 per step
    assert result.ok is not None
    assert result.ok.all()
    before = pretrained_net()
    frozen_before, frozen_after = before.trunk.state_dict(), result.net.trunk.state_dict()
    assert frozen_after.keys() == frozen_before.keys()
    for key, value in frozen_before.items():
        assert torch.equal(frozen_after[key].cpu(), value), key
    assert not any(p.requires_grad for p in result.net.trunk.parameters())
    top_before, top_after = before.top.state_dict(), result.net.top.state_dict()
    changed = [key for key, value in top_before.items()
               if key.endswith("weight") and not torch.equal(top_after[key].cpu(), value)]
    weights = [key for key in top_before if key.endswith("weight")]
    assert len(changed) == len(weights)  # AdamW moves every trained weight from the first step
    statistics = [key for key in top_before if key.endswith(("running_mean", "running_var"))]
    assert statistics
    for key in statistics:  # BatchNorm trains its scale and shift over ImageNet's statistics
        assert torch.equal(top_after[key].cpu(), top_before[key]), key
    # The checkpoint holds the trained part only, under timm's names.
    state = finetune.read_finetuned(result.checkpoint)["state"]
    assert state
    assert all(key.startswith(TRAINED) for key in state)
    assert len(result.checkpoint) < 12e6  # the whole network is 19 MB
    assert result.digest == finetune.checkpoint_digest(result.checkpoint)


def test_the_checkpoint_round_trips_to_the_same_features(
    trained: tuple[list[Path], finetune.FinetuneResult, Path],
) -> None:
    paths, result, _ = trained
    spec = backbone_spec("efficientnet_lite0")
    images = np.stack([load_photo(p, spec.input_size, spec.resize_size) for p in paths])
    x = normalise(images, spec, torch.device("cpu"))
    with torch.no_grad():
        expected = result.net.eval()(x).numpy()
        loaded, _ = finetune.load_finetuned(result.checkpoint)
        got = loaded(x).numpy()
        plain = load_backbone()[0](x).numpy()
    # Folding BatchNorm into the convolutions reorders float32 sums: equal to rounding, not bitwise.
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
    assert np.abs(got - plain).max() > 1e-2  # and not the plain pretrained network
    # The batch function that Ray workers run (the checkpoint travels as bytes), under autocast where native.
    batches = pickle.loads(pickle.dumps(BackboneBatches(device="cpu", finetuned=result.checkpoint)))
    shipped = batches(images)
    cosine = np.sum(shipped * got, axis=1) / np.linalg.norm(shipped, axis=1) / np.linalg.norm(got, axis=1)
    assert cosine.min() > 0.99


def test_features_are_cached_under_the_checkpoint_digest(
    trained: tuple[list[Path], finetune.FinetuneResult, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths, result, _ = trained
    digests = [p.name for p in paths]
    X, ok = finetune.finetuned_features(paths, digests, tmp_path, result.checkpoint, device="cpu")
    assert ok.all()
    assert X.shape == (len(paths), 1280)
    folders = [p.name for p in tmp_path.iterdir()]
    assert folders == [finetune.finetuned_tag(backbone_spec("efficientnet_lite0"), result.digest)]
    assert folders[0].startswith(f"finetuned-{result.digest}-")

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("cached features were computed again")

    monkeypatch.setattr(finetune, "load_finetuned", no_model)
    again, _ = finetune.finetuned_features(paths, digests, tmp_path, result.checkpoint, device="cpu")
    np.testing.assert_array_equal(again, X)
    monkeypatch.undo()

    # Another checkpoint (here the same weights under other bookkeeping): another digest, another cache folder.
    other = finetune.finetuned_to_bytes(result.net, "efficientnet_lite0", 2, {"note": "another run"})
    assert finetune.checkpoint_digest(other) != result.digest
    finetune.finetuned_features(paths[:2], digests[:2], tmp_path, other, device="cpu")
    assert len(list(tmp_path.iterdir())) == 2


def test_should_stop_ends_training_after_one_step(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "photos", per_class=2)
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return True

    result = finetune.finetune_backbone(paths, tmp_path / "cache", minutes=10, batch_size=2, device="cpu",
                                        should_stop=stop)
    assert result.steps == 1
    assert asked
    assert not list((tmp_path / "cache").glob(".finetune-decoded-*"))  # the decoded photos' file is gone


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trainable_stages"):
        finetune.FinetuneNet(load_classifier("efficientnet_lite0")[0], trainable_stages=0)
    with pytest.raises(ValueError, match="not a labeler fine-tuned backbone checkpoint"):
        finetune.read_finetuned(b"not a checkpoint")
    with pytest.raises(ValueError, match="temperature"):
        finetune.finetune_backbone([], tmp_path, temperature=0)
    (tmp_path / "broken.jpg").write_bytes(b"not a JPEG")
    with pytest.raises(ValueError, match="at least two photos"):
        finetune.finetune_backbone([tmp_path / "broken.jpg"] * 3, tmp_path / "cache", device="cpu")

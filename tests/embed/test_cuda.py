"""The CUDA paths give what the CPU paths give. Skipped without a GPU (CI has none); run on a GPU machine with

python -m pytest tests/embed/test_cuda.py --noconftest
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labeler.embed.adapted import adapted_features
from labeler.embed.backbone_model import BackboneBatches
from labeler.embed.backbones import backbone_spec, load_classifier
from labeler.embed.finetune import FinetuneNet, finetune_backbone, finetuned_features
from labeler.embed.pretrained import load_photo, pretrained_features
from labeler.embed.ssl.train import embed, train_simclr

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
skimage_data = pytest.importorskip("skimage.data")

CAT = set(range(281, 286))
COFFEE = {967, 968, 504}


def write_photos(root: Path, per_class: int = 16, seed: int = 0) -> tuple[list[Path], list[str], np.ndarray]:
    """Random crops of scikit-image's cat and coffee photos as JPEGs; returns paths, digests (the names) and classes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths, y = [], []
    for label, source in enumerate([skimage_data.chelsea(), skimage_data.coffee()]):
        height, width = source.shape[:2]
        for j in range(per_class):
            h, w = int(height * rng.uniform(0.4, 0.9)), int(width * rng.uniform(0.4, 0.9))
            top, left = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
            path = root / f"photo_{label}_{j:02d}.jpg"
            Image.fromarray(source[top : top + h, left : left + w]).save(path, quality=90)
            paths.append(path)
            y.append(label)
    return paths, [p.name for p in paths], np.array(y)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def test_imagenet_known_answers_on_cuda(tmp_path: Path) -> None:
    model, spec = load_classifier("efficientnet_lite0")
    model = model.to("cuda").eval()
    images = []
    for name, source in (("chelsea", skimage_data.chelsea()), ("coffee", skimage_data.coffee())):
        Image.fromarray(source).save(tmp_path / f"{name}.jpg", quality=95)
        images.append(load_photo(tmp_path / f"{name}.jpg", spec.input_size, spec.resize_size))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().cuda() / 255
    x = (x - torch.tensor(spec.mean, device="cuda").view(1, 3, 1, 1)) / torch.tensor(spec.std, device="cuda").view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        top5 = model(x).topk(5, dim=1).indices.cpu().numpy()
    assert set(top5[0]) & CAT
    assert top5[0][0] in CAT
    assert set(top5[1]) & COFFEE


def test_pretrained_features_on_cuda_match_the_cpu(tmp_path: Path) -> None:
    paths, digests, _ = write_photos(tmp_path / "photos", per_class=6)
    on_gpu, ok_gpu = pretrained_features(paths, digests, tmp_path / "cache-gpu", device="cuda")
    on_cpu, ok_cpu = pretrained_features(paths, digests, tmp_path / "cache-cpu", device="cpu")
    assert ok_gpu.all()
    assert ok_cpu.all()
    # both sides may run in bf16/fp16 autocast: rows agree in direction, not to the last bit
    assert cosine_rows(np.asarray(on_gpu), np.asarray(on_cpu)).min() > 0.99
    spec = backbone_spec("efficientnet_lite0")
    assert on_gpu.shape == (len(paths), spec.feature_dim)


def test_backbone_batches_on_cuda(tmp_path: Path) -> None:
    paths, _, _ = write_photos(tmp_path / "photos", per_class=2)
    spec = backbone_spec("efficientnet_lite0")
    images = np.stack([load_photo(p, spec.input_size, spec.resize_size) for p in paths])
    gpu = BackboneBatches(device="cuda")(images)
    cpu = BackboneBatches(device="cpu")(images)
    assert cosine_rows(gpu, cpu).min() > 0.99


def test_simclr_trains_and_embeds_on_cuda(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(96, 28, 28, 3), dtype=np.uint8)
    checkpoint = train_simclr(images, tmp_path / "ckpt", epochs=2, batch_size=32, device="cuda")
    info = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert info["loss_history"]
    assert np.isfinite(info["loss_history"]).all()
    gpu = embed(images, checkpoint, device="cuda")
    cpu = embed(images, checkpoint, device="cpu")
    assert np.isfinite(gpu).all()
    np.testing.assert_allclose(np.linalg.norm(gpu, axis=1), 1.0, atol=1e-3)
    assert cosine_rows(gpu, cpu).min() > 0.98


def test_adapted_features_on_cuda_separate_the_two_photos(tmp_path: Path) -> None:
    paths, digests, y = write_photos(tmp_path / "photos", per_class=16)
    result = adapted_features(paths, digests, tmp_path / "cache", minutes=0.5, n_views=4, max_epochs=20, device="cuda")
    assert result.ok is not None
    assert result.ok.all()
    Z = result.embedding / np.linalg.norm(result.embedding, axis=1, keepdims=True)
    similarity = Z @ Z.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argmax(similarity, axis=1)
    assert np.mean(y[nearest] == y) >= 0.9


def test_finetuning_on_cuda_keeps_the_frozen_stages_and_embeds_like_the_cpu(tmp_path: Path) -> None:
    paths, digests, y = write_photos(tmp_path / "photos", per_class=16)
    result = finetune_backbone(paths, tmp_path / "cache", minutes=1.0, max_epochs=4, batch_size=16, device="cuda")
    assert result.steps == 8  # 32 photos at 16 per step, 4 epochs
    assert np.isfinite(result.losses).all()
    classifier, _ = load_classifier("efficientnet_lite0")
    classifier.reset_classifier(0)  # type: ignore[operator]  # timm API
    fresh = FinetuneNet(classifier, trainable_stages=2)
    for key, value in fresh.trunk.state_dict().items():
        assert torch.equal(result.net.trunk.state_dict()[key].cpu(), value), key
    assert any(not torch.equal(result.net.top.state_dict()[key].cpu(), value)
               for key, value in fresh.top.state_dict().items() if key.endswith("weight"))
    on_gpu, ok = finetuned_features(paths, digests, tmp_path / "gpu", result.checkpoint, device="cuda")
    on_cpu, _ = finetuned_features(paths, digests, tmp_path / "cpu", result.checkpoint, device="cpu")
    assert ok.all()
    assert cosine_rows(np.asarray(on_gpu), np.asarray(on_cpu)).min() > 0.99
    Z = np.asarray(on_gpu) / np.linalg.norm(on_gpu, axis=1, keepdims=True)
    similarity = Z @ Z.T
    np.fill_diagonal(similarity, -np.inf)
    assert np.mean(y[np.argmax(similarity, axis=1)] == y) >= 0.9

"""Representation ``pretrained``: it separates photo classes that pixels mix up; its cache is reused and invalidated."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import labeler.embed.pretrained as pretrained
from labeler.embed.pretrained import load_photo, pretrained_features
from labeler.embed.views import views_tag
from labeler.io import decode

skimage_data = pytest.importorskip("skimage.data")


def make_photo_folder(root: Path, per_class: int = 12, seed: int = 0) -> tuple[list[Path], np.ndarray]:
    """Two kinds of photo (cat, cup of coffee): random crops of a tenth to a half of the area, flips, any hue,
    half of them grey, random brightness and size, saved as JPEG. Colour and layout, all pixels see, say little."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths, y = [], []
    for label, source in enumerate([skimage_data.chelsea(), skimage_data.coffee()]):
        image = Image.fromarray(source)
        width, height = image.size
        for j in range(per_class):
            scale = np.sqrt(rng.uniform(0.1, 0.5))
            w, h = int(width * scale), int(height * scale)
            left, top = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            crop = image.crop((left, top, left + w, top + h))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            hsv = np.asarray(crop.convert("HSV")).copy()
            hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.uniform(-0.5, 0.5) * 255)) % 256
            pixels = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), np.float32) * rng.uniform(0.6, 1.4)
            pixels = np.clip(pixels, 0, 255).astype(np.uint8)
            if rng.random() < 0.5:
                pixels = np.repeat(np.asarray(Image.fromarray(pixels).convert("L"))[..., None], 3, axis=2)
            side = int(rng.integers(120, 300))
            path = root / f"photo_{label}_{j:02d}.jpg"
            Image.fromarray(pixels).resize((side, max(1, side * h // w))).save(path, quality=90)
            paths.append(path)
            y.append(label)
    return paths, np.array(y)


def knn_loo_accuracy(X: np.ndarray, y: np.ndarray, k: int = 3) -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour vote, cosine similarity after centring."""
    Z = np.asarray(X, np.float64) - np.mean(X, axis=0)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    similarity = Z @ Z.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    votes = [Counter(y[row].tolist()).most_common(1)[0][0] for row in neighbours]
    return float(np.mean(np.array(votes) == y))


@pytest.fixture
def counted_forwards(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch sizes of every forward pass of the backbone that :func:`pretrained_features` loads."""
    calls: list[int] = []
    real = pretrained.load_backbone

    def counting(*args: object, **kwargs: object) -> tuple[object, object]:
        model, spec = real(*args, **kwargs)  # type: ignore[arg-type]
        model.register_forward_hook(lambda _m, inputs, _o: calls.append(int(inputs[0].shape[0])))
        return model, spec

    monkeypatch.setattr(pretrained, "load_backbone", counting)
    return calls


def test_pretrained_features_separate_photo_classes_that_pixels_mix(tmp_path: Path) -> None:
    paths, y = make_photo_folder(tmp_path / "photos")
    X, ok = pretrained_features(paths, [p.name for p in paths], tmp_path / "cache", batch_size=8)
    assert X.shape == (len(paths), 1280)
    assert X.dtype == np.float32
    assert ok.all()
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 32)), np.float32).ravel() for p in paths])
    pixel_accuracy, pretrained_accuracy = knn_loo_accuracy(pixels, y), knn_loo_accuracy(X, y)
    assert pretrained_accuracy >= 0.95, pretrained_accuracy
    assert pixel_accuracy <= pretrained_accuracy - 0.15, (pixel_accuracy, pretrained_accuracy)


def test_cache_is_reused_and_invalidated_per_file(tmp_path: Path, counted_forwards: list[int]) -> None:
    paths, _ = make_photo_folder(tmp_path / "photos", per_class=4)
    digests = [f"digest-{p.name}" for p in paths]
    first, _ = pretrained_features(paths, digests, tmp_path / "cache", batch_size=4)
    first = np.array(first)
    assert sum(counted_forwards) == len(paths)

    again, ok = pretrained_features(paths, digests, tmp_path / "cache")
    assert sum(counted_forwards) == len(paths)  # nothing ran, the model was not even loaded
    assert isinstance(again, np.memmap)
    assert ok.all()
    np.testing.assert_array_equal(again, first)

    # One file changes (so does its digest, which the caller computes): only it is recomputed.
    Image.fromarray(skimage_data.astronaut()).save(paths[2])
    digests[2] = "digest-changed"
    changed, _ = pretrained_features(paths, digests, tmp_path / "cache")
    assert sum(counted_forwards) == len(paths) + 1
    assert not np.allclose(changed[2], first[2])
    np.testing.assert_array_equal(np.delete(changed, 2, axis=0), np.delete(first, 2, axis=0))


def test_unreadable_files_are_masked_not_cached(tmp_path: Path, counted_forwards: list[int]) -> None:
    paths, _ = make_photo_folder(tmp_path / "photos", per_class=2)
    broken = tmp_path / "photos" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    paths.insert(1, broken)
    digests = [p.name for p in paths]
    X, ok = pretrained_features(paths, digests, tmp_path / "cache")
    assert ok.tolist() == [True, False, True, True, True]
    assert not X[1].any()
    assert X[0].any()
    Image.fromarray(skimage_data.chelsea()).save(broken, format="JPEG")  # repaired: tried again, now it works
    before = sum(counted_forwards)
    X, ok = pretrained_features(paths, digests, tmp_path / "cache")
    assert ok.all()
    assert X[1].any()
    assert sum(counted_forwards) == before + 1


def test_load_photo_crops_the_centre_of_an_upright_image(tmp_path: Path) -> None:
    # A wide image: left third red, middle green, right third blue; EXIF says rotate 90 degrees.
    pixels = np.zeros((300, 900, 3), np.uint8)
    pixels[:, :300, 0] = pixels[:, 300:600, 1] = pixels[:, 600:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the upright image is tall
    path = tmp_path / "wide.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    out = load_photo(path, 224, 224)
    assert out.shape == (224, 224, 3)
    assert out.dtype == np.uint8
    assert out[112, 112, 1] > 200
    assert out[112, 112, 0] < 60
    grey = Image.new("I;16", (400, 300), 40000)
    grey.save(tmp_path / "grey16.png")
    assert load_photo(tmp_path / "grey16.png", 224, 256).shape == (224, 224, 3)


def test_mismatched_lengths_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="digests"):
        pretrained_features([tmp_path / "a.jpg"], [], tmp_path)


@pytest.mark.parametrize(
    ("mode", "background", "transparency"),
    [("RGBA", (0, 0, 0, 0), None), ("RGB", (0, 0, 0), (0, 0, 0))],  # alpha channel; PNG's tRNS colour key
)
def test_load_photo_puts_a_transparent_background_on_white(
    tmp_path: Path, mode: str, background: tuple[int, ...], transparency: tuple[int, ...] | None
) -> None:
    image = Image.new(mode, (16, 16), background)
    image.paste((200, 40, 10, 255)[: len(mode)], (4, 4, 12, 12))
    image.save(tmp_path / "icon.png", **({} if transparency is None else {"transparency": transparency}))
    out = load_photo(tmp_path / "icon.png", 16, 16)
    assert tuple(out[0, 0]) == (255, 255, 255)  # not the black the transparent pixels hold
    assert np.abs(out[8, 8].astype(int) - (200, 40, 10)).max() <= 2


def test_features_of_another_decoding_are_another_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pretrained.backbone_spec("efficientnet_lite0")
    tags = {pretrained.cache_tag(spec), views_tag(spec)}
    monkeypatch.setattr(decode, "DECODE_VERSION", decode.DECODE_VERSION + 1)
    assert not tags & {pretrained.cache_tag(spec), views_tag(spec)}

"""Batch augmentations: shapes, randomness, and what each preset must never do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labeler.embed.ssl.augment import PRESETS, BatchAugment, choose_preset


def gray_batch(b: int = 16, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, size, size, generator=g).expand(b, 3, size, size).contiguous()


def step_batch(b: int = 64, size: int = 16) -> torch.Tensor:
    """Bright left half, dark right half: a pattern whose mirror image is easy to detect."""
    x = torch.zeros(b, 3, size, size)
    x[..., : size // 2] = 1.0
    return x


@pytest.mark.parametrize("preset", ["glyph", "photo"])
def test_keeps_shape_dtype_range_and_views_differ(preset):
    x = gray_batch() if preset == "glyph" else torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    augment = BatchAugment(preset, generator=torch.Generator().manual_seed(0))
    v1, v2 = augment(x), augment(x)
    assert v1.shape == x.shape
    assert v1.dtype == x.dtype
    assert float(v1.min()) >= 0.0
    assert float(v1.max()) <= 1.0 + 1e-6
    # Every image's two views differ (per-sample randomness, not one draw for the batch).
    assert bool(((v1 - v2).abs().flatten(1).max(dim=1).values > 1e-3).all())
    # And different images of one batch got different transforms: same input, different outputs.
    same = x[:1].expand_as(x).contiguous()
    out = augment(same)
    assert float((out[0] - out[1]).abs().max()) > 1e-3


def test_same_generator_seed_gives_same_views():
    x = gray_batch()
    a = BatchAugment("photo", generator=torch.Generator().manual_seed(5))(x)
    b = BatchAugment("photo", generator=torch.Generator().manual_seed(5))(x)
    assert torch.equal(a, b)


def test_glyph_keeps_grey_grey_and_hue_but_photo_changes_colour():
    x = gray_batch(64)
    glyph = BatchAugment("glyph", generator=torch.Generator().manual_seed(0))(x)
    assert torch.allclose(glyph[:, 0], glyph[:, 1])
    assert torch.allclose(glyph[:, 0], glyph[:, 2])
    # Solid-colour images: geometry and blur leave them as they are, so any change is an intensity or colour change.
    colours = torch.rand(200, 3, 1, 1, generator=torch.Generator().manual_seed(1)) * 0.6 + 0.2
    solid = colours.expand(200, 3, 16, 16).contiguous()
    glyph = BatchAugment("glyph", generator=torch.Generator().manual_seed(0))(solid)
    # Glyph changes brightness and contrast only: the order of the channels (the hue family) never flips.
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        before = torch.sign(solid[:, a] - solid[:, b])
        after = torch.sign(glyph[:, a] - glyph[:, b])
        assert bool(((after == before) | (after == 0)).all())
    photo = BatchAugment("photo", generator=torch.Generator().manual_seed(0))(solid)
    changed = (photo - solid).abs().amax(dim=(1, 2, 3)) > 0.01
    assert 0.7 < float(changed.float().mean()) < 0.95  # jitter with p = 0.8, grayscale with p = 0.2
    grey = (photo.amax(dim=1) - photo.amin(dim=1)).amax(dim=(1, 2)) < 1e-5
    assert 20 <= int(grey.sum()) <= 60
    hue_flipped = torch.sign(photo[:, 0] - photo[:, 1]) * torch.sign(solid[:, 0] - solid[:, 1]) < 0
    assert bool(hue_flipped.any())


def test_glyph_never_mirrors_but_photo_does():
    # Without a flip every view of the step keeps more ink on its left third than on its right third
    # (crops, small rotations and shifts preserve left-to-right order); a mirrored view reverses that.
    x = step_batch()
    glyph = BatchAugment("glyph", generator=torch.Generator().manual_seed(0))(x)
    left, right = glyph[..., :5].mean(dim=(1, 2, 3)), glyph[..., -5:].mean(dim=(1, 2, 3))
    assert bool((left >= right).all())
    photo = BatchAugment("photo", generator=torch.Generator().manual_seed(0))(x)
    left, right = photo[..., :5].mean(dim=(1, 2, 3)), photo[..., -5:].mean(dim=(1, 2, 3))
    assert 10 < int((left < right).sum()) < 54  # about half flipped


def test_presets_follow_the_issue():
    assert PRESETS["glyph"].flip_p == 0
    assert PRESETS["glyph"].saturation == 0
    assert PRESETS["glyph"].hue == 0
    assert PRESETS["glyph"].grayscale_p == 0
    assert PRESETS["photo"].flip_p > 0
    assert PRESETS["photo"].jitter_p > 0


def test_choose_preset():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(20, 16, 16, 1), dtype=np.uint8).repeat(3, axis=-1)
    assert choose_preset(gray) == "glyph"
    colour = rng.integers(0, 256, size=(20, 16, 16, 3), dtype=np.uint8)
    assert choose_preset(colour) == "photo"
    # Coloured ink on a white page is glyph-like too.
    page = np.full((20, 16, 16, 3), 255, dtype=np.uint8)
    page[:, 6:9, 3:13] = (200, 30, 30)
    assert choose_preset(page) == "glyph"


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="preset"):
        BatchAugment("sketch")
    with pytest.raises(ValueError, match="float"):
        BatchAugment("glyph")(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))

"""The photo-folder detector: colour photographs (32 px and up) get the pretrained backbone, grey or tiny images do
not; small ones (below 64 px) get edges and pixels, in colour too."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.embed.folder_kind import colour_share, is_photo_folder, is_small_folder, typical_side


def _images(n: int, colour: bool, seed: int = 0) -> np.ndarray:
    """(n, 32, 32, 3) uint8 as the training cache holds them: random textures, grey (R = G = B) or coloured."""
    rng = np.random.default_rng(seed)
    if colour:
        return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, size=(n, 32, 32, 1), dtype=np.uint8)
    return np.repeat(grey, 3, axis=3)


@pytest.mark.parametrize(
    ("side", "colour", "expected"),
    [
        (28, False, False),  # MNIST-like digits
        (28, True, False),  # small colour icons
        (32, True, True),  # CIFAR-like thumbnails: photos too (the threshold itself)
        (31, True, False),
        (200, False, False),  # big grey scans
        (200, True, True),  # colour photographs
        (64, True, True),
    ],
)
def test_known_answers(side: int, colour: bool, expected: bool) -> None:
    sizes = [(side + 10 * (i % 3), side) for i in range(20)]  # landscape: the shorter side is ``side``
    assert is_photo_folder(sizes, _images(20, colour)) is expected


@pytest.mark.parametrize(("side", "small"), [(28, True), (32, True), (63, True), (64, False), (400, False)])
def test_small_folders_are_those_below_64_px_whatever_their_colour(side: int, small: bool) -> None:
    sizes = [(side, side + 7 * (i % 4)) for i in range(9)]  # portrait: the shorter side is ``side``
    assert typical_side(sizes) == side
    assert is_small_folder(sizes) is small


def test_grey_with_jpeg_noise_is_grey_and_a_colour_minority_does_not_decide() -> None:
    noisy = _images(10, colour=False).astype(np.int16)
    noisy += np.random.default_rng(1).integers(-4, 5, size=noisy.shape)  # chroma noise of a re-saved JPEG
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    assert colour_share(noisy) == 0.0
    mixed = np.concatenate([_images(6, colour=False), _images(4, colour=True)])
    assert colour_share(mixed) == pytest.approx(0.4)
    assert not is_photo_folder([(300, 200)] * 10, mixed)
    assert is_photo_folder([(300, 200)] * 10, mixed[::-1][:7])  # 4 of 7 in colour


def test_unknown_sizes_are_left_out_and_nothing_is_no_photo() -> None:
    images = _images(4, colour=True)
    assert is_photo_folder([(None, None), (300, 200), (400, 300), (None, 5)], images)
    assert not is_photo_folder([(None, None)] * 4, images)
    assert not is_photo_folder([], images[:0])
    assert typical_side([(None, None), (300, 200), (400, 300), (None, 5)]) == 250.0
    assert typical_side([]) is None
    assert is_small_folder([])
    assert colour_share(images[:0]) == 0.0
    with pytest.raises(ValueError, match="images must be"):
        colour_share(np.zeros((2, 32, 32), np.uint8))

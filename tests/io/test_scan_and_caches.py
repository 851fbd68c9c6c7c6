"""Known-answer tests for finding, decoding and caching images; every odd file is built here."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeler.io import decode, scan
from labeler.io.caches import (
    THUMB_BACKGROUND,
    build_image_caches,
    cache_paths,
    decode_for_caches,
    make_thumbnail,
    make_training_image,
    open_caches,
    superseded_caches,
)
from labeler.io.decode import UnreadableImage, decode_image, to_rgb
from labeler.io.scan import (
    IMAGE_EXTENSIONS,
    ScannedImage,
    _n_workers,
    dataset_fingerprint,
    file_sha256,
    find_duplicates,
    find_images,
    labels_from_folders,
    scan_images,
)


def save(image: Image.Image, path: Path, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def rgb_at(path: Path, xy: tuple[int, int] = (0, 0)) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(decode_image(path))[xy[1], xy[0]])


# ----------------------------------------------------------------------------------------------- modes


def test_grey_l(tmp_path: Path) -> None:
    path = save(Image.new("L", (3, 2), 100), tmp_path / "l.png")
    image = decode_image(path)
    assert image.mode == "RGB"
    assert image.size == (3, 2)
    assert np.all(np.asarray(image) == 100)


def test_la_transparent_is_white(tmp_path: Path) -> None:
    path = save(Image.new("LA", (2, 2), (0, 0)), tmp_path / "la.png")
    assert rgb_at(path) == (255, 255, 255)


def test_rgba_half_transparent_red_over_white(tmp_path: Path) -> None:
    path = save(Image.new("RGBA", (2, 2), (255, 0, 0, 128)), tmp_path / "rgba.png")
    r, g, b = rgb_at(path)
    # 255*128/255 + 255*(1-128/255) = 255 ; 0*a + 255*(127/255) = 127
    assert r == 255
    assert abs(g - 127) <= 1
    assert abs(b - 127) <= 1


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 255, 10, 200, 30] + [0] * (256 * 3 - 6))
    image.putpixel((0, 0), 0)  # transparent index
    image.putpixel((1, 0), 1)
    path = save(image, tmp_path / "p.png", transparency=0)
    assert rgb_at(path, (0, 0)) == (255, 255, 255)
    assert rgb_at(path, (1, 0)) == (10, 200, 30)


def icon(mode: str) -> tuple[Image.Image, dict[str, object], tuple[int, int, int]]:
    """An 8 x 8 icon: a 4 x 4 opaque square of a known colour on a transparent background whose hidden pixels are
    black, in ``mode``; with the save arguments that make it transparent and the square's RGB."""
    if mode == "RGBA":
        array = np.zeros((8, 8, 4), np.uint8)
        array[2:6, 2:6] = (200, 40, 10, 255)
        return Image.fromarray(array, "RGBA"), {}, (200, 40, 10)
    if mode == "LA":
        array = np.zeros((8, 8, 2), np.uint8)
        array[2:6, 2:6] = (90, 255)
        return Image.fromarray(array, "LA"), {}, (90, 90, 90)
    if mode == "P":
        image = Image.new("P", (8, 8), 0)
        image.putpalette([0, 0, 0, 200, 40, 10] + [0] * (256 * 3 - 6))
        image.paste(1, (2, 2, 6, 6))
        return image, {"transparency": 0}, (200, 40, 10)
    if mode == "RGB":  # PNG's tRNS colour key: every black pixel is transparent
        image = Image.new("RGB", (8, 8), (0, 0, 0))
        image.paste((200, 40, 10), (2, 2, 6, 6))
        return image, {"transparency": (0, 0, 0)}, (200, 40, 10)
    assert mode == "I;16"  # 16-bit grey with a colour key
    array = np.zeros((8, 8), np.uint16)
    array[2:6, 2:6] = 257 * 90
    return Image.fromarray(array), {"transparency": 0}, (90, 90, 90)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "RGB", "I;16"])
def test_transparent_icon_is_on_white_in_every_picture(tmp_path: Path, mode: str) -> None:
    image, transparency, colour = icon(mode)
    path = save(image, tmp_path / "icon.png", **transparency)
    with Image.open(path) as opened:
        assert opened.mode == mode
    decoded = np.asarray(decode_image(path))
    assert tuple(decoded[0, 0]) == (255, 255, 255)  # the background, not the black it hides
    assert tuple(decoded[4, 4]) == colour
    cached = decode_for_caches(path.read_bytes(), thumb_size=8, train_size=8)
    assert cached.thumb is not None
    assert cached.train is not None
    for picture in (cached.thumb, cached.train):
        assert tuple(picture[0, 0]) == (255, 255, 255)
        assert np.abs(picture[4, 4].astype(int) - colour).max() <= 2


def test_cmyk(tmp_path: Path) -> None:
    image = Image.new("CMYK", (2, 1))
    image.putpixel((0, 0), (0, 0, 0, 0))
    image.putpixel((1, 0), (0, 0, 0, 255))
    path = save(image, tmp_path / "cmyk.tif")
    assert rgb_at(path, (0, 0)) == (255, 255, 255)
    assert rgb_at(path, (1, 0)) == (0, 0, 0)


def test_16_bit_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 32768, 65535, 257 * 100]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    path = save(image, tmp_path / "i16.png")
    grey = np.asarray(decode_image(path))[0, :, 0]
    assert grey.tolist() == [0, 128, 255, 100]


def test_16_bit_big_endian() -> None:
    image = Image.frombytes("I;16B", (2, 1), np.array([65535, 32768], dtype=">u2").tobytes())
    assert image.mode == "I;16B"
    assert np.asarray(to_rgb(image))[0, :, 0].tolist() == [255, 128]


def test_32_bit_int_in_16_bit_range(tmp_path: Path) -> None:
    image = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32))
    assert image.mode == "I"
    path = save(image, tmp_path / "i32.tif")
    assert np.asarray(decode_image(path))[0, :, 0].tolist() == [0, 128, 255]


def test_32_bit_int_beyond_16_bit_stretched_by_range() -> None:
    image = Image.fromarray(np.array([[-1000, 0, 1000]], dtype=np.int32))
    assert np.asarray(to_rgb(image))[0, :, 0].tolist() == [0, 128, 255]  # 127.5 rounds to even 128


def test_float_unit_range_times_255(tmp_path: Path) -> None:
    image = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    path = save(image, tmp_path / "f.tif")
    assert np.asarray(decode_image(path))[0, :, 0].tolist() == [0, 128, 255]


def test_float_other_range_stretched() -> None:
    image = Image.fromarray(np.array([[10.0, 20.0, 30.0, np.nan]], dtype=np.float32))
    # NaN -> 0, then min..max = 0..30 stretched to 0..255
    assert np.asarray(to_rgb(image))[0, :, 0].tolist() == [85, 170, 255, 0]


def test_one_bit(tmp_path: Path) -> None:
    image = Image.new("1", (2, 1), 0)
    image.putpixel((1, 0), 1)
    path = save(image, tmp_path / "b.png")
    assert rgb_at(path, (0, 0)) == (0, 0, 0)
    assert rgb_at(path, (1, 0)) == (255, 255, 255)


def test_ycbcr() -> None:
    image = Image.new("RGB", (1, 1), (200, 50, 20)).convert("YCbCr")
    r, g, b = np.asarray(to_rgb(image))[0, 0]
    assert abs(int(r) - 200) <= 3
    assert abs(int(g) - 50) <= 3
    assert abs(int(b) - 20) <= 3


# ----------------------------------------------------------------------------------------------- orientation, formats


def blocks_image() -> Image.Image:
    """40 wide x 20 tall: left half red, right half blue."""
    array = np.zeros((20, 40, 3), dtype=np.uint8)
    array[:, :20] = (255, 0, 0)
    array[:, 20:] = (0, 0, 255)
    return Image.fromarray(array)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_6_rotates(tmp_path: Path, suffix: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise to display
    path = save(blocks_image(), tmp_path / f"o{suffix}", exif=exif.tobytes())
    image = decode_image(path)
    assert image.size == (20, 40)
    pixels = np.asarray(image).astype(int)
    # Clockwise: the stored left (red) half becomes the top, the right (blue) half the bottom.
    assert np.abs(pixels[5, 10] - (255, 0, 0)).max() < 40
    assert np.abs(pixels[35, 10] - (0, 0, 255)).max() < 40


def test_gif_takes_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), (255, 0, 0)), Image.new("RGB", (4, 4), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert rgb_at(path) == (255, 0, 0)


@pytest.mark.parametrize(("name", "fmt"), [("a.tif", "TIFF"), ("a.webp", "WEBP"), ("a.bmp", "BMP")])
def test_other_formats(tmp_path: Path, name: str, fmt: str) -> None:
    path = save(Image.new("RGB", (5, 3), (10, 120, 240)), tmp_path / name, format=fmt, lossless=True)
    image = decode_image(path)
    assert image.size == (5, 3)
    assert np.abs(np.asarray(image).astype(int) - (10, 120, 240)).max() <= 2


# ----------------------------------------------------------------------------------------------- finding


def test_find_any_case_and_unicode(tmp_path: Path) -> None:
    save(Image.new("RGB", (2, 2)), tmp_path / "UP.PNG")
    save(Image.new("RGB", (2, 2)), tmp_path / "sub" / "mixed.JpEg", format="JPEG")
    save(Image.new("RGB", (2, 2), (1, 2, 3)), tmp_path / "café_日本.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "._resource.jpg").write_bytes(b"\0\5\26\7")  # macOS resource fork, hidden
    found = find_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["UP.PNG", "café_日本.png", "sub/mixed.JpEg"]
    assert all(p.is_absolute() for p in found)
    assert rgb_at(tmp_path / "café_日本.png") == (1, 2, 3)
    assert {".png", ".jpeg", ".tiff"} <= IMAGE_EXTENSIONS


def test_symlink_cycle_terminates_and_lists_once(tmp_path: Path) -> None:
    save(Image.new("RGB", (2, 2)), tmp_path / "top.png")
    save(Image.new("RGB", (2, 2)), tmp_path / "dir" / "inner.png")
    os.symlink(tmp_path, tmp_path / "dir" / "link")  # dir/link -> its parent: a cycle
    os.symlink(tmp_path / "dir", tmp_path / "alias")  # a second name for the same real folder
    rels = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert rels == ["alias/inner.png", "top.png"]  # each image once; walking is sorted, so "alias" wins


def test_hidden_workspace_and_exclude_skipped(tmp_path: Path) -> None:
    save(Image.new("RGB", (2, 2)), tmp_path / "keep.png")
    save(Image.new("RGB", (2, 2)), tmp_path / ".labeler" / "cache" / "thumb.png")
    save(Image.new("RGB", (2, 2)), tmp_path / "out" / "export.png")
    rels = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path, exclude=[tmp_path / "out"])]
    assert rels == ["keep.png"]


def test_labels_from_folders() -> None:
    assert labels_from_folders(["cat/a.png", "x/dog/b.png", "root.png"]) == {"cat/a.png": "cat", "x/dog/b.png": "dog"}


# ----------------------------------------------------------------------------------------------- unreadable files


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def noise(size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def make_bad_folder(root: Path) -> None:
    save(Image.new("RGB", (3, 4), (9, 9, 9)), root / "good.png")
    (root / "empty.png").write_bytes(b"")
    whole = png_bytes(noise((64, 64)))
    (root / "truncated.png").write_bytes(whole[: len(whole) // 2])
    buffer = io.BytesIO()
    noise((64, 64)).save(buffer, format="JPEG")
    (root / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / "text.jpg").write_text("hello, I am not a picture")
    # 3000 x 3000 one-bit white compresses to a few kB but claims 9 Mpx.
    (root / "bomb.png").write_bytes(png_bytes(Image.new("1", (3000, 3000), 1)))


def test_unreadable_files_reported_with_reasons(tmp_path: Path) -> None:
    make_bad_folder(tmp_path)
    assert (tmp_path / "bomb.png").stat().st_size < 20_000
    scanned = {s.path: s for s in scan_images(tmp_path, max_pixels=1_000_000)}
    assert scanned["good.png"] == ScannedImage("good.png", file_sha256(tmp_path / "good.png"), 3, 4, None)
    assert scanned["empty.png"].error == "empty file"
    assert scanned["truncated.png"].error == "truncated"
    assert scanned["truncated.jpg"].error == "truncated"
    assert scanned["text.jpg"].error == "not an image"
    assert scanned["bomb.png"].error == "decompression bomb (9000000 pixels > 1000000)"
    assert all(s.sha256 is not None for s in scanned.values())
    assert all(s.width is None for s in scanned.values() if s.error)


def test_bomb_refused_before_decoding(tmp_path: Path) -> None:
    # A header claiming 5000 x 5000 with no pixel data: decoding would say "truncated", the size check does not.
    whole = png_bytes(Image.new("L", (5000, 5000)))
    path = tmp_path / "claim.png"
    path.write_bytes(whole[:60])
    with pytest.raises(UnreadableImage, match="decompression bomb"):
        decode_image(path, max_pixels=1_000_000)
    with pytest.raises(UnreadableImage, match="truncated"):
        decode_image(path, max_pixels=100_000_000)


def test_duplicates_by_content(tmp_path: Path) -> None:
    save(Image.new("RGB", (2, 2), (5, 5, 5)), tmp_path / "b.png")
    (tmp_path / "a" / "copy.png").parent.mkdir()
    (tmp_path / "a" / "copy.png").write_bytes((tmp_path / "b.png").read_bytes())
    (tmp_path / "z.png").write_bytes((tmp_path / "b.png").read_bytes())
    save(Image.new("RGB", (2, 2), (6, 5, 5)), tmp_path / "c.png")
    assert find_duplicates(scan_images(tmp_path)) == {"b.png": "a/copy.png", "z.png": "a/copy.png"}


def test_fingerprint_is_ordered_and_short() -> None:
    fp = dataset_fingerprint(["aa", "bb"])
    assert len(fp) == 16
    assert fp != dataset_fingerprint(["bb", "aa"])
    assert fp == dataset_fingerprint(["aa", "bb"])
    assert len(dataset_fingerprint(["café_日本.png\taa"])) == 16  # callers may mix paths in


# ----------------------------------------------------------------------------------------------- arrays and caches


def test_thumbnail_letterboxed() -> None:
    array = make_thumbnail(blocks_image(), 16)  # 40x20 -> 16x8 centred vertically
    assert array.shape == (16, 16, 3)
    assert array.dtype == np.uint8
    assert tuple(array[0, 0]) == THUMB_BACKGROUND
    assert tuple(array[15, 8]) == THUMB_BACKGROUND
    assert tuple(array[8, 1]) == (255, 0, 0)
    assert tuple(array[8, 14]) == (0, 0, 255)


def test_training_image_squashes_or_crops() -> None:
    array = make_training_image(blocks_image(), 8)  # aspect 2 > 1.5: crop to 30x20, then squash
    assert array.shape == (8, 8, 3)
    assert array.dtype == np.uint8
    assert tuple(array[4, 0]) == (255, 0, 0)
    assert tuple(array[4, 7]) == (0, 0, 255)
    square = make_training_image(Image.new("RGB", (30, 20), (1, 2, 3)), 8)  # aspect 1.5: whole image
    assert np.all(square == (1, 2, 3))


def build(root: Path, rels: list[str], out: Path, **kwargs: object) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    thumbs_path, train_path = out / "thumbs.npy", out / "train.npy"
    errors = build_image_caches(root, rels, thumbs_path, train_path, 16, 8, **kwargs)  # type: ignore[arg-type]
    return np.load(thumbs_path), np.load(train_path), errors


def test_build_and_open_caches(tmp_path: Path) -> None:
    root = tmp_path / "images"
    save(Image.new("RGB", (40, 20), (200, 0, 0)), root / "a.png")
    save(Image.new("RGB", (64, 64), (0, 200, 0)), root / "b.jpg", quality=95)
    (root / "bad.png").write_bytes(b"junk")
    rels = ["a.png", "b.jpg", "bad.png"]
    cache = tmp_path / "cache"
    thumbs_path, train_path = cache_paths(cache, "fp", 16, 8)
    calls: list[float] = []
    errors = build_image_caches(root, rels, thumbs_path, train_path, 16, 8, progress=lambda f, m: calls.append(f))
    assert errors == [None, None, "not an image"]
    assert calls[-1] == 1.0
    version = decode.DECODE_VERSION
    assert sorted(p.name for p in cache.iterdir()) == [f"thumbs-16-d{version}-fp.npy", f"train-8-d{version}-fp.npy"]
    opened = open_caches(cache, "fp", 16, 8, 3)
    assert opened is not None
    thumbs, train = opened
    assert isinstance(thumbs, np.memmap)
    assert isinstance(train, np.memmap)
    assert thumbs.shape == (3, 16, 16, 3)
    assert train.shape == (3, 8, 8, 3)
    assert not thumbs[2].any()
    assert not train[2].any()
    assert np.abs(train[1].astype(int) - (0, 200, 0)).max() < 10
    assert tuple(thumbs[0, 0, 0]) == THUMB_BACKGROUND
    assert open_caches(cache, "fp", 16, 8, 4) is None  # wrong number of rows: rebuild
    assert open_caches(cache, "other", 16, 8, 3) is None


def test_scan_reports_full_upright_size_of_big_jpeg(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    save(noise((400, 300)), tmp_path / "big.jpg", exif=exif.tobytes())  # decoded in draft mode during the scan
    (item,) = scan_images(tmp_path)
    assert (item.width, item.height, item.error) == (300, 400, None)


def test_two_threads_give_the_same_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_bad_folder(tmp_path / "data")
    save(noise((50, 30)), tmp_path / "data" / "n.png")
    data = tmp_path / "data"
    rels = [s.path for s in scan_images(data)]
    loop_scan = scan_images(data, max_pixels=1_000_000)
    loop_caches = build(data, rels, tmp_path / "loop", max_pixels=1_000_000)
    monkeypatch.setattr(scan, "_THREADS_ABOVE_BYTES", -1)
    assert _n_workers(find_images(data)) == 2
    fractions: list[float] = []
    assert scan_images(data, max_pixels=1_000_000, progress=lambda f, m: fractions.append(f)) == loop_scan
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    threaded = build(data, rels, tmp_path / "threads", max_pixels=1_000_000)
    np.testing.assert_array_equal(threaded[0], loop_caches[0])
    np.testing.assert_array_equal(threaded[1], loop_caches[1])
    assert threaded[2] == loop_caches[2]


def test_caches_an_older_decoding_wrote_are_superseded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fingerprint = "0123456789abcdef"
    superseded = {
        f"thumbs-96-{fingerprint}.npy",  # version 1 had no version in its names
        f"train-32-building-{fingerprint}.npy",
        "train-32-d2-pending.npy",
        *(p.name for p in cache_paths(tmp_path, fingerprint, 96, 32)),  # this version's, before the next one
    }
    monkeypatch.setattr(decode, "DECODE_VERSION", decode.DECODE_VERSION + 1)
    current = {p.name for p in cache_paths(tmp_path, fingerprint, 96, 32)}
    others = {f"embedding-pixels-pca-{fingerprint}.npy", "thumbs-notes.npy"}  # not pixels; not a cache's name
    for name in superseded | current | others:
        (tmp_path / name).write_bytes(b"x")
    assert {p.name for p in superseded_caches(tmp_path)} == superseded

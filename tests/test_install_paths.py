"""The bundled samples are where the app looks for them, and each ground truth names exactly its folder's images."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from PIL import Image

from labeler.install_paths import sample_data_dir, sample_photos_dir


def _truth(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["path"]: row["label"] for row in csv.DictReader(handle)}


def test_sample_photos_are_cats_and_dogs_of_twelve_breeds_with_their_attribution() -> None:
    folder = sample_photos_dir()
    photos = sorted(p.name for p in folder.glob("*.jpg"))
    species = _truth(folder / "ground_truth.csv")
    breeds = _truth(folder / "ground_truth_breeds.csv")
    assert sorted(species) == photos == sorted(breeds)
    assert Counter(species.values()) == {"cat": 60, "dog": 60}
    assert sorted(Counter(breeds.values()).values()) == [10] * 12
    # names say nothing of the answer
    assert all(name.startswith("photo_") for name in photos)
    with Image.open(folder / photos[0]) as image:
        assert image.mode == "RGB"
        assert max(image.size) == 320
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in readme
    assert "Parkhi" in readme


def test_sample_data_is_the_default_and_lists_its_ground_truth() -> None:
    folder = sample_data_dir()
    assert sorted(_truth(folder / "ground_truth.csv")) == sorted(p.name for p in folder.glob("*.png"))

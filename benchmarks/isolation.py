"""Are non-photos planted among photos flagged isolated, and nothing else, through the app's own pipeline?

    python -m benchmarks.isolation [--data-dir /work/shared/datasets] [--digits 2000]

The claim of :func:`labeler.workflow.representations.plain_backbone_distances`: on a colour-photo folder, Tukey's
fence on the distance to the 15th neighbour in the backbone's plain (uncentred) features
(:func:`labeler.core.review.isolated`) finds non-photos, and no photo; a refresh flags those rows ``isolated`` (and
``new-class``), gives them chance, 1 / n_classes, for confidence, and the export flags them ``isolated``.

Each folder is written to a temporary directory and goes through the app: ``Workspace.open``, ``import_folder``, one
label per class through the store (the first image of each class by file name), ``refresh`` (no bootstrap, no map).

- pets37 (370 photos) plus ten non-photos made here (:func:`plant_junk`): refreshed once with the rule off (the
  plain distances withheld from ``refresh``, as before the rule) and once with it on, in the same workspace; junk
  caught, photos flagged, and each junk image's label, confidence and score (the raw spreading value) before and after;
- pets37 alone, MNIST's first ``--digits`` and Fashion-MNIST's 1,000, written as PNGs: isolated (must be 0 for the
  digits and clothing, which are no photo folder) and possible new classes.

Results: ``benchmarks/results/isolation.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from benchmarks.quality import SHARED_DATASETS, machine
from labeler.config import Settings
from labeler.core.review import ISOLATION_FENCE
from labeler.workflow import export
from labeler.workflow.refresh import refresh
from labeler.workflow.representations import plain_backbone_distances
from labeler.workflow.state import PipelineState
from labeler.workflow.workspace import Workspace

RESULTS = Path(__file__).parent / "results" / "isolation.md"
JUNK_PREFIX = "junk_"


def plant_junk(root: Path, seed: int = 0) -> list[str]:
    """Ten non-photos written into ``root``: a 1 x 1 px image, flat colours as PNG, GIF and JPEG, grey and colour
    gradients, random and blocky noise, a blank white page and a screenshot-like page of text; their file names."""
    rng = np.random.default_rng(seed)
    Image.new("RGB", (1, 1), (255, 0, 0)).save(root / "junk_1px_red.png")
    Image.new("RGB", (240, 180), (230, 140, 30)).save(root / "junk_flat_orange.png")
    Image.new("RGB", (200, 150), (40, 90, 200)).save(root / "junk_flat_blue.gif")
    Image.new("RGB", (320, 240), (30, 160, 60)).save(root / "junk_flat_green.jpg", quality=95)
    Image.fromarray(np.tile(np.linspace(0, 255, 300).astype(np.uint8), (200, 1))).save(root / "junk_grey_gradient.png")
    x, y = np.meshgrid(np.linspace(0, 1, 300), np.linspace(0, 1, 200))
    Image.fromarray((np.stack([x, y, 1 - x], axis=-1) * 255).astype(np.uint8)).save(root / "junk_colour_gradient.png")
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(root / "junk_noise.png")
    blocks = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    blocks.resize((256, 256), Image.Resampling.NEAREST).save(root / "junk_blocky_noise.png")
    Image.new("RGB", (600, 800), (255, 255, 255)).save(root / "junk_blank_page.png")
    page = Image.new("RGB", (800, 600), (250, 250, 250))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 800, 40), fill=(50, 60, 80))
    draw.text((10, 12), "File  Edit  View  Window  Help", fill=(255, 255, 255))
    words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod"]
    for i in range(25):
        draw.text((20, 60 + 20 * i), " ".join(rng.choice(words, 10)), fill=(0, 0, 0))
    page.save(root / "junk_screenshot.png")
    return sorted(p.name for p in root.glob(f"{JUNK_PREFIX}*"))


def copy_pets(data_dir: Path, root: Path, every: int = 1) -> dict[str, str]:
    """pets37's photos (every ``every``-th row of its table) copied into ``root``; {file name: species}."""
    table = pd.read_csv(data_dir / "pets37" / "ground_truth.csv").iloc[::every]
    root.mkdir(parents=True, exist_ok=True)
    for name in table["path"]:
        shutil.copy(data_dir / "pets37" / "images" / name, root / name)
    return dict(zip(table["path"], table["species"], strict=True))


def write_pngs(npz_path: Path, root: Path, n: int | None = None) -> dict[str, str]:
    """The first ``n`` images of a reference ``.npz`` written as PNGs into ``root``; {file name: class name}."""
    root.mkdir(parents=True, exist_ok=True)
    with np.load(npz_path, allow_pickle=False) as data:
        images, labels, names = data["images"][:n], data["labels"][:n], data["class_names"]
    truth = {}
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = f"{i:05d}.png"
        Image.fromarray(image).save(root / path)
        truth[path] = str(names[label])
    return truth


def open_labeled(root: Path, truth: dict[str, str]) -> Workspace:
    """The folder imported, and its first image of each class (by file name) labeled through the store."""
    ws = Workspace.open(Settings(root, n_bootstrap=0, device="cpu"))
    ws.import_folder()
    first: dict[str, str] = {}
    for path in sorted(truth):
        first.setdefault(truth[path], path)
    ws.store.label_paths([(path, name) for name, path in first.items()], "benchmark")
    return ws


def refresh_without_rule(ws: Workspace) -> PipelineState:
    """A refresh as before the rule: the plain backbone distances withheld, so nothing is isolated."""
    with mock.patch("labeler.workflow.refresh.plain_backbone_distances", return_value=None):
        return refresh(ws, compute_map=False)


def fence_ratio(distances: NDArray[np.float32]) -> NDArray[np.float64]:
    """Each row's distance to its k-th neighbour over Tukey's fence (``ISOLATION_FENCE``): above 1 is isolated."""
    last = np.asarray(distances, dtype=np.float64)[:, -1]
    q1, q3 = np.percentile(last, [25, 75])
    return last / (q3 + ISOLATION_FENCE * (q3 - q1))


# A user trial's folder, in kind: about a third of pets37 and four non-photos. There the rule found none.
SMALL_EVERY = 3
JUNK_TABLE = [
    "| junk image | label before | confidence before | score before | new class before | label after "
    "| confidence after | score after | isolated | distance / fence | export flags |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]
SMALL_JUNK = ("junk_1px_red.png", "junk_flat_blue.gif", "junk_grey_gradient.png", "junk_blank_page.png")


def junk_rows(data_dir: Path, tmp: Path, every: int = 1,
              keep: tuple[str, ...] | None = None) -> tuple[list[str], list[str], float]:
    """pets37 (every ``every``-th photo) + the planted junk (those named in ``keep``, default all): the summary
    lines, one table row per junk image, seconds."""
    t = time.perf_counter()
    root = tmp / f"pets_junk_{every}"
    truth = copy_pets(data_dir, root, every)
    junk = plant_junk(root)
    if keep is not None:
        for name in set(junk) - set(keep):
            (root / name).unlink()
        junk = [name for name in junk if name in keep]
    ws = open_labeled(root, truth)
    before = refresh_without_rule(ws)
    after = refresh(ws, compute_map=False)
    assert before.paths == after.paths
    flags = export.export_frame(ws, state=after).set_index("path")["flagged"].fillna("")
    plain = plain_backbone_distances(ws)
    ratio = fence_ratio(plain) if plain is not None else np.full(len(after.paths), np.nan)
    is_junk = np.array([p.startswith(JUNK_PREFIX) for p in after.paths])
    human = after.source == "human"
    photos = ~is_junk & ~human
    names_before, names_after = before.label_names(), after.label_names()
    rows = []
    for path in junk:
        i = after.paths.index(path)
        rows.append(
            f"| {path} | {names_before[i]} | {before.confidence[i]:.2f} | {before.score[i]:.2f} "
            f"| {'yes' if before.new_class[i] else 'no'} | {names_after[i]} | {after.confidence[i]:.2f} "
            f"| {after.score[i]:.2f} | {'yes' if after.isolated_rows()[i] else 'no'} | {ratio[i]:.2f} "
            f"| {flags.get(path, '')} |"
        )
    flagged_photos = [after.paths[i] for i in np.flatnonzero(after.isolated_rows() & photos)]
    summary = [
        f"- representation: {after.representation}; classes {', '.join(after.class_names)} (one label each)",
        f"- junk caught (isolated): **{int(after.isolated_rows()[is_junk].sum())} / {len(junk)}**; "
        f"before the rule {int(before.isolated_rows()[is_junk].sum())}, and {int(before.new_class[is_junk].sum())} "
        "flagged possible new class",
        f"- real photos flagged isolated: **{len(flagged_photos)} / {int(photos.sum())}**"
        + (f" ({', '.join(flagged_photos)})" if flagged_photos else ""),
        f"- real photos flagged possible new class: {int(before.new_class[photos].sum())} before, "
        f"{int(after.new_class[photos].sum())} after",
        f"- 15th-neighbour distance in the plain features over the fence: junk {np.nanmin(ratio[is_junk]):.2f}-"
        f"{np.nanmax(ratio[is_junk]):.2f}, photos at most {np.nanmax(ratio[~is_junk]):.2f}",
    ]
    return summary, rows, time.perf_counter() - t


def clean_row(name: str, root: Path, truth: dict[str, str]) -> str:
    """One table row for a folder with nothing planted: isolated and possible new classes after a refresh."""
    t = time.perf_counter()
    ws = open_labeled(root, truth)
    state = refresh(ws, compute_map=False)
    unlabeled = int((state.source != "human").sum())
    new_class = int(state.new_class.sum())
    photo = "yes" if plain_backbone_distances(ws) is not None else "no"
    row = (f"| {name} | {len(state.paths)} | {len(state.class_names)} | {photo} | {state.representation} "
           f"| {int(state.isolated_rows().sum())} | {new_class} ({new_class / unlabeled:.1%}) "
           f"| {time.perf_counter() - t:.0f} |")
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(SHARED_DATASETS))
    parser.add_argument("--digits", type=int, default=2000, help="MNIST images (its first ones)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    started = dt.datetime.now().astimezone()
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        summary, junk, junk_seconds = junk_rows(data_dir, tmp)
        print(*summary, *junk, sep="\n", flush=True)
        small_summary, small_junk, small_seconds = junk_rows(data_dir, tmp, SMALL_EVERY, SMALL_JUNK)
        print(*small_summary, *small_junk, sep="\n", flush=True)
        clean = [
            clean_row("pets37 (species)", tmp / "pets", copy_pets(data_dir, tmp / "pets")),
            clean_row(f"MNIST (first {args.digits:,})", tmp / "mnist",
                      write_pngs(data_dir / "mnist_a.npz", tmp / "mnist", args.digits)),
            clean_row("Fashion-MNIST", tmp / "fashion", write_pngs(data_dir / "fashion_1000.npz", tmp / "fashion")),
        ]
    lines = [
        "# Isolated images: non-photos planted among photos, through the app's pipeline (benchmarks/isolation.py)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}; load average {load_before:.1f} before the run",
        f"- command: `python -m benchmarks.isolation --digits {args.digits}`",
        "- per folder (a temporary directory): Workspace.open, import_folder, the first image of each class (by file "
        "name) labeled through the store, refresh (n_bootstrap 0, no map); isolated = Tukey's fence "
        f"(Q3 + {ISOLATION_FENCE:g} IQR) on the distance to the 15th neighbour in the backbone's plain features, "
        "photo folders only (labeler.workflow.representations.plain_backbone_distances, labeler.core.review.isolated)",
        "",
        f"## pets37 (370 photos) + {len(junk)} planted non-photos ({junk_seconds:.0f} s)",
        "",
        "Before = the same workspace refreshed with the rule off (the plain distances withheld from refresh, as "
        "before it existed); after = the rule on. Confidence is the calibrated P(label is right) the app shows and "
        "exports; score the raw spreading value; distance / fence above 1 is isolated.",
        "",
        *summary,
        "",
        *JUNK_TABLE,
        *junk,
        "",
        f"## A third of pets37 (every {SMALL_EVERY}rd photo) + {len(small_junk)} planted non-photos "
        f"({small_seconds:.0f} s)",
        "",
        "The kind of folder a user trial had (120 pets37 photos and four non-photos), where the rule found none: "
        "the fence follows how far apart the folder's own photos are, and a mix of 37 breeds in a third of the "
        "photos spreads them wide.",
        "",
        *small_summary,
        "",
        *JUNK_TABLE,
        *small_junk,
        "",
        "## Nothing planted",
        "",
        "Isolated must be 0 on the digits and clothing: they are no photo folder, so isolation is not measured there. "
        "Possible new class: far from every seed in the graph, or isolated in the representation in use "
        "(labeler.core.review.possible_new_class; share of the unlabeled images).",
        "",
        "| folder | images | classes | photo folder | representation | isolated | possible new class | seconds |",
        "|---|---|---|---|---|---|---|---|",
        *clean,
        "",
        f"{time.perf_counter() - t:.0f} s.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()

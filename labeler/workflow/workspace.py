"""A workspace: one dataset folder, its label store and its cached artifacts.

By default the workspace lives in ``DATA_DIR/.labeler/``; ``Settings.workspace_dir`` moves it elsewhere so the
data folder can be read-only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from labeler.config import Settings
from labeler.io import scan
from labeler.io.caches import load_or_build_caches
from labeler.io.scan import dataset_fingerprint, find_duplicates, scan_images
from labeler.progress import Progress
from labeler.store import ClassInfo, ImageRecord, ImportedImage, LabelStore


@dataclass
class ImportReport:
    """What ``labeler import`` found."""

    counts: dict[str, int]
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    folder_labels: int = 0
    folder_label_problems: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable report, one line each (CLI output)."""
        c = self.counts
        out = [
            f"{c.get('ok', 0)} readable images ({c.get('added', 0)} new, {c.get('updated', 0)} changed, "
            f"{c.get('missing', 0)} missing since last import), {len(self.unreadable)} unreadable, "
            f"{len(self.duplicates)} exact duplicates"
        ]
        out += [f"unreadable: {path}: {reason}" for path, reason in self.unreadable]
        out += [f"duplicate: {path} is identical to {original}" for path, original in self.duplicates.items()]
        if self.folder_labels or self.folder_label_problems:
            out.append(f"{self.folder_labels} labels taken from folder names")
            out += [f"folder label skipped: {path}: {reason}" for path, reason in self.folder_label_problems]
        return out


class Workspace:
    """The settings, the store and the image caches of one dataset."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = LabelStore(settings.db_path)
        self._cached: dict[str, tuple[NDArray[np.uint8], NDArray[np.uint8]]] = {}

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        return cls(settings)

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def workspace_dir(self) -> Path:
        return self.settings.workspace_dir

    # ------------------------------------------------------------------ import
    def import_folder(self, labels_from_folders: bool = False, progress: Progress | None = None) -> ImportReport:
        """Scan the data folder, record what was found, build the caches, optionally label from folder names."""
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"data folder {self.data_dir} does not exist or is not a folder")
        report_progress = progress or (lambda fraction, message: None)
        scanned = scan_images(
            self.data_dir,
            exclude=[self.workspace_dir],
            max_pixels=self.settings.max_image_pixels,
            progress=lambda f, m: report_progress(0.6 * f, m),
        )
        duplicates = find_duplicates(scanned)
        found = [ImportedImage(s.path, s.sha256, s.width, s.height, s.error) for s in scanned]
        counts = self.store.sync_images(found, duplicates)
        self.images(progress=lambda f, m: report_progress(0.6 + 0.4 * f, m))
        report = ImportReport(
            counts=counts,
            unreadable=[(r.path, r.reason or "unreadable") for r in self.store.images(status="unreadable")],
            duplicates=duplicates,
        )
        if labels_from_folders:
            rows = list(scan.labels_from_folders([s.path for s in scanned if s.error is None]).items())
            report.folder_labels, report.folder_label_problems = self.store.label_paths(
                rows, annotator="folder-names"
            )
        report_progress(1.0, "import finished")
        return report

    # ------------------------------------------------------------------ images in row order
    def records(self) -> list[ImageRecord]:
        """Readable images in row order: index i of every cache, embedding and result array is record i."""
        return self.store.readable_images()

    def fingerprint(self, records: list[ImageRecord] | None = None) -> str:
        """Identifies the ordered set of readable images (paths and contents)."""
        records = self.records() if records is None else records
        return dataset_fingerprint([f"{r.path}\t{r.sha256}" for r in records])

    def images(self, progress: Progress | None = None) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """(thumbnails (N, T, T, 3), training images (N, S, S, 3)), uint8, built once per dataset version."""
        records = self.records()
        key = self.fingerprint(records)
        if key not in self._cached:
            thumbs, train = load_or_build_caches(
                self.settings.cache_dir,
                self.data_dir,
                [r.path for r in records],
                key,
                self.settings.thumb_size,
                self.settings.train_size,
                self.settings.max_image_pixels,
                progress,
            )
            self._cached = {key: (thumbs, train)}
        return self._cached[key]

    def thumbnails(self) -> NDArray[np.uint8]:
        return self.images()[0]

    def training_images(self) -> NDArray[np.uint8]:
        return self.images()[1]

    # ------------------------------------------------------------------ labels in row order
    def classes(self) -> list[ClassInfo]:
        return self.store.classes()

    def human_label_vector(self, records: list[ImageRecord] | None = None) -> NDArray[np.int64]:
        """``y`` of shape (N,): the class index (position in ``classes()``) of each human label, -1 elsewhere."""
        records = self.records() if records is None else records
        column = {info.id: i for i, info in enumerate(self.classes())}
        labels = self.store.human_labels()
        y = np.full(len(records), -1, dtype=np.int64)
        for i, record in enumerate(records):
            class_id = labels.get(record.id)
            if class_id is not None:
                y[i] = column[class_id]
        return y

    def ground_truth_names(self) -> dict[str, str]:
        """Teaching mode: {path: true class name} from ``Settings.ground_truth_path``; empty when none is set."""
        path = self.settings.ground_truth_path
        if path is None or not path.is_file():
            return {}
        with path.open(newline="", encoding="utf-8") as handle:
            return {row["path"]: row["label"] for row in csv.DictReader(handle)}

    def ground_truth(self, records: list[ImageRecord] | None = None) -> NDArray[np.int64] | None:
        """Teaching mode only: true class index per row (-1 where unknown or not a defined class)."""
        truth = self.ground_truth_names()
        if not truth:
            return None
        records = self.records() if records is None else records
        column = {info.name: i for i, info in enumerate(self.classes())}
        return np.array([column.get(truth.get(r.path, ""), -1) for r in records], dtype=np.int64)

"""A workspace: one dataset folder, its label store and its cached artifacts.

By default the workspace lives in ``DATA_DIR/.labeler/``; ``Settings.workspace_dir`` moves it elsewhere so the
data folder can be read-only.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeler.config import Settings
from labeler.io import caches, chunked, scan
from labeler.io.caches import cache_lock
from labeler.io.chunked import NpyReader
from labeler.io.scan import ScannedImage, dataset_fingerprint, find_duplicates, find_images
from labeler.progress import Progress, StopCheck, quiet
from labeler.store import ClassInfo, ImageRecord, ImportedImage, LabelStore, natural_key
from labeler.wording import counted

# Size, modification time and digest of every file at the last import (a re-import reads only what changed).
STAMPS_NAME = "files.json"


@dataclass
class ImportReport:
    """What ``labeler import`` found."""

    counts: dict[str, int]
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    folder_labels: int = 0
    folder_label_problems: list[tuple[str, str]] = field(default_factory=list)
    folder_labels_kept: int = 0  # images that had a label and kept it instead of their folder's name
    decoded: int = 0  # files decoded by this import (new or changed content); the rest came from the caches
    cancelled: bool = False

    def lines(self) -> list[str]:
        """Human-readable report, one line each (CLI output): the summary, then one line per file it names."""
        return self.summary_lines() + self.file_lines()

    def summary_lines(self, listed: str = "listed below") -> list[str]:
        """The report's lines about the whole folder: what changed, e.g. "1,509 new files: 1,506 readable,
        3 unreadable (listed below); 0 changed and 0 missing since the last import", then the totals, labels that
        followed content, folder labels. ``listed`` says where the unreadable files are listed ("" for nowhere)."""
        if self.cancelled:
            return ["import cancelled: nothing was changed"]
        c = self.counts
        added, added_unreadable = c.get("added", 0), c.get("added_unreadable", 0)
        # Where the unreadable files are listed is said once, at the first count of them that is not zero.
        pointer = f" ({listed})" if listed and self.unreadable else ""
        if added:
            new = (f"{counted(added, 'new file')}: {added - added_unreadable:,} readable, "
                   f"{added_unreadable:,} unreadable{pointer if added_unreadable else ''}")
        else:
            new = "no new files"
        out = [
            f"{new}; {c.get('updated', 0):,} changed and {c.get('missing', 0):,} missing since the last import",
            f"in all: {c.get('ok', 0):,} readable images, {len(self.unreadable):,} unreadable"
            f"{'' if added_unreadable else pointer}, {len(self.duplicates):,} exact duplicates",
        ]
        if c.get("labels_moved") or c.get("labels_cleared"):
            out.append(f"labels follow content: {c.get('labels_moved', 0)} moved with their picture to its new name, "
                       f"{c.get('labels_cleared', 0)} taken off files now holding another picture (undo: labeler "
                       "undo DIR --annotator labeler#rescan)")
        if c.get("audits_moved") or c.get("audits_dropped"):
            out.append(f"blind audit answers follow content: {c.get('audits_moved', 0)} moved with their picture, "
                       f"{c.get('audits_dropped', 0)} dropped from files now holding another picture")
        if self.folder_labels or self.folder_label_problems or self.folder_labels_kept:
            n_kept = self.folder_labels_kept
            kept = (f"; {counted(n_kept, 'image')} kept the label {'it' if n_kept == 1 else 'they'} had (folder "
                    "names never overwrite a label)" if n_kept else "")
            out.append(f"{counted(self.folder_labels, 'label')} taken from folder names{kept}")
        return out

    def file_lines(self) -> list[str]:
        """The report's lines about single files: unreadable ones, duplicates, folder labels skipped."""
        if self.cancelled:
            return []
        out = [f"unreadable: {path}: {reason}" for path, reason in self.unreadable]
        out += [f"duplicate: {path} is identical to {original}" for path, original in self.duplicates.items()]
        out += [f"folder label skipped: {path}: {reason}" for path, reason in self.folder_label_problems]
        return out


class Workspace:
    """The settings, the store and the image caches of one dataset."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = LabelStore(settings.db_path)
        self._cached: dict[str, tuple[NDArray[np.uint8], NDArray[np.uint8]]] = {}
        # Readable records and their fingerprint, for the images version they were read at.
        self._records: tuple[int, list[ImageRecord], str] | None = None
        # Results derived from the cache files and kept in this process (the app's), keyed by what they depend on,
        # e.g. the affinity matrix of a representation: read by every refresh, rebuilt only when its key changes.
        self.memo: dict[str, tuple[str, Any]] = {}

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
    def import_folder(
        self, labels_from_folders: bool = False, progress: Progress | None = None, should_stop: StopCheck | None = None
    ) -> ImportReport:
        """Scan the data folder, record what was found, build the caches, optionally label from folder names.

        See :func:`import_folder`, the same as a job function.
        """
        return import_folder(self, progress or quiet, should_stop, labels_from_folders=labels_from_folders)

    # ------------------------------------------------------------------ images in row order
    def records(self) -> list[ImageRecord]:
        """Readable images in row order: index i of every cache, embedding and result array is record i.

        Read from the store once per images version (a one-row read per call), so polling pages and a refresh
        after each label do not load 100,000 rows each time. The list is shared: do not modify it.
        """
        version = self.store.images_version()
        if self._records is None or self._records[0] != version:
            records = self.store.images("ok")
            self._records = (version, records, _fingerprint(records))
        return self._records[1]

    def image_count(self) -> int:
        """Number of readable images (one COUNT query; nothing is loaded)."""
        return self.store.count_images("ok")

    def has_images(self) -> bool:
        """Whether anything (readable or not) was ever imported: True once the folder has been scanned."""
        return self.store.count_images(None) > 0

    def records_page(self, lo: int, hi: int) -> list[ImageRecord]:
        """Records of rows ``lo .. hi - 1`` (one page of a grid), without reading the others."""
        cached = self._records
        if cached is not None and cached[0] == self.store.images_version():
            return cached[1][max(lo, 0) : max(hi, 0)]
        return self.store.images_in_rows(lo, hi)

    def fingerprint(self, records: list[ImageRecord] | None = None) -> str:
        """Identifies the ordered set of readable images (paths and contents)."""
        if records is None or (self._records is not None and records is self._records[1]):
            self.records()
            assert self._records is not None
            return self._records[2]
        return _fingerprint(records)

    def images(self, progress: Progress | None = None) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """(thumbnails (N, T, T, 3), training images (N, S, S, 3)), uint8 ``np.memmap``s, one pair per dataset version.

        Normally written by the import. When missing (deleted, or the thumbnail size changed) they are built here
        from the files, streamed to disk; an image that no longer decodes is marked unreadable in the store (with
        the reason) rather than given a blank row, and the caches then hold the remaining images.
        """
        records = self.records()
        key = self.fingerprint(records)
        if key not in self._cached:
            found = self._open_caches(key, len(records))
            if found is None:
                found = self._build_caches(records, progress or quiet)
            self._cached = {self.fingerprint(): found}
            key = self.fingerprint()
        return self._cached[key]

    def _open_caches(self, fingerprint: str, n: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]] | None:
        s = self.settings
        return caches.open_caches(s.cache_dir, fingerprint, s.thumb_size, s.train_size, n)

    def cache_paths(self, fingerprint: str | None = None) -> tuple[Path, Path]:
        """Files of the thumbnail and training-image caches of ``fingerprint`` (default: the current images)."""
        s = self.settings
        return caches.cache_paths(s.cache_dir, fingerprint or self.fingerprint(), s.thumb_size, s.train_size)

    def _build_caches(
        self, records: list[ImageRecord], progress: Progress
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        s = self.settings
        with cache_lock(s.cache_dir):
            # An import may have written them while this thread waited for the lock.
            records = self.records()
            opened = self._open_caches(self.fingerprint(records), len(records))
            if opened is not None:
                return opened
            fingerprint = self.fingerprint(records)
            thumbs_path, train_path = caches.cache_paths(s.cache_dir, f"building-{fingerprint}", s.thumb_size,
                                                         s.train_size)
            errors = caches.build_image_caches(
                self.data_dir, [r.path for r in records], thumbs_path, train_path, s.thumb_size, s.train_size,
                s.max_image_pixels, progress,
            )
            try:
                failed = {r.path: error for r, error in zip(records, errors, strict=True) if error is not None}
                if failed:
                    self.store.mark_unreadable(failed)
                kept = np.array([i for i, error in enumerate(errors) if error is None], dtype=np.int64)
                final = self.records()
                if [r.id for r in final] != [records[i].id for i in kept]:
                    raise RuntimeError("the images on record changed while their caches were built; try again")
                final_thumbs, final_train = self.cache_paths(self.fingerprint(final))
                if failed:
                    writer = caches.CacheWriter(final_thumbs, final_train, len(kept), s.thumb_size, s.train_size)
                    try:
                        caches.write_gathered(writer, [(NpyReader(thumbs_path), NpyReader(train_path))],
                                              np.zeros(len(kept), dtype=np.int64), kept)
                    except BaseException:
                        writer.abort()
                        raise
                    writer.commit()
                else:
                    os.replace(thumbs_path, final_thumbs)
                    os.replace(train_path, final_train)
            finally:
                thumbs_path.unlink(missing_ok=True)
                train_path.unlink(missing_ok=True)
        opened = self._open_caches(self.fingerprint(final), len(final))
        if opened is None:
            raise RuntimeError(f"the image caches in {s.cache_dir} could not be read back")
        return opened

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

    def ground_truth_classes_missing(self) -> list[str]:
        """Teaching mode: the class names of the ground truth that no class has yet, in natural order (so that a
        teacher need not type ten names exactly as the CSV spells them); empty when no ground truth is set."""
        have = {c.name for c in self.classes()}
        return sorted({name for name in self.ground_truth_names().values() if name and name not in have},
                      key=natural_key)

    def ground_truth(self, records: list[ImageRecord] | None = None) -> NDArray[np.int64] | None:
        """Teaching mode only: true class index per row (-1 where unknown or not a defined class)."""
        truth = self.ground_truth_names()
        if not truth:
            return None
        records = self.records() if records is None else records
        column = {info.name: i for i, info in enumerate(self.classes())}
        return np.array([column.get(truth.get(r.path, ""), -1) for r in records], dtype=np.int64)


def _fingerprint(records: list[ImageRecord]) -> str:
    return dataset_fingerprint([f"{r.path}\t{r.sha256}" for r in records])


def import_folder(
    ws: Workspace, progress: Progress = quiet, should_stop: StopCheck | None = None, *,
    labels_from_folders: bool = False,
) -> ImportReport:
    """Scan the data folder and bring the store and the image caches up to date (a job function).

    Each file is read, hashed and decoded at most once, and only when it is new or changed: a file whose size
    and modification time match the last import is not even read, and one whose content is already cached (a
    touched or renamed file) is read and hashed but not decoded. Unchanged rows are copied from the previous
    cache chunk by chunk, so memory stays flat whatever the folder's size. ``should_stop()`` cancels before the
    store is touched: a cancelled import changes nothing.
    """
    if not ws.data_dir.is_dir():
        raise FileNotFoundError(f"data folder {ws.data_dir} does not exist or is not a folder")
    s = ws.settings
    progress(0.0, "finding images")
    paths = find_images(ws.data_dir, exclude=[ws.workspace_dir])
    root = Path(ws.data_dir).absolute()
    prefix = str(root) + os.sep  # string slicing: Path.relative_to costs 2 s at 100,000 files
    rels = [str(path)[len(prefix):].replace(os.sep, "/") if str(path).startswith(prefix)
            else path.relative_to(root).as_posix() for path in paths]
    with cache_lock(s.cache_dir):
        previous = ws.records()
        previous_fingerprint = ws.fingerprint(previous)
        old_thumbs, old_train = ws.cache_paths(previous_fingerprint)
        have_old = ws._open_caches(previous_fingerprint, len(previous)) is not None
        reusable = {r.sha256: (r.width or 0, r.height or 0) for r in previous if r.sha256} if have_old else {}
        old_row = {r.sha256: i for i, r in enumerate(previous) if r.sha256} if have_old else {}
        stamps_path = s.cache_dir / STAMPS_NAME
        old_stamps = scan.load_stamps(stamps_path)
        known = {r.path: r for r in ws.store.images()}
        found: list[ImportedImage | None] = [None] * len(paths)
        stamps: dict[str, tuple[int, int]] = {}
        to_read: list[int] = []
        for i, (path, rel) in enumerate(zip(paths, rels, strict=True)):
            stamp = scan.file_stamp(path)
            if stamp is not None:
                stamps[rel] = stamp
            old, record = old_stamps.get(rel), known.get(rel)
            if stamp is not None and old is not None and record is not None and stamp == old[:2] \
                    and record.sha256 == old[2]:
                if record.status == "unreadable":
                    found[i] = ImportedImage(rel, record.sha256, None, None, record.reason)
                    continue
                if record.status == "ok" and record.sha256 in reusable:
                    found[i] = ImportedImage(rel, record.sha256, record.width, record.height, None)
                    continue
            to_read.append(i)

        pending_thumbs, pending_train = caches.cache_paths(s.cache_dir, "pending", s.thumb_size, s.train_size)
        pending = caches.CacheWriter(pending_thumbs, pending_train, len(to_read), s.thumb_size, s.train_size)
        try:
            outcome = caches.decode_changed(
                [paths[i] for i in to_read], reusable, pending, thumb_size=s.thumb_size, train_size=s.train_size,
                max_pixels=s.max_image_pixels, progress=lambda f, m: progress(0.8 * f, m), should_stop=should_stop,
            )
        except BaseException:
            pending.abort()
            raise
        if outcome.cancelled:
            pending.abort()
            return ImportReport(counts={}, cancelled=True)
        pending.thumbs.commit(outcome.n_decoded)
        pending.train.commit(outcome.n_decoded)
        try:
            pending_row: dict[str, int] = {}
            for i, file, row in zip(to_read, outcome.files, outcome.pending_row, strict=True):
                found[i] = ImportedImage(rels[i], file.sha256, file.width, file.height, file.error)
                pending_row[rels[i]] = row
            images = [item for item in found if item is not None]
            duplicates = find_duplicates([ScannedImage(f.path, f.sha256, f.width, f.height, f.error) for f in images])
            counts = ws.store.sync_images(images, duplicates)
            records = ws.records()
            fingerprint = ws.fingerprint(records)
            if fingerprint != previous_fingerprint or not have_old:
                progress(0.8, "writing the image caches")
                _assemble_caches(ws, records, pending_row, old_row, (old_thumbs, old_train),
                                 (pending_thumbs, pending_train), lambda f, m: progress(0.8 + 0.15 * f, m))
                if have_old:  # superseded: every row it held was copied into the new caches
                    old_thumbs.unlink(missing_ok=True)
                    old_train.unlink(missing_ok=True)
            scan.save_stamps(stamps_path, {
                item.path: (*stamps[item.path], item.sha256)
                for item in images if item.sha256 is not None and item.path in stamps
            })
        finally:
            pending_thumbs.unlink(missing_ok=True)
            pending_train.unlink(missing_ok=True)
    report = ImportReport(
        counts=counts,
        unreadable=[(r.path, r.reason or "unreadable") for r in ws.store.images(status="unreadable")],
        duplicates=duplicates,
        decoded=outcome.n_decoded,
    )
    if labels_from_folders:
        readable = [f.path for f in images if f.error is None]
        # Only images without a label: a re-scan with the box ticked must not undo a person's correction, nor a
        # renamed class (a user trial lost both).
        taken = ws.store.label_paths_report(list(scan.labels_from_folders(readable).items()),
                                            annotator="folder-names", keep_labeled=True)
        report.folder_labels, report.folder_label_problems = taken.changed, taken.problems
        report.folder_labels_kept = taken.kept
    progress(1.0, "import finished")
    return report


def _assemble_caches(
    ws: Workspace,
    records: list[ImageRecord],
    pending_row: dict[str, int],
    old_row: dict[str, int],
    old_paths: tuple[Path, Path],
    pending_paths: tuple[Path, Path],
    progress: Progress,
) -> None:
    """Write the caches of ``records``: rows decoded now from the pending files, the others from the old caches."""
    n = len(records)
    which = np.empty(n, dtype=np.int64)
    rows = np.empty(n, dtype=np.int64)
    for i, record in enumerate(records):
        row = pending_row.get(record.path, -1)
        if row >= 0:
            which[i], rows[i] = 1, row
        elif record.sha256 in old_row:
            which[i], rows[i] = 0, old_row[record.sha256]
        else:
            raise RuntimeError(f"no cached pixels for {record.path}: the store changed during the import")
    final_thumbs, final_train = ws.cache_paths(ws.fingerprint(records))
    if n and np.all(which == 1) and np.array_equal(rows, np.arange(n)) and len(NpyReader(pending_paths[0])) == n:
        os.replace(pending_paths[0], final_thumbs)  # a first import: the decoded rows are the caches already
        os.replace(pending_paths[1], final_train)
        return
    kept_in_place = np.any(which == 0) and np.all((which == 1) | (rows == np.arange(n)))
    old_n = _rows_in(old_paths[0])
    if kept_in_place and old_n is not None and old_n == _rows_in(old_paths[1]) and old_n <= n \
            and (old_n == n or all(chunked.can_grow(path, n) for path in old_paths)):
        # Files changed, or added after every old row (rows are in path order: new names that sort last, as a
        # camera's next numbers or a new dated folder do): every other row stays where it is, so only the new and
        # changed rows are written, into the old caches renamed aside (one 3 GB copy less at 100,000 images).
        # Files added in the middle or removed shift the rows after them: copied whole below, because moving rows
        # inside the old file would change, or cut short, what a page that mapped it shows meanwhile.
        changed = np.flatnonzero(which == 1)
        caches.patch_caches(old_paths, (final_thumbs, final_train), pending_paths, changed, rows[changed], n)
        return
    s = ws.settings
    readers = [(NpyReader(old_paths[0]), NpyReader(old_paths[1])) if np.any(which == 0) else None,
               (NpyReader(pending_paths[0]), NpyReader(pending_paths[1]))]
    writer = caches.CacheWriter(final_thumbs, final_train, n, s.thumb_size, s.train_size)
    try:
        caches.write_gathered(writer, readers, which, rows, progress)
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def _rows_in(path: Path) -> int | None:
    """Rows of the ``.npy`` at ``path``; None when it is absent or unreadable."""
    try:
        return len(NpyReader(path))
    except (OSError, ValueError):
        return None
